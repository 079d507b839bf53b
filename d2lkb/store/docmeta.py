"""The FTS `meta` column of a search document: its kind and tag tokens (see `d2lkb.textutil`).

Written by the sync for every document, and again by the review layer when a card gains or
loses the `leech` tag (without loading the sync).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from d2lkb.textutil import kind_token, tag_tokens


def doc_meta(kind: str, card_kind: str, tag_names: Iterable[str]) -> str:
    """The FTS `meta` column: kind tokens and tag tokens (see textutil)."""
    kinds = kind_token(kind) + (" " + kind_token(card_kind) if card_kind in ("basic", "cloze") else "")
    return kinds + " " + tag_tokens(tag_names)


# The kinds of document that can carry a check hash (store.sync: a formula, a snippet, and a card made of
# either); a filter on check results matches no other.
CHECKED_KINDS = frozenset({"formula", "snippet", "card"})

# The FTS5 tables holding a search document (store.schema): both are written together.
SEARCH_TABLES = ("fts", "fts_title")


def refresh_card_meta(conn: sqlite3.Connection, card_id: int) -> None:
    """Re-derive the FTS `meta` tokens of a card's search document from its `doctag` rows
    (after the review layer adds or removes the `leech` tag), in `fts` and `fts_title`."""
    card_kind = conn.execute("SELECT kind FROM card WHERE id = ?", (card_id,)).fetchone()[0]
    for doc_id, kind in conn.execute("SELECT id, kind FROM doc WHERE kind = 'card' AND card_id = ?", (card_id,)).fetchall():
        names = [r[0] for r in conn.execute(
            "SELECT tag.name FROM doctag JOIN tag ON tag.id = doctag.tag_id WHERE doctag.doc_id = ?", (doc_id,))]
        meta = doc_meta(kind, card_kind, names)
        for table in SEARCH_TABLES:
            conn.execute(f"UPDATE {table} SET meta = ? WHERE rowid = ?", (meta, doc_id))
