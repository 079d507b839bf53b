"""`KnowledgeBase`: the one object the CLI and the TUI talk to.

It owns the SQLite connection and the config, and exposes the same operations to
both interfaces, so the TUI never opens a database session of its own.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from d2lkb.config import Config
from d2lkb.store import graph
from d2lkb.store.cards import CardsMixin
from d2lkb.store.checks import ChecksMixin
from d2lkb.store.db import connect
from d2lkb.store.deckstats import DeckStatsMixin
from d2lkb.store.imports.mixin import ImportMixin
from d2lkb.store.reviews import ReviewMixin
from d2lkb.store.search import Hit, SearchContext, matching_card_ids, search
from d2lkb.store.study import StudyMixin
from d2lkb.store.sync import SyncReport, sync
from d2lkb.store.tagquery import Resolved, resolve_tags


def bundled_notes_dir() -> Path:
    """The notes that ship with d2lkb (always trusted)."""
    return (Path(__file__).resolve().parents[2] / "notes").resolve()


class KnowledgeBase(ImportMixin, StudyMixin, CardsMixin, DeckStatsMixin, ReviewMixin, ChecksMixin):
    def __init__(self, config: Config, *, clock: Callable[[], datetime] | None = None):
        self.config = config
        self.clock = clock or (lambda: datetime.now(UTC))
        self.conn: sqlite3.Connection = connect(config.db_path)
        # sqlite3 connections may be shared across threads (check_same_thread=False) but not used
        # concurrently; the TUI's workers serialise on this lock.
        self.lock = threading.RLock()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> KnowledgeBase:
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
        with self.lock:
            return sync(self.conn, self.config.notes_dir, now=self.now().timestamp(), on_progress=on_progress,
                        options=self.config.parse)

    # -- queries -----------------------------------------------------------
    def search_context(self) -> SearchContext:
        return SearchContext(now=self.now(), day_starts_at=self.config.review.day_starts_at)

    def search(self, query: str, limit: int = 20) -> list[Hit]:
        with self.lock:
            return search(self.conn, query, limit=limit, ctx=self.search_context())

    def card_ids(self, query: str | None) -> list[int]:
        with self.lock:
            return matching_card_ids(self.conn, query, self.search_context())

    def resolve_query(self, query: str | None) -> Resolved:
        """`query` with leaf tag names (`#mlp`) made full (`#dl/mlp`); `UnknownTag` for a tag nothing has."""
        with self.lock:
            return resolve_tags(self.conn, query)

    def tags(self) -> list[graph.TagCount]:
        with self.lock:
            return graph.tag_tree(self.conn)

    def find_note(self, ref: str) -> list[tuple[int, str, str]]:
        with self.lock:
            return graph.find_note(self.conn, ref)

    def note(self, note_id: int) -> graph.NoteView:
        with self.lock:
            return graph.note_view(self.conn, note_id)

    def orphans(self) -> list[str]:
        with self.lock:
            return graph.orphans(self.conn)

    # -- trust -------------------------------------------------------------
    def trusted_dirs(self) -> list[Path]:
        rows = [Path(r[0]) for r in self.conn.execute("SELECT path FROM trusted ORDER BY path")]
        extra = [Path(p).expanduser().resolve() for p in self.config.checks.trusted]
        return [bundled_notes_dir(), *extra, *rows]

    def trust(self, path: Path) -> Path:
        resolved = Path(path).expanduser().resolve()
        if not resolved.is_dir():
            raise FileNotFoundError(f"not a folder: {path}")
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO trusted (path, added_at) VALUES (?, ?)",
                              (str(resolved), int(self.now().timestamp())))
        return resolved

    def untrust(self, path: Path) -> bool:
        resolved = str(Path(path).expanduser().resolve())
        with self.lock:
            return self.conn.execute("DELETE FROM trusted WHERE path = ?", (resolved,)).rowcount > 0

    def is_trusted(self, notes_dir: Path | None = None) -> bool:
        """May code from the notes folder run? Only the bundled notes and trusted folders."""
        target = (notes_dir or self.config.notes_dir).expanduser().resolve()
        return any(target == d or d in target.parents for d in self.trusted_dirs())

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
