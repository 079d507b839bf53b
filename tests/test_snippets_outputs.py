"""compare_output: what differs only in presentation matches; real differences do not."""

from __future__ import annotations

import pytest

from d2lkb.checks.outputs import compare_output, normalise_output

MATCHING = [
    ("identical", "tensor([1., 2.])", "tensor([1., 2.])"),
    ("trailing newline", "2", "2\n"),
    ("trailing spaces and blank lines", "a  \nb\t\n\n\n", "a\nb"),
    ("leading blank lines of the expected output", "\n\ntensor([1., 2.])", "tensor([1., 2.])"),
    ("leading blank line printed", "x", "\nx"),
    ("crlf", "a\r\nb\r\n", "a\nb\n"),
    ("blankline marker", "a\n<BLANKLINE>\nb", "a\n\nb"),
    ("float formatting", "tensor([1., 2.])", "tensor([1.0000, 2.0000])"),
    ("1.0 vs 1.", "1.0", "1."),
    ("negative zero", "tensor([-0., 1.])", "tensor([0., 1.])"),
    ("device cuda:0", "tensor([1., 2.], device='cuda:0')", "tensor([1., 2.])"),
    ("device cuda", "tensor([1.], device='cuda')", "tensor([1.])"),
    ("device both sides", "tensor([1.], device='cpu')", "tensor([1.], device='cuda:0')"),
    (
        "device with grad",
        "tensor([1.], device='cuda:0', requires_grad=True)",
        "tensor([1.], requires_grad=True)",
    ),
    ("scientific notation", "tensor([1.0000e-08, 1.0000e+00])", "tensor([1e-08, 1.])"),
    ("exponent forms", "1E+03", "1000.0"),
    ("within tolerance", "0.33333334", "0.333333"),
    ("within absolute tolerance", "tensor([1.0000e-09])", "tensor([0.])"),
    ("float32 printing", "tensor(0.3333)", "tensor(0.33333334)"),
    (
        "column alignment",
        "tensor([[ 1.,  2.],\n        [10., 20.]])",
        "tensor([[1., 2.],\n        [10., 20.]])",
    ),
    (
        "rewrapped inside brackets",
        "tensor([0.1000, 0.2000, 0.3000,\n        0.4000])",
        "tensor([0.1, 0.2, 0.3, 0.4])",
    ),
    ("nan", "tensor([nan, 1.])", "tensor([nan, 1.0000])"),
    ("infinities", "tensor([-inf, inf])", "tensor([-inf, inf])"),
    ("negative numbers", "tensor([-1.5000, -2.0000])", "tensor([-1.5, -2.])"),
    ("spacing around operators", "x - 1", "x-1"),
    ("python floats", "[0.1, 0.2]", "[0.10000000000000001, 0.2]"),
    ("dtype kept", "tensor([1, 2], dtype=torch.int32)", "tensor([1,2], dtype=torch.int32)"),
    ("several lines", "tensor(3.)\nTrue\n(2, 3)", "tensor(3.0000)\nTrue\n(2, 3)   "),
    ("empty", "", "\n\n"),
    ("rounds to the printed digits", "0.3333", "0.33333334"),
    ("rounds to two decimals", "loss 0.25", "loss 0.2549"),
    ("rounds in scientific notation", "1.2346e-05", "1.23456e-05"),
]

NOT_MATCHING = [
    ("1.0 vs 1.1", "1.0", "1.1"),
    ("outside tolerance", "tensor([0.3333])", "tensor([0.3340])"),
    ("exponent differs", "1e-3", "1e-2"),
    ("sign differs", "tensor([-1.])", "tensor([1.])"),
    ("different shapes", "tensor([1., 2.])", "tensor([[1., 2.]])"),
    ("more elements", "tensor([1., 2., 3.])", "tensor([1., 2.])"),
    ("extra line", "a\nb", "a"),
    ("extra trailing output", "tensor(1.)", "tensor(1.)\ndone"),
    ("missing line", "a\nb\nc", "a\nc"),
    ("integer vs float tensor", "tensor([1, 2])", "tensor([1., 2.])"),
    ("integers are exact", "123456789", "123456780"),
    ("int vs float", "100", "100.0"),
    ("words", "True", "False"),
    ("nan is not a number", "tensor([nan])", "tensor([0.])"),
    ("inf sign", "tensor([inf])", "tensor([-inf])"),
    ("dtype differs", "tensor([1.], dtype=torch.float64)", "tensor([1.])"),
    ("split word", "ab", "a b"),
    ("split number", "12", "1 2"),
    ("line break outside brackets", "a\nb", "a b"),
    ("text", "hello world", "hello, world"),
    ("empty vs something", "", "0"),
    ("requires_grad", "tensor([1.], requires_grad=True)", "tensor([1.])"),
    ("last digit off by one", "tensor(0.3333)", "tensor(0.3335)"),
    ("integral float is exact", "tensor([1., 2.])", "tensor([1.4000, 2.0000])"),
    ("one decimal is exact", "0.5", "0.54"),
    ("does not round to it", "0.25", "0.2551"),
]


@pytest.mark.parametrize(("case", "expected", "actual"), MATCHING, ids=[c[0] for c in MATCHING])
def test_matching_outputs(case: str, expected: str, actual: str) -> None:
    assert compare_output(expected, actual) == (True, "")
    assert compare_output(actual, expected) == (True, ""), "comparison must be symmetric"


@pytest.mark.parametrize(("case", "expected", "actual"), NOT_MATCHING, ids=[c[0] for c in NOT_MATCHING])
def test_differing_outputs(case: str, expected: str, actual: str) -> None:
    ok, diff = compare_output(expected, actual)
    assert not ok
    assert diff.startswith("--- expected\n+++ actual")
    assert not compare_output(actual, expected)[0]


def test_diff_shows_both_sides() -> None:
    ok, diff = compare_output("tensor([1., 2.])\nsame", "tensor([1., 3.])\nsame")
    assert not ok
    assert "-tensor([1., 2.])" in diff.splitlines()
    assert "+tensor([1., 3.])" in diff.splitlines()
    assert " same" in diff.splitlines()


def test_tolerances_are_parameters() -> None:
    assert compare_output("1.0", "1.05", rel_tol=0.1)[0]
    assert not compare_output("1.0", "1.05")[0]
    assert compare_output("0.0", "0.001", abs_tol=0.01)[0]
    assert not compare_output("0.0", "0.001")[0]


def test_normalise_output() -> None:
    assert normalise_output("tensor([1.], device='cuda:0')  \n\n") == "tensor([1.])"
    assert normalise_output("a\r\n<BLANKLINE>\r\nb") == "a\n\nb"
