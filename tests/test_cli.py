"""End-to-end CLI transcripts on the bundled notes and on small vaults (real SQLite, real parser)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from d2lkb.cli import app
from tests.conftest import write

runner = CliRunner()


def run(tmp_path, notes, *args):
    return runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes), *args])


@pytest.fixture
def synced(tmp_path, bundled_copy):
    result = run(tmp_path, bundled_copy, "sync", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sync_json_contract(synced):
    for key in ("notes", "cards", "tags", "formulas", "snippets", "links", "added", "updated", "removed", "unchanged"):
        assert isinstance(synced[key], int), key
    assert synced["warnings"] == []
    assert synced["notes"] == synced["added"] >= 5
    assert synced["cards"] > 20


def test_resync_is_a_noop(tmp_path, bundled_copy, synced):
    again = json.loads(run(tmp_path, bundled_copy, "sync", "--json").stdout)
    assert (again["added"], again["updated"], again["removed"]) == (0, 0, 0)
    assert again["unchanged"] == synced["notes"]


@pytest.mark.parametrize(
    ("query", "path", "title"),
    [
        ("#参数", "introduction.md", "How"),
        ("#objectivefunction", "introduction.md", "Objective Functions"),
        ("gradient descent", "introduction.md", "Optimization Algo"),
    ],
)
def test_search_finds_the_right_section(tmp_path, bundled_copy, synced, query, path, title):
    result = run(tmp_path, bundled_copy, "search", query, "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    sections = [h for h in hits if h["kind"] == "section"]
    assert any(h["path"] == path and h["title"] == title for h in sections), hits
    for h in hits:
        assert set(h) == {"kind", "path", "line", "title", "tags", "snippet"}


def test_search_table_highlights_the_words_without_marker_stand_ins(tmp_path, bundled_copy, synced, monkeypatch):
    """The table shows the matched words in bold, and no ␂/␃: the terminal-safe pass had turned the
    snippet's highlight markers into visible stand-ins before they were split off."""
    import d2lkb.cli as cli
    from d2lkb.store.search import HIGHLIGHT

    result = run(tmp_path, bundled_copy, "search", "gradient descent", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "gradient" in result.stdout.lower()
    assert "\u2402" not in result.stdout and "\u2403" not in result.stdout
    text = cli._highlighted(f"a {HIGHLIGHT[0]}grad\x1b[2J{HIGHLIGHT[1]} b\x07")
    assert text.plain == "a grad␛[2J b␇"  # the note's own controls still shown, never obeyed
    assert [(text.plain[s.start:s.end], s.style) for s in text.spans] == [("grad␛[2J", "bold yellow")]


def test_search_limit_and_kind(tmp_path, bundled_copy, synced):
    hits = json.loads(run(tmp_path, bundled_copy, "search", "kind:card", "--json", "--limit", "3").stdout)
    assert len(hits) == 3 and {h["kind"] for h in hits} == {"card"}


@pytest.mark.parametrize("query", ["(unclosed", '"open quote', "kind:zebra", "a OR", "foo:bar"])
def test_bad_query_is_one_line_and_exit_2(tmp_path, bundled_copy, query):
    result = run(tmp_path, bundled_copy, "search", query)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.strip().count("\n") == 0
    assert "bad query" in result.stderr


def test_tags_json_counts_nested(tmp_path, notes_dir):
    write(notes_dir / "a.md", "# A #ml/supervised\n\nQ :: A\n")
    write(notes_dir / "b.md", "# B #ml\n\n#ML/unsupervised\n")
    result = run(tmp_path, notes_dir, "tags", "--json")
    tags = {t["tag"]: t["count"] for t in json.loads(result.stdout)}
    assert tags == {"ml": 2, "ml/supervised": 1, "ML/unsupervised": 1}


def test_show_note(tmp_path, bundled_copy, synced):
    result = run(tmp_path, bundled_copy, "show", "calculus", "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["path"] == "preliminaries/calculus.md"
    assert any(s["title"] == "Power rule" for s in view["sections"])
    assert any(c["kind"] == "formula" for c in view["cards"])
    assert view["backlinks"], "index.md links to calculus"
    human = run(tmp_path, bundled_copy, "show", "calculus")
    assert "Calculus" in human.stdout and "backlinks" in human.stdout


def test_show_unknown_note(tmp_path, bundled_copy):
    result = run(tmp_path, bundled_copy, "show", "no-such-note")
    assert result.exit_code == 1 and "no note matches" in result.stderr


def test_missing_notes_folder_is_a_clear_error(tmp_path):
    result = run(tmp_path, tmp_path / "nope", "sync")
    assert result.exit_code == 1 and "notes folder not found" in result.stderr


def test_bad_config_is_a_clear_error(tmp_path, notes_dir):
    write(tmp_path / "kb" / "config.toml", "[review]\ndesired_retention = 2\nbogus = 1\n")
    result = run(tmp_path, notes_dir, "sync")
    assert result.exit_code == 1
    assert "desired_retention" in result.stderr and "bogus" in result.stderr


def test_env_vars_select_kb_and_notes(tmp_path, notes_dir, monkeypatch):
    write(notes_dir / "a.md", "# A\n\nQ :: A\n")
    monkeypatch.setenv("D2LKB_KB", str(tmp_path / "envkb"))
    monkeypatch.setenv("D2LKB_NOTES", str(notes_dir))
    result = runner.invoke(app, ["sync", "--json"])
    assert json.loads(result.stdout)["cards"] == 1
    assert (tmp_path / "envkb" / "kb.sqlite").exists()


def test_retired_listing(tmp_path, notes_dir):
    p = write(notes_dir / "a.md", "# A\n\nQ :: A\n")
    run(tmp_path, notes_dir, "sync")
    p.write_text("# A\n", encoding="utf-8")
    listing = json.loads(run(tmp_path, notes_dir, "retired", "--json").stdout)
    assert [c["front"] for c in listing] == ["Q"]
    assert "purged 1" in run(tmp_path, notes_dir, "retired", "--purge", "--yes").stdout


def test_stats_json_after_a_review(tmp_path, notes_dir):
    from d2lkb.config import load_config
    from d2lkb.review.types import Grade
    from d2lkb.store.kb import KnowledgeBase

    write(notes_dir / "a.md", "# A\n\nQ1 :: A1\n\nQ2 :: A2\n")
    result = run(tmp_path, notes_dir, "stats", "--json")
    stats = json.loads(result.stdout)
    assert stats == {"cards": 2, "new": 2, "learning": 0, "review": 0, "suspended": 0, "due_today": 2,
                     "reviews_today": 0, "retention_30d": None}
    with KnowledgeBase(load_config(tmp_path / "kb", notes_dir)) as kb:
        kb.answer(kb.next_card().id, Grade.GOOD)
    stats = json.loads(run(tmp_path, notes_dir, "stats", "--json").stdout)
    assert (stats["new"], stats["learning"], stats["reviews_today"]) == (1, 1, 1)


def test_tui_commands_refuse_a_missing_notes_folder(tmp_path):
    for args in ([], ["review"], ["review", "#x"]):
        result = run(tmp_path, tmp_path / "nope", *args)
        assert result.exit_code == 1 and "notes folder not found" in result.stderr, args


def test_orphans(tmp_path, notes_dir):
    write(notes_dir / "a.md", "# A\n\nSee [[b]].\n")
    write(notes_dir / "b.md", "# B\n")
    write(notes_dir / "lonely.md", "# Lonely\n\nSee [[nowhere]].\n")
    assert json.loads(run(tmp_path, notes_dir, "orphans", "--json").stdout) == ["lonely.md"]


def test_sync_of_a_vault_without_flashcard_tags_says_why_it_has_no_cards(tmp_path):
    vault = tmp_path / "vault"
    write(vault / "zettel.md", "# Definition\n\nA ==highlight== for emphasis, and Q::A.\n")
    result = run(tmp_path, vault, "sync")
    assert result.exit_code == 0, result.output
    assert "only notes tagged #flashcards make cards" in " ".join(result.stdout.split())
    write(vault / "deck.md", "#flashcards\n\nQ::A\n")
    assert json.loads(run(tmp_path, vault, "sync", "--json").stdout)["cards"] == 1


def test_a_query_that_starts_with_a_dash_is_a_query(tmp_path, notes_dir):
    """`d2lkb search '-draft'` (and `search -- '-draft'`) search for notes without 'draft'."""
    import json
    import subprocess
    import sys

    (notes_dir / "a.md").write_text("# A\n\nsome draft text\n", encoding="utf-8")
    (notes_dir / "b.md").write_text("# B\n\nfinal text\n", encoding="utf-8")
    base = [sys.executable, "-m", "d2lkb.cli", "--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "search"]
    for args in (["-draft", "--json"], ["--json", "-n", "5", "--", "-draft"], ["-draft text", "--json", "-n", "5"]):
        done = subprocess.run([*base, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        sections = {hit["path"] for hit in json.loads(done.stdout) if hit["kind"] == "section"}
        assert sections == {"b.md"}, (args, sections)


def test_help_shows_plain_argument_names_and_no_flag_types():
    for command in ([], ["search"], ["review"], ["export"], ["check"]):
        result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output and "{" not in result.output, result.output
    usage = runner.invoke(app, ["search", "--help"], env={"COLUMNS": "120"}).output
    assert "search [OPTIONS] QUERY" in usage
    assert "review [OPTIONS] [QUERY]" in runner.invoke(app, ["review", "--help"], env={"COLUMNS": "120"}).output


def test_reschedule_goes_with_cram(tmp_path):
    (tmp_path / "notes").mkdir()
    result = run(tmp_path, tmp_path / "notes", "review", "--reschedule")
    assert result.exit_code == 2 and "--reschedule goes with --cram" in result.output
