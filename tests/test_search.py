"""Search over a real KB: the query language end to end (FTS5, tags, kinds, fields)."""

from __future__ import annotations

import random

import pytest

from d2lkb.query import QueryError, parse_query
from d2lkb.review.types import Grade
from d2lkb.store import searchrank as rank
from d2lkb.store import searchsql as sq
from tests.conftest import write

NOTES = {
    "ml/intro.md": """---
tags: [ml]
---
# Machine learning

## Supervised #ml/supervised

Supervised learning uses labelled data. Gradient descent minimises the loss.

What minimises the loss? :: gradient descent

## Unsupervised #ml/unsupervised

Clustering groups similar points.
""",
    "math/calc.md": """# Calculus #math

## Derivatives

The derivative measures change. 模型的参数 are learned.

### Product rule

$$
\\frac{d}{dx} [f(x) g(x)] = f(x) \\frac{d}{dx} g(x) + g(x) \\frac{d}{dx} f(x)
$$

Gradients generalise derivatives :: to many variables
""",
    "code.md": """# Code #python

```python
1 + 1
```

```output
2
```
""",
}


@pytest.fixture
def kb(make_kb, notes_dir):
    for path, text in NOTES.items():
        write(notes_dir / path, text)
    kb = make_kb()
    assert kb.sync().warnings == []
    return kb


def found(kb, query, limit=50):
    return {(h.kind, h.path, h.title) for h in kb.search(query, limit=limit)}


def kinds(kb, query):
    return sorted({h.kind for h in kb.search(query, limit=100)})


def test_words_phrases_and_ranking(kb):
    hits = kb.search("gradient descent")
    assert hits[0].path == "ml/intro.md"
    assert ("section", "ml/intro.md", "Supervised") in found(kb, '"gradient descent"')
    assert ("section", "ml/intro.md", "Supervised") not in found(kb, '"descent gradient"')
    assert "\x02" in hits[0].snippet  # highlighted
    assert found(kb, "grad*") >= found(kb, "gradient")
    assert ("card", "math/calc.md", "Gradients generalise derivatives") in found(kb, "grad*")


def test_tag_hierarchy_and_case(kb):
    sup = found(kb, "#ml/supervised")
    assert ("section", "ml/intro.md", "Supervised") in sup
    assert ("section", "ml/intro.md", "Unsupervised") not in sup
    everything_ml = found(kb, "#ML")
    assert sup <= everything_ml
    assert ("section", "ml/intro.md", "Unsupervised") in everything_ml
    assert found(kb, "tag:ml") == everything_ml
    assert not found(kb, "#m")  # a prefix of a tag name is not its parent


def test_boolean_logic(kb):
    assert found(kb, "clustering OR derivative") == found(kb, "clustering") | found(kb, "derivative")
    both = found(kb, "gradient #ml")
    assert both and all(p == "ml/intro.md" for _, p, _ in both)
    assert not (found(kb, "gradient -#ml") & both)
    assert found(kb, "gradient NOT #ml") == found(kb, "gradient -#ml")
    assert found(kb, "(clustering OR derivative) #math") == found(kb, "derivative #math")
    only_negative = found(kb, "-#ml")
    assert only_negative and all(p != "ml/intro.md" for _, p, _ in only_negative)


def test_kind_path_and_cjk(kb):
    assert kinds(kb, "kind:card") == ["card"]
    assert kinds(kb, "kind:formula") == ["formula"]
    assert kinds(kb, "kind:snippet") == ["snippet"]
    assert kinds(kb, "gradient -kind:section") == ["card"]
    assert [h.title for h in kb.search("kind:basic #math")] == ["Gradients generalise derivatives"]
    assert {h.title for h in kb.search("kind:basic")} == {"What minimises the loss?", "Gradients generalise derivatives"}
    assert kb.search("kind:cloze") == []
    assert len(kb.search("kind:card")) == 4  # two basic cards, a formula card and a snippet card
    assert {p for _, p, _ in found(kb, "path:math/")} == {"math/calc.md"}
    assert {p for _, p, _ in found(kb, "path:*.md derivative")} == {"math/calc.md"}
    cjk = kb.search("参数")
    assert cjk and cjk[0].path == "math/calc.md" and "参数" in cjk[0].snippet
    assert kb.search("型的参")  # any substring of Chinese text


