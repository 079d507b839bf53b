"""Per query shape, p95 of what `d2lkb search` runs in process: `search_counted` with 21 hits (its 20
and one to tell "more") and the match count it prints; on the KB that `bench/run.py`'s search section
keeps (`run.py --keep DIR` leaves it at DIR/kb-big/kb-search.sqlite).

    python bench/search_shapes.py DIR/kb-big/kb-search.sqlite
    python bench/search_shapes.py KB --limit 200          # the TUI's search box
    python bench/search_shapes.py KB --rounds 5 --per-round 30 'status:new gradient'

D2LKB_BENCH_ROOT=/path/to/checkout measures another checkout's code on the same KB: run the two
alternately for a before/after comparison (the machine's speed drifts between runs). Each shape:
the p95 of each round, and the raw-parse yardstick of bench/run.py before the shape.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("D2LKB_BENCH_ROOT") or HERE.parent).resolve()
sys.path.insert(0, str(HERE))  # bench/run.py: the shapes, the p95, the yardstick


def main() -> None:
    from run import QUERIES, percentile, yardstick  # (run.py puts this checkout first on the path)

    sys.path.insert(0, str(ROOT))
    assert not any(m == "d2lkb" or m.startswith("d2lkb.") for m in sys.modules), "d2lkb imported too early"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kb", type=Path, help="a KB file (bench/run.py --keep DIR: DIR/kb-big/kb-search.sqlite)")
    ap.add_argument("shapes", nargs="*", help="query shapes (default: bench/run.py's 25)")
    ap.add_argument("--limit", type=int, default=21, help="hits asked for (21: `d2lkb search`; 200: the TUI)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=25, help="searches per round (p95 of them)")
    args = ap.parse_args()
    if not args.kb.is_file():
        sys.exit(f"no KB file at {args.kb}: run `python bench/run.py --only sync,search --keep DIR` first")
    from d2lkb.store.db import connect
    from d2lkb.store.search import search_counted

    conn = connect(args.kb)
    import d2lkb

    assert Path(d2lkb.__file__).resolve().parent == ROOT / "d2lkb", d2lkb.__file__
    label = "this checkout" if HERE.parent == ROOT else f"the checkout at D2LKB_BENCH_ROOT ({ROOT.name})"
    print(f"search_counted, {args.limit} hits and the count, p95 of {args.per_round} searches x {args.rounds}"
          f" rounds, code of {label}; load {os.getloadavg()[0]:.1f}")
    rows = []
    for shape in args.shapes or QUERIES:
        search_counted(conn, shape, limit=args.limit)
        speed = yardstick()
        p95s = []
        for _ in range(args.rounds):
            times = []
            for _ in range(args.per_round):
                t0 = time.perf_counter()
                _, total = search_counted(conn, shape, limit=args.limit)
                times.append((time.perf_counter() - t0) * 1000)
            p95s.append(percentile(times, .95))
        rows.append((max(p95s), shape, p95s, total, speed))
    for worst, shape, p95s, total, speed in sorted(rows, reverse=True):
        rounds = " ".join(f"{p:6.2f}" for p in p95s)
        print(f"  {shape!r:34} {rounds} ms{'  over 10 ms' if worst > 10 else ''}   ({total:,} matches counted;"
              f" yardstick {speed:,.0f} notes/s)")
    conn.close()


if __name__ == "__main__":
    main()
