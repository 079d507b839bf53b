"""Filters on cards and checks (`status:`, `due:`, card `kind:`; store.searchfields): the same results,
in the same order, as the compiler that wrote `d.card_id IN (SELECT ...)` and a latest-result subquery
for every document (kept here verbatim), whichever plan the match counts choose."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest

from d2lkb.query import CARD_KINDS, Field, Node, Not, QueryError, TagTerm, Text
from d2lkb.review.days import day_bounds
from d2lkb.store import search as s
from d2lkb.store import searchfields
from d2lkb.store import searchrank as rank
from d2lkb.store import searchsql as sq
from d2lkb.store.docmeta import CHECKED_KINDS
from tests.conftest import write
from tests.test_title_index import _vault

_CARD_STATUS_SQL = sq._CARD_STATUS_SQL
FAILING = sq.FAILING
_fts_term = sq._fts_term


class OldCompiler:
    """store.search._Compiler (now store.searchsql._Compiler) before store.searchfields (dcd8f94), verbatim but for `conn`, `drivers`,
    `kinds`, `tested`, `span`, `span_filled` and `probes` (no connection, no sparse filters, no narrowing to the kinds of
    document a filter allows, nothing known to a count: store.search writes the statements it wrote
    before)."""

    conn = None
    drivers: list[str] = []
    ranked = False
    total = None
    kinds = sq.ALL_KINDS
    tested = None
    span = None  # the new compiler's, where a test gives it (it narrows which title candidates are read)
    span_filled = False
    on_fts = s._Compiler.on_fts

    def __init__(self, ctx, conn=None, probes=None):
        self.probes: dict = {}
        self.ctx = ctx
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
            return f"NOT ({self.sql(node.item)})"
        if isinstance(node, s.And | s.Or):
            joiner = " AND " if isinstance(node, s.And) else " OR "
            return "(" + joiner.join(self.sql(i) for i in node.items) + ")"
        return self.field(node)

    def field(self, node: Field) -> str:
        key, value = node.key, node.value
        if key == "kind":
            if value in CARD_KINDS:
                return f"d.card_id IN (SELECT id FROM card WHERE kind = {self.bind(value)})"
            return f"d.kind = {self.bind(value)}"
        if key == "path":
            if any(c in value for c in "*?["):
                return f"d.path GLOB {self.bind(value if '*' in value[:1] else '*' + value + '*')}"
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return f"d.path LIKE {self.bind('%' + escaped + '%')} ESCAPE '\\'"
        if key == "status":
            if value in _CARD_STATUS_SQL:
                return (f"d.card_id IN (SELECT id FROM card WHERE retired_at IS NULL AND {_CARD_STATUS_SQL[value]})")
            latest = ("(SELECT status FROM checkresult c WHERE c.check_hash = d.check_hash "
                      "ORDER BY c.checked_at DESC, c.id DESC LIMIT 1)")
            if value == "unchecked":
                return f"(d.check_hash IS NOT NULL AND {latest} IS NULL)"
            if value == "failing":
                return f"(d.check_hash IS NOT NULL AND {latest} IN {FAILING!r})"
            return f"(d.check_hash IS NOT NULL AND {latest} = {self.bind(value)})"
        if key == "due":
            now = self.ctx.now
            start, end = day_bounds(now, self.ctx.day_starts_at)
            cutoff = {"now": now, "today": end, "tomorrow": end + timedelta(days=1), "overdue": start,
                      "week": end + timedelta(days=6)}.get(value)
            if cutoff is None:
                cutoff = end + timedelta(days=int(value))
            # `state IN (...)`: each state's range of the queue's index (ix_card_sched), which holds the rest
            return (f"d.card_id IN (SELECT id FROM card WHERE state IN (0, 1, 2, 3) "
                    f"AND due < {self.bind(int(cutoff.timestamp()))} AND retired_at IS NULL AND suspended = 0)")
        raise QueryError(f"unsupported field {key}:")


STATUSES = ["new", "learning", "review", "relearning", "suspended", "buried", "leech", "verified", "failing",
            "unchecked", "refuted", "passed", "error", "timeout"]
DUES = ["today", "7", "overdue", "now", "tomorrow", "week"]
CARD_KIND_FILTERS = ["kind:cloze", "kind:basic", "kind:formula", "kind:snippet"]
OTHERS = ["#ml", "#dl/vision", "gradient", "softmax", "grad*", "path:folder-1", "kind:card", "kind:section",
          "-#ml", "-gradient"]


def _shapes() -> list[str]:
    atoms = [f"status:{v}" for v in STATUSES] + [f"due:{v}" for v in DUES] + CARD_KIND_FILTERS
    out = list(atoms) + [f"-{a}" for a in atoms]
    out += [f"{a} {o}" for a in atoms for o in OTHERS]
    out += [f"{o} -{a}" for a in atoms for o in ("gradient", "#ml", "kind:card", "path:folder-2")]
    out += [f"{a} OR {b}" for a, b in itertools.combinations(atoms[:10], 2)]
    out += [f"({a} OR {b}) {o}" for (a, b), o in zip(itertools.combinations(atoms[::3], 2), itertools.cycle(OTHERS),
                                                     strict=False)]
    out += ["status:new status:leech", "status:review -status:leech gradient", "-(status:new OR status:failing)",
            "kind:cloze status:review", "status:failing #ml", "due:today #dl", "path:folder-0 status:new",
            "-status:new gradient", "status:new -(#ml OR status:verified)", "-(-status:suspended) softmax",
            "(status:leech OR status:refuted) (gradient OR #ml)", "kind:formula status:unchecked",
            "status:verified -kind:formula", "status:suspended OR -status:new", "due:overdue status:relearning",
            # a count of a word's matches narrowed to card documents where a filter on cards holds for all,
            # and not where it does not (under an OR, or a NOT over more than the filter)
            "gradient -(status:new softmax)", "softmax -(status:review #ml)", "gradient -(-status:new)",
            "gradient (status:new OR #ml)", "softmax -(status:new OR gradient)", "#ml gradient -status:review",
            "grad* -status:leech", "gradient -kind:cloze", "gradient -due:today", "softmax kind:basic -status:new",
            # path filters whose notes' documents are one stretch of ids, or spread among others', or none
            "path:n1 gradient", "path:folder-1 softmax", "path:f0 -status:new", "path:f2 path:folder gradient",
            "path:n1 path:folder-2 softmax", "path:nothing gradient", "path:f1 status:unchecked",
            "-path:n1 gradient", "path:n0", "path:n1 -softmax", "path:folder-0 (softmax OR #ml)"]
    return out


def _notes(notes_dir, n_notes: int = 30, seed: int = 5) -> None:
    """The title-index vault, and notes with display formulas (formula documents and cards) and snippets."""
    _vault(notes_dir, n_notes=n_notes, seed=seed)
    rng = random.Random(seed)
    for i in range(n_notes):
        tags = rng.sample(["ml", "dl/vision", "math"], rng.randint(0, 2))
        lines = [f"# Formulas {i} {' '.join('#' + t for t in tags)}", ""]
        for j in range(4):
            a = rng.randint(1, 6)  # repeated formulas share a check hash
            lines += [f"## Gradient rule {j}", "", "$$", f"(x + {a})^2 = x^2 + {2 * a} x + {a * a}", "$$", ""]
            if rng.random() < 0.5:
                lines += ["```python", f"print({a} + {j})", "```", "", "```output", f"{a + j}", "```", ""]
        write(notes_dir / f"folder-{i % 3}" / f"f{i:02}.md", "\n".join(lines))


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    from datetime import UTC, datetime

    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase
    from tests.conftest import Clock

    root = tmp_path_factory.mktemp("fields")
    notes = root / "notes"
    notes.mkdir()
    (notes / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")
    _notes(notes)
    clock = Clock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    kb = KnowledgeBase(load_config(root / "kb", notes), clock=clock)
    kb.sync()
    conn, now = kb.conn, int(clock.now.timestamp())
    rng = random.Random(3)
    rows = []
    for (cid,) in conn.execute("SELECT id FROM card ORDER BY id").fetchall():
        state = rng.choice([0, 0, 0, 1, 2, 2, 3])
        due = now + rng.randint(-10, 12) * 86400 + rng.randint(-3600, 3600) if state else now - 10
        leech = int(state in (2, 3) and rng.random() < 0.2)
        buried = rng.choice([None] * 6 + [now + 3600, now - 86400])
        rows.append((state, due, leech, int(rng.random() < 0.1 or leech and rng.random() < 0.5), buried, cid))
    conn.executemany("UPDATE card SET state = ?, due = ?, leech = ?, suspended = ?, buried_until = ? WHERE id = ?",
                     rows)
    statuses = ["verified", "refuted", "failed", "error", "timeout", "passed", "context", "skipped"]
    hashes = [r[0] for r in conn.execute("SELECT DISTINCT check_hash FROM doc WHERE check_hash IS NOT NULL ORDER BY 1")]
    results = []
    for h in hashes:
        if rng.random() < 0.8:
            t = now - rng.randint(0, 5) * 60
            results.append(("formula", h, "", rng.choice(statuses + ["verified"] * 6), t))
            for device in rng.sample(["cuda", "mps"], rng.randint(0, 2)):  # several results: the latest counts
                results.append(("snippet", h, device, rng.choice(statuses), t + rng.choice([-60, 0, 60])))
    conn.executemany("INSERT INTO checkresult (kind, check_hash, device, status, checked_at) VALUES (?, ?, ?, ?, ?)",
                     results)
    # a few cards retired (their documents go with them in a sync; these keep theirs: the filters must agree)
    conn.execute("UPDATE card SET retired_at = ? WHERE id % 17 = 0", (now,))
    yield kb
    kb.close()


def test_the_generated_kb_has_every_kind_of_row(kb):
    conn = kb.conn
    one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    assert one("SELECT count(DISTINCT state) FROM card") == 4
    assert one("SELECT sum(leech) FROM card") >= 5 and one("SELECT sum(suspended) FROM card") >= 5
    assert one("SELECT count(*) FROM card WHERE buried_until > strftime('%s', '2026-03-02 12:00')") >= 5
    assert one("SELECT count(DISTINCT kind) FROM card") == 4
    assert one("SELECT count(DISTINCT status) FROM checkresult") == 8
    assert one("SELECT count(*) FROM (SELECT 1 FROM checkresult GROUP BY check_hash HAVING count(*) > 1)") >= 5
    assert one("SELECT count(*) FROM doc WHERE check_hash IS NOT NULL") > 100
    # a filter on checks narrows a search to these kinds of document (store.docmeta): the sync gives no other one
    assert {r[0] for r in conn.execute("SELECT DISTINCT kind FROM doc WHERE check_hash IS NOT NULL")} == CHECKED_KINDS
    assert one("SELECT count(*) FROM doc WHERE check_hash IS NOT NULL AND check_hash NOT IN"
               " (SELECT check_hash FROM checkresult)") >= 5


def _span(kb, query: str, ctx) -> tuple[int, int] | None:
    comp = s._Compiler(ctx, kb.conn)
    comp.sql(s.parse_query(query))
    return comp.span


@pytest.mark.parametrize("sparse", [0, 3, 15, 10**9, None])
def test_results_are_those_of_the_old_compiler(kb, monkeypatch, sparse):
    """Every shape, with every plan (0: every filter dense, no document drives; 10**9: every filter sparse,
    driving; None: the defaults), the ranking's title-candidate path taken (small RANK_ALL and
    TITLE_CANDIDATES) and not."""
    if sparse is not None:
        for name in ("SPARSE", "UNCHECKED", "DRIVE", "DRIVE_RANKED"):
            monkeypatch.setattr(searchfields, name, sparse)
        # a path filter narrows the walks to its documents' stretch of ids (any number of notes), and a count to
        # their ids as well (3: never, the stretch is taken as filled; 15: always)
        monkeypatch.setattr(sq, "PATH_NOTES", 1 if sparse else 10**9)
        monkeypatch.setattr(sq, "SPAN_FILLED", {3: 0, 15: 10**9}.get(sparse, sq.SPAN_FILLED))
    ctx = kb.search_context()
    shapes = _shapes()
    found = exact = 0
    for ranking in ((8, 12), (rank.RANK_ALL, rank.TITLE_CANDIDATES)):
        monkeypatch.setattr(rank, "RANK_ALL", ranking[0])
        monkeypatch.setattr(rank, "TITLE_CANDIDATES", ranking[1])
        for query in shapes:
            for limit in (1, 6, 500):
                hits, total = s.search_counted(kb.conn, query, limit=limit, ctx=ctx)
                got = [h.doc_id for h in hits]
                # the first title candidates the new compiler reads are those in its path filters' stretch of
                # ids (the rest cannot match): where they are capped, the old compiler is told that stretch
                span = _span(kb, query, ctx) if ranking[0] < 100 else None
                with monkeypatch.context() as m:
                    m.setattr(s, "_Compiler", OldCompiler)
                    m.setattr(OldCompiler, "span", span)
                    want = [h.doc_id for h in s.search(kb.conn, query, limit=limit, ctx=ctx)]
                    m.setattr(OldCompiler, "span", None)
                    want_count = s.count_matches(kb.conn, query, ctx=ctx, cap=50)
                    want_total = s.count_matches(kb.conn, query, ctx=ctx) if len(want) == limit else len(want)
                    if got != want and ranking[0] < 100:
                        # a filter of few documents drives (the new compiler's probes): its matches are all
                        # ranked when there are at most RANK_ALL, as every match ranked ranks them
                        m.setattr(rank, "RANK_ALL", 10**9)
                        want = [h.doc_id for h in s.search(kb.conn, query, limit=limit, ctx=ctx)]
                        assert total <= ranking[0], (query, limit)
                        exact += 1
                assert got == want, (query, limit)
                # the count the CLI and the TUI print: what the search learned on the way, and a count that
                # does not test again the documents its title candidates settled
                assert total == want_total, (query, limit)
                found += bool(got)
            assert s.count_matches(kb.conn, query, ctx=ctx, cap=50) == want_count, query
    assert found > len(shapes)  # most shapes find something
    if sparse == 10**9:  # every filter drives: some shapes are ranked exactly where title candidates were not
        assert exact, "no shape was ranked exactly among a driving filter's matches"


def test_both_plans_are_taken(kb, monkeypatch):
    """The probes choose: dense filters test each document, sparse ones drive from an index."""
    ctx = kb.search_context()
    one = lambda sql: kb.conn.execute(sql).fetchone()[0]  # noqa: E731
    leeches = one("SELECT count(*) FROM card WHERE leech = 1 AND retired_at IS NULL")
    assert one("SELECT count(*) FROM checkresult WHERE status = 'timeout'") <= leeches
    assert one("SELECT count(*) FROM checkresult WHERE status = 'verified'") > leeches
    assert one("SELECT count(*) FROM card WHERE state = 0") > leeches
    monkeypatch.setattr(searchfields, "SPARSE", leeches)

    def compiled(query: str) -> str:
        comp = s._Compiler(ctx, kb.conn)
        return comp.sql(s.parse_query(query))

    assert "EXISTS (SELECT 1 FROM card WHERE card.id = d.card_id" in compiled("status:new")
    assert compiled("status:leech").startswith("d.card_id IN (SELECT id FROM card")
    # the NOT of a dense filter: of the documents of the other cards where the NOT is the query's condition,
    # else with the NULL of a document without a card (a NOT above turns it into NULL, not TRUE)
    assert "NOT ((d.card_id IS NULL OR EXISTS (SELECT 1 FROM card WHERE card.id = d.card_id" in compiled("-status:new")
    assert "CASE WHEN d.card_id IS NULL" in compiled("-(status:new softmax)")
    assert "IN (SELECT check_hash FROM checkresult" in compiled("status:timeout")
    assert "IN (SELECT check_hash FROM checkresult" not in compiled("status:verified")
    assert "IN (SELECT check_hash FROM checkresult" not in compiled("-status:timeout")
    # without a connection (matching_card_ids): the first forms
    assert s._Compiler(ctx).sql(s.parse_query("status:new")) == OldCompiler(ctx).sql(s.parse_query("status:new"))


def test_the_flag_indexes_serve_the_probes(kb):
    plans = {q: " ".join(r[3] for r in kb.conn.execute(f"EXPLAIN QUERY PLAN SELECT id FROM card WHERE {q}"))
             for q in ("retired_at IS NULL AND leech = 1", "retired_at IS NULL AND suspended = 1 AND suspended != 0",
                       "retired_at IS NOT NULL AND +state = 0")}
    assert "ix_card_retired" in plans["retired_at IS NOT NULL AND +state = 0"]
    assert "ix_card_leech" in plans["retired_at IS NULL AND leech = 1"]
    assert "ix_card_suspended" in plans["retired_at IS NULL AND suspended = 1 AND suspended != 0"]


def test_the_documents_of_few_cards_drive(kb, monkeypatch):
    """A filter of few documents reads them first (each then an FTS lookup), in the ranking's candidates
    as in a query without words."""
    ctx = kb.search_context()
    for query in ("#ml status:leech", "status:leech gradient", "due:today #dl/vision", "#ml status:buried",
                  "status:refuted #ml"):
        statements: list[str] = []
        kb.conn.set_trace_callback(statements.append)
        try:
            got = [h.doc_id for h in s.search(kb.conn, query, ctx=ctx)]
        finally:
            kb.conn.set_trace_callback(None)
        assert any("FROM doc d CROSS JOIN fts" in sql for sql in statements), query
        with monkeypatch.context() as m:
            m.setattr(s, "_Compiler", OldCompiler)
            assert got == [h.doc_id for h in s.search(kb.conn, query, ctx=ctx)], query


def test_a_state_every_card_is_in(kb, monkeypatch):
    """`-status:new` where every card is new keeps no card document (and no other: NOT of NULL); the same
    for `-due:today` where every card is due."""
    ctx = kb.search_context()
    monkeypatch.setattr(searchfields, "SPARSE", 10)  # more new cards than that
    kb.conn.execute("SAVEPOINT all_new")
    try:
        kb.conn.execute("UPDATE card SET state = 0, retired_at = NULL, suspended = 0, due = ?",
                        (int(ctx.now.timestamp()) - 10,))
        for query in ("-status:new", "-status:new gradient", "#ml -status:new", "-status:new OR #ml",
                      "-(-status:new)", "status:new -status:new", "-status:review", "-status:learning kind:card",
                      "-due:today", "-due:now gradient", "#ml -due:7", "-due:overdue"):
            got = [h.doc_id for h in s.search(kb.conn, query, ctx=ctx, limit=50)]
            with monkeypatch.context() as m:
                m.setattr(s, "_Compiler", OldCompiler)
                assert got == [h.doc_id for h in s.search(kb.conn, query, ctx=ctx, limit=50)], query
        assert s._Compiler(ctx, kb.conn).sql(s.parse_query("-status:new")) == "0"
        assert s._Compiler(ctx, kb.conn).sql(s.parse_query("-due:today")) == "0"
        kb.conn.execute("UPDATE card SET suspended = 1 WHERE id IN (SELECT id FROM card LIMIT 3)")  # they drive
        assert "json_each" in s._Compiler(ctx, kb.conn).sql(s.parse_query("-due:today"))
        for query in ("-due:today", "-due:today #ml", "-due:today gradient", "-due:week -status:suspended"):
            got = [h.doc_id for h in s.search(kb.conn, query, ctx=ctx, limit=50)]
            with monkeypatch.context() as m:
                m.setattr(s, "_Compiler", OldCompiler)
                assert got == [h.doc_id for h in s.search(kb.conn, query, ctx=ctx, limit=50)], query
    finally:
        kb.conn.execute("ROLLBACK TO all_new")
        kb.conn.execute("RELEASE all_new")


def test_migration_adds_the_filter_indexes_to_an_older_kb(make_kb, notes_dir):
    from d2lkb.store import db

    _notes(notes_dir, n_notes=4)
    kb = make_kb()
    kb.sync()
    path = kb.conn.path
    names = [ddl.split(" ON ")[0].rsplit(" ", 1)[1] for ddl in searchfields.SEARCH_DDL]
    for name in names:
        kb.conn.execute(f"DROP INDEX {name}")  # as version 7 left it
    kb.conn.execute("PRAGMA user_version = 7")
    kb.close()
    conn = db.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION >= 8
        have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert set(names) <= have and len(names) == 7
        assert s.search(conn, "status:new gradient") and s.search(conn, "status:unchecked")
    finally:
        conn.close()
