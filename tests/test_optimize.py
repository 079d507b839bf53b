"""`d2lkb optimize`: FSRS parameters fitted to a real review log in a real KB."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from d2lkb.cli import app
from d2lkb.review.optimize import NotEnoughReviews, optimize, review_histories
from d2lkb.review.types import Grade
from tests.conftest import write

runner = CliRunner()


def test_review_histories_count_review_days():
    day = 86400
    log = [(1, 10 * day + 5 * 3600, 3), (1, 10 * day + 6 * 3600, 3), (1, 13 * day + 5 * 3600, 1), (2, 0, 4)]
    from datetime import UTC

    assert review_histories(log, rollover_hour=4, tz=UTC) == [[(3, 0), (3, 0), (1, 3)], [(4, 0)]]
    # 03:00 belongs to the previous review day
    assert review_histories([(1, 10 * day + 5 * 3600, 3), (1, 11 * day + 3 * 3600, 3)], rollover_hour=4,
                            tz=UTC) == [[(3, 0), (3, 0)]]


@pytest.mark.parametrize(("zone", "hour"), [("Europe/Berlin", 4), ("America/St_Johns", 0), ("UTC", 23)])
def test_review_histories_equal_day_by_day_conversion(zone, hour):
    """Review days looked up in a table of day starts equal converting every review (DST included)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from d2lkb.review.days import day_start

    tz = ZoneInfo(zone)
    rng = random.Random(hour)
    log = [(rng.randint(1, 40), rng.randint(1_700_000_000, 1_760_000_000), rng.randint(1, 4)) for _ in range(3000)]
    expected = []
    by_card: dict[int, list[tuple[int, int]]] = {}
    for card, t, rating in sorted(log):
        by_card.setdefault(card, []).append((t, rating))
    for reviews in by_card.values():
        days = [day_start(datetime.fromtimestamp(t, UTC), hour, tz).date() for t, _ in reviews]
        expected.append([(reviews[0][1], 0)] + [(r, (days[i] - days[i - 1]).days) for i, (_, r) in
                                                  enumerate(reviews) if i > 0])
    assert review_histories(log, rollover_hour=hour, tz=tz) == expected


def test_too_few_reviews_is_a_clear_error():
    with pytest.raises(NotEnoughReviews, match="at least"):
        optimize([[(3, 0), (3, 2)]])


def _simulate(kb, clock, cards: int, days: int, seed: int = 5) -> None:
    """A learner who forgets more as intervals grow: answers every due card for `days` days."""
    rng = random.Random(seed)
    for _ in range(days):
        for _ in range(cards * 3):
            card = kb.next_card()
            if card is None:
                break
            p_recall = 0.95 if card.state != 2 else max(0.5, 0.97 - 0.02 * card.reps)
            kb.answer(card.id, Grade.GOOD if rng.random() < p_recall else Grade.AGAIN)
            clock.advance(seconds=30)
        clock.advance(days=1)


def test_optimize_fits_and_the_scheduler_uses_the_fit(tmp_path, notes_dir, make_kb, clock):
    write(tmp_path / "kb" / "config.toml", "[review]\nfuzz = false\nnew_per_day = 40\n")
    write(notes_dir / "cards.md", "# Cards\n\n" + "\n\n".join(f"Question {i} :: Answer {i}" for i in range(60)))
    kb = make_kb()
    kb.sync()
    _simulate(kb, clock, 60, 25)
    write(notes_dir / "fresh.md", "# Fresh\n\nA card never reviewed :: yes\n")
    kb.sync()
    fresh = kb.conn.execute("SELECT id FROM card WHERE front = 'A card never reviewed'").fetchone()[0]
    before = kb.preview_intervals(fresh)
    result = kb.optimize(apply=False)
    assert result.reviews > 150 and result.cards == 60 and len(result.parameters) == 21
    assert result.log_loss_after < result.log_loss_before
    assert kb.preview_intervals(fresh) == before  # dry run changes nothing
    result = kb.optimize()
    assert kb.preview_intervals(fresh)[Grade.EASY] != before[Grade.EASY]  # the fit schedules from now on
    assert json.loads(kb.conn.execute("SELECT value FROM meta WHERE key = 'fsrs_parameters'").fetchone()[0]) == list(
        result.parameters)
    assert kb.reset_parameters()
    assert kb.preview_intervals(fresh) == before


def test_optimize_cli(tmp_path, notes_dir):
    write(notes_dir / "a.md", "# A\n\nQ :: A\n")
    result = runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "optimize"])
    assert result.exit_code == 1 and "not enough reviews" in result.stderr
