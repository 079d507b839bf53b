"""Anki notes as Markdown: one file per deck, one block per note, in the card syntax d2lkb reads.

- nested decks are folders (`Lang::German` -> `Lang/German.md`); media go to `attachments/`
  at the notes root; a note's Anki tags become a `## #tag ...` heading over its cards;
- Cloze (any cloze type) -> one paragraph with `==deletions==` (hints dropped, reported);
- a standard type whose two templates ask field 1 then field 2 (Basic and reversed, also the
  optional-reverse kind when the note has its second card) -> `Q ::: A`; any other standard
  type -> `Q :: A` from its first two fields (`?` cards when a side has several lines);
- d2lkb's own note types (an export of ours) -> the card's own Markdown, from the note.
Whatever cannot be carried over is reported per note (`Problem`), never dropped silently.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from d2lkb.store.anki.export import MARKDOWN_FIELD, MODEL_NAMES, display_rows
from d2lkb.store.anki.html import CLOZE, has_sound, to_markdown
from d2lkb.store.anki.read import AnkiCard, AnkiNote, AnkiPackage
from d2lkb.store.imports.common import Problem

ATTACHMENTS = "attachments"
_SIMPLE_FIELD = re.compile(r"^\s*\{\{([^#/^}]+)\}\}\s*$")
_CONDITIONAL = re.compile(r"\{\{[#/^][^}]*\}\}")


@dataclass
class Block:
    note: AnkiNote
    markdown: str
    cards: list[AnkiCard]  # in the order the parser will make cards from `markdown`
    kind: str = ""  # the card kind expected from `markdown` ("": d2lkb's own Markdown, any kind)
    line: int = 0  # first line in the file, once placed
    notes: list[AnkiNote] = field(default_factory=list)  # the notes of `cards` (more than `note`: see `_joins`)

    def __post_init__(self) -> None:
        self.notes = self.notes or [self.note]

    def note_of(self, card: AnkiCard) -> AnkiNote:
        return next((n for n in self.notes if any(c.id == card.id for c in n.cards)), self.note)


@dataclass
class DeckFile:
    deck: str
    rel: str
    blocks: list[Block] = field(default_factory=list)
    text: str = ""


def _safe(part: str) -> str:
    part = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", part).strip(" .")
    return part or "_"


def deck_path(deck: str) -> str:
    parts = [_safe(p) for p in deck.split("::")]
    return "/".join(parts) + ".md"


def _is_reversed(note: AnkiNote) -> bool:
    """Two templates, the first asking the first field and the second asking the second."""
    if len(note.templates) != 2 or len(note.fields) < 2:
        return False
    # `{{#Add Reverse}}{{Back}}{{/Add Reverse}}` (optional reverse) asks the second field too.
    first, second = (m.group(1).strip() if (m := _SIMPLE_FIELD.match(_CONDITIONAL.sub("", t[1]))) else None
                     for t in note.templates)
    return first == note.fields[0][0] and second == note.fields[1][0]


def _question_answer(front: str, back: str, reversed_: bool) -> str:
    if "\n" not in front and "\n" not in back:
        return f"{front} {':::' if reversed_ else '::'} {back}"
    # Multi-line: the question is paragraph lines (no blank line), the answer ends at a blank line.
    q = "\n".join(line for line in front.splitlines() if line.strip())
    a = "\n".join(line for line in back.splitlines() if line.strip())
    return f"{q}\n{'??' if reversed_ else '?'}\n{a}"


def _block(note: AnkiNote, media: dict[str, str], problems: list[Problem]) -> Block | None:
    where = f"anki note {note.id}"
    by_ord = sorted(note.cards, key=lambda c: c.ord)
    values = dict(note.fields)
    for name, value in note.fields:
        if has_sound(value):
            problems.append(Problem(where, f"field {name!r}: sound not carried over"))
    own = values.get(MARKDOWN_FIELD)
    if note.notetype in MODEL_NAMES and own:
        markdown = html.unescape(own)
        if note.is_cloze:
            numbers = [int(m.group(1)) for m in CLOZE.finditer(values.get("Text", ""))]
            cards = [c for n in numbers for c in by_ord if c.ord == n - 1]
        else:
            cards = by_ord
        return Block(note, markdown, cards)
    if note.is_cloze and "image-occlusion:" in note.fields[0][1]:
        problems.append(Problem(where, "image occlusion not carried over; the image is kept as text, no card"))
        image = next((v for n, v in note.fields if n == "Image"), "")
        return Block(note, to_markdown(image, media), [])
    if note.is_cloze:
        text_name, text = note.fields[0]
        numbers = [int(m.group(1)) for m in CLOZE.finditer(text)]
        if any(m.group(3) for m in CLOZE.finditer(text)):
            problems.append(Problem(where, "cloze hints not carried over"))
        if len(set(numbers)) != len(numbers):
            problems.append(Problem(where, "several deletions share one cloze number; d2lkb makes one card per"
                                           " deletion, the first of each number keeps the Anki card's schedule"))
        markdown = re.sub(r"\n\s*\n", "\n", to_markdown(text, media))  # one paragraph: one cloze group
        seen: set[int] = set()
        cards = []
        for n in numbers:
            card = next((c for c in by_ord if c.ord == n - 1), None) if n not in seen else None
            seen.add(n)
            cards.append(card)
        extra = [(n, v) for n, v in note.fields[1:] if v.strip()]
        for name, value in extra:
            markdown += "\n\n" + to_markdown(value, media)
            problems.append(Problem(where, f"field {name!r} kept as text after the cloze (not shown with the card)"))
        if not numbers:
            problems.append(Problem(where, f"cloze note without deletions in {text_name!r}; its text is kept, no card"))
        return Block(note, markdown, cards, "cloze")
    if len(note.fields) < 2:
        problems.append(Problem(where, f"note type {note.notetype!r} has one field; kept as text, no card"))
        return Block(note, to_markdown(note.fields[0][1], media), [])
    reversed_ = _is_reversed(note) and any(c.ord == 1 for c in note.cards)
    first_q = _SIMPLE_FIELD.match(note.templates[0][1]) if note.templates else None
    if first_q is None or first_q.group(1).strip() != note.fields[0][0]:
        problems.append(Problem(where, f"custom template of {note.notetype!r} not carried over: the first field is"
                                       " the question, the second the answer"))
    if len(note.templates) > (2 if reversed_ else 1):
        problems.append(Problem(where, f"{len(note.templates)} card templates: only "
                                       f"{'two (forward, reverse)' if reversed_ else 'the first'} carried over"))
    for name, value in note.fields[2:]:
        if value.strip() and not (reversed_ and name == "Add Reverse"):
            problems.append(Problem(where, f"field {name!r} not carried over"))
    front, back = (to_markdown(v, media) for _, v in note.fields[:2])
    if not front.strip() or not back.strip():
        problems.append(Problem(where, "empty question or answer; kept as text, no card"))
        return Block(note, front or back, [])
    cards = [c for c in by_ord if c.ord in ((0, 1) if reversed_ else (0,))]
    return Block(note, _question_answer(front, back, reversed_), cards, "basic")


def _joins(previous: Block, block: Block) -> bool:
    """Whether `block` is the next row of `previous`'s formula display: d2lkb exports each named
    row of a display as a Basic note of its own, all carrying the whole display as their Markdown;
    written once, the display makes the rows again, as siblings."""
    own = [b.note.notetype in MODEL_NAMES and not b.note.is_cloze and not b.kind for b in (previous, block)]
    return (all(own) and block.markdown == previous.markdown and block.note.tags == previous.note.tags
            and len(previous.notes) < display_rows(previous.markdown))


def _media_map(package: AnkiPackage, notes_dir: Path, files: list[DeckFile]) -> dict[str, dict[str, str]]:
    """Anki media name -> path relative to each deck file (`attachments/` at the notes root)."""
    names = sorted(p.name for p in package.media_dir.iterdir()) if package.media_dir.is_dir() else []
    out: dict[str, dict[str, str]] = {}
    for f in files:
        up = "../" * f.rel.count("/")
        out[f.rel] = {n: f"{up}{ATTACHMENTS}/{n}" for n in names}
    return out


def layout(package: AnkiPackage, notes_dir: Path, problems: list[Problem]) -> tuple[list[DeckFile], list[str]]:
    by_deck: dict[str, list[AnkiNote]] = {}
    for note in package.notes:
        deck = note.cards[0].deck if note.cards else "Default"
        by_deck.setdefault(deck, []).append(note)
    files = [DeckFile(deck, deck_path(deck)) for deck in sorted(by_deck)]
    media = _media_map(package, notes_dir, files)
    used_media: set[str] = set()
    for f in files:
        for note in by_deck[f.deck]:
            block = _block(note, media[f.rel], problems)
            if block is None:
                continue
            if f.blocks and _joins(f.blocks[-1], block):
                f.blocks[-1].cards += block.cards
                f.blocks[-1].notes.append(note)
            else:
                f.blocks.append(block)
            used_media.update(n for n in media[f.rel] if any(n in v for _, v in note.fields))
        f.text = _file_text(f)
    return files, sorted(used_media)


def _file_text(f: DeckFile) -> str:
    leaf = f.deck.split("::")[-1]
    # No `# title` heading: the title is in the front matter, and a display formula alone under a
    # heading would turn into a formula card of its own.
    # `d2lkb: cards`: the note makes cards whatever the vault's flashcard tags are.
    lines = ["---", f"title: {_yaml_str(leaf)}", f"anki-deck: {_yaml_str(f.deck)}", "d2lkb: cards", "---", ""]
    groups: dict[tuple[str, ...], list[Block]] = {}
    for b in f.blocks:
        groups.setdefault(tuple(t.replace("::", "/") for t in b.note.tags), []).append(b)
    for tags in sorted(groups, key=lambda t: (len(t) > 0, t)):
        if tags:
            lines += ["## " + " ".join("#" + _tag(t) for t in tags), ""]
        for b in groups[tags]:
            b.line = len(lines) + 1
            lines += b.markdown.split("\n")
            lines.append("")
    return "\n".join(lines)


def _tag(tag: str) -> str:
    return re.sub(r"[^\w/-]", "_", tag)


def _yaml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
