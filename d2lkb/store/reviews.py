"""Review on SQLite: what the review screen shows, answering (with undo), bury/suspend.

`ReviewMixin` is one of `KnowledgeBase`'s bases; its own bases are the queue
(`store.reviewqueue`: what is due, the counts, kept between answers) and the
statistics (`store.reviewstats`). It relies on the host for `conn` (sqlite3,
autocommit), `config.review`, `now()` (aware UTC datetime), `lock` (an RLock,
taken by every public method) and `card_ids(query)`.

The scheduling itself is pure (`d2lkb.review.scheduler` on top of fsrs, and
`d2lkb.review.queue`); this module only reads candidates and writes results.
Every answer is one transaction: the card, its review-log row (with everything
needed to undo it), the siblings it buries and the leech tag it adds.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import NamedTuple

from d2lkb.review.leech import is_leech_lapse
from d2lkb.review.queue import Candidate, siblings_to_bury
from d2lkb.review.types import AnswerResult, CardState, CardView, DueCounts, Grade
from d2lkb.store.db import transaction
from d2lkb.store.decks import set_tagset
from d2lkb.store.docmeta import refresh_card_meta
from d2lkb.store.reviewqueue import CANDIDATE_COLS, LIVE, KeptCounts, utc
from d2lkb.store.reviewstats import ReviewStatsMixin

LEECH_TAG = "leech"
# Fitted FSRS weights (`d2lkb optimize`), a JSON list in the `meta` table; absent: fsrs defaults.
PARAMETERS_META_KEY = "fsrs_parameters"

_SCHEDULE_COLS = "state, step, stability, difficulty, due, last_review"
_UNDO_COLS = f"{_SCHEDULE_COLS}, reps, lapses, leech, suspended, buried_until"


class _Answered(NamedTuple):
    """What `_answer` wrote, for the kept queue head, counts and heatmap to follow it."""

    result: AnswerResult
    buried: list[int]  # the siblings it buried
    state_before: int
    due: int  # the card's due time after it (UTC seconds)
    now: datetime  # the answer's time
    version: int  # PRAGMA data_version in its transaction: what the kept state is checked against


def _fsrs():
    """d2lkb.review.scheduler (fsrs), imported by the first command that schedules, then kept: an
    import statement in the answer path costs more than the lookup."""
    global _SCHEDULER
    if _SCHEDULER is None:
        from d2lkb.review import scheduler

        _SCHEDULER = scheduler
    return _SCHEDULER


_SCHEDULER = None


# A card as `ReviewMixin.card` shows it: the row, the note's title, the card document's check hash,
# the latest result for it (status, detail: the newest row of `checkresult`, as `graph.latest_status`)
# its tags as [name, display] pairs (sorted by name in Python), and the rest of its schedule (for previews).
_CARD_VIEW = (
    "SELECT c.id, c.kind, c.front, c.back, c.path, c.line, coalesce(n.title, ''), c.state, c.due,"
    " c.reps, c.lapses, c.suspended, c.buried_until, c.leech, c.retired_at, d.check_hash, r.status, r.detail,"
    " (SELECT json_group_array(json_array(tag.name, tag.display)) FROM cardtag JOIN tag ON tag.id = cardtag.tag_id"
    " WHERE cardtag.card_id = c.id), c.step, c.stability, c.difficulty, c.last_review"
    " FROM card c LEFT JOIN note n ON n.id = c.note_id"
    " LEFT JOIN doc d ON d.id = (SELECT id FROM doc WHERE kind = 'card' AND card_id = c.id LIMIT 1)"
    " LEFT JOIN checkresult r ON r.id = (SELECT id FROM checkresult WHERE check_hash = d.check_hash"
    " ORDER BY checked_at DESC, id DESC LIMIT 1)"
    " WHERE c.id = ?")


class ReviewMixin(ReviewStatsMixin):
    """Answering and what the review screen shows (see the module doc); the queue and the
    statistics are its bases'."""

    _params_kept: tuple | None = None  # (data_version, total_changes, `_parameters()`)

    # -- helpers -----------------------------------------------------------
    def _parameters(self, version: int | None = None) -> tuple[float, ...] | None:
        """The fitted FSRS weights (None: fsrs's defaults). Kept while the database is unchanged
        (`version`: its data_version if just read); `answer` keeps them across its own writes."""
        version = self._data_version() if version is None else version
        kept = self._params_kept
        if kept is not None and kept[0] == version and kept[1] == self.conn.total_changes:
            return kept[2]
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (PARAMETERS_META_KEY,)).fetchone()
        parameters = tuple(json.loads(row[0])) if row else None
        self._params_kept = (version, self.conn.total_changes, parameters)
        return parameters

    def _require_card(self, card_id: int) -> tuple:
        row = self.conn.execute(f"SELECT {_UNDO_COLS}, sibling_key, retired_at FROM card WHERE id = ?",
                                (card_id,)).fetchone()
        if row is None:
            raise ValueError(f"no card with id {card_id}")
        return row

    # -- the next card -----------------------------------------------------
    def next_card(self, query: str | None = None) -> CardView | None:
        """The card to show now, or None when nothing is left (for now) today."""
        with self.lock:
            now = self._now()
            row = self._next_card_row(query, now)
            return None if row is None else self._card_view(row, now)

    def review_step(self, query: str | None = None, previews: bool = True
                    ) -> tuple[CardView | None, DueCounts, dict[Grade, timedelta]]:
        """What the review screen shows after each answer, at one moment: `next_card(query)`,
        `due_counts(query)` and that card's `preview_intervals` (empty without a card or with
        `previews` False). One look at whether the database changed serves all three."""
        with self.lock:
            now = self._now()
            version = self._data_version()
            row = self._next_card_row(query, now, version)
            counts = self._due_counts(query, now, version)
            if row is None:
                return None, counts, {}
            card = self._card_view(row, now)
            return card, counts, self._previews(row, now, version) if previews else {}

    # -- one card ----------------------------------------------------------
    def card(self, card_id: int) -> CardView:
        """A card as shown for review, with its note title, tags and latest check status."""
        with self.lock:
            return self._card_view(self._card_row(card_id), self._now())

    def _card_row(self, card_id: int) -> tuple:
        # One statement for the row, its note's title, its latest check and its tags.
        row = self.conn.execute(_CARD_VIEW, (card_id,)).fetchone()
        if row is None:
            raise ValueError(f"no card with id {card_id}")
        return row

    @staticmethod
    def _card_view(row: tuple, at: datetime) -> CardView:
        (cid, kind, front, back, path, line, title, state, due, reps, lapses, suspended, buried_until, leech,
         retired_at, check_hash, checked_status, checked_detail, tag_pairs) = row[:19]
        tags = tuple(display for _name, display in sorted(json.loads(tag_pairs)))  # by name
        status, detail = None, ""
        if check_hash:
            status, detail = (checked_status, checked_detail) if checked_status is not None else ("unchecked", "")
        now = int(at.timestamp())
        return CardView(cid, kind, front, back, path, line, title, tags, CardState(state), utc(due),
                        reps=reps, lapses=lapses, suspended=bool(suspended),
                        buried=buried_until is not None and buried_until > now, leech=bool(leech),
                        check_status=status, check_detail=detail or "", retired=retired_at is not None)

    def preview_intervals(self, card_id: int) -> dict[Grade, timedelta]:
        """The interval each grade would give now (without fuzz)."""
        with self.lock:
            return self._previews(self._card_row(card_id), self._now())

    def _previews(self, row: tuple, now: datetime, version: int | None = None) -> dict[Grade, timedelta]:
        """`preview_intervals` of a `_CARD_VIEW` row (`version`: the data_version if just read)."""
        state, due, (step, stability, difficulty, last_review) = row[7], row[8], row[19:23]
        scheduler = _fsrs()
        fields = scheduler.Schedule(state, step, stability, difficulty, due, last_review)
        return scheduler.preview(fields, now, self.config.review, self._parameters(version))

    # -- answering ---------------------------------------------------------
    def answer(self, card_id: int, grade: Grade | int, duration_ms: int = 0) -> AnswerResult:
        """Grade a card now. Durable (committed) when it returns."""
        grade = Grade(int(grade))
        cfg = self.config.review
        with self.lock:
            changes_before = self.conn.total_changes
            done = self._answer(card_id, grade, duration_ms, cfg)
            self._head_after_answer(changes_before, card_id, done.buried, done.due)
            self._counts_after_answer(changes_before, done)
            self._heatmap_after_answer(changes_before, done.now, done.version)
            kept = self._params_kept
            if kept is not None and kept[:2] == (done.version, changes_before):  # not a write that changes them
                self._params_kept = (done.version, self.conn.total_changes, kept[2])
            return done.result

    def _counts_after_answer(self, changes_before: int, done: _Answered) -> None:
        result, now, buried = done.result, done.now, done.buried
        day = self._day(now)
        end, ahead = day[1].timestamp(), (now + self.learn_ahead).timestamp()
        due = result.due.timestamp()
        learning = result.state in (CardState.LEARNING, CardState.RELEARNING)

        def update(cached: KeptCounts) -> bool:
            if result.leech and cached.query:
                return False  # the card's tags changed (#leech): it may have left or joined the deck
            counted = learning and not result.suspended and due < end and due <= ahead
            if learning and not result.suspended and ahead < due < end:
                # It enters the learn-ahead window later today.
                cached.valid_until = min(cached.valid_until, int(due) - int(self.learn_ahead.total_seconds()))
            return cached.queue.answered(result.card_id, done.state_before, int(result.state), counted_after=counted,
                                         due_today_after=not result.suspended and due < end, buried=buried)

        self._counts_after(changes_before, now, update, done.version)

    def _answer(self, card_id: int, grade: Grade, duration_ms: int,
                cfg) -> _Answered:
        """The answer's writes, committed."""
        with transaction(self.conn):
            version = self._data_version()
            now = self._now()
            now_s = int(now.timestamp())
            row = self._require_card(card_id)
            (state, step, stability, difficulty, due, last_review, reps, lapses, leech, suspended, buried_until,
             sibling_key, retired_at) = row
            if retired_at is not None:
                raise ValueError(f"card {card_id} is retired (it is no longer in the notes)")
            scheduler = _fsrs()
            before = scheduler.Schedule(state, step, stability, difficulty, due, last_review)
            after = scheduler.answer(before, grade, now, cfg, self._parameters(version))
            lapses_after = lapses + scheduler.is_lapse(before, grade)
            leech_event = scheduler.is_lapse(before, grade) and is_leech_lapse(lapses_after, cfg.leech_lapses)
            leech_after = 1 if leech_event else leech
            suspended_after = 1 if leech_event and cfg.leech_suspend else suspended

            day = self._day(now)
            buried: list[tuple[int, int | None]] = []
            if sibling_key:
                siblings = list(map(Candidate._make, self.conn.execute(
                    f"SELECT {CANDIDATE_COLS} FROM card WHERE sibling_key = ? AND sibling_key != '' AND id != ?"
                    f" AND {LIVE}",
                    (sibling_key, card_id))))
                buried = siblings_to_bury(Candidate(card_id, state, due, sibling_key), siblings, day_end=day[1])
                self.conn.executemany("UPDATE card SET buried_until = ? WHERE id = ?",
                                      [(int(day[1].timestamp()), sid) for sid, _ in buried])
            leech_tagged = self._add_leech_tag(card_id) if leech_event else False

            new = {"state": int(after.state), "step": after.step, "stability": after.stability,
                   "difficulty": after.difficulty, "due": after.due, "last_review": after.last_review,
                   "reps": reps + 1, "lapses": lapses_after, "leech": leech_after, "suspended": suspended_after,
                   "buried_until": None}
            old = dict(zip(new, (state, step, stability, difficulty, due, last_review, reps, lapses, leech,
                                 suspended, buried_until), strict=True))
            # Only the columns that change: SQLite rewrites the entries of every index holding a column
            # the statement sets, changed or not (a review card keeps its state: three indexes fewer).
            changed = [k for k in new if new[k] != old[k]]
            self.conn.execute(f"UPDATE card SET {', '.join(f'{k} = ?' for k in changed)} WHERE id = ?",
                              (*(new[k] for k in changed), card_id))
            log_id = self.conn.execute(
                "INSERT INTO reviewlog (card_id, rating, reviewed_at, duration_ms,"
                " state_before, state_after, step_before, step_after, stability_before, stability_after,"
                " difficulty_before, difficulty_after, due_before, due_after, last_review_before, last_review_after,"
                " reps_before, reps_after, lapses_before, lapses_after, leech_before, leech_after,"
                " suspended_before, suspended_after, buried_until_before, buried_siblings, leech_tagged)"
                " VALUES (?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?,?, ?,?,?,?,?)",
                (card_id, int(grade), now_s, max(0, int(duration_ms)),
                 state, int(after.state), step, after.step, stability, after.stability,
                 difficulty, after.difficulty, due, after.due, last_review, after.last_review,
                 reps, reps + 1, lapses, lapses_after, leech, leech_after,
                 suspended, suspended_after, buried_until, json.dumps(buried) if buried else "[]", int(leech_tagged))).lastrowid
        result = AnswerResult(card_id, grade, utc(after.due), timedelta(seconds=after.due - now_s),
                              after.state, leech=leech_event, suspended=bool(suspended_after), log_id=log_id)
        return _Answered(result, [sid for sid, _ in buried], state, after.due, now, version)

    def _add_leech_tag(self, card_id: int) -> bool:
        """Tag the card `leech` (card tags and its search document). True if it was not tagged yet."""
        row = self.conn.execute("SELECT id FROM tag WHERE name = ?", (LEECH_TAG,)).fetchone()
        tag_id = row[0] if row else self.conn.execute(
            "INSERT INTO tag (name, display, parent_id) VALUES (?, ?, NULL)", (LEECH_TAG, LEECH_TAG)).lastrowid
        added = self.conn.execute("INSERT OR IGNORE INTO cardtag (card_id, tag_id) VALUES (?, ?)",
                                  (card_id, tag_id)).rowcount > 0
        self.conn.execute("INSERT OR IGNORE INTO doctag (tag_id, doc_id) SELECT ?, id FROM doc"
                          " WHERE kind = 'card' AND card_id = ?", (tag_id, card_id))
        refresh_card_meta(self.conn, card_id)
        set_tagset(self.conn, card_id)
        return added

    def _remove_leech_tag(self, card_id: int) -> None:
        row = self.conn.execute("SELECT id FROM tag WHERE name = ?", (LEECH_TAG,)).fetchone()
        if row is None:
            return
        tag_id = row[0]
        self.conn.execute("DELETE FROM cardtag WHERE card_id = ? AND tag_id = ?", (card_id, tag_id))
        self.conn.execute("DELETE FROM doctag WHERE tag_id = ? AND doc_id IN"
                          " (SELECT id FROM doc WHERE kind = 'card' AND card_id = ?)", (tag_id, card_id))
        refresh_card_meta(self.conn, card_id)
        set_tagset(self.conn, card_id)
        # A tag row nobody uses any more goes (as sync does with unused tags).
        self.conn.execute(
            "DELETE FROM tag WHERE id = ? AND id NOT IN (SELECT tag_id FROM cardtag)"
            " AND id NOT IN (SELECT tag_id FROM notetag) AND id NOT IN (SELECT tag_id FROM doctag)"
            " AND id NOT IN (SELECT parent_id FROM tag WHERE parent_id IS NOT NULL)", (tag_id,))

    def undo(self) -> int | None:
        """Undo the most recent answer: the card exactly as before, its log row gone, the siblings it
        buried un-buried, the leech tag it added removed. Returns the card id, None if nothing to undo."""
        with self.lock, transaction(self.conn):
            row = self.conn.execute(
                "SELECT id, card_id, state_before, step_before, stability_before, difficulty_before, due_before,"
                " last_review_before, reps_before, lapses_before, leech_before, suspended_before,"
                " buried_until_before, buried_siblings, leech_tagged FROM reviewlog ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            log_id, card_id, *card_before, buried_json, leech_tagged = row
            self.conn.execute(
                "UPDATE card SET state=?, step=?, stability=?, difficulty=?, due=?, last_review=?, reps=?,"
                " lapses=?, leech=?, suspended=?, buried_until=? WHERE id=?", (*card_before, card_id))
            self.conn.executemany("UPDATE card SET buried_until = ? WHERE id = ?",
                                  [(previous, sid) for sid, previous in json.loads(buried_json or "[]")])
            if leech_tagged:
                self._remove_leech_tag(card_id)
            self.conn.execute("DELETE FROM reviewlog WHERE id = ?", (log_id,))
            return card_id

    # -- by hand -----------------------------------------------------------
    def bury(self, card_id: int) -> None:
        """Hide a card until the next day starts."""
        with self.lock:
            row = self._require_card(card_id)
            now = self._now()
            end = self._day(now)[1]
            changes_before = self.conn.total_changes
            self.conn.execute("UPDATE card SET buried_until = ? WHERE id = ?", (int(end.timestamp()), card_id))
            self._counts_after(changes_before, now, lambda cached: cached.queue.removed(card_id, bool(row[-2])))

    def suspend(self, card_id: int) -> None:
        """Take a card out of review until it is unsuspended."""
        with self.lock:
            row = self._require_card(card_id)
            changes_before = self.conn.total_changes
            self.conn.execute("UPDATE card SET suspended = 1 WHERE id = ?", (card_id,))
            self._counts_after(changes_before, self._now(),
                               lambda cached: cached.queue.removed(card_id, bool(row[-2])))

    def unsuspend(self, card_id: int) -> None:
        with self.lock:
            self._require_card(card_id)
            self.conn.execute("UPDATE card SET suspended = 0 WHERE id = ?", (card_id,))

    # -- statistics --------------------------------------------------------
