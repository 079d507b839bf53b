"""CLI side of issue 10: leaf tags and unknown tags in search/stats, labelled per-query stats,
search saying when it stopped at --limit."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from d2lkb.cli import app

runner = CliRunner()

NOTE = """\
# Deep learning #dl/mlp

What is an MLP? :: A stack of affine layers and nonlinearities.

What is ReLU? :: $\\max(x, 0)$

# CNNs #dl/cnn

What is a convolution? :: A sliding dot product.
"""


def run(tmp_path, *args):
    notes = tmp_path / "notes"
    notes.mkdir(exist_ok=True)
    (notes / "dl.md").write_text(NOTE, encoding="utf-8")
    (notes / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")  # every note makes cards
    return runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes), *args])


def test_search_finds_a_leaf_tag_and_names_close_tags(tmp_path):
    result = run(tmp_path, "search", "#cnn", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits and all("dl/cnn" in h["tags"] for h in hits)
    result = run(tmp_path, "search", "#mpl")
    assert result.exit_code == 2 and "no tag #mpl — did you mean #dl/mlp?" in result.output


def test_search_says_when_it_stops_at_the_limit(tmp_path):
    result = run(tmp_path, "search", "what", "--limit", "1")
    total = len(json.loads(run(tmp_path, "search", "what", "--limit", "1000", "--json").stdout))
    assert total > 1
    assert result.exit_code == 0 and f"showing 1 of {total} matches; more with --limit N" in result.output


def test_stats_of_a_deck_are_labelled(tmp_path):
    result = run(tmp_path, "stats", "#mlp")
    assert result.exit_code == 0, result.output
    assert "#dl/mlp" in result.output and "cards" in result.output and "today" in result.output
    assert "tomorrow" in result.output and "intervals (review cards)  no data yet" in result.output
    stats = json.loads(run(tmp_path, "stats", "#mlp", "--json").stdout)
    assert stats["cards"] == 2 and stats["query"] == "#dl/mlp" and len(stats["forecast"]) == 7
    assert run(tmp_path, "stats", "#nosuchtag").exit_code == 2


def complete(words: str, cword: int) -> list[str]:
    result = runner.invoke(app, [], prog_name="d2lkb",
                           env={"_D2LKB_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)})
    return result.output.split()


def test_completion_knows_tags_fields_notes_formats_and_devices(tmp_path):
    assert run(tmp_path, "sync").exit_code == 0
    base = f"d2lkb --kb {tmp_path / 'kb'} --notes {tmp_path / 'notes'}"
    assert complete(f"{base} search #dl/m", 6) == ["#dl/mlp"]
    assert complete(f"{base} review status:re", 6) == ["status:review", "status:refuted"]
    assert complete(f"{base} show d", 6) == ["dl.md"]
    assert complete("d2lkb export a", 2) == ["apkg"]
    assert complete("d2lkb check --device c", 3) == ["cpu", "cuda"]
    # no knowledge base: nothing offered, and none created
    assert complete(f"d2lkb --kb {tmp_path / 'none'} search #d", 4) == []
    assert not (tmp_path / "none").exists()

