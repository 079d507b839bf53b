"""Review: one card at a time; space reveals, 1-4 grade, u undo, b bury, s suspend, e edit.

Three kinds of session: today's due cards (`mode="due"`), cards due in the next N days
reviewed ahead (`"ahead"`, rescheduled as usual), and a cram of every card a query selects
(`"cram"`: the schedule is not touched, or with `reschedule` answered as usual, as Anki's
filtered decks' "reschedule cards based on my answers"; Again shows the card again at the end).
Undo goes back through this session's own actions, newest first, and never further."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Rule, Static

from d2lkb.review.types import CardState, Grade
from d2lkb.textsafe import printable
from d2lkb.tui.formatting import FAILING, GRADE_LABELS, check_badge, compact_duration
from d2lkb.tui.mathtext import plain_math
from d2lkb.tui.session import MODES, CardFaces, Session, UndoStep, card_faces, card_label, check_markdown
from d2lkb.tui.widgets.footer import KeyFooter

if TYPE_CHECKING:
    from d2lkb.review.types import CardView, DueCounts

STATE_NAMES = {CardState.NEW: "new", CardState.LEARNING: "learning", CardState.REVIEW: "review",
               CardState.RELEARNING: "relearning"}


class ReviewScreen(Screen):
    BINDINGS = [
        Binding("space", "reveal", "Show answer"),
        Binding("space", "scroll_answer", "Scroll down"),
        Binding("1", "grade(1)", "Again", show=False),
        Binding("2", "grade(2)", "Hard", show=False),
        Binding("3", "grade(3)", "Good", show=False),
        Binding("4", "grade(4)", "Easy", show=False),
        Binding("u", "undo", "Undo"),
        Binding("b", "bury", "Bury"),
        Binding("s", "suspend", "Suspend"),
        Binding("e", "edit", "Edit note"),
        Binding("x", "show_check", "Check result", show=False),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
    ]

    def __init__(self, query: str | None = None, *, session: Session | None = None, mode: str = "due",
                 days: int = 0, reschedule: bool = False, undo_first: bool = False) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.session = session or Session(query or None, mode=mode, days=days, reschedule=reschedule)
        self.undo_first = undo_first
        self.review_query = self.session.query
        self.card: CardView | None = None
        self.revealed = False
        self.previews: dict[Grade, timedelta] = {}
        self.shown_at = time.monotonic()
        self.busy = True  # a worker is fetching/answering: keys wait
        self.grade_text = ""
        self.check_text = ""

    @property
    def answered(self) -> int:
        return self.session.answered

    @property
    def session_start(self) -> datetime | None:
        return self.session.start

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="review-top"):
            yield Static(Content(self._title()), id="review-deck", markup=False)
            yield Static("", id="review-counts")
        with Horizontal(id="card-meta"):
            yield Static("", id="card-kind")
            yield Static("", id="card-where", markup=False)
            yield Static("", id="card-badge")
        yield Static("", id="card-tags", markup=False)
        with VerticalScroll(id="card-scroll"):
            # Statics updated in place with the card's Markdown, rendered in the worker (cardtext.py)
            yield Static("", id="card-front", classes="card-text")
            yield Rule(id="card-divider", classes="hidden")
            yield Static("", id="card-back", classes="card-text hidden")
            yield Static("", id="card-check", classes="card-text hidden")
        yield Static("Loading…", id="grade-bar")
        yield KeyFooter()

    def _title(self) -> str:
        what = self.session.resolved or self.session.query or "all cards"
        if self.session.mode == "ahead":
            return f"Review ahead {self.session.days}d · {what}"
        if self.session.mode == "cram":
            return f"Cram ({'answers reschedule' if self.session.reschedule else 'schedule untouched'}) · {what}"
        return f"Review · {what}"

    def on_mount(self) -> None:
        self.sub_title = {"due": "review", "ahead": "review ahead", "cram": "cram"}[self.session.mode]
        if self.session.start is None:
            self.session.start = self.app.kb.now()
        if self.undo_first:  # `u` on the summary screen: back through this session's actions
            self.undo_last()
        else:
            self.load_next()

    # -- workers ---------------------------------------------------------------
    def _prepare(self) -> bool:
        """Resolve the query (`#mlp` -> `#dl/mlp`) and list an ahead/cram session's cards, once.
        False when the query names no tag (the summary says which). Runs in a worker thread."""
        from d2lkb.query import QueryError

        session, kb = self.session, self.app.kb
        if session.error:
            return False
        if session.resolved is None and session.query:
            if not self.app.synced.is_set():
                self.app.synced.wait(timeout=60)  # tags come from the start-up sync
            try:
                resolved = kb.resolve_query(session.query)
            except QueryError as exc:
                session.error = str(exc)
                return False
            session.resolved = resolved.query
            if resolved.notes:
                self.app.notify(printable("; ".join(resolved.notes)), timeout=4, markup=False)
        if session.mode != "due" and session.pending is None:
            if not self.app.synced.is_set():
                self.app.synced.wait(timeout=60)
            query = session.resolved or session.query
            session.pending = (kb.ahead_card_ids(query, session.days) if session.mode == "ahead"
                               else kb.cram_card_ids(query))
        return True

    def _fetch(self, card: CardView | None = None) -> tuple[CardView | None, DueCounts | int, dict, str, CardFaces | None]:
        """(card, counts or cards left, previews, check Markdown, the card rendered): `card` or the next one.
        In a worker thread: the UI thread only swaps texts."""
        card, counts, previews, check = self._fetch_engine(card)
        return card, counts, previews, check, card_faces(card, check) if card is not None else None

    def _fetch_engine(self, card: CardView | None = None) -> tuple[CardView | None, DueCounts | int, dict, str]:
        """What the KB says for `card` or the next one: (card, counts or cards left, interval previews,
        check Markdown); `_fetch` without the rendering."""
        kb = self.app.kb
        if not self._prepare():
            return None, 0, {}, ""
        query = self.session.resolved or self.session.query
        pending = self.session.pending
        counts: DueCounts | int
        if card is None and pending is None:  # the due queue: the next card, the counts and the previews at once
            card, counts, previews = kb.review_step(query, previews=self._rescheduling())
            if card is None and not self.app.synced.is_set():
                # First run: the start-up sync may still be filling the KB.
                self.app.synced.wait(timeout=60)
                card, counts, previews = kb.review_step(query, previews=self._rescheduling())
        else:
            while card is None and pending:
                candidate = kb.card(pending[0])
                if candidate.retired or (candidate.suspended and self.session.mode != "cram"):
                    pending.pop(0)
                else:
                    card = candidate
            counts = len(pending) if pending is not None else kb.due_counts(query)
            previews = kb.preview_intervals(card.id) if card is not None and self._rescheduling() else {}
        check = ""
        if card is not None and card.check_status in FAILING:
            check = check_markdown(card, kb.check_result(card.id))
        return card, counts, previews, check

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def load_next(self) -> None:
        try:
            result = self._fetch()
        except Exception as exc:  # noqa: BLE001
            self._failed("could not load the next card", exc)
            return
        self.app.call_later_safe(self.show_card, *result)

    def _record_answer(self, card: CardView, grade: Grade, duration_ms: int) -> None:
        """The answer's effect: the KB's schedule and log (or, when the schedule is untouched, the
        session's list), and the session's undo step. In a worker thread."""
        session = self.session
        label = card_label(card)
        if not self._rescheduling():
            # The schedule is not touched: Again shows the card again at the end of the session.
            pending = session.pending or []
            position = pending.index(card.id) if card.id in pending else 0
            if card.id in pending:
                pending.remove(card.id)
            if grade == Grade.AGAIN:
                pending.append(card.id)
            session.undo.append(UndoStep("cram", card.id, label, previous=position, grade=int(grade)))
            return
        result = self.app.kb.answer(card.id, grade, duration_ms=duration_ms)
        session.undo.append(UndoStep("answer", card.id, label, log_id=result.log_id, grade=int(grade)))
        if session.pending is not None and card.id in session.pending:
            session.pending.remove(card.id)
        if session.mode == "cram" and grade == Grade.AGAIN and session.pending is not None:
            session.pending.append(card.id)  # a rescheduling cram shows it again at the end
        if result.leech:
            self.app.notify("This card is a leech" + (" and was suspended" if result.suspended else "")
                            + " (tagged #leech).", severity="warning")

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def answer_card(self, card: CardView, grade: Grade, duration_ms: int) -> None:
        try:
            self._record_answer(card, grade, duration_ms)
        except Exception as exc:  # noqa: BLE001
            self._failed("could not save the answer", exc)
            return
        try:
            fetched = self._fetch()
        except Exception as exc:  # noqa: BLE001
            self._failed("could not load the next card", exc)
            return
        self.app.call_later_safe(self._answered, *fetched)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def undo_last(self) -> None:
        kb = self.app.kb
        session = self.session
        if not session.undo:
            self.app.notify("Nothing to undo in this session.", severity="warning", timeout=3)
            self.app.call_later_safe(self._resume_after_nothing)
            return
        step = session.undo[-1]
        try:
            if step.action == "answer":
                if step.log_id is None or kb.undo_review(step.log_id) is None:
                    session.undo.clear()
                    self.app.notify("Cannot undo: a later answer (from elsewhere) came after it.",
                                    severity="warning", timeout=5)
                    self.app.call_later_safe(self._resume_after_nothing)
                    return
                session.answered = max(0, session.answered - 1)
                if session.pending is not None:
                    if step.grade == int(Grade.AGAIN) and session.pending and session.pending[-1] == step.card_id:
                        session.pending.pop()
                    session.pending.insert(0, step.card_id)
                message = f"Undone: answer {GRADE_LABELS[Grade(step.grade)]} on {step.label}"
            elif step.action == "cram":
                pending = session.pending if session.pending is not None else []
                if step.grade == int(Grade.AGAIN) and pending and pending[-1] == step.card_id:
                    pending.pop()
                pending.insert(0, step.card_id)
                session.answered = max(0, session.answered - 1)
                message = f"Undone: {GRADE_LABELS[Grade(step.grade)]} on {step.label} (cram)"
            elif step.action == "edit":
                path = kb.config.notes_dir / step.path
                if path.read_text(encoding="utf-8") != step.text_after:
                    session.undo.pop()
                    self.app.notify(f"Cannot undo the edit: {step.path} changed again since.",
                                    severity="warning", timeout=5, markup=False)
                    self.app.call_later_safe(self._resume_after_nothing)
                    return
                path.write_text(step.text_before, encoding="utf-8")
                kb.sync()
                message = f"Undone: edit of {step.path} (the note is as it was, and synced)"
            elif step.action == "bury":
                kb.unbury(step.card_id, step.previous)
                if session.pending is not None:
                    session.pending.insert(0, step.card_id)
                message = f"Undone: bury of {step.label}"
            else:
                kb.unsuspend(step.card_id)
                if session.pending is not None:
                    session.pending.insert(0, step.card_id)
                message = f"Undone: suspend of {step.label}"
            session.undo.pop()
            card = kb.card(step.card_id)
            fetched = self._fetch(None if card.retired else card)
        except Exception as exc:  # noqa: BLE001
            self._failed("could not undo", exc)
            return
        self.app.notify(message, timeout=3, markup=False)
        self.app.call_later_safe(self.show_card, *fetched)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def set_aside(self, card: CardView, how: str) -> None:
        kb = self.app.kb
        session = self.session
        try:
            if how == "bury":
                previous = kb.buried_until(card.id)
                kb.bury(card.id)
                session.undo.append(UndoStep("bury", card.id, card_label(card), previous=previous))
            else:
                kb.suspend(card.id)
                session.undo.append(UndoStep("suspend", card.id, card_label(card)))
            if session.pending is not None and card.id in session.pending:
                session.pending.remove(card.id)
            fetched = self._fetch()
        except Exception as exc:  # noqa: BLE001
            self._failed(f"could not {how} the card", exc)
            return
        self.app.notify("Buried until tomorrow (u to undo)." if how == "bury" else "Suspended (u to undo).", timeout=2)
        self.app.call_later_safe(self.show_card, *fetched)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def reload_after_edit(self, card_id: int) -> None:
        kb = self.app.kb
        try:
            kb.sync()
            try:
                card = kb.card(card_id)
            except Exception:  # noqa: BLE001 - the edit removed the card: go on with the next
                card = None
            if card is not None and getattr(card, "retired", False):
                card = None
            fetched = self._fetch(card)
        except Exception as exc:  # noqa: BLE001
            self._failed("could not reload the card", exc)
            return
        self.app.call_later_safe(self.show_card, *fetched)

    def _failed(self, what: str, exc: Exception) -> None:
        self.app.notify(f"{what}: {exc}", severity="error", timeout=8, markup=False)
        self.app.call_later_safe(self._idle)

    def _idle(self) -> None:
        self.busy = False

    def _resume_after_nothing(self) -> None:
        """`u` found nothing to undo: stay on the card, or load one when there is none yet."""
        if self.card is None:
            self.load_next()
        else:
            self.busy = False

    # -- showing -------------------------------------------------------------
    def _answered(self, card: CardView | None, counts: DueCounts | int, previews: dict, check: str,
                  faces: CardFaces | None = None) -> None:
        self.session.answered += 1
        self.show_card(card, counts, previews, check, faces)

    def show_card(self, card: CardView | None, counts: DueCounts | int, previews: dict, check: str = "",
                  faces: CardFaces | None = None) -> None:
        """Show `card` (None: the session is over); `faces`, its text rendered by the worker (else rendered here)."""
        self.busy = False
        self.query_one("#review-deck", Static).update(Content(printable(self._title())))
        if card is None:
            self.finish()
            return
        self.card = card
        self.previews = dict(previews)
        self.revealed = False
        if isinstance(counts, int):
            self.query_one("#review-counts", Static).update(Content.from_markup(
                "[$primary]$n[/] left in this session", n=str(counts)))
        else:
            self.query_one("#review-counts", Static).update(Content.from_markup(
                "[$primary]$new new[/] · [$warning]$learn learning[/] · [$success]$review due[/]",
                new=str(counts.new), learn=str(counts.learning), review=str(counts.review)))
        self.query_one("#card-kind", Static).update(Content.from_markup(
            "[b]$kind[/] · $state", kind=card.kind, state=STATE_NAMES.get(card.state, str(card.state))
            + (" · leech" if card.leech else "")))
        title = plain_math(card.note_title)
        where = f"{title} — {card.path}:{card.line}" if title else f"{card.path}:{card.line}"
        self.query_one("#card-where", Static).update(printable(where))
        badge = self.query_one("#card-badge", Static)
        shown = check_badge(card.check_status)
        badge.set_classes("" if shown is None else f"badge-{shown[1]}")
        label = shown[0] + (" (x: details)" if check else "") if shown else ""
        badge.update(Content(label))
        badge.tooltip = Content(printable(card.check_detail)) if card.check_detail else None  # never markup
        self.query_one("#card-tags", Static).update(printable(" ".join("#" + t for t in card.tags)))
        if faces is None:
            faces = card_faces(card, check)
        self.query_one("#card-front", Static).update(faces.front)
        self.query_one("#card-back", Static).update(faces.back)
        self.check_text = check
        self.query_one("#card-check", Static).update(faces.check)
        self._set_revealed(False)
        self.query_one("#card-scroll", VerticalScroll).scroll_home(animate=False)
        self.shown_at = time.monotonic()

    def _set_revealed(self, revealed: bool) -> None:
        self.revealed = revealed
        self.refresh_bindings()
        # now, in the same frame as the card (the signal reaches the footer a frame or two later)
        self.query_one(KeyFooter).bindings_changed(self)
        self.query_one("#card-divider").set_class(not revealed, "hidden")
        self.query_one("#card-back").set_class(not revealed, "hidden")
        self.query_one("#card-check").set_class(not (revealed and self.check_text), "hidden")
        bar = self.query_one("#grade-bar", Static)
        if not revealed:
            content = Content.from_markup("[b $text-accent]space[/] show answer")
            bar.update(content)
            self.grade_text = content.plain
            bar.remove_class("grading")
            return
        parts = []
        for grade in Grade:
            interval = self.previews.get(grade)
            parts.append(Content.from_markup(
                "[b $text-accent]$key[/] $label [dim]$when[/]", key=str(int(grade)), label=GRADE_LABELS[grade],
                when=compact_duration(interval) if interval is not None else ""))
        content = Content(" · ").join(parts)
        if not self._rescheduling():
            content = Content.from_markup("[dim](cram: schedule untouched)[/] ") + content
        bar.update(content)
        self.grade_text = content.plain
        bar.add_class("grading")

    def _rescheduling(self) -> bool:
        """Whether answers go to the scheduler (all sessions but a cram without `reschedule`)."""
        return self.session.mode != "cram" or self.session.reschedule

    def finish(self) -> None:
        from d2lkb.tui.screens.summary import SummaryScreen

        self.card = None
        self.app.switch_screen(SummaryScreen(self.session))

    # -- actions -------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`space` shows the answer, then scrolls it (the footer says which)."""
        if action == "reveal":
            return not self.revealed
        if action == "scroll_answer":
            return self.revealed
        return True

    def action_scroll_answer(self) -> None:
        self.query_one("#card-scroll", VerticalScroll).scroll_page_down()

    def action_reveal(self) -> None:
        if self.card is None or self.busy:
            return
        if self.revealed:  # space again: scroll the answer into view
            self.action_scroll_answer()
            return
        self._set_revealed(True)
        # The answer's top at the top of the view (the question scrolls away when both do not fit),
        # so that on a small terminal the answer is what shows once the grades do.
        scroll = self.query_one("#card-scroll", VerticalScroll)
        self.call_after_refresh(self._scroll_to_answer, scroll)

    def _scroll_to_answer(self, scroll: VerticalScroll) -> None:
        divider = self.query_one("#card-divider")
        back = self.query_one("#card-back")
        if scroll.virtual_size.height <= scroll.size.height:
            return
        bottom = back.region.bottom - scroll.region.y + scroll.scroll_y
        if bottom - scroll.scroll_y > scroll.size.height or divider.region.y < scroll.region.y:
            scroll.scroll_to(y=max(0, divider.region.y - scroll.region.y + scroll.scroll_y), animate=False)

    def action_show_check(self) -> None:
        """`x`: scroll to what the check found (the answer is shown first)."""
        if self.card is None or not self.check_text:
            self.notify("This card has no failing check.", timeout=2)
            return
        if not self.revealed:
            self._set_revealed(True)
        self.call_after_refresh(lambda: self.query_one("#card-scroll", VerticalScroll).scroll_to_widget(
            self.query_one("#card-check"), animate=False, top=True))

    def action_grade(self, grade: int) -> None:
        if self.card is None or self.busy:
            return
        if not self.revealed:
            self.notify("Press space to see the answer first.", timeout=2)
            return
        duration_ms = int((time.monotonic() - self.shown_at) * 1000)
        self.busy = True
        self.answer_card(self.card, Grade(grade), duration_ms)

    def action_undo(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.undo_last()

    def action_bury(self) -> None:
        if self.card is None or self.busy:
            return
        self.busy = True
        self.set_aside(self.card, "bury")

    def action_suspend(self) -> None:
        if self.card is None or self.busy:
            return
        self.busy = True
        self.set_aside(self.card, "suspend")

    def action_edit(self) -> None:
        from d2lkb.tui.editor import open_in_editor

        if self.card is None or self.busy:
            return
        path = self.app.kb.config.notes_dir / self.card.path
        try:
            before = path.read_text(encoding="utf-8")
        except OSError:
            before = None
        if open_in_editor(self.app, path, self.card.line):
            try:
                after = path.read_text(encoding="utf-8")
            except OSError:
                after = None
            if before is not None and after is not None and after != before:
                self.session.undo.append(UndoStep("edit", self.card.id, card_label(self.card), path=self.card.path,
                                                  text_before=before, text_after=after))
            self.busy = True
            self.reload_after_edit(self.card.id)

    def action_back(self) -> None:
        self.app.pop_screen()

