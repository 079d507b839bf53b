"""Checks benchmark: warm-worker snippet overhead vs a fresh interpreter, cold vs cached
full check of the bundled notes, and time per formula."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import line

ROOT = Path(__file__).resolve().parents[1]


def bench_checks(work: Path) -> None:
    from d2lkb.checks.snippets import SnippetRunner
    from d2lkb.config import load_config
    from d2lkb.model import Snippet
    from d2lkb.store.kb import KnowledgeBase

    print("\n== checks")
    trivial = [Snippet("python", "1 + 1", 1, None, "2")]
    with SnippetRunner(device="cpu") as runner:
        runner.run_note(trivial)  # warm up
        warm = []
        for _ in range(30):
            t0 = time.perf_counter()
            runner.run_note(trivial)
            warm.append(time.perf_counter() - t0)
        many = [Snippet("python", f"x{i} = {i}\nx{i} + 1", 1, None, str(i + 1)) for i in range(50)]
        t0 = time.perf_counter()
        runner.run_note(many)
        per_extra = (time.perf_counter() - t0 - statistics.median(warm)) / 49
    fresh = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch; print(1 + 1)"], capture_output=True, check=True)
        fresh.append(time.perf_counter() - t0)
    line("snippet in warm worker (1-snippet note, median)", f"{statistics.median(warm) * 1000:.1f} ms", "goal <= 25 ms")
    line("each further snippet of a note", f"{per_extra * 1000:.2f} ms")
    line("fresh `python -c 'import torch; ...'` (median)", f"{statistics.median(fresh) * 1000:.0f} ms")
    line("fresh interpreter / warm worker", f"{statistics.median(fresh) / statistics.median(warm):.0f}x")

    notes = work / "bundled-notes"
    shutil.copytree(ROOT / "notes", notes, dirs_exist_ok=True)
    kb_dir = work / "checks-kb"
    shutil.rmtree(kb_dir, ignore_errors=True)
    kb = KnowledgeBase(load_config(kb_dir, notes))
    os.environ["D2LKB_CONFIG_HOME"] = str(work / "user-config")  # trust the copy here, not in the user's list
    kb.trust(notes)
    kb.sync()
    t0 = time.perf_counter()
    cold = kb.run_checks(device="cpu")
    cold_s = time.perf_counter() - t0
    cached = []
    for _ in range(5):
        t0 = time.perf_counter()
        report = kb.run_checks(device="cpu")
        cached.append(time.perf_counter() - t0)
    assert all(r.cached for r in report.results)
    formulas = [r for r in cold.results if r.kind == "formula"]
    kb.close()
    line(f"bundled notes: full check, cold ({len(cold.results)} checks)", f"{cold_s:.2f} s",
         " ".join(f"{k}={v}" for k, v in sorted(cold.summary.items())))
    line("bundled notes: unchanged re-check (cached, median)", f"{statistics.median(cached):.3f} s", "goal <= 0.2 s")
    line("cold / cached", f"{cold_s / statistics.median(cached):.0f}x")
    if formulas:
        per = [r.seconds for r in formulas]
        line(f"formula verification ({len(per)} formulas)", f"median {statistics.median(per) * 1000:.0f} ms",
             f"max {max(per) * 1000:.0f} ms")
