"""Search filters on cards and check results (`status:`, `due:`, a card `kind:`), each compiled to the
form that suits how many rows it matches.

A filter on cards was `d.card_id IN (SELECT id FROM card WHERE ...)`, which SQLite builds in full
before testing a document: 100k ids for `status:new`, a scan of the wide `card` table for
`status:leech`. A filter on checks read the latest result of every document with a check hash. Now a
probe counts the matching rows up to SPARSE + 1 on an index (cheap either way), and:

- sparse (at most SPARSE rows): the filter drives, from an index of the card or check side
  (`ix_card_sched`, the partial indexes below, `ix_checkresult_status`) to the documents
  (`ix_doc_card_id`, `ix_doc_check`), and the few documents are sorted;
- dense: each document is tested alone (a primary-key or index lookup), in the order in which the
  query reads them (document ids, or the FTS candidates): the first `limit` hits come soon.

Both forms give every document the same value, NULL included, as the filter's first form (a NOT
above a filter turns FALSE into TRUE but leaves NULL), so results do not change. A compiler
without a connection writes the first forms (store.search.matching_card_ids, whose order is the
plan's).
"""

from __future__ import annotations

import sqlite3
from typing import Protocol

SPARSE = 2000  # at most this many matching rows: the filter drives the query

# Schema version 8 (store.db.MIGRATIONS). The flags are partial indexes: an answer that leaves a card's
# flag as it was (all but a few) writes none of their pages.
SEARCH_DDL = (
    "CREATE INDEX IF NOT EXISTS ix_card_leech ON card(id, retired_at, leech) WHERE leech = 1",
    "CREATE INDEX IF NOT EXISTS ix_card_suspended ON card(id, retired_at, suspended) WHERE suspended = 1",
    "CREATE INDEX IF NOT EXISTS ix_doc_check ON doc(check_hash) WHERE check_hash IS NOT NULL",
    # the latest result of a check hash from the index alone, and the hashes with results of a status
    "CREATE INDEX IF NOT EXISTS ix_checkresult_latest ON checkresult(check_hash, checked_at, id, status)",
    "CREATE INDEX IF NOT EXISTS ix_checkresult_status ON checkresult(status, check_hash)",
)


class Compiler(Protocol):
    conn: sqlite3.Connection | None
    params: dict[str, object]
    negated: int  # how many NOTs are above the node being compiled

    def bind(self, value) -> str: ...


def _sparse(comp: Compiler, rows: str) -> bool:
    """Does the SELECT `rows` return at most SPARSE rows (read up to one more)?"""
    assert comp.conn is not None
    sql = f"SELECT count(*) FROM ({rows} LIMIT {SPARSE + 1})"
    return comp.conn.execute(sql, comp.params).fetchone()[0] <= SPARSE


def cards(comp: Compiler, cond: str, *, probe: bool = True) -> str:
    """Documents whose card matches `cond` (SQL on `card`), as `d.card_id IN (SELECT id FROM card WHERE
    cond)` evaluates it. `probe`: `cond` can be counted on an index (else it is taken as dense)."""
    matching = f"SELECT id FROM card WHERE {cond}"
    if comp.conn is None or probe and _sparse(comp, matching):
        return f"d.card_id IN ({matching})"
    own = f"EXISTS (SELECT 1 FROM card WHERE card.id = d.card_id AND {cond})"
    if not comp.negated:
        return own  # NULL and FALSE both reject a document
    # `NULL IN (...)` is NULL, or FALSE where no card matches
    return f"(CASE WHEN d.card_id IS NULL THEN (CASE WHEN EXISTS ({matching}) THEN NULL ELSE 0 END) ELSE {own} END)"


def checks(comp: Compiler, value: str, failing: tuple[str, ...]) -> str:
    """Documents whose check's latest result has the status `value` (`failing`: one of `failing`;
    `unchecked`: none)."""
    latest = ("(SELECT status FROM checkresult c WHERE c.check_hash = d.check_hash "
              "ORDER BY c.checked_at DESC, c.id DESC LIMIT 1)")
    if value == "unchecked":
        return f"(d.check_hash IS NOT NULL AND {latest} IS NULL)"
    if value == "failing":
        test, statuses = f"{latest} IN {failing!r}", repr(failing)
    else:
        name = comp.bind(value)
        test, statuses = f"{latest} = {name}", f"({name})"
    if comp.conn is not None and not comp.negated:
        having = f"SELECT check_hash FROM checkresult WHERE status IN {statuses}"
        if _sparse(comp, having):  # a document's latest result has the status: one of its results has
            return f"(d.check_hash IS NOT NULL AND d.check_hash IN ({having}) AND {test})"
    return f"(d.check_hash IS NOT NULL AND {test})"
