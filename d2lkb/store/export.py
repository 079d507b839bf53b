"""Getting data out: a consistent copy of the KB, and cards as CSV, JSON or an Anki package."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

CARD_COLUMNS = ("id", "kind", "front", "back", "path", "line", "state", "due", "stability", "difficulty", "reps",
                "lapses", "suspended", "leech", "last_review")
LOG_COLUMNS = ("id", "card_id", "rating", "reviewed_at", "duration_ms", "state_before", "state_after",
               "stability_before", "stability_after", "difficulty_before", "difficulty_after", "due_before", "due_after")
STATES = {0: "new", 1: "learning", 2: "review", 3: "relearning"}


def backup(conn: sqlite3.Connection, dest: Path) -> Path:
    """A consistent copy of the live database (SQLite's online backup), checked for integrity."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose another name")
    target = sqlite3.connect(dest)
    try:
        conn.backup(target)
        ok = target.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        target.close()
    if ok != "ok":
        dest.unlink(missing_ok=True)
        raise RuntimeError(f"backup failed its integrity check: {ok}")
    return dest


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _cards(conn: sqlite3.Connection, card_ids: list[int] | None) -> list[dict]:
    rows = conn.execute(f"SELECT {', '.join(CARD_COLUMNS)} FROM card WHERE retired_at IS NULL ORDER BY path, line, id")
    wanted = None if card_ids is None else set(card_ids)
    tags: dict[int, list[str]] = {}
    for cid, display in conn.execute(
        "SELECT cardtag.card_id, tag.display FROM cardtag JOIN tag ON tag.id = cardtag.tag_id ORDER BY tag.name"
    ):
        tags.setdefault(cid, []).append(display)
    out = []
    for row in rows:
        card = dict(zip(CARD_COLUMNS, row, strict=True))
        if wanted is not None and card["id"] not in wanted:
            continue
        card["state"] = STATES.get(card["state"], card["state"])
        card["due"] = _iso(card["due"])
        card["last_review"] = _iso(card["last_review"])
        card["tags"] = tags.get(card["id"], [])
        out.append(card)
    return out


def export_json(conn: sqlite3.Connection, dest: Path, card_ids: list[int] | None = None) -> int:
    """Cards (with schedule and tags), their full review log and their import events."""
    cards = _cards(conn, card_ids)
    ids = {c["id"] for c in cards}
    log = [dict(zip(LOG_COLUMNS, r, strict=True)) for r in conn.execute(
        f"SELECT {', '.join(LOG_COLUMNS)} FROM reviewlog ORDER BY id")]
    log = [entry | {"reviewed_at": _iso(entry["reviewed_at"])} for entry in log if entry["card_id"] in ids]
    imports = [{"card_id": cid, "source": src, "source_ref": ref, "detail": json.loads(detail),
                "imported_at": _iso(at), "due_after": _iso(due)} for cid, src, ref, detail, at, due in conn.execute(
        "SELECT card_id, source, source_ref, detail, imported_at, due_after FROM importlog ORDER BY id")
        if cid in ids]
    Path(dest).write_text(json.dumps({"cards": cards, "reviews": log, "imports": imports}, ensure_ascii=False, indent=1), encoding="utf-8")
    return len(cards)


# A cell a spreadsheet would evaluate (OWASP "CSV injection"): it starts with = + - @, a tab or a CR.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value):
    """`value` as a CSV cell a spreadsheet shows as text: a string starting like a formula gets a `'`.

    `=cmd|' /C calc'!A0`, `+1+cmd`, `-2+3` and `@SUM(A1)` become `'=cmd|...` and so on, as OWASP
    advises: Excel and LibreOffice show the text instead of running it. A plain number (`-1`,
    `+2.5`, `-1e3`) is left alone: a spreadsheet reads it as the number it is, which is also what
    it says, and nothing runs. The price: a card whose text starts with `- item` or `=` reads back
    with the `'` in front; the JSON export keeps every text exactly.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def export_csv(conn: sqlite3.Connection, dest: Path, card_ids: list[int] | None = None) -> int:
    """Cards with their schedule and tags, one row each; text cells are neutralised (`csv_cell`)."""
    cards = _cards(conn, card_ids)
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*CARD_COLUMNS, "tags"])
        for c in cards:
            writer.writerow([csv_cell(v) for v in (*(c[k] for k in CARD_COLUMNS), " ".join(c["tags"]))])
    return len(cards)


def export_apkg(conn: sqlite3.Connection, dest: Path, card_ids: list[int] | None = None, **options) -> int:
    """An Anki package with note types per card kind, schedules and the full review log
    (see `d2lkb.store.anki.export`)."""
    from d2lkb.store.anki.export import export_apkg as write

    return write(conn, Path(dest), card_ids, **options)
