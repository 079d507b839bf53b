"""The ranking of a search's matches by bm25, on a bounded set of candidates (store.search runs it).

Ranking cost: FTS5's bm25() reads every ranked row's sizes and positions, and neither `ORDER BY rank`
nor LIMIT avoids scoring every match. Searches therefore rank a bounded candidate set: all the matches
when there are at most RANK_ALL, otherwise the candidates that `ranked_ids` describes.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from collections.abc import Iterable

from d2lkb.query import CARD_KINDS, KINDS, And, Field, Node, Not, Or, TagTerm, Text
from d2lkb.store import searchfields
from d2lkb.store.searchsql import TEXT_COLUMNS, _Compiler, _fts_term, _match_sql, _narrowed, fts_expression
from d2lkb.textutil import kind_token

RANK = "bm25(fts, 4.0, 1.0, 0.0)"  # title counts 4x body; the meta column never ranks

RANK_ALL = 1000
TITLE_CANDIDATES = 2000
FIRST_CANDIDATES = 250  # matches in index order ranked beside fewer title hits than the limit
RANK_FEW_TITLES = 5000  # ...unless the query's words match at most this many: all are ranked then



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


def _flags(ids: Iterable[int]) -> bytes:
    """A byte per document id up to the largest of `ids`, 1 for those: the cheapest test of a set of
    ids that SQLite has on a walk (`substr(:flags, rowid + 1, 1) = x'01'`)."""
    ids = list(ids)
    flags = bytearray(max(ids) + 1)
    for rowid in ids:
        flags[rowid] = 1
    return bytes(flags)


def _title_hits(conn: sqlite3.Connection, scoring: Node, texts: list[Text], comp: _Compiler,
                rest_sql: str | None, cap: int, known: list[int] | None = None) -> list[int]:
    """Matches with one of the query's words or phrases in their title, among the first `cap`
    documents (in index order) with one in their title and the query's tags and kinds (`cap // 4`
    when a further word must be tested).

    `fts_title`, whose doclists hold the titles alone (and the tags and kinds, which it holds too),
    finds those documents; what the titles imply is left out (the words of `(a OR b) #tag`). The rest
    of the query (a further word or a NOT of a word, a test of the body as well; kinds of document
    and path:, status: or due:, tests of the `doc` row) is applied to them alone: a walk of `fts`
    over their stretch of ids, so that no common word makes it long. `known`: the query's first matches
    in index order (every match up to the last of them), which need no test."""
    titles, kinds, meta, other = _title_parts(scoring, texts)
    tests = [comp.sql(i) for i in kinds] + ([] if rest_sql is None else [rest_sql])
    # A further word (a test of the body as well) is tested by a walk of `fts` over the hits' stretch of
    # ids (below). For two common words (`x and`) that stretch is long: a quarter as many hits then.
    titled = _expression([titles], meta)
    params = comp.params | {"titled": titled, "cap": max(1, cap // 4) if other else cap}
    span = comp.on_fts("fts_title.rowid")
    if not tests or known and not other:
        hits = [r[0] for r in conn.execute(f"SELECT rowid FROM fts_title WHERE fts_title MATCH :titled{span} LIMIT :cap",
                                           params)]
        if tests and known:  # a title candidate up to the last known match is one of them, or no match
            matched, last = set(known), known[-1]
            beyond = [rowid for rowid in hits if rowid > last]
            hits = [rowid for rowid in hits if rowid <= last and rowid in matched]
            hits += _among(conn, beyond, " AND ".join(f"({t})" for t in tests), comp) if beyond else []
    else:  # the tests on the same walk, as a column: the first `cap` are read whatever they say
        rows = conn.execute(f"SELECT fts_title.rowid, {' AND '.join(f'({t})' for t in tests)} FROM fts_title"
                            f" JOIN doc d ON d.id = fts_title.rowid WHERE fts_title MATCH :titled{span} LIMIT :cap",
                            params).fetchall()
        hits = [rowid for rowid, passed in rows if passed]
        if rows and not other:  # each document read matches the query exactly when it passed: a count need
            # not test them again (`_count`)
            comp.tested = (_flags(rowid for rowid, _ in rows), len(hits))
    if not hits or not other:
        return hits
    # The hits have a query word in their title: the walk needs the further words alone, and without
    # the `{title body}` filter (FTS5 reads every row's positions to test a column) where no word of
    # the query could match in `meta`.
    expr = _expression([f"({_scoring_terms(texts)})"], other, _text_columns([t for i in other for t in _all_texts(i)]))
    params = {"titled": expr, "flags": _flags(hits), "lo": hits[0], "hi": hits[-1]}
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


def ranked_ids(conn: sqlite3.Connection, node: Node, driver: str, comp: _Compiler, rest: Node | None,
               limit: int) -> tuple[list[int], str]:
    """The best `limit` matches by bm25 among a bounded candidate set, and the expression to highlight.

    The candidates are all the matches when the words, tags and kinds of the query match at most
    RANK_ALL documents (in a path filter's stretch of ids), when a filter of few documents leaves at
    most RANK_ALL of them, or when `limit` is RANK_ALL or more: the result is then exactly the top of a
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
    driven = searchfields.match_sql(comp, rest_sql, "d.id")
    cands = driven or _match_sql(rest_sql, "fts.rowid", ":narrow", comp.on_fts())

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
        # The FTS part of the query (its words, tags and kinds, in a path filter's stretch of ids): every
        # match when few (path:, status: and due: cost a row lookup each, so they are tested on at most
        # RANK_ALL of its matches here); first, as then no title candidates are needed. More than
        # RANK_ALL where it is the words alone.
        fts_part = _match_sql(None, "fts.rowid", on_fts=comp.on_fts())
        first = None if whole_is_words and comp.span is None else first_matches(fts_part, RANK_ALL + 1)
        if first is not None and len(first) <= RANK_ALL:  # every match: an exact ranking
            if rest_sql is not None and first:
                first = _among(conn, first, rest_sql, comp)
            comp.total = len(first)
            return _rank_among(conn, _walk(scoring, score), first, comp), score
        matches = None
        if driven is not None:
            # A filter of few documents drives (searchfields.DRIVE_RANKED): its matches cost an FTS lookup
            # each, and when there are at most RANK_ALL of them they are ranked exactly, without title
            # candidates. (Where the filter is dense, its test on each title candidate costs less than
            # walking its matches: `status:new gradient`.)
            matches = first_matches(driven, RANK_ALL + 1)
            if len(matches) <= RANK_ALL:
                comp.total = len(matches)
                return _rank_among(conn, _walk(scoring, score), matches, comp), score
        # the query's first matches, where known: the FTS part's when it is the whole query
        known = first if rest_sql is None else None
        titled = _title_hits(conn, scoring, texts, comp, rest_sql, max(limit, TITLE_CANDIDATES), known)
        if rest_sql is None:
            comp.total = RANK_ALL + 1  # the FTS part is the whole query
        elif len(titled) > RANK_ALL:
            comp.total = RANK_ALL + 1
        if len(titled) >= limit:
            return _rank_among(conn, score, titled, comp), score
        if rest_sql is None and not more_than(score, RANK_FEW_TITLES):  # (`参数`: 4,537 matches, 5 ms)
            sql = f"SELECT rowid FROM fts WHERE fts MATCH :walk ORDER BY {RANK} LIMIT :limit"
            return [r[0] for r in conn.execute(sql, comp.params | {"walk": _walk(scoring, score)})], score
        n = min(max(FIRST_CANDIDATES, limit), RANK_ALL)
        if rest_sql is not None:
            first = matches[:n] if matches is not None else first_matches(cands, n)
            if len(first) < n:  # every match (the title hits are matches too)
                comp.total = len(first)
        else:
            first = (first or first_matches(fts_part, n))[:n]
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
    sql = (f"SELECT rowid FROM fts WHERE fts MATCH :score AND rowid BETWEEN :lo AND :hi"
           f" AND substr(:flags, rowid + 1, 1) = x'01' ORDER BY {RANK} LIMIT :limit")
    rows = conn.execute(sql, comp.params | {"score": score, "flags": _flags(ids), "lo": min(ids), "hi": max(ids)})
    return [r[0] for r in rows]
