"""```sympy blocks: Python over SymPy whose asserts are the check (run in a checker process)."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from d2lkb.checks.clock import Alarm as _Alarm
from d2lkb.checks.formulas import FormulaResult
from d2lkb.model import CheckStatus


def run_sympy_block(code: str) -> FormulaResult:
    import ast

    import sympy

    try:
        tree = ast.parse(code, "<sympy>")
        compiled = compile(tree, "<sympy>", "exec")
    except SyntaxError as exc:
        return FormulaResult(CheckStatus.ERROR, f"line {exc.lineno}: SyntaxError: {exc.msg}", method="sympy")
    asserts = sum(isinstance(node, ast.Assert) for node in ast.walk(tree))
    namespace: dict[str, Any] = {"__name__": "__sympy_check__"}
    exec("from sympy import *", namespace)
    namespace.update(sympy=sympy, sp=sympy)
    lines = code.splitlines()
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            exec(compiled, namespace)
    except _Alarm:
        raise
    except AssertionError as exc:
        line = _block_line(exc)
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        message = f": {exc}" if str(exc) else ""
        return FormulaResult(CheckStatus.REFUTED, f"line {line}: {text} failed{message}", method="sympy")
    except BaseException as exc:  # noqa: BLE001 - SystemExit from exit() included
        return FormulaResult(
            CheckStatus.ERROR, f"line {_block_line(exc)}: {type(exc).__name__}: {exc}", method="sympy"
        )
    if not asserts:
        return FormulaResult(CheckStatus.SKIPPED, "no assert statements to check", method="sympy")
    holds = "the assert statement holds" if asserts == 1 else f"all {asserts} assert statements hold"
    return FormulaResult(CheckStatus.VERIFIED, holds, method="sympy")


def _block_line(exc: BaseException) -> int:
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<sympy>":
            line = tb.tb_lineno
        tb = tb.tb_next
    if not line and isinstance(exc, SyntaxError):
        line = exc.lineno or 0
    return line
