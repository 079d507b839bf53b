"""OSR's own parser test cases, run through d2lkb's real parser.

Each case of `tests/fixtures/osr/cases.py` (translated from OSR's parser.test.ts and
note-question-parser.test.ts) is parsed by `parse_note` as a one-note vault; its
cards must be OSR's: the same number, the same question/answer split (and, for a
cloze, the same deletion). A case listed in `DIFFERENCES` must *not* agree: those
are d2lkb's deliberate differences, each documented in notes/README.md.

Compared as shown: whitespace collapsed, HTML comments out, and a run of tags at the
start or end of a side left out (d2lkb shows a card's tags apart from its text).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from d2lkb.notes.options import ParseOptions
from d2lkb.notes.parse import parse_note
from tests import osr_reference as ref

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "osr"))
from cases import BOLD, CASES, CURLY, HL, Case  # noqa: E402

# Deliberate differences: case id -> reason (README: "Differences from OSR").
DIFFERENCES: dict[str, str] = {
    "custom separator &&": "separators are not configurable",
    "custom separator =": "separators are not configurable",
    "empty single separator": "separators are not configurable",
    "custom reversed &&&": "separators are not configurable",
    "swapped separators": "separators are not configurable",
    "custom :> and <:>": "separators are not configurable",
    "whitespace reversed separator": "separators are not configurable",
    "custom multi separator @@": "separators are not configurable",
    "empty multi separator": "separators are not configurable",
    "custom multi reversed @@@": "separators are not configurable",
    "custom ??/???/???? markers": "separators are not configurable",
    "whitespace multi reversed separator": "separators are not configurable",
    "two multi basic, end marker ---": "no end marker: `---` right under a card is a setext heading (warned)",
    "multi basic, end marker, blank line after ?": "no end marker: a blank line ends a card",
    "multi basic + reversed, end marker ---": "no end marker: `---` right under a card is a setext heading (warned)",
    "cloze ===x=== with end marker ---": "no end marker: a blank line ends a card; `===x===` hides `=x`",
    "Anki-like {{a::answer}}": "`{{a::x}}`: only a number (`1::`, `c1::`) is a group; `a` is the answer",
    "folder decks, indented lines": "four-space indented lines are a Markdown code block",
    "first topic tag after the first question": "four-space indented lines are a Markdown code block",
    "last topic tag before the question": "four-space indented lines are a Markdown code block",
    "leading white space before a topic tag": "twelve-space indented line is a Markdown code block",
}

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAGS_AT_START = re.compile(r"^(?:#[^\s#]+\s+)+")
_TAGS_AT_END = re.compile(r"(?:\s+#[^\s#]+)+$")
_STANDARD = {HL: "highlights", BOLD: "bold", CURLY: "curly"}


def _norm(text: str) -> str:
    text = " ".join(_COMMENT.sub(" ", text).split())
    return _TAGS_AT_END.sub("", _TAGS_AT_START.sub("", text)).strip()


def osr_options(case: Case) -> ref.Options:
    o = case.opts
    clozes = o.get("clozes", [HL, BOLD, CURLY] if case.source == "parser.test.ts" else [HL])
    flags = {"highlights": False, "bold": False, "curly": False}
    for pattern in clozes:
        if pattern in _STANDARD:
            flags[_STANDARD[pattern]] = True
        elif pattern.startswith("{{"):
            flags["curly"] = True  # Anki-like {{1::answer::hint}}
        elif pattern.startswith("=="):
            flags["highlights"] = True  # ==answer== with a footnote hint
    return ref.Options(
        single=o.get("single", "::"),
        single_reversed=o.get("single_reversed", ":::"),
        multi=o.get("multi", "?"),
        multi_reversed=o.get("multi_reversed", "??"),
        end_marker=o.get("end_marker", ""),
        **flags,
    )


def d2lkb_options(case: Case) -> ParseOptions:
    """The closest d2lkb settings: OSR's `parse()` has no tag opt-in; the note parser
    uses OSR's default `#flashcards` one (folder decks: every note)."""
    osr = osr_options(case)
    every_note = case.source == "parser.test.ts" or case.opts.get("convert_folders_to_decks")
    return ParseOptions(
        flashcard_tags=() if every_note else ("flashcards",),
        cloze_highlights=osr.highlights,
        cloze_bold=osr.bold,
        cloze_curly=osr.curly,
    )


def expected_cards(case: Case) -> list[tuple[str, str, str]] | int:
    if isinstance(case.expected, int):
        return case.expected
    if case.source == "parser.test.ts":
        options = osr_options(case)
        cards: list[tuple[str, str, str]] = []
        for kind, text in case.expected:
            lines = text.split("\n")
            for card in ref.expand(ref.Question(kind, text, 0, len(lines) - 1), options):
                cards.append((card.kind, "" if card.kind == "cloze" else _norm(card.front), _norm(card.back)))
        return sorted(cards)
    return sorted(("any", _norm(front), _norm(back)) for front, back in case.expected)


def d2lkb_cards(case: Case) -> list[tuple[str, str, str]]:
    note = parse_note(case.text, "case.md", d2lkb_options(case))
    out = []
    for card in note.cards:
        kind = card.kind.value
        if case.source != "parser.test.ts":
            out.append(("any", _norm(card.front), _norm(card.back)))
        else:
            out.append((kind, "" if kind == "cloze" else _norm(card.front), _norm(card.back)))
    return sorted(out)


def agrees(case: Case) -> bool:
    expected = expected_cards(case)
    got = d2lkb_cards(case)
    return len(got) == expected if isinstance(expected, int) else got == expected


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_osr_case(case: Case) -> None:
    if case.id in DIFFERENCES:
        assert not agrees(case), f"{case.id!r} agrees now: drop it from DIFFERENCES and the README"
    else:
        assert d2lkb_cards(case) == expected_cards(case) if not isinstance(case.expected, int) else agrees(case)


def test_every_difference_names_a_case() -> None:
    assert set(DIFFERENCES) <= {c.id for c in CASES}
    assert len({c.id for c in CASES}) == len(CASES)


def summary() -> tuple[int, int]:
    """(agreeing cases, all cases)."""
    return sum(agrees(c) for c in CASES), len(CASES)
