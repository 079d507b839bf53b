"""`d2lkb import apkg`: an Anki package as Markdown notes, with schedules and review history.

The Markdown side (files, blocks, what cannot be carried over) is `d2lkb.store.anki.notes`.

Each Anki card's revlog answers become d2lkb review-log entries (their FSRS states replayed
with d2lkb's scheduler); Anki's manual reschedules are import events, not reviews. The card
then takes Anki's schedule: its due date and state, and its FSRS memory state — Anki's own
when the collection used FSRS, else computed by FSRS from the review history (fsrs-rs), else
converted from SM-2's interval and ease. That is recorded as an import event.

All or nothing: the package is read and checked, the Markdown built, then the files are
written and the KB changed inside one transaction; on any failure the written files are
removed again and the transaction rolled back.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from d2lkb.notes.parse import parse_note
from d2lkb.review import scheduler
from d2lkb.review.convert import memory_state_from_history, memory_state_from_sm2
from d2lkb.review.scheduler import Schedule
from d2lkb.review.types import CardState
from d2lkb.store.anki.notes import ATTACHMENTS, DeckFile, layout
from d2lkb.store.anki.read import AnkiCard, AnkiNote, AnkiPackage, read_package
from d2lkb.store.db import transaction
from d2lkb.store.imports.common import ImportFailed, ImportReport, Problem, record_import
from d2lkb.store.imports.osr import due_timestamp

if TYPE_CHECKING:
    from d2lkb.store.kb import KnowledgeBase

SOURCE = "apkg"


# -- schedules -----------------------------------------------------------------------------------------------
@dataclass
class _Plan:
    card_id: int
    anki: AnkiCard
    note: AnkiNote


def _anki_day(package: AnkiPackage, day_number: int, hour: int, tz) -> int:
    """Start of the review day Anki numbers `day_number` (a date counted from the collection's day 0,
    never from the clock: see `read._day_zero`)."""
    return due_timestamp(package.day_zero + timedelta(days=day_number), hour, tz)


def _target(card: AnkiCard, package: AnkiPackage, hour: int, tz, parameters,
            replayed: Schedule | None, reviews: list[tuple[int, int]], now: int) -> Schedule:
    state = CardState(card.type) if card.type in (0, 1, 2, 3) else CardState.NEW
    if state == CardState.NEW:  # reset in Anki after some reviews: new again (as of the import), history kept
        return Schedule(CardState.NEW, None, None, None, now, None)
    # Review and day-learning cards are due on a day number; intraday learning at a time (seconds).
    due = card.due if card.due > 1_000_000_000 else _anki_day(package, card.due, hour, tz)
    if card.stability is not None and card.difficulty is not None:
        s, d = float(card.stability), float(card.difficulty)
    else:
        memory = memory_state_from_history(reviews, parameters) if reviews else None
        if memory is None and state == CardState.REVIEW:
            memory = memory_state_from_sm2(max(card.factor, 1300) / 1000, max(card.ivl, 1), parameters)
        if memory is None and replayed is not None and replayed.stability is not None:
            memory = (replayed.stability, replayed.difficulty or 5.0)
        s, d = memory if memory is not None else (None, None)
    last = card.last_review or (card.revlog[-1][0] // 1000 if card.revlog else None)
    if last is None and state == CardState.REVIEW:
        last = due - card.ivl * 86400
    if s is None:
        state = CardState.LEARNING
    step = None if state == CardState.REVIEW else 0
    return Schedule(state, step, s, d, due, last)


def _days_between(rows: list[tuple[int, int]], hour: int, tz) -> list[tuple[int, int]]:
    """(rating, days since the previous answer) for fsrs-rs, days counted in review days."""
    out, prev = [], None
    for ts, rating in rows:
        day = (datetime.fromtimestamp(ts, UTC).astimezone(tz) - timedelta(hours=hour)).date()
        out.append((rating, 0 if prev is None else (day - prev).days))
        prev = day
    return out


def _apply(kb: KnowledgeBase, plan: _Plan, package: AnkiPackage, report: ImportReport, now: int) -> None:
    conn, cfg = kb.conn, kb.config.review
    hour, tz = cfg.day_starts_at, getattr(kb, "review_tz", None)
    parameters = kb._parameters()
    card = plan.anki
    exact = replace(cfg, fuzz=False)  # the interval comes from Anki's revlog; fuzz would only blur it
    before = Schedule()
    answers: list[tuple[int, int]] = []
    reps = lapses = 0
    for rid, ease, ivl, time_ms, kind in card.revlog:
        at = rid // 1000
        if ease not in (1, 2, 3, 4) or kind in (4, 5):
            record_import(conn, plan.card_id, SOURCE, f"anki:{plan.note.guid}:{card.ord}:revlog:{rid}",
                          {"guid": plan.note.guid, "anki_revlog": rid, "type": kind, "ivl": ivl}, before, at)
            continue
        after = scheduler.answer(before, ease, datetime.fromtimestamp(at, UTC), exact, parameters)
        if ivl:  # Anki's own record of the interval given: days, or seconds (negative) while learning
            after = replace(after, due=at + (ivl * 86400 if ivl > 0 else -ivl))
        lapse = scheduler.is_lapse(before, ease)
        conn.execute(
            "INSERT INTO reviewlog (card_id, rating, reviewed_at, duration_ms, state_before, state_after,"
            " step_before, step_after, stability_before, stability_after, difficulty_before, difficulty_after,"
            " due_before, due_after, last_review_before, last_review_after, reps_before, reps_after,"
            " lapses_before, lapses_after) VALUES (?,?,?,?, ?,?,?,?, ?,?,?,?, ?,?,?,?, ?,?,?,?)",
            (plan.card_id, ease, at, max(0, time_ms), int(before.state), int(after.state), before.step, after.step,
             before.stability, after.stability, before.difficulty, after.difficulty, before.due, after.due,
             before.last_review, after.last_review, reps, reps + 1, lapses, lapses + lapse))
        reps, lapses = reps + 1, lapses + lapse
        answers.append((at, ease))
        before = after
        report.reviews += 1
    if card.type == 0 and not card.revlog:
        return  # a new card: nothing to carry over
    target = _target(card, package, hour, tz, parameters, before if answers else None,
                     _days_between(answers, hour, tz), now)
    detail = {"deck": card.deck, "guid": plan.note.guid, "note_id": plan.note.id, "card_id": card.id, "type": card.type,
              "queue": card.queue, "due": card.due, "ivl": card.ivl, "factor": card.factor,
              "fsrs_memory_state": card.stability is not None}
    record_import(kb.conn, plan.card_id, SOURCE, f"anki:{plan.note.guid}:{card.ord}", detail, target, now,
                  reps=card.reps, lapses=card.lapses)
    if card.queue == -1:
        conn.execute("UPDATE card SET suspended = 1 WHERE id = ?", (plan.card_id,))
    report.imported += 1


def import_apkg(kb: KnowledgeBase, package_path: Path) -> ImportReport:
    """Import an Anki package into the notes folder and the KB (see the module docstring)."""
    report = ImportReport(SOURCE)
    notes_dir = Path(kb.config.notes_dir)
    package = read_package(Path(package_path))
    try:
        return _import(kb, package, notes_dir, report)
    finally:
        package.tmp.cleanup()


def _import(kb: KnowledgeBase, package: AnkiPackage, notes_dir: Path, report: ImportReport) -> ImportReport:
    files, media = layout(package, notes_dir, report.problems)
    errors = []
    for f in files:
        if (notes_dir / f.rel).exists():
            errors.append(f"{notes_dir / f.rel}: exists (deck {f.deck!r} was imported before?); move it away first")
    for name in media:
        dest = notes_dir / ATTACHMENTS / name
        if dest.exists() and dest.read_bytes() != (package.media_dir / name).read_bytes():
            errors.append(f"{dest}: exists with other content than the package's media file {name!r}")
    known = {guid for (guid,) in kb.conn.execute(
        "SELECT json_extract(detail, '$.guid') FROM importlog WHERE source = ?", (SOURCE,))}
    errors += [f"{package.path}: note id {n.id} (GUID {n.guid!r}) was already imported into this knowledge base"
               for n in package.notes if n.guid in known]
    if errors:
        raise ImportFailed(errors)

    created: list[Path] = []
    try:
        with kb.lock, transaction(kb.conn):
            for f in files:
                _write_new(notes_dir / f.rel, f.text.encode("utf-8"), notes_dir, created)
                report.notes_written.append(f.rel)
            for name in media:
                dest = notes_dir / ATTACHMENTS / name
                if not dest.exists():
                    _write_new(dest, (package.media_dir / name).read_bytes(), notes_dir, created)
                    report.media += 1
            sync_report = kb.sync()
            bad = [w for w in sync_report.warnings if any(w.path == f.rel for f in files)]
            report.problems += [Problem(f"{w.path}:{w.line}", w.message) for w in bad]
            now = int(kb.now().timestamp())
            for f in files:
                for plan in _plans(kb, f, report.problems):
                    _apply(kb, plan, package, report, now)
    except BaseException:
        for path in reversed(created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
    return report


def _write_new(path: Path, data: bytes, root: Path, created: list[Path]) -> None:
    missing = []
    parent = path.parent
    while parent != root and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        d.mkdir()
        created.append(d)
    with open(path, "xb") as fh:  # never overwrite
        created.append(path)
        fh.write(data)


def _plans(kb: KnowledgeBase, f: DeckFile, problems: list[Problem]) -> list[_Plan]:
    parsed = parse_note(f.text, f.rel, kb.config.parse)
    rows = kb.conn.execute("SELECT id, kind, reverse, prompt, line FROM card WHERE path = ? AND retired_at IS NULL",
                           (f.rel,)).fetchall()
    by_key = {(k, bool(r), p, ln): cid for cid, k, r, p, ln in rows}
    plans = []
    blocks = sorted(f.blocks, key=lambda b: b.line)
    ends = [b.line for b in blocks[1:]] + [10**9]
    for block, end in zip(blocks, ends, strict=True):
        made = [c for c in parsed.cards if block.line <= c.line < end]
        if block.kind:
            other = [c for c in made if c.kind != block.kind]
            if other:  # e.g. a display formula alone under a heading is also a formula card
                problems.append(Problem(f"{f.rel}:{block.line}", f"anki note {block.note.id} also makes"
                                        f" {len(other)} {other[0].kind} card(s) in d2lkb"))
            made = [c for c in made if c.kind == block.kind]
        if len(made) != len(block.cards):
            problems.append(Problem(f"{f.rel}:{block.line}", f"anki note {block.note.id}: the Markdown makes"
                                    f" {len(made)} card(s), Anki had {len(block.cards)}; schedules not carried over"))
            continue
        for parsed_card, anki_card in zip(made, block.cards, strict=True):
            cid = by_key.get((str(parsed_card.kind), bool(parsed_card.reverse), parsed_card.prompt, parsed_card.line))
            if anki_card is None or cid is None:
                continue
            plans.append(_Plan(cid, anki_card, block.note_of(anki_card)))
    return plans


__all__ = ["import_apkg"]
