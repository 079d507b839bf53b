"""`#tag` inline rule.

A tag is `#` followed by Unicode letters/digits, `_`, `-` and `/` (nesting, as in
`#ml/supervised`). It needs at least one letter or `_` (so `#2024` and `#1-2` are
not tags); a trailing `/` or `-` is not part of it, and it must start with a letter,
digit or `_`. The rule fires only at `#` characters the inline parser reaches, so
code spans, math, autolinks, inline HTML and link targets (which other rules consume
whole) are never scanned, and `\\#` (eaten by the escape rule) never reaches it.
A `\\` right before `#` can only be an escaped backslash, so `\\\\#tag` is a tag.
`a#b` (word before `#`) and bare URLs such as `http://x/#frag` are rejected by
looking at the source before the `#`.

Each tag becomes a `tag` token: `content` is the name as written (without `#`),
`meta["pos"]` its offset in the inline source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

# Word characters plus the combining marks of common scripts (Devanagari vowel signs,
# accents written as combining characters, ...), which `\w` alone does not match.
_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u0610-\u061a\u064b-\u065f\u0900-\u0dff"
    "\u0e31-\u0e4e\u0eb1-\u0ecd\u1ab0-\u1aff\u1dc0-\u1dff\u200c\u200d\u20d0-\u20ff"
    "\ufe00-\ufe0f\ufe20-\ufe2f"
)
_TAG_BODY = re.compile(rf"[\w{_MARKS}/-]+")
_TAG_NAME = re.compile(rf"[\w{_MARKS}][\w{_MARKS}/-]*")
# Characters that, directly before `#`, mean it is part of a word, URL or entity.
_NOT_BEFORE = frozenset("/#&=.:%+@-?$")
_URL_LOOKBACK = 256


def clean_tag_name(raw: str) -> str | None:
    """The tag name for `raw` (without `#`), or None when it is not a valid tag.

    Trailing `/` and `-` are dropped (`ml/` -> `ml`); the name must start with a
    letter, digit or `_` and hold at least one character that is not a digit, `-`
    or `/`.
    """
    name = raw.rstrip("/-")
    if not name or not _TAG_NAME.fullmatch(name):
        return None
    for ch in name:
        if not ch.isdigit() and ch not in "-/":
            return name
    return None


def _preceded_ok(src: str, pos: int) -> bool:
    if pos == 0:
        return True
    prev = src[pos - 1]
    if prev.isspace():
        return True
    if prev == "_":
        # `x_#y` is inside a word; `_#tag_` is emphasis.
        if pos >= 2 and (src[pos - 2].isalnum() or src[pos - 2] == "_"):
            return False
    elif prev.isalnum() or prev in _NOT_BEFORE:
        return False
    # Something like `(`, `*` or `"`: fine, unless the `#` sits inside a bare URL
    # such as `https://en.wikipedia.org/wiki/A_(b)#History`.
    limit = max(0, pos - _URL_LOOKBACK)
    start = max(src.rfind(" ", limit, pos), src.rfind("\n", limit, pos), src.rfind("\t", limit, pos))
    chunk = src[max(start + 1, limit) : pos]
    return "://" not in chunk and not chunk.lower().startswith("www.")


def _tag_rule(state: StateInline, silent: bool) -> bool:
    src = state.src
    pos = state.pos
    if src[pos] != "#" or not _preceded_ok(src, pos):
        return False
    match = _TAG_BODY.match(src, pos + 1, state.posMax)
    if match is None:
        return False
    name = clean_tag_name(match.group())
    if name is None:
        return False
    if not silent:
        token = state.push("tag", "", 0)
        token.content = name
        token.markup = "#"
        token.meta["pos"] = pos
    state.pos = pos + 1 + len(name)
    return True


def _render_tag(self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    name = escapeHtml(tokens[idx].content)
    return f'<span class="tag">#{name}</span>'


def tags_plugin(md: MarkdownIt) -> None:
    """Recognise `#tags` in inline text as `tag` tokens."""
    md.inline.ruler.push("tag", _tag_rule)
    md.add_render_rule("tag", _render_tag)
