"""The d2lkb terminal UI: decks, review, browse/search, stats and checks.

The app talks to one `KnowledgeBase` and nothing else. Anything that may take a
while (sync, counts, stats, checks, answering) runs in a thread worker; the
knowledge base serialises its own connection with a lock. Screens other than
home and review are imported when first opened, so start-up stays small
(no torch, sympy or plotext on the way to the first card).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.segment import Segment
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.color import Color
from textual.filter import LineFilter
from textual.message import Message

from d2lkb.textsafe import UNSAFE, printable, strip_unsafe
from d2lkb.tui.screens.home import HomeScreen

if TYPE_CHECKING:
    from d2lkb.store.kb import KnowledgeBase
    from d2lkb.store.sync import SyncReport

THEME_FILE = "tui.json"
STARTS = ("home", "review", "browse", "cards", "stats", "checks")


class NotesSynced(Message):
    """Sent to every screen after a sync finished (report is None when it failed)."""

    def __init__(self, report: SyncReport | None) -> None:
        super().__init__()
        self.report = report


class TerminalSafe(LineFilter):
    """The net under every screen: drops from the rendered lines any control character that
    user text still holds, so no ESC, BEL or C1 control from a note reaches the terminal.

    Screens show user text through `printable` (visible stand-ins such as `␛`) where they put it
    in a widget; Textual passes whatever a widget holds to the terminal as it is (only BEL, BS,
    VT, FF and CR are stripped), so anything a screen missed is caught here. The characters
    dropped take no column, so the layout is unchanged.
    """

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [Segment(strip_unsafe(s.text), s.style, s.control)
                if s.control is None and UNSAFE.search(s.text) else s for s in segments]


class D2lkbApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "d2lkb"
    SUB_TITLE = "study notes"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f1", "help", "Help", show=False),
        Binding("ctrl+t", "toggle_theme", "Light/dark", show=False),
    ]

    def __init__(self, kb: KnowledgeBase, *, query: str | None = None, start: str = "home",
                 sync_on_start: bool = True, mode: str = "due", days: int = 0, reschedule: bool = False) -> None:
        if start not in STARTS:
            raise ValueError(f"start must be one of {', '.join(STARTS)}, not {start!r}")
        super().__init__()
        self.kb = kb
        self.query = query or None
        self.start = start
        self.sync_on_start = sync_on_start
        self.review_mode, self.review_days = mode, days  # `d2lkb review --ahead N / --cram`
        self.review_reschedule = reschedule  # `--cram --reschedule`
        self.synced = threading.Event()  # set once the start-up sync is over (or skipped)
        self._sync_started = False
        self.last_sync: SyncReport | None = None
        self._terminal_safe = TerminalSafe()

    def get_line_filters(self) -> Sequence[LineFilter]:
        return [*super().get_line_filters(), self._terminal_safe]

    # -- start-up ----------------------------------------------------------
    def get_default_screen(self) -> HomeScreen:
        return HomeScreen()

    def on_mount(self) -> None:
        self._restore_theme()
        self.theme_changed_signal.subscribe(self, lambda theme: self._save_theme(theme.name))
        if not self.sync_on_start:
            self.synced.set()
        elif self.start == "home":
            # Home counts what the KB holds first (and again if the sync changes cards): the sync
            # competing for the KB and the CPU made the first counts 3-5x slower. Started when they
            # are shown, or after a second at the latest.
            self.set_timer(1.0, self.start_up_sync)
        else:
            self.start_up_sync()
        if self.start == "review":
            self.open_review(self.query, mode=self.review_mode, days=self.review_days,
                             reschedule=self.review_reschedule)
        elif self.start == "browse":
            self.open_browse(self.query)
        elif self.start == "cards":
            self.open_cards(self.query)
        elif self.start == "stats":
            self.open_stats(self.query)
        elif self.start == "checks":
            self.open_checks(self.query)

    def start_up_sync(self) -> None:
        """The start-up sync, once (home calls it when its first counts are shown)."""
        if self.sync_on_start and not self._sync_started:
            self._sync_started = True
            self.sync_notes()

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False)
    def sync_notes(self) -> None:
        """Incremental sync of the notes folder; screens refresh when it is done."""
        report = None
        try:
            report = self.kb.sync()
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
            self.notify(printable(f"sync failed: {exc}"), severity="error", timeout=10, markup=False)
        finally:
            self.synced.set()
        self.last_sync = report
        self.call_later_safe(self._after_sync, report)

    def _after_sync(self, report: SyncReport | None) -> None:
        if report is not None and report.warnings:
            first = [f"{w.path}:{w.line}: {w.message}" if w.line else f"{w.path}: {w.message}"
                     for w in report.warnings[:3]]
            more = len(report.warnings) - len(first)
            body = "\n".join(first) + (f"\n… and {more} more (see `d2lkb sync`)" if more > 0 else "")
            self.notify(printable(body), title=f"{len(report.warnings)} sync warning(s)", severity="warning",
                        timeout=8, markup=False)
        for screen in self.screen_stack:
            screen.post_message(NotesSynced(report))

    def call_later_safe(self, callback, *args) -> None:
        """Run `callback` on the UI thread from a worker thread; a no-op once the app is closing."""
        with contextlib.suppress(RuntimeError):  # the app stopped while the worker ran
            self.call_from_thread(callback, *args)

    # -- navigation --------------------------------------------------------
    def open_review(self, query: str | None = None, *, mode: str = "due", days: int = 0,
                    reschedule: bool = False) -> None:
        from d2lkb.tui.screens.review import ReviewScreen

        self.push_screen(ReviewScreen(query or None, mode=mode, days=days, reschedule=reschedule))

    def open_browse(self, query: str | None = None) -> None:
        from d2lkb.tui.screens.browse import BrowseScreen

        self.push_screen(BrowseScreen(query or ""))

    def open_cards(self, query: str | None = None) -> None:
        from d2lkb.tui.screens.cards import CardsScreen

        self.push_screen(CardsScreen(query or ""))

    def open_stats(self, query: str | None = None) -> None:
        from d2lkb.tui.screens.stats import StatsScreen  # imports plotext: only now

        self.push_screen(StatsScreen(query or None))

    def open_checks(self, query: str | None = None) -> None:
        from d2lkb.tui.screens.checks import ChecksScreen

        self.push_screen(ChecksScreen(query or None))

    def action_help(self) -> None:
        from d2lkb.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(context=type(self.screen).__name__))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    # The theme (ctrl+t or the command palette) is remembered in the KB folder, per knowledge base.
    def _theme_file(self):
        return self.kb.config.kb_dir / THEME_FILE

    def _restore_theme(self) -> None:
        try:
            name = json.loads(self._theme_file().read_text(encoding="utf-8")).get("theme")
        except (OSError, ValueError, AttributeError):
            return
        if isinstance(name, str) and name in self.available_themes:
            self.theme = name

    def _save_theme(self, name: str) -> None:
        with contextlib.suppress(OSError):
            self._theme_file().write_text(json.dumps({"theme": name}) + "\n", encoding="utf-8")


def run_app(kb: KnowledgeBase, query: str | None = None, start: str = "home", *, mode: str = "due",
            days: int = 0, reschedule: bool = False) -> None:
    """Run the TUI on `kb` until the user quits (`start`: home, review, browse, stats or checks;
    `mode`: due, ahead (`days` ahead) or cram (`reschedule`: answers reschedule) for a review start)."""
    D2lkbApp(kb, query=query, start=start, mode=mode, days=days, reschedule=reschedule).run()
