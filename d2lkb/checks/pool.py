"""Checker processes for formulas and ```sympy blocks: start, feed, time out, kill.

Work runs in worker processes (fresh interpreters, see ``_Worker`` here and
``pool_worker.py`` for their side; SymPy is imported there, never in the caller): a hang or a crash costs one formula, the
worker is killed and replaced, and the caller goes on.

Time limits are designed so that a result does not depend on how busy the machine is:

- ``timeout`` (10 s by default) is CPU time of the worker, counted from the task's
  start (see ``clock.py``): ITIMER_PROF raises an alarm inside the worker, and
  RLIMIT_CPU ends a worker stuck in C code a little later (SIGXCPU). A formula that
  needs 3 s of CPU gets them on an idle machine and beside busy loops alike.
- ``wall_timeout`` (``6 * timeout + 30`` s by default) is the parent's backstop for
  what uses no CPU: a block that sleeps or blocks, or one that ignores the alarm and
  its signals. The parent then kills the worker's process group (SIGKILL); it never
  waits on a worker for more than a few seconds, and ``close()`` cannot fail.
- A task that timed out, or whose worker died, is tried once more (``retries``) in a
  fresh worker before ``timeout`` (or the crash) is reported. The retry starts from a
  known state (no SymPy caches filled by other formulas), so the outcome does not
  depend on which worker the scheduler happened to give the formula to.
- Workers run with ``PYTHONHASHSEED=0`` (SymPy's term orders, and the time they take,
  follow string hashes) and in a session of their own: a Ctrl-C in the terminal goes
  to the parent only, which kills them on its way out. A worker whose parent dies is
  killed by the kernel (PR_SET_PDEATHSIG).
- A ```sympy block runs in a sandbox forked from the worker (``pool_worker.run_sandboxed``,
  ``sandbox.py``): no network, the KB and notes out of reach, its own temporary folder,
  a memory cap, and nothing it changes (SymPy itself included) reaches the next task.
- Starting a worker (importing SymPy) may take ``startup_timeout`` (300 s) of wall time.
- ``jobs`` defaults to the cores this process may run on (``available_cores()``).
"""

from __future__ import annotations

import atexit
import collections
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

from d2lkb.checks.clock import wall_backstop
from d2lkb.checks.formulas import FormulaResult
from d2lkb.checks.pool_worker import failed as _failed
from d2lkb.checks.sandbox import PARENT_ENV
from d2lkb.model import CheckStatus

KINDS = ("latex", "sympy")
KILL_WAIT = 5.0  # seconds to wait for a SIGKILLed worker to be reaped (then it is left to the OS)


