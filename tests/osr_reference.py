"""A small, independent reference for how Obsidian Spaced Repetition (OSR) reads cards.

Written from OSR's documented behaviour and its parser's rules (line based, no
Markdown parser), to measure d2lkb against: it shares no code with d2lkb.

- A note makes cards only if it carries a flashcard tag (`#flashcards`, or one nested
  under it such as `#flashcards/science`) in its front matter or text; files matching
  `*.excalidraw.md` are ignored.
- The text after the front matter is read line by line. A blank line ends a card. A
  line starting with `<!--` (not `<!--SR:`) skips to the end of that HTML comment.
- A line holding `:::` (else `::`) outside inline code is a single-line card
  (reversed for `:::`), together with a schedule comment `<!--SR:..-->` on the next line.
- A line that is exactly `?` (or `??`, trimmed) makes the run of lines since the last
  blank line a multi-line card (basic, or reversed), when the question is not empty.
- A fenced code block (``` or ~~~) is taken whole into the current run.
- Otherwise, a line holding a cloze (`==x==`; `**x**` and `{{x}}` when enabled) on one
  line starts a cloze card made of its run of lines.
- Expansion: single-line cards split at the first separator; multi-line cards at the
  separator line; a cloze card gives one card per deletion (deletions sharing a
  sequence number, `{{c1::x}}` / `==1;;x==`, are one card); reversed ones give two.
- Card text: schedule comments, a leading run of topic tags and a trailing
  `^block-id` are not part of the question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SINGLE = "SingleLineBasic"
SINGLE_REVERSED = "SingleLineReversed"
MULTI = "MultiLineBasic"
MULTI_REVERSED = "MultiLineReversed"
CLOZE = "Cloze"


@dataclass(frozen=True)
class Options:
    single: str = "::"
    single_reversed: str = ":::"
    multi: str = "?"
    multi_reversed: str = "??"
    end_marker: str = ""
    highlights: bool = True
    bold: bool = False
    curly: bool = False
    flashcard_tags: tuple[str, ...] = ("flashcards",)


@dataclass
class Question:
    kind: str
    text: str
    first: int  # 0-based line numbers in the text given to `parse`
    last: int


@dataclass(frozen=True)
class RefCard:
    kind: str  # "basic" or "cloze"
    front: str  # basic: question; cloze: the text with deletions hidden
    back: str  # basic: answer; cloze: the deletion(s)


@dataclass
class NoteResult:
    path: str
    makes_cards: bool
    cards: list[RefCard] = field(default_factory=list)


def _inside_inline_code(line: str, index: int, length: int) -> bool:
    before = line[:index].count("`")
    after = line[index + length :].count("`")
    return before % 2 == 1 and after % 2 == 1


def _has_marker(line: str, marker: str) -> bool:
    if not marker:
        return False
    index = line.find(marker)
    return index >= 0 and not _inside_inline_code(line, index, len(marker))


def cloze_patterns(options: Options) -> list[re.Pattern[str]]:
    patterns = []
    if options.highlights:
        patterns.append(re.compile(r"==(?:(\d+);;)?([^=\n]+?)(?:;;([^=\n]+?))?=="))
    if options.bold:
        patterns.append(re.compile(r"\*\*(?:(\d+);;)?([^*\n]+?)(?:;;([^*\n]+?))?\*\*"))
    if options.curly:
        # a sequence is a number (Anki's `c1`) or OSR's letters (`a`, `s`, `h`)
        patterns.append(re.compile(r"\{\{(?:c?(\d+|[ash]+)(?:::|;;))?([^{}\n]+?)(?:(?:::|;;)([^{}\n]+?))?\}\}"))
    return patterns


def _is_cloze_line(line: str, options: Options) -> bool:
    for pattern in cloze_patterns(options):
        for match in pattern.finditer(line):
            if not _inside_inline_code(line, match.start(), match.end() - match.start()):
                return True
    return False


def parse(text: str, options: Options = Options()) -> list[Question]:  # noqa: B008 (frozen)
    separators = sorted(
        [(options.single, SINGLE), (options.single_reversed, SINGLE_REVERSED)],
        key=lambda item: -len(item[0]),
    )
    lines = text.replace("\r\n", "\n").split("\n")
    found: list[Question] = []
    run: list[str] = []
    kind: str | None = None
    first = 0
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if line.startswith("<!--") and not line.startswith("<!--SR:"):
            while i + 1 < n and "-->" not in lines[i]:
                i += 1
            i += 1
            continue
        blank = not stripped
        end_marker = bool(options.end_marker) and stripped == options.end_marker
        if (blank and not options.end_marker) or (blank and kind is None) or end_marker:
            if kind is not None:
                found.append(Question(kind, "\n".join(run).rstrip(), first, i - 1))
                kind = None
            run = []
            first = i + 1
            i += 1
            continue
        run.append(line.rstrip())
        single = next((k for sep, k in separators if _has_marker(line, sep)), None)
        if single is not None:
            card = [line]
            start = i
            if i + 1 < n and lines[i + 1].startswith("<!--SR:"):
                card.append(lines[i + 1])
                i += 1
            found.append(Question(single, "\n".join(card), start, i))
            kind = None
            run = []
        elif stripped == options.multi:
            if len("\n".join(run)) > 1:
                kind = MULTI
        elif stripped == options.multi_reversed:
            if len("\n".join(run)) > 1:
                kind = MULTI_REVERSED
        elif line.startswith(("```", "~~~")):
            fence = re.match(r"`+|~+", line)
            closer = fence.group() if fence else "```"
            while i + 1 < n and not lines[i + 1].startswith(closer):
                i += 1
                run.append(lines[i])
            run.append(closer)
            i += 1
        elif kind is None and _is_cloze_line(line, options):
            kind = CLOZE
        i += 1
    if kind is not None and run:
        found.append(Question(kind, "\n".join(run).rstrip(), first, n - 1))
    return found


_SR_COMMENT = re.compile(r"<!--SR:.*?-->", re.DOTALL)
_SR_CALLOUT = re.compile(r"\n> \[!sr\|card-metadata\].*", re.DOTALL)
_LEADING_TAGS = re.compile(r"^\s*(?:#[^\s#]+\s+)+")
_BLOCK_ID = re.compile(r" (\^[a-zA-Z0-9-]+)$")


def question_text(text: str) -> str:
    """The question as OSR keeps it: without schedule info, leading topic tags, block id."""
    text = _SR_CALLOUT.sub("", _SR_COMMENT.sub("", text)).rstrip()
    text = _LEADING_TAGS.sub("", text, count=1)
    return _BLOCK_ID.sub("", text).rstrip()


def expand(question: Question, options: Options = Options()) -> list[RefCard]:  # noqa: B008
    text = question_text(question.text)
    if question.kind in (SINGLE, SINGLE_REVERSED):
        sep = options.single if question.kind == SINGLE else options.single_reversed
        at = text.find(sep)
        side1, side2 = text[:at].strip(), text[at + len(sep) :].strip()
        cards = [RefCard("basic", side1, side2)]
        if question.kind == SINGLE_REVERSED:
            cards.append(RefCard("basic", side2, side1))
        return cards
    if question.kind in (MULTI, MULTI_REVERSED):
        sep = options.multi if question.kind == MULTI else options.multi_reversed
        lines = text.split("\n")
        at = next(k for k, line in enumerate(lines) if line.strip() == sep)
        side1, side2 = "\n".join(lines[:at]).strip(), "\n".join(lines[at + 1 :]).strip()
        cards = [RefCard("basic", side1, side2)]
        if question.kind == MULTI_REVERSED:
            cards.append(RefCard("basic", side2, side1))
        return cards
    # cloze: one card per deletion (or sequence group)
    spans: list[tuple[int, int, str, str | None]] = []
    for pattern in cloze_patterns(options):
        for match in pattern.finditer(text):
            if _inside_inline_code(text, match.start(), match.end() - match.start()):
                continue
            spans.append((match.start(), match.end(), match.group(2), match.group(1)))
    spans.sort()
    groups: dict[str, list[tuple[int, int, str, str | None]]] = {}
    order: list[list[tuple[int, int, str, str | None]]] = []
    for span in spans:
        if span[3] is None:
            order.append([span])
        elif span[3] in groups:
            groups[span[3]].append(span)
        else:
            groups[span[3]] = [span]
            order.append(groups[span[3]])
    cards = []
    for group in order:
        front = text
        for start, end, _answer, _seq in reversed(group):
            front = front[:start] + "[...]" + front[end:]
        cards.append(RefCard("cloze", front, " … ".join(answer for _, _, answer, _ in group)))
    return cards


# --- notes and vaults -------------------------------------------------------------

_FRONT_MATTER = re.compile(r"^---\r?\n((?:.*\r?\n)*?)---")
_TAG = re.compile(r"(?:^|\s)#([^\s#,.;:!?()\[\]{}\"']+)")
_FENCE_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")


def note_tags(text: str) -> list[str]:
    """Tags of a note: front matter `tags` (list or string) and `#tags` outside code."""
    tags: list[str] = []
    body = text
    match = _FRONT_MATTER.match(text)
    if match:
        body = text[match.end() :]
        fm = match.group(1)
        inline = re.search(r"^tags:[ \t]*(.+)$", fm, re.MULTILINE)
        if inline and inline.group(1).strip():
            value = inline.group(1).strip().strip("[]")
            tags += [t.strip().strip("'\"").lstrip("#") for t in re.split(r"[,\s]+", value) if t.strip()]
        else:
            block = re.search(r"^tags:[ \t]*\n((?:[ \t]*-[ \t]*.+\n?)+)", fm, re.MULTILINE)
            if block:
                tags += [t.strip().lstrip("-").strip().strip("'\"").lstrip("#") for t in block.group(1).splitlines()]
    body = _INLINE_CODE.sub("", _FENCE_BLOCK.sub("", body))
    tags += [m.group(1) for m in _TAG.finditer(body) if not m.group(1).isdigit()]
    return [t for t in tags if t]


def makes_cards(path: str, text: str, options: Options = Options()) -> bool:  # noqa: B008
    if path.lower().endswith(".excalidraw.md"):
        return False
    if not options.flashcard_tags:
        return True
    wanted = [t.lower() for t in options.flashcard_tags]
    return any(t.lower() == w or t.lower().startswith(w + "/") for t in note_tags(text) for w in wanted)


def note_cards(path: str, text: str, options: Options = Options()) -> NoteResult:  # noqa: B008
    """The cards OSR makes from one note."""
    if not makes_cards(path, text, options):
        return NoteResult(path, False)
    match = _FRONT_MATTER.match(text)
    body = text
    if match:  # blanked, so line numbers stay
        body = "\n" * match.group().count("\n") + text[match.end() :]
    cards: list[RefCard] = []
    for question in parse(body, options):
        cards.extend(expand(question, options))
    return NoteResult(path, True, cards)


def vault_cards(root: Path, options: Options = Options()) -> dict[str, NoteResult]:  # noqa: B008
    out = {}
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        out[rel] = note_cards(rel, path.read_text(encoding="utf-8"), options)
    return out
