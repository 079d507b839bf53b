"""Fixture tests for the note parser, in the markdown-it-py style.

Each file in tests/fixtures/parse/ holds cases of the form

    title
    .
    Markdown input
    .
    expected, one JSON object per line
    .

The expected lines are what `render(parse_note(input, PATH), aspects)` prints for
the aspects listed for that file in `ASPECTS` (warnings are always included). Keys
that hold their default value are left out, so a line names only what matters:
`prompt`/`context` of a card are shown only when they differ from `front`/`back`;
cards that share a sibling key show the same letter in `siblings`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from markdown_it.utils import read_fixture_file

from d2lkb.model import ParsedNote
from d2lkb.notes.options import ParseOptions
from d2lkb.notes.parse import parse_note

FIXTURES = Path(__file__).parent / "fixtures" / "parse"
PATH = "notes/topic.md"

ASPECTS: dict[str, tuple[str, ...]] = {
    "tags.md": ("tags",),
    "links.md": ("links",),
    "highlights.md": ("highlights",),
    "formulas.md": ("formulas",),
    "snippets.md": ("snippets",),
    "cards.md": ("cards",),
    "sections.md": ("note", "sections"),
    "frontmatter.md": ("note", "tags"),
}


# These files test syntax: every note makes cards, and `\\(..\\)` / `\\[..\\]` are math.
OPTIONS = ParseOptions(flashcard_tags=(), bracket_math=True)


def _drop(item: dict[str, Any], **defaults: Any) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in defaults or v != defaults[k]}


def render(note: ParsedNote, aspects: tuple[str, ...]) -> list[str]:
    """One compact JSON line per extracted value of the given aspects, then warnings."""
    rows: list[dict[str, Any]] = []
    if "note" in aspects:
        rows.append({"title": note.title, "front_matter": note.front_matter})
    if "sections" in aspects:
        for s in note.sections:
            rows.append(
                _drop(
                    {
                        "section": s.title,
                        "level": s.level,
                        "line": s.line,
                        "end_line": s.end_line,
                        "parent": s.parent,
                        "text": s.text,
                    },
                    parent=None,
                    text="",
                )
            )
    if "tags" in aspects:
        rows.extend({"tag": t.name, "line": t.line, "section": t.section} for t in note.tags)
    if "links" in aspects:
        rows.extend(
            _drop(
                {"link": link.target, "alias": link.alias, "line": link.line, "section": link.section},
                alias=None,
            )
            for link in note.links
        )
    if "highlights" in aspects:
        rows.extend({"highlight": h.text, "line": h.line, "section": h.section} for h in note.highlights)
    if "formulas" in aspects:
        rows.extend(
            _drop(
                {
                    "formula": f.latex,
                    "display": f.display,
                    "line": f.line,
                    "section": f.section,
                    "name": f.name,
                    "known_failure": f.known_failure,
                },
                name=None,
                known_failure=None,
            )
            for f in note.formulas
        )
    if "snippets" in aspects:
        rows.extend(
            _drop(
                {
                    "snippet": s.language,
                    "code": s.code,
                    "line": s.line,
                    "section": s.section,
                    "expected": s.expected,
                    "expected_line": s.expected_line,
                    "info": s.info,
                    "known_failure": s.known_failure,
                },
                expected=None,
                expected_line=None,
                known_failure=None,
            )
            for s in note.snippets
        )
    if "cards" in aspects:
        letters: dict[str, str] = {}
        for c in note.cards:
            siblings = (
                letters.setdefault(c.sibling_key, chr(ord("A") + len(letters))) if c.sibling_key else ""
            )
            row = {
                "card": c.kind.value,
                "front": c.front,
                "back": c.back,
                "line": c.line,
                "section": c.section,
                "tags": list(c.tags),
                "prompt": c.prompt,
                "context": c.context,
                "reverse": c.reverse,
                "siblings": siblings,
                "formula": c.formula,
                "snippet": c.snippet,
            }
            rows.append(
                _drop(
                    row,
                    tags=[],
                    prompt=c.front,
                    context=c.back,
                    reverse=False,
                    siblings="",
                    formula=None,
                    snippet=None,
                )
            )
    rows.extend({"warning": w.message, "line": w.line} for w in note.warnings)
    return [json.dumps(row, ensure_ascii=False) for row in rows]


def _cases() -> list[Any]:
    cases = []
    for name, aspects in ASPECTS.items():
        for line, title, text, expected in read_fixture_file(FIXTURES / name):
            cases.append(pytest.param(aspects, text, expected, id=f"{name}:{line}:{title}"))
    return cases


def test_every_fixture_file_is_listed():
    assert sorted(p.name for p in FIXTURES.glob("*.md")) == sorted(ASPECTS)


@pytest.mark.parametrize(("aspects", "text", "expected"), _cases())
def test_fixture(aspects: tuple[str, ...], text: str, expected: str) -> None:
    note = parse_note(text, PATH, OPTIONS)
    assert render(note, aspects) == [line for line in expected.splitlines() if line.strip()]
