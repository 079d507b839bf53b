"""A card's Markdown as one Textual `Content`, for a `Static` that is updated in place.

Textual's `Markdown` widget mounts a widget per block and rebuilds them all on every update:
that remount (CSS, layout, a parser built and a thread hop per update) was most of the time
between a rating and the next card (issue 10, point 9). Cards are short, so the review screen
renders their Markdown here instead, with markdown-it-py (the parser the notes use), in the
worker thread that fetched the card; the UI thread only swaps the text of three `Static`s.

What cards hold is rendered: paragraphs, **strong**, *emphasis*, ~~strike~~, `code`,
==highlights== (the project's `==` plugin), links (their text), headings, lists, quotes,
fenced and indented code (highlighted when the fence names its language; math laid out in
2-D comes as code: kept line for line), tables
(cells joined by `│`) and rules. Raw HTML is shown as written. Styles name theme variables,
so light and dark themes both work. The text is never read as Textual markup.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from textual.content import Content

from d2lkb.notes.plugins.highlights import highlights_plugin

INLINE_STYLES = {
    "strong": "bold",
    "em": "italic",
    "s": "strike",
    # a highlight, and the answer of a cloze: reverse video + underline + bold reads without colour
    "mark": "bold underline reverse $text-accent",
    "link": "underline $text-accent",
}
CODE_INLINE = "$text-accent on $boost"
CODE_BLOCK = "$text on $boost"
HEADING = "bold $text-primary"
QUOTE = "italic $text-muted"

_local = threading.local()


def _parser() -> MarkdownIt:
    """One parser per thread (markdown-it keeps no state between parses, but stay safe)."""
    md = getattr(_local, "md", None)
    if md is None:
        md = MarkdownIt("commonmark").enable(["table", "strikethrough"]).use(highlights_plugin)
        _local.md = md
    return md


def markdown_content(markdown: str) -> Content:
    """`markdown` rendered as a `Content` (empty for empty text)."""
    if not markdown.strip():
        return Content("")
    tokens = _parser().parse(markdown)
    return _Renderer(tokens).render()


def _inline(children: Sequence[Token] | None) -> Content:
    parts: list[Content] = []
    styles: list[str] = []
    for token in children or ():
        kind = token.type
        if kind.endswith("_open") and kind[:-5] in INLINE_STYLES:
            styles.append(INLINE_STYLES[kind[:-5]])
        elif kind.endswith("_close") and kind[:-6] in INLINE_STYLES:
            if styles:
                styles.pop()
        elif kind == "code_inline":
            parts.append(_styled(token.content, [*styles, CODE_INLINE]))
        elif kind == "softbreak":
            parts.append(Content(" "))
        elif kind == "hardbreak":
            parts.append(Content("\n"))
        elif kind == "image":
            alt = "".join(c.content for c in token.children or ()) or token.attrGet("src") or ""
            parts.append(_styled(f"[image: {alt}]", [*styles, "italic"]))
        elif kind in ("text", "html_inline") or token.content:
            parts.append(_styled(token.content, styles))
    return Content("").join(parts)


def _code_box(code: Content) -> Content:
    """Code on a tinted box two cells wider than its longest line on each side, lines kept as they are."""
    lines = code.split("\n")
    width = max((line.cell_length for line in lines), default=0)
    boxed = [Content("  ") + line + Content(" " * (width - line.cell_length + 2)) for line in lines]
    return Content("\n").join(boxed).stylize_before(CODE_BLOCK)


@lru_cache(maxsize=64)
def _lexer(language: str):
    """Pygments' lexer for a fence's language (plain text if it knows none). Kept: looking one up
    by name costs more than highlighting a card's code with it."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(language, stripnl=False, ensurenl=True, tabsize=8)
    except ClassNotFound:
        return get_lexer_by_name("text", stripnl=False, ensurenl=True, tabsize=8)


def _highlight(code: str, language: str) -> Content:
    """`code` highlighted as `textual.highlight.highlight` does (its theme's styles, theme
    variables), with the lexer kept per language."""
    from textual.content import Span
    from textual.highlight import HighlightTheme

    code = "\n".join(code.splitlines())
    styles = HighlightTheme.STYLES
    spans: list[Span] = []
    start = 0
    for token_type, text in _lexer(language).get_tokens(code):
        end = start + len(text)
        kind = token_type
        while kind is not None:
            if style := styles.get(kind):
                spans.append(Span(start, end, style))
                break
            kind = kind.parent
        start = end
    return Content(code, spans=spans).stylize_before("$text")


