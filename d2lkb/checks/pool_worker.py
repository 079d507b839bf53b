"""The worker process of `pool.FormulaChecker`: checks formulas and ```sympy blocks sent to it.

Started as ``python -P -c "from d2lkb.checks.pool_worker import main; main(FD)"``
with a socket at FD (``multiprocessing.connection``). SymPy is imported in `main`
and the checkers, never at this module's import (the parent imports it for `failed`).

Protocol: the worker sends ``("ready", pid)`` or ``("failed", reason)`` once, then
answers each ``(task_id, kind, source, timeout, seed)`` with ``(task_id, FormulaResult)``;
``None`` (or end of file) ends it. Limits: `timeout` CPU seconds per task (``clock.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
from multiprocessing.connection import Connection

from d2lkb.checks.formulas import FormulaResult
from d2lkb.model import CheckStatus


def failed(kind: str, reason: str) -> FormulaResult:
    """The result of a task that could not be checked: ``error`` for a block, ``unparsed`` for LaTeX."""
    status = CheckStatus.ERROR if kind == "sympy" else CheckStatus.UNPARSED
    return FormulaResult(status, reason)


def main(fd: int) -> None:
    """Entry point of a worker process: answer tasks on the connection at ``fd``."""
    from d2lkb.checks import clock, formulas

    conn = Connection(fd)
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which kills us
    clock.install()
    try:
        import sympy  # noqa: F401

        try:
            from sympy.parsing.latex import parse_latex

            parse_latex(r"\frac{d}{dx} x^2", strict=True, backend="antlr")
        except ImportError as exc:
            formulas.PARSER_PROBLEM = (
                f"SymPy's LaTeX parser is unavailable ({exc}); install antlr4-python3-runtime==4.11.*"
            )
    except BaseException as exc:  # noqa: BLE001 - report anything, the parent decides
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if message is None:
            return
        task_id, kind, source, timeout, seed = message
        result = run_task(kind, source, timeout, seed)
        try:
            conn.send((task_id, result))
        except (OSError, ValueError):
            return


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (best effort)."""
    import ctypes

    parent = os.getppid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)


def run_task(kind: str, source: str, timeout: float, seed: int) -> FormulaResult:
    from d2lkb.checks.clock import Alarm, Clock, cpu_backstop
    from d2lkb.checks.formulas import check_latex
    from d2lkb.checks.sympy_blocks import run_sympy_block

    clock = Clock(timeout)
    # the alarm needs Python to get back to bytecode; the kernel's limit does not
    cpu_backstop(timeout + max(1.0, 0.25 * timeout))
    try:
        with clock.limit():
            if kind == "sympy":
                return run_sympy_block(source)
            return check_latex(source, clock, seed)
    except Alarm:
        where = f" (while {clock.stage})" if clock.stage else ""
        return FormulaResult(CheckStatus.TIMEOUT, f"no result within {timeout:g} s of CPU time{where}")
    except RecursionError:
        return failed(kind, "SymPy exceeded the recursion limit")
    except Exception as exc:  # noqa: BLE001 - a bug or a SymPy surprise must not kill the worker
        return failed(kind, f"internal error: {type(exc).__name__}: {exc}")
    finally:
        cpu_backstop(None)
