"""Review history survives editing the notes: real Markdown, real sync, real answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from d2lkb.config import ReviewConfig, load_config
from d2lkb.review.types import DueCounts, Grade
from d2lkb.store.kb import KnowledgeBase
from d2lkb.store.reviews import ReviewMixin

pytest.importorskip("d2lkb.notes.parse")

JST = timezone(timedelta(hours=9))
KB = KnowledgeBase if issubclass(KnowledgeBase, ReviewMixin) else type("KB", (KnowledgeBase, ReviewMixin), {})
SCHEDULE = "state, step, stability, difficulty, due, last_review, reps, lapses, leech, suspended"

NOTE = """---
title: Calculus
tags: [math]
---
# Calculus

Some intro text.

## Rules #calculus

What is the derivative of x^2? :: 2x
Sum rule ::: derivative of a sum is the sum of derivatives

A model's ==behavior== is set by its ==parameters==.
"""


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 12, 0, tzinfo=JST))


@pytest.fixture
def kb(tmp_path, clock):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")  # every note makes cards
    cfg = load_config(tmp_path / "kb", notes)
    kb = KB(replace(cfg, review=ReviewConfig(fuzz=False)), clock=clock)
    kb.review_tz = JST
    yield kb
    kb.close()


def write(kb, rel: str, text: str) -> None:
    path = kb.config.notes_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def sync(kb, clock) -> None:
    clock.now += timedelta(seconds=1)
    report = kb.sync()
    assert report.warnings == []


def card_id(kb, front_start: str) -> int:
    rows = kb.conn.execute("SELECT id FROM card WHERE retired_at IS NULL AND front LIKE ?",
                           (front_start + "%",)).fetchall()
    assert len(rows) == 1, (front_start, rows)
    return rows[0][0]


def history(kb, cid: int) -> tuple:
    row = kb.conn.execute(f"SELECT {SCHEDULE} FROM card WHERE id = ?", (cid,)).fetchone()
    log = kb.conn.execute("SELECT * FROM reviewlog WHERE card_id = ? ORDER BY id", (cid,)).fetchall()
    return row, log


@pytest.fixture
def reviewed(kb, clock):
    """The note synced and some of its cards reviewed: (basic id, cloze id, their histories)."""
    write(kb, "calc.md", NOTE)
    sync(kb, clock)
    basic = card_id(kb, "What is the derivative")
    cloze = card_id(kb, "A model's [...] is set")
    kb.answer(basic, Grade.GOOD)
    kb.answer(cloze, Grade.AGAIN)
    clock.now += timedelta(minutes=10)
    kb.answer(basic, Grade.GOOD)
    kb.answer(cloze, Grade.GOOD)
    return basic, cloze, {basic: history(kb, basic), cloze: history(kb, cloze)}


def test_editing_the_note_keeps_schedules_and_logs(kb, clock, reviewed):
    basic, cloze, before = reviewed
    edited = (NOTE.replace("Some intro text.", "A longer introduction, rewritten.\n\nWith a new paragraph.")
              .replace("What is the derivative of x^2? :: 2x", "What is the derivatve of x^2 ? :: 2x (power rule)")
              .replace("## Rules #calculus", "## Rules #calculus\n\nNew card? :: new answer"))
    write(kb, "calc.md", edited)
    sync(kb, clock)
    assert card_id(kb, "What is the derivatve") == basic  # typo in the question, answer edited
    assert card_id(kb, "A model's [...] is set") == cloze
    for cid, hist in before.items():
        assert history(kb, cid) == hist


def test_moving_the_card_and_renaming_the_file(kb, clock, reviewed):
    basic, cloze, before = reviewed
    moved = NOTE.replace("What is the derivative of x^2? :: 2x\n", "") + "\n## Later\n\nWhat is the derivative of x^2? :: 2x\n"
    (kb.config.notes_dir / "calc.md").unlink()
    write(kb, "chapters/analysis/derivatives.md", moved)
    sync(kb, clock)
    assert card_id(kb, "What is the derivative") == basic
    assert card_id(kb, "A model's [...] is set") == cloze
    for cid, hist in before.items():
        assert history(kb, cid) == hist
    assert kb.card(basic).path == "chapters/analysis/derivatives.md"


def test_adding_and_reordering_clozes_keeps_each_deletions_history(kb, clock, reviewed):
    _, cloze, before = reviewed
    other = card_id(kb, "A model's behavior is set by its [...]")
    other_before = history(kb, other)
    write(kb, "calc.md", NOTE.replace(
        "A model's ==behavior== is set by its ==parameters==.",
        "Its ==parameters== and a ==loss== decide a model's ==behavior==."))
    sync(kb, clock)
    assert card_id(kb, "Its parameters and a loss decide a model's [...]") == cloze
    assert card_id(kb, "Its [...] and a loss") == other
    assert history(kb, cloze) == before[cloze]
    assert history(kb, other) == other_before


def test_a_removed_card_is_retired_and_comes_back_with_its_history(kb, clock, reviewed):
    basic, _, before = reviewed
    write(kb, "calc.md", NOTE.replace("What is the derivative of x^2? :: 2x\n", ""))
    sync(kb, clock)
    assert kb.conn.execute("SELECT retired_at IS NOT NULL FROM card WHERE id = ?", (basic,)).fetchone() == (1,)
    clock.now = datetime(2026, 3, 20, 12, 0, tzinfo=JST)  # it would be due by now
    shown = []
    while (view := kb.next_card()) is not None:
        shown.append(view.id)
        kb.answer(view.id, Grade.EASY)
    assert shown and basic not in shown
    with pytest.raises(ValueError, match="retired"):
        kb.answer(basic, Grade.GOOD)
    assert kb.card(basic).retired
    write(kb, "calc.md", NOTE)
    sync(kb, clock)
    assert card_id(kb, "What is the derivative") == basic
    assert history(kb, basic) == before[basic]
    assert not kb.card(basic).retired
    assert kb.next_card().id == basic


def test_real_clozes_bury_their_sibling_and_the_reversed_pair_too(kb, clock):
    write(kb, "calc.md", NOTE)
    sync(kb, clock)
    assert kb.due_counts() == DueCounts(new=3)  # basic, one of the pair, one cloze
    shown = []
    while (view := kb.next_card()) is not None:
        shown.append(view.front)
        kb.answer(view.id, Grade.EASY)
    assert shown == ["What is the derivative of x^2?", "Sum rule", "A model's [...] is set by its parameters."]
    clock.now = datetime(2026, 3, 3, 4, 0, tzinfo=JST)
    assert kb.next_card().front == "derivative of a sum is the sum of derivatives"
    assert kb.due_counts() == DueCounts(new=2)


@pytest.fixture
def leech_kb(tmp_path, clock):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")  # every note makes cards
    cfg = load_config(tmp_path / "kb", notes)
    kb = KB(replace(cfg, review=ReviewConfig(fuzz=False, leech_lapses=1)), clock=clock)
    kb.review_tz = JST
    yield kb
    kb.close()


def test_leech_tag_and_search_survive_editing(leech_kb, clock):
    kb = leech_kb
    write(kb, "calc.md", NOTE)
    sync(kb, clock)
    basic = card_id(kb, "What is the derivative")
    kb.answer(basic, Grade.EASY)
    clock.now = datetime.fromtimestamp(kb.conn.execute("SELECT due FROM card WHERE id = ?", (basic,)).fetchone()[0], UTC)
    assert kb.answer(basic, Grade.AGAIN).leech
    assert kb.card_ids("#leech") == [basic]
    write(kb, "calc.md", NOTE.replace("Some intro text.", "Edited intro."))
    sync(kb, clock)
    assert kb.card(basic).leech
    assert "leech" in kb.card(basic).tags
    assert kb.card_ids("#leech") == [basic]
    assert [d.tag for d in kb.deck_counts()] == ["", "calculus", "leech", "math"]


COPIED = """# Rules

