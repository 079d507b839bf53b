"""`d2lkb import osr`: Obsidian Spaced Repetition schedules become FSRS states (real SQLite, real parser,
FSRS's reference SM-2 conversion)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime

import fsrs_rs_python as rs
import pytest
from typer.testing import CliRunner

from d2lkb.cli import app
from d2lkb.notes.options import ALL_NOTES
from d2lkb.notes.osr import OsrError, assign, schedule_comments, strip_schedule_data
from d2lkb.notes.parse import parse_note
from d2lkb.review.types import Grade
from d2lkb.store.imports.common import ImportFailed
from d2lkb.store.imports.osr import import_osr
from tests.conftest import write

runner = CliRunner()

VAULT_NOTE = """---
title: Calculus
---
# Calculus #math

Derivative of $x^2$ :: $2x$ <!--SR:!2026-03-05,3,250-->

Gradient ::: direction of steepest ascent
<!--SR:!2026-03-04,3,250!2026-03-09,8,270-->

A ==derivative== measures the ==rate of change==.
<!--SR:!2026-03-10,30,250!2026-04-09,60,270-->

What is a limit?
?
The value a function approaches
<!--SR:!2026-03-03,1,230-->

Never reviewed :: new card

```markdown
Example :: card <!--SR:!2026-03-05,3,250-->
```
"""

NOTE_REVIEW = """---
sr-due: 2026-03-20
sr-interval: 20
sr-ease: 250
---
Chain rule :: $(f(g(x)))' = f'(g(x)) g'(x)$
"""


def _schedules(kb) -> dict[str, tuple]:
    return {front: (state, s, d, due, last) for front, state, s, d, due, last in kb.conn.execute(
        "SELECT front, state, stability, difficulty, due, last_review FROM card")}


def _day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


@pytest.fixture
def vault(notes_dir):
    write(notes_dir / "calc.md", VAULT_NOTE)
    write(notes_dir / "chain.md", NOTE_REVIEW)
    return notes_dir


def test_osr_comments_are_read_and_matched_the_way_osr_writes_them():
    comments = schedule_comments(VAULT_NOTE, "calc.md")
    assert [c.line for c in comments] == [6, 9, 12, 17]  # the fenced example is not data
    assert comments[1].schedules[1].due == date(2026, 3, 9) and comments[1].schedules[1].ease == 270
    cards = parse_note(VAULT_NOTE, "calc.md", ALL_NOTES).cards  # a vault where every note makes cards
    assigned, problems = assign(cards, comments)
    assert problems == []
    got = [(cards[i].front, s.due.isoformat()) for i, s, _c, _k in assigned]
    assert got == [("Derivative of $x^2$", "2026-03-05"), ("Gradient", "2026-03-04"),
                   ("direction of steepest ascent", "2026-03-09"),
                   ("A [...] measures the rate of change.", "2026-03-10"),
                   ("A derivative measures the [...].", "2026-04-09"), ("What is a limit?", "2026-03-03")]


def test_import_gives_fsrs_states_from_fsrs_own_sm2_conversion(vault, make_kb):
    kb = make_kb()
    kb.review_tz = UTC  # review days start at 04:00 UTC (the default hour)
    report = import_osr(kb)
    assert (report.imported, report.unchanged, report.kept) == (7, 0, 0)
    sched = _schedules(kb)
    expected = rs.FSRS(rs.DEFAULT_PARAMETERS).memory_state_from_sm2(2.5, 3, 0.9)
    state, s, d, due, last = sched["Derivative of $x^2$"]
    assert state == 2 and s == pytest.approx(expected.stability) and d == pytest.approx(expected.difficulty)
    assert datetime.fromtimestamp(due, UTC) == datetime(2026, 3, 5, 4, tzinfo=UTC)  # OSR's due day, at rollover
    assert due - last == 3 * 86400
    assert _day(sched["direction of steepest ascent"][3]) == date(2026, 3, 9)
    assert _day(sched["A derivative measures the [...]."][3]) == date(2026, 4, 9)
    assert _day(sched["Chain rule"][3]) == date(2026, 3, 20)  # the note's own schedule
    assert sched["Never reviewed"][0] == 0
    # Stats and the queue follow: the clock is 2026-03-02 noon.
    stats = kb.review_stats()
    assert (stats["review"], stats["new"]) == (7, 1)
    assert kb.forecast(8) == [0, 1, 1, 1, 0, 0, 0, 1]  # Mar 3, 4, 5, 9
    # An import event per card, no fake reviews.
    assert kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 0
    events = kb.conn.execute("SELECT source, source_ref, detail FROM importlog ORDER BY id").fetchall()
    assert len(events) == 7 and events[0][:2] == ("osr", "calc.md:6#1")
    assert json.loads(events[0][2]) == {"due": "2026-03-05", "interval": 3, "ease": 250, "sm2_retention": 0.9}


def test_running_twice_changes_nothing_and_reviews_win(vault, make_kb, clock):
    kb = make_kb()
    import_osr(kb)
    before = _schedules(kb)
    again = import_osr(kb)
    assert (again.imported, again.unchanged) == (0, 7)
    assert _schedules(kb) == before
    assert kb.conn.execute("SELECT count(*) FROM importlog").fetchone()[0] == 7
    # After an answer in d2lkb, a changed OSR comment does not overwrite the newer schedule.
    clock.advance(days=3)
    (card_id,) = kb.conn.execute("SELECT id FROM card WHERE front = 'Derivative of $x^2$'").fetchone()
    kb.answer(card_id, Grade.GOOD)
    answered = _schedules(kb)["Derivative of $x^2$"]
    text = (vault / "calc.md").read_text(encoding="utf-8").replace("2026-03-05,3,250", "2026-03-06,4,250")
    (vault / "calc.md").write_text(text, encoding="utf-8")
    third = import_osr(kb)
    assert (third.imported, third.kept, third.unchanged) == (0, 1, 6)
    assert _schedules(kb)["Derivative of $x^2$"] == answered


def test_notes_untouched_unless_strip(vault, make_kb):
    kb = make_kb()
    original = (vault / "calc.md").read_text(encoding="utf-8")
    import_osr(kb)
    assert (vault / "calc.md").read_text(encoding="utf-8") == original
    report = import_osr(kb, strip=True)
    assert sorted(report.stripped) == ["calc.md", "chain.md"]
    text = (vault / "calc.md").read_text(encoding="utf-8")
    assert "<!--SR:" not in text.split("```markdown")[0] and "Example :: card <!--SR:" in text  # code kept
    assert "Derivative of $x^2$ :: $2x$\n" in text and "Gradient ::: direction of steepest ascent\n\nA" in text
    assert (vault / "chain.md").read_text(encoding="utf-8") == "Chain rule :: $(f(g(x)))' = f'(g(x)) g'(x)$\n"
    # Card identity survives the edit: schedules stay, nothing retired.
    assert kb.conn.execute("SELECT count(*) FROM card WHERE retired_at IS NOT NULL").fetchone()[0] == 0
    assert kb.review_stats()["review"] == 7


def test_impossible_dates_abort_everything_with_file_and_position(vault, make_kb):
    write(vault / "bad.md", "Fine :: card\n\nQ :: A <!--SR:!2026-02-30,3,250-->\n")
    kb = make_kb()
    with pytest.raises(ImportFailed) as exc:
        import_osr(kb)
    assert "bad.md:3:8: impossible date 2026-02-30" in str(exc.value)
    assert kb.conn.execute("SELECT count(*) FROM importlog").fetchone()[0] == 0
    assert kb.review_stats()["review"] == 0
    with pytest.raises(OsrError, match=r"x.md:1:3: malformed OSR schedule"):
        schedule_comments("Q <!--SR:!2026-01-01,3-->", "x.md")
    with pytest.raises(OsrError, match="impossible ease 5"):
        schedule_comments("Q :: A <!--SR:!2026-01-01,3,5-->", "x.md")


def test_cli_import_osr_and_stats(vault, tmp_path):
    base = ["--kb", str(tmp_path / "kb"), "--notes", str(vault)]
    result = runner.invoke(app, [*base, "import", "osr", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 7
    stats = json.loads(runner.invoke(app, [*base, "stats", "--json"]).stdout)
    assert stats["review"] == 7
    write(vault / "bad.md", "Q :: A <!--SR:!2026-13-01,3,250-->\n")
    bad = runner.invoke(app, [*base, "import", "osr"])
    assert bad.exit_code == 1 and "bad.md:1:8" in bad.stderr and "nothing was imported" in bad.stderr


def test_strip_keeps_everything_else_byte_for_byte():
    text = "---\ntitle: t\nsr-due: 2026-01-01\nsr-interval: 3\nsr-ease: 250\n---\nA :: B <!--SR:!2026-01-01,3,250-->\n" \
           "C ::: D\n<!--SR:!2026-01-01,3,250!2026-01-02,4,250-->\n\nrest\n"
    assert strip_schedule_data(text, "n.md") == "---\ntitle: t\n---\nA :: B\nC ::: D\n\nrest\n"


def test_a_version_1_knowledge_base_gains_the_import_log(tmp_path, notes_dir, make_kb):
    """KBs made before imports existed (schema 1) keep working: the migration adds `importlog`."""
    write(notes_dir / "a.md", "Q :: A <!--SR:!2026-03-05,3,250-->\n")
    kb = make_kb()
    kb.sync()
    kb.conn.execute("DROP TABLE importlog")
    kb.conn.execute("PRAGMA user_version = 1")
    kb.close()
    kb = make_kb()
    from d2lkb.store.db import SCHEMA_VERSION

    assert kb.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert import_osr(kb).imported == 1
    assert sqlite3.connect(tmp_path / "kb" / "kb.sqlite").execute("SELECT count(*) FROM card").fetchone()[0] == 1
