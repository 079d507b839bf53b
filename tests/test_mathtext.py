"""Math on cards: one-line Unicode for inline math, a two-dimensional layout for display math."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from d2lkb.tui.mathtext import inline_math, latex_to_unicode, plain_math, prettify_math


@pytest.mark.parametrize(("latex", "text"), [
    (r"\frac{\partial f}{\partial x_i}", "∂f/∂xᵢ"),
    (r"\sqrt{x^2+y^2}", "√(x²+y²)"),
    (r"\sum_{i=1}^{n} x_i^2", "Σᵢ₌₁ⁿ xᵢ²"),
    (r"\nabla_{\mathbf{x}} \mathbf{x}^\top A \mathbf{x}", "∇_𝐱 𝐱ᵀ A 𝐱"),
    (r"\left(\frac{a}{b}\right) \cdot c \leq d", "(a/b) · c ≤ d"),
    (r"\alpha + \beta \neq \Gamma", "α + β ≠ Γ"),
    (r"\frac{x+1}{2}", "(x+1)/2"),
    (r"\textrm{softmax}(x)_i", "softmax(x)ᵢ"),
    (r"x \in \mathbb{R}^{n \times m}", "x ∈ ℝ^(n × m)"),
    (r"\log \sigma(x)", "log σ(x)"),
    (r"\unknowncommand{x} y", r"\unknowncommand{x} y"),
    # fractions glued to what follows are bracketed and spaced
    (r"\frac{1}{n}\sum_{i=1}^n x_i", "(1/n) Σᵢ₌₁ⁿ xᵢ"),
    (r"\frac{d}{dx}\sigma(x)", "(d/dx) σ(x)"),
    (r"2\frac{a}{b}", "2 (a/b)"),
    (r"\frac{a}{b} + c", "a/b + c"),
    # no stray star; bold vectors, matrices and Greek are bold
    (r"\operatorname*{argmin}_{\mathbf{w}} L(\mathbf{w})", "argmin_𝐰 L(𝐰)"),
    (r"\mathbf{W}\boldsymbol{\theta} + \mathbf{b}_1", "𝐖𝛉 + 𝐛₁"),
    # matrices and cases inline: one readable line
    (r"\begin{bmatrix}1 & 2\\3 & 4\end{bmatrix}^{-1}", "[1, 2; 3, 4]⁻¹"),
    (r"\begin{pmatrix}a \\ b\end{pmatrix}", "(a; b)"),
    (r"|x| = \begin{cases}x & x \geq 0 \\ -x & \textrm{otherwise}\end{cases}", "|x| = { x, x ≥ 0; -x, otherwise }"),
])
def test_inline_math(latex, text):
    assert inline_math(latex) == text


def lines(text: str) -> list[str]:
    return text.split("\n")


def test_display_matrix_is_a_bracketed_grid_with_aligned_columns():
    out = latex_to_unicode(r"\mathbf{A}^{-1} = \frac{1}{ad-bc}\begin{bmatrix} d & -b \\ -c & a\end{bmatrix}")
    assert lines(out) == [
        "         1",
        "𝐀⁻¹ = ─────── ⎡ d   -b ⎤",
        "       ad-bc  ⎣ -c  a  ⎦",
    ]


def test_display_matrix_rows_and_dots_line_up():
    out = lines(latex_to_unicode(
        r"\mathbf{A}=\begin{bmatrix} a_{11} & a_{12} & \cdots & a_{1n} \\ a_{21} & a_{22} & \cdots & a_{2n} \\"
        r" \vdots & \vdots & \ddots & \vdots \\ a_{m1} & a_{m2} & \cdots & a_{mn} \\ \end{bmatrix}."))
    assert len(out) == 4  # the trailing `\\` makes no empty row
    assert [line[3] for line in out] == ["⎡", "⎢", "⎢", "⎣"] and out[1].endswith("⎥.")
    assert out[0].index("a₁₂") == out[3].index("aₘ₂")  # columns aligned
    assert {cell_len(line.rstrip(".")) for line in out} == {cell_len(out[0])}


def test_display_cases_has_a_brace_and_aligned_columns():
    out = lines(latex_to_unicode(
        r"\textrm{ReLU}(x) = \begin{cases}x & \textrm{if } x > 0\\ \alpha x & \textrm{otherwise}\\ 0 & x = 0\end{cases}"))
    assert out == [
        "          ⎧x    if x > 0",
        "ReLU(x) = ⎨α x  otherwise",
        "          ⎩0    x = 0",
    ]


def test_display_aligned_rows_line_up_at_the_ampersand():
    out = lines(latex_to_unicode(r"\begin{aligned} f(x) &= (x+1)^2 \\ &= x^2 + 2x + 1 \\ g &\leq h \end{aligned}"))
    assert out == ["f(x) = (x+1)²", "     = x² + 2x + 1", "   g ≤ h"]


def test_display_fractions_stack_and_sum_is_spaced():
    out = lines(latex_to_unicode(r"\hat{y} = \frac{1}{n}\sum_{i=1}^n (y_i - \hat{y}_i)^2"))
    hat = "y\u0302"  # y and a combining circumflex: one cell
    assert out == ["     1", f"{hat} = ─── Σᵢ₌₁ⁿ (yᵢ - {hat}ᵢ)²", "     n"]


def test_display_left_right_grow_with_their_content():
    assert lines(latex_to_unicode(r"\left(\frac{a}{b}\right)^2")) == ["⎛ a ⎞²", "⎜───⎟", "⎝ b ⎠"]


def test_prettify_math_leaves_code_and_prices_alone():
    md = "Inline $x^2$ and `$a$` code.\n\n$$\\frac{1}{2}$$\n\n```python\nx = \"$y$\"\n```\n"
    out = prettify_math(md)
    assert "`x²`" in out and "`$a$`" in out and 'x = "$y$"' in out and "\n```\n 1\n───\n 2\n```\n" in out
    assert prettify_math("costs $5 or more") == "costs $5 or more"
    assert prettify_math("no math here") == "no math here"


def test_plain_math_keeps_display_math_on_one_line():
    assert plain_math(r"Inverse $$\begin{bmatrix}a&b\\c&d\end{bmatrix}^{-1}$$") == "Inverse [a, b; c, d]⁻¹"
