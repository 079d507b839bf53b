"""Home: decks (tags) with today's new / learning / review counts, due total and streak."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.widgets.data_table import ColumnKey

from d2lkb.textsafe import printable
from d2lkb.tui.formatting import plural, review_day, streak, themed
from d2lkb.tui.widgets.footer import KeyFooter

if TYPE_CHECKING:
    from d2lkb.review.types import DeckCount, DueCounts

ALL = "__all__"  # row key of the "All cards" deck


class HomeScreen(Screen):
    BINDINGS = [
        Binding("r", "review_all", "Review all"),
        Binding("enter", "review_deck", "Review deck", show=False),
        Binding("b", "browse", "Browse"),
        Binding("k", "cards", "Cards"),
        Binding("s", "stats", "Stats"),
        Binding("c", "checks", "Checks"),
        Binding("y", "sync", "Sync", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__(id="home")
        self.decks: list[DeckCount] = []
        self.first_show = True

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="home-body"):
            with Horizontal(id="home-summary"):
                yield Static("…", id="due-total", classes="stat")
                yield Static("", id="streak", classes="stat")
            table: DataTable = DataTable(id="decks", cursor_type="row", zebra_stripes=True)
            table.add_column("Deck", key="deck")
            table.add_column("New", key="new", width=5)
            table.add_column("Learn", key="learn", width=5)
            table.add_column("Due", key="due", width=5)
            table.add_column("Cards", key="cards", width=6)
            yield table
            yield Static("", id="home-notice", classes="hints hidden", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#decks", DataTable).focus()
        self._first_run_notice()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.fill_table())

    def _first_run_notice(self) -> None:
        """On the notes that ship with d2lkb, say where the cards come from and how to use your own."""
        from d2lkb.store.kb import bundled_notes_dir

        config = self.app.kb.config
        if config.notes_dir.resolve() != bundled_notes_dir():
            return
        notice = self.query_one("#home-notice", Static)
        notice.update(printable(f"These cards come from the notes bundled with d2lkb ({_shown(config.notes_dir)}). "
                                "To study your own Markdown vault: d2lkb --notes PATH, or set notes = \"PATH\" in "
                                f"{_shown(config.kb_dir / 'config.toml')}."))
        notice.remove_class("hidden")

    def on_screen_resume(self) -> None:
        # Counts load when home is shown (first time, or back from review/browse), so that a start
        # straight into review never waits behind them (deck counts over 100k cards take ~40 ms).
        if self.first_show:
            self.first_show = False
            if self.app.start != "home":
                return
        self.load_counts()

    def on_notes_synced(self, message) -> None:  # d2lkb.tui.app.NotesSynced
        # Counted once at start-up: again only when the sync changed cards.
        report = message.report
        changed = report is not None and any((report.added, report.updated, report.removed, report.retired_cards,
                                              report.revived_cards))
        if self.app.screen is self and changed:
            self.load_counts()

    # -- data ----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="home-counts", exit_on_error=False)
    def load_counts(self) -> None:
        app = self.app
        kb = app.kb
        try:
            decks = kb.deck_counts()
            total = decks[0].counts if decks and decks[0].tag == "" else kb.due_counts()
            today = review_day(kb.now(), kb.config.review.day_starts_at)
            days = streak(kb.heatmap(days=365), today)
        except Exception as exc:  # noqa: BLE001
            app.notify(f"could not count due cards: {exc}", severity="error", markup=False)
            app.call_later_safe(app.start_up_sync)
            return
        app.call_later_safe(self.show_counts, decks, total, days)

    def show_counts(self, decks: list[DeckCount], total: DueCounts, days: int) -> None:
        self.app.start_up_sync()  # after the first counts (a no-op later)
        self.decks = decks
        self.query_one("#due-total", Static).update(Content.from_markup(
            "[b]Due today[/] [b $text-accent]$n[/]  ($new new · $learn learning · $review review)",
            n=str(total.total), new=str(total.new), learn=str(total.learning), review=str(total.review)))
        self.query_one("#streak", Static).update(Content.from_markup(
            "[b]Streak[/] [b $success]$days[/]", days=plural(days, "day")))
        self.fill_table()

    def fill_table(self) -> None:
        table = self.query_one("#decks", DataTable)
        selected = self.selected_tag()
        table.clear()
        app = self.app
        for deck in self.decks:
            if deck.tag == "":
                label, key = themed(app, "All cards", bold=True), ALL
            else:
                # the full tag, as `review` and search take it (`#dl/mlp`, not a bare `#mlp`)
                label, key = themed(app, "  " * deck.depth + "#" + deck.tag, "text-accent"), deck.tag
            c = deck.counts
            table.add_row(label, self._count(c.new, "primary"), self._count(c.learning, "warning"),
                          self._count(c.review, "success"), themed(app, str(deck.cards), "text-muted"), key=key)
        # The deck column as wide as its longest name, set here: left to auto width, it was sometimes
        # measured before the rows came (names cut to the header's width).
        column = table.columns.get(ColumnKey("deck"))
        if column is not None and self.decks:
            column.auto_width = False
            column.width = max(len("All cards"), *(2 * d.depth + 1 + cell_len(d.tag) for d in self.decks))
            table.refresh()
        if selected is not None:
            for i, deck in enumerate(self.decks):
                if (deck.tag or ALL) == selected:
                    table.move_cursor(row=i)
                    break

    def _count(self, n: int, color: str):
        return themed(self.app, str(n), color, bold=True) if n else themed(self.app, "0", "text-disabled")

    def selected_tag(self) -> str | None:
        """The highlighted deck's tag ("" for all cards), or None when the table is empty."""
        table = self.query_one("#decks", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return "" if key == ALL else key

    # -- actions -------------------------------------------------------------
    @on(DataTable.RowSelected, "#decks")
    def deck_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_review_deck()

    def action_review_deck(self) -> None:
        tag = self.selected_tag()
        self.app.open_review(f"#{tag}" if tag else None)

    def action_review_all(self) -> None:
        self.app.open_review(None)

    def action_browse(self) -> None:
        self.app.open_browse("")

    def action_cards(self) -> None:
        tag = self.selected_tag()
        self.app.open_cards(f"#{tag}" if tag else "")

    def action_stats(self) -> None:
        tag = self.selected_tag()  # the highlighted deck's stats ("All cards": everything)
        self.app.open_stats(f"#{tag}" if tag else None)

    def action_checks(self) -> None:
        self.app.open_checks()

    def action_sync(self) -> None:
        self.notify("syncing notes…", timeout=2)
        self.app.sync_notes()


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
