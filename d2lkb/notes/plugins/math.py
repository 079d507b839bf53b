"""`\\(..\\)` and `\\[..\\]` math, alongside mdit-py-plugins' dollarmath.

Token types match dollarmath's so one consumer handles both syntaxes:
`math_inline` (`\\(..\\)`), `math_inline_double` (`\\[..\\]` inside a paragraph,
i.e. display math that shares a line with text) and `math_block` (`\\[..\\]` on its
own lines; no blank line inside). Inline tokens carry `meta["pos"]`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

# Longest inline formula looked for; keeps many unclosed `\(` linear.
MAX_INLINE_MATH = 20_000


def last_index(state: StateInline, text: str) -> int:
    """`state.src.rfind(text)`, cached for the inline block where markdown-it-py offers
    it, so rejecting an opener that has no closer after it is O(1)."""
    cached = getattr(state, "html_terminator_last", None)
    return cached(text) if cached is not None else state.src.rfind(text)


def _math_inline_brackets(state: StateInline, silent: bool) -> bool:
    src = state.src
    pos = state.pos
    if src[pos] != "\\" or pos + 1 >= state.posMax:
        return False
    opener = src[pos + 1]
    if opener == "(":
        closer, kind = "\\)", "math_inline"
    elif opener == "[":
        closer, kind = "\\]", "math_inline_double"
    else:
        return False
    if last_index(state, closer) < pos + 2:
        return False
    end = src.find(closer, pos + 2, min(state.posMax, pos + 2 + MAX_INLINE_MATH))
    if end < 0 or not src[pos + 2 : end].strip():
        return False
    if not silent:
        token = state.push(kind, "math", 0)
        token.content = src[pos + 2 : end]
        token.markup = "\\" + opener
        token.meta["pos"] = pos
    state.pos = end + 2
    return True


def _math_block_brackets(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    if state.is_code_block(start_line):
        return False
    src = state.src
    start = state.bMarks[start_line] + state.tShift[start_line]
    maximum = state.eMarks[start_line]
    if not src.startswith("\\[", start) or start + 2 > maximum:
        return False

    line = start_line
    body_start = start + 2
    close = src.find("\\]", body_start, maximum)
    while close < 0:
        line += 1
        if line >= end_line or state.isEmpty(line):
            return False
        if state.sCount[line] < state.blkIndent:
            return False
        close = src.find("\\]", state.bMarks[line] + state.tShift[line], state.eMarks[line])
    # Text after `\]` on the closing line: leave it all to the paragraph rule.
    if src[close + 2 : state.eMarks[line]].strip():
        return False
    if silent:
        return True

    if line == start_line:
        content = src[body_start:close]
    else:
        parts = [src[body_start : state.eMarks[start_line]]]
        for inner in range(start_line + 1, line):
            parts.append(src[state.bMarks[inner] + state.tShift[inner] : state.eMarks[inner]])
        parts.append(src[state.bMarks[line] + state.tShift[line] : close])
        content = "\n".join(parts)

    token = state.push("math_block", "math", 0)
    token.block = True
    token.content = content
    token.markup = "\\["
    token.map = [start_line, line + 1]
    state.line = line + 1
    return True


def _render_inline(
    self: object, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return f'<span class="math inline">{escapeHtml(tokens[idx].content.strip())}</span>'


def bracket_math_plugin(md: MarkdownIt) -> None:
    """Recognise `\\(..\\)` and `\\[..\\]` math (install after dollarmath)."""
    md.inline.ruler.before("escape", "math_brackets", _math_inline_brackets)
    md.block.ruler.before("fence", "math_block_brackets", _math_block_brackets)
    if "math_inline" not in md.renderer.rules:  # type: ignore[attr-defined]
        md.add_render_rule("math_inline", _render_inline)


def source_positions_plugin(md: MarkdownIt, rules: Sequence[str] = ("newline", "math_inline")) -> None:
    """Wrap existing inline rules so the token each one pushes records `meta["pos"]`,
    its offset in the inline source (used to give line numbers to inline data)."""
    ruler = md.inline.ruler
    for name in rules:
        index = ruler.__find__(name)
        if index < 0:
            continue
        ruler.at(name, _with_position(ruler.__rules__[index].fn))


def each_position_plugin(md: MarkdownIt, rules: Sequence[str] = ("emphasis",)) -> None:
    """Like `source_positions_plugin`, for rules that push one token per source character
    (emphasis: one `*` per token): token k of a run gets `meta["pos"]` start + k."""
    ruler = md.inline.ruler
    for name in rules:
        index = ruler.__find__(name)
        if index < 0:
            continue
        ruler.at(name, _with_each_position(ruler.__rules__[index].fn))


def _with_each_position(rule: Callable[[StateInline, bool], bool]) -> Callable[[StateInline, bool], bool]:
    def rule_with_positions(state: StateInline, silent: bool) -> bool:
        pos = state.pos
        count = len(state.tokens)
        if not rule(state, silent):
            return False
        if not silent:
            # pending text may be flushed into a token first: the markers are the last ones
            run = state.pos - pos
            pushed = state.tokens[count:]
            for k, token in enumerate(pushed[len(pushed) - run :] if len(pushed) >= run else []):
                token.meta["pos"] = pos + k
        return True

    return rule_with_positions


def _with_position(rule: Callable[[StateInline, bool], bool]) -> Callable[[StateInline, bool], bool]:
    def rule_with_position(state: StateInline, silent: bool) -> bool:
        pos = state.pos
        count = len(state.tokens)
        if not rule(state, silent):
            return False
        if not silent and len(state.tokens) > count:
            state.tokens[-1].meta["pos"] = pos
        return True

    return rule_with_position
