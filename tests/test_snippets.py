"""The snippet runner, with real torch and real processes.

Nothing here needs a GPU: the CUDA code paths run with `D2LKB_FAKE_CUDA` (which
makes the runner believe CUDA is there, or is not). The tests that need a real
GPU are skipped, with the reason shown, where there is none.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from d2lkb.checks.snippets import (
    FAKE_CUDA_ENV,
    SnippetResult,
    SnippetRunner,
    cache_key,
    resolve_device,
)
from d2lkb.model import CheckStatus, Snippet

PASSED, FAILED, ERROR = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.ERROR
TIMEOUT, SKIPPED = CheckStatus.TIMEOUT, CheckStatus.SKIPPED
ROOT = Path(__file__).resolve().parents[1]


def snip(code: str, expected: str | None = None, language: str = "python") -> Snippet:
    return Snippet(
        language=language, code=textwrap.dedent(code).strip("\n"), line=1, section=None, expected=expected
    )


def statuses(results: list[SnippetResult]) -> list[CheckStatus]:
    return [r.status for r in results]


@pytest.fixture(scope="module")
def runner():
    with SnippetRunner(device="cpu", timeout=20.0) as runner:
        yield runner


HOUR = 3600.0  # a limit that must not fire in a test (none of them depends on the machine's speed)


@pytest.fixture(scope="module")
def quick_runner():
    """A runner with a 2 s CPU-time limit (and no wall-clock limit to speak of), for busy loops."""
    with SnippetRunner(device="cpu", timeout=2.0, wall_timeout=HOUR) as runner:
        yield runner


@pytest.fixture(scope="module")
def sleepy_runner():
    """A runner whose 1 s wall-clock backstop is the only limit that can fire, for snippets that sleep."""
    with SnippetRunner(device="cpu", timeout=HOUR, wall_timeout=1.0) as runner:
        yield runner


@pytest.fixture(scope="module")
def real_cuda() -> bool:
    env = {k: v for k, v in os.environ.items() if k != FAKE_CUDA_ENV}
    probe = "import torch; print(int(torch.cuda.is_available()))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    return done.stdout.strip().endswith("1")


# --- notebook semantics ---------------------------------------------------------------


def test_snippets_of_a_note_share_a_namespace_and_notes_do_not(runner: SnippetRunner) -> None:
    first = runner.run_note(
        [snip("import torch\nx = torch.arange(3)"), snip("y = x * 2"), snip("print(y.tolist())")]
    )
    assert statuses(first) == [PASSED, PASSED, PASSED]
    assert first[2].output == "[0, 2, 4]\n"
    second = runner.run_note([snip("x")])
    assert second[0].status is ERROR
    assert "NameError: name 'x' is not defined" in second[0].detail


def test_python_echoes_the_last_bare_expression_only(runner: SnippetRunner) -> None:
    results = runner.run_note(
        [
            snip("a = 1\na + 1\na + 2"),  # only the last expression
            snip("a = 5"),  # an assignment echoes nothing
            snip("None"),  # nor does None
            snip("a;"),  # a trailing semicolon silences the echo, as in Jupyter
            snip("print('p')\n'text'"),
            snip("for i in range(2):\n    i"),  # not a bare expression statement at the end
        ]
    )
    assert [r.output for r in results] == ["3\n", "", "", "", "p\n'text'\n", ""]


def test_pycon_echoes_every_expression_statement(runner: SnippetRunner) -> None:
    code = "x = 2\nx\nx + 1\nNone\nprint('printed')\nfor i in range(2):\n    i\n"
    [result] = runner.run_note([snip(code, language="pycon", expected="2\n3\nprinted\n0\n1")])
    assert result.output == "2\n3\nprinted\n0\n1\n"
    assert result.status is PASSED
    assert result.detail == "output matches"


def test_snippet_without_expected_output_passes_when_it_runs(runner: SnippetRunner) -> None:
    [result] = runner.run_note([snip("import torch\ntorch.ones(2) + 1")])
    assert result.status is PASSED
    assert result.detail == "ran, no expected output"
    assert result.output == "tensor([2., 2.])\n"
    assert result.device == "cpu"
    assert result.torch_version == runner.torch_version
    assert result.torch_version and "torch" not in result.torch_version
    assert 0 < result.seconds < 20


def test_expected_output_passes_and_fails_with_a_diff(runner: SnippetRunner) -> None:
    results = runner.run_note(
        [
            snip(
                "import torch\nx = torch.tensor([1/3, 2/3])\nx",
                expected="tensor([0.3333, 0.6667], device='cuda:0')",
            ),
            snip("x * 3", expected="tensor([1.0000, 2.0000])"),
            snip("x + 1", expected="tensor([1.3333, 1.6667])\nextra"),
            snip("print('after a failure, the note goes on')"),
        ]
    )
    assert statuses(results) == [PASSED, PASSED, FAILED, PASSED]
    diff = results[2].detail
    assert diff.startswith("--- expected\n+++ actual")
    assert "-extra" in diff.splitlines()
    assert results[2].output == "tensor([1.3333, 1.6667])\n"


def test_float_tolerance_on_real_torch_output(runner: SnippetRunner) -> None:
    [close, far] = runner.run_note(
        [
            snip(
                "import torch\ntorch.tensor([1e-8, 1.0, 123.456])",
                expected="tensor([1.0000e-08, 1.0000e+00, 1.2346e+02])",
            ),
            snip("torch.tensor([1.0, 2.0])", expected="tensor([1.0, 2.1])"),
        ]
    )
    assert close.status is PASSED, close.detail
    assert far.status is FAILED


def test_doctest_style_expected_exception(runner: SnippetRunner) -> None:
    traceback = "Traceback (most recent call last):\n  ...\nZeroDivisionError: division by zero"
    results = runner.run_note(
        [
            snip("print('before')\n1 / 0", expected="before\n" + traceback),
            snip("1 / 0", expected=traceback.replace("division by zero", "something else")),
            snip("'still running'", expected="'still running'"),
        ]
    )
    assert statuses(results) == [PASSED, FAILED, PASSED]
    assert "+ZeroDivisionError: division by zero" in results[1].detail


def test_device_variable_and_default_device(runner: SnippetRunner) -> None:
    [result] = runner.run_note(
        [snip("import torch\nprint(device, torch.get_default_device(), torch.ones(1).device)")]
    )
    assert result.output == "cpu cpu cpu\n"


def test_random_state_is_seeded_per_note(runner: SnippetRunner) -> None:
    code = "import random, torch\nprint(random.random(), torch.rand(1).item())"
    first = runner.run_note([snip(code)])[0].output
    second = runner.run_note([snip(code)])[0].output
    assert first == second


# --- errors, output capture ------------------------------------------------------------


def test_error_detail_names_the_snippet_line(runner: SnippetRunner) -> None:
    results = runner.run_note(
        [
            snip("def f(v):\n    return 1 / v\n\nf(0)"),
            snip("print('never runs')"),
        ]
    )
    assert statuses(results) == [ERROR, SKIPPED]
    detail = results[0].detail
    assert detail.startswith("line 2 of the snippet: ZeroDivisionError: division by zero")  # innermost
    assert 'File "<snippet 1>", line 4, in <module>' in detail
    assert 'File "<snippet 1>", line 2, in f' in detail
    assert "return 1 / v" in detail  # the source line is shown
    assert "worker.py" not in detail  # the runner's own frames are hidden
    assert results[1].detail == "earlier snippet failed: snippet 1 (error)"


def test_syntax_error_names_the_line(runner: SnippetRunner) -> None:
    [ok, bad] = runner.run_note([snip("a = 1"), snip("b = 2\nc = (\n")])
    assert ok.status is PASSED
    assert bad.status is ERROR
    assert bad.detail.startswith("line 2 of the snippet: ")
    assert "SyntaxError" in bad.detail


def test_stdout_and_stderr_are_captured_per_snippet(runner: SnippetRunner) -> None:
    results = runner.run_note(
        [
            snip(
                """
                import os, sys, warnings
                print('one')
                print('to stderr', file=sys.stderr)
                warnings.warn('careful')
                n = os.write(1, b'raw fd write\\n')
                """
            ),
            snip("import subprocess\nsubprocess.run(['echo', 'from a subprocess'])\nprint('two')"),
            snip("import sys\nsys.stdout = open('elsewhere.txt', 'w')"),  # a snippet replacing sys.stdout
            snip("print('three')"),
        ]
    )
    assert statuses(results) == [PASSED] * 4
    assert results[0].output == "one\nraw fd write\n"
    assert "--- stderr ---" in results[0].detail
    assert "to stderr" in results[0].detail and "UserWarning: careful" in results[0].detail
    assert results[1].output == "from a subprocess\ntwo\n"
    assert results[1].detail == "ran, no expected output"
    assert results[3].output == "three\n"


def test_working_directory_is_a_fresh_temporary_directory(runner: SnippetRunner) -> None:
    code = "import os\nprint(os.getcwd())\nprint(os.listdir('.'))\n_ = open('data.txt', 'w').write('x')"
    first = runner.run_note([snip(code), snip("import os\nprint(os.listdir('.'))")])
    second = runner.run_note([snip(code)])
    cwd1, listing1 = first[0].output.splitlines()
    cwd2, listing2 = second[0].output.splitlines()
    assert listing1 == listing2 == "[]"
    assert first[1].output == "['data.txt']\n"
    assert cwd1 != cwd2
    # TMP/a/b/work: what a note writes through `../` stays in its temporary directory TMP
    assert Path(cwd1).parts[-3:] == ("a", "b", "work")
    assert Path(cwd1).parents[3] == Path(tempfile.gettempdir())
    assert not os.path.exists(cwd1) and not os.path.exists(cwd2)  # removed after the run


@pytest.mark.parametrize(
    "code",
    [
        "import socket\nsocket.socket()",
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)",
        "import socket\nsocket.socket(socket.AF_INET6)",
        "import socket\nsocket.getaddrinfo('localhost', 80)",
        "import socket\nsocket.create_connection(('127.0.0.1', 9))",
        "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=5)",
    ],
    ids=["default", "inet", "inet6", "getaddrinfo", "create_connection", "urlopen"],
)
def test_network_is_blocked(runner: SnippetRunner, code: str) -> None:
    # skipped with the reason, not an error of the note's code
    [result] = runner.run_note([snip(code)])
    assert result.status is SKIPPED
    assert result.detail == "line 2: needs the network, which d2lkb cuts off for snippets"


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root (CAP_SYS_ADMIN); "
                                             "without it only the Python-level guard applies")
def test_network_is_cut_below_python_too(runner: SnippetRunner) -> None:
    """C-level sockets and subprocesses cannot reach a server listening on this machine's loopback."""
    import socket

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        code = (f"import _socket\ns = _socket.socket(2, 1)\ns.settimeout(3)\ns.connect(('127.0.0.1', {port}))")
        [raw] = runner.run_note([snip(code)])
        assert raw.status is SKIPPED and "needs the network" in raw.detail and "OSError" in raw.detail, raw.detail
        shell = (f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import _socket; s = _socket.socket(2, 1);"
                 f" s.connect((\\'127.0.0.1\\', {port}))'], check=True)")
        [sub] = runner.run_note([snip(shell)])
        assert sub.status is ERROR and "CalledProcessError" in sub.detail, sub.detail
    finally:
        server.close()


