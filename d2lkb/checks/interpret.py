"""One side of a relation -> SymPy objects with their ML meaning (runs in a checker process).

:func:`parse_side` normalises the LaTeX (``latex.normalise``), parses it with SymPy's
ANTLR LaTeX parser *unevaluated* (so the written order of factors survives) and
builds the expression again with meaning:

- made-up atoms (``notation.Atom``): bold capitals become ``MatrixSymbol`` (n x n),
  bold lower case ``MatrixSymbol`` (n x 1), ``\\mathbf{I}`` the identity; products
  keep their order (``MatMul``), ``^{-1}`` is ``Inverse``, ``^\\top`` ``Transpose``;
- ``bmatrix``/``pmatrix`` are concrete ``Matrix`` objects, ``vmatrix`` their
  determinant, ``cases`` a ``Piecewise``;
- ``x_i`` under ``\\sum_i`` is a term that depends on i;
- ``e`` is Euler's number and ``i`` the imaginary unit only where the formula uses
  them so (``e^{...}``; ``i`` when it is no index anywhere in the formula);
- opaque operators (expectations, probabilities, norms, ...) stay undefined functions;
  :class:`Side` says which were used, so the checker never refutes with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from d2lkb.checks.clock import Alarm
from d2lkb.checks.latex import GREEK, LatexError, Normalised, normalise
from d2lkb.checks.notation import Atom

DIM = 3  # the size of the concrete matrices and vectors that stand for symbolic ones


@dataclass
class Side:
    expr: Any
    opaque: set[str] = field(default_factory=set)  # opaque operators used (readable names)
    matrices: bool = False  # vectors or matrices occur
    atoms: dict[str, Atom] = field(default_factory=dict)


_OPERATOR_FUNCTIONS = {"sgn": "sign", "sign": "sign", "max": "Max", "min": "Min", "abs": "Abs"}
_READABLE_OPS = {"E": "E[·]", "Var": "Var", "Cov": "Cov", "P": "P(·)", "p": "p(·)", "q": "q(·)", "Norm": "a norm",
                 "Grad": "a gradient", "Corr": "Corr"}


def readable_operator(command: str) -> str:
    m = re.match(r"Zop([A-Z][a-z]*|[A-Za-z])", command)
    core = m.group(1) if m else command
    for key, text in _READABLE_OPS.items():
        if core.startswith(key):
            return text
    return core.lower()


def parse_side(src: str, functions: frozenset[str], *, formula: str = "") -> Side:
    """LaTeX of one side -> :class:`Side`, or ``LatexError`` with the reason."""
    from d2lkb.checks import formulas

    norm = normalise(src, functions)
    if formulas.PARSER_PROBLEM:
        raise LatexError(formulas.PARSER_PROBLEM)
    builder = _Builder(norm, formula or src)
    expr = builder.parse(norm.text)
    return Side(expr, builder.opaque, builder.matrices, dict(norm.atoms))


class _Builder:
    def __init__(self, norm: Normalised, formula: str) -> None:
        self.norm = norm
        self.opaque: set[str] = set()
        self.matrices = False
        self.formula = formula
        self.envs: dict[str, Any] = {}
        # `i` is an index when the formula writes it as one
        self.i_is_index = bool(
            re.search(r"_\s*\{?[^{}]*\bi\b|\\sum_\s*\{?\s*i\b|\^\s*\{\s*\(\s*i\s*\)|\bi\s*=|\(i\)", formula)
        )

    def parse(self, text: str) -> Any:
        import sympy as sp
        from sympy.parsing.latex import parse_latex

        try:
            raw = parse_latex(text, strict=True, backend="antlr")
        except RecursionError:
            raise LatexError("too deeply nested for the parser") from None
        except Alarm:
            raise
        except Exception as exc:  # noqa: BLE001 - the parser raises several kinds
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LatexError(f"SymPy cannot parse {_short(text)!r}: {first}") from None
        if not isinstance(raw, sp.Basic) or isinstance(raw, sp.logic.boolalg.Boolean) and not isinstance(
            raw, sp.Expr
        ):
            raise LatexError(f"{_short(text)!r} is not an expression (read as {type(raw).__name__})")
        self._check_names(raw)
        try:
            expr = self.build(raw)
        except (TypeError, ValueError, AttributeError, NotImplementedError) as exc:
            if self.matrices:
                raise LatexError(f"the shapes of its vectors and matrices do not fit ({type(exc).__name__})") from None
            raise LatexError(f"cannot read {_short(text)!r}: {type(exc).__name__}: {exc}") from None
        if not isinstance(expr, (sp.Expr, sp.MatrixBase)) and not getattr(expr, "is_Matrix", False):
            raise LatexError(f"{_short(text)!r} is not an expression (read as {type(expr).__name__})")
        return expr

    # -- names ------------------------------------------------------------------------------------

    def _check_names(self, raw: Any) -> None:
        import sympy as sp
        from sympy.core.function import AppliedUndef

        directions = {limit.args[3] for limit in raw.atoms(sp.Limit)}
        for symbol in raw.atoms(sp.Symbol) - directions:
            self._check_name(symbol.name, function=False)
        for applied in raw.atoms(AppliedUndef):
            self._check_name(applied.func.__name__, function=True)

    def _check_name(self, name: str, *, function: bool) -> None:
        if name.startswith(("Zz", "Zop", "Ztop")):
            return
        m = re.match(r"[A-Za-z]+", name)
        base = m.group(0) if m else name
        if len(base) == 1 or base in GREEK:
            return
        norm = self.norm
        if base in norm.operators:
            if function:
                return
            raise LatexError(f"\\{base} needs its argument in parentheses")
        if f"\\{base}" in norm.text:
            raise LatexError(f"the LaTeX command \\{base} was read as a symbol")
        if re.fullmatch(r"d[A-Za-z]", base):
            raise LatexError(f"'{base}' was read as a differential outside a derivative or integral")
        raise LatexError(f"'{base}' was read as a single symbol")

    # -- building ---------------------------------------------------------------------------------

    def build(self, e: Any) -> Any:
        import sympy as sp
        from sympy.core.function import AppliedUndef

        if isinstance(e, sp.Symbol):
            return self.symbol(e)
        if isinstance(e, sp.Mul):
            out = None
            for a in e.args:
                b = self.build(a)
                if out is not None and _is_vector(out) and _is_vector(b):
                    out = (out.T * b)[0, 0] if isinstance(out, sp.MatrixBase) else out.T * b  # u \cdot v
                else:
                    out = b if out is None else out * b
            return out
        if isinstance(e, sp.Add):
            out = None
            for a in e.args:
                b = self.build(a)
                if out is not None and _is_matrix(out) != _is_matrix(b) and b != 0 and out != 0:
                    # \mathbf{X}\mathbf{w} + b: a scalar added to a vector is added to each entry (broadcast)
                    matrix, scalar = (out, b) if _is_matrix(out) else (b, out)
                    out = matrix + scalar * sp.OneMatrix(*matrix.shape)
                else:
                    out = b if out is None else out + b
            return out
        if isinstance(e, sp.Pow):
            base, exponent = e.args
            if isinstance(exponent, sp.Symbol) and exponent.name == "Ztop":
                b = self.build(base)
                return b.T if _is_matrix(b) else b
            b = self.build(base)
            x = self.build(exponent)
            if _is_matrix(b):
                if x == -1:
                    return b.inv() if isinstance(b, sp.MatrixBase) else sp.Inverse(b)
                if x.is_Integer and x > 0:
                    return b**x
                raise LatexError("a matrix to a power that is not a whole number")
            if _is_matrix(x):
                raise LatexError("a matrix in an exponent")
            if b.is_number and x.is_Integer and abs(x) > 10_000:
                return sp.Pow(b, x, evaluate=False)  # (1/2)^{10^9}: no exact power of that size
            return b**x
        if isinstance(e, AppliedUndef):
            return self.applied(e)
        if isinstance(e, (sp.Sum, sp.Product)):
            limits = [tuple(self.build(x) if k else x for k, x in enumerate(limit)) for limit in e.limits]
            body = self.build(e.function)
            if _is_matrix(body):
                raise LatexError("a sum of vectors or matrices over an index")
            return self._indexed(e.func(body, *limits))
        if isinstance(e, (sp.Derivative, sp.Integral, sp.Limit, sp.Subs)):
            args = [self.build(a) if isinstance(a, sp.Basic) and not isinstance(a, sp.Tuple) else a
                    for a in e.args]
            if any(_is_matrix(a) for a in args):
                raise LatexError(f"{type(e).__name__.lower()} of vectors or matrices is not supported")
            if isinstance(e, (sp.Integral, sp.Sum)):
                args = [args[0], *[sp.Tuple(*(self.build(x) if k else x for k, x in enumerate(limit)))
                                   for limit in args[1:]]]
            if isinstance(e, sp.Derivative):
                for var in args[1:]:
                    v = var[0] if isinstance(var, sp.Tuple) else var
                    if not isinstance(v, sp.Symbol):
                        raise LatexError(f"a derivative with respect to {v}")
            return e.func(*args)
        if not e.args:
            return e
        args = [self.build(a) for a in e.args]
        if any(_is_matrix(a) for a in args):
            name = type(e).__name__
            if name in ("Abs",) and all(_is_matrix(a) for a in args):
                return sp.Determinant(args[0])
            raise LatexError(f"{name} of a vector or matrix is not supported")
        if e.func.__name__ == "Gamma" and len(args) == 1:
            return sp.gamma(*args)
        return e.func(*args)

    def symbol(self, s: Any) -> Any:
        import sympy as sp

        name = s.name
        if name in self.norm.envs:
            return self.environment(name)
        if name.startswith("ZzN"):
            return sp.Symbol("N_" + name[3:], integer=True, positive=True)
        atom = self.norm.atoms.get(name)
        if atom is not None:
            if atom.kind == "scalar":
                return sp.Symbol(_display(atom))
            self.matrices = True
            if atom.kind == "identity":
                return sp.Identity(DIM)
            if atom.kind == "zero":
                return sp.Integer(0)
            rows = DIM
            cols = DIM if atom.kind == "matrix" else 1
            return sp.MatrixSymbol(_display(atom), rows, cols)
        if name == "e":
            return sp.E
        if name == "pi":
            return sp.pi
        if name == "i" and not self.i_is_index:
            return sp.I
        return s

    def applied(self, e: Any) -> Any:
        import sympy as sp

        name = e.func.__name__
        args = [self.build(a) for a in e.args]
        if name.startswith("Zop"):
            self.opaque.add(readable_operator(name))
            if any(_is_matrix(a) for a in args):
                self.matrices = True
                args = [_opaque_arg(a) for a in args]
            return sp.Function(name)(*args)
        if any(_is_matrix(a) for a in args):
            # f(\mathbf{x}): a function of a vector; only its structure can be compared
            self.matrices = True
            self.opaque.add(f"the function {_display(self.norm.atoms[name]) if name in self.norm.atoms else name}"
                            " of a vector")
            args = [_opaque_arg(a) for a in args]
        atom = self.norm.atoms.get(name)
        if atom is not None:
            return sp.Function(_display(atom))(*args)
        primes = len(name) - len(name.rstrip("'"))
        if primes:
            base = sp.Function(name.rstrip("'"))
            if len(args) != 1:
                raise LatexError(f"{name}(...) of several variables is ambiguous")
            (arg,) = args
            if isinstance(arg, sp.Symbol):
                return sp.Derivative(base(arg), (arg, primes))
            u = sp.Dummy("u")
            return sp.Subs(sp.Derivative(base(u), (u, primes)), u, arg)
        if name in _OPERATOR_FUNCTIONS and name in self.norm.operators:
            return getattr(sp, _OPERATOR_FUNCTIONS[name])(*args)
        if name == "Gamma" and len(args) == 1:
            return sp.gamma(*args)
        return e.func(*args)

    def environment(self, name: str) -> Any:
        import sympy as sp

        if name in self.envs:
            return self.envs[name]
        kind, rows = self.norm.envs[name]
        if kind == "cases":
            pieces = []
            for row in rows:
                if len(row) != 2:
                    raise LatexError("a cases row without a value and a condition")
                value = self.parse_cell(row[0])
                pieces.append((value, self.condition(row[1])))
            value = sp.Piecewise(*pieces)
        else:
            width = max(len(r) for r in rows)
            if any(len(r) != width for r in rows):
                raise LatexError("a matrix with rows of different lengths")
            cells = [[self.parse_cell(c) for c in r] for r in rows]
            if any(_is_matrix(c) for r in cells for c in r):
                value = sp.BlockMatrix(cells)
            else:
                value = sp.ImmutableMatrix(cells)
            self.matrices = True
            if kind == "det":
                value = value.det()
        self.envs[name] = value
        return value

    def parse_cell(self, cell: str) -> Any:
        inner = _Builder(normalise(cell), self.formula)
        value = inner.parse(inner.norm.text)
        self.opaque |= inner.opaque
        self.matrices |= inner.matrices
        return value

    def condition(self, text: str) -> Any:
        import sympy as sp
        from sympy.parsing.latex import parse_latex

        plain = re.sub(r"\\(?:text|textrm|mbox|mathrm)\s*\{([^{}]*)\}", r" \1 ", text)
        plain = re.sub(r"\\(?:quad|qquad|,|;|:)", " ", plain)
        plain = re.sub(r"^\s*(?:if|when|for)\b", " ", plain.strip()).strip(" ,.")
        if re.fullmatch(r"(?:otherwise|else|sonst)\.?", plain):
            return sp.true
        try:
            cond = parse_latex(plain, strict=True, backend="antlr")
        except Alarm:
            raise
        except Exception:  # noqa: BLE001 - a condition in words cannot be used
            raise LatexError(f"the condition {_short(text)!r} of a cases row cannot be read") from None
        if not isinstance(cond, sp.logic.boolalg.Boolean):
            raise LatexError(f"the condition {_short(text)!r} of a cases row is not a condition")
        return cond.xreplace({s: self.symbol(s) for s in cond.free_symbols if isinstance(s, sp.Symbol)})

    def _indexed(self, e: Any) -> Any:
        """In ``\\sum_i x_i`` the term depends on i: the symbol ``x_i`` becomes ``x_(i)``.

        Otherwise SymPy would sum a constant (``n x_i``) and "prove" false identities.
        """
        import sympy as sp

        indices = {limit[0] for limit in e.limits}
        names = {str(i) for i in indices}
        mapping = {}
        for symbol in e.function.free_symbols:
            if not isinstance(symbol, sp.Symbol):
                continue
            base, parts = _split_indexed(symbol.name, self.norm.atoms)
            if base is None:
                continue
            args = [_index_expr(p) for p in parts]
            if any(a is not None and {str(s) for s in a.free_symbols} & names for a in args):
                if any(a is None for a in args):
                    raise LatexError(f"the index of {symbol.name} cannot be read")
                mapping[symbol] = sp.Function(base)(*args)
        return e.func(e.function.xreplace(mapping), *e.limits) if mapping else e


def _display(atom: Atom) -> str:
    return re.sub(r"\s+", "", atom.latex)


def _split_indexed(name: str, atoms: dict[str, Atom]) -> tuple[str | None, list[str]]:
    for atom in atoms.values():
        if _display(atom) == name and atom.indices:
            base = name
            for part in atom.indices:
                base = base.replace(part, "", 1)
            return re.sub(r"[_^{}()]+$", "", base) + "_", list(atom.indices)
    m = re.fullmatch(r"([A-Za-z]+)_\{([A-Za-z0-9*]+)\}", name)
    if m:
        return m.group(1), [p for p in m.group(2).split("*") if p]
    return None, []


def _index_expr(part: str) -> Any:
    import sympy as sp

    text = part.strip().strip("()").strip()
    if not re.fullmatch(r"[A-Za-z0-9+\- ]+", text):
        return None
    text = re.sub(r"(?<=[0-9A-Za-z])\s+(?=[0-9A-Za-z])", "*", text.strip())
    if re.fullmatch(r"[A-Za-z]{2,}", text):
        text = "*".join(text)
    try:
        return sp.sympify(text, locals={c: sp.Symbol(c) for c in set(re.findall(r"[A-Za-z]", text))})
    except (sp.SympifyError, SyntaxError, TypeError):
        return None


def _is_vector(x: Any) -> bool:
    return _is_matrix(x) and tuple(x.shape) == (DIM, 1)


def _is_matrix(x: Any) -> bool:
    return bool(getattr(x, "is_Matrix", False))


def _opaque_arg(a: Any) -> Any:
    """A vector/matrix inside an opaque operator: a symbol named after it (only structure matters there)."""
    import sympy as sp

    return sp.Symbol(f"[{a}]") if _is_matrix(a) else a


def _short(latex: str, limit: int = 40) -> str:
    text = " ".join(latex.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
