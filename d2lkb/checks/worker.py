"""The snippet worker: a warm "zygote" process that imports torch once and forks
one child per note run.

Runs as `python -P -c "from d2lkb.checks.worker import main; main()"`, started
by `d2lkb.checks.snippets.SnippetRunner`; nothing else should import it for its
side effects. At import time this module needs the standard library only (the
parent imports it for the message framing); torch is imported in `main()`.

Protocol: JSON lines. The parent writes requests on the zygote's stdin and
reads one reply per request from its stdout (both moved to private descriptors
at start-up, so nothing a library prints can corrupt them):

    <- {"event": "hello", "torch_version", "python_version", "cuda_compiled", "pid"}
    -> {"op": "probe_cuda"}                     <- {"cuda_available": bool}
    -> {"op": "status"}                         <- {"pid", "cuda_initialized", "threads"}
    -> {"op": "run", "device", "timeout", "wall_timeout", "memory_mb", "framework", "d2lbook", "ipython",
        "snippets": [{"language", "code", "number", "expects_exception"}, ...]}
                                                <- {"results": [...], "abort": {...} | null}
    -> {"op": "exit"}

A run forks a child into a new session (so it and whatever it starts can be
killed as a group), in a fresh temporary directory that the zygote removes
afterwards; the child builds the sandbox (`sandbox.py`: no network, only that
directory writable, the KB and notes out of reach, file size and process
limits) and the note runs in its grandchild, whose pid it reports first
(`{"event": "sandbox", "pid", "notice"}`; the notice names the layers the
kernel did not allow). The zygote dies with its parent, the child with the
zygote. The child reports `{"event": "start", "index"}` before each snippet
and `{"event": "result", ...}` after it; the zygote enforces the per-snippet
time limits and notices a child that died.

Time limits (per snippet, and for the set-up before the first one), chosen so
that a result does not depend on how busy the machine is:

- `timeout` counts CPU time, not wall time: the CPU time of the child's busiest
  thread since the snippet started, read from /proc/PID/task/*/stat every
  `POLL` s. One thread's CPU time is what the snippet would take on an idle
  machine, whether it is serial Python or a matmul on all of torch's threads
  (each thread's share grows at the pace of the wall clock then), and it does
  not grow while the thread waits for a core. Without /proc it is wall time.
- `wall_timeout` (several times `timeout`, see `clock.wall_backstop`) is the
  backstop for what uses no CPU: `time.sleep`, a blocked read, a lock, work done
  in a subprocess (its CPU time is not counted). Then the note is killed too.

Either way the child's whole process group is killed and the reply says which
limit fired (`"limit": "cpu" | "wall"`).

In the child the note runs in `TMP/a/b/work` (what it writes through `../data/...`
stays in TMP), with `random`, numpy and torch seeded with 0 and PYTHONHASHSEED=0;
the cells run as `d2lkb.checks.notebook` describes. A result's kind is "ok",
"error", "memory", "needs_cuda", or "missing" / "network" / "dependency" (the cell
lacked a package, the network, or a name an earlier such cell could not define:
the note goes on, later cells may not need it).

CUDA: the zygote never initialises CUDA (even the availability probe runs in a
throw-away forked child), so forking stays safe; each note's child initialises
CUDA itself on first use (about 0.3-0.5 s per note on an H200), and exits when
the note is done. numpy's OpenBLAS starts a thread pool at import, but shuts it
down before each fork (its own pthread_atfork handler), so the zygote forks
single-threaded.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import gc
import json
import linecache
import os
import random
import re
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
import traceback
from typing import Any

from d2lkb.checks import notebook, sandbox
from d2lkb.checks.notebook import NoteState, Shell, Tabs, bound_names, execute, gap_reason

OUTPUT_LIMIT = 1_000_000  # characters of stdout kept per snippet
STDERR_LIMIT = 20_000
TRACEBACK_FRAMES = 6  # frames kept in an error's detail (first snippet frame + the innermost ones)
GRACE = 5.0  # seconds a finished child gets to exit before it is killed
POLL = 0.2  # seconds between two readings of a running snippet's CPU time

_MEMORY_ERROR = re.compile(r"can't allocate memory|cannot allocate memory|bad_alloc|out of memory", re.I)
_MENTIONS_CUDA = re.compile(r"cuda|nvidia|accelerator device", re.I)
_INVALID_ORDINAL = re.compile(r"invalid device ordinal", re.I)
_CUDA_CODE = re.compile(r"torch/(?:cuda|nn/parallel)/")  # torch modules that only work with GPUs
_NETWORK_DISABLED = "network access is disabled for note snippets (d2lkb runs them offline)"
# Result kinds after which the note goes on: the cell lacked something (a package, the
# network, an earlier cell's name) that later cells may not need.
_GOES_ON = ("ok", "missing", "network", "dependency")
_NESTING = ("a", "b", "work")  # the note's working directory, below its temporary directory
_RUNNER_FILES = {__file__, notebook.__file__}  # frames of ours, left out of a snippet's traceback


# --- message framing (used by both sides) -------------------------------------------------


def write_message(fd: int, message: dict[str, Any]) -> None:
    """Write one JSON line to `fd`, retrying short writes."""
    data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LineReader:
    """Reads JSON lines from a descriptor, with an optional deadline."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def read(self, deadline: float | None = None) -> dict[str, Any] | None:
        """The next message; None at end of file. TimeoutError when `deadline` (monotonic) passes."""
        while b"\n" not in self.buffer:
            if self.eof:
                return None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                ready, _, _ = select.select([self.fd], [], [], remaining)
                if not ready:
                    continue
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                self.eof = True  # a partial last line (a killed writer) is dropped
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


