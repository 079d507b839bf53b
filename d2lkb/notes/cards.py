"""Cards written in paragraphs: `Q::A`, `Q:::A`, multi-line `?`/`??`, clozes.

Pure functions over what the parser collected from one paragraph's inline tokens
(positions are offsets into the paragraph's Markdown source, `content`), and, for
multi-line cards, over the note's source lines. The rules follow Obsidian Spaced
Repetition (OSR); each deliberate difference is listed in `notes/README.md`.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from d2lkb.model import CardKind, ParseWarning

# `key:: value` at line start: a Dataview/Logseq property, not a card (unless another
# line of its paragraph is a card, as in a list of `Q:: A` lines).
_PROPERTY = re.compile(r"[ \t]*[A-Za-z_][\w-]*$")
# `[key:: value]` / `(key:: value)`: a Dataview inline field (see `_in_inline_field`).
# What follows the `[`/`(` of a Dataview inline field, up to the separator.
_FIELD_KEY = re.compile(r"[ \t]*([A-Za-z_])[\w -]*")
_BRACKET = re.compile(r"[\[(]")
_IDENT = re.compile(r"\w+")
_BLOCK_ID = re.compile(r"[ \t]+\^[A-Za-z0-9-]+[ \t]*$", re.MULTILINE)
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
    last_line: int = 0  # multi-line cards: the card's last source line


@dataclass(slots=True)
class Deletion:
    """One cloze deletion: `==answer==`, `**answer**` or `{{c1::answer::hint}}`."""

    open: int  # offset of the opening marker
    start: int  # the answer's span
    stop: int
    close: int  # offset just after the closing marker
    group: str | None = None  # deletions sharing a group are one card
    hint: str | None = None


@dataclass(slots=True)
class ParagraphMarks:
    """What one paragraph's inline tokens told about cards."""

    content: str  # the paragraph's Markdown source (container prefixes removed)
    first_line: int  # 1-based line of content[0]
    lines: list[tuple[int, int, str | None]]  # (start, end, "?"/"??"/None) per source line
    separators: list[tuple[int, str, int]]  # (pos, "::"/":::", line index)
    deletions: list[Deletion] = field(default_factory=list)  # outermost cloze deletions, in order
    markers: list[tuple[int, int]] = field(default_factory=list)  # (pos, length) of cloze markup
    comments: list[tuple[int, int]] = field(default_factory=list)  # (pos, length) of HTML comments
    # Built on first use (each is one pass over the paragraph): offsets of its newlines, and
    # the spans `_show` leaves out, sorted.
    newlines: list[int] | None = None
    hidden: dict[bool, tuple[list[tuple[int, int]], list[int]]] = field(default_factory=dict)


def _line_of(marks: ParagraphMarks, pos: int) -> int:
    """The 1-based source line of content[pos] (a bisection: a paragraph of many cards stays linear)."""
    if marks.newlines is None:
        marks.newlines = newline_offsets(marks.content)
    return marks.first_line + bisect_left(marks.newlines, pos)


def newline_offsets(text: str) -> list[int]:
    """The offsets of the newlines in `text`: `bisect_left(offsets, pos)` is
    `text.count("\\n", 0, pos)` in O(log n)."""
    found = []
    at = text.find("\n")
    while at >= 0:
        found.append(at)
        at = text.find("\n", at + 1)
    return found


def clean_side(text: str) -> str:
    """A card side as shown: without trailing `^block-id` markers, stripped."""
    return _BLOCK_ID.sub("", text).strip()


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


def _show(marks: ParagraphMarks, start: int, end: int, *, markers: bool) -> str:
    """content[start:end] without HTML comments (and cloze markup when `markers`)."""
    hidden = marks.hidden.get(markers)
    if hidden is None:
        spans = sorted(marks.comments + marks.markers if markers else marks.comments)
        reach, furthest = [], -1  # reach[k]: the furthest end of spans[0..k]
        for pos, length in spans:
            furthest = max(furthest, pos + length)
            reach.append(furthest)
        hidden = marks.hidden[markers] = (spans, reach)
    spans, reach = hidden
    if not spans:
        return marks.content[start:end]
    content = marks.content
    out = []
    prev = start
    # Skip, by bisection, the spans that end before `start`: each card looks only at the
    # spans near its own text, so a paragraph of many cards stays linear.
    for k in range(bisect_right(reach, start), len(spans)):
        pos, length = spans[k]
        if pos >= end:
            break
        if pos + length <= start:
            continue
        out.append(content[prev : max(prev, pos)])
        prev = max(prev, pos + length)
    out.append(content[prev:end] if prev < end else "")
    return "".join(out)


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # what `\w` matches


