"""Time limits inside a checker process, enforced with SIGALRM (main thread only)."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from typing import Any


class Alarm(BaseException):
    """Raised by SIGALRM; a BaseException so SymPy's `except Exception` cannot swallow it."""


def raise_alarm(signum: int, frame: Any) -> None:
    raise Alarm()


class Clock:
    """Nested time limits in the worker, enforced with SIGALRM."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self._stack: list[float] = []
        self.stage = ""

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @contextlib.contextmanager
    def limit(self, seconds: float | None = None) -> Iterator[None]:
        deadline = self.deadline if seconds is None else min(self.deadline, time.monotonic() + seconds)
        self._stack.append(deadline)
        self._arm()
        try:
            yield
        finally:
            self._stack.pop()
            self._arm()

    def _arm(self) -> None:
        if not self._stack:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        signal.setitimer(signal.ITIMER_REAL, max(min(self._stack) - time.monotonic(), 0.001))
