"""Which of a note's code cells run, and as what Python: d2lbook tabs and IPython magics.

Pure (no torch); runs in the parent before a note goes to the snippet worker.

- **Frameworks.** The D2L book writes one cell per framework, marked `%%tab pytorch`,
  `#@tab mxnet, pytorch`, `#@tab all` (see `d2lkb.notes.fences.cell_tabs`). In a note
  with such markers only the cells of the selected framework and the `all` cells
  run; a cell without a marker belongs to `DEFAULT_TAB` (pytorch: the first tab of
  the book's own build config), as d2lbook has it. The others are skipped, with the
  reason. A note without any marker runs all its cells.
- **Tab selectors.** A cell made only of `%load_ext d2lbook.tab` and
  `tab.interact_select(...)` is skipped (it picks a framework in Jupyter); the
  worker binds `tab` to a stand-in whose `tab.selected(...)` answers for the
  selected framework, so the book's `if tab.selected('pytorch'):` branches work.
- **IPython magics** (`%matplotlib inline`, `%%time`, `!ls`, `obj?`) are translated
  by IPython's own input transformer into `get_ipython().run_line_magic(...)`
  calls, which the worker emulates (see `SUPPORTED_MAGICS`); a cell using another
  magic, or installing packages (`!pip install`), is skipped with the reason.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from d2lkb.config import FRAMEWORKS
from d2lkb.notes.fences import TAB_SETUP, cell_tabs, is_tab_setup, strip_tab_marker

__all__ = [
    "DEFAULT_FRAMEWORK",
    "DEFAULT_TAB",
    "FRAMEWORKS",
    "SUPPORTED_MAGICS",
    "CellPlan",
    "NotePlan",
    "plan_note",
]

DEFAULT_FRAMEWORK = "pytorch"
#: The tab of a cell without a marker in a note that has markers (d2l-en's `tabs = pytorch, ...`).
DEFAULT_TAB = "pytorch"

#: Magics the worker emulates; `%load_ext` only for `d2lbook.tab`.
SUPPORTED_MAGICS = frozenset(
    {"matplotlib", "config", "load_ext", "time", "timeit", "pinfo", "pinfo2", "system", "getoutput"}
)
_INSTALLS = re.compile(
    r"^\s*(?:sudo\s+)?(?:pip3?|python3?\s+-m\s+pip|conda|mamba|apt(?:-get)?|npm)\s+install\b"
)
_DOWNLOADS = re.compile(r"^\s*(?:wget|curl|git\s+clone|aws\s+s3|gsutil)\b")
# A line that IPython would treat as a magic, a shell escape or a help request.
_IPYTHON_SYNTAX = re.compile(r"^\s*(?:[\w.]+\s*=\s*)?[%!]|\?\s*$", re.M)
_SELECTOR_CALL = re.compile(r"^tab\.(?:interact_select|select_tab)\(.*\)\s*;?$")


@dataclass(frozen=True, slots=True)
class CellPlan:
    code: str | None  # the Python to run; None: the cell is not run
    reason: str = ""  # why it is not run
    ipython: bool = False  # the code calls get_ipython() (translated magics)


@dataclass(frozen=True, slots=True)
class NotePlan:
    cells: tuple[CellPlan, ...]
    framework: str
    d2lbook: bool  # the note uses d2lbook tabs: the worker binds `tab`

    @property
    def ipython(self) -> bool:
        return any(cell.ipython for cell in self.cells)


def plan_note(codes: Sequence[str], framework: str = DEFAULT_FRAMEWORK) -> NotePlan:
    """What to run for each cell of a note (in order), for `framework`."""
    framework = framework.strip().lower()
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r} (use {', '.join(FRAMEWORKS)})")
    tabbed = any(is_tab_setup(code) or cell_tabs(code) is not None for code in codes)
    return NotePlan(tuple(_plan_cell(code, framework, tabbed) for code in codes), framework, tabbed)


def _plan_cell(code: str, framework: str, tabbed: bool) -> CellPlan:
    if tabbed and _is_selector(code):
        return CellPlan(None, f"d2lbook tab selector: d2lkb runs the {framework} cells (checks.framework)")
    tabs = cell_tabs(code)
    if tabbed:
        tabs = tabs or (DEFAULT_TAB,)
        if "all" not in tabs and framework not in tabs:
            which = ", ".join(tabs)
            return CellPlan(None, f"a {which} cell; d2lkb runs the {framework} cells (checks.framework)")
        code = strip_tab_marker(code)
    if not _IPYTHON_SYNTAX.search(code):
        return CellPlan(code)
    return _translate_magics(code)


def _is_selector(code: str) -> bool:
    """Only `%load_ext d2lbook.tab` and `tab.interact_select(...)` lines (and comments)."""
    lines = [line.strip() for line in code.split("\n")]
    lines = [line for line in lines if line and not line.startswith("#")]
    return bool(lines) and TAB_SETUP in lines and all(
        line == TAB_SETUP or _SELECTOR_CALL.match(line) for line in lines
    )


def _translate_magics(code: str) -> CellPlan:
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return CellPlan(None, "uses IPython syntax (magics, `!` or `?`), and IPython is not installed")
    # A cell magic must open the cell: the blank line a tab marker left is moved after it.
    stripped = code.lstrip("\n")
    blank = len(code) - len(stripped)
    if stripped.startswith("%%"):
        first, _, rest = stripped.partition("\n")
        stripped = first + "\n" + "\n" * blank + rest
        blank = 0
    try:
        python = "\n" * blank + TransformerManager().transform_cell(stripped)
    except Exception as exc:  # noqa: BLE001 - IPython's transformer on odd input
        return CellPlan(None, f"IPython could not translate the cell: {exc}")
    if "get_ipython" not in python:  # only `?` in strings or comments, say
        return CellPlan(code)
    for kind, name, argument in _magic_calls(python):
        if kind == "system" and _INSTALLS.search(argument):
            return CellPlan(None, f"installs packages (`!{argument.strip()}`): d2lkb installs nothing")
        if kind == "system" and _DOWNLOADS.search(argument):
            return CellPlan(None, f"needs the network (`!{argument.strip()}`); d2lkb runs snippets offline")
        if name in ("pip", "conda", "mamba"):
            return CellPlan(None, f"installs packages (`%{name} {argument.strip()}`): d2lkb installs nothing")
        if name not in SUPPORTED_MAGICS:
            return CellPlan(None, f"uses the IPython magic `%{name}`, which d2lkb does not emulate")
        if name == "load_ext" and argument.strip() != "d2lbook.tab":
            return CellPlan(None, f"loads the IPython extension {argument.strip()!r}, which d2lkb does not emulate")
    return CellPlan(python, ipython=True)


def _magic_calls(python: str) -> list[tuple[str, str, str]]:
    """(kind, magic name, argument) of each `get_ipython().<method>(...)` call in `python`.

    kind is "line", "cell" or "system" (name "system" too); for a cell magic the
    argument is its first line's arguments.
    """
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return []  # the worker reports the syntax error itself
    calls = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call)
            and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython"
        ):
            continue
        args = [a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else "" for a in node.args]
        method = node.func.attr
        if method in ("system", "getoutput"):
            calls.append(("system", method, args[0] if args else ""))
        elif method == "run_line_magic":
            calls.append(("line", args[0] if args else "", args[1] if len(args) > 1 else ""))
        elif method == "run_cell_magic":
            calls.append(("cell", args[0] if args else "", args[1] if len(args) > 1 else ""))
        else:
            calls.append(("line", method, ""))
    return calls
