"""The formula checker on the real D2L book: what a new user sees from `sync` + `check`.

    python bench/book_report.py                       # corpus: ../shared/corpora/d2l-en (copied first)
    python bench/book_report.py --corpus DIR --runs 3 --json out.json

Copies the book into a temporary folder (the corpus is read-only), then runs the real CLI as a
user would: `d2lkb sync`, `d2lkb check --json` cold (empty KB), then `d2lkb check --json` again
(cached). The folder is not trusted, so snippets are reported `untrusted`: this is the formula
report. Prints the status counts of the formula rows (one per display formula and per `aligned`
row), every refuted row with its reason, the causes of `unparsed` and `context` grouped, and
the cold and cached wall times with the machine's load beside them (3 runs: median and spread).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpora" / "d2l-en"


def d2lkb(kb: Path, notes: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    exe = Path(sys.executable).with_name("d2lkb")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "d2lkb.cli"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    done = subprocess.run([*command, "--kb", str(kb), "--notes", str(notes), *args], capture_output=True,
                          text=True, env=env)
    return time.perf_counter() - started, done


def _shown(path: Path) -> str:
    """The corpus as a path relative to the repository (results are compared across machines)."""
    try:
        return os.path.relpath(path.resolve(), ROOT)
    except ValueError:
        return str(path)


def cause(detail: str) -> str:
    """A short, groupable reason: quoted LaTeX and numbers taken out."""
    detail = re.sub(r"^.*?: (?:unparsed|context) \(", "", detail)
    detail = re.sub(r"'(?:[^'\\]|\\.)*'", "…", detail)
    detail = re.sub(r"(left|right) side …: ", "", detail)
    detail = re.sub(r"SymPy cannot parse …: ", "parser: ", detail)
    detail = re.sub(r"\(with arbitrary functions in their place:.*", "", detail)
    detail = re.sub(r"at [^:]*: left = .*", "", detail)
    return detail[:90].strip(" (;")


def measure(corpus: Path, runs: int = 3, jobs: int = 0,
            cpu: list[float] | None = None) -> tuple[list[float], list[float], list[float], list[dict]]:
    """`runs` times on a fresh KB over a copy of `corpus`: `d2lkb sync`, then `d2lkb check` cold and
    again (cached). (cold seconds, cached seconds, load before each run, the last run's formula
    rows); `cpu` gets the cold checks' CPU time (all the processes they ran)."""
    cold, cached, loads = [], [], []
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="d2lkb-book-") as tmp:
        notes = Path(tmp) / "book"
        shutil.copytree(corpus, notes)
        flags = ["-j", str(jobs)] if jobs else []
        for run in range(runs):
            kb = Path(tmp) / f"kb{run}"
            _, synced = d2lkb(kb, notes, "sync", "--json")
            if synced.returncode != 0:
                raise RuntimeError(f"sync failed: {synced.stdout}{synced.stderr}")
            loads.append(os.getloadavg()[0])
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            seconds, first = d2lkb(kb, notes, "check", "--json", *flags)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            if cpu is not None:
                cpu.append(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
            cold.append(seconds)
            try:
                report = json.loads(first.stdout)
            except json.JSONDecodeError:
                raise RuntimeError(f"run {run + 1}: check printed no JSON report (exit {first.returncode})\n"
                                   f"{first.stderr[-2000:]}") from None
            again_seconds, again = d2lkb(kb, notes, "check", "--json", *flags)
            cached.append(again_seconds)
            again_report = json.loads(again.stdout)
            results = [r for r in report["results"] if r["kind"] == "formula"]
            again_formulas = [r for r in again_report["results"] if r["kind"] == "formula"]
            changed = sum(a["status"] != b["status"] for a, b in zip(
                sorted(results, key=lambda r: (r["path"], r["line"])),
                sorted(again_formulas, key=lambda r: (r["path"], r["line"])), strict=True))
            counts = collections.Counter(r["status"] for r in results)
            print(f"run {run + 1}: cold {seconds:.1f} s, cached {again_seconds:.2f} s, load {loads[-1]:.2f}, "
                  f"exit {first.returncode}, {dict(counts)}, cached run changed {changed} statuses", flush=True)
    return cold, cached, loads, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--runs", type=int, default=3, help="cold + cached runs (each on a fresh KB)")
    parser.add_argument("--json", type=Path, help="write the last run's formula results here")
    parser.add_argument("--jobs", type=int, default=0, help="formula workers (default: d2lkb's default)")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    try:
        cold, cached, loads, results = measure(args.corpus, args.runs, args.jobs)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    total = len(results)
    counts = collections.Counter(r["status"] for r in results)
    print(f"\nD2L book ({_shown(args.corpus)}): {total} formula rows")
    for status, n in counts.most_common():
        print(f"  {status:<12} {n:>5}  {n / total:6.1%}")
    good = counts["verified"] + counts["definition"]
    equations = total - counts["skipped"]
    print(f"  verified + definition: {good} = {good / total:.1%} of rows, {good / max(equations, 1):.1%} of the "
          f"{equations} rows that are equations")
    print(f"  unparsed: {counts['unparsed'] / total:.1%} of rows")

    def spread(values: list[float]) -> str:
        return (f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, "
                f"{len(values)} runs)")

    print(f"\ncold check  {spread(cold)}")
    print(f"cached check {spread(cached)}")
    print(f"load average at the start of each run: {', '.join(f'{x:.2f}' for x in loads)} on {os.cpu_count()} cores")

    print("\nrefuted rows:")
    for r in sorted((r for r in results if r["status"] == "refuted"), key=lambda r: (r["path"], r["line"])):
        print(f"  {r['path']}:{r['line']}\n      {r['detail']}")
    for status in ("unparsed", "context", "timeout"):
        grouped = collections.Counter(cause(r["detail"]) for r in results if r["status"] == status)
        if grouped:
            print(f"\n{status}: causes")
            for reason, n in grouped.most_common(25):
                print(f"  {n:>4}  {reason}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
