"""Check formulas with SymPy: is each written equation true under its own meaning?

Statuses (``d2lkb.model.CheckStatus``), one per formula (an ``aligned`` row is a
formula of its own; a row that starts with ``=`` continues the row before, whose right
side is its left side):

- ``definition``: nothing to prove. The relation is written ``:=`` (``\\coloneqq``,
  ``\\triangleq``, ``\\stackrel{def}{=}``, ...), or its left side *names* something that
  its right side does not use: a symbol, however decorated (``y``, ``\\hat{y}_i``,
  ``\\mathbf{h}^{(1)}``, ``w^*``, ``s^2``), a function applied to variables (``f(x)``,
  ``L(\\mathbf{w}, b)``), a derivative of one, an expectation or probability
  (``E[X]``, ``P(A \\mid B)``), a norm or a gradient. Decided before the right side is
  parsed: a definition has nothing to prove, whatever its right side holds.
- ``verified``: both sides agree: structurally, at random points (6, seeded; undefined
  functions replaced by distinct smooth functions; bold symbols by random 3 x 3
  matrices and 3-vectors), or by ``simplify`` when numbers cannot decide.
- ``refuted``: a promise. Given only when the counterexample is valid under the
  formula's own meaning: no opaque operator (``E``, ``Var``, ``P``, norms: their rules
  are not modelled), no matrix (the note may mean special ones: symmetric, orthogonal),
  only generic function letters (``f``, ``g``, ``h``, ``u``, ``v``) that occur on both
  sides (the identity claims something for all functions), every variable on both
  sides unless the relation is a step of a derivation (``a = b = c``, ``&= ...``), and
  it fails in every domain tried (positive, in (0, 1), negative, large). The detail
  names the point and both values.
- ``context``: the sides differ for the stand-ins the checker chose, but the formula
  depends on something it cannot know: the detail names it (``F`` and ``f`` are related
  by the note's text; the properties of ``E[·]``; special matrices; the values where it
  holds).
- ``skipped``: not an identity: no ``=`` (an inequality, ``\\approx``, ``\\propto``), an
  asymptotic ``O(·)``, or an equation to solve or a condition (a variable on one side
  only, or one side a constant: ``A\\mathbf{v} = \\lambda \\mathbf{v}``, ``\\sum a_i = 0``).
- ``unparsed``: the reason (unbalanced braces, an unknown command, an ellipsis, ...).
- ``timeout``: no result within the time limit.

A formula's definitions earlier in its note, display or inline (``$g(x) = ax^2+bx+c$``),
are substituted into it (the latest one of each name), and the detail says so.

A ```sympy block is Python over SymPy, see ``d2lkb.checks.sympy_blocks``.

Parsing: ``d2lkb.checks.notation`` (ML notation as text) and ``d2lkb.checks.latex``
(normalisation), then SymPy 1.14's ANTLR LaTeX parser and ``d2lkb.checks.interpret``
(SymPy objects with their meaning). The ANTLR backend parsed 15 of 15 test formulas
where Lark parsed 6 (median 28 ms a formula; import 0.29 s once per worker).
Processes, time limits and retries: ``d2lkb.checks.pool``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from d2lkb.checks.clock import Alarm as _Alarm
from d2lkb.checks.clock import Clock as _Clock
from d2lkb.checks.interpret import DIM
from d2lkb.checks.latex import GREEK, LatexError, Relation, definition_shape, function_letters, split_formula
from d2lkb.model import CheckStatus


@dataclass(frozen=True)
class FormulaResult:
    status: CheckStatus
    detail: str
    method: str = ""  # "symbolic", "numeric", "definition", "sympy" (a block), "" otherwise
    names: tuple[str, ...] = ()  # labels written on the formula's rows (`\textrm{Product rule}`)
    seconds: float = 0.0


# Set by the worker process when SymPy's LaTeX parser cannot be loaded.
PARSER_PROBLEM: str | None = None

GENERIC_FUNCTIONS = frozenset("fghuv")


def check_latex(source: str | Mapping[str, Any], clock: _Clock, seed: int) -> FormulaResult:
    """Check one LaTeX formula inside a worker process (see the module docstring).

    ``source`` is the LaTeX, or a mapping with ``latex``, ``rows_before`` (the rows of
    its ``aligned`` block before it: the formula is the last row) and ``context``
    (``(line, latex)`` of the note's earlier formulas that may define its names).
    """
    if isinstance(source, str):
        return _check_latex(source, clock, seed, before=(), context=())
    return _check_latex(
        source["latex"], clock, seed, before=tuple(source.get("rows_before", ())),
        after=tuple(source.get("rows_after", ())),
        context=tuple(tuple(c) for c in source.get("context", ())),
        known=frozenset(source.get("known", ())),
    )


# -- LaTeX formulas -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    status: CheckStatus
    detail: str
    method: str = ""


_ORDER = {
    CheckStatus.REFUTED: 0,
    CheckStatus.UNPARSED: 1,
    CheckStatus.CONTEXT: 2,
    CheckStatus.VERIFIED: 3,
    CheckStatus.DEFINITION: 4,
    CheckStatus.SKIPPED: 5,
}


def _check_latex(
    latex: str, clock: _Clock, seed: int, *, before: tuple[str, ...], context: tuple[tuple[Any, ...], ...],
    known: frozenset[str] = frozenset(),
    after: tuple[str, ...] = (),
) -> FormulaResult:
    focus: int | None = None
    text = latex
    if before or after:
        text = " \\\\ ".join([*before, latex, *after])
        focus = len(before) + 1
    try:
        relations = split_formula(text)
    except LatexError as exc:
        return FormulaResult(CheckStatus.UNPARSED, str(exc))
    if focus is not None:
        try:
            own = split_formula(latex)
        except LatexError:
            own = ()
        names = tuple(r.label for r in own if r.label)
    else:
        names = tuple(r.label for r in relations if r.label)
    functions = function_letters(" ".join(side for r in relations for side in r.sides))
    # a block that starts by relating f to other things (f(x+\epsilon) = g(h(x+\epsilon))) describes f
    # itself: an earlier definition of f in the note is not this one
    described = frozenset(re.findall(r"(?<![A-Za-z\\])([A-Za-z])\s*\(", relations[0].sides[0])) if relations else frozenset()
    env = _Context(context, functions, notation_letters(text), described)
    cache: dict[str, Any] = {}
    outcomes: list[tuple[str, _Outcome]] = []
    several = len(relations) > 1 and focus is None
    in_focus = False
    for relation in relations:
        for k, link in enumerate(relation.links):
            row = relation.link_rows[k] if k < len(relation.link_rows) else relation.row
            if focus is not None and row != focus:
                continue
            in_focus = True
            lhs, rhs = relation.sides[k], relation.sides[k + 1]
            where = relation.label or (f"row {relation.row}" if several else "")
            if len(relation.links) > 1 and focus is None:
                pair = f"{_short(lhs)} {link} {_short(rhs)}"
                where = f"{where}, {pair}" if where else pair
            clock.stage = f"checking {where}" if where else "checking"
            rng = random.Random(f"{seed}:{lhs}:{rhs}")
            step = k > 0
            seen = known | latex_tokens(" ".join(relation.sides[:k]))
            outcomes.append((where, _check_pair(lhs, rhs, link, step, env, cache, clock, rng, seen)))
    if focus is not None and not in_focus:
        # `&\quad + c`: this row continues the right side of a relation above; it shares that step's status
        for relation in reversed(relations):
            rows = [r for r in relation.link_rows if r < focus]
            if not rows or relation.row > focus:
                continue
            k = len(rows) - 1
            if k + 1 >= len(relation.sides):
                continue
            rng = random.Random(f"{seed}:{relation.sides[k]}:{relation.sides[k + 1]}")
            seen = known | latex_tokens(" ".join(relation.sides[:k]))
            outcome = _check_pair(relation.sides[k], relation.sides[k + 1], relation.links[k], k > 0, env, cache,
                                  clock, rng, seen)
            outcomes.append((f"continues row {rows[-1]}", outcome))
            break
        if not outcomes:
            return FormulaResult(CheckStatus.SKIPPED, "continues the expression of the row before", names=names)
        return _combine(outcomes, names, ())
    if not outcomes:
        return FormulaResult(CheckStatus.SKIPPED, "not an equation", names=names)
    if focus is not None:
        # conditions written on other rows of the block are theirs
        relations = tuple(r for r in relations if focus in r.link_rows)
    return _combine(outcomes, names, relations)


def _short(latex: str, limit: int = 40) -> str:
    text = " ".join(latex.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _combine(
    outcomes: list[tuple[str, _Outcome]], names: tuple[str, ...], relations: Iterable[Relation]
) -> FormulaResult:
    status = min((o.status for _, o in outcomes), key=lambda s: _ORDER.get(s, 9))
    if status == CheckStatus.SKIPPED and all(o.detail.startswith("not an equation") for _, o in outcomes):
        return FormulaResult(status, "not an equation", names=names)
    shown = [(w, o) for w, o in outcomes if o.status != CheckStatus.SKIPPED] or outcomes
    if len(shown) == 1:
        detail = shown[0][1].detail
    else:
        detail = "; ".join(f"{w}: {o.status.value} ({o.detail})" if w else f"{o.status.value} ({o.detail})"
                           for w, o in shown)
    conditions = [c for r in relations for c in r.conditions]
    if conditions and status in (CheckStatus.VERIFIED, CheckStatus.REFUTED, CheckStatus.CONTEXT):
        detail += "; not checked: " + "; ".join(conditions)
    methods = {o.method for _, o in outcomes if o.status == status}
    if status == CheckStatus.VERIFIED:
        method = "numeric" if "numeric" in methods else "symbolic"
    elif status == CheckStatus.REFUTED:
        method = "numeric"
    elif status == CheckStatus.DEFINITION:
        method = "definition"
    else:
        method = ""
    return FormulaResult(status, detail, method=method, names=names)


# -- one relation --------------------------------------------------------------------------------


def latex_tokens(latex: str) -> frozenset[str]:
    """The commands and letters a piece of LaTeX uses (what a note has introduced so far)."""
    return frozenset(re.findall(r"\\[A-Za-z]+|[A-Za-z]", latex))


def _check_pair(
    lhs_src: str, rhs_src: str, link: str, step: bool, env: _Context, cache: dict[str, Any], clock: _Clock,
    rng: random.Random, seen: frozenset[str] = frozenset(),
) -> _Outcome:
    if link not in ("=", ":="):
        return _Outcome(CheckStatus.SKIPPED, f"not an equation ({link})")
    if link == ":=":
        return _Outcome(
            CheckStatus.DEFINITION, f"defines {_short(lhs_src)} (written as a definition)", "definition"
        )
    if not step:
        shape = definition_shape(lhs_src)
        if shape is not None:
            return _Outcome(CheckStatus.DEFINITION, f"defines the {shape} {_short(lhs_src)}", "definition")
    left_parts, right_parts = _tuple_parts(lhs_src), _tuple_parts(rhs_src)
    if left_parts and right_parts and len(left_parts) == len(right_parts):
        # (a, b) = (c, d), [a - r, a + r] = [0.7, 1.3]: one relation per component
        parts = [
            _check_pair(a, b, link, step, env, cache, clock, rng, seen)
            for a, b in zip(left_parts, right_parts, strict=True)
        ]
        worst = min(parts, key=lambda o: _ORDER.get(o.status, 9))
        detail = "; ".join(f"component {k + 1}: {o.status.value} ({o.detail})" for k, o in enumerate(parts))
        return _Outcome(worst.status, detail, worst.method)
    sides = []
    for src in (lhs_src, rhs_src):
        if src not in cache:
            try:
                cache[src] = env.parse(src)
            except LatexError as exc:
                cache[src] = exc
        sides.append(cache[src])
    left, right = sides
    if not step:
        if isinstance(left, LatexError):
            defined = _written_name(lhs_src, rhs_src)
        elif env.defines_derivative(left.expr):
            defined = None  # g'(x) = ... after the note defined g: a claim about g to check
        else:
            defined = _defined_name(left, right, rhs_src, lhs_src)
        if defined:
            return _Outcome(CheckStatus.DEFINITION, f"defines {_short(lhs_src.strip())}", "definition")
    for which, side, src in (("left", left, lhs_src), ("right", right, rhs_src)):
        if isinstance(side, LatexError):
            if "asymptotic" in str(side):
                return _Outcome(CheckStatus.SKIPPED, f"asymptotic: {side}")
            return _Outcome(CheckStatus.UNPARSED, f"{which} side {_short(src)!r}: {side}")
    return _Decision(left, right, step, env, clock, rng, seen).decide()


def _tuple_parts(src: str) -> list[str] | None:
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


def _defined_name(left: Any, right: Any, rhs_src: str, lhs_src: str = "") -> str | None:
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
        if all(isinstance(a, sp.Symbol) or a.is_number or _opaque_symbol(a) for a in expr.args) or \
                expr.func.__name__.startswith("Zop"):
            head = expr.func
    elif isinstance(expr, sp.Derivative) and isinstance(expr.expr, AppliedUndef) and all(
        isinstance(a, sp.Symbol) for a in expr.expr.args
    ):
        head = expr.expr.func
    if head is None:
        return None
    if isinstance(right, LatexError):
        # the right side cannot be read: the left side names something if that name is absent there
        written = _written_name(lhs_src, rhs_src) if lhs_src else None
        if written:
            return written
        name = head.__name__ if hasattr(head, "__name__") else str(head)
        if name.startswith("Zop") or re.search(
            r"(?<![A-Za-z\\])" + re.escape(name) + r"(?![A-Za-z])", re.sub(r"\s+", "", rhs_src)
        ):
            return None
        return _short(_pretty(expr))
    rexpr = right.expr
    if isinstance(expr, sp.Derivative):  # f'(x) = \lim ...: defines the derivative unless it occurs on the right
        used = any(d == expr for d in rexpr.atoms(sp.Derivative))
    elif hasattr(head, "__name__") and re.match(r"Zop[Pp](cond|$)", head.__name__):
        # P(A, B | C) = P(A | B, C) P(B | C): one probability, whatever is conditioned on what
        used = any(re.match(r"Zop" + head.__name__[3] + r"(cond|$)", str(a.func)) for a in _applied(rexpr))
    elif hasattr(head, "__name__"):  # a function
        used = any(a.func == head for a in _applied(rexpr)) or any(
            getattr(d.expr, "func", None) == head for d in rexpr.atoms(sp.Derivative)
        )
    else:
        used = head in _free(rexpr)
    if used:
        return None
    return _short(_pretty(expr))


_NAME_HEAD = re.compile(
    r"(?P<head>\\(?:mathbf|boldsymbol|bm|hat|bar|tilde|widehat|widetilde|mathcal|mathrm|textrm|text|operatorname"
    r"|mathbb)\s*\{(?:[^{}]|\{[^{}]*\})*\}|\\[A-Za-z]+|[A-Za-z])"
    r"(?P<decor>(?:\s*(?:_\s*(?:\{(?:[^{}]|\{[^{}]*\})*\}|\\?[A-Za-z0-9]+)|\^\s*\{\s*\((?:[^{}])*\)\s*\}"
    r"|\^\s*\*|\^\s*\{\s*\*\s*\}|'))*)\s*"
)


def _written_name(lhs_src: str, rhs_src: str) -> str | None:
    """A left side that the parser cannot read still names something when it is written as a name,
    optionally applied to arguments (``H(Y \\mid X)``, ``\\textrm{Proj}_X(\\mathbf{x})``), and that name
    does not occur on the right."""
    lhs = re.sub(r"\\(left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\[,;:! ]", " ", lhs_src).strip()
    element = re.fullmatch(r"\[\s*(.+?)\s*\]\s*_\s*(\{[^{}]*\}|\w)", lhs)
    if element:  # [\mathbf{H}]_{i, j}: an entry of a matrix, named by the matrix
        inner = element.group(1)
        if _NAME_HEAD.fullmatch(inner) and inner.replace(" ", "") not in rhs_src.replace(" ", ""):
            return _short(lhs)
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
    return _short(lhs)


def _bound(expr: Any, symbol: Any) -> bool:
    """Is ``symbol`` a variable of differentiation, integration or summation in ``expr``?"""
    import sympy as sp

    for e in expr.atoms(sp.Derivative, sp.Integral, sp.Sum, sp.Product, sp.Limit):
        if symbol in getattr(e, "variables", ()) or symbol in getattr(e, "bound_symbols", ()):
            return True
    return False


_DECORATIONS = frozenset(
    ["\\mathbf", "\\boldsymbol", "\\bm", "\\hat", "\\bar", "\\tilde", "\\widehat", "\\widetilde", "\\mathcal", "\\vec", "\\dot", "\\mathrm", "\\mathit", "\\overline"]
)


def _base_token(name: str) -> str:
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


def _opaque_symbol(a: Any) -> bool:
    return str(a).startswith("[")


def _pretty(expr: Any) -> str:
    return re.sub(r"Zop([A-Z][a-z]*)[a-z]*", r"\1", str(expr))


def _applied(expr: Any) -> set[Any]:
    from sympy.core.function import AppliedUndef

    return set(expr.atoms(AppliedUndef)) if hasattr(expr, "atoms") else set()


def _free(expr: Any) -> set[Any]:
    return set(getattr(expr, "free_symbols", set()))


_PARSED: dict[tuple[str, frozenset[str]], Any] = {}


def _parse_cached(src: str, functions: frozenset[str]) -> Any:
    """``interpret.parse_side``, remembered in this worker: the rows of an ``aligned`` block and the
    note's definitions come back with every row after them. Failures are remembered too."""
    from d2lkb.checks.interpret import parse_side

    key = (src, functions)
    if key not in _PARSED:
        if len(_PARSED) > 5000:
            _PARSED.clear()
        try:
            _PARSED[key] = parse_side(src, functions)
        except LatexError as exc:
            _PARSED[key] = exc
    value = _PARSED[key]
    if isinstance(value, LatexError):
        raise value
    return value


class _Context:
    """The note's earlier definitions, parsed on first use, and the parse of sides with them."""

    def __init__(
        self,
        items: tuple[tuple[Any, ...], ...],
        functions: frozenset[str],
        notation: frozenset[str] = frozenset(),
        described: frozenset[str] = frozenset(),
    ) -> None:
        self.items = items
        self.functions = functions
        self.notation = notation
        self.described = described
        self._defs: dict[Any, tuple[Any, str]] | None = None

    def parse(self, src: str) -> Any:
        return _parse_cached(src, self.functions)

    def definitions(self) -> dict[Any, tuple[Any, str]]:
        """{symbol or function: (value or Lambda, description)} from the note's earlier formulas."""
        if self._defs is not None:
            return self._defs
        import sympy as sp
        from sympy.core.function import AppliedUndef

        defs: dict[Any, tuple[Any, str]] = {}
        for item in self.items:
            line, latex = item[0], item[1]
            try:
                relations = split_formula(latex)
            except LatexError:
                continue
            for relation in relations:
                if not relation.links or relation.links[0] not in ("=", ":="):
                    continue
                lhs, rhs = relation.sides[0], relation.sides[1]
                try:
                    functions = function_letters(f"{lhs} {rhs}")
                    left, right = _parse_cached(lhs, functions), _parse_cached(rhs, functions)
                except LatexError:
                    continue
                except _Alarm:
                    raise
                except Exception:  # noqa: BLE001 - a context formula that SymPy chokes on is no context
                    continue
                if left.matrices or right.matrices or left.opaque or right.opaque:
                    continue
                expr = left.expr
                where = f"{_short(lhs)} = {_short(rhs)} (line {line})"
                if isinstance(expr, sp.Symbol) and expr not in right.expr.free_symbols:
                    if right.expr.is_number:
                        continue  # `x = 2` in an example says nothing about x later on
                    defs[expr] = (right.expr, where)
                elif (isinstance(expr, AppliedUndef) and str(expr.func) not in self.described
                      and all(isinstance(a, sp.Symbol) for a in expr.args)
                      and len(set(expr.args)) == len(expr.args) and not any(
                          a.func == expr.func for a in _applied(right.expr))):
                    defs[expr.func] = (sp.Lambda(expr.args, right.expr), where)
        self._defs = defs
        return defs

    def defines_derivative(self, expr: Any) -> bool:
        """Is ``expr`` the derivative of a function the note defined earlier?"""
        import sympy as sp

        if not self.items or not isinstance(expr, sp.Derivative):
            return False
        return getattr(expr.expr, "func", None) in self.definitions()

    def substitute(self, expr: Any) -> tuple[Any, list[str]]:
        """``expr`` with the note's definitions of the names it uses put in (repeatedly, a few levels)."""
        defs = self.definitions() if self.items else {}
        used: list[str] = []
        original = expr
        try:
            for _ in range(3):
                changed = False
                for key, (value, where) in defs.items():
                    if hasattr(key, "__name__"):
                        nargs = len(value.variables)
                        if any(a.func == key and len(a.args) == nargs for a in _applied(expr)):
                            expr = expr.replace(
                                lambda e, key=key, nargs=nargs: getattr(e, "func", None) == key
                                and len(e.args) == nargs,
                                lambda e, value=value: value(*e.args),
                            )
                            used.append(where)
                            changed = True
                    elif key in _free(expr) and not _bound(expr, key):
                        expr = expr.xreplace({key: value})
                        used.append(where)
                        changed = True
                if not changed:
                    break
        except _Alarm:
            raise
        except Exception:  # noqa: BLE001 - a definition that does not fit is not used
            return original, []
        return expr, list(dict.fromkeys(used))


# -- deciding ------------------------------------------------------------------------------------

_POINTS = 6
_CONCRETE = {"f": "sin(t) + 2", "g": "exp(t/3) + t**2 + 1", "h": "cos(2*t)/2 + t + 3"}
_MORE_CONCRETE = (
    "log(t**2 + 1) + t/3 + 2",
    "atan(t) + t**2/4 + 3/2",
    "sqrt(t**2 + 1) + sin(3*t)/3",
    "cosh(t/2) + t/5",
    "t**3/10 + exp(-t**2) + 1",
)
# Where the variables are sampled: a refutation must fail in every one of them.
_DOMAINS: tuple[tuple[str, Callable[[random.Random], float]], ...] = (
    ("positive values", lambda r: r.uniform(0.5, 2.5)),
    ("values in (0, 1)", lambda r: r.uniform(0.05, 0.95)),
    ("negative values", lambda r: -r.uniform(0.5, 2.5)),
    ("values from 3 to 10", lambda r: r.uniform(3.0, 10.0)),
)


class _Decision:
    def __init__(
        self, left: Any, right: Any, step: bool, env: _Context, clock: _Clock, rng: random.Random,
        seen: frozenset[str] = frozenset(),
    ):
        self.seen = seen
        self.left, self.right = left, right
        self.step = step
        self.env = env
        self.clock = clock
        self.rng = rng

    def decide(self) -> _Outcome:
        import sympy as sp

        lhs, used_l = self.env.substitute(self.left.expr)
        rhs, used_r = self.env.substitute(self.right.expr)
        used = list(dict.fromkeys(used_l + used_r))
        self.note = f" (using the note's {'; '.join(used)})" if used else ""
        if used and self.env.defines_derivative(self.left.expr):
            # a claim about a function the note defined (g'(x) = ... after g(x) = ...): like a step of a
            # derivation, a variable its definition brings in (b in ax^2 + bx + c) may not vanish
            self.step = True
            brought = (_free(lhs) | _free(rhs)) - _free(self.left.expr) - _free(self.right.expr)
            self.seen = self.seen | {_base_token(str(v)) for v in brought}
        matrices = self.left.matrices or self.right.matrices
        if lhs == rhs:
            return _Outcome(CheckStatus.VERIFIED, "symbolic: both sides are the same" + self.note, "symbolic")
        if matrices:
            return self._matrices(lhs, rhs)
        try:
            with self.clock.limit(0.15 * self.clock.timeout):
                if not (lhs.has(sp.Integral, sp.Sum, sp.Product, sp.Limit)) and sp.expand(
                    _derivatives(lhs) - _derivatives(rhs)
                ) == 0:
                    return _Outcome(CheckStatus.VERIFIED, "symbolic: expand(lhs - rhs) == 0" + self.note, "symbolic")
        except _Alarm:
            if self.clock.expired():
                raise
        except Exception:  # noqa: BLE001, S110 - expansion failing decides nothing
            pass
        self.clock.stage += ": numeric evaluation"
        opaque = self.left.opaque | self.right.opaque
        if opaque and (lhs.has(sp.Integral, sp.Limit) or rhs.has(sp.Integral, sp.Limit)):
            # an integral of an opaque operator: numbers would only time out, and could not refute
            linear = _by_expectation_rules(lhs, rhs) if opaque <= {"E[·]", "Var", "Cov"} else None
            return linear or _Outcome(
                CheckStatus.CONTEXT,
                f"depends on the rules of {', '.join(sorted(opaque))}, which the checker does not model",
            )
        numeric = _Numbers(lhs, rhs, self.rng)
        agreed, disagreement = numeric.run(_DOMAINS[0])
        if disagreement is None and agreed >= numeric.points:
            symbolic = self._symbolic(lhs, rhs, share=0.2)
            if symbolic is not None:
                return symbolic
            detail = f"numeric at {agreed} random points{numeric.with_functions}" + self.note
            if numeric.symbols and not numeric.integers >= set(numeric.symbols):
                _, negative = numeric.run(_DOMAINS[2])
                if negative is not None:
                    detail += f"; holds for positive values only: {negative}"
            return _Outcome(CheckStatus.VERIFIED, detail, "numeric")
        if disagreement is None:
            symbolic = self._symbolic(lhs, rhs)
            if symbolic is not None:
                return symbolic
            return _Outcome(
                CheckStatus.UNPARSED,
                "could not decide: the sides could not be evaluated at random points and simplify did not reach 0",
            )
        return self._refute(lhs, rhs, numeric, disagreement)

    def _symbolic(self, lhs: Any, rhs: Any, share: float = 0.5) -> _Outcome | None:
        import sympy as sp

        try:
            with self.clock.limit(share * max(self.clock.remaining(), 0.0)):
                if sp.simplify((lhs - rhs).doit()) == 0:
                    return _Outcome(CheckStatus.VERIFIED, "symbolic: simplify(lhs - rhs) == 0" + self.note, "symbolic")
        except _Alarm:
            if self.clock.expired():
                raise
        except Exception:  # noqa: BLE001, S110 - simplification failing is not an answer
            pass
        return None

    def _refute(self, lhs: Any, rhs: Any, numeric: _Numbers, disagreement: str) -> _Outcome:
        """The sides differ at a point: refute only if that point is valid under the formula's meaning."""
        from d2lkb.checks.interpret import readable_operator  # noqa: F401 - names come readable already

        opaque = sorted(self.left.opaque | self.right.opaque)
        if opaque and set(opaque) <= {"E[·]", "Var", "Cov"}:
            linear = _by_expectation_rules(lhs, rhs)
            if linear is not None:
                return linear
        if opaque and set(opaque) <= {"P(·)", "p(·)"}:
            product = _by_probability_rules(lhs, rhs)
            if product is not None:
                return product
        if opaque:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"depends on the rules of {', '.join(opaque)}, which the checker does not model "
                f"(with arbitrary functions in their place: {disagreement})",
            )
        lf, rf = {a.func for a in _applied(lhs)}, {a.func for a in _applied(rhs)}
        values = {str(v) for v in _free(lhs) | _free(rhs)}
        both = sorted(str(f) for f in lf | rf if str(f) in values)
        if both:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"{', '.join(both)} is written both as a function and as a value: notation the checker cannot "
                "read (a convolution, an operator?)",
            )
        statistics = sorted(
            str(v) for v in _free(self.left.expr) | _free(self.right.expr)
            if re.search(r"_\{?[^}]*[A-Z]", str(v)) and _base_token(str(v)).lstrip("\\") in GREEK
        )
        if statistics:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"{', '.join(statistics)}: a quantity of a named variable or set (its mean, deviation, ...), "
                "whose rules the checker does not model",
            )
        notation = sorted(
            str(v) for v in _free(self.left.expr) | _free(self.right.expr)
            if isinstance(v, __import__("sympy").Symbol) and _base_token(str(v)) in self.env.notation
        )
        if notation:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"{', '.join(notation)}: its letter is written as a function elsewhere in the formula, so here it "
                "is notation (a derivative? an operator?) the checker cannot read",
            )
        specific = sorted(
            str(f) for f in lf | rf
            if str(f) not in GENERIC_FUNCTIONS or f not in lf or f not in rf
        )
        if specific:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"depends on what {', '.join(specific)} {'is' if len(specific) == 1 else 'are'}: "
                "the note does not define it as a formula before this one",
            )
        solve = self._equation_to_solve(lhs, rhs)
        if solve is not None:
            return solve
        for domain in _DOMAINS[1:]:
            self.clock.stage = self.clock.stage.split(":")[0] + f": {domain[0]}"
            agreed, other = numeric.run(domain)
            if other is None and agreed >= max(numeric.points // 2, 2):
                return _Outcome(
                    CheckStatus.CONTEXT,
                    f"holds for {domain[0]} but not for every value ({disagreement}): "
                    "the note must say where its variables live",
                )
        return _Outcome(CheckStatus.REFUTED, disagreement + numeric.with_functions + self.note, "numeric")

    def _equation_to_solve(self, lhs: Any, rhs: Any) -> _Outcome | None:
        """A relation with a variable on one side only, or a constant side, states a condition, asks
        for a solution or puts in values; it is no identity to refute. In a step of a derivation
        (``a = b = c``) a variable the note has used before may come or go (a step that drops a
        factor is wrong), but one that appears for the first time may be a "for some ξ"."""
        lv, rv = _free(lhs), _free(rhs)
        one_sided = sorted(str(s) for s in (lv ^ rv) if not str(s).startswith("N_"))
        if not one_sided and lv and rv:
            return None
        if not lv or not rv:
            what = "one side is a constant"
            if self.step:
                return _Outcome(CheckStatus.SKIPPED, f"puts in particular values ({what}), not an identity")
        else:
            what = f"{', '.join(one_sided)} on one side only"
            if self.step:
                new = [name for name in one_sided if _base_token(name) not in self.seen]
                if not new:
                    return None
                return _Outcome(
                    CheckStatus.CONTEXT,
                    f"{', '.join(new)} appears here for the first time, on one side only: "
                    "the text must say what it is (for some value?)",
                )
        return _Outcome(CheckStatus.SKIPPED, f"an equation to solve or a condition ({what}), not an identity")

    def _matrices(self, lhs: Any, rhs: Any) -> _Outcome:
        numeric = _MatrixNumbers(lhs, self.rng, rhs)
        agreed, disagreement = numeric.run()
        if disagreement is None and agreed >= 3:
            return _Outcome(CheckStatus.VERIFIED, f"numeric with {agreed} sets of random matrices" + self.note,
                            "numeric")
        if disagreement is None:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"the shapes of its vectors and matrices are not written: with {DIM} x {DIM} matrices and "
                f"{DIM}-vectors the sides cannot be evaluated (components such as u_i are not linked to u)",
            )
        solve = self._equation_to_solve(lhs, rhs)
        if solve is not None:
            return solve
        return _Outcome(
            CheckStatus.CONTEXT,
            f"does not hold for general matrices ({disagreement}); it may for the special ones the note means "
            "(symmetric, orthogonal, ...), which the checker cannot know",
        )


