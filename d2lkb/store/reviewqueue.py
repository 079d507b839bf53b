"""The review queue on SQLite: what is due now, today's counts, and both kept between answers.

`QueueMixin` is the base of `ReviewMixin` (`store.reviews`), which answers cards and keeps
what is kept here in step with its answers. It relies on the host for `conn`, `config.review`,
`now()`, `lock`, `card_ids(query)` and `_card_row(card_id)`.

The queue itself is pure (`d2lkb.review.queue`); this module reads its candidates.
"""

from __future__ import annotations

import gc
import json
import sqlite3
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from d2lkb.review.counts import QueueCounts
from d2lkb.review.days import day_bounds, utc_seconds
from d2lkb.review.queue import LEARN_AHEAD, Candidate, DayLimits, Queue, build_queue
from d2lkb.review.types import DeckCount, DueCounts

if TYPE_CHECKING:
    from d2lkb.config import Config

LIVE = "retired_at IS NULL"
# `+` keeps SQLite off ix_card_due (which would scan every new card) and on ix_card_sched.
AVAILABLE = "+retired_at IS NULL AND +suspended = 0 AND (buried_until IS NULL OR buried_until <= :now)"
CANDIDATE_COLS = "id, state, due, sibling_key, suspended, buried_until, last_review"

MAX_KEPT_COUNTS = 8  # queries whose due counts are kept between answers
QUEUE_BATCH = 50  # queue head computed at once and served from memory while nothing invalidates it


@dataclass
class KeptHead:
    """The first cards of today's queue (learning due now, reviews, new; not learn-ahead), kept between
    `next_card` calls. Valid while the day, the query and the database are unchanged (our own answers
    excepted: `answer` updates the head itself) and no learning card has become due meanwhile."""

    query: str | None
    day_start: int
    valid_until: int  # the earliest due time of a learning card not yet due at build time
    data_version: int  # PRAGMA data_version: changes when another connection commits
    total_changes: int  # this connection's row changes: any write we did not account for
    cards: list[int]


@dataclass
class KeptCounts:
    """Today's queue membership for `query`, kept between answers (see `QueueCounts`). Valid under the
    same conditions as `KeptHead`, `valid_until` being when the next learning card enters the
    learn-ahead window."""

    query: str | None
    day_start: int
    valid_until: int
    data_version: int
    total_changes: int
    queue: QueueCounts


