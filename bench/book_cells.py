"""The D2L book's own code cells: d2lkb's `check` against plain Python running the same cells.

    python bench/book_cells.py [FOLDER ...] [--framework pytorch] [--no-d2lkb] [--timeout 600]

FOLDER defaults to ../shared/corpora/d2l-en/chapter_preliminaries (relative to the
repository). The reference is independent of d2lkb: it finds the cells of each .md
with its own regular expressions, keeps those d2lbook would run for the framework
(a `%%tab`/`#@tab` marker naming it or `all`; no marker: pytorch, the book's first
tab; `%load_ext d2lbook.tab` cells dropped), deletes the marker and the other
`%`/`!` lines (plain Python cannot run them), and runs the cells in order with plain
`python` in one namespace, in a fresh temporary directory (`TMP/work`, so `../data`
stays in TMP), going on after a failing cell, counting the cells that raise nothing.

Then (unless --no-d2lkb) it copies the folders, runs `d2lkb trust` + `check --json
--no-cache kind:snippet` (the code cells only) on the copy and counts d2lkb's statuses for the same cells (matched by
file and fence line), printing both counts and every cell where they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent.parent / "shared" / "corpora" / "d2l-en" / "chapter_preliminaries"
FENCE = re.compile(r"^```\{\.python \.input[^}]*\}\s*$")
MARKER = re.compile(r"(?:#\s*@tab|%%tab)\s+([\w, ]+)")

# Runs in a fresh `python`: reads [[line, code], ...] as JSON on stdin, runs each cell
# in one namespace, prints one JSON line per cell.
RUNNER = r"""
import json, sys, traceback
cells = json.load(sys.stdin)
namespace = {"__name__": "__main__"}
out = sys.__stdout__
for line, code in cells:
    sys.stdout = sys.stderr  # the cells' prints go to stderr; stdout carries the results
    try:
        exec(compile(code, f"<cell at line {line}>", "exec"), namespace)
        status, why = "passed", ""
    except BaseException as exc:
        status, why = "failed", "".join(traceback.format_exception_only(type(exc), exc)).strip()
    sys.stdout = out
    print(json.dumps({"line": line, "status": status, "why": why}), flush=True)
"""


def cells(path: Path, framework: str) -> list[tuple[int, str]]:
    """(fence line, code as plain Python) of the cells of `path` that run for `framework`."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            found.append((i + 1, "\n".join(lines[i + 1 : j])))
            i = j
        i += 1
    tabbed = any(MARKER.search(code) or "%load_ext d2lbook.tab" in code for _, code in found)
    chosen = []
    for line, code in found:
        if "%load_ext d2lbook.tab" in code:
            continue
        match = MARKER.search(code)
        tabs = [t.strip() for t in match[1].split(",")] if match else ["pytorch"]
        if tabbed and framework not in tabs and "all" not in tabs:
            continue
        body = "\n".join(x for x in code.split("\n") if not x.lstrip().startswith(("%", "!")))
        body = "\n".join(x for x in body.split("\n") if not re.match(r"\s*#\s*@tab\b", x))
        chosen.append((line, body))
    return chosen


def plain_python(files: list[Path], framework: str, timeout: float) -> dict[tuple[str, int], tuple[str, str]]:
    """{(file, line): (passed | failed | timeout, why)} running each file's cells in a fresh python."""
    out: dict[tuple[str, int], tuple[str, str]] = {}
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    env.pop("PYTHONPATH", None)
    for path in files:
        chosen = cells(path, framework)
        if not chosen:
            continue
        key = f"{path.parent.name}/{path.name}"
        with tempfile.TemporaryDirectory(prefix="book-cells-") as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            try:
                done = subprocess.run([sys.executable, "-c", RUNNER], input=json.dumps(chosen), cwd=work, env=env,
                                      capture_output=True, text=True, timeout=timeout)
                lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
            except subprocess.TimeoutExpired as exc:
                text = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
                lines = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
        seen = {r["line"] for r in lines}
        for r in lines:
            out[(key, r["line"])] = (r["status"], r["why"])
        for line, _ in chosen:
            if line not in seen:
                out[(key, line)] = ("timeout", "did not finish")
    return out


