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

    def defines_at_a_point(self, expr: Any) -> bool:
        """Is ``expr`` a function the note defined earlier, applied to something else than variables?"""
        import sympy as sp

        if not self.items or not hasattr(expr, "func") or not hasattr(expr.func, "__name__"):
            return False
        if expr.func not in self.definitions():
            return False
        return not all(isinstance(a, sp.Symbol) for a in expr.args)

    def substitute(self, expr: Any) -> tuple[Any, list[str]]:
        """``expr`` with the note's definitions of the names it uses put in (repeatedly, a few levels).

        Multivariable notation is read as written: with ``f(u, v)``, ``u(a, b)`` and ``v(a, b)``
        defined, ``\\partial f / \\partial u`` is the partial derivative of f's own formula (its other
        variable kept), ``\\partial f / \\partial a`` the derivative of f composed with u and v, and a
        bare ``u`` next to them is u's formula.
        """
        import sympy as sp

        defs = self.definitions() if self.items else {}
        used: list[str] = []
        original = expr
        functions = {k: v for k, v in defs.items() if hasattr(k, "__name__")}
        by_name = {k.__name__: (k, v) for k, v in functions.items()}

        def composed(body: Any, keep: frozenset[Any] = frozenset(), depth: int = 0) -> Any:
            """A function's formula with variables that are themselves defined functions put in
            (except ``keep``: the variables being differentiated by)."""
            if depth > 3:
                return body
            mapping = {}
            for symbol in free(body) - keep:
                entry = by_name.get(str(symbol))
                if entry is not None:
                    (lam, where) = entry[1]
                    mapping[symbol] = composed(lam.expr, keep, depth + 1)
                    used.append(where)
            return body.xreplace(mapping) if mapping else body

        try:
            for _ in range(3):
                changed = False
                for key, (value, where) in functions.items():
                    variables = value.variables

                    def put(e: Any, value: Any = value, variables: Any = variables) -> Any:
                        if len(e.args) == len(variables):
                            return value(*e.args)
                        if all(isinstance(x, sp.Symbol) for x in e.args):
                            if set(e.args) < set(variables):
                                return value.expr  # \partial f / \partial u: f's own formula
                            return composed(value.expr, frozenset(e.args))  # f of u(a, b), v(a, b); a kept
                        return e

                    if any(a.func == key for a in applications(expr)):
                        new = expr.replace(lambda e, key=key: getattr(e, "func", None) == key, put)
                        if new != expr:
                            expr = new
                            used.append(where)
                            changed = True
                if changed:
                    expr = expr.replace(lambda e: isinstance(e, sp.Derivative), lambda e: e.doit())
                for key, (value, where) in defs.items():
                    if hasattr(key, "__name__"):
                        continue
                    if key in free(expr) and not bound(expr, key):
                        expr = expr.xreplace({key: value})
                        used.append(where)
                        changed = True
                # a bare u where u(a, b) is defined: u's formula
                names = {s: by_name[str(s)] for s in free(expr) if str(s) in by_name and not bound(expr, s)}
                if names:
                    expr = expr.xreplace({s: composed(entry[1][0].expr) for s, entry in names.items()})
                    used.extend(entry[1][1] for entry in names.values())
                    changed = True
                if not changed:
                    break
        except _Alarm:
            raise
        except Exception:  # noqa: BLE001 - a definition that does not fit is not used
            return original, []
        return expr, list(dict.fromkeys(used))


# -- deciding ------------------------------------------------------------------------------------
