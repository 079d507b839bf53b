"""Cards as an Anki package with their schedule and their whole history.

Note types (fixed ids, so a newer export updates the same notes in Anki):
- `d2lkb Basic` for `Q :: A`, multi-line, formula and snippet cards;
- `d2lkb Basic (and reversed card)` for a `:::`/`??` pair (card 1 forward, card 2 reverse);
- `d2lkb Cloze`, a real cloze type: one note per paragraph, `{{cN::...}}` per deletion.
Every note also carries `Source` (note path and line) and `Markdown` (the card's own
Markdown, HTML-escaped: what `d2lkb import apkg` writes back, so a round trip loses nothing).

genanki lays out the collection (legacy `collection.anki2`, which every Anki opens);
then the cards get their schedule (type/queue/due/ivl, FSRS memory state in `data`) and
the review log becomes Anki's revlog. d2lkb's import events become revlog entries of
Anki's own "manual" kind (type 4, ease 0), which is what Anki logs when it reschedules.
"""

from __future__ import annotations

import html
import json
import os
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from d2lkb.notes.cards import CLOZE_GAP
from d2lkb.notes.latex import describe_row, split_rows
from d2lkb.review.days import day_start
from d2lkb.store.anki.html import to_anki

BASIC_MODEL_ID = 1_607_392_319
REVERSED_MODEL_ID = 1_607_392_320
CLOZE_MODEL_ID = 1_607_392_321
DECK_ID = 2_059_400_110
MARKDOWN_FIELD = "Markdown"
MODEL_NAMES = ("d2lkb Basic", "d2lkb Basic (and reversed card)", "d2lkb Cloze")
CSS = ".card { font-family: arial; font-size: 20px; text-align: center; color: black; background-color: white; }\n" \
      ".source { font-size: 12px; color: #888; margin-top: 1em; }\n.cloze { font-weight: bold; color: blue; }\n"

_CARD_COLS = ("id", "kind", "front", "back", "prompt", "context", "path", "line", "reverse", "sibling_key", "state",
              "step", "stability", "difficulty", "due", "last_review", "reps", "lapses", "suspended")


@dataclass
class _Group:
    """One Anki note: its cards in Anki's card order (ord 0, 1, ...)."""

    kind: str  # basic | reversed | cloze
    cards: list[dict] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    display: str = ""  # a formula row's whole display (its sibling rows'), kept as its Markdown (see `_groups`)


def formula_display(rows: list[dict]) -> str:
    """One display (`aligned`) that makes these formula rows again, or "" when a row's name does not
    come from its own label (a section's title), which a display of its own would not keep."""
    if len(rows) < 2 or any(describe_row(r["context"]).name != r["front"] for r in rows):
        return ""
    body = " \\\\\n".join(r["context"].strip() for r in rows)
    return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"


def display_rows(markdown: str) -> int:
    """How many named rows a Markdown block that is one `formula_display` holds (0 for any other block)."""
    text = markdown.strip()
    if not (text.startswith("$$\n\\begin{aligned}") and text.endswith("\\end{aligned}\n$$")):
        return 0
    rows = split_rows(text[2:-2]) or []
    return sum(describe_row(r.latex).name is not None for r in rows)


def card_markdown(kind: str, cards: list[dict]) -> str:
    """The Markdown block that makes these cards again (what `import apkg` writes)."""
    first = cards[0]
    if kind == "cloze":
        return cloze_markdown(cards)
    if first["kind"] == "formula":
        return f"### {first['front']}\n\n{first['back']}"
    if first["kind"] == "snippet":
        return f"{first['front']}\n{first['back']}"
    front, back = first["front"], first["back"]
    rev = kind == "reversed"
    if "\n" not in front and "\n" not in back:
        return f"{front} {':::' if rev else '::'} {back}"
    return f"{front}\n{'??' if rev else '?'}\n{back}"


