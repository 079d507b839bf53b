"""The home deck tree (store.decks, index-only counting per tag set) equals the review queue
built afresh over each deck's cards, through random reviews, buries, suspensions and edits."""

from __future__ import annotations

import random

import pytest

from d2lkb.config import load_config
from d2lkb.review.queue import Candidate, build_queue
from d2lkb.review.types import DeckCount, Grade
from d2lkb.store.db import connect
from d2lkb.store.kb import KnowledgeBase
from tests.conftest import write

TAGS = ["#a", "#a/b", "#a/c", "#b", "#c/d/e", ""]


def _vault(notes_dir, rng: random.Random, notes: int = 10) -> None:
    for i in range(notes):
        lines = [f"# Note {i} {rng.choice(TAGS)}", ""]
        for s in range(3):
            lines += [f"## Part {s} {rng.choice(TAGS)} {rng.choice(TAGS)}", ""]
            for j in range(rng.randint(1, 4)):
                lines += [f"Question {i}-{s}-{j} :: Answer {rng.choice(TAGS)}", ""]
            lines += [f"Cloze ==one {i}{s}== and ==two {i}{s}== and ==three {i}{s}==.", ""]
            if rng.random() < 0.5:
                lines += [f"Both ways {i}-{s} ::: reversed {i}-{s}", ""]
        write(notes_dir / f"n{i}.md", "\n".join(lines))


def reference(kb: KnowledgeBase) -> list[DeckCount]:
    """Each deck's cards (joined through `cardtag`) run through `build_queue`."""
    now = kb._now()
    day = kb._day(now)
    limits = kb._limits(day)
    cols = "id, state, due, sibling_key, suspended, buried_until, last_review"
    candidates = {r[0]: Candidate(*r) for r in kb.conn.execute(f"SELECT {cols} FROM card WHERE retired_at IS NULL")}
    members: dict[str, set[int]] = {}
    displays = dict(kb.conn.execute("SELECT name, display FROM tag"))
    for card_id, name, display in kb.conn.execute(
            "SELECT card.id, tag.name, tag.display FROM cardtag JOIN card ON card.id = cardtag.card_id"
            " JOIN tag ON tag.id = cardtag.tag_id WHERE card.retired_at IS NULL"):
        parts, shown = name.split("/"), display.split("/")
        for i in range(1, len(parts) + 1):
            key = "/".join(parts[:i])
            members.setdefault(key, set()).add(card_id)
            displays.setdefault(key, "/".join(shown[:i]))

    def counts(cards):
        return build_queue(cards, now=now, day=day, limits=limits, learn_ahead=kb.learn_ahead).counts

    out = [DeckCount("", 0, counts(candidates.values()), len(candidates))]
    for name in sorted(members):
        ids = members[name]
        out.append(DeckCount(displays[name], name.count("/"), counts(candidates[i] for i in ids), len(ids)))
    return out


@pytest.mark.parametrize(("limits", "seed"), [("new_per_day = 9\nreviews_per_day = 4", 1),
                                              ("new_per_day = 40\nreviews_per_day = 500", 2),
                                              ("new_per_day = 3\nreviews_per_day = 1", 3),
                                              ("new_per_day = 1000\nreviews_per_day = 2", 4),
                                              ("new_per_day = 1000\nreviews_per_day = 1000", 5)])
