"""Small pure helpers the screens share: durations, grade hints, check badges, streaks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache

from d2lkb.review.days import day_start
from d2lkb.review.types import Grade
from d2lkb.textsafe import printable

GRADE_LABELS = {Grade.AGAIN: "Again", Grade.HARD: "Hard", Grade.GOOD: "Good", Grade.EASY: "Easy"}

# status -> (badge, CSS class suffix)
CHECK_BADGES = {
    "verified": ("✓ verified", "ok"),
    "passed": ("▶ passed", "ok"),
    "definition": ("≔ definition", "info"),
    "refuted": ("✗ refuted", "bad"),
    "failed": ("✗ failed", "bad"),
    "error": ("✗ error", "bad"),
    "timeout": ("⧗ timeout", "bad"),
    "unparsed": ("? unparsed", "warn"),
    "context": ("◇ needs context", "warn"),
    "skipped": ("– skipped", "info"),
    "untrusted": ("⚠ untrusted", "warn"),
    "unchecked": ("· unchecked", "info"),
}
FAILING = ("refuted", "failed", "error", "timeout")


def compact_duration(delta: timedelta | float) -> str:
    """A short interval label: 45s, 10m, 3h, 8d, 2.5mo, 1.2y."""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{round(seconds)}s"
    if seconds < 3600:
        return f"{round(seconds / 60)}m"
    if seconds < 86400:
        return f"{round(seconds / 3600)}h"
    days = seconds / 86400
    if days < 30:
        return f"{round(days)}d"
    if days < 365:
        return _one_decimal(days / 30) + "mo"
    return _one_decimal(days / 365) + "y"


def _one_decimal(value: float) -> str:
    if value >= 10:
        return str(round(value))
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def grade_hint(previews: Mapping[Grade, timedelta] | None) -> str:
    """`1 Again 1m · 2 Hard 6m · 3 Good 10m · 4 Easy 8d` (intervals left out when unknown)."""
    parts = []
    for grade in Grade:
        label = f"{int(grade)} {GRADE_LABELS[grade]}"
        if previews and grade in previews:
            label += " " + compact_duration(previews[grade])
        parts.append(label)
    return " · ".join(parts)


def check_badge(status: str | None) -> tuple[str, str] | None:
    """(badge text, css class suffix) for a check status, or None when there is none."""
    if not status:
        return None
    return CHECK_BADGES.get(status, (status, "info"))


def review_day(now: datetime, day_starts_at: int) -> date:
    """The calendar date of the review day containing `now` (day rollover at `day_starts_at`)."""
    return day_start(now, day_starts_at).date()


def streak(counts: Mapping[str, int], today: date) -> int:
    """Consecutive days with reviews, ending today (or yesterday, while today has none yet)."""
    day = today if counts.get(today.isoformat(), 0) > 0 else today - timedelta(days=1)
    n = 0
    while counts.get(day.isoformat(), 0) > 0:
        n += 1
        day -= timedelta(days=1)
    return n


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def short(text: str, n: int) -> str:
    """One line of at most `n` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: max(0, n - 1)] + "…"


def short_where(path: str, line: int | str, n: int) -> str:
    """`path:line` in at most `n` characters, cut from the left so the file name and line stay:
    `…/calculus.md:12`."""
    text = f"{path}:{line}"
    return text if len(text) <= n else "…" + text[len(text) - max(0, n - 1):]


def minutes_seconds(seconds: float) -> str:
    seconds = round(max(0.0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m}m {s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def themed(app, text: str, color: str | None = None, *, bold: bool = False, dim: bool = False):
    """A Rich `Text` in a theme colour (`color` is a theme variable name such as "primary").

    DataTable cells are Rich renderables, which know nothing of Textual's `$variables`;
    screens rebuild their tables when the theme changes.
    """
    from rich.style import Style
    from rich.text import Text

    rich_color = None
    if color:
        rich_color = _rich_color(_theme_variables(app).get(color, ""))
        if rich_color is None:  # "auto 60%" and the like: dim text
            dim = True
    return Text(printable(str(text)), style=Style(color=rich_color, bold=bold or None, dim=dim or None), no_wrap=True,
                end="")


@lru_cache(maxsize=256)
def _rich_color(value: str):
    """A theme variable's value as a Rich colour, None when it is not a plain colour (parsing
    fails slowly: kept)."""
    from textual.color import Color

    try:
        return Color.parse(value).rich_color
    except Exception:  # noqa: BLE001
        return None


def _theme_variables(app) -> dict[str, str]:
    """`app.theme_variables`, kept per theme: the property recomputes every variable (~1 ms), and a
    table of 16 decks asks for 80 cells (a tenth of the start-up)."""
    kept = getattr(app, "_d2lkb_theme_variables", None)
    if kept is None or kept[0] != app.theme:
        kept = (app.theme, app.theme_variables)
        app._d2lkb_theme_variables = kept
    return kept[1]
