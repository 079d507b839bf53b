"""Search: the query language (d2lkb.query) compiled to parameterised SQL over FTS5.

Every user string reaches SQLite as a bound parameter; FTS5 terms are always
quoted phrases, so no query can be a syntax error in SQL or in FTS5.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from d2lkb.query import CARD_KINDS, KINDS, And, Field, Node, Not, Or, QueryError, TagTerm, Text, parse_query
from d2lkb.review.days import day_bounds
from d2lkb.store import searchfields
from d2lkb.textutil import join_cjk, kind_token, split_cjk, tag_token

HIGHLIGHT = ("\x02", "\x03")
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


@dataclass
class SearchContext:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    day_starts_at: int = 4


TEXT_COLUMNS = "{title body}"
ALL_KINDS = frozenset(KINDS)
RANK = "bm25(fts, 4.0, 1.0, 0.0)"  # title counts 4x body; the meta column never ranks


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


# Ranking cost: FTS5's bm25() reads every ranked row's sizes and positions, and neither
# `ORDER BY rank` nor LIMIT avoids scoring every match. Searches therefore rank a bounded
# candidate set: all the matches when there are at most RANK_ALL, otherwise the candidates that
# `_ranked_ids` describes.
RANK_ALL = 1000
TITLE_CANDIDATES = 2000
FIRST_CANDIDATES = 250  # matches in index order ranked beside fewer title hits than the limit
RANK_FEW_TITLES = 5000  # ...unless the query's words match at most this many: all are ranked then
COUNT_CAP = 1000


def _positive_texts(node: Node) -> list[Text]:
    """The words and phrases that rank (not under a NOT), in query order."""
    if isinstance(node, Text):
        return [node]
    if isinstance(node, And | Or):
        return [t for i in node.items for t in _positive_texts(i)]
    return []


def _needs_text(node: Node) -> bool:
    """Does every document the node matches contain one of its positive words or phrases?"""
    if isinstance(node, Text):
        return True
    if isinstance(node, And):
        return any(_needs_text(i) for i in node.items if not isinstance(i, Not))
    if isinstance(node, Or):
        return all(_needs_text(i) for i in node.items)
    return False


def _driving_node(node: Node) -> Node:
    """The part of the node that `_split_driver` turns into the FTS expression."""
    if fts_expression(node) is None and isinstance(node, And):
        return And(tuple(i for i in node.items if not isinstance(i, Not) and fts_expression(i) is not None))
    return node


def _column_terms(texts: list[Text], columns: str | None) -> str:
    return " OR ".join(_fts_term(t, columns) for t in texts)


_KIND_TOKENS = tuple(kind_token(k) for k in KINDS + CARD_KINDS)
_TAG_TOKEN = re.compile(r"t(?:[0-9a-f]{2})+")


def _meta_like(text: Text) -> bool:
    """Could the word or phrase match in the `meta` column (every token of it a kind or tag token)?

    Tokens are taken as ASCII letters and digits after folding (coarser than FTS5's unicode61, so
    that the answer errs towards yes)."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.text.lower()) if not unicodedata.combining(c))
    tokens = re.split(r"[^0-9a-z]+", folded)
    tokens = [t for t in tokens if t] or [""]
    last = tokens[-1]
    if text.prefix and not (any(k.startswith(last) for k in _KIND_TOKENS) or re.fullmatch(r"t[0-9a-f]*", last)):
        return False
    return all(t in _KIND_TOKENS or _TAG_TOKEN.fullmatch(t) for t in tokens[:-1 if text.prefix else None])


def _text_columns(texts: list[Text]) -> str | None:
    """The columns to write `texts` (an expression's words and phrases) in: none (any column) when none
    of them can match in `meta`. The expression then matches the same rows with the same bm25 scores
    (meta weighs 0), and FTS5 reads a row's positions only for the rows it scores, not for every row to
    test its column."""
    return TEXT_COLUMNS if any(_meta_like(t) for t in texts) else None


def _scoring_terms(texts: list[Text]) -> str:
    """The words and phrases for bm25, without the `{title body}` filter where that is allowed."""
    return _column_terms(texts, _text_columns(texts))


def _match_sql(rest: str | None, select: str, match: str = ":match", on_fts: str = "") -> str:
    """The matches of the FTS expression `match` that satisfy `rest` (a condition on `doc d`); `on_fts`: a
    further condition on `fts.rowid` (` AND ...`), tested before the document is read."""
    if rest is None:
        return f"SELECT {select} FROM fts WHERE fts MATCH {match}{on_fts}"
    return f"SELECT {select} FROM fts JOIN doc d ON d.id = fts.rowid WHERE fts MATCH {match}{on_fts} AND {rest}"


