"""Obsidian Spaced Repetition (OSR) schedule data in a note: read it, match it to cards, strip it.

OSR keeps its SM-2 schedule in the notes themselves:
- per card, an HTML comment after the card: `<!--SR:!2024-01-05,3,250-->`, one
  `!due,interval,ease` group per card of the item (a reversed pair has two, a cloze
  paragraph one per deletion, in order);
- per note (OSR's note review), front matter keys `sr-due`, `sr-interval`, `sr-ease`.

Pure: text in, values out. Converting SM-2 to FSRS is `d2lkb.review.convert`'s job,
writing it to the knowledge base `d2lkb.store.imports.osr`'s.
"""

from __future__ import annotations

import datetime as dt
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from d2lkb.model import Card

# The whole comment as OSR writes it, and anything that merely starts like one (to report it).
_COMMENT = re.compile(r"<!--SR:((?:![^!>]*)+)-->")
_STARTS = re.compile(r"<!--\s*SR:")
_GROUP = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2}),(\d+),(\d+)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
FRONT_MATTER_KEYS = ("sr-due", "sr-interval", "sr-ease")


class OsrError(ValueError):
    """Schedule data OSR could not have written (bad date, missing field): `path:line:column`."""

    def __init__(self, path: str, line: int, column: int, message: str):
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path, self.line, self.column = path, line, column


@dataclass(frozen=True, slots=True)
class Sm2Schedule:
    """One card's SM-2 state as OSR stores it: due date, interval in days, ease in percent (250 = 2.5)."""

    due: dt.date
    interval: int
    ease: int

    def to_dict(self) -> dict[str, Any]:
        return {"due": self.due.isoformat(), "interval": self.interval, "ease": self.ease}


@dataclass(frozen=True, slots=True)
class ScheduleComment:
    line: int  # 1-based line of the comment
    start: int  # offsets of the comment in the text
    end: int
    schedules: tuple[Sm2Schedule, ...]


def _fenced_lines(lines: Sequence[str]) -> set[int]:
    """0-based indexes of lines inside fenced code (OSR comments there are examples, not data)."""
    inside: set[int] = set()
    fence: str | None = None
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                inside.add(i)
        else:
            inside.add(i)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip()[len(m.group(1)):]:
                fence = None
    return inside


def _date(path: str, line: int, column: int, year: int, month: int, day: int) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise OsrError(path, line, column, f"impossible date {year:04d}-{month:02d}-{day:02d} in OSR schedule ({exc})") from None


def _schedule(path: str, line: int, column: int, group: str) -> Sm2Schedule:
    m = _GROUP.fullmatch(group)
    if m is None:
        raise OsrError(path, line, column, f"malformed OSR schedule {group!r} (expected !YYYY-MM-DD,interval,ease)")
    year, month, day, interval, ease = (int(x) for x in m.groups())
    due = _date(path, line, column, year, month, day)
    if ease < 100 or ease > 1000:
        raise OsrError(path, line, column, f"impossible ease {ease} in OSR schedule (OSR writes 130..1000, percent)")
    return Sm2Schedule(due, interval, ease)


def schedule_comments(text: str, path: str) -> list[ScheduleComment]:
    """Every OSR schedule comment outside fenced code, in order. Raises OsrError on the first one
    OSR could not have written."""
    lines = text.split("\n")
    fenced = _fenced_lines(lines)
    out: list[ScheduleComment] = []
    offset = 0
    for i, line in enumerate(lines):
        if i not in fenced and "SR:" in line:
            taken: list[tuple[int, int]] = []
            for m in _COMMENT.finditer(line):
                groups = m.group(1).split("!")[1:]
                column = m.start() + 1
                schedules = tuple(_schedule(path, i + 1, column, g.strip()) for g in groups)
                out.append(ScheduleComment(i + 1, offset + m.start(), offset + m.end(), schedules))
                taken.append((m.start(), m.end()))
            k = 0  # `taken` and the starts both come in order
            for m in _STARTS.finditer(line):
                while k < len(taken) and taken[k][1] <= m.start():
                    k += 1
                if not (k < len(taken) and taken[k][0] <= m.start()):
                    raise OsrError(path, i + 1, m.start() + 1, "malformed OSR schedule comment (no closing `-->` or"
                                   " no `!YYYY-MM-DD,interval,ease` group)")
        offset += len(line) + 1
    return out


