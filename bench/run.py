"""d2lkb benchmarks: ratios against a baseline measured in the same run, same machine.

    python bench/run.py                 # everything (sync, search, review, checks)
    python bench/run.py --only sync,search --notes 2000

Never used by the tests: timings on shared machines are noisy; read the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402


def line(label: str, value: str, goal: str = "") -> None:
    print(f"  {label:<48} {value:>18}  {goal}")


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def bench_sync(vault: Path, work: Path, n_notes: int) -> Path:
    from markdown_it import MarkdownIt

    from d2lkb.store.db import connect
    from d2lkb.store.sync import sync

    print(f"\n== sync ({n_notes} notes, {sum(f.stat().st_size for f in vault.rglob('*.md')) / 2**20:.1f} MiB)")
    files = sorted(vault.rglob("*.md"))
    md = MarkdownIt("commonmark").enable("table")

    def raw_parse():
        for f in files:
            md.parse(f.read_text(encoding="utf-8"))

    raw_parse()  # warm caches
    raw_s = min(timed(raw_parse)[0] for _ in range(2))
    db = work / "bench.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    conn = connect(db)
    cold_s, report = timed(sync, conn, vault)
    assert report.added == n_notes, report
    noop = [timed(sync, conn, vault)[0] for _ in range(5)]
    conn.close()
    line("raw markdown-it-py parse (read + parse)", f"{n_notes / raw_s:,.0f} notes/s")
    line("cold d2lkb sync (parse + index + write)", f"{n_notes / cold_s:,.0f} notes/s")
    line("cold sync / raw parse throughput", f"{raw_s / cold_s:.2f}x", "goal >= 0.50")
    line(f"no-op re-sync of {n_notes} notes (median of 5)", f"{statistics.median(noop):.3f} s", "goal <= 0.3 s")
    line("cards", f"{report.cards:,}")
    return db


QUERIES = ["#ml", "#math/calculus", "#参数", "gradient", '"gradient descent"', "#ml gradient", "grad*",
           "kind:card transformer", "tensor -kind:section", "(softmax OR entropy) #dl", "参数", "path:folder-03 bias"]


def bench_search(db: Path, vault: Path, runs: int = 50) -> None:
    from d2lkb.store.db import connect
    from d2lkb.store.search import search

    conn = connect(db)
    cards = conn.execute("SELECT count(*) FROM card").fetchone()[0]
    print(f"\n== search ({cards:,} cards, limit 20, {runs} runs per query)")
    all_times = []
    for q in QUERIES:
        search(conn, q)
        times = [timed(search, conn, q)[0] * 1000 for _ in range(runs)]
        all_times += times
        line(f"{q}", f"p50 {percentile(times, .5):.2f} ms  p95 {percentile(times, .95):.2f} ms")
    grep = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run(["grep", "-rli", "gradient descent", str(vault)], stdout=subprocess.DEVNULL, check=False)
        grep.append((time.perf_counter() - t0) * 1000)
    line("ALL queries", f"p50 {percentile(all_times, .5):.2f} ms  p95 {percentile(all_times, .95):.2f} ms",
         "goal p95 <= 10 ms")
    line("grep -rli 'gradient descent' (same files)", f"p50 {percentile(grep, .5):.1f} ms")
    line("grep p50 / d2lkb p95", f"{percentile(grep, .5) / percentile(all_times, .95):.1f}x")
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=10_000, help="synthetic notes (10 cards each)")
    ap.add_argument("--only", default="sync,search,review,checks")
    ap.add_argument("--keep", type=Path, help="keep the generated vault and KB in this folder")
    args = ap.parse_args()
    only = set(args.only.split(","))
    work = args.keep or Path(tempfile.mkdtemp(prefix="d2lkb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"d2lkb bench  python {sys.version.split()[0]}  cpus {os.cpu_count()}  work {work}")
    try:
        if only & {"sync", "search"}:
            vault = work / "vault"
            if not vault.exists():
                generate(vault, args.notes)
            db = bench_sync(vault, work, args.notes)
            if "search" in only:
                bench_search(db, vault)
        if "review" in only:
            from bench_review import bench_review

            bench_review(work)
        if "checks" in only:
            from bench_checks import bench_checks

            bench_checks(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
