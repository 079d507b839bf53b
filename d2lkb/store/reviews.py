"""Review on SQLite: the queue, answering (with undo), bury/suspend, and review statistics.

`ReviewMixin` is one of `KnowledgeBase`'s bases. It relies on the host for
`conn` (sqlite3, autocommit), `config.review`, `now()` (aware UTC datetime),
`lock` (an RLock, taken by every method here) and `card_ids(query)`.

The scheduling itself is pure (`d2lkb.review.scheduler` on top of fsrs, and
`d2lkb.review.queue`); this module only reads candidates and writes results.
Every answer is one transaction: the card, its review-log row (with everything
needed to undo it), the siblings it buries and the leech tag it adds.
"""

from __future__ import annotations

import json
import sqlite3
from bisect import bisect_right
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, NamedTuple

from d2lkb.review.counts import QueueCounts
from d2lkb.review.days import day_bounds, day_start, utc_seconds
from d2lkb.review.leech import is_leech_lapse
from d2lkb.review.queue import LEARN_AHEAD, Candidate, DayLimits, Queue, build_queue, siblings_to_bury
from d2lkb.review.types import AnswerResult, CardState, CardView, DeckCount, DueCounts, Grade, SessionSummary
from d2lkb.store.db import transaction
from d2lkb.store.decks import set_tagset
from d2lkb.store.docmeta import refresh_card_meta

if TYPE_CHECKING:
    from d2lkb.config import Config

LEECH_TAG = "leech"
# Fitted FSRS weights (`d2lkb optimize`), a JSON list in the `meta` table; absent: fsrs defaults.
PARAMETERS_META_KEY = "fsrs_parameters"

_LIVE = "retired_at IS NULL"
# `+` keeps SQLite off ix_card_due (which would scan every new card) and on ix_card_sched.
_AVAILABLE = "+retired_at IS NULL AND +suspended = 0 AND (buried_until IS NULL OR buried_until <= :now)"
_CANDIDATE_COLS = "id, state, due, sibling_key, suspended, buried_until, last_review"
_SCHEDULE_COLS = "state, step, stability, difficulty, due, last_review"
_UNDO_COLS = f"{_SCHEDULE_COLS}, reps, lapses, leech, suspended, buried_until"


MAX_KEPT_COUNTS = 8  # queries whose due counts are kept between answers
QUEUE_BATCH = 50  # queue head computed at once and served from memory while nothing invalidates it


@dataclass
class _QueueHead:
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
class _CountsCache:
    """Today's queue membership for `query`, kept between answers (see `QueueCounts`). Valid under the
    same conditions as `_QueueHead`, `valid_until` being when the next learning card enters the
    learn-ahead window."""

    query: str | None
    day_start: int
    valid_until: int
    data_version: int
    total_changes: int
    queue: QueueCounts


class _Answered(NamedTuple):
    """What `_answer` wrote, for the kept queue head, counts and heatmap to follow it."""

    result: AnswerResult
    buried: list[int]  # the siblings it buried
    state_before: int
    due: int  # the card's due time after it (UTC seconds)
    now: datetime  # the answer's time
    version: int  # PRAGMA data_version in its transaction: what the kept state is checked against


def _fsrs():
    """d2lkb.review.scheduler (fsrs), imported by the first command that schedules, then kept: an
    import statement in the answer path costs more than the lookup."""
    global _SCHEDULER
    if _SCHEDULER is None:
        from d2lkb.review import scheduler

        _SCHEDULER = scheduler
    return _SCHEDULER


_SCHEDULER = None


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# A card as `ReviewMixin.card` shows it: the row, the note's title, the card document's check hash,
# the latest result for it (status, detail: the newest row of `checkresult`, as `graph.latest_status`)
# its tags as [name, display] pairs (sorted by name in Python), and the rest of its schedule (for previews).
_CARD_VIEW = (
    "SELECT c.id, c.kind, c.front, c.back, c.path, c.line, coalesce(n.title, ''), c.state, c.due,"
    " c.reps, c.lapses, c.suspended, c.buried_until, c.leech, c.retired_at, d.check_hash, r.status, r.detail,"
    " (SELECT json_group_array(json_array(tag.name, tag.display)) FROM cardtag JOIN tag ON tag.id = cardtag.tag_id"
    " WHERE cardtag.card_id = c.id), c.step, c.stability, c.difficulty, c.last_review"
    " FROM card c LEFT JOIN note n ON n.id = c.note_id"
    " LEFT JOIN doc d ON d.id = (SELECT id FROM doc WHERE kind = 'card' AND card_id = c.id LIMIT 1)"
    " LEFT JOIN checkresult r ON r.id = (SELECT id FROM checkresult WHERE check_hash = d.check_hash"
    " ORDER BY checked_at DESC, id DESC LIMIT 1)"
    " WHERE c.id = ?")