def test_status_and_due_fields(kb, clock):
    assert kinds(kb, "status:new") == ["card"]
    card = kb.next_card()
    kb.answer(card.id, Grade.GOOD)
    assert kinds(kb, "status:learning") == ["card"]
    assert len(kb.search("status:learning")) == 1
    assert len(kb.search("due:today", limit=100)) == len(kb.search("kind:card", limit=100))
    assert not kb.search("due:overdue")
    assert kb.search("status:unchecked kind:formula")
    report = kb.run_checks("kind:formula")
    assert report.ok
    assert kinds(kb, "status:verified") == ["card", "formula"]


def test_leech_tag_is_searchable(kb, clock):
    kb.conn.execute("UPDATE card SET state = 2, stability = 1, difficulty = 5, due = 0, last_review = 0, lapses = 7")
    card = kb.next_card()
    kb.answer(card.id, Grade.AGAIN)
    assert [h.card_id for h in kb.search("#leech")] == [card.id]
    kb.undo()
    assert kb.search("#leech") == []


def test_hits_limit(kb):
    assert len(kb.search("kind:card", limit=2)) == 2


def test_any_string_is_safe(kb):
    rng = random.Random(3)
    alphabet = 'ab #:-"()*^{}[]\\%_\'ORANDNOT参数 \x7f/.'
    strings = ["'; DROP TABLE card; --", 'a" OR 1=1 --', "NEAR(a b)", "a*b", "^x", "title:x", "{a}", "\\",
               "%_%", "#a/b/c", "🙂", "col:umn", '"a" "b', "a AND AND b", "((a)", "- -a", "*", "#", "path:%"]
    strings += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25))) for _ in range(400)]
    for query in strings:
        try:
            kb.search(query)
        except QueryError as exc:  # a parse error, never SQLite/FTS5 complaining
            assert not str(exc).startswith("search failed"), (query, exc)
    assert kb.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- bounded ranking: many matches rank the title hits; few rank every match exactly ------------------
def _exact(kb, query: str, limit: int) -> list[int]:
    """Every match ranked by bm25, as the search did before it bounded the candidates."""
    from d2lkb.query import parse_query
    from d2lkb.store import search as s

    driver, rest = s._split_driver(parse_query(query))
    assert rest is None
    return [r[0] for r in kb.conn.execute(f"SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY {rank.RANK} LIMIT ?",
                                          (driver, limit))]


@pytest.fixture
def big(make_kb, notes_dir):
    rng = random.Random(5)
    filler = ["alpha", "beta", "gamma", "delta", "kappa", "sigma"]
    for i in range(30):
        lines = [f"# Note {i} #{'even' if i % 2 == 0 else 'odd'}", ""]
        for j in range(6):
            words = [rng.choice(filler) for _ in range(rng.randint(3, 30))]
            words += ["gradient"] * rng.randint(0, 4)  # body hits of all strengths
            rng.shuffle(words)
            title = f"Gradient step {i}-{j}" if (i + j) % 5 == 0 else f"Step {i}-{j}"
            lines += [f"## {title}", "", " ".join(words), ""]
        write(notes_dir / f"n{i:02}.md", "\n".join(lines))
    kb = make_kb()
    kb.sync()
    return kb


def test_few_matches_are_ranked_exactly(big):
    for query in ("gradient", "gradient #even", "gradient -#odd", "grad* (kappa OR sigma)", "#even gradient kappa"):
        want = _exact(big, query, 15)
        assert [h.doc_id for h in big.search(query, limit=15)] == want, query


