"""Sync: notes folder -> SQLite, incremental, transactional, and card identity across edits."""

from __future__ import annotations

import os
import sqlite3

import pytest

from d2lkb.store import sync as sync_mod
from d2lkb.store import vaultscan
from tests.conftest import write

NOTE = """---
title: Calculus notes
tags: [math]
---
# Calculus

## Rules #calculus

What is the derivative of x^2? :: 2x
Sum rule ::: derivative of a sum is the sum of derivatives

A model's ==behavior== is set by its ==parameters==.

## Other

Plain text about gradient descent.
"""


def card_ids(kb) -> dict[str, int]:
    return {f"{k}:{p}:{r}": i for i, k, p, r in kb.conn.execute(
        "SELECT id, kind, prompt, reverse FROM card WHERE retired_at IS NULL")}


def add_review(kb, card_id: int) -> None:
    """A review-log row written by hand, as the review layer would."""
    kb.conn.execute(
        "INSERT INTO reviewlog (card_id, rating, reviewed_at, duration_ms, state_before, state_after, due_before, due_after)"
        " VALUES (?, 3, 1000, 1200, 0, 2, 0, 86400)", (card_id,))
    kb.conn.execute("UPDATE card SET state = 2, reps = 1, due = 86400 WHERE id = ?", (card_id,))


def history(kb, card_id: int) -> tuple:
    row = kb.conn.execute("SELECT state, reps, due, retired_at FROM card WHERE id = ?", (card_id,)).fetchone()
    logs = kb.conn.execute("SELECT count(*) FROM reviewlog WHERE card_id = ?", (card_id,)).fetchone()[0]
    return (*row, logs)


def test_cold_sync_counts(make_kb, notes_dir):
    write(notes_dir / "calc.md", NOTE)
    write(notes_dir / "sub" / "other.md", "# Other\n\nSee [[calc]] and [[missing]].\n\nQ1 :: A1\n")
    kb = make_kb()
    r = kb.sync()
    assert (r.notes, r.added, r.updated, r.removed, r.unchanged) == (2, 2, 0, 0, 0)
    # 1 basic + 2 reversed + 2 clozes in calc.md, 1 basic in other.md
    assert r.cards == 6
    assert r.links == 2
    assert r.warnings == []
    resolved = dict(kb.conn.execute("SELECT target, target_note_id IS NOT NULL FROM link"))
    assert resolved == {"calc": 1, "missing": 0}


def test_noop_resync_only_stats(make_kb, notes_dir, monkeypatch):
    write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    calls = []
    monkeypatch.setattr(sync_mod, "decode_note", lambda *a: calls.append(a) or "")
    r = kb.sync()
    assert (r.added, r.updated, r.removed, r.unchanged) == (0, 0, 0, 1)
    assert calls == []  # nothing read


def test_touched_file_is_confirmed_by_hash_not_reparsed(make_kb, notes_dir):
    p = write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    parsed = []
    r = sync_mod.sync(kb.conn, notes_dir, parse=lambda t, path: parsed.append(path))
    assert (r.updated, r.unchanged) == (0, 1)
    assert parsed == []
    assert kb.conn.execute("SELECT mtime_ns FROM note").fetchone()[0] == st.st_mtime_ns + 10**9