$$
\\begin{aligned}
(f + g)' & = f' + g' && \\textrm{Sum rule} \\\\
(f g)' & = f' g + f g' && \\textrm{Product rule}
\\end{aligned}
$$

A model's ==behavior== is set by its ==parameters==.
"""


def test_the_same_paragraph_or_block_in_two_notes_makes_two_sibling_groups(kb, clock):
    """Siblings are the cards of one paragraph, pair or formula block of one note. The parser keys
    them by content, so the same block copied into a second note shared their group before: an
    answer in one note buried the copy's cards in the other, and the queue offered one of the four."""
    write(kb, "a.md", COPIED)
    write(kb, "b.md", COPIED)
    sync(kb, clock)
    groups: dict[str, set[tuple[str, str]]] = {}
    for path, front, key in kb.conn.execute("SELECT path, front, sibling_key FROM card"):
        groups.setdefault(key, set()).add((path, front))
    assert sorted(sorted(g) for g in groups.values()) == [
        [("a.md", "A model's [...] is set by its parameters."), ("a.md", "A model's behavior is set by its [...].")],
        [("a.md", "Product rule"), ("a.md", "Sum rule")],
        [("b.md", "A model's [...] is set by its parameters."), ("b.md", "A model's behavior is set by its [...].")],
        [("b.md", "Product rule"), ("b.md", "Sum rule")],
    ]
    assert kb.due_counts() == DueCounts(new=4)  # one card of each group
    shown = []
    while (view := kb.next_card()) is not None:
        shown.append((view.path, view.front))
        kb.answer(view.id, Grade.EASY)
    assert sorted(p for p, _ in shown) == ["a.md", "a.md", "b.md", "b.md"]
    buried = kb.conn.execute("SELECT path, count(*) FROM card WHERE buried_until IS NOT NULL GROUP BY path").fetchall()
    assert buried == [("a.md", 2), ("b.md", 2)]  # each answer buried its own note's sibling only


