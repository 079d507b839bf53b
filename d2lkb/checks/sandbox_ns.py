"""Namespaces, mounts and identity for `sandbox.enter` (see its module docstring).

Each function adds what it did to `layers.active`, or what the kernel refused to
`layers.missing`, and never raises for a refusal.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from d2lkb.checks.sandbox import Layers, Limits

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
_PR_SET_DUMPABLE = 4


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def drop_root(workdir: str, layers: Layers) -> None:
    import pwd

    try:
        user = pwd.getpwnam("nobody")
        uid, gid = user.pw_uid, user.pw_gid
    except KeyError:
        uid = gid = 65534
    os.chown(workdir, uid, gid)
    for sub, _dirs, files in os.walk(workdir):
        for name in [*_dirs, *files]:
            os.lchown(os.path.join(sub, name), uid, gid)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    _libc().prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)  # setuid made /proc/self root's; the maps need it ours
    layers.active.append(f"runs as uid {uid} (not root)")


_NAMES = {CLONE_NEWUSER: "user", CLONE_NEWNET: "network", CLONE_NEWPID: "PID", CLONE_NEWIPC: "IPC",
          CLONE_NEWNS: "mount"}
_MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 2, 4, 1 << 14, 1 << 18


def private_shm(namespaces: set[int], limits: Limits, layers: Layers) -> None:
    """A /dev/shm of the sandbox's own (multiprocessing's semaphores, torch's DataLoader
    workers), a tmpfs of `limits.shm_bytes` that ends with the sandbox; else it stays
    unwritable (Landlock), and multiprocessing in notes fails."""
    libc = _libc()
    if CLONE_NEWNS in namespaces and libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) == 0:
        options = f"size={limits.shm_bytes},mode=1777".encode()
        if libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", _MS_NOSUID | _MS_NODEV, options) == 0:
            layers.active.append(f"a private /dev/shm of {limits.shm_bytes // 2**20} MiB")
            layers.writable.append("/dev/shm")
            return
    why = os.strerror(ctypes.get_errno()) if CLONE_NEWNS in namespaces else "no mount namespace"
    layers.missing.append(f"private /dev/shm ({why}: multiprocessing in notes fails)")


def others_can_read_python(paths: list[str]) -> bool:
    """Whether a user other than root can reach and read Python, its libraries and d2lkb
    (`paths`, those that exist; not so for a Python installed in /root): then the sandbox
    can run as ``nobody``."""
    for path in {os.path.realpath(sys.executable), *paths}:
        here = Path(os.path.realpath(path))
        if not here.exists():
            continue
        for folder in [here, *here.parents]:
            try:
                mode = folder.stat().st_mode
            except OSError:
                return False
            if not mode & 0o001 and (folder.is_dir() or not mode & 0o004):
                return False
    return True


def _pids_cgroup(pid: int) -> str | None:
    """Where the pids cgroup of sandbox `pid` goes: below this process's own (v1 or v2)."""
    try:
        with open("/proc/self/cgroup") as own:
            lines = [line.rstrip("\n").split(":", 2) for line in own]
    except OSError:
        return None
    v1 = [f"/sys/fs/cgroup/pids{path}" for _, names, path in lines if "pids" in names.split(",")]
    v2 = [f"/sys/fs/cgroup{path}" for num, _, path in lines if num == "0"]
    bases = v1 or v2
    return os.path.join(bases[0], f"d2lkb-sandbox-{pid}") if bases else None


def process_cgroup(processes: int, layers: Layers) -> None:
    """Root that stays uid 0 (in a user namespace): RLIMIT_NPROC does not bind uid 0, so cap
    the processes with a pids cgroup of this process's own (removed by `cleanup`)."""
    group = _pids_cgroup(os.getpid())
    try:
        if group is None:
            raise OSError(0, "no cgroup")
        os.mkdir(group)
        _write(os.path.join(group, "pids.max"), str(processes))
        _write(os.path.join(group, "cgroup.procs"), str(os.getpid()))
        layers.active.append("uid 0 without capabilities (Python is unreadable for others), a pids cgroup")
    except OSError as exc:
        layers.missing.append(
            "process limit (root stays uid 0, as Python is unreadable for other users, and RLIMIT_NPROC does"
            f" not bind uid 0; no pids cgroup: {exc.strerror})"
        )