# --- the zygote -------------------------------------------------------------------------


def main() -> None:
    # Private copies of the protocol pipes; fd 0 becomes /dev/null (a snippet calling
    # input() gets EOF) and fd 1 our stderr (a stray print cannot corrupt the protocol).
    requests_fd, replies_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)

    sandbox.die_with_parent(int(os.environ.get(sandbox.PARENT_ENV) or 0) or None)
    import torch  # the one import this process exists for

    # Objects alive now are never collected: the children's garbage collector leaves
    # them alone, so their pages stay shared with the zygote.
    gc.freeze()
    zygote = _Zygote(torch, requests_fd, replies_fd)
    write_message(
        replies_fd,
        {
            "event": "hello",
            "torch_version": torch.__version__,
            "python_version": ".".join(map(str, sys.version_info[:3])),
            "cuda_compiled": bool(torch.version.cuda or getattr(torch.version, "hip", None)),
            "pid": os.getpid(),
        },
    )
    zygote.serve()


class _Zygote:
    def __init__(self, torch: Any, requests_fd: int, replies_fd: int):
        self.torch = torch
        self.requests = LineReader(requests_fd)
        self.replies_fd = replies_fd
        self.private_fds = (requests_fd, replies_fd)

    def serve(self) -> None:
        while True:
            request = self.requests.read()
            if request is None or request.get("op") == "exit":
                return
            write_message(self.replies_fd, self.answer(request))

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        try:
            if op == "run":
                return self.run(request)
            if op == "probe_cuda":
                return self.probe_cuda()
            if op == "status":
                return {
                    "pid": os.getpid(),
                    "cuda_initialized": bool(self.torch.cuda.is_initialized()),
                    "threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1,
                }
            return {"error": f"unknown op {op!r}"}
        except Exception as exc:  # noqa: BLE001 - e.g. fork failing (EAGAIN): report, keep serving
            detail = f"the snippet worker could not run the note: {exc!r}"
            return {"error": detail, "results": [], "abort": {"index": 0, "kind": "error", "detail": detail}}

    def fork(self) -> tuple[int, int]:
        """Fork a child in its own session; returns (pid, read end of its message pipe)."""
        read_fd, write_fd = os.pipe()
        zygote = os.getpid()
        pid = os.fork()
        if pid == 0:  # child: never return into the zygote's loop on failure
            try:
                os.setsid()
                os.close(read_fd)
                for fd in self.private_fds:
                    os.close(fd)
                sandbox.die_with_parent(zygote)
            except BaseException:  # noqa: BLE001
                os._exit(1)
            return 0, write_fd
        os.close(write_fd)
        return pid, read_fd

    def probe_cuda(self) -> dict[str, Any]:
        # torch.cuda.is_available() initialises the CUDA driver, after which forked
        # children cannot use CUDA: ask a throw-away child instead.
        if not (self.torch.version.cuda or getattr(self.torch.version, "hip", None)):
            return {"cuda_available": False}
        pid, fd = self.fork()
        if pid == 0:
            try:
                write_message(fd, {"cuda_available": bool(self.torch.cuda.is_available())})
            finally:
                os._exit(0)
        reader = LineReader(fd)
        try:
            answer = reader.read(deadline=time.monotonic() + 120)
        except TimeoutError:
            answer = None
        finally:
            os.close(fd)
            _kill_group(pid)
            _reap(pid, 0)
        return {"cuda_available": bool(answer and answer.get("cuda_available"))}

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        from d2lkb.checks.clock import wall_backstop

        timeout = float(request["timeout"])
        wall_timeout = float(request.get("wall_timeout") or wall_backstop(timeout))
        workdir = tempfile.mkdtemp(prefix="d2lkb-note-")
        try:
            pid, fd = self.fork()
            if pid == 0:
                code = 1
                try:
                    limits = sandbox.Limits(**request["sandbox"]) if request.get("sandbox") else sandbox.Limits()
                    layers = sandbox.enter(workdir, limits=limits, keep_fds=(fd,))
                    write_message(fd, {"event": "sandbox", "pid": sandbox.host_pid(), "notice": layers.notice()})
                    _Child(self.torch, request, fd, workdir).run()
                    code = 0
                except BaseException as exc:  # noqa: BLE001 - report anything, then exit
                    with contextlib.suppress(BaseException):
                        write_message(fd, {"event": "fatal", "detail": _format_exception(exc, None)})
                finally:
                    os._exit(code)
            try:
                return _supervise(pid, fd, timeout, wall_timeout)
            finally:
                os.close(fd)
                sandbox.cleanup(pid)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _supervise(pid: int, fd: int, timeout: float, wall_timeout: float) -> dict[str, Any]:
    """Collect a child's messages, enforcing the limits of each snippet (and of the set-up):
    `timeout` s of CPU time of its busiest thread, `wall_timeout` s of wall-clock time."""
    reader = LineReader(fd)
    results: list[dict[str, Any]] = []
    current = 0  # the snippet the child is running, or will run next
    meter = _CpuMeter(pid)
    started = time.monotonic()
    abort: dict[str, Any] | None = None
    finished = False
    notice = ""
    while not finished:
        try:
            message = reader.read(min(time.monotonic() + POLL, started + wall_timeout))
        except TimeoutError:
            now = time.monotonic()
            cpu = meter.used()
            over = (cpu if cpu is not None else now - started) >= timeout
            if not over and now < started + wall_timeout:
                continue
            _kill_group(pid)
            _reap(pid, GRACE)
            limit = "cpu" if over else "wall"
            timed_out = {"index": current, "kind": "timeout", "limit": limit, "seconds": timeout, "cpu": cpu}
            return {"results": results, "abort": timed_out, "sandbox": notice}
        if message is None:
            break
        event = message.get("event")
        if event == "sandbox":  # the note runs in the sandbox's process: meter that one
            if message.get("pid"):
                meter = _CpuMeter(int(message["pid"]))
            notice = str(message.get("notice") or "")
        elif event == "start":
            current = message["index"]
            started = time.monotonic()
            meter.reset()
        elif event == "result":
            results.append(message)
            current = message["index"] + 1
        elif event == "fatal":
            abort = {"index": current, "kind": "error", "detail": message["detail"]}
        elif event == "done":
            finished = True
    # The child is done (or gone): wait for it to exit, without reaping yet, so that its
    # process group id cannot be reused while we kill whatever it left running.
    status = _wait_exit(pid, GRACE if finished else GRACE + timeout)
    _kill_group(pid)
    if status is None:
        status = _reap(pid, GRACE)
    else:
        _reap(pid, GRACE)
    if not finished and abort is None:
        abort = {"index": current, "kind": "crash", "detail": _describe_exit(status)}
    return {"results": results, "abort": abort, "sandbox": notice}