def _by_expectation_rules(lhs: Any, rhs: Any) -> _Outcome | None:
    """Verified when the sides agree once ``E`` is linear (what holds no random variable comes out),
    ``Var(X) = E[(X - E[X])^2]`` and ``Cov(X, Y) = E[(X - E[X])(Y - E[Y])]``. Random variables are
    the capital letters, as the book writes them; everything else, and every ``E[...]``, is a constant.
    None when they do not agree that way: no rule of probability is claimed to fail."""
    import sympy as sp

    def random(term: Any) -> bool:
        outside = term.xreplace({a: sp.Dummy() for a in _applied(term) if str(a.func).startswith("Zop")})
        return any(re.fullmatch(r"[A-Z](?:_.*)?", str(v)) for v in _free(outside))

    def expectation(func: Any, arg: Any) -> Any:
        out = sp.Integer(0)
        for term in sp.Add.make_args(sp.expand(arg)):
            constant, rest = sp.Integer(1), sp.Integer(1)
            for factor in sp.Mul.make_args(term):
                if random(factor):
                    rest *= factor
                else:
                    constant *= factor
            out += constant * (func(rest) if rest != 1 else 1)
        return out

    def rewrite(expr: Any) -> Any:
        for _ in range(5):
            applied = sorted(
                (a for a in _applied(expr) if str(a.func).startswith(("ZopE", "ZopVar", "ZopCov"))),
                key=lambda a: len(str(a)),
            )
            if not applied:
                return sp.expand(expr)
            a = applied[0]
            name = str(a.func)
            e_func = sp.Function("ZopE" + name[len("ZopVar"):] if name.startswith("ZopVar") else
                                 "ZopE" + name[len("ZopCov"):] if name.startswith("ZopCov") else name)
            if name.startswith("ZopVar") and len(a.args) == 1:
                (x,) = a.args
                value = expectation(e_func, (x - expectation(e_func, x)) ** 2)
            elif name.startswith("ZopCov") and len(a.args) == 2:
                x, y = a.args
                value = expectation(e_func, (x - expectation(e_func, x)) * (y - expectation(e_func, y)))
            elif name.startswith("ZopE") and len(a.args) == 1:
                value = expectation(e_func, a.args[0])
                if value == a:
                    # already E of one random monomial: mark it done
                    value = sp.Symbol(f"<{a}>")
            else:
                return None
            expr = expr.xreplace({a: value})
        return None

    try:
        left, right = rewrite(lhs), rewrite(rhs)
        if left is None or right is None or sp.expand(left - right) != 0:
            return None
    except _Alarm:
        raise
    except Exception:  # noqa: BLE001 - rules that do not apply decide nothing
        return None
    return _Outcome(CheckStatus.VERIFIED, "symbolic: with E linear and Var, Cov by their definitions", "symbolic")


