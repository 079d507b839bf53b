"""Checker processes for formulas and ```sympy blocks: start, feed, time out, kill.

Work runs in worker processes (fresh interpreters, see ``_Worker``; SymPy is
imported there, never in the caller): a hang or a crash costs one formula, the
worker is killed and restarted, and the caller goes on. Each check also has an
alarm inside the worker (SIGALRM), so most timeouts need no restart.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as _wait_connections
from typing import Any

from d2lkb.checks.formulas import FormulaResult
from d2lkb.model import CheckStatus

KINDS = ("latex", "sympy")


def check_formula(latex: str, *, timeout: float = 10.0, seed: int = 0) -> FormulaResult:
    """Check one LaTeX formula (see the module docstring). Never raises for bad LaTeX.

    Uses a worker process shared by the calls of this process (started on first use).
    """
    with _shared_lock:
        return _shared_checker().check("latex", latex, timeout=timeout, seed=seed)


def check_sympy_block(code: str, *, timeout: float = 10.0) -> FormulaResult:
    """Run a ```sympy block; ``verified`` when all its asserts hold."""
    with _shared_lock:
        return _shared_checker().check("sympy", code, timeout=timeout)


class FormulaChecker:
    """Owns the worker processes; use as a context manager.

    ``check_many(items)`` takes ``(key, kind, source)`` with kind ``"latex"`` or
    ``"sympy"`` and yields ``(key, FormulaResult)`` as results complete (with
    ``jobs > 1`` not in input order). ``on_result(key, result)`` is called for each.
    """

    def __init__(
        self,
        timeout: float = 10.0,
        jobs: int = 1,
        *,
        seed: int = 0,
        on_result: Callable[[Any, FormulaResult], None] | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.timeout = timeout
        self.jobs = jobs
        self.seed = seed
        self.on_result = on_result
        self.startup_timeout = startup_timeout
        self._workers: list[_Worker] = []
        self._broken: str | None = None  # why workers cannot start
        self._startup_failures = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __enter__(self) -> FormulaChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers."""
        for worker in self._workers:
            worker.stop()
        self._workers = []

    def check(
        self, kind: str, source: str, *, timeout: float | None = None, seed: int | None = None
    ) -> FormulaResult:
        """Check one item synchronously."""
        for _, result in self._run([(None, kind, source)], timeout, seed):
            return result
        raise AssertionError("no result")  # pragma: no cover

    def check_many(self, items: Iterable[tuple[Any, str, str]]) -> Iterator[tuple[Any, FormulaResult]]:
        """Check ``(key, kind, source)`` items; yield ``(key, result)`` as they complete."""
        yield from self._run(items, None, None)

    # -- scheduling ------------------------------------------------------------------------------

    def _run(
        self, items: Iterable[tuple[Any, str, str]], timeout: float | None, seed: int | None
    ) -> Iterator[tuple[Any, FormulaResult]]:
        timeout = self.timeout if timeout is None else timeout
        seed = self.seed if seed is None else seed
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this FormulaChecker is already checking; use one per thread")
        try:
            it = iter(items)
            exhausted = False
            try:
                while True:
                    if self._broken is None:
                        self._start_workers()
                    # hand out work
                    for worker in self._idle():
                        item = next(it, None)
                        if item is None:
                            exhausted = True
                            break
                        key, kind, source = item
                        if kind not in KINDS:
                            raise ValueError(f"unknown kind {kind!r} for {key!r}; expected one of {KINDS}")
                        worker.send(next(self._ids), key, kind, source, timeout, seed)
                    if self._broken is not None and not exhausted:
                        for key, kind, _source in it:
                            yield self._emit(
                                key, _failed(kind, f"the formula checker could not start: {self._broken}")
                            )
                        exhausted = True
                    busy = [w for w in self._workers if w.task is not None]
                    starting = [w for w in self._workers if not w.ready]
                    if exhausted and not busy:
                        return
                    deadlines = [w.task.hard_deadline for w in busy if w.task] + [
                        w.start_deadline for w in starting
                    ]
                    if deadlines:
                        _wait_connections(
                            [w.conn for w in busy + starting],
                            timeout=max(0.0, min(deadlines) - time.monotonic()),
                        )
                    for worker in busy + starting:
                        yield from self._collect(worker)
            finally:
                # an abandoned generator leaves work in flight: drop those workers
                for worker in [w for w in self._workers if w.task is not None]:
                    self._discard(worker)
        finally:
            self._lock.release()

    def _idle(self) -> list[_Worker]:
        return [w for w in self._workers if w.ready and w.task is None]

    def _start_workers(self) -> None:
        self._workers = [w for w in self._workers if w.alive()]
        while len(self._workers) < self.jobs:
            self._workers.append(_Worker(self.startup_timeout))

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        if worker in self._workers:
            self._workers.remove(worker)

    def _emit(self, key: Any, result: FormulaResult) -> tuple[Any, FormulaResult]:
        if self.on_result is not None:
            self.on_result(key, result)
        return key, result

    def _collect(self, worker: _Worker) -> Iterator[tuple[Any, FormulaResult]]:
        """Take what a worker has to say, or give up on it when it is past its deadline."""
        now = time.monotonic()
        message: Any = None
        if worker.conn.poll(0):
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                message = ("died",)
        elif not worker.is_alive():
            message = ("died",)
        if message is None:
            task = worker.task
            if task is not None and now >= task.hard_deadline:
                self._discard(worker)
                seconds = round(now - task.started, 3)
                detail = f"no result within {task.timeout:g} s; the checker process was restarted"
                yield self._emit(task.key, FormulaResult(CheckStatus.TIMEOUT, detail, seconds=seconds))
            elif not worker.ready and now >= worker.start_deadline:
                self._discard(worker)
                self._startup_failed(f"no answer within {self.startup_timeout:g} s")
            return
        if message[0] == "ready":
            worker.ready = True
            self._startup_failures = 0
            return
        if message[0] == "failed":
            self._discard(worker)
            self._startup_failed(message[1])
            return
        if message[0] == "died":
            task = worker.task
            self._discard(worker)
            code = worker.exitcode
            if task is None:
                why = worker.stderr_tail()
                self._startup_failed(f"the worker process exited (code {code})" + (f": {why}" if why else ""))
                return
            seconds = round(now - task.started, 3)
            yield self._emit(
                task.key,
                replace(_failed(task.kind, f"the checker process died (exit code {code})"), seconds=seconds),
            )
            return
        task_id, result = message
        task = worker.task
        if task is None or task.id != task_id:  # pragma: no cover - stale answer
            return
        worker.task = None
        yield self._emit(task.key, replace(result, seconds=round(now - task.started, 3)))

    def _startup_failed(self, reason: str) -> None:
        self._startup_failures += 1
        if self._startup_failures >= 2:
            self._broken = reason


def _failed(kind: str, reason: str) -> FormulaResult:
    status = CheckStatus.ERROR if kind == "sympy" else CheckStatus.UNPARSED
    return FormulaResult(status, reason)


@dataclass
class _Task:
    id: int
    key: Any
    kind: str
    timeout: float
    started: float
    hard_deadline: float


class _Worker:
    """A worker process and the task it is working on (parent side).

    A fresh interpreter (``python -c``) talking over a socket pair with
    ``multiprocessing.connection``: like the ``spawn`` start method, except that
    it does not re-run the caller's ``__main__`` (multiprocessing's spawn and
    forkserver do, which breaks scripts without an ``if __name__ == "__main__"``
    guard, and would import the caller's heavy modules once more).
    """

    def __init__(self, startup_timeout: float) -> None:
        ours, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [*sys.path, env.get("PYTHONPATH", "")] if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-c", _WORKER_COMMAND, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False
        self.start_deadline = time.monotonic() + startup_timeout
        self.task: _Task | None = None

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def alive(self) -> bool:
        return self.is_alive() or self.conn.poll(0)

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else ""
        return ""

    def send(self, task_id: int, key: Any, kind: str, source: str, timeout: float, seed: int) -> None:
        now = time.monotonic()
        # the worker's own alarm fires at `timeout`; the kill is for code that ignores it
        grace = max(2.0, 0.2 * timeout)
        self.task = _Task(task_id, key, kind, timeout, now, now + timeout + grace)
        self.conn.send((task_id, kind, source, timeout, seed))

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError, subprocess.TimeoutExpired):
            if self.task is None and self.is_alive():
                self.conn.send(None)
                self.process.wait(1.0)
        self.kill()

    def kill(self) -> None:
        if self.is_alive():
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5.0)
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(OSError):
            self._stderr.close()


_WORKER_COMMAND = "import sys; from d2lkb.checks.pool import _worker_main; _worker_main(int(sys.argv[1]))"

_shared: FormulaChecker | None = None
_shared_lock = threading.Lock()  # the shared checker serves one call at a time


def _shared_checker() -> FormulaChecker:
    global _shared
    if _shared is None:
        _shared = FormulaChecker()
        atexit.register(_shared.close)
    return _shared




# =================================================================================================
# Worker process side. SymPy is imported from here on, inside functions only.


def _worker_main(fd: int) -> None:
    """Entry point of a worker process: answer tasks on the connection at ``fd``."""
    from d2lkb.checks import formulas
    from d2lkb.checks.clock import raise_alarm
    conn = Connection(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which kills us
    signal.signal(signal.SIGALRM, raise_alarm)
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
        result = _run_task(kind, source, timeout, seed)
        try:
            conn.send((task_id, result))
        except (OSError, ValueError):
            return


def _run_task(kind: str, source: str, timeout: float, seed: int) -> FormulaResult:
    from d2lkb.checks.clock import Alarm, Clock
    from d2lkb.checks.formulas import check_latex
    from d2lkb.checks.sympy_blocks import run_sympy_block

    clock = Clock(timeout)
    try:
        with clock.limit():
            if kind == "sympy":
                return run_sympy_block(source)
            return check_latex(source, clock, seed)
    except Alarm:
        where = f" (while {clock.stage})" if clock.stage else ""
        return FormulaResult(CheckStatus.TIMEOUT, f"no result within {timeout:g} s{where}")
    except RecursionError:
        return _failed(kind, "SymPy exceeded the recursion limit")
    except Exception as exc:  # noqa: BLE001 - a bug or a SymPy surprise must not kill the worker
        return _failed(kind, f"internal error: {type(exc).__name__}: {exc}")
