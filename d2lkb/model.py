"""Plain data: what a note is made of, once parsed. No I/O, no database.

Everything here is a frozen dataclass or an enum so the parser, the store, the
scheduler and the checks can pass values around without sharing state.
Line numbers are 1-based lines of the source file (front matter included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NewType

NoteId = NewType("NoteId", int)
CardId = NewType("CardId", int)


class CardKind(StrEnum):
    BASIC = "basic"  # `Q :: A` and multi-line `?`
    CLOZE = "cloze"  # one `==deletion==` of a paragraph/list item
    FORMULA = "formula"  # named display formula: name -> formula
    SNIPPET = "snippet"  # code block with expected output: code -> output


class CheckStatus(StrEnum):
    VERIFIED = "verified"
    REFUTED = "refuted"
    DEFINITION = "definition"
    UNPARSED = "unparsed"
    CONTEXT = "context"  # a formula whose truth depends on what the checker cannot know (named in the detail)
    TIMEOUT = "timeout"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    UNTRUSTED = "untrusted"
    UNCHECKED = "unchecked"

    @property
    def is_failure(self) -> bool:
        return self in (CheckStatus.REFUTED, CheckStatus.FAILED, CheckStatus.ERROR, CheckStatus.TIMEOUT)


@dataclass(frozen=True, slots=True)
class ParseWarning:
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class Tag:
    """A tag occurrence. `name` is as written, without `#` (e.g. `ml/Supervised`)."""

    name: str
    line: int
    section: int | None  # index into ParsedNote.sections; None = whole note (front matter)

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Section:
    level: int  # 1..6 heading level
    title: str
    line: int  # heading line
    end_line: int  # last line of the section (before the next heading of level <= this one)
    parent: int | None  # index of the enclosing section
    text: str  # plain text of the section body (own paragraphs, not subsections), for search


@dataclass(frozen=True, slots=True)
class Link:
    target: str  # wikilink target or relative Markdown link path, without `#anchor`
    alias: str | None
    line: int
    section: int | None


@dataclass(frozen=True, slots=True)
class Highlight:
    text: str
    line: int
    section: int | None


@dataclass(frozen=True, slots=True)
class Formula:
    latex: str  # source between the delimiters, stripped
    display: bool
    line: int
    section: int | None
    name: str | None = None  # e.g. "Product rule" (from \textrm label) or the heading
    known_failure: str | None = None  # reason, from a `<!-- known-failure: reason -->` comment just before
    block: int | None = None  # display formulas: the note's display block (an `aligned` block's rows share it)


@dataclass(frozen=True, slots=True)
class Snippet:
    # Normalised language: "python" (python/py/python3/{.python ...}: the value of a final
    # expression statement is echoed, like a notebook cell), "pycon" (doctest `>>>` prompts
    # stripped from `code`; every expression statement is echoed, like the REPL), or
    # "sympy" (an explicit check: statements whose asserts must hold).
    language: str
    code: str
    line: int  # line of the opening fence
    section: int | None
    expected: str | None = None  # from the following ```output fence, or doctest output
    expected_line: int | None = None
    info: str = ""  # the fence info string as written
    known_failure: str | None = None  # reason, from a `<!-- known-failure: reason -->` comment just before


@dataclass(frozen=True, slots=True)
class Card:
    kind: CardKind
    front: str  # Markdown shown as the question
    back: str  # Markdown shown as the answer
    line: int
    section: int | None
    tags: tuple[str, ...] = ()  # tag names in scope (as written), note-level first
    # Identity material (see d2lkb.identity): `prompt` is what the card asks about
    # (question / deletion text / formula name / code), `context` the rest
    # (answer / paragraph / formula / output).
    prompt: str = ""
    context: str = ""
    reverse: bool = False  # second card of a reversed pair (`:::` / `??`)
    sibling_key: str = ""  # cards sharing it are siblings (clozes of a paragraph, reversed pairs)
    formula: int | None = None  # index into ParsedNote.formulas (formula cards)
    snippet: int | None = None  # index into ParsedNote.snippets (snippet cards)


@dataclass(frozen=True, slots=True)
class ParsedNote:
    path: str  # relative to the notes root, POSIX separators
    title: str
    front_matter: dict[str, Any] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
    tags: tuple[Tag, ...] = ()  # every tag occurrence (front matter ones have section=None)
    links: tuple[Link, ...] = ()
    highlights: tuple[Highlight, ...] = ()
    formulas: tuple[Formula, ...] = ()
    snippets: tuple[Snippet, ...] = ()
    cards: tuple[Card, ...] = ()
    warnings: tuple[ParseWarning, ...] = ()
    text: str = ""  # plain text of the whole note, for search
