"""Markdown note -> `ParsedNote` (see `d2lkb.model`).

One MarkdownIt instance (CommonMark + tables, HTML on) with front matter, `$`/`$$`
and `\\(`/`\\[` math, `==highlights==`, `[[wikilinks]]`, `#tags` and the ` :: ` card
separator is built once and reused. Its last core rule, `d2lkb_collect`, walks the
token stream once and gathers everything into a `NoteCollector` in `env`;
`parse_note` turns that into frozen model values. Nothing is found by a regex over
the raw note: code, math, HTML and link targets are consumed by their own rules
before the tag/highlight/wikilink/separator rules could see them.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from d2lkb.model import (
    Card,
    CardKind,
    Formula,
    Highlight,
    Link,
    ParsedNote,
    ParseWarning,
    Section,
    Snippet,
    Tag,
)
from d2lkb.notes.cards import (
    CardDraft,
    Deletion,
    ParagraphMarks,
    multiline_card,
    newline_offsets,
    paragraph_cards,
    short_hash,
)
from d2lkb.notes.fences import fence_language, is_closing_fence, is_doctest, split_doctest
from d2lkb.notes.frontmatter import front_matter_tag_names, load_front_matter, tags_key_line
from d2lkb.notes.latex import Row, describe_row, is_relation, split_rows
from d2lkb.notes.options import ParseOptions
from d2lkb.notes.plugins import (
    bracket_math_plugin,
    card_separator_plugin,
    curly_cloze_plugin,
    each_position_plugin,
    highlights_plugin,
    source_positions_plugin,
    tags_plugin,
    wikilinks_plugin,
)
from d2lkb.notes.plugins.tags import clean_tag_name

ENV_KEY = "d2lkb"
_KNOWN_FAILURE = re.compile(r"<!--\s*known-failure:\s*(.*?)\s*-->", re.DOTALL)
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_SNIPPET_LANGUAGES = frozenset({"python", "pycon", "sympy"})
_LOGSEQ_PROPERTY = re.compile(r"([A-Za-z][\w-]*):: (.*)")
# Plugin files (Obsidian Excalidraw drawings) are notes for links and search, never cards.
_PLUGIN_SUFFIXES = (".excalidraw.md",)
_PLUGIN_KEYS = ("excalidraw-plugin",)


def create_markdown(options: ParseOptions | None = None) -> MarkdownIt:
    """A fresh MarkdownIt with every syntax d2lkb understands (for rendering too).

    Without `options` (rendering), `\\(..\\)` / `\\[..\\]` are math; with them, as the vault says."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.use(front_matter_plugin)
    md.use(
        dollarmath_plugin,
        allow_space=False,  # `$5 and $6`: not math (as in Pandoc)
        allow_digits=False,
        allow_blank_lines=False,  # keeps an unclosed `$$` from swallowing the note
        double_inline=True,  # `$$x$$` inside a paragraph is display math
    )
    if options is None or options.bracket_math:
        md.use(bracket_math_plugin)
    md.use(highlights_plugin)
    if options is not None and options.cloze_curly:
        md.use(curly_cloze_plugin)
    md.use(wikilinks_plugin)
    md.use(tags_plugin)
    md.use(card_separator_plugin)
    md.use(source_positions_plugin, ("newline", "math_inline", "html_inline"))
    md.use(each_position_plugin)
    return md


def collect_plugin(md: MarkdownIt) -> None:
    """Add the `d2lkb_collect` core rule: it fills the `NoteCollector` found in
    `env[ENV_KEY]` (if any) from the finished token stream."""
    md.core.ruler.push("d2lkb_collect", _collect_rule)


def _collect_rule(state: StateCore) -> None:
    collector = state.env.get(ENV_KEY) if isinstance(state.env, dict) else None
    if isinstance(collector, NoteCollector):
        collector.walk(state.tokens)


