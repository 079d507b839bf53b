"""Cards written in paragraphs: `Q :: A`, `Q ::: A`, multi-line `?`/`??`, clozes.

Pure functions over what the parser collected from one paragraph's inline tokens;
positions are offsets into the paragraph's Markdown source (`content`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from d2lkb.model import CardKind, ParseWarning

# `key:: value` at line start: a Dataview/Logseq property, not a card.
_PROPERTY = re.compile(r"[A-Za-z_][\w-]*::")
CLOZE_GAP = "[...]"
# Every cloze card repeats its paragraph: past this many characters in all, a
# paragraph's clozes are skipped (with a warning) rather than built.
MAX_CLOZE_TEXT = 2_000_000


def short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


@dataclass(slots=True)
class CardDraft:
    """A card before its tags are known (they depend on the whole note)."""

    kind: CardKind
    front: str
    back: str
    line: int
    section: int | None
    prompt: str
    context: str
    reverse: bool = False
    sibling_key: str = ""
    formula: int | None = None
    snippet: int | None = None


@dataclass(slots=True)
class ParagraphMarks:
    """What one paragraph's inline tokens told about cards."""

    content: str  # the paragraph's Markdown source (container prefixes removed)
    first_line: int  # 1-based line of content[0]
    lines: list[tuple[int, int, str | None]]  # (start, end, "?"/"??"/None) per source line
    separators: list[tuple[int, str, int]]  # (pos, "::"/":::", line index)
    highlights: list[tuple[int, int]]  # (open pos, close pos) of outermost non-empty `==..==`
    markers: list[int]  # positions of every `==` that opens or closes a highlight
    # Markdown of a list/fence/table/quote that directly follows the paragraph (no
    # blank line): the answer of a multi-line card whose `?` line ends the paragraph.
    following: str = ""


def _line_of(marks: ParagraphMarks, pos: int) -> int:
    return marks.first_line + marks.content.count("\n", 0, pos)


def _question_answer(
    front: str, back: str, line: int, section: int | None, reversed_: bool
) -> list[CardDraft]:
    cards = [CardDraft(CardKind.BASIC, front, back, line, section, prompt=front, context=back)]
    if reversed_:
        key = "reverse:" + short_hash(front + "\x00" + back)
        cards[0].sibling_key = key
        cards.append(
            CardDraft(
                CardKind.BASIC,
                back,
                front,
                line,
                section,
                prompt=back,
                context=front,
                reverse=True,
                sibling_key=key,
            )
        )
    return cards


def _strip_markers(marks: ParagraphMarks, start: int, end: int) -> str:
    """content[start:end] without the `==` highlight markers inside it."""
    content = marks.content
    out = []
    prev = start
    for pos in marks.markers:
        if start <= pos < end:
            out.append(content[prev:pos])
            prev = pos + 2
    out.append(content[prev:end])
    return "".join(out)


def paragraph_cards(marks: ParagraphMarks, section: int | None) -> tuple[list[CardDraft], list[ParseWarning]]:
    """The cards of one paragraph (or list item), in source order.

    A line holding only `?` (or `??`, reversed) makes the whole paragraph one
    multi-line card; otherwise every line with a ` :: ` / ` ::: ` separator (and not
    a `key:: value` property) is a card; a paragraph with neither turns each
    outermost `==highlight==` into a cloze card.
    """
    content = marks.content
    cards: list[CardDraft] = []
    warnings: list[ParseWarning] = []

    for start, end, qmark in marks.lines:
        if qmark is None:
            continue
        question = content[:start].strip()
        answer = content[end:].strip() or marks.following.strip()
        line = _line_of(marks, start)
        if not question or not answer:
            side = "question" if not question else "answer"
            warnings.append(ParseWarning(line, f"card with an empty {side} (a `{qmark}` line)"))
            return cards, warnings
        return _question_answer(question, answer, marks.first_line, section, qmark == "??"), warnings

    seen_lines: set[int] = set()
    for pos, markup, line_index in marks.separators:
        if line_index in seen_lines:
            continue  # the first separator of a line splits it
        seen_lines.add(line_index)
        start, end, _ = marks.lines[line_index]
        if _PROPERTY.match(content, start, end):
            continue
        front = content[start:pos].strip()
        back = content[pos + len(markup) : end].strip()
        line = _line_of(marks, pos)
        if not front or not back:
            side = "question" if not front else "answer"
            warnings.append(ParseWarning(line, f"card with an empty {side} (`{markup}`)"))
            continue
        cards.extend(_question_answer(front, back, line, section, markup == ":::"))
    if seen_lines and (cards or warnings):
        return cards, warnings

    if marks.highlights and len(content) * len(marks.highlights) > MAX_CLOZE_TEXT:
        warnings.append(
            ParseWarning(
                marks.first_line,
                f"paragraph too large for cloze cards ({len(marks.highlights)} highlights in "
                f"{len(content)} characters); no cards made",
            )
        )
    elif marks.highlights:
        context = _strip_markers(marks, 0, len(content))
        key = "cloze:" + short_hash(context)
        for opened, closed in marks.highlights:
            deletion = _strip_markers(marks, opened + 2, closed).strip()
            front = (
                _strip_markers(marks, 0, opened) + CLOZE_GAP + _strip_markers(marks, closed + 2, len(content))
            )
            cards.append(
                CardDraft(
                    CardKind.CLOZE,
                    front.strip(),
                    deletion,
                    _line_of(marks, opened),
                    section,
                    prompt=deletion,
                    context=context.strip(),
                    sibling_key=key,
                )
            )
    return cards, warnings
