"""Hostile sizes parse in time proportional to the note (issue 11): the reproductions of the
quadratic paths, checked for what they must produce. Speed itself is measured in
bench/bench_hostile.py (never by a test)."""

from __future__ import annotations

from d2lkb.notes.options import ALL_NOTES
from d2lkb.notes.osr import assign, schedule_comments
from d2lkb.notes.parse import parse_note


def test_64000_consecutive_question_lines_each_know_their_line():
    """One paragraph of 64,000 `Q :: A` lines (61 s before: a newline count from the paragraph
    start for every card)."""
    text = "".join(f"Question {i} :: Answer {i}\n" for i in range(64_000))
    cards = parse_note(text, "big.md", ALL_NOTES).cards
    assert len(cards) == 64_000
    assert all(c.line == i + 1 and c.front == f"Question {i}" and c.back == f"Answer {i}" for i, c in enumerate(cards))


def test_cards_in_a_paragraph_full_of_comments_and_highlights():
    text = "".join(f"Q{i} <!-- note {i} --> :: A{i} ==h{i}==\n" for i in range(5_000))
    cards = parse_note(text, "c.md", ALL_NOTES).cards
    assert [(c.front, c.back, c.line) for c in cards[:2]] == [("Q0", "A0 ==h0==", 1), ("Q1", "A1 ==h1==", 2)]
    assert len(cards) == 5_000 and cards[-1].line == 5_000 and cards[-1].front == "Q4999"


def test_a_huge_aligned_block_gives_each_row_its_line():
    rows = "".join(f"f_{{{i}}} &= x + {i} && \\textrm{{Rule {i}}} \\\\\n" for i in range(20_000))
    text = f"# Rules\n\n$$\n\\begin{{aligned}}\n{rows}\\end{{aligned}}\n$$\n"
    note = parse_note(text, "a.md", ALL_NOTES)
    assert len(note.formulas) == 20_000 and len(note.cards) == 20_000
    assert all(f.line == 5 + i and f.name == f"Rule {i}" for i, f in enumerate(note.formulas))
    assert len({c.sibling_key for c in note.cards}) == 1


def test_one_long_line_of_separators_is_one_card():
    text = "first" + "".join(f" :: part{i}" for i in range(20_000)) + "\n"
    cards = parse_note(text, "l.md", ALL_NOTES).cards
    assert len(cards) == 1 and cards[0].front == "first" and cards[0].back.startswith("part0 :: part1")


def test_a_long_line_of_scopes_and_fields_is_no_card():
    text = "".join(f"std::vec{i} [key{i}:: v] " for i in range(10_000)) + "\n"
    assert parse_note(text, "s.md", ALL_NOTES).cards == ()


def test_many_headings_made_of_tags_are_titled_by_their_own_tags():
    text = "".join(f"## #topic{i}\n\ntext {i}\n\n" for i in range(10_000))
    sections = parse_note(text, "h.md", ALL_NOTES).sections
    assert len(sections) == 10_000 and all(s.title == f"#topic{i}" for i, s in enumerate(sections))


def test_osr_schedules_of_a_big_note_go_to_their_own_cards():
    text = "".join(f"Q{i} :: A{i} <!--SR:!2024-01-05,3,250-->\n" for i in range(20_000))
    cards = parse_note(text, "o.md", ALL_NOTES).cards
    assigned, problems = assign(cards, schedule_comments(text, "o.md"))
    assert problems == [] and [a[0] for a in assigned] == list(range(20_000))
