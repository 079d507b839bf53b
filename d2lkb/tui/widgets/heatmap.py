"""A review calendar: one cell per day, weeks as columns, shaded by the number of reviews."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from d2lkb.tui.formatting import plural

DAY_LABELS = ("Mon", "", "Wed", "", "Fri", "", "Sun")
LABEL_WIDTH = 4
CELL = "■ "
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def level(count: int, top: int) -> int:
    """0 (no reviews) to 4 (the busiest days)."""
    if count <= 0 or top <= 0:
        return 0
    return min(4, 1 + int(4 * (count - 1) / top)) if top > 1 else 4


def calendar_weeks(today: date, weeks: int) -> list[list[date | None]]:
    """`weeks` columns of 7 days (Mon..Sun), the last one holding `today`; future days are None."""
    last_monday = today - timedelta(days=today.weekday())
    first = last_monday - timedelta(weeks=weeks - 1)
    columns = []
    for w in range(weeks):
        monday = first + timedelta(weeks=w)
        columns.append([d if (d := monday + timedelta(days=i)) <= today else None for i in range(7)])
    return columns


class Heatmap(Widget):
    """Reviews per day over the last year (as many weeks as fit the width)."""

    COMPONENT_CLASSES = {"heatmap--label", "heatmap--l0", "heatmap--l1", "heatmap--l2", "heatmap--l3",
                         "heatmap--l4", "heatmap--today"}
    DEFAULT_CSS = """
    Heatmap { height: 9; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.counts: dict[str, int] = {}
        self.today: date | None = None

    def set_data(self, counts: Mapping[str, int], today: date) -> None:
        self.counts = {k: int(v) for k, v in counts.items()}
        self.today = today
        self.refresh()

    def weeks_shown(self) -> int:
        return max(1, min(53, (self.size.width - LABEL_WIDTH) // len(CELL)))

    def _cell_style(self, name: str) -> Style:
        """A component's colour blended over the widget's background (the CSS may use alpha: `$success 40%`)."""
        _, background = self.background_colors
        colour = self.get_component_styles(name).color
        return Style(color=(background + colour).rich_color, bgcolor=background.rich_color)

    def render_line(self, y: int) -> Strip:
        if self.today is None:
            return Strip.blank(self.size.width, self.rich_style)
        base = self.rich_style
        label_style = base + self._cell_style("heatmap--label")
        columns = calendar_weeks(self.today, self.weeks_shown())
        if y == 0:  # month names above the week in which a month starts
            line = [" "] * (LABEL_WIDTH + len(columns) * len(CELL))
            last_month, free_from = None, 0
            for i, col in enumerate(columns):
                first = next(d for d in col if d is not None)
                month = (first + timedelta(days=6)).month if i else first.month
                x = LABEL_WIDTH + i * len(CELL)
                if month != last_month and x >= free_from and x + 3 <= len(line):
                    line[x:x + 3] = MONTHS[month - 1]
                    free_from = x + 4
                last_month = month
            return Strip([Segment("".join(line), label_style)]).crop_extend(0, self.size.width, base)
        if 1 <= y <= 7:
            row = y - 1
            top = max(self.counts.values(), default=0)
            segments = [Segment(DAY_LABELS[row].ljust(LABEL_WIDTH), label_style)]
            for col in columns:
                day = col[row]
                if day is None:
                    segments.append(Segment(" " * len(CELL), base))
                    continue
                n = self.counts.get(day.isoformat(), 0)
                name = "heatmap--today" if day == self.today and n == 0 else f"heatmap--l{level(n, top)}"
                segments.append(Segment(CELL, base + self._cell_style(name)))
            return Strip(segments).crop_extend(0, self.size.width, base)
        if y == 8:
            total = sum(self.counts.values())
            active = sum(1 for v in self.counts.values() if v > 0)
            segments = [Segment(" " * LABEL_WIDTH + "Less ", label_style)]
            for i in range(5):
                segments.append(Segment(CELL, base + self._cell_style(f"heatmap--l{i}")))
            segments.append(Segment(f"More   {plural(total, 'review')} on {plural(active, 'day')}", label_style))
            return Strip(segments).crop_extend(0, self.size.width, base)
        return Strip.blank(self.size.width, base)

    def render_text(self) -> str:
        """The grid as plain text (for tests): one line per row."""
        return "\n".join(self.render_line(y).text for y in range(9))
