"""Stats: review heatmap, due forecast, retention and answer buttons, plotted (textual-plotext).

This module is imported only when the stats screen opens: plotext stays off the start-up path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

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
from d2lkb.tui.formatting import GRADE_LABELS, review_day
from d2lkb.tui.widgets.heatmap import Heatmap


@dataclass
class StatsData:
    numbers: dict
    heatmap: dict[str, int]
    forecast: list[int]
    answers: dict[int, int]
    retention: list[tuple[str, float | None]]
    today: date


class StatsScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("g", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.data: StatsData | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="stats-body"):
            yield Static("Loading…", id="stats-numbers")
            yield Static("Reviews per day", classes="section-title")
            yield Heatmap(id="heatmap")
            with Horizontal(id="charts-row"):
                yield PlotextPlot(id="forecast", classes="chart")
                yield PlotextPlot(id="answers", classes="chart")
            yield PlotextPlot(id="retention", classes="chart")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "stats"
        self.load()

    @work(thread=True, exclusive=True, group="stats", exit_on_error=False)
    def load(self) -> None:
        kb = self.app.kb
        try:
            data = StatsData(
                numbers=kb.review_stats(),
                heatmap=kb.heatmap(days=365),
                forecast=list(kb.forecast(days=30)),
                answers=dict(kb.answer_breakdown()),
                retention=list(kb.retention_by_day(days=30)),
                today=review_day(kb.now(), kb.config.review.day_starts_at),
            )
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
            "[b]Cards[/] $cards  ([$primary]$new new[/] · [$warning]$learning learning[/] · "
            "[$success]$review review[/] · $suspended suspended)\n"
            "[b]Due today[/] [b $accent]$due[/]   [b]Reviewed today[/] $today   [b]Retention (30 days)[/] $ret",
            cards=str(n.get("cards", 0)), new=str(n.get("new", 0)), learning=str(n.get("learning", 0)),
            review=str(n.get("review", 0)), suspended=str(n.get("suspended", 0)), due=str(n.get("due_today", 0)),
            today=str(n.get("reviews_today", 0)), ret="–" if retention is None else f"{retention:.0%}"))
        self.query_one("#heatmap", Heatmap).set_data(data.heatmap, data.today)
        self._forecast(data)
        self._answers(data)
        self._retention(data)

    def _forecast(self, data: StatsData) -> None:
        plot = self.query_one("#forecast", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        days = list(range(len(data.forecast)))
        plt.title(f"Due, next {len(days)} days: {sum(data.forecast)}")
        if days:
            plt.bar(days, data.forecast, color=self._colour("primary"), width=0.6)
            ticks = [d for d in days if d % 7 == 0]
            plt.xticks(ticks, ["today" if d == 0 else f"+{d}d" for d in ticks])
        _integer_yticks(plt, max(data.forecast, default=0))
        plot.refresh()

    def _answers(self, data: StatsData) -> None:
        plot = self.query_one("#answers", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        labels = [GRADE_LABELS[g] for g in Grade]
        values = [data.answers.get(int(g), 0) for g in Grade]
        total = sum(values)
        plt.title(f"Answers: {total}")
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
        plt.title(f"Retention %, last {len(data.retention)} days")
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