def test_links_resolve_when_target_appears(make_kb, notes_dir):
    write(notes_dir / "a.md", "# A\n\nsee [[Bee note]] and [b](b.md)\n")
    kb = make_kb()
    kb.sync()
    assert kb.conn.execute("SELECT count(*) FROM link WHERE target_note_id IS NULL").fetchone()[0] == 2
    write(notes_dir / "b.md", "---\ntitle: Bee note\n---\n# B\n")
    kb.sync()
    assert kb.conn.execute("SELECT count(*) FROM link WHERE target_note_id IS NULL").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("label", "edit"),
    [
        ("edit other text", lambda t: t.replace("Plain text about", "Some longer plain text about")),
        ("edit the answer", lambda t: t.replace(":: 2x", ":: 2x, by the power rule")),
        ("fix a typo in the question", lambda t: t.replace("What is the derivative", "What is teh derivative")),
        ("move the card within the note", lambda t: t.replace("What is the derivative of x^2? :: 2x\n", "")
         + "\nWhat is the derivative of x^2? :: 2x\n"),
        ("reorder clozes", lambda t: t.replace("A model's ==behavior== is set by its ==parameters==.",
                                               "The ==parameters== of a model set its ==behavior==.")),
        ("add a cloze", lambda t: t.replace("is set by its", "is ==set== by its")),
    ],
)
def test_card_identity_survives_edits(make_kb, notes_dir, label, edit):
    p = write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    before = card_ids(kb)
    basic = before["basic:What is the derivative of x^2?:0"]
    cloze = before["cloze:parameters:0"]
    for cid in (basic, cloze):
        add_review(kb, cid)
    p.write_text(edit(NOTE), encoding="utf-8")
    r = kb.sync()
    assert r.updated == 1, label
    for cid in (basic, cloze):
        state, reps, due, retired, logs = history(kb, cid)
        assert (state, reps, due, retired, logs) == (2, 1, 86400, None, 1), label


def test_rename_and_move_keep_history(make_kb, notes_dir):
    p = write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    cid = card_ids(kb)["cloze:behavior:0"]
    add_review(kb, cid)
    target = notes_dir / "math" / "calculus-renamed.md"
    target.parent.mkdir()
    p.rename(target)
    r = kb.sync()
    assert (r.added, r.removed) == (1, 1)
    assert history(kb, cid) == (2, 1, 86400, None, 1)
    assert kb.conn.execute("SELECT path FROM card WHERE id = ?", (cid,)).fetchone()[0] == "math/calculus-renamed.md"


def test_deleted_card_is_retired_and_comes_back(make_kb, notes_dir):
    p = write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    cid = card_ids(kb)["basic:What is the derivative of x^2?:0"]
    add_review(kb, cid)
    p.write_text(NOTE.replace("What is the derivative of x^2? :: 2x\n", ""), encoding="utf-8")
    r = kb.sync()
    assert r.retired_cards == 1
    state, reps, due, retired, logs = history(kb, cid)
    assert retired is not None and logs == 1
    assert [c["id"] for c in kb.retired_cards()] == [cid]
    p.write_text(NOTE, encoding="utf-8")
    r = kb.sync()
    assert r.revived_cards == 1
    assert history(kb, cid) == (2, 1, 86400, None, 1)


def test_removed_note_retires_its_cards_and_purge_deletes_them(make_kb, notes_dir):
    p = write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    cid = card_ids(kb)["basic:What is the derivative of x^2?:0"]
    add_review(kb, cid)
    p.unlink()
    r = kb.sync()
    assert (r.removed, r.notes, r.cards) == (1, 0, 0)
    assert len(kb.retired_cards()) == 5
    assert kb.purge_retired() == 5
    assert kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 0


