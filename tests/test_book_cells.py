"""The D2L book's own cells through the real torch worker and a real knowledge base.

The notes are abridged copies of the book's chapter_preliminaries (tests/fixtures/book,
CC BY-SA / MIT-0): d2lbook tabs, `%matplotlib inline`, the `d2l` package (not
installed here), pandas writing `../data/house_tiny.csv`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from d2lkb.checks.snippets import SnippetResult, SnippetRunner
from d2lkb.cli import app
from d2lkb.model import CheckStatus, Snippet
from tests.conftest import write

BOOK = Path(__file__).parent / "fixtures" / "book" / "chapter_preliminaries"
PASSED, SKIPPED, ERROR = CheckStatus.PASSED, CheckStatus.SKIPPED, CheckStatus.ERROR


def snip(code: str, expected: str | None = None) -> Snippet:
    return Snippet("python", code, 1, None, expected)


@pytest.fixture(scope="module")
def runner():
    with SnippetRunner(device="cpu", timeout=120) as r:
        yield r


@pytest.fixture
def book(tmp_path: Path) -> Path:
    notes = tmp_path / "notes" / "chapter_preliminaries"
    shutil.copytree(BOOK, notes)
    return notes.parent


def by_line(report) -> dict[tuple[str, int], object]:
    return {(Path(r.path).name, r.line): r for r in report.results if r.kind == "snippet"}


def statuses(results: list[SnippetResult]) -> list[CheckStatus]:
    return [r.status for r in results]


def test_preliminaries_pytorch_cells_pass_and_the_others_are_skipped_with_reasons(make_kb, book):
    kb = make_kb(book)
    kb.trust(book)
    kb.sync()
    report = kb.run_checks(device="cpu")
    assert report.ok, [(r.path, r.line, r.detail) for r in report.failures]
    results = by_line(report)
    pandas = sorted((line, r) for (name, line), r in results.items() if name == "pandas.md")
    assert [r.status for _, r in pandas] == [SKIPPED, PASSED, PASSED, PASSED, PASSED, SKIPPED, PASSED, SKIPPED,
                                             SKIPPED]
    assert "d2lbook tab selector" in pandas[0][1].detail
    assert pandas[5][1].detail == "a mxnet cell; d2lkb runs the pytorch cells (checks.framework)"
    # the `tab.selected('pytorch')` branch ran, and its output matched
    tab = sorted((line, r) for (name, line), r in results.items() if name == "tab-selected.md")
    assert [r.status for _, r in tab] == [SKIPPED, PASSED, PASSED, PASSED]
    assert tab[3][1].detail == "output matches"


def test_cells_needing_d2l_are_skipped_and_the_rest_of_the_note_still_runs(make_kb, book):
    kb = make_kb(book)
    kb.trust(book)
    kb.sync()
    report = kb.run_checks(device="cpu")
    probability = sorted((line, r) for (name, line), r in by_line(report).items() if name == "probability.md")
    pytorch = [(line, r) for line, r in probability if "cells (checks.framework)" not in r.detail]
    # imports (needs d2l), random tosses, fair_probs, Multinomial, the plot (needs d2l)
    assert [r.status for _, r in pytorch] == [SKIPPED, PASSED, PASSED, PASSED, SKIPPED]
    imports, plot = pytorch[0][1], pytorch[-1][1]
    assert imports.detail == ("needs the d2l package, which is not installed (line 3: `from d2l import torch as d2l`);"
                              " the rest of the snippet ran")
    assert "Traceback" not in plot.detail
    assert plot.detail.startswith("line 7: needs the d2l package, which is not installed (snippet 3, line 3: ")


def test_mxnet_selected_gives_mxnet_cells_a_clear_reason(tmp_path, book):
    result = CliRunner().invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(book), "trust", str(book)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(book), "check", "--json",
                                      "--framework", "mxnet", "--device", "cpu", "kind:snippet"])
    data = json.loads(result.stdout)
    pandas = sorted((r["line"], r) for r in data["results"] if r["path"].endswith("pandas.md"))
    details = [r["detail"] for _, r in pandas]
    assert details[5].startswith("line 4: needs the mxnet package, which is not installed (snippet 6, line 2: ")
    assert details[6] == "a pytorch cell; d2lkb runs the mxnet cells (checks.framework)"
    assert [r["status"] for _, r in pandas][1:5] == ["passed"] * 4  # the `%%tab all` cells
    bad = CliRunner().invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(book), "check", "--framework", "caffe"])
    assert bad.exit_code == 2 and "--framework must be one of pytorch, mxnet, tensorflow, jax" in bad.output


def test_framework_in_config(tmp_path):
    from d2lkb.config import load_config

    write(tmp_path / "kb" / "config.toml", '[checks]\nframework = "jax"\n')
    assert load_config(tmp_path / "kb").checks.framework == "jax"
    write(tmp_path / "kb" / "config.toml", '[checks]\nframework = "theano"\n')
    with pytest.raises(ValueError, match="framework must be one of pytorch, mxnet, tensorflow, jax"):
        load_config(tmp_path / "kb")


def test_relative_paths_stay_in_the_runs_temporary_directory(runner, tmp_path):
    # pandas.md writes ../data/house_tiny.csv; d2lkb must not write next to the notes or its cwd
    code = (BOOK / "pandas.md").read_text().split("```{.python .input}\n%%tab all\n")[1].split("```")[0]
    check = (
        "import os, tempfile\n"
        "top = os.path.realpath(os.environ['TMPDIR'])\n"
        "for p in (data_file, '../../x.txt', '../../../y.txt'):\n"
        "    open(p, 'a').close()\n"
        "    print(os.path.realpath(p).startswith(top + os.sep))\n"
        "print(top)"
    )
    results = runner.run_note([snip(code), snip(check)])
    assert statuses(results) == [PASSED, PASSED]
    *inside, top = results[1].output.split()
    assert inside == ["True", "True", "True"]
    assert not Path(top).exists()  # removed with the run


def test_python_hash_seed_and_seeds_are_fixed(runner):
    code = "import os, random, numpy, torch\nprint(os.environ['PYTHONHASHSEED'], hash('d2l'), random.random(), numpy.random.rand(), torch.rand(1).item())"
    first = runner.run_note([snip(code)])[0].output
    with SnippetRunner(device="cpu") as other:  # another worker: another interpreter
        second = other.run_note([snip(code)])[0].output
    assert first == second and first.startswith("0 ")


def test_missing_package_network_and_their_dependents(runner):
    results = runner.run_note([
        snip("import d2l_not_installed_anywhere\nx = 1"),
        snip("print(x)"),
        snip("import urllib.request\nraw = urllib.request.urlopen('http://d2l.ai/data.csv').read()\nn = 3"),
        snip("print(len(raw))"),
        snip("open('../data/kaggle_house_pred_train.csv').read()"),
        snip("print('independent')"),
        snip("undefined_name"),
        snip("print('not reached')"),
    ])
    assert statuses(results) == [SKIPPED, PASSED, SKIPPED, SKIPPED, SKIPPED, PASSED, ERROR, SKIPPED]
    assert results[0].detail.startswith("needs the d2l_not_installed_anywhere package, which is not installed")
    assert results[1].output == "1\n"
    assert results[2].detail == "line 2: needs the network, which d2lkb cuts off for snippets"
    assert results[3].detail == ("line 1: depends on snippet 3 (needs the network, which d2lkb cuts off for snippets):"
                                 " NameError: name 'raw' is not defined")
    assert results[4].detail == ("line 1: FileNotFoundError: [Errno 2] No such file or directory: "
                                 "'../data/kaggle_house_pred_train.csv': probably a file snippet 3 would have made"
                                 " (needs the network, which d2lkb cuts off for snippets)")
    assert "NameError: name 'undefined_name' is not defined" in results[6].detail  # a real error stays one
    assert results[7].detail == "earlier snippet failed: snippet 7 (error)"


def test_a_cell_using_what_a_stopped_cell_half_made_depends_on_it(runner):
    # modelled on chapter_hyperparameter-optimization/hyperopt-intro.md (scipy not installed)
    results = runner.run_note([
        snip("from d2l_absent_stats import stats\nconfig_space = {'learning_rate': stats.loguniform(1e-4, 1)}"),
        snip("errors, values = [], []\nfor i in range(5):\n    learning_rate = config_space['learning_rate'].rvs()\n"
             "    errors.append(learning_rate)"),
        snip("import numpy as np\nbest_idx = np.argmin(errors)"),
        snip("print(len(values))"),
        snip("values[3]"),
    ])
    assert statuses(results) == [SKIPPED, SKIPPED, SKIPPED, PASSED, SKIPPED]
    assert results[1].detail.startswith("line 3: depends on snippet 1 (needs the d2l_absent_stats package, which is not"
                                        " installed (snippet 1, line 1: `from d2l_absent_stats import stats`)):"
                                        " NameError: name 'config_space' is not defined")
    assert results[2].detail == ("line 2: ValueError: attempt to get argmin of an empty sequence: probably because it"
                                 " uses errors, which snippet 2 did not finish making (needs the d2l_absent_stats"
                                 " package, which is not installed (snippet 1, line 1: `from d2l_absent_stats import"
                                 " stats`))")
    assert results[3].output == "0\n"  # a cell that does not fail is not skipped


def test_a_cell_needing_a_second_gpu_is_skipped(runner):
    # use-gpu.md's `Z = X.cuda(1)` on a machine with one GPU raises this (torch's own message)
    results = runner.run_note([
        snip("raise RuntimeError('CUDA error: invalid device ordinal')"),
        snip("print('after')"),
    ])
    assert statuses(results) == [SKIPPED, SKIPPED]
    assert results[0].detail == ("needs more GPUs than this machine has:"
                                 " RuntimeError: CUDA error: invalid device ordinal")
    assert results[1].detail == "earlier snippet skipped: snippet 1 needs CUDA"


def test_magics_are_emulated(runner):
    results = runner.run_note([
        snip("%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 4])\nplt.savefig('p.png')"),
        snip("%%time\ntotal = sum(range(10))"),
        snip("!echo from the shell\nprint(total)"),
        snip("files = !ls\nprint(files)"),
        snip("%timeit total * 2"),
        snip("%%tab jax\nprint('a cell of another framework')"),
    ])
    assert statuses(results) == [PASSED] * 5 + [SKIPPED]
    assert results[2].output == "from the shell\n45\n"
    assert results[3].output == "['p.png']\n"
    assert "Wall time" in results[1].detail  # on stderr, so no expected output is broken


def test_a_framework_selector_magic_does_not_fail(runner):
    results = runner.run_note([
        snip("%load_ext d2lbook.tab\ntab.interact_select(['mxnet', 'pytorch', 'tensorflow', 'jax'])"),
        snip("%%tab all\nprint(tab.selected('pytorch'), tab.selected('mxnet', 'jax'), tab.selected(['pytorch']))"),
    ])
    assert statuses(results) == [SKIPPED, PASSED]
    assert results[1].output == "True False True\n"


def test_leading_blank_lines_of_an_expected_output_do_not_fail(runner):
    [result] = runner.run_note([snip("import torch\ntorch.ones(2)", expected="\n\ntensor([1., 1.])")])
    assert result.status is PASSED, result.detail


def test_failed_and_skipped_notes_are_cached(make_kb, notes_dir, monkeypatch):
    write(notes_dir / "broken.md", "```python\nx = 1 / 0\n```\n\n```python\nprint('after')\n```\n\n"
          "```{.python .input}\nimport d2l_absent_package\n```\n")
    kb = make_kb()
    kb.trust(notes_dir)
    kb.sync()
    first = kb.run_checks(device="cpu")
    assert [r.status for r in first.results] == [ERROR, SKIPPED, SKIPPED]
    import d2lkb.checks.snippets as snippets

    started: list[int] = []
    real = snippets.SnippetRunner

    def counting(*args, **kwargs):
        started.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(snippets, "SnippetRunner", counting)
    again = kb.run_checks(device="cpu")
    assert not started and all(r.cached for r in again.results)
    assert [(r.status, r.detail) for r in again.results] == [(r.status, r.detail) for r in first.results]
    # another framework is another key
    kb.run_checks(device="cpu", framework="mxnet")
    assert started


def test_installing_a_package_invalidates_the_cache(make_kb, notes_dir, tmp_path, monkeypatch):
    write(notes_dir / "n.md", "```python\nimport torch\ntorch.ones(1)\n```\n")
    kb = make_kb()
    kb.trust(notes_dir)
    kb.sync()
    kb.run_checks(device="cpu")
    assert all(r.cached for r in kb.run_checks(device="cpu").results)
    # "install" a distribution: its metadata in a folder on sys.path, as pip leaves it
    site = tmp_path / "site"
    write(site / "freshly_installed-1.0.dist-info" / "METADATA", "Metadata-Version: 2.1\nName: freshly-installed\n"
          "Version: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    assert not any(r.cached for r in kb.run_checks(device="cpu").results)
    assert all(r.cached for r in kb.run_checks(device="cpu").results)
    # another package into the same folder (its time changes: nanoseconds on Linux file systems)
    write(site / "second_package-2.0.dist-info" / "METADATA", "Metadata-Version: 2.1\nName: second-package\n"
          "Version: 2.0\n")
    assert not any(r.cached for r in kb.run_checks(device="cpu").results)
    assert all(r.cached for r in kb.run_checks(device="cpu").results)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(site)])  # "uninstalled"
    assert all(r.cached for r in kb.run_checks(device="cpu").results)  # the earlier environment's results
