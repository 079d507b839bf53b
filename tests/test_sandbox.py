"""The sandbox against hostile ```python snippets and ```sympy blocks of a trusted folder
(tests/sandbox_cases.py), as root and as an unprivileged user (`nobody`).

Each case proves, on a real SQLite KB and a real notes folder that every user may write
(so that only the sandbox stands in the way): the review log and stored results are
untouched, no note is planted or changed, the KB cannot even be read, the checker and
this process survive `kill` of every pid the code can name, nothing it starts outlives
the run (`setsid` daemons included), the process count and file sizes are capped (a
stdout flood ends with "File too large", what is kept stays small), no TCP connection
reaches a server on this machine (raw `_socket`, subprocesses), and torch still runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from d2lkb.checks import sandbox, sandbox_ns
from tests import sandbox_cases

ROOT = Path(__file__).resolve().parents[1]


def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="d2lkb-sandbox-case-"))
    folder.chmod(0o777)
    return folder


def _python_for_others() -> str | None:
    """An interpreter of this Python version that an unprivileged user can run (this one
    may live in /root); the virtualenv's packages come through PYTHONPATH."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (os.path.realpath(sys.executable), shutil.which(version, path="/usr/bin:/usr/local/bin")):
        if candidate and all(os.stat(p).st_mode & 0o001 for p in [candidate, *map(str, Path(candidate).parents)]):
            return candidate
    return None


