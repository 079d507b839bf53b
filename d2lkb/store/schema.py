"""SQLModel table definitions: the shape of the knowledge base.

This module is imported only when a database is created or migrated (SQLModel
and SQLAlchemy cost ~0.35 s to import, which the TUI start-up and a no-op sync
cannot afford). Day-to-day reads and writes go through `sqlite3` directly in the
other store modules, against exactly these tables.

Times are integer UNIX seconds (UTC). Card scheduling columns follow fsrs.Card;
`state` 0 means "new" (never reviewed), 1 learning, 2 review, 3 relearning.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 3


def _fk(target: str, ondelete: str = "CASCADE", nullable: bool = False):
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True),
    )


class Note(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(unique=True)  # relative to the notes root, POSIX
    title: str
    size: int
    mtime_ns: int
    hash: str
    front_matter: str = "{}"  # JSON
    synced_at: int


class Section(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    note_id: int = _fk("note.id")
    idx: int
    level: int
    title: str
    line: int
    end_line: int
    parent_idx: int | None = None


class Tag(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)  # lower-cased, nesting with '/'
    display: str  # first-seen spelling
    parent_id: int | None = _fk("tag.id", ondelete="SET NULL", nullable=True)


class Link(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    note_id: int = _fk("note.id")
    target: str  # as written
    target_key: str = Field(index=True)  # normalised for resolution
    alias: str | None = None
    line: int
    target_note_id: int | None = _fk("note.id", ondelete="SET NULL", nullable=True)


class Card(SQLModel, table=True):
    __table_args__ = (Index("ix_card_due", "retired_at", "suspended", "due"),)
    id: int | None = Field(default=None, primary_key=True)
    note_id: int | None = _fk("note.id", ondelete="SET NULL", nullable=True)  # NULL when retired
    path: str  # last seen location, kept when retired
    line: int
    kind: str
    front: str
    back: str
    prompt: str
    context: str
    reverse: int = 0
    sibling_key: str = ""
    formula_idx: int | None = None
    snippet_idx: int | None = None
    created_at: int
    retired_at: int | None = None
    # scheduling (fsrs.Card) and app state
    state: int = 0
    step: int | None = None
    stability: float | None = None
    difficulty: float | None = None
    due: int = Field(default=0)
    last_review: int | None = None
    reps: int = 0
    lapses: int = 0
    suspended: int = 0
    buried_until: int | None = None
    leech: int = 0


class Formula(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    note_id: int = _fk("note.id")
    idx: int
    latex: str
    display: int
    line: int
    name: str | None = None
    known_failure: str | None = None
    check_hash: str = Field(index=True)
    block: int | None = None  # display formulas: rows of one `aligned` block share it (schema v3)
    section: int | None = None  # index of the note's section it is in (schema v3)


class Snippet(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    note_id: int = _fk("note.id")
    idx: int
    language: str
    code: str
    expected: str | None = None
    line: int
    expected_line: int | None = None
    info: str = ""
    known_failure: str | None = None
    check_hash: str = Field(index=True)  # hash of the code chain up to this snippet


class CheckResult(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "check_hash", "device", "torch_version"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str  # formula | snippet
    check_hash: str = Field(index=True)
    device: str = ""
    torch_version: str = ""
    status: str
    detail: str = ""
    output: str = ""
    seconds: float = 0.0
    checked_at: int


class ReviewLog(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    card_id: int = _fk("card.id")
    rating: int  # 1 again, 2 hard, 3 good, 4 easy
    reviewed_at: int = Field(index=True)
    duration_ms: int = 0
    state_before: int
    state_after: int
    step_before: int | None = None
    step_after: int | None = None
    stability_before: float | None = None
    stability_after: float | None = None
    difficulty_before: float | None = None
    difficulty_after: float | None = None
    due_before: int
    due_after: int
    last_review_before: int | None = None
    reps_before: int = 0
    lapses_before: int = 0
    leech_before: int = 0
    suspended_before: int = 0
    # The rest of the card after the answer, and what the answer did besides (for undo).
    last_review_after: int | None = None
    reps_after: int = 0
    lapses_after: int = 0
    leech_after: int = 0
    suspended_after: int = 0
    buried_until_before: int | None = None
    buried_siblings: str = "[]"  # JSON [[card_id, previous buried_until], ...] buried by this answer
    leech_tagged: int = 0  # 1 when this answer added the `leech` tag to the card


class ImportLog(SQLModel, table=True):
    """A card's schedule taken over from another tool (OSR comment, Anki package): an event of the
    card's history next to its reviews, never a review itself (schema version 2)."""

    id: int | None = Field(default=None, primary_key=True)
    card_id: int = _fk("card.id")
    source: str  # osr | apkg
    source_ref: str = Field(index=True)  # where it came from, e.g. `deck.md:12 #1` or `anki:GUID:ORD`
    detail: str = "{}"  # JSON: the source's own values (SM-2 interval/ease, Anki due/ivl, ...)
    imported_at: int
    state_before: int
    stability_before: float | None = None
    difficulty_before: float | None = None
    due_before: int
    last_review_before: int | None = None
    state_after: int
    stability_after: float | None = None
    difficulty_after: float | None = None
    due_after: int
    last_review_after: int | None = None


