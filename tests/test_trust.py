"""Trust lives with the user: only folders in the user's own trust list run code, judged per note
file by its real path at run time. Real CLI (subprocess and CliRunner), real SQLite, real workers.

The autouse `user_config` fixture (conftest) gives every test an empty trust list of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from d2lkb.cli import app
from d2lkb.config import load_config
from d2lkb.store.kb import KnowledgeBase
from d2lkb.store.sync import MAX_NOTE_BYTES
from d2lkb.trust import load_trusted, trust_file
from tests.conftest import ROOT, write

runner = CliRunner()


def evil(marker: Path) -> str:
    """A note whose code tries to leave `marker` behind (python and sympy alike). Trusted, it
    runs (passed, verified) but in the sandbox, which lets it write nothing outside."""
    attempt = "exec(" + repr(f"import contextlib\nwith contextlib.suppress(OSError): open({str(marker)!r}, 'a').write('ran')") + ")\n"
    return (f"# Evil\n\n```python\n{attempt}print('hi')\n```\n\n"
            f"```output\nhi\n```\n\n```sympy\n{attempt}assert True\n```\n")


GOOD = "# Good\n\n```python\nprint(6 * 7)\n```\n\n```output\n42\n```\n\n```sympy\nassert 2 + 2 == 4\n```\n"


def cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `d2lkb` command in a fresh process."""
    environ = dict(os.environ if env is None else env, NO_COLOR="1")
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "d2lkb.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=environ, check=False, timeout=600)


def statuses(stdout: str) -> dict[tuple[str, int], tuple[str, str]]:
    return {(r["path"], r["line"]): (r["status"], r["detail"]) for r in json.loads(stdout)["results"]}


def check(tmp_path: Path, notes: Path, *args: str):
    return runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes), "check", "--json", *args])


def test_a_repo_shipped_config_trusting_everything_runs_nothing(tmp_path):
    """A cloned repository with kb/config.toml saying `trusted = ["/"]`: a plain `d2lkb check`
    in it reports its code untrusted, runs none of it, and says why in one line."""
    repo = tmp_path / "cloned"
    marker = tmp_path / "ran.txt"
    write(repo / "kb" / "config.toml", 'notes = "notes"\n\n[checks]\ntrusted = ["/"]\n')
    write(repo / "notes" / ".d2lkb.toml", "[cards]\nflashcard_tags = []\n")
    write(repo / "notes" / "evil.md", evil(marker))
    done = cli("check", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert [r["status"] for r in results] == ["untrusted", "untrusted"]
    assert not marker.exists()
    warning = [line for line in done.stderr.splitlines() if "[checks] trusted is ignored" in line]
    assert len(warning) == 1, done.stderr
    assert "d2lkb trust PATH" in warning[0] and "config.toml" in warning[0]
    # The user's own step is what trusts it; then the same code runs.
    assert cli("trust", "notes", cwd=repo).returncode == 0
    assert load_trusted() == [str((repo / "notes").resolve())]
    done = cli("check", "--json", cwd=repo)
    assert sorted(r["status"] for r in json.loads(done.stdout)["results"]) == ["passed", "verified"]
    assert not marker.exists()  # it ran, in the sandbox


def test_symlinks_out_of_a_trusted_folder_are_untrusted(tmp_path):
    """T/link.md -> /elsewhere/evil.md and T/sub -> /elsewhere/dir: the note's real file decides."""
    trusted, elsewhere = tmp_path / "T", tmp_path / "elsewhere"
    marker = tmp_path / "ran.txt"
    write(trusted / ".d2lkb.toml", "[cards]\nflashcard_tags = []\n")
    write(trusted / "good.md", GOOD)
    write(elsewhere / "evil.md", evil(marker))
    write(elsewhere / "dir" / "evil2.md", evil(marker))
    (trusted / "link.md").symlink_to(elsewhere / "evil.md")
    (trusted / "sub").symlink_to(elsewhere / "dir", target_is_directory=True)
    # Sync skips links out of the notes folder unless the KB's config says to follow them; follow
    # them here, so that the notes they lead to are in the KB and trust alone must stop their code.
    write(tmp_path / "kb" / "config.toml", "[sync]\nfollow_symlinks = true\n")
    assert runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(trusted), "trust",
                               str(trusted)]).exit_code == 0
    result = check(tmp_path, trusted)
    assert result.exit_code == 0, result.output
    got = statuses(result.stdout)
    assert {k: v[0] for k, v in got.items() if k[0] != "sub/evil2.md"} == {
        ("good.md", 3): "passed", ("good.md", 11): "verified",
        ("link.md", 3): "untrusted", ("link.md", 12): "untrusted"}
    assert str(elsewhere / "evil.md") in got[("link.md", 3)][1]
    # Whether sync follows a directory link out of the vault is its own setting; if it does, the
    # notes it finds there are untrusted all the same.
    if ("sub/evil2.md", 3) in got:
        assert got[("sub/evil2.md", 3)][0] == got[("sub/evil2.md", 12)][0] == "untrusted"
        assert str(elsewhere / "dir" / "evil2.md") in got[("sub/evil2.md", 12)][1]
    assert "not in a trusted folder" in got[("link.md", 3)][1]
    assert not marker.exists()


