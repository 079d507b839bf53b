"""WAL checkpoints on a thread of their own, so that an answer's commit never waits for one.

In WAL mode a commit appends the changed pages to `kb.sqlite-wal`; a *checkpoint* copies them
back into `kb.sqlite` and, with `synchronous = NORMAL`, fsyncs both files. SQLite runs one
inside the commit that crosses `wal_autocheckpoint` pages (1,000 by default), which is where an
answer's time went: an answer wrote about 20 pages then, so every ~50th answer paid two fsyncs, on
average most of the cost of a commit (bench/README.md).

Durability does not depend on checkpoints: a committed answer is in the WAL, which is read back
by every connection and after a crash. So the KB's main connection keeps only a far-off
automatic checkpoint as a backstop (`BACKSTOP_PAGES`), and a `Checkpointer` thread, woken after
every `EVERY` commits, runs a PASSIVE checkpoint on a connection of its own: it never blocks a
writer or a reader, and it stops early (to go on next time) where a reader still needs old pages.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

# Commits between two checkpoints: about 1,000 WAL pages (SQLite's own default) of answers, which
# write about 7 pages each. A checkpoint copies each page once however often it changed since the
# last one, so fewer, larger checkpoints copy less per answer (48 commits: 40 us of CPU per answer
# on the bench's 100k-card KB; 144: 28 us).
EVERY = 144
BACKSTOP_PAGES = 16_384  # the main connection's own automatic checkpoint (64 MiB of WAL)


class Checkpointer:
    """Checkpoints the WAL of the KB file `path` on a daemon thread, started by the first commit."""

    def __init__(self, path: Path, every: int = EVERY):
        self.path = path
        self.every = every
        self.runs = 0  # checkpoints run (tests and the bench read it)
        self.error: str = ""  # the last checkpoint's error, if it failed (it is retried next time)
        self._commits = 0
        self._wake = threading.Condition()
        self._pending = False
        self._idle = True
        self._closed = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """A write transaction of the main connection committed (cheap: a counter)."""
        self._commits += 1
        if self._commits >= self.every:
            self._commits = 0
            self.request()

    def request(self) -> None:
        """Ask for a checkpoint now (on the thread)."""
        with self._wake:
            if self._closed:
                return
            self._pending = True
            self._idle = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="d2lkb-checkpoint", daemon=True)
                self._thread.start()
            self._wake.notify()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the requested checkpoints have run; False if `timeout` passed first."""
        with self._wake:
            return self._wake.wait_for(lambda: self._idle or self._closed, timeout)

    def close(self) -> None:
        """Stop the thread (after the checkpoint it is running, if any)."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                with self._wake:
                    self._wake.wait_for(lambda: self._pending or self._closed)
                    if self._closed:
                        return
                    self._pending = False
                try:
                    if conn is None:
                        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                        conn.execute("PRAGMA busy_timeout = 0")
                        conn.execute("PRAGMA synchronous = NORMAL")
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                    self.error = ""
                except sqlite3.Error as exc:  # busy, or the file went away: the next request retries
                    self.error = str(exc)
                with self._wake:
                    if not self._pending:
                        self._idle = True
                        self._wake.notify_all()
        finally:
            if conn is not None:
                conn.close()
            with self._wake:
                self._idle = True
                self._wake.notify_all()
