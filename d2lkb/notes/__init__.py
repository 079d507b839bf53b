"""Markdown notes -> model values. markdown-it-py lives only in this package.

`parse_note` and `create_markdown` are imported on first use: loading the config (which needs
only `d2lkb.notes.options`) does not import the parser (~0.1 s)."""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["create_markdown", "parse_note"]

if TYPE_CHECKING:
    from d2lkb.notes.parse import create_markdown, parse_note


def __getattr__(name: str):
    if name in __all__:
        from d2lkb.notes import parse

        return getattr(parse, name)
    raise AttributeError(f"module 'd2lkb.notes' has no attribute {name!r}")