def _deletion_spans(cards: list[dict]) -> list[tuple[int, int]] | None:
    """Where each cloze card's deletion sits in the paragraph (its `context`), or None if unclear."""
    context = cards[0]["context"]
    spans = []
    for c in cards:
        at = c["front"].find(CLOZE_GAP)
        if at < 0 or c["front"].find(CLOZE_GAP, at + 1) >= 0 and CLOZE_GAP in context:
            return None
        start = context.find(c["back"], max(0, at - 2))
        if start < 0 or start > at + 2:
            return None
        spans.append((start, start + len(c["back"])))
    return spans


def cloze_markdown(cards: list[dict], marker=("==", "==")) -> str:
    """The paragraph with each card's deletion marked (`==x==`, or `{{cN::x}}` with a marker function)."""
    context = cards[0]["context"]
    spans = _deletion_spans(cards)
    if spans is None:  # cannot place the deletions: one paragraph per card (each keeps its own gap)
        return "\n\n".join(c["front"].replace(CLOZE_GAP, f"{marker[0]}{c['back']}{marker[1]}", 1) for c in cards)
    out, prev = [], 0
    order = sorted(range(len(cards)), key=lambda i: spans[i][0])
    for i in order:
        start, end = spans[i]
        if start < prev:
            return "\n\n".join(c["front"].replace(CLOZE_GAP, f"{marker[0]}{c['back']}{marker[1]}", 1) for c in cards)
        opening = marker[0] if isinstance(marker[0], str) else marker[0](i)
        out += [context[prev:start], opening, context[start:end], marker[1]]
        prev = end
    out.append(context[prev:])
    return "".join(out)


def _groups(conn: sqlite3.Connection, card_ids: list[int] | None) -> list[_Group]:
    wanted = None if card_ids is None else set(card_ids)
    cards = [dict(zip(_CARD_COLS, r, strict=True)) for r in conn.execute(
        f"SELECT {', '.join(_CARD_COLS)} FROM card WHERE retired_at IS NULL ORDER BY path, line, id")]
    cards = [c for c in cards if wanted is None or c["id"] in wanted]
    tags: dict[int, list[str]] = {}
    for cid, display in conn.execute("SELECT cardtag.card_id, tag.display FROM cardtag JOIN tag"
                                     " ON tag.id = cardtag.tag_id ORDER BY tag.name"):
        tags.setdefault(cid, []).append(display)
    groups: list[_Group] = []
    by_key: dict[str, _Group] = {}
    for c in cards:
        key = c["sibling_key"]
        if c["kind"] == "cloze" or (c["kind"] == "basic" and key.startswith("reverse:")):
            kind = "cloze" if c["kind"] == "cloze" else "reversed"
            group = by_key.get(key)
            if group is None:
                group = by_key[key] = _Group(kind, tags=tags.get(c["id"], []))
                groups.append(group)
            group.cards.append(c)
        else:
            groups.append(_Group("basic", [c], tags.get(c["id"], [])))
    # The named rows of one display are siblings in d2lkb. Anki has one card per Basic note, so each
    # row stays a note of its own, but each carries the whole display as its Markdown: the import
    # writes that display once for the run of notes, and the rows come back as siblings.
    rows: dict[str, list[_Group]] = {}
    for g in groups:
        if g.kind == "basic" and g.cards[0]["kind"] == "formula" and g.cards[0]["sibling_key"]:
            rows.setdefault(g.cards[0]["sibling_key"], []).append(g)
    for run in rows.values():
        display = formula_display([g.cards[0] for g in run])
        for g in run:
            g.display = display
    for g in groups:
        if g.kind == "reversed":
            g.cards.sort(key=lambda c: c["reverse"])
            if len(g.cards) == 1 and g.cards[0]["reverse"]:
                g.kind = "basic"  # only the reverse card was selected
    return groups


