"""Opening the knowledge base: one SQLite file, WAL, foreign keys, migrations.

Schema versions are keyed on `PRAGMA user_version`. Version 0 is an empty file;
each entry of MIGRATIONS moves the schema one version up, inside a transaction.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from d2lkb.locks import file_lock

T = TypeVar("T")


class KBError(Exception):
    """A problem with the knowledge base itself (unreadable, newer schema, ...)."""


def _create_v1(conn: sqlite3.Connection) -> None:
    from d2lkb.store.schema import create_schema  # SQLModel: only on creation

    create_schema(conn)


def _v2_import_log(conn: sqlite3.Connection) -> None:
    """Version 2: `importlog`, schedules taken over from OSR or Anki (a v1 KB gains the table)."""
    from d2lkb.store.schema import ImportLog, create_tables

    create_tables(conn, ImportLog)


def _v3_formula_blocks(conn: sqlite3.Connection) -> None:
    """The display block and section of each formula row: a row's check sees the rows before it and the
    definitions of its section."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(formula)")}
    for column in ("block", "section"):
        if column not in columns:
            conn.execute(f"ALTER TABLE formula ADD COLUMN {column} INTEGER")


def _v4_decks_and_covering_indexes(conn: sqlite3.Connection) -> None:
    """Version 4: `card.tagset`, the deck totals and covering indexes (store.decks.DECKS_DDL)."""
    from d2lkb.store.decks import migrate_decks

    migrate_decks(conn)


def _v5_fewer_indexes_per_answer(conn: sqlite3.Connection) -> None:
    """Version 5: two indexes every answer wrote go. `ix_reviewlog_day` (reviewed_at, state_before,
    rating) serves the lookups of the review log's index on `reviewed_at` alone; the queue's index
    `ix_card_sched` (state, due, ...) serves those of `ix_card_due` (retired_at, suspended, due),
    whose entries an answer moved across the whole index (queries ask `state IN (...)`)."""
    conn.execute("DROP INDEX IF EXISTS ix_reviewlog_reviewed_at")
    conn.execute("DROP INDEX IF EXISTS ix_card_due")


def _v6_siblings_within_a_note(conn: sqlite3.Connection) -> None:
    """Version 6: sibling keys are scoped to their note (store.sync.note_sibling_key). Before, the same
    paragraph or formula block in two notes made one sibling group, and answering one of its cards
    buried the others in every note. Cards without a note (retired) get theirs when they come back."""
    conn.execute("UPDATE card SET sibling_key = sibling_key || '/' || note_id"
                 " WHERE sibling_key != '' AND note_id IS NOT NULL")


def _v7_title_index(conn: sqlite3.Connection) -> None:
    """Version 7: `fts_title` (store.schema.FTS_TITLE_DDL), filled from `fts` and merged into one
    segment. Built anew where it exists (a new KB, made with it; a KB whose version was set back)."""
    from d2lkb.store.schema import FTS_TITLE_DDL

    conn.execute("DROP TABLE IF EXISTS fts_title")
    conn.execute(FTS_TITLE_DDL)
    conn.execute("INSERT INTO fts_title (rowid, title, meta) SELECT rowid, title, meta FROM fts")
    conn.execute("INSERT INTO fts_title (fts_title) VALUES ('optimize')")


def _v8_search_filter_indexes(conn: sqlite3.Connection) -> None:
    """Version 8: indexes for the search filters on cards and checks (store.searchfields.SEARCH_DDL):
    the leech, suspended and buried cards (partial), documents by check hash, check results by hash and
    time, and by status."""
    from d2lkb.store.searchfields import SEARCH_DDL

    for ddl in SEARCH_DDL:
        conn.execute(ddl)


def _v9_partial_card_indexes(conn: sqlite3.Connection) -> None:
    """Version 9: the two card indexes read only for new cards or sibling groups hold only those
    (store.decks.PARTIAL_DDL). A new card's first answer moved its entry across both (its state is in
    their keys): about three of its eleven WAL pages."""
    from d2lkb.store.decks import PARTIAL_DDL

    for ddl in PARTIAL_DDL:
        conn.execute(ddl)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_v1, _v2_import_log, _v3_formula_blocks,
                                                          _v4_decks_and_covering_indexes, _v5_fewer_indexes_per_answer,
                                                          _v6_siblings_within_a_note, _v7_title_index,
                                                          _v8_search_filter_indexes, _v9_partial_card_indexes]
SCHEMA_VERSION = len(MIGRATIONS)