def test_a_link_inside_the_trusted_folder_is_trusted(tmp_path):
    """Resolving links is about where the file really is, not about links as such."""
    trusted = tmp_path / "T"
    write(trusted / ".d2lkb.toml", "[cards]\nflashcard_tags = []\n")
    write(trusted / "real" / "good.md", GOOD)
    (trusted / "alias.md").symlink_to(trusted / "real" / "good.md")
    # trusted through a link to the folder: the list keeps the real path
    (tmp_path / "T-link").symlink_to(trusted, target_is_directory=True)
    assert runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(trusted), "trust",
                               str(tmp_path / "T-link")]).exit_code == 0
    assert load_trusted() == [str(trusted.resolve())]
    got = statuses(check(tmp_path, trusted).stdout)
    assert {v[0] for v in got.values()} == {"passed", "verified"}
    assert {p for p, _ in got} == {"alias.md", "real/good.md"}


def test_a_kb_reused_across_notes_folders_runs_only_the_trusted_folders_code(tmp_path):
    """One KB, an untrusted folder U then a trusted folder T whose a.md sync cannot read again
    (too large: the KB keeps what it had, i.e. U's a.md). Only T's own code runs."""
    untrusted, trusted = tmp_path / "U", tmp_path / "T"
    marker = tmp_path / "ran.txt"
    for folder in (untrusted, trusted):
        write(folder / ".d2lkb.toml", "[cards]\nflashcard_tags = []\n")
    write(untrusted / "a.md", evil(marker))
    write(trusted / "b.md", GOOD)
    with open(trusted / "a.md", "wb") as fh:  # sync keeps the previous a.md (U's) and warns
        fh.write(b"# too large\n" + b"x" * MAX_NOTE_BYTES)
    first = check(tmp_path, untrusted)
    assert {v[0] for v in statuses(first.stdout).values()} == {"untrusted"}
    assert runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(trusted), "trust",
                               str(trusted)]).exit_code == 0
    result = check(tmp_path, trusted)
    assert result.exit_code == 0, result.output
    got = statuses(result.stdout)
    assert {k: v[0] for k, v in got.items()} == {
        ("a.md", 3): "untrusted", ("a.md", 12): "untrusted", ("b.md", 3): "passed", ("b.md", 11): "verified"}
    assert "not the file the KB read" in got[("a.md", 3)][1]
    assert not marker.exists()


