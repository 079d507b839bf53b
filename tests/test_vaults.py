"""Small vaults in four styles (OSR, Obsidian, Logseq, zk), synced into a real KB.

- cards: recall and precision against `tests/osr_reference.py` (an independent
  reading of OSR's documented parsing rules), note by note;
- titles and links: exactly as listed in `tests/fixtures/vaults/<vault>.toml`;
- no junk: the Zettelkasten vault (emphasis highlights, escaped brackets `\\[\\[x\\]\\]`,
  `$$\\square$$` under "Proof", Excalidraw drawings) makes no card.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from d2lkb.config import load_config
from d2lkb.model import CardKind
from d2lkb.notes.options import ParseOptions
from d2lkb.notes.parse import parse_note
from d2lkb.store.kb import KnowledgeBase
from tests import osr_reference as ref

VAULTS = Path(__file__).parent / "fixtures" / "vaults"
STYLES = ("osr", "obsidian", "logseq", "zk")

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAGS_AT_START = re.compile(r"^(?:#[^\s#]+\s+)+")
_TAGS_AT_END = re.compile(r"(?:\s+#[^\s#]+)+$")
_BLOCK_MARKERS = re.compile(r"^(?:(?:[-*+]|\d+[.)]|>)\s+)+")


def _norm(text: str) -> str:
    """A card side as compared: comments out, whitespace collapsed, highlight markers
    (OSR keeps the other deletions' `==` in a cloze's front), list and quote markers at
    its start (OSR keeps the line's `- ` / `> `, d2lkb the item's text) and tag runs at
    the ends out."""
    text = " ".join(_COMMENT.sub(" ", text).replace("==", "").split())
    text = _BLOCK_MARKERS.sub("", text)
    return _TAGS_AT_END.sub("", _TAGS_AT_START.sub("", text)).strip()


@dataclass
class Measure:
    notes: int
    reference: int  # cards the OSR reference makes
    d2lkb: int  # cards d2lkb makes
    matched: int

    @property
    def recall(self) -> float:
        return self.matched / self.reference if self.reference else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.d2lkb if self.d2lkb else 1.0


def measure(root: Path, options: ParseOptions | None = None) -> Measure:
    """Cards of every note of `root`, d2lkb's real parser against the OSR reference."""
    options = options or ParseOptions()
    ref_options = ref.Options(
        highlights=options.cloze_highlights,
        bold=options.cloze_bold,
        curly=options.cloze_curly,
        flashcard_tags=options.flashcard_tags,
    )
    total = Measure(0, 0, 0, 0)
    for rel, result in ref.vault_cards(root, ref_options).items():
        note = parse_note((root / rel).read_text(encoding="utf-8"), rel, options)
        expected = Counter((c.kind, _norm(c.front), _norm(c.back)) for c in result.cards)
        got = Counter(
            (c.kind.value, _norm(c.front), _norm(c.back))
            for c in note.cards
            if c.kind in (CardKind.BASIC, CardKind.CLOZE)
        )
        total.notes += 1
        total.reference += sum(expected.values())
        total.d2lkb += len(note.cards)  # formula and snippet cards count against precision
        total.matched += sum((expected & got).values())
    return total


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    kbs: dict[str, KnowledgeBase] = {}
    for style in STYLES:
        kb_dir = tmp_path_factory.mktemp(f"kb-{style}")
        kb = KnowledgeBase(load_config(kb_dir, VAULTS / style))
        report = kb.sync()
        assert report.warnings == [], report.warnings
        kbs[style] = kb
    yield kbs
    for kb in kbs.values():
        kb.close()


