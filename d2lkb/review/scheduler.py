"""FSRS scheduling of one card, on top of the `fsrs` package (FSRS-6). Pure: no I/O.

Our card rows keep the fsrs.Card fields as plain numbers (`Schedule`): `state`
0 new, 1 learning, 2 review, 3 relearning; `due` and `last_review` as UTC UNIX
seconds. fsrs has no "new" state: a new card is fsrs `State.Learning` at step 0
without stability, which is exactly what `Schedule.to_fsrs` builds for state 0.

Time is always injected (`now`, timezone-aware). It is truncated to whole seconds
before it reaches fsrs so that what we store (integer seconds) is exactly what
fsrs computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from fsrs import Card as FsrsCard
from fsrs import Rating, Scheduler, State

from d2lkb.config import ReviewConfig
from d2lkb.review.days import utc_seconds
from d2lkb.review.types import CardState, Grade


@dataclass(frozen=True, slots=True)
class Schedule:
    """The scheduling fields of a card row (the columns fsrs.Card needs)."""

    state: CardState = CardState.NEW
    step: int | None = None
    stability: float | None = None
    difficulty: float | None = None
    due: int = 0  # UTC UNIX seconds
    last_review: int | None = None  # UTC UNIX seconds

    def __post_init__(self) -> None:
        try:  # (an answer makes three of these: plain lookups, no enum calls)
            state = _STATES.get(self.state)
        except TypeError:  # unhashable
            state = None
        problems = []
        if state is None:
            problems.append(f"state {self.state!r} is not 0..3")
        if state is CardState.REVIEW and (self.stability is None or self.difficulty is None):
            problems.append("a review card needs stability and difficulty")
        if state is CardState.RELEARNING and (self.stability is None or self.difficulty is None
                                               or self.step is None):
            problems.append("a relearning card needs stability, difficulty and a step")
        if problems:
            raise ValueError("bad card schedule: " + "; ".join(problems))
        object.__setattr__(self, "state", state)

    # -- conversions -------------------------------------------------------
    def to_fsrs(self) -> FsrsCard:
        """The fsrs.Card for these fields (card_id is irrelevant to scheduling: 0)."""
        if self.state == CardState.NEW:
            return _Card(card_id=0, state=State.Learning, step=0, due=_dt(self.due))
        return _Card(
            card_id=0,
            state=_FSRS_STATES[self.state],
            step=self.step,
            stability=self.stability,
            difficulty=self.difficulty,
            due=_dt(self.due),
            last_review=_dt(self.last_review) if self.last_review is not None else None,
        )

    @classmethod
    def from_fsrs(cls, card: FsrsCard) -> Schedule:
        """Fields of an fsrs.Card. A Learning card without stability is our "new" card."""
        if card.state is State.Learning and card.stability is None and card.last_review is None:
            return cls(CardState.NEW, None, None, None, _ts(card.due), None)
        return cls(_STATES[card.state.value], card.step, card.stability, card.difficulty, _ts(card.due),
                   _ts(card.last_review) if card.last_review is not None else None)

    def to_dict(self) -> dict:
        return {"state": int(self.state), "step": self.step, "stability": self.stability,
                "difficulty": self.difficulty, "due": self.due, "last_review": self.last_review}

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        return cls(CardState(int(d["state"])), d.get("step"), d.get("stability"), d.get("difficulty"),
                   int(d["due"]), d.get("last_review"))


class _Card(FsrsCard):
    """An fsrs.Card that copies itself plainly: `Scheduler.review_card` copies the card it is given,
    and the generic `copy.copy` (through `__reduce_ex__`) was a fifth of the call."""

    __slots__ = ()

    def __copy__(self) -> _Card:
        new = object.__new__(_Card)
        new.__dict__.update(self.__dict__)
        return new


_STATES = {int(s): s for s in CardState}
_FSRS_STATES = {CardState.LEARNING: State.Learning, CardState.REVIEW: State.Review,
                CardState.RELEARNING: State.Relearning}


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(int(ts), UTC)


def _ts(dt: datetime) -> int:
    return int(dt.timestamp())




@lru_cache(maxsize=16)
def _scheduler(parameters: tuple[float, ...] | None, desired_retention: float, learning_steps: tuple[timedelta, ...],
               relearning_steps: tuple[timedelta, ...], maximum_interval: int, fuzz: bool) -> Scheduler:
    kwargs = {} if parameters is None else {"parameters": parameters}
    return Scheduler(desired_retention=desired_retention, learning_steps=learning_steps,
                     relearning_steps=relearning_steps, maximum_interval=maximum_interval,
                     enable_fuzzing=fuzz, **kwargs)


def build_scheduler(config: ReviewConfig, parameters: Sequence[float] | None = None, *,
                    fuzz: bool | None = None) -> Scheduler:
    """An fsrs.Scheduler for `config` (cached). `parameters`: fitted FSRS weights, default fsrs's.

    `fuzz` overrides `config.fuzz` (previews use a fuzz-free scheduler).
    """
    return _scheduler(*_scheduler_key(config, parameters, config.fuzz if fuzz is None else fuzz))


def _scheduler_key(config: ReviewConfig, parameters: Sequence[float] | None, fuzz: bool) -> tuple:
    return (tuple(parameters) if parameters is not None else None, config.desired_retention,
            tuple(config.learning_steps), tuple(config.relearning_steps), config.maximum_interval, fuzz)


def answer(fields: Schedule, grade: Grade | int, now: datetime, config: ReviewConfig | None = None,
           parameters: Sequence[float] | None = None) -> Schedule:
    """The card's schedule after answering `grade` at `now` (fuzzed if `config.fuzz`)."""
    return _review(build_scheduler(config or ReviewConfig(), parameters), fields, grade, now)


