"""`[[wikilink]]` inline rule (mdit-py-plugins has none).

Accepted forms: `[[target]]`, `[[target|alias]]`, `[[target#heading]]`,
`[[target#heading|alias]]`, `![[embed]]`. A wikilink stays on one line and holds no
brackets. Produces a `wikilink` token whose `meta` has `pos` (offset of `[[` in the
inline source), `target` (stripped, without the anchor), `anchor` and `alias`
(None when absent).
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from d2lkb.notes.plugins.math import last_index

# Longest `[[...]]` body looked at; keeps many unclosed `[[` linear.
MAX_WIKILINK_LENGTH = 1000


def split_wikilink(inner: str) -> tuple[str, str | None, str | None]:
    """`target#anchor|alias` -> (target, anchor, alias); `\\|` (in tables) counts as `|`."""
    inner = inner.replace("\\|", "|")
    alias: str | None = None
    if "|" in inner:
        inner, alias = inner.split("|", 1)
        alias = alias.strip() or None
    anchor: str | None = None
    if "#" in inner:
        inner, anchor = inner.split("#", 1)
        anchor = anchor.strip() or None
    return inner.strip(), anchor, alias


def _wikilink_rule(state: StateInline, silent: bool) -> bool:
    src = state.src
    pos = state.pos
    if src[pos] != "[" or not src.startswith("[", pos + 1):
        return False
    if last_index(state, "]]") < pos + 2:
        return False
    end = src.find("]]", pos + 2, min(state.posMax, pos + 2 + MAX_WIKILINK_LENGTH))
    if end < 0:
        return False
    inner = src[pos + 2 : end]
    if not inner.strip() or "\n" in inner or "[" in inner or "]" in inner:
        return False
    if not silent:
        target, anchor, alias = split_wikilink(inner)
        token = state.push("wikilink", "", 0)
        token.content = inner
        token.markup = "[["
        token.meta.update(pos=pos, target=target, anchor=anchor, alias=alias)
    state.pos = end + 2
    return True


def _render_wikilink(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    meta = tokens[idx].meta
    href = meta["target"] + (f"#{meta['anchor']}" if meta["anchor"] else "")
    label = meta["alias"] or tokens[idx].content
    return f'<a class="wikilink" href="{escapeHtml(href)}">{escapeHtml(label)}</a>'


def wikilinks_plugin(md: MarkdownIt) -> None:
    """Recognise `[[target#anchor|alias]]` as `wikilink` tokens."""
    md.inline.ruler.before("link", "wikilink", _wikilink_rule)
    md.add_render_rule("wikilink", _render_wikilink)