def test_local_sockets_still_work(runner: SnippetRunner) -> None:
    [result] = runner.run_note(
        [snip("import socket\na, b = socket.socketpair()\na.sendall(b'unix ok')\nb.recv(7)")]
    )
    assert result.status is PASSED, result.detail
    assert result.output == "b'unix ok'\n"


# --- limits and crashes --------------------------------------------------------------------


def test_hanging_snippet_is_killed_and_the_runner_goes_on(quick_runner: SnippetRunner) -> None:
    results = quick_runner.run_note([snip("x = 1"), snip("while True:\n    pass"), snip("x")])
    assert statuses(results) == [PASSED, TIMEOUT, SKIPPED]
    assert results[1].detail == "timed out after 2 s of CPU time (the note's process was killed)"
    assert results[1].seconds == 2.0
    assert results[2].detail == "earlier snippet failed: snippet 2 (timeout)"
    [after] = quick_runner.run_note([snip("1 + 1", expected="2")])
    assert after.status is PASSED


def test_the_time_limit_counts_cpu_time_not_waiting(quick_runner: SnippetRunner) -> None:
    """3 s of sleep is over the 2 s limit in wall time, but uses no CPU: the snippet passes."""
    [result] = quick_runner.run_note([snip("import time\ntime.sleep(3)\nprint('awake')", expected="awake")])
    assert result.status is PASSED, result.detail