def available_cores() -> int:
    """The number of CPU cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


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


@dataclass
class _Job:
    key: Any
    kind: str
    source: str
    timeout: float  # CPU seconds
    wall_timeout: float
    seed: int
    attempt: int = 1
    spent: float = 0.0  # wall seconds of the earlier attempts
    first: FormulaResult | None = None  # what the first attempt ended with


class FormulaChecker:
    """Owns the worker processes; use as a context manager.

    ``check_many(items)`` takes ``(key, kind, source)`` with kind ``"latex"`` or
    ``"sympy"`` and yields ``(key, FormulaResult)`` as results complete (with
    ``jobs > 1`` not in input order). ``on_result(key, result)`` is called for each.
    Limits: see the module docstring.
    """

    def __init__(
        self,
        timeout: float = 10.0,
        jobs: int | None = None,
        *,
        seed: int = 0,
        on_result: Callable[[Any, FormulaResult], None] | None = None,
        startup_timeout: float = 300.0,
        wall_timeout: float | None = None,
        retries: int = 1,
    ) -> None:
        jobs = available_cores() if jobs is None else jobs
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        if wall_timeout is not None and wall_timeout <= 0:
            raise ValueError(f"wall_timeout must be positive, got {wall_timeout}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
        self.timeout = timeout
        self.jobs = jobs
        self.seed = seed
        self.on_result = on_result
        self.startup_timeout = startup_timeout
        self.wall_timeout = wall_timeout
        self.retries = retries
        self._workers: list[_Worker] = []
        self._retry: collections.deque[_Job] = collections.deque()  # each waits for a fresh worker
        self._broken: str | None = None  # why workers cannot start
        self._startup_failures = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __enter__(self) -> FormulaChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill the workers (they hold no state worth a graceful exit). Never raises."""
        workers, self._workers = self._workers, []
        self._retry.clear()
        for worker in workers:
            worker.signal_kill()
        for worker in workers:
            worker.kill()

    def check(
        self,
        kind: str,
        source: str,
        *,
        timeout: float | None = None,
        seed: int | None = None,
        wall_timeout: float | None = None,
    ) -> FormulaResult:
        """Check one item synchronously."""
        for _, result in self._run([(None, kind, source)], timeout, seed, wall_timeout):
            return result
        raise AssertionError("no result")  # pragma: no cover

    def check_many(self, items: Iterable[tuple[Any, str, str]]) -> Iterator[tuple[Any, FormulaResult]]:
        """Check ``(key, kind, source)`` items; yield ``(key, result)`` as they complete."""
        yield from self._run(items, None, None, None)

    # -- scheduling ------------------------------------------------------------------------------

    def _run(
        self,
        items: Iterable[tuple[Any, str, str]],
        timeout: float | None,
        seed: int | None,
        wall_timeout: float | None,
    ) -> Iterator[tuple[Any, FormulaResult]]:
        timeout = self.timeout if timeout is None else timeout
        seed = self.seed if seed is None else seed
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        wall = wall_timeout or self.wall_timeout or wall_backstop(timeout)
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this FormulaChecker is already checking; use one per thread")
        try:
            it = iter(items)
            exhausted = False
            try:
                while True:
                    if self._broken is None:
                        self._start_workers()
                    exhausted = self._hand_out(it, exhausted, timeout, wall, seed)
                    if self._broken is not None:
                        yield from self._flush_broken(it, exhausted)
                        exhausted = True
                    busy = [w for w in self._workers if w.task is not None]
                    starting = [w for w in self._workers if not w.ready]
                    if exhausted and not busy and not self._retry:
                        return
                    deadlines = [w.task.wall_deadline for w in busy if w.task] + [
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
                # an abandoned generator (or Ctrl-C) leaves work in flight: drop those workers
                for worker in [w for w in self._workers if w.task is not None]:
                    self._discard(worker)
                self._retry.clear()
        finally:
            self._lock.release()

    def _hand_out(
        self, it: Iterator[tuple[Any, str, str]], exhausted: bool, timeout: float, wall: float, seed: int
    ) -> bool:
        """Give every idle worker a task (retries to fresh workers first); whether `it` is exhausted."""
        for worker in self._idle():
            if self._retry and worker.fresh:
                worker.send(next(self._ids), self._retry.popleft())
                continue
            if exhausted:
                continue
            item = next(it, None)
            if item is None:
                exhausted = True
                continue
            key, kind, source = item
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r} for {key!r}; expected one of {KINDS}")
            worker.send(next(self._ids), _Job(key, kind, source, timeout, wall, seed))
        if self._retry and not any(w.fresh for w in self._workers):
            # every worker has run something: make room for a fresh one (cannot happen
            # while each retry comes with the replacement of the worker it left)
            idle = self._idle()
            if idle:
                self._discard(idle[0])
                if self._broken is None:
                    self._start_workers()
        return exhausted

    def _flush_broken(
        self, it: Iterator[tuple[Any, str, str]], exhausted: bool
    ) -> Iterator[tuple[Any, FormulaResult]]:
        """No worker can start: what waits gets the reason (a retry keeps its first result)."""
        while self._retry:
            job = self._retry.popleft()
            assert job.first is not None
            yield self._emit(job.key, replace(job.first, seconds=round(job.spent, 3)))
        if not exhausted:
            for key, kind, _source in it:
                yield self._emit(key, _failed(kind, f"the formula checker could not start: {self._broken}"))

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
            if task is not None and now >= task.wall_deadline:
                cpu = worker.cpu_seconds()
                self._discard(worker)
                used = ""
                if cpu is not None and task.cpu_start is not None:
                    used = f"; it had used {cpu - task.cpu_start:.1f} s of CPU"
                detail = (
                    f"no result within {task.job.wall_timeout:g} s of wall-clock time (sleeping, blocked or"
                    f" starved{used}); the checker process was killed"
                )
                yield from self._finish(
                    worker, task, FormulaResult(CheckStatus.TIMEOUT, detail), now, gave_up=True
                )
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
            if code == -signal.SIGXCPU:
                detail = (
                    f"no result within {task.job.timeout:g} s of CPU time (the alarm could not interrupt it);"
                    " the checker process was killed"
                )
                result = FormulaResult(CheckStatus.TIMEOUT, detail)
            else:
                result = _failed(task.job.kind, f"the checker process died (exit code {code})")
            yield from self._finish(worker, task, result, now, gave_up=True)
            return
        task_id, result = message
        task = worker.task
        if task is None or task.id != task_id:  # pragma: no cover - stale answer
            return
        yield from self._finish(worker, task, result, now, gave_up=result.status is CheckStatus.TIMEOUT)

    def _finish(
        self, worker: _Worker, task: _Task, result: FormulaResult, now: float, *, gave_up: bool
    ) -> Iterator[tuple[Any, FormulaResult]]:
        """Emit a task's result, or queue its retry when it timed out or its worker died (`gave_up`)."""
        worker.task = None
        job = task.job
        spent = job.spent + (now - task.started)
        if gave_up and job.attempt <= self.retries:
            self._discard(worker)  # the retry gets a fresh worker; this one's replacement is it
            self._retry.append(replace(job, attempt=job.attempt + 1, spent=spent, first=job.first or result))
            return
        if gave_up and job.attempt > 1:
            again = f"{result.detail} (tried {job.attempt} times, the last in a fresh checker process)"
            result = replace(result, detail=again)
        yield self._emit(job.key, replace(result, seconds=round(spent, 3)))

    def _startup_failed(self, reason: str) -> None:
        self._startup_failures += 1
        if self._startup_failures >= 2:
            self._broken = reason


