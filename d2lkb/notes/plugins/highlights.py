"""`==highlight==` inline rule: a port of markdown-it-mark.

`==` runs are emphasis-like delimiters (left/right flanking as for `~~`), so
`==a== b ==c==` pairs correctly and `==` inside code or math is never seen.
Produces `mark_open` / `mark_close` tokens; both carry `meta["pos"]`, the offset of
their `==` in the inline source, so callers can slice the Markdown in between.
Suspicious runs get their own token types (rendered as plain text) so a consumer can
warn about them: `mark_empty` for an empty highlight `====`, and `mark_unmatched`
for a `==` that could only open (or only close) a highlight but found no partner.
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_inline import StateInline
from markdown_it.rules_inline.state_inline import Delimiter
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

_EQUALS = 0x3D


def _tokenize(state: StateInline, silent: bool) -> bool:
    start = state.pos
    if silent or state.src[start] != "=":
        return False
    scanned = state.scanDelims(start, True)
    length = scanned.length
    if length < 2:
        return False
    src = state.src
    if src.startswith(">", start + length) or (start > 0 and src[start - 1] == "<"):
        # `==>`, `<==`, `<==>`: an arrow, not a highlight marker
        token = state.push("text", "", 0)
        token.content = src[start : start + length]
        state.pos += length
        return True
    if length == 4 and (scanned.can_open or scanned.can_close):
        token = state.push("mark_empty", "", 0)
        token.content = "===="
        token.meta["pos"] = start
        state.pos += 4
        return True
    offset = 0
    if length % 2:
        token = state.push("text", "", 0)
        token.content = "="
        length -= 1
        offset = 1
    for i in range(0, length, 2):
        token = state.push("text", "", 0)
        token.content = "=="
        if scanned.can_open or scanned.can_close:
            token.meta["pos"] = start + offset + i
            state.delimiters.append(
                Delimiter(
                    marker=_EQUALS,
                    length=0,  # disable the "rule of 3" length checks
                    token=len(state.tokens) - 1,
                    end=-1,
                    open=scanned.can_open,
                    close=scanned.can_close,
                )
            )
    state.pos += scanned.length
    return True


def _post_process_list(state: StateInline, delimiters: list[Delimiter]) -> None:
    lone_markers: list[int] = []
    tokens = state.tokens
    closers: set[int] = set()
    for start_delim in delimiters:
        if start_delim.marker != _EQUALS or start_delim.end == -1:
            continue
        closers.add(start_delim.end)
        end_delim = delimiters[start_delim.end]

        token = tokens[start_delim.token]
        token.type = "mark_open"
        token.tag = "mark"
        token.nesting = 1
        token.markup = "=="
        token.content = ""

        token = tokens[end_delim.token]
        token.type = "mark_close"
        token.tag = "mark"
        token.nesting = -1
        token.markup = "=="
        token.content = ""

        before = tokens[end_delim.token - 1]
        if before.type == "text" and before.content == "=":
            lone_markers.append(end_delim.token - 1)

    for index, delim in enumerate(delimiters):
        if (
            delim.marker == _EQUALS
            and delim.end == -1
            and index not in closers
            and delim.open != delim.close
            and tokens[delim.token].type == "text"
        ):
            tokens[delim.token].type = "mark_unmatched"

    # An odd run `===` is split as `=` + `==`; move the lone `=` after the closing
    # tag so that `===a===` renders as `<mark>=a</mark>=`, as markdown-it-mark does.
    while lone_markers:
        i = lone_markers.pop()
        j = i + 1
        while j < len(tokens) and tokens[j].type == "mark_close":
            j += 1
        j -= 1
        if i != j:
            tokens[i], tokens[j] = tokens[j], tokens[i]


def _post_process(state: StateInline) -> None:
    _post_process_list(state, state.delimiters)
    for meta in state.tokens_meta:
        if meta and "delimiters" in meta:
            _post_process_list(state, meta["delimiters"])


def _render_as_text(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return escapeHtml(tokens[idx].content)


def highlights_plugin(md: MarkdownIt) -> None:
    """Recognise `==highlight==` as `mark_open` / `mark_close` tokens (`<mark>`)."""
    md.inline.ruler.before("emphasis", "mark", _tokenize)
    md.inline.ruler2.before("emphasis", "mark", _post_process)
    md.add_render_rule("mark_empty", _render_as_text)
    md.add_render_rule("mark_unmatched", _render_as_text)
