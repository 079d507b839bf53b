"""The search query language, parsed into a small syntax tree (no database here).

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*
    unary   := ("NOT" | "-") unary | "(" or ")" | term
    term    := #tag | tag:x | path:x | kind:x | status:x | due:x | "a phrase" | word[*]

Any string either parses or raises `QueryError` with a one-line explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("note", "section", "card", "formula", "snippet")
CARD_KINDS = ("basic", "cloze")  # kinds of card (formula and snippet cards: `kind:card` + the formula/snippet)
CHECK_STATUSES = ("verified", "refuted", "definition", "unparsed", "timeout", "passed", "failed", "error",
                  "skipped", "untrusted", "unchecked", "failing")
CARD_STATUSES = ("new", "learning", "review", "relearning", "suspended", "buried", "leech")
DUE_VALUES = ("now", "today", "tomorrow", "overdue", "week")
FIELDS = ("tag", "path", "kind", "status", "due")
MAX_QUERY = 2000
MAX_DEPTH = 50


class QueryError(ValueError):
    """A query that cannot be understood; the message is meant for the user."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class TagTerm:
    name: str  # lower-cased, without '#'


@dataclass(frozen=True, slots=True)
class Field:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Text | TagTerm | Field | Not | And | Or

_SPECIAL = '()"'


def _tokens(query: str) -> list[tuple[str, str, int]]:
    """(type, value, position); types: LP RP OP WORD PHRASE FIELD NEG."""
    out: list[tuple[str, str, int]] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            out.append(("LP" if c == "(" else "RP", c, i))
            i += 1
        elif c == '"':
            end = query.find('"', i + 1)
            if end < 0:
                raise QueryError(f"unterminated quote at position {i + 1}: add a closing \"")
            out.append(("PHRASE", query[i + 1:end], i))
            i = end + 1
        elif c == "-" and i + 1 < n and not query[i + 1].isspace() and query[i + 1] != ")":
            out.append(("NEG", "-", i))
            i += 1
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] not in _SPECIAL:
                i += 1
            word = query[start:i]
            key, sep, value = word.partition(":")
            if sep and key.isalpha() and key.isascii():
                if key.lower() not in FIELDS:
                    raise QueryError(f"unknown field {key}: (fields are {', '.join(f + ':' for f in FIELDS)}; "
                                     f"quote the text to search for it literally)")
                if not value and i < n and query[i] == '"':
                    end = query.find('"', i + 1)
                    if end < 0:
                        raise QueryError(f"unterminated quote at position {i + 1}: add a closing \"")
                    value = query[i + 1:end]
                    i = end + 1
                if not value:
                    raise QueryError(f"{key}: needs a value, e.g. {key}:{_example(key.lower())}")
                out.append(("FIELD", f"{key.lower()}:{value}", start))
            elif word in ("AND", "OR", "NOT"):
                out.append(("OP", word, start))
            else:
                out.append(("WORD", word, start))
    return out


def _example(key: str) -> str:
    return {"tag": "calculus", "path": "preliminaries/", "kind": "card", "status": "refuted", "due": "today"}[key]


def _field(key: str, value: str) -> Node:
    low = value.lower()
    if key == "tag":
        return _tag(value)
    if key == "kind":
        kind = low.rstrip("s") if low.rstrip("s") in KINDS + CARD_KINDS else low
        if kind not in KINDS + CARD_KINDS:
            raise QueryError(f"kind:{value} is not a kind (use {', '.join(KINDS + CARD_KINDS)})")
        return Field("kind", kind)
    if key == "status":
        if low not in CHECK_STATUSES + CARD_STATUSES:
            raise QueryError(f"status:{value} is not a status (checks: {', '.join(CHECK_STATUSES)}; "
                             f"cards: {', '.join(CARD_STATUSES)})")
        return Field("status", low)
    if key == "due":
        if low not in DUE_VALUES and not (low.isdigit() and len(low) <= 5):
            raise QueryError(f"due:{value} is not understood (use {', '.join(DUE_VALUES)} or a number of days)")
        return Field("due", low)
    return Field("path", value)


def _tag(raw: str) -> TagTerm:
    name = raw.lstrip("#").strip("/").lower()
    if not name or name.isdigit() or any(not (ch.isalnum() or ch in "_-/") for ch in name):
        raise QueryError(f"#{raw.lstrip('#')} is not a valid tag (letters, digits, _ - and / for nesting)")
    return TagTerm(name)


class _Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while (t := self.peek()) and t[0] == "OP" and t[1] == "OR":
            self.pos += 1
            if self.peek() is None or self.peek()[0] == "RP":
                raise QueryError("OR needs something on its right")
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_unary()]
        while (t := self.peek()) and not (t[0] == "RP" or (t[0] == "OP" and t[1] == "OR")):
            if t[0] == "OP" and t[1] == "AND":
                self.pos += 1
                if self.peek() is None:
                    raise QueryError("AND needs something on its right")
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_unary(self) -> Node:
        t = self.peek()
        if t is None:
            raise QueryError("the query ends too early")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(f"the query nests deeper than {MAX_DEPTH} levels")
        try:
            kind, value, pos = t
            self.pos += 1
            if kind == "NEG" or (kind == "OP" and value == "NOT"):
                if self.peek() is None or self.peek()[0] == "RP":
                    raise QueryError(f"{value} at position {pos + 1} needs something to exclude")
                return Not(self.parse_unary())
            if kind == "LP":
                if self.peek() and self.peek()[0] == "RP":
                    raise QueryError(f"empty parentheses at position {pos + 1}")
                node = self.parse_or()
                if not self.peek() or self.peek()[0] != "RP":
                    raise QueryError(f"unbalanced parenthesis at position {pos + 1}: add a closing )")
                self.pos += 1
                return node
            if kind == "RP":
                raise QueryError(f"unexpected ) at position {pos + 1}")
            if kind == "OP":
                raise QueryError(f"{value} at position {pos + 1} needs something on its left")
            if kind == "PHRASE":
                if not value.strip():
                    raise QueryError(f"empty phrase at position {pos + 1}")
                return Text(value, phrase=True)
            if kind == "FIELD":
                key, _, val = value.partition(":")
                return _field(key, val)
            if value.startswith("#") and len(value) > 1:
                return _tag(value)
            prefix = value.endswith("*") and len(value.rstrip("*")) > 0
            word = value.rstrip("*") if prefix else value
            if not any(ch.isalnum() for ch in word):
                raise QueryError(f"{value!r} has no letters or digits to search for")
            return Text(word, prefix=prefix)
        finally:
            self.depth -= 1


def parse_query(query: str) -> Node:
    """Parse a user query; raises QueryError with a one-line explanation."""
    if len(query) > MAX_QUERY:
        raise QueryError(f"query too long ({len(query)} characters, at most {MAX_QUERY})")
    if "\x00" in query:
        raise QueryError("query contains a NUL character")
    tokens = _tokens(query)
    if not tokens:
        raise QueryError("empty query: give words, \"phrases\", #tags or fields such as kind:card")
    parser = _Parser(tokens)
    node = parser.parse_or()
    if parser.peek() is not None:
        kind, value, pos = parser.peek()
        raise QueryError(f"unexpected {value!r} at position {pos + 1}")
    return node