def test_deck_counts_equal_a_fresh_queue_per_deck(tmp_path, notes_dir, clock, limits, seed):
    rng = random.Random(seed)
    _vault(notes_dir, rng)
    write(tmp_path / "kb" / "config.toml", f"[review]\nfuzz = false\n{limits}\n")
    kb = KnowledgeBase(load_config(tmp_path / "kb", notes_dir), clock=clock)
    kb.sync()
    checked = 0
    for step in range(250):
        if step % 5 == 0:
            assert kb.deck_counts() == reference(kb), f"step {step}"
            checked += 1
        ids = kb.card_ids(None)
        action = rng.random()
        if action < 0.06:
            clock.advance(hours=rng.choice([1, 6, 20, 30, 50, 75]))
        elif action < 0.09:
            kb.bury(rng.choice(ids))
        elif action < 0.11:
            kb.suspend(rng.choice(ids))
        elif action < 0.13:
            kb.undo()
        elif action < 0.15:
            # The notes change: cards added, retired and re-tagged by sync.
            _vault(notes_dir, random.Random(rng.random()), notes=rng.randint(8, 11))
            kb.sync()
        else:
            card = kb.next_card(rng.choice([None, "#a", "#b"])) if action < 0.8 else None
            target = card.id if card is not None else rng.choice(ids)
            kb.answer(target, rng.choice([Grade.AGAIN, Grade.HARD, Grade.GOOD, Grade.GOOD, Grade.EASY]))
            if rng.random() < 0.3:
                clock.advance(minutes=rng.randint(1, 40))
    assert checked == 50
    kb.close()


def test_tag_sets_and_totals_after_other_writers(tmp_path, notes_dir, clock):
    """Cards written by something else than sync (no tag set, inserted or deleted directly), the
    leech tag, and retirement: the deck tree follows, and the totals table equals the cards."""
    write(notes_dir / "n.md", "# N #x\n\nQ1 :: A1\n\nQ2 :: A2 #y\n")
    kb = KnowledgeBase(load_config(tmp_path / "kb", notes_dir), clock=clock)
    kb.sync()
    cid = kb.conn.execute("INSERT INTO card (path, line, kind, front, back, prompt, context, created_at, due)"
                          " VALUES ('n.md', 9, 'basic', 'f', 'b', 'p', 'c', 0, 0)").lastrowid
    tag = kb.conn.execute("INSERT INTO tag (name, display) VALUES ('z', 'z')").lastrowid
    kb.conn.execute("INSERT INTO cardtag (card_id, tag_id) VALUES (?, ?)", (cid, tag))
    assert kb.deck_counts() == reference(kb)
    assert [d.tag for d in kb.deck_counts()] == ["", "x", "y", "z"]
    card = kb.card_ids("#y")[0]
    for _ in range(8):  # lapses until it is a leech: tagged #leech
        kb.conn.execute("UPDATE card SET state = 2, due = 0, stability = 1, difficulty = 5, last_review = 0"
                        " WHERE id = ?", (card,))
        kb.answer(card, Grade.AGAIN)
    assert "leech" in [d.tag for d in kb.deck_counts()]
    assert kb.deck_counts() == reference(kb)
    kb.conn.execute("DELETE FROM card WHERE id = ?", (cid,))
    assert kb.deck_counts() == reference(kb)
    write(notes_dir / "n.md", "# N #x\n\nQ1 :: A1\n")  # Q2 retired
    kb.sync()
    assert kb.deck_counts() == reference(kb)
    totals = dict(kb.conn.execute("SELECT tagset, n FROM decktotal WHERE n > 0"))
    assert totals == dict(kb.conn.execute("SELECT tagset, count(*) FROM card WHERE retired_at IS NULL GROUP BY tagset"))
    kb.close()


