"""Leeches: cards forgotten again and again. Pure."""

from __future__ import annotations


def is_leech_lapse(lapses: int, threshold: int) -> bool:
    """Whether the lapse that brought a card to `lapses` makes it a leech.

    Like Anki: at `threshold` lapses, and again every half threshold after (so a leech
    that was unsuspended and keeps failing is caught again). `threshold` <= 0 disables.
    """
    if threshold <= 0 or lapses < threshold:
        return False
    return (lapses - threshold) % max(1, threshold // 2) == 0