def test_crash_mid_sync_leaves_previous_state(make_kb, notes_dir, monkeypatch):
    p = write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    snapshot = kb.conn.execute("SELECT id, front, back, path FROM card ORDER BY id").fetchall()
    p.write_text(NOTE.replace("2x", "two x") + "\nNew :: card\n", encoding="utf-8")
    write(notes_dir / "new.md", "# New\n\nX :: Y\n")

    def boom(conn, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(sync_mod, "_resolve_links", boom)
    with pytest.raises(KeyboardInterrupt):
        kb.sync()
    assert kb.conn.execute("SELECT id, front, back, path FROM card ORDER BY id").fetchall() == snapshot
    assert kb.conn.execute("SELECT count(*) FROM note").fetchone()[0] == 1
    monkeypatch.undo()
    r = kb.sync()
    assert (r.added, r.updated) == (1, 1)


def test_database_is_a_real_wal_file_with_foreign_keys(make_kb, notes_dir, tmp_path):
    write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    conn = sqlite3.connect(tmp_path / "kb" / "kb.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    assert kb.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_ignored_front_matter_is_not_a_note(make_kb, notes_dir):
    write(notes_dir / "README.md", "---\nd2lkb: ignore\n---\n# Readme\n\nQ :: A\n")
    write(notes_dir / "n.md", "# N\n")
    kb = make_kb()
    r = kb.sync()
    assert (r.notes, r.cards) == (1, 0)


def test_parallel_parse_gives_the_same_kb_as_sequential(tmp_path, notes_dir):
    from d2lkb.notes.parse import parse_note
    from d2lkb.store.db import connect

    for i in range(sync_mod.PARALLEL_MIN_FILES + 6):
        write(notes_dir / f"d{i % 3}" / f"n{i}.md", NOTE.replace("Calculus", f"Calculus {i}") + f"\nExtra {i} :: x{i}\n")
    (notes_dir / "bad.md").write_bytes(b"# Bad\n\ncaf\xe9 :: coffee\n")
    dumps = []
    from d2lkb.notes.options import ALL_NOTES

    def sequential(text: str, path: str):
        return parse_note(text, path, ALL_NOTES)  # as the vault's .d2lkb.toml says

    for name, parse in (("parallel", None), ("sequential", sequential)):
        conn = connect(tmp_path / f"{name}.sqlite")
        report = sync_mod.sync(conn, notes_dir, now=1000, parse=parse)
        assert report.added == sync_mod.PARALLEL_MIN_FILES + 7
        assert [w.path for w in report.warnings] == ["bad.md"]
        dumps.append([conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                      for t in ("note", "card", "doc", "doctag", "cardtag", "section", "tag")])
        conn.close()
    assert dumps[0] == dumps[1]


def test_aliases_resolve_links_and_attachments_are_not_links(make_kb, notes_dir):
    write(notes_dir / "a.md", "# A\n\nSee [[today]] and ![[diagram.png]] and [paper](paper.pdf) and [[b.md]].\n")
    write(notes_dir / "daily" / "2026-11-26.md", "---\naliases: [today, Thursday]\n---\n# Day\n")
    write(notes_dir / "b.md", "# B\n")
    kb = make_kb()
    kb.sync()
    links = dict(kb.conn.execute("SELECT link.target, n.path FROM link LEFT JOIN note n ON n.id = link.target_note_id"))
    assert links == {"today": "daily/2026-11-26.md", "b.md": "b.md"}
    assert [h.path for h in kb.search("thursday")] == ["daily/2026-11-26.md"]


def test_a_new_parser_version_rereads_unchanged_notes_and_keeps_history(make_kb, notes_dir, monkeypatch):
    write(notes_dir / "calc.md", NOTE)
    kb = make_kb()
    kb.sync()
    cid = card_ids(kb)["basic:What is the derivative of x^2?:0"]
    add_review(kb, cid)
    assert kb.sync().updated == 0
    monkeypatch.setattr(vaultscan, "PARSER_VERSION", "test-next")
    r = kb.sync()
    assert (r.updated, r.added, r.removed, r.unchanged) == (1, 0, 0, 0)
    assert history(kb, cid) == (2, 1, 86400, None, 1)
    assert kb.sync().updated == 0


def test_a_version_2_knowledge_base_gains_formula_blocks(tmp_path, notes_dir, make_kb):
    """KBs made before formula blocks existed keep working: the migration adds the columns, and the
    parser version makes the next sync fill them."""
    (notes_dir / "m.md").write_text("$$\n\\begin{aligned} a &= b \\\\ &= c \\end{aligned}\n$$\n", encoding="utf-8")
    kb = make_kb()
    kb.sync()
    kb.conn.execute("ALTER TABLE formula DROP COLUMN block")
    kb.conn.execute("ALTER TABLE formula DROP COLUMN section")
    kb.conn.execute("PRAGMA user_version = 2")
    kb.conn.execute("UPDATE meta SET value = '4' WHERE key = 'parser_version'")
    kb.close()
    kb = make_kb()
    kb.sync()
    blocks = kb.conn.execute("SELECT block FROM formula WHERE display = 1 ORDER BY idx").fetchall()
    assert blocks == [(0,), (0,)]
