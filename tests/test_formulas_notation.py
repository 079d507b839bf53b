"""ML notation with its meaning, and refutations that are promises (issue: checks on the real book).

Cases are the issue's own made-up ones and rows of the D2L book (corpora/d2l-en), quoted with their file.
"""

from __future__ import annotations

import pytest

from d2lkb.checks.pool import FormulaChecker
from d2lkb.model import CheckStatus

V, R, D, U, S, C = (CheckStatus.VERIFIED, CheckStatus.REFUTED, CheckStatus.DEFINITION, CheckStatus.UNPARSED,
                    CheckStatus.SKIPPED, CheckStatus.CONTEXT)


@pytest.fixture(scope="module")
def fc():
    with FormulaChecker(timeout=30.0) as checker:
        yield checker


def check(fc, latex: str, *, before=(), context=(), known=(), after=()):
    if not before and not context and not known and not after:
        return fc.check("latex", latex)
    source = {"latex": latex, "rows_before": list(before), "context": list(context), "known": list(known),
              "rows_after": list(after)}
    return fc.check("latex", source)


@pytest.mark.parametrize(
    "latex",
    [
        r"\mathbf{A}\mathbf{B} = \mathbf{B}\mathbf{A}",
        r"(\mathbf{A}\mathbf{B})^{-1} = \mathbf{A}^{-1}\mathbf{B}^{-1}",
        r"E[XY] = E[X]Y",
        r"\mathbb{E}[XY] = \mathbb{E}[X]Y",
    ],
)
def test_false_matrix_and_expectation_identities_are_not_verified(fc, latex):
    result = check(fc, latex)
    assert result.status not in (V, R), result.detail  # not true in general; special matrices or rules may apply
    assert result.status == C


@pytest.mark.parametrize(
    "latex",
    [
        r"\mathbf{A}^{-1}\mathbf{A} = \mathbf{I}",
        r"(\mathbf{A}\mathbf{B})^{-1} = \mathbf{B}^{-1}\mathbf{A}^{-1}",
        r"(\mathbf{A}\mathbf{B})^\top = \mathbf{B}^\top\mathbf{A}^\top",
        r"\mathbf{A}(\mathbf{B} + \mathbf{C}) = \mathbf{A}\mathbf{B} + \mathbf{A}\mathbf{C}",
        r"\mathbf{x}^\top \mathbf{y} = \mathbf{y}^\top \mathbf{x}",
        # geometry-linear-algebraic-ops.md: a concrete product
        r"\begin{bmatrix}1 & 2\\3 & 4\end{bmatrix}\begin{bmatrix}1\\1\end{bmatrix} = \begin{bmatrix}3\\7\end{bmatrix}",
        r"\begin{vmatrix}a & b\\c & d\end{vmatrix} = ad - bc",
    ],
)
def test_true_matrix_identities_verify(fc, latex):
    result = check(fc, latex)
    assert result.status == V, result.detail


def test_a_wrong_concrete_matrix_product_is_not_verified(fc):
    result = check(fc, r"\begin{bmatrix}1 & 2\\3 & 4\end{bmatrix}\begin{bmatrix}1\\1\end{bmatrix} = "
                       r"\begin{bmatrix}3\\8\end{bmatrix}")
    assert result.status != V, result.detail


@pytest.mark.parametrize(
    ("latex", "status"),
    [
        # linear-regression.md: a prediction defined from bold vectors, an index in a superscript
        (r"\hat{y}^{(i)} = \mathbf{w}^\top \mathbf{x}^{(i)} + b", D),
        # mlp.md: a hidden layer
        (r"\mathbf{H} = \sigma(\mathbf{X} \mathbf{W}^{(1)} + \mathbf{b}^{(1)})", D),
        # information-theory.md: a conditional entropy, written with a bar
        (r"H(Y \mid X) = - E_{(x, y) \sim P} [\log p(y \mid x)]", D),
        # random-variables.md: a variance, labelled with \textrm at the start of the row
        (r"\textrm{Var}(X) = E\left[(X-\mu_X)^2\right]", D),
        # a definition whose right side no parser reads
        (r"P(w_c \mid w_{o_1}, \ldots, w_{o_{2m}}) = \frac{\exp(u)}{\sum_{i \in \mathcal{V}} \exp(v_i)}", D),
        (r"w^* = \mathop{\mathrm{argmin}}_w L(w)", D),
        (r"f(x) = \begin{cases} x & x > 0 \\ 0 & \textrm{otherwise} \end{cases}", D),
    ],
)
def test_definitions_in_ml_notation(fc, latex, status):
    result = check(fc, latex)
    assert result.status == status, result.detail