def _by_probability_rules(lhs: Any, rhs: Any) -> _Outcome | None:
    """Verified when the sides agree once every conditional is a joint over a marginal,
    ``P(A | B) = P(A, B) / P(B)``, and a joint does not depend on the order of its variables
    (Bayes' rule, the chain rule). None otherwise: independence or a sum over values is not assumed,
    and nothing is refuted by these rules."""
    import sympy as sp

    def rewrite(expr: Any) -> Any:
        mapping = {}
        for a in _applied(expr):
            name = str(a.func)
            m = re.fullmatch(r"Zop([Pp])(cond([a-z]))?", name)
            if m is None:
                if name.startswith("Zop"):
                    return None  # P(X = x), a subscripted P: not modelled
                continue
            letter = m.group(1)

            def joint(args: Any, letter: str = letter) -> Any:
                return sp.Symbol(f"{letter}[{', '.join(sorted(str(x) for x in args))}]")

            if m.group(2):
                k = ord(m.group(3)) - ord("a")
                left, right = a.args[:k], a.args[k:]
                if not left or not right:
                    return None
                mapping[a] = joint(left + right) / joint(right)
            else:
                mapping[a] = joint(a.args)
        return expr.xreplace(mapping)

    try:
        left, right = rewrite(lhs), rewrite(rhs)
        if left is None or right is None or sp.simplify(left - right) != 0:
            return None
    except _Alarm:
        raise
    except Exception:  # noqa: BLE001 - rules that do not apply decide nothing
        return None
    return _Outcome(
        CheckStatus.VERIFIED, "symbolic: with P(A | B) = P(A, B) / P(B) and joints in any order", "symbolic"
    )


