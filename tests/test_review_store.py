"""Review on a real SQLite knowledge base: queue, limits, rollover, burying, leeches, undo, stats.

Cards are inserted as rows (the notes parser is not involved); the only fake is the clock.
The review day is computed in a fixed UTC+9 zone so the tests do not depend on the machine's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from d2lkb.config import ReviewConfig, load_config
from d2lkb.review import scheduler
from d2lkb.review.scheduler import Schedule
from d2lkb.review.types import CardState, DueCounts, Grade
from d2lkb.store.kb import KnowledgeBase
from d2lkb.store.reviews import ReviewMixin
from d2lkb.textutil import kind_token, tag_tokens
from tests import conftest

JST = timezone(timedelta(hours=9))
M, D = timedelta(minutes=1), timedelta(days=1)
KB = KnowledgeBase if issubclass(KnowledgeBase, ReviewMixin) else type("KB", (KnowledgeBase, ReviewMixin), {})


class Clock(conftest.Clock):
    def set(self, *args) -> None:
        self.now = datetime(*args, tzinfo=JST)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 12, 0, tzinfo=JST))  # noon, Monday 2 March, Tokyo


@pytest.fixture
def make_kb(tmp_path, clock):
    opened = []

    def make(**review) -> KnowledgeBase:
        cfg = load_config(tmp_path / "kb", tmp_path / "notes")
        cfg = replace(cfg, review=ReviewConfig(**({"fuzz": False} | review)))
        kb = KB(cfg, clock=clock)
        kb.review_tz = JST
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        kb.close()


@pytest.fixture
def kb(make_kb):
    return make_kb()


def add_card(kb, front: str = "Q", *, back: str = "A", path: str = "n.md", sibling_key: str = "",
             tags: tuple[str, ...] = (), kind: str = "basic", check_hash: str | None = None, **sched) -> int:
    """Insert a live card (and its note, tags and search document) the way sync would."""
    now = int(kb.now().timestamp())
    row = kb.conn.execute("SELECT id FROM note WHERE path = ?", (path,)).fetchone()
    note_id = row[0] if row else kb.conn.execute(
        "INSERT INTO note (path, title, size, mtime_ns, hash, synced_at) VALUES (?, ?, 0, 0, '', ?)",
        (path, f"Title of {path}", now)).lastrowid
    line = kb.conn.execute("SELECT count(*) + 1 FROM card").fetchone()[0]
    cols = {"note_id": note_id, "path": path, "line": line, "kind": kind, "front": front, "back": back,
            "prompt": front, "context": back, "sibling_key": sibling_key, "created_at": now, "due": now} | sched
    card_id = kb.conn.execute(f"INSERT INTO card ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                              tuple(cols.values())).lastrowid
    doc_id = kb.conn.execute(
        "INSERT INTO doc (kind, note_id, card_id, path, line, title, check_hash) VALUES ('card', ?, ?, ?, ?, ?, ?)",
        (note_id, card_id, path, line, front, check_hash)).lastrowid
    kb.conn.execute("INSERT INTO fts (rowid, title, body, meta) VALUES (?, ?, ?, ?)",
                    (doc_id, front, back, kind_token("card") + " " + tag_tokens(tags)))
    for name in tags:
        tag_id = None
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            key = "/".join(parts[:i]).lower()
            found = kb.conn.execute("SELECT id FROM tag WHERE name = ?", (key,)).fetchone()
            tag_id = found[0] if found else kb.conn.execute(
                "INSERT INTO tag (name, display, parent_id) VALUES (?, ?, ?)",
                (key, "/".join(parts[:i]), tag_id)).lastrowid
        kb.conn.execute("INSERT INTO cardtag (card_id, tag_id) VALUES (?, ?)", (card_id, tag_id))
        kb.conn.execute("INSERT INTO doctag (tag_id, doc_id) VALUES (?, ?)", (tag_id, doc_id))
        kb.conn.execute("INSERT OR IGNORE INTO notetag (note_id, tag_id) VALUES (?, ?)", (note_id, tag_id))
    return card_id


def add_review_card(kb, front: str = "R", *, due: datetime, interval_days: int = 10, **kw) -> int:
    """A card already in review, last seen `interval_days` before `due`."""
    last = due - timedelta(days=interval_days)
    return add_card(kb, front, state=2, stability=float(interval_days), difficulty=5.0,
                    due=int(due.timestamp()), last_review=int(last.timestamp()), reps=3, **kw)


def card_row(kb, card_id: int) -> dict:
    cur = kb.conn.execute("SELECT * FROM card WHERE id = ?", (card_id,))
    return dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))


def dump(kb, *tables: str) -> dict:
    return {t: kb.conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}


def answer_when_due(kb, clock, card_id: int, grade) -> timedelta:
    due = card_row(kb, card_id)["due"]
    clock.now = max(clock.now, datetime.fromtimestamp(due, UTC))
    return kb.answer(card_id, grade).interval


def queue_ids(kb, query=None, limit=1000) -> list[int]:
    """Cards shown one after the other, answering each Easy (so it leaves today's queue)."""
    shown = []
    while (view := kb.next_card(query)) is not None and len(shown) < limit:
        shown.append(view.id)
        kb.answer(view.id, Grade.EASY)
    return shown


# -- scheduling through the store ----------------------------------------------
def test_golden_history_through_the_store(kb, clock):
    # Same grades and frozen intervals as test_review_scheduler's golden history.
    card = add_card(kb)
    grades = [3, 3, 3, 3, 1, 3, 3, 2, 4, 3]
    got = [answer_when_due(kb, clock, card, g) for g in grades]
    assert got == [10 * M, 2 * D, 11 * D, 46 * D, 10 * M, 3 * D, 8 * D, 14 * D, 40 * D, 79 * D]
    row = card_row(kb, card)
    assert (row["state"], row["step"], row["reps"], row["lapses"]) == (2, None, 10, 1)
    # The stored schedule is exactly what fsrs gives for the log's history.
    logs = kb.conn.execute("SELECT rating, reviewed_at FROM reviewlog WHERE card_id = ? ORDER BY id", (card,)).fetchall()
    s = Schedule(due=0)
    for rating, at in logs:
        s = scheduler.answer(s, rating, datetime.fromtimestamp(at, UTC), kb.config.review)
    assert (s.stability, s.difficulty, s.due, s.last_review) == (
        row["stability"], row["difficulty"], row["due"], row["last_review"])


def test_preview_matches_the_answer_for_every_grade(kb, clock):
    card = add_card(kb)
    for setup in [None, Grade.GOOD, Grade.GOOD, Grade.AGAIN]:  # new, learning, review, relearning...
        if setup is not None:
            answer_when_due(kb, clock, card, setup)
            clock.now = datetime.fromtimestamp(card_row(kb, card)["due"], UTC) + timedelta(hours=3)
        preview = kb.preview_intervals(card)
        for g in Grade:
            result = kb.answer(card, g)
            assert result.interval == preview[g], (setup, g)
            assert result.due == clock.now.replace(microsecond=0) + preview[g]
            kb.undo()


def test_answer_accepts_plain_ints_and_rejects_bad_grades_and_cards(kb):
    card = add_card(kb)
    assert kb.answer(card, 3).grade is Grade.GOOD
    with pytest.raises(ValueError):
        kb.answer(card, 0)
    with pytest.raises(ValueError, match="no card with id 999"):
        kb.answer(999, Grade.GOOD)
    kb.conn.execute("UPDATE card SET retired_at = 1 WHERE id = ?", (card,))
    with pytest.raises(ValueError, match="retired"):
        kb.answer(card, Grade.GOOD)
    assert kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 1


def test_review_log_has_everything(kb, clock):
    card = add_card(kb)
    kb.answer(card, Grade.GOOD, duration_ms=4200)
    clock.advance(minutes=10)
    before = card_row(kb, card)
    kb.answer(card, Grade.GOOD, duration_ms=1500)
    after = card_row(kb, card)
    cur = kb.conn.execute("SELECT * FROM reviewlog ORDER BY id DESC LIMIT 1")
    log = dict(zip([c[0] for c in cur.description], cur.fetchone(), strict=True))
    assert log["card_id"] == card
    assert (log["rating"], log["reviewed_at"], log["duration_ms"]) == (3, int(clock.now.timestamp()), 1500)
    for f in ("state", "step", "stability", "difficulty", "due", "last_review", "reps", "lapses", "leech",
              "suspended"):
        assert log[f"{f}_before"] == before[f], f
        assert log[f"{f}_after"] == after[f], f
    assert (log["state_before"], log["state_after"]) == (1, 2)
    assert (log["buried_until_before"], json.loads(log["buried_siblings"]), log["leech_tagged"]) == (None, [], 0)


# -- the queue -------------------------------------------------------------------
def test_order_learning_then_reviews_then_new(kb, clock):
    new1, new2 = add_card(kb, "new1"), add_card(kb, "new2")
    late = add_review_card(kb, "late", due=clock.now - 2 * D)
    today = add_review_card(kb, "today", due=clock.now + timedelta(hours=5))
    add_review_card(kb, "tomorrow", due=datetime(2026, 3, 3, 6, 0, tzinfo=JST))
    kb.answer(new2, Grade.AGAIN)  # learning, due in 1 minute
    assert kb.due_counts() == DueCounts(new=1, learning=1, review=2)
    assert kb.next_card().id == late
    clock.advance(minutes=1)
    assert kb.next_card().id == new2  # the learning card, now due, comes first
    kb.answer(new2, Grade.EASY)
    assert queue_ids(kb) == [late, today, new1]
    assert kb.next_card() is None
    assert kb.due_counts() == DueCounts()


def test_learn_ahead_when_nothing_else_is_left(kb, clock):
    card = add_card(kb)
    kb.answer(card, Grade.GOOD)  # next step in 10 minutes
    assert kb.next_card().id == card  # within the 20-minute learn-ahead window
    assert kb.due_counts() == DueCounts(learning=1)
    kb.answer(card, Grade.AGAIN)
    kb.answer(card, Grade.HARD)
    kb.answer(card, Grade.GOOD)
    other = add_card(kb, "other")
    assert kb.next_card().id == other  # something else is left: no learning ahead
    kb.answer(other, Grade.EASY)
    assert kb.next_card().id == card


def test_learning_card_beyond_learn_ahead_waits(make_kb, clock):
    kb = make_kb(learning_steps=(timedelta(hours=1),))
    card = add_card(kb)
    kb.answer(card, Grade.AGAIN)
    assert kb.next_card() is None
    assert kb.due_counts() == DueCounts()
    assert kb.next_learning_due() == clock.now + timedelta(hours=1)
    clock.advance(minutes=41)
    assert kb.next_card().id == card


def test_new_card_limit(make_kb, clock):
    kb = make_kb(new_per_day=20)
    cards = [add_card(kb, f"q{i}") for i in range(25)]
    assert kb.due_counts().new == 20
    assert queue_ids(kb) == cards[:20]  # the 21st is not offered today
    assert kb.due_counts() == DueCounts()
    clock.set(2026, 3, 3, 3, 59)  # still the same review day
    assert kb.next_card() is None
    clock.set(2026, 3, 3, 4, 0)  # a new day: five left
    assert kb.due_counts().new == 5
    assert kb.next_card().id == cards[20]


def test_review_limit_and_undo_gives_the_slot_back(make_kb, clock):
    kb = make_kb(reviews_per_day=3)
    cards = [add_review_card(kb, f"r{i}", due=clock.now - timedelta(hours=i)) for i in range(5)]
    assert kb.due_counts().review == 3
    kb.answer(cards[4], Grade.GOOD)  # the most overdue first
    assert kb.due_counts().review == 2
    kb.undo()
    assert kb.due_counts().review == 3
    assert queue_ids(kb) == [cards[4], cards[3], cards[2]]


def test_learning_cards_are_not_limited(make_kb, clock):
    kb = make_kb(new_per_day=1)
    a, b = add_card(kb, "a"), add_card(kb, "b")
    kb.answer(a, Grade.AGAIN)
    clock.advance(minutes=1)
    assert kb.due_counts() == DueCounts(learning=1)
    kb.answer(b, Grade.GOOD)  # by hand, past the limit
    assert kb.due_counts() == DueCounts(learning=2)


def test_day_rollover_at_4am(kb, clock):
    clock.set(2026, 3, 2, 23, 0)
    at3 = add_review_card(kb, "03:00", due=datetime(2026, 3, 3, 3, 0, tzinfo=JST))
    at4 = add_review_card(kb, "04:00", due=datetime(2026, 3, 3, 4, 0, tzinfo=JST))
    at5 = add_review_card(kb, "05:00", due=datetime(2026, 3, 3, 5, 0, tzinfo=JST))
    assert kb.due_counts().review == 1  # 'today' ends at the next 4 am
    assert kb.next_card().id == at3
    clock.set(2026, 3, 3, 3, 59, 59)
    assert kb.due_counts().review == 1
    clock.set(2026, 3, 3, 4, 0)
    assert kb.due_counts().review == 3
    assert queue_ids(kb) == [at3, at4, at5]


def test_rollover_hour_is_configurable(make_kb, clock):
    kb = make_kb(day_starts_at=0)
    clock.set(2026, 3, 2, 23, 0)
    add_review_card(kb, due=datetime(2026, 3, 3, 3, 0, tzinfo=JST))
    assert kb.due_counts().review == 0


def test_query_restricts_the_queue(kb):
    calc = add_card(kb, "d/dx x^2", tags=("math/calculus",))
    alg = add_card(kb, "a+b", tags=("math/algebra",))
    ml = add_card(kb, "loss", tags=("ML",))
    assert kb.due_counts("#math/calculus") == DueCounts(new=1)
    assert kb.due_counts("#calculus") == DueCounts()  # a child does not match its parent's name
    assert kb.due_counts("#math") == DueCounts(new=2)
    assert kb.next_card("#ml").id == ml
    assert queue_ids(kb, "#math") == [calc, alg]
    assert kb.next_card("#nothing") is None


def test_siblings_are_buried_until_the_next_day(kb, clock):
    c1, c2, c3 = (add_card(kb, f"cloze {i}", sibling_key="para-1") for i in range(3))
    rev = add_card(kb, "fwd", sibling_key="pair")
    rev_back = add_card(kb, "back", sibling_key="pair")
    other = add_card(kb, "other")
    assert kb.due_counts().new == 3  # one card per sibling group
    assert kb.next_card().id == c1
    kb.answer(c1, Grade.GOOD)  # learning again in 10 minutes
    end = int(datetime(2026, 3, 3, 4, 0, tzinfo=JST).timestamp())
    assert card_row(kb, c2)["buried_until"] == end == card_row(kb, c3)["buried_until"]
    assert kb.card(c2).buried
    assert kb.next_card().id == rev
    kb.answer(rev, Grade.EASY)
    assert card_row(kb, rev_back)["buried_until"] == end
    assert kb.next_card().id == other
    kb.answer(other, Grade.EASY)
    assert kb.next_card().id == c1  # learning ahead; its siblings never come today
    kb.answer(c1, Grade.EASY)
    assert kb.next_card() is None
    clock.set(2026, 3, 3, 3, 59)
    assert kb.next_card() is None
    clock.set(2026, 3, 3, 4, 0)
    assert kb.next_card().id == c2
    assert kb.due_counts().new == 2  # c2 (for the paragraph) and rev_back


def test_learning_siblings_are_not_buried(kb):
    a, b = add_card(kb, "a", sibling_key="s"), add_card(kb, "b", sibling_key="s")
    kb.answer(b, Grade.AGAIN)  # b is learning
    kb.answer(a, Grade.EASY)
    assert card_row(kb, b)["buried_until"] is None


# -- leeches -----------------------------------------------------------------------
def lapse_until(kb, clock, card, lapses: int) -> None:
    """Review/forget cycles: Again on a review card, then Good to leave relearning."""
    while card_row(kb, card)["lapses"] < lapses:
        if card_row(kb, card)["state"] != CardState.REVIEW:
            answer_when_due(kb, clock, card, Grade.GOOD)
            continue
        answer_when_due(kb, clock, card, Grade.AGAIN)


def test_leech_after_8_lapses_is_tagged(kb, clock):
    card = add_card(kb)
    lapse_until(kb, clock, card, 7)
    assert card_row(kb, card)["leech"] == 0
    answer_when_due(kb, clock, card, Grade.GOOD)
    clock.now = datetime.fromtimestamp(card_row(kb, card)["due"], UTC)
    result = kb.answer(card, Grade.AGAIN)
    row = card_row(kb, card)
    assert (row["lapses"], row["leech"], row["suspended"]) == (8, 1, 0)
    assert result.leech and not result.suspended
    assert kb.card(card).tags == ("leech",) and kb.card(card).leech
    assert kb.card_ids("#leech") == [card]  # searchable too
    assert kb.conn.execute("SELECT display FROM tag WHERE name = 'leech'").fetchone() == ("leech",)
    assert [d.tag for d in kb.deck_counts()] == ["", "leech"]


def test_leech_suspend(make_kb, clock):
    kb = make_kb(leech_suspend=True, leech_lapses=3)
    card = add_card(kb)
    lapse_until(kb, clock, card, 3)
    row = card_row(kb, card)
    assert (row["lapses"], row["leech"], row["suspended"]) == (3, 1, 1)
    last = kb.conn.execute("SELECT suspended_after, leech_after, leech_tagged FROM reviewlog ORDER BY id DESC").fetchone()
    assert last == (1, 1, 1)
    assert kb.next_card() is None
    assert kb.card(card).suspended
    # Unsuspended, it is caught again at half the threshold later (3 + 1 lapses), tag kept.
    kb.unsuspend(card)
    lapse_until(kb, clock, card, 4)
    assert card_row(kb, card)["suspended"] == 1
    assert kb.conn.execute("SELECT leech_tagged FROM reviewlog ORDER BY id DESC").fetchone() == (0,)


def test_undo_of_the_leech_answer_removes_the_tag(make_kb, clock):
    kb = make_kb(leech_suspend=True, leech_lapses=2)
    card = add_card(kb, tags=("math",))
    lapse_until(kb, clock, card, 1)
    answer_when_due(kb, clock, card, Grade.GOOD)
    clock.now = datetime.fromtimestamp(card_row(kb, card)["due"], UTC)
    tables = ("card", "reviewlog", "tag", "cardtag", "doctag")
    before = dump(kb, *tables)
    assert kb.answer(card, Grade.AGAIN).leech
    assert kb.card(card).tags == ("leech", "math")
    assert kb.undo() == card
    assert dump(kb, *tables) == before
    assert kb.card(card).tags == ("math",)


# -- undo, bury, suspend -------------------------------------------------------------
def test_undo_restores_exactly(kb, clock):
    a = add_card(kb, "a", sibling_key="s")
    b = add_card(kb, "b", sibling_key="s")
    c = add_card(kb, "c", sibling_key="s", buried_until=int(clock.now.timestamp()) - 60)  # an old burial
    kb.answer(a, Grade.GOOD)
    clock.advance(minutes=10)
    tables = ("card", "reviewlog", "tag", "cardtag", "doctag")
    rows = {x: card_row(kb, x) for x in (a, b, c)}
    whole = dump(kb, *tables)
    # a second answer (graduates), siblings were already buried by the first
    kb.answer(a, Grade.GOOD, duration_ms=900)
    assert card_row(kb, a) != rows[a]
    assert kb.undo() == a
    assert {x: card_row(kb, x) for x in (a, b, c)} == rows
    assert dump(kb, *tables) == whole
    # the first answer: it buried b and c; undo restores their previous burial (c's old one)
    assert kb.undo() == a
    assert card_row(kb, b)["buried_until"] is None
    assert card_row(kb, c)["buried_until"] == int(clock.now.timestamp()) - 660
    assert card_row(kb, a)["state"] == 0 and card_row(kb, a)["reps"] == 0
    assert kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 0
    assert kb.undo() is None


def test_undo_of_an_answer_to_a_buried_card_buries_it_again(kb):
    card = add_card(kb)
    kb.bury(card)
    before = card_row(kb, card)
    kb.answer(card, Grade.GOOD)
    assert card_row(kb, card)["buried_until"] is None
    kb.undo()
    assert card_row(kb, card) == before


def test_bury_until_next_day(kb, clock):
    a, b = add_card(kb, "a"), add_card(kb, "b")
    kb.bury(a)
    assert kb.card(a).buried
    assert kb.due_counts().new == 1
    assert kb.next_card().id == b
    clock.set(2026, 3, 3, 4, 0)
    assert not kb.card(a).buried
    assert kb.next_card().id == a


def test_suspend_and_unsuspend(kb):
    a, b = add_card(kb, "a"), add_card(kb, "b")
    kb.suspend(a)
    assert kb.card(a).suspended
    assert kb.next_card().id == b
    assert kb.due_counts().new == 1
    kb.unsuspend(a)
    assert kb.next_card().id == a
    with pytest.raises(ValueError):
        kb.suspend(12345)


def test_answer_is_durable(kb, tmp_path):
    card = add_card(kb)
    kb.answer(card, Grade.GOOD)
    other = KB(kb.config, clock=kb.clock)  # a second connection sees the committed answer
    try:
        assert other.conn.execute("SELECT state, reps FROM card WHERE id = ?", (card,)).fetchone() == (1, 1)
        assert other.conn.execute("SELECT count(*) FROM reviewlog").fetchone() == (1,)
    finally:
        other.close()


# -- come back tomorrow --------------------------------------------------------------
def test_come_back_tomorrow(kb, clock):
    easy, good, again, untouched = (add_card(kb, n) for n in ("easy", "good", "again", "untouched"))
    assert kb.answer(easy, Grade.EASY).interval == 8 * D
    kb.answer(good, Grade.GOOD)
    kb.answer(again, Grade.AGAIN)
    clock.advance(minutes=10)
    assert kb.answer(good, Grade.GOOD).interval == 2 * D
    assert kb.answer(again, Grade.GOOD).interval == 10 * M
    clock.advance(minutes=10)
    assert kb.answer(again, Grade.HARD).interval == 10 * M  # Hard keeps the step
    # It is evening: 'again' is still learning today, and one new card is left.
    clock.set(2026, 3, 2, 20, 0)
    assert kb.due_counts() == DueCounts(new=1, learning=1)
    assert kb.next_card().id == again
    assert kb.answer(again, Grade.GOOD).interval == 1 * D  # graduates: due tomorrow 20:00
    assert kb.next_card().id == untouched
    kb.answer(untouched, Grade.EASY)
    assert kb.next_card() is None
    # Tomorrow morning: 'again' is due today (at 20:00, but the day counts), nothing else.
    clock.set(2026, 3, 3, 9, 0)
    assert kb.due_counts() == DueCounts(review=1)
    assert kb.next_card().id == again
    # The day after: 'good' (2 days) and 'again' (not reviewed yesterday, overdue first).
    clock.set(2026, 3, 4, 9, 0)
    assert kb.due_counts() == DueCounts(review=2)
    assert queue_ids(kb) == [again, good]
    assert kb.next_card() is None
    # 'easy' (8 days from 2 March) and 'untouched' (Easy on 2 March at 20:00: 8 days) are back
    # on 10 March, not before; whatever else is due comes in due order.
    assert min(kb.card(easy).due, kb.card(untouched).due) >= datetime(2026, 3, 10, 4, 0, tzinfo=JST)
    clock.set(2026, 3, 10, 9, 0)
    due = {c: card_row(kb, c)["due"] for c in (easy, good, again, untouched)}
    shown = queue_ids(kb)
    assert {easy, untouched} <= set(shown)
    assert shown == sorted(shown, key=lambda c: (due[c], c))


# -- views and statistics ------------------------------------------------------------
def test_card_view(kb, clock):
    card = add_card(kb, "What is 1+1?", back="2", path="math/basics.md", tags=("Math/Arith",), kind="formula",
                    check_hash="h1")
    view = kb.card(card)
    assert (view.front, view.back, view.path, view.note_title, view.kind) == (
        "What is 1+1?", "2", "math/basics.md", "Title of math/basics.md", "formula")
    assert view.tags == ("Math/Arith",)
    assert view.state is CardState.NEW and view.due == clock.now.astimezone(UTC)
    assert view.check_status == "unchecked"
    for at, status in ((10, "refuted"), (20, "verified")):
        kb.conn.execute("INSERT INTO checkresult (kind, check_hash, device, torch_version, status, detail, checked_at)"
                        " VALUES ('formula', 'h1', ?, '', ?, ?, ?)", (status, status, f"{status}!", at))
    assert (kb.card(card).check_status, kb.card(card).check_detail) == ("verified", "verified!")
    assert kb.card(add_card(kb, "plain")).check_status is None
    with pytest.raises(ValueError):
        kb.card(999)


def test_deck_counts_roll_up_nested_tags(make_kb, clock):
    kb = make_kb(new_per_day=2)
    add_card(kb, "a", tags=("ML/supervised",))
    add_card(kb, "b", tags=("ml/unsupervised",))
    add_card(kb, "c", tags=("ml",))
    add_card(kb, "d", tags=("math",))
    add_review_card(kb, "e", due=clock.now - D, tags=("math",))
    add_card(kb, "f")
    decks = {d.tag: d for d in kb.deck_counts()}
    assert list(decks) == ["", "math", "ML", "ML/supervised", "ml/unsupervised"]
    assert decks[""].counts == DueCounts(new=2, review=1) and decks[""].cards == 6
    assert (decks["ML"].counts, decks["ML"].cards, decks["ML"].depth) == (DueCounts(new=2), 3, 0)
    assert (decks["ML/supervised"].counts, decks["ML/supervised"].depth) == (DueCounts(new=1), 1)
    assert decks["math"].counts == DueCounts(new=1, review=1)


def test_review_stats(make_kb, clock):
    kb = make_kb(new_per_day=5)
    news = [add_card(kb, f"n{i}") for i in range(7)]
    rev = [add_review_card(kb, f"r{i}", due=clock.now - D) for i in range(3)]
    kb.suspend(news[6])
    empty = kb.review_stats()
    assert empty == {"cards": 10, "new": 6, "learning": 0, "review": 3, "suspended": 1, "due_today": 8,
                     "reviews_today": 0, "retention_30d": None}
    kb.answer(rev[0], Grade.GOOD)
    kb.answer(rev[1], Grade.AGAIN)  # a lapse: relearning
    kb.answer(rev[2], Grade.HARD)
    kb.answer(news[0], Grade.AGAIN)  # learning steps do not count for retention
    stats = kb.review_stats()
    assert list(stats) == ["cards", "new", "learning", "review", "suspended", "due_today", "reviews_today",
                           "retention_30d"]
    assert stats["reviews_today"] == 4
    assert (stats["new"], stats["learning"], stats["review"], stats["suspended"]) == (5, 2, 2, 1)
    assert stats["retention_30d"] == pytest.approx(2 / 3)
    assert stats["due_today"] == 4 + 2  # 4 new left within the limit, 2 learning cards due today
    json.dumps(stats)  # `stats --json`


def test_history_statistics(kb, clock):
    cards = [add_review_card(kb, f"r{i}", due=clock.now) for i in range(4)]
    clock.set(2026, 3, 2, 12, 0)
    kb.answer(cards[0], Grade.GOOD, duration_ms=2000)
    kb.answer(cards[1], Grade.AGAIN, duration_ms=3000)
    clock.set(2026, 3, 3, 2, 0)  # after midnight but before 4 am: still Monday's review day
    kb.answer(cards[2], Grade.EASY)
    clock.set(2026, 3, 3, 9, 0)
    since = clock.now
    kb.answer(cards[3], Grade.HARD, duration_ms=4000)
    kb.answer(cards[1], Grade.GOOD, duration_ms=1000)  # relearning step: not a review-state answer
    assert kb.heatmap(days=7) == {"2026-03-02": 3, "2026-03-03": 2}
    assert kb.answer_breakdown() == {1: 1, 2: 1, 3: 2, 4: 1}
    by_day = kb.retention_by_day(days=3)
    assert by_day == [("2026-03-01", None), ("2026-03-02", pytest.approx(2 / 3)), ("2026-03-03", 1.0)]
    summary = kb.session_summary(since)
    assert (summary.cards, summary.seconds, summary.again, summary.by_grade) == (2, 5.0, 0, {1: 0, 2: 1, 3: 1, 4: 0})
    # Due: 4 Mar 09:00 (1 day), 26 Mar 09:00 (23 days), 3 Apr 12:00 (32 days), 23 Apr 02:00 (51 days,
    # before 4 am: the review day of 22 April). Index 0 is today, the review day of 3 March.
    forecast = kb.forecast(days=60)
    assert {i: n for i, n in enumerate(forecast) if n} == {1: 1, 23: 1, 31: 1, 50: 1}
    assert sum(kb.forecast(days=30)) == 2


def test_forecast_counts_overdue_today_and_skips_new_and_suspended(kb, clock):
    add_review_card(kb, due=clock.now - 3 * D)
    add_review_card(kb, due=datetime(2026, 3, 3, 3, 0, tzinfo=JST))  # today (before 4 am)
    add_review_card(kb, due=datetime(2026, 3, 3, 4, 0, tzinfo=JST))  # tomorrow
    add_review_card(kb, due=datetime(2026, 3, 5, 4, 0, tzinfo=JST))
    add_review_card(kb, due=datetime(2026, 4, 5, 4, 0, tzinfo=JST))  # beyond the window
    kb.suspend(add_review_card(kb, due=clock.now))
    add_card(kb)
    assert kb.forecast(days=5) == [2, 1, 0, 1, 0]


def test_session_summary_without_durations_uses_wall_time(kb, clock):
    since = clock.now
    a, b = add_card(kb), add_card(kb)
    clock.advance(seconds=30)
    kb.answer(a, Grade.AGAIN)
    clock.advance(seconds=45)
    kb.answer(b, Grade.GOOD)
    s = kb.session_summary(since)
    assert (s.cards, s.seconds, s.again, s.again_rate) == (2, 75.0, 1, 0.5)


def test_fitted_parameters_are_used(kb, clock):
    card = add_card(kb)
    default = kb.preview_intervals(card)
    params = list(scheduler.build_scheduler(kb.config.review).parameters)
    params[2] = 10.0  # initial stability for Good
    kb.conn.execute("INSERT INTO meta (key, value) VALUES ('fsrs_parameters', ?)", (json.dumps(params),))
    assert kb.preview_intervals(card)[Grade.GOOD] == default[Grade.GOOD]  # still a learning step
    kb.answer(card, Grade.GOOD)
    assert kb.preview_intervals(card)[Grade.GOOD] == 10 * D
