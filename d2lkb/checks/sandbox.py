"""The sandbox that note code (```python snippets, ```sympy blocks) runs in.

`enter(workdir)` is called in a freshly forked, single-threaded child ("C") of a checker
process. It builds the sandbox in layers, each from what the kernel offers, and returns
only in a grandchild ("G") that runs the note's code:

1. **An unprivileged identity.** Run as root, C first drops to ``nobody`` (setgroups,
   setgid, setuid): no capabilities, so root's exemptions (raising limits, the process
   limit, signalling anyone, writing root's files) are gone.
2. **Namespaces** (`unshare`): a new user namespace (what lets a normal user create the
   others; it also gives the sandbox a process count of its own), a network namespace
   (no interface but a loopback that is down: no network from Python, C code or
   subprocesses), a PID namespace (G is its init: when G ends, the kernel kills
   everything left in it, `setsid` daemons included, and no process outside it, the
   checker or d2lkb itself, has a pid inside it), an IPC namespace, and a mount
   namespace whose /dev/shm is a small tmpfs of its own (multiprocessing and torch's
   DataLoader workers need one; it vanishes with the sandbox) and whose /tmp, /var/tmp
   and /run are empty (the run's folder bound back): Landlock does not govern connecting
   to a named unix socket (a tmux server, an ssh agent), so those places are hidden.
3. **Landlock** (`landlock.py`): read-only access to Python, its libraries, the d2lkb
   package and the system directories; write access to `workdir` only; a few device
   files; no TCP; no signals to processes outside the sandbox. The KB and the notes
   folder are not on the list: they cannot be read or written.
4. **Limits**: ``RLIMIT_FSIZE`` (files written, the captured stdout included),
   ``RLIMIT_NPROC`` (processes and threads, counted in the sandbox's user namespace),
   no core files; each process dies with its parent (``PR_SET_PDEATHSIG``) and G is in
   a session of its own.

A layer the kernel refuses is left out, and `Layers.missing` says which (the callers
add that line to each result's detail): never a silent degradation. Without a PID
namespace, C becomes a child subreaper and kills whatever G left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import site
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from d2lkb.checks import landlock
from d2lkb.checks.sandbox_ns import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    drop_root,
    hide_sockets,
    others_can_read_python,
    private_shm,
    process_cgroup,
    unshare,
)
from d2lkb.checks.sandbox_ns import cleanup as cleanup  # noqa: F401 - the callers' name for it

_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt", "/proc", "/sys", "/dev")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_DEVICE_PREFIXES = ("nvidia",)  # /dev/nvidia*: CUDA
PARENT_ENV = "D2LKB_PARENT_PID"  # set for a checker process: the pid of the d2lkb process that started it


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use: bytes per file written, processes (threads included)."""

    file_bytes: int = 256 * 2**20
    processes: int = max(256, 4 * (os.cpu_count() or 1))
    shm_bytes: int = 256 * 2**20  # the sandbox's own /dev/shm