def test_a_version_1_knowledge_base_is_migrated(tmp_path, notes_dir, clock, monkeypatch):
    """A KB written by the previous schema (no tag sets, the old indexes) opens, gains the tag sets
    and the totals, and counts its decks like a new one."""
    import d2lkb.store.db as db

    write(notes_dir / "n.md", "# N #x\n\nQ1 :: A1\n\nQ2 :: A2 #x/y\n\nC ==a== and ==b==. #z\n")
    path = tmp_path / "old.sqlite"
    monkeypatch.setattr(db, "SCHEMA_VERSION", 1)
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:1])
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.execute("INSERT INTO note (path, title, size, mtime_ns, hash, synced_at) VALUES ('n.md', 'N', 1, 1, 'h', 0)")
    for i, (tags, key) in enumerate([(["x"], ""), (["x", "x/y"], ""), (["z"], "k"), (["z"], "k")]):
        cid = conn.execute("INSERT INTO card (note_id, path, line, kind, front, back, prompt, context, sibling_key,"
                           " created_at, due) VALUES (1, 'n.md', ?, 'basic', 'f', 'b', 'p', 'c', ?, 0, ?)",
                           (i, key, i)).lastrowid
        for t in tags:
            row = conn.execute("SELECT id FROM tag WHERE name = ?", (t,)).fetchone()
            tid = row[0] if row else conn.execute("INSERT INTO tag (name, display) VALUES (?, ?)", (t, t)).lastrowid
            conn.execute("INSERT INTO cardtag (card_id, tag_id) VALUES (?, ?)", (cid, tid))
    conn.close()
    monkeypatch.undo()
    cfg = load_config(tmp_path / "kb", notes_dir)
    cfg.db_path.parent.mkdir(parents=True, exist_ok=True)
    path.replace(cfg.db_path)
    kb = KnowledgeBase(cfg, clock=clock)
    assert kb.conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert kb.conn.execute("SELECT count(*) FROM card WHERE tagset IS NULL").fetchone()[0] == 0
    decks = kb.deck_counts()
    assert decks == reference(kb)
    assert [(d.tag, d.cards, d.counts.new) for d in decks] == [("", 4, 3), ("x", 2, 2), ("x/y", 1, 1), ("z", 2, 1)]
    kb.close()


def test_version_9_narrows_the_new_card_and_sibling_indexes(tmp_path, notes_dir, clock, monkeypatch):
    """A version-8 KB opens with the deck index holding new cards only and the sibling index only
    cards in a group (an answer no longer moves a card's entry across them), and the deck tree, the
    sibling burying and the queries that read the two indexes work as before."""
    import d2lkb.store.db as db

    write(notes_dir / "n.md", "# N #x\n\nQ1 :: A1\n\nQ2 :: A2 #x/y\n\nC ==a== and ==b== and ==c==. #z\n\nR ::: S\n")
    cfg = load_config(tmp_path / "kb", notes_dir)
    monkeypatch.setattr(db, "SCHEMA_VERSION", 8)
    monkeypatch.setattr(db, "MIGRATIONS", db.MIGRATIONS[:8])
    kb = KnowledgeBase(cfg, clock=clock)
    kb.sync()
    before = kb.deck_counts()
    assert "WHERE" not in kb.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'ix_card_decks'").fetchone()[0]
    kb.close()
    monkeypatch.undo()
    kb = KnowledgeBase(cfg, clock=clock)
    sql = dict(kb.conn.execute("SELECT name, sql FROM sqlite_master WHERE name IN ('ix_card_decks', 'ix_card_sibling')"))
    assert sql["ix_card_decks"].endswith("WHERE state = 0")
    assert sql["ix_card_sibling"].endswith("WHERE sibling_key != ''")
    assert kb.deck_counts() == before == reference(kb)
    cloze = kb.conn.execute("SELECT id, sibling_key FROM card WHERE kind = 'cloze' ORDER BY id").fetchall()
    assert len(cloze) == 3 and len({key for _, key in cloze}) == 1
    kb.answer(cloze[0][0], Grade.GOOD)  # buries the other two, found through the sibling index
    plan = " ".join(r[3] for r in kb.conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM card WHERE sibling_key = ? AND sibling_key != '' AND id != ?",
        (cloze[0][1], cloze[0][0])))
    assert "ix_card_sibling" in plan
    buried = kb.conn.execute("SELECT count(*) FROM card WHERE kind = 'cloze' AND buried_until IS NOT NULL").fetchone()[0]
    assert buried == 2
    assert kb.deck_counts() == reference(kb)
    kb.close()
