"""What a written formula names: left sides that define something, tuples, the letters a formula
uses as functions, the tokens a note has introduced (pure text and SymPy atoms, no decisions)."""

from __future__ import annotations

import re
from typing import Any

from d2lkb.checks.exprs import applications, free, pretty, short
from d2lkb.checks.latex import GREEK, LatexError


def latex_tokens(latex: str) -> frozenset[str]:
    """The commands and letters a piece of LaTeX uses (what a note has introduced so far)."""
    return frozenset(re.findall(r"\\[A-Za-z]+|[A-Za-z]", latex))


def tuple_parts(src: str) -> list[str] | None:
    """``(a, b)`` / ``[a, b]`` written as a whole side -> its components; None otherwise."""
    from d2lkb.checks.notation import _bracket_end, _top_level_split

    text = re.sub(r"\\(left|right|big|Big|bigg|Bigg)(?![A-Za-z])", "", src).strip().rstrip(".,")
    if not text or text[0] not in "([":
        return None
    end = _bracket_end(text, 0)
    if end != len(text):
        return None
    parts, sep = _top_level_split(text[1:-1], (",",))
    if sep is None or len(parts) < 2 or any(not p.strip() for p in parts):
        return None
    return [p.strip() for p in parts]


def defined_name(left: Any, right: Any, rhs_src: str, lhs_src: str = "") -> str | None:
    """What the left side names, when it is a name the right side does not use; else None."""
    import sympy as sp
    from sympy.core.function import AppliedUndef

    expr = left.expr
    head: Any = None
    if isinstance(expr, (sp.Symbol, sp.MatrixSymbol)):
        head = expr
    elif isinstance(expr, sp.Pow) and isinstance(expr.base, sp.Symbol) and expr.exp.is_Integer:
        head = expr.base  # s^2 = ...
    elif isinstance(expr, (sp.Transpose,)) and isinstance(expr.arg, sp.MatrixSymbol):
        head = expr.arg
    elif isinstance(expr, AppliedUndef):
        # f(x), E[X], and also f(x + \epsilon) = g(x + \epsilon) + h(x + \epsilon): the function is what
        # the relation introduces, as long as the right side does not use it (the caller leaves out
        # functions the note already defined)
        head = expr.func
    elif isinstance(expr, sp.Derivative) and isinstance(expr.expr, AppliedUndef) and all(
        isinstance(a, sp.Symbol) for a in expr.expr.args
    ):
        head = expr.expr.func
    if head is None:
        return None
    if isinstance(right, LatexError):
        # the right side cannot be read: the left side names something if that name is absent there
        written = written_name(lhs_src, rhs_src) if lhs_src else None
        if written:
            return written
        name = head.__name__ if hasattr(head, "__name__") else str(head)
        if name.startswith("Zop") or re.search(
            r"(?<![A-Za-z\\])" + re.escape(name) + r"(?![A-Za-z])", re.sub(r"\s+", "", rhs_src)
        ):
            return None
        return short(pretty(expr))
    rexpr = right.expr
    if isinstance(expr, sp.Derivative):  # f'(x) = \lim ...: defines the derivative unless it occurs on the right
        used = any(d == expr for d in rexpr.atoms(sp.Derivative))
    elif hasattr(head, "__name__") and re.match(r"Zop[Pp](cond|$)", head.__name__):
        # P(A, B | C) = P(A | B, C) P(B | C): one probability, whatever is conditioned on what
        used = any(re.match(r"Zop" + head.__name__[3] + r"(cond|$)", str(a.func)) for a in applications(rexpr))
    elif hasattr(head, "__name__"):  # a function
        used = any(a.func == head for a in applications(rexpr)) or any(
            getattr(d.expr, "func", None) == head for d in rexpr.atoms(sp.Derivative)
        )
    else:
        used = head in free(rexpr)
    if used:
        return None
    return short(pretty(expr))


_NAME_HEAD = re.compile(
    r"(?P<head>\\(?:mathbf|boldsymbol|bm|hat|bar|tilde|widehat|widetilde|mathcal|mathrm|textrm|text|operatorname"
    r"|mathbb)\s*\{(?:[^{}]|\{[^{}]*\})*\}|\\[A-Za-z]+|[A-Za-z])"
    r"(?P<decor>(?:\s*(?:_\s*(?:\{(?:[^{}]|\{[^{}]*\})*\}|\\?[A-Za-z0-9]+)|\^\s*\{\s*\((?:[^{}])*\)\s*\}"
    r"|\^\s*\*|\^\s*\{\s*\*\s*\}|'))*)\s*"
)


