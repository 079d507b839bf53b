"""`d2lkb import osr`: an Obsidian Spaced Repetition vault's SM-2 schedules as FSRS states.

The vault is the notes folder. Its notes are synced (cards get their ids), every OSR
schedule comment is matched to its cards (`d2lkb.notes.osr.assign`), and each
schedule becomes the card's FSRS state: stability and difficulty from FSRS's own
SM-2 conversion, due on OSR's due date (at the start of that review day), last
reviewed one interval earlier. Each taken-over schedule is an `importlog` event.

Rules:
- one transaction: any impossible schedule aborts everything, with file:line:column;
- running it again changes nothing (a card already holding that import is left alone);
- a card already answered in d2lkb keeps its d2lkb schedule (reported as kept);
- OSR's per-note schedule (front matter `sr-due`/`sr-interval`/`sr-ease`, from its note
  review) is given to the note's cards that have no schedule comment of their own;
- the notes are not touched unless `strip=True`, which removes the comments and keys
  after the import committed (and syncs again; card identity keeps every schedule).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from d2lkb.notes.osr import (
    OsrError,
    Sm2Schedule,
    assign,
    note_schedule,
    schedule_comments,
    strip_schedule_data,
)
from d2lkb.notes.parse import parse_note
from d2lkb.review.convert import SM2_RETENTION, memory_state_from_sm2
from d2lkb.review.days import day_start
from d2lkb.review.scheduler import Schedule
from d2lkb.review.types import CardState
from d2lkb.store.db import transaction
from d2lkb.store.imports.common import (
    ImportFailed,
    ImportReport,
    Problem,
    card_schedule,
    last_import_detail,
    record_import,
)
from d2lkb.store.sync import decode_note, is_ignored, walk_notes

if TYPE_CHECKING:
    from d2lkb.store.kb import KnowledgeBase

SOURCE = "osr"


def due_timestamp(day: dt.date, rollover_hour: int, tz: dt.tzinfo | None) -> int:
    """Start of the review day `day` (local, at the rollover hour) as UTC seconds."""
    noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=tz) if tz else \
        dt.datetime(day.year, day.month, day.day, 12).astimezone()
    return int(day_start(noon, rollover_hour, tz).timestamp())


def fsrs_schedule(sm2: Sm2Schedule, rollover_hour: int, tz: dt.tzinfo | None,
                  parameters: list[float] | None) -> Schedule:
    stability, difficulty = memory_state_from_sm2(sm2.ease / 100, sm2.interval, parameters)
    due = due_timestamp(sm2.due, rollover_hour, tz)
    return Schedule(CardState.REVIEW, None, stability, difficulty, due, due - sm2.interval * 86400)


def _read(files) -> list[tuple[str, str]]:
    out = []
    for f in files:
        with open(f.abs, "rb") as fh:
            out.append((f.rel, decode_note(fh.read(), f.rel, [])))
    return out


def import_osr(kb: KnowledgeBase, *, strip: bool = False) -> ImportReport:
    """Take over every OSR schedule of the notes folder (see the module docstring)."""
    report = ImportReport(SOURCE)
    notes_dir = Path(kb.config.notes_dir)
    hour, tz = kb.config.review.day_starts_at, getattr(kb, "review_tz", None)
    with kb.lock, transaction(kb.conn):
        kb.sync()
        now = int(kb.now().timestamp())
        parameters = kb._parameters()
        errors: list[str] = []
        plans: list[tuple[str, int, int, Sm2Schedule, str]] = []  # (path, line, card id, schedule, ref)
        texts = _read(walk_notes(notes_dir, [], follow_links=kb.config.sync.follow_symlinks))
        for rel, text in texts:
            if "SR:" not in text and "sr-due" not in text:
                continue
            parsed = parse_note(text, rel, kb.config.parse)
            if is_ignored(parsed):
                continue
            try:
                comments = schedule_comments(text, rel)
                per_note = note_schedule(parsed.front_matter, rel)
            except OsrError as exc:
                errors.append(str(exc))
                continue
            rows = kb.conn.execute("SELECT id, kind, reverse, prompt, line FROM card WHERE path = ?"
                                   " AND retired_at IS NULL", (rel,)).fetchall()
            by_key = {(k, bool(r), p, ln): cid for cid, k, r, p, ln in rows}

            def card_id(i: int, rel=rel, parsed=parsed, by_key=by_key) -> int | None:
                c = parsed.cards[i]
                return by_key.get((str(c.kind), bool(c.reverse), c.prompt, c.line))

            assigned, problems = assign(parsed.cards, comments)
            report.problems.extend(Problem(f"{rel}:{line}", msg) for line, msg in problems)
            with_comment = {i for i, *_ in assigned}
            for i, sm2, comment, k in assigned:
                cid = card_id(i)
                if cid is None:
                    report.problems.append(Problem(f"{rel}:{comment.line}", "card not in the knowledge base; skipped"))
                    continue
                plans.append((rel, comment.line, cid, sm2, f"{rel}:{comment.line}#{k + 1}"))
            if per_note is not None:
                for i in range(len(parsed.cards)):
                    cid = card_id(i)
                    if i not in with_comment and cid is not None:
                        plans.append((rel, 1, cid, per_note, f"{rel}:front-matter"))
        if errors:
            raise ImportFailed(errors)
        for _rel, _line, cid, sm2, ref in plans:
            detail = sm2.to_dict() | {"sm2_retention": SM2_RETENTION}
            if last_import_detail(kb.conn, cid, SOURCE) == detail:
                report.unchanged += 1
                continue
            _before, answered = card_schedule(kb.conn, cid)
            if answered:
                report.kept += 1
                continue
            record_import(kb.conn, cid, SOURCE, ref, detail, fsrs_schedule(sm2, hour, tz, parameters), now)
            report.imported += 1
    if strip:
        for rel, text in texts:
            if "SR:" not in text and "sr-due" not in text:
                continue
            stripped = strip_schedule_data(text, rel)
            if stripped != text:
                (notes_dir / rel).write_text(stripped, encoding="utf-8")
                report.stripped.append(rel)
        if report.stripped:
            kb.sync()
    return report