def test_a_sleeping_snippet_is_stopped_by_the_wall_clock_backstop(sleepy_runner: SnippetRunner) -> None:
    results = sleepy_runner.run_note([snip("x = 1"), snip("import time\ntime.sleep(10**6)"), snip("x")])
    assert statuses(results) == [PASSED, TIMEOUT, SKIPPED]
    assert results[1].detail.startswith("timed out after 1 s of wall-clock time, ")
    assert results[1].detail.endswith("s of CPU (sleeping, blocked or starved; the note's process was killed)")
    assert results[1].seconds == 1.0
    [after] = sleepy_runner.run_note([snip("1 + 1", expected="2")])
    assert after.status is PASSED


def test_timeout_kills_the_processes_a_snippet_started(sleepy_runner: SnippetRunner) -> None:
    marker = f"120.{os.getpid()}{time.monotonic_ns()}"  # found in /proc: the sandbox cannot write a pid file out
    code = f"""
        import subprocess, time
        p = subprocess.Popen(['sleep', {marker!r}])
        time.sleep(120)
    """
    [result] = sleepy_runner.run_note([snip(code)])
    assert result.status is TIMEOUT
    for _ in range(6000):  # SIGKILLed already; wait (at most ten minutes) for the kernel to reap it
        if not running_with(marker):
            break
        time.sleep(0.1)
    assert not running_with(marker), "the snippet's own child outlived the timeout"


