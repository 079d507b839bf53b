"""The note graph's answers on a real KB: `show`'s related notes and `tags`' hierarchical counts."""

from __future__ import annotations

import os

from tests.conftest import write


def test_related_notes_weigh_shared_tags_by_rarity_and_links(make_kb, notes_dir):
    """`show`'s related notes: a shared tag scores 1 / (its other notes), a link either way 1."""
    write(notes_dir / "a.md", "# A #common #rare\n\nSee [[d]].\n")
    write(notes_dir / "b.md", "# B #common #rare\n")
    write(notes_dir / "c.md", "# C #common\n")
    write(notes_dir / "d.md", "# D\n")
    write(notes_dir / "e.md", "# E #common\n\nSee [[a]].\n")
    kb = make_kb()
    kb.sync()
    view = kb.note(kb.find_note("a.md")[0][0])
    got = [(r["path"], r["score"], r["because"]) for r in view.related]
    assert [score for _, score, _ in got] == sorted((score for _, score, _ in got), reverse=True)  # best first
    assert sorted(got, key=lambda r: (-r[1], r[0])) == [
        ("b.md", 1.333, ["#common", "#rare"]),  # #common: 3 other notes -> 1/3; #rare: 1 other note -> 1
        ("e.md", 1.333, ["#common", "link"]),  # a link (either way) -> 1
        ("d.md", 1.0, ["link"]),
        ("c.md", 0.333, ["#common"]),
    ]


def test_tag_counts_include_descendants_and_leave_out_retired_cards(make_kb, notes_dir):
    write(notes_dir / "a.md", "# A #ml\n\nQ1 :: A1\n\nQ2 :: A2 #ml/deep\n")
    write(notes_dir / "b.md", "# B #ml/deep/cnn\n\nQ3 :: A3\n")
    write(notes_dir / "c.md", "# C #other\n\nQ4 :: A4\n\nQ5 :: A5\n")
    kb = make_kb()
    kb.sync()
    counts = {t.tag: (t.count, t.cards, t.depth) for t in kb.tags()}
    # #ml/deep, written in A's first section, is a tag of both its cards
    assert counts == {"ml": (2, 3, 0), "ml/deep": (2, 3, 1), "ml/deep/cnn": (1, 1, 2), "other": (1, 2, 0)}
    assert counts == reference(kb)
    write(notes_dir / "c.md", "# C #other\n\nQ4 :: A4\n")  # Q5 retired (kept, with its tags)
    st = (notes_dir / "c.md").stat()
    os.utime(notes_dir / "c.md", ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    assert kb.sync().retired_cards == 1
    assert kb.conn.execute("SELECT count(*) FROM cardtag JOIN card ON card.id = card_id"
                           " WHERE card.retired_at IS NOT NULL").fetchone()[0] == 1
    assert {t.tag: (t.count, t.cards) for t in kb.tags()}["other"] == (1, 1)
    assert {t.tag: (t.count, t.cards, t.depth) for t in kb.tags()} == reference(kb)


def reference(kb) -> dict[str, tuple[int, int, int]]:
    """Row by row: each (tag, note) and (tag, live card) pair counts for the tag and its ancestors."""
    names = dict(kb.conn.execute("SELECT id, name FROM tag"))
    notes: dict[str, set[int]] = {}
    cards: dict[str, set[int]] = {}
    pairs = [(notes, kb.conn.execute("SELECT tag_id, note_id FROM notetag").fetchall()),
             (cards, kb.conn.execute("SELECT tag_id, card_id FROM cardtag JOIN card ON card.id = card_id"
                                     " WHERE card.retired_at IS NULL").fetchall())]
    for acc, rows in pairs:
        for tid, item in rows:
            parts = names[tid].split("/")
            for i in range(1, len(parts) + 1):
                acc.setdefault("/".join(parts[:i]), set()).add(item)
    return {name: (len(notes.get(name, ())), len(cards.get(name, ())), name.count("/"))
            for name in sorted(set(notes) | set(cards))}
