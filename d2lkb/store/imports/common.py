"""What every import shares: one error type naming file and position, and the import event."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

from d2lkb.review.scheduler import Schedule


class ImportFailed(Exception):
    """Input another tool could not have written, or that would overwrite something; nothing was imported.

    `problems` are `file:position: message` lines, every one found."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Problem:
    """Something that could not be carried over (reported, not fatal)."""

    where: str  # file:line or anki note id
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ImportReport:
    source: str
    imported: int = 0  # cards whose schedule was taken over
    reviews: int = 0  # review-log entries brought in
    unchanged: int = 0  # already imported with the same data
    kept: int = 0  # reviewed in d2lkb already: their d2lkb schedule was kept
    notes_written: list[str] = field(default_factory=list)
    media: int = 0
    stripped: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"source": self.source, "imported": self.imported, "reviews": self.reviews,
                "unchanged": self.unchanged, "kept": self.kept, "notes_written": self.notes_written,
                "media": self.media, "stripped": self.stripped, "problems": [str(p) for p in self.problems]}


def card_schedule(conn: sqlite3.Connection, card_id: int) -> tuple[Schedule, int]:
    """The card's schedule now, and how many answers it has in the review log."""
    state, step, s, d, due, last = conn.execute(
        "SELECT state, step, stability, difficulty, due, last_review FROM card WHERE id = ?", (card_id,)).fetchone()
    reviews = conn.execute("SELECT count(*) FROM reviewlog WHERE card_id = ?", (card_id,)).fetchone()[0]
    return Schedule(state, step, s, d, due, last), reviews


def last_import_detail(conn: sqlite3.Connection, card_id: int, source: str) -> dict | None:
    row = conn.execute("SELECT detail FROM importlog WHERE card_id = ? AND source = ? ORDER BY id DESC LIMIT 1",
                       (card_id, source)).fetchone()
    return json.loads(row[0]) if row else None


def record_import(conn: sqlite3.Connection, card_id: int, source: str, source_ref: str, detail: dict,
                  after: Schedule, now: int, *, reps: int | None = None, lapses: int | None = None) -> None:
    """Give the card `after` as its schedule and log the import event (not a review)."""
    before, _ = card_schedule(conn, card_id)
    conn.execute(
        "INSERT INTO importlog (card_id, source, source_ref, detail, imported_at, state_before, stability_before,"
        " difficulty_before, due_before, last_review_before, state_after, stability_after, difficulty_after,"
        " due_after, last_review_after) VALUES (?,?,?,?,?, ?,?,?,?,?, ?,?,?,?,?)",
        (card_id, source, source_ref, json.dumps(detail, sort_keys=True), now, int(before.state), before.stability,
         before.difficulty, before.due, before.last_review, int(after.state), after.stability, after.difficulty,
         after.due, after.last_review))
    conn.execute("UPDATE card SET state=?, step=?, stability=?, difficulty=?, due=?, last_review=?,"
                 " reps=coalesce(?, reps), lapses=coalesce(?, lapses) WHERE id=?",
                 (int(after.state), after.step, after.stability, after.difficulty, after.due, after.last_review,
                  reps, lapses, card_id))