@dataclass
class Layers:
    """The layers a sandbox has, and those the kernel (or the user running d2lkb) did not allow."""

    active: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    writable: list[str] = field(default_factory=list)  # besides the run's folder

    def notice(self) -> str:
        """One line for a result's detail; empty when nothing is missing."""
        if not self.missing:
            return ""
        return "sandbox weaker here: no " + "; no ".join(self.missing)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent dies; exit at once if it already has
    (`parent`: the pid it was started by, when known; else the current parent)."""
    expected = os.getppid() if parent is None else parent
    with contextlib.suppress(Exception):
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != expected:
        os._exit(1)


def read_paths() -> list[str]:
    """What sandboxed code may read: Python and its libraries, d2lkb's package, system dirs.

    A `sys.path` folder that holds the d2lkb package (its repository, where a notes folder
    and a KB may live too) is allowed only for the package itself; `/` and the working
    directory (and their like) never.
    """
    package = Path(__file__).resolve().parents[1]
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, str(package)}
    with contextlib.suppress(Exception):
        paths.update(site.getsitepackages())
        paths.add(site.getusersitepackages())
    unsafe = {"/", *map(str, package.parents)}  # '/', and the package's repository and its parents
    with contextlib.suppress(OSError):
        cwd = Path.cwd().resolve()  # `python -m` puts it on sys.path: it may be the notes folder
        unsafe |= {str(cwd), *map(str, cwd.parents)}
    for entry in sys.path:
        real = os.path.realpath(entry) if entry else ""
        if real and real not in unsafe and os.path.isdir(real) and not os.path.isdir(os.path.join(real, "d2lkb")):
            paths.add(real)
    return sorted({os.path.realpath(p) for p in paths} | set(SYSTEM_READ))


def device_paths() -> list[str]:
    found = list(DEVICES)
    with contextlib.suppress(OSError):
        found += [f"/dev/{n}" for n in sorted(os.listdir("/dev")) if n.startswith(_DEVICE_PREFIXES)]
    return found


def enter(
    workdir: str,
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen
    keep_fds: tuple[int, ...] = (),
) -> Layers:
    """In a forked, single-threaded child: build the sandbox (see the module docstring).

    Returns only in the process that is to run the code (in a PID namespace, its pid 2:
    pid 1 is a small init that reaps, and whose end ends everything in the namespace); the
    calling process and that init wait for it and exit as it did. File descriptors other
    than 0-2 and `keep_fds` are closed. `workdir` must exist: the one place the code may
    write. `host_pid()` tells the pid that the caller's caller can watch.
    """
    layers = Layers()
    starter = os.getppid()
    readable = read_paths()  # once: the mounts below hide /tmp, and the list costs a walk of sys.path
    if os.geteuid() == 0:
        namespaces = unshare(CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNS, layers)
        private_shm(namespaces, limits, layers)
        hide_sockets(namespaces, workdir, layers, readable)
        if others_can_read_python([p for p in readable if p not in SYSTEM_READ]):
            drop_root(workdir, layers)
        else:
            process_cgroup(limits.processes, layers)
        namespaces |= unshare(CLONE_NEWUSER, layers)
    else:
        namespaces = unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNS, layers)
        private_shm(namespaces, limits, layers)
        hide_sockets(namespaces, workdir, layers, readable)
    die_with_parent(starter)  # again: a change of credentials cleared it
    pid_ns = CLONE_NEWPID in namespaces
    if not pid_ns:
        with contextlib.suppress(Exception):
            _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    parent = os.getpid()
    pid = os.fork()
    if pid != 0:
        _wait_and_exit(pid, keep_fds, reap_all=not pid_ns)
    try:
        _close_fds(keep_fds)
        die_with_parent(None if pid_ns else parent)
        os.setsid()
        _limit(limits, layers)
        _restrict(readable, workdir, layers, tcp=CLONE_NEWNET in namespaces)
        if pid_ns:  # this is the namespace's init: the code runs in a child of it
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            pid = os.fork()
            if pid != 0:
                _wait_and_exit(pid, keep_fds, reap_all=False, init=True)
            die_with_parent()
    except BaseException:  # noqa: BLE001 - never run the code in a half-built sandbox
        os._exit(70)
    return layers


def host_pid() -> int | None:
    """This process's pid as seen outside its PID namespace (from /proc, which stays the host's)."""
    try:
        return int(os.readlink("/proc/self"))
    except (OSError, ValueError):
        return None


def _close_fds(keep: tuple[int, ...]) -> None:
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 65536)


def _limit(limits: Limits, layers: Layers) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
    for which, value in (
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_CORE, 0),
    ):
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    layers.active.append(f"files up to {limits.file_bytes // 2**20} MiB, {limits.processes} processes")


def _restrict(readable: list[str], workdir: str, layers: Layers, *, tcp: bool) -> None:
    done = landlock.restrict(readable, [workdir, *layers.writable], device_paths(), tcp=tcp)
    if done.abi:
        layers.active.append(f"Landlock ABI {done.abi}")
    layers.missing += done.missing


def _wait_and_exit(pid: int, keep_fds: tuple[int, ...], *, reap_all: bool, init: bool = False) -> None:
    """Wait for `pid` (reaping any other child meanwhile: orphans come to an init) and exit as
    it did. An init cannot kill itself with a signal: it exits with 128 + the signal instead,
    and its parent turns that back into the signal. Never returns."""
    code = 70
    try:
        for fd in keep_fds:
            with contextlib.suppress(OSError):
                os.close(fd)  # the code's end of a pipe closes when the code's process ends
        while True:
            done, status = os.waitpid(-1 if init else pid, 0)
            if done == pid:
                break
        if reap_all:
            _kill_descendants()
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            if init:
                os._exit(128 + number)
        elif not init and os.WEXITSTATUS(status) > 128:  # an init that passed a signal on
            number = os.WEXITSTATUS(status) - 128
        else:
            number = 0
        if number:
            with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
                signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            time.sleep(1)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70
    finally:
        os._exit(code)


def _kill_descendants() -> None:
    """Without a PID namespace: kill what the sandbox left (reparented to us, a subreaper)."""
    me = str(os.getpid())
    for _ in range(100):
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError), open(f"/proc/{entry}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[1].decode() == me:
                    children.append(int(entry))
        if not children:
            return
        for child in children:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        time.sleep(0.01)
