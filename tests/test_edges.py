"""Robust edges (issue 11, item 5), each through the real CLI on a real SQLite file.

- a file or folder name that is not valid UTF-8 is a warning; everything else works;
- links that leave the notes folder are not followed unless the KB's config says so;
- first use of a KB by several processes at once is safe;
- every bad-KB case (uncreatable folder, foreign, damaged or newer file, a text byte that is not
  UTF-8, a full disk) is one line `error: ...` and a non-zero exit, never a traceback;
- a read-only KB answers the read-only commands without writing a byte;
- a command that fails leaves no new KB behind.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import multiprocessing
import os
import pwd
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from d2lkb.cli import app
from d2lkb.store.db import SCHEMA_VERSION
from tests.conftest import write

ROOT = Path(__file__).resolve().parents[1]
GOOD = "# Good\n\n#ok\n\nWhat is good? :: fine\n"
READ_COMMANDS = [["search", "good"], ["show", "good.md"], ["stats"], ["tags"], ["orphans"], ["retired"]]


def cli(cwd: Path, *args: str, preexec_fn=None, wrap: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`d2lkb ARGS` in a new process (this checkout's package, no colour)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", COLUMNS="200", TERM="dumb")
    env.pop("D2LKB_KB", None)
    env.pop("D2LKB_NOTES", None)
    return subprocess.run([*wrap, sys.executable, "-m", "d2lkb.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, preexec_fn=preexec_fn, timeout=600, check=False)


def one_error_line(result) -> str:
    """The failure is exactly one line `error: ...`, with a non-zero exit and no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def vault(root: Path) -> Path:
    notes = root / "notes"
    write(notes / ".d2lkb.toml", "[cards]\nflashcard_tags = []\n")
    write(notes / "good.md", GOOD)
    return notes


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- file names that are not UTF-8 ---------------------------------------------
def test_a_file_name_that_is_not_utf8_is_a_warning_and_everything_else_works(tmp_path):
    notes = vault(tmp_path)
    fd = os.open(os.fsencode(notes) + b"/bad\xff.md", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"# Bad\n\nBad question :: bad answer\n")
    os.close(fd)
    os.mkdir(os.fsencode(notes) + b"/folder\xfe")
    with open(os.fsencode(notes) + b"/folder\xfe/inside.md", "wb") as fh:
        fh.write(b"# Inside\n\nInside question :: x\n")

    done = cli(tmp_path, "sync", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["notes"] == 1 and report["cards"] == 1
    warned = {w["path"]: w["message"] for w in report["warnings"]}
    assert "not valid UTF-8" in warned["bad\\xff.md"] and "skipped" in warned["bad\\xff.md"]
    assert "not valid UTF-8" in warned["folder\\xfe"]

    done = cli(tmp_path, "search", "good")
    assert done.returncode == 0, done.stderr
    assert "good.md" in done.stdout and "Traceback" not in done.stderr
    assert "warning: bad\\xff.md: note name is not valid UTF-8" in done.stderr
    for args in (["show", "good.md"], ["stats"], ["tags"], ["check"]):
        done = cli(tmp_path, *args)
        assert done.returncode == 0, (args, done.stderr)
    done = cli(tmp_path, "export", "csv", "-o", str(tmp_path / "out.csv"))
    assert done.returncode == 0, done.stderr
    assert "What is good?" in (tmp_path / "out.csv").read_text(encoding="utf-8")


async def test_review_goes_on_beside_a_file_name_that_is_not_utf8(tmp_path):
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase
    from d2lkb.tui.app import D2lkbApp
    from d2lkb.tui.screens.review import ReviewScreen
    from tests.test_tui import settle

    notes = vault(tmp_path)
    with open(os.fsencode(notes) + b"/bad\xff.md", "wb") as fh:
        fh.write(b"Bad :: card\n")
    kb = KnowledgeBase(load_config(tmp_path / "kb", notes))
    try:
        app_ = D2lkbApp(kb, start="review")
        async with app_.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert isinstance(app_.screen, ReviewScreen) and app_.screen.card is not None
            assert app_.screen.card.front == "What is good?"
            await pilot.press("space", "3")
            await settle(pilot)
        assert kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 1
        assert any(w.path == "bad\\xff.md" for w in app_.last_sync.warnings)
    finally:
        kb.close()


# -- links out of the vault ----------------------------------------------------
def test_links_out_of_the_vault_are_not_followed_unless_the_kb_config_says_so(tmp_path):
    notes = vault(tmp_path)
    outside = tmp_path / "elsewhere"
    for i in range(3):
        write(outside / f"foreign{i}.md", f"# Foreign {i}\n\nForeign {i} :: x\n")
    write(tmp_path / "lone.md", "# Lone\n\nLone :: x\n")
    write(notes / "real" / "kept.md", "# Kept\n\nKept :: x\n")
    os.symlink(outside, notes / "out")  # a folder outside
    os.symlink("/usr", notes / "usr")  # the reproduction: 335 foreign notes came in
    os.symlink(tmp_path / "lone.md", notes / "lone.md")  # a note outside
    os.symlink("real", notes / "view")  # a folder inside: followed (already read as real/: once)
    write(notes / "zz" / "inner" / "deep.md", "# Deep\n\nDeep :: x\n")
    os.symlink("zz/inner", notes / "a-link")  # a folder inside, read first through the link
    os.symlink("good.md", notes / "again.md")  # a note inside: followed
    os.symlink("..", notes / "real" / "up")  # a loop: visited once

    done = cli(tmp_path, "sync", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    paths = {p for (p,) in sqlite3.connect(tmp_path / "kb" / "kb.sqlite").execute("SELECT path FROM note")}
    assert paths == {"good.md", "again.md", "real/kept.md", "a-link/deep.md"}
    warned = {w["path"]: w["message"] for w in report["warnings"]}
    for link in ("out", "usr", "lone.md"):
        assert "outside the notes folder" in warned[link] and "follow_symlinks" in warned[link], warned
    assert "already visited" in warned["real/up"] and "already visited" in warned["view"]

    write(tmp_path / "kb" / "config.toml", "[sync]\nfollow_symlinks = true\n")
    os.remove(notes / "usr")
    done = cli(tmp_path, "sync", "--json")
    assert done.returncode == 0, done.stderr
    paths = {p for (p,) in sqlite3.connect(tmp_path / "kb" / "kb.sqlite").execute("SELECT path FROM note")}
    assert {"out/foreign0.md", "out/foreign2.md", "lone.md"} <= paths


def test_a_vault_cannot_make_d2lkb_follow_links_out_of_it(tmp_path):
    notes = vault(tmp_path)
    write(notes / ".d2lkb.toml", "[cards]\nflashcard_tags = []\n[sync]\nfollow_symlinks = true\n")
    line = one_error_line(cli(tmp_path, "sync"))
    assert ".d2lkb.toml" in line and "sync" in line


# -- first use by several processes ----------------------------------------------
def _first_use(kb: str, notes: str, barrier, results) -> None:
    barrier.wait()
    result = CliRunner().invoke(app, ["--kb", kb, "--notes", notes, "sync", "--json"])
    results.put((result.exit_code, repr(result.exception), result.output[-500:]))


def test_first_use_of_a_kb_by_five_processes_at_once(tmp_path):
    notes = vault(tmp_path)
    for i in range(6):
        write(notes / f"n{i}.md", f"# N{i}\n\nQ{i} :: A{i}\n")
    context = multiprocessing.get_context("fork")
    for round_ in range(5):
        kb = tmp_path / f"round{round_}" / "new" / "kb"  # neither the folder nor the file exists yet
        barrier, results = context.Barrier(5), context.Queue()
        processes = [context.Process(target=_first_use, args=(str(kb), str(notes), barrier, results))
                     for _ in range(5)]
        for p in processes:
            p.start()
        outcomes = [results.get(timeout=600) for _ in processes]
        for p in processes:
            p.join()
        failed = [o for o in outcomes if o[0] != 0]
        assert not failed, f"round {round_}: {failed}"
        conn = sqlite3.connect(kb / "kb.sqlite")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM note").fetchone()[0] == 7
        assert conn.execute("SELECT count(*) FROM card").fetchone()[0] == 7
        conn.close()


def test_first_use_waits_for_a_slow_first_user_past_the_busy_timeout(tmp_path, monkeypatch):
    """The process that creates a KB holds its lock as long as its commit takes (a loaded machine, a
    slow disk): another one opening the KB then waits, past SQLite's busy timeout, and never fails
    as 'busy' (which, on a first use by several processes at once, failed one of them now and then).
    The busy timeout is made short here; the lock is held for ten of them."""
    import threading

    from d2lkb.store import db

    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "new" / "kb.sqlite"
    path.parent.mkdir()
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    first.execute("BEGIN EXCLUSIVE")  # the first user's commit, in the rollback journal of a new file
    threading.Timer(0.5, first.execute, ("ROLLBACK",)).start()
    conn = db.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
        first.close()


def test_a_failed_first_use_leaves_a_new_kb_that_another_process_uses(tmp_path):
    """A command that fails removes the new, empty KB it made, but not while another process has that
    KB open (each of several processes on a first use thinks it made the KB): that one goes on."""
    from d2lkb.cli import State, _discard_new_kb
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase

    notes = vault(tmp_path)
    kb_dir = tmp_path / "new" / "kb"
    other = State(str(kb_dir), str(notes))  # a run that found no KB either, then failed
    path = other.config.db_path
    other.created = (path, [kb_dir, kb_dir.parent])
    with KnowledgeBase(load_config(kb_dir, notes)) as first:
        _discard_new_kb(other)
        assert path.exists()
        first.sync()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM note").fetchone()[0] == 1
    conn.close()
    # Alone with it, the failed run does remove it (and the folders it made).
    lone = tmp_path / "lone" / "kb"
    failed = State(str(lone), str(notes))
    failed.created = (failed.config.db_path, [lone, lone.parent])
    KnowledgeBase(load_config(lone, notes)).close()
    _discard_new_kb(failed)
    assert not (tmp_path / "lone").exists()


# -- bad KBs: one line each ------------------------------------------------------
def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    _foreign(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("make", "expect"), [
    (lambda p: p.write_bytes(os.urandom(3000)), "not an SQLite database"),
    (lambda p: p.write_bytes(b"SQLite format 3\x00" + os.urandom(5000)), "kb.sqlite"),
    (_foreign, "not a d2lkb knowledge base (tables: users)"),
    (_newer, "newer d2lkb"),
], ids=["garbage", "damaged-header", "user-version-0", "newer-schema"])
def test_a_bad_kb_file_is_one_line_and_is_not_changed(tmp_path, make, expect):
    vault(tmp_path)
    db = tmp_path / "kb" / "kb.sqlite"
    db.parent.mkdir()
    make(db)
    before = digest(db)
    for args in (["search", "good"], ["sync"], ["stats"]):
        line = one_error_line(cli(tmp_path, *args))
        assert expect in line and "kb/kb.sqlite" in line, line
    assert digest(db) == before
    assert sorted(os.listdir(db.parent)) == ["kb.sqlite"]  # not even a WAL file beside it


def test_an_uncreatable_kb_folder_is_one_line(tmp_path):
    vault(tmp_path)
    (tmp_path / "afile").write_text("x")
    line = one_error_line(cli(tmp_path, "--kb", "afile/kb", "search", "good"))
    assert "cannot create the knowledge-base folder afile/kb: afile is a file" in line
    assert (tmp_path / "afile").read_text() == "x"


def test_a_read_only_parent_folder_is_one_line(tmp_path):
    work = _shared_dir()
    try:
        vault(work)
        (work / "locked").mkdir()
        os.chmod(work / "locked", 0o555)
        as_user, how = _unprivileged()
        line = one_error_line(cli(work, "--kb", "locked/kb", "search", "good", preexec_fn=as_user))
        assert "locked/kb" in line and ("not writable" in line or "Permission denied" in line), (how, line)
        assert os.listdir(work / "locked") == []
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_text_byte_that_is_not_utf8_in_the_kb_is_one_line_in_export(tmp_path):
    vault(tmp_path)
    assert cli(tmp_path, "sync").returncode == 0
    conn = sqlite3.connect(tmp_path / "kb" / "kb.sqlite")
    conn.execute("UPDATE card SET front = CAST(x'576861ff74' AS TEXT)")
    conn.commit()
    conn.close()
    for fmt in ("csv", "json", "apkg"):
        line = one_error_line(cli(tmp_path, "export", fmt, "-o", str(tmp_path / f"out.{fmt}")))
        assert "kb/kb.sqlite" in line and "not valid UTF-8" in line and "front" in line, line


def _fsize_limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))