def _concrete_functions(exprs: Iterable[Any]) -> dict[Any, tuple[str, Any]]:
    """Undefined function -> (its description, a Lambda of a smooth concrete function)."""
    import sympy as sp

    t = sp.Symbol("t")
    funcs: dict[str, Any] = {}
    for e in exprs:
        for applied in _applied(e):
            funcs.setdefault(applied.func.__name__, applied.func)
    spare = iter(_MORE_CONCRETE)
    out: dict[Any, tuple[str, Any]] = {}
    for name in sorted(funcs, key=lambda n: (n not in _CONCRETE, n)):
        func = funcs[name]
        body = sp.sympify(_CONCRETE.get(name) or next(spare, "sin(t)**2 + t/7 + 1"), locals={"t": t})
        nargs = max((len(a.args) for e in exprs for a in _applied(e) if a.func == func), default=1)
        args = sp.symbols(f"a0:{nargs}")
        combined = sum((k + 1) * a for k, a in enumerate(args))
        extra = sum(a**2 / (k + 2) for k, a in enumerate(args[1:], start=1))
        shown = _pretty(name)
        if nargs == 1:
            description = f"{shown}(t) = {body}"
        else:
            description = f"{shown}({', '.join(map(str, args))}) = {body.subs(t, combined) + extra}"
        out[func] = (description, _ByArity(body, t))
    return out