@pytest.mark.parametrize(
    "latex",
    [
        # an equation to solve, a condition: never identities
        r"\mathbf{A}\mathbf{v} = \lambda \mathbf{v}",
        r"\mathbf{A}\mathbf{x} = \mathbf{b}",
        r"\sum_{i=1}^n a_i v_i = 0",
        r"b_1 = -2 b_2 + 1",
    ],
)
def test_equations_to_solve_are_not_refuted(fc, latex):
    result = check(fc, latex)
    assert result.status in (S, D, C), result.detail


@pytest.mark.parametrize(
    "latex",
    [
        # integral-calculus.md: F is an antiderivative of f, said in words
        r"\frac{d}{dx}F(x) = f(x)",
        # why-conv.md: a convolution, (f * g) written as a product
        r"(f * g)(i) = \sum_a f(a) g(i-a)",
        # calculus.md: notations for one derivative
        r"\frac{\partial f}{\partial x_i} = \partial_i f = f_{x_i} = f_i = D_i f",
        # the sigmoid's derivative: true for the sigmoid only
        r"\sigma'(x) = \sigma(x)(1-\sigma(x))",
        # random-variables.md: a standard deviation of a named random variable
        r"\sigma_{aX+b} = |a|\sigma_{X}",
        # Bayes: the rules of probability are not modelled
        r"P(A \mid B) = \frac{P(B \mid A) P(A)}{P(B)}",
    ],
)
def test_what_depends_on_context_is_never_refuted(fc, latex):
    result = check(fc, latex)
    assert result.status != R, result.detail


def test_a_definition_earlier_in_the_note_is_used(fc):
    context = [(3, r"g(x) = ax^2 + bx + c")]
    good = check(fc, r"g'(x) = 2ax + b", context=context)
    assert good.status == V, good.detail
    assert "g(x) = ax^2 + bx + c (line 3)" in good.detail
    bad = check(fc, r"g'(x) = 2ax", context=context)
    assert bad.status == R, bad.detail
    assert "line 3" in bad.detail
    alone = check(fc, r"g'(x) = 2ax")
    assert alone.status == D, alone.detail  # without the note, the row defines g'


def test_a_continuation_row_checks_its_step_against_the_row_before(fc):
    before = [r"(x+1)^2 & = x^2 + 2x + 1"]
    assert check(fc, r"& = x^2 + 2x + 1", before=before).status == V
    wrong = check(fc, r"& = x^2 + 1", before=before)
    assert wrong.status == R, wrong.detail
    # the row before is not re-reported
    assert "(x+1)^2" not in wrong.detail


def test_a_dropped_factor_in_a_derivation_step_is_refuted(fc):
    # gp-priors.md:102, the book's real error: a sigma^2 appears that the integral does not have
    latex = (r"k(x,x') = \int_{-\infty}^{\infty} \exp(-\frac{(x-c)^2}{2\ell^2}) \exp(-\frac{(x'-c)^2}{2\ell^2 }) dc"
             r" = \sqrt{\pi}\ell \sigma^2 \exp(-\frac{(x-x')^2}{2(\sqrt{2} \ell)^2}) \propto k_{\textrm{RBF}}(x,x')")
    result = check(fc, latex, known=[r"\sigma", r"\ell", "x", "c"])
    assert result.status == R, result.detail
    assert "sigma" in result.detail
    fixed = latex.replace(r"\ell \sigma^2", r"\ell")
    assert check(fc, fixed, known=[r"\sigma", r"\ell"]).status == V


def test_a_new_symbol_in_a_step_may_be_a_for_some(fc):
    # gd.md: a Taylor expansion with a mean-value point xi
    latex = r"0 = f'(x - e) = f'(x) - e f''(x) + \frac{1}{2} e^2 f'''(\xi)"
    assert check(fc, latex, known=["x", "e", "f"]).status != R


def test_a_domain_restricted_identity_is_context_not_refuted(fc):
    # true for 0 < theta < 1 only
    result = check(fc, r"\log(1 - \theta) = \log(1 - \theta^2) - \log(1 + \theta)")
    assert result.status in (V, C), result.detail


def test_e_and_i_are_read_by_context(fc):
    assert check(fc, r"e^{i\pi} = -1").status == V
    # an index i and an error e^{(k)} are variables
    assert check(fc, r"\sum_{i=1}^n e^{(i)} = \sum_{j=1}^n e^{(j)}").status == V