def _many_notes(notes: Path, n: int = 120) -> None:
    for i in range(n):
        write(notes / "bulk" / f"n{i}.md", f"# Bulk {i}\n\n" + "".join(
            f"Question {i}.{j} {'padding ' * 40}:: answer {j}\n\n" for j in range(10)))


def test_a_full_disk_is_one_line_and_keeps_the_kb(tmp_path):
    """The file size limit (RLIMIT_FSIZE) stands for a full disk, as any user can set it."""
    notes = vault(tmp_path)
    assert cli(tmp_path, "sync").returncode == 0
    before = sqlite3.connect(tmp_path / "kb" / "kb.sqlite").execute("SELECT front FROM card").fetchall()
    _many_notes(notes)
    line = one_error_line(cli(tmp_path, "search", "question", preexec_fn=_fsize_limit))
    assert "kb/kb.sqlite" in line and ("disk" in line or "space" in line), line
    after = sqlite3.connect(tmp_path / "kb" / "kb.sqlite")
    assert after.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert after.execute("SELECT front FROM card").fetchall() == before
    shutil.rmtree(tmp_path / "kb")  # a new KB on the full disk: one line, and nothing left behind
    one_error_line(cli(tmp_path, "search", "question", preexec_fn=_fsize_limit))
    assert not (tmp_path / "kb").exists()