def test_a_version_5_knowledge_base_gets_sibling_keys_within_their_note(tmp_path, clock, monkeypatch):
    """Migration 6 scopes the stored keys to their note; a sync afterwards writes the same keys."""
    import d2lkb.store.db as db

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")
    for name in ("a.md", "b.md"):
        (notes / name).write_text(COPIED, encoding="utf-8")
    cfg = replace(load_config(tmp_path / "kb", notes), review=ReviewConfig(fuzz=False))
    with monkeypatch.context() as m:
        m.setattr(db, "MIGRATIONS", db.MIGRATIONS[:5])
        m.setattr(db, "SCHEMA_VERSION", 5)
        old = KB(cfg, clock=clock)
        old.sync()
        old.conn.executemany("UPDATE card SET sibling_key = ? WHERE id = ?", [  # the parser's keys, as v5 stored them
            (key.rsplit("/", 1)[0], cid) for cid, key in old.conn.execute("SELECT id, sibling_key FROM card").fetchall()])
        unscoped = dict(old.conn.execute("SELECT id, sibling_key FROM card"))
        assert len(set(unscoped.values())) == 2  # as version 5 stored them: one group per copied block
        assert old.conn.execute("PRAGMA user_version").fetchone()[0] == 5
        old.close()
    kb = KB(cfg, clock=clock)
    try:
        assert kb.conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        migrated = {cid: (note, key) for cid, note, key in kb.conn.execute("SELECT id, note_id, sibling_key FROM card")}
        assert {cid: key for cid, (note, key) in migrated.items()} == {
            cid: f"{unscoped[cid]}/{migrated[cid][0]}" for cid in unscoped}
        clock.now += timedelta(seconds=1)
        for name in ("a.md", "b.md"):  # a real edit: the notes are read again
            (notes / name).write_text(COPIED + "\nMore.\n", encoding="utf-8")
        kb.sync()
        assert dict(kb.conn.execute("SELECT id, sibling_key FROM card")) == {
            cid: key for cid, (_, key) in migrated.items()}
    finally:
        kb.close()