@pytest.mark.parametrize("case", ["python", "sympy"])
def test_hostile_code_as_root(case: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("the root case needs the suite to run as root (it runs as an unprivileged user here)")
    folder = _folder()
    try:
        getattr(sandbox_cases, f"case_{case}")(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    group = sandbox_ns._pids_cgroup(0)  # root keeps uid 0 when Python is in /root: a pids cgroup per run
    if group is not None and os.path.isdir(os.path.dirname(group)):
        left = [name for name in os.listdir(os.path.dirname(group)) if name.startswith("d2lkb-sandbox-")
                and not os.path.exists(f"/proc/{name.rsplit('-', 1)[1]}")]
        assert not left, f"pids cgroups left behind: {left}"


@pytest.mark.parametrize("case", ["python", "sympy"])
def test_hostile_code_as_an_unprivileged_user(case: str) -> None:
    if os.geteuid() != 0:  # this is the unprivileged user already
        folder = _folder()
        try:
            getattr(sandbox_cases, f"case_{case}")(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import pwd

    nobody = pwd.getpwnam("nobody")
    python = _python_for_others()
    if python is None:
        pytest.skip("no interpreter of this Python version that `nobody` may run")
    site = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), site]), "HOME": "/tmp"}

    def drop() -> None:
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    folder = _folder()
    try:
        done = subprocess.run([python, "-m", "tests.sandbox_cases", case, str(folder)], cwd="/", env=env,
                              preexec_fn=drop, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert done.returncode == 0 and "case passed" in done.stdout, done.stdout + done.stderr


def test_root_with_a_python_others_can_read_drops_to_nobody() -> None:
    """Root's other path: with a Python that `nobody` can read, the sandbox runs as nobody
    (RLIMIT_NPROC then binds, in the sandbox's own user namespace)."""
    if os.geteuid() != 0:
        pytest.skip("needs the suite to run as root")
    python = _python_for_others()
    if python is None:
        pytest.skip("no interpreter of this Python version that `nobody` may run")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]])}
    folder = _folder()
    try:
        done = subprocess.run([python, "-m", "tests.sandbox_cases", "python", str(folder)], cwd="/", env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert done.returncode == 0 and "case passed" in done.stdout, done.stdout + done.stderr
    import pwd

    assert f"uid inside: {pwd.getpwnam('nobody').pw_uid}\n" in done.stdout, done.stdout


def test_no_layer_is_missing_on_this_kernel() -> None:
    """Where the kernel offers them (user namespaces, Landlock >= 6), every layer is there;
    elsewhere `Layers.missing` names what is not (printed with each result)."""
    if sandbox.landlock.abi_version() < 6 or not Path("/proc/self/ns/user").exists():
        pytest.skip("this kernel lacks Landlock ABI 6 or user namespaces: the results say so instead")
    workdir = tempfile.mkdtemp()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        layers = sandbox.enter(workdir, keep_fds=(write,))
        os.write(write, ("|".join(layers.missing) + "\n" + "|".join(layers.active)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        missing, active = answer.read().split("\n")
    os.waitpid(pid, 0)
    sandbox.cleanup(pid)
    shutil.rmtree(workdir, ignore_errors=True)
    assert missing == "", missing
    assert "Landlock ABI" in active and "network" in active and "PID" in active


def test_a_kernel_without_namespaces_or_landlock_is_named_and_daemons_still_die(monkeypatch):
    """The degraded path: `unshare` refused, no Landlock. Each missing layer is named (the
    results carry that line), and the middle process, a subreaper, still kills what the
    code left running (a `setsid` daemon)."""
    import ctypes
    import errno
    import time

    class NoUnshare:
        def __init__(self, libc: ctypes.CDLL) -> None:
            self.libc = libc

        def unshare(self, flags: int) -> int:
            ctypes.set_errno(errno.EPERM)
            return -1

        def __getattr__(self, name: str):
            return getattr(self.libc, name)

    real = sandbox_ns._libc
    monkeypatch.setattr(sandbox_ns, "_libc", lambda: NoUnshare(real()))
    monkeypatch.setattr(sandbox.landlock, "abi_version", lambda: 0)
    marker = f"300.{os.getpid()}{time.monotonic_ns()}"
    workdir = tempfile.mkdtemp()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            layers = sandbox.enter(workdir, keep_fds=(write,))
            os.write(write, layers.notice().encode())
            os.close(write)
            subprocess.Popen(["setsid", "sleep", marker], start_new_session=True)
            time.sleep(0.5)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        notice = answer.read()
    os.waitpid(pid, 0)
    sandbox.cleanup(pid)
    shutil.rmtree(workdir, ignore_errors=True)
    assert notice.startswith("sandbox weaker here: no ")
    for layer in ("network namespace", "PID namespace", "user namespace", "filesystem restriction"):
        assert layer in notice, notice
    assert not sandbox_cases._running(marker), "a daemon outlived the sandbox"


def test_a_checkout_under_tmp_still_runs_its_snippets(tmp_path: Path) -> None:
    """/tmp is hidden inside the sandbox (servers' sockets): a d2lkb installed under it (a
    clone in /tmp, as CI may make) must still be readable there, and a KB beside it must not."""
    if not str(tmp_path).startswith(sandbox_ns.HIDDEN):
        pytest.skip(f"the test's folder {tmp_path} is not under {sandbox_ns.HIDDEN}")
    shutil.copytree(ROOT / "d2lkb", tmp_path / "d2lkb", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "site").mkdir()  # a library folder under /tmp (a virtualenv's site-packages), imported lazily
    (tmp_path / "site" / "probe_module.py").write_text("WHERE = __file__\n")
    (tmp_path / "kb.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(100))
    code = ("import d2lkb, probe_module\n"
            f"print('ok' if d2lkb.__file__.startswith({str(tmp_path)!r}) else d2lkb.__file__)\n"
            "try:\n    open(" + repr(str(tmp_path / "kb.sqlite")) + ", 'rb').read(16)\n    print('KB read')\n"
            "except OSError as exc:\n    print('no KB:', type(exc).__name__)\n")
    script = ("import sys\nfrom d2lkb.checks.snippets import SnippetRunner\nfrom d2lkb.model import Snippet\n"
              "with SnippetRunner(device='cpu', timeout=60) as runner:\n"
              f"    [r] = runner.run_note([Snippet('python', {code!r}, 1, None)])\n"
              "print(r.status.value, repr(r.output), r.detail)\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{tmp_path / 'site'}"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("passed 'ok\\nno KB:"), done.stdout + done.stderr
