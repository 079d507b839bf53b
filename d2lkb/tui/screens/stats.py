"""Stats for all cards or a query (a deck): review heatmap, due forecast with dates and counts,
answer buttons, retention, and the interval and difficulty distributions (textual-plotext and
text bars).

This module is imported only when the stats screen opens: plotext stays off the start-up path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual_plotext import PlotextPlot

from d2lkb.review.types import Grade
from d2lkb.store.deckstats import QueryStats
from d2lkb.textsafe import printable
from d2lkb.tui.formatting import GRADE_LABELS, review_day
from d2lkb.tui.widgets.heatmap import Heatmap

FORECAST_DAYS = 14
BAR = 30  # widest text bar, in cells


@dataclass
class StatsData:
    numbers: dict
    heatmap: dict[str, int]
    forecast: list[int]
    answers: dict[int, int]
    retention: list[tuple[str, float | None]]
    today: date
    query: QueryStats | None = None


def text_bars(rows: list[tuple[str, int]], width: int = BAR, empty: str = "no data yet") -> str:
    """One labelled bar per row with its count: `Mon 2 Mar  ████████ 12`."""
    top = max((n for _, n in rows), default=0)
    if top == 0:
        return f"  ({empty})"
    label_w = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{label_w}}  {'█' * max(1 if n else 0, round(n / top * width)):<{width}} {n}"
                     for label, n in rows)


class StatsScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("g", "reload", "Refresh"),
    ]

    def __init__(self, query: str | None = None) -> None:
        super().__init__()
        self.stats_query = query or None
        self.data: StatsData | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="stats-body"):
            yield Static("Loading…", id="stats-numbers")
            yield Static("Reviews per day" + (" (all cards)" if self.stats_query else ""), classes="section-title")
            yield Heatmap(id="heatmap")
            with Horizontal(id="charts-row"):
                with VerticalScroll(id="forecast-box", classes="chart"):
                    yield Static(f"Due, next {FORECAST_DAYS} days", classes="section-title")
                    yield Static("", id="forecast", markup=False)
                yield PlotextPlot(id="answers", classes="chart")
            yield PlotextPlot(id="retention", classes="chart")
            with Horizontal(id="distributions"):
                with VerticalScroll(classes="chart"):
                    yield Static("Intervals (review cards)", classes="section-title")
                    yield Static("", id="intervals", markup=False)
                with VerticalScroll(classes="chart"):
                    yield Static("Difficulty (FSRS, 1 easy - 10 hard)", classes="section-title")
                    yield Static("", id="difficulty", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "stats" + (printable(f" · {self.stats_query}") if self.stats_query else "")
        self.load()

    @work(thread=True, exclusive=True, group="stats", exit_on_error=False)
    def load(self) -> None:
        from d2lkb.query import QueryError

        kb = self.app.kb
        try:
            query = kb.resolve_query(self.stats_query).query if self.stats_query else None
            qs = kb.query_stats(query, days=30)
            numbers = {"cards": qs.cards, "new": qs.new, "learning": qs.learning, "review": qs.review,
                       "suspended": qs.suspended, "retention_30d": qs.retention_30d,
                       "due_today": kb.due_counts(query).total}
            if query is None:
                numbers["reviews_today"] = kb.review_stats()["reviews_today"]
            data = StatsData(
                numbers=numbers,
                heatmap=kb.heatmap(days=365),
                forecast=[n for _, n in qs.forecast],
                answers=dict(qs.answers),
                retention=[(d.isoformat(), v) for d, v in qs.retention],
                today=review_day(kb.now(), kb.config.review.day_starts_at),
                query=qs,
            )
        except QueryError as exc:
            self.app.notify(printable(str(exc)), severity="error", markup=False)
            self.app.call_later_safe(self.query_one("#stats-numbers", Static).update, Content(printable(f"✗ {exc}")))
            return
        except Exception as exc:  # noqa: BLE001
            self.app.notify(f"could not load stats: {exc}", severity="error", markup=False)
            return
        self.app.call_later_safe(self.show, data)

    def _colour(self, name: str) -> tuple[int, int, int]:
        return Color.parse(self.app.theme_variables.get(name, "#888888")).rgb

    def show(self, data: StatsData) -> None:
        self.data = data
        n = data.numbers
        retention = n.get("retention_30d")
        self.query_one("#stats-numbers", Static).update(Content.from_markup(
            "$what[b]Cards[/] $cards  ([$primary]$new new[/] · [$warning]$learning learning[/] · "
            "[$success]$review review[/] · $suspended suspended)\n"
            "[b]Due today[/] [b $text-accent]$due[/]   [b]Reviewed today[/] $today   [b]Retention (30 days)[/] $ret",
            what=f"[{self.stats_query}] " if self.stats_query else "", cards=str(n.get("cards", 0)), new=str(n.get("new", 0)), learning=str(n.get("learning", 0)),
            review=str(n.get("review", 0)), suspended=str(n.get("suspended", 0)), due=str(n.get("due_today", 0)),
            today=str(n.get("reviews_today", "–")), ret="–" if retention is None else f"{retention:.0%}"))
        self.query_one("#heatmap", Heatmap).set_data(data.heatmap, data.today)
        self._forecast(data)
        self._answers(data)
        self._retention(data)
        if data.query is not None:
            self.query_one("#intervals", Static).update(text_bars(data.query.intervals, 24))
            self.query_one("#difficulty", Static).update(text_bars(data.query.difficulty, 24))

    def _forecast(self, data: StatsData) -> None:
        """Text bars, one per day with its date and count (plotted bars merged at small widths)."""
        rows = []
        for i, n in enumerate(data.forecast[:FORECAST_DAYS]):
            d = data.today + timedelta(days=i)
            label = "today" if i == 0 else "tomorrow" if i == 1 else f"{d:%a} {_short_date(d.isoformat())}"
            rows.append((label, n))
        self.query_one("#forecast", Static).update(text_bars(rows, 24, "nothing due in the next two weeks"))

    def _answers(self, data: StatsData) -> None:
        plot = self.query_one("#answers", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        labels = [GRADE_LABELS[g] for g in Grade]
        values = [data.answers.get(int(g), 0) for g in Grade]
        total = sum(values)
        plt.title(f"Answers: {total}" if total else "Answers: no data yet")
        colours = [self._colour(c) for c in ("error", "warning", "success", "primary")]
        for i, (value, colour) in enumerate(zip(values, colours, strict=True)):
            plt.bar([i], [value], color=colour, width=0.6)
        plt.xticks(list(range(len(labels))), labels)
        plt.xlim(-0.6, len(labels) - 0.4)
        _integer_yticks(plt, max(values))
        plot.refresh()

    def _retention(self, data: StatsData) -> None:
        plot = self.query_one("#retention", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        points = [(i, v * 100) for i, (_, v) in enumerate(data.retention) if v is not None]
        plt.title(f"Retention %, last {len(data.retention)} days" + ("" if any(
            v is not None for _, v in data.retention) else ": no data yet"))
        plt.ylim(0, 100)
        if points:
            xs, ys = zip(*points, strict=True)
            plt.plot(list(xs), list(ys), color=self._colour("success"), marker="braille")
            labels = [d for d, _ in data.retention]
            ticks = list(range(0, len(labels), 7))
            plt.xticks(ticks, [_short_date(labels[i]) for i in ticks])
        else:
            plt.xticks([], [])
        plt.xlim(0, max(1, len(data.retention) - 1))
        plot.refresh()

    def action_reload(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()


def _integer_yticks(plt, top: int) -> None:
    """Whole-number ticks (counts), at most six of them."""
    step = max(1, -(-top // 5))
    ticks = list(range(0, max(top, 1) + step, step))
    plt.yticks(ticks, [str(t) for t in ticks])
    plt.ylim(0, ticks[-1])


def _short_date(iso: str) -> str:
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d.day} {('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')[d.month - 1]}"


