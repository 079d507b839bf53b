"""Backup, export (CSV, JSON, Anki .apkg) and suspending many cards from the CLI."""

from __future__ import annotations

import csv
import json
import sqlite3
import zipfile

from typer.testing import CliRunner

from d2lkb.cli import app
from d2lkb.review.types import Grade
from tests.conftest import write

runner = CliRunner()
NOTE = "# Calc #math/calculus\n\nDerivative of $x^2$ :: $2x$\n\nA ==gradient== points uphill.\n\nOther :: card\n"


def run(tmp_path, notes, *args):
    return runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes), *args])


def test_backup_is_a_consistent_copy_with_history(make_kb, notes_dir, tmp_path):
    write(notes_dir / "c.md", NOTE)
    kb = make_kb()
    kb.sync()
    kb.answer(kb.next_card().id, Grade.GOOD)
    path = kb.backup()
    assert path.parent == tmp_path / "kb" / "backups"
    copy = sqlite3.connect(path)
    assert copy.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 1
    assert copy.execute("SELECT count(*) FROM card").fetchone()[0] == 3
    result = run(tmp_path, notes_dir, "backup", str(path))
    assert result.exit_code == 1 and "exists" in result.stderr


def test_export_csv_json_apkg(tmp_path, notes_dir, make_kb):
    write(notes_dir / "c.md", NOTE)
    kb = make_kb()
    kb.sync()
    kb.answer(kb.next_card().id, Grade.EASY)
    out = tmp_path / "out"
    out.mkdir()
    assert "wrote 3 card(s)" in run(tmp_path, notes_dir, "export", "csv", "-o", str(out / "c.csv")).stdout
    with open(out / "c.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["front"] for r in rows} == {"Derivative of $x^2$", "A [...] points uphill.", "Other"}
    assert {r["tags"] for r in rows} == {"math/calculus"}
    assert sorted(r["state"] for r in rows) == ["new", "new", "review"]  # Easy on a new card: straight to review

    assert run(tmp_path, notes_dir, "export", "json", "kind:cloze", "-o", str(out / "c.json")).exit_code == 0
    data = json.loads((out / "c.json").read_text(encoding="utf-8"))
    assert [c["back"] for c in data["cards"]] == ["gradient"]

    assert run(tmp_path, notes_dir, "export", "apkg", "-o", str(out / "c.apkg")).exit_code == 0
    with zipfile.ZipFile(out / "c.apkg") as z:
        z.extract("collection.anki2", out)
    anki = sqlite3.connect(out / "collection.anki2")
    notes = anki.execute("SELECT flds, tags FROM notes").fetchall()
    assert len(notes) == 3
    fields = sorted(n[0].split("\x1f")[0] for n in notes)
    assert fields == ["A {{c1::gradient}} points uphill.", "Derivative of \\(x^2\\)", "Other"]
    assert all(n[1].strip() == "math::calculus" for n in notes)

    again = run(tmp_path, notes_dir, "export", "yaml")
    assert again.exit_code == 2 and "unknown format" in again.stderr


def test_suspend_and_unsuspend_by_query(tmp_path, notes_dir):
    write(notes_dir / "c.md", NOTE)
    assert "suspended 1 card(s)" in run(tmp_path, notes_dir, "suspend", "kind:cloze").stdout
    stats = json.loads(run(tmp_path, notes_dir, "stats", "--json").stdout)
    assert stats["suspended"] == 1
    assert "unsuspended 1 card(s)" in run(tmp_path, notes_dir, "suspend", "status:suspended", "--undo").stdout
    assert run(tmp_path, notes_dir, "suspend", "(bad").exit_code == 2