def _is_scope(content: str, start: int, pos: int, after: int, end: int) -> bool:
    """`std::vector`, `Foo::bar()`, `a::b::c`: a C++/Rust scope, not a card separator.
    `pos`: the `::` in content[start:end]; `after`: the offset just after it.

    Works on offsets, never on copies of the line: a long line of separators stays linear
    (the identifiers looked at around each separator are disjoint)."""
    left = pos
    while left > start and _is_word(content[left - 1]):
        left -= 1
    right = _IDENT.match(content, after, end)
    if left == pos or right is None:
        return False
    if content[left:pos] == "std" or (left - 2 >= start and content.startswith("::", left - 2)):
        return True
    return content.startswith(("::", "(", "<"), right.end(), end)


def _in_inline_field(content: str, brackets: list[int], keys: dict, pos: int) -> bool:
    """Whether the separator at `pos` ends the key of a Dataview inline field (`[key:: value]`):
    the text between the last `[`/`(` before it and `pos` is a key (`_FIELD_KEY`).
    `brackets`: the offsets of `[`/`(` in the line; `keys` caches, per bracket, the span
    that a key after it may end in (each bracket's run is read once)."""
    k = bisect_left(brackets, pos) - 1
    if k < 0:
        return False
    bracket = brackets[k]
    if bracket not in keys:
        match = _FIELD_KEY.match(content, bracket + 1, pos)
        # the key's first letter .. the end of the run (later separators of the line see
        # the same run, cut at the first separator's `:`)
        keys[bracket] = (match.start(1) + 1, match.end()) if match else None
    span = keys[bracket]
    return span is not None and span[0] <= pos <= span[1]


def _line_separator(marks: ParagraphMarks, seps: list[tuple[int, str]], start: int, end: int) -> tuple[int, str] | None:
    """The separator that splits a line: the first `:::`, else the first `::`, that is
    not part of a Dataview inline field or a C++ scope."""
    content = marks.content
    usable = []
    scoped = False  # a line that uses `::` as a scope operator uses it so throughout
    brackets: list[int] | None = None
    keys: dict[int, tuple[int, int] | None] = {}
    for pos, markup in seps:
        if brackets is None:
            brackets = [m.start() for m in _BRACKET.finditer(content, start, end)]
        if _in_inline_field(content, brackets, keys, pos):
            continue
        if markup == "::" and _is_scope(content, start, pos, pos + len(markup), end):
            scoped = True
            continue
        usable.append((pos, markup))
    if scoped:
        usable = [
            (pos, markup)
            for pos, markup in usable
            if not (
                markup == "::"
                and pos > start
                and (content[pos - 1].isalnum() or content[pos - 1] == "_")
                and pos + 2 < end
                and (content[pos + 2].isalnum() or content[pos + 2] == "_")
            )
        ]
    for wanted in (":::", "::"):
        for pos, markup in usable:
            if markup == wanted:
                return pos, markup
    return None


def paragraph_cards(marks: ParagraphMarks, section: int | None) -> tuple[list[CardDraft], list[ParseWarning]]:
    """The `::`/`:::` and cloze cards of one paragraph (or list item), in source order.

    Every line with a separator (and not a `key:: value` property) is a card; a
    paragraph with none turns each outermost cloze deletion into a cloze card.
    Multi-line `?` cards are made from the source lines by `multiline_card`.
    """
    content = marks.content
    cards: list[CardDraft] = []
    warnings: list[ParseWarning] = []

    per_line: dict[int, list[tuple[int, str]]] = {}
    for pos, markup, line_index in marks.separators:
        per_line.setdefault(line_index, []).append((pos, markup))
    found: list[tuple[int, int, str, bool]] = []  # (line index, pos, markup, property-like)
    for line_index, seps in per_line.items():
        start, end, _ = marks.lines[line_index]
        chosen = _line_separator(marks, seps, start, end)
        if chosen is None:
            continue
        pos, markup = chosen
        prop = markup == "::" and bool(_PROPERTY.match(content, start, pos)) and (
            pos + 2 == end or content[pos + 2] in " \t"
        )
        found.append((line_index, pos, markup, prop))
    any_card_line = any(not prop for *_, prop in found)
    for line_index, pos, markup, prop in found:
        if prop and not any_card_line:
            continue
        start, end, _ = marks.lines[line_index]
        front = clean_side(_show(marks, start, pos, markers=False))
        back = clean_side(_show(marks, pos + len(markup), end, markers=False))
        if not front or not back:
            continue  # `Examples::` ending a sentence, `::before`: prose, not a card
        cards.extend(_question_answer(front, back, _line_of(marks, pos), section, markup == ":::"))
    if any_card_line:
        return cards, warnings

    deletions = [d for d in marks.deletions if "\n" not in content[d.open : d.close]]
    if deletions and len(content) * len(deletions) > MAX_CLOZE_TEXT:
        warnings.append(
            ParseWarning(
                marks.first_line,
                f"paragraph too large for cloze cards ({len(deletions)} deletions in "
                f"{len(content)} characters); no cards made",
            )
        )
        return cards, warnings
    if not deletions:
        return cards, warnings
    context = clean_side(_show(marks, 0, len(content), markers=True))
    key = "cloze:" + short_hash(context)
    groups: dict[str, list[Deletion]] = {}
    order: list[list[Deletion]] = []
    for d in deletions:
        if d.group is None:
            order.append([d])
        elif d.group in groups:
            groups[d.group].append(d)
        else:
            groups[d.group] = [d]
            order.append(groups[d.group])
    for group in order:
        outside = content
        for d in reversed(group):
            outside = outside[: d.open] + outside[d.close :]
        if not any(ch.isalnum() for ch in _without_tags(outside)):
            continue  # the highlight is the whole paragraph: emphasis, not a cloze
        parts = []
        prev = 0
        for d in group:
            parts.append(_show(marks, prev, d.open, markers=True))
            parts.append(f"[{d.hint}]" if d.hint else CLOZE_GAP)
            prev = d.close
        parts.append(_show(marks, prev, len(content), markers=True))
        deletion = " … ".join(_show(marks, d.start, d.stop, markers=True).strip() for d in group)
        cards.append(
            CardDraft(
                CardKind.CLOZE,
                clean_side("".join(parts)),
                deletion,
                _line_of(marks, group[0].open),
                section,
                prompt=deletion,
                context=context,
                sibling_key=key,
            )
        )
    return cards, warnings


