"""Running a note's cells like a notebook, in the snippet worker's forked child.

Standard library only (imported by `d2lkb.checks.worker`). What is here:

- `execute`: runs one cell in the note's namespace, echoing the value of a final
  expression (python) or of every expression statement (pycon). A top-level
  `import` of a module that is not installed (`from d2l import torch as d2l`)
  binds a stand-in instead of stopping the cell: the rest of the cell runs, and
  whatever later uses the stand-in stops with "needs the d2l package".
- `NoteState`: what the note lacks (packages, the network) and which names could
  not be defined because of it, so that a later cell failing for that reason is
  reported as depending on the cell that lacked it, not as an error of its own.
- `Tabs` and `Shell`: stand-ins for d2lbook's `tab` object and for IPython's
  `get_ipython()` (the magics `d2lkb.checks.cells` translates).
"""

from __future__ import annotations

import ast
import errno
import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MissingPackageError", "NoteState", "Shell", "Tabs", "bound_names", "execute", "not_installed"]


class MissingPackageError(ModuleNotFoundError):
    """Raised when a cell uses a module whose import failed because it is not installed."""


def not_installed(module: str | None) -> bool:
    """Whether the top-level package of `module` cannot be found (in sys.path, now)."""
    if not module:
        return False
    root = module.split(".")[0]
    try:
        return importlib.util.find_spec(root) is None
    except (ImportError, ValueError):
        return True


class _Absent:
    """Bound in place of a module that is not installed; any use raises MissingPackageError."""

    def __init__(self, package: str, where: str):
        object.__setattr__(self, "_d2lkb_absent", (package, where))

    def _fail(self, *_args: Any, **_kwargs: Any) -> Any:
        package, where = object.__getattribute__(self, "_d2lkb_absent")
        raise MissingPackageError(f"needs the {package} package, which is not installed ({where})", name=package)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # introspection (copy, pickle, inspect) is told "no"
        return self._fail()

    __call__ = __getitem__ = __iter__ = __enter__ = __setattr__ = _fail

    def __repr__(self) -> str:
        package, _where = object.__getattribute__(self, "_d2lkb_absent")
        return f"<{package}: not installed>"


@dataclass
class NoteState:
    """What the note's earlier cells could not provide."""

    # name -> (snippet number, why): names a cell could not define because it lacked something
    unavailable: dict[str, tuple[int, str]] = field(default_factory=dict)
    # name -> (snippet number, why): names bound by a cell that stopped early (maybe half made)
    tainted: dict[str, tuple[int, str]] = field(default_factory=dict)
    # the latest cell that lacked something: (snippet number, why)
    last_gap: tuple[int, str] | None = None

    def record_gap(
        self, number: int, reason: str, names: set[str], namespace: dict[str, Any], *, origin: bool = True
    ) -> None:
        """Cell `number` lacked something (`origin`), or depended on a cell that did (not `origin`)."""
        if origin:
            self.last_gap = (number, reason)
        for name in names:
            self.tainted.setdefault(name, (number, reason))
            if name not in namespace:
                self.unavailable.setdefault(name, (number, reason))

    def tainted_use(self, code: str) -> tuple[str, int, str] | None:
        """(name, snippet number, why) of a tainted name that `code` reads, if any."""
        if not self.tainted:
            return None
        for name in sorted(used_names(code)):
            if name in self.tainted:
                return (name, *self.tainted[name])
        return None


def execute(
    code: str, language: str, namespace: dict[str, Any], filename: str, number: int
) -> list[str]:
    """Run `code` in `namespace`; the descriptions of the imports replaced by stand-ins
    (empty when none was: then the cell ran exactly as plain Python would)."""
    tree = ast.parse(code, filename, "exec")
    echo_last = (
        language == "python"
        and bool(tree.body)
        and isinstance(tree.body[-1], ast.Expr)
        and not _ends_with_semicolon(code, tree.body[-1])
    )
    if language == "python" and not _imports_a_missing_module(tree):
        # The common case: one compile, like a notebook.
        body = tree.body[:-1] if echo_last else tree.body
        exec(compile(ast.Module(body=body, type_ignores=[]), filename, "exec", dont_inherit=True), namespace)
        if echo_last:
            _echo(tree.body[-1], filename, namespace)
        return []
    absent: list[str] = []
    for position, statement in enumerate(tree.body):
        try:
            if language == "pycon":
                # "single" mode prints every expression statement through sys.displayhook.
                exec(compile(ast.Interactive(body=[statement]), filename, "single", dont_inherit=True), namespace)
            elif echo_last and position == len(tree.body) - 1:
                _echo(statement, filename, namespace)
            else:
                exec(compile(ast.Module(body=[statement], type_ignores=[]), filename, "exec", dont_inherit=True),
                     namespace)
        except ModuleNotFoundError as exc:
            if isinstance(exc, MissingPackageError) or not isinstance(statement, ast.Import | ast.ImportFrom):
                raise
            if getattr(statement, "level", 0) or not not_installed(exc.name):
                raise
            package = (exc.name or "").split(".")[0]
            line = ast.get_source_segment(code, statement) or ""
            where = f"snippet {number}, line {statement.lineno}: `{line.strip()}`"
            for alias in statement.names:
                if alias.name != "*":
                    namespace[alias.asname or alias.name.split(".")[0]] = _Absent(package, where)
            absent.append(f"needs the {package} package, which is not installed (line {statement.lineno}: "
                          f"`{line.strip()}`)")
    return absent