class _CpuMeter:
    """CPU time of a process's busiest thread since `reset()`, from /proc (None where unreadable)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self.start: dict[int, float] = {}
        self.reset()

    def threads(self) -> dict[int, float]:
        """{thread id: CPU seconds (user + system)}; empty when /proc cannot tell."""
        out: dict[int, float] = {}
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return out
        for tid in tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
                out[int(tid)] = (int(fields[11]) + int(fields[12])) / self.tick
            except (OSError, ValueError, IndexError):
                continue
        return out

    def reset(self) -> None:
        self.start = self.threads()

    def used(self) -> float | None:
        now = self.threads()
        if not now:
            return None
        return max(cpu - self.start.get(tid, 0.0) for tid, cpu in now.items())


def _wait_exit(pid: int, seconds: float) -> int | None:
    """Wait until `pid` has exited, leaving it a zombie; its wait status, or None."""
    deadline = time.monotonic() + seconds
    delay = 0.0005
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return None
        if info is not None:
            if info.si_code == os.CLD_EXITED:
                return info.si_status << 8
            return info.si_status  # killed by signal si_status
        if time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _reap(pid: int, seconds: float) -> int | None:
    """Reap `pid`, killing it if it is still running after `seconds`; its wait status."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        if time.monotonic() >= deadline:
            _kill_group(pid)
            with contextlib.suppress(ChildProcessError):
                return os.waitpid(pid, 0)[1]
            return None
        time.sleep(0.005)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # killpg fails if the child has not called setsid yet
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def _describe_exit(status: int | None) -> str:
    if status is None:
        return "the snippet's process vanished"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        hint = " (out of memory?)" if number == signal.SIGKILL else ""
        return f"the snippet's process was killed by {name}{hint}"
    return f"the snippet's process exited with status {os.WEXITSTATUS(status)}"


