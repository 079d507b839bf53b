"""Check formulas with SymPy: LaTeX equations and explicit ```sympy blocks.

Statuses (``d2lkb.model.CheckStatus``), one per formula:

- ``verified``: every equation of the formula holds. ``method`` is ``"symbolic"``
  when ``simplify(lhs - rhs) == 0`` (undefined functions kept general), or
  ``"numeric"`` when both sides agree at 6 random points (seeded), with undefined
  functions replaced by distinct smooth functions (``f -> sin(x) + 2``,
  ``g -> exp(x/3) + x**2 + 1``, ``h -> cos(2x)/2 + x + 3``, ...). Points are positive
  (0.5 to 2.5; integers 1 to 6 for the bounds of sums); if the equation then fails at
  points with negative values, the detail says so.
- ``refuted``: the detail names a point and both sides' values there.
- ``definition``: nothing to prove. The rule: the relation is written ``:=``
  (``\\coloneqq``, ``\\triangleq``, ``\\equiv``, ``\\stackrel{def}{=}``), or its left side is
  a norm ``\\|x\\|_p`` or a gradient ``\\nabla_x f`` (no parser reads those; check them
  in a ```sympy block), or the left side is a single symbol (``y``, ``x_i``), an
  undefined function applied (``f(x)``, ``\\sigma(z)``), or a derivative of one
  (``f'(x)``, ``\\frac{d}{dx} f(x)``) that does not occur in the right side. So
  ``f'(x) = \\lim_{h \\to 0} ...`` is a definition, ``\\frac{d}{dx} [f(x) g(x)] = ...``
  is checked. In a chain ``a = b = c`` the rule applies to each neighbouring pair.
- ``unparsed``: the reason (unbalanced braces, an unknown command, a command that
  the parser turned into a symbol, ...). Also used when neither simplification nor
  numbers could decide (say, an integral SymPy cannot evaluate).
- ``timeout``: no result within the time limit; ``skipped``: not an equation (no
  ``=``: an expression, an inequality such as ``P(A) \\geq 0``).

A formula with several relations (``aligned`` rows, chains) gets the worst status
of its equations (refuted, then unparsed, then verified, then definition); the
detail lists them, and ``names`` holds the rows' ``\\textrm{...}`` labels.

A ```sympy block is Python over SymPy (``from sympy import *`` done, ``sympy``/``sp``
bound): ``verified`` when its asserts hold, ``refuted`` with the failing assert's line
and message, ``error`` for any other exception, ``skipped`` without asserts.

Parser backend: SymPy 1.14's ANTLR backend (needs ``antlr4-python3-runtime==4.11.*``),
not Lark (needs ``lark``). Measured (Python 3.11, SymPy 1.14, antlr4 4.11.1, lark 1.3.1)
on 15 formulas: the five derivative rules, their three wrong variants, the derivative
limit, ``(a+b)^2``, ``\\sin^2 x + \\cos^2 x``, ``e^{i\\pi}``, a chain, ``\\frac{d^2}{dx^2}``
and a norm's right side, all after the normalisation of ``latex.py``:

- ANTLR parsed 15 of 15 into the intended expression; Lark 6 of 15. Lark rejects
  ``[...]`` grouping and ``e^{i\\pi}`` and returns ambiguous ``_ambig`` trees instead
  of expressions for ``f'(x)``, ``\\sin^2 x`` and ``\\frac{d}{dx} \\frac{f(x)}{g(x)}``
  (``f*x`` or ``f(x)``?); without normalisation it also fails on ``f(x) g(x)``,
  ``a = b = c`` and ``\\frac{d^2}{dx^2}``.
- Parse time per formula: ANTLR median 28 ms (max 71 ms), Lark median 63 ms (max 99 ms).
- Import and first parse: ANTLR 0.29 s, Lark 0.17 s, paid once per worker process.

ANTLR reads unknown commands as symbols (``\\mathbf{x}`` -> ``mathbf*x``), which is why
unknown commands are refused before parsing and every parse is checked for
multi-letter symbols afterwards.

Work runs in worker processes (fresh interpreters, see ``_Worker``; SymPy is
imported there, never in the caller): a hang or a crash costs one formula, the
worker is killed and restarted, and the caller goes on. Each check also has an
alarm inside the worker (SIGALRM), so most timeouts need no restart.
"""


