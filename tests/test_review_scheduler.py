"""The pure review core: FSRS scheduling (golden histories) and today's queue."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import fsrs
import pytest

from d2lkb.config import ReviewConfig
from d2lkb.review import scheduler
from d2lkb.review.days import day_bounds
from d2lkb.review.leech import is_leech_lapse
from d2lkb.review.queue import Candidate, DayLimits, build_queue, siblings_to_bury
from d2lkb.review.scheduler import Schedule
from d2lkb.review.types import CardState, Grade

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NO_FUZZ = ReviewConfig(fuzz=False)
M, D = timedelta(minutes=1), timedelta(days=1)

# A new card answered at T0 and then always when due. Frozen from fsrs 6.3.2 with the default
# parameters, retention 0.9, steps 1m 10m / 10m, no fuzz.
GOLDEN_GRADES = [3, 3, 3, 3, 1, 3, 3, 2, 4, 3]
GOLDEN_INTERVALS = [10 * M, 2 * D, 11 * D, 46 * D, 10 * M, 3 * D, 8 * D, 14 * D, 40 * D, 79 * D]
GOLDEN_STATES = [1, 2, 2, 2, 3, 2, 2, 2, 2, 2]

# Learning steps exercised: Again, Hard (between the two steps), Good, then Easy graduates.
STEPS_GRADES = [1, 2, 3, 4, 1, 2, 3]
STEPS_INTERVALS = [1 * M, timedelta(minutes=5, seconds=30), 10 * M, 1 * D, 10 * M, 15 * M, 1 * D]
STEPS_STATES = [1, 1, 1, 2, 3, 3, 2]


def run_history(grades, config=NO_FUZZ, start=T0):
    """Answer a new card with `grades`, each when it is due; (intervals, states, schedules)."""
    s, at = Schedule(due=int(start.timestamp())), start
    intervals, states, schedules = [], [], []
    for g in grades:
        if s.state != CardState.NEW:
            at = datetime.fromtimestamp(s.due, UTC)
        s = scheduler.answer(s, g, at, config)
        intervals.append(timedelta(seconds=s.due - int(at.timestamp())))
        states.append(int(s.state))
        schedules.append(s)
    return intervals, states, schedules


def fsrs_history(grades, start=T0):
    """The same history straight through fsrs (a library upgrade that changes numbers shows here)."""
    sched = fsrs.Scheduler(enable_fuzzing=False)
    card, at, out = fsrs.Card(card_id=1, due=start), start, []
    for g in grades:
        if card.last_review is not None:
            at = card.due
        card, _ = sched.review_card(card, fsrs.Rating(g), at)
        out.append(card.due - at)
    return out


@pytest.mark.parametrize(("grades", "intervals", "states"), [
    (GOLDEN_GRADES, GOLDEN_INTERVALS, GOLDEN_STATES),
    (STEPS_GRADES, STEPS_INTERVALS, STEPS_STATES),
], ids=["review-lapse-review", "learning-steps"])
def test_golden_history(grades, intervals, states):
    got, got_states, _ = run_history(grades)
    assert got == intervals
    assert got_states == states
    assert fsrs_history(grades) == intervals


def test_new_card_is_fsrs_learning_step_0_and_round_trips():
    new = Schedule(due=1000)
    card = new.to_fsrs()
    assert (card.state, card.step, card.stability, card.difficulty, card.last_review) == (
        fsrs.State.Learning, 0, None, None, None)
    assert Schedule.from_fsrs(card) == new
    *_, schedules = run_history(GOLDEN_GRADES[:5])
    for s in schedules:
        assert Schedule.from_fsrs(s.to_fsrs()) == s
        assert Schedule.from_dict(s.to_dict()) == s


def test_answers_equal_fsrs_on_its_own_cards():
    """`to_fsrs` builds a card that copies itself by hand (fsrs copies its input on every review):
    the copy is independent, and every answer is what fsrs gives its own `fsrs.Card`."""
    from copy import copy

    *_, schedules = run_history(GOLDEN_GRADES)
    fs = scheduler.build_scheduler(NO_FUZZ)
    for s in [Schedule(due=int(T0.timestamp())), *schedules]:
        ours = s.to_fsrs()
        twin = copy(ours)
        assert twin.__dict__ == ours.__dict__ and twin is not ours
        twin.stability = -1.0
        assert ours.stability == s.stability
        plain = fsrs.Card(**{k: v for k, v in vars(ours).items()})
        assert type(plain) is fsrs.Card
        at = datetime.fromtimestamp(s.due, UTC) + timedelta(hours=3)
        for g in Grade:
            assert scheduler.answer(s, g, at, NO_FUZZ) == Schedule.from_fsrs(
                fs.review_card(plain, fsrs.Rating(int(g)), at)[0])


def test_after_first_answer_the_card_is_learning_not_new():
    s = scheduler.answer(Schedule(due=0), Grade.AGAIN, T0, NO_FUZZ)
    assert (s.state, s.step, s.last_review) == (CardState.LEARNING, 0, int(T0.timestamp()))
    assert s.stability is not None and s.difficulty is not None


def test_bad_schedule_names_every_problem():
    with pytest.raises(ValueError, match="state 7 is not 0..3"):
        Schedule(state=7)
    with pytest.raises(ValueError, match="review card needs stability"):
        Schedule(state=2)
    with pytest.raises(ValueError):
        scheduler.answer(Schedule(), 5, T0)  # no such grade


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduler.answer(Schedule(), Grade.GOOD, datetime(2026, 1, 1))


def test_non_utc_now_and_microseconds_are_normalised():
    tokyo = T0.astimezone(timezone(timedelta(hours=9))) + timedelta(microseconds=700)
    assert scheduler.answer(Schedule(), Grade.GOOD, tokyo, NO_FUZZ) == scheduler.answer(
        Schedule(), Grade.GOOD, T0, NO_FUZZ)


@pytest.mark.parametrize("n", range(len(GOLDEN_GRADES)))
def test_preview_equals_answer_without_fuzz(n):
    *_, schedules = run_history(GOLDEN_GRADES[:n])
    s = schedules[-1] if schedules else Schedule(due=int(T0.timestamp()))
    at = datetime.fromtimestamp(s.due, UTC) + timedelta(hours=5)  # a little late
    preview = scheduler.preview(s, at, NO_FUZZ)
    assert set(preview) == set(Grade)
    for g in Grade:
        assert preview[g] == timedelta(seconds=scheduler.answer(s, g, at, NO_FUZZ).due - int(at.timestamp()))


def test_kept_previews_equal_fsrs_for_any_card_at_any_time():
    """`preview` keeps its results keyed on the schedule and the whole days since the last review:
    at every time of day, late or early, and with other cards asked in between, what it returns is
    what the scheduler gives a card answered then (fsrs reads time only as whole days)."""
    rng = random.Random(12)
    cards = [Schedule(due=int(T0.timestamp()))]
    for grades in ([3], [1], [3, 3], [3, 3, 3], [3, 3, 3, 1], [2, 4, 3]):
        cards.append(run_history(grades)[2][-1])
    for _ in range(60):  # many `now`s share a key (same card, same whole days elapsed)
        s = rng.choice(cards)
        at = datetime.fromtimestamp(s.due, UTC) + timedelta(seconds=rng.randint(-3 * 86400, 40 * 86400))
        got = scheduler.preview(s, at, NO_FUZZ)
        for g in Grade:
            assert got[g] == timedelta(seconds=scheduler.answer(s, g, at, NO_FUZZ).due - int(at.timestamp()))
    other = ReviewConfig(fuzz=False, learning_steps=(timedelta(minutes=3),))  # another scheduler: its own entries
    new = cards[0]
    assert scheduler.preview(new, T0, other)[Grade.AGAIN] == timedelta(minutes=3)
    assert scheduler.preview(new, T0, NO_FUZZ)[Grade.AGAIN] == timedelta(minutes=1)


def test_preview_ignores_fuzz_and_fuzz_stays_near_it():
    *_, schedules = run_history(GOLDEN_GRADES[:4])  # a review card with a 46-day interval
    s = schedules[-1]
    at = datetime.fromtimestamp(s.due, UTC)
    fuzzy = ReviewConfig(fuzz=True)
    assert scheduler.preview(s, at, fuzzy) == scheduler.preview(s, at, NO_FUZZ)
    random.seed(7)
    days = {(scheduler.answer(s, Grade.GOOD, at, fuzzy).due - int(at.timestamp())) / 86400 for _ in range(40)}
    plain = scheduler.preview(s, at, NO_FUZZ)[Grade.GOOD].days
    assert all(d == int(d) and abs(d - plain) <= 0.1 * plain + 2 for d in days)
    assert len(days) > 1  # fuzz really is on


def test_config_reaches_the_scheduler():
    cfg = ReviewConfig(fuzz=False, learning_steps=(timedelta(minutes=5),), maximum_interval=3,
                       desired_retention=0.8)
    built = scheduler.build_scheduler(cfg)
    assert (built.learning_steps, built.maximum_interval, built.desired_retention, built.enable_fuzzing) == (
        (timedelta(minutes=5),), 3, 0.8, False)
    s = scheduler.answer(Schedule(), Grade.AGAIN, T0, cfg)
    assert s.due - int(T0.timestamp()) == 300
    s = scheduler.answer(s, Grade.EASY, T0 + timedelta(minutes=5), cfg)
    assert s.due - s.last_review <= 3 * 86400  # maximum interval


def test_lapse_and_leech_rule():
    review = Schedule(CardState.REVIEW, None, 5.0, 5.0, 0, 0)
    assert scheduler.is_lapse(review, Grade.AGAIN)
    assert not scheduler.is_lapse(review, Grade.HARD)
    assert not scheduler.is_lapse(Schedule(CardState.LEARNING, 0, 1.0, 5.0, 0, 0), Grade.AGAIN)
    assert [n for n in range(20) if is_leech_lapse(n, 8)] == [8, 12, 16]
    assert not any(is_leech_lapse(n, 0) for n in range(20))


# -- the queue ---------------------------------------------------------------
JST = timezone(timedelta(hours=9))


def ts(*args, tz=JST) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp())


def queue_at(now: datetime, cards, limits: DayLimits | None = None, rollover=4):
    return build_queue(cards, now=now, day=day_bounds(now, rollover, JST), limits=limits or DayLimits())


def test_queue_order_learning_review_new_then_learn_ahead():
    now = datetime(2026, 3, 2, 15, 0, tzinfo=JST)
    n = ts(2026, 3, 2, 15, 0)
    cards = [
        Candidate(1, 0, n),  # new
        Candidate(2, 2, n + 3600),  # review due later today
        Candidate(3, 1, n - 60, last_review=n - 120),  # learning, due now
        Candidate(4, 2, n - 86400),  # overdue review
        Candidate(5, 3, n - 10, last_review=n - 610),  # relearning, due now
        Candidate(6, 1, n + 600, last_review=n),  # learning in 10 minutes: learn-ahead
        Candidate(7, 1, n + 3600, last_review=n),  # learning in an hour: not yet
        Candidate(8, 0, n),  # new
        Candidate(9, 2, ts(2026, 3, 3, 5, 0)),  # review due tomorrow
    ]
    q = queue_at(now, cards)
    assert q.cards == (3, 5, 4, 2, 1, 8, 6)
    assert (q.learning, q.review, q.new, q.ahead) == ((3, 5), (4, 2), (1, 8), (6,))
    assert (q.counts.learning, q.counts.review, q.counts.new) == (3, 2, 2)
    assert q.first() == 3


def test_queue_limits_and_what_was_done_today():
    now = datetime(2026, 3, 2, 15, 0, tzinfo=JST)
    n = ts(2026, 3, 2, 15, 0)
    cards = [Candidate(i, 0, n) for i in range(1, 31)] + [Candidate(100 + i, 2, n - i) for i in range(10)]
    q = queue_at(now, cards, DayLimits(new_per_day=20, reviews_per_day=5))
    assert q.new == tuple(range(1, 21))  # the 21st new card is not offered
    assert q.review == (109, 108, 107, 106, 105)
    q = queue_at(now, cards, DayLimits(new_per_day=20, reviews_per_day=5, new_done=18, reviews_done=7))
    assert (q.new, q.review) == ((1, 2), ())


def test_queue_skips_suspended_and_buried():
    now = datetime(2026, 3, 2, 15, 0, tzinfo=JST)
    n = ts(2026, 3, 2, 15, 0)
    tomorrow = ts(2026, 3, 3, 4, 0)
    cards = [Candidate(1, 0, n, suspended=True), Candidate(2, 0, n, buried_until=tomorrow),
             Candidate(3, 0, n, buried_until=n), Candidate(4, 2, n, suspended=True)]
    assert queue_at(now, cards).cards == (3,)  # a burial that has ended does not hide


def test_day_ends_at_the_next_rollover_hour():
    cards = [Candidate(1, 2, ts(2026, 3, 3, 3, 0)),  # 03:00 tomorrow
             Candidate(2, 2, ts(2026, 3, 3, 3, 59, 59)),
             Candidate(3, 2, ts(2026, 3, 3, 4, 0)),  # the next review day
             Candidate(4, 2, ts(2026, 3, 3, 5, 0))]
    assert queue_at(datetime(2026, 3, 2, 23, 0, tzinfo=JST), cards).review == (1, 2)
    assert queue_at(datetime(2026, 3, 3, 3, 59, tzinfo=JST), cards).review == (1, 2)
    # From 04:00 the new review day runs to 04:00 the day after.
    assert queue_at(datetime(2026, 3, 3, 4, 0, tzinfo=JST), cards).review == (1, 2, 3, 4)
    # Another rollover hour moves the boundary.
    assert queue_at(datetime(2026, 3, 2, 23, 0, tzinfo=JST), cards, rollover=0).review == ()


def test_interday_learning_is_due_all_day():
    now = datetime(2026, 3, 3, 8, 0, tzinfo=JST)
    yesterday = ts(2026, 3, 2, 20, 0)
    c = Candidate(1, 1, ts(2026, 3, 3, 20, 0), last_review=yesterday)  # a 1-day step
    assert queue_at(now, [c]).learning == (1,)
    later_today = Candidate(2, 1, ts(2026, 3, 3, 20, 0), last_review=ts(2026, 3, 3, 7, 0))
    assert queue_at(now, [later_today]).cards == ()


def test_one_new_or_review_card_per_sibling_group():
    now = datetime(2026, 3, 2, 15, 0, tzinfo=JST)
    n = ts(2026, 3, 2, 15, 0)
    cards = [Candidate(1, 0, n, "p"), Candidate(2, 0, n, "p"), Candidate(3, 0, n, "q"),
             Candidate(4, 2, n - 5, "q"), Candidate(5, 1, n - 1, "r", last_review=n - 61),
             Candidate(6, 0, n, "r"), Candidate(7, 0, n)]
    q = queue_at(now, cards)
    assert q.cards == (5, 4, 1, 7)
    # A sibling cut by the limit does not hide the others' group.
    q = queue_at(now, cards, DayLimits(new_per_day=20, reviews_per_day=0))
    assert q.cards == (5, 1, 3, 7)


def test_siblings_to_bury():
    day = day_bounds(datetime(2026, 3, 2, 15, 0, tzinfo=JST), 4, JST)
    n, end = ts(2026, 3, 2, 15, 0), int(day[1].timestamp())
    answered = Candidate(1, 0, n, "p")
    siblings = [Candidate(2, 0, n, "p"), Candidate(3, 2, end - 1, "p"), Candidate(4, 2, end, "p"),
                Candidate(5, 1, n, "p"), Candidate(6, 0, n, "other"), Candidate(7, 0, n, "p", suspended=True),
                Candidate(8, 0, n, "p", buried_until=end), Candidate(9, 0, n, "p", buried_until=n - 5)]
    assert siblings_to_bury(answered, siblings, day_end=day[1]) == [(2, None), (3, None), (9, n - 5)]
    assert siblings_to_bury(Candidate(1, 0, n, ""), siblings, day_end=day[1]) == []