class ReviewMixin:
    conn: sqlite3.Connection
    config: Config
    _day_kept: tuple | None = None  # the last `_day` asked for and its answer
    _params_kept: tuple | None = None  # (data_version, total_changes, `_parameters()`)
    lock: AbstractContextManager
    # Time zone of the review day (None: the machine's local zone).
    review_tz: tzinfo | None = None
    learn_ahead: timedelta = LEARN_AHEAD

    if TYPE_CHECKING:
        def now(self) -> datetime: ...
        def card_ids(self, query: str | None) -> list[int]: ...
        def _extra_new(self, day: tuple[datetime, datetime]) -> int: ...  # StudyMixin: `extra_new_today`

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

    def _parameters(self, version: int | None = None) -> tuple[float, ...] | None:
        """The fitted FSRS weights (None: fsrs's defaults). Kept while the database is unchanged
        (`version`: its data_version if just read); `answer` keeps them across its own writes."""
        version = self._data_version() if version is None else version
        kept = self._params_kept
        if kept is not None and kept[0] == version and kept[1] == self.conn.total_changes:
            return kept[2]
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (PARAMETERS_META_KEY,)).fetchone()
        parameters = tuple(json.loads(row[0])) if row else None
        self._params_kept = (version, self.conn.total_changes, parameters)
        return parameters

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
        day = self._day(now)
        limits = self._limits(day)
        scope, params = self._scope(query)
        params |= {"now": int(now.timestamp()), "end": int(day[1].timestamp())}
        if need is None:
            learning = list(map(Candidate._make, self.conn.execute(
                f"SELECT {_CANDIDATE_COLS} FROM card WHERE {_AVAILABLE} AND state IN (1, 3) AND due < :end{scope}",
                params)))
        else:
            # Only the head is wanted: learning cards due by the end of the learn-ahead window, plus
            # interday learning cards (due all day). A long intraday learning backlog is not read.
            ahead = int((now + self.learn_ahead).timestamp())
            learning = list(map(Candidate._make, self.conn.execute(
                f"SELECT {_CANDIDATE_COLS} FROM card WHERE {_AVAILABLE} AND state IN (1, 3) AND due < :end"
                f" AND due <= :ahead{scope} ORDER BY due, id LIMIT :n",
                params | {"ahead": ahead, "n": need + 8})))
            learning += list(map(Candidate._make, self.conn.execute(
                f"SELECT {_CANDIDATE_COLS} FROM card WHERE {_AVAILABLE} AND state IN (1, 3) AND due < :end"
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
                    f"SELECT {_CANDIDATE_COLS} FROM card WHERE {_AVAILABLE} AND state = 2 AND due < :end{scope}"
                    " ORDER BY due, id LIMIT :n", params | {"n": room_reviews if want_reviews else 0})))
            if short_new:
                news = list(map(Candidate._make, self.conn.execute(
                    f"SELECT {_CANDIDATE_COLS} FROM card WHERE {_AVAILABLE} AND state = 0{scope}"
                    " ORDER BY due, id LIMIT :n", params | {"n": room_new if want_new else 0})))
            queue = build_queue(learning + reviews + news, now=now, day=day, limits=limits,
                                learn_ahead=self.learn_ahead)
            short_reviews = len(queue.review) < want_reviews and len(reviews) == room_reviews
            short_new = len(queue.new) < want_new and len(news) == room_new
            if not (short_reviews or short_new):
                return queue
            room_reviews *= 4 if short_reviews else 1
            room_new *= 4 if short_new else 1

    def _require_card(self, card_id: int) -> tuple:
        row = self.conn.execute(f"SELECT {_UNDO_COLS}, sibling_key, retired_at FROM card WHERE id = ?",
                                (card_id,)).fetchone()
        if row is None:
            raise ValueError(f"no card with id {card_id}")
        return row

    # -- the queue ---------------------------------------------------------
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

    def _kept_counts(self) -> dict[str | None, _CountsCache]:
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

    def _build_counts(self, query: str | None, now: datetime, queue: Queue) -> _CountsCache:
        day = self._day(now)
        limits = self._limits(day)
        scope, params = self._scope(query)
        ahead = int((now + self.learn_ahead).timestamp())
        nxt = self.conn.execute(
            f"SELECT min(due) FROM card WHERE {_AVAILABLE} AND state IN (1, 3) AND due > :ahead AND due < :end{scope}",
            params | {"now": int(now.timestamp()), "ahead": ahead, "end": int(day[1].timestamp())}).fetchone()[0]
        valid_until = nxt - int(self.learn_ahead.total_seconds()) if nxt is not None else 2**62
        return _CountsCache(query, int(day[0].timestamp()), valid_until,
                            self._data_version(), self.conn.total_changes, QueueCounts.of(queue, limits.reviews_left, limits.new_left))

    def _valid_counts(self, query: str | None, now: datetime, changes: int | None = None,
                      version: int | None = None) -> _CountsCache | None:
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

    def next_card(self, query: str | None = None) -> CardView | None:
        """The card to show now, or None when nothing is left (for now) today."""
        with self.lock:
            now = self._now()
            row = self._next_card_row(query, now)
            return None if row is None else self._card_view(row, now)

    def review_step(self, query: str | None = None, previews: bool = True
                    ) -> tuple[CardView | None, DueCounts, dict[Grade, timedelta]]:
        """What the review screen shows after each answer, at one moment: `next_card(query)`,
        `due_counts(query)` and that card's `preview_intervals` (empty without a card or with
        `previews` False). One look at whether the database changed serves all three."""
        with self.lock:
            now = self._now()
            version = self._data_version()
            row = self._next_card_row(query, now, version)
            counts = self._due_counts(query, now, version)
            if row is None:
                return None, counts, {}
            card = self._card_view(row, now)
            if not previews:
                return card, counts, {}
            scheduler = _fsrs()
            fields = scheduler.Schedule(row[7], *row[19:22], row[8], row[22])
            return card, counts, scheduler.preview(fields, now, self.config.review, self._parameters(version))

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

    def _build_head(self, query: str | None, now: datetime, cards: list[int]) -> _QueueHead:
        scope, params = self._scope(query)
        now_s = int(now.timestamp())
        nxt = self.conn.execute(
            f"SELECT min(due) FROM card WHERE {_AVAILABLE} AND state IN (1, 3) AND due > :now{scope}",
            params | {"now": now_s}).fetchone()[0]
        return _QueueHead(query, self._day_start_s(now), nxt if nxt is not None else 2**62,
                          self._data_version(), self.conn.total_changes, cards)

    def _valid_head(self, query: str | None, now: datetime, version: int | None = None) -> _QueueHead | None:
        head: _QueueHead | None = getattr(self, "_head", None)
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
        head: _QueueHead | None = getattr(self, "_head", None)
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
                f"SELECT min(due) FROM card WHERE {_AVAILABLE} AND state IN (1, 3) AND due < :end{scope}",
                params | {"now": int(now.timestamp()), "end": int(self._day(now)[1].timestamp())}).fetchone()
            return _utc(row[0]) if row[0] is not None else None

    def deck_counts(self) -> list[DeckCount]:
        """The whole collection (tag "") first, then one entry per tag carrying live cards (parents
        before children; a parent counts its children's cards), each with today's due counts."""
        from d2lkb.store.decks import deck_counts

        with self.lock:
            now = self._now()
            day = self._day(now)
            return deck_counts(self.conn, now=now, day=day, limits=self._limits(day), learn_ahead=self.learn_ahead)

    # -- one card ----------------------------------------------------------
    def card(self, card_id: int) -> CardView:
        """A card as shown for review, with its note title, tags and latest check status."""
        with self.lock:
            return self._card_view(self._card_row(card_id), self._now())

    def _card_row(self, card_id: int) -> tuple:
        # One statement for the row, its note's title, its latest check and its tags.
        row = self.conn.execute(_CARD_VIEW, (card_id,)).fetchone()
        if row is None:
            raise ValueError(f"no card with id {card_id}")
        return row

    @staticmethod
    def _card_view(row: tuple, at: datetime) -> CardView:
        (cid, kind, front, back, path, line, title, state, due, reps, lapses, suspended, buried_until, leech,
         retired_at, check_hash, checked_status, checked_detail, tag_pairs) = row[:19]
        tags = tuple(display for _name, display in sorted(json.loads(tag_pairs)))  # by name
        status, detail = None, ""
        if check_hash:
            status, detail = (checked_status, checked_detail) if checked_status is not None else ("unchecked", "")
        now = int(at.timestamp())
        return CardView(cid, kind, front, back, path, line, title, tags, CardState(state), _utc(due),
                        reps=reps, lapses=lapses, suspended=bool(suspended),
                        buried=buried_until is not None and buried_until > now, leech=bool(leech),
                        check_status=status, check_detail=detail or "", retired=retired_at is not None)

    def preview_intervals(self, card_id: int) -> dict[Grade, timedelta]:
        """The interval each grade would give now (without fuzz)."""
        with self.lock:
            row = self._require_card(card_id)
            scheduler = _fsrs()
            return scheduler.preview(scheduler.Schedule(*row[:6]), self._now(), self.config.review, self._parameters())

    # -- answering ---------------------------------------------------------
    def answer(self, card_id: int, grade: Grade | int, duration_ms: int = 0) -> AnswerResult:
        """Grade a card now. Durable (committed) when it returns."""
        grade = Grade(int(grade))
        cfg = self.config.review
        with self.lock:
            changes_before = self.conn.total_changes
            done = self._answer(card_id, grade, duration_ms, cfg)
            self._head_after_answer(changes_before, card_id, done.buried, done.due)
            self._counts_after_answer(changes_before, done)
            self._heatmap_after_answer(changes_before, done)
            kept = self._params_kept
            if kept is not None and kept[:2] == (done.version, changes_before):  # not a write that changes them
                self._params_kept = (done.version, self.conn.total_changes, kept[2])
            return done.result

    def _counts_after_answer(self, changes_before: int, done: _Answered) -> None:
        result, now, buried = done.result, done.now, done.buried
        day = self._day(now)
        end, ahead = day[1].timestamp(), (now + self.learn_ahead).timestamp()
        due = result.due.timestamp()
        learning = result.state in (CardState.LEARNING, CardState.RELEARNING)

        def update(cached: _CountsCache) -> bool:
            if result.leech and cached.query:
                return False  # the card's tags changed (#leech): it may have left or joined the deck
            counted = learning and not result.suspended and due < end and due <= ahead
            if learning and not result.suspended and ahead < due < end:
                # It enters the learn-ahead window later today.
                cached.valid_until = min(cached.valid_until, int(due) - int(self.learn_ahead.total_seconds()))
            return cached.queue.answered(result.card_id, done.state_before, int(result.state), counted_after=counted,
                                         due_today_after=not result.suspended and due < end, buried=buried)

        self._counts_after(changes_before, now, update, done.version)

    def _answer(self, card_id: int, grade: Grade, duration_ms: int,
                cfg) -> _Answered:
        """The answer's writes, committed."""
        with transaction(self.conn):
            version = self._data_version()
            now = self._now()
            now_s = int(now.timestamp())
            row = self._require_card(card_id)
            (state, step, stability, difficulty, due, last_review, reps, lapses, leech, suspended, buried_until,
             sibling_key, retired_at) = row
            if retired_at is not None:
                raise ValueError(f"card {card_id} is retired (it is no longer in the notes)")
            scheduler = _fsrs()
            before = scheduler.Schedule(state, step, stability, difficulty, due, last_review)
            after = scheduler.answer(before, grade, now, cfg, self._parameters(version))
            lapses_after = lapses + scheduler.is_lapse(before, grade)
            leech_event = scheduler.is_lapse(before, grade) and is_leech_lapse(lapses_after, cfg.leech_lapses)
            leech_after = 1 if leech_event else leech
            suspended_after = 1 if leech_event and cfg.leech_suspend else suspended

            day = self._day(now)
            buried: list[tuple[int, int | None]] = []
            if sibling_key:
                siblings = list(map(Candidate._make, self.conn.execute(
                    f"SELECT {_CANDIDATE_COLS} FROM card WHERE sibling_key = ? AND id != ? AND {_LIVE}",
                    (sibling_key, card_id))))
                buried = siblings_to_bury(Candidate(card_id, state, due, sibling_key), siblings, day_end=day[1])
                self.conn.executemany("UPDATE card SET buried_until = ? WHERE id = ?",
                                      [(int(day[1].timestamp()), sid) for sid, _ in buried])
            leech_tagged = self._add_leech_tag(card_id) if leech_event else False

            new = {"state": int(after.state), "step": after.step, "stability": after.stability,
                   "difficulty": after.difficulty, "due": after.due, "last_review": after.last_review,
                   "reps": reps + 1, "lapses": lapses_after, "leech": leech_after, "suspended": suspended_after,
                   "buried_until": None}
            old = dict(zip(new, (state, step, stability, difficulty, due, last_review, reps, lapses, leech,
                                 suspended, buried_until), strict=True))
            # Only the columns that change: SQLite rewrites the entries of every index holding a column
            # the statement sets, changed or not (a review card keeps its state: three indexes fewer).
            changed = [k for k in new if new[k] != old[k]]
            self.conn.execute(f"UPDATE card SET {', '.join(f'{k} = ?' for k in changed)} WHERE id = ?",
                              (*(new[k] for k in changed), card_id))
            log_id = self.conn.execute(
                "INSERT INTO reviewlog (card_id, rating, reviewed_at, duration_ms,"
                " state_before, state_after, step_before, step_after, stability_before, stability_after,"
                " difficulty_before, difficulty_after, due_before, due_after, last_review_before, last_review_after,"
                " reps_before, reps_after, lapses_before, lapses_after, leech_before, leech_after,"
                " suspended_before, suspended_after, buried_until_before, buried_siblings, leech_tagged)"
                " VALUES (?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?)",
                (card_id, int(grade), now_s, max(0, int(duration_ms)),
                 state, int(after.state), step, after.step, stability, after.stability,
                 difficulty, after.difficulty, due, after.due, last_review, after.last_review,
                 reps, reps + 1, lapses, lapses_after, leech, leech_after,
                 suspended, suspended_after, buried_until, json.dumps(buried) if buried else "[]", int(leech_tagged))).lastrowid
        result = AnswerResult(card_id, grade, _utc(after.due), timedelta(seconds=after.due - now_s),
                              after.state, leech=leech_event, suspended=bool(suspended_after), log_id=log_id)
        return _Answered(result, [sid for sid, _ in buried], state, after.due, now, version)

    def _add_leech_tag(self, card_id: int) -> bool:
        """Tag the card `leech` (card tags and its search document). True if it was not tagged yet."""
        row = self.conn.execute("SELECT id FROM tag WHERE name = ?", (LEECH_TAG,)).fetchone()
        tag_id = row[0] if row else self.conn.execute(
            "INSERT INTO tag (name, display, parent_id) VALUES (?, ?, NULL)", (LEECH_TAG, LEECH_TAG)).lastrowid
        added = self.conn.execute("INSERT OR IGNORE INTO cardtag (card_id, tag_id) VALUES (?, ?)",
                                  (card_id, tag_id)).rowcount > 0
        self.conn.execute("INSERT OR IGNORE INTO doctag (tag_id, doc_id) SELECT ?, id FROM doc"
                          " WHERE kind = 'card' AND card_id = ?", (tag_id, card_id))
        refresh_card_meta(self.conn, card_id)
        set_tagset(self.conn, card_id)
        return added

    def _remove_leech_tag(self, card_id: int) -> None:
        row = self.conn.execute("SELECT id FROM tag WHERE name = ?", (LEECH_TAG,)).fetchone()
        if row is None:
            return
        tag_id = row[0]
        self.conn.execute("DELETE FROM cardtag WHERE card_id = ? AND tag_id = ?", (card_id, tag_id))
        self.conn.execute("DELETE FROM doctag WHERE tag_id = ? AND doc_id IN"
                          " (SELECT id FROM doc WHERE kind = 'card' AND card_id = ?)", (tag_id, card_id))
        refresh_card_meta(self.conn, card_id)
        set_tagset(self.conn, card_id)
        # A tag row nobody uses any more goes (as sync does with unused tags).
        self.conn.execute(
            "DELETE FROM tag WHERE id = ? AND id NOT IN (SELECT tag_id FROM cardtag)"
            " AND id NOT IN (SELECT tag_id FROM notetag) AND id NOT IN (SELECT tag_id FROM doctag)"
            " AND id NOT IN (SELECT parent_id FROM tag WHERE parent_id IS NOT NULL)", (tag_id,))

    def undo(self) -> int | None:
        """Undo the most recent answer: the card exactly as before, its log row gone, the siblings it
        buried un-buried, the leech tag it added removed. Returns the card id, None if nothing to undo."""
        with self.lock, transaction(self.conn):
            row = self.conn.execute(
                "SELECT id, card_id, state_before, step_before, stability_before, difficulty_before, due_before,"
                " last_review_before, reps_before, lapses_before, leech_before, suspended_before,"
                " buried_until_before, buried_siblings, leech_tagged FROM reviewlog ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            log_id, card_id, *card_before, buried_json, leech_tagged = row
            self.conn.execute(
                "UPDATE card SET state=?, step=?, stability=?, difficulty=?, due=?, last_review=?, reps=?,"
                " lapses=?, leech=?, suspended=?, buried_until=? WHERE id=?", (*card_before, card_id))
            self.conn.executemany("UPDATE card SET buried_until = ? WHERE id = ?",
                                  [(previous, sid) for sid, previous in json.loads(buried_json or "[]")])
            if leech_tagged:
                self._remove_leech_tag(card_id)
            self.conn.execute("DELETE FROM reviewlog WHERE id = ?", (log_id,))
            return card_id

    # -- by hand -----------------------------------------------------------
    def bury(self, card_id: int) -> None:
        """Hide a card until the next day starts."""
        with self.lock:
            row = self._require_card(card_id)
            now = self._now()
            end = self._day(now)[1]
            changes_before = self.conn.total_changes
            self.conn.execute("UPDATE card SET buried_until = ? WHERE id = ?", (int(end.timestamp()), card_id))
            self._counts_after(changes_before, now, lambda cached: cached.queue.removed(card_id, bool(row[-2])))

    def suspend(self, card_id: int) -> None:
        """Take a card out of review until it is unsuspended."""
        with self.lock:
            row = self._require_card(card_id)
            changes_before = self.conn.total_changes
            self.conn.execute("UPDATE card SET suspended = 1 WHERE id = ?", (card_id,))
            self._counts_after(changes_before, self._now(),
                               lambda cached: cached.queue.removed(card_id, bool(row[-2])))

    def unsuspend(self, card_id: int) -> None:
        with self.lock:
            self._require_card(card_id)
            self.conn.execute("UPDATE card SET suspended = 0 WHERE id = ?", (card_id,))

    # -- statistics --------------------------------------------------------
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
                f" coalesce(sum(suspended = 1), 0) FROM card WHERE {_LIVE}").fetchone()
            queue = self._queue(None, now)
            learning_today = self.conn.execute(
                f"SELECT count(*) FROM card WHERE {_AVAILABLE} AND state IN (1, 3) AND due < :end",
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

    def _heatmap_after_answer(self, changes_before: int, done: _Answered) -> None:
        kept = getattr(self, "_heat", None)
        if kept is None:
            return
        (days, start, changes, kept_version), heat = kept
        if (changes != changes_before or start != self._day_start_s(done.now)
                or kept_version != done.version):
            self._heat = None
            return
        today = self._day_starts(0, 1)[0].date().isoformat()
        heat[today] = heat.get(today, 0) + 1
        self._heat = ((days, start, self.conn.total_changes, done.version), heat)

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
                f"SELECT due FROM card WHERE state IN (1, 2, 3) AND due < ? AND {_LIVE} AND suspended = 0", (stops[-1],)
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