class KBConnection(sqlite3.Connection):
    """A KB connection that knows whether it may write (`read_only`)."""

    read_only = False
    path: Path | None = None
    on_commit: Callable[[], None] | None = None  # called after each `transaction()` commits


BUSY_TIMEOUT_S = 10.0  # SQLite's own wait for another connection's lock, per statement


def _pragmas(conn: sqlite3.Connection) -> None:
    """Per-connection settings (nothing here writes to the file)."""
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a committed write survives a process crash
    # Reads go through the OS page cache without a copy; the pages a session reads stay (32 MiB).
    conn.execute("PRAGMA mmap_size = 1073741824")
    conn.execute("PRAGMA cache_size = -32768")


def _uri(path: Path, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"file:{quote(str(path.absolute()))}?{query}"


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _open_read_only(path: Path) -> KBConnection:
    """`path` without a single write to it.

    `mode=ro` (SQLite's locking, so a writer elsewhere is seen consistently) where the file is ours
    to write anyway or its WAL index files exist already; on a truly read-only file without them,
    `immutable=1`, because `mode=ro` would create them read-only next to it, and a later writer could
    not use them."""
    wal, shm = path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")
    if _writable(path) or (wal.exists() and shm.exists()):
        params = {"mode": "ro"}
    elif wal.exists() and wal.stat().st_size > 0:
        raise KBError(f"{path}: read-only, and its last changes are still in {wal.name} without the index SQLite "
                      "needs to read them; open it once with write access")
    else:
        params = {"immutable": "1"}
    conn = sqlite3.connect(_uri(path, **params), uri=True, isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_S, factory=KBConnection)
    conn.execute("PRAGMA query_only = ON")
    return conn


def _inspect(path: Path) -> tuple[int, list[str]]:
    """`user_version` and table names of an existing file, read without writing to it, in one read
    transaction: as two, another process's first use could commit its new schema between them, and
    the file looked like tables without a version (not ours)."""
    conn = _open_read_only(path)
    try:
        conn.execute("BEGIN")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        conn.execute("COMMIT")
    finally:
        conn.close()
    return version, tables


def _check_version(path: Path, version: int, tables: list[str]) -> None:
    if version > SCHEMA_VERSION:
        raise KBError(f"{path}: written by a newer d2lkb (schema version {version}; this one knows "
                      f"{SCHEMA_VERSION}); upgrade d2lkb (the file was not changed)")
    if version == 0 and tables:
        names = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise KBError(f"{path}: an SQLite database but not a d2lkb knowledge base (tables: {names}); "
                      "point --kb or D2LKB_KB at another folder")


def _make_folder(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where a folder should be
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        raise KBError(f"cannot create the knowledge-base folder {folder}: {blocker} is a file; "
                      "point --kb or D2LKB_KB at another folder") from exc
    except OSError as exc:
        raise KBError(f"cannot create the knowledge-base folder {folder}: {exc.strerror or exc}; "
                      "point --kb or D2LKB_KB at another folder") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise KBError(f"cannot create {path}: the folder {folder} is not writable; "
                      "point --kb or D2LKB_KB at another folder")


def _retry(step: Callable[[], T]) -> T:
    """Run `step`, again while another connection holds the lock it needs, up to `WRITE_WAIT_S` in
    all: on a first use by several processes at once, the one creating the KB holds its lock for as
    long as its commit takes, which on a loaded machine can exceed one busy timeout."""
    deadline = time.monotonic() + WRITE_WAIT_S
    attempt = 0
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(min(0.5, 0.05 + 0.01 * attempt))
            attempt += 1


def connect(path: Path | str) -> KBConnection:
    """Open (creating and migrating if needed) the KB at `path`.

    Nothing is written before the file is known to be ours and not newer than this d2lkb. A file
    (or folder) this process may not write to opens read-only (`conn.read_only`), unmigrated.
    Several processes opening a new KB at once create it once: migrations run under `BEGIN
    IMMEDIATE` and re-read the version there. `KBError` says what is wrong in one line.

    The connection is in autocommit mode (`isolation_level=None`); use `transaction()`
    for atomic work.
    """
    path = Path(path)
    if str(path) == ":memory:":
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, factory=KBConnection)
        _pragmas(conn)
        _migrate(conn)
        return conn
    if path.is_dir():
        raise KBError(f"{path}: a folder, not a knowledge-base file; point --kb or D2LKB_KB at another folder")
    try:
        if path.exists():
            version, tables = _retry(lambda: _inspect(path))
            _check_version(path, version, tables)
            if not _writable(path):
                if version < SCHEMA_VERSION:
                    raise KBError(f"{path}: read-only, and it needs an upgrade to schema version {SCHEMA_VERSION} "
                                  f"(it has {version}); open it once with write access")
                conn = _open_read_only(path)
                _pragmas(conn)
                conn.read_only, conn.path = True, path
                return conn
        else:
            _make_folder(path)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S,
                               factory=KBConnection)
        conn.path = path
        _pragmas(conn)
        try:
            _migrate(conn)
            _retry(lambda: _wal(conn))
        except BaseException:
            conn.close()
            raise
    except sqlite3.DatabaseError as exc:
        raise KBError(describe(exc, path)) from exc
    return conn