@dataclass
class _Task:
    id: int
    job: _Job
    started: float
    wall_deadline: float
    cpu_start: float | None  # the worker's CPU time when the task was sent


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
        env["PYTHONHASHSEED"] = "0"
        env[PARENT_ENV] = str(os.getpid())  # the worker dies with this process
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-c", _WORKER_COMMAND, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.ready = False
        self.fresh = True  # has not been given a task yet
        self.start_deadline = time.monotonic() + startup_timeout
        self.task: _Task | None = None

    @property
    def exitcode(self) -> int | None:
        return self.process.poll()

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def alive(self) -> bool:
        return self.is_alive() or self.conn.poll(0)

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the worker has used, from /proc; None where unknown."""
        try:
            with open(f"/proc/{self.process.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else ""
        return ""

    def send(self, task_id: int, job: _Job) -> None:
        """Start `job`; a worker that died meanwhile is noticed by `_collect` (and the job retried)."""
        now = time.monotonic()
        self.fresh = False
        self.task = _Task(task_id, job, now, now + job.wall_timeout, self.cpu_seconds())
        with contextlib.suppress(OSError, ValueError):
            self.conn.send((task_id, job.kind, job.source, job.timeout, job.seed))

    def stop(self) -> None:
        """End the worker, whatever state it is in. Never raises; waits at most `KILL_WAIT` s."""
        self.signal_kill()
        self.kill()

    def signal_kill(self) -> None:
        """Send SIGKILL to the worker's process group (what it started too), without waiting."""
        if self.process.poll() is not None:
            return  # reaped: its pid may belong to someone else now
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.process.kill()

    def kill(self) -> None:
        """Kill the worker and reap it (waiting at most `KILL_WAIT` s); close its pipes. Never raises."""
        try:
            self.signal_kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(KILL_WAIT)
        except Exception:  # noqa: BLE001, S110 - ending a worker must never end the caller
            pass
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(OSError, ValueError):
            self._stderr.close()


_WORKER_COMMAND = "import sys; from d2lkb.checks.pool_worker import main; main(int(sys.argv[1]))"

_shared: FormulaChecker | None = None
_shared_lock = threading.Lock()  # the shared checker serves one call at a time


def _shared_checker() -> FormulaChecker:
    global _shared
    if _shared is None:
        _shared = FormulaChecker(jobs=1)
        atexit.register(_shared.close)
    return _shared
