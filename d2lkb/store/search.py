"""Search: a query (d2lkb.query) run over the knowledge base, its hits with snippets and tags, and how
many documents match.

store.searchsql compiles the query (every user string a bound parameter, every FTS5 term a quoted
phrase: no query can be a syntax error in SQL or in FTS5), store.searchfields its filters on cards and
checks, store.searchrank ranks the matches.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import NamedTuple

from d2lkb.query import And, Node, Not, Or, QueryError, Text, parse_query
from d2lkb.store import searchfields, searchrank
from d2lkb.store.searchrank import ranked_ids
from d2lkb.store.searchsql import (
    SearchContext,
    _Compiler,
    _has_text,
    _match_sql,
    _narrowed,
    _path_docs,
    _split_driver,
    fts_expression,
)
from d2lkb.textutil import join_cjk, kind_token

HIGHLIGHT = ("\x02", "\x03")


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str
    path: str
    line: int
    title: str
    tags: tuple[str, ...]
    snippet: str  # highlighted terms wrapped in HIGHLIGHT markers
    doc_id: int = 0
    note_id: int | None = None
    card_id: int | None = None

    def to_dict(self, marker: tuple[str, str] = ("**", "**")) -> dict:
        return {"kind": self.kind, "path": self.path, "line": self.line, "title": self.title,
                "tags": list(self.tags),
                "snippet": self.snippet.replace(HIGHLIGHT[0], marker[0]).replace(HIGHLIGHT[1], marker[1])}


COUNT_CAP = 1000


class _Found(NamedTuple):
    ids: list[int]  # the best `limit` documents
    highlight: str | None  # the FTS expression to highlight in snippets
    total: int | None  # how many match (up to COUNT_CAP + 1) where the search learned it on the way
    comp: _Compiler  # what the search's statements learned that a count can use (probes, tested documents)


def _ids(conn: sqlite3.Connection, node: Node, ctx: SearchContext, limit: int) -> _Found:
    comp = _Compiler(ctx, conn)
    driver, rest = _split_driver(node)
    comp.params["limit"] = max(1, int(limit))
    if driver is not None:
        comp.params["match"] = driver
        if _has_text(node):
            comp.ranked = True
            ids, expr = ranked_ids(conn, node, driver, comp, rest, max(1, int(limit)))
            total = comp.total
            if total is not None and total > searchrank.RANK_ALL:  # more than RANK_ALL
                total = COUNT_CAP + 1 if searchrank.RANK_ALL >= COUNT_CAP else None
            return _Found(ids, expr, None if total is None else min(total, COUNT_CAP + 1), comp)
        rest_sql = None if rest is None else comp.sql(rest)
        driven = searchfields.match_sql(comp, rest_sql, "d.id")
        if driven is not None:  # the documents of a filter with few (searchfields.DRIVE): every match, and their number
            ids = sorted(r[0] for r in conn.execute(driven, comp.params))
            return _Found(ids[:limit], driver, min(len(ids), COUNT_CAP + 1), comp)
        sql = _match_sql(rest_sql, "fts.rowid", on_fts=comp.on_fts()) + " ORDER BY 1 LIMIT :limit"
    else:
        cond = comp.sql(node)
        sql = f"SELECT d.id FROM doc d WHERE {cond}{comp.on_fts('d.id')} ORDER BY d.id LIMIT :limit"
    return _Found([r[0] for r in conn.execute(sql, comp.params)], driver, None, comp)


def _count(conn: sqlite3.Connection, node: Node, cap: int, ctx: SearchContext, found: _Found | None = None) -> int:
    """How many documents match, counted up to `cap` + 1; `found`: the search's own findings (its probes,
    and the documents whose match its title candidates settled)."""
    comp = _Compiler(ctx, conn, None if found is None else found.comp.probes)
    driver, rest = _split_driver(node)
    known = 0
    if driver is not None:
        comp.params["match"] = driver
        comp.ranked = True  # a count tests matches until `cap` pass: every match, for a sparse filter
        rest_sql = None if rest is None else comp.sql(rest)
        inner = searchfields.match_sql(comp, rest_sql, "1")
        if inner is None:
            # FTS gives the documents of the kinds that filters on cards or checks allow
            comp.params["match"] = _narrowed(driver, comp.kinds)
            on_fts = comp.on_fts()
            tested = None if found is None else found.comp.tested
            if tested is not None:  # the search's title candidates: known, not tested again
                known = tested[1]
                comp.params["tested"] = tested[0]
                on_fts += " AND substr(:tested, fts.rowid + 1, 1) != x'01'"
            # the documents of a path filter, unless the stretch of ids the walk covers is mostly theirs
            docs = None if comp.span_filled else _path_docs(comp, rest)
            if docs is not None:
                inner = _match_sql(None, "1", on_fts=f"{on_fts} AND +fts.rowid IN ({docs})")
            else:
                inner = _match_sql(rest_sql, "1", on_fts=on_fts)
    else:
        cond = comp.sql(node)
        inner = f"SELECT 1 FROM doc d WHERE {cond}{comp.on_fts('d.id')}"
    if known > cap:
        return cap + 1
    comp.params["cap"] = max(0, int(cap) - known)
    try:
        return known + conn.execute(f"SELECT count(*) FROM ({inner} LIMIT :cap + 1)", comp.params).fetchone()[0]
    except sqlite3.OperationalError as exc:
        raise QueryError(f"search failed: {exc}") from exc


def count_matches(conn: sqlite3.Connection, query: str | Node, *, cap: int = COUNT_CAP,
                  ctx: SearchContext | None = None) -> int:
    """How many documents match, counted up to `cap` + 1 (more than `cap`: "cap+")."""
    node = parse_query(query) if isinstance(query, str) else query
    return _count(conn, node, max(0, int(cap)), ctx or SearchContext())


def search(conn: sqlite3.Connection, query: str | Node, *, limit: int = 20,
           ctx: SearchContext | None = None) -> list[Hit]:
    """Run a query; hits best first. Raises QueryError for a bad query."""
    return search_counted(conn, query, limit=limit, ctx=ctx, count=False)[0]


def search_counted(conn: sqlite3.Connection, query: str | Node, *, limit: int = 20, ctx: SearchContext | None = None,
                   count: bool = True) -> tuple[list[Hit], int]:
    """The hits of `search`, and how many documents match as `count_matches` counts them (up to
    COUNT_CAP + 1): the number of hits when fewer than `limit`, what the ranking learned on the way
    where it did, else a count (`count`; otherwise the number of hits)."""
    node = parse_query(query) if isinstance(query, str) else query
    ctx = ctx or SearchContext()
    try:
        found = _ids(conn, node, ctx, limit)
        ids, driver = found.ids, found.highlight
        if not ids:
            return [], 0
        marks = ",".join("?" * len(ids))
        docs = {r[0]: r for r in conn.execute(
            f"SELECT id, kind, path, line, title, note_id, card_id FROM doc WHERE id IN ({marks})", ids)}
        snippets = _snippets(conn, ids, driver if _has_text(node) else None, per_row=not _has_prefix(node))
        tags = _doc_tags(conn, ids)
    except sqlite3.OperationalError as exc:  # should not happen: terms are always quoted
        raise QueryError(f"search failed: {exc}") from exc
    hits = []
    for did in ids:
        _, kind, path, line, title, nid, cid = docs[did]
        hits.append(Hit(kind, path, line, join_cjk(title), tags.get(did, ()), snippets.get(did, ""), did, nid, cid))
    if len(hits) < limit or not count:
        return hits, len(hits)
    if found.total is not None:
        return hits, found.total
    return hits, _count(conn, node, COUNT_CAP, ctx, found)


def matching_card_ids(conn: sqlite3.Connection, query: str | Node | None, ctx: SearchContext | None = None) -> list[int]:
    """Ids of live cards matching a query (all live cards when query is None/empty)."""
    if query is None or (isinstance(query, str) and not query.strip()):
        return [r[0] for r in conn.execute("SELECT id FROM card WHERE retired_at IS NULL")]
    node = parse_query(query) if isinstance(query, str) else query
    expr = fts_expression(node)
    if expr is not None:
        sql = "SELECT d.card_id FROM fts JOIN doc d ON d.id = fts.rowid WHERE fts MATCH ? AND d.kind = 'card'"
        return [r[0] for r in conn.execute(sql, (f"({expr}) AND meta : {kind_token('card')}",))]
    comp = _Compiler(ctx or SearchContext())
    sql = f"SELECT DISTINCT d.card_id FROM doc d WHERE d.kind = 'card' AND {comp.sql(node)}"
    return [r[0] for r in conn.execute(sql, comp.params)]


def _has_prefix(node: Node) -> bool:
    if isinstance(node, Text):
        return node.prefix
    if isinstance(node, Not):
        return _has_prefix(node.item)
    if isinstance(node, And | Or):
        return any(_has_prefix(i) for i in node.items)
    return False


def _snippets(conn, ids: list[int], driver: str | None, *, per_row: bool = True) -> dict[int, str]:
    """Highlighted snippets of the documents `ids` for the FTS expression `driver`.

    `rowid IN (...)` evaluates the expression once per id, each a seek in the index (cheap once sync has
    merged the index, see store.sync); `+rowid IN (...)` walks every match once instead, the cheaper
    way for a prefix term (`grad*`), whose doclist FTS5 assembles anew at each evaluation."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    out: dict[int, str] = {}
    if driver is not None:
        for rowid, snip in conn.execute(
            f"SELECT rowid, snippet(fts, 1, ?, ?, '…', 16) FROM fts WHERE fts MATCH ?"
            f" AND {'' if per_row else '+'}rowid IN ({marks})",
            (*HIGHLIGHT, driver, *ids),
        ):
            out[rowid] = join_cjk(" ".join(snip.split()))
    missing = [i for i in ids if not out.get(i)]
    if missing:
        for rowid, body in conn.execute(
            f"SELECT rowid, substr(body, 1, 400) FROM fts WHERE rowid IN ({','.join('?' * len(missing))})", missing
        ):
            text = join_cjk(" ".join(body.split()))
            out[rowid] = text[:160] + ("…" if len(text) > 160 else "")
    return out


def _doc_tags(conn, ids: list[int]) -> dict[int, tuple[str, ...]]:
    if not ids:
        return {}
    out: dict[int, list[str]] = {}
    for did, display in conn.execute(
        f"SELECT doc_id, tag.display FROM doctag JOIN tag ON tag.id = doctag.tag_id WHERE doc_id IN ({','.join('?' * len(ids))})"
        " ORDER BY tag.name", ids
    ):
        out.setdefault(did, []).append(display)
    return {k: tuple(v) for k, v in out.items()}
