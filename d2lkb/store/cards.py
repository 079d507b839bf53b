"""The card browser's side of the store: one row per card with its schedule, a card's review
history, and the actions a browser applies to many cards at once (reset, reschedule, bury)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from d2lkb.config import Config

BROWSE_LIMIT = 5000  # rows listed at once (the status line says when there are more)


@dataclass(frozen=True)
class CardRow:
    id: int
    kind: str
    front: str
    path: str
    line: int
    state: int  # 0 new, 1 learning, 2 review, 3 relearning
    due: int  # unix seconds
    interval_days: float | None  # last review -> due (None for new cards)
    stability: float | None
    difficulty: float | None
    reps: int
    lapses: int
    added: int  # unix seconds
    suspended: bool
    buried: bool


@dataclass(frozen=True)
class HistoryRow:
    reviewed_at: datetime
    rating: int
    state_before: int
    interval_days: float  # what the answer scheduled
    stability: float | None
    difficulty: float | None
    duration_ms: int


class CardsMixin:
    conn: sqlite3.Connection
    config: Config
    lock: AbstractContextManager

    if TYPE_CHECKING:
        def now(self) -> datetime: ...
        def card_ids(self, query: str | None) -> list[int]: ...
        def _day(self, now: datetime) -> tuple[datetime, datetime]: ...

    def card_rows(self, query: str | None, limit: int = BROWSE_LIMIT) -> tuple[list[CardRow], int]:
        """(rows, total): the live cards a query selects (all when empty), in note order."""
        with self.lock:
            now = int(self.now().timestamp())
            ids = None if not query or not query.strip() else self.card_ids(query)
            sql = ("SELECT id, kind, front, path, line, state, due, last_review, stability, difficulty, reps, lapses,"
                   " created_at, suspended, buried_until FROM card WHERE retired_at IS NULL")
            if ids is None:
                rows = self.conn.execute(sql + " ORDER BY path, line, id").fetchall()
            else:
                rows = self.conn.execute(sql + " AND id IN (SELECT value FROM json_each(?)) ORDER BY path, line, id",
                                         (json.dumps(ids),)).fetchall()
            out = [CardRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                           (r[6] - r[7]) / 86400 if r[7] is not None and r[5] != 0 else None,
                           r[8], r[9], r[10], r[11], r[12], bool(r[13]), r[14] is not None and r[14] > now)
                   for r in rows[:limit]]
            return out, len(rows)

    def card_schedule(self, card_id: int) -> tuple[float | None, float | None, int | None, int]:
        """(stability, difficulty, last review, added) of a card: its FSRS memory state."""
        with self.lock:
            row = self.conn.execute("SELECT stability, difficulty, last_review, created_at FROM card WHERE id = ?",
                                    (card_id,)).fetchone()
            if row is None:
                raise ValueError(f"no card with id {card_id}")
            return row[0], row[1], row[2], row[3]

    def card_history(self, card_id: int) -> list[HistoryRow]:
        """Every logged answer of a card, oldest first."""
        with self.lock:
            return [HistoryRow(datetime.fromtimestamp(r[0], UTC), r[1], r[2], (r[3] - r[0]) / 86400, r[4], r[5], r[6])
                    for r in self.conn.execute(
                        "SELECT reviewed_at, rating, state_before, due_after, stability_after, difficulty_after,"
                        " duration_ms FROM reviewlog WHERE card_id = ? ORDER BY reviewed_at, id", (card_id,))]

    def reset_cards(self, ids: Iterable[int]) -> int:
        """Make cards new again (the schedule forgotten; the review log is kept)."""
        with self.lock:
            now = int(self.now().timestamp())
            return self.conn.executemany(
                "UPDATE card SET state = 0, step = 0, stability = NULL, difficulty = NULL, due = ?, last_review = NULL,"
                " reps = 0, lapses = 0, buried_until = NULL WHERE id = ? AND retired_at IS NULL",
                [(now, i) for i in ids]).rowcount

    def reschedule_cards(self, ids: Iterable[int], days: int) -> int:
        """Make cards due `days` days from today (0: today); new cards stay new."""
        with self.lock:
            day_start = self._day(self.now())[0]
            due = int((day_start + timedelta(days=max(0, days), hours=1)).timestamp())
            return self.conn.executemany(
                "UPDATE card SET due = ? WHERE id = ? AND state != 0 AND retired_at IS NULL",
                [(due, i) for i in ids]).rowcount

    def bury_cards(self, ids: Iterable[int]) -> int:
        with self.lock:
            end = int(self._day(self.now())[1].timestamp())
            return self.conn.executemany("UPDATE card SET buried_until = ? WHERE id = ?",
                                         [(end, i) for i in ids]).rowcount

    def set_cards_suspended(self, ids: Iterable[int], suspended: bool) -> int:
        with self.lock:
            return self.conn.executemany("UPDATE card SET suspended = ? WHERE id = ?",
                                         [(int(suspended), i) for i in ids]).rowcount