def d2lkb_check(folders: list[Path], framework: str) -> tuple[dict[tuple[str, int], tuple[str, str]], float]:
    """{(file, line): (status, detail)} of d2lkb's snippet results on a trusted copy; and its seconds."""
    with tempfile.TemporaryDirectory(prefix="book-d2lkb-") as tmp:
        notes = Path(tmp) / "notes"
        for folder in folders:
            shutil.copytree(folder, notes / folder.name)
        kb = Path(tmp) / "kb"
        d2lkb = [sys.executable, "-m", "d2lkb.cli", "--kb", str(kb), "--notes", str(notes)]
        # trust the copy in a trust list of its own, not in the user's
        env = {**os.environ, "PYTHONPATH": str(ROOT), "D2LKB_CONFIG_HOME": str(Path(tmp) / "user-config")}
        subprocess.run([*d2lkb, "trust", str(notes)], check=True, capture_output=True, env=env)
        started = time.perf_counter()
        done = subprocess.run([*d2lkb, "check", "--json", "--no-cache", "--framework", framework, "kind:snippet"],
                              capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
        if not done.stdout.strip():
            raise SystemExit(f"d2lkb check printed nothing:\n{done.stderr[-3000:]}")
        report = json.loads(done.stdout)
    out = {}
    for r in report["results"]:
        if r["kind"] == "snippet":
            out[(r["path"], r["line"])] = (r["status"], r["detail"])
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[DEFAULT])
    parser.add_argument("--framework", default="pytorch")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per file for plain Python")
    parser.add_argument("--no-d2lkb", action="store_true", help="only the plain Python reference")
    args = parser.parse_args()
    files = sorted(p for folder in args.folders for p in folder.glob("*.md"))
    started = time.perf_counter()
    plain = plain_python(files, args.framework, args.timeout)
    plain_seconds = time.perf_counter() - started
    plain_counts = Counter(status for status, _ in plain.values())
    print(f"plain Python: {plain_counts['passed']} of {len(plain)} {args.framework} cells pass "
          f"({dict(plain_counts)}; {plain_seconds:.1f} s)")
    if args.no_d2lkb:
        for (path, line), (status, why) in sorted(plain.items()):
            if status != "passed":
                print(f"  {path}:{line} {status}: {why[:160]}")
        return
    ours, seconds = d2lkb_check(args.folders, args.framework)
    same = {k: ours[k] for k in plain if k in ours}
    counts = Counter(status for status, _ in same.values())
    print(f"d2lkb check: {counts['passed']} of {len(plain)} of those cells pass ({dict(counts)}; {seconds:.1f} s)")
    print(f"d2lkb, all snippets of the notes: {dict(Counter(s for s, _ in ours.values()))}")
    missing = [k for k in plain if k not in ours]
    if missing:
        print(f"  {len(missing)} reference cells d2lkb has no result for: {missing[:10]}")
    print("cells where they differ:")
    for key in sorted(plain):
        want, why = plain[key]
        got, detail = ours.get(key, ("absent", ""))
        if (want == "passed") != (got == "passed"):
            print(f"  {key[0]}:{key[1]}  plain: {want} {why[:100]!r}\n      d2lkb: {got} {detail[:200]!r}")
    print("cells that pass in neither:")
    for key in sorted(plain):
        want, why = plain[key]
        got, detail = ours.get(key, ("absent", ""))
        if want != "passed" and got != "passed":
            print(f"  {key[0]}:{key[1]}  plain: {want} {why[:100]!r}\n      d2lkb: {got} {detail[:200]!r}")


if __name__ == "__main__":
    main()
