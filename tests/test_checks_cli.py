"""`d2lkb check` end to end: real SymPy, real torch worker, real SQLite cache."""

from __future__ import annotations

import contextlib
import json
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from d2lkb.cli import app
from d2lkb.store.checks import CheckReport
from tests.conftest import write

runner = CliRunner()


def run(tmp_path, notes, *args):
    return runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes), *args])


def test_bundled_notes_check_green(tmp_path, bundled_copy, make_kb):
    make_kb(bundled_copy).trust(bundled_copy)  # a copy of the bundled notes is not the bundled folder
    result = run(tmp_path, bundled_copy, "check", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"] == {"definition": 5, "verified": 9, "passed": 10}
    assert {r["kind"] for r in data["results"]} == {"formula", "snippet"}
    for r in data["results"]:
        assert set(r) >= {"kind", "path", "line", "status", "detail", "device", "seconds"}


def test_cached_recheck_starts_no_worker(make_kb, bundled_copy, monkeypatch):
    kb = make_kb(bundled_copy)
    kb.trust(bundled_copy)
    kb.sync()
    first = kb.run_checks(device="cpu")
    assert first.ok and not any(r.cached for r in first.results)

    import d2lkb.checks.pool as pool
    import d2lkb.checks.snippets as snippets

    def refuse(*a, **k):
        raise AssertionError("a worker was started for an unchanged corpus")

    monkeypatch.setattr(snippets, "SnippetRunner", refuse)
    monkeypatch.setattr(pool, "FormulaChecker", refuse)
    again = kb.run_checks(device="cpu")
    assert all(r.cached for r in again.results)
    assert again.summary == first.summary


FAILING = """# Calculus

### Quotient rule (wrong)

$$
\\frac{d}{dx} \\frac{f(x)}{g(x)} = \\frac{g(x) \\frac{d}{dx} f(x) + f(x) \\frac{d}{dx} g(x)}{g^2(x)}
$$

```python
x = 2
x * 21
```

```output
42
```
"""


def test_refuted_formula_fails_the_run_with_a_counterexample(tmp_path, notes_dir, make_kb):
    write(notes_dir / "calc.md", FAILING)
    make_kb().trust(notes_dir)
    junit = tmp_path / "out" / "junit.xml"
    result = run(tmp_path, notes_dir, "check", "--json", "--junit", str(junit))
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    first = data["results"][0]  # failures first
    assert (first["kind"], first["status"], first["line"]) == ("formula", "refuted", 5)
    assert "left =" in first["detail"] and "right =" in first["detail"]
    assert data["summary"] == {"refuted": 1, "passed": 1}
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "1" and len(suite.findall("testcase")) == 2


def test_known_failure_marker_keeps_the_run_green(tmp_path, notes_dir, make_kb):
    text = FAILING.replace("$$\n\\frac", "<!-- known-failure: the book's typo, kept on purpose -->\n$$\n\\frac", 1)
    write(notes_dir / "calc.md", text)
    make_kb().trust(notes_dir)
    result = run(tmp_path, notes_dir, "check", "--json")
    assert result.exit_code == 0, result.output
    refuted = [r for r in json.loads(result.stdout)["results"] if r["status"] == "refuted"]
    assert refuted[0]["known_failure"] == "the book's typo, kept on purpose"


def test_untrusted_folder_code_never_runs(tmp_path, notes_dir):
    marker = tmp_path / "ran.txt"
    write(notes_dir / "evil.md", f"# Evil\n\n```python\nopen({str(marker)!r}, 'w').write('x')\n```\n\n"
                                 "```sympy\nopen('/dev/null')\nassert True\n```\n")
    result = run(tmp_path, notes_dir, "check", "--json")
    assert result.exit_code == 0, result.output
    statuses = [r["status"] for r in json.loads(result.stdout)["results"]]
    assert statuses == ["untrusted", "untrusted"]
    assert not marker.exists()
    assert run(tmp_path, notes_dir, "trust", str(notes_dir)).exit_code == 0
    result = run(tmp_path, notes_dir, "check", "--json")
    ran = sorted((r["line"], r["status"], r["detail"]) for r in json.loads(result.stdout)["results"])
    # trusted code runs, in the sandbox: the python block cannot write outside its own temporary folder
    assert [status for _, status, _ in ran] == ["error", "verified"]
    assert ("PermissionError" in ran[0][2] or "FileNotFoundError" in ran[0][2]) and str(marker) in ran[0][2]
    assert not marker.exists()


def test_edited_expected_output_is_rejudged_without_rerunning(tmp_path, notes_dir, make_kb, monkeypatch):
    p = write(notes_dir / "n.md", "# N\n\n```python\n6 * 7\n```\n\n```output\n42\n```\n")
    kb = make_kb()
    kb.trust(notes_dir)
    kb.sync()
    assert kb.run_checks(device="cpu").summary == {"passed": 1}
    p.write_text(p.read_text().replace("42\n```", "43\n```"), encoding="utf-8")
    kb.sync()
    import d2lkb.checks.snippets as snippets

    monkeypatch.setattr(snippets, "SnippetRunner", lambda *a, **k: pytest.fail("re-ran unchanged code"))
    report = kb.run_checks(device="cpu")
    assert report.summary == {"failed": 1}
    assert "-43" in report.results[0].detail and "+42" in report.results[0].detail


def test_hanging_note_times_out_and_the_others_go_on(tmp_path, notes_dir, make_kb):
    write(tmp_path / "kb" / "config.toml", "[checks]\nsnippet_timeout = 2\n")
    write(notes_dir / "a-hang.md", "# Hang\n\n```python\nwhile True:\n    pass\n```\n\n```python\n1\n```\n")
    write(notes_dir / "b-fine.md", "# Fine\n\n```python\n1 + 1\n```\n\n```output\n2\n```\n")
    kb = make_kb()
    kb.trust(notes_dir)
    kb.sync()
    report = kb.run_checks(device="cpu")
    by_path = {(r.path, r.line): r.status.value for r in report.results}
    assert by_path == {("a-hang.md", 3): "timeout", ("a-hang.md", 8): "skipped", ("b-fine.md", 3): "passed"}
    assert not report.ok


def test_cuda_requested_without_gpu_is_skipped_not_failed(tmp_path, notes_dir, make_kb, monkeypatch):
    monkeypatch.setenv("D2LKB_FAKE_CUDA", "0")
    write(notes_dir / "n.md", "# N\n\n```python\nimport torch\ntorch.ones(2).sum()\n```\n")
    make_kb().trust(notes_dir)
    result = run(tmp_path, notes_dir, "check", "--device", "cuda", "--json")
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout)["results"][0]
    assert r["status"] == "skipped" and "CUDA" in r["detail"]


