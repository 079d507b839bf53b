"""Checks: formula and snippet results, failures first; re-run one note's checks or all of them."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from d2lkb.textsafe import printable
from d2lkb.tui.formatting import FAILING, check_badge, plural, short, short_where, themed

BADGE_COLOURS = {"ok": "success", "bad": "error", "warn": "warning", "info": "text-muted"}


def checks_available(kb) -> bool:
    return hasattr(kb, "check_results") and hasattr(kb, "run_checks")


def order_results(results: list[dict]) -> list[dict]:
    """Failures first, then the rest; by path and line within each group."""
    return sorted(results, key=lambda r: (r.get("status") not in FAILING, r.get("status") == "unchecked",
                                          str(r.get("path", "")), int(r.get("line") or 0)))


def _as_dict(item) -> dict | None:
    """A check result (CheckItemResult or dict) as a plain dict."""
    if item is None:
        return None
    if isinstance(item, dict):
        return item
    to_dict = getattr(item, "to_dict", None)
    return to_dict() if callable(to_dict) else None


class ChecksScreen(Screen):
    BINDINGS = [
        Binding("r", "rerun_selected", "Re-run selected"),
        Binding("a", "rerun_all", "Re-run all"),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
    ]

    def __init__(self, query: str | None = None) -> None:
        super().__init__()
        self.check_query = query
        self.results: list[dict] = []
        self.running = False
        # Results of the last run that the KB does not store (e.g. "untrusted"), by (kind, path, line).
        self.live: dict[tuple, dict] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="checks-body"):
            yield Static("Loading…", id="checks-status", markup=False)
            yield ProgressBar(id="check-progress", show_eta=False, classes="hidden")
            table: DataTable = DataTable(id="check-table", cursor_type="row", zebra_stripes=True)
            table.add_column("status", key="status", width=13)
            table.add_column("kind", key="kind", width=8)
            table.add_column("where", key="where", width=28)
            table.add_column("time", key="time", width=7)
            table.add_column("detail", key="detail")
            yield table
            with VerticalScroll(id="check-detail-scroll"):
                yield Static("", id="check-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "checks"
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.fill_table())
        if not checks_available(self.app.kb):
            self.query_one("#checks-status", Static).update(Content.from_markup(
                "[b $warning]Checks are not available[/] in this build: the knowledge base has no check runner "
                "yet. Formulas and snippets will show here once it is installed; `d2lkb check` runs them "
                "from the command line."))
            self.query_one("#checks-status").add_class("unavailable")
            self.query_one("#check-table").display = False
            return
        self.query_one("#check-table", DataTable).focus()
        self.load_results()

    # -- data ----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="check-results", exit_on_error=False)
    def load_results(self) -> None:
        try:
            results = [dict(r) for r in self.app.kb.check_results()]
        except Exception as exc:  # noqa: BLE001
            self.app.notify(f"could not read check results: {exc}", severity="error", markup=False)
            return
        for r in results:
            live = self.live.get((r.get("kind"), r.get("path"), r.get("line")))
            if live is not None and (r.get("status") == "unchecked" or live.get("status") != r.get("status")):
                r.update({k: live[k] for k in ("status", "detail", "seconds") if k in live})
        self.app.call_later_safe(self.show_results, order_results(results))

    def show_results(self, results: list[dict]) -> None:
        self.results = results
        failing = sum(1 for r in results if r.get("status") in FAILING)
        status = self.query_one("#checks-status", Static)
        if not results:
            status.update("No checks yet: press a to run every formula and snippet check.")
        else:
            status.update(Content.assemble(
                f"{plural(len(results), 'check')} · ",
                (f"{failing} failing", "b $error" if failing else "b $success"),
                " · r: re-run the selected note · a: re-run all"))
        self.fill_table()
        if results:
            self.show_detail(self.selected())

    def fill_table(self) -> None:
        table = self.query_one("#check-table", DataTable)
        row = table.cursor_row
        table.clear()
        app = self.app
        for i, r in enumerate(self.results):
            badge = check_badge(r.get("status")) or ("?", "info")
            seconds = r.get("seconds")
            table.add_row(themed(app, badge[0], BADGE_COLOURS.get(badge[1]), bold=badge[1] == "bad"),
                          themed(app, str(r.get("kind", ""))),
                          themed(app, short_where(r.get("path", ""), r.get("line", ""), 28)),
                          themed(app, f"{seconds:.2f}s" if isinstance(seconds, int | float) and r.get("status") != "unchecked" else "", "text-muted"),
                          themed(app, short(str(r.get("detail") or ""), 120)), key=str(i))
        if self.results:
            table.move_cursor(row=min(max(row, 0), len(self.results) - 1))

    def selected(self) -> dict | None:
        table = self.query_one("#check-table", DataTable)
        if not self.results or not table.row_count:
            return None
        row = table.cursor_row
        return self.results[row] if 0 <= row < len(self.results) else None

    @on(DataTable.RowHighlighted, "#check-table")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail(self.selected())

    def show_detail(self, result: dict | None) -> None:
        text = ""
        if result is not None:
            text = (f"{result.get('status')} · {result.get('kind')} · {result.get('path')}:{result.get('line')}\n"
                    f"{result.get('detail') or ''}")
        self.query_one("#check-detail", Static).update(printable(text))

    # -- running -------------------------------------------------------------
    @work(thread=True, exclusive=True, group="check-run", exit_on_error=False)
    def run_checks(self, query: str | None, label: str) -> None:
        app = self.app

        def progress(*args) -> None:
            if len(args) >= 2 and isinstance(args[0], int | float) and isinstance(args[1], int | float):
                item = args[2] if len(args) > 2 else None
                app.call_later_safe(self._progress, args[0], args[1], _as_dict(item))

        try:
            report = app.kb.run_checks(query=query, on_progress=progress)
        except Exception as exc:  # noqa: BLE001
            app.notify(f"checks failed to run: {exc}", severity="error", timeout=10, markup=False)
        else:
            items = [d for d in (_as_dict(r) for r in getattr(report, "results", None) or []) if d]
            for d in items:
                self.live[(d.get("kind"), d.get("path"), d.get("line"))] = d
            failing = sum(1 for d in items if d.get("status") in FAILING)
            app.notify(f"checks done ({label}): {len(items)} run, {failing} failing", timeout=4,
                       severity="warning" if failing else "information", markup=False)
        app.call_later_safe(self._finished)

    def _start(self, query: str | None, label: str) -> None:
        if not checks_available(self.app.kb):
            self.notify("Checks are not available in this build.", severity="warning")
            return
        if self.running:
            self.notify("Checks are already running.", timeout=2)
            return
        self.running = True
        bar = self.query_one("#check-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.remove_class("hidden")
        self.query_one("#checks-status", Static).update(printable(f"Running checks: {label}…"))
        self.run_checks(query, label)

    def _progress(self, done: float, total: float, item: dict | None = None) -> None:
        self.query_one("#check-progress", ProgressBar).update(total=max(total, 1), progress=done)
        if item:
            self.query_one("#checks-status", Static).update(printable(
                f"Running checks: {int(done)}/{int(total)} · {item.get('path')}:{item.get('line')} {item.get('status')}"))

    def _finished(self) -> None:
        self.running = False
        self.query_one("#check-progress", ProgressBar).add_class("hidden")
        self.load_results()

    def action_rerun_selected(self) -> None:
        result = self.selected()
        if result is None:
            self.action_rerun_all()
            return
        path = str(result.get("path", "")).replace('"', "")
        kind = result.get("kind")
        query = f'path:"{path}"' + (f" kind:{kind}" if kind in ("formula", "snippet") else "")
        self._start(query, f"{path} ({kind})")

    def action_rerun_all(self) -> None:
        self._start(self.check_query, self.check_query or "all")

    def action_back(self) -> None:
        self.app.pop_screen()
