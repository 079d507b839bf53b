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

from d2lkb.checks import sandbox
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
    sandbox.die_with_parent(int(os.environ.get(sandbox.PARENT_ENV) or 0) or None)
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
        result = run_sandboxed(source, timeout) if kind == "sympy" else run_task(kind, source, timeout, seed)
        try:
            conn.send((task_id, result))
        except (OSError, ValueError):
            return


SYMPY_MEMORY_MB = 2048  # address space a ```sympy block may add to the checker's
RESULT_BYTES = 1 << 20  # the most a block's sandbox may send back


def run_sandboxed(source: str, timeout: float, limits: sandbox.Limits | None = None) -> FormulaResult:
    """Run a ```sympy block in a forked sandbox (`sandbox.py`): its own temporary folder,
    the KB and the notes out of reach, no network, this checker's state untouched (a block
    cannot patch SymPy for the formulas after it, nor reach this process's connection)."""
    import json
    import shutil
    import signal as signals
    import tempfile

    workdir = tempfile.mkdtemp(prefix="d2lkb-sympy-")
    read_fd, write_fd = os.pipe()
    pid = -1
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_fd)
                layers = sandbox.enter(workdir, limits=limits or sandbox.Limits(), keep_fds=(write_fd,))
                _settle_in(workdir)
                result = run_task("sympy", source, timeout, 0)
                notice = layers.notice()
                detail = result.detail[: RESULT_BYTES // 8] + (f"\n[{notice}]" if notice else "")
                message = json.dumps({"status": result.status.value, "detail": detail, "method": result.method})
                os.write(write_fd, message.encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        write_fd = -1
        data = b""
        while chunk := os.read(read_fd, 1 << 16):
            if len(data) < RESULT_BYTES:
                data += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        for end in (read_fd, write_fd):
            with contextlib.suppress(OSError):
                if end >= 0:
                    os.close(end)
        if pid > 0:
            sandbox.cleanup(pid)
        shutil.rmtree(workdir, ignore_errors=True)
    try:
        answer = json.loads(data)
        return FormulaResult(CheckStatus(answer["status"]), str(answer["detail"]), str(answer.get("method", "")))
    except (ValueError, KeyError, TypeError):
        pass
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signals.SIGXCPU:
        return FormulaResult(CheckStatus.TIMEOUT, f"no result within {timeout:g} s of CPU time (the alarm could"
                                                  " not interrupt it); the checker process was killed")
    how = f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit code {os.WEXITSTATUS(status)}"
    return failed("sympy", f"the block's sandboxed process died ({how})")


def _settle_in(workdir: str) -> None:
    """In the sandbox: work in `workdir`, nothing read from or written to the checker's streams,
    and a memory cap."""
    import resource
    import tempfile

    os.chdir(workdir)
    os.environ["TMPDIR"] = os.environ["HOME"] = workdir
    tempfile.tempdir = None
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    with open("/proc/self/status") as status:
        size = next((int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:")), 0)
    limit = size + SYMPY_MEMORY_MB * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


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
