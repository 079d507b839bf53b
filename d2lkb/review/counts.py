"""Today's due counts kept up to date answer by answer, without rebuilding the queue. Pure: no I/O.

`QueueCounts` remembers which cards today's queue (`queue.build_queue`) holds, by part. An
answer changes the queue in a way that can be derived from the answer alone, in the usual
case: the answered card leaves its part, and enters the learning part again if its next
step falls due within the learn-ahead window. The daily limit it used up shrinks by one,
which is exactly the room the card leaves, so no other card enters or leaves (the queue
takes cards greedily in order). The siblings an answer buries were never in the queue
(it offers one new/review card per sibling group, and none of a group that is learning).

Whatever cannot be derived this way (a card answered from outside the queue, a review
falling due again today, a bury that frees room under a limit, undo, other writers)
makes the methods return False; the caller then rebuilds the queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from d2lkb.review.queue import Queue
from d2lkb.review.types import CardState, DueCounts

_LEARNING_STATES = (CardState.LEARNING, CardState.RELEARNING)


@dataclass(slots=True)
class QueueCounts:
    learning: set[int]  # learning cards counted today: due now, interday, or due within learn-ahead
    review: set[int]
    new: set[int]
    reviews_left: int  # the daily limits the queue was built under
    new_left: int

    @classmethod
    def of(cls, queue: Queue, reviews_left: int, new_left: int) -> QueueCounts:
        return cls(set(queue.learning) | set(queue.ahead), set(queue.review), set(queue.new), reviews_left, new_left)

    @property
    def counts(self) -> DueCounts:
        return DueCounts(new=len(self.new), learning=len(self.learning), review=len(self.review))

    def answered(self, card_id: int, state_before: int, state_after: int, *, counted_after: bool,
                 due_today_after: bool, buried: Iterable[int]) -> bool:
        """Apply an answer. `counted_after`: the card is now a learning card counted today (due
        within the learn-ahead window, not suspended); `due_today_after`: it is due again before
        the day ends. False when the new queue cannot be derived (rebuild it)."""
        parts = (self.learning, self.review, self.new)
        if any(b in part for b in buried for part in parts):
            return False
        if card_id in self.review and state_before == CardState.REVIEW:
            self.review.discard(card_id)
            self.reviews_left -= 1
        elif card_id in self.new and state_before == CardState.NEW:
            self.new.discard(card_id)
            self.new_left -= 1
        elif card_id in self.learning and state_before in _LEARNING_STATES:
            self.learning.discard(card_id)
        else:
            return False
        if state_after in _LEARNING_STATES:
            if counted_after:
                self.learning.add(card_id)
            return True
        # A review card due again today would take a place among the reviews (and its order).
        return not due_today_after

    def removed(self, card_id: int, has_siblings: bool) -> bool:
        """A card buried or suspended. False when the new queue cannot be derived: another
        card may take its place (under a limit, or from its sibling group)."""
        if card_id in self.learning:
            if has_siblings:
                return False  # its group is free again: a new/review sibling may enter
            self.learning.discard(card_id)
            return True
        for part, left in ((self.review, self.reviews_left), (self.new, self.new_left)):
            if card_id in part:
                if has_siblings or len(part) >= left:
                    return False
                part.discard(card_id)
                return True
        return True  # not in the queue: the queue is unchanged
