"""Graph questions: tag tree with counts, a note with its neighbourhood, orphans."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TagCount:
    tag: str  # display spelling, nested with '/'
    count: int  # notes carrying the tag or one of its descendants
    cards: int  # live cards carrying the tag or one of its descendants
    depth: int

    def to_dict(self) -> dict:
        return {"tag": self.tag, "count": self.count, "cards": self.cards}


def tag_tree(conn: sqlite3.Connection) -> list[TagCount]:
    """Every tag in use, parents before children (alphabetical), with hierarchical counts."""
    rows = conn.execute("SELECT id, name, display FROM tag ORDER BY name").fetchall()
    names = {tid: name for tid, name, _ in rows}
    notes = _add_up(names, conn.execute("SELECT tag_id, group_concat(note_id) FROM notetag GROUP BY tag_id"))
    # Live cards: every card's tags less the retired cards' (a few), not a lookup of each card's row.
    retired = {r[0] for r in conn.execute("SELECT id FROM card WHERE retired_at IS NOT NULL")}
    cards = _add_up(names, conn.execute("SELECT tag_id, group_concat(card_id) FROM cardtag GROUP BY tag_id"),
                    without=retired)
    out = []
    for _, name, display in rows:
        n, c = len(notes.get(name, ())), len(cards.get(name, ()))
        if n or c:
            out.append(TagCount(display, n, c, name.count("/")))
    return out


def _add_up(names: dict[int, str], groups, without: set[int] | None = None) -> dict[str, set[int]]:
    """{tag name: the items carrying it or one of its descendants} from (tag id, "id,id,...") rows,
    less `without`: each tag's items go into its own set and its ancestors' (a set union per tag and
    level, not a step per row: a 100,000-card KB has ~360,000 such rows)."""
    acc: dict[str, set[int]] = {}
    for tid, joined in groups:
        items = set(map(int, joined.split(",")))
        if without:
            items -= without
        parts = names[tid].split("/")
        for i in range(1, len(parts) + 1):
            key = "/".join(parts[:i])
            have = acc.get(key)
            if have is None:
                acc[key] = items if i == len(parts) else set(items)
            else:
                have |= items
    return acc


@dataclass
class NoteView:
    id: int
    path: str
    title: str
    front_matter: dict
    sections: list[dict] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    cards: list[dict] = field(default_factory=list)
    formulas: list[dict] = field(default_factory=list)
    snippets: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    backlinks: list[dict] = field(default_factory=list)
    related: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("path", "title", "front_matter", "sections", "tags", "cards", "formulas",
                                                "snippets", "links", "backlinks", "related")}


def find_note(conn: sqlite3.Connection, ref: str) -> list[tuple[int, str, str]]:
    """Notes matching a reference: exact path, path without .md, file stem, or title (case-insensitive)."""
    ref = ref.strip().replace("\\", "/")
    low = ref.lower().removesuffix(".md")
    rows = conn.execute("SELECT id, path, title FROM note ORDER BY path").fetchall()
    for pick in (
        lambda p, t: p == ref,
        lambda p, t: p.lower().removesuffix(".md") == low,
        lambda p, t: p.lower().rsplit("/", 1)[-1].removesuffix(".md") == low,
        lambda p, t: t.lower() == low,
        lambda p, t: low in p.lower() or low in t.lower(),
    ):
        found = [r for r in rows if pick(r[1], r[2])]
        if found:
            return found
    return []


def latest_status(conn: sqlite3.Connection, check_hash: str) -> tuple[str, str] | None:
    row = conn.execute(
        "SELECT status, detail FROM checkresult WHERE check_hash = ? ORDER BY checked_at DESC, id DESC LIMIT 1",
        (check_hash,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def note_view(conn: sqlite3.Connection, note_id: int) -> NoteView:
    nid, path, title, fm = conn.execute("SELECT id, path, title, front_matter FROM note WHERE id = ?", (note_id,)).fetchone()
    view = NoteView(nid, path, title, json.loads(fm or "{}"))
    view.sections = [{"level": lv, "title": t, "line": ln, "end_line": end} for lv, t, ln, end in conn.execute(
        "SELECT level, title, line, end_line FROM section WHERE note_id = ? ORDER BY idx", (nid,))]
    view.tags = [r[0] for r in conn.execute(
        "SELECT tag.display FROM notetag JOIN tag ON tag.id = tag_id WHERE note_id = ? ORDER BY tag.name", (nid,))]
    view.cards = [{"id": cid, "kind": k, "line": ln, "front": f, "back": b, "state": s, "due": due}
                  for cid, k, ln, f, b, s, due in conn.execute(
                      "SELECT id, kind, line, front, back, state, due FROM card WHERE note_id = ? AND retired_at IS NULL"
                      " ORDER BY line, id", (nid,))]
    for latex, line, name, display, h in conn.execute(
        "SELECT latex, line, name, display, check_hash FROM formula WHERE note_id = ? ORDER BY idx", (nid,)
    ):
        st = latest_status(conn, h)
        view.formulas.append({"line": line, "name": name, "latex": latex, "display": bool(display),
                              "status": st[0] if st else "unchecked"})
    for lang, line, h in conn.execute(
        "SELECT language, line, check_hash FROM snippet WHERE note_id = ? ORDER BY idx", (nid,)
    ):
        st = latest_status(conn, h)
        view.snippets.append({"line": line, "language": lang, "status": st[0] if st else "unchecked"})
    view.links = [{"target": t, "alias": a, "line": ln, "resolved": p} for t, a, ln, p in conn.execute(
        "SELECT link.target, link.alias, link.line, n.path FROM link LEFT JOIN note n ON n.id = link.target_note_id"
        " WHERE link.note_id = ? ORDER BY link.line", (nid,))]
    view.backlinks = [{"path": p, "title": t, "line": ln} for p, t, ln in conn.execute(
        "SELECT n.path, n.title, link.line FROM link JOIN note n ON n.id = link.note_id WHERE link.target_note_id = ?"
        " ORDER BY n.path, link.line", (nid,))]
    view.related = related_notes(conn, nid)
    return view


def related_notes(conn: sqlite3.Connection, note_id: int, limit: int = 10) -> list[dict]:
    """Notes sharing tags (weighted by tag rarity) or links with this one, best first."""
    scores: dict[int, float] = {}
    reasons: dict[int, list[str]] = {}
    # Each of the note's tags is counted once (`users`), not once per note sharing it (6.7 s -> 37 ms
    # for a note of a 10,000-note KB whose tags are each on ~5,000 notes).
    for other, display, users in conn.execute(
        "WITH mine AS (SELECT tag_id FROM notetag WHERE note_id = ?1),"
        " users AS (SELECT tag_id, count(*) AS n FROM notetag WHERE tag_id IN (SELECT tag_id FROM mine) GROUP BY tag_id)"
        " SELECT o.note_id, tag.display, users.n FROM mine t JOIN notetag o ON o.tag_id = t.tag_id AND o.note_id != ?1"
        " JOIN tag ON tag.id = t.tag_id JOIN users ON users.tag_id = t.tag_id", (note_id,)
    ):
        scores[other] = scores.get(other, 0) + 1.0 / max(1, users - 1)
        reasons.setdefault(other, []).append("#" + display)
    for other in conn.execute(
        "SELECT target_note_id FROM link WHERE note_id = ? AND target_note_id IS NOT NULL AND target_note_id != ?"
        " UNION ALL SELECT note_id FROM link WHERE target_note_id = ? AND note_id != ?",
        (note_id, note_id, note_id, note_id),
    ):
        scores[other[0]] = scores.get(other[0], 0) + 1.0
        reasons.setdefault(other[0], []).append("link")
    best = sorted(scores, key=lambda n: -scores[n])[:limit]
    titles = {nid: (p, t) for nid, p, t in conn.execute(
        f"SELECT id, path, title FROM note WHERE id IN ({','.join('?' * len(best))})", best)} if best else {}
    return [{"path": titles[n][0], "title": titles[n][1], "score": round(scores[n], 3),
             "because": sorted(set(reasons[n]))} for n in best if n in titles]


def orphans(conn: sqlite3.Connection) -> list[str]:
    """Notes with no links in or out."""
    return [r[0] for r in conn.execute(
        "SELECT path FROM note WHERE id NOT IN (SELECT note_id FROM link WHERE target_note_id IS NOT NULL)"
        " AND id NOT IN (SELECT target_note_id FROM link WHERE target_note_id IS NOT NULL) ORDER BY path")]