from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from d2lkb.checks.clock import Alarm as _Alarm
from d2lkb.checks.clock import Clock as _Clock
from d2lkb.checks.latex import (
    GREEK,
    LatexError,
    Normalised,
    definition_shape,
    function_letters,
    normalise,
    split_formula,
)
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


def check_latex(latex: str, clock: _Clock, seed: int) -> FormulaResult:
    """Check one LaTeX formula inside a worker process (see the module docstring)."""
    return _check_latex(latex, clock, seed)

# -- LaTeX formulas -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    status: CheckStatus
    detail: str
    method: str = ""


_ORDER = {
    CheckStatus.REFUTED: 0,
    CheckStatus.UNPARSED: 1,
    CheckStatus.VERIFIED: 2,
    CheckStatus.DEFINITION: 3,
    CheckStatus.SKIPPED: 4,
}


def _check_latex(latex: str, clock: _Clock, seed: int) -> FormulaResult:
    try:
        relations = split_formula(latex)
    except LatexError as exc:
        return FormulaResult(CheckStatus.UNPARSED, str(exc))
    names = tuple(r.label for r in relations if r.label)
    if not any(link in ("=", ":=") for r in relations for link in r.links):
        return FormulaResult(CheckStatus.SKIPPED, "not an equation", names=names)
    functions = function_letters(" ".join(side for r in relations for side in r.sides))
    cache: dict[str, Any] = {}
    outcomes: list[tuple[str, _Outcome]] = []
    several = len(relations) > 1
    for relation in relations:
        for k, link in enumerate(relation.links):
            lhs, rhs = relation.sides[k], relation.sides[k + 1]
            where = relation.label or (f"row {relation.row}" if several else "")
            if len(relation.links) > 1:
                pair = f"{_short(lhs)} {link} {_short(rhs)}"
                where = f"{where}, {pair}" if where else pair
            clock.stage = f"checking {where}" if where else "checking"
            rng = random.Random(f"{seed}:{lhs}:{rhs}")
            outcomes.append((where, _check_pair(lhs, rhs, link, functions, cache, clock, rng)))
    return _combine(outcomes, names, relations)