def test_the_kb_alone_never_supplies_code(tmp_path, notes_dir, clock):
    """Without a sync in between (the API, the TUI), a KB over another folder's notes runs none of
    them; and code rows that are not what the trusted file says (a shipped or edited kb.sqlite)
    are refused even though the file's bytes match."""
    other = tmp_path / "other"
    marker = tmp_path / "ran.txt"
    write(other / ".d2lkb.toml", "[cards]\nflashcard_tags = []\n")
    write(other / "a.md", evil(marker))
    write(notes_dir / "a.md", "# A\n\n```python\nprint(1)\n```\n")
    with KnowledgeBase(load_config(tmp_path / "kb", other), clock=clock) as kb:
        kb.sync()
    with KnowledgeBase(load_config(tmp_path / "kb", notes_dir), clock=clock) as kb:
        kb.trust(notes_dir)
        report = kb.run_checks(jobs=1)  # no sync: the KB still holds other/a.md
        assert {r.status.value for r in report.results} == {"untrusted"}
        assert not marker.exists()
        kb.sync()
        good = kb.run_checks(jobs=1)
        assert [r.status.value for r in good.results] == ["passed"]
        # the file is unchanged and trusted; the KB's copy of its code is not what it says
        kb.conn.execute("UPDATE snippet SET code = ?", (f"open({str(marker)!r}, 'w').write('kb ran')",))
        forged = kb.run_checks(jobs=1, use_cache=False)
        assert [r.status.value for r in forged.results] == ["untrusted"]
        assert "is not the file's" in forged.results[0].detail
        assert not marker.exists()


def test_trust_list_remove_and_where_it_lives(tmp_path, notes_dir, user_config):
    """`d2lkb trust` writes the user's file (not the KB), `--list` shows it, `--remove` takes it out."""
    write(notes_dir / "n.md", GOOD)
    base = ["--kb", str(tmp_path / "kb"), "--notes", str(notes_dir)]
    listed = runner.invoke(app, [*base, "trust", "--list", "--json"])
    assert json.loads(listed.stdout) == {"file": str(user_config / "trust.toml"), "trusted": []}
    added = runner.invoke(app, [*base, "trust", str(notes_dir)])
    assert added.exit_code == 0 and "trusted " in added.stdout
    assert trust_file() == user_config / "trust.toml"
    assert str(notes_dir.resolve()) in (user_config / "trust.toml").read_text(encoding="utf-8")
    assert "already trusted" in runner.invoke(app, [*base, "trust", str(notes_dir)]).stdout
    assert json.loads(runner.invoke(app, [*base, "trust", "--list", "--json"]).stdout)["trusted"] == [
        str(notes_dir.resolve())]
    human = runner.invoke(app, [*base, "trust", "--list"]).stdout
    assert str(user_config / "trust.toml") in human and str(notes_dir.resolve()) in human
    assert {v[0] for v in statuses(check(tmp_path, notes_dir).stdout).values()} == {"passed", "verified"}
    removed = runner.invoke(app, [*base, "trust", "--remove", str(notes_dir)])
    assert removed.exit_code == 0 and "removed" in removed.stdout
    assert load_trusted() == []
    assert "was not trusted" in runner.invoke(app, [*base, "trust", "--remove", str(notes_dir)]).stdout
    after = statuses(check(tmp_path, notes_dir, "--no-cache").stdout)
    assert {v[0] for v in after.values()} == {"untrusted"}
    assert runner.invoke(app, [*base, "trust", str(tmp_path / "missing")]).exit_code == 1