def preview(fields: Schedule, now: datetime, config: ReviewConfig | None = None,
            parameters: Sequence[float] | None = None) -> dict[Grade, timedelta]:
    """Interval each grade would give at `now`, without fuzz (so it equals `answer` when fuzz is off)."""
    config = config or ReviewConfig()
    at = utc_seconds(now)
    # fsrs reads the time only as whole days since the last review (`(now - last_review).days`)
    # and adds the interval to `now`: the intervals are a function of these fields alone.
    elapsed = None if fields.last_review is None else (_ts(at) - fields.last_review) // 86400
    scheduler_key = _scheduler_key(config, parameters, False)
    key = (scheduler_key, fields.state, fields.step, fields.stability, fields.difficulty, elapsed)
    found = _PREVIEWS.get(key)
    if found is None:
        scheduler = _scheduler(*scheduler_key)
        at_s = _ts(at)
        card = fields.to_fsrs()  # review_card copies its input, so one card serves all four grades
        found = {g: timedelta(seconds=_ts(scheduler.review_card(card, _RATINGS[g], at)[0].due) - at_s) for g in Grade}
        if len(_PREVIEWS) >= _PREVIEWS_KEPT:
            _PREVIEWS.clear()
        _PREVIEWS[key] = found
    return dict(found)


_PREVIEWS: dict[tuple, dict[Grade, timedelta]] = {}  # new cards all share one entry; most others are one-offs
_PREVIEWS_KEPT = 4096
_RATINGS: dict[int, Rating] = {g: Rating(int(g)) for g in Grade}


def _review(scheduler: Scheduler, fields: Schedule, grade: Grade | int, now: datetime) -> Schedule:
    rating = _RATINGS.get(grade)
    if rating is None:
        rating = Rating(int(Grade(grade)))  # a bad grade raises here
    card, _log = scheduler.review_card(fields.to_fsrs(), rating, utc_seconds(now))
    return Schedule.from_fsrs(card)


def is_lapse(before: Schedule, grade: Grade | int) -> bool:
    """Forgetting a card in review (Again on a review card) is a lapse."""
    return before.state == CardState.REVIEW and Grade(grade) == Grade.AGAIN


__all__ = ["Schedule", "answer", "build_scheduler", "is_lapse", "preview", "utc_seconds"]
