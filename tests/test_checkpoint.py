"""WAL checkpoints on the KB's own thread (store/checkpoint.py): answers reach the database file
itself, nothing is lost when the thread stops; and schema version 5 (two indexes fewer per answer)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from d2lkb.review.types import Grade
from d2lkb.store import db
from d2lkb.store.checkpoint import BACKSTOP_PAGES
from tests.conftest import write


def _file_only(path: Path, sql: str):
    """`sql` on the database file alone: `immutable=1` reads no WAL, so only checkpointed pages count."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def _kb_with_cards(make_kb, notes_dir: Path, n: int = 12):
    write(notes_dir / "deck.md", "# Deck\n\n" + "".join(f"Question {i}::Answer {i}\n\n" for i in range(n)))
    kb = make_kb(notes_dir)
    kb.sync()
    return kb


def test_answers_reach_the_database_file_through_the_checkpoint_thread(make_kb, notes_dir):
    kb = _kb_with_cards(make_kb, notes_dir)
    assert kb.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    kb.checkpointer.every = 3
    for _ in range(9):
        kb.answer(kb.next_card().id, Grade.GOOD, duration_ms=1000)
    assert kb.checkpointer.flush(timeout=120)
    assert kb.checkpointer.runs >= 1 and not kb.checkpointer.error
    threads = [t for t in threading.enumerate() if t.name == "d2lkb-checkpoint"]
    assert threads
    # The answers are in kb.sqlite itself, not only in its WAL.
    assert _file_only(kb.config.db_path, "SELECT count(*) FROM reviewlog") == 9
    kb.close()
    assert not any(t.is_alive() for t in threads)  # close() stops the thread


def test_answers_between_checkpoints_stay_committed(make_kb, notes_dir, tmp_path):
    """A commit is durable without a checkpoint: another connection (another process) sees it at once,
    and reopening the KB after close loses nothing."""
    kb = _kb_with_cards(make_kb, notes_dir)
    kb.checkpointer.every = 10**9  # no checkpoint on the thread at all
    for _ in range(5):
        kb.answer(kb.next_card().id, Grade.AGAIN, duration_ms=500)
    other = sqlite3.connect(kb.config.db_path)
    assert other.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 5
    other.close()
    assert kb.checkpointer.runs == 0
    kb.close()
    again = make_kb(notes_dir)
    assert again.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 5
    assert _file_only(again.config.db_path, "SELECT count(*) FROM reviewlog") == 5  # the last close checkpointed


def test_version_4_kb_loses_two_indexes_each_answer_wrote(make_kb, notes_dir):
    kb = _kb_with_cards(make_kb, notes_dir, n=2)
    path = kb.config.db_path
    kb.close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE INDEX ix_reviewlog_reviewed_at ON reviewlog (reviewed_at)")
    conn.execute("CREATE INDEX IF NOT EXISTS ix_card_due ON card (retired_at, suspended, due)")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    kb = make_kb(notes_dir)
    names = {r[0] for r in kb.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_reviewlog_reviewed_at" not in names and "ix_reviewlog_day" in names
    assert "ix_card_due" not in names and "ix_card_sched" in names
    assert kb.conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION >= 5
    kb.answer(kb.next_card().id, Grade.GOOD)  # the day's limits read the remaining index
    assert kb.due_counts().new == 1  # one new card answered today, one left