def running_with(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if marker.encode() in cmdline.read() and _alive(int(entry)):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "bomb",
    ["x = bytearray(50 * 2**30)", "import torch\nx = torch.empty(10**11)"],
    ids=["bytearray", "torch.empty"],
)
def test_memory_bomb_is_contained(runner: SnippetRunner, bomb: str) -> None:
    results = runner.run_note([snip(bomb), snip("print('not reached')")])
    assert statuses(results) == [ERROR, SKIPPED]
    assert results[0].detail.startswith("memory limit exceeded (4096 MB)")
    assert results[1].detail == "earlier snippet failed: snippet 1 (error)"
    [after] = runner.run_note([snip("import torch\ntorch.zeros(1000, 1000).sum()", expected="tensor(0.)")])
    assert after.status is PASSED


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("import os\nos._exit(3)", "the snippet's process exited with status 3"),
        ("import os\nos.kill(os.getpid(), 9)", "the snippet's process was killed by SIGKILL"),
        ("import sys\nsys.exit(0)", "SystemExit: 0"),
    ],
    ids=["os._exit", "SIGKILL", "sys.exit"],
)
def test_worker_survives_a_crashing_snippet(runner: SnippetRunner, code: str, detail: str) -> None:
    before = runner._worker_status()
    results = runner.run_note([snip("print('first')"), snip(code), snip("1")])
    assert statuses(results) == [PASSED, ERROR, SKIPPED]
    assert results[0].output == "first\n"
    assert detail in results[1].detail
    assert runner._worker_status()["pid"] == before["pid"]  # the zygote itself was not touched
    [after] = runner.run_note([snip("2 + 2", expected="4")])
    assert after.status is PASSED


