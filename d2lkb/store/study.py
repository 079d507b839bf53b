"""What a review session needs beyond the daily queue: session-scoped undo (of one given answer,
never an earlier session's), unburying, a card's latest check result, and studying more than
is due (review ahead, cram, extra new cards today).

`StudyMixin` is one of `KnowledgeBase`'s bases, next to `ReviewMixin` (whose hot paths it leaves alone).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from d2lkb.config import Config

STUDY_LIMIT = 500  # cards in one ahead/cram session at most
EXTRA_NEW_META_KEY = "extra_new_today"  # {"day": start of the review day (epoch s), "n": cards added}


@dataclass(frozen=True)
class CheckResultView:
    status: str
    detail: str  # the diff, the counterexample, the traceback
    output: str  # a snippet's actual output
    expected: str  # a snippet's expected output, as written in the note


class StudyMixin:
    conn: sqlite3.Connection
    config: Config
    lock: AbstractContextManager

    if TYPE_CHECKING:
        def now(self) -> datetime: ...
        def card_ids(self, query: str | None) -> list[int]: ...
        def undo(self) -> int | None: ...
        def _day(self, now: datetime) -> tuple[datetime, datetime]: ...

    # -- session undo ------------------------------------------------------
    def last_review_id(self) -> int | None:
        """Id of the newest review-log row (what an answer just wrote)."""
        with self.lock:
            return self.conn.execute("SELECT max(id) FROM reviewlog").fetchone()[0]

    def undo_review(self, log_id: int) -> int | None:
        """Undo the answer logged as `log_id` if it is still the newest one; returns its card id,
        None when something else was answered since (undo goes in order, newest first)."""
        with self.lock:
            if self.last_review_id() != log_id:
                return None
            return self.undo()

    def unbury(self, card_id: int, until: int | None = None) -> None:
        """Take back a bury: the card's `buried_until` as it was (`until`, None: not buried)."""
        with self.lock:
            self.conn.execute("UPDATE card SET buried_until = ? WHERE id = ?", (until, card_id))

    def buried_until(self, card_id: int) -> int | None:
        with self.lock:
            row = self.conn.execute("SELECT buried_until FROM card WHERE id = ?", (card_id,)).fetchone()
            return row[0] if row else None

    # -- checks on the card -------------------------------------------------
    def check_result(self, card_id: int) -> CheckResultView | None:
        """The latest check of a formula or snippet card (None for other cards or when never checked)."""
        with self.lock:
            row = self.conn.execute(
                "SELECT r.status, r.detail, r.output FROM doc d JOIN checkresult r ON r.check_hash = d.check_hash"
                " WHERE d.kind = 'card' AND d.card_id = ? ORDER BY r.checked_at DESC, r.id DESC LIMIT 1",
                (card_id,)).fetchone()
            if row is None:
                return None
            expected = self.conn.execute(
                "SELECT s.expected FROM card c JOIN snippet s ON s.note_id = c.note_id AND s.idx = c.snippet_idx"
                " WHERE c.id = ?", (card_id,)).fetchone()
            return CheckResultView(row[0], row[1] or "", row[2] or "", (expected[0] or "") if expected else "")

    # -- studying more ------------------------------------------------------
    def ahead_card_ids(self, query: str | None, days: int) -> list[int]:
        """Review and learning cards not due today but within the next `days` days, soonest first
        (answering them reschedules them: FSRS counts the shorter elapsed time)."""
        with self.lock:
            now = self.now()
            end = self._day(now)[1]
            until = int((end + timedelta(days=max(0, days))).timestamp())
            allowed = None if not query or not query.strip() else set(self.card_ids(query))
            rows = self.conn.execute(
                "SELECT id FROM card WHERE state IN (1, 2, 3) AND retired_at IS NULL AND suspended = 0"
                " AND (buried_until IS NULL OR buried_until <= ?) AND due >= ? AND due < ? ORDER BY due, id",
                (int(now.timestamp()), int(end.timestamp()), until)).fetchall()
            return [r[0] for r in rows if allowed is None or r[0] in allowed][:STUDY_LIMIT]

    def cram_card_ids(self, query: str | None) -> list[int]:
        """Every live, unsuspended card a query selects (new ones too), in note order: a cram
        session shows them without touching their schedule."""
        with self.lock:
            allowed = None if not query or not query.strip() else set(self.card_ids(query))
            rows = self.conn.execute(
                "SELECT id FROM card WHERE retired_at IS NULL AND suspended = 0 ORDER BY path, line, id").fetchall()
            return [r[0] for r in rows if allowed is None or r[0] in allowed][:STUDY_LIMIT]

    def extra_new_today(self, n: int) -> int:
        """Raise today's new-card limit by `n` (added to what was already added today), kept in the
        KB until the review day ends: a restart keeps it, the config file is left as it is. Returns
        today's limit. The kept queue and counts see the write and are rebuilt."""
        with self.lock:
            day = self._day(self.now())
            extra = self._extra_new(day) + max(0, n)
            self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                              (EXTRA_NEW_META_KEY, json.dumps({"day": int(day[0].timestamp()), "n": extra})))
            return self.config.review.new_per_day + extra

    def _extra_new(self, day: tuple[datetime, datetime]) -> int:
        """New cards added to today's limit (`extra_new_today`); 0 on another day."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (EXTRA_NEW_META_KEY,)).fetchone()
        try:
            saved = json.loads(row[0]) if row else {}
            return max(0, int(saved["n"])) if saved.get("day") == int(day[0].timestamp()) else 0
        except (ValueError, KeyError, TypeError, AttributeError):
            return 0