def _styled(text: str, styles: list[str]) -> Content:
    return Content.styled(text, " ".join(styles)) if styles else Content(text)


class _Renderer:
    """Walks markdown-it's flat token list; blocks are joined by a blank line, list items by a newline."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def render(self) -> Content:
        return self._blocks(None)

    def _blocks(self, close: str | None, tight: bool = False) -> Content:
        """Blocks up to the token `close` (or the end): a blank line between them (a newline when `tight`)."""
        out: list[Content] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            kind = token.type
            if close is not None and kind == close:
                break
            block = self._block(token)
            if block is not None:
                out.append(block)
        return Content("\n" if tight else "\n\n").join(out)

    def _block(self, token: Token) -> Content | None:
        kind = token.type
        if kind == "paragraph_open":
            inline = self._take_inline()
            self._skip("paragraph_close")
            return inline
        if kind == "heading_open":
            inline = self._take_inline()
            self._skip("heading_close")
            return inline.stylize(HEADING + (" underline" if token.tag == "h1" else ""))
        if kind in ("fence", "code_block"):
            code = token.content.rstrip("\n")
            language = token.info.split()[0] if kind == "fence" and token.info.strip() else ""
            if language:
                return _code_box(_highlight(code, language))
            return _code_box(Content(code))
        if kind in ("html_block",):
            return Content(token.content.rstrip("\n"))
        if kind == "hr":
            return Content.styled("─" * 24, "$text-muted")
        if kind == "blockquote_open":
            body = self._blocks("blockquote_close")
            return Content("\n").join(Content.styled("│ ", "$text-muted") + line.stylize(QUOTE)
                                      for line in body.split("\n"))
        if kind in ("bullet_list_open", "ordered_list_open"):
            return self._list(token)
        if kind == "table_open":
            return self._table()
        if kind == "inline":
            return _inline(token.children)
        return None  # closing tokens of blocks handled by their opener, unknown blocks

    def _list(self, opener: Token) -> Content:
        ordered = opener.type == "ordered_list_open"
        close = "ordered_list_close" if ordered else "bullet_list_close"
        number = int(opener.attrGet("start") or 1) if ordered else 0
        items: list[Content] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if token.type == close:
                break
            if token.type != "list_item_open":
                continue
            marker = f"{number}. " if ordered else "• "
            number += 1
            body = self._blocks("list_item_close", tight=True)
            lines = body.split("\n")
            indent = " " * len(marker)
            head = Content.styled(marker, "$text-accent") + (lines[0] if lines else Content(""))
            items.append(Content("\n").join([head, *(Content(indent) + line for line in lines[1:])]))
        return Content("\n").join(items)

    def _table(self) -> Content:
        rows: list[list[Content]] = []
        header_rows = 0
        in_head = False
        row: list[Content] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            kind = token.type
            if kind == "table_close":
                break
            if kind == "thead_open":
                in_head = True
            elif kind == "thead_close":
                in_head = False
            elif kind == "tr_open":
                row = []
            elif kind == "tr_close":
                rows.append(row)
                header_rows += in_head
            elif kind == "inline":
                row.append(_inline(token.children))
        widths = [max((r[i].cell_length for r in rows if i < len(r)), default=0) for i in range(max(map(len, rows),
                                                                                                     default=0))]
        lines = []
        for n, cells in enumerate(rows):
            padded = [c + " " * (widths[i] - c.cell_length) for i, c in enumerate(cells)]
            line = Content(" │ ").join(padded)
            lines.append(line.stylize("bold") if n < header_rows else line)
            if n == header_rows - 1:
                lines.append(Content.styled("─┼─".join("─" * w for w in widths), "$text-muted"))
        return Content("\n").join(lines)

    def _take_inline(self) -> Content:
        if self.pos < len(self.tokens) and self.tokens[self.pos].type == "inline":
            self.pos += 1
            return _inline(self.tokens[self.pos - 1].children)
        return Content("")

    def _skip(self, kind: str) -> None:
        if self.pos < len(self.tokens) and self.tokens[self.pos].type == kind:
            self.pos += 1
