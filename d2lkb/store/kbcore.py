"""`KBCore`: the knowledge base without the review, study, check and import features.

It owns the SQLite connection and the config: sync, search, the note graph, trust, and the
maintenance commands (backup, export, retired cards). `KnowledgeBase` (`d2lkb.store.kb`) adds
the rest; a command that needs no more (`d2lkb search`, `show`, `tags`, ...) opens a `KBCore`
and loads none of it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self

from d2lkb.store.checkpoint import BACKSTOP_PAGES, Checkpointer
from d2lkb.store.db import KBError, connect, sync_lock
from d2lkb.store.search import Hit, SearchContext, matching_card_ids, search, search_counted
from d2lkb.store.tagquery import Resolved, resolve_tags
from d2lkb.store.vaultscan import SyncReport, scan

if TYPE_CHECKING:
    from d2lkb.config import Config
    from d2lkb.store import graph


def bundled_notes_dir() -> Path:
    """The notes that ship with d2lkb (trusted only once the user runs `d2lkb trust notes`, as
    `make setup` does)."""
    return (Path(__file__).resolve().parents[2] / "notes").resolve()


class KBCore:
    """The connection, config, sync, search, note graph, trust and maintenance of a KB."""

    def __init__(self, config: Config, *, clock: Callable[[], datetime] | None = None):
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.conn: sqlite3.Connection = connect(config.db_path)
        # A KB this process may not write to (file or folder read-only, read-only mount) opens read-only:
        # queries work, nothing syncs (see `sync`).
        self.read_only: bool = getattr(self.conn, "read_only", False)
        # sqlite3 connections may be shared across threads (check_same_thread=False) but not used
        # concurrently; the TUI's workers serialise on this lock.
        self.lock = threading.RLock()
        # WAL checkpoints run on a thread of their own, not inside an answer's commit (checkpoint.py).
        self.checkpointer: Checkpointer | None = None
        if not self.read_only and str(config.db_path) != ":memory:":
            self.checkpointer = Checkpointer(Path(config.db_path))
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
            self.conn.on_commit = self.checkpointer.committed

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("clock must return an aware datetime")
        return now

    # -- notes -> graph ----------------------------------------------------
    def sync(self, on_progress: Callable[[int, int], None] | None = None) -> SyncReport:
        """Sync the notes folder. Inside a transaction of this KB's (an import) it is part of
        it. Otherwise it runs on a connection of its own and without `self.lock`, so that reviews
        answered meanwhile (the TUI syncs in a worker thread) wait only for its short write
        transaction, never for its reading, parsing and matching; another process's sync goes
        first (`sync_lock`). When no note changed since the last sync, the walk of the notes
        folder is all it does (`d2lkb.store.sync`, which reads and writes notes, is not loaded)."""
        if self.read_only:
            raise KBError(f"{self.config.db_path}: read-only; cannot sync the notes into it")
        with self.lock:
            if self.conn.in_transaction or str(self.config.db_path) == ":memory:":
                return self._sync_on(self.conn, on_progress)
        with sync_lock(self.config.db_path):
            conn = connect(self.config.db_path)
            try:
                return self._sync_on(conn, on_progress)
            finally:
                conn.close()

    def _sync_on(self, conn: sqlite3.Connection, on_progress) -> SyncReport:
        started = time.perf_counter()
        options = self.config.parse  # reads the vault's .d2lkb.toml: once
        walked = scan(conn, self.config.notes_dir, options, follow_links=self.config.sync.follow_symlinks)
        report = walked.unchanged()
        if report is not None:
            report.seconds = time.perf_counter() - started
            return report
        from d2lkb.store.sync import sync

        report = sync(conn, self.config.notes_dir, now=self.now().timestamp(), on_progress=on_progress,
                      options=options, follow_links=self.config.sync.follow_symlinks, walked=walked)
        report.seconds = time.perf_counter() - started
        return report

    # -- queries -----------------------------------------------------------
    def search_context(self) -> SearchContext:
        return SearchContext(now=self.now(), day_starts_at=self.config.review.day_starts_at)

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        with self.lock:
            return search(self.conn, query, limit=limit, ctx=self.search_context())

    def search_counted(self, query: str, limit: int = 20) -> tuple[list[Hit], int]:
        """The hits, and how many documents match (up to search.COUNT_CAP + 1: "1,000+")."""
        with self.lock:
            return search_counted(self.conn, query, limit=limit, ctx=self.search_context())

    def card_ids(self, query: str | None) -> list[int]:
        with self.lock:
            return matching_card_ids(self.conn, query, self.search_context())

    def resolve_query(self, query: str | None) -> Resolved:
        """`query` with leaf tag names (`#mlp`) made full (`#dl/mlp`); `UnknownTag` for a tag nothing has."""
        with self.lock:
            return resolve_tags(self.conn, query)

    def tags(self) -> list[graph.TagCount]:
        from d2lkb.store import graph

        with self.lock:
            return graph.tag_tree(self.conn)

    def find_note(self, ref: str) -> list[tuple[int, str, str]]:
        from d2lkb.store import graph

        with self.lock:
            return graph.find_note(self.conn, ref)

    def note(self, note_id: int) -> graph.NoteView:
        from d2lkb.store import graph

        with self.lock:
            return graph.note_view(self.conn, note_id)

    def orphans(self) -> list[str]:
        from d2lkb.store import graph

        with self.lock:
            return graph.orphans(self.conn)

    # -- trust -------------------------------------------------------------
    # Trust lives in the user's own trust list (d2lkb.trust), never in the KB or the notes
    # folder: a cloned repository ships both. The KB's old `trusted` table and `[checks] trusted`
    # in kb/config.toml grant nothing; `trust_notices` says so.
    def trusted_dirs(self) -> list[Path]:
        """The user's trusted folders (real paths). A malformed trust list raises ValueError."""
        from d2lkb.trust import load_trusted

        return [Path(p) for p in load_trusted()]

    def trust(self, path: Path) -> Path:
        """Add a folder to the user's trust list (FileNotFoundError if it is not a folder)."""
        from d2lkb.trust import add_trusted

        resolved, _new = add_trusted(path)
        self._forget_old_trust(resolved)
        return Path(resolved)

    def untrust(self, path: Path) -> bool:
        """Take a folder (as written or its real path) off the user's trust list; was it there?"""
        from d2lkb.trust import remove_trusted

        removed = remove_trusted(path)
        written = os.path.expanduser(os.fspath(path))
        for p in {os.path.abspath(written), os.path.realpath(written)}:
            self._forget_old_trust(p)
        return removed is not None

    def is_trusted(self, notes_dir: Path | None = None) -> bool:
        """Is the notes folder (its real path) inside a folder of the user's trust list? Whether a
        note's code runs is decided per file at run time (`code_verdicts`)."""
        from d2lkb.trust import trusted_folder

        target = os.path.realpath((notes_dir or self.config.notes_dir).expanduser())
        try:
            return trusted_folder(target, [str(d) for d in self.trusted_dirs()]) is not None
        except ValueError:
            return False

    def code_verdicts(self, notes: dict[int, str]):
        """{note id: codetrust.NoteCode} for {note id: path}: may each note's code run, judged from
        its file now (real path inside a trusted folder, same bytes as at the last sync)."""
        from d2lkb.store.codetrust import note_verdicts
        from d2lkb.store.sync import MAX_NOTE_BYTES
        from d2lkb.trust import load_trusted

        if not notes:
            return {}
        problem = None
        folders: list[str] = []
        try:
            folders = load_trusted()
        except ValueError as exc:
            problem = str(exc)
        with self.lock:
            digests = dict(self.conn.execute(
                f"SELECT id, hash FROM note WHERE id IN ({','.join('?' * len(notes))})", list(notes)).fetchall())
        return note_verdicts(self.config.notes_dir, {nid: (path, digests.get(nid)) for nid, path in notes.items()},
                             folders, problem, MAX_NOTE_BYTES)

    def trust_notices(self) -> list[str]:
        """One line per place that used to grant trust and no longer does (old config, old KB list)."""
        out = []
        if self.config.ignored_trusted:
            out.append(f"{self.config.kb_dir / 'config.toml'}: [checks] trusted is ignored (a notes repository "
                       f"cannot trust itself): run `d2lkb trust PATH` for each folder you trust "
                       f"({', '.join(self.config.ignored_trusted)})")
        with self.lock:
            old = [r[0] for r in self.conn.execute("SELECT path FROM trusted ORDER BY path")]
        if old:
            out.append(f"{self.config.db_path}: its list of trusted folders (from an older d2lkb) is ignored: run "
                       f"`d2lkb trust PATH` for each you trust, `d2lkb trust --remove PATH` for the others "
                       f"({', '.join(old)})")
        return out

    def _forget_old_trust(self, resolved: str) -> None:
        """Drop a folder from the KB's old list once the user has decided about it."""
        with self.lock:
            if self.conn.execute("SELECT 1 FROM trusted WHERE path = ?", (resolved,)).fetchone():
                self.conn.execute("DELETE FROM trusted WHERE path = ?", (resolved,))

    # -- FSRS parameters ---------------------------------------------------
    def optimize(self, *, apply: bool = True):
        """Fit FSRS parameters to this KB's review log; keep them (if they fit better) unless `apply` is False."""
        import json

        from d2lkb.review.optimize import optimize, review_histories
        from d2lkb.store.reviews import PARAMETERS_META_KEY

        with self.lock:
            log = self.conn.execute("SELECT card_id, reviewed_at, rating FROM reviewlog").fetchall()
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (PARAMETERS_META_KEY,)).fetchone()
        current = json.loads(row[0]) if row else None
        result = optimize(review_histories(log, rollover_hour=self.config.review.day_starts_at,
                                           tz=getattr(self, "review_tz", None)), current)
        if apply and result.improved:
            with self.lock:
                self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                  (PARAMETERS_META_KEY, json.dumps(list(result.parameters))))
        return result

    def reset_parameters(self) -> bool:
        """Go back to FSRS's default parameters."""
        from d2lkb.store.reviews import PARAMETERS_META_KEY

        with self.lock:
            return self.conn.execute("DELETE FROM meta WHERE key = ?", (PARAMETERS_META_KEY,)).rowcount > 0

    # -- many cards at once ------------------------------------------------
    def set_suspended(self, query: str | None, suspended: bool) -> int:
        """Suspend (or unsuspend) every live card a query selects; returns how many changed."""
        from d2lkb.store.db import transaction

        ids = self.card_ids(query)
        with self.lock, transaction(self.conn):
            return sum(self.conn.execute("UPDATE card SET suspended = ? WHERE id = ? AND suspended != ?",
                                         (int(suspended), cid, int(suspended))).rowcount for cid in ids)

    # -- getting data out ----------------------------------------------------
    def backup(self, dest: Path | None = None) -> Path:
        """A consistent copy of the KB (default: kb/backups/kb-YYYYmmdd-HHMMSS.sqlite)."""
        from d2lkb.store.export import backup

        if dest is None:
            stamp = self.now().astimezone().strftime("%Y%m%d-%H%M%S")
            dest = self.config.kb_dir / "backups" / f"kb-{stamp}.sqlite"
        with self.lock:
            return backup(self.conn, Path(dest))

    def export(self, fmt: str, dest: Path, query: str | None = None) -> int:
        """Write the cards a query selects (all when None) as csv, json (with the review log) or apkg."""
        from d2lkb.store import export

        writers = {"csv": export.export_csv, "json": export.export_json, "apkg": export.export_apkg}
        if fmt not in writers:
            raise ValueError(f"unknown export format {fmt!r} (use {', '.join(writers)})")
        ids = self.card_ids(query) if query else None
        options = {} if fmt != "apkg" else {"now": self.now(), "rollover_hour": self.config.review.day_starts_at,
                                            "tz": getattr(self, "review_tz", None),
                                            "desired_retention": self.config.review.desired_retention}
        with self.lock:
            return writers[fmt](self.conn, Path(dest), ids, **options)

    # -- retired cards -----------------------------------------------------
    def retired_cards(self) -> list[dict]:
        with self.lock:
            return [{"id": cid, "kind": k, "path": p, "line": ln, "front": f, "retired_at": r, "reviews": n}
                    for cid, k, p, ln, f, r, n in self.conn.execute(
                        "SELECT id, kind, path, line, front, retired_at,"
                        " (SELECT count(*) FROM reviewlog WHERE card_id = card.id)"
                        " FROM card WHERE retired_at IS NOT NULL ORDER BY retired_at, id")]

    def purge_retired(self) -> int:
        """Delete retired cards and their history for good."""
        from d2lkb.store.db import transaction

        with self.lock, transaction(self.conn):
            ids = [r[0] for r in self.conn.execute("SELECT id FROM card WHERE retired_at IS NOT NULL")]
            self.conn.executemany("DELETE FROM reviewlog WHERE card_id = ?", [(i,) for i in ids])
            self.conn.executemany("DELETE FROM card WHERE id = ?", [(i,) for i in ids])
        return len(ids)
