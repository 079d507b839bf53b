"""Open an Anki package with Anki's own engine and read what it holds.

The `anki` package (Anki's Rust engine, headless) imports the package into a fresh,
temporary collection: the legacy `collection.anki2`/`.anki21` and the current
`collection.anki21b` (zstd, protobuf) are all its business. Before that, the zip is
checked here so that a broken file gets a clear message naming it.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from d2lkb.store.imports.common import ImportFailed

COLLECTION_NAMES = ("collection.anki21b", "collection.anki21", "collection.anki2")
# Collection schema versions of the legacy layout the engine reads (11: Anki 2.1, 18: current).
KNOWN_SCHEMA = range(11, 19)


@dataclass
class AnkiCard:
    id: int
    ord: int
    deck: str
    type: int  # 0 new, 1 learning, 2 review, 3 relearning
    queue: int  # -3/-2 buried, -1 suspended, 0 new, 1 learning (due: seconds), 2 review, 3 day learning (due: day)
    due: int
    ivl: int
    factor: int
    reps: int
    lapses: int
    stability: float | None
    difficulty: float | None
    last_review: int | None  # seconds
    revlog: list[tuple[int, int, int, int, int]] = field(default_factory=list)  # (ms id, ease, ivl, time, type)


@dataclass
class AnkiNote:
    id: int
    guid: str
    notetype: str
    is_cloze: bool
    fields: list[tuple[str, str]]  # (name, value)
    templates: list[tuple[str, str, str]]  # (name, question format, answer format)
    tags: list[str]
    cards: list[AnkiCard]


@dataclass
class AnkiPackage:
    path: Path
    notes: list[AnkiNote]
    today: int  # the collection's day number of today (review cards' `due` counts in these days)
    day_zero: date  # the date of the collection's day 0 (day N is `day_zero` + N days)
    media_dir: Path
    tmp: tempfile.TemporaryDirectory


def _check_zip(path: Path) -> None:
    if not path.is_file():
        raise ImportFailed([f"{path}: no such file"])
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            bad = z.testzip()
            if bad is not None:
                raise ImportFailed([f"{path}: damaged zip member {bad} (CRC mismatch; truncated download?)"])
            found = [n for n in COLLECTION_NAMES if n in names]
            if not found:
                raise ImportFailed([f"{path}: not an Anki package (a zip without {' / '.join(COLLECTION_NAMES)};"
                                    f" it holds {', '.join(sorted(names)[:5]) or 'nothing'})"])
            if found[0] != "collection.anki21b":
                with tempfile.TemporaryDirectory() as tmp:
                    z.extract(found[0], tmp)
                    _check_legacy(path, found[0], Path(tmp) / found[0])
    except zipfile.BadZipFile as exc:
        raise ImportFailed([f"{path}: not a readable zip archive ({exc}); truncated or not an Anki package"]) from None
    except (OSError, EOFError) as exc:
        raise ImportFailed([f"{path}: cannot read the archive ({exc}); truncated?"]) from None


def _check_legacy(path: Path, member: str, db: Path) -> None:
    """A legacy collection: a known schema version and no duplicate notes (which the engine would merge)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            (ver,) = conn.execute("SELECT ver FROM col").fetchone()
            dups = conn.execute("SELECT id, count(*) FROM notes GROUP BY id HAVING count(*) > 1").fetchall()
            dup_guids = conn.execute("SELECT guid, group_concat(id, ', ') FROM notes GROUP BY guid"
                                     " HAVING count(*) > 1").fetchall()
        finally:
            conn.close()
    except (sqlite3.DatabaseError, TypeError) as exc:
        raise ImportFailed([f"{path}: {member} is not an Anki collection ({exc})"]) from None
    if ver not in KNOWN_SCHEMA:
        raise ImportFailed([f"{path}: {member} has collection schema version {ver}; this d2lkb reads"
                            f" {KNOWN_SCHEMA.start}..{KNOWN_SCHEMA.stop - 1}"])
    problems = [f"{path}: {member}: note id {nid} occurs {n} times" for nid, n in dups]
    problems += [f"{path}: {member}: notes {ids} share the GUID {guid!r} (duplicate note)" for guid, ids in dup_guids]
    if problems:
        raise ImportFailed(problems)


