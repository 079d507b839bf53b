"""Browse: live search over notes, sections, cards, formulas and snippets, with a rendered preview."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Markdown, Static
from textual.widgets.data_table import ColumnKey

from d2lkb.textsafe import printable
from d2lkb.tui.formatting import short, short_where, themed
from d2lkb.tui.mathtext import plain_math, prettify_math

if TYPE_CHECKING:
    from d2lkb.store.search import Hit

DEBOUNCE = 0.15
LIMIT = 200
PREVIEW_LINES = 400
KIND_W = 7
HINT = 'words, "phrases", #tag, kind:card, path:x, status:refuted, due:today, AND/OR/NOT, -x'


class BrowseScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "review", "Review results"),
        Binding("e", "edit", "Edit note"),
        Binding("slash", "focus_search", "Search", key_display="/"),
    ]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.initial_query = query
        self.hits: list[Hit] = []
        self.searched = ""  # the query whose results are shown
        self.error = ""
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="browse-body"):
            yield Input(value=self.initial_query, placeholder=f"search: {HINT}", id="search")
            yield Static("", id="search-status", markup=False)
            table: DataTable = DataTable(id="results", cursor_type="row", zebra_stripes=True)
            table.add_column("kind", key="kind", width=KIND_W)
            table.add_column("where", key="where", width=16)
            table.add_column("title", key="title", width=16)
            table.add_column("match", key="match", width=30)
            yield table
            with VerticalScroll(id="preview-scroll"):
                yield Markdown("", id="preview")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "browse"
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.fill_table())
        self.query_one("#search", Input).focus()
        if self.initial_query.strip():
            self.run_search(self.initial_query)
        else:
            self._status(f"Type to search: {HINT}")

    # -- searching -----------------------------------------------------------
    @on(Input.Changed, "#search")
    def query_changed(self, event: Input.Changed) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        value = event.value
        self._debounce = self.set_timer(DEBOUNCE, lambda: self.run_search(value))

    @on(Input.Submitted, "#search")
    def query_submitted(self, event: Input.Submitted) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        if event.value.strip() != self.searched or self.error:
            self.run_search(event.value)
        if self.hits:
            self.query_one("#results", DataTable).focus()

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def run_search(self, query: str) -> None:
        from d2lkb.query import QueryError

        query = query.strip()
        if not query:
            self.app.call_later_safe(self.show_hits, "", [], "")
            return
        try:
            # how many in all ("200 of 1,234"), counted up to COUNT_CAP when the hits fill the page
            hits, total = self.app.kb.search_counted(query, limit=LIMIT)
        except QueryError as exc:
            self.app.call_later_safe(self.show_hits, query, [], str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - never a traceback
            self.app.call_later_safe(self.show_hits, query, [], f"search failed: {exc}")
            return
        self.app.call_later_safe(self.show_hits, query, hits, "", total)

    def show_hits(self, query: str, hits: list[Hit], error: str, total: int | None = None) -> None:
        self.searched, self.hits, self.error = query, hits, error
        table = self.query_one("#results", DataTable)
        table.clear()
        status = self.query_one("#search-status", Static)
        status.set_class(bool(error), "error")
        if error:
            self._status(f"✗ {error}")
            return
        if not query:
            self._status(f"Type to search: {HINT}")
            self.query_one("#preview", Markdown).update("")
            return
        cards = sum(1 for h in hits if h.kind == "card")
        from d2lkb.store.search import COUNT_CAP

        total = len(hits) if total is None else total
        of = "" if total <= len(hits) else f" of {COUNT_CAP:,}+" if total > COUNT_CAP else f" of {total:,}"
        self._status(f"{len(hits)}{of} result(s), {cards} card(s) · enter: review these · e: edit"
                     if hits else "no matches")
        self.fill_table()
        if hits:
            table.move_cursor(row=0)
            self.load_preview(hits[0])
        else:
            self.query_one("#preview", Markdown).update("")

    def fill_table(self) -> None:
        table = self.query_one("#results", DataTable)
        row = table.cursor_row
        table.clear()
        where_w, title_w = self._fit_columns()
        app = self.app
        for i, h in enumerate(self.hits):
            table.add_row(themed(app, h.kind, "text-secondary"), themed(app, short_where(h.path, h.line, where_w)),
                          themed(app, short(plain_math(h.title), title_w), bold=True), self._snippet(h.snippet),
                          key=str(i))
        if self.hits and row > 0:
            table.move_cursor(row=min(row, len(self.hits) - 1))

    def _fit_columns(self) -> tuple[int, int]:
        """Share the table's width: where and title get a fifth each (within bounds), the match the rest."""
        table = self.query_one("#results", DataTable)
        width = table.size.width or self.app.size.width - 2
        where_w = max(14, min(32, width // 5))
        title_w = max(14, min(40, width // 5))
        sizes = {"where": where_w, "title": title_w,
                 "match": max(12, width - (KIND_W + where_w + title_w) - 2 * 4 - 2)}
        for key, size in sizes.items():
            column = table.columns.get(ColumnKey(key))
            if column is not None:
                column.width, column.auto_width = size, False
        return where_w, title_w

    def on_resize(self) -> None:
        if self.hits:
            self.fill_table()

    def _snippet(self, snippet: str) -> Text:
        from d2lkb.store.search import HIGHLIGHT

        text = Text(no_wrap=True, end="")
        # plain_math makes the text printable, which would show the markers (controls) as ␂ and ␃:
        # they travel as private-use characters through it
        start, end = "\ue000", "\ue001"
        marked = snippet.replace(HIGHLIGHT[0], start).replace(HIGHLIGHT[1], end)
        parts = short(plain_math(marked), 300).split(start)
        text.append(parts[0].replace(end, ""))
        for part in parts[1:]:
            hit, _, rest = part.partition(end)
            text.append_text(themed(self.app, hit, "text-accent", bold=True))
            text.append(rest.replace(end, ""))
        return text

    def _status(self, text: str) -> None:
        self.query_one("#search-status", Static).update(printable(text))

    # -- preview ---------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#results")
    def result_highlighted(self, event: DataTable.RowHighlighted) -> None:
        hit = self.selected_hit()
        if hit is not None:
            self.load_preview(hit)

    def selected_hit(self) -> Hit | None:
        table = self.query_one("#results", DataTable)
        if not self.hits or not table.row_count:
            return None
        row = table.cursor_row
        return self.hits[row] if 0 <= row < len(self.hits) else None

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def load_preview(self, hit: Hit) -> None:
        try:
            text = preview_markdown(self.app.kb, hit)
        except Exception as exc:  # noqa: BLE001
            text = f"*no preview: {exc}*"
        self.app.call_later_safe(self.show_preview, text)

    def show_preview(self, text: str) -> None:
        self.query_one("#preview", Markdown).update(prettify_math(text))
        self.query_one("#preview-scroll", VerticalScroll).scroll_home(animate=False)

    # -- actions -------------------------------------------------------------
    @on(DataTable.RowSelected, "#results")
    def result_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_review()

    def action_review(self) -> None:
        if self.error or not self.searched:
            self.notify("Type a query first; its cards are what you review.", timeout=3)
            return
        self.app.open_review(self.searched)

    def action_edit(self) -> None:
        from d2lkb.tui.editor import open_in_editor

        hit = self.selected_hit()
        if hit is not None:
            open_in_editor(self.app, self.app.kb.config.notes_dir / hit.path, hit.line)
            self.app.sync_notes()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_back(self) -> None:
        self.app.pop_screen()


def _strip_front_matter(lines: list[str]) -> tuple[int, list[str]]:
    """(number of lines removed, the rest) for a note that starts with a `---` front matter block."""
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() in ("---", "..."):
                return i + 1, lines[i + 1:]
    return 0, lines


def preview_markdown(kb, hit: Hit) -> str:
    """Markdown for the preview pane: a card's front and back, or the note lines around the hit."""
    if hit.kind == "card" and hit.card_id is not None and hasattr(kb, "card"):
        card = kb.card(hit.card_id)
        tags = " ".join("#" + t for t in card.tags)
        return (f"{card.front}\n\n---\n\n{card.back}\n\n---\n\n"
                f"*{card.kind} card · {card.path}:{card.line}{' · ' + tags if tags else ''}*")
    path = kb.config.notes_dir / hit.path
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"*cannot read {hit.path}: {exc}*"
    start, end = 1, len(lines)  # 1-based, inclusive
    if hit.kind != "note" and hit.note_id is not None:
        sections = kb.note(hit.note_id).sections
        inside = [s for s in sections if s["line"] <= hit.line <= s["end_line"]]
        if inside:
            best = max(inside, key=lambda s: s["line"])  # the innermost section holding the hit
            start, end = best["line"], best["end_line"]
        else:
            start, end = max(1, hit.line - 5), hit.line + 30
    chunk = lines[start - 1:min(end, start - 1 + PREVIEW_LINES)]
    if start == 1:
        _, chunk = _strip_front_matter(chunk)
    text = "\n".join(chunk)
    if end - start + 1 > PREVIEW_LINES:
        text += "\n\n*…*"
    return text + f"\n\n---\n\n*{hit.path}:{start}–{min(end, len(lines))}*"
