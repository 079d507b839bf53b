"""An exclusive advisory lock on a side file, across processes (POSIX `flock`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path | str, mode: int = 0o644) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if missing) for the block. The OS releases it
    if the process dies. Raises `OSError` when the file cannot be opened or created."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            pass
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