def _day_zero(col) -> date:
    """The local date of the collection's day 0: its creation date, in the UTC offset it was created
    with (Anki's engine counts the days since then by date, so day N is that date + N days). Read
    from the collection, not from the clock: the day numbers mean the same dates whenever they are
    converted (a conversion against the clock is off by one when the day rolls over in between)."""
    minutes_west = col.get_config("creationOffset", None)
    zone = timezone(timedelta(minutes=-minutes_west)) if isinstance(minutes_west, int) else None
    return datetime.fromtimestamp(col.crt, zone).date()


def read_package(path: Path) -> AnkiPackage:
    """Everything the package holds, read through a temporary collection (call `.tmp.cleanup()` after)."""
    path = Path(path)
    _check_zip(path)
    try:
        from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest
        from anki.errors import AnkiException
    except ImportError:
        raise ImportFailed([f"{path}: reading Anki packages needs Anki's engine: pip install 'd2lkb[anki]'"
                            " (PyPI `anki`)"]) from None

    # The engine moves review cards' day numbers by how many days the package's collection is
    # ahead of the new one, each counted up to today on the clock: should the day roll over while it
    # imports (between the two counts), the package is imported again into a fresh collection (once:
    # the next rollover is a day away).
    for attempt in (1, 2):
        tmp = tempfile.TemporaryDirectory(prefix="d2lkb-apkg-")
        col = Collection(str(Path(tmp.name) / "collection.anki2"))
        try:
            today = col.sched.today
            col.import_anki_package(ImportAnkiPackageRequest(
                package_path=str(path.resolve()),
                options=ImportAnkiPackageOptions(with_scheduling=True, with_deck_configs=False)))
        except BaseException as exc:
            col.close()
            tmp.cleanup()
            if isinstance(exc, AnkiException):
                raise ImportFailed([f"{path}: Anki could not read it: {exc}"]) from None
            raise
        if col.sched.today == today or attempt == 2:
            break
        col.close()
        tmp.cleanup()
    try:
        decks = {d["id"]: d["name"] for d in col.decks.all()}
        models = {}
        for m in col.models.all():
            models[m["id"]] = (m["name"], m["type"] == 1, [f["name"] for f in m["flds"]],
                               [(t["name"], t["qfmt"], t["afmt"]) for t in m["tmpls"]])
        revlog: dict[int, list] = {}
        for rid, cid, ease, ivl, time_ms, kind in col.db.all(
                "SELECT id, cid, ease, ivl, time, type FROM revlog ORDER BY id"):
            revlog.setdefault(cid, []).append((rid, ease, ivl, time_ms, kind))
        cards: dict[int, list[AnkiCard]] = {}
        for (cid, nid, did, odid, ord_, ctype, queue, due, odue, ivl, factor, reps, lapses,
             data) in col.db.all("SELECT id, nid, did, odid, ord, type, queue, due, odue, ivl, factor, reps, lapses,"
                                 " data FROM cards ORDER BY nid, ord"):
            memory = json.loads(data) if data else {}
            if odid:  # in a filtered deck: the home deck and the real due date are the original ones
                did, due = odid, odue or due
            cards.setdefault(nid, []).append(AnkiCard(
                cid, ord_, decks.get(did, "Default"), ctype, queue, due, ivl, factor, reps, lapses,
                memory.get("s"), memory.get("d"), memory.get("lrt"), revlog.get(cid, [])))
        notes = []
        for nid, guid, mid, tags, flds in col.db.all("SELECT id, guid, mid, tags, flds FROM notes ORDER BY id"):
            name, is_cloze, field_names, templates = models[mid]
            values = flds.split("\x1f")
            notes.append(AnkiNote(nid, guid, name, is_cloze, list(zip(field_names, values, strict=False)), templates,
                                  tags.split(), cards.get(nid, [])))
        return AnkiPackage(path, notes, col.sched.today, _day_zero(col), Path(col.media.dir()), tmp)
    except BaseException:
        col.close()
        tmp.cleanup()
        raise
    finally:
        if col.db is not None:
            col.close()
