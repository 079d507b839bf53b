"""The query language (d2lkb.query) compiled to SQL over `doc` and to FTS5 expressions.

Every user string reaches SQLite as a bound parameter; FTS5 terms are always quoted phrases, so no
query can be a syntax error in SQL or in FTS5. The filters on cards and checks are compiled by
store.searchfields; the ranking of the matches is store.searchrank's; store.search runs them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from d2lkb.query import CARD_KINDS, KINDS, And, Field, Node, Not, Or, QueryError, TagTerm, Text
from d2lkb.review.days import day_bounds
from d2lkb.store import searchfields
from d2lkb.textutil import kind_token, split_cjk, tag_token

FAILING = ("refuted", "failed", "error", "timeout")
_CARD_STATUS_SQL = {
    "new": "state = 0",
    "learning": "state = 1",
    "review": "state = 2",
    "relearning": "state = 3",
    "suspended": "suspended = 1",
    "buried": "buried_until IS NOT NULL AND buried_until > :now",
    "leech": "leech = 1",
}
_CARD_STATES = {"new": 0, "learning": 1, "review": 2, "relearning": 3}  # the `state = v` filters


@dataclass
class SearchContext:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    day_starts_at: int = 4


TEXT_COLUMNS = "{title body}"
ALL_KINDS = frozenset(KINDS)


def _fts_term(t: Text, columns: str | None = TEXT_COLUMNS) -> str:
    """The word or phrase as an FTS5 phrase, in `columns` (None: any column)."""
    body = split_cjk(t.text).replace('"', '""')
    return (f"{columns} : " if columns else "") + f'"{body}"' + (" *" if t.prefix else "")


def fts_expression(node: Node, columns: str | None = TEXT_COLUMNS) -> str | None:
    """The whole node as one FTS5 expression, if it only involves text, tags and kinds (its words and
    phrases in `columns`)."""
    if isinstance(node, Text):
        return _fts_term(node, columns)
    if isinstance(node, TagTerm):
        return f"meta : {tag_token(node.name)}"
    if isinstance(node, Field) and node.key == "kind":
        return f"meta : {kind_token(node.value)}"
    if isinstance(node, Or):
        parts = [fts_expression(i, columns) for i in node.items]
        return None if None in parts else "(" + " OR ".join(parts) + ")"
    if isinstance(node, And):
        pos = [fts_expression(i, columns) for i in node.items if not isinstance(i, Not)]
        neg = [fts_expression(i.item, columns) for i in node.items if isinstance(i, Not)]
        if not pos or None in pos or None in neg:
            return None
        expr = "(" + " AND ".join(pos) + ")"
        for n in neg:
            expr = f"({expr} NOT {n})"
        return expr
    return None


def _has_text(node: Node) -> bool:
    """Does the node rank by text (a positive word or phrase somewhere)?"""
    if isinstance(node, Text):
        return True
    if isinstance(node, And | Or):
        return any(_has_text(i) for i in node.items)
    return False


class _Compiler:
    def __init__(self, ctx: SearchContext, conn: sqlite3.Connection | None = None, probes: dict | None = None):
        self.ctx = ctx
        self.conn = conn  # probes how many cards or checks a filter matches (store.searchfields)
        self.negated = 0  # NOTs above the node being compiled
        self.nested = 0  # NOTs and ORs above it
        self.drivers: list[str] = []  # filters of the whole condition that match few rows (store.searchfields)
        self.ranked = False  # the condition filters the matches of words (a bounded number to test)
        self.total: int | None = None  # how many match, where the ranking learned it (RANK_ALL + 1: more)
        self.kinds = ALL_KINDS  # the kinds of document that can match (a filter on cards or checks narrows them)
        self.tested: tuple[bytes, int] | None = None  # documents whose match is known, and how many match
        self.probes = probes if probes is not None else {}  # counts of filters' rows (shared by a search and its count)
        self.span: tuple[int, int] | None = None  # the stretch of document ids that holds every match (path:)
        self.span_filled = False  # ...and its filter's documents fill about SPAN_FILLED of it, or more
        self.not_above = False  # compiling the field of a NOT that is a condition of the whole
        self.params: dict[str, object] = {"now": int(ctx.now.timestamp())}

    def bind(self, value) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def sql(self, node: Node) -> str:
        if isinstance(node, Text):
            return f"d.id IN (SELECT rowid FROM fts WHERE fts MATCH {self.bind(_fts_term(node))})"
        if isinstance(node, TagTerm):
            n = node.name
            return ("EXISTS (SELECT 1 FROM doctag dt WHERE dt.doc_id = d.id AND dt.tag_id IN (SELECT id FROM tag"
                    f" WHERE name = {self.bind(n)} OR (name > {self.bind(n + '/')} AND name < {self.bind(n + '0')})))")
        if isinstance(node, Not):
            card = None if self.nested or not isinstance(node.item, Field) else self.card_filter(node.item)
            if card is not None:  # a condition of the whole query: its cards may be few (`-status:new`)
                others = searchfields.other_cards(self, *card)
                if others is not None:
                    return others
            self.not_above = not self.nested and isinstance(node.item, Field)
            self.negated, self.nested = self.negated + 1, self.nested + 1
            try:
                return f"NOT ({self.sql(node.item)})"
            finally:
                self.negated, self.nested = self.negated - 1, self.nested - 1
                self.not_above = False
        if isinstance(node, And):
            return "(" + " AND ".join(self.sql(i) for i in node.items) + ")"
        if isinstance(node, Or):
            self.nested += 1
            try:
                return "(" + " OR ".join(self.sql(i) for i in node.items) + ")"
            finally:
                self.nested -= 1
        return self.field(node)

    def path_notes(self, value: str) -> list[int] | None:
        """The notes whose path `path:value` matches, where they are at most 1/PATH_NOTES of all."""
        assert self.conn is not None
        most = searchfields.probe(self, "SELECT count(*) FROM note")[0] // PATH_NOTES
        notes = searchfields.probe(self, f"SELECT id FROM note WHERE {_path_sql(self, value, 'path')} LIMIT {most + 1}")
        return notes if len(notes) <= most else None

    def path_span(self, value: str) -> None:
        """Narrow `span` to the stretch of ids of the documents of a path filter that is a condition of the
        whole query (a document's path is its note's). A note's documents are written together, and a
        folder's notes mostly in one sync: `path:folder-03 bias` walks 600 of `bias`'s 11,700 matches."""
        notes = self.path_notes(value)
        if notes is None:
            return
        ids = self.bind(json.dumps(notes))
        lo, hi = (searchfields.probe(self, f"SELECT {f}((SELECT {f}(id) FROM doc WHERE note_id = j.value))"
                                     f" FROM json_each({ids}) j")[0] for f in ("min", "max"))
        if lo is None:
            lo, hi = 1, 0  # no document
        # about how much of the stretch the notes' documents fill (documents per note from the largest id)
        per_note = searchfields.probe(self, "SELECT max(id) FROM doc")[0] / max(1, searchfields.probe(
            self, "SELECT count(*) FROM note")[0])
        filled = len(notes) * per_note >= (hi - lo + 1) * SPAN_FILLED
        if self.span is not None:
            lo, hi = max(lo, self.span[0]), min(hi, self.span[1])
            filled = filled and self.span_filled
        self.span, self.span_filled = (lo, hi), filled

    def on_fts(self, column: str = "fts.rowid") -> str:
        """` AND` the condition of `span` on `column` (empty without a span)."""
        return "" if self.span is None else f" AND {column} BETWEEN {self.span[0]} AND {self.span[1]}"

    def card_filter(self, node: Field) -> tuple[str, str, str | None] | None:
        """(condition on `card`, how to count its rows and the SELECT of the other cards' ids where an
        index reads them: searchfields.cards, searchfields.other_cards) of a filter on cards."""
        key, value = node.key, node.value
        if key == "kind" and value in CARD_KINDS:
            return f"kind = {self.bind(value)}", "dense", None  # no index
        if key == "status" and value in _CARD_STATUS_SQL:
            cond = f"retired_at IS NULL AND {_CARD_STATUS_SQL[value]}"
            if value == "suspended":
                cond += " AND suspended != 0"  # implied; the partial index ix_card_suspended's condition
            state = _CARD_STATES.get(value)
            # NOT (retired_at IS NULL AND state = v): the other states' ranges of ix_card_sched, the retired cards
            others = None if state is None else (
                f"SELECT id FROM card WHERE state < {state} UNION ALL SELECT id FROM card WHERE state > {state}"
                f" UNION ALL SELECT id FROM card WHERE retired_at IS NOT NULL AND +state = {state}")
            return cond, "probe", others
        if key == "due":
            now = self.ctx.now
            start, end = day_bounds(now, self.ctx.day_starts_at)
            cutoff = {"now": now, "today": end, "tomorrow": end + timedelta(days=1), "overdue": start,
                      "week": end + timedelta(days=6)}.get(value)
            if cutoff is None:
                cutoff = end + timedelta(days=int(value))
            # `state IN (...)`: each state's range of the queue's index (ix_card_sched), which holds the rest
            due = self.bind(int(cutoff.timestamp()))
            # the NOT: later cards (ranges of ix_card_sched), other states, retired cards, suspended cards
            others = (f"SELECT id FROM card WHERE state IN (0, 1, 2, 3) AND due >= {due} UNION ALL SELECT id FROM card"
                      " WHERE state < 0 OR state > 3 UNION ALL SELECT id FROM card WHERE retired_at IS NOT NULL"
                      " UNION ALL SELECT id FROM card WHERE suspended != 0")
            return f"state IN (0, 1, 2, 3) AND due < {due} AND retired_at IS NULL AND suspended = 0", "probe", others
        return None

    def field(self, node: Field) -> str:
        key, value = node.key, node.value
        card = self.card_filter(node)
        if card is not None:
            return searchfields.cards(self, *card)
        if key == "kind":
            return f"d.kind = {self.bind(value)}"
        if key == "path":
            if not self.nested and self.conn is not None:
                self.path_span(value)
            return _path_sql(self, value, "d.path")
        if key == "status":
            return searchfields.checks(self, value, FAILING)
        raise QueryError(f"unsupported field {key}:")


def _path_sql(comp: _Compiler, value: str, column: str) -> str:
    """`path:value` on `column`: a glob where the value has one of `*?[`, else a substring."""
    if any(c in value for c in "*?["):
        return f"{column} GLOB {comp.bind(value if '*' in value[:1] else '*' + value + '*')}"
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{column} LIKE {comp.bind('%' + escaped + '%')} ESCAPE '\\'"


def _narrowed(expr: str, kinds: frozenset[str]) -> str:
    """The FTS5 expression `expr` for documents of `kinds` alone (their kind tokens in `meta`): what a
    filter on cards or checks implies, so that FTS gives it fewer documents to test (`status:new
    gradient` tests 1,600 card documents, not 11,700). bm25 is not asked of it: a kind token would cost a
    count of its documents."""
    if not kinds or kinds >= ALL_KINDS:
        return expr
    if len(kinds) == 1:
        return f"({expr}) AND {fts_expression(Field('kind', next(iter(kinds))))}"
    for kind in sorted(ALL_KINDS - kinds):
        expr = f"({expr}) NOT {fts_expression(Field('kind', kind))}"
    return expr


def _split_driver(node: Node) -> tuple[str | None, Node | None]:
    """(FTS expression that can drive the query, the remaining condition)."""
    whole = fts_expression(node)
    if whole is not None:
        return whole, None
    if isinstance(node, And):
        driving = [i for i in node.items if not isinstance(i, Not) and fts_expression(i) is not None]
        rest = [i for i in node.items if not any(i is d for d in driving)]
        if driving:
            expr = " AND ".join(fts_expression(i) for i in driving)
            return expr, (rest[0] if len(rest) == 1 else And(tuple(rest))) if rest else None
    return None, node


def _match_sql(rest: str | None, select: str, match: str = ":match", on_fts: str = "") -> str:
    """The matches of the FTS expression `match` that satisfy `rest` (a condition on `doc d`); `on_fts`: a
    further condition on `fts.rowid` (` AND ...`), tested before the document is read."""
    if rest is None:
        return f"SELECT {select} FROM fts WHERE fts MATCH {match}{on_fts}"
    return f"SELECT {select} FROM fts JOIN doc d ON d.id = fts.rowid WHERE fts MATCH {match}{on_fts} AND {rest}"


PATH_NOTES = 8  # a path filter of at most 1/PATH_NOTES of the notes narrows the walks to its documents' ids
SPAN_FILLED = 0.5  # ...to their stretch of ids alone where they fill about this much of it, else to the ids


def _path_docs(comp: _Compiler, rest: Node | None) -> str | None:
    """The SELECT of the ids of the documents that `rest` matches where it is path filters alone, and they
    match few notes (a document's path is its note's): a count then tests each FTS match against them,
    without reading its `doc` row (0.3 us a match, where `bias` has 11,700)."""
    items = rest.items if isinstance(rest, And) else (rest,)
    if comp.conn is None or not all(isinstance(i, Field) and i.key == "path" for i in items):
        return None
    sets = [comp.path_notes(i.value) for i in items if isinstance(i, Field)]
    if any(notes is None for notes in sets):
        return None
    notes = sorted(set.intersection(*(set(n) for n in sets if n is not None)))
    return f"SELECT id FROM doc WHERE note_id IN (SELECT value FROM json_each({comp.bind(json.dumps(notes))}))"
