"""Markdown notes -> model values. markdown-it-py lives only in this package."""

from d2lkb.notes.parse import create_markdown, parse_note

__all__ = ["create_markdown", "parse_note"]