def _models():
    import genanki

    fields = [{"name": "Front"}, {"name": "Back"}, {"name": "Source"}, {"name": MARKDOWN_FIELD}]
    source = '<div class="source">{{Source}}</div>'
    basic = genanki.Model(BASIC_MODEL_ID, MODEL_NAMES[0], fields=fields, css=CSS, templates=[
        {"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}" + source}])
    reversed_ = genanki.Model(REVERSED_MODEL_ID, MODEL_NAMES[1], fields=fields, css=CSS, templates=[
        {"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}" + source},
        {"name": "Card 2", "qfmt": "{{Back}}", "afmt": "{{FrontSide}}<hr id=answer>{{Front}}" + source}])
    cloze = genanki.Model(CLOZE_MODEL_ID, MODEL_NAMES[2], model_type=genanki.Model.CLOZE, css=CSS,
                          fields=[{"name": "Text"}, {"name": "Back Extra"}, {"name": "Source"},
                                  {"name": MARKDOWN_FIELD}],
                          templates=[{"name": "Cloze", "qfmt": "{{cloze:Text}}",
                                      "afmt": "{{cloze:Text}}<br>{{Back Extra}}" + source}])
    return {"basic": basic, "reversed": reversed_, "cloze": cloze}


def _note_fields(group: _Group) -> list[str]:
    first = group.cards[0]
    source = html.escape(f"{first['path']}:{first['line']}")
    markdown = html.escape(group.display or card_markdown(group.kind, group.cards), quote=False)
    if group.kind == "cloze":
        text = cloze_markdown(group.cards, marker=(lambda i: f"{{{{c{i + 1}::", "}}"))
        return [to_anki(text), "", source, markdown]
    return [to_anki(first["front"]), to_anki(first["back"]), source, markdown]


def _anki_tag(tag: str) -> str:
    return tag.replace(" ", "_").replace("/", "::")


def _days(seconds: int) -> int:
    return max(1, round(seconds / 86400))


def _ivl(state: int, due: int, at: int | None) -> int:
    """Anki's revlog interval: days for review cards, negative seconds while learning."""
    if at is None or state == 0:
        return 0
    if state == 2:
        return _days(due - at)
    return -max(1, due - at)


def export_apkg(conn: sqlite3.Connection, dest: Path, card_ids: list[int] | None = None, deck: str = "d2lkb", *,
                now: datetime | None = None, rollover_hour: int = 4, tz: tzinfo | None = None,
                desired_retention: float = 0.9) -> int:
    """Write the cards (all live ones, or `card_ids`) as an Anki package at `dest`; returns how many."""
    import genanki

    now = now or datetime.now(UTC)
    models = _models()
    anki_deck = genanki.Deck(DECK_ID, deck)
    groups = _groups(conn, card_ids)
    for g in groups:
        note = genanki.Note(model=models[g.kind], fields=_note_fields(g), tags=[_anki_tag(t) for t in g.tags],
                            guid=genanki.guid_for("d2lkb", g.cards[0]["id"]))
        anki_deck.add_note(note)
    package = genanki.Package(anki_deck)
    fd, db_path = tempfile.mkstemp(suffix=".anki2")
    os.close(fd)
    try:
        anki = sqlite3.connect(db_path)
        try:
            stamp = now.timestamp()
            package.write_to_db(anki.cursor(), stamp, iter(range(int(stamp * 1000), 2**62)))
            _write_schedule(conn, anki, groups, now, rollover_hour, tz, desired_retention)
            anki.commit()
        finally:
            anki.close()
        tmp = Path(dest).with_name(Path(dest).name + ".part")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(db_path, "collection.anki2")
            z.writestr("media", "{}")
        os.replace(tmp, dest)
    finally:
        os.unlink(db_path)
    return sum(len(g.cards) for g in groups)


