"""Card syntax inline rules: the `::` / `:::` separator and `{{curly}}` clozes.

Separator: a run of exactly two or three colons, with or without spaces around it
(`Q::A`, `Q :: A`, `Q:::A`), as Obsidian Spaced Repetition reads it. Being an inline
rule, nothing in code spans, math, HTML or link targets is seen. Which runs split a
card (and which are `key:: value` properties or C++ `std::` scopes) is decided per
line by `d2lkb.notes.cards`. Produces `card_sep` tokens with `markup` `::` or `:::`
and `meta["pos"]`, the offset in the inline source.

Curly clozes (opt-in): `{{answer}}`, `{{c1::answer}}` / `{{1::answer}}`, `{{c1::answer::hint}}`,
`{{1;;answer;;hint}}` on one line, as one `cloze_curly` token whose `meta` has `pos`,
`end` (offset after `}}`), `start`/`stop` (the answer's span), `group` and `hint`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

# `c1::` (Anki) or `1;;` (OSR sequence) before the answer; `::hint` / `;;hint` after it.
_CURLY_GROUP = re.compile(r"(?:c?(\d+)::|(\d+);;)")
_CURLY_HINT = re.compile(r"(?:::|;;)")
MAX_CURLY = 1000


def _card_separator_rule(state: StateInline, silent: bool) -> bool:
    src = state.src
    pos = state.pos
    if src[pos] != ":" or (pos > 0 and src[pos - 1] == ":"):
        return False
    end = pos
    maximum = state.posMax
    while end < maximum and src[end] == ":":
        end += 1
    if end - pos not in (2, 3):
        return False
    if not silent:
        token = state.push("card_sep", "", 0)
        token.markup = src[pos:end]
        token.meta["pos"] = pos
    state.pos = end
    return True


def _render_card_sep(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return escapeHtml(tokens[idx].markup)


def card_separator_plugin(md: MarkdownIt) -> None:
    """Recognise the `::` / `:::` question/answer separator as `card_sep` tokens."""
    md.inline.ruler.push("card_sep", _card_separator_rule)
    md.add_render_rule("card_sep", _render_card_sep)


def _curly_rule(state: StateInline, silent: bool) -> bool:
    src = state.src
    pos = state.pos
    if not src.startswith("{{", pos):
        return False
    end = src.find("}}", pos + 2, min(state.posMax, pos + 2 + MAX_CURLY))
    if end < 0:
        return False
    inner = src[pos + 2 : end]
    if not inner.strip() or "\n" in inner or "{" in inner:
        return False
    start = pos + 2
    group: str | None = None
    match = _CURLY_GROUP.match(inner)
    if match:
        group = match.group(1) or match.group(2)
        start += match.end()
    stop = end
    hint: str | None = None
    found = _CURLY_HINT.search(src, start, end)
    if found:
        stop = found.start()
        hint = src[found.end() : end].strip() or None
    if not src[start:stop].strip():
        return False
    if not silent:
        token = state.push("cloze_curly", "", 0)
        token.content = src[start:stop]
        token.meta.update(pos=pos, end=end + 2, start=start, stop=stop, group=group, hint=hint)
    state.pos = end + 2
    return True


def _render_curly(self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    return f"<mark>{escapeHtml(tokens[idx].content)}</mark>"


def curly_cloze_plugin(md: MarkdownIt) -> None:
    """Recognise `{{answer}}` clozes (OSR's curly pattern, Anki's `{{c1::..}}`)."""
    md.inline.ruler.before("link", "cloze_curly", _curly_rule)
    md.add_render_rule("cloze_curly", _render_curly)