_TAG_WORD = re.compile(r"#(?=[\w/-]*[^\W\d])[\w][\w/-]*")


def _without_tags(text: str) -> str:
    return _TAG_WORD.sub("", text)


# --- multi-line cards -------------------------------------------------------------

_QUOTE_PREFIX = re.compile(r"[ \t]*(?:>[ \t]?)*")
_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})")
_HEADING = re.compile(r"#{1,6}(?:[ \t]|$)")
_SR_COMMENT = re.compile(r"<!--SR:.*?-->", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG_ONLY_LINE = re.compile(r"(?:#(?=[\w/-]*[^\W\d])[\w][\w/-]*[ \t]*)+")


def _unprefix(line: str, depth: int) -> str:
    """`line` without `depth` blockquote markers (`>`) and the spaces around them."""
    i = 0
    n = len(line)
    for _ in range(depth):
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == ">":
            i += 1
            if i < n and line[i] == " ":
                i += 1
        else:
            break
    return line[i:]


def multiline_card(
    lines: list[str], mark_line: int, first_allowed: int, section: int | None
) -> tuple[list[CardDraft], list[ParseWarning], tuple[int, int]]:
    """The `?` / `??` card whose separator is on 0-based source line `mark_line`.

    As in OSR, the card is the run of lines around the separator line up to the blank
    lines before and after it (a fenced code block in the answer is taken whole, blank
    lines and all); unlike OSR, a heading after the separator ends the answer. Lines
    holding only tags before the question, HTML comments and `^block-id` markers are
    not part of the card's text. Returns the cards, warnings and the card's 0-based
    line range (inclusive).
    """
    marker_line = lines[mark_line]
    prefix = _QUOTE_PREFIX.match(marker_line)
    depth = prefix.group().count(">") if prefix else 0
    mark = marker_line.strip().lstrip(">").strip()

    def body(index: int) -> str:
        return _unprefix(lines[index], depth)

    top = mark_line
    while top - 1 >= first_allowed and body(top - 1).strip():
        top -= 1  # as in OSR, a heading right above the question is part of it
    bottom = mark_line
    i = mark_line + 1
    n = len(lines)
    while i < n:
        text = body(i)
        stripped = text.strip()
        if not stripped or _HEADING.match(text.lstrip()):
            break
        fence = _FENCE_OPEN.match(stripped)
        if fence:
            closer = fence.group(1)[0] * len(fence.group(1))
            j = i + 1
            while j < n and not body(j).strip().startswith(closer):
                j += 1
            i = min(j, n - 1)
        bottom = i
        i += 1

    question_lines = [body(k) for k in range(top, mark_line)]
    while question_lines and _TAG_ONLY_LINE.fullmatch(question_lines[0].strip() or "x"):
        question_lines.pop(0)
        top += 1
    answer_lines = [body(k) for k in range(mark_line + 1, bottom + 1)]
    question = _text("\n".join(question_lines))
    answer = _text("\n".join(answer_lines))
    if not question or not answer:
        side = "question" if not question else "answer"
        warning = ParseWarning(mark_line + 1, f"card with an empty {side} (a `{mark}` line)")
        return [], [warning], (top, bottom)
    cards = _question_answer(question, answer, top + 1, section, mark == "??")
    for card in cards:
        card.last_line = bottom + 1
    return cards, [], (top, bottom)


def _text(text: str) -> str:
    text = _SR_COMMENT.sub("", text)
    text = _COMMENT.sub("", text)
    lines = [_BLOCK_ID.sub("", line).rstrip() for line in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    # dedent the common indentation
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(line[cut:] for line in lines).strip()