def test_many_matches_rank_the_title_hits(big, monkeypatch):
    from d2lkb.store import search as s

    total = s.count_matches(big.conn, "gradient", cap=100000)
    titled = {r[0] for r in big.conn.execute("SELECT rowid FROM fts WHERE fts MATCH '{title} : \"gradient\"'")}
    assert total > len(titled) >= 10
    monkeypatch.setattr(rank, "RANK_ALL", 20)
    got = [h.doc_id for h in big.search("gradient", limit=10)]
    assert set(got) <= titled  # the candidates are the title hits...
    assert got == [i for i in _exact(big, "gradient", total) if i in titled][:10]  # ...in exact bm25 order
    # the query's words in fewer titles than the limit: every match is ranked
    assert [h.doc_id for h in big.search("gradient", limit=len(titled) + 1)] == _exact(big, "gradient", len(titled) + 1)
    # a limit of RANK_ALL or more ranks every match, so membership never depends on the bound
    assert {h.doc_id for h in big.search("gradient", limit=total)} == set(_exact(big, "gradient", total))
    assert [h.doc_id for h in big.search("gradient #even", limit=5)] == [
        i for i in _exact(big, "gradient #even", total) if i in titled][:5]
    monkeypatch.setattr(rank, "TITLE_CANDIDATES", 3)  # the first max(limit, TITLE_CANDIDATES) title hits are ranked
    assert {h.doc_id for h in big.search("gradient", limit=10)} == set(sorted(titled)[:10])
    assert {h.doc_id for h in big.search("gradient", limit=2)} <= set(sorted(titled)[:3])


def test_few_title_hits_are_ranked_with_the_first_matches(big, monkeypatch):
    """Many matches (more than RANK_FEW_TITLES), fewer title hits than the limit: the candidates are the
    title hits and the first FIRST_CANDIDATES matches in index order, each scored exactly. (Every match was ranked before: 60 to 100 ms
    for a common word at 100k cards, `and` or `see`.)"""
    from d2lkb.store import search as s

    query = 'kappa OR "step 29-5"'  # kappa is in no title, the phrase in one (of the last note)
    driver, _ = s._split_driver(parse_query(query))
    total = s.count_matches(big.conn, query, cap=100000)
    titled = {r[0] for r in big.conn.execute("SELECT rowid FROM fts WHERE fts MATCH '{title} : \"step 29 5\"'")}
    monkeypatch.setattr(rank, "RANK_ALL", 40)
    monkeypatch.setattr(rank, "FIRST_CANDIDATES", 30)
    # words matching at most RANK_FEW_TITLES documents: all of them ranked
    assert [h.doc_id for h in big.search(query, limit=10)] == _exact(big, query, 10)
    monkeypatch.setattr(rank, "RANK_FEW_TITLES", 40)
    first = [r[0] for r in big.conn.execute("SELECT rowid FROM fts WHERE fts MATCH ? ORDER BY rowid LIMIT 30", (driver,))]
    assert total > 40 and len(titled) == 1 and not titled <= set(first)
    want = [i for i in _exact(big, query, total) if i in titled | set(first)][:10]
    assert [h.doc_id for h in big.search(query, limit=10)] == want
    assert titled <= set(want)  # the title hit, outside the first matches, is among them
    # with a path: test, the first matches are those of the whole query
    where = "WHERE fts MATCH ? AND d.path LIKE '%n1%'"
    first = [r[0] for r in big.conn.execute(f"SELECT d.id FROM fts JOIN doc d ON d.id = fts.rowid {where}"
                                            " ORDER BY d.id LIMIT 30", (driver,))]
    everything = [r[0] for r in big.conn.execute(f"SELECT fts.rowid FROM fts JOIN doc d ON d.id = fts.rowid {where}"
                                                 f" ORDER BY {rank.RANK}", (driver,))]
    assert len(everything) > 40
    want = [i for i in everything if i in set(first)][:10]
    assert [h.doc_id for h in big.search(f"path:n1 ({query})", limit=10)] == want