def cleanup(pid: int) -> None:
    """After the sandbox's first process `pid` has been reaped: remove its pids cgroup, if any
    (waiting up to 2 s for processes killed with it to go), and any other left by a sandbox
    whose first process is gone (its parent was killed before it could clean up)."""
    group = _pids_cgroup(pid)
    if group is None or not os.path.isdir(os.path.dirname(group)):
        return
    for _ in range(200):
        try:
            os.rmdir(group)
            break
        except FileNotFoundError:
            break
        except OSError:
            time.sleep(0.01)
    base = os.path.dirname(group)
    with contextlib.suppress(OSError):
        for name in os.listdir(base):
            owner = name.removeprefix("d2lkb-sandbox-")
            if owner != name and owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(base, name))


HIDDEN = ("/tmp", "/var/tmp", "/run")  # where servers keep their sockets (tmux, ssh-agent, X11, dbus, docker)
_MS_BIND = 1 << 12


def hide_sockets(namespaces: set[int], workdir: str, layers: Layers, keep: Iterable[str] = ()) -> None:
    """Cover `HIDDEN` with empty tmpfs mounts, the run's folder and the folders in `keep` (what
    the code may read: Python, its libraries, d2lkb's package, which may live under /tmp) bound
    back in place: Landlock (up to ABI 7) does not govern connecting to a named unix socket, so
    a server's socket there (a tmux session, an ssh agent) would be a way out. Only in a mount
    namespace."""
    if CLONE_NEWNS not in namespaces:
        layers.missing.append("hiding of /tmp and /run (no mount namespace: named unix sockets there are reachable)")
        return
    libc = _libc()
    wanted = sorted({workdir, *(p for p in keep if any(p.startswith(f + "/") for f in HIDDEN) and os.path.isdir(p))})
    outer = [p for p in wanted if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in wanted)]
    fds = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path in outer}
    try:
        hidden = []
        for folder in HIDDEN:
            if os.path.islink(folder) or not os.path.isdir(folder):
                continue
            if libc.mount(b"tmpfs", folder.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=1m,mode=1777") != 0:
                layers.missing.append(f"hiding of {folder} ({os.strerror(ctypes.get_errno())})")
                continue
            hidden.append(folder)
            for path, fd in fds.items():
                if path.startswith(folder.rstrip("/") + "/"):
                    os.makedirs(path, exist_ok=True)
                    if libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, _MS_BIND, None) != 0:
                        raise OSError(ctypes.get_errno(), f"cannot bind {path} back in place")
        if hidden:
            layers.active.append(f"{', '.join(hidden)} hidden")
    finally:
        for fd in fds.values():
            os.close(fd)


def unshare(flags: int, layers: Layers) -> set[int]:
    """Enter the new namespaces `flags` asks for (all at once, else one by one); the set entered.

    A new user namespace maps the caller's own ids only (what an unprivileged user may do).
    """
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    wanted = [flag for flag in _NAMES if flags & flag]
    if libc.unshare(flags) == 0:
        got = set(wanted)
    else:
        got = {flag for flag in wanted if flag != CLONE_NEWUSER and libc.unshare(flag) == 0}
        why = os.strerror(ctypes.get_errno())
        for flag in wanted:
            if flag not in got and flag != CLONE_NEWIPC:
                layers.missing.append(f"{_NAMES[flag]} namespace ({why})")
    if CLONE_NEWUSER in got:
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as exc:
            layers.missing.append(f"user id map ({exc.strerror})")
    if got:
        layers.active.append(", ".join(_NAMES[f] for f in wanted if f in got) + " namespace(s)")
    return got


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


