"""Checker processes die with the d2lkb process that started them (`kill -9` included):
the formula checker's workers, the snippet worker and the note it runs, and sync's
parsing pool (which, before, was left waiting forever in 21 of 50 kills)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        here = todo.pop()
        try:
            with open(f"/proc/{here}/task/{here}/children") as children:
                kids = [int(c) for c in children.read().split()]
        except OSError:
            continue
        found.update(kids)
        todo += kids
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_and_watch(script: str, ready: str, tmp_path: Path, at_least: int) -> None:
    """Run `script`; once it prints `ready` and has `at_least` descendants, SIGKILL it alone:
    every descendant must go (waited for up to a minute: never a timing condition)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == ready
        for _ in range(6000):
            family = _descendants(process.pid)
            if len(family) >= at_least:
                break
            time.sleep(0.1)
        assert len(family) >= at_least, family
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        for _ in range(600):
            if not any(_alive(pid) for pid in family):
                break
            time.sleep(0.1)
        assert not [pid for pid in family if _alive(pid)], "a checker process outlived its parent"
    finally:
        process.kill()
        process.wait()


def test_formula_workers_die_with_their_parent(tmp_path):
    script = """
        from d2lkb.checks.pool import FormulaChecker
        fc = FormulaChecker(jobs=2)
        print("ready", flush=True)
        list(fc.check_many([(1, "sympy", "import time\\ntime.sleep(600)"), (2, "sympy", "import time\\ntime.sleep(600)")]))
    """
    _kill_and_watch(script, "ready", tmp_path, at_least=4)  # 2 workers, each with a sandboxed block


def test_the_snippet_worker_and_its_note_die_with_their_parent(tmp_path):
    script = """
        from d2lkb.checks.snippets import SnippetRunner
        from d2lkb.model import Snippet
        runner = SnippetRunner(device="cpu", timeout=600)
        runner.start()
        print("ready", flush=True)
        runner.run_note([Snippet("python", "import subprocess\\nsubprocess.run(['sleep', '600'])", 1, None)])
    """
    _kill_and_watch(script, "ready", tmp_path, at_least=4)  # zygote, sandbox, its init, the note, sleep


def test_sync_parse_pool_dies_with_its_parent(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(200):
        (notes / f"n{i}.md").write_text(f"# Note {i}\n\nQ{i} :: A{i}\n")
    script = f"""
        import time
        from d2lkb.config import load_config
        from d2lkb.store import sync as sync_module
        from d2lkb.store.kb import KnowledgeBase
        slow = sync_module._load_one
        def _load_one(*args):  # parsing that takes long: the workers are busy when the kill comes
            time.sleep(600)
            return slow(*args)
        sync_module._load_one = _load_one
        kb = KnowledgeBase(load_config({str(tmp_path / "kb")!r}, {str(notes)!r}))
        print("ready", flush=True)
        kb.sync()
    """
    _kill_and_watch(script, "ready", tmp_path, at_least=2)
