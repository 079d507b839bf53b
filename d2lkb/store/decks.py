"""The home screen's deck tree: today's counts per tag, read from indexes alone.

A deck is a tag; a parent tag counts its children's cards. Each card row carries its
tag set (`card.tagset`, tag ids "3,17"), so cards are counted per tag set with index-only
queries and the sets are mapped to decks in Python (a few hundred distinct sets), never
joining the ~3 `cardtag` rows of each of 100k cards:

- learning and review cards due today (a few thousand at most) are read once, in queue
  order, and run through each of their decks' queue rules (`review.queue`: one card per
  sibling group, the daily review limit);
- new cards are counted per deck by a query that stops once the daily new limit is
  reached (`LIMIT`), so a deck's count costs about the limit, not the deck's size;
- totals come from `decktotal` (live cards per tag set).

The result equals `build_queue(...).counts` over each deck's cards (tests compare them).
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import datetime, timedelta

from d2lkb.review.queue import DayLimits
from d2lkb.review.types import DeckCount, DueCounts
from d2lkb.store.db import transaction

# Schema version 9: of the indexes above, the one of each deck's first new cards holds new cards
# only, and the one of sibling groups only cards in one (an answer that takes a card out of state 0
# deletes its entry rather than moving it across the index; a card without siblings has none).
# Their queries say `state = 0` and `sibling_key != ''` so that SQLite can use them.
PARTIAL_DDL = (
    "DROP INDEX IF EXISTS ix_card_decks",
    "CREATE INDEX ix_card_decks ON card(tagset, sibling_key, retired_at, suspended, buried_until) WHERE state = 0",
    "DROP INDEX IF EXISTS ix_card_sibling",
    "CREATE INDEX ix_card_sibling ON card(sibling_key, state) WHERE sibling_key != ''",
)

# Schema version 4 (see store.db.MIGRATIONS). The card rows are wide (the text columns come
# before the schedule), so every query of the queue and the deck tree reads an index instead.
DECKS_DDL = (
    "DROP INDEX IF EXISTS ix_card_queue",
    "DROP INDEX IF EXISTS ix_card_sibling",
    "DROP INDEX IF EXISTS ix_cardtag_tag",
    "DROP INDEX IF EXISTS ix_reviewlog_day",
    # The review queue (review.queue): cards by state and due time, with everything it checks.
    "CREATE INDEX IF NOT EXISTS ix_card_sched ON card(state, due, id, retired_at, suspended, buried_until, sibling_key,"
    " last_review, tagset)",
    # Cards by state and tag set: deck totals, and each deck's first new cards (PARTIAL_DDL, schema 9).
    "CREATE INDEX IF NOT EXISTS ix_card_decks ON card(state, tagset, sibling_key, retired_at, suspended, buried_until)",
    "CREATE INDEX ix_card_sibling ON card(sibling_key, state)",
    "CREATE INDEX IF NOT EXISTS ix_card_tagset_stale ON card(id) WHERE tagset IS NULL",
    "CREATE INDEX ix_cardtag_tag ON cardtag(tag_id, card_id)",
    # Today's answers by kind (daily limits) and per day (heatmap) without reading the log rows.
    "CREATE INDEX ix_reviewlog_day ON reviewlog(reviewed_at, state_before, rating)",
    # Live cards per tag set (the deck totals). Sync rebuilds it after writing cards; a retired,
    # revived, re-tagged or deleted card moves by the triggers; a card inserted by anything else
    # than sync has no tag set yet (NULL), and readers rebuild the table when they compute one.
    # (No trigger on INSERT: it made a cold sync's card writes several times slower.)
    "CREATE TABLE IF NOT EXISTS decktotal (tagset TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS tr_decktotal_delete AFTER DELETE ON card"
    " WHEN OLD.retired_at IS NULL AND OLD.tagset IS NOT NULL BEGIN"
    " UPDATE decktotal SET n = n - 1 WHERE tagset = OLD.tagset; END",
    "CREATE TRIGGER IF NOT EXISTS tr_decktotal_update AFTER UPDATE OF tagset, retired_at ON card"
    " WHEN OLD.tagset IS NOT NULL AND NEW.tagset IS NOT NULL"
    " AND ((OLD.retired_at IS NULL) != (NEW.retired_at IS NULL) OR OLD.tagset != NEW.tagset) BEGIN"
    " UPDATE decktotal SET n = n - 1 WHERE OLD.retired_at IS NULL AND tagset = OLD.tagset;"
    " INSERT INTO decktotal SELECT NEW.tagset, 1 WHERE NEW.retired_at IS NULL"
    " ON CONFLICT DO UPDATE SET n = n + 1; END",
)

_AVAILABLE = "retired_at IS NULL AND suspended = 0 AND (buried_until IS NULL OR buried_until <= :now)"


def tagset_of(tag_ids) -> str:
    """`card.tagset` for these tag ids."""
    return ",".join(map(str, sorted(set(tag_ids))))


def backfill_tagsets(conn: sqlite3.Connection) -> int:
    """Compute `card.tagset` where it is NULL (cards written by something else than sync, which
    writes it, and by `set_tagset`); returns how many cards."""
    return conn.execute(
        "UPDATE card SET tagset = (SELECT coalesce(group_concat(tag_id, ','), '') FROM"
        " (SELECT tag_id FROM cardtag WHERE card_id = card.id ORDER BY tag_id)) WHERE tagset IS NULL").rowcount


def set_tagset(conn: sqlite3.Connection, card_id: int) -> None:
    """After a card's `cardtag` rows changed outside sync (the leech tag): its tag set again (one
    not computed yet stays for `backfill_tagsets`)."""
    ids = [r[0] for r in conn.execute("SELECT tag_id FROM cardtag WHERE card_id = ?", (card_id,))]
    conn.execute("UPDATE card SET tagset = ? WHERE id = ? AND tagset IS NOT NULL", (tagset_of(ids), card_id))


def rebuild_decktotal(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM decktotal")
    conn.execute("INSERT INTO decktotal SELECT tagset, count(*) FROM card WHERE retired_at IS NULL"
                 " AND tagset IS NOT NULL GROUP BY tagset")


def migrate_decks(conn: sqlite3.Connection) -> None:
    """Schema version 4; safe to run again on a KB that has it."""
    if "tagset" not in {row[1] for row in conn.execute("PRAGMA table_info(card)")}:
        conn.execute("ALTER TABLE card ADD COLUMN tagset TEXT")
    for ddl in DECKS_DDL:
        conn.execute(ddl)
    backfill_tagsets(conn)
    rebuild_decktotal(conn)


def _ensure_totals(conn: sqlite3.Connection) -> None:
    """Tag sets computed and the totals table in step with the cards (see DECKS_DDL)."""
    if conn.execute("SELECT 1 FROM card WHERE tagset IS NULL LIMIT 1").fetchone() is not None:
        with transaction(conn):
            backfill_tagsets(conn)
            rebuild_decktotal(conn)


def deck_counts(conn: sqlite3.Connection, *, now: datetime, day: tuple[datetime, datetime], limits: DayLimits,
                learn_ahead: timedelta) -> list[DeckCount]:
    """The whole collection (tag "") first, then one entry per tag carrying live cards (parents
    before children; a parent counts its children's cards), each with today's due counts."""
    _ensure_totals(conn)
    now_s, start_s, end_s = int(now.timestamp()), int(day[0].timestamp()), int(day[1].timestamp())
    ahead_s = now_s + int(learn_ahead.total_seconds())
    params = {"now": now_s, "end": end_s}

    names: dict[int, str] = {}
    displays: dict[str, str] = {}
    for tid, name, display in conn.execute("SELECT id, name, display FROM tag"):
        names[tid] = name
        displays[name] = display
    decks_of: dict[str, tuple[str, ...]] = {}

    def decks(tagset: str) -> tuple[str, ...]:
        found = decks_of.get(tagset)
        if found is None:
            keys = {""}
            for tid in tagset.split(",") if tagset else ():
                name = names.get(int(tid))
                if name is None:
                    continue
                parts = name.split("/")
                shown = displays.get(name, name).split("/")
                for i in range(1, len(parts) + 1):
                    key = "/".join(parts[:i])
                    keys.add(key)
                    displays.setdefault(key, "/".join(shown[:i]))
            found = decks_of[tagset] = tuple(keys)
        return found

    totals: dict[str, int] = defaultdict(int)
    tagsets: dict[str, list[str]] = defaultdict(list)  # deck -> the tag sets of its live cards
    for tagset, n in conn.execute("SELECT tagset, n FROM decktotal WHERE n > 0"):
        for deck in decks(tagset):
            totals[deck] += n
            tagsets[deck].append(tagset)

    learning: dict[str, int] = defaultdict(int)
    taken: dict[str, set[str]] = defaultdict(set)  # sibling groups a deck's learning cards hold
    for due, key, last_review, tagset in conn.execute(
            "SELECT due, sibling_key, last_review, tagset FROM card INDEXED BY ix_card_sched"
            f" WHERE state IN (1, 3) AND due < :end AND {_AVAILABLE}", params):
        interday = last_review is not None and last_review < start_s
        if not (due <= now_s or interday or due <= ahead_s):
            continue
        for deck in decks(tagset or ""):
            learning[deck] += 1
            if key:
                taken[deck].add(key)

    # Review cards due today, by tag set: how many have no sibling group, and which groups.
    rows = conn.execute("SELECT sibling_key, tagset FROM card INDEXED BY ix_card_sched"
                        f" WHERE state = 2 AND due < :end AND {_AVAILABLE} ORDER BY due, id", params).fetchall()
    lone: dict[str, int] = defaultdict(int)
    grouped: dict[str, set[str]] = defaultdict(set)
    for key, tagset in rows:
        if key:
            grouped[tagset or ""].add(key)
        else:
            lone[tagset or ""] += 1
    left = limits.reviews_left
    reviews: dict[str, int] = {}
    review_groups: dict[str, set[str]] = {}
    for deck in totals:
        groups: set[str] = set()
        n = 0
        for tagset in tagsets[deck]:
            n += lone.get(tagset, 0)
            if tagset in grouped:
                groups |= grouped[tagset]
        groups -= taken[deck]
        # The queue offers one card per group not held by a learning card, up to the limit: how
        # many does not depend on the order, which groups does (see below).
        reviews[deck] = min(left, n + len(groups))
        review_groups[deck] = groups
    due_keys = set().union(*taken.values(), *review_groups.values())

    # Sibling groups with a card due today and a new card: the new card is not offered.
    mixed: set[str] = set()
    if due_keys:
        mixed = {r[0] for r in conn.execute(
            "SELECT DISTINCT sibling_key FROM card INDEXED BY ix_card_sibling WHERE state = 0"
            " AND sibling_key != '' AND sibling_key IN (SELECT value FROM json_each(?))", (json.dumps(sorted(due_keys)),))}
    for deck, groups in review_groups.items():
        if not groups & mixed:
            continue
        if reviews[deck] < left:
            taken[deck] |= groups
            continue
        # The limit cuts this deck's reviews: only the groups of the cards before the cut are taken.
        members = set(tagsets[deck])
        held, n = taken[deck], 0
        for key, tagset in rows:
            if n >= left:
                break
            if (tagset or "") not in members or (key and key in held):
                continue
            if key:
                held.add(key)
            n += 1

    def new_count(deck: str) -> int:
        if limits.new_left <= 0:
            return 0
        where = ["state = 0", _AVAILABLE]
        args: dict = {"now": now_s, "n": limits.new_left}
        if deck:
            where.append("tagset IN (SELECT value FROM json_each(:tagsets))")
            args["tagsets"] = json.dumps(tagsets[deck])
        excluded = taken[deck] & mixed
        if excluded:
            where.append("sibling_key NOT IN (SELECT value FROM json_each(:taken))")
            args["taken"] = json.dumps(sorted(excluded))
        # One per sibling group (a card without one is its own group), at most the daily limit.
        return conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT CASE sibling_key WHEN '' THEN -id ELSE sibling_key END"
            f" FROM card INDEXED BY ix_card_decks WHERE {' AND '.join(where)} LIMIT :n)", args).fetchone()[0]

    def entry(deck: str) -> DeckCount:
        counts = DueCounts(new=new_count(deck), learning=learning[deck], review=reviews[deck])
        return DeckCount(displays.get(deck, deck), deck.count("/"), counts, totals[deck])

    return [entry("")] + [entry(deck) for deck in sorted(totals) if deck]
