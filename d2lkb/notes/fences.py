"""Fenced code blocks: what language a fence holds, and doctest-style splitting."""

from __future__ import annotations

import re

_LANGUAGES = {
    "python": "python",
    "py": "python",
    "python3": "python",
    "py3": "python",
    "ipython": "python",
    "ipython3": "python",
    "pycon": "pycon",
    "sympy": "sympy",
    "output": "output",
}


def fence_language(info: str) -> str | None:
    """The normalised language of a fence info string: "python", "pycon", "sympy",
    "output", or None for anything else.

    Accepts `python`, `py`, `python3`, `ipython`, `pycon`, `sympy`, `output` (any
    case, followed by other words or not), attribute style `{.python .input n=1}` and
    Quarto style `{python}`.
    """
    info = info.strip()
    if not info:
        return None
    if info[0] == "{":
        close = info.find("}")
        words = (info[1:close] if close > 0 else info[1:]).replace(",", " ").split()
        for word in words:
            if word.startswith("."):
                return _LANGUAGES.get(word[1:].lower())
            if "=" not in word:
                return _LANGUAGES.get(word.lower())
        return None
    return _LANGUAGES.get(info.split(maxsplit=1)[0].lower())


def is_doctest(code: str) -> bool:
    """True when the first non-blank line starts with a `>>>` prompt."""
    for line in code.split("\n"):
        if line.strip():
            return line.startswith(">>> ") or line.rstrip() == ">>>"
    return False


def split_doctest(code: str) -> tuple[str, str | None]:
    """(source with `>>> `/`... ` prompts stripped, expected output or None).

    A `...` line is a continuation only right after a prompt line; elsewhere it is
    output (an ellipsis). Output lines keep their inner blank lines; leading and
    trailing blank lines are dropped.
    """
    source: list[str] = []
    output: list[str] = []
    in_source = False
    for line in code.split("\n"):
        bare = line.rstrip()
        if line.startswith(">>> ") or bare == ">>>":
            source.append(line[4:])
            in_source = True
        elif in_source and (line.startswith("... ") or bare == "..."):
            source.append(line[4:])
        else:
            output.append(line)
            in_source = False
    while output and not output[-1].strip():
        output.pop()
    while output and not output[0].strip():
        output.pop(0)
    code_text = "\n".join(source) + "\n" if source else ""
    return code_text, ("\n".join(output) if output else None)


def is_closing_fence(line: str, markup: str) -> bool:
    """Whether a source line (container prefixes such as `>` allowed) closes a fence
    opened with `markup` (e.g. three backticks)."""
    text = line.lstrip(" \t>").rstrip()
    return len(text) >= len(markup) and text == markup[0] * len(text)



# --- d2lbook tab markers ------------------------------------------------------------------
# The D2L book (built with d2lbook) writes one cell per framework: a line `%%tab pytorch`,
# `#@tab pytorch, mxnet` or `#@tab all` (also commented out: `# %%tab jax`) names the
# frameworks ("tabs") a cell belongs to. `%load_ext d2lbook.tab` cells set up the tabs.

_TAB_MARKER = re.compile(r"^[ \t]*(?:%%tab|#[ \t]*@tab|#[ \t]*%%tab)[ \t]+(\w[\w, \t]*?)[ \t]*$", re.M)
TAB_SETUP = "%load_ext d2lbook.tab"


def cell_tabs(code: str) -> tuple[str, ...] | None:
    """The tabs (lower-case framework names, or "all") that a d2lbook tab marker line of
    `code` names, or None when the cell has no marker."""
    match = _TAB_MARKER.search(code)
    if match is None:
        return None
    return tuple(dict.fromkeys(t.strip().lower() for t in match[1].split(",") if t.strip()))


def strip_tab_marker(code: str) -> str:
    """`code` with its tab marker line emptied (not removed: line numbers stay)."""
    return _TAB_MARKER.sub("", code, count=1)


def is_tab_setup(code: str) -> bool:
    """Whether the cell loads d2lbook's tab extension (`%load_ext d2lbook.tab`)."""
    return any(line.strip() == TAB_SETUP for line in code.split("\n"))
