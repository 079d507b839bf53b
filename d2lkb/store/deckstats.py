"""Statistics for any query (a deck, a note, `due:today`...): card counts, the due forecast with
dates, answers, retention per day, and the interval and difficulty distributions FSRS users read."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from d2lkb.review.days import day_start

if TYPE_CHECKING:
    from d2lkb.config import Config

# Interval buckets (days): label, upper bound (exclusive)
INTERVAL_BUCKETS = [("<1d", 1), ("1-2d", 3), ("3-6d", 7), ("1-2w", 15), ("2w-1mo", 31), ("1-3mo", 92),
                    ("3-6mo", 183), ("6mo-1y", 366), (">1y", 10**9)]
DIFFICULTY_BUCKETS = [f"{i}-{i + 1}" for i in range(1, 10)]


@dataclass
class QueryStats:
    query: str | None
    cards: int = 0
    new: int = 0
    learning: int = 0
    review: int = 0
    suspended: int = 0
    forecast: list[tuple[date, int]] = field(default_factory=list)  # (review day, cards due), today first
    answers: dict[int, int] = field(default_factory=dict)  # grade -> count
    retention: list[tuple[date, float | None]] = field(default_factory=list)
    retention_30d: float | None = None
    intervals: list[tuple[str, int]] = field(default_factory=list)
    difficulty: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"query": self.query, "cards": self.cards, "new": self.new, "learning": self.learning,
                "review": self.review, "suspended": self.suspended,
                "forecast": [{"date": d.isoformat(), "due": n} for d, n in self.forecast],
                "answers": {str(k): v for k, v in self.answers.items()},
                "retention_30d": self.retention_30d,
                "intervals": dict(self.intervals), "difficulty": dict(self.difficulty)}


class DeckStatsMixin:
    conn: sqlite3.Connection
    config: Config
    lock: AbstractContextManager

    if TYPE_CHECKING:
        def now(self) -> datetime: ...
        def card_ids(self, query: str | None) -> list[int]: ...
        def _day(self, now: datetime) -> tuple[datetime, datetime]: ...
        review_tz: object

    def query_stats(self, query: str | None, days: int = 30) -> QueryStats:
        """Statistics of the live cards a query selects (all cards when None or empty)."""
        with self.lock:
            now = self.now()
            scope, params = "", {}
            if query and query.strip():
                scope, params = " AND card.id IN (SELECT value FROM json_each(:ids))", {
                    "ids": json.dumps(self.card_ids(query))}
            live = f"card.retired_at IS NULL{scope}"
            out = QueryStats(query or None)
            out.cards, out.new, out.learning, out.review, out.suspended = self.conn.execute(
                "SELECT count(*), coalesce(sum(suspended = 0 AND state = 0), 0),"
                " coalesce(sum(suspended = 0 AND state IN (1, 3)), 0), coalesce(sum(suspended = 0 AND state = 2), 0),"
                f" coalesce(sum(suspended = 1), 0) FROM card WHERE {live}", params).fetchone()
            # forecast: review days from today
            today = self._day(now)[0]
            hour = self.config.review.day_starts_at
            starts = [day_start(today + timedelta(days=i, hours=12), hour, self.review_tz)  # type: ignore[arg-type]
                      for i in range(days + 1)]
            stops = [int(s.timestamp()) for s in starts[1:]]
            counts = [0] * days
            for (due,) in self.conn.execute(
                f"SELECT due FROM card WHERE state IN (1, 2, 3) AND due < :end AND {live} AND suspended = 0",
                params | {"end": stops[-1]}):
                counts[next(i for i, s in enumerate(stops) if due < s)] += 1
            out.forecast = [(s.date(), n) for s, n in zip(starts, counts, strict=False)]
            # answers and retention
            log_scope = scope.replace("card.id", "reviewlog.card_id")
            out.answers = {g: 0 for g in (1, 2, 3, 4)}
            out.answers.update(dict(self.conn.execute(
                f"SELECT rating, count(*) FROM reviewlog WHERE 1{log_scope} GROUP BY rating", params).fetchall()))
            first = starts[0] - timedelta(days=days - 1)
            per_day: dict[date, list[int]] = {}
            for ts, rating in self.conn.execute(
                f"SELECT reviewed_at, rating FROM reviewlog WHERE state_before = 2 AND reviewed_at >= :first{log_scope}",
                params | {"first": int(first.timestamp())}):
                d = self._day(datetime.fromtimestamp(ts, now.tzinfo))[0].date()
                acc = per_day.setdefault(d, [0, 0])
                acc[0] += 1
                acc[1] += rating > 1
            day0 = starts[0].date()
            out.retention = []
            for i in range(days - 1, -1, -1):
                d = day0 - timedelta(days=i)
                n, passed = per_day.get(d, (0, 0))
                out.retention.append((d, passed / n if n else None))
            total = sum(v[0] for v in per_day.values())
            out.retention_30d = sum(v[1] for v in per_day.values()) / total if total else None
            # distributions (review-state cards)
            ivl = [0] * len(INTERVAL_BUCKETS)
            diff = [0] * len(DIFFICULTY_BUCKETS)
            for due, last, difficulty in self.conn.execute(
                f"SELECT due, last_review, difficulty FROM card WHERE state IN (1, 2, 3) AND {live} AND suspended = 0",
                params):
                if last is not None:
                    days_ = (due - last) / 86400
                    ivl[next(i for i, (_, top) in enumerate(INTERVAL_BUCKETS) if days_ < top)] += 1
                if difficulty is not None:
                    diff[min(8, max(0, int(difficulty) - 1))] += 1
            out.intervals = [(label, n) for (label, _), n in zip(INTERVAL_BUCKETS, ivl, strict=True)]
            out.difficulty = list(zip(DIFFICULTY_BUCKETS, diff, strict=True))
            return out
