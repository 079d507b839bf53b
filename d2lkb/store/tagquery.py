"""Tags in queries (decks are queries): `#mlp` finds the nested tag `#dl/mlp`, and an unknown tag is an error that
names the tags it might have meant, not an empty deck."""

from __future__ import annotations

import difflib
import re
import sqlite3
from dataclasses import dataclass, field

from d2lkb.query import QueryError

# `#tag` at the start of a query term (after a space, `(` or the `-` of a negation), outside quotes.
_TAG = re.compile(r'(?<![^\s(\-])#([^\s()"]+)')


class UnknownTag(QueryError):
    """A `#tag` in a query that no card or note carries, with the tags it might have meant."""

    def __init__(self, tag: str, suggestions: list[str]):
        self.tag, self.suggestions = tag, suggestions
        hint = f" — did you mean {' or '.join('#' + s for s in suggestions)}?" if suggestions else ""
        super().__init__(f"no tag #{tag}{hint}")


@dataclass
class Resolved:
    query: str | None  # the query to run (leaf names replaced by the full nested tag)
    notes: list[str] = field(default_factory=list)  # what was replaced, for the user: "#mlp is #dl/mlp"


def tag_paths(conn: sqlite3.Connection) -> set[str]:
    """Every tag and every parent of a nested tag (lower-case, without '#')."""
    out: set[str] = set()
    for (name,) in conn.execute("SELECT name FROM tag"):
        parts = name.split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def resolve_tags(conn: sqlite3.Connection, query: str | None) -> Resolved:
    """`query` with each `#leaf` that is not a tag itself replaced by the one nested tag ending in it.

    Raises `UnknownTag` for a tag that matches nothing (naming close tags) or more than one nested tag.
    """
    if not query or "#" not in query:
        return Resolved(query)
    paths = tag_paths(conn)
    notes: list[str] = []
    out, last = [], 0
    inside_quotes = _quoted_spans(query)
    for m in _TAG.finditer(query):
        if any(a <= m.start() < b for a, b in inside_quotes):
            continue
        name = m.group(1).strip("/").lower()
        if name in paths:
            continue
        nested = sorted(p for p in paths if p.endswith("/" + name))
        if len(nested) == 1:
            out.append(query[last:m.start()] + "#" + nested[0])
            last = m.end()
            notes.append(f"#{name} is #{nested[0]}")
            continue
        if nested:
            raise UnknownTag(name, nested[:5])
        leaves = {p.rsplit("/", 1)[-1]: p for p in sorted(paths)}
        close = difflib.get_close_matches(name, sorted(paths | set(leaves)), n=3, cutoff=0.6)
        raise UnknownTag(name, list(dict.fromkeys(leaves.get(c, c) if c not in paths else c for c in close)))
    out.append(query[last:])
    return Resolved("".join(out), notes)


def _quoted_spans(query: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r'"[^"]*"?', query)]
