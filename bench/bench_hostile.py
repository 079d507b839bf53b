"""Hostile-size benchmarks (issue 11): time must stay proportional to the input.

1. Parse: one 5 MiB note of consecutive `Q :: A` lines (about 70,000 cards) through
   `parse_note`, against a raw single-threaded markdown-it-py parse of the same text.
   Also a 5 MiB note of cloze paragraphs and a 5 MiB `aligned` block (one formula card
   per row), each against its own raw parse.
2. Matching: a 1,000-note vault (bench/generate.py, 10 cards a note) synced, then every
   note's questions and cloze deletions reworded (see `reword`: each such card reaches the
   similarity stage) and synced again; against a cold sync of the same reworded vault into
   a fresh KB.
   The matching stage alone (`d2lkb.identity.match_cards`) is timed too.

    python bench/bench_hostile.py                    # both, 3 runs each
    python bench/bench_hostile.py --only parse --mib 1
    python bench/bench_hostile.py --only match --notes 200 --runs 1

Each figure: median [min-max] of the runs, the 1-minute load before -> after, and the
raw-parse yardstick of bench/run.py. D2LKB_BENCH_ROOT=/path/to/checkout measures another
checkout's d2lkb with the same inputs (for before/after figures).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("D2LKB_BENCH_ROOT") or HERE.parent).resolve()
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402
from run import line, load, report, timed  # noqa: E402

sys.path.insert(0, str(ROOT))  # run.py put this checkout first: the d2lkb measured is ROOT's


# -- inputs ------------------------------------------------------------------------------------------
def _fill(size: int, make, head: str = "#flashcards\n\n") -> str:
    out, n, i = [head], len(head), 0
    while n < size:
        piece = make(i)
        out.append(piece)
        n += len(piece)
        i += 1
    return "".join(out)


def qa_note(size: int) -> str:
    return _fill(size, lambda i: f"What is the gradient of loss number {i}? :: The derivative {i * 7 % 1000} of it\n")


def cloze_note(size: int) -> str:
    return _fill(size, lambda i: f"A model has ==behavior {i}== set by its ==parameters {i % 97}== here.\n\n")


def aligned_note(size: int) -> str:
    body = _fill(size, lambda i: f"f_{{{i}}}(x) &= x^{{{i % 9}}} + {i} && \\textrm{{Rule {i}}} \\\\\n", head="")
    return "#flashcards\n\n$$\n\\begin{aligned}\n" + body + "\\end{aligned}\n$$\n"


_QUESTION = re.compile(r"^What is (.+) number (\S+)\? ::", re.MULTILINE)
_DEFINE = re.compile(r"^Define (\S+) (\S+)$", re.MULTILINE)
_CLOZE = re.compile(r"==behavior (\S+)== set by ==parameters (\S+)==", re.MULTILINE)


def reword(text: str) -> str:
    """Every card of a generated note said a little differently, so that every card goes
    through the similarity stage of matching: `What is X number N?` -> `What exactly is X,
    number N?`, `Define X N` -> `Define: X N`, the cloze deletions `behavior N` ->
    `behaviour N` and `parameters N` -> `parameter values N`. Formula and code cards stay."""
    text = _QUESTION.sub(r"What exactly is \1, number \2? ::", text)
    text = _DEFINE.sub(r"Define: \1 \2", text)
    return _CLOZE.sub(r"==behaviour \1== set by ==parameter values \2==", text)


# -- 1. parse ----------------------------------------------------------------------------------------
def bench_parse(mib: float, runs: int) -> None:
    from markdown_it import MarkdownIt

    from d2lkb.notes.parse import parse_note

    size = int(mib * 2**20)
    md = MarkdownIt("commonmark").enable("table")
    for label, make in (("Q :: A lines", qa_note), ("cloze paragraphs", cloze_note), ("aligned rows", aligned_note)):
        text = make(size)
        print(f"\n== parse: a {mib:g} MiB note of {label} ({text.count(chr(10)):,} lines) against a raw markdown-it parse")
        before = load()
        raws, ours, ratios, cards = [], [], [], 0
        for _ in range(runs):
            raw_s = timed(md.parse, text)[0]
            our_s, parsed = timed(parse_note, text, "hostile.md")
            cards = len(parsed.cards)
            raws.append(raw_s)
            ours.append(our_s)
            ratios.append(our_s / raw_s)
        report("raw markdown-it parse (single thread)", raws, unit=" s", before=before)
        report(f"d2lkb parse_note ({cards:,} cards)", ours, unit=" s", before=before)
        report("parse_note / raw parse", ratios, goal="goal: a constant (same at any size)", before=before)


# -- 2. matching -------------------------------------------------------------------------------------
def _fresh(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def bench_match(work: Path, n_notes: int, runs: int) -> None:
    import d2lkb.store.sync as sync_module
    from d2lkb.store.db import connect
    from d2lkb.store.sync import sync

    original = work / "vault"
    if not original.exists():
        generate(original, n_notes)
    reworded = work / "vault-reworded"
    shutil.rmtree(reworded, ignore_errors=True)
    shutil.copytree(original, reworded)
    changed = 0
    for f in sorted(reworded.rglob("*.md")):
        text = f.read_text(encoding="utf-8")
        new = reword(text)
        if new != text:
            f.write_text(new, encoding="utf-8")
            changed += 1
    print(f"\n== matching: {n_notes:,} notes ({n_notes * 10:,} cards), the questions of {changed:,} notes reworded;"
          f" against a cold sync of the reworded vault")
    match_s: list[float] = []
    real_match = sync_module.match_cards

    def timed_match(old, new):
        seconds, out = timed(real_match, old, new)
        match_s.append(seconds)
        return out

    sync_module.match_cards = timed_match
    before = load()
    resyncs, colds, ratios = [], [], []
    kept = revived = retired = 0
    try:
        for _ in range(runs):
            db = work / "kb.sqlite"
            _fresh(db)
            conn = connect(db)
            vault = work / "vault-live"
            shutil.rmtree(vault, ignore_errors=True)
            shutil.copytree(original, vault)
            sync(conn, vault)
            for f in sorted(reworded.rglob("*.md")):  # the edit: same paths, new content and mtime
                target = vault / f.relative_to(reworded)
                target.write_bytes(f.read_bytes())
                os.utime(target, ns=(time.time_ns(), time.time_ns() + 1_000_000))
            resync_s, rep = timed(sync, conn, vault)
            assert rep.updated == changed, rep
            retired = rep.retired_cards
            kept = conn.execute("SELECT count(*) FROM card WHERE retired_at IS NULL AND id <= ?",
                                (n_notes * 10,)).fetchone()[0]
            revived = rep.revived_cards
            conn.close()
            cold_db = work / "cold.sqlite"
            _fresh(cold_db)
            cold_conn = connect(cold_db)
            cold_s = timed(sync, cold_conn, reworded)[0]
            cold_conn.close()
            resyncs.append(resync_s)
            colds.append(cold_s)
            ratios.append(resync_s / cold_s)
    finally:
        sync_module.match_cards = real_match
    report(f"re-sync after rewording {changed:,} notes", resyncs, unit=" s", before=before)
    report("    of which card matching (match_cards)", match_s, unit=" s", before=before)
    report("cold sync of the reworded vault (fresh KB)", colds, unit=" s", before=before)
    report("re-sync / cold sync", ratios, goal="goal: close to 1", before=before)
    line("cards keeping their id / retired (last run)", f"{kept:,} / {retired:,} (revived {revived})")


def _measured(package_file: str) -> str:
    """Which d2lkb is measured: its checkout's commit, and whether it is this bench's checkout
    (`D2LKB_BENCH_ROOT` points at another), without printing a machine's paths."""
    import subprocess

    root = Path(package_file).resolve().parents[1]
    done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    commit = done.stdout.strip() or "(not a git checkout)"
    here = root == Path(__file__).resolve().parents[1]
    return f"at {commit} ({'this checkout' if here else 'another checkout'})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="parse,match")
    ap.add_argument("--mib", type=float, default=5.0, help="size of the parse notes")
    ap.add_argument("--notes", type=int, default=1000, help="notes of the rewording vault")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    only = set(args.only.split(","))
    import sqlite3

    import d2lkb

    print(f"d2lkb hostile bench  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  d2lkb {_measured(d2lkb.__file__)}"
          f"  python {sys.version.split()[0]}  sqlite {sqlite3.sqlite_version}  cpus {os.cpu_count()}"
          f"  load {tuple(round(x, 1) for x in os.getloadavg())}")
    work = Path(tempfile.mkdtemp(prefix="d2lkb-hostile-"))
    try:
        if "parse" in only:
            bench_parse(args.mib, args.runs)
        if "match" in only:
            bench_match(work, args.notes, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
