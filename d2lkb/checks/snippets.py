"""Run a note's Python/torch snippets like a notebook, in a warm sandboxed worker.

The parent never imports torch: `SnippetRunner` starts one worker process
(`d2lkb.checks.worker`) that imports torch once and then forks a fresh child
for every note, so one note cannot pollute another and a note costs a fork,
not an interpreter start. In the child the snippets of the note run in order in
one namespace, with `device` set, under a per-snippet time limit, a memory cap,
in a temporary working directory, in a sandbox (`sandbox.py`: no network, the KB
and the notes out of reach, writes only to that directory, file size and process
limits, nothing outlives the note), and with their stdout and stderr captured.
See `worker.py` for the process design.

The time limit (`timeout`) counts CPU time, so that a result does not change with
the machine's load: the CPU time of the note process's busiest thread. What uses
no CPU (a snippet that sleeps or blocks) is stopped by a wall-clock backstop,
`wall_timeout` (by default `6 * timeout + 30` s). The parent never waits on a
process without a bound: a zygote that does not answer is killed.

    with SnippetRunner(device="auto", timeout=30.0, memory_mb=4096) as runner:
        results = runner.run_note(note.snippets)  # python/pycon snippets only
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from d2lkb.checks.cells import DEFAULT_FRAMEWORK, FRAMEWORKS, plan_note
from d2lkb.checks.clock import wall_backstop
from d2lkb.checks.outputs import compare_output
from d2lkb.checks.sandbox import PARENT_ENV, Limits
from d2lkb.checks.worker import LineReader, write_message
from d2lkb.model import CheckStatus, Snippet

__all__ = [
    "FAKE_CUDA_ENV",
    "SnippetResult",
    "SnippetRunner",
    "WorkerError",
    "cache_key",
    "compare_output",
    "resolve_device",
]

#: `D2LKB_FAKE_CUDA=1` reports CUDA as available (and `=0` as unavailable) instead of
#: asking torch, so the CUDA code paths can be tested on a machine without a GPU.
FAKE_CUDA_ENV = "D2LKB_FAKE_CUDA"
LANGUAGES = ("python", "pycon")
_DEVICE = re.compile(r"(auto|cpu|cuda(:\d+)?)")
_STARTUP_SECONDS = 300.0  # importing torch from a cold disk can be slow
_TRACEBACK_HEADER = "Traceback (most recent call last):"
_CACHE_KEY_VERSION = 1
_GOES_ON = ("ok", "missing", "network", "dependency")  # see worker.py


class WorkerError(RuntimeError):
    """The worker process could not be started (torch missing, crash at import...)."""


@dataclass(frozen=True)
class SnippetResult:
    status: CheckStatus  # passed | failed | error | timeout | skipped
    detail: str  # what happened: a diff, a traceback, a reason
    output: str  # what the snippet printed to stdout, echoed values included
    device: str  # "cpu" / "cuda"
    torch_version: str
    seconds: float  # time the snippet ran (0 when it did not)
    # False when the result may differ on the next run of the same code here (a timeout,
    # a worker crash, `--device cuda` without CUDA): the cache does not keep it.
    cacheable: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnippetResult:
        return cls(**{**data, "status": CheckStatus(data["status"])})


def resolve_device(requested: str, *, cuda_available: bool | None = None) -> str:
    """`"auto"` -> `"cuda"` when CUDA is available, else `"cpu"`; `"cpu"`, `"cuda"`, `"cuda:N"` as given.

    `cuda_available=None` asks `D2LKB_FAKE_CUDA` first, then torch (in a subprocess:
    this process does not import torch). A `"cuda"` request is returned even when
    CUDA is unavailable; the runner then skips the snippets, with that reason.
    """
    requested = requested.strip().lower()
    if not _DEVICE.fullmatch(requested):
        raise ValueError(f"unknown device {requested!r} (use auto, cpu, cuda or cuda:N)")
    if requested != "auto":
        return requested
    if cuda_available is None:
        cuda_available = _detect_cuda()
    return "cuda" if cuda_available else "cpu"


def _fake_cuda() -> bool | None:
    value = os.environ.get(FAKE_CUDA_ENV, "").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    return None


def _detect_cuda() -> bool:
    fake = _fake_cuda()
    return fake if fake is not None else _torch_sees_cuda()


@functools.cache
def _torch_sees_cuda() -> bool:
    probe = "import torch, sys; sys.stdout.write(str(int(torch.cuda.is_available())))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=_STARTUP_SECONDS
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.stdout.strip().endswith("1")


def cache_key(
    codes: Sequence[str], index: int, *, torch_version: str, device: str, python_version: str
) -> str:
    """sha256 (hex) of the note's code chain up to and including snippet `index`, the
    torch and Python versions and the device: what a snippet's result depends on.

    Expected outputs are not part of the key (they are compared after the run), so
    editing one does not re-run anything.
    """
    if not 0 <= index < len(codes):
        raise ValueError(f"snippet index {index} out of range for {len(codes)} snippets")
    payload = {
        "version": _CACHE_KEY_VERSION,
        "chain": list(codes[: index + 1]),
        "torch": torch_version,
        "device": device,
        "python": python_version,
    }
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Worker:
    """The zygote process, seen from the parent."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["PYTHONHASHSEED"] = "0"  # str/bytes hashes (set and dict orders) repeat from run to run
        env["MPLBACKEND"] = "Agg"  # matplotlib without a display
        env[PARENT_ENV] = str(os.getpid())  # the worker dies with this process
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - the worker's stderr, kept for error messages
        self.process = subprocess.Popen(
            # -P: no script or working directory on sys.path (a stray torch.py cannot shadow torch)
            [sys.executable, "-P", "-c", "from d2lkb.checks.worker import main; main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            start_new_session=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests = self.process.stdin.fileno()
        self.replies = LineReader(self.process.stdout.fileno())
        try:
            hello = self.replies.read(time.monotonic() + _STARTUP_SECONDS)
        except TimeoutError:
            hello = None
        if not hello or hello.get("event") != "hello":
            self.close()
            raise WorkerError(f"the snippet worker did not start: {self.log_tail() or 'no output'}")
        self.torch_version: str = hello["torch_version"]
        self.python_version: str = hello["python_version"]
        self.cuda_compiled: bool = hello["cuda_compiled"]
        self.pid: int = hello["pid"]

    def request(self, message: dict[str, Any], seconds: float) -> dict[str, Any] | None:
        """Send a request and wait for its reply; None if the worker died or did not answer in time."""
        try:
            write_message(self.requests, message)
            return self.replies.read(time.monotonic() + seconds)
        except (OSError, TimeoutError, ValueError):
            return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.log.seek(0)
            return self.log.read().decode("utf-8", "replace")[-chars:].strip()
        return ""

    def close(self) -> None:
        if self.alive():
            with contextlib.suppress(OSError):
                write_message(self.requests, {"op": "exit"})
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=10)  # then it is left to the OS: never hang here
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream and stream.close()
        self.log.close()


class SnippetRunner:
    """Owns the warm worker; a context manager (or call `close()`).

    `limits` are the sandbox's (file size, processes; `sandbox.Limits`).
    `timeout` is the time limit of each snippet, in seconds of CPU time, and
    `wall_timeout` its wall-clock backstop (see the module docstring); `memory_mb` how much
    address space a note may add to the worker's (0: no cap); `framework` which of
    a d2lbook note's framework cells run (see `d2lkb.checks.cells`). The worker
    starts on entering the context (or on first use) and is replaced when it dies.
    """

    def __init__(
        self,
        device: str = "auto",
        timeout: float = 30.0,
        memory_mb: int = 4096,
        framework: str = DEFAULT_FRAMEWORK,
        wall_timeout: float | None = None,
        limits: Limits | None = None,
    ):
        problems = []
        if str(framework).strip().lower() not in FRAMEWORKS:
            problems.append(f"unknown framework {framework!r} (use {', '.join(FRAMEWORKS)})")
        if not _DEVICE.fullmatch(str(device).strip().lower()):
            problems.append(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)")
        if not timeout > 0:
            problems.append(f"timeout must be positive, not {timeout!r}")
        if wall_timeout is not None and not wall_timeout > 0:
            problems.append(f"wall_timeout must be positive, not {wall_timeout!r}")
        if not (isinstance(memory_mb, int) and memory_mb >= 0):
            problems.append(f"memory_mb must be a non-negative integer, not {memory_mb!r}")
        if problems:
            raise ValueError("; ".join(problems))
        self.requested_device = str(device).strip().lower()
        self.timeout = float(timeout)
        self.wall_timeout = float(wall_timeout or wall_backstop(self.timeout))
        self.memory_mb = memory_mb
        self.framework = str(framework).strip().lower()
        self.limits = limits or Limits()
        self._worker: _Worker | None = None
        self._device: str | None = None
        self._cuda_available: bool | None = None
        self._lock = threading.RLock()

    # --- lifecycle ---

    def __enter__(self) -> SnippetRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the worker (importing torch there) and resolve the device."""
        with self._lock:
            self._ensure_worker()
            if self._device is None:
                if self.requested_device == "cpu":
                    self._device = "cpu"  # no need to ask about CUDA
                else:
                    self._cuda_available = self._probe_cuda()
                    self._device = resolve_device(self.requested_device, cuda_available=self._cuda_available)

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.close()
                self._worker = None

    def _ensure_worker(self) -> _Worker:
        if self._worker is not None and not self._worker.alive():
            self._worker.close()
            self._worker = None
        if self._worker is None:
            self._worker = _Worker()
        return self._worker

    def _probe_cuda(self) -> bool:
        fake = _fake_cuda()
        if fake is not None:
            return fake
        worker = self._ensure_worker()
        if not worker.cuda_compiled:
            return False
        reply = worker.request({"op": "probe_cuda"}, _STARTUP_SECONDS)
        return bool(reply and reply.get("cuda_available"))

    # --- what the worker reports ---

    @property
    def device(self) -> str:
        """The resolved device: "cpu", "cuda" or "cuda:N"."""
        self.start()
        assert self._device is not None
        return self._device

    @property
    def cuda_available(self) -> bool:
        """Whether CUDA is usable (as the worker's torch sees it, or as D2LKB_FAKE_CUDA says)."""
        with self._lock:
            self.start()
            if self._cuda_available is None:
                self._cuda_available = self._probe_cuda()
            return self._cuda_available

    @property
    def torch_version(self) -> str:
        with self._lock:
            return self._ensure_worker().torch_version

    @property
    def python_version(self) -> str:
        with self._lock:
            return self._ensure_worker().python_version

    def _worker_status(self) -> dict[str, Any] | None:
        """The zygote's own state (pid, whether it initialised CUDA, threads); for tests."""
        with self._lock:
            return self._ensure_worker().request({"op": "status"}, 30)

    # --- running ---

    def run_note(self, snippets: Sequence[Snippet]) -> list[SnippetResult]:
        """Run one note's python/pycon snippets in order in one namespace; one result each.

        Cells of another framework, d2lbook tab selectors and cells using magics d2lkb
        does not emulate are skipped with the reason (see `d2lkb.checks.cells`).
        """
        for snippet in snippets:
            if snippet.language not in LANGUAGES:
                raise ValueError(
                    f"snippet at line {snippet.line}: language {snippet.language!r} is not run here"
                )
        if not snippets:
            return []
        plan = plan_note([s.code for s in snippets], self.framework)
        with self._lock:
            self.start()
            device, version = self.device, self.torch_version
            if device.startswith("cuda") and not self.cuda_available:
                reason = f"needs CUDA (--device {self.requested_device}), which is not available here"
                return [_result(CheckStatus.SKIPPED, reason, "", device, version, cacheable=False) for _ in snippets]
            runs = [i for i, cell in enumerate(plan.cells) if cell.code is not None]
            judged: dict[int, SnippetResult] = {}
            if runs:
                reply = self._request(
                    {
                        "op": "run",
                        "device": device,
                        "timeout": self.timeout,
                        "wall_timeout": self.wall_timeout,
                        "memory_mb": self.memory_mb,
                        "framework": plan.framework,
                        "d2lbook": plan.d2lbook,
                        "ipython": plan.ipython,
                        "sandbox": asdict(self.limits),
                        "snippets": [
                            {
                                "language": snippets[i].language,
                                "code": plan.cells[i].code,
                                "number": i + 1,
                                "expects_exception": _expected_exception(snippets[i].expected) is not None,
                            }
                            for i in runs
                        ],
                    },
                    len(runs),
                )
                results = self._judge([snippets[i] for i in runs], [i + 1 for i in runs], reply, device, version)
                if reply.get("sandbox"):  # a layer the kernel did not allow: say so with every result
                    results = [replace(r, detail=f"{r.detail}\n[{reply['sandbox']}]") for r in results]
                judged = dict(zip(runs, results, strict=True))
            return [
                judged[i] if i in judged else _result(CheckStatus.SKIPPED, cell.reason, "", device, version)
                for i, cell in enumerate(plan.cells)
            ]

    def _request(self, request: dict[str, Any], count: int) -> dict[str, Any]:
        worker = self._ensure_worker()
        patience = count * (self.wall_timeout + 15) + 60  # only for a zygote that hangs
        try:
            reply = worker.request(request, patience)
        except BaseException:  # e.g. KeyboardInterrupt: the reply stream is out of step now
            worker.close()
            self._worker = None
            raise
        if reply is None:  # the zygote itself died or hung: replace it next time
            tail = worker.log_tail(500)
            worker.close()
            self._worker = None
            reply = {
                "results": [],
                "abort": {
                    "index": 0,
                    "kind": "error",
                    "detail": f"the snippet worker died. {tail}".strip(),
                    "worker": True,
                },
            }
        return reply

    def _judge(
        self,
        snippets: Sequence[Snippet],
        numbers: Sequence[int],
        reply: dict[str, Any],
        device: str,
        version: str,
    ) -> list[SnippetResult]:
        """Results of the snippets sent (numbered as in the note: `numbers`)."""
        ran = {message["index"]: message for message in reply.get("results", [])}
        abort = reply.get("abort")
        results: list[SnippetResult] = []
        reason = ""  # why the snippets after a stop are skipped
        cacheable = True  # what follows a timeout or a crash of the worker may differ next time
        for index, snippet in enumerate(snippets):
            number = numbers[index]
            if reason:
                results.append(_result(CheckStatus.SKIPPED, reason, "", device, version, cacheable=cacheable))
                continue
            if index in ran:
                result = self._judge_one(snippet, ran[index], device, version)
                kind = ran[index]["kind"]
                if kind == "needs_cuda":  # as stable as this machine's CUDA (the device is in the key)
                    reason = f"earlier snippet skipped: snippet {number} needs CUDA"
                elif kind not in _GOES_ON and not (kind == "error" and result.status is not CheckStatus.ERROR):
                    reason = f"earlier snippet failed: snippet {number} ({result.status.value})"
            elif abort is not None and abort["index"] == index:
                cacheable = False
                if abort["kind"] == "timeout":
                    result = self._timed_out(abort, device, version)
                else:
                    result = _result(CheckStatus.ERROR, abort["detail"], "", device, version, cacheable=False)
                reason = f"earlier snippet failed: snippet {number} ({result.status.value})"
            else:  # the child stopped without saying why (should not happen)
                cacheable = False
                result = _result(
                    CheckStatus.ERROR, "the snippet did not report a result", "", device, version, cacheable=False
                )
                reason = f"earlier snippet failed: snippet {number} (error)"
            results.append(result)
        return results

    def _timed_out(self, abort: dict[str, Any], device: str, version: str) -> SnippetResult:
        if abort.get("limit") == "wall":
            cpu = abort.get("cpu")
            used = f", {cpu:.1f} s of CPU" if cpu is not None else ""
            detail = (
                f"timed out after {self.wall_timeout:g} s of wall-clock time{used} (sleeping, blocked or"
                " starved; the note's process was killed)"
            )
            return _result(CheckStatus.TIMEOUT, detail, "", device, version, self.wall_timeout, cacheable=False)
        detail = f"timed out after {self.timeout:g} s of CPU time (the note's process was killed)"
        return _result(CheckStatus.TIMEOUT, detail, "", device, version, self.timeout, cacheable=False)

    def _judge_one(self, snippet: Snippet, ran: dict[str, Any], device: str, version: str) -> SnippetResult:
        output, seconds, kind = ran["output"], ran["seconds"], ran["kind"]
        stderr = ran.get("stderr", "")
        if kind == "ok":
            if snippet.expected is None:
                status, detail = CheckStatus.PASSED, "ran, no expected output"
            elif _expected_exception(snippet.expected) is not None:
                status, detail = CheckStatus.FAILED, "expected an exception, but the snippet ran without one"
            else:
                ok, diff = compare_output(snippet.expected, output)
                status, detail = (CheckStatus.PASSED, "output matches") if ok else (CheckStatus.FAILED, diff)
        elif kind == "memory":
            status = CheckStatus.ERROR
            detail = f"memory limit exceeded ({self.memory_mb} MB): {ran['exception']}\n\n{ran['detail']}"
        elif kind == "needs_cuda":
            status = CheckStatus.SKIPPED
            detail = ran.get("reason") or f"needs CUDA, which is not available here: {ran['exception']}"
            return _result(status, detail, output, device, version, seconds)
        elif kind in ("missing", "network", "dependency"):  # lacks something; not an error of the code
            status, detail = CheckStatus.SKIPPED, ran["reason"]
        else:
            status, detail = CheckStatus.ERROR, _error_detail(ran)
            expected = _expected_exception(snippet.expected)
            if expected is not None:  # doctest style: the traceback is the expected output
                before, exception = expected
                ok_out, diff_out = compare_output(before, output)
                ok_exc, diff_exc = compare_output(exception, ran["exception"])
                if ok_out and ok_exc:
                    status, detail = CheckStatus.PASSED, "raised the expected exception"
                else:
                    status = CheckStatus.FAILED
                    detail = "\n".join(d for d in (diff_out, diff_exc) if d)
        if stderr.strip():
            detail = f"{detail}\n--- stderr ---\n{stderr.rstrip()}"
        return _result(status, detail, output, device, version, seconds)


def _result(
    status: CheckStatus,
    detail: str,
    output: str,
    device: str,
    version: str,
    seconds: float = 0.0,
    *,
    cacheable: bool = True,
) -> SnippetResult:
    return SnippetResult(status, detail, output, device, version, float(seconds), cacheable)


def _error_detail(ran: dict[str, Any]) -> str:
    line = ran.get("line")
    where = f"line {line} of the snippet: " if line else ""
    return f"{where}{ran['exception']}\n\n{ran['detail']}"


def _expected_exception(expected: str | None) -> tuple[str, str] | None:
    """(output before, exception lines) when `expected` ends in a doctest-style traceback."""
    if expected is None:
        return None
    lines = expected.replace("\r\n", "\n").split("\n")
    for start, line in enumerate(lines):
        if line.strip().startswith(_TRACEBACK_HEADER):
            # The stack lines are indented (or elided with "..."); the exception follows them.
            rest = [x for x in lines[start + 1 :] if x.strip() and not x.startswith((" ", "\t", "..."))]
            return "\n".join(lines[:start]), "\n".join(rest)
    return None