def test_integrals_and_series_are_evaluated_numerically(fc):
    assert check(fc, r"\int_0^1 x^2 dx = \frac{1}{3}").status == V
    assert check(fc, r"\int_{-\infty}^{\infty} e^{-x^2} dx = \sqrt{\pi}").status == V
    assert check(fc, r"e^{x} = \sum_{n = 0}^\infty \frac{x^{n}}{n!}").status == V


def test_a_row_that_continues_an_expression_belongs_to_its_step(fc):
    rows = [r"(x+1)^3 & = x^3 + 3x^2", r"& \quad + 3x + 1"]
    # the first row's step is checked with the continuation: x^3 + 3x^2 + 3x + 1
    assert check(fc, rows[0], after=[rows[1]]).status == V
    assert check(fc, rows[1], before=[rows[0]]).status == V
    wrong = [r"(x+1)^3 & = x^3 + 3x^2", r"& \quad + 3x"]
    assert check(fc, wrong[0], after=[wrong[1]]).status == R


@pytest.mark.parametrize(
    ("latex", "status"),
    [
        (r"E[aX+b] = aE[X]+b", V),
        (r"\textrm{Var}(X) + E[X]^2 = E[X^2]", V),
        (r"\textrm{Var}(aX + b) = a^2 \textrm{Var}(X)", V),
        # needs independence, which no formula states: not verified, not refuted
        (r"\textrm{Var}(X+Y) = \textrm{Var}(X) + \textrm{Var}(Y)", C),
        (r"E[XY] = E[X]Y", C),
    ],
)
def test_expectations_are_linear_and_nothing_more(fc, latex, status):
    result = check(fc, latex)
    assert result.status == status, result.detail


def test_a_p_inside_a_command_is_no_probability(fc):
    assert check(fc, r"\exp(x) \exp(y) = \exp(x + y)").status == V


def test_a_factorial_before_an_equals_sign_is_a_factorial(fc):
    assert check(fc, r"3! = 6").status == V
    assert check(fc, r"3 != 6").status == S


@pytest.mark.parametrize(
    ("latex", "status"),
    [
        (r"P(A \mid B) = \frac{P(B \mid A) P(A)}{P(B)}", V),
        (r"P(A, B, C) = P(A \mid B, C) P(B \mid C) P(C)", V),
        (r"P(A, B \mid C) = P(A \mid B, C) P(B \mid C)", V),
        # independence is not assumed
        (r"P(A, B) = P(A) P(B)", C),
        (r"P(A \mid B) = P(B \mid A)", C),
    ],
)
def test_probabilities_follow_the_product_rule_and_nothing_more(fc, latex, status):
    result = check(fc, latex)
    assert result.status == status, result.detail


def test_a_vector_and_its_components(fc):
    # geometry-linear-algebraic-ops.md: u_i under the sum are the components of the bold u
    assert check(fc, r"\mathbf{u}^\top\mathbf{v} = \sum_i u_i\cdot v_i").status == V
    assert check(fc, r"\mathbf{u}^\top\mathbf{v} = \sum_i u_i\cdot u_i").status != V


def test_multivariable_chain_rule_with_the_notes_definitions(fc):
    # multivariable-calculus.md: f(u, v), u(a, b), v(a, b) defined above, then the chain rule
    context = [(1, r"u(a, b) = (a+b)^{2}"), (1, r"v(a, b) = (a-b)^{2}"), (1, r"f(u, v) = (u+v)^{2}")]
    assert check(fc, r"\frac{\partial f}{\partial u} = 2(u+v)", context=context).status == V
    chain = (r"\frac{\partial f}{\partial a} = \frac{\partial f}{\partial u}\frac{\partial u}{\partial a}"
             r"+\frac{\partial f}{\partial v}\frac{\partial v}{\partial a}")
    assert check(fc, chain, context=context).status == V
    half = r"\frac{\partial f}{\partial a} = \frac{\partial f}{\partial u}\frac{\partial u}{\partial a}"
    assert check(fc, half, context=context).status not in (V, R)  # the notation gate: never a guess


def test_a_function_written_at_a_point_is_introduced_unless_the_note_defined_it(fc):
    assert check(fc, r"f(x+\epsilon) = g(x+\epsilon) + h(x+\epsilon)").status == D
    assert check(fc, r"H[P] = \sum_j - P(j) \log P(j)").status == D
    context = [(1, r"g(x) = x^2")]
    assert check(fc, r"g(2x) = 4x^2", context=context).status == V
    assert check(fc, r"g(2x) = 2x^2", context=context).status == R