def written_name(lhs_src: str, rhs_src: str) -> str | None:
    """A left side that the parser cannot read still names something when it is written as a name,
    optionally applied to arguments (``H(Y \\mid X)``, ``\\textrm{Proj}_X(\\mathbf{x})``), and that name
    does not occur on the right."""
    lhs = re.sub(r"\\(left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\[,;:! ]", " ", lhs_src).strip()
    element = re.fullmatch(r"\[\s*(.+?)\s*\]\s*_\s*(\{[^{}]*\}|\w)", lhs)
    if element:  # [\mathbf{H}]_{i, j}: an entry of a matrix, named by the matrix
        inner = element.group(1)
        if _NAME_HEAD.fullmatch(inner) and inner.replace(" ", "") not in rhs_src.replace(" ", ""):
            return short(lhs)
        return None
    m = _NAME_HEAD.match(lhs)
    if not m or m.group("head")[1:] in ("frac", "sum", "int", "prod", "lim", "partial", "nabla", "log", "exp"):
        return None
    rest = lhs[m.end() :]
    if rest:
        if rest[0] not in "([":
            return None
        close = {"(": ")", "[": "]"}[rest[0]]
        depth = 0
        for k, c in enumerate(rest):
            depth += c == rest[0]
            depth -= c == close
            if depth == 0:
                if rest[k + 1 :].strip():
                    return None
                break
        else:
            return None
    head = m.group("head")
    core = re.sub(r"\\(?:mathbf|boldsymbol|bm|hat|bar|tilde|widehat|widetilde|mathcal|mathrm|textrm|text|operatorname|mathbb)"
                  r"\s*\{", "{", head).strip("{} ")
    name = head + m.group("decor")
    pattern = re.escape(core) + r"(?![A-Za-z])"
    if not core.startswith("\\"):
        pattern = r"(?<![A-Za-z\\])" + pattern
    if rest and re.search(pattern + r"\s*(?:_\s*(?:\{[^{}]*\}|\S))?\s*[(\[]", rhs_src):
        return None  # the function is applied on the right too
    if not rest and re.search(re.escape(name.replace(" ", "")), rhs_src.replace(" ", "")):
        return None
    return short(lhs)


_DECORATIONS = frozenset(
    ["\\mathbf", "\\boldsymbol", "\\bm", "\\hat", "\\bar", "\\tilde", "\\widehat", "\\widetilde", "\\mathcal", "\\vec", "\\dot", "\\mathrm", "\\mathit", "\\overline"]
)


def base_token(name: str) -> str:
    """``\\hat{\\sigma}_i`` -> ``\\sigma``; ``x^{(k)}`` -> ``x``; ``sigma`` (SymPy's name) -> ``\\sigma``."""
    for token in re.findall(r"\\[A-Za-z]+|[A-Za-z]+", name):
        if token in _DECORATIONS:
            continue
        if not token.startswith("\\") and len(token) > 1:
            return "\\" + token if token in GREEK else token[0]
        return token
    return name


def notation_letters(latex: str) -> frozenset[str]:
    """Letters the formula writes as functions (``f(``, ``f'(``, ``\\frac{df}{dx}``, ``\\partial_x f``), and
    ``D`` written as an operator: a value symbol ``f_i`` or ``D_i`` next to them is notation for a
    derivative, not a variable."""
    bare = re.sub(r"\\[A-Za-z]+", " ", latex)
    letters = set(re.findall(r"(?<![A-Za-z\\])([A-Za-z])\s*'*\s*\(", bare))
    letters |= set(re.findall(
        r"\\[dt]?frac\s*\{\s*(?:d|\\partial)\s*(?:\^\s*\{?\s*\d+\s*\}?)?\s*([A-Za-z])\s*\}", latex))
    letters |= set(re.findall(r"\\partial\s*_\s*(?:\{[^{}]*\}|[A-Za-z0-9])\s*([A-Za-z])(?![A-Za-z])", latex))
    if re.search(r"(?<![A-Za-z\\])D\s*(?:_|[A-Za-z](?![A-Za-z]))", latex):
        letters.add("D")
    return frozenset(letters)
