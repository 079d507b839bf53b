"""Today's review queue: what to show next, within the daily limits. Pure: no I/O.

Order (like Anki): learning/relearning cards due now (earliest first) -> review
cards due today (earliest first) -> new cards (creation order: a new card's `due`
is the time it was created, ties by id) -> learning cards due within the
learn-ahead window (shown only when nothing else is left).

"Today" is the review day from `days.day_bounds` (it ends at the next rollover
hour, 4 am local by default), so a review card due at 03:00 tomorrow is due
today when it is 23:00 now.

Siblings (cards with the same non-empty `sibling_key`: the clozes of one
paragraph, the two directions of a reversed card) are never both shown on one
day: answering one buries the new/review others until the next day start
(`siblings_to_bury`), and the queue itself offers at most one new/review card
per sibling group, so the counts are what the user will actually see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from d2lkb.review.types import CardState, DueCounts

LEARN_AHEAD = timedelta(minutes=20)


class Candidate(NamedTuple):
    """What the queue needs to know about a card. Times are UTC UNIX seconds. (A named tuple: the
    whole queue is read as these, thousands at a time, and a frozen dataclass is 5x slower to build.)"""

    id: int
    state: int
    due: int
    sibling_key: str = ""
    suspended: bool = False
    buried_until: int | None = None
    last_review: int | None = None


@dataclass(frozen=True, slots=True)
class DayLimits:
    new_per_day: int = 20
    reviews_per_day: int = 200
    new_done: int = 0  # new cards answered for the first time today
    reviews_done: int = 0  # review-state cards answered today

    @property
    def new_left(self) -> int:
        return max(0, self.new_per_day - self.new_done)

    @property
    def reviews_left(self) -> int:
        return max(0, self.reviews_per_day - self.reviews_done)


@dataclass(frozen=True, slots=True)
class Queue:
    learning: tuple[int, ...] = ()  # due now
    review: tuple[int, ...] = ()
    new: tuple[int, ...] = ()
    ahead: tuple[int, ...] = ()  # learning cards due within the learn-ahead window

    @property
    def cards(self) -> tuple[int, ...]:
        """Every card of the queue, in the order it will be shown."""
        return self.learning + self.review + self.new + self.ahead

    @property
    def counts(self) -> DueCounts:
        return DueCounts(new=len(self.new), learning=len(self.learning) + len(self.ahead), review=len(self.review))

    def first(self) -> int | None:
        for part in (self.learning, self.review, self.new, self.ahead):
            if part:
                return part[0]
        return None


def _ts(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return int(dt.timestamp())


def is_available(card: Candidate, now: int) -> bool:
    """Neither suspended nor buried at `now`."""
    return not card.suspended and (card.buried_until is None or card.buried_until <= now)


def build_queue(
    candidates: Iterable[Candidate],
    *,
    now: datetime,
    day: tuple[datetime, datetime],
    limits: DayLimits,
    learn_ahead: timedelta = LEARN_AHEAD,
) -> Queue:
    """Today's queue from `candidates` (any superset of the cards that could be due).

    `day` is (start, end) of the review day containing `now` (see `days.day_bounds`).
    """
    now_s, start_s, end_s = _ts(now), _ts(day[0]), _ts(day[1])
    ahead_s = now_s + int(learn_ahead.total_seconds())
    learning: list[Candidate] = []
    ahead: list[Candidate] = []
    review: list[Candidate] = []
    new: list[Candidate] = []
    for c in candidates:
        if not is_available(c, now_s):
            continue
        if c.state in _LEARNING_STATES:
            # Interday learning (a step of a day or more, answered before today) is due all day,
            # like a review; intraday steps are due at their exact time.
            interday = c.last_review is not None and c.last_review < start_s and c.due < end_s
            if c.due <= now_s or interday:
                learning.append(c)
            elif c.due <= ahead_s and c.due < end_s:
                ahead.append(c)
        elif c.state == _REVIEW:
            if c.due < end_s:
                review.append(c)
        elif c.state == _NEW:
            new.append(c)
    learning.sort(key=lambda c: (c.due, c.id))
    ahead.sort(key=lambda c: (c.due, c.id))
    taken_groups = {c.sibling_key for c in learning + ahead if c.sibling_key}
    reviews = _take(sorted(review, key=lambda c: (c.due, c.id)), limits.reviews_left, taken_groups)
    news = _take(sorted(new, key=lambda c: (c.due, c.id)), limits.new_left, taken_groups)
    return Queue(tuple(c.id for c in learning), reviews, news, tuple(c.id for c in ahead))


_LEARNING_STATES = (int(CardState.LEARNING), int(CardState.RELEARNING))
_REVIEW, _NEW = int(CardState.REVIEW), int(CardState.NEW)


def _take(cards: Sequence[Candidate], limit: int, taken_groups: set[str]) -> tuple[int, ...]:
    """Up to `limit` cards in order, at most one per sibling group (updates `taken_groups`)."""
    out: list[int] = []
    for c in cards:
        if len(out) >= limit:
            break
        if c.sibling_key:
            if c.sibling_key in taken_groups:
                continue
            taken_groups.add(c.sibling_key)
        out.append(c.id)
    return tuple(out)


def siblings_to_bury(answered: Candidate, siblings: Iterable[Candidate], *,
                     day_end: datetime) -> list[tuple[int, int | None]]:
    """Siblings of `answered` to bury until `day_end`: (card id, its previous buried_until).

    Only new cards and review cards due today are buried (learning cards keep their steps,
    and a card due on a later day is not in the way).
    """
    if not answered.sibling_key:
        return []
    end_s = _ts(day_end)
    out = []
    for c in siblings:
        if c.id == answered.id or c.sibling_key != answered.sibling_key or c.suspended:
            continue
        if c.buried_until is not None and c.buried_until >= end_s:
            continue
        if c.state == CardState.NEW or (c.state == CardState.REVIEW and c.due < end_s):
            out.append((c.id, c.buried_until))
    return out