@contextmanager
def _gc_paused():
    """Python's cyclic garbage collector off while a whole queue is read (thousands of rows, twice as
    many tuples): their allocations would trigger dozens of collections, and in a process holding
    many objects (the TUI, the bench's) sometimes a full one, 50 ms at 100k cards in place of 20.
    Nothing read here forms a cycle; the collector runs as usual afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class QueueMixin:
    conn: sqlite3.Connection
    config: Config
    _day_kept: tuple | None = None  # the last `_day` asked for, its answer and its start in seconds
    lock: AbstractContextManager
    # Time zone of the review day (None: the machine's local zone).
    review_tz: tzinfo | None = None
    learn_ahead: timedelta = LEARN_AHEAD

    if TYPE_CHECKING:
        def now(self) -> datetime: ...
        def card_ids(self, query: str | None) -> list[int]: ...
        def _extra_new(self, day: tuple[datetime, datetime]) -> int: ...  # StudyMixin: `extra_new_today`
        def _card_row(self, card_id: int) -> tuple: ...  # ReviewMixin

    # -- helpers -----------------------------------------------------------
    def _now(self) -> datetime:
        return utc_seconds(self.now())

    def _day(self, now: datetime) -> tuple[datetime, datetime]:
        key = (now, self.config.review.day_starts_at, self.review_tz)
        kept = self._day_kept  # an answer asks several times for the same second
        if kept is not None and kept[0] == key:
            return kept[1]
        bounds = day_bounds(now, self.config.review.day_starts_at, self.review_tz)
        self._day_kept = (key, bounds, int(bounds[0].timestamp()))
        return bounds

    def _day_start_s(self, now: datetime) -> int:
        """The start of `now`'s review day, in UTC seconds (what the kept queue state is stamped with)."""
        self._day(now)
        return self._day_kept[2]  # type: ignore[index]

    def _limits(self, day: tuple[datetime, datetime]) -> DayLimits:
        new_done, reviews_done = self.conn.execute(
            "SELECT coalesce(sum(state_before = 0), 0), coalesce(sum(state_before = 2), 0) FROM reviewlog"
            " WHERE reviewed_at >= ?", (int(day[0].timestamp()),)).fetchone()
        cfg = self.config.review
        return DayLimits(cfg.new_per_day + self._extra_new(day), cfg.reviews_per_day, new_done, reviews_done)

    def _data_version(self) -> int:
        """PRAGMA data_version: changes when another connection commits."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    # -- the queue and today's counts --------------------------------------
    def _scope(self, query: str | None) -> tuple[str, dict]:
        """SQL condition restricting cards to a query (none for an empty query)."""
        if query is None or not query.strip():
            return "", {}
        from d2lkb.query import TagTerm, parse_query

        node = parse_query(query)
        if isinstance(node, TagTerm):
            # A deck: probe the card's own tags (indexed) instead of listing every card of the deck.
            return (" AND EXISTS (SELECT 1 FROM cardtag ct WHERE ct.card_id = card.id AND ct.tag_id IN"
                    " (SELECT id FROM tag WHERE name = :deck OR (name > :deck_lo AND name < :deck_hi)))",
                    {"deck": node.name, "deck_lo": node.name + "/", "deck_hi": node.name + "0"})
        return " AND id IN (SELECT value FROM json_each(:ids))", {"ids": json.dumps(self.card_ids(query))}

    def _queue(self, query: str | None, now: datetime, need: int | None = None) -> Queue:
        """Today's queue (complete when `need` is None, else enough of it for its first `need` cards).

        Candidates come from SQL in queue order, a few more than are wanted; they are fetched
        again with more room only if sibling skipping ran them short."""
        if need is not None:
            return self._read_queue(query, now, need)
        with _gc_paused():
            return self._read_queue(query, now, None)

    def _read_queue(self, query: str | None, now: datetime, need: int | None) -> Queue:
        day = self._day(now)
        limits = self._limits(day)
        scope, params = self._scope(query)
        params |= {"now": int(now.timestamp()), "end": int(day[1].timestamp())}
        if need is None:
            learning = list(map(Candidate._make, self.conn.execute(
                f"SELECT {CANDIDATE_COLS} FROM card WHERE {AVAILABLE} AND state IN (1, 3) AND due < :end{scope}",
                params)))
        else:
            # Only the head is wanted: learning cards due by the end of the learn-ahead window, plus
            # interday learning cards (due all day). A long intraday learning backlog is not read.
            ahead = int((now + self.learn_ahead).timestamp())
            learning = list(map(Candidate._make, self.conn.execute(
                f"SELECT {CANDIDATE_COLS} FROM card WHERE {AVAILABLE} AND state IN (1, 3) AND due < :end"
                f" AND due <= :ahead{scope} ORDER BY due, id LIMIT :n",
                params | {"ahead": ahead, "n": need + 8})))
            learning += list(map(Candidate._make, self.conn.execute(
                f"SELECT {CANDIDATE_COLS} FROM card WHERE {AVAILABLE} AND state IN (1, 3) AND due < :end"
                f" AND due > :ahead AND last_review < :start{scope} ORDER BY due, id LIMIT :n",
                params | {"ahead": ahead, "start": int(day[0].timestamp()), "n": need + 8})))
        want_reviews = limits.reviews_left if need is None else min(need, limits.reviews_left)
        want_new = limits.new_left if need is None else min(need, limits.new_left)
        room_reviews, room_new = want_reviews + 8, want_new + 8
        if need is not None and learning:
            # Learning cards due now come first: when enough are due, nothing else is read.
            queue = build_queue(learning, now=now, day=day, limits=limits, learn_ahead=self.learn_ahead)
            if len(queue.learning) >= need:
                return queue
        short_reviews = short_new = True  # (read them)
        while True:
            if short_reviews:
                reviews = list(map(Candidate._make, self.conn.execute(
                    f"SELECT {CANDIDATE_COLS} FROM card WHERE {AVAILABLE} AND state = 2 AND due < :end{scope}"
                    " ORDER BY due, id LIMIT :n", params | {"n": room_reviews if want_reviews else 0})))
            if short_new:
                news = list(map(Candidate._make, self.conn.execute(
                    f"SELECT {CANDIDATE_COLS} FROM card WHERE {AVAILABLE} AND state = 0{scope}"
                    " ORDER BY due, id LIMIT :n", params | {"n": room_new if want_new else 0})))
            queue = build_queue(learning + reviews + news, now=now, day=day, limits=limits,
                                learn_ahead=self.learn_ahead)
            short_reviews = len(queue.review) < want_reviews and len(reviews) == room_reviews
            short_new = len(queue.new) < want_new and len(news) == room_new
            if not (short_reviews or short_new):
                return queue
            room_reviews *= 4 if short_reviews else 1
            room_new *= 4 if short_new else 1

    def due_counts(self, query: str | None = None) -> DueCounts:
        """Cards left to review today for `query` (all cards when None), within the daily limits.

        The queue's membership is kept between calls and updated by `answer`, `bury` and `suspend`
        for the whole collection and for decks (`#tag`); it is rebuilt whenever that cannot be done
        exactly (see `QueueCounts`), when another connection wrote, when a learning card enters the
        learn-ahead window and when the day rolls over."""
        with self.lock:
            return self._due_counts(query, self._now())

    def _due_counts(self, query: str | None, now: datetime, version: int | None = None) -> DueCounts:
        cached = self._valid_counts(query, now, version=version)
        if cached is not None:
            return cached.queue.counts
        queue = self._queue(query, now)
        if self._incremental(query):
            kept = self._kept_counts()
            if len(kept) >= MAX_KEPT_COUNTS:
                kept.pop(next(iter(kept)))
            kept[query] = self._build_counts(query, now, queue)
        return queue.counts

    def _kept_counts(self) -> dict[str | None, KeptCounts]:
        kept = getattr(self, "_counts", None)
        if kept is None:
            kept = self._counts = {}
        return kept

    @staticmethod
    def _incremental(query: str | None) -> bool:
        """Whether the counts of `query` can follow answers: the whole collection or a deck (a search
        query may select cards by their schedule, `is:due`, which an answer changes)."""
        if query is None or not query.strip():
            return True
        from d2lkb.query import TagTerm, parse_query

        return isinstance(parse_query(query), TagTerm)

    def _build_counts(self, query: str | None, now: datetime, queue: Queue) -> KeptCounts:
        day = self._day(now)
        limits = self._limits(day)
        scope, params = self._scope(query)
        ahead = int((now + self.learn_ahead).timestamp())
        nxt = self.conn.execute(
            f"SELECT min(due) FROM card WHERE {AVAILABLE} AND state IN (1, 3) AND due > :ahead AND due < :end{scope}",
            params | {"now": int(now.timestamp()), "ahead": ahead, "end": int(day[1].timestamp())}).fetchone()[0]
        valid_until = nxt - int(self.learn_ahead.total_seconds()) if nxt is not None else 2**62
        return KeptCounts(query, self._day_start_s(now), valid_until, self._data_version(), self.conn.total_changes,
                          QueueCounts.of(queue, limits.reviews_left, limits.new_left))

    def _valid_counts(self, query: str | None, now: datetime, changes: int | None = None,
                      version: int | None = None) -> KeptCounts | None:
        """The kept counts of `query` if still valid at `now` (`changes`: the connection's change
        counter they must match, by default its current value; `version`: the data_version if just read)."""
        kept = self._kept_counts()
        cached = kept.get(query)
        if cached is None:
            return None
        if (int(now.timestamp()) >= cached.valid_until
                or cached.total_changes != (self.conn.total_changes if changes is None else changes)
                or cached.day_start != self._day_start_s(now)
                or cached.data_version != (self._data_version() if version is None else version)):
            del kept[query]
            return None
        return cached

    def _counts_after(self, changes_before: int, now: datetime, update, version: int | None = None) -> None:
        """Keep the kept counts in step with a write we just made (`update(cached)` applies it and
        says whether it could); drop those that were stale or cannot follow. `version`: the
        data_version read in the write's transaction."""
        kept = self._kept_counts()
        for query in list(kept):
            cached = self._valid_counts(query, now, changes_before, version)
            if cached is None:
                continue
            if update(cached):
                cached.total_changes = self.conn.total_changes
            else:
                del kept[query]

    # -- the head: the next cards ------------------------------------------
    def _next_card_row(self, query: str | None, now: datetime, version: int | None = None) -> tuple | None:
        """The `_CARD_VIEW` row of the card to show now (None when nothing is left for now today)."""
        head = self._valid_head(query, now, version)
        if head is not None:
            return self._card_row(head.cards[0])
        queue = self._queue(query, now, need=QUEUE_BATCH)
        cards = list(queue.learning + queue.review + queue.new)[:QUEUE_BATCH]
        if cards:
            self._head = self._build_head(query, now, cards)
            return self._card_row(cards[0])
        self._head = None
        first = queue.first()  # learn-ahead: only when nothing else is left
        return None if first is None else self._card_row(first)

    def _build_head(self, query: str | None, now: datetime, cards: list[int]) -> KeptHead:
        scope, params = self._scope(query)
        now_s = int(now.timestamp())
        nxt = self.conn.execute(
            f"SELECT min(due) FROM card WHERE {AVAILABLE} AND state IN (1, 3) AND due > :now{scope}",
            params | {"now": now_s}).fetchone()[0]
        return KeptHead(query, self._day_start_s(now), nxt if nxt is not None else 2**62,
                        self._data_version(), self.conn.total_changes, cards)

    def _valid_head(self, query: str | None, now: datetime, version: int | None = None) -> KeptHead | None:
        head: KeptHead | None = getattr(self, "_head", None)
        if head is None or not head.cards or head.query != query:
            return None
        now_s = int(now.timestamp())
        if (now_s >= head.valid_until or head.total_changes != self.conn.total_changes
                or head.day_start != self._day_start_s(now)
                or head.data_version != (self._data_version() if version is None else version)):
            self._head = None
            return None
        return head

    def _head_after_answer(self, changes_before: int, card_id: int, buried: list[int], due: int) -> None:
        """Keep the cached queue head in step with an answer we just committed."""
        head: KeptHead | None = getattr(self, "_head", None)
        if head is None or head.total_changes != changes_before or card_id not in head.cards:
            # A card answered from outside the head uses up a daily limit the head was cut by.
            self._head = None
            return
        gone = {card_id, *buried}
        head.cards = [c for c in head.cards if c not in gone]
        head.valid_until = min(head.valid_until, due)  # it comes back when due (learning steps)
        head.total_changes = self.conn.total_changes

    def next_learning_due(self, query: str | None = None) -> datetime | None:
        """When the next learning card becomes due today, if any (for "come back in 12 minutes")."""
        with self.lock:
            now = self._now()
            scope, params = self._scope(query)
            row = self.conn.execute(
                f"SELECT min(due) FROM card WHERE {AVAILABLE} AND state IN (1, 3) AND due < :end{scope}",
                params | {"now": int(now.timestamp()), "end": int(self._day(now)[1].timestamp())}).fetchone()
            return utc(row[0]) if row[0] is not None else None

    def deck_counts(self) -> list[DeckCount]:
        """The whole collection (tag "") first, then one entry per tag carrying live cards (parents
        before children; a parent counts its children's cards), each with today's due counts."""
        from d2lkb.store.decks import deck_counts

        with self.lock:
            now = self._now()
            day = self._day(now)
            return deck_counts(self.conn, now=now, day=day, limits=self._limits(day), learn_ahead=self.learn_ahead)
