"""d2lkb benchmarks: every figure is 3 runs (median and min-max), printed with the machine's
load (os.getloadavg, 1 minute, before -> after) and the raw-parse yardstick measured just
before it (single-threaded markdown-it-py parse of 200 synthetic notes, notes/s), so that a
reader can tell the machine's speed apart from the code's. Wall-clock percentiles on a busy
machine include the time other processes held the cores: search also reports the CPU time
of the searching thread.

    python bench/run.py                       # sync, search, cli, review, book (about 25 min on 2 cores)
    python bench/run.py --only sync,search --notes 2000
    python bench/run.py --only checks         # the check benchmarks (bench_checks.py)

Never used by the tests: timings on shared machines are noisy; read the ratios and the load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

RUNS = 3
_YARD: dict[str, object] = {}


def line(label: str, value: str, goal: str = "") -> None:
    print(f"  {label:<58} {value:>26}  {goal}")


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def load() -> float:
    return os.getloadavg()[0]


def yardstick() -> float:
    """Raw single-threaded markdown-it-py parse of 200 synthetic notes: notes/s (best of 2)."""
    from markdown_it import MarkdownIt

    if "files" not in _YARD:
        vault = Path(tempfile.mkdtemp(prefix="d2lkb-yard-"))
        generate(vault, 200)
        _YARD["files"] = [f.read_text(encoding="utf-8") for f in sorted(vault.rglob("*.md"))]
        shutil.rmtree(vault, ignore_errors=True)
    texts = _YARD["files"]
    assert isinstance(texts, list)
    md = MarkdownIt("commonmark").enable("table")
    best = min(timed(lambda: [md.parse(t) for t in texts])[0] for _ in range(2))
    return len(texts) / best


def spread(values: list[float], fmt: str = "{:.2f}", unit: str = "") -> str:
    med = statistics.median(values)
    return f"{fmt.format(med)}{unit} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def figure(label: str, measure: Callable[[], float], *, fmt: str = "{:.2f}", unit: str = "", goal: str = "",
           runs: int = RUNS) -> list[float]:
    """Run `measure` `runs` times; print median [min-max], load before -> after and the yardstick."""
    yard = yardstick()
    before = load()
    values = [measure() for _ in range(runs)]
    after = load()
    line(label, spread(values, fmt, unit), f"{goal}  (load {before:.1f}->{after:.1f}, yardstick {yard:,.0f} notes/s)")
    return values


def report(label: str, values: list[float], *, fmt: str = "{:.2f}", unit: str = "", goal: str = "",
           before: float | None = None) -> None:
    """Print figures measured elsewhere (same format as `figure`)."""
    yard = yardstick()
    after = load()
    shown = f"load {before:.1f}->{after:.1f}" if before is not None else f"load {after:.1f}"
    line(label, spread(values, fmt, unit), f"{goal}  ({shown}, yardstick {yard:,.0f} notes/s)")


# -- sync ------------------------------------------------------------------------------------------
def _fresh_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def bench_sync(work: Path, n_notes: int) -> Path:
    """Cold sync against the raw parse of the same files (pool off and on), then the big KB."""
    from markdown_it import MarkdownIt

    from d2lkb.store.db import connect
    from d2lkb.store.sync import sync

    small_n = min(n_notes, 500)
    small = work / "vault-small"
    if not small.exists():
        generate(small, small_n)
    files = sorted(small.rglob("*.md"))
    md = MarkdownIt("commonmark").enable("table")
    print(f"\n== sync: cold sync of {small_n:,} notes ({small_n * 10:,} cards) against a raw parse of the same files")
    # One sync and one parse first, not timed: the first of a process also imports the parser's modules
    # and compiles their patterns (it ran ~0.05 below the others in the ratio), paid once per process.
    [md.parse(f.read_text(encoding="utf-8")) for f in files]
    _fresh_db(work / "sync-small.sqlite")
    warm = connect(work / "sync-small.sqlite")
    sync(warm, small, workers=1)
    warm.close()
    for label, workers in (("one worker (no pool)", 1), (f"pool ({os.cpu_count()} cores)", None)):
        ratios, rates = [], []
        before = load()
        for _ in range(RUNS):
            raw_s = timed(lambda: [md.parse(f.read_text(encoding="utf-8")) for f in files])[0]
            db = work / "sync-small.sqlite"
            _fresh_db(db)
            conn = connect(db)
            cold_s, rep = timed(sync, conn, small, workers=workers)
            conn.close()
            assert rep.added == small_n, rep
            ratios.append(raw_s / cold_s)
            rates.append(small_n / cold_s)
        report(f"cold sync, {label}", rates, fmt="{:,.0f}", unit=" notes/s", before=before)
        report(f"cold sync / raw parse, {label}", ratios, goal="goal >= 0.50", before=before)

    vault = work / "vault"
    if not vault.exists():
        generate(vault, n_notes)
    kb_dir = work / "kb-big"
    kb_dir.mkdir(exist_ok=True)
    db = kb_dir / "kb.sqlite"
    _fresh_db(db)
    conn = connect(db)
    print(f"\n== the big KB: {n_notes:,} notes, {sum(f.stat().st_size for f in vault.rglob('*.md')) / 2**20:.1f} MiB")
    before = load()
    cold_s, rep = timed(sync, conn, vault)
    report(f"cold sync of {n_notes:,} notes, pool (1 run)", [n_notes / cold_s], fmt="{:,.0f}", unit=" notes/s",
           before=before)
    line("cards", f"{rep.cards:,}")
    figure(f"no-op re-sync of {n_notes:,} notes", lambda: timed(sync, conn, vault)[0], fmt="{:.3f}", unit=" s",
           goal="goal <= 0.3 s")
    conn.close()
    return db


# -- search ----------------------------------------------------------------------------------------
QUERIES = ["#ml", "#math/calculus", "#参数", "gradient", '"gradient descent"', "#ml gradient", "grad*",
           "kind:card transformer", "tensor -kind:section", "(softmax OR entropy) #dl", "参数", "path:folder-03 bias",
           # filters on cards and checks (store.searchfields)
           "status:new", "status:new gradient", "due:today", "status:leech gradient", "status:failing",
           "kind:cloze status:review", "-status:new gradient", "#ml status:buried",
           # a word in most documents and few titles, two words, a tag and a NOT of a kind, filters with words
           "and", "gradient descent", "#dl gradient -kind:section", "status:unchecked gradient",
           "status:buried gradient"]


def in_use(db: Path, seed: int = 7) -> str:
    """Give the KB's cards what a collection in use has (70 % new, 3 % learning, 25 % review, 2 %
    relearning; 1 % of review cards leeches, 1 % suspended, 0.5 % buried today and 2 % buried on an
    earlier day) and 90 % of its formulas and snippets a check result (a tenth of them two), so that
    the filters on cards and checks have something to find. Returns a line saying what it made."""
    import random
    import sqlite3

    rng = random.Random(seed)
    conn = sqlite3.connect(db)
    now = int(time.time())
    rows = []
    for (cid,) in conn.execute("SELECT id FROM card").fetchall():
        r = rng.random()
        state = 0 if r < .70 else 1 if r < .73 else 2 if r < .98 else 3
        due = now + rng.randint(-20, 60) * 86400 if state else now
        leech = int(state in (2, 3) and rng.random() < .01)
        suspended = int(rng.random() < .01 or (leech and rng.random() < .5))
        b = rng.random()
        buried = now + 86400 if b < .005 else now - 5 * 86400 if b < .025 else None
        rows.append((state, due, leech, suspended, buried, cid))
    conn.executemany("UPDATE card SET state = ?, due = ?, leech = ?, suspended = ?, buried_until = ? WHERE id = ?", rows)
    statuses = ["verified"] * 60 + ["passed"] * 20 + ["refuted", "refuted", "failed", "failed", "error", "timeout",
                                                       "context", "definition", "unparsed", "skipped"]
    results = []
    for (h,) in conn.execute("SELECT DISTINCT check_hash FROM doc WHERE check_hash IS NOT NULL").fetchall():
        if rng.random() < .9:
            t = now - rng.randint(1, 10**6)
            results.append(("formula", h, "", "", rng.choice(statuses), t))
            if rng.random() < .1:
                results.append(("formula", h, "cuda", "2", rng.choice(statuses), t + rng.choice([-5, 5, 0])))
    conn.executemany("INSERT INTO checkresult (kind, check_hash, device, torch_version, status, checked_at)"
                     " VALUES (?,?,?,?,?,?)", results)
    conn.commit()
    counts = conn.execute("SELECT sum(state = 0), sum(state = 2), sum(leech), sum(suspended), sum(buried_until > ?)"
                          " FROM card", (now,)).fetchone()
    conn.close()
    return (f"cards as in use: {counts[0]:,} new, {counts[1]:,} review, {counts[2]:,} leeches, {counts[3]:,} suspended,"
            f" {counts[4]:,} buried today; {len(results):,} check results")


def bench_search(db: Path, vault: Path, per_run: int = 50) -> None:
    from d2lkb.store.db import connect
    from d2lkb.store.search import search

    used = db.with_name("kb-search.sqlite")  # a copy: the review bench starts from the big KB's new cards
    shutil.copy(db, used)
    made = in_use(used)
    conn = connect(used)
    cards = conn.execute("SELECT count(*) FROM card").fetchone()[0]
    docs = conn.execute("SELECT count(*) FROM doc").fetchone()[0]
    print(f"\n== search ({cards:,} cards, {docs:,} documents, limit 20; p95 of {per_run} searches, {RUNS} runs)")
    print(f"   ({made})")
    every: list[list[float]] = [[] for _ in range(RUNS)]
    every_cpu: list[list[float]] = [[] for _ in range(RUNS)]
    for q in QUERIES:
        search(conn, q)
        before = load()
        p95s, cpu95s = [], []
        for r in range(RUNS):
            times, cpu = [], []
            for _ in range(per_run):
                c0, t0 = time.thread_time(), time.perf_counter()
                search(conn, q)
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.thread_time() - c0) * 1000)
            every[r] += times
            every_cpu[r] += cpu
            p95s.append(percentile(times, .95))
            cpu95s.append(percentile(cpu, .95))
        report(f"p95 {q}", p95s, unit=" ms", goal="goal <= 10 ms", before=before)
        report("    same, CPU time of the searching thread", cpu95s, unit=" ms", before=before)
    # The bounded ranking (store/searchrank.py: RANK_ALL, title candidates) against ranking every match.
    from d2lkb.store import searchrank
    from d2lkb.store.search import count_matches

    bound = searchrank.RANK_ALL
    same = hits = 0
    for q in QUERIES:
        got = [h.doc_id for h in search(conn, q)]
        searchrank.RANK_ALL = 10**9
        try:
            want = [h.doc_id for h in search(conn, q)]
        finally:
            searchrank.RANK_ALL = bound
        same += len(set(got) & set(want))
        hits += len(want)
        line(f"top 20 of {q} ({count_matches(conn, q, cap=10**9):,} matches)",
             f"{len(set(got) & set(want))} of {len(want)} as with every match ranked", "(in the same order)"
             if got == want else "")
    line("top 20, all queries", f"{same} of {hits} as with every match ranked")
    report("p95, all queries together", [percentile(t, .95) for t in every], unit=" ms", goal="goal <= 10 ms")
    report("    same, CPU time", [percentile(t, .95) for t in every_cpu], unit=" ms")
    report("p50, all queries together", [percentile(t, .5) for t in every], unit=" ms")
    # What the TUI's search box runs per query (tui/screens/browse.py): 200 hits and how many match (up
    # to 1,000, counted when the ranking did not learn it on the way); `d2lkb search` runs the same with
    # 21 hits (its 20 and one to tell "more"), in a process of its own (bench_cli times that).
    from d2lkb.store.search import search_counted
    from d2lkb.tui.screens.browse import LIMIT

    for what, limit in ((f"TUI search box ({LIMIT} hits and the count)", LIMIT),
                        ("`d2lkb search` in process (21 hits and the count)", 21)):
        counted: list[list[float]] = [[] for _ in range(RUNS)]
        worst: dict[str, float] = {}
        for q in QUERIES:
            for r in range(RUNS):
                times = []
                for _ in range(per_run // 2):
                    t0 = time.perf_counter()
                    search_counted(conn, q, limit=limit)
                    times.append((time.perf_counter() - t0) * 1000)
                counted[r] += times
                worst[q] = max(worst.get(q, 0.0), percentile(times, .95))
        report(f"{what}, p95 of all queries", [percentile(t, .95) for t in counted], unit=" ms")
        slow = sorted(((v, q) for q, v in worst.items() if v > 10), reverse=True)
        line("    shapes over 10 ms at p95 (worst round)", ", ".join(f"{q} {v:.1f}" for v, q in slow) or "none")
    figure("grep -rli 'gradient descent' (same files)",
           lambda: timed(subprocess.run, ["grep", "-rli", "gradient descent", str(vault)], stdout=subprocess.DEVNULL,
                         check=False)[0] * 1000, fmt="{:.0f}", unit=" ms")
    conn.close()


# -- the command line -----------------------------------------------------------------------------
def bench_cli(kb_dir: Path, vault: Path) -> None:
    """Wall time of whole `d2lkb` processes: `--help` against a search (with and without its sync)."""
    env = os.environ | {"D2LKB_KB": str(kb_dir), "D2LKB_NOTES": str(vault), "PYTHONPATH": str(ROOT)}
    # As installed: compiled modules are cached (`__pycache__`), written by one warm-up run of each
    # command (a machine that sets PYTHONDONTWRITEBYTECODE would recompile d2lkb in every process).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    commands = {"d2lkb --help": ["--help"], "d2lkb search gradient (syncs first)": ["search", "gradient"],
                "d2lkb search --no-sync gradient": ["search", "--no-sync", "gradient"]}
    for args in commands.values():
        subprocess.run([sys.executable, "-m", "d2lkb.cli", *args], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
    print(f"\n== command line (fresh processes, {RUNS} runs each, interleaved, after a warm-up run each;"
          " KB of the search section)")
    times: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    before = load()
    for _ in range(RUNS):
        for label, args in commands.items():
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = timed(subprocess.run, [sys.executable, "-m", "d2lkb.cli", *args], env=env,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)[0]
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            times[label].append(t)
            cpu[label].append(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
    for label, values in times.items():
        report(label, values, unit=" s", before=before)
        report("    same, CPU time of the process", cpu[label], unit=" s", before=before)
    helps, helps_cpu = times["d2lkb --help"], cpu["d2lkb --help"]
    for label in list(commands)[1:]:
        report(f"{label.split(' (')[0]} / --help", [a / b for a, b in zip(times[label], helps, strict=True)],
               goal="goal <= 1.5", before=before)
        report(f"{label.split(' (')[0]} / --help, CPU time",
               [a / b for a, b in zip(cpu[label], helps_cpu, strict=True)], goal="goal <= 1.5", before=before)


# -- the D2L book --------------------------------------------------------------------------------------
def bench_book() -> None:
    """The whole D2L book checked by the CLI, cold (fresh KB) and unchanged (cached), as
    `book_report.py` does it; the formula rows' statuses beside the time."""
    import collections

    from book_report import DEFAULT_CORPUS, measure

    if not DEFAULT_CORPUS.is_dir():
        line("D2L book check", "skipped", f"(no corpus at {DEFAULT_CORPUS})")
        return
    print(f"\n== the D2L book: `d2lkb sync`, then `d2lkb check` cold and cached, {RUNS} fresh KBs")
    before = load()
    cpu: list[float] = []
    cold, cached, _loads, rows = measure(DEFAULT_CORPUS, RUNS, cpu=cpu)
    counts = collections.Counter(r["status"] for r in rows)
    shown = ", ".join(f"{k} {v}" for k, v in counts.most_common())
    report(f"D2L book check, cold ({len(rows)} formula rows: {shown})", cold, unit=" s", goal="goal <= 60 s",
           before=before)
    report("    same, CPU time of the processes", cpu, unit=" s", before=before)
    report("D2L book check, unchanged (cached)", cached, unit=" s", before=before)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=10_000, help="synthetic notes (10 cards each)")
    ap.add_argument("--only", default="sync,search,cli,review,book",
                    help="sections: sync, search, cli, review, book (the D2L book's check), checks")
    ap.add_argument("--keep", type=Path, help="keep the generated vaults and KBs in this folder")
    args = ap.parse_args()
    only = set(args.only.split(","))
    work = args.keep or Path(tempfile.mkdtemp(prefix="d2lkb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    import sqlite3

    print(f"d2lkb bench  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  python {sys.version.split()[0]}"
          f"  sqlite {sqlite3.sqlite_version}  cpus {os.cpu_count()}  load {os.getloadavg()}")
    print(f"raw-parse yardstick now: {yardstick():,.0f} notes/s (single-threaded markdown-it-py, 200 notes)")
    try:
        if only & {"sync", "search", "cli"}:
            db = bench_sync(work, args.notes)
            if "search" in only:
                bench_search(db, work / "vault")
            if "cli" in only:
                bench_cli(db.parent, work / "vault")
        if "review" in only:
            from bench_review import bench_review

            bench_review(work, big=args.notes * 10)
        if "checks" in only:
            from bench_checks import bench_checks

            bench_checks(work)
        if "book" in only:
            bench_book()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
