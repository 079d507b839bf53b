"""Card separator inline rule: ` :: ` and ` ::: ` between question and answer.

The separator must have a space or tab before it and a space, tab or line end after
it, so property lines (`key:: value`), `std::vector` and `a::b` never match, and,
being an inline rule, nothing in code spans, math or link targets is seen. Produces
`card_sep` tokens with `markup` `::` or `:::` and `meta["pos"]`, the offset in the
inline source.
"""

from __future__ import annotations

from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict


def _card_separator_rule(state: StateInline, silent: bool) -> bool:
    src = state.src
    pos = state.pos
    if src[pos] != ":" or pos == 0 or src[pos - 1] not in " \t":
        return False
    end = pos
    maximum = state.posMax
    while end < maximum and src[end] == ":":
        end += 1
    if end - pos not in (2, 3) or (end < maximum and src[end] not in " \t\n"):
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
    """Recognise the ` :: ` / ` ::: ` question/answer separator as `card_sep` tokens."""
    md.inline.ruler.push("card_sep", _card_separator_rule)
    md.add_render_rule("card_sep", _render_card_sep)
