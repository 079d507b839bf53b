"""Which of a note's cells run, and as what Python: d2lbook tabs, selectors, IPython magics.

Pure (no worker): `d2lkb.checks.cells.plan_note` and the tab markers of
`d2lkb.notes.fences`. The cells are the D2L book's own (tests/fixtures/book).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from d2lkb.checks.cells import plan_note
from d2lkb.notes.fences import cell_tabs, strip_tab_marker
from d2lkb.notes.parse import parse_note

BOOK = Path(__file__).parent / "fixtures" / "book" / "chapter_preliminaries"


def book_cells(name: str) -> list[str]:
    note = parse_note((BOOK / name).read_text(encoding="utf-8"), name)
    return [s.code for s in note.snippets if s.language in ("python", "pycon")]


@pytest.mark.parametrize(
    ("code", "tabs"),
    [
        ("%%tab pytorch\nimport torch", ("pytorch",)),
        ("%%tab pytorch, mxnet, tensorflow\nx = 1", ("pytorch", "mxnet", "tensorflow")),
        ("#@tab mxnet,pytorch\nx = 1", ("mxnet", "pytorch")),
        ("#@tab all\nx = 1", ("all",)),
        ("# %%tab jax\n@d2l.add_to_class(ResNet)\ndef create_net(self): ...", ("jax",)),  # resnet.md
        ("import torch\nx = 1", None),
        ("s = '%%tab pytorch is not a marker here'", None),
    ],
)
def test_cell_tabs(code: str, tabs: tuple[str, ...] | None) -> None:
    assert cell_tabs(code) == tabs


def test_marker_line_is_emptied_not_removed() -> None:
    assert strip_tab_marker("%%tab pytorch\nx = 1\n") == "\nx = 1\n"  # line numbers stay


def test_pytorch_cells_and_all_cells_run_by_default() -> None:
    cells = book_cells("pandas.md")
    plan = plan_note(cells)
    assert plan.d2lbook and plan.framework == "pytorch"
    run = [cell.code is not None for cell in plan.cells]
    # selector, 4 `%%tab all` cells, then mxnet / pytorch / tensorflow / jax
    assert run == [False, True, True, True, True, False, True, False, False]
    assert plan.cells[0].reason.startswith("d2lbook tab selector")
    assert plan.cells[5].reason == "a mxnet cell; d2lkb runs the pytorch cells (checks.framework)"
    assert "%%tab" not in (plan.cells[6].code or "")
    assert (plan.cells[6].code or "").startswith("\nimport torch")


@pytest.mark.parametrize("framework", ["mxnet", "tensorflow", "jax"])
def test_other_frameworks_can_be_selected(framework: str) -> None:
    cells = book_cells("pandas.md")
    plan = plan_note(cells, framework)
    chosen = [i for i, cell in enumerate(plan.cells) if cell.code is not None]
    assert chosen == [1, 2, 3, 4, {"mxnet": 5, "tensorflow": 7, "jax": 8}[framework]]
    assert plan.cells[6].reason == f"a pytorch cell; d2lkb runs the {framework} cells (checks.framework)"


def test_unknown_framework_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown framework 'caffe'"):
        plan_note(["x = 1"], "caffe")


def test_cell_without_marker_in_a_tabbed_note_is_a_pytorch_cell() -> None:
    codes = ["%%tab mxnet\nfrom mxnet import np", "print('no marker')"]
    assert plan_note(codes).cells[1].code == "print('no marker')"
    assert plan_note(codes, "mxnet").cells[1].reason == "a pytorch cell; d2lkb runs the mxnet cells (checks.framework)"


def test_note_without_markers_runs_every_cell_whatever_the_framework() -> None:
    plan = plan_note(["import torch", "x = torch.ones(2)"], "jax")
    assert not plan.d2lbook
    assert [cell.code for cell in plan.cells] == ["import torch", "x = torch.ones(2)"]


def test_magics_are_translated_for_the_worker() -> None:
    plan = plan_note(book_cells("calculus.md"))
    imports = plan.cells[2].code or ""  # %%tab pytorch / %matplotlib inline / from d2l import ...
    assert "get_ipython().run_line_magic('matplotlib', 'inline')" in imports
    assert "from d2l import torch as d2l" in imports
    assert plan.cells[2].ipython and plan.ipython
    assert imports.split("\n")[2].startswith("from d2l import")  # the same line as in the note's cell


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("!pip install d2l==1.0.3", "installs packages (`!pip install d2l==1.0.3`): d2lkb installs nothing"),
        ("%pip install syne-tune", "installs packages (`%pip install syne-tune`): d2lkb installs nothing"),
        ("!wget http://d2l-data.s3-accelerate.amazonaws.com/kaggle_house_pred_train.csv",
         "needs the network (`!wget http://d2l-data.s3-accelerate.amazonaws.com/kaggle_house_pred_train.csv`);"
         " d2lkb runs snippets offline"),
        ("%load_ext tensorboard", "loads the IPython extension 'tensorboard', which d2lkb does not emulate"),
        ("%%writefile hello.py\nprint(1)", "uses the IPython magic `%writefile`, which d2lkb does not emulate"),
    ],
)
def test_magics_that_are_not_emulated_are_skipped_with_the_reason(code: str, reason: str) -> None:
    [cell] = plan_note([code]).cells
    assert cell.code is None and cell.reason == reason


def test_emulated_magics_and_plain_code() -> None:
    cells = plan_note(["%%time\nx = 1", "!ls -lh my_mlp*", "torch.ones?", "x = 1  # why?", "y = 2"]).cells
    assert all(cell.code is not None for cell in cells)
    assert [cell.ipython for cell in cells] == [True, True, True, False, False]
    assert cells[1].code == "get_ipython().system('ls -lh my_mlp*')\n"
    assert cells[3].code == "x = 1  # why?"  # a comment ending in "?" is not a help request


def test_selector_with_other_code_runs() -> None:
    code = "%load_ext d2lbook.tab\ntab.interact_select(['mxnet', 'pytorch'])\nx = 1"
    [cell] = plan_note([code]).cells
    assert cell.code is not None and cell.ipython
