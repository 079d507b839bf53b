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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from d2lkb.checks.clock import Alarm as _Alarm
from d2lkb.checks.clock import Clock as _Clock
from d2lkb.checks.context import NoteContext
from d2lkb.checks.exprs import applications, free, short
from d2lkb.checks.interpret import DIM
from d2lkb.checks.latex import GREEK, LatexError, Relation, definition_shape, function_letters, split_formula
from d2lkb.checks.names import (
    base_token,
    defined_name,
    latex_tokens,
    notation_letters,
    tuple_parts,
    written_name,
)
from d2lkb.checks.numbers import DOMAINS, MatrixNumbers, Numbers, derivatives
from d2lkb.checks.rules import by_expectation_rules, by_probability_rules
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
    links = sum(len(r.links) for r in relations)
    described = (
        frozenset(re.findall(r"(?<![A-Za-z\\])([A-Za-z])\s*\(", relations[0].sides[0]))
        if relations and links > 1
        else frozenset()
    )
    env = NoteContext(context, functions, notation_letters(text), described)
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
                pair = f"{short(lhs)} {link} {short(rhs)}"
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


def _check_pair(
    lhs_src: str, rhs_src: str, link: str, step: bool, env: NoteContext, cache: dict[str, Any], clock: _Clock,
    rng: random.Random, seen: frozenset[str] = frozenset(),
) -> _Outcome:
    if link not in ("=", ":="):
        return _Outcome(CheckStatus.SKIPPED, f"not an equation ({link})")
    if link == ":=":
        return _Outcome(
            CheckStatus.DEFINITION, f"defines {short(lhs_src)} (written as a definition)", "definition"
        )
    if not step:
        shape = definition_shape(lhs_src)
        if shape is not None:
            return _Outcome(CheckStatus.DEFINITION, f"defines the {shape} {short(lhs_src)}", "definition")
    left_parts, right_parts = tuple_parts(lhs_src), tuple_parts(rhs_src)
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
            defined = written_name(lhs_src, rhs_src)
        elif env.defines_derivative(left.expr) or env.defines_at_a_point(left.expr):
            defined = None  # g'(x) = ..., g(2x) = ... after the note defined g: a claim about g to check
        else:
            defined = defined_name(left, right, rhs_src, lhs_src)
        if defined:
            return _Outcome(CheckStatus.DEFINITION, f"defines {short(lhs_src.strip())}", "definition")
    for which, side, src in (("left", left, lhs_src), ("right", right, rhs_src)):
        if isinstance(side, LatexError):
            if "asymptotic" in str(side):
                return _Outcome(CheckStatus.SKIPPED, f"asymptotic: {side}")
            return _Outcome(CheckStatus.UNPARSED, f"{which} side {short(src)!r}: {side}")
    return _Decision(left, right, step, env, clock, rng, seen).decide()


class _Decision:
    def __init__(
        self, left: Any, right: Any, step: bool, env: NoteContext, clock: _Clock, rng: random.Random,
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
            brought = (free(lhs) | free(rhs)) - free(self.left.expr) - free(self.right.expr)
            self.seen = self.seen | {base_token(str(v)) for v in brought}
        # vectors only inside opaque operators (P(y | \mathbf{x})) leave scalar sides
        matrices = any(
            getattr(e, "is_Matrix", False) or e.has(sp.MatrixSymbol, sp.MatrixBase, sp.Identity, sp.OneMatrix)
            for e in (lhs, rhs)
        )
        if lhs == rhs:
            return _Outcome(CheckStatus.VERIFIED, "symbolic: both sides are the same" + self.note, "symbolic")
        if matrices:
            return self._matrices(lhs, rhs)
        try:
            with self.clock.limit(0.15 * self.clock.timeout):
                if not (lhs.has(sp.Integral, sp.Sum, sp.Product, sp.Limit)) and sp.expand(
                    derivatives(lhs) - derivatives(rhs)
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
            linear = by_expectation_rules(lhs, rhs) if opaque <= {"E[·]", "Var", "Cov"} else None
            if linear is not None:
                return _Outcome(CheckStatus.VERIFIED, linear, "symbolic")
            return _Outcome(
                CheckStatus.CONTEXT,
                f"depends on the rules of {', '.join(sorted(opaque))}, which the checker does not model",
            )
        numeric = Numbers(lhs, rhs, self.rng)
        agreed, disagreement = numeric.run(DOMAINS[0])
        if disagreement is None and agreed >= numeric.points:
            symbolic = self._symbolic(lhs, rhs, share=0.2)
            if symbolic is not None:
                return symbolic
            detail = f"numeric at {agreed} random points{numeric.with_functions}" + self.note
            if numeric.symbols and not numeric.integers >= set(numeric.symbols):
                _, negative = numeric.run(DOMAINS[2])
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

    def _refute(self, lhs: Any, rhs: Any, numeric: Numbers, disagreement: str) -> _Outcome:
        """The sides differ at a point: refute only if that point is valid under the formula's meaning."""
        from d2lkb.checks.interpret import readable_operator  # noqa: F401 - names come readable already

        opaque = sorted(self.left.opaque | self.right.opaque)
        if opaque and set(opaque) <= {"E[·]", "Var", "Cov"}:
            linear = by_expectation_rules(lhs, rhs)
            if linear is not None:
                return _Outcome(CheckStatus.VERIFIED, linear, "symbolic")
        if opaque and set(opaque) <= {"P(·)", "p(·)"}:
            product = by_probability_rules(lhs, rhs)
            if product is not None:
                return _Outcome(CheckStatus.VERIFIED, product, "symbolic")
        if opaque:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"depends on the rules of {', '.join(opaque)}, which the checker does not model "
                f"(with arbitrary functions in their place: {disagreement})",
            )
        lf, rf = {a.func for a in applications(lhs)}, {a.func for a in applications(rhs)}
        values = {str(v) for v in free(lhs) | free(rhs)}
        both = sorted(str(f) for f in lf | rf if str(f) in values)
        if both:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"{', '.join(both)} is written both as a function and as a value: notation the checker cannot "
                "read (a convolution, an operator?)",
            )
        statistics = sorted(
            str(v) for v in free(self.left.expr) | free(self.right.expr)
            if re.search(r"_\{?[^}]*[A-Z]", str(v)) and base_token(str(v)).lstrip("\\") in GREEK
        )
        if statistics:
            return _Outcome(
                CheckStatus.CONTEXT,
                f"{', '.join(statistics)}: a quantity of a named variable or set (its mean, deviation, ...), "
                "whose rules the checker does not model",
            )
        notation = sorted(
            str(v) for v in free(self.left.expr) | free(self.right.expr)
            if getattr(v, "is_Symbol", False) and base_token(str(v)) in self.env.notation
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
        for domain in DOMAINS[1:]:
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
        lv, rv = free(lhs), free(rhs)
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
                new = [name for name in one_sided if base_token(name) not in self.seen]
                if not new:
                    return None
                return _Outcome(
                    CheckStatus.CONTEXT,
                    f"{', '.join(new)} appears here for the first time, on one side only: "
                    "the text must say what it is (for some value?)",
                )
        return _Outcome(CheckStatus.SKIPPED, f"an equation to solve or a condition ({what}), not an identity")

    def _matrices(self, lhs: Any, rhs: Any) -> _Outcome:
        numeric = MatrixNumbers(lhs, self.rng, rhs)
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