def _wal(conn: sqlite3.Connection) -> None:
    """WAL mode, and the connection in it: from its first read on, it holds the shared lock that tells
    other processes the KB is in use (the CLI's removal of a new KB a failed command made looks)."""
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()


def _migrate(conn: sqlite3.Connection) -> None:
    if _retry(lambda: conn.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION:
        return

    def step() -> None:
        with transaction(conn):  # BEGIN IMMEDIATE: one process migrates, the others wait and see it done
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            _check_version(getattr(conn, "path", None) or Path("kb.sqlite"), version, tables)
            if version < SCHEMA_VERSION:
                for migrate in MIGRATIONS[version:]:
                    migrate(conn)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    _retry(step)


def describe(exc: BaseException, path: Path | str) -> str:
    """One line for a failure of the KB file: what happened, to which file, what to do."""
    text = str(exc)
    low = text.lower()
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or "disk is full" in low:
        where = getattr(exc, "filename", None) or path
        return (f"{where}: the disk is full (or the file size limit was reached); free some space and run the "
                "command again (the knowledge base keeps its last complete state)")
    if "readonly" in low or "read-only" in low:
        return (f"{path}: read-only, and this command needs to write to it (search, show, stats, tags and "
                "export work on a read-only knowledge base)")
    if "not a database" in low:
        return (f"{path}: not an SQLite database (damaged, or another kind of file); restore a copy from "
                f"{Path(path).parent / 'backups'} or point --kb or D2LKB_KB at another folder")
    if "could not decode" in low:
        return (f"{path}: damaged: a text value is not valid UTF-8 ({text}); it was changed outside d2lkb: "
                f"restore a copy from {Path(path).parent / 'backups'}")
    if "malformed" in low:
        return (f"{path}: damaged ({text}); restore a copy from {Path(path).parent / 'backups'} or recover it "
                f"with `sqlite3 {path} .recover`")
    if "locked" in low or "busy" in low:
        return f"{path}: busy (another d2lkb is writing to it); try again when it has finished"
    if "disk i/o error" in low or "unable to open" in low:
        return (f"{path}: cannot be read or written ({text}); check the free space (and file size limit), the "
                "disk and the file's permissions")
    return f"{path}: {text}"


@contextmanager
def sync_lock(db_path: Path | str):
    """One sync at a time per KB, across processes (an advisory `flock` on `kb.sqlite.lock`).

    A sync reads what the KB holds, parses outside any SQLite transaction, then writes; two at
    once (several commands run on a new KB) would both add the same notes. Readers and answers
    never take this lock. Released by the OS if the process dies. Where the lock file cannot be
    made (a read-only folder), the sync goes on without it."""
    with ExitStack() as stack:
        with suppress(OSError):  # the lock file cannot be made: go on without it
            stack.enter_context(file_lock(f"{db_path}.lock"))
        yield


@contextmanager
def transaction(conn: sqlite3.Connection):
    """BEGIN IMMEDIATE ... COMMIT; any exception (Ctrl-C included) rolls back.

    Inside an open transaction it is a SAVEPOINT instead, so that work made of several
    transactional steps (an import: sync, then schedules) can be one transaction as a whole.
    """
    if conn.in_transaction:
        conn.execute("SAVEPOINT nested")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO nested")
            conn.execute("RELEASE nested")
            raise
        else:
            conn.execute("RELEASE nested")
        return
    _begin(conn)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
        hook = getattr(conn, "on_commit", None)
        if hook is not None:
            hook()


WRITE_WAIT_S = 300  # how long a write (an answer) waits for another's write transaction in all


def _begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another connection's write transaction (a big sync's write
    phase) past one `busy_timeout`, so that an answer is never refused because a sync runs."""
    _retry(lambda: conn.execute("BEGIN IMMEDIATE"))