def _echo(statement: ast.stmt, filename: str, namespace: dict[str, Any]) -> None:
    assert isinstance(statement, ast.Expr)
    value = eval(compile(ast.Expression(body=statement.value), filename, "eval", dont_inherit=True), namespace)
    sys.displayhook(value)


def _imports_a_missing_module(tree: ast.Module) -> bool:
    for statement in tree.body:
        if isinstance(statement, ast.Import) and any(not_installed(a.name) for a in statement.names):
            return True
        if isinstance(statement, ast.ImportFrom) and not statement.level and not_installed(statement.module):
            return True
    return False


def _ends_with_semicolon(code: str, statement: ast.stmt) -> bool:
    """`x;` on the last line silences the echo, as in Jupyter."""
    lines = code.splitlines()
    end_line, end_col = statement.end_lineno or 0, statement.end_col_offset or 0
    rest = lines[end_line - 1][end_col:] if 0 < end_line <= len(lines) else ""
    return rest.split("#", 1)[0].strip().startswith(";")


class _Binder(ast.NodeVisitor):
    """Names a module binds at top level (not inside functions, classes or comprehensions)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.names.add(node.id)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.names.add(node.name)
        for decorator in node.decorator_list:
            self.visit(decorator)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_Lambda  # type: ignore[assignment]

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.names.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import  # type: ignore[assignment]


def bound_names(code: str) -> set[str]:
    """The names `code` binds at top level; empty when it does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    binder = _Binder()
    binder.visit(tree)
    return binder.names


def used_names(code: str) -> set[str]:
    """The names `code` reads anywhere (function bodies included)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}


def gap_reason(exc: BaseException, network_message: str) -> tuple[str, str] | None:
    """("missing" | "network", reason) when `exc` says the cell lacks a package or the network."""
    for error in _chain(exc):
        if isinstance(error, MissingPackageError):
            return "missing", str(error)
        if isinstance(error, ModuleNotFoundError) and not_installed(error.name):
            package = (error.name or "").split(".")[0]
            return "missing", f"needs the {package} package, which is not installed"
    for error in _chain(exc):
        if network_message in str(error):  # our own guard: nothing more to say
            return "network", "needs the network, which d2lkb cuts off for snippets"
        if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network", f"needs the network, which d2lkb cuts off for snippets: {type(exc).__name__}: {exc}"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, its causes and contexts, and a URLError's reason."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop()
        if error is None or any(error is s for s in seen) or len(seen) > 20:
            continue
        seen.append(error)
        reason = getattr(error, "reason", None)
        todo += [error.__cause__, error.__context__, reason if isinstance(reason, BaseException) else None]
    return seen


class Tabs:
    """d2lbook's `tab` module as the book's cells use it, with `framework` selected."""

    def __init__(self, framework: str):
        self.framework = framework

    def selected(self, *tabs: Any) -> bool:
        if len(tabs) == 1 and isinstance(tabs[0], list | tuple):
            tabs = tuple(tabs[0])
        return self.framework in tabs

    def interact_select(self, *_tabs: Any) -> None:
        return None

    def select_tab(self, _tab: Any = None) -> None:
        return None

    def __repr__(self) -> str:
        return f"<d2lbook tab: {self.framework} selected by d2lkb>"


class Shell:
    """What `get_ipython()` returns: the few magics `d2lkb.checks.cells` lets through."""

    def __init__(self, namespace: dict[str, Any], tabs: Tabs, number: list[int]):
        self.namespace = namespace
        self.tabs = tabs
        self.number = number  # [the number of the snippet running now], updated by the runner

    def run_line_magic(self, name: str, line: str) -> Any:
        if name in ("matplotlib", "config"):
            return None  # plots go to matplotlib's Agg backend; nothing is shown
        if name == "load_ext" and line.strip() == "d2lbook.tab":
            self.namespace["tab"] = self.tabs
            return None
        if name in ("time", "timeit"):
            started = time.perf_counter()
            try:
                return eval(compile(line, f"<%{name}>", "eval"), self.namespace)
            except SyntaxError:
                exec(compile(line, f"<%{name}>", "exec"), self.namespace)
                return None
            finally:
                self._timing(started)
        if name in ("pinfo", "pinfo2"):
            help(eval(compile(line, "<?>", "eval"), self.namespace))
            return None
        raise NotImplementedError(f"the IPython magic %{name} is not emulated by d2lkb")

    def run_cell_magic(self, name: str, line: str, cell: str) -> Any:
        if name in ("time", "timeit"):
            started = time.perf_counter()
            try:
                execute(cell, "python", self.namespace, f"<%%{name} cell>", self.number[0])
            finally:
                self._timing(started)
            return None
        raise NotImplementedError(f"the IPython cell magic %%{name} is not emulated by d2lkb")

    def system(self, command: str) -> None:
        """`!command`: run by the shell in the snippet's working directory, output captured."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        subprocess.run(command, shell=True, check=False)

    def getoutput(self, command: str) -> list[str]:
        """`x = !command`: its output lines."""
        done = subprocess.run(command, shell=True, check=False, capture_output=True, text=True)
        return done.stdout.splitlines()

    @staticmethod
    def _timing(started: float) -> None:
        # On stderr (IPython prints it on stdout): a time can never match an expected output.
        print(f"Wall time: {time.perf_counter() - started:.3g} s", file=sys.stderr)