class _ByArity:
    """A concrete function for every number of arguments it is applied with."""

    def __init__(self, body: Any, t: Any) -> None:
        self.body, self.t = body, t

    def __call__(self, *args: Any) -> Any:
        combined = sum((k + 1) * a for k, a in enumerate(args))
        extra = sum(a**2 / (k + 2) for k, a in enumerate(args[1:], start=1))
        return self.body.subs(self.t, combined) + extra


class _Numbers:
    """Both sides at random points of a domain, undefined functions replaced by concrete ones."""

    def __init__(self, lhs: Any, rhs: Any, rng: random.Random) -> None:
        import sympy as sp

        concrete = _concrete_functions([lhs, rhs])
        left, right = lhs, rhs
        for func, (_, body) in concrete.items():
            # replace(), not subs(): Sum._eval_subs fails on a function class (SymPy 1.14)
            def match(e: Any, func: Any = func) -> bool:
                return getattr(e, "func", None) == func and bool(e.args)

            def put(e: Any, body: Any = body) -> Any:
                return body(*e.args)

            left, right = left.replace(match, put), right.replace(match, put)
        # derivatives are cheap symbolically and needed before numbers go in; integrals are not
        self.left = _derivatives(left)
        self.right = _derivatives(right)
        self.integers = _summation_bounds(lhs) | _summation_bounds(rhs)
        self.integers |= {s for s in _free(lhs) | _free(rhs) if getattr(s, "is_integer", False)}
        self.symbols = sorted(_free(self.left) | _free(self.right), key=lambda s: s.name)
        self.with_functions = ""
        if concrete:
            self.with_functions = " (with " + ", ".join(d for d, _ in concrete.values()) + ")"
        self.rng = rng
        self._sp = sp
        heavy = any(e.has(sp.Integral, sp.Limit) for e in (self.left, self.right))
        self.points = _POINTS // 2 if heavy else _POINTS  # a quadrature or a limit per point is dear

    def point(self, draw: Callable[[random.Random], float]) -> dict[Any, Any]:
        sp = self._sp
        values = {}
        for s in self.symbols:
            if s in self.integers:
                values[s] = sp.Integer(self.rng.randint(1, 6))
            else:
                values[s] = sp.Float(str(round(draw(self.rng), 3)), 30)
        return values

    def run(self, domain: tuple[str, Callable[[random.Random], float]]) -> tuple[int, str | None]:
        """(points where both sides agree, description of a disagreement or None)."""
        agreed = tried = 0
        while agreed < self.points and tried < 4 * self.points:
            tried += 1
            values = self.point(domain[1])
            lv, rv = _value(self.left, values, 15), _value(self.right, values, 15)
            if lv is None or rv is None:
                continue
            if not _close(lv, rv):
                lv, rv = _value(self.left, values, 30), _value(self.right, values, 30)
                if lv is not None and rv is not None and not _close(lv, rv):
                    return agreed, f"at {_describe_point(values)}: left = {_fmt(lv)}, right = {_fmt(rv)}"
            agreed += 1
            if not self.symbols:
                return self.points, None
        return agreed, None


