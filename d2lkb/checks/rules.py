"""Rules of probability the checker uses to *verify* (never to refute): E is linear, Var and Cov by
their definitions, P(A | B) = P(A, B) / P(B). Each returns the detail of a verification, or None."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from d2lkb.checks.clock import Alarm as _Alarm
from d2lkb.checks.exprs import applications, free


def by_expectation_rules(lhs: Any, rhs: Any) -> str | None:
    """Verified when the sides agree once ``E`` is linear (what holds no random variable comes out),
    ``Var(X) = E[(X - E[X])^2]`` and ``Cov(X, Y) = E[(X - E[X])(Y - E[Y])]``. Random variables are
    the capital letters, as the book writes them; everything else, and every ``E[...]``, is a constant.
    None when they do not agree that way: no rule of probability is claimed to fail."""
    import sympy as sp

    def random(term: Any) -> bool:
        outside = term.xreplace({a: sp.Dummy() for a in applications(term) if str(a.func).startswith("Zop")})
        return any(re.fullmatch(r"[A-Z](?:_.*)?", str(v)) for v in free(outside))

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
        for _ in range(60):
            applied = sorted(
                (a for a in applications(expr) if str(a.func).startswith(("ZopE", "ZopVar", "ZopCov"))),
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

    if _agree(rewrite, lhs, rhs, sp.expand):
        return "symbolic: with E linear and Var, Cov by their definitions"
    return None


def by_probability_rules(lhs: Any, rhs: Any) -> str | None:
    """Verified when the sides agree once every conditional is a joint over a marginal,
    ``P(A | B) = P(A, B) / P(B)``, and a joint does not depend on the order of its variables
    (Bayes' rule, the chain rule). None otherwise: independence or a sum over values is not assumed,
    and nothing is refuted by these rules."""
    import sympy as sp

    def rewrite(expr: Any) -> Any:
        mapping = {}
        for a in applications(expr):
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

    if _agree(rewrite, lhs, rhs, sp.simplify):
        return "symbolic: with P(A | B) = P(A, B) / P(B) and joints in any order"
    return None


def _agree(rewrite: Callable[[Any], Any], lhs: Any, rhs: Any, reduce: Callable[[Any], Any]) -> bool:
    """Do both sides, rewritten by the rules, reduce to the same expression? (A rewrite that returns
    None, or fails, means the rules do not apply: no answer.)"""
    try:
        left, right = rewrite(lhs), rewrite(rhs)
        return left is not None and right is not None and reduce(left - right) == 0
    except _Alarm:
        raise
    except Exception:  # noqa: BLE001 - rules that do not apply decide nothing
        return False
