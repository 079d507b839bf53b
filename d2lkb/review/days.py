"""Review days: "today" starts at a configurable local hour (default 4 am), like Anki."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo


def day_start(now: datetime, rollover_hour: int, tz: tzinfo | None = None) -> datetime:
    """Start of the review day containing `now` (aware), as an aware UTC-comparable datetime.

    `tz` defaults to the machine's local time zone.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(tz)
    start = local.replace(hour=rollover_hour, minute=0, second=0, microsecond=0)
    if local < start:
        start -= timedelta(days=1)
    return start


def day_bounds(now: datetime, rollover_hour: int, tz: tzinfo | None = None) -> tuple[datetime, datetime]:
    start = day_start(now, rollover_hour, tz)
    return start, start + timedelta(days=1)


def utc_seconds(now: datetime) -> datetime:
    """`now` in UTC, truncated to whole seconds (what the database can hold)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)
