"""Small helpers over SymPy expressions shared by the formula checker's modules."""

from __future__ import annotations

import re
from typing import Any


def short(latex: str, limit: int = 40) -> str:
    text = " ".join(latex.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bound(expr: Any, symbol: Any) -> bool:
    """Is ``symbol`` a variable of differentiation, integration or summation in ``expr``?"""
    import sympy as sp

    for e in expr.atoms(sp.Derivative, sp.Integral, sp.Sum, sp.Product, sp.Limit):
        if symbol in getattr(e, "variables", ()) or symbol in getattr(e, "bound_symbols", ()):
            return True
    return False


def pretty(expr: Any) -> str:
    return re.sub(r"Zop([A-Z][a-z]*)[a-z]*", r"\1", str(expr))


def applications(expr: Any) -> set[Any]:
    from sympy.core.function import AppliedUndef

    return set(expr.atoms(AppliedUndef)) if hasattr(expr, "atoms") else set()


def free(expr: Any) -> set[Any]:
    return set(getattr(expr, "free_symbols", set()))
