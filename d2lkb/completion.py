"""Shell completion for the CLI's values: tags and query fields, note paths, export formats,
devices. Reads the knowledge base read-only (never creates one) and is silent on any error."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from d2lkb.textsafe import UNSAFE

FIELDS = ("kind:", "status:", "due:", "path:", "tag:")
KINDS = ("card", "note", "section", "formula", "snippet")
STATUSES = ("new", "learning", "review", "suspended", "due", "refuted", "failed", "passed", "verified",
            "unparsed", "context", "error", "timeout")
DUES = ("today", "tomorrow", "overdue")


def _root_params(ctx) -> dict:
    while getattr(ctx, "parent", None) is not None:
        ctx = ctx.parent
    return getattr(ctx, "params", {}) or {}


def _rows(ctx, sql: str) -> list[str]:
    from d2lkb.config import config_from_env

    try:
        params = _root_params(ctx)
        db = config_from_env(params.get("kb"), params.get("notes")).db_path
        if not db.is_file():
            return []
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            # a name with control characters would drive the terminal as the shell lists it
            return [r[0] for r in conn.execute(sql) if not UNSAFE.search(r[0])]
    except Exception:  # noqa: BLE001 - completion must never fail loudly
        return []


def complete_query(ctx, incomplete: str) -> list[str]:
    """`#` + tags, field names, and the values of kind:/status:/due:."""
    if incomplete.startswith("#") or incomplete.startswith("tag:"):
        prefix = "#" if incomplete.startswith("#") else "tag:"
        tags = _rows(ctx, "SELECT name FROM tag ORDER BY name")
        return [prefix + t for t in tags if (prefix + t).startswith(incomplete)]
    for key, values in (("kind:", KINDS), ("status:", STATUSES), ("due:", DUES)):
        if incomplete.startswith(key):
            return [key + v for v in values if (key + v).startswith(incomplete)]
    return [f for f in FIELDS if f.startswith(incomplete)]


def complete_note(ctx, incomplete: str) -> list[str]:
    return [p for p in _rows(ctx, "SELECT path FROM note ORDER BY path") if p.startswith(incomplete)]


def complete_format(incomplete: str) -> list[str]:
    return [f for f in ("csv", "json", "apkg") if f.startswith(incomplete)]


def complete_device(incomplete: str) -> list[str]:
    return [d for d in ("auto", "cpu", "cuda") if d.startswith(incomplete)]
