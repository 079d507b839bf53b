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

import json
import re
import sqlite3
from typing import Protocol

from d2lkb.store.docmeta import CHECKED_KINDS

SPARSE = 2000  # at most this many matching rows: the filter drives the query

# Schema version 8 (store.db.MIGRATIONS). The flags are partial indexes: an answer that leaves a card's
# flag as it was (all but a few) writes none of their pages.
SEARCH_DDL = (
    "CREATE INDEX IF NOT EXISTS ix_card_leech ON card(id, retired_at, leech) WHERE leech = 1",
    "CREATE INDEX IF NOT EXISTS ix_card_suspended ON card(id, retired_at, suspended) WHERE suspended != 0",
    "CREATE INDEX IF NOT EXISTS ix_card_retired ON card(id) WHERE retired_at IS NOT NULL",
    # buried cards (today's and expired burials); an answer that buries siblings writes it too
    "CREATE INDEX IF NOT EXISTS ix_card_buried ON card(buried_until, id, retired_at) WHERE buried_until IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ix_doc_check ON doc(check_hash) WHERE check_hash IS NOT NULL",
    # the latest result of a check hash from the index alone, and the hashes with results of a status
    "CREATE INDEX IF NOT EXISTS ix_checkresult_latest ON checkresult(check_hash, checked_at, id, status)",
    "CREATE INDEX IF NOT EXISTS ix_checkresult_status ON checkresult(status, check_hash)",
)


UNCHECKED = 50  # at most this many check hashes without a result: they drive `status:unchecked`
# A query's words, tags and kinds are looked up in FTS (about 4-7 us each) for each document of a filter
# matching at most DRIVE of them; DRIVE_RANKED among the matches of words, where FTS would otherwise give
# every match to test (about 0.6 us each), not only the first `limit` that pass.
DRIVE = 1000
DRIVE_RANKED = 1000


class Compiler(Protocol):
    conn: sqlite3.Connection | None
    params: dict[str, object]
    negated: int  # how many NOTs are above the node being compiled
    nested: int  # how many NOTs and ORs
    drivers: list[str]  # sparse filters that every match satisfies
    ranked: bool  # the condition tests the matches of words
    kinds: frozenset[str]  # the kinds of document that can match (a filter on cards: card documents alone)
    probes: dict  # what `probe` read, kept for the statements of one search and its count
    not_above: bool  # the node being compiled is the field of a NOT that is a condition of the whole query

    def bind(self, value) -> str: ...


_PARAM = re.compile(r":(\w+)")


def _count(comp: Compiler, rows: str, cap: int) -> int:
    """How many rows the SELECT `rows` returns, counted up to `cap` + 1 (once per search and its count:
    both compile the same filters)."""
    return probe(comp, f"SELECT count(*) FROM ({rows} LIMIT {cap + 1})")[0]


def probe(comp: Compiler, sql: str) -> list:
    """The first column of the rows of `sql`, read once per search and its count (both compile the same
    filters to the same statements)."""
    assert comp.conn is not None
    key = (_PARAM.sub("?", sql), *(comp.params[name] for name in _PARAM.findall(sql)))  # (names differ)
    if key not in comp.probes:
        comp.probes[key] = [r[0] for r in comp.conn.execute(sql, comp.params)]
    return comp.probes[key]


def _driving(comp: Compiler, sql: str) -> str:
    if not comp.nested:
        comp.drivers.append(sql)
    return sql


def match_sql(comp: Compiler, rest: str | None, select: str) -> str | None:
    """The matches of `:match` (FTS) that satisfy `rest`, read from the documents of a filter of `rest` that
    matches at most DRIVE of them, each then looked up in FTS (a few microseconds each); None where
    there is no such filter (FTS finds the matches, and `rest` is tested on each: reading all of a
    tag's matches to find the few of a sparse filter costs about a microsecond per match)."""
    most = DRIVE_RANKED if comp.ranked else DRIVE
    if rest is None or comp.conn is None or not any(_count(comp, f"SELECT 1 FROM doc d WHERE {driver}", most) <= most
                                                    for driver in comp.drivers[:2]):
        return None
    return f"SELECT {select} FROM doc d CROSS JOIN fts ON fts.rowid = d.id WHERE fts MATCH :match AND {rest}"