def _expected(style: str) -> dict:
    return tomllib.loads((VAULTS / f"{style}.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("style", STYLES)
def test_titles(synced, style):
    kb = synced[style]
    assert dict(kb.conn.execute("SELECT path, title FROM note")) == _expected(style)["titles"]


@pytest.mark.parametrize("style", STYLES)
def test_links_resolve_as_obsidian_and_logseq_do(synced, style):
    kb = synced[style]
    links: dict[str, list[list[str]]] = {}
    for src, target, dst in kb.conn.execute(
        "SELECT n.path, link.target, coalesce(m.path, '') FROM link JOIN note n ON n.id = link.note_id"
        " LEFT JOIN note m ON m.id = link.target_note_id ORDER BY n.path, link.line, link.id"
    ):
        links.setdefault(src, []).append([target, dst])
    assert links == _expected(style)["links"]


def test_osr_vault_cards_match_the_reference(synced):
    m = measure(VAULTS / "osr")
    assert m.reference >= 40
    assert m.recall >= 0.98 and m.precision >= 0.98, m
    live = synced["osr"].conn.execute("SELECT count(*) FROM card WHERE retired_at IS NULL").fetchone()[0]
    assert live == m.d2lkb  # what the sync stored is what the parser made


@pytest.mark.parametrize("style", ("obsidian", "logseq"))
def test_other_vaults_cards_match_the_reference(style):
    m = measure(VAULTS / style)
    assert (m.recall, m.precision) == (1.0, 1.0), m


def test_zettelkasten_vault_makes_no_cards(synced):
    assert synced["zk"].conn.execute("SELECT count(*) FROM card").fetchone()[0] == 0
    assert measure(VAULTS / "zk").reference == 0


def test_zettelkasten_vault_makes_no_junk_even_when_every_note_makes_cards():
    """Opting every note in, only the in-sentence highlights are clozes: no formula card
    (`$$\\square$$`, a lone formula under "Definition" is a card only by the heading rule),
    nothing from escaped brackets, whole-paragraph highlights or Excalidraw drawings."""
    options = ParseOptions(flashcard_tags=())
    cards = []
    for path in sorted((VAULTS / "zk").rglob("*.md")):
        rel = path.relative_to(VAULTS / "zk").as_posix()
        cards += [(rel, c.kind.value, c.back) for c in parse_note(path.read_text(encoding="utf-8"), rel, options).cards]
    assert cards == [
        ("202301011200 Schrodinger's Cat.md", "cloze", "the cat is both alive and dead"),
        ("202301011230 Superposition.md", "formula", "$$\\psi = \\alpha |0\\rangle + \\beta |1\\rangle$$"),
        ("202301021000 Reading list.md", "cloze", "chapter 2"),
        ("202301021000 Reading list.md", "cloze", "linearity"),
    ]


def test_file_names_and_aliases_are_searchable(synced):
    hits = synced["zk"].search("Schrodinger")
    assert "202301011200 Schrodinger's Cat.md" in {h.path for h in hits}
    assert "Biology/Cells.md" in {h.path for h in synced["osr"].search("biology")}  # alias "Cell biology"
    assert "Editing/Formatting.md" in {h.path for h in synced["obsidian"].search("Formatting")}  # file name


# --- the bundled notes and the opt-in settings --------------------------------------


def test_bundled_notes_keep_31_cards_and_their_identities_across_a_parser_bump(tmp_path, bundled_copy):
    """A KB built by the previous parser (version 5) re-reads every bundled note once;
    every card keeps its id, so its history, and none is retired or added."""
    kb = KnowledgeBase(load_config(tmp_path / "kb", bundled_copy))
    try:
        assert kb.sync().cards == 31
        before = dict(kb.conn.execute("SELECT id, prompt FROM card"))
        kb.conn.execute("UPDATE meta SET value = '5' WHERE key = 'parser_version'")
        kb.conn.commit()
        report = kb.sync()
        assert report.updated == report.notes and (report.added, report.retired_cards) == (0, 0)
        assert dict(kb.conn.execute("SELECT id, prompt FROM card WHERE retired_at IS NULL")) == before
    finally:
        kb.close()


def test_kb_config_wins_over_the_vaults_own_settings(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("A ==cloze== here.\n\nQ::A\n", encoding="utf-8")
    (notes / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\nhighlights = false\n", encoding="utf-8")
    kb = KnowledgeBase(load_config(tmp_path / "kb", notes))
    try:
        assert kb.sync().cards == 1  # the vault: every note, no highlight clozes
    finally:
        kb.close()
    (tmp_path / "kb" / "config.toml").write_text("[cards]\nhighlights = true\n", encoding="utf-8")
    kb = KnowledgeBase(load_config(tmp_path / "kb", notes))
    try:
        assert kb.config.parse == ParseOptions(flashcard_tags=(), cloze_highlights=True)
        assert kb.sync().cards == 2  # changed options re-read the note
    finally:
        kb.close()


def test_a_malformed_vault_settings_file_is_a_clear_error(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = 'flashcards'\nbogus = 1\n", encoding="utf-8")
    kb = KnowledgeBase(load_config(tmp_path / "kb", notes))
    try:
        with pytest.raises(ValueError, match=r"\.d2lkb\.toml: .*flashcard_tags: expected a list.*unknown key 'bogus'"):
            kb.sync()
    finally:
        kb.close()


def test_links_follow_notes_that_appear_move_and_change_titles(tmp_path):
    """Incremental syncs re-resolve what a change can affect, nothing is left stale."""
    notes = tmp_path / "notes"
    for rel, text in {
        "a/source.md": "[[topic]] [[b/topic]] [[Nickname]] [[./sibling]]\n",
        "b/topic.md": "# Topic\n",
        "c/other.md": "---\naliases: [Nickname]\n---\n",
    }.items():
        (notes / rel).parent.mkdir(parents=True, exist_ok=True)
        (notes / rel).write_text(text, encoding="utf-8")
    kb = KnowledgeBase(load_config(tmp_path / "kb", notes))

    def targets() -> list[str]:
        return [r[0] for r in kb.conn.execute(
            "SELECT coalesce(m.path, '') FROM link JOIN note n ON n.id = link.note_id"
            " LEFT JOIN note m ON m.id = link.target_note_id WHERE n.path = 'a/source.md' ORDER BY link.id")]

    try:
        kb.sync()
        assert targets() == ["b/topic.md", "b/topic.md", "c/other.md", ""]
        (notes / "a" / "topic.md").write_text("a second topic, next to the source\n", encoding="utf-8")
        (notes / "a" / "sibling.md").write_text("now it exists\n", encoding="utf-8")
        kb.sync()
        assert targets() == ["a/topic.md", "b/topic.md", "c/other.md", "a/sibling.md"]
        (notes / "c" / "other.md").write_text("no alias any more\n", encoding="utf-8")
        (notes / "b" / "topic.md").rename(notes / "b" / "moved.md")
        kb.sync()
        assert targets() == ["a/topic.md", "", "", "a/sibling.md"]
    finally:
        kb.close()


def test_a_note_opts_in_with_front_matter_and_plugin_files_never_do():
    assert len(parse_note("---\nd2lkb: cards\n---\nQ::A\n", "deck.md").cards) == 1
    assert parse_note("Q::A\n", "plain.md").cards == ()
    assert parse_note("#flashcards\nQ::A\n", "drawing.excalidraw.md").cards == ()
    assert parse_note("---\nexcalidraw-plugin: parsed\n---\n#flashcards\nQ::A\n", "d.md").cards == ()