@pytest.mark.parametrize("bound", [20, 1000])
def test_search_counted_counts_as_count_matches(big, monkeypatch, bound):
    """The count beside the hits (the CLI's "showing 20 of N", the TUI's "200 of N") is what
    count_matches says, whether the ranking learned it on the way or it was counted."""
    from d2lkb.store import search as s

    monkeypatch.setattr(rank, "RANK_ALL", bound)
    monkeypatch.setattr(s, "COUNT_CAP", bound)
    monkeypatch.setattr(rank, "FIRST_CANDIDATES", 7)
    monkeypatch.setattr(rank, "RANK_FEW_TITLES", 30)
    queries = ["gradient", "kappa", 'kappa OR "step 29-5"', "gradient #even", "gradient -#odd", "path:n1 gradient",
               "path:n1 kappa", "gradient kappa", "#even", "kind:section gradient", "grad*", "zzz", "path:n0",
               "gradient -kind:note", "(gradient OR kappa) #odd", "status:new gradient"]
    for q in queries:
        for limit in (1, 5, 30):
            hits, total = s.search_counted(big.conn, q, limit=limit)
            assert [h.doc_id for h in hits] == [h.doc_id for h in s.search(big.conn, q, limit=limit)], (q, limit)
            want = len(hits) if len(hits) < limit else s.count_matches(big.conn, q, cap=bound)
            assert total == want, (q, limit)


def test_count_matches(big):
    from d2lkb.store import search as s

    total = s.count_matches(big.conn, "gradient", cap=100000)
    assert total == len(big.search("gradient", limit=10000))
    assert s.count_matches(big.conn, "gradient", cap=7) == 8  # "7+"
    assert s.count_matches(big.conn, "path:n01 gradient", cap=100000) == len(big.search("path:n01 gradient", limit=999))
    assert s.count_matches(big.conn, "zzz") == 0


def test_many_matches_when_the_driving_part_has_no_words(big, monkeypatch):

    monkeypatch.setattr(rank, "RANK_ALL", 5)
    # `#even` drives the search (FTS); the words sit in a part FTS cannot take (an OR with path:)
    hits = big.search("#even (gradient OR path:n03)", limit=3)
    assert len(hits) == 3 and all("even" in h.tags for h in hits)


@pytest.mark.parametrize("query", ["gradient", "grad*", "gradient #even", "gradient -#odd", "(gradient OR kappa) #even",
                                   "kind:section gradient", "gradient -kind:card", "gradient kappa",
                                   "(gradient OR kappa) (sigma OR #odd)", "(gradient OR zzz) (step OR #odd)", "#even -kind:note (gradient OR sigma*)",
                                   "(kind:section OR kind:note) gradient -#odd"])
def test_title_candidates_are_the_title_hits_of_the_whole_query(big, query):
    """The candidate query leaves out what the title hits imply; it finds what `(query) AND (titles)` finds."""
    from d2lkb.query import parse_query
    from d2lkb.store import search as s

    node = parse_query(query)
    driver, rest = s._split_driver(node)
    assert rest is None
    scoring = rank._driving_node(node)
    texts = rank._positive_texts(scoring)
    comp = s._Compiler(s.SearchContext())
    got = rank._title_hits(big.conn, scoring, texts, comp, None, 10**6)
    titles = rank._column_terms(texts, "{title}")
    want = [r[0] for r in big.conn.execute("SELECT rowid FROM fts WHERE fts MATCH ?", (f"({driver}) AND ({titles})",))]
    assert got == want and want, query


def test_snippets_by_rowid_lookups_are_those_of_one_walk(big):
    from d2lkb.query import parse_query
    from d2lkb.store import search as s

    for query in ("gradient", "kappa OR sigma", "gradient -#odd", "#even (kappa OR gradient)"):
        ids = [h.doc_id for h in big.search(query, limit=8)]
        expr = s._split_driver(parse_query(query))[0]
        per_row = s._snippets(big.conn, ids, expr, per_row=True)
        assert per_row == s._snippets(big.conn, ids, expr, per_row=False), query
        assert len(per_row) == len(ids) and any(s.HIGHLIGHT[0] in v for v in per_row.values()), query


def _segments(conn, table: str = "fts") -> list[int]:
    return [n for (n,) in conn.execute(f"SELECT max(pgno) FROM {table}_idx GROUP BY segid")]


