"""Values the review layer hands to its callers (CLI, TUI). Plain, immutable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum


class Grade(IntEnum):
    """The four answer buttons (same numbers as fsrs.Rating)."""

    AGAIN = 1
    HARD = 2
    GOOD = 3
    EASY = 4


class CardState(IntEnum):
    NEW = 0
    LEARNING = 1
    REVIEW = 2
    RELEARNING = 3


@dataclass(frozen=True, slots=True)
class CardView:
    """A card as shown for review."""

    id: int
    kind: str
    front: str
    back: str
    path: str
    line: int
    note_title: str
    tags: tuple[str, ...]
    state: CardState
    due: datetime
    reps: int = 0
    lapses: int = 0
    suspended: bool = False
    buried: bool = False
    leech: bool = False
    check_status: str | None = None  # formula/snippet cards: latest check status, e.g. "verified"
    check_detail: str = ""
    retired: bool = False  # no longer in the notes (history kept; it comes back with the card)


@dataclass(frozen=True, slots=True)
class DueCounts:
    new: int = 0
    learning: int = 0
    review: int = 0

    @property
    def total(self) -> int:
        return self.new + self.learning + self.review


@dataclass(frozen=True, slots=True)
class DeckCount:
    """A deck is a tag (nested tags roll up): cards due today within the daily limits."""

    tag: str
    depth: int
    counts: DueCounts
    cards: int


@dataclass(frozen=True, slots=True)
class AnswerResult:
    card_id: int
    grade: Grade
    due: datetime
    interval: timedelta
    state: CardState
    leech: bool = False  # became a leech with this answer
    suspended: bool = False
    log_id: int | None = None  # its review-log row (what undo takes back)


@dataclass(frozen=True, slots=True)
class SessionSummary:
    cards: int
    seconds: float
    again: int
    by_grade: dict[int, int] = field(default_factory=dict)

    @property
    def again_rate(self) -> float:
        return self.again / self.cards if self.cards else 0.0
