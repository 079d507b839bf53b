"""Hostile notes against the sandbox, run by tests/test_sandbox.py as root and as `nobody`.

Each case gets a folder (readable and writable by everyone: DAC alone would let the
code in, so what stops it is the sandbox) holding a real SQLite KB with a review log
and stored check results, and a notes folder. Run as a script: `python -m
tests.sandbox_cases CASE FOLDER` (what the unprivileged run does).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
import time
from pathlib import Path

from d2lkb.checks.pool import FormulaChecker
from d2lkb.checks.sandbox import Limits
from d2lkb.checks.snippets import SnippetRunner
from d2lkb.model import CheckStatus, Snippet

LIMITS = Limits(file_bytes=4 * 2**20, processes=48)


def prepare(folder: Path) -> tuple[Path, Path]:
    """A KB (review log, stored results) and a notes folder, open to every user."""
    kb, vault = folder / "kb.sqlite", folder / "notes"
    vault.mkdir()
    (vault / "note.md").write_text("# Note\n")
    with sqlite3.connect(kb) as db:
        db.execute("CREATE TABLE reviewlog (id INTEGER PRIMARY KEY, rating INTEGER)")
        db.execute("CREATE TABLE check_results (key TEXT PRIMARY KEY, status TEXT)")
        db.executemany("INSERT INTO reviewlog (rating) VALUES (?)", [(3,), (4,)])
        db.execute("INSERT INTO check_results VALUES ('k', 'refuted')")
    for path in (vault, kb, vault / "note.md"):
        path.chmod(0o777 if path.is_dir() else 0o666)
    return kb, vault


def attacks(kb: Path, vault: Path, parents: list[int], marker: str, port: int) -> list[str]:
    """Python source of each attack; each prints what it achieved (for the failure messages)."""
    return [
        f"import sqlite3\ndb = sqlite3.connect({str(kb)!r})\ndb.execute('DELETE FROM reviewlog')\n"
        "db.execute(\"UPDATE check_results SET status = 'verified'\")\ndb.commit()",
        f"open({str(vault / 'evil.md')!r}, 'w').write('# planted')",
        f"open({str(vault / 'note.md')!r}, 'a').write('changed')",
        f"print(open({str(kb)!r}, 'rb').read(16))",
        # through /proc: the KB as a descriptor of a process outside (here this test's), its cwd
        "import os\nfor pid in " + repr(parents) + ":\n    for fd in os.listdir(f'/proc/{pid}/fd'):\n"
        "        print(open(f'/proc/{pid}/fd/{fd}', 'rb').read(16))",
        "import os\nfor pid in " + repr(parents) + ":\n    print(os.listdir(f'/proc/{pid}/cwd'))",
        "import os, signal\nfor pid in [os.getppid(), *" + repr(parents) + "]:\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n        print('killed', pid)\n"
        "    except OSError as e:\n        print('refused', pid, e.errno)",
        f"import subprocess\nsubprocess.Popen(['setsid', 'sleep', {marker!r}])\n"
        f"import os\nif os.fork() == 0:\n    os.setsid()\n    os.execvp('sleep', ['sleep', {marker!r}])",
        f"import _socket\ns = _socket.socket(2, 1)\ns.settimeout(3)\ns.connect(('127.0.0.1', {port}))",
        # a named unix socket (a tmux server, an ssh agent): Landlock <= 7 does not govern connect()
        f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({str(kb.parent / 'server.sock')!r})",
        "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import _socket; s = _socket.socket(2, 1);"
        f" s.settimeout(3); s.connect((\"127.0.0.1\", {port}))'], check=True)",
    ]


def _targets(folder: Path) -> tuple[Path, Path, str, socket.socket, socket.socket]:
    """(KB, vault, a marker for daemons, a TCP server and a unix-socket server that nothing may reach)."""
    kb, vault = prepare(folder)
    marker = f"300.{os.getpid()}{time.monotonic_ns()}"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.setblocking(False)
    return kb, vault, marker, server, _unix_server(folder)


def case_python(folder: Path) -> None:
    kb, vault, marker, server, local = _targets(folder)
    held = open(kb, "rb")  # noqa: SIM115 - open during the attacks: /proc/PID/fd/N must not reach it
    with SnippetRunner(device="cpu", timeout=60, limits=LIMITS) as runner:
        zygote = runner._worker_status()["pid"]
        parents = [zygote, os.getpid(), os.getppid()]
        for code in attacks(kb, vault, parents, marker, server.getsockname()[1]):
            [result] = runner.run_note([Snippet("python", code, 1, None)])
            # (the note's own parent is its PID namespace's init, which ignores the SIGKILL)
            assert not any(f"killed {pid}\n" in result.output for pid in parents), (code, result)
            assert "SQLite" not in result.output, (code, result)  # the KB's header: it was read
            print(f"{result.status.value}: {result.detail.splitlines()[-1] if result.detail else ''} {result.output!r}")
        assert runner._worker_status()["pid"] == zygote, "the snippet worker was killed"
        [who] = runner.run_note([Snippet("python", "import os\nprint(os.getuid())", 1, None)])
        print(f"uid inside: {who.output.strip()}")
        # processes: capped; output: what is kept is capped, what is written is limited
        fork = ("import subprocess\nps = []\ntry:\n    for _ in range(1000):\n"
                "        ps.append(subprocess.Popen(['sleep', '60']))\nfinally:\n    print(len(ps))")
        [forked] = runner.run_note([Snippet("python", fork, 1, None)])
        assert forked.status is CheckStatus.ERROR and int(forked.output) < LIMITS.processes, forked
        flood = "import sys\nwhile True:\n    sys.stdout.write('x' * 2**20)"
        [flooded] = runner.run_note([Snippet("python", flood, 1, None)])
        assert flooded.status is CheckStatus.ERROR and "File too large" in flooded.detail, flooded
        assert len(flooded.output) < 1_100_000
        [big] = runner.run_note([Snippet("python", "open('big', 'wb').write(bytes(8 * 2**20))", 1, None)])
        assert "File too large" in big.detail, big
        # torch still works inside
        [torch] = runner.run_note([Snippet("python", "import torch\nx = torch.ones(3, 3)\nprint((x @ x).sum().item())", 1, None,
                                           expected="27.0")])
        assert torch.status is CheckStatus.PASSED, torch.detail
        loader = ("import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n"
                  "ds = TensorDataset(torch.arange(100.).reshape(50, 2), torch.arange(50))\n"
                  "print(sum(x.sum().item() for x, _ in DataLoader(ds, batch_size=10, num_workers=2)))\n"
                  f"_ = open('/dev/shm/{marker}', 'w').write('left behind?')")
        [workers] = runner.run_note([Snippet("python", loader, 1, None, expected="4950.0")])
        assert workers.status is CheckStatus.PASSED, workers.detail  # multiprocessing: a /dev/shm of its own
    assert not os.path.exists(f"/dev/shm/{marker}"), "the sandbox wrote to the machine's /dev/shm"
    held.close()
    check_untouched(kb, vault, marker)
    _nobody_came(server, local)


def case_sympy(folder: Path) -> None:
    kb, vault, marker, server, local = _targets(folder)
    me = os.getpid()
    with FormulaChecker(jobs=1, retries=0) as checker:
        assert checker.check("sympy", "assert True").status is CheckStatus.VERIFIED  # starts the worker
        parents = [os.getpid(), os.getppid(), checker._workers[0].process.pid]
        for code in attacks(kb, vault, parents, marker, server.getsockname()[1]):
            result = checker.check("sympy", code + "\nassert True")
            assert result.status is not CheckStatus.VERIFIED or "kill" in code or "setsid" in code, (code, result)
            assert os.getpid() == me and checker.check("sympy", "assert True").status is CheckStatus.VERIFIED
            print(f"{result.status.value}: {result.detail}")
        leak = checker.check("sympy", "import sys\nprint('x' * 2**20)\nopen('big', 'wb').write(bytes(300 * 2**20))")
        assert "File too large" in leak.detail, leak
        assert checker.check("sympy", "x = Symbol('x')\nassert expand((x + 1)**2) == x**2 + 2*x + 1").status is CheckStatus.VERIFIED
    check_untouched(kb, vault, marker)
    _nobody_came(server, local)


def _unix_server(folder: Path) -> socket.socket:
    local = socket.socket(socket.AF_UNIX)
    local.bind(str(folder / "server.sock"))
    (folder / "server.sock").chmod(0o777)
    local.listen(4)
    local.setblocking(False)
    return local


def _nobody_came(*servers: socket.socket) -> None:
    for server in servers:
        try:
            server.accept()
            raise AssertionError(f"the code reached a server on this machine ({server.family.name})")
        except BlockingIOError:
            pass
        server.close()


def check_untouched(kb: Path, vault: Path, marker: str) -> None:
    with sqlite3.connect(kb) as db:
        assert db.execute("SELECT count(*) FROM reviewlog").fetchone() == (2,), "the review log was changed"
        assert db.execute("SELECT status FROM check_results").fetchone() == ("refuted",), "a stored result changed"
    assert sorted(p.name for p in vault.iterdir()) == ["note.md"], "a note was planted"
    assert (vault / "note.md").read_text() == "# Note\n", "a note was changed"
    deadline = time.monotonic() + 60
    while _running(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(marker), "a process started by the note outlived the run"


def _running(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    text = cmdline.read()
                with open(f"/proc/{entry}/stat") as stat:
                    zombie = stat.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                continue
            if marker.encode() in text and not zombie:
                found.append(int(entry))
    return found


if __name__ == "__main__":
    {"python": case_python, "sympy": case_sympy}[sys.argv[1]](Path(sys.argv[2]))
    print("case passed")
