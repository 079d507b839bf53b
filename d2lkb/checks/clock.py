"""Time limits inside a checker process, counted in the process's own CPU time.

A formula's limit is CPU seconds, not wall seconds, so that its result does not
depend on how busy the machine is: a check that needs 3 s of CPU gets them
whether it runs alone (3 s) or beside two busy loops (6 s or more of wall time).

- ``Clock.limit()`` arms ``ITIMER_PROF`` (it counts the process's user + system
  time, all threads), whose ``SIGPROF`` raises `Alarm` in the main thread. The
  worker installs the handler (`install`).
- Python runs a signal handler only between bytecodes, so a long call inside C
  code (a huge integer power in gmpy, say) cannot be interrupted by it. For that
  `cpu_backstop` sets ``RLIMIT_CPU`` a little past the limit: the kernel then
  ends the process with ``SIGXCPU``, still counted in CPU time, and the parent
  reports a timeout.
- Sleeping or blocking uses no CPU, so neither fires for it: the parent's wall
  clock backstop (``pool.py``, several times the limit) covers that case.
"""

from __future__ import annotations

import contextlib
import math
import resource
import signal
import time
from collections.abc import Iterator
from typing import Any

#: The signal a CPU-time limit sends (ITIMER_PROF).
SIGNAL = signal.SIGPROF


class Alarm(BaseException):
    """Raised when a CPU-time limit fires; a BaseException so SymPy's `except Exception` cannot swallow it."""


def raise_alarm(signum: int, frame: Any) -> None:
    raise Alarm()


def install() -> None:
    """In a worker's main thread: make the limits' signal raise `Alarm`; no core files on SIGXCPU."""
    signal.signal(SIGNAL, raise_alarm)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def wall_backstop(timeout: float) -> float:
    """The default wall-clock limit beside a limit of `timeout` CPU seconds: enough for a
    check that gets a sixth of a core, and 30 s more for starting up and load spikes."""
    return 6 * timeout + 30


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, all threads."""
    return time.process_time()


def cpu_backstop(seconds: float | None) -> None:
    """Let the kernel end this process once it has used `seconds` more CPU time (None: no limit).

    RLIMIT_CPU counts whole seconds since the process started, so the limit is the
    time used so far plus `seconds`, rounded up.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = resource.RLIM_INFINITY if seconds is None else math.ceil(cpu_seconds() + seconds) + 1
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
        soft = hard
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


class Clock:
    """Nested CPU-time limits of one task in the worker (see the module docstring).

    ``timeout`` is in CPU seconds from the clock's creation; ``limit(seconds)`` narrows
    it for a stage; ``stage`` names what runs now, for the timeout's detail.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = cpu_seconds() + timeout
        self._stack: list[float] = []
        self.stage = ""

    def expired(self) -> bool:
        return cpu_seconds() >= self.deadline

    def remaining(self) -> float:
        return self.deadline - cpu_seconds()

    @contextlib.contextmanager
    def limit(self, seconds: float | None = None) -> Iterator[None]:
        deadline = self.deadline if seconds is None else min(self.deadline, cpu_seconds() + seconds)
        self._stack.append(deadline)
        self._arm()
        try:
            yield
        finally:
            self._stack.pop()
            self._arm()

    def _arm(self) -> None:
        if not self._stack:
            signal.setitimer(signal.ITIMER_PROF, 0)
            return
        signal.setitimer(signal.ITIMER_PROF, max(min(self._stack) - cpu_seconds(), 0.001))