def test_a_dead_worker_is_replaced(runner: SnippetRunner) -> None:
    pid = runner._worker_status()["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    [result] = runner.run_note([snip("3 * 3", expected="9")])
    assert result.status is PASSED
    assert runner._worker_status()["pid"] != pid


def test_a_note_is_one_forked_process_shared_by_its_snippets(runner: SnippetRunner) -> None:
    """The design that keeps a snippet cheap (timed in bench/bench_checks.py, not here):
    one fork of the warm zygote per note, not an interpreter per snippet."""
    zygote = runner._worker_status()["pid"]
    own_pid = "import os\nint(os.readlink('/proc/self'))"  # as the host sees it (the note runs in a PID namespace)
    first = runner.run_note([snip(own_pid)] * 20)
    second = runner.run_note([snip(own_pid)])
    pids = {r.output for r in first}
    assert statuses(first) == [PASSED] * 20 and len(pids) == 1
    assert second[0].output not in pids
    assert str(zygote) + "\n" not in pids | {second[0].output}
    assert runner._worker_status()["pid"] == zygote


# --- devices ---------------------------------------------------------------------------------


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("auto", cuda_available=True) == "cuda"
    assert resolve_device("auto", cuda_available=False) == "cpu"
    assert resolve_device("cpu", cuda_available=True) == "cpu"
    assert resolve_device("cuda", cuda_available=False) == "cuda"  # the runner skips, with a reason
    assert resolve_device("CUDA:1", cuda_available=True) == "cuda:1"
    for bad in ("gpu", "tpu", "cuda:x", ""):
        with pytest.raises(ValueError, match="unknown device"):
            resolve_device(bad, cuda_available=True)
    monkeypatch.setenv(FAKE_CUDA_ENV, "1")
    assert resolve_device("auto") == "cuda"
    monkeypatch.setenv(FAKE_CUDA_ENV, "0")
    assert resolve_device("auto") == "cpu"


def test_runner_rejects_bad_settings() -> None:
    with pytest.raises(ValueError) as error:
        SnippetRunner(device="gpu", timeout=0, memory_mb=-1)
    message = str(error.value)
    assert "unknown device 'gpu'" in message and "timeout" in message and "memory_mb" in message


def test_runner_rejects_other_languages(runner: SnippetRunner) -> None:
    with pytest.raises(ValueError, match="'sympy' is not run here"):
        runner.run_note([snip("assert True", language="sympy")])


def test_faked_cuda_skips_cuda_snippets_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, real_cuda: bool
) -> None:
    if real_cuda:
        pytest.skip("a real GPU is present: CUDA snippets would run (see test_real_gpu)")
    monkeypatch.setenv(FAKE_CUDA_ENV, "1")  # "CUDA is available", though torch here cannot use it
    with SnippetRunner(device="auto", timeout=20.0) as fake:
        assert fake.device == "cuda"
        results = fake.run_note(
            [
                snip("device", expected="'cuda'"),
                snip("1 + 1", expected="2"),
                snip("import torch\nx = torch.ones(2)"),  # the default device is cuda
                snip("x"),
            ]
        )
        assert statuses(results) == [PASSED, PASSED, SKIPPED, SKIPPED]
        assert results[2].detail.startswith("needs CUDA, which is not available here: ")
        assert "CUDA" in results[2].detail
        assert results[3].detail == "earlier snippet skipped: snippet 3 needs CUDA"
        [explicit] = fake.run_note([snip("import torch\ntorch.zeros(1, device='cuda')")])
        assert explicit.status is SKIPPED
        # the zygote never initialised CUDA, so forking it stays safe
        assert fake._worker_status()["cuda_initialized"] is False
    # an explicit CUDA device on a CPU runner is skipped too
    monkeypatch.setenv(FAKE_CUDA_ENV, "0")
    [cpu_runner] = [SnippetRunner(device="cpu")]
    with cpu_runner:
        [result] = cpu_runner.run_note([snip("import torch\ntorch.zeros(1, device='cuda')")])
    assert result.status is SKIPPED and "needs CUDA" in result.detail