# --- one note run, in the forked child --------------------------------------------------


class _Child:
    def __init__(self, torch: Any, request: dict[str, Any], fd: int, workdir: str):
        self.torch = torch
        self.request = request
        self.fd = fd
        self.workdir = workdir
        self.device = request["device"]

    def run(self) -> None:
        self.set_up()
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "device": self.device}
        self.state = NoteState()
        self.number = [0]  # the snippet running now (1-based, the note's numbering), for the Shell
        tabs = Tabs(str(self.request.get("framework", "pytorch")))
        if self.request.get("d2lbook"):
            namespace["tab"] = tabs
        if self.request.get("ipython"):
            shell = Shell(namespace, tabs, self.number)
            namespace["get_ipython"] = lambda: shell
        for index, snippet in enumerate(self.request["snippets"]):
            write_message(self.fd, {"event": "start", "index": index})
            result = self.run_snippet(index, snippet, namespace)
            write_message(self.fd, result)
            if result["kind"] not in _GOES_ON and not (
                result["kind"] == "error" and snippet.get("expects_exception")
            ):
                break  # like a notebook's "run all": later cells would build on a broken state
        write_message(self.fd, {"event": "done"})

    def set_up(self) -> None:
        # The note runs a few folders down in its temporary directory, so that what it writes
        # through `../data/...` (as the book's cells do) stays inside that directory.
        cwd = os.path.join(self.workdir, *_NESTING)
        os.makedirs(cwd)
        os.chdir(cwd)
        sys.path.insert(0, cwd)  # like a notebook: files written by a snippet are importable
        os.environ["TMPDIR"] = self.workdir
        os.environ["MPLBACKEND"] = "Agg"  # never a GUI window, whatever the user's setting
        os.environ["PYTHONHASHSEED"] = "0"  # for subprocesses (the worker itself starts with it)
        for name in ("HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR", "IPYTHONDIR"):  # caches: in the one writable place
            os.environ[name] = self.workdir
        tempfile.tempdir = None
        _block_network()
        _limit_memory(int(self.request["memory_mb"]), self.device)
        # Everything written to fd 1/2 (print, C libraries, subprocesses) lands in these
        # unlinked files; each snippet gets what was appended while it ran.
        self.captures = []
        for fd in (1, 2):
            with tempfile.TemporaryFile(dir=self.workdir) as capture:
                os.dup2(capture.fileno(), fd)
            self.captures.append(0)
        self.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
        self.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
        sys.stdout, sys.stderr = self.stdout, self.stderr
        # Same seeds for every note run, so that outputs (and cached results) are reproducible.
        random.seed(0)
        self.torch.manual_seed(0)
        if "numpy" in sys.modules:  # imported by torch when installed; never imported just for this
            sys.modules["numpy"].random.seed(0)
        if self.device != "cpu":
            self.torch.set_default_device(self.device)

    def captured(self, fd: int, limit: int) -> str:
        offset = self.captures[fd - 1]
        size = os.fstat(fd).st_size
        self.captures[fd - 1] = size
        data = os.pread(fd, min(size - offset, limit * 4 + 4), offset) if size > offset else b""
        text = data.decode("utf-8", "backslashreplace")
        if len(text) > limit or size - offset > len(data):
            text = text[:limit] + f"\n... [output truncated: {size - offset} bytes in all]\n"
        return text

    def run_snippet(self, index: int, snippet: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
        number = int(snippet.get("number", index + 1))
        self.number[0] = number
        filename = f"<snippet {number}>"
        code = snippet["code"]
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        result: dict[str, Any] = {"event": "result", "index": index, "kind": "ok"}
        started = time.perf_counter()
        try:
            absent = execute(code, snippet["language"], namespace, filename, number)
            if absent:  # the cell ran, without the imports it could not do
                reason = "; ".join(absent) + "; the rest of the snippet ran"
                result.update({"kind": "missing", "reason": reason, "exception": "", "detail": ""})
                self.state.record_gap(number, reason, set(), namespace)
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: a snippet cannot end the run
            result.update(self.classify(exc, filename, number, code, namespace))
        finally:
            seconds = time.perf_counter() - started
            sys.stdout, sys.stderr = self.stdout, self.stderr  # a snippet may have replaced them
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
        result["seconds"] = seconds
        result["output"] = self.captured(1, OUTPUT_LIMIT)
        result["stderr"] = self.captured(2, STDERR_LIMIT)
        return result

    def classify(
        self, exc: BaseException, filename: str, number: int, code: str, namespace: dict[str, Any]
    ) -> dict[str, Any]:
        exception = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        info: dict[str, Any] = {
            "kind": "error",
            "exception": exception,
            "detail": _format_exception(exc, filename),
            "line": _snippet_line(exc, filename),
        }
        message = str(exc)
        gap = gap_reason(exc, _NETWORK_DISABLED)
        line = f"line {info['line']}: " if info["line"] else ""
        state = self.state
        if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and _MEMORY_ERROR.search(message)):
            info["kind"] = "memory"
        elif gap is not None:
            info["kind"], info["reason"] = gap[0], f"{line}{gap[1]}"
            state.record_gap(number, gap[1], bound_names(code), namespace)
        elif isinstance(exc, NameError) and exc.name in state.unavailable:
            source, why = state.unavailable[exc.name]
            info["kind"] = "dependency"
            info["reason"] = f"{line}depends on snippet {source} ({why}): {exception}"
            state.record_gap(number, why, bound_names(code), namespace, origin=False)
        elif isinstance(exc, FileNotFoundError) and state.last_gap is not None:
            source, why = state.last_gap
            info["kind"] = "dependency"
            info["reason"] = f"{line}{exception}: probably a file snippet {source} would have made ({why})"
            state.record_gap(number, why, bound_names(code), namespace, origin=False)
        elif _INVALID_ORDINAL.search(exception):  # `X.cuda(1)` (use-gpu.md) on a machine with one GPU
            info["kind"] = "needs_cuda"
            info["reason"] = f"needs more GPUs than this machine has: {exception}"
        elif not isinstance(exc, NameError | SyntaxError) and _needs_cuda(exc, exception) and not self.cuda_usable():
            info["kind"] = "needs_cuda"
        elif not isinstance(exc, SyntaxError) and (tainted := state.tainted_use(code)) is not None:
            # It uses what a cell that stopped early left half made (`errors = []`, then a
            # loop that needed scipy): its error is not one of its own code.
            name, source, why = tainted
            info["kind"] = "dependency"
            info["reason"] = (f"{line}{exception}: probably because it uses {name}, which snippet {source}"
                              f" did not finish making ({why})")
            state.record_gap(number, why, bound_names(code), namespace, origin=False)
        return info

    def cuda_usable(self) -> bool:
        try:
            return bool(self.torch.cuda.is_available())  # safe here: this child owns its CUDA state
        except Exception:  # noqa: BLE001
            return False