def cards(comp: Compiler, cond: str, rows: str = "probe", others: str | None = None) -> str:
    """Documents whose card matches `cond` (SQL on `card`), as `d.card_id IN (SELECT id FROM card WHERE
    cond)` evaluates it. `rows`: "probe" (an index counts the cards) or "dense" where none would."""
    matching = f"SELECT id FROM card WHERE {cond}"
    if comp.conn is None:
        return f"d.card_id IN ({matching})"
    n = _count(comp, matching, SPARSE) if rows == "probe" else None
    if n == 0:
        return "0"  # `x IN (<nothing>)` is FALSE, NULL or not
    if not comp.nested or (n is not None and comp.not_above):
        # A condition of the whole query, or its NOT (where some card matches, the NOT of the form
        # below is NULL for the documents of no card, which the query then rejects).
        comp.kinds &= {"card"}
    if n is not None and n <= SPARSE:
        return _driving(comp, f"d.card_id IN ({matching})")
    own = f"EXISTS (SELECT 1 FROM card WHERE card.id = d.card_id AND {cond})"
    if not comp.negated:
        # NULL and FALSE both reject a document. `card_id IS NOT NULL` (the same rows) lets a count
        # read ix_doc_card_id from the first card document on, not through every other document's
        # NULL before it (10 ms for `status:new` at 100k cards; 0.4 ms so).
        return f"(d.card_id IS NOT NULL AND {own})"
    if comp.not_above and n:
        # the field of a NOT that is a condition of the whole query, where some card matches: the NOT of the
        # form below is TRUE for the documents of the other cards alone, and so is the NOT of this one
        return f"(d.card_id IS NULL OR {own})"
    # `NULL IN (...)` is NULL, or FALSE where no card matches
    return f"(CASE WHEN d.card_id IS NULL THEN (CASE WHEN EXISTS ({matching}) THEN NULL ELSE 0 END) ELSE {own} END)"


def checks(comp: Compiler, value: str, failing: tuple[str, ...]) -> str:
    """Documents whose check's latest result has the status `value` (`failing`: one of `failing`;
    `unchecked`: none)."""
    if not comp.nested:  # a condition of the whole query: only documents with a check hash match
        comp.kinds &= CHECKED_KINDS
    latest = ("(SELECT status FROM checkresult c WHERE c.check_hash = d.check_hash "
              "ORDER BY c.checked_at DESC, c.id DESC LIMIT 1)")
    if value == "unchecked":
        first = f"(d.check_hash IS NOT NULL AND {latest} IS NULL)"
        if comp.conn is None or comp.negated or comp.ranked:  # (the probe costs up to a test of each word match)
            return first
        # the hashes of documents without a result: a merge of two indexes in hash order (ix_doc_check and
        # ix_checkresult_latest), which stops after UNCHECKED + 1 of them
        hashes = [r[0] for r in comp.conn.execute(
            "SELECT check_hash FROM doc WHERE check_hash IS NOT NULL EXCEPT SELECT check_hash FROM checkresult"
            f" ORDER BY 1 LIMIT {UNCHECKED + 1}")]
        if not hashes:
            return "0"  # FALSE where the first form is FALSE: every document with a check hash has a result
        if len(hashes) <= UNCHECKED:
            return _driving(comp, f"(d.check_hash IN (SELECT value FROM json_each({comp.bind(json.dumps(hashes))}))"
                                  f" AND {first})")
        return first
    if value == "failing":
        test, statuses = f"{latest} IN {failing!r}", repr(failing)
    else:
        name = comp.bind(value)
        test, statuses = f"{latest} = {name}", f"({name})"
    if comp.conn is not None and not comp.negated:
        having = f"SELECT check_hash FROM checkresult WHERE status IN {statuses}"
        n = _count(comp, having, SPARSE)
        if n == 0:
            return "0"  # FALSE where the first form is FALSE or NULL: the same without a NOT above
        if n <= SPARSE:  # a document's latest result has the status: one of its results has
            return _driving(comp, f"(d.check_hash IS NOT NULL AND d.check_hash IN ({having}) AND {test})")
    return f"(d.check_hash IS NOT NULL AND {test})"


def other_cards(comp: Compiler, cond: str, rows: str, others: str | None) -> str | None:
    """NOT (`cards(cond)`) where that is a condition of the whole query (the documents it keeps), and
    `others` selects the ids of the cards that do not match `cond` (some more than once) from indexes:
    their documents, when there are at most SPARSE of them (in a KB of new cards, `-status:new` keeps
    no document), else None (the NOT of the filter). Where the cards matching `cond` are few, None as
    well: their NOT is cheap to test on each document. (A NOT that is the query's condition only needs
    the same TRUE rows: NULL and FALSE both reject a document.)"""
    if comp.conn is None or others is None or rows != "probe":
        return None
    if _count(comp, f"SELECT id FROM card WHERE {cond}", SPARSE) <= SPARSE:
        return None
    if _count(comp, others, SPARSE) > SPARSE:  # (counted in SQL: cheaper than reading SPARSE + 1 ids)
        return None
    ids = probe(comp, others)
    if not ids:
        return "0"  # every card matches: NOT is FALSE or NULL for every document
    comp.kinds &= {"card"}
    return _driving(comp, f"d.card_id IN (SELECT value FROM json_each({comp.bind(json.dumps(ids))}))")