def test_cuda_requested_but_unavailable_skips_the_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAKE_CUDA_ENV, "0")
    with SnippetRunner(device="cuda") as runner:
        assert runner.device == "cuda"
        results = runner.run_note([snip("1 + 1"), snip("print(2)")])
    assert statuses(results) == [SKIPPED, SKIPPED]
    assert all(r.detail == "needs CUDA (--device cuda), which is not available here" for r in results)
    assert {r.device for r in results} == {"cuda"}


def test_real_gpu(real_cuda: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not real_cuda:
        pytest.skip("needs a CUDA GPU; torch sees none on this machine")
    monkeypatch.delenv(FAKE_CUDA_ENV, raising=False)
    with SnippetRunner(device="auto", timeout=120.0) as gpu:
        assert gpu.device == "cuda"
        for _ in range(2):  # a second note forks from the same zygote: CUDA must still work
            results = gpu.run_note(
                [
                    snip("import torch\nx = torch.ones(2) * 2\nx", expected="tensor([2., 2.])"),
                    snip("x.device.type, device", expected="('cuda', 'cuda')"),
                ]
            )
            assert statuses(results) == [PASSED, PASSED], [r.detail for r in results]
            assert "device='cuda:0'" in results[0].output
        [bomb] = gpu.run_note([snip("import torch\ntorch.empty(10**13)")])
        assert bomb.status is ERROR and bomb.detail.startswith("memory limit exceeded")
        [host_bomb] = gpu.run_note([snip("x = bytearray(50 * 2**30)")])
        assert host_bomb.status is ERROR and host_bomb.detail.startswith("memory limit exceeded")
        assert gpu._worker_status()["cuda_initialized"] is False


# --- results, cache keys, imports ----------------------------------------------------------


def test_result_round_trips_through_a_dict() -> None:
    result = SnippetResult(CheckStatus.FAILED, "diff", "out\n", "cpu", "2.5.0", 0.25)
    data = result.to_dict()
    assert data["status"] == "failed"
    assert SnippetResult.from_dict(data) == result


def test_cache_key() -> None:
    codes = ["x = 1", "y = x + 1", "print(y)"]
    versions = {"torch_version": "2.5.0", "device": "cpu", "python_version": "3.11.7"}
    key = cache_key(codes, 1, **versions)
    assert len(key) == 64 and int(key, 16) >= 0
    assert cache_key(list(codes), 1, **versions) == key
    assert cache_key(codes[:2], 1, **versions) == key  # later snippets do not matter
    assert cache_key(["x = 2", *codes[1:]], 1, **versions) != key  # earlier ones do
    assert cache_key(codes, 0, **versions) != key
    for field, other in (("torch_version", "2.6.0"), ("device", "cuda"), ("python_version", "3.12.0")):
        assert cache_key(codes, 1, **{**versions, field: other}) != key
    # the chain is not just concatenated text
    assert cache_key(["a", "b"], 1, **versions) != cache_key(["a\nb", ""], 1, **versions)
    for bad in (-1, 3):
        with pytest.raises(ValueError, match="out of range"):
            cache_key(codes, bad, **versions)


def test_parent_never_imports_torch() -> None:
    script = textwrap.dedent(
        """
        import sys
        import d2lkb.checks.snippets as snippets
        from d2lkb.model import Snippet
        assert "torch" not in sys.modules, "importing the runner imported torch"
        with snippets.SnippetRunner(device="cpu") as runner:
            version = runner.torch_version
            [result] = runner.run_note([Snippet("python", "import torch; torch.ones(1).sum()", 1, None)])
        assert result.status == "passed", result
        assert "torch" not in sys.modules, "running a note imported torch in the parent"
        print("ok", version)
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")
