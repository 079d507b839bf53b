"""The bundled notes checked on CPU and on CUDA, compared (run this on a CUDA machine).

    python bench/gpu_check.py [--json OUT.json]

Prints each device's statuses and timings, whether the statuses agree, and whether every
snippet's output on CUDA equals its CPU output after normalisation (device annotations,
float formatting). Exit status 1 if anything differs or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from d2lkb.checks.outputs import compare_output
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="d2lkb-gpu-"))
    notes = work / "notes"
    shutil.copytree(ROOT / "notes", notes)
    kb = KnowledgeBase(load_config(work / "kb", notes))
    os.environ["D2LKB_CONFIG_HOME"] = str(work / "user-config")  # trust the copy here, not in the user's list
    kb.trust(notes)
    kb.sync()
    out: dict = {"python": sys.version.split()[0]}
    reports = {}
    for device in ("cpu", "cuda"):
        t0 = time.perf_counter()
        report = kb.run_checks(device=device, use_cache=False)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        kb.run_checks(device=device)
        cached_wall = time.perf_counter() - t1
        reports[device] = report
        snippet_seconds = sum(r.seconds for r in report.results if r.kind == "snippet")
        out[device] = {"summary": report.summary, "torch": report.torch_version, "seconds": round(wall, 3),
                       "snippet_seconds": round(snippet_seconds, 3), "cached_seconds": round(cached_wall, 4),
                       "devices_reported": sorted({r.device for r in report.results if r.kind == "snippet"})}
        print(f"{device}: {report.summary}  torch {report.torch_version}  {wall:.2f} s cold"
              f" (snippets {snippet_seconds:.2f} s), {cached_wall:.3f} s cached")
        for r in report.sorted():
            if r.is_failure or r.status.value in ("skipped", "unparsed"):
                print(f"  {r.status.value} {r.path}:{r.line} {r.detail[:300]}")
    cpu = {(r.kind, r.path, r.line): r.status.value for r in reports["cpu"].results}
    gpu = {(r.kind, r.path, r.line): r.status.value for r in reports["cuda"].results}
    differ = sorted(k for k in cpu if cpu.get(k) != gpu.get(k))
    out["status_differences"] = [list(k) + [cpu.get(k), gpu.get(k)] for k in differ]
    # Outputs: the stored raw output of each snippet on each device, compared after normalisation.
    rows = kb.conn.execute(
        "SELECT s.check_hash, n.path, s.line, c.device, c.output FROM snippet s JOIN note n ON n.id = s.note_id"
        " JOIN checkresult c ON c.check_hash = s.check_hash AND c.kind = 'snippet' WHERE s.language != 'sympy'"
    ).fetchall()
    by_snippet: dict[tuple, dict[str, str]] = {}
    for _h, path, line, device, output in rows:
        by_snippet.setdefault((path, line), {})[device] = output
    mismatches = []
    for (path, line), outputs in sorted(by_snippet.items()):
        if "cpu" in outputs and "cuda" in outputs:
            ok, diff = compare_output(outputs["cpu"], outputs["cuda"])
            if not ok:
                mismatches.append({"path": path, "line": line, "diff": diff})
    out["snippets_compared"] = sum(1 for o in by_snippet.values() if "cpu" in o and "cuda" in o)
    out["output_mismatches"] = mismatches
    print(f"statuses differ: {len(differ)}; snippet outputs compared: {out['snippets_compared']},"
          f" mismatches after normalisation: {len(mismatches)}")
    for m in mismatches:
        print(f"  {m['path']}:{m['line']}\n{m['diff']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    kb.close()
    ok = not differ and not mismatches and reports["cpu"].ok and reports["cuda"].ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
