"""Card browser: every card a query selects, with its schedule in sortable columns, marks for
acting on many cards at once, and an info pane with the card's FSRS state and review history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static

from d2lkb.review.types import Grade
from d2lkb.textsafe import printable
from d2lkb.tui.formatting import GRADE_LABELS, compact_duration, short, short_where, themed
from d2lkb.tui.mathtext import plain_math

if TYPE_CHECKING:
    from d2lkb.store.cards import CardRow

STATES = {0: "new", 1: "learning", 2: "review", 3: "relearning"}
# column key -> (title, width, sort key)
COLUMNS = {
    "mark": ("", 1, None),
    "card": ("card", 30, lambda r: r.front.lower()),
    "due": ("due", 8, lambda r: (r.state == 0, r.due)),
    "ivl": ("ivl", 6, lambda r: r.interval_days if r.interval_days is not None else -1),
    "diff": ("diff", 5, lambda r: r.difficulty if r.difficulty is not None else -1),
    "lapses": ("lapses", 6, lambda r: r.lapses),
    "reps": ("reviews", 7, lambda r: r.reps),
    "added": ("added", 10, lambda r: r.added),
    "note": ("note", 22, lambda r: (r.path, r.line)),
}
SORTABLE = [k for k, v in COLUMNS.items() if v[2] is not None]
DEBOUNCE = 0.2


class CardsScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "focus_filter", "Filter", key_display="/"),
        Binding("o", "sort", "Sort"),
        Binding("O", "reverse", "Reverse", show=False),
        Binding("space", "mark", "Mark"),
        Binding("A", "mark_all", "Mark all", show=False),
        Binding("s", "suspend", "Suspend"),
        Binding("U", "unsuspend", "Unsuspend"),
        Binding("R", "reset", "Reset"),
        Binding("d", "reschedule", "Due today"),
        Binding("b", "bury", "Bury"),
        Binding("e", "edit", "Open note"),
    ]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.initial_query = query
        self.rows: list[CardRow] = []
        self.total = 0
        self.marked: set[int] = set()
        self.sort_key = "note"
        self.descending = False
        self.searched = ""
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="cards-body"):
            yield Input(value=self.initial_query, placeholder="filter: the query language, e.g. #calculus due:today",
                        id="card-filter")
            yield Static("", id="cards-status", markup=False)
            with Horizontal(id="cards-main"):
                table: DataTable = DataTable(id="cards", cursor_type="row", zebra_stripes=True)
                for key, (title, width, _) in COLUMNS.items():
                    table.add_column(title, key=key, width=width)
                yield table
                with VerticalScroll(id="card-info-scroll"):
                    yield Static("", id="card-info", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "cards"
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.fill_table())
        self.query_one("#cards", DataTable).focus()
        self.load(self.initial_query)

    # -- data -----------------------------------------------------------------
    @on(Input.Changed, "#card-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        value = event.value
        self._debounce = self.set_timer(DEBOUNCE, lambda: self.load(value))

    @on(Input.Submitted, "#card-filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self.load(event.value)
        self.query_one("#cards", DataTable).focus()

    @work(thread=True, exclusive=True, group="cards", exit_on_error=False)
    def load(self, query: str) -> None:
        from d2lkb.query import QueryError

        kb = self.app.kb
        try:
            resolved = kb.resolve_query(query.strip() or None).query
            rows, total = kb.card_rows(resolved)
        except QueryError as exc:
            self.app.call_later_safe(self._status, f"✗ {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - never a traceback
            self.app.call_later_safe(self._status, f"✗ could not list the cards: {exc}")
            return
        self.app.call_later_safe(self.show_rows, query.strip(), rows, total)

    def show_rows(self, query: str, rows: list[CardRow], total: int) -> None:
        self.searched, self.rows, self.total = query, rows, total
        ids = {r.id for r in rows}
        self.marked &= ids
        self.fill_table()

    def fill_table(self) -> None:
        table = self.query_one("#cards", DataTable)
        current = self.selected()
        sort = COLUMNS[self.sort_key][2]
        if sort is not None:
            self.rows.sort(key=sort, reverse=self.descending)
        table.clear()
        app = self.app
        now = self.app.kb.now()
        for r in self.rows:
            due = "new" if r.state == 0 else compact_due(r.due, now)
            table.add_row(
                themed(app, "●" if r.id in self.marked else " ", "accent", bold=True),
                themed(app, short(plain_math(r.front), 30), "text-muted" if r.suspended else None, dim=r.suspended),
                themed(app, due + (" ⏸" if r.suspended else " ⤓" if r.buried else ""),
                       "warning" if r.state != 0 and r.due <= int(now.timestamp()) else None),
                themed(app, "—" if r.interval_days is None else compact_duration(r.interval_days * 86400)),
                themed(app, "—" if r.difficulty is None else f"{r.difficulty:.1f}"),
                themed(app, str(r.lapses), "error" if r.lapses else "text-muted"),
                themed(app, str(r.reps)),
                themed(app, datetime.fromtimestamp(r.added, UTC).date().isoformat(), "text-muted"),
                themed(app, short_where(r.path, r.line, 22), "text-muted"),
                key=str(r.id))
        if current is not None:
            for i, r in enumerate(self.rows):
                if r.id == current:
                    table.move_cursor(row=i)
                    break
        more = f" (first {len(self.rows)} of {self.total})" if self.total > len(self.rows) else ""
        arrow = "↓" if self.descending else "↑"
        self._status(f"{len(self.rows)} card(s){more} · sorted by {COLUMNS[self.sort_key][0]} {arrow} · "
                     f"{len(self.marked)} marked · o sort, space mark, s/U suspend/unsuspend, R reset, "
                     "d due today, b bury, e note")
        self.show_info()

    def _status(self, text: str) -> None:
        self.query_one("#cards-status", Static).update(printable(text))

    def selected(self) -> int | None:
        table = self.query_one("#cards", DataTable)
        if not self.rows or not table.row_count:
            return None
        row = table.cursor_row
        return self.rows[row].id if 0 <= row < len(self.rows) else None

    def targets(self) -> list[int]:
        """The marked cards, or the highlighted one when none is marked."""
        if self.marked:
            return sorted(self.marked)
        current = self.selected()
        return [] if current is None else [current]

    # -- info pane --------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#cards")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_info()

    def show_info(self) -> None:
        card_id = self.selected()
        if card_id is None:
            self.query_one("#card-info", Static).update("")
            return
        self.load_info(card_id)

    @work(thread=True, exclusive=True, group="card-info", exit_on_error=False)
    def load_info(self, card_id: int) -> None:
        kb = self.app.kb
        try:
            text = card_info(kb, card_id)
        except Exception as exc:  # noqa: BLE001
            text = f"no card info: {exc}"
        self.app.call_later_safe(self.query_one("#card-info", Static).update, Content(printable(text)))

    # -- actions ----------------------------------------------------------------
    @on(DataTable.HeaderSelected, "#cards")
    def header_clicked(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORTABLE:
            self.descending = not self.descending if key == self.sort_key else False
            self.sort_key = key
            self.fill_table()

    def action_sort(self) -> None:
        self.sort_key = SORTABLE[(SORTABLE.index(self.sort_key) + 1) % len(SORTABLE)]
        self.descending = False
        self.fill_table()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self.fill_table()

    def action_mark(self) -> None:
        current = self.selected()
        if current is None:
            return
        self.marked ^= {current}
        table = self.query_one("#cards", DataTable)
        row = table.cursor_row
        self.fill_table()
        table.move_cursor(row=min(row + 1, len(self.rows) - 1))

    def action_mark_all(self) -> None:
        self.marked = set() if len(self.marked) == len(self.rows) else {r.id for r in self.rows}
        self.fill_table()

    def _apply(self, what: str, action) -> None:
        ids = self.targets()
        if not ids:
            return
        self.run_action(what, action, ids)

    @work(thread=True, exclusive=True, group="card-action", exit_on_error=False)
    def run_action(self, what: str, action, ids: list[int]) -> None:
        try:
            n = action(ids)
        except Exception as exc:  # noqa: BLE001
            self.app.notify(f"could not {what}: {exc}", severity="error", markup=False)
            return
        self.app.notify(f"{what}: {n} card(s)", timeout=3)
        self.app.call_later_safe(self.load, self.searched)

    def action_suspend(self) -> None:
        self._apply("suspended", lambda ids: self.app.kb.set_cards_suspended(ids, True))

    def action_unsuspend(self) -> None:
        self._apply("unsuspended", lambda ids: self.app.kb.set_cards_suspended(ids, False))

    def action_reset(self) -> None:
        self._apply("reset to new", self.app.kb.reset_cards)

    def action_reschedule(self) -> None:
        self._apply("due today", lambda ids: self.app.kb.reschedule_cards(ids, 0))

    def action_bury(self) -> None:
        self._apply("buried until tomorrow", self.app.kb.bury_cards)

    def action_edit(self) -> None:
        from d2lkb.tui.editor import open_in_editor

        card_id = self.selected()
        row = next((r for r in self.rows if r.id == card_id), None)
        if row is not None and open_in_editor(self.app, self.app.kb.config.notes_dir / row.path, row.line):
            self.app.sync_notes()

    def action_focus_filter(self) -> None:
        self.query_one("#card-filter", Input).focus()

    def action_back(self) -> None:
        self.app.pop_screen()


def compact_due(due: int, now: datetime) -> str:
    """`today`, `in 3d`, `2d ago`."""
    delta = due - now.timestamp()
    if abs(delta) < 86400 and datetime.fromtimestamp(due, UTC).date() == now.astimezone(UTC).date():
        return "today"
    return f"in {compact_duration(delta)}" if delta > 0 else f"{compact_duration(-delta)} ago"


def card_info(kb, card_id: int) -> str:
    """The info pane: the card, its FSRS state and every logged answer."""
    card = kb.card(card_id)
    stability, difficulty, last_review, added = kb.card_schedule(card_id)
    lines = [short(plain_math(card.front), 200), "", f"{card.kind} card · {card.path}:{card.line}",
             f"state       {STATES.get(int(card.state), card.state)}"
             + (" · suspended" if card.suspended else "") + (" · buried" if card.buried else "")
             + (" · leech" if card.leech else ""),
             f"due         {card.due.date().isoformat()}" if card.state != 0 else "due         (new)",
             f"stability   {stability:.2f} d" if stability is not None else "stability   —",
             f"difficulty  {difficulty:.2f} / 10" if difficulty is not None else "difficulty  —",
             f"last review {datetime.fromtimestamp(last_review, UTC).date().isoformat()}" if last_review else
             "last review —",
             f"reviews {card.reps} · lapses {card.lapses} · added "
             f"{datetime.fromtimestamp(added, UTC).date().isoformat()}",
             "", "history"]
    history = kb.card_history(card_id)
    if not history:
        lines.append("  (no reviews yet)")
    for h in history:
        lines.append(f"  {h.reviewed_at:%y-%m-%d} {GRADE_LABELS[Grade(h.rating)]:<5}"
                     f" {compact_duration(h.interval_days * 86400):>4}"
                     + (f" S{h.stability:.1f} D{h.difficulty:.1f}" if h.stability is not None
                        and h.difficulty is not None else ""))
    return "\n".join(lines)