class Doc(SQLModel, table=True):
    """One searchable thing; its id is the rowid of the FTS5 table `fts`."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # note | section | card | formula | snippet
    note_id: int | None = _fk("note.id")
    card_id: int | None = _fk("card.id", nullable=True)
    path: str
    line: int
    title: str
    check_hash: str | None = None


class DocTag(SQLModel, table=True):
    tag_id: int = Field(sa_column=Column(Integer, ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True))
    doc_id: int = Field(sa_column=Column(Integer, ForeignKey("doc.id", ondelete="CASCADE"), primary_key=True))


class NoteTag(SQLModel, table=True):
    """Every tag that occurs anywhere in a note (for counts and related notes)."""

    note_id: int = Field(sa_column=Column(Integer, ForeignKey("note.id", ondelete="CASCADE"), primary_key=True))
    tag_id: int = Field(sa_column=Column(Integer, ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True))


class CardTag(SQLModel, table=True):
    card_id: int = Field(sa_column=Column(Integer, ForeignKey("card.id", ondelete="CASCADE"), primary_key=True))
    tag_id: int = Field(sa_column=Column(Integer, ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True))


class Trusted(SQLModel, table=True):
    path: str = Field(primary_key=True)  # absolute, resolved
    added_at: int


class Meta(SQLModel, table=True):
    key: str = Field(primary_key=True)
    value: str


# Version 4 (store.decks.DECKS_DDL, applied after these) adds `card.tagset`, covering indexes for
# the review queue and the deck tree, and replaces some of the indexes below.

# The title and meta columns of `fts` again, in a table of their own, so that finding the matches
# with a word in their title (the ranking's candidates, store.searchrank) walks the title words' short
# doclists instead of every match's positions in `fts`. Every write of `fts` writes it too
# (store.sync, store.docmeta); the same tokenizer, with positions (phrases match in titles exactly
# as in `fts`), without column sizes (it is never ranked). Version 7 (store.db) builds it from
# `fts` in a knowledge base made before.
FTS_TITLE_DDL = ("CREATE VIRTUAL TABLE IF NOT EXISTS fts_title USING fts5(title, meta,"
                 " tokenize='unicode61 remove_diacritics 2', columnsize=0)")

# Raw SQL the ORM cannot express: full-text indexes and the reverse tag lookup.
EXTRA_DDL = (
    # Word index (unicode61; CJK text is indexed one character per token, see store.text).
    # `meta` holds one token per kind and per tag (ancestors included) of the document, so tag and
    # kind filters are intersections of FTS5 doclists (see store.searchsql and textutil.tag_token).
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(title, body, meta, tokenize='unicode61 remove_diacritics 2')",
    FTS_TITLE_DDL,
    "CREATE INDEX IF NOT EXISTS ix_doctag_doc ON doctag(doc_id)",
    "CREATE INDEX IF NOT EXISTS ix_cardtag_tag ON cardtag(tag_id)",
    "CREATE INDEX IF NOT EXISTS ix_notetag_tag ON notetag(tag_id)",
    "CREATE INDEX IF NOT EXISTS ix_card_sibling ON card(sibling_key)",
    # The review queue: learning/review cards by due time, new cards in order (review.queue).
    "CREATE INDEX IF NOT EXISTS ix_card_queue ON card(state, due)",
    # Today's answers by kind (daily limits) without touching the log rows themselves.
    "CREATE INDEX IF NOT EXISTS ix_reviewlog_day ON reviewlog(reviewed_at, state_before)",
)


def _with_sql_defaults(column):
    """A column whose Python default (`reps: int = 0`) is also its SQL DEFAULT.

    The store writes with plain sqlite3, not the ORM, so an INSERT that leaves a
    column out must get the same default the model declares.
    """
    from sqlalchemy import DefaultClause, text

    default = column.default
    if column.server_default is None and default is not None and getattr(default, "is_scalar", False):
        value = default.arg
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            column.server_default = DefaultClause(text(repr(value)))
        elif isinstance(value, str):
            column.server_default = DefaultClause(value)
    return column


def schema_ddl() -> list[str]:
    """Every CREATE statement of the schema, in dependency order."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = sqlite.dialect()
    out: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            _with_sql_defaults(column)
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        out.extend(str(CreateIndex(index).compile(dialect=dialect)).strip()
                   for index in sorted(table.indexes, key=lambda i: i.name or ""))
    return [*out, *EXTRA_DDL]


def create_tables(connection, *tables: type[SQLModel]) -> None:
    """CREATE TABLE IF NOT EXISTS (with indexes) for `tables`: a migration adding tables to an older KB."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = sqlite.dialect()
    for model in tables:
        table = model.__table__  # type: ignore[attr-defined]
        for column in table.columns:
            _with_sql_defaults(column)
        connection.execute(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)).strip())
        for index in table.indexes:
            connection.execute(str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)).strip())


def create_schema(connection) -> None:
    """Create every table on a fresh sqlite3 connection (inside the caller's transaction).

    The DDL is compiled by SQLAlchemy but executed on `connection` itself: an
    SQLAlchemy engine over the same connection would COMMIT the caller's
    transaction halfway through (and then the caller's own COMMIT fails).
    """
    for ddl in schema_ddl():
        connection.execute(ddl)