def test_the_list_follows_xdg_config_home(tmp_path, notes_dir):
    """Without D2LKB_CONFIG_HOME the list is in the platform's user config folder (XDG on Linux)."""
    env = {k: v for k, v in os.environ.items() if k != "D2LKB_CONFIG_HOME"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    done = cli("--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "trust", str(notes_dir), env=env)
    assert done.returncode == 0, done.stderr
    assert load_trusted(tmp_path / "xdg" / "d2lkb" / "trust.toml") == [str(notes_dir.resolve())]


def test_the_bundled_notes_are_trusted_by_the_users_set_up_step_only(tmp_path):
    """No code trusts notes/ by itself; `d2lkb trust notes` (what `make setup` runs) does."""
    base = ["--kb", str(tmp_path / "kb"), "--notes", str(ROOT / "notes")]
    before = runner.invoke(app, [*base, "check", "--json", "kind:snippet"])
    results = json.loads(before.stdout)["results"]
    assert results and {r["status"] for r in results} == {"untrusted"}
    assert "$(BIN)/d2lkb trust notes" in (ROOT / "Makefile").read_text(encoding="utf-8")
    done = cli("--kb", str(tmp_path / "kb"), "trust", "notes", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert load_trusted() == [str((ROOT / "notes").resolve())]
    with KnowledgeBase(load_config(tmp_path / "kb", ROOT / "notes")) as kb:
        assert kb.is_trusted()


def test_the_old_kb_list_grants_nothing_and_says_so(tmp_path, notes_dir, make_kb):
    """A KB's `trusted` table (older d2lkb; a KB folder may ship with a repository) is refused
    with a warning naming the folders, until the user decides about each one."""
    marker = tmp_path / "ran.txt"
    write(notes_dir / "evil.md", evil(marker))
    kb = make_kb()
    kb.conn.execute("INSERT INTO trusted (path, added_at) VALUES (?, 0)", (str(notes_dir.resolve()),))
    kb.close()
    done = cli("--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "check", "--json")
    assert {r["status"] for r in json.loads(done.stdout)["results"]} == {"untrusted"}
    assert not marker.exists()
    warning = [line for line in done.stderr.splitlines() if "list of trusted folders" in line]
    assert len(warning) == 1 and str(notes_dir.resolve()) in warning[0] and "d2lkb trust PATH" in warning[0]
    assert cli("--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "trust", str(notes_dir)).returncode == 0
    done = cli("--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "sync")
    assert "trusted" not in done.stderr


def test_a_malformed_trust_list_runs_nothing_and_says_where(tmp_path, notes_dir, user_config):
    marker = tmp_path / "ran.txt"
    write(notes_dir / "evil.md", evil(marker))
    write(user_config / "trust.toml", f"trusted = [{str(notes_dir)!r}\n")  # unclosed
    got = statuses(check(tmp_path, notes_dir).stdout)
    assert {v[0] for v in got.values()} == {"untrusted"}
    assert all("cannot read the trust list" in d and "trust.toml" in d for _, d in got.values())
    assert not marker.exists()
    listed = runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "trust", "--list"])
    assert listed.exit_code == 1 and "trust.toml" in listed.output
    added = runner.invoke(app, ["--kb", str(tmp_path / "kb"), "--notes", str(notes_dir), "trust", str(notes_dir)])
    assert added.exit_code == 1  # the user's file is not overwritten
    assert (user_config / "trust.toml").read_text(encoding="utf-8").startswith("trusted = [")


def _trust_in_child(folder: str) -> None:
    from d2lkb.trust import add_trusted

    add_trusted(folder)


def test_concurrent_trusts_all_land(tmp_path):
    """Eight processes trusting eight folders at once: the locked read-modify-write keeps all."""
    import multiprocessing

    folders = [tmp_path / f"f{i}" for i in range(8)]
    for f in folders:
        f.mkdir()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_trust_in_child, args=(str(f),)) for f in folders]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(load_trusted()) == sorted(str(f.resolve()) for f in folders)


def test_a_trusted_folder_swapped_for_a_link_is_no_longer_trusted(tmp_path, notes_dir, clock):
    """The list keeps the real path it was given: if that folder is later replaced by a link to
    somewhere else, what the link leads to is not trusted."""
    marker = tmp_path / "ran.txt"
    write(notes_dir / "n.md", GOOD)
    with KnowledgeBase(load_config(tmp_path / "kb", notes_dir), clock=clock) as kb:
        kb.trust(notes_dir)
        kb.sync()
        assert {r.status.value for r in kb.run_checks(jobs=1).results} == {"passed", "verified"}
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / ".d2lkb.toml", "[cards]\nflashcard_tags = []\n")
    write(elsewhere / "n.md", evil(marker))
    notes_dir.rename(tmp_path / "old-notes")
    notes_dir.symlink_to(elsewhere, target_is_directory=True)
    with KnowledgeBase(load_config(tmp_path / "kb", notes_dir), clock=clock) as kb:
        kb.sync()
        assert {r.status.value for r in kb.run_checks(jobs=1).results} == {"untrusted"}
    assert not marker.exists()