def _words_only(node: Node) -> bool:
    """Is the node a word or phrase, or an OR of them (so every title hit of one of its words matches it)?"""
    return isinstance(node, Text) or isinstance(node, Or) and all(_words_only(i) for i in node.items)


def _doc_kinds(node: Node) -> bool:
    """Does the node test only the kind of document (`kind:section`, `-kind:note`), a column of `doc`?"""
    if isinstance(node, Field):
        return node.key == "kind" and node.value not in CARD_KINDS
    if isinstance(node, Not):
        return _doc_kinds(node.item)
    if isinstance(node, And | Or):
        return all(_doc_kinds(i) for i in node.items)
    return False


def _meta_only(node: Node) -> bool:
    """Does the node's FTS expression read only the `meta` column (tags and kinds, no word)?"""
    if isinstance(node, TagTerm):
        return True
    if isinstance(node, Field):
        return node.key == "kind"
    if isinstance(node, Not):
        return _meta_only(node.item)
    if isinstance(node, And | Or):
        return all(_meta_only(i) for i in node.items)
    return False


def _title_hits(conn: sqlite3.Connection, scoring: Node, texts: list[Text], comp: _Compiler,
                rest_sql: str | None, cap: int) -> list[int]:
    """Matches with one of the query's words or phrases in their title, among the first `cap`
    documents (in index order) with one in their title and the query's tags and kinds (`cap // 4`
    when a further word must be tested).

    `fts_title`, whose doclists hold the titles alone (and the tags and kinds, which it holds too),
    finds those documents; what the titles imply is left out (the words of `(a OR b) #tag`). The rest
    of the query (a further word or a NOT of a word, a test of the body as well; kinds of document
    and path:, status: or due:, tests of the `doc` row) is applied to them alone: a walk of `fts`
    over their stretch of ids, so that no common word makes it long."""
    titles, kinds, meta, other = _title_parts(scoring, texts)
    tests = [comp.sql(i) for i in kinds] + ([] if rest_sql is None else [rest_sql])
    # A further word (a test of the body as well) is tested by a walk of `fts` over the hits' stretch of
    # ids (below). For two common words (`x and`) that stretch is long: a quarter as many hits then.
    titled = _expression([titles], meta)
    params = comp.params | {"titled": titled, "cap": max(1, cap // 4) if other else cap}
    span = comp.on_fts("fts_title.rowid")
    if not tests:
        hits = [r[0] for r in conn.execute(f"SELECT rowid FROM fts_title WHERE fts_title MATCH :titled{span} LIMIT :cap",
                                           params)]
    else:  # the tests on the same walk, as a column: the first `cap` are read whatever they say
        rows = conn.execute(f"SELECT fts_title.rowid, {' AND '.join(f'({t})' for t in tests)} FROM fts_title"
                            f" JOIN doc d ON d.id = fts_title.rowid WHERE fts_title MATCH :titled{span} LIMIT :cap",
                            params).fetchall()
        hits = [rowid for rowid, passed in rows if passed]
        if rows and not other:  # each document read matches the query exactly when it passed: a count need
            # not test them again (`_count`)
            flags = bytearray(rows[-1][0] + 1)
            for rowid, _ in rows:
                flags[rowid] = 1
            comp.tested = (bytes(flags), len(hits))
    if not hits or not other:
        return hits
    flags = bytearray(max(hits) + 1)
    for rowid in hits:
        flags[rowid] = 1
    # The hits have a query word in their title: the walk needs the further words alone, and without
    # the `{title body}` filter (FTS5 reads every row's positions to test a column) where no word of
    # the query could match in `meta`.
    expr = _expression([f"({_scoring_terms(texts)})"], other, _text_columns([t for i in other for t in _all_texts(i)]))
    params = {"titled": expr, "flags": bytes(flags), "lo": hits[0], "hi": hits[-1]}
    sql = ("SELECT rowid FROM fts WHERE fts MATCH :titled AND rowid BETWEEN :lo AND :hi"
           " AND substr(:flags, rowid + 1, 1) = x'01' ORDER BY rowid")
    return [r[0] for r in conn.execute(sql, params)]


def _words_tree(node: Node) -> bool:
    """Is the node words and phrases alone, with AND, OR and NOT?"""
    if isinstance(node, Text):
        return True
    if isinstance(node, Not):
        return _words_tree(node.item)
    if isinstance(node, And | Or):
        return all(_words_tree(i) for i in node.items)
    return False


def _all_texts(node: Node) -> list[Text]:
    """Every word or phrase of the node, negated ones too."""
    if isinstance(node, Text):
        return [node]
    if isinstance(node, Not):
        return _all_texts(node.item)
    if isinstance(node, And | Or):
        return [t for i in node.items for t in _all_texts(i)]
    return []


def _title_parts(scoring: Node, texts: list[Text]) -> tuple[str, list[Node], list[Node], list[Node]]:
    """The title words' expression, and the query's kinds of document, tag and kind terms (read in
    `fts_title`) and further words (tests of `fts`), without what the title words imply."""
    titles = f"({_column_terms(texts, '{title}')})"
    items = scoring.items if isinstance(scoring, And) else (scoring,)
    kinds = [i for i in items if _doc_kinds(i)]
    items = tuple(i for i in items if not _doc_kinds(i))
    words = [i for i in items if _words_only(i)]
    if len(words) == 1 and set(_positive_texts(words[0])) == set(texts):
        items = tuple(i for i in items if i is not words[0])
    return titles, kinds, [i for i in items if _meta_only(i)], [i for i in items if not _meta_only(i)]


def _expression(first: list[str], items: list[Node], columns: str | None = TEXT_COLUMNS) -> str:
    """`first` AND the positive items, then NOT each negated one (an FTS5 expression; words in `columns`)."""
    expr = " AND ".join(first + [f"({fts_expression(i, columns)})" for i in items if not isinstance(i, Not)])
    for neg in (fts_expression(i.item, columns) for i in items if isinstance(i, Not)):
        expr = f"({expr}) NOT {neg}"
    return expr


def _ranked_ids(conn: sqlite3.Connection, node: Node, driver: str, comp: _Compiler, rest: Node | None,
                limit: int) -> tuple[list[int], str]:
    """The best `limit` matches by bm25 among a bounded candidate set, and the expression to highlight.

    The candidates are all the matches when the words, tags and kinds of the query match at most
    RANK_ALL documents, or when `limit` is RANK_ALL or more: the result is then exactly the top of a
    ranking of every match. With more matches, the candidates are the matches with one of the
    query's words or phrases in their title (the title weighs 4x in bm25, so the best scores are
    there), found among the first TITLE_CANDIDATES documents with one in their title (`_title_hits`).
    When fewer than `limit` are found, the candidates are those and the first FIRST_CANDIDATES matches
    in index order. Each candidate gets its exact bm25 score; a match outside the candidates is not returned.
    No step reads more than a bounded stretch of the index, however common the words (`and`, `x`)."""
    scoring = _driving_node(node)
    texts = _positive_texts(scoring)
    # Scored with the query's words alone when every match contains one: tags, kinds and NOTs add
    # nothing to bm25 (the meta column weighs 0) but cost a walk over long lists per query.
    score = _column_terms(texts, TEXT_COLUMNS) if _needs_text(scoring) else driver
    rest_sql = None if rest is None else comp.sql(rest)
    # the FTS part for documents of the kinds that filters on cards or checks allow (the query's matches
    # are among them); the same as the FTS part where there is no such filter
    comp.params["narrow"] = _narrowed(driver, comp.kinds)
    cands = searchfields.match_sql(comp, rest_sql, "d.id") or _match_sql(rest_sql, "fts.rowid", ":narrow", comp.on_fts())

    def first_matches(sql: str, n: int) -> list[int]:  # in index order
        return [r[0] for r in conn.execute(f"{sql} ORDER BY fts.rowid LIMIT :cap", comp.params | {"cap": n})]

    def more_than(expr: str, n: int) -> bool:
        sql = "SELECT count(*) FROM (SELECT 1 FROM fts WHERE fts MATCH ? LIMIT ?)"
        return conn.execute(sql, (expr, n + 1)).fetchone()[0] > n

    # The words first: they match at least what the whole query matches, and count for less (a NOT or
    # a tag is a walk over a long doclist).
    if texts and limit < RANK_ALL and more_than(score, RANK_ALL):
        whole_is_words = score == driver
        if _needs_text(scoring):
            score = _scoring_terms(texts)  # the candidates are matches: the score need not test columns
        titled = _title_hits(conn, scoring, texts, comp, rest_sql, max(limit, TITLE_CANDIDATES))
        if len(titled) >= limit and (len(titled) > RANK_ALL or whole_is_words):  # more matches than RANK_ALL
            if len(titled) > RANK_ALL or rest_sql is None:
                comp.total = RANK_ALL + 1
            return _rank_among(conn, score, titled, comp), score
        # The FTS part of the query (path:, status: and due: cost a row lookup each, so they are tested
        # on at most RANK_ALL of its matches here).
        first = first_matches(_match_sql(None, "fts.rowid", on_fts=comp.on_fts()), RANK_ALL + 1)
        if len(first) <= RANK_ALL:  # every match: an exact ranking
            if rest_sql is not None and first:
                first = _among(conn, first, rest_sql, comp)
            comp.total = len(first)
            return _rank_among(conn, _walk(scoring, score), first, comp), score
        if rest_sql is None:
            comp.total = RANK_ALL + 1  # the FTS part is the whole query
        if len(titled) >= limit:
            return _rank_among(conn, score, titled, comp), score
        if rest_sql is None and not more_than(score, RANK_FEW_TITLES):  # (`参数`: 4,537 matches, 5 ms)
            sql = f"SELECT rowid FROM fts WHERE fts MATCH :walk ORDER BY {RANK} LIMIT :limit"
            return [r[0] for r in conn.execute(sql, comp.params | {"walk": _walk(scoring, score)})], score
        n = min(max(FIRST_CANDIDATES, limit), RANK_ALL)
        if rest_sql is not None:
            first = first_matches(cands, n)
            if len(first) < n:  # every match (the title hits are matches too)
                comp.total = len(first)
        else:
            first = first[:n]
        # (the few title hits past the first matches widen the walk: a seek each costs more)
        return _rank_among(conn, score, sorted(set(first) | set(titled)), comp), score
    if cands == _match_sql(None, "fts.rowid", ":narrow", comp.on_fts()) and score == driver:  # every match, scored as it is matched
        if _needs_text(scoring):  # the query is its words: without a column filter when none can be in meta
            score = _scoring_terms(texts)
        sql = f"SELECT rowid FROM fts WHERE fts MATCH :score ORDER BY {RANK} LIMIT :limit"
    else:
        sql = f"SELECT rowid FROM fts WHERE fts MATCH :score AND +rowid IN ({cands}) ORDER BY {RANK} LIMIT :limit"
    return [r[0] for r in conn.execute(sql, comp.params | {"score": score})], score


def _among(conn: sqlite3.Connection, ids: list[int], test_sql: str, comp: _Compiler) -> list[int]:
    """Those of the documents `ids` (at most RANK_ALL) that pass `test_sql` (a condition on `doc d`)."""
    sql = f"SELECT d.id FROM doc d WHERE d.id IN (SELECT value FROM json_each(:ids)) AND {test_sql} ORDER BY d.id"
    return [r[0] for r in conn.execute(sql, comp.params | {"ids": json.dumps(ids)})]


def _walk(scoring: Node, score: str) -> str:
    """The expression to rank matches by: a query of words alone as it matches (`gradient descent`: the
    AND, not the OR of its words; the same phrases, so the same scores), else its words (a tag or a kind
    would cost bm25 a count of its documents over the whole index)."""
    return (fts_expression(scoring, _text_columns(_all_texts(scoring))) or score) if _words_tree(scoring) else score


def _rank_among(conn: sqlite3.Connection, score: str, ids: list[int], comp: _Compiler) -> list[int]:
    """The best `comp.params['limit']` of `ids` (matches of `score`) by bm25.

    bm25 can only score rows of the statement's own MATCH, so the candidates filter a walk over the
    expression's matches: a byte per document id (1 = candidate) is the cheapest test SQLite has, and
    the walk covers only the candidates' stretch of ids (FTS5 seeks to the first, stops after the last)."""
    if not ids:
        return []
    flags = bytearray(max(ids) + 1)
    for rowid in ids:
        flags[rowid] = 1
    sql = (f"SELECT rowid FROM fts WHERE fts MATCH :score AND rowid BETWEEN :lo AND :hi"
           f" AND substr(:flags, rowid + 1, 1) = x'01' ORDER BY {RANK} LIMIT :limit")
    rows = conn.execute(sql, comp.params | {"score": score, "flags": bytes(flags), "lo": min(ids), "hi": max(ids)})
    return [r[0] for r in rows]


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
            ids, expr = _ranked_ids(conn, node, driver, comp, rest, max(1, int(limit)))
            total = comp.total
            if total is not None and total > RANK_ALL:  # more than RANK_ALL
                total = COUNT_CAP + 1 if RANK_ALL >= COUNT_CAP else None
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