def _write_schedule(conn: sqlite3.Connection, anki: sqlite3.Connection, groups: list[_Group], now: datetime,
                    rollover_hour: int, tz: tzinfo | None, desired_retention: float) -> None:
    # The collection's day 0 starts at the rollover hour; review cards are due on day N after it.
    crt = day_start(datetime(2020, 1, 1, 12, tzinfo=UTC), rollover_hour, tz)
    (conf,) = anki.execute("SELECT conf FROM col").fetchone()
    conf = json.loads(conf)
    # genanki's collection says scheduler v1, whose 3-button learning answers Anki renumbers on import
    # (Good 3 -> Easy 4): ours are v2/v3 answers already (and FSRS needs v3).
    conf.update({"schedVer": 2, "sched2021": True})
    anki.execute("UPDATE col SET crt = ?, conf = ?", (int(crt.timestamp()), json.dumps(conf)))
    by_guid = {guid: nid for nid, guid in anki.execute("SELECT id, guid FROM notes")}
    new_position = 0
    revlog_ids: set[int] = set()
    for g in groups:
        import genanki

        nid = by_guid[genanki.guid_for("d2lkb", g.cards[0]["id"])]
        for ord_, c in enumerate(g.cards):
            row = anki.execute("SELECT id FROM cards WHERE nid = ? AND ord = ?", (nid, ord_)).fetchone()
            if row is None:
                continue
            anki_cid = row[0]
            state, due = c["state"], c["due"]
            queue = {0: 0, 1: 1, 2: 2, 3: 1}[state]
            if state == 0:
                new_position += 1
                anki_due, ivl = new_position, 0
            elif state == 2:
                due_day = day_start(datetime.fromtimestamp(due, UTC), rollover_hour, tz)
                anki_due = round((due_day - crt) / timedelta(days=1))
                ivl = _days(due - (c["last_review"] or due))
            else:
                anki_due, ivl = due, 0
            if c["suspended"]:
                queue = -1
            data = {}
            if c["stability"] is not None:
                data = {"s": c["stability"], "d": c["difficulty"], "dr": desired_retention}
                if c["last_review"] is not None:
                    data["lrt"] = c["last_review"]
            left = 0 if state in (0, 2) else 1
            anki.execute("UPDATE cards SET type=?, queue=?, due=?, ivl=?, factor=?, reps=?, lapses=?, left=?,"
                         " data=? WHERE id=?",
                         (state, queue, anki_due, ivl, 2500 if state else 0, c["reps"], c["lapses"], left,
                          json.dumps(data) if data else "", anki_cid))
            _write_revlog(conn, anki, c["id"], anki_cid, revlog_ids)


def _unique_ms(ts: int, used: set[int]) -> int:
    ms = ts * 1000
    while ms in used:
        ms += 1
    used.add(ms)
    return ms


def _write_revlog(conn: sqlite3.Connection, anki: sqlite3.Connection, card_id: int, anki_cid: int,
                  used: set[int]) -> None:
    events = []
    for (rating, at, duration, s_before, s_after, due_before, due_after, last_before,
         d_after) in conn.execute(
            "SELECT rating, reviewed_at, duration_ms, state_before, state_after, due_before, due_after,"
            " last_review_before, difficulty_after FROM reviewlog WHERE card_id = ? ORDER BY id", (card_id,)):
        kind = {0: 0, 1: 0, 2: 1, 3: 2}[s_before]
        factor = round(d_after * 100) if d_after is not None else 0
        events.append((at, rating, _ivl(s_after, due_after, at), _ivl(s_before, due_before, last_before), factor,
                       min(int(duration), 60000), kind))
    for at, s_after, due_after, last_after in conn.execute(
            "SELECT imported_at, state_after, due_after, last_review_after FROM importlog WHERE card_id = ?"
            " ORDER BY id", (card_id,)):
        events.append((at, 0, _ivl(s_after, due_after, last_after), 0, 0, 0, 4))
    events.sort(key=lambda e: e[0])
    anki.executemany("INSERT INTO revlog (id, cid, usn, ease, ivl, lastIvl, factor, time, type)"
                     " VALUES (?, ?, -1, ?, ?, ?, ?, ?, ?)",
                     [(_unique_ms(at, used), anki_cid, *rest) for at, *rest in events])