def test_check_query_and_errors(tmp_path, notes_dir, make_kb):
    write(notes_dir / "calc.md", FAILING)
    write(notes_dir / "other.md", "# Other #fine\n\n$$\n(a+b)^2 = a^2 + 2ab + b^2\n$$\n")
    make_kb().trust(notes_dir)
    result = run(tmp_path, notes_dir, "check", "#fine", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"] == {"verified": 1}
    assert run(tmp_path, notes_dir, "check", "(oops").exit_code == 2
    assert run(tmp_path, notes_dir, "check", "--device", "tpu").exit_code == 2
    human = run(tmp_path, notes_dir, "check")
    assert human.exit_code == 1 and "refuted" in human.stdout and "1 failing" in human.stdout


TWO_FORMULAS = "# Two\n\n$$\n(a+b)^2 = a^2 + 2ab + b^2\n$$\n\n$$\n(a-b)^2 = a^2 - 2ab + b^2\n$$\n"


def test_ctrl_c_keeps_the_results_so_far(notes_dir, make_kb):
    write(notes_dir / "two.md", TWO_FORMULAS)
    kb = make_kb()
    kb.sync()

    def interrupt(done, total, item):
        raise KeyboardInterrupt

    report = CheckReport()
    with pytest.raises(KeyboardInterrupt):
        kb.run_checks(device="cpu", jobs=1, on_progress=interrupt, into=report)
    assert len(report.results) == 1
    first = report.results[0]
    again = kb.run_checks(device="cpu", jobs=1)
    assert not again.interrupted and again.summary == {"verified": 2}
    assert [(r.line, r.cached) for r in again.results if r.line == first.line] == [(first.line, True)]


def test_ctrl_c_in_the_cli_prints_the_report_so_far(tmp_path, notes_dir, make_kb):
    """A real SIGINT to a real `d2lkb check --json` while a ```sympy block sleeps forever."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    write(notes_dir / "a.md", "# A\n\n```sympy\nimport time\ntime.sleep(10**6)\n```\n\n" + TWO_FORMULAS[6:])
    kb = make_kb()
    kb.trust(notes_dir)
    db = kb.config.db_path
    kb.close()
    command = "from d2lkb.cli import main; main()"
    args = ["--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "check", "--json", "-j", "2"]
    process = subprocess.Popen([sys.executable, "-c", command, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ, NO_COLOR="1"))
    try:
        stored = 0
        for _ in range(6000):  # at most ten minutes, only so that a broken run cannot hang the suite
            if db.exists():
                with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as conn:
                    stored = conn.execute("SELECT count(*) FROM checkresult").fetchone()[0]
            if stored >= 2 or process.poll() is not None:
                break
            time.sleep(0.1)
        assert stored >= 2, "the two formulas were not checked"
        process.send_signal(signal.SIGINT)
        out, errors = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 130, errors
    data = json.loads(out)
    assert data["interrupted"] is True
    assert data["summary"] == {"verified": 2}
    assert "interrupted after 2 results" in errors
