"""End of a review session: cards reviewed, time spent, again rate; or why there was nothing to
review (no such tag, no card matches, nothing due yet) and ways to study more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Static

from d2lkb.review.types import Grade
from d2lkb.textsafe import printable
from d2lkb.tui.formatting import GRADE_LABELS, compact_duration, minutes_seconds, plural
from d2lkb.tui.widgets.footer import KeyFooter

if TYPE_CHECKING:
    from d2lkb.review.types import SessionSummary
    from d2lkb.tui.screens.review import Session

EXTRA_NEW = 10  # `n`: this many more new cards today
AHEAD_DAYS = (1, 7)  # `a` and `w`


@dataclass
class Why:
    """Why a session had nothing to show: the card count the query matches, new cards held back
    by today's limit, and when the next learning card is due."""

    matching: int
    new_waiting: int
    next_due: str


class SummaryScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Home"),
        Binding("enter", "back", "Home", show=False),
        Binding("q", "back", "Home", show=False),
        Binding("u", "undo", "Undo"),
        Binding("r", "again", "Review again"),
        Binding("a", "ahead(1)", "Ahead 1 day"),
        Binding("w", "ahead(7)", "Ahead 7 days"),
        Binding("c", "cram", "Cram"),
        Binding("C", "cram(True)", "Cram, rescheduled", show=False),
        Binding("n", "extra_new", f"+{EXTRA_NEW} new"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.review_query = session.query
        self.summary: SessionSummary | None = None
        self.why: Why | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Center(), Vertical(id="summary-box"):
            yield Static("Session complete", id="summary-title")
            yield Static("…", id="summary-body")
            yield Static(Content.from_markup(
                f"Study more: [b $text-accent]a[/] review ahead 1 day · [b $text-accent]w[/] 7 days · "
                f"[b $text-accent]c[/] cram (schedule untouched) · [b $text-accent]C[/] cram, answers reschedule · "
                f"[b $text-accent]n[/] {EXTRA_NEW} more new cards today"),
                id="summary-more", classes="hints")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "review · done"
        self.load_summary()

    @work(thread=True, exclusive=True, group="summary", exit_on_error=False)
    def load_summary(self) -> None:
        kb = self.app.kb
        session = self.session
        try:
            summary = kb.session_summary(session.start) if session.start else None
            why = None
            if not session.error and not session.answered:
                query = session.resolved or session.query
                matching = len(kb.card_ids(query)) if query else kb.review_stats()["cards"]
                stats_new = kb.cram_card_ids(query) if matching else []
                new_waiting = sum(1 for cid in stats_new[:200] if kb.card(cid).state == 0)
                nxt = kb.next_learning_due(query)
                when = compact_duration(nxt - kb.now()) if nxt is not None else ""
                why = Why(matching, new_waiting, when)
        except Exception as exc:  # noqa: BLE001
            self.app.notify(f"could not summarise the session: {exc}", severity="error", markup=False)
            return
        self.app.call_later_safe(self.show_summary, summary, why)

    def show_summary(self, summary: SessionSummary | None, why: Why | None = None) -> None:
        self.summary = summary
        self.why = why
        title = self.query_one("#summary-title", Static)
        body = self.query_one("#summary-body", Static)
        what = printable(self.session.resolved or self.session.query or "")
        # studying more makes sense only where there are cards to study
        self.query_one("#summary-more").set_class(bool(self.session.error or (why and why.matching == 0)), "hidden")
        if self.session.error:
            title.update("No such tag")
            body.update(Content(f"{printable(self.session.error)}\nThe decks on the home screen are the tags you can review."))
            return
        if summary is None or not self.session.answered:
            if why is not None and why.matching == 0:
                title.update("No cards match")
                body.update(Content(f"No card matches {what}." if what else "There are no cards yet: add some to "
                                    "your notes (`question :: answer`), then sync with y on the home screen."))
                return
            title.update("Nothing to review")
            lines = [f"Nothing is due{' for ' + what if what else ''} right now "
                     f"({plural(why.matching if why else 0, 'card')} in all)."]
            if why and why.next_due:
                lines.append(f"The next learning card is due in {why.next_due}.")
            if why and why.new_waiting:
                lines.append(f"{plural(why.new_waiting, 'new card')} wait beyond today's limit: n adds {EXTRA_NEW}.")
            body.update(Content("\n".join(lines)))
            return
        title.update("Session complete")
        grades = "  ".join(f"{GRADE_LABELS[g]} {summary.by_grade.get(int(g), 0)}" for g in Grade)
        body.update(Content.from_markup(
            "[b $text-accent]$cards[/] reviewed in [b]$time[/]\nAgain rate [b]$rate[/]\n$grades",
            cards=plural(summary.cards, "card"), time=minutes_seconds(summary.seconds),
            rate=f"{summary.again_rate:.0%}", grades=grades))

    def _review(self, **kwargs) -> None:
        from d2lkb.tui.screens.review import ReviewScreen

        self.app.switch_screen(ReviewScreen(self.session.query, **kwargs))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_again(self) -> None:
        from d2lkb.tui.screens.review import ReviewScreen, Session

        s = self.session
        # the same session goes on (its undo history too); an ahead/cram list is made afresh
        fresh = Session(s.query, mode=s.mode, days=s.days, reschedule=s.reschedule, start=s.start,
                        answered=s.answered, undo=s.undo, resolved=s.resolved, error=s.error)
        self.app.switch_screen(ReviewScreen(session=fresh))

    def action_undo(self) -> None:
        from d2lkb.tui.screens.review import ReviewScreen

        if not self.session.undo:
            self.notify("Nothing to undo in this session.", severity="warning", timeout=3)
            return
        self.app.switch_screen(ReviewScreen(session=self.session, undo_first=True))

    def action_ahead(self, days: int) -> None:
        self._review(mode="ahead", days=days)

    def action_cram(self, reschedule: bool = False) -> None:
        self._review(mode="cram", reschedule=reschedule)

    def action_extra_new(self) -> None:
        limit = self.app.kb.extra_new_today(EXTRA_NEW)
        self.notify(f"New cards today: up to {limit} (kept until the day ends; the config file is unchanged).",
                    timeout=4)
        self._review()
