"""The title index `fts_title` (schema version 7): the ranking's title candidates read it, and every
write of `fts` keeps it in step."""

from __future__ import annotations

import random
import sqlite3

import pytest

from d2lkb.query import parse_query
from d2lkb.review.types import Grade
from d2lkb.store import search as s
from d2lkb.store import searchrank as rank
from tests.conftest import write

VOCAB = ["alpha", "beta", "gamma", "kappa", "sigma", "relu", "tensor", "loss"]
TITLE_WORDS = ["gradient", "gradient descent", "softmax", "entropy", "softmax entropy", "café", "cafe", "参数",
               "descent gradient", "t646c", "kcard", "gradients", "relu"]
TAGS = ["dl", "dl/vision", "ml", "ml/supervised", "参数", "odd"]


def _vault(notes_dir, n_notes: int = 40, seed: int = 12) -> None:
    """Notes whose titles, sections and cards mix a few words in titles and bodies, tags and kinds."""
    rng = random.Random(seed)
    for i in range(n_notes):
        tags = rng.sample(TAGS, rng.randint(0, 2))
        front = f"---\ntags: [{', '.join(tags)}]\n---\n" if tags else ""
        lines = [f"{front}# {rng.choice(TITLE_WORDS).title()} note {i}", ""]
        for j in range(5):
            title = f"{rng.choice(TITLE_WORDS)} {j}" if rng.random() < 0.5 else f"Part {j}"
            tag = f" #{rng.choice(TAGS)}" if rng.random() < 0.4 else ""
            words = [rng.choice(VOCAB) for _ in range(rng.randint(3, 20))]
            words += rng.sample(["gradient", "softmax", "entropy", "descent", "参数", "cafe"], rng.randint(0, 3))
            rng.shuffle(words)
            lines += [f"## {title}{tag}", "", " ".join(words), ""]
            if rng.random() < 0.6:
                lines += [f"What is {rng.choice(TITLE_WORDS)} {i}-{j}? :: {' '.join(rng.sample(VOCAB, 3))}", ""]
            if rng.random() < 0.3:
                lines += [f"The =={rng.choice(['softmax', 'entropy', 'gradient'])}== of {rng.choice(VOCAB)}.", ""]
        write(notes_dir / f"folder-{i % 3}" / f"n{i:02}.md", "\n".join(lines))


def _old_title_hits(conn: sqlite3.Connection, scoring, texts, comp, rest_sql, cap) -> list[int]:
    """`_title_hits` as it was before the title index (7b775de): the same expression, on `fts`."""
    titles = f"({rank._column_terms(texts, '{title}')})"
    items = scoring.items if isinstance(scoring, s.And) else (scoring,)
    kinds = [i for i in items if rank._doc_kinds(i)]
    items = tuple(i for i in items if not rank._doc_kinds(i))
    words = [i for i in items if rank._words_only(i)]
    if len(words) == 1 and set(rank._positive_texts(words[0])) == set(texts):
        items = tuple(i for i in items if i is not words[0])
    pos = [titles] + [f"({s.fts_expression(i)})" for i in items if not isinstance(i, s.Not)]
    expr = " AND ".join(pos)
    for neg in (s.fts_expression(i.item) for i in items if isinstance(i, s.Not)):
        expr = f"({expr}) NOT {neg}"
    comp.params["titled"] = expr
    tests = [comp.sql(i) for i in kinds] + ([] if rest_sql is None else [rest_sql])
    sql = s._match_sql(" AND ".join(tests) if tests else None, "fts.rowid").replace(":match", ":titled", 1)
    return [r[0] for r in conn.execute(sql + " LIMIT :cap", comp.params | {"cap": cap})]


