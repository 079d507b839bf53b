"""Formula checks with the real SymPy, in real worker processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from d2lkb.checks.formulas import FormulaResult
from d2lkb.checks.latex import LatexError, function_letters, normalise, split_formula
from d2lkb.checks.pool import FormulaChecker, check_formula, check_sympy_block
from d2lkb.model import CheckStatus

V, R, D, U, S = (
    CheckStatus.VERIFIED,
    CheckStatus.REFUTED,
    CheckStatus.DEFINITION,
    CheckStatus.UNPARSED,
    CheckStatus.SKIPPED,
)


@pytest.fixture(scope="module")
def fc():
    with FormulaChecker(timeout=10.0, jobs=2) as checker:
        yield checker


def latex(fc: FormulaChecker, source: str, **kw) -> FormulaResult:
    return fc.check("latex", source, **kw)


CONSTANT_MULTIPLE = r"\frac{d}{dx} [C f(x)] = C \frac{d}{dx} f(x)"
SUM = r"\frac{d}{dx} [f(x) + g(x)] = \frac{d}{dx} f(x) + \frac{d}{dx} g(x)"
PRODUCT = r"\frac{d}{dx} [f(x) g(x)] = f(x) \frac{d}{dx} g(x) + g(x) \frac{d}{dx} f(x)"
QUOTIENT = r"\frac{d}{dx} \frac{f(x)}{g(x)} = \frac{g(x) \frac{d}{dx} f(x) - f(x) \frac{d}{dx} g(x)}{g^2(x)}"
POWER = r"\frac{d}{dx} x^n = n x^{n-1}"
QUOTIENT_PLUS = (
    r"\frac{d}{dx} \frac{f(x)}{g(x)} = \frac{g(x) \frac{d}{dx} f(x) + f(x) \frac{d}{dx} g(x)}{g^2(x)}"
)
ALIGNED = (
    r"\begin{aligned} \frac{d}{dx} [C f(x)] & = C \frac{d}{dx} f(x) && \textrm{Constant multiple rule} \\"
    r" \frac{d}{dx} [f(x) + g(x)] & = \frac{d}{dx} f(x) + \frac{d}{dx} g(x) && \textrm{Sum rule} \\"
    r" \frac{d}{dx} [f(x) g(x)] & = f(x) \frac{d}{dx} g(x) + g(x) \frac{d}{dx} f(x) && \textrm{Product rule} \\"
    r" \frac{d}{dx} \frac{f(x)}{g(x)} & = \frac{g(x) \frac{d}{dx} f(x) - f(x) \frac{d}{dx} g(x)}{g^2(x)}"
    r" && \textrm{Quotient rule} \end{aligned}"
)


# -- pure normalisation (no SymPy) ----------------------------------------------------------------


def test_importing_the_checks_does_not_import_sympy():
    code = (
        "import sys, d2lkb.checks.formulas, d2lkb.checks.pool, d2lkb.checks.latex\n"
        "assert 'sympy' not in sys.modules, 'sympy imported'\n"
        "assert 'antlr4' not in sys.modules, 'antlr4 imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_aligned_rows_split_with_labels_and_conditions():
    relations = split_formula(ALIGNED)
    assert [r.label for r in relations] == [
        "Constant multiple rule",
        "Sum rule",
        "Product rule",
        "Quotient rule",
    ]
    assert relations[2].sides == (
        r"\frac{d}{dx} [f(x) g(x)]",
        r"f(x) \frac{d}{dx} g(x) + g(x) \frac{d}{dx} f(x)",
    )
    assert all(r.links == ("=",) for r in relations)

    (power,) = split_formula(r"\frac{d}{dx} x^n = n x^{n-1} \quad \textrm{for } n \neq 0.")
    assert power.label is None
    assert power.conditions == (r"for n \neq 0",)
    assert power.sides == (r"\frac{d}{dx} x^n", "n x^{n-1}")


def test_continued_rows_and_chains_become_one_relation():
    (relation,) = split_formula(r"\begin{aligned} a &= b \\ &= c, \end{aligned}")
    assert relation.sides == ("a", "b", "c")
    assert relation.links == ("=", "=")
    (inequality,) = split_formula(r"P(A) \geq 0")
    assert inequality.links == (r"\geq",)
    first, second = split_formula(r"h(x) = f(x) g(x), \quad h'(x) = f'(x) g(x) + f(x) g'(x).")
    assert first.sides == ("h(x)", "f(x) g(x)")
    assert second.sides == ("h'(x)", "f'(x) g(x) + f(x) g'(x)")
    (expectation,) = split_formula(r"\mathbb{E}[X] = \sum_x x P(X = x)")
    assert expectation.sides == (r"\mathbb{E}[X]", r"\sum_x x P(X = x)")


def test_normalise_rewrites_what_the_parser_cannot_read():
    fns = frozenset("fg")
    bold = normalise(r"\mathbf{x} + \boldsymbol{\theta} + \mathbf{A}")
    assert sorted(a.kind for a in bold.atoms.values()) == ["matrix", "vector", "vector"]
    assert all(f"\\{name}" in bold.text for name in bold.atoms)
    assert normalise(r"\left( a \right) \rightarrow b").text == r"( a ) \rightarrow b"
    assert normalise(r"g^2(x)", fns).text == "(g(x))^{2}"
    assert normalise(r"\frac{d^2}{dx^2} f(x)", fns).text == r"\frac{d}{d x} \frac{d}{d x} f(x)"
    assert normalise(r"\frac{n(n+1)}{2}").text == r"\frac{n \cdot (n+1)}{2}"
    assert normalise(r"\operatorname{sgn}(x)").operators == {"sgn"}
    assert function_letters(r"f(x) g^2(x) n(n+1) n") == {"f", "g"}


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (r"\mathbf{x} \frob y", r"unknown LaTeX command \frob"),
        (r"\begin{tabular}{c} x \end{tabular}", "the tabular environment is not supported"),
        (r"x_1 + \ldots + x_n", "ellipsis"),
        (r"mathbf x", "'mathbf' would be read as the product m*a*t*h*b*f"),
        (r"\foo{", "unbalanced braces"),
    ],
)
def test_normalise_refuses_with_a_reason(source, reason):
    with pytest.raises(LatexError, match=re.escape(reason)):
        normalise(source)


# -- LaTeX formulas -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [CONSTANT_MULTIPLE, SUM, PRODUCT, QUOTIENT, POWER])
def test_derivative_rules_verify(fc, source):
    result = latex(fc, source)
    assert result.status == V, result.detail
    assert result.method == "symbolic", result.detail
    assert result.detail.startswith("symbolic")


def test_derivative_rules_as_aligned_rows_verify_and_keep_their_names(fc):
    result = latex(fc, ALIGNED)
    assert result.status == V, result.detail
    assert result.names == ("Constant multiple rule", "Sum rule", "Product rule", "Quotient rule")
    assert result.detail.count("verified") == 4


def test_power_rule_with_a_condition_label(fc):
    result = latex(fc, r"\frac{d}{dx} x^n = n x^{n-1} \quad \textrm{for } n \neq 0.")
    assert result.status == V, result.detail
    assert result.names == ()
    assert "for n" in result.detail


def _assert_counterexample(detail: str, *variables: str) -> None:
    for variable in variables:
        assert re.search(rf"\b{variable} = -?\d", detail), detail
    m = re.search(r"left = (\S+), right = (\S+?)\)?(?:$|\s|;)", detail)
    assert m, detail
    assert m.group(1) != m.group(2)


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        (QUOTIENT_PLUS, ["x"]),
        (r"\frac{d}{dx} [f(x) g(x)] = f(x) \frac{d}{dx} g(x)", ["x"]),
        (r"\frac{d}{dx} x^n = x^{n-1}", ["x", "n"]),
    ],
)
def test_wrong_rules_are_refuted_with_a_counterexample(fc, source, variables):
    result = latex(fc, source)
    assert result.status == R, result.detail
    _assert_counterexample(result.detail, *variables)
    if "f(x)" in source:
        assert "f(t) = sin(t) + 2" in result.detail


def test_refutation_is_reproducible_with_a_seed(fc):
    source = r"\frac{d}{dx} x^n = x^{n-1}"
    assert latex(fc, source, seed=7).detail == latex(fc, source, seed=7).detail


@pytest.mark.parametrize(
    "source",
    [
        r"f'(x) = \lim_{h \rightarrow 0} \frac{f(x+h) - f(x)}{h}.",
        r"\|\mathbf{x}\|_2 = \sqrt{\sum_{i=1}^n x_i^2}",
        r"\|\mathbf{x}\|_1 = \sum_{i=1}^n \left|x_i \right|",
        r"\|\mathbf{X}\|_\textrm{F} = \sqrt{\sum_{i=1}^m \sum_{j=1}^n x_{ij}^2}",
        r"\nabla_{\mathbf{x}} f(\mathbf{x}) = \left[\partial_{x_1} f(\mathbf{x}), \partial_{x_2} f(\mathbf{x}),"
        r" \ldots \partial_{x_n} f(\mathbf{x})\right]^\top",
        r"\sigma(x) := \frac{1}{1 + e^{-x}}",
    ],
)
def test_definitions_are_recognised(fc, source):
    result = latex(fc, source)
    assert result.status == D, result.detail
    assert result.method == "definition"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (r"\foo{", "unbalanced braces"),
        (r"\mathbf{x} \frob y = 2", r"\frob"),
        (r"}{", "unbalanced braces"),
        (r"\mathit{abc} = 1", "'abc' was read as a single symbol"),  # caught after parsing
        (r"x \mathrm{is} = 1", r"\is"),
        (r"x + = 2", "cannot parse"),
    ],
)
def test_garbage_is_unparsed_never_verified(fc, source, reason):
    result = latex(fc, source)
    assert result.status == U, result.detail
    assert reason in result.detail


@pytest.mark.parametrize(
    "source",
    [
        r"(a+b)^2 = a^2 + 2ab + b^2",
        r"\sin^2 x + \cos^2 x = 1",
        r"e^{i\pi} = -1",
        r"\sum_{i=1}^{n} i = \frac{n(n+1)}{2}",
        r"\frac{d}{dx} [f(g(x))] = f'(g(x)) g'(x)",
    ],
)
def test_identities_verify_symbolically(fc, source):
    result = latex(fc, source)
    assert result.status == V, result.detail
    assert result.method == "symbolic"


def test_numeric_verification_names_points_and_domain(fc):
    result = latex(fc, r"\ln(ab) = \ln a + \ln b")
    assert result.status == V, result.detail
    assert result.method == "numeric"
    assert result.detail.startswith("numeric at 6 random points")
    assert "holds for positive values only" in result.detail


def test_a_sum_of_indexed_terms_is_not_a_sum_of_constants(fc):
    # x_i under the sum depends on i; the x_i outside is a free index: never "verified"
    result = latex(fc, r"\sum_{i=1}^n x_i^2 = n x_i^2")
    assert result.status != V, result.detail
    assert latex(fc, r"\sum_{i=1}^n x_i = \sum_{j=1}^n x_j").status == V


def test_a_chain_checks_each_neighbouring_pair(fc):
    good = latex(fc, r"(x+1)^2 = x^2 + 2x + 1 = (x+1)(x+1)")
    assert good.status == V, good.detail
    assert good.detail.count("verified") == 2

    bad = latex(fc, r"(x+1)^2 = x^2 + 2x + 1 = x^2 + 1")
    assert bad.status == R, bad.detail
    assert re.search(r"\(x\+1\)\^2 = x\^2 \+ 2x \+ 1: verified", bad.detail), bad.detail
    assert re.search(r"x\^2 \+ 2x \+ 1 = x\^2 \+ 1: refuted \(at x = ", bad.detail), bad.detail


@pytest.mark.parametrize("source", [r"P(A) \geq 0", r"\frac{d}{dx} x^n", r"x \in \mathbb{R}"])
def test_non_equations_are_skipped(fc, source):
    result = latex(fc, source)
    assert result.status == S
    assert result.detail == "not an equation"


# -- ```sympy blocks and time limits ---------------------------------------------------------------


def test_sympy_block_with_true_and_false_asserts(fc):
    true = fc.check("sympy", "x = symbols('x')\nassert simplify(sin(x)**2 + cos(x)**2) == 1\n")
    assert true.status == V, true.detail
    assert true.method == "sympy"

    false = fc.check(
        "sympy",
        "x = symbols('x')\nassert expand((x + 1)**2) == x**2 + 2*x + 1\nassert expand((x + 1)**2) == x**2 + 1, 'no 2x'\n",
    )
    assert false.status == R
    assert false.detail.startswith("line 3: assert expand((x + 1)**2) == x**2 + 1, 'no 2x' failed: no 2x")

    error = fc.check("sympy", "x = symbols('x')\nprint('noise')\ny = 1 / 0\n")
    assert error.status == CheckStatus.ERROR
    assert error.detail == "line 3: ZeroDivisionError: division by zero"


# Time limits count CPU time (ITIMER_PROF, then RLIMIT_CPU); a wall-clock backstop in the
# parent ends what uses no CPU. None of these tests depends on how fast the machine is: a
# limit that must not fire is an hour, and a block that must be stopped never ends by itself.
HOUR = 3600.0

IGNORE_SIGNALS = (
    "import signal\n"
    "for s in (signal.SIGPROF, signal.SIGALRM, signal.SIGTERM, signal.SIGINT):\n"
    "    signal.signal(s, signal.SIG_IGN)\n"
)


def test_a_busy_block_hits_the_cpu_limit_is_retried_once_and_the_checker_goes_on(fc):
    result = fc.check("sympy", "while True:\n    pass\n", timeout=0.5, wall_timeout=HOUR)
    assert result.status == CheckStatus.TIMEOUT
    assert result.detail.startswith("no result within 0.5 s of CPU time"), result.detail
    assert "tried 2 times" in result.detail
    assert latex(fc, POWER).status == V


def test_a_busy_block_that_ignores_the_alarm_is_ended_by_the_kernel_cpu_limit():
    code = IGNORE_SIGNALS + "while True:\n    try:\n        pass\n    except BaseException:\n        pass\n"
    with FormulaChecker(timeout=0.5, jobs=1, retries=0, wall_timeout=HOUR) as checker:
        result = checker.check("sympy", code)
        assert result.status == CheckStatus.TIMEOUT
        assert "of CPU time (the alarm could not interrupt it); the checker process was killed" in result.detail
        assert checker.check("sympy", "assert 1 + 1 == 2").status == V


def test_a_sleeping_block_that_ignores_signals_is_stopped_by_the_wall_backstop():
    sleeper = IGNORE_SIGNALS + (
        "import time\nwhile True:\n    try:\n        time.sleep(10**6)\n    except BaseException:\n        pass\n"
    )
    with FormulaChecker(timeout=HOUR, jobs=1, retries=0, wall_timeout=1.0) as checker:
        result = checker.check("sympy", sleeper)
        assert result.status == CheckStatus.TIMEOUT
        assert result.detail.startswith("no result within 1 s of wall-clock time (sleeping, blocked or starved")
        assert result.detail.endswith("the checker process was killed")
        assert checker.check("sympy", "assert 1 + 1 == 2").status == V


def test_a_timeout_is_retried_in_a_fresh_worker(fc):
    """(A block cannot leave a trace for its retry: it runs in a sandbox, see test_sandbox.py.)"""
    result = fc.check("sympy", "while True:\n    pass\n", timeout=0.5, wall_timeout=HOUR)
    assert result.status == CheckStatus.TIMEOUT, result.detail
    assert result.detail.endswith("(tried 2 times, the last in a fresh checker process)"), result.detail


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(c) for c in children.read().split()]
    except OSError:
        return []


@pytest.mark.parametrize(("retries", "status"), [(1, V), (0, CheckStatus.ERROR)])
def test_a_worker_that_dies_is_replaced_and_its_task_retried(retries, status):
    import threading

    code = "import time\ntime.sleep(2)\nassert True\n"
    with FormulaChecker(jobs=1, retries=retries, wall_timeout=HOUR) as checker:
        assert checker.check("sympy", "assert True").status == V
        worker = checker._workers[0].process

        def kill_when_busy() -> None:
            for _ in range(60000):  # until the worker runs the block (in its sandbox, a child)
                if _children(worker.pid):
                    os.kill(worker.pid, 9)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        result = checker.check("sympy", code)
        killer.join()
        assert result.status == status, result.detail
        if retries == 0:
            assert result.detail == "the checker process died (exit code -9)"
        assert checker.check("sympy", "assert 2 + 2 == 4").status == V


def test_stop_ends_a_wedged_worker_and_never_raises():
    """A worker busy with a block that ignores SIGTERM and the alarm, sleeping."""
    from d2lkb.checks.pool import _Job, _Worker

    code = IGNORE_SIGNALS + "import time\nwhile True:\n    time.sleep(1)\n"
    worker = _Worker(startup_timeout=HOUR)
    try:
        assert worker.conn.recv()[0] == "ready"
        worker.send(1, _Job("key", "sympy", code, HOUR, HOUR, 0))
        for _ in range(6000):  # at most ten minutes, only to not hang the suite if the worker broke
            if _children(worker.process.pid):
                break
            time.sleep(0.1)
        assert _children(worker.process.pid) and worker.is_alive()
    finally:
        worker.stop()
    assert worker.process.poll() is not None
    worker.stop()  # twice is fine too


def test_an_abandoned_run_kills_its_busy_workers():
    sleeper = "import time\ntime.sleep(10**6)\n"
    items = [("power", "latex", POWER), ("sleeper", "sympy", sleeper)]
    with FormulaChecker(jobs=2, wall_timeout=HOUR) as checker:
        for key, result in checker.check_many(items):
            assert (key, result.status) == ("power", V)
            processes = [w.process for w in checker._workers]
            break
    assert len(processes) == 2
    assert all(p.poll() is not None for p in processes)


def test_default_jobs_is_the_available_cores():
    from d2lkb.checks.pool import available_cores

    assert available_cores() == len(os.sched_getaffinity(0))
    with FormulaChecker() as checker:
        assert checker.jobs == available_cores()


def test_check_many_yields_every_key_and_reports_progress():
    seen = []
    items = [
        ("power", "latex", POWER),
        ("wrong", "latex", r"\frac{d}{dx} x^n = x^{n-1}"),
        ("block", "sympy", "assert Rational(1, 2) + Rational(1, 2) == 1"),
        ("garbage", "latex", r"\foo{"),
    ]
    with FormulaChecker(timeout=10.0, jobs=2, on_result=lambda key, result: seen.append(key)) as checker:
        results = dict(checker.check_many(items))
    assert {k: r.status for k, r in results.items()} == {"power": V, "wrong": R, "block": V, "garbage": U}
    assert sorted(seen) == sorted(results)
    assert all(r.seconds >= 0 for r in results.values())


def test_module_level_functions():
    assert check_formula(r"e^{i\pi} = -1").status == V
    assert check_sympy_block("assert 2 + 2 == 5, 'arithmetic'").status == R