def _short(latex: str, limit: int = 40) -> str:
    text = " ".join(latex.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _combine(outcomes: list[tuple[str, _Outcome]], names: tuple[str, ...], relations: Any) -> FormulaResult:
    status = min((o.status for _, o in outcomes), key=lambda s: _ORDER[s])
    if status == CheckStatus.SKIPPED:
        return FormulaResult(status, "not an equation", names=names)
    shown = [(w, o) for w, o in outcomes if o.status != CheckStatus.SKIPPED]
    if len(shown) == 1:
        detail = shown[0][1].detail
    else:
        detail = "; ".join(f"{w}: {o.status.value} ({o.detail})" for w, o in shown)
    conditions = [c for r in relations for c in r.conditions]
    if conditions:
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


def _check_pair(
    lhs_src: str,
    rhs_src: str,
    link: str,
    functions: frozenset[str],
    cache: dict[str, Any],
    clock: _Clock,
    rng: random.Random,
) -> _Outcome:
    if link not in ("=", ":="):
        return _Outcome(CheckStatus.SKIPPED, f"not an equation ({link})")
    if link == ":=":
        return _Outcome(
            CheckStatus.DEFINITION, f"defines {_short(lhs_src)} (written as a definition)", "definition"
        )
    shape = definition_shape(lhs_src)
    if shape is not None:
        return _Outcome(
            CheckStatus.DEFINITION,
            f"defines the {shape} {_short(lhs_src)}; LaTeX cannot carry it, check it in a ```sympy block",
            "definition",
        )
    sides = []
    for which, src in (("left", lhs_src), ("right", rhs_src)):
        try:
            if src not in cache:
                cache[src] = _parse(src, functions)
            sides.append(cache[src])
        except LatexError as exc:
            cache[src] = exc
            return _Outcome(CheckStatus.UNPARSED, f"{which} side {_short(src)!r}: {exc}")
        if isinstance(cache[src], LatexError):
            return _Outcome(CheckStatus.UNPARSED, f"{which} side {_short(src)!r}: {cache[src]}")
    lhs, rhs = sides
    if _definable(lhs) and not rhs.has(lhs):
        return _Outcome(CheckStatus.DEFINITION, f"defines {_short(lhs_src)}", "definition")
    return _verify(lhs, rhs, clock, rng)


# -- parsing -------------------------------------------------------------------------------------

_OPERATOR_FUNCTIONS = {"sgn": "sign", "sign": "sign", "max": "Max", "min": "Min", "abs": "Abs"}


def _parse(src: str, functions: frozenset[str], backend: str = "antlr") -> Any:
    """One side of a relation -> a SymPy expression, or ``LatexError`` with the reason."""
    norm = normalise(src, functions)
    if PARSER_PROBLEM:
        raise LatexError(PARSER_PROBLEM)
    from sympy.parsing.latex import parse_latex

    try:
        expr = parse_latex(norm.text, strict=True, backend=backend)
    except RecursionError:
        raise LatexError("too deeply nested for the parser") from None
    except _Alarm:
        raise
    except Exception as exc:  # noqa: BLE001 - the parser raises several kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LatexError(f"SymPy cannot parse {_short(norm.text)!r}: {first}") from None
    return _tidy(expr, norm)


def _tidy(expr: Any, norm: Normalised) -> Any:
    """Reject command names read as symbols; map primes, operators and constants."""
    import sympy as sp
    from sympy.core.function import AppliedUndef

    if not isinstance(expr, sp.Expr):
        raise LatexError(f"{_short(norm.text)!r} is not an expression (read as {type(expr).__name__})")
    directions = {limit.args[3] for limit in expr.atoms(sp.Limit)}  # Limit(.., dir='+-') holds Symbol('+-')
    for symbol in expr.atoms(sp.Symbol) - directions:
        _check_name(symbol.name, norm, function=False)
    for applied in expr.atoms(AppliedUndef):
        _check_name(applied.func.__name__, norm, function=True)

    def rewrite(e: Any) -> Any:
        name = e.func.__name__
        primes = len(name) - len(name.rstrip("'"))
        if primes:
            base = sp.Function(name.rstrip("'"))
            if len(e.args) != 1:
                raise LatexError(f"{name}(...) of several variables is ambiguous")
            (arg,) = e.args
            if isinstance(arg, sp.Symbol):
                return sp.Derivative(base(arg), (arg, primes))
            u = sp.Dummy("u")
            return sp.Subs(sp.Derivative(base(u), (u, primes)), u, arg)
        if name in _OPERATOR_FUNCTIONS and name in norm.operators:
            return getattr(sp, _OPERATOR_FUNCTIONS[name])(*e.args)
        if name == "Gamma" and len(e.args) == 1:
            return sp.gamma(*e.args)
        return e

    expr = expr.replace(lambda e: isinstance(e, AppliedUndef), rewrite)
    expr = expr.replace(lambda e: isinstance(e, (sp.Sum, sp.Product)), _indexed)
    constants = {"e": sp.E, "pi": sp.pi, "i": sp.I}
    mapping = {
        s: constants[s.name] for s in expr.free_symbols if isinstance(s, sp.Symbol) and s.name in constants
    }
    return expr.xreplace(mapping) if mapping else expr


def _indexed(e: Any) -> Any:
    """In ``\\sum_i x_i`` the term depends on i: the symbol ``x_{i}`` becomes ``x(i)``.

    Otherwise SymPy would sum a constant (``n x_i``) and "prove" false identities.
    """
    import sympy as sp

    indices = {limit[0] for limit in e.limits}
    mapping = {}
    for symbol in e.function.free_symbols:
        m = re.fullmatch(r"([A-Za-z]+)_\{([A-Za-z0-9*]+)\}", symbol.name)
        if not m:
            continue
        args = [sp.Integer(p) if p.isdigit() else sp.Symbol(p) for p in m.group(2).split("*") if p]
        if any(a in indices for a in args):
            mapping[symbol] = sp.Function(m.group(1))(*args)
    return e.func(e.function.xreplace(mapping), *e.limits) if mapping else e


def _check_name(name: str, norm: Normalised, *, function: bool) -> None:
    m = re.match(r"[A-Za-z]+", name)
    base = m.group(0) if m else name
    if len(base) == 1 or base in GREEK:
        return
    if base in norm.operators:
        if function:
            return
        raise LatexError(f"\\{base} needs its argument in parentheses")
    if f"\\{base}" in norm.text:
        raise LatexError(f"the LaTeX command \\{base} was read as a symbol")
    if re.fullmatch(r"d[A-Za-z]", base):
        raise LatexError(f"'{base}' was read as a differential outside a derivative or integral")
    raise LatexError(f"'{base}' was read as a single symbol")


def _definable(expr: Any) -> bool:
    import sympy as sp
    from sympy.core.function import AppliedUndef

    if isinstance(expr, sp.Symbol):
        return True
    if isinstance(expr, AppliedUndef):  # f(x), f(0): but not f(g(x))
        return all(isinstance(a, sp.Symbol) or a.is_number for a in expr.args)
    if isinstance(expr, sp.Derivative):  # f'(x), \frac{d}{dx} f(x): but not the chain rule's f(g(x))
        return isinstance(expr.expr, AppliedUndef) and all(isinstance(a, sp.Symbol) for a in expr.expr.args)
    return False


# -- verifying -----------------------------------------------------------------------------------

_POINTS = 6
_CONCRETE = {"f": "sin(t) + 2", "g": "exp(t/3) + t**2 + 1", "h": "cos(2*t)/2 + t + 3"}
_MORE_CONCRETE = (
    "log(t**2 + 1) + t/3 + 2",
    "atan(t) + t**2/4 + 3/2",
    "sqrt(t**2 + 1) + sin(3*t)/3",
    "cosh(t/2) + t/5",
    "t**3/10 + exp(-t**2) + 1",
)


def _verify(lhs: Any, rhs: Any, clock: _Clock, rng: random.Random) -> _Outcome:
    import sympy as sp

    stage = clock.stage
    clock.stage = f"{stage}: simplify"
    try:
        with clock.limit(0.4 * clock.timeout):
            difference = (lhs - rhs).doit()
            if difference == 0 or sp.simplify(difference) == 0:
                return _Outcome(CheckStatus.VERIFIED, "symbolic: simplify(lhs - rhs) == 0", "symbolic")
    except _Alarm:
        if clock.expired():
            raise
    except Exception:  # noqa: BLE001, S110 - simplification failing is not an answer; try numbers
        pass
    clock.stage = f"{stage}: numeric evaluation"
    try:
        return _numeric(lhs, rhs, rng)
    except _Alarm:
        raise
    except Exception as exc:  # noqa: BLE001 - SymPy failing to evaluate decides nothing
        return _Outcome(CheckStatus.UNPARSED, f"could not decide: {type(exc).__name__}: {exc}")


def _concrete_functions(exprs: Iterable[Any]) -> dict[Any, tuple[str, Any]]:
    """Undefined function -> (its description, a Lambda of a smooth concrete function)."""
    import sympy as sp
    from sympy.core.function import AppliedUndef

    t = sp.Symbol("t")
    funcs: dict[str, Any] = {}
    for e in exprs:
        for applied in e.atoms(AppliedUndef):
            funcs.setdefault(applied.func.__name__, applied.func)
    spare = iter(_MORE_CONCRETE)
    out: dict[Any, tuple[str, Any]] = {}
    for name in sorted(funcs, key=lambda n: (n not in _CONCRETE, n)):
        func = funcs[name]
        body = sp.sympify(_CONCRETE.get(name) or next(spare, "sin(t)**2 + t/7 + 1"), locals={"t": t})
        nargs = max((len(a.args) for e in exprs for a in e.atoms(AppliedUndef) if a.func == func), default=1)
        args = sp.symbols(f"a0:{nargs}")
        combined = sum((k + 1) * a for k, a in enumerate(args))
        extra = sum(a**2 / (k + 2) for k, a in enumerate(args[1:], start=1))
        if nargs == 1:
            description = f"{name}(t) = {body}"
        else:
            description = f"{name}({', '.join(map(str, args))}) = {body.subs(t, combined) + extra}"
        out[func] = (description, sp.Lambda(args, body.subs(t, combined) + extra))
    return out


def _numeric(lhs: Any, rhs: Any, rng: random.Random) -> _Outcome:
    import sympy as sp

    concrete = _concrete_functions([lhs, rhs])
    left, right = lhs, rhs
    for func, (_, body) in concrete.items():
        # replace(), not subs(): Sum._eval_subs fails on a function class (SymPy 1.14)
        left, right = left.replace(func, body), right.replace(func, body)
    left, right = left.doit(), right.doit()
    integers = _summation_bounds(lhs) | _summation_bounds(rhs)
    symbols = sorted(left.free_symbols | right.free_symbols, key=lambda s: s.name)
    with_functions = ""
    if concrete:
        with_functions = " (with " + ", ".join(d for d, _ in concrete.values()) + ")"

    def point(negative: Callable[[], bool] = lambda: False) -> dict[Any, Any]:
        values = {}
        for s in symbols:
            if s in integers:
                values[s] = sp.Integer(rng.randint(1, 6))
            else:
                v = round(rng.uniform(0.5, 2.5), 3)
                values[s] = sp.Float(str(-v if negative() else v), 30)
        return values

    agreed = 0
    tried = 0
    while agreed < _POINTS and tried < 8 * _POINTS:
        tried += 1
        values = point()
        lv, rv = _value(left, values, 30), _value(right, values, 30)
        if lv is None or rv is None:
            continue
        if not _close(lv, rv):
            lv, rv = _value(left, values, 60), _value(right, values, 60)
            if lv is not None and rv is not None and not _close(lv, rv):
                return _Outcome(
                    CheckStatus.REFUTED,
                    f"at {_describe_point(values)}: left = {_fmt(lv)}, right = {_fmt(rv)}{with_functions}",
                    "numeric",
                )
        agreed += 1
    if agreed < _POINTS // 2:
        return _Outcome(
            CheckStatus.UNPARSED,
            "could not decide: simplify did not reach 0 and the sides could not be evaluated at random points",
        )
    detail = f"numeric at {agreed} random points{with_functions}"
    if any(s not in integers for s in symbols):
        # all values negative, then mixed signs
        for negative in [lambda: True] + [lambda: rng.random() < 0.5] * 3:
            values = point(negative)
            lv, rv = _value(left, values, 30), _value(right, values, 30)
            if lv is not None and rv is not None and not _close(lv, rv):
                detail += (
                    f"; holds for positive values only: at {_describe_point(values)}: "
                    f"left = {_fmt(lv)}, right = {_fmt(rv)}"
                )
                break
    return _Outcome(CheckStatus.VERIFIED, detail, "numeric")


def _summation_bounds(expr: Any) -> set[Any]:
    import sympy as sp

    bounds: set[Any] = set()
    for e in expr.atoms(sp.Sum, sp.Product):
        for _, low, high in e.limits:
            bounds |= low.free_symbols | high.free_symbols
    return bounds


def _value(expr: Any, values: dict[Any, Any], digits: int) -> complex | None:
    import sympy as sp

    try:
        v = expr.subs(values)
        if v.has(sp.Sum, sp.Product, sp.Limit, sp.Integral, sp.Derivative, sp.Subs):
            v = v.doit()
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

