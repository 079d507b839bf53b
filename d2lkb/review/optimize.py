"""Fitting FSRS parameters to the user's own review log (`d2lkb optimize`). Pure: no I/O.

The fitting itself is FSRS's reference optimizer (the `fsrs-rs-python` bindings of the Rust
`fsrs` crate, the one Anki ships): it fits 100,000 reviews in a fraction of a second, where
the pure-Python optimizer of the `fsrs` package needs torch and minutes. Both use the same
21 FSRS-6 parameters, so the result plugs straight into `fsrs.Scheduler`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from operator import itemgetter

from d2lkb.review.days import day_start

MIN_REVIEWS = 64  # reviews on a later day than an earlier review of the same card


@dataclass(frozen=True, slots=True)
class OptimizeResult:
    parameters: tuple[float, ...]
    log_loss_before: float
    log_loss_after: float
    rmse_before: float
    rmse_after: float
    reviews: int  # reviews used (those with a previous review of the same card)
    cards: int
    seconds: float

    @property
    def improved(self) -> bool:
        return self.log_loss_after < self.log_loss_before

    def to_dict(self) -> dict:
        return {"parameters": list(self.parameters), "log_loss_before": self.log_loss_before,
                "log_loss_after": self.log_loss_after, "rmse_before": self.rmse_before, "rmse_after": self.rmse_after,
                "reviews": self.reviews, "cards": self.cards, "seconds": round(self.seconds, 3),
                "improved": self.improved}


class NotEnoughReviews(ValueError):
    pass


def review_histories(log: Iterable[tuple[int, int, int]], *, rollover_hour: int = 4,
                     tz: tzinfo | None = None) -> list[list[tuple[int, int]]]:
    """(card id, reviewed_at UNIX seconds, rating) rows -> per card [(rating, days since previous review)].

    Days are review days (they start at `rollover_hour` local time), like the scheduler's.
    """
    rows = sorted(log, key=itemgetter(0, 1))
    if not rows:
        return []
    day_of = _review_days((r[1] for r in rows), rollover_hour, tz)
    histories: list[list[tuple[int, int]]] = []
    last_card = None
    last_day = 0
    for card_id, reviewed_at, rating in rows:
        day = day_of[reviewed_at]
        if card_id != last_card:
            histories.append([(rating, 0)])
            last_card = card_id
        else:
            histories[-1].append((rating, day - last_day))
        last_day = day
    return histories


def _review_days(times: Iterable[int], rollover_hour: int, tz: tzinfo | None) -> dict[int, int]:
    """UNIX seconds -> the review day's date (as an ordinal), converting once per review day, not
    once per review: times are visited in order, and each day's start and end are kept."""
    out: dict[int, int] = {}
    start = end = 0
    day = 0
    for t in sorted(set(times)):
        if not start <= t < end:
            first = day_start(datetime.fromtimestamp(t, UTC), rollover_hour, tz)
            # The next day's start from its noon, whatever a DST change did to this day's length.
            following = day_start(first + timedelta(hours=36), rollover_hour, tz)
            start, end, day = int(first.timestamp()), int(following.timestamp()), first.date().toordinal()
        out[t] = day
    return out


def _items(histories: Sequence[Sequence[tuple[int, int]]]):
    import fsrs_rs_python as rs

    items: list = []
    for history in histories:
        reviews = [rs.FSRSReview(rating, delta) for rating, delta in history]
        # One training item per review on a later day than the one before it: predict whether it was
        # recalled from the history before it (same-day repeats are learning steps, not memory tests).
        items.extend(rs.FSRSItem(reviews[:j]) for j in range(2, len(reviews) + 1) if history[j - 1][1] > 0)
    return items


def optimize(histories: Sequence[Sequence[tuple[int, int]]], current: Sequence[float] | None = None) -> OptimizeResult:
    """Fit parameters to the histories; report log loss and RMSE before (current) and after."""
    import fsrs_rs_python as rs

    started = time.perf_counter()
    items = _items(histories)
    if len(items) < MIN_REVIEWS:
        raise NotEnoughReviews(f"not enough reviews to optimise: {len(items)} on a later day than a previous review"
                               " of the same card,"
                               f" at least {MIN_REVIEWS} needed")
    before_params = list(current) if current is not None else list(rs.DEFAULT_PARAMETERS)
    before = rs.FSRS(before_params).evaluate(items)
    fitted = rs.FSRS(before_params).compute_parameters(items)
    after = rs.FSRS(fitted).evaluate(items)
    return OptimizeResult(tuple(round(float(p), 6) for p in fitted), float(before.log_loss), float(after.log_loss),
                          float(before.rmse_bins), float(after.rmse_bins), len(items),
                          sum(1 for h in histories if len(h) > 1), time.perf_counter() - started)
