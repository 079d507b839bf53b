"""Schedules from other tools as FSRS memory states. Pure: no I/O.

Both conversions are FSRS's reference implementation (fsrs-rs, via fsrs-rs-python), the
code Anki itself runs when it switches a collection from SM-2 to FSRS:
- `memory_state_from_sm2`: an SM-2 interval and ease (OSR, Anki's SM-2 cards) -> stability,
  difficulty; `sm2_retention` is the retention SM-2 is assumed to have achieved;
- `memory_state_from_history`: a card's ratings and the days between them (an Anki revlog).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

# The retention SM-2 schedules are assumed to reach (fsrs-rs's and Anki's default for
# "historical retention").
SM2_RETENTION = 0.9


@lru_cache(maxsize=4)
def _model(parameters: tuple[float, ...] | None):
    import fsrs_rs_python as rs

    return rs.FSRS(list(parameters) if parameters is not None else list(rs.DEFAULT_PARAMETERS))


def memory_state_from_sm2(ease_factor: float, interval_days: float, parameters: Sequence[float] | None = None,
                          sm2_retention: float = SM2_RETENTION) -> tuple[float, float]:
    """(stability in days, difficulty 1..10) of a card SM-2 scheduled `interval_days` apart at `ease_factor`
    (2.5 = 250 %)."""
    if ease_factor <= 0 or interval_days < 0:
        raise ValueError(f"impossible SM-2 state: ease {ease_factor}, interval {interval_days}")
    state = _model(tuple(parameters) if parameters is not None else None).memory_state_from_sm2(
        float(ease_factor), float(interval_days), float(sm2_retention))
    return float(state.stability), float(state.difficulty)


def memory_state_from_history(reviews: Sequence[tuple[int, int]],
                              parameters: Sequence[float] | None = None) -> tuple[float, float] | None:
    """(stability, difficulty) after `reviews`: (rating 1..4, whole days since the previous review; 0 for
    the first). None without any review."""
    if not reviews:
        return None
    import fsrs_rs_python as rs

    item = rs.FSRSItem([rs.FSRSReview(int(r), max(0, int(d))) for r, d in reviews])
    state = _model(tuple(parameters) if parameters is not None else None).memory_state(item)
    return float(state.stability), float(state.difficulty)
