"""Small, pure helpers over LaTeX source: alignment rows and their labels.

Nothing here parses mathematics; it only cuts a display formula into the rows of an
alignment environment (`aligned`, `align`, ...) and reads a row's trailing label
(`&& \\textrm{Product rule}`, `\\tag{Name}`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from d2lkb.textutil import matching_brace

_ALIGN_BEGIN = re.compile(
    r"\\begin\{(aligned|alignedat|align\*?|alignat\*?|flalign\*?|gather\*?|gathered"
    r"|split|eqnarray\*?|multline\*?)\}"
)
_TEXT_COMMANDS = ("\\textrm", "\\text", "\\mathrm", "\\textbf", "\\textit", "\\textsf", "\\mbox")
_CONDITION_WORDS = frozenset({"for", "if", "where", "when"})


@dataclass(frozen=True, slots=True)
class Row:
    latex: str  # the row's source: stripped, without the trailing `\\`, `&` kept
    offset: int  # offset of `latex` inside the whole formula source


@dataclass(frozen=True, slots=True)
class RowLabel:
    shown: str  # the formula to display: without `&`, the `&&` label and `\tag{}`
    labelled: bool  # the row carries a `&&` label or a `\tag{}` (a name or a condition)
    name: str | None  # the label's text, unless it is a condition ("for n != 0")


def split_rows(latex: str) -> list[Row] | None:
    """The non-empty rows of the first alignment environment in `latex`, or None
    when there is none. Rows are split at `\\\\` outside braces and nested
    environments; `\\\\[2pt]` spacing is dropped."""
    match = _ALIGN_BEGIN.search(latex)
    if match is None:
        return None
    i = match.end()
    if match.group(1).startswith(("alignat", "alignedat")) and latex.startswith("{", i):
        close = matching_brace(latex, i)
        i = close + 1 if close >= 0 else i
    spans: list[tuple[int, int]] = []
    row_start = i
    depth = 0
    env_depth = 0
    n = len(latex)
    end = n
    while i < n:
        ch = latex[i]
        if ch == "\\":
            if latex.startswith("\\\\", i) and depth == 0 and env_depth == 0:
                spans.append((row_start, i))
                i += 2
                if latex.startswith("*", i):
                    i += 1
                j = i
                while j < n and latex[j] in " \t":
                    j += 1
                if latex.startswith("[", j):
                    close = latex.find("]", j)
                    if close >= 0:
                        i = close + 1
                row_start = i
                continue
            if latex.startswith("\\begin{", i):
                env_depth += 1
                i += 7
                continue
            if latex.startswith("\\end{", i):
                if env_depth == 0 and depth == 0:
                    end = i
                    break
                env_depth = max(0, env_depth - 1)
                i += 5
                continue
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        i += 1
    spans.append((row_start, end))

    rows = []
    for start, stop in spans:
        text = latex[start:stop]
        stripped = text.strip()
        if stripped:
            rows.append(Row(stripped, start + len(text) - len(text.lstrip())))
    return rows


def _top_level_ampersands(latex: str) -> list[int]:
    """Offsets of the `&` outside braces and nested environments (not `\\&`)."""
    found = []
    depth = 0
    env_depth = 0
    i = 0
    n = len(latex)
    while i < n:
        ch = latex[i]
        if ch == "\\":
            if latex.startswith("\\begin{", i):
                env_depth += 1
            elif latex.startswith("\\end{", i):
                env_depth = max(0, env_depth - 1)
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif ch == "&" and depth == 0 and env_depth == 0:
            found.append(i)
        i += 1
    return found


def _last_double_ampersand(latex: str) -> int:
    """Index of the last top-level `&&`, or -1."""
    found = -1
    previous = -2
    for index in _top_level_ampersands(latex):
        if index == previous + 1:
            found = previous
        previous = index
    return found


def _remove_alignment(latex: str) -> str:
    """`latex` without its top-level `&` (those of a nested matrix stay), spaces collapsed."""
    out = []
    prev = 0
    for index in _top_level_ampersands(latex):
        out.append(latex[prev:index])
        prev = index + 1
    out.append(latex[prev:])
    return " ".join("".join(out).split())


def _strip_parens(text: str) -> str:
    text = text.strip()
    if len(text) > 1 and text[0] == "(" and text[-1] == ")":
        text = text[1:-1].strip()
    return text


def _label_name(label: str) -> str | None:
    for command in _TEXT_COMMANDS:
        if label.startswith(command + "{") or label.startswith(command + " {"):
            open_pos = label.index("{")
            close = matching_brace(label, open_pos)
            if close < 0:
                return None
            text = label[open_pos + 1 : close]
            words = text.split()
            if not words or words[0].lower() in _CONDITION_WORDS:
                return None
            if label[close + 1 :].strip():
                return None  # text mixed with mathematics: not a plain name
            return _strip_parens(text) or None
    return None


def describe_row(latex: str) -> RowLabel:
    """Split a formula row into what is shown and its label.

    `a & = b && \\textrm{Product rule}` -> shown `a = b`, name "Product rule";
    `&& \\textrm{for } n \\neq 0` is a condition: labelled, but no name;
    `\\tag{Name}` names the row too (a purely numeric tag does not).
    """
    body = latex
    name: str | None = None
    labelled = False

    tag_at = max(body.rfind("\\tag{"), body.rfind("\\tag*{"))
    if tag_at >= 0:
        open_pos = body.index("{", tag_at)
        close = matching_brace(body, open_pos)
        if close >= 0:
            tag_text = body[open_pos + 1 : close].strip()
            body = body[:tag_at] + body[close + 1 :]
            labelled = True
            if any(ch.isalpha() for ch in tag_text):
                name = _strip_parens(tag_text) or None

    cut = _last_double_ampersand(body)
    if cut >= 0:
        label = body[cut + 2 :].strip()
        body = body[:cut]
        if label:
            labelled = True
            name = _label_name(label) or name
    return RowLabel(shown=_remove_alignment(body).rstrip("\\ ").strip(), labelled=labelled, name=name)


_RELATIONS = re.compile(
    r"=|<|>|\\(?:neq?|leq?|geq?|leqq|geqq|approx|equiv|sim|simeq|cong|propto|coloneqq|eqqcolon"
    r"|to|rightarrow|Rightarrow|longrightarrow|Longrightarrow|leftrightarrow|Leftrightarrow|iff|implies"
    r"|mapsto|in|notin|subset|subseteq|supset|supseteq|ll|gg|prec|succ|perp|parallel|vdash|models)(?![A-Za-z])"
)


def is_relation(latex: str) -> bool:
    """Whether a formula states something (`=`, `\\le`, `\\approx`, `\\to`, `\\in`, ...):
    an equation or relation can be a card; `\\square` or a lone `\\sum_i x_i` cannot."""
    return _RELATIONS.search(latex) is not None
