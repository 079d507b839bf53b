"""The note's own definitions for a formula (``$g(x) = ax^2+bx+c$`` earlier in its section), and
parsed sides remembered in a checker process."""

from __future__ import annotations

from typing import Any

from d2lkb.checks.clock import Alarm as _Alarm
from d2lkb.checks.exprs import applications, bound, free, short
from d2lkb.checks.latex import LatexError, function_letters, split_formula

_PARSED: dict[tuple[str, frozenset[str]], Any] = {}


def parse_cached(src: str, functions: frozenset[str]) -> Any:
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


class NoteContext:
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
        return parse_cached(src, self.functions)

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
                    left, right = parse_cached(lhs, functions), parse_cached(rhs, functions)
                except LatexError:
                    continue
                except _Alarm:
                    raise
                except Exception:  # noqa: BLE001 - a context formula that SymPy chokes on is no context
                    continue
                if left.matrices or right.matrices or left.opaque or right.opaque:
                    continue
                expr = left.expr
                where = f"{short(lhs)} = {short(rhs)} (line {line})"
                if isinstance(expr, sp.Symbol) and expr not in right.expr.free_symbols:
                    if right.expr.is_number:
                        continue  # `x = 2` in an example says nothing about x later on
                    defs[expr] = (right.expr, where)
                elif (isinstance(expr, AppliedUndef) and str(expr.func) not in self.described
                      and all(isinstance(a, sp.Symbol) for a in expr.args)
                      and len(set(expr.args)) == len(expr.args) and not any(
                          a.func == expr.func for a in applications(right.expr))):
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
                        if any(a.func == key and len(a.args) == nargs for a in applications(expr)):
                            expr = expr.replace(
                                lambda e, key=key, nargs=nargs: getattr(e, "func", None) == key
                                and len(e.args) == nargs,
                                lambda e, value=value: value(*e.args),
                            )
                            used.append(where)
                            changed = True
                    elif key in free(expr) and not bound(expr, key):
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
