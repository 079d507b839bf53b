"""End of a review session: cards reviewed, time spent, again rate."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from d2lkb.review.types import Grade
from d2lkb.tui.formatting import GRADE_LABELS, minutes_seconds, plural

if TYPE_CHECKING:
    from d2lkb.review.types import SessionSummary


class SummaryScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Home"),
        Binding("enter", "back", "Home", show=False),
        Binding("q", "back", "Home", show=False),
        Binding("u", "undo", "Undo last answer"),
        Binding("r", "again", "Review again"),
    ]

    def __init__(self, query: str | None, session_start: datetime, answered: int = 0) -> None:
        super().__init__()
        self.review_query = query
        self.session_start = session_start
        self.answered = answered
        self.summary: SessionSummary | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="summary-box"):
            yield Static("Session complete", id="summary-title")
            yield Static("…", id="summary-body")
            yield Static(Content.from_markup(
                "[b $accent]enter[/] home  [b $accent]r[/] review again  [b $accent]u[/] undo last answer"),
                classes="hints")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "review · done"
        self.load_summary()

    @work(thread=True, exclusive=True, group="summary", exit_on_error=False)
    def load_summary(self) -> None:
        try:
            summary = self.app.kb.session_summary(self.session_start)
        except Exception as exc:  # noqa: BLE001
            self.app.notify(f"could not summarise the session: {exc}", severity="error", markup=False)
            return
        self.app.call_later_safe(self.show_summary, summary)

    def show_summary(self, summary: SessionSummary) -> None:
        self.summary = summary
        title = self.query_one("#summary-title", Static)
        body = self.query_one("#summary-body", Static)
        if not summary.cards:
            title.update("Nothing to review")
            body.update(Content(f"No cards are due{' for ' + self.review_query if self.review_query else ''}"
                                " right now. Come back later, or browse your notes with b from home."))
            return
        title.update("Session complete")
        grades = "  ".join(f"{GRADE_LABELS[g]} {summary.by_grade.get(int(g), 0)}" for g in Grade)
        body.update(Content.from_markup(
            "[b $accent]$cards[/] reviewed in [b]$time[/]\nAgain rate [b]$rate[/]\n$grades",
            cards=plural(summary.cards, "card"), time=minutes_seconds(summary.seconds),
            rate=f"{summary.again_rate:.0%}", grades=grades))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_again(self) -> None:
        from d2lkb.tui.screens.review import ReviewScreen

        self.app.switch_screen(ReviewScreen(self.review_query, session_start=self.session_start,
                                            answered=self.answered))

    def action_undo(self) -> None:
        from d2lkb.tui.screens.review import ReviewScreen

        self.app.switch_screen(ReviewScreen(self.review_query, session_start=self.session_start,
                                            answered=self.answered, undo_first=True))