def test_sync_merges_the_search_index_after_large_writes(make_kb, notes_dir, monkeypatch):
    from d2lkb.store import sync as sync_module
    from d2lkb.store.db import transaction

    body = "\n\n".join(f"## Part {j}\n\nWords about gradient {j} and more words." for j in range(20))
    for i in range(40):
        write(notes_dir / f"a{i:02}.md", f"# A {i}\n\n{body}\n")
    kb = make_kb()
    kb.sync()
    assert len(_segments(kb.conn)) == len(_segments(kb.conn, "fts_title")) == 1
    monkeypatch.setattr(sync_module, "MERGE_SHARE", 0)  # no segment is large enough: nothing merges
    for i in range(40):
        write(notes_dir / f"b{i:02}.md", f"# B {i}\n\n{body}\n")
    kb.sync()
    assert len(_segments(kb.conn)) == len(_segments(kb.conn, "fts_title")) == 2  # as an older d2lkb left it
    before = [(h.doc_id, h.snippet) for h in kb.search("gradient", limit=100)]
    monkeypatch.undo()
    write(notes_dir / "c.md", "# C\n\nOne more word.\n")
    kb.sync()  # a small sync finds the two large segments and merges them (in both indexes)
    assert len(_segments(kb.conn)) == len(_segments(kb.conn, "fts_title")) == 1
    assert [(h.doc_id, h.snippet) for h in kb.search("gradient", limit=100)] == before
    write(notes_dir / "d.md", "# D\n\nAnd another.\n")
    kb.sync()  # a small write leaves its small segment alone
    assert len(_segments(kb.conn)) == 2
    with transaction(kb.conn):
        assert not sync_module.merge_search_index(kb.conn)
    kb.conn.execute("INSERT INTO fts (fts, rank) VALUES ('integrity-check', 1)")  # raises if damaged
    kb.conn.execute("INSERT INTO fts_title (fts_title, rank) VALUES ('integrity-check', 1)")


def test_few_matches_of_the_whole_query_are_ranked_exactly_when_its_words_match_many(big, monkeypatch):
    """The words are counted first; a query whose tags leave at most RANK_ALL matches still ranks them all."""
    from d2lkb.store import search as s

    words = s.count_matches(big.conn, "gradient", cap=100000)
    tagged = s.count_matches(big.conn, "gradient #even", cap=100000)
    assert words > tagged >= 20
    monkeypatch.setattr(rank, "RANK_ALL", tagged)
    assert [h.doc_id for h in big.search("gradient #even", limit=10)] == _exact(big, "gradient #even", 10)
    titled = {r[0] for r in big.conn.execute("SELECT rowid FROM fts WHERE fts MATCH '{title} : \"gradient\"'")}
    monkeypatch.setattr(rank, "RANK_ALL", tagged - 1)  # one match too many: the title hits are ranked
    assert [h.doc_id for h in big.search("gradient #even", limit=5)] == [
        i for i in _exact(big, "gradient #even", tagged) if i in titled][:5]


def test_words_that_could_match_the_meta_column_keep_their_column_filter():
    from d2lkb.query import Text
    from d2lkb.textutil import kind_token, tag_token

    meta_like = [Text(kind_token("card")), Text(kind_token("cloze")), Text(tag_token("ml/supervised")),
                 Text(tag_token("参数").upper()), Text("k", prefix=True), Text("t6", prefix=True),
                 Text(f"{kind_token('note')} {tag_token('dl')}", phrase=True), Text("kcárd")]
    plain = [Text("gradient"), Text("tensor"), Text("tens", prefix=True), Text("参数"), Text("kcard loss", phrase=True),
             Text("t6d6")]
    assert all(rank._meta_like(t) for t in meta_like) and not any(rank._meta_like(t) for t in plain)
    assert rank._scoring_terms([Text("grad", prefix=True), Text('a "b', phrase=True)]) == '"grad" * OR "a ""b"'
    assert rank._scoring_terms([Text("gradient"), Text("kcard")]) == rank._column_terms([Text("gradient"), Text("kcard")],
                                                                                 sq.TEXT_COLUMNS)