@cache
def note_parser(options: ParseOptions = ParseOptions()) -> MarkdownIt:  # noqa: B008 (frozen)
    """The shared MarkdownIt used by `parse_note` for these options (do not modify it)."""
    md = create_markdown(options)
    md.use(collect_plugin)
    # The collector reads `text_special` (escapes) like `text`; merging them first
    # would only cost a pass over every inline token.
    md.disable("text_join")
    return md


def parse_note(text: str, path: str, options: ParseOptions | None = None) -> ParsedNote:
    """Parse one note. `path` is relative to the notes root, POSIX separators.
    `options`: what the vault opts into (default: OSR's, see `ParseOptions`).

    Never raises: anything odd in the note becomes a `ParseWarning`.
    """
    try:
        return _parse(text, path, options or ParseOptions())
    except Exception as exc:  # one unreadable note must not stop a sync
        return ParsedNote(
            path=path,
            title=_stem(path),
            text=text if isinstance(text, str) else "",
            warnings=(ParseWarning(1, f"could not parse note: {type(exc).__name__}: {exc}"),),
        )


def _stem(path: str) -> str:
    """The note's name, as Obsidian and Logseq show it: the file name without `.md`
    (a Logseq namespace file `a___b.md` is the page `a/b`)."""
    if not path:
        return ""
    name = PurePosixPath(path).name
    for suffix in (".md", ".markdown"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("___", "/").replace("%2F", "/")


def _normalise(text: str) -> str:
    # The same normalisation markdown-it applies, done first so that our line
    # numbers and source lines agree with its token maps.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text


def _parse(text: str, path: str, options: ParseOptions) -> ParsedNote:
    text = _normalise(text)
    collector = NoteCollector(text, options)
    note_parser(options).parse(text, {ENV_KEY: collector})
    return collector.result(path)


# --- collection -----------------------------------------------------------------


@dataclass(slots=True)
class _SectionDraft:
    level: int
    title: str
    line: int
    parent: int | None
    parts: list[str]
    end_line: int = 0


@dataclass(slots=True)
class _MathDraft:
    latex: str  # as written between the delimiters
    display: bool
    line: int  # line of the opening delimiter (latex[0] is on it)
    section: int | None
    known_failure: str | None = None


@dataclass(slots=True)
class _SnippetDraft:
    language: str
    code: str
    line: int
    section: int | None
    info: str
    expected: str | None = None
    expected_line: int | None = None
    known_failure: str | None = None


def _relative_md_target(href: str) -> str | None:
    """The path of a Markdown link to another note, or None (URLs, anchors, files)."""
    if not href or href.startswith(("#", "//")) or _URL_SCHEME.match(href):
        return None
    target = unquote(href.split("#", 1)[0].split("?", 1)[0])
    return target if target.lower().endswith((".md", ".markdown")) else None


class NoteCollector:
    """Gathers a note's data from its token stream (one pass, in document order)."""

    def __init__(self, text: str, options: ParseOptions | None = None) -> None:
        self.options = options or ParseOptions()
        self.lines = text.split("\n")
        self.line_count = text.count("\n") + (0 if not text or text.endswith("\n") else 1)
        self.front_matter: dict[str, Any] = {}
        self.sections: list[_SectionDraft] = []
        self.stack: list[int] = []
        self.current: int | None = None
        self.preamble_parts: list[str] = []
        self.all_parts: list[str] = []
        self.tags: list[Tag] = []
        self.links: list[Link] = []
        self.highlights: list[Highlight] = []
        self.math: list[_MathDraft] = []
        self.snippets: list[_SnippetDraft] = []
        self.cards: list[CardDraft] = []
        self.card_warnings: list[ParseWarning] = []  # dropped when the note makes no cards
        self.consumed: list[tuple[int, int]] = []  # 1-based line ranges of multi-line cards, in order
        self.single_line_end = 0  # 1-based line of the last `Q::A` card so far
        self.body_start = 0  # 0-based first line after the front matter
        self.first_paragraph: str | None = None  # the note's first block, when a paragraph
        self.blocks = 0
        self.warnings: list[ParseWarning] = []

    # -- the walk --

    def walk(self, tokens: Sequence[Token]) -> None:
        n = len(tokens)
        i = 0
        known_failure: tuple[str, int] | None = None
        while i < n:
            tok = tokens[i]
            kind = tok.type
            pending, known_failure = known_failure, None
            used = False
            if kind == "paragraph_open":
                if self.blocks == 0 and tok.level == 0:
                    self.first_paragraph = tokens[i + 1].content
                self.blocks += 1
                used = self._paragraph(tokens[i + 1], pending[0] if pending else None)
                i += 3
            elif kind == "heading_open":
                self.blocks += 1
                self._heading(tok, tokens[i + 1])
                i += 3
            else:
                if kind != "front_matter" and tok.nesting >= 0 and tok.level == 0:
                    self.blocks += 1
                if kind == "inline":  # table cells
                    self._add_text(self._inline(tok, self.current))
                elif kind == "fence":
                    used = self._fence(tokens, i, pending[0] if pending else None)
                elif kind == "math_block" or kind == "math_block_label":
                    self._display_block(tok, pending[0] if pending else None)
                    used = True
                elif kind == "html_block":
                    known_failure = self._known_failure_comment(tok)
                elif kind == "code_block":
                    self._add_text(tok.content)
                elif kind == "front_matter":
                    self._front_matter(tok)
                i += 1
            if pending is not None and not used:
                self.warnings.append(
                    ParseWarning(
                        pending[1],
                        "known-failure comment is not directly before a display formula or code block",
                    )
                )
        if known_failure is not None:
            self.warnings.append(
                ParseWarning(
                    known_failure[1],
                    "known-failure comment is not directly before a display formula or code block",
                )
            )

    def _add_text(self, text: str) -> None:
        if not text:
            return
        if self.current is None:
            self.preamble_parts.append(text)
        else:
            self.sections[self.current].parts.append(text)
        self.all_parts.append(text)

    def _front_matter(self, tok: Token) -> None:
        if tok.map:
            self.body_start = tok.map[1]
        content = tok.content
        data, warnings = load_front_matter(content, 2)
        self.warnings.extend(warnings)
        self.front_matter = data
        if not data:
            return
        line = tags_key_line(content, 2)
        for raw in front_matter_tag_names(data):
            name = clean_tag_name(raw)
            if name is None:
                self.warnings.append(
                    ParseWarning(line, f"front matter tag {raw!r} is not a valid tag; ignored")
                )
            else:
                self.tags.append(Tag(name, line, None))

    def _known_failure_comment(self, tok: Token) -> tuple[str, int] | None:
        match = _KNOWN_FAILURE.fullmatch(tok.content.strip())
        if match is None:
            return None
        line = tok.map[0] + 1 if tok.map else 1
        reason = " ".join(match.group(1).split())
        if not reason:
            self.warnings.append(ParseWarning(line, "known-failure comment without a reason"))
            reason = "known failure"
        return reason, line

    def _heading(self, opener: Token, inline: Token) -> None:
        level = int(opener.tag[1:]) if opener.tag[1:].isdigit() else 1
        line = opener.map[0] + 1 if opener.map else 1
        sections = self.sections
        stack = self.stack
        while stack and sections[stack[-1]].level >= level:
            sections[stack.pop()].end_line = line - 1
        index = len(sections)
        sections.append(_SectionDraft(level, "", line, stack[-1] if stack else None, []))
        stack.append(index)
        self.current = index
        if opener.markup in ("-", "="):
            self._setext_warning(opener, inline)
        tags_before = len(self.tags)
        title = " ".join(self._inline(inline, index, heading=True).split())
        if not title:  # a heading made only of tags
            title = " ".join(f"#{tag.name}" for tag in self.tags[tags_before:] if tag.section == index)
        sections[index].title = title
        self.all_parts.append(title)

    def _setext_warning(self, opener: Token, inline: Token) -> None:
        """A `---` / `===` line right under a paragraph makes it a (setext) heading: warn
        when that paragraph looked like a card, so the card is not lost silently."""
        lines = inline.content.split("\n")
        looks = any(line.strip() in ("?", "??") for line in lines) or any(
            child.type == "card_sep" for child in inline.children or ()
        )
        if looks:
            line = (opener.map[0] + 1) if opener.map else 1
            under = "---" if opener.markup == "-" else "==="
            self.card_warnings.append(
                ParseWarning(
                    line,
                    f"the `{under}` line under this card makes it a heading, so it is no card; "
                    f"put a blank line before `{under}`",
                )
            )

    def _paragraph(self, inline: Token, known_failure: str | None) -> bool:
        before = len(self.math)
        self._add_text(self._inline(inline, self.current, paragraph=True))
        if known_failure is None:
            return False
        used = False
        for draft in self.math[before:]:
            if draft.display:
                draft.known_failure = known_failure
                used = True
        return used

    def _inline(
        self,
        tok: Token,
        section: int | None,
        *,
        paragraph: bool = False,
        heading: bool = False,
    ) -> str:
        """Collect the inline data of one inline token; return its plain text."""
        content = tok.content
        base = tok.map[0] + 1 if tok.map else 1
        children = tok.children or ()
        parts: list[str] = []
        seen = 0  # source offset up to which newlines are counted into `line`
        line = base
        newlines: list[int] | None = None  # built if a token's position goes back

        # paragraph card material
        lines: list[tuple[int, int, str | None]] = []
        line_start = 0
        line_size = 0
        line_text: str | None = None
        separators: list[tuple[int, str, int]] = []
        markers: list[tuple[int, int]] = []
        comments: list[tuple[int, int]] = []
        deletions: list[Deletion] = []
        open_marks: list[tuple[int, int]] = []
        open_strong: list[int] = []
        highlights: list[tuple[int, Highlight]] = []
        options = self.options
        link_target: str | None = None
        link_parts = 0
        link_line = 0

        for child in children:
            kind = child.type
            if kind == "text" or kind == "text_special":
                parts.append(child.content)
                line_size += 1
                line_text = child.content
                continue
            if kind == "softbreak" or kind == "hardbreak":
                parts.append("\n")
                pos = child.meta.get("pos")
                if pos is None:  # `\` + newline hard break: the next newline
                    pos = content.find("\n", seen)
                    if pos < 0:
                        pos = len(content)
                if paragraph:
                    qmark = line_text if line_size == 1 and line_text in ("?", "??") else None
                    lines.append((line_start, pos, qmark))
                line_start = pos + 1
                line_size = 0
                line_text = None
                if pos >= seen:
                    line += content.count("\n", seen, pos + 1)
                    seen = pos + 1
                continue

            line_size += 1
            pos = child.meta.get("pos")
            if pos is not None:
                if pos >= seen:
                    line += content.count("\n", seen, pos)
                else:
                    if newlines is None:
                        newlines = newline_offsets(content)
                    line = base + bisect_left(newlines, pos)
                seen = pos
            at: int = pos if pos is not None else seen  # our plugins' tokens always carry `pos`

            if kind == "tag":
                self.tags.append(Tag(child.content, line, section))
                if not heading:
                    parts.append("#" + child.content)
            elif kind == "mark_open":
                open_marks.append((at, line))
            elif kind == "mark_close":
                if open_marks:
                    opened, opened_line = open_marks.pop()
                    inner = content[opened + 2 : at].strip()
                    if options.cloze_highlights:
                        markers.append((opened, 2))
                        markers.append((at, 2))
                    if inner:
                        highlights.append((opened, Highlight(inner, opened_line, section)))
                        if not open_marks and options.cloze_highlights:
                            deletions.append(Deletion(opened, opened + 2, at, at + 2))
                    else:
                        self.warnings.append(ParseWarning(opened_line, "empty highlight `====`"))
            elif kind == "strong_open" or kind == "strong_close":
                if options.cloze_bold and child.markup == "**" and pos is not None:
                    if kind == "strong_open":
                        open_strong.append(pos - 1)  # the token is the second `*` of `**`
                    elif open_strong:
                        opened = open_strong.pop()
                        markers.append((opened, 2))
                        markers.append((pos, 2))
                        if not open_strong and content[opened + 2 : pos].strip():
                            deletions.append(Deletion(opened, opened + 2, pos, pos + 2))
            elif kind == "cloze_curly":
                meta = child.meta
                parts.append(child.content)
                markers.append((at, meta["start"] - at))
                markers.append((meta["stop"], meta["end"] - meta["stop"]))
                deletions.append(
                    Deletion(at, meta["start"], meta["stop"], meta["end"], meta["group"], meta["hint"])
                )
            elif kind == "html_inline":
                if child.content.startswith("<!--") and pos is not None:
                    comments.append((pos, len(child.content)))
            elif kind == "mark_empty":
                parts.append(child.content)
                self.warnings.append(ParseWarning(line, "empty highlight `====`"))
            elif kind == "mark_unmatched":
                parts.append(child.content)
                self.warnings.append(ParseWarning(line, "`==` without its other half: not a highlight"))
            elif kind == "math_inline":
                self.math.append(_MathDraft(child.content, False, line, section))
                parts.append(f"${child.content}$")
            elif kind == "math_inline_double":
                self.math.append(_MathDraft(child.content, True, line, section))
                parts.append(f"$${child.content}$$")
            elif kind == "code_inline":
                parts.append(child.content)
            elif kind == "wikilink":
                meta = child.meta
                if meta["target"]:
                    self.links.append(Link(meta["target"], meta["alias"], line, section))
                parts.append(meta["alias"] or meta["target"] or meta["anchor"] or "")
            elif kind == "card_sep":
                if paragraph:
                    separators.append((at, child.markup, len(lines)))
                parts.append(child.markup)
            elif kind == "link_open":
                link_target = _relative_md_target(str(child.attrs.get("href", "")))
                link_parts = len(parts)
                link_line = line
            elif kind == "link_close":
                if link_target is not None:
                    alias = " ".join("".join(parts[link_parts:]).split()) or None
                    self.links.append(Link(link_target, alias, link_line, section))
                    link_target = None
            elif kind == "image":
                parts.append(child.content)

        if highlights:  # in the order they open (a nested one closes first)
            highlights.sort(key=lambda item: item[0])
            self.highlights.extend(h for _, h in highlights)
        if paragraph:
            qmark = line_text if line_size == 1 and line_text in ("?", "??") else None
            lines.append((line_start, len(content), qmark))
            mark_index = next((k for k, entry in enumerate(lines) if entry[2]), None)
            if mark_index is not None:
                self._multiline(base - 1 + content.count("\n", 0, lines[mark_index][0]), section)
            elif separators or deletions:
                deletions.sort(key=lambda d: d.open)
                kept: list[Deletion] = []
                for d in deletions:  # overlapping markup (`**==x==**`): the outer one
                    if not kept or d.open >= kept[-1].close:
                        kept.append(d)
                marks = ParagraphMarks(content, base, lines, separators, kept, markers, comments)
                drafts, warnings = paragraph_cards(marks, section)
                self.cards.extend(drafts)
                self.card_warnings.extend(warnings)
                for draft in drafts:
                    if draft.kind == CardKind.BASIC:
                        self.single_line_end = max(self.single_line_end, draft.line)
        return "".join(parts)

    def _multiline(self, mark_line: int, section: int | None) -> None:
        """The `?`/`??` card around 0-based source line `mark_line`."""
        if self.consumed and self.consumed[-1][0] <= mark_line + 1 <= self.consumed[-1][1]:
            return  # a second `?` inside a card's run is part of its answer, as in OSR
        # The question does not reach back over a card right above it.
        first = self.body_start
        if self.single_line_end - 1 < mark_line:
            first = max(first, self.single_line_end)
        if self.consumed and self.consumed[-1][1] - 1 < mark_line:
            first = max(first, self.consumed[-1][1])
        drafts, warnings, (top, bottom) = multiline_card(self.lines, mark_line, first, section)
        self.cards.extend(drafts)
        self.card_warnings.extend(warnings)
        self.consumed.append((top + 1, bottom + 1))

    def _display_block(self, tok: Token, known_failure: str | None) -> None:
        line = tok.map[0] + 1 if tok.map else 1
        self.math.append(_MathDraft(tok.content, True, line, self.current, known_failure))

    def _fence(self, tokens: Sequence[Token], index: int, known_failure: str | None) -> bool:
        tok = tokens[index]
        line = tok.map[0] + 1 if tok.map else 1
        if tok.map:
            last = tok.map[1] - 1
            if (
                last <= tok.map[0]
                or last >= len(self.lines)
                or not is_closing_fence(self.lines[last], tok.markup)
            ):
                self.warnings.append(ParseWarning(line, f"unterminated code fence opened at line {line}"))
        content = tok.content
        self._add_text(content)
        language = fence_language(tok.info)
        tok.meta["language"] = language
        if language == "output":
            self._output(tokens, index, line)
            return False
        if language not in _SNIPPET_LANGUAGES:
            return False
        expected: str | None = None
        code = content
        if language == "pycon" or (language == "python" and is_doctest(content)):
            code, expected = split_doctest(content)
            if code:
                language = "pycon"
            else:  # `pycon` without a single prompt: plain code
                code, expected, language = content, None, "python"
        tok.meta["snippet"] = len(self.snippets)
        self.snippets.append(
            _SnippetDraft(
                language,
                code,
                line,
                self.current,
                tok.info,
                expected=expected,
                expected_line=line if expected is not None else None,
                known_failure=known_failure,
            )
        )
        return True

    def _output(self, tokens: Sequence[Token], index: int, line: int) -> None:
        content = tokens[index].content
        expected = content[:-1] if content.endswith("\n") else content
        j = index - 1
        while j >= 0 and tokens[j].nesting == -1:
            j -= 1
        previous = tokens[j] if j >= 0 else None
        if previous is None or previous.type not in ("fence", "code_block"):
            self.warnings.append(ParseWarning(line, "output fence not directly after a code block; ignored"))
            return
        if previous.meta.get("language") == "output":
            self.warnings.append(
                ParseWarning(line, "output fence directly after another output fence; ignored")
            )
            return
        snippet = previous.meta.get("snippet")
        if snippet is None:
            return  # the output of a shell/other block: kept as text only
        draft = self.snippets[snippet]
        if draft.expected is not None:
            self.warnings.append(
                ParseWarning(line, f"code block at line {draft.line} already has an expected output; ignored")
            )
            return
        draft.expected = expected
        draft.expected_line = line

    # -- the result --

    def result(self, path: str) -> ParsedNote:
        sections = self.sections
        for index in self.stack:
            sections[index].end_line = self.line_count
        section_values = tuple(
            Section(s.level, s.title, s.line, max(s.end_line, s.line), s.parent, "\n".join(s.parts))
            for s in sections
        )

        self._logseq_properties()
        fm_title = self.front_matter.get("title")
        if (
            isinstance(fm_title, str | int | float)
            and not isinstance(fm_title, bool)
            and str(fm_title).strip()
        ):
            title = str(fm_title).strip()
        else:  # as Obsidian names notes: headings are sections
            title = _stem(path)

        formulas, formula_cards = self._formulas()
        snippets, snippet_cards = self._snippets()
        drafts = self.cards + formula_cards + snippet_cards
        if self.consumed:  # lines of a multi-line card make no other prose card
            starts = [start for start, _end in self.consumed]

            def inside(line: int) -> bool:
                k = bisect_right(starts, line) - 1
                return k >= 0 and line <= self.consumed[k][1]

            drafts = [d for d in drafts if d.kind not in _PROSE_CARDS or d.last_line or not inside(d.line)]
        if self._makes_cards(path):
            self.warnings.extend(self.card_warnings)
        else:
            drafts = []
        drafts.sort(key=lambda draft: draft.line)
        scope = _TagScope(self.tags, sections)
        cards = tuple(
            Card(
                kind=d.kind,
                front=_without_tag_runs(d.front) if d.kind in _PROSE_CARDS else d.front,
                back=_without_tag_runs(d.back) if d.kind in _PROSE_CARDS else d.back,
                line=d.line,
                section=d.section,
                tags=scope.names(d.section),
                prompt=d.prompt,
                context=_without_tag_runs(d.context) if d.kind in _PROSE_CARDS else d.context,
                reverse=d.reverse,
                sibling_key=d.sibling_key,
                formula=d.formula,
                snippet=d.snippet,
            )
            for d in drafts
        )
        return ParsedNote(
            path=path,
            title=title,
            front_matter=self.front_matter,
            sections=section_values,
            tags=tuple(self.tags),
            links=tuple(self.links),
            highlights=tuple(self.highlights),
            formulas=formulas,
            snippets=snippets,
            cards=cards,
            warnings=tuple(sorted(self.warnings, key=lambda w: w.line)),
            text="\n".join([title, *self.all_parts]),
        )

    def _makes_cards(self, path: str) -> bool:
        """OSR's opt-in: a note makes cards when it carries a flashcard tag (or the vault
        makes every note's cards); plugin files (Excalidraw drawings) never do."""
        if path.lower().endswith(_PLUGIN_SUFFIXES) or any(k in self.front_matter for k in _PLUGIN_KEYS):
            return False
        if str(self.front_matter.get("d2lkb", "")).strip().lower() == "cards":
            return True  # the note opts in itself (e.g. a deck imported from Anki)
        return self.options.makes_cards([tag.name for tag in self.tags])

    def _logseq_properties(self) -> None:
        """Logseq page properties (`title:: X`, `alias:: a, b` lines opening the note,
        without YAML front matter) name the note like front matter does."""
        if self.front_matter or self.first_paragraph is None:
            return
        found: dict[str, Any] = {}
        for raw in self.first_paragraph.split("\n"):
            match = _LOGSEQ_PROPERTY.fullmatch(raw.strip())
            if match is None:
                return
            found[match.group(1).lower()] = match.group(2).strip()
        for key in ("title", "alias"):
            value = found.get(key)
            if value:
                if key == "alias":
                    value = [a.strip().strip("[]").strip() for a in value.split(",") if a.strip("[] ")]
                self.front_matter[key] = value

    def _formulas(self) -> tuple[tuple[Formula, ...], list[CardDraft]]:
        # (math draft, row, line, name, labelled, shown)
        entries: list[tuple[_MathDraft, str, int, str | None, bool, str]] = []
        unlabelled: dict[int | None, int] = {}
        for draft in self.math:
            if not draft.display:
                entries.append((draft, draft.latex.strip(), draft.line, None, False, ""))
                continue
            rows = split_rows(draft.latex)
            aligned = rows is not None
            if rows is None:
                stripped = draft.latex.strip()
                rows = [Row(stripped, 0)] if stripped else []
            if not rows:
                self.warnings.append(ParseWarning(draft.line, "empty display formula"))
            counted, newlines = 0, 0  # rows come in source order: count each newline once
            for row in rows:
                label = describe_row(row.latex)
                # a row: its own line; a whole formula: the line of its opening delimiter
                if aligned:
                    newlines += draft.latex.count("\n", counted, row.offset)
                    counted = row.offset
                line = draft.line + newlines if aligned else draft.line
                entries.append((draft, row.latex, line, label.name, label.labelled, label.shown))
                if not label.labelled:
                    unlabelled[draft.section] = unlabelled.get(draft.section, 0) + 1

        formulas: list[Formula] = []
        cards: list[CardDraft] = []
        blocks: dict[int, int] = {}  # id of a display draft -> its block number
        keys: dict[int, str] = {}  # id of a display draft -> its rows' sibling key (hashed once)
        for draft, latex, line, name, labelled, shown in entries:
            section = draft.section
            if (
                draft.display
                and not labelled
                and section is not None
                and unlabelled.get(section) == 1
                and is_relation(latex)
            ):
                name = self.sections[section].title or None
            index = len(formulas)
            block = blocks.setdefault(id(draft), len(blocks)) if draft.display else None
            formulas.append(Formula(latex, draft.display, line, section, name, draft.known_failure, block))
            if not (draft.display and name):
                continue
            if not shown:
                self.warnings.append(ParseWarning(line, f"formula {name!r} has nothing to show; no card"))
                continue
            cards.append(
                CardDraft(
                    CardKind.FORMULA,
                    name,
                    f"$${shown}$$",
                    line,
                    section,
                    prompt=name,
                    context=latex,
                    sibling_key=keys.get(id(draft)) or keys.setdefault(id(draft), "formula:" + short_hash(draft.latex)),
                    formula=index,
                )
            )
        # The named rows of one block are siblings; a lone formula card has none.
        per_block = Counter(card.sibling_key for card in cards)
        for card in cards:
            if per_block[card.sibling_key] == 1:
                card.sibling_key = ""
        return tuple(formulas), cards

    def _snippets(self) -> tuple[tuple[Snippet, ...], list[CardDraft]]:
        snippets: list[Snippet] = []
        cards: list[CardDraft] = []
        for index, d in enumerate(self.snippets):
            snippets.append(
                Snippet(
                    d.language,
                    d.code,
                    d.line,
                    d.section,
                    expected=d.expected,
                    expected_line=d.expected_line,
                    info=d.info,
                    known_failure=d.known_failure,
                )
            )
            if d.language == "sympy" or d.expected is None:
                continue
            code = d.code if d.code.endswith("\n") else d.code + "\n"
            fence = "```"
            while fence in code or fence in d.expected:
                fence += "`"
            cards.append(
                CardDraft(
                    CardKind.SNIPPET,
                    f"{fence}python\n{code}{fence}",
                    f"{fence}output\n{d.expected}\n{fence}",
                    d.line,
                    d.section,
                    prompt=d.code,
                    context=d.expected,
                    snippet=index,
                )
            )
        return tuple(snippets), cards


class _TagScope:
    """Tag names in scope of a section: note-wide ones, then each enclosing
    section's own, outermost first; case-insensitively deduplicated."""

    def __init__(self, tags: list[Tag], sections: list[_SectionDraft]) -> None:
        self.note_wide: list[str] = []
        self.own: dict[int, list[str]] = {}
        for tag in tags:
            if tag.section is None:
                self.note_wide.append(tag.name)
            else:
                self.own.setdefault(tag.section, []).append(tag.name)
        self.sections = sections
        self.memo: dict[int | None, tuple[str, ...]] = {}

    def names(self, section: int | None) -> tuple[str, ...]:
        if section in self.memo:
            return self.memo[section]
        chain: list[int] = []
        current = section
        while current is not None:
            chain.append(current)
            current = self.sections[current].parent
        seen: set[str] = set()
        names: list[str] = []
        for name in self.note_wide + [n for index in reversed(chain) for n in self.own.get(index, ())]:
            key = name.lower()
            if key not in seen:
                seen.add(key)
                names.append(name)
        result = tuple(names)
        self.memo[section] = result
        return result


_PROSE_CARDS = (CardKind.BASIC, CardKind.CLOZE)

# A run of tags at the start or end of a card's text (`#parameters #参数 A way to ...`) labels the
# paragraph; the card shows its tags apart, so the run is not repeated in the card's text. The
# tags were found by the token-level plugin already; this only trims the card's display text.
_TAG = r"#(?=[\w/-]*[^\W\d])[\w][\w/-]*"
_LEADING_TAGS = re.compile(rf"^(?:{_TAG}[ \t]+)+(?=\S)")
_TRAILING_TAGS = re.compile(rf"(?<=\S)(?:[ \t]+{_TAG})+$")


# An Obsidian callout's type marker (`> [!note] Title`) is styling, not content.
_CALLOUT = re.compile(r"^\[![A-Za-z][\w-]*\][+-]?[ \t]*")


def _without_tag_runs(text: str) -> str:
    return _TRAILING_TAGS.sub("", _LEADING_TAGS.sub("", _CALLOUT.sub("", text)))
