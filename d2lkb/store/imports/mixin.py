"""`ImportMixin`, one of `KnowledgeBase`'s bases: imports, and undo that stops at them.

Undo takes back the most recent answer in the review log. Answers brought in by an import
are history, not answers to take back: an import records the review log's last id as a
floor, and `undo` never goes below it.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the import code (and fsrs under it) loads only when a command imports
    from d2lkb.store.imports.common import ImportReport

UNDO_FLOOR_META_KEY = "undo_floor"  # reviewlog ids up to this one came with an import


class ImportMixin:
    conn: sqlite3.Connection
    lock: AbstractContextManager

    def import_osr(self, *, strip: bool = False) -> ImportReport:
        """Take over the OSR schedules of the notes folder (see `d2lkb.store.imports.osr`)."""
        from d2lkb.store.imports.osr import import_osr

        report = import_osr(self, strip=strip)  # type: ignore[arg-type]
        self._set_undo_floor()
        return report

    def import_apkg(self, package: Path) -> ImportReport:
        """Import an Anki package into the notes folder (see `d2lkb.store.imports.apkg`)."""
        from d2lkb.store.imports.apkg import import_apkg

        report = import_apkg(self, Path(package))  # type: ignore[arg-type]
        self._set_undo_floor()
        return report

    def _set_undo_floor(self) -> None:
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) SELECT ?, coalesce(max(id), 0) FROM reviewlog",
                              (UNDO_FLOOR_META_KEY,))

    def undo(self) -> int | None:
        """Undo the most recent answer given in d2lkb (never one an import brought in)."""
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (UNDO_FLOOR_META_KEY,)).fetchone()
            last = self.conn.execute("SELECT max(id) FROM reviewlog").fetchone()[0]
            if row is not None and last is not None and last <= int(row[0]):
                return None
            return super().undo()  # type: ignore[misc]