def _namespace_prefix() -> tuple[str, ...] | None:
    """`unshare` for a private mount namespace (root, or an unprivileged user namespace)."""
    if shutil.which("unshare") is None:
        return None
    prefix = ("unshare", "-m", "--propagation", "private") if os.geteuid() == 0 else ("unshare", "-Urm")
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None


def test_a_full_disk_on_a_real_file_system_is_one_line(tmp_path):
    """A 1 MiB tmpfs mounted over the KB folder in a private mount namespace (ENOSPC for real)."""
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("no mount namespace here (needs root or unprivileged user namespaces) to mount a tiny tmpfs")
    notes = vault(tmp_path)
    _many_notes(notes, 200)
    (tmp_path / "kb").mkdir()
    script = (f"mount -t tmpfs -o size=1M tmpfs kb && PYTHONPATH={ROOT} NO_COLOR=1 {sys.executable} -m d2lkb.cli "
              "search question; echo \"rc=$?\"; ls -A kb")
    done = subprocess.run([*prefix, "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False,
                          env=dict(os.environ, COLUMNS="200"), timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "kb/kb.sqlite: the disk is full" in lines[0], done.stderr
    out = done.stdout.split()
    assert "rc=1" in out and out[-1] == "rc=1", done.stdout  # and the new KB was removed from the full disk


# -- read-only KBs ---------------------------------------------------------------
def _shared_dir() -> Path:
    """A folder another user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="d2lkb-edges-"))
    path.chmod(0o755)
    return path


def _unprivileged():
    """(preexec_fn, description): run a command the way a normal user would meet permissions.

    As root: as `nobody` where that user can run this interpreter, else as root without the
    capabilities that bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER),
    which is what chmod means to every other user. As a normal user: as is."""
    if os.geteuid() != 0:
        return None, "as this user"
    nobody = pwd.getpwnam("nobody")

    def as_nobody():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    try:
        probe = subprocess.run([sys.executable, "-c", "import d2lkb, typer"], preexec_fn=as_nobody,
                               capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=False)
        if probe.returncode == 0:
            return as_nobody, "as nobody"
    except OSError:  # e.g. the interpreter lives under root's private home
        pass

    def without_dac():
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return without_dac, "as root without CAP_DAC_OVERRIDE (nobody cannot run this interpreter)"


def _synced_kb(work: Path) -> Path:
    notes = vault(work)
    write(notes / "other.md", "# Other\n\n[[good]]\n\nOther :: x\n")
    done = cli(work, "sync")
    assert done.returncode == 0, done.stderr
    write(notes / "late.md", "# Late\n\nLate :: x\n")  # not synced: the read-only KB does not see it
    for root, dirs, files in os.walk(work):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
    return work / "kb" / "kb.sqlite"


def _read_commands_work(work: Path, db: Path, preexec_fn=None, wrap: tuple[str, ...] = (),
                        commands: list[list[str]] = READ_COMMANDS) -> None:
    before = digest(db)
    listing = sorted(os.listdir(db.parent))
    export_dir = work / "exports"
    export_dir.mkdir(exist_ok=True)
    export_dir.chmod(0o777)
    for args in [*commands, ["export", "csv", "-o", str(export_dir / "out.csv")],
                 ["export", "json", "-o", str(export_dir / "out.json")]]:
        done = cli(work, *args, preexec_fn=preexec_fn, wrap=wrap)
        assert done.returncode == 0, (args, done.stderr)
        assert "KB is read-only: not syncing" in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    done = cli(work, "search", "late", preexec_fn=preexec_fn, wrap=wrap)
    assert "no matches" in done.stdout
    assert "What is good?" in (export_dir / "out.csv").read_text(encoding="utf-8")
    line = one_error_line(cli(work, "sync", preexec_fn=preexec_fn, wrap=wrap))
    assert "read-only" in line and "kb/kb.sqlite" in line, line
    line = _last_error(cli(work, "suspend", "good", preexec_fn=preexec_fn, wrap=wrap))
    assert "read-only" in line and "kb/kb.sqlite" in line, line
    assert digest(db) == before
    assert sorted(os.listdir(db.parent)) == listing  # no -wal, -shm or lock file made


def _last_error(result) -> str:
    """A command that syncs first prints the read-only notice, then its one error line."""
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_read_only_kb_answers_read_only_commands(tmp_path):
    work = _shared_dir()
    try:
        db = _synced_kb(work)
        db.chmod(0o444)
        db.parent.chmod(0o555)
        as_user, _how = _unprivileged()
        _read_commands_work(work, db, preexec_fn=as_user)
        db.parent.chmod(0o755)  # the file alone read-only, in a folder the user may write
        _read_commands_work(work, db, preexec_fn=as_user, commands=[["search", "good"]])
        db.chmod(0o644)  # writable again: it syncs, nothing left behind stands in the way
        done = cli(work, "sync", preexec_fn=as_user)
        assert done.returncode == 0, done.stderr
        done = cli(work, "search", "late", preexec_fn=as_user)
        assert "late.md" in done.stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_read_only_kb_of_an_older_schema_is_one_line(tmp_path):
    work = _shared_dir()
    try:
        db = _synced_kb(work)
        conn = sqlite3.connect(db)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        conn.commit()
        conn.close()
        before = digest(db)
        db.chmod(0o444)
        db.parent.chmod(0o555)
        as_user, _how = _unprivileged()
        line = one_error_line(cli(work, "search", "good", preexec_fn=as_user))
        assert "kb/kb.sqlite: read-only, and it needs an upgrade" in line and "write access" in line, line
        assert digest(db) == before
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_kb_on_a_read_only_mount_answers_read_only_commands(tmp_path):
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("no mount namespace here (needs root or unprivileged user namespaces) for a read-only mount")
    db = _synced_kb(tmp_path)
    script = 'mount --bind kb kb && mount -o remount,ro,bind kb && exec "$@"'
    _read_commands_work(tmp_path, db, wrap=(*prefix, "sh", "-c", script, "sh"),
                        commands=[["search", "good"], ["show", "good.md"], ["stats"]])


def test_a_newer_kb_is_refused_without_a_write_even_when_writable(tmp_path):
    notes = vault(tmp_path)
    assert cli(tmp_path, "sync").returncode == 0
    db = tmp_path / "kb" / "kb.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")  # as a newer d2lkb might leave it
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = digest(db)
    write(notes / "new.md", "# New\n\nNew :: x\n")
    for args in (["search", "good"], ["sync"], ["export", "csv", "-o", str(tmp_path / "x.csv")]):
        line = one_error_line(cli(tmp_path, *args))
        assert f"schema version {SCHEMA_VERSION + 1}" in line and "upgrade d2lkb" in line, line
    assert digest(db) == before
    assert sorted(os.listdir(db.parent)) == ["kb.sqlite", "kb.sqlite.lock"]


# -- no new KB left behind ------------------------------------------------------
@pytest.mark.parametrize("args", [["search", "("], ["search", "good"], ["show", "x"], ["stats"],
                                  ["trust", "/no/such/folder"], ["optimize"], ["export", "csv"]])
def test_a_failing_command_leaves_no_new_kb(tmp_path, args):
    done = cli(tmp_path, *args)  # no notes folder here
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert os.listdir(tmp_path) == []


def test_a_failing_command_keeps_a_kb_that_was_there(tmp_path):
    vault(tmp_path)
    assert cli(tmp_path, "sync").returncode == 0
    one_error_line(cli(tmp_path, "show", "no-such-note"))
    one_error_line(cli(tmp_path, "--notes", "missing", "search", "good"))
    assert (tmp_path / "kb" / "kb.sqlite").exists()
    assert sqlite3.connect(tmp_path / "kb" / "kb.sqlite").execute("SELECT count(*) FROM note").fetchone()[0] == 1


def test_a_first_use_committing_between_the_two_reads_of_an_inspection_is_not_seen_half(tmp_path, monkeypatch):
    """Opening a KB first reads its version and its tables. Another process's first use may commit
    the whole schema at any moment: both reads see the file before it or both after it, never the
    tables without the version (which said "not a d2lkb knowledge base" and failed the command)."""
    from d2lkb.store import db

    path = tmp_path / "kb.sqlite"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = WAL").fetchone()  # (a reader's snapshot then lets it commit)
    real = db._open_read_only
    committed: list[bool] = []

    class Reader:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            cursor = self.conn.execute(sql, *args)
            if sql.startswith("PRAGMA user_version") and not committed:  # the other first use commits now
                committed.append(True)
                other.execute("BEGIN IMMEDIATE")
                other.execute("CREATE TABLE card (id INTEGER PRIMARY KEY)")
                other.execute("PRAGMA user_version = 1")
                other.execute("COMMIT")
            return cursor

        def close(self):
            self.conn.close()

    monkeypatch.setattr(db, "_open_read_only", lambda p: Reader(real(p)))
    version, tables = db._inspect(path)
    assert (version, tables) == (0, [])  # the file as it was before that commit
    db._check_version(path, version, tables)
    assert db._inspect(path) == (1, ["card"])  # and after it
    other.close()
