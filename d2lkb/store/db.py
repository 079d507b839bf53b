"""Opening the knowledge base: one SQLite file, WAL, foreign keys, migrations.

Schema versions are keyed on `PRAGMA user_version`. Version 0 is an empty file;
each entry of MIGRATIONS moves the schema one version up, inside a transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_v1, _v2_import_log, _v3_formula_blocks,
                                                          _v4_decks_and_covering_indexes]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the KB at `path`.

    The connection is in autocommit mode (`isolation_level=None`); use `transaction()`
    for atomic work.
    """
    path = Path(path)
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a committed write survives a process crash
        # Reads go through the OS page cache without a copy; the pages a session reads stay (32 MiB).
        conn.execute("PRAGMA mmap_size = 1073741824")
        conn.execute("PRAGMA cache_size = -32768")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise KBError(f"{path}: not a d2lkb knowledge base ({exc})") from exc
    if version > SCHEMA_VERSION:
        conn.close()
        raise KBError(f"{path}: schema version {version} is newer than this d2lkb ({SCHEMA_VERSION}); upgrade d2lkb")
    if version < SCHEMA_VERSION:
        with transaction(conn):
            for migrate in MIGRATIONS[version:]:
                migrate(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return conn


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
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
