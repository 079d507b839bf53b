"""Compare a snippet's expected output with what it printed.

Pure text processing (no torch): what differs only in presentation is equal.

- trailing whitespace on lines and leading and trailing blank lines are ignored,
  and a doctest `<BLANKLINE>` marker stands for an empty line;
- device annotations in tensor reprs (`, device='cuda:0'`) are removed on both
  sides, so an output recorded on a GPU matches one produced on a CPU;
- numbers are compared as numbers: `1.` == `1.0000`, `-0.` == `0.`,
  `1.0000e-08` == `1e-8`; floats within `rel_tol`/`abs_tol` of each other are
  equal, and so is anything that rounds to a number printed with two or more
  decimals (`0.3333` matches `0.33333334`); an integer only equals the same
  integer (`tensor([1, 2])` is not `tensor([1., 2.])`: the dtype differs);
- spacing between tokens does not matter (torch aligns columns to the widest
  number), and neither do line breaks *inside* brackets (a tensor whose numbers
  print shorter wraps at other places); a line break outside brackets does.
"""

from __future__ import annotations

import difflib
import math
import re

__all__ = ["compare_output", "normalise_output"]

_DEVICE_ANNOTATION = re.compile(r",\s*device\s*=\s*'[^']*'")
_TOKEN = re.compile(
    r"""
      (?P<word>[A-Za-z_][A-Za-z_0-9]*)
    | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
    | (?P<space>[ \t\f\v]+)
    | (?P<newline>\n)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OPENING = "([{"
_CLOSING = ")]}"
# A sign belongs to the number after it when it cannot be a binary operator:
# at the start, or after an opening bracket, a separator or an operator.
_SIGN_CONTEXT = set("([{,:;=<>*/%|&^~+-\n") | {""}
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf}  # exact (resolution 0)


def normalise_output(text: str) -> str:
    """The text as compared: no device annotations, no trailing whitespace, no blank lines
    before or after."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _DEVICE_ANNOTATION.sub("", text)
    lines = ["" if line.strip() == "<BLANKLINE>" else line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def _tokens(text: str) -> list[object]:
    """Numbers become int/float, words and punctuation stay strings, spacing disappears.

    A line break is a token ("\\n") only outside brackets. A `+`/`-` is the sign
    of the number after it unless it follows something it could subtract from.
    """
    raw: list[tuple[str, str]] = []
    depth = 0
    for match in _TOKEN.finditer(text):
        kind, value = match.lastgroup or "", match.group()
        if kind == "space":
            continue
        if kind == "newline":
            if depth == 0:
                raw.append((kind, value))
            continue
        if value in _OPENING:
            depth += 1
        elif value in _CLOSING:
            depth = max(0, depth - 1)
        raw.append((kind, value))

    tokens: list[object] = []
    i = 0
    while i < len(raw):
        kind, value = raw[i]
        previous = raw[i - 1][1] if i else ""
        signed = (
            value in "+-"
            and kind == "other"
            and i + 1 < len(raw)
            and (raw[i + 1][0] == "number" or raw[i + 1][1] in _SPECIAL_FLOATS)
            and (previous in _SIGN_CONTEXT)
        )
        if signed:
            number = _value(*raw[i + 1])
            tokens.append(-number if value == "-" else number)  # type: ignore[operator]
            i += 2
            continue
        tokens.append(_value(kind, value))
        i += 1
    return tokens


def _value(kind: str, text: str) -> str | float | int | _Number:
    if kind == "number":
        return _number(text)
    if kind == "word":
        return _SPECIAL_FLOATS.get(text, text)
    return text


class _Number(float):
    """A float that remembers the resolution it was printed with (0: taken as exact)."""

    resolution: float

    def __neg__(self) -> _Number:
        number = _Number(-float(self))
        number.resolution = self.resolution
        return number


def _number(text: str) -> _Number | int:
    """`"3"` -> 3; `"0.3333"` -> 0.3333 with resolution 1e-4; `"1."`, `"0.5"` -> exact floats.

    A number printed with two or more decimals stands for anything that rounds to it
    (torch prints 4, numpy 8, `%.2f` 2), so half a unit of its last digit is allowed.
    With fewer decimals it is taken as exact: torch prints `1.` for an integral value
    and Python's repr of 0.5 is `0.5`.
    """
    mantissa, _, exponent = text.lower().partition("e")
    if "." not in mantissa and not exponent:
        return int(text)
    number = _Number(float(text))
    decimals = len(mantissa.partition(".")[2])
    number.resolution = 10.0 ** (int(exponent or 0) - decimals) if decimals >= 2 else 0.0
    return number


def _same_token(a: object, b: object, rel_tol: float, abs_tol: float) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, int) != isinstance(b, int):
        return False  # 1 vs 1.0: an integer tensor is not a float tensor
    if isinstance(a, int):
        return a == b
    x, y = float(a), float(b)  # type: ignore[arg-type]
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isclose(x, y, rel_tol=rel_tol, abs_tol=abs_tol):
        return True
    resolution = max(getattr(a, "resolution", 0.0), getattr(b, "resolution", 0.0))
    return math.isfinite(x) and math.isfinite(y) and abs(x - y) <= resolution / 2 * (1 + 1e-9)


def compare_output(
    expected: str, actual: str, *, rel_tol: float = 1e-4, abs_tol: float = 1e-6
) -> tuple[bool, str]:
    """`(True, "")` when `actual` matches `expected` up to presentation, else `(False, diff)`.

    The diff is a unified diff of the normalised texts (`--- expected`, `+++ actual`).
    """
    want = normalise_output(expected)
    got = normalise_output(actual)
    if want == got:
        return True, ""
    want_tokens, got_tokens = _tokens(want), _tokens(got)
    if len(want_tokens) == len(got_tokens) and all(
        _same_token(a, b, rel_tol, abs_tol) for a, b in zip(want_tokens, got_tokens, strict=True)
    ):
        return True, ""
    diff = difflib.unified_diff(
        want.split("\n") if want else [],
        got.split("\n") if got else [],
        fromfile="expected",
        tofile="actual",
        lineterm="",
    )
    return False, "\n".join(diff)