def _needs_cuda(exc: BaseException, exception: str) -> bool:
    """The error names CUDA (or torch's "accelerator"), or comes from torch's GPU-only code."""
    if _MENTIONS_CUDA.search(exception):
        return True
    return any(_CUDA_CODE.search(frame.filename) for frame in traceback.extract_tb(exc.__traceback__))


def _snippet_line(exc: BaseException, filename: str) -> int | None:
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        return exc.lineno
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


def _format_exception(exc: BaseException, filename: str | None) -> str:
    """The traceback from the snippet's own frame on, shortened to its first and last frames."""
    summary = traceback.TracebackException.from_exception(exc, limit=None)
    # The runner's own frames (the exec call, the network guard) are noise to the note's author.
    frames = [frame for frame in summary.stack if frame.filename not in _RUNNER_FILES]
    if filename is not None:
        first = next((i for i, frame in enumerate(frames) if frame.filename == filename), None)
        if first is not None:
            frames = frames[first:]
        elif not isinstance(exc, SyntaxError):
            frames = frames[-TRACEBACK_FRAMES:]
        else:
            frames = []
    omitted = 0
    if len(frames) > TRACEBACK_FRAMES:
        omitted = len(frames) - TRACEBACK_FRAMES
        frames = frames[:1] + frames[-(TRACEBACK_FRAMES - 1) :]
    lines = ["Traceback (most recent call last):\n"]
    stack = traceback.StackSummary.from_list(frames).format()
    if omitted:
        stack[1:1] = [f"  ... {omitted} more frames ...\n"]
    lines += stack
    lines += list(summary.format_exception_only())
    return "".join(lines).rstrip()


