"""The CLI's plain values (str, int, bool) coerce without pydantic; the rest stays Typer's."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from d2lkb.cli import app
from tests.conftest import write

runner = CliRunner()

SCRIPT = """
import json, sys
from d2lkb.cli import main
sys.argv = ["d2lkb", "--kb", sys.argv[1], "--notes", sys.argv[2], "search", "--no-sync", "-n", "3", "--json", "gradient"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "sqlmodel", "sqlalchemy", "fsrs"))))
"""


def test_search_imports_no_pydantic(tmp_path, notes_dir):
    write(notes_dir / "a.md", "# Gradients\n\nThe gradient points uphill.\n")
    assert runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "sync"]).exit_code == 0
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "kb"), str(notes_dir)], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    hits, heavy = json.loads(out[0]), json.loads(out[-1])
    assert hits and hits[0]["path"] == "a.md"
    assert heavy == []


def test_values_the_fast_path_declines_get_typers_messages(tmp_path, notes_dir):
    write(notes_dir / "a.md", "# A\n\ntext\n")

    def run(*args):
        return runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), *args])

    def said(*args):  # the error box's words, unwrapped
        return " ".join(run(*args).output.replace("│", " ").split())

    assert run("search", "-n", "0", "x").exit_code == 2
    assert "greater than or equal to 1" in said("search", "-n", "0", "x")
    assert "valid integer" in said("search", "-n", "2.5", "x")
    assert "valid integer" in said("search", "-n", "abc", "x")
    assert run("search", "-n", "+2", "--json", "text").exit_code == 0
    assert len(json.loads(run("search", "--limit", "10000", "--json", "text").stdout)) == 1  # the max itself
    assert run("search", "--limit", "10001", "x").exit_code == 2
