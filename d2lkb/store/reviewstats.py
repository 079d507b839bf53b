"""Review statistics on SQLite: today's numbers, the heatmap (kept between answers), retention,
the forecast and a session's summary. `ReviewStatsMixin` is a base of `ReviewMixin`."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta

from d2lkb.review.days import day_start, utc_seconds
from d2lkb.review.types import Grade, SessionSummary
from d2lkb.store.reviewqueue import AVAILABLE, LIVE, QueueMixin


class ReviewStatsMixin(QueueMixin):
    def review_stats(self) -> dict:
        """`d2lkb stats --json`: card counts by state (suspended cards only under `suspended`, so
        new + learning + review + suspended == cards), due today (within the limits, learning
        cards due any time today included), reviews today, and the 30-day retention of review
        cards (share of review-state answers that were not Again; None without any)."""
        with self.lock:
            now = self._now()
            day = self._day(now)
            cards, new, learning, review, suspended = self.conn.execute(
                "SELECT count(*), coalesce(sum(suspended = 0 AND state = 0), 0),"
                " coalesce(sum(suspended = 0 AND state IN (1, 3)), 0), coalesce(sum(suspended = 0 AND state = 2), 0),"
                f" coalesce(sum(suspended = 1), 0) FROM card WHERE {LIVE}").fetchone()
            queue = self._queue(None, now)
            learning_today = self.conn.execute(
                f"SELECT count(*) FROM card WHERE {AVAILABLE} AND state IN (1, 3) AND due < :end",
                {"now": int(now.timestamp()), "end": int(day[1].timestamp())}).fetchone()[0]
            reviews_today = self.conn.execute("SELECT count(*) FROM reviewlog WHERE reviewed_at >= ?",
                                              (int(day[0].timestamp()),)).fetchone()[0]
            passed, total = self.conn.execute(
                "SELECT coalesce(sum(rating > 1), 0), count(*) FROM reviewlog WHERE state_before = 2"
                " AND reviewed_at >= ?", (int((now - timedelta(days=30)).timestamp()),)).fetchone()
            return {
                "cards": cards, "new": new, "learning": learning, "review": review, "suspended": suspended,
                "due_today": len(queue.new) + len(queue.review) + learning_today,
                "reviews_today": reviews_today,
                "retention_30d": passed / total if total else None,
            }

    def _day_starts(self, first: int, count: int) -> list[datetime]:
        """Starts of `count` consecutive review days, the first `first` days from today's."""
        hour = self.config.review.day_starts_at
        today = self._day(self._now())[0]
        return [day_start(today + timedelta(days=first + i, hours=12), hour, self.review_tz) for i in range(count)]

    def _per_day(self, days: int, where: str = "1") -> list[tuple[str, int, int, int]]:
        """(local date, answers, review-state answers, of which passed) for the last `days` review days."""
        starts = self._day_starts(-(days - 1), days + 1)
        first, stops = int(starts[0].timestamp()), [int(s.timestamp()) for s in starts[1:]]
        acc = [[0, 0, 0] for _ in range(days)]
        # Buckets of 15 minutes: every time zone's day boundary falls on one.
        for bucket, n, reviews, passed in self.conn.execute(
            "SELECT reviewed_at / 900, count(*), coalesce(sum(state_before = 2), 0),"
            f" coalesce(sum(state_before = 2 AND rating > 1), 0) FROM reviewlog WHERE reviewed_at >= ? AND {where}"
            " GROUP BY reviewed_at / 900", (first,)
        ):
            i = _index(stops, bucket * 900)
            if i < days:
                a = acc[i]
                a[0] += n
                a[1] += reviews
                a[2] += passed
        return [(s.date().isoformat(), *a) for s, a in zip(starts, acc, strict=False)]

    def heatmap(self, days: int = 365) -> dict[str, int]:
        """Answers per review day (local ISO date) over the last `days` days; days without answers left out.

        Kept between calls; `answer` adds its answer to today's square, anything else writing (undo,
        another connection) or a new day makes it read the log again."""
        with self.lock:
            now = self._now()
            stamp = (days, self._day_start_s(now), self.conn.total_changes, self._data_version())
            kept = getattr(self, "_heat", None)
            if kept is not None and kept[0] == stamp:
                return dict(kept[1])
            heat = {d: n for d, n, _, _ in self._per_day(days) if n}
            self._heat = (stamp, heat)
            return dict(heat)

    def _heatmap_after_answer(self, changes_before: int, now: datetime, version: int) -> None:
        """Add an answer we just committed (at `now`; `version`: the data_version in its transaction)."""
        kept = getattr(self, "_heat", None)
        if kept is None:
            return
        (days, start, changes, kept_version), heat = kept
        if (changes != changes_before or start != self._day_start_s(now)
                or kept_version != version):
            self._heat = None
            return
        today = self._day_starts(0, 1)[0].date().isoformat()
        heat[today] = heat.get(today, 0) + 1
        self._heat = ((days, start, self.conn.total_changes, version), heat)

    def retention_by_day(self, days: int = 30) -> list[tuple[str, float | None]]:
        """For each of the last `days` review days (oldest first): share of review-state answers that
        were not Again, None on a day without any."""
        with self.lock:
            return [(d, passed / reviews if reviews else None) for d, _, reviews, passed in self._per_day(days)]

    def forecast(self, days: int = 30) -> list[int]:
        """Cards due per review day from today (index 0: today, overdue included); new and
        suspended cards are not counted."""
        with self.lock:
            stops = [int(s.timestamp()) for s in self._day_starts(1, days)]
            out = [0] * days
            for (due,) in self.conn.execute(
                f"SELECT due FROM card WHERE state IN (1, 2, 3) AND due < ? AND {LIVE} AND suspended = 0", (stops[-1],)
            ):
                out[_index(stops, due)] += 1
            return out

    def answer_breakdown(self) -> dict[int, int]:
        """How often each grade (1..4) was given, over the whole log."""
        with self.lock:
            out = {int(g): 0 for g in Grade}
            out.update(dict(self.conn.execute("SELECT rating, count(*) FROM reviewlog GROUP BY rating")))
            return out

    def session_summary(self, since: datetime) -> SessionSummary:
        """Answers given since `since`: how many, time spent (the answers' durations; the wall time from
        `since` to the last answer when none was timed), Agains, and a count per grade."""
        with self.lock:
            since_s = int(utc_seconds(since).timestamp())
            rows = self.conn.execute("SELECT rating, duration_ms, reviewed_at FROM reviewlog WHERE reviewed_at >= ?",
                                     (since_s,)).fetchall()
            by_grade = {int(g): 0 for g in Grade}
            for rating, _, _ in rows:
                by_grade[rating] = by_grade.get(rating, 0) + 1
            ms = sum(r[1] for r in rows)
            seconds = ms / 1000 if ms else (max(r[2] for r in rows) - since_s if rows else 0.0)
            return SessionSummary(len(rows), float(seconds), by_grade[int(Grade.AGAIN)], by_grade)


def _index(stops: Sequence[int], ts: int) -> int:
    """Index of the first stop greater than `ts` (len(stops) if none)."""
    return bisect_right(stops, ts)
