"""What the sandbox adds per note (``python`` snippets) and per ```sympy block.

Baseline, in the same process and run: what a note cost before the sandbox, a fork of a
process that has torch (or SymPy) imported, the child running a trivial statement and
exiting. Sandboxed: the same, the child entering `sandbox.enter` first (namespaces, the
root drop or the pids cgroup, Landlock, limits, the init/worker double fork). Then the
end-to-end time of a trivial note through `SnippetRunner.run_note` and of a trivial block
through `FormulaChecker`, for scale. 3 runs of N each; median per run, spread, load.

    PYTHONPATH=. .venv/bin/python bench/sandbox_overhead.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time

from d2lkb.checks import sandbox


def one(sandboxed: bool) -> float:
    workdir = tempfile.mkdtemp()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        if sandboxed:
            sandbox.enter(workdir)
        x = sum(range(10))  # the "snippet"
        os._exit(0 if x == 45 else 1)
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - started
    sandbox.cleanup(pid)
    shutil.rmtree(workdir, ignore_errors=True)
    assert status == 0, status
    return seconds


def runs(label: str, measure, n: int) -> list[float]:
    medians = []
    for _ in range(3):
        medians.append(statistics.median(measure() for _ in range(n)) * 1000)
    print(f"{label:44s} median {statistics.median(medians):7.2f} ms  (runs: {', '.join(f'{m:.2f}' for m in medians)})")
    return medians


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    import torch  # noqa: F401 - the zygote's state: forks copy its page tables

    print(f"uid {os.geteuid()}, load {os.getloadavg()}, N={n} per run, layers: {probe()}")
    base = runs("fork + exit (torch imported; no sandbox)", lambda: one(False), n)
    boxed = runs("fork + sandbox.enter + exit", lambda: one(True), n)
    ratio = statistics.median(boxed) / statistics.median(base)
    extra = statistics.median(boxed) - statistics.median(base)
    print(f"sandbox per note: +{extra:.2f} ms, ratio {ratio:.2f}x the bare fork")
    from d2lkb.checks.pool import FormulaChecker
    from d2lkb.checks.snippets import SnippetRunner
    from d2lkb.model import Snippet

    with SnippetRunner(device="cpu") as runner:
        note = [Snippet("python", "1 + 1", 1, None)]
        runs("end to end: a 1-snippet note (run_note)", lambda: _timed(lambda: runner.run_note(note)), n)
    with FormulaChecker(jobs=1) as checker:
        runs("end to end: a ```sympy block (check)", lambda: _timed(lambda: checker.check("sympy", "assert 1 + 1 == 2")),
             n)
    print(f"load after: {os.getloadavg()}")


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def probe() -> str:
    workdir = tempfile.mkdtemp()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        layers = sandbox.enter(workdir, keep_fds=(write,))
        os.write(write, ("; ".join(layers.active) + (" | MISSING: " + layers.notice() if layers.missing else "")).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    sandbox.cleanup(pid)
    shutil.rmtree(workdir, ignore_errors=True)
    return text


if __name__ == "__main__":
    main()