def note_schedule(front_matter: dict[str, Any], path: str) -> Sm2Schedule | None:
    """OSR's per-note schedule from front matter (`sr-due`, `sr-interval`, `sr-ease`), if present."""
    present = [k for k in FRONT_MATTER_KEYS if k in front_matter]
    if not present:
        return None
    if len(present) != len(FRONT_MATTER_KEYS):
        missing = ", ".join(k for k in FRONT_MATTER_KEYS if k not in front_matter)
        raise OsrError(path, 1, 1, f"OSR front matter schedule lacks {missing}")
    due_text = str(front_matter["sr-due"]).strip()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", due_text)
    if m is None:
        raise OsrError(path, 1, 1, f"sr-due {due_text!r} is not a date (YYYY-MM-DD)")
    try:
        interval, ease = int(front_matter["sr-interval"]), int(front_matter["sr-ease"])
    except (TypeError, ValueError):
        raise OsrError(path, 1, 1, "sr-interval and sr-ease must be whole numbers") from None
    return _schedule(path, 1, 1, f"{m.group(1)}-{m.group(2)}-{m.group(3)},{interval},{ease}")


def assign(cards: Sequence[Card], comments: Sequence[ScheduleComment]) -> tuple[
        list[tuple[int, Sm2Schedule, ScheduleComment, int]], list[tuple[int, str]]]:
    """Which card each schedule belongs to, the way OSR wrote it: a comment follows its item, so it
    belongs to the nearest card above it (same line included) and that card's siblings (a reversed
    pair, a cloze paragraph), in source order; its k-th schedule is the k-th card's.

    Returns ([(card index, schedule, comment, k)], [(line, problem)]) — problems are comments with no
    card above them, or with more schedules than the item has cards.
    """
    assigned: list[tuple[int, Sm2Schedule, ScheduleComment, int]] = []
    problems: list[tuple[int, str]] = []
    claimed: set[int] = set()
    # Cards in source order (as a parsed note lists them): the nearest unclaimed card above a comment
    # is found by bisection, skipping claimed ones through `free` (a union-find: free[k] == k while
    # the k-th card is unclaimed, else a position below it), so a note of many cards stays linear.
    order = sorted(range(len(cards)), key=lambda i: (cards[i].line, i))
    position = {i: k for k, i in enumerate(order)}
    lines = [cards[i].line for i in order]
    free = list(range(len(order)))
    by_key: dict[str, list[int]] = {}
    for i, card in enumerate(cards):
        if card.sibling_key:
            by_key.setdefault(card.sibling_key, []).append(i)

    def unclaimed_at_or_below(k: int) -> int:
        root = k
        while root >= 0 and free[root] != root:
            root = free[root]
        while k >= 0 and free[k] != k:
            free[k], k = root, free[k]
        return root

    for comment in comments:
        k = unclaimed_at_or_below(bisect_right(lines, comment.line) - 1)
        if k < 0:
            problems.append((comment.line, "OSR schedule comment with no card above it; ignored"))
            continue
        anchor = order[k]
        key = cards[anchor].sibling_key
        group = [i for i in by_key[key] if i not in claimed] if key else [anchor]
        if len(comment.schedules) > len(group):
            problems.append((comment.line, f"OSR schedule comment has {len(comment.schedules)} schedules for"
                                            f" {len(group)} card(s); the extra ones are ignored"))
        for n, (i, schedule) in enumerate(zip(group, comment.schedules, strict=False)):
            assigned.append((i, schedule, comment, n))
        claimed.update(group)
        for i in group:
            free[position[i]] = position[i] - 1
    return assigned, problems


def strip_schedule_data(text: str, path: str) -> str:
    """The note without OSR's schedule comments and front matter keys (the rest byte for byte)."""
    comments = schedule_comments(text, path)
    out: list[str] = []
    prev = 0
    for c in comments:
        start = c.start
        # `Q :: A <!--SR:...-->`: the space before the comment goes with it; a comment alone on its
        # line goes with its line break.
        while start > prev and text[start - 1] in " \t":
            start -= 1
        end = c.end
        at_line_start = start == 0 or text[start - 1] == "\n"
        if at_line_start and (end == len(text) or text[end] == "\n"):
            end = min(end + 1, len(text))
            if start > 0 and end == len(text):
                start -= 1
        out.append(text[prev:start])
        prev = end
    out.append(text[prev:])
    stripped = "".join(out)
    if stripped.startswith("---\n"):
        close = stripped.find("\n---", 4)
        if close != -1:
            head = stripped[4:close + 1].split("\n")
            kept = [ln for ln in head if not any(ln.startswith(k + ":") for k in FRONT_MATTER_KEYS)]
            if any(ln.strip() for ln in kept):
                stripped = "---\n" + "\n".join(kept) + stripped[close + 1:]
            else:  # nothing but OSR's keys: no front matter at all
                stripped = stripped[close + 5:] if stripped[close + 4:close + 5] == "\n" else stripped[close + 4:]
    return stripped
