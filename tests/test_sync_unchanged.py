"""The no-change sync (store/vaultscan.py): a sync whose walk is the one the last complete sync was
made from reads no note and writes nothing, and any change on disk (an edit of the same size, a
new note, a deleted one, an unreadable one, other parse options) still goes through the full sync.
Real notes folders, real SQLite files, the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from d2lkb.cli import app
from d2lkb.store import sync as sync_mod
from d2lkb.store import vaultscan
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[1]
COUNTS = ("notes", "cards", "tags", "formulas", "snippets", "links")
NOTE_A = "# Alpha #math\n\nWhat is the apple rule? :: the apple answer\n\n$$\na = b\n$$\n"
NOTE_B = "# Beta\n\nSee [[a]].\n\nWhat is the banana rule? :: the banana answer\n"


def bump_mtime(path: Path, seconds: int = 5) -> None:
    """A later mtime than the last sync saw, even where the clock's granularity is coarse."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


def no_full_sync(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the full sync ran, but nothing had changed")

    monkeypatch.setattr(sync_mod, "_sync_once", refuse)


def full_counts(kb) -> dict[str, int]:
    """The counts a full sync reports, computed from the tables now."""
    q = {"notes": "SELECT count(*) FROM note", "cards": "SELECT count(*) FROM card WHERE retired_at IS NULL",
         "tags": "SELECT count(DISTINCT tag_id) FROM notetag", "formulas": "SELECT count(*) FROM formula",
         "snippets": "SELECT count(*) FROM snippet", "links": "SELECT count(*) FROM link"}
    return {k: kb.conn.execute(sql).fetchone()[0] for k, sql in q.items()}


@pytest.fixture
def vault(notes_dir):
    write(notes_dir / "a.md", NOTE_A)
    write(notes_dir / "sub" / "b.md", NOTE_B)
    return notes_dir


def test_unchanged_notes_are_neither_read_nor_written(make_kb, vault, monkeypatch):
    kb = make_kb()
    first = kb.sync()
    assert first.added == 2
    version = kb.conn.execute("PRAGMA data_version").fetchone()[0]
    no_full_sync(monkeypatch)
    again = kb.sync()
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 2)
    assert {k: getattr(again, k) for k in COUNTS} == {k: getattr(first, k) for k in COUNTS} == full_counts(kb)
    assert again.warnings == []
    # the sync ran on a connection of its own: a commit there would change this connection's data_version
    assert kb.conn.execute("PRAGMA data_version").fetchone()[0] == version


@pytest.mark.parametrize("change", ["same size", "longer", "added", "deleted", "renamed"])
def test_every_change_on_disk_is_seen_after_a_no_change_sync(make_kb, vault, change):
    kb = make_kb()
    kb.sync()
    assert kb.sync().unchanged == 2  # the no-change path, taken once
    a = vault / "a.md"
    if change == "same size":
        text = NOTE_A.replace("apple", "mango")
        assert len(text.encode()) == len(NOTE_A.encode())
        a.write_text(text, encoding="utf-8")
        bump_mtime(a)
        expect = {"mango": 1, "apple": 0}
    elif change == "longer":
        a.write_text(NOTE_A.replace("apple", "pineapple"), encoding="utf-8")
        expect = {"pineapple": 1}
    elif change == "added":
        write(vault / "sub" / "deeper" / "c.md", "# Gamma\n\nWhat is the cherry rule? :: the cherry answer\n")
        expect = {"cherry": 1, "apple": 1}
    elif change == "deleted":
        a.unlink()
        expect = {"apple": 0, "banana": 1}
    else:
        a.rename(vault / "sub" / "a2.md")
        expect = {"apple": 1}
    report = kb.sync()
    assert report.added + report.updated + report.removed >= 1, report
    for word, notes in expect.items():
        assert len({h.path for h in kb.search(word)}) == notes, word
    assert {k: getattr(report, k) for k in COUNTS} == full_counts(kb)
    assert kb.sync().unchanged == full_counts(kb)["notes"]  # and quiet again


def test_a_note_touched_without_a_change_is_confirmed_once_then_quiet(make_kb, vault, monkeypatch):
    kb = make_kb()
    kb.sync()
    bump_mtime(vault / "a.md")
    touched = kb.sync()
    assert (touched.updated, touched.unchanged) == (0, 2)  # same content: hash confirmed, not re-parsed
    no_full_sync(monkeypatch)
    assert kb.sync().unchanged == 2


def test_an_unreadable_note_is_looked_at_again_on_every_sync(make_kb, vault):
    (vault / "huge.md").write_bytes(b"# Huge\n\n" + b"x" * (vaultscan.MAX_NOTE_BYTES + 1))
    kb = make_kb()
    for _ in range(3):
        report = kb.sync()
        assert [w.path for w in report.warnings] == ["huge.md"]
    (vault / "huge.md").write_text("# Huge\n\nWhat is the kiwi rule? :: the kiwi answer\n", encoding="utf-8")
    report = kb.sync()
    assert (report.added, report.warnings) == (1, [])
    assert {h.path for h in kb.search("kiwi")} == {"huge.md"}