class _MatrixNumbers:
    """Both sides with random matrices and vectors (and random scalars)."""

    def __init__(self, lhs: Any, rng: random.Random, rhs: Any) -> None:
        self.lhs, self.rhs, self.rng = lhs, rhs, rng

    def run(self) -> tuple[int, str | None]:
        import sympy as sp

        symbols = sorted(_free(self.lhs) | _free(self.rhs), key=str)
        agreed = 0
        for _ in range(3):
            values: dict[Any, Any] = {}
            for s in symbols:
                if isinstance(s, sp.MatrixSymbol):
                    values[s] = sp.ImmutableMatrix(
                        s.rows, s.cols, [sp.Rational(self.rng.randint(-9, 9), self.rng.randint(1, 4))
                                         for _ in range(s.rows * s.cols)])
                else:
                    values[s] = sp.Rational(self.rng.randint(1, 20), self.rng.randint(1, 5))
            try:
                lv = _explicit(self.lhs, values)
                rv = _explicit(self.rhs, values)
                if isinstance(lv, sp.MatrixBase) != isinstance(rv, sp.MatrixBase) and 0 in (lv, rv):
                    diff = lv if rv == 0 else rv  # \mathbf{0} written as 0
                else:
                    diff = lv - rv
                entries = list(diff) if isinstance(diff, sp.MatrixBase) else [diff]
                zero = True
                for entry in entries:
                    number = complex(sp.N(entry, 30))
                    zero = zero and abs(number) <= 1e-9
            except _Alarm:
                raise
            except Exception:  # noqa: BLE001 - shapes that do not fit, singular matrices: no answer here
                continue
            if not zero:
                shown = ", ".join(str(s) for s in symbols if isinstance(s, sp.MatrixSymbol))
                return agreed, f"random {shown} give different sides"
            agreed += 1
        return agreed, None


