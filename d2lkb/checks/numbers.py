"""Both sides of a relation at random points: undefined functions replaced by concrete smooth ones,
symbolic matrices by random ones, integrals, limits and series evaluated by mpmath."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from typing import Any

from d2lkb.checks.clock import Alarm as _Alarm
from d2lkb.checks.exprs import applications, free, pretty

POINTS = 6
_CONCRETE = {"f": "sin(t) + 2", "g": "exp(t/3) + t**2 + 1", "h": "cos(2*t)/2 + t + 3"}
_MORE_CONCRETE = (
    "log(t**2 + 1) + t/3 + 2",
    "atan(t) + t**2/4 + 3/2",
    "sqrt(t**2 + 1) + sin(3*t)/3",
    "cosh(t/2) + t/5",
    "t**3/10 + exp(-t**2) + 1",
)
# Where the variables are sampled: a refutation must fail in every one of them.
DOMAINS: tuple[tuple[str, Callable[[random.Random], float]], ...] = (
    ("positive values", lambda r: r.uniform(0.5, 2.5)),
    ("values in (0, 1)", lambda r: r.uniform(0.05, 0.95)),
    ("negative values", lambda r: -r.uniform(0.5, 2.5)),
    ("values from 3 to 10", lambda r: r.uniform(3.0, 10.0)),
)


def _concrete_functions(exprs: Iterable[Any]) -> dict[Any, tuple[str, Any]]:
    """Undefined function -> (its description, a Lambda of a smooth concrete function)."""
    import sympy as sp

    t = sp.Symbol("t")
    funcs: dict[str, Any] = {}
    for e in exprs:
        for applied in applications(e):
            funcs.setdefault(applied.func.__name__, applied.func)
    spare = iter(_MORE_CONCRETE)
    out: dict[Any, tuple[str, Any]] = {}
    for name in sorted(funcs, key=lambda n: (n not in _CONCRETE, n)):
        func = funcs[name]
        body = sp.sympify(_CONCRETE.get(name) or next(spare, "sin(t)**2 + t/7 + 1"), locals={"t": t})
        nargs = max((len(a.args) for e in exprs for a in applications(e) if a.func == func), default=1)
        args = sp.symbols(f"a0:{nargs}")
        combined = sum((k + 1) * a for k, a in enumerate(args))
        extra = sum(a**2 / (k + 2) for k, a in enumerate(args[1:], start=1))
        shown = pretty(name)
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


class Numbers:
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
        self.left = derivatives(left)
        self.right = derivatives(right)
        self.integers = _summation_bounds(lhs) | _summation_bounds(rhs)
        self.integers |= {s for s in free(lhs) | free(rhs) if getattr(s, "is_integer", False)}
        self.symbols = sorted(free(self.left) | free(self.right), key=lambda s: s.name)
        self.with_functions = ""
        if concrete:
            self.with_functions = " (with " + ", ".join(d for d, _ in concrete.values()) + ")"
        self.rng = rng
        self._sp = sp
        heavy = any(e.has(sp.Integral, sp.Limit) for e in (self.left, self.right))
        self.points = POINTS // 2 if heavy else POINTS  # a quadrature or a limit per point is dear

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


class MatrixNumbers:
    """Both sides with random matrices and vectors (and random scalars)."""

    def __init__(self, lhs: Any, rng: random.Random, rhs: Any) -> None:
        self.lhs, self.rhs, self.rng = lhs, rhs, rng

    def run(self) -> tuple[int, str | None]:
        import sympy as sp

        symbols = sorted(free(self.lhs) | free(self.rhs), key=str)
        vectors = {}  # the letter of a vector -> its symbol: u_i under a sum is a component of \mathbf{u}
        for s in symbols:
            m = re.fullmatch(r"\\(?:mathbf|boldsymbol|bm)\{?([A-Za-z])\}?", str(s))
            if isinstance(s, sp.MatrixSymbol) and s.cols == 1 and m:
                vectors[m.group(1)] = s
        components = {
            a.func for a in applications(self.lhs) | applications(self.rhs)
            if str(a.func).rstrip("_") in vectors and str(a.func).endswith("_") and len(a.args) == 1
        }
        bounds = set()
        if components:
            for e in self.lhs.atoms(sp.Sum) | self.rhs.atoms(sp.Sum):
                bounds |= {b for b in e.limits[0][2].free_symbols}
        agreed = 0
        for _ in range(3):
            values: dict[Any, Any] = {}
            for s in symbols:
                if isinstance(s, sp.MatrixSymbol):
                    values[s] = sp.ImmutableMatrix(
                        s.rows, s.cols, [sp.Rational(self.rng.randint(-9, 9), self.rng.randint(1, 4))
                                         for _ in range(s.rows * s.cols)])
                elif s in bounds:
                    values[s] = sp.Integer(s_rows(vectors))  # a sum over the components runs over all of them
                else:
                    values[s] = sp.Rational(self.rng.randint(1, 20), self.rng.randint(1, 5))
            k = sp.Dummy("k", integer=True)
            linked = {
                f: sp.Lambda(k, sp.Piecewise(*[(values[vectors[str(f).rstrip("_")]][j, 0], sp.Eq(k, j + 1))
                                               for j in range(s_rows(vectors))], (sp.nan, True)))
                for f in components
            }
            try:
                lhs, rhs = self.lhs, self.rhs
                for f, body in linked.items():
                    lhs = lhs.replace(f, body)
                    rhs = rhs.replace(f, body)
                lv = _explicit(lhs, values)
                rv = _explicit(rhs, values)
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


def s_rows(vectors: dict[str, Any]) -> int:
    """The length of the vectors (all the same size here)."""
    return int(next(iter(vectors.values())).rows) if vectors else 0


def _explicit(expr: Any, values: dict[Any, Any]) -> Any:
    import sympy as sp

    v = expr.xreplace(values) if values else expr
    v = v.doit() if hasattr(v, "doit") else v
    if isinstance(v, sp.MatrixExpr) and not isinstance(v, sp.MatrixBase):
        v = v.as_explicit()
    if isinstance(v, sp.MatrixBase) and v.shape == (1, 1):
        v = v[0, 0]
    return v


def derivatives(expr: Any) -> Any:
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