def _capped_old_title_hits(conn: sqlite3.Connection, scoring, texts, comp, rest_sql, cap, known=None) -> list[int]:
    """What `_title_hits` promises: the old query's hits (uncapped), among the first `cap` documents with
    a query word in their title and the query's tags and kinds (the first `cap` of `fts_title`)."""
    titles, _kinds, meta, other = rank._title_parts(scoring, texts)
    expr = rank._expression([titles], meta)
    n = max(1, cap // 4) if other else cap  # a further word: a quarter of them
    span = "" if comp.span is None else " AND rowid BETWEEN {} AND {}".format(*comp.span)  # (a path filter's)
    first = {r[0] for r in conn.execute(f"SELECT rowid FROM fts_title WHERE fts_title MATCH ?{span} LIMIT ?", (expr, n))}
    return [i for i in _old_title_hits(conn, scoring, texts, comp, rest_sql, 10**6) if i in first]


# Shapes whose title hits the title index serves (words or phrases, with tags and kinds) ...
TITLE_SHAPES = ["gradient", "grad*", '"gradient descent"', "gradient #dl", "#dl gradient", "(softmax OR entropy) #dl",
                "(softmax OR entropy) #dl/vision", "softmax -#ml", "gradient -#dl/vision -#odd", "kind:card gradient",
                "kind:basic gradient", "kind:cloze (softmax OR entropy)", "gradient -kind:section",
                "kind:section gradient", "(kind:section OR kind:note) gradient -#ml", "gradient -kind:card",
                "gradient -kind:basic", "path:folder-1 gradient", "gradient status:new", "gradient due:today",
                "path:folder-2 (softmax OR entropy) #ml", "cafe", "café", "参数", "t646c", "kcard", "k*",
                "(gradient OR softmax OR 参数) (#dl OR #ml)", "gradient -(#dl OR #odd)"]
# ... and shapes whose further words are tests of the body as well (their title hits come from `fts`).
BODY_SHAPES = ["softmax entropy", "(softmax OR entropy) -relu", "gradient (kappa OR #ml)", "softmax OR #ml",
               "gradient -soft*", "#dl gradient descent", "(gradient OR softmax) (entropy OR descent)",
               "kind:note OR kind:section gradient"]


@pytest.fixture
def many(make_kb, notes_dir, monkeypatch):
    _vault(notes_dir)
    kb = make_kb()
    kb.sync()
    # A small KB that takes the title-candidate path: more than RANK_ALL matches, capped candidates.
    monkeypatch.setattr(rank, "RANK_ALL", 8)
    monkeypatch.setattr(rank, "TITLE_CANDIDATES", 12)
    return kb


@pytest.mark.parametrize("shape", ["title", "body"])
def test_title_candidates_and_results_are_those_of_the_fts_query(many, monkeypatch, shape):
    queries = TITLE_SHAPES if shape == "title" else BODY_SHAPES
    new_title_hits = rank._title_hits
    calls: dict[str, int] = {}
    seen: dict[str, int] = {}
    current = [""]

    def both(conn, scoring, texts, comp, rest_sql, cap, known=None):
        old_comp = s._Compiler(comp.ctx)
        old_comp.params, old_comp.span = dict(comp.params), comp.span
        want = _capped_old_title_hits(conn, scoring, texts, old_comp, rest_sql, cap)
        got = new_title_hits(conn, scoring, texts, comp, rest_sql, cap, known)
        assert got == want, current[0]
        calls[current[0]] = calls.get(current[0], 0) + 1
        return got

    for query in queries:
        current[0] = query
        for limit in (1, 3, 7):
            monkeypatch.setattr(rank, "_title_hits", new_title_hits)
            statements: list[str] = []
            many.conn.set_trace_callback(statements.append)
            try:
                got = many.search(query, limit=limit)
            finally:
                many.conn.set_trace_callback(None)
            monkeypatch.setattr(rank, "_title_hits", _capped_old_title_hits)
            want = many.search(query, limit=limit)
            assert got == want, (query, limit)
            # the title hits came from the title index; where a further word tests bodies, a walk of
            # `fts` over their stretch of ids keeps those that match
            titled = [sql for sql in statements if "{title} :" in sql and not sql.startswith("--")]
            assert all("FROM fts_title " in sql or " BETWEEN " in sql for sql in titled), (query, titled)
            if shape == "body":
                walks = [sql for sql in statements if sql.startswith("SELECT rowid FROM fts WHERE") and " BETWEEN " in sql
                         and "bm25" not in sql]
                assert walks and all("{title}" not in sql for sql in walks), (query, walks)
            seen[query] = seen.get(query, 0) + len(titled)
            monkeypatch.setattr(rank, "_title_hits", both)
            many.search(query, limit=limit)
        assert calls.get(query) and seen.get(query), f"{query}: never took the title-candidate path"
    assert sum(1 for q in queries if many.search(q, limit=3)) == len(queries)  # every shape finds something


def test_title_candidates_without_cap_and_with_rest_conditions(many):
    """The whole candidate lists (no cap), on both tables, for every shape and with path:/status: tests."""
    for query in TITLE_SHAPES + BODY_SHAPES:
        node = parse_query(query)
        driver, rest = s._split_driver(node)
        if driver is None:
            continue
        scoring = rank._driving_node(node)
        texts = rank._positive_texts(scoring)
        if not texts:
            continue
        comp, old_comp = s._Compiler(s.SearchContext()), s._Compiler(s.SearchContext())
        rest_sql, old_rest = (None, None) if rest is None else (comp.sql(rest), old_comp.sql(rest))
        got = rank._title_hits(many.conn, scoring, texts, comp, rest_sql, 10**6)
        want = _old_title_hits(many.conn, scoring, texts, old_comp, old_rest, 10**6)
        assert got == want, query


# -- the title index in step with `fts` ------------------------------------------------------------
def assert_in_step(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT rowid, title, meta FROM fts ORDER BY rowid").fetchall()
    assert rows == conn.execute("SELECT rowid, title, meta FROM fts_title ORDER BY rowid").fetchall()
    conn.execute("INSERT INTO fts_title (fts_title, rank) VALUES ('integrity-check', 1)")  # index = its content
    # every title and meta token at the same place in both indexes
    for table in ("fts", "fts_title"):
        conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.v_{table} USING fts5vocab(main, {table}, instance)")
    words = "SELECT term, doc, col, offset FROM temp.v_{} WHERE col IN ('title', 'meta') ORDER BY 1, 2, 3, 4"
    assert conn.execute(words.format("fts")).fetchall() == conn.execute(words.format("fts_title")).fetchall()


def _set(notes_dir, rel: str, text: str) -> None:
    write(notes_dir / rel, text)


def test_title_index_follows_every_sync(make_kb, notes_dir):
    _vault(notes_dir, n_notes=12, seed=3)
    kb = make_kb()
    kb.sync()
    assert_in_step(kb.conn)
    assert kb.conn.execute("SELECT count(*) FROM fts_title").fetchone()[0] > 100
    note = notes_dir / "folder-0" / "n00.md"
    # an edit: new title, new section, a card's text changes
    _set(notes_dir, "folder-0/n00.md", "# Renamed softmax\n\n## Entropy part #dl\n\nsoftmax body\n\nQ entropy? :: yes\n")
    report = kb.sync()
    assert report.updated == 1
    assert_in_step(kb.conn)
    assert {h.title for h in kb.search("renamed")} == {"Renamed softmax"}
    # a card removed from a note (retired), another note removed, one renamed (moved)
    _set(notes_dir, "folder-0/n00.md", "# Renamed softmax\n\n## Entropy part #dl\n\nsoftmax body\n")
    (notes_dir / "folder-1" / "n01.md").unlink()
    (notes_dir / "folder-2" / "n02.md").rename(notes_dir / "moved.md")
    report = kb.sync()
    assert report.retired_cards >= 1 and report.removed >= 1
    assert_in_step(kb.conn)
    retired = kb.conn.execute("SELECT count(*) FROM card WHERE retired_at IS NOT NULL").fetchone()[0]
    assert retired >= 1
    # tags change: front matter and inline tags (every document's meta changes)
    text = note.read_text(encoding="utf-8")
    _set(notes_dir, "folder-0/n00.md", "---\ntags: [vision/new]\n---\n" + text.replace("#dl", "#ml/other"))
    kb.sync()
    assert_in_step(kb.conn)
    hits = kb.search("#vision/new entropy")
    assert hits and all("vision/new" in h.tags for h in hits)
    # the card comes back (revived, its document written again)
    _set(notes_dir, "folder-0/n00.md", note.read_text(encoding="utf-8") + "\nQ entropy? :: yes\n")
    assert kb.sync().revived_cards == 1
    assert_in_step(kb.conn)
    # every note gone
    for path in notes_dir.rglob("*.md"):
        path.unlink()
    kb.sync()
    assert_in_step(kb.conn)
    assert kb.conn.execute("SELECT count(*) FROM fts_title").fetchone()[0] == 0


def test_title_index_follows_the_leech_tag(make_kb, notes_dir):
    _set(notes_dir, "a.md", "# Leechy\n\nWhat is softmax? :: a function\n")
    kb = make_kb()
    kb.sync()
    kb.conn.execute("UPDATE card SET state = 2, stability = 1, difficulty = 5, due = 0, last_review = 0, lapses = 7")
    card = kb.next_card()
    kb.answer(card.id, Grade.AGAIN)
    assert_in_step(kb.conn)
    assert [h.card_id for h in kb.search("#leech softmax")] == [card.id]
    kb.undo()
    assert_in_step(kb.conn)
    assert kb.search("#leech softmax") == []


def test_migration_builds_the_title_index_of_an_older_kb(make_kb, notes_dir, tmp_path):
    from d2lkb.store import db

    _vault(notes_dir, n_notes=6, seed=8)
    kb = make_kb()
    kb.sync()
    path = kb.conn.path
    want = kb.conn.execute("SELECT rowid, title, meta FROM fts ORDER BY rowid").fetchall()
    kb.conn.execute("DROP TABLE fts_title")  # as version 6 left it
    kb.conn.execute("PRAGMA user_version = 6")
    kb.close()
    conn = db.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION >= 7
        assert conn.execute("SELECT rowid, title, meta FROM fts_title ORDER BY rowid").fetchall() == want
        assert_in_step(conn)
        assert conn.execute("SELECT count(DISTINCT segid) FROM fts_title_idx").fetchone()[0] == 1  # merged
        conn.execute("PRAGMA user_version = 6")  # a version set back: built anew, not doubled
    finally:
        conn.close()
    conn = db.connect(path)
    try:
        assert conn.execute("SELECT rowid, title, meta FROM fts_title ORDER BY rowid").fetchall() == want
    finally:
        conn.close()