def _explicit(expr: Any, values: dict[Any, Any]) -> Any:
    import sympy as sp

    v = expr.xreplace(values) if values else expr
    v = v.doit() if hasattr(v, "doit") else v
    if isinstance(v, sp.MatrixExpr) and not isinstance(v, sp.MatrixBase):
        v = v.as_explicit()
    if isinstance(v, sp.MatrixBase) and v.shape == (1, 1):
        v = v[0, 0]
    return v


def _derivatives(expr: Any) -> Any:
    import sympy as sp

    try:
        return expr.replace(lambda e: isinstance(e, sp.Derivative), lambda e: e.doit())
    except _Alarm:
        raise
    except Exception:  # noqa: BLE001 - left for the points to evaluate
        return expr


def _summation_bounds(expr: Any) -> set[Any]:
    import sympy as sp

    bounds: set[Any] = set()
    for e in expr.atoms(sp.Sum, sp.Product):
        for _, low, high in e.limits:
            bounds |= low.free_symbols | high.free_symbols
    return bounds


def _value(expr: Any, values: dict[Any, Any], digits: int) -> complex | None:
    """A side at a point: integrals and infinite sums by mpmath's quadrature and series summation
    (SymPy's own evalf is slow for integrals and wrong for some Float series), the rest by evalf."""
    import mpmath
    import sympy as sp

    try:
        v = expr.subs(values)
        if v.has(sp.Derivative, sp.Subs):
            v = v.doit()
        if v.has(sp.Integral, sp.Sum, sp.Product, sp.Limit):
            with mpmath.workdps(digits):
                v = v.replace(lambda e: isinstance(e, (sp.Integral, sp.Sum, sp.Product, sp.Limit)), _numeric_operator)
        v = sp.N(v, digits)
        if not v.is_number or v.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
            return None
        c = complex(v)
    except _Alarm:
        raise
    except Exception:  # noqa: BLE001 - a point where a side is undefined is skipped
        return None
    if c != c or abs(c) == float("inf"):
        return None
    return c