def test_walk_warnings_are_reported_by_a_no_change_sync_too(make_kb, vault, tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere"
    write(outside / "x.md", "# X\n")
    (vault / "link").symlink_to(outside, target_is_directory=True)
    kb = make_kb()
    first = kb.sync()
    no_full_sync(monkeypatch)
    again = kb.sync()
    assert [w.path for w in again.warnings] == [w.path for w in first.warnings] == ["link"]


def test_other_parse_options_read_every_note_again(make_kb, vault, monkeypatch):
    kb = make_kb()
    assert kb.sync().cards > 0
    kb.close()
    (vault / ".d2lkb.toml").write_text('[cards]\nflashcard_tags = ["flashcards"]\n', encoding="utf-8")
    kb = make_kb()
    report = kb.sync()
    assert (report.updated, report.cards) == (2, 0)  # no note carries #flashcards now


def test_another_notes_folder_is_looked_at_note_by_note(make_kb, vault, tmp_path, monkeypatch):
    """The key names the folder: the same files (names, sizes, mtimes) elsewhere go through the
    full sync once (its note-by-note comparison), then the new folder's key is the KB's."""
    kb = make_kb()
    kb.sync()
    kb.close()
    twin = tmp_path / "twin"
    shutil.copytree(vault, twin)  # copy2: same names, sizes and mtimes
    full = []
    real = sync_mod._sync_once
    monkeypatch.setattr(sync_mod, "_sync_once", lambda *a, **k: full.append(1) or real(*a, **k))
    other = make_kb(twin)
    assert other.sync().unchanged == 2
    assert full == [1]
    assert other.sync().unchanged == 2
    assert full == [1]


def test_counts_of_a_no_change_sync_stay_true_after_reviews_a_leech_and_a_purge(make_kb, vault):
    """The counts a no-change sync reports are the last full sync's: what other commands write
    (answers, the leech tag, purging retired cards) leaves them true."""
    from d2lkb.review.types import Grade

    kb = make_kb()
    kb.sync()
    write(vault / "a.md", NOTE_A.replace("What is the apple rule? :: the apple answer\n", ""))
    bump_mtime(vault / "a.md")
    assert kb.sync().retired_cards == 1
    assert kb.purge_retired() == 1
    card = kb.card_ids("banana")[0]
    for _ in range(8):  # lapses until it is a leech: tagged #leech
        kb.conn.execute("UPDATE card SET state = 2, due = 0, stability = 1, difficulty = 5, last_review = 0"
                        " WHERE id = ?", (card,))
        kb.answer(card, Grade.AGAIN)
    assert kb.card_ids("#leech") == [card]
    again = kb.sync()
    assert again.unchanged == 2
    assert {k: getattr(again, k) for k in COUNTS} == full_counts(kb)


def test_search_through_the_cli_sees_an_edit_of_the_same_size(tmp_path, vault):
    runner = CliRunner()
    args = ["--kb", str(tmp_path / "kb"), "--notes", str(vault)]
    assert runner.invoke(app, [*args, "sync"]).exit_code == 0
    first = runner.invoke(app, [*args, "search", "apple", "--json"])
    assert {h["path"] for h in json.loads(first.stdout)} == {"a.md"}
    (vault / "a.md").write_text(NOTE_A.replace("apple", "mango"), encoding="utf-8")
    bump_mtime(vault / "a.md")
    assert json.loads(runner.invoke(app, [*args, "search", "apple", "--json"]).stdout) == []
    assert {h["path"] for h in json.loads(runner.invoke(app, [*args, "search", "mango", "--json"]).stdout)} == {"a.md"}


def test_a_search_of_unchanged_notes_loads_no_sync_review_or_check_code(tmp_path, vault):
    """The commands that need only the KB's core (search, show, tags, ...) do not import the
    note parser's sync, the review layer or the checks; a changed note still gets synced."""
    env = os.environ | {"D2LKB_KB": str(tmp_path / "kb"), "D2LKB_NOTES": str(vault), "PYTHONPATH": str(ROOT)}
    probe = ("import sys; from d2lkb.cli import main; sys.argv = ['d2lkb', *sys.argv[1:]]\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "heavy = ['d2lkb.store.sync', 'd2lkb.store.reviews', 'd2lkb.store.checks', 'd2lkb.identity', "
             "'d2lkb.notes.parse', 'markdown_it', 'rapidfuzz']\n"
             "import json; print('LOADED', json.dumps([m for m in heavy if m in sys.modules]))")

    def loaded(*args: str) -> tuple[list[str], str]:
        out = subprocess.run([sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True,
                             check=True).stdout
        line = next(x for x in out.splitlines() if x.startswith("LOADED"))
        return json.loads(line.removeprefix("LOADED ")), out

    first, _ = loaded("search", "apple")  # first sync: parses
    assert "d2lkb.store.sync" in first
    for command in (["search", "apple"], ["show", "a.md"], ["tags"], ["orphans"], ["sync"]):
        assert loaded(*command)[0] == [], command
    (vault / "a.md").write_text(NOTE_A.replace("apple", "mango"), encoding="utf-8")
    bump_mtime(vault / "a.md")
    mods, out = loaded("search", "mango")
    assert "d2lkb.store.sync" in mods and "a.md" in out