def _block_network() -> None:
    """Make creating an internet socket, or resolving a host name, fail at once with a clear error.

    Only a Python-level guard, for the message: the sandbox's network namespace and Landlock
    (`sandbox.py`) are what stop raw sockets, C code and subprocesses.
    """
    import socket

    blocked = {socket.AF_INET, socket.AF_INET6}

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, _NETWORK_DISABLED)

    original_init = socket.socket.__init__

    def guarded_init(self, family=-1, type=-1, proto=-1, fileno=None):  # noqa: A002 - socket's own names
        if fileno is None and (family == -1 or family in blocked):
            refuse()
        original_init(self, family, type, proto, fileno)

    socket.socket.__init__ = guarded_init  # type: ignore[method-assign]

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "create_connection"):
        setattr(socket, name, refuse)


def _limit_memory(memory_mb: int, device: str) -> None:
    """Cap the address space the note may add to what the zygote already maps (torch's libraries).

    On CUDA, RLIMIT_AS is not used: the driver reserves far more virtual address space
    than any sensible cap (a CUDA child maps ~17 GB), and CUDA initialisation fails
    under one ("cudaGetDeviceCount() ... Error 2: out of memory", seen on an H200 with
    torch 2.11+cu130). RLIMIT_DATA (private writable memory: malloc, numpy/torch CPU
    buffers) caps host memory instead; CUDA, pinned memory and a host-side MemoryError
    all work under it there. GPU memory is not capped (an oversized allocation fails
    with torch's OutOfMemoryError, reported as the memory limit).
    """
    if memory_mb <= 0:
        return
    extra = memory_mb * 2**20
    which, field = (
        (resource.RLIMIT_DATA, "VmData") if device.startswith("cuda") else (resource.RLIMIT_AS, "VmSize")
    )
    base = _proc_status_bytes(field)
    _, hard = resource.getrlimit(which)
    limit = base + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(which, (limit, limit))


def _proc_status_bytes(field: str) -> int:
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":  # pragma: no cover - the runner uses `-c`, see the module docstring
    main()
