"""Review: one card at a time; space reveals, 1-4 grade, u undo, b bury, s suspend, e edit."""

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
from textual.widgets import Footer, Header, Markdown, Rule, Static

from d2lkb.review.types import CardState, Grade
from d2lkb.tui.formatting import GRADE_LABELS, check_badge, compact_duration
from d2lkb.tui.mathtext import plain_math, prettify_math

if TYPE_CHECKING:
    from d2lkb.review.types import CardView, DueCounts

STATE_NAMES = {CardState.NEW: "new", CardState.LEARNING: "learning", CardState.REVIEW: "review",
               CardState.RELEARNING: "relearning"}


CLOZE_BLANK = "[...]"


def card_markdown(card: CardView) -> tuple[str, str]:
    """(question, answer) as Markdown for display: math prettified, a cloze's blank in bold and its
    answer shown in the context it was cut from."""
    front, back = card.front, card.back
    if card.kind == "cloze" and front.count(CLOZE_BLANK) == 1 and "\n" not in back.strip():
        back = front.replace(CLOZE_BLANK, f"**{back.strip()}**")
        front = front.replace(CLOZE_BLANK, f"**{CLOZE_BLANK}**")
    return prettify_math(front), prettify_math(back)


class ReviewScreen(Screen):
    BINDINGS = [
        Binding("space", "reveal", "Show answer"),
        Binding("space", "scroll_answer", "Scroll"),
        Binding("1", "grade(1)", "Again", show=False),
        Binding("2", "grade(2)", "Hard", show=False),
        Binding("3", "grade(3)", "Good", show=False),
        Binding("4", "grade(4)", "Easy", show=False),
        Binding("u", "undo", "Undo"),
        Binding("b", "bury", "Bury"),
        Binding("s", "suspend", "Suspend"),
        Binding("e", "edit", "Edit note"),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
    ]

    def __init__(self, query: str | None = None, *, session_start: datetime | None = None, answered: int = 0,
                 undo_first: bool = False) -> None:
        super().__init__()
        self.undo_first = undo_first
        self.review_query = query
        self.session_start = session_start
        self.card: CardView | None = None
        self.revealed = False
        self.previews: dict[Grade, timedelta] = {}
        self.shown_at = time.monotonic()
        self.busy = True  # a worker is fetching/answering: keys wait
        self.suspended_last: int | None = None  # a card suspended just now: `u` takes that back first
        self.grade_text = ""
        self.answered = answered

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="review-top"):
            yield Static(Content("Review · " + (self.review_query or "all cards")), id="review-deck", markup=False)
            yield Static("", id="review-counts")
        with Horizontal(id="card-meta"):
            yield Static("", id="card-kind")
            yield Static("", id="card-where", markup=False)
            yield Static("", id="card-badge")
        yield Static("", id="card-tags", markup=False)
        with VerticalScroll(id="card-scroll"):
            yield Markdown("", id="card-front")
            yield Rule(id="card-divider", classes="hidden")
            yield Markdown("", id="card-back", classes="hidden")
        yield Static("Loading…", id="grade-bar")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "review"
        if self.session_start is None:
            self.session_start = self.app.kb.now()
        if self.undo_first:  # `u` on the summary screen: back to the last answered card
            self.undo_last()
        else:
            self.load_next()

    # -- workers ---------------------------------------------------------------
    def _fetch(self, card: CardView | None = None) -> tuple[CardView | None, DueCounts, dict]:
        """(card, counts, previews): `card` or the next one. Runs in a worker thread."""
        kb = self.app.kb
        if card is None:
            card = kb.next_card(self.review_query)
            if card is None and not self.app.synced.is_set():
                # First run: the start-up sync may still be filling the KB.
                self.app.synced.wait(timeout=60)
                card = kb.next_card(self.review_query)
        counts = kb.due_counts(self.review_query)
        previews = kb.preview_intervals(card.id) if card is not None else {}
        return card, counts, previews

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def load_next(self) -> None:
        try:
            result = self._fetch()
        except Exception as exc:  # noqa: BLE001
            self._failed("could not load the next card", exc)
            return
        self.app.call_later_safe(self.show_card, *result)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def answer_card(self, card_id: int, grade: Grade, duration_ms: int) -> None:
        kb = self.app.kb
        self.suspended_last = None
        try:
            result = kb.answer(card_id, grade, duration_ms=duration_ms)
        except Exception as exc:  # noqa: BLE001
            self._failed("could not save the answer", exc)
            return
        if result.leech:
            self.app.notify("This card is a leech" + (" and was suspended" if result.suspended else "")
                            + " (tagged #leech).", severity="warning")
        try:
            fetched = self._fetch()
        except Exception as exc:  # noqa: BLE001
            self._failed("could not load the next card", exc)
            return
        self.app.call_later_safe(self._answered, *fetched)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def undo_last(self) -> None:
        kb = self.app.kb
        try:
            answer_undone = self.suspended_last is None
            if not answer_undone:
                card_id, self.suspended_last = self.suspended_last, None
                kb.unsuspend(card_id)
                message = "Unsuspended"
            else:
                card_id = kb.undo()
                message = "Undone"
                if card_id is None:
                    self.app.notify("Nothing to undo.", severity="warning")
                    self.app.call_later_safe(self._idle)
                    return
            fetched = self._fetch(kb.card(card_id))
        except Exception as exc:  # noqa: BLE001
            self._failed("could not undo", exc)
            return
        self.app.notify(message, timeout=2)
        self.app.call_later_safe(self._undone if answer_undone else self.show_card, *fetched)

    @work(thread=True, exclusive=True, group="review", exit_on_error=False)
    def set_aside(self, card_id: int, how: str) -> None:
        kb = self.app.kb
        try:
            self.suspended_last = None
            if how == "bury":
                kb.bury(card_id)
            else:
                kb.suspend(card_id)
                self.suspended_last = card_id
            fetched = self._fetch()
        except Exception as exc:  # noqa: BLE001
            self._failed(f"could not {how} the card", exc)
            return
        self.app.notify("Buried until tomorrow." if how == "bury" else "Suspended (u to undo).", timeout=2)
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

    # -- showing -------------------------------------------------------------
    def _answered(self, card: CardView | None, counts: DueCounts, previews: dict) -> None:
        self.answered += 1
        self.show_card(card, counts, previews)

    def _undone(self, card: CardView | None, counts: DueCounts, previews: dict) -> None:
        self.answered = max(0, self.answered - 1)
        self.show_card(card, counts, previews)

    def show_card(self, card: CardView | None, counts: DueCounts, previews: dict) -> None:
        self.busy = False
        if card is None:
            self.finish()
            return
        self.card = card
        self.previews = dict(previews)
        self.revealed = False
        self.query_one("#review-counts", Static).update(Content.from_markup(
            "[$primary]$new new[/] · [$warning]$learn learning[/] · [$success]$review due[/]",
            new=str(counts.new), learn=str(counts.learning), review=str(counts.review)))
        self.query_one("#card-kind", Static).update(Content.from_markup(
            "[b]$kind[/] · $state", kind=card.kind, state=STATE_NAMES.get(card.state, str(card.state))
            + (" · leech" if card.leech else "")))
        title = plain_math(card.note_title)
        where = f"{title} — {card.path}:{card.line}" if title else f"{card.path}:{card.line}"
        self.query_one("#card-where", Static).update(where)
        badge = self.query_one("#card-badge", Static)
        shown = check_badge(card.check_status)
        badge.set_classes("" if shown is None else f"badge-{shown[1]}")
        badge.update(Content(shown[0]) if shown else "")
        badge.tooltip = card.check_detail or None
        self.query_one("#card-tags", Static).update(" ".join("#" + t for t in card.tags))
        front, back = card_markdown(card)
        self.query_one("#card-front", Markdown).update(front)
        self.query_one("#card-back", Markdown).update(back)
        self._set_revealed(False)
        self.query_one("#card-scroll", VerticalScroll).scroll_home(animate=False)
        self.shown_at = time.monotonic()

    def _set_revealed(self, revealed: bool) -> None:
        self.revealed = revealed
        self.refresh_bindings()
        self.query_one("#card-divider").set_class(not revealed, "hidden")
        self.query_one("#card-back").set_class(not revealed, "hidden")
        bar = self.query_one("#grade-bar", Static)
        if not revealed:
            content = Content.from_markup("[b $accent]space[/] show answer")
            bar.update(content)
            self.grade_text = content.plain
            bar.remove_class("grading")
            return
        parts = []
        for grade in Grade:
            interval = self.previews.get(grade)
            parts.append(Content.from_markup(
                "[b $accent]$key[/] $label [dim]$when[/]", key=str(int(grade)), label=GRADE_LABELS[grade],
                when=compact_duration(interval) if interval is not None else ""))
        content = Content(" · ").join(parts)
        bar.update(content)
        self.grade_text = content.plain
        bar.add_class("grading")

    def finish(self) -> None:
        from d2lkb.tui.screens.summary import SummaryScreen

        self.card = None
        self.app.switch_screen(SummaryScreen(self.review_query, self.session_start, self.answered))

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
        self.query_one("#card-scroll", VerticalScroll).scroll_to_widget(
            self.query_one("#card-divider"), animate=False, top=False)

    def action_grade(self, grade: int) -> None:
        if self.card is None or self.busy:
            return
        if not self.revealed:
            self.notify("Press space to see the answer first.", timeout=2)
            return
        duration_ms = int((time.monotonic() - self.shown_at) * 1000)
        self.busy = True
        self.answer_card(self.card.id, Grade(grade), duration_ms)

    def action_undo(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.undo_last()

    def action_bury(self) -> None:
        if self.card is None or self.busy:
            return
        self.busy = True
        self.set_aside(self.card.id, "bury")

    def action_suspend(self) -> None:
        if self.card is None or self.busy:
            return
        self.busy = True
        self.set_aside(self.card.id, "suspend")

    def action_edit(self) -> None:
        from d2lkb.tui.editor import open_in_editor

        if self.card is None or self.busy:
            return
        path = self.app.kb.config.notes_dir / self.card.path
        if open_in_editor(self.app, path, self.card.line):
            self.busy = True
            self.reload_after_edit(self.card.id)

    def action_back(self) -> None:
        self.app.pop_screen()