def _numeric_operator(e: Any) -> Any:
    """An integral, sum or product with numeric limits (and nothing else free but its variable) as a number."""
    import mpmath
    import sympy as sp

    if isinstance(e, sp.Limit):
        body, var, point = e.args[0], e.args[1], e.args[2]
        if body.free_symbols - {var} or not point.is_number or point.is_infinite:
            return e.doit()
        f = sp.lambdify(var, body, modules="mpmath")
        return sp.Float(mpmath.limit(f, mpmath.mpf(sp.N(point, mpmath.mp.dps))), mpmath.mp.dps)
    if len(e.limits) != 1 or len(e.limits[0]) != 3:
        return e.doit()
    var, low, high = e.limits[0]
    body = e.function
    if body.free_symbols - {var} or low.free_symbols or high.free_symbols:
        return e.doit()
    f = sp.lambdify(var, body, modules="mpmath")
    a = mpmath.mpf(-mpmath.inf) if low == -sp.oo else mpmath.mpf(sp.N(low, mpmath.mp.dps))
    b = mpmath.mpf(mpmath.inf) if high == sp.oo else mpmath.mpf(sp.N(high, mpmath.mp.dps))
    if isinstance(e, sp.Integral):
        return sp.Float(mpmath.quad(f, [a, b]), mpmath.mp.dps)
    if not (low.is_integer and (high.is_integer or high == sp.oo)):
        return e.doit()
    if isinstance(e, sp.Sum):
        if high != sp.oo and high - low < 10_000:
            return sp.Float(mpmath.fsum(f(k) for k in range(int(low), int(high) + 1)), mpmath.mp.dps)
        return sp.Float(mpmath.nsum(f, [a, b]), mpmath.mp.dps)
    if high != sp.oo and high - low < 10_000:
        return sp.Float(mpmath.fprod(f(k) for k in range(int(low), int(high) + 1)), mpmath.mp.dps)
    return e.doit()


def _close(a: complex, b: complex) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _fmt(v: complex) -> str:
    if abs(v.imag) <= 1e-12 * max(1.0, abs(v.real)):
        return f"{v.real:.6g}"
    return f"{v.real:.6g}{v.imag:+.6g}i"


def _describe_point(values: dict[Any, Any]) -> str:
    if not values:
        return "every point"
    return ", ".join(f"{s} = {v}" if v.is_Integer else f"{s} = {float(v):g}" for s, v in values.items())
