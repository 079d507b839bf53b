"""Incremental sync: the notes folder -> the SQLite knowledge graph.

Unchanged files cost one stat (size + mtime), a changed mtime is confirmed by the
content hash, changed files are re-parsed, removed files are retired. When no note's
stat changed since the last complete sync, that is all it costs (`vaultscan`). Everything
a sync writes happens in one transaction: a crash or Ctrl-C leaves the previous
state intact. Files that cannot be read or parsed are reported and keep what the
KB already had for them.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from d2lkb.identity import Fingerprint, match_cards
from d2lkb.model import CardKind, ParsedNote
from d2lkb.notes.options import ParseOptions
from d2lkb.store.db import transaction
from d2lkb.store.decks import rebuild_decktotal, tagset_of
from d2lkb.store.docmeta import SEARCH_TABLES, doc_meta, refresh_card_meta  # noqa: F401 - refresh_card_meta re-exported

# The walk and the no-change check live in `vaultscan` (a command whose notes have not changed
# loads only that); their names stay importable from here.
from d2lkb.store.vaultscan import (  # noqa: F401 - re-exported
    MAX_NOTE_BYTES,
    NOTE_SUFFIXES,
    SKIP_DIRS,
    NoteFile,
    Scan,
    SyncReport,
    SyncWarning,
    parser_version,
    record_scan,
    scan,
    scan_key,
    shown_name,
    walk_notes,
)
from d2lkb.textutil import split_cjk


def decode_note(data: bytes, rel: str, warnings: list[SyncWarning]) -> str:
    """Bytes -> text. Invalid UTF-8 and NUL bytes are replaced (U+FFFD) and reported with their line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        warnings.append(SyncWarning(rel, line, f"invalid UTF-8 (byte 0x{data[exc.start]:02x}); replaced with U+FFFD"))
        text = data.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        warnings.append(SyncWarning(rel, line, "NUL byte in file; replaced with U+FFFD"))
        text = text.replace("\x00", "\ufffd")
    return text


def is_ignored(parsed: ParsedNote) -> bool:
    value = parsed.front_matter.get("d2lkb") if isinstance(parsed.front_matter, dict) else None
    return str(value).strip().lower() == "ignore"


def _is_attachment(target: str) -> bool:
    """`![[diagram.png]]`, `[pdf](paper.pdf)`: links to files that are not notes are not graph edges."""
    name = target.rsplit("/", 1)[-1]
    if "." not in name:
        return False
    suffix = "." + name.rsplit(".", 1)[-1].lower()
    return suffix not in NOTE_SUFFIXES and suffix[1:].isalnum() and len(suffix) <= 6


def _aliases(front_matter: dict) -> list[str]:
    value = front_matter.get("aliases", front_matter.get("alias")) if isinstance(front_matter, dict) else None
    if isinstance(value, str):
        return [a.strip() for a in value.split(",") if a.strip()]
    if isinstance(value, list):
        return [str(a).strip() for a in value if str(a).strip()]
    return []


def _front_matter_words(front_matter: dict, path: str = "") -> list[str]:
    """What of a note is searchable besides its title: its file name, aliases and a description."""
    words = [_file_name(path)] if path else []
    words += _aliases(front_matter)
    description = front_matter.get("description") if isinstance(front_matter, dict) else None
    if isinstance(description, str):
        words.append(description)
    return words


def _file_name(path: str) -> str:
    name = posixpath.basename(path)
    for suffix in NOTE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def link_key(target: str) -> str:
    key = target.strip().replace("\\", "/").lower()
    if key.endswith((".md", ".markdown")):
        key = key.rsplit(".", 1)[0]
    while key.startswith("./"):
        key = key[2:]
    return key


def chain_hashes(parsed: ParsedNote) -> list[str]:
    """Per snippet: hash of the code chain it runs after (python/pycon) or of itself (sympy)."""
    out: list[str] = []
    chain = hashlib.sha256()
    for snip in parsed.snippets:
        if snip.language == "sympy":
            out.append(hashlib.sha256(b"sympy\0" + snip.code.encode()).hexdigest())
            continue
        # Whether a traceback is expected changes the run itself (the note goes on after it).
        raises = b"!" if snip.expected is not None and "Traceback (most recent call last)" in snip.expected else b""
        chain.update(snip.language.encode() + raises + b"\0" + snip.code.encode() + b"\0")
        out.append(chain.copy().hexdigest())
    return out


def formula_hash(latex: str) -> str:
    return hashlib.sha256(b"latex\0" + latex.encode()).hexdigest()


class _Writer:
    """Writes parsed notes into the KB inside one transaction."""

    def __init__(self, conn: sqlite3.Connection, now: int):
        self.conn = conn
        self.now = now
        self.tags: dict[str, int] = {name: tid for tid, name in conn.execute("SELECT id, name FROM tag")}
        self.names: dict[int, str] = {tid: name for name, tid in self.tags.items()}
        self.next_doc_id = conn.execute("SELECT coalesce(max(id), 0) FROM doc").fetchone()[0]
        self.next_card_id = conn.execute("SELECT coalesce(max(id), 0) FROM card").fetchone()[0]
        self.metas: dict[tuple, str] = {}
        self.docs: list[tuple] = []
        self.fts: list[tuple] = []
        self.doctags: list[tuple] = []
        self.new_cards: list[tuple] = []
        self.cardtags: list[tuple] = []

    def tag_id(self, display: str) -> int:
        key = display.lower()
        tid = self.tags.get(key)
        if tid is not None:
            return tid
        parent_id = None
        if "/" in key:
            parent_id = self.tag_id(display.rsplit("/", 1)[0])
        tid = self.conn.execute(
            "INSERT INTO tag (name, display, parent_id) VALUES (?, ?, ?)", (key, display, parent_id)
        ).lastrowid
        self.tags[key] = tid
        self.names[tid] = key
        return tid

    def add_doc(self, kind, note_id, card_id, path, line, title, body, tag_ids, check_hash=None, card_kind="") -> None:
        """Queue a search document; `flush` writes the queued ones with three executemany calls."""
        self.next_doc_id += 1
        doc_id = self.next_doc_id
        self.docs.append((doc_id, kind, note_id, card_id, path, line, title, check_hash))
        key = (kind, card_kind, tuple(tag_ids))
        meta = self.metas.get(key)
        if meta is None:
            meta = self.metas[key] = doc_meta(kind, card_kind, (self.names[t] for t in tag_ids))
        self.fts.append((doc_id, split_cjk(title), split_cjk(body), meta))
        self.doctags.extend((t, doc_id) for t in dict.fromkeys(tag_ids))

    def flush(self) -> None:
        conn = self.conn
        conn.executemany("INSERT INTO card (id, note_id, path, line, kind, front, back, prompt, context, reverse,"
                         " sibling_key, formula_idx, snippet_idx, created_at, due, tagset)"
                         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", self.new_cards)
        conn.executemany("INSERT INTO doc (id, kind, note_id, card_id, path, line, title, check_hash)"
                         " VALUES (?,?,?,?,?,?,?,?)", self.docs)
        conn.executemany("INSERT INTO fts (rowid, title, body, meta) VALUES (?, ?, ?, ?)", self.fts)
        conn.executemany("INSERT INTO fts_title (rowid, title, meta) VALUES (?, ?, ?)",
                         [(rowid, title, meta) for rowid, title, _body, meta in self.fts])
        conn.executemany("INSERT OR IGNORE INTO doctag (tag_id, doc_id) VALUES (?, ?)", self.doctags)
        conn.executemany("INSERT OR IGNORE INTO cardtag (card_id, tag_id) VALUES (?, ?)", self.cardtags)
        self.docs, self.fts, self.doctags, self.new_cards, self.cardtags = [], [], [], [], []

    def clear_note(self, note_id: int) -> None:
        for table in SEARCH_TABLES:
            self.conn.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT id FROM doc WHERE note_id = ?)", (note_id,))
        for table in ("doc", "section", "link", "formula", "snippet", "notetag"):
            self.conn.execute(f"DELETE FROM {table} WHERE note_id = ?", (note_id,))

    def write_note(self, note_id: int | None, f: NoteFile, digest: str, parsed: ParsedNote, card_ids: list[int | None]) -> int:
        conn, path = self.conn, f.rel
        fm = json.dumps(parsed.front_matter, default=str, ensure_ascii=False)
        if note_id is None:
            note_id = conn.execute(
                "INSERT INTO note (path, title, size, mtime_ns, hash, front_matter, synced_at) VALUES (?,?,?,?,?,?,?)",
                (path, parsed.title, f.size, f.mtime_ns, digest, fm, self.now),
            ).lastrowid
        else:
            self.clear_note(note_id)
            conn.execute(
                "UPDATE note SET path=?, title=?, size=?, mtime_ns=?, hash=?, front_matter=?, synced_at=? WHERE id=?",
                (path, parsed.title, f.size, f.mtime_ns, digest, fm, self.now, note_id),
            )
        # Tags in scope: note-wide ones, then each section's own plus its ancestors'.
        note_wide: list[int] = []
        own: dict[int, list[int]] = {}
        all_tags: list[int] = []
        for tag in parsed.tags:
            tid = self.tag_id(tag.name)
            all_tags.append(tid)
            if tag.section is None:
                note_wide.append(tid)
            else:
                own.setdefault(tag.section, []).append(tid)
        conn.executemany("INSERT OR IGNORE INTO notetag (note_id, tag_id) VALUES (?, ?)",
                         [(note_id, t) for t in dict.fromkeys(all_tags)])
        scope: list[list[int]] = []
        for i, sec in enumerate(parsed.sections):
            inherited = scope[sec.parent] if sec.parent is not None and sec.parent < i else note_wide
            scope.append(list(dict.fromkeys(inherited + own.get(i, []))))
        conn.executemany(
            "INSERT INTO section (note_id, idx, level, title, line, end_line, parent_idx) VALUES (?,?,?,?,?,?,?)",
            [(note_id, i, s.level, s.title, s.line, s.end_line, s.parent) for i, s in enumerate(parsed.sections)],
        )
        conn.executemany(
            "INSERT INTO link (note_id, target, target_key, alias, line) VALUES (?,?,?,?,?)",
            [(note_id, ln.target, link_key(ln.target), ln.alias, ln.line)
             for ln in parsed.links if not _is_attachment(ln.target)],
        )
        conn.executemany(
            "INSERT INTO formula (note_id, idx, latex, display, line, name, known_failure, check_hash, block,"
            " section) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(note_id, i, fo.latex, int(fo.display), fo.line, fo.name, fo.known_failure, formula_hash(fo.latex),
              fo.block, fo.section)
             for i, fo in enumerate(parsed.formulas)],
        )
        hashes = chain_hashes(parsed)
        conn.executemany(
            "INSERT INTO snippet (note_id, idx, language, code, expected, line, expected_line, info, known_failure, check_hash)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(note_id, i, s.language, s.code, s.expected, s.line, s.expected_line, s.info, s.known_failure, hashes[i])
             for i, s in enumerate(parsed.snippets)],
        )
        # Search documents.
        self.add_doc("note", note_id, None, path, 1, parsed.title, " ".join(_front_matter_words(parsed.front_matter, path)),
                     note_wide)
        for i, sec in enumerate(parsed.sections):
            self.add_doc("section", note_id, None, path, sec.line, sec.title, sec.text, scope[i])
        for fo in parsed.formulas:
            if fo.display:
                tags = scope[fo.section] if fo.section is not None else note_wide
                self.add_doc("formula", note_id, None, path, fo.line, fo.name or fo.latex[:80], fo.latex, tags,
                             formula_hash(fo.latex))
        for i, sn in enumerate(parsed.snippets):
            tags = scope[sn.section] if sn.section is not None else note_wide
            self.add_doc("snippet", note_id, None, path, sn.line, f"{sn.language} snippet", sn.code + "\n" + (sn.expected or ""),
                         tags, hashes[i])
        # Cards: continue matched ids, insert the rest.
        for card, cid in zip(parsed.cards, card_ids, strict=True):
            continued = cid is not None
            values = (note_id, path, card.line, card.kind.value, card.front, card.back, card.prompt, card.context,
                      int(card.reverse), note_sibling_key(note_id, card.sibling_key), card.formula, card.snippet)
            tag_ids = list(dict.fromkeys(self.tag_id(t) for t in card.tags))
            leech = self._leech(cid) if continued else []
            if cid is None:
                self.next_card_id += 1
                cid = self.next_card_id
                self.new_cards.append((cid, *values, self.now, self.now, tagset_of(tag_ids)))
            else:
                conn.execute("DELETE FROM cardtag WHERE card_id = ? AND tag_id NOT IN (SELECT id FROM tag WHERE name = 'leech')",
                             (cid,))
                conn.execute(
                    "UPDATE card SET note_id=?, path=?, line=?, kind=?, front=?, back=?, prompt=?, context=?, reverse=?,"
                    " sibling_key=?, formula_idx=?, snippet_idx=?, retired_at=NULL, tagset=? WHERE id=?",
                    (*values, tagset_of(tag_ids + leech), cid),
                )
            self.cardtags.extend((cid, t) for t in tag_ids)
            check = None
            if card.kind == CardKind.FORMULA and card.formula is not None:
                check = formula_hash(parsed.formulas[card.formula].latex)
            elif card.kind == CardKind.SNIPPET and card.snippet is not None:
                check = hashes[card.snippet]
            self.add_doc("card", note_id, cid, path, card.line, card.front[:200], card.front + "\n" + card.back,
                         tag_ids + leech, check, card.kind.value)
        self.flush()
        return note_id

    def _leech(self, card_id: int) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT tag_id FROM cardtag JOIN tag ON tag.id = tag_id WHERE card_id = ? AND tag.name = 'leech'", (card_id,))]


def note_sibling_key(note_id: int, key: str) -> str:
    """A card's sibling key as stored: the parser's key (a hash of the paragraph, pair or formula block)
    within its note. The same paragraph or display copied into two notes makes two groups, as two Anki
    notes would, not one group whose answers bury each other's cards across the vault."""
    return f"{key}/{note_id}" if key else ""  # the kind stays in front: "reverse:9f2c.../12"


def _fingerprint(card, path: str) -> Fingerprint:
    return Fingerprint(card.kind.value, bool(card.reverse), card.prompt, card.context, path)


PARALLEL_MIN_FILES = 64  # below this a process pool costs more than it saves


def _load_one(f: NoteFile, known_digest: str | None, parse=None, options: ParseOptions | None = None) -> tuple:
    """Read, hash, decode and parse one file: (file, outcome, digest, parsed, warnings).

    outcome: "keep" (could not read or parse: the KB keeps what it had), "touched" (same
    content, new mtime), "ignored" (front matter `d2lkb: ignore`) or "changed".
    """
    warnings: list[SyncWarning] = []
    if f.size > MAX_NOTE_BYTES:
        warnings.append(SyncWarning(f.rel, 0, f"file too large ({f.size / 2**20:.1f} MiB > "
                                              f"{MAX_NOTE_BYTES // 2**20} MiB); skipped"))
        return f, "keep", None, None, warnings
    try:
        with open(f.abs, "rb") as fh:
            data = fh.read(MAX_NOTE_BYTES + 1)
    except OSError as exc:
        warnings.append(SyncWarning(f.rel, 0, f"cannot read: {exc.strerror or exc}"))
        return f, "keep", None, None, warnings
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    if digest == known_digest:
        return f, "touched", digest, None, warnings
    text = decode_note(data, f.rel, warnings)
    try:
        if parse is None:
            from d2lkb.notes.parse import parse_note

            parsed = parse_note(text, f.rel, options)
        else:
            parsed = parse(text, f.rel)
    except Exception as exc:  # a parser bug must not stop the sync
        warnings.append(SyncWarning(f.rel, 0, f"could not parse ({type(exc).__name__}: {exc}); kept previous version"))
        return f, "keep", None, None, warnings
    warnings.extend(SyncWarning(f.rel, w.line, w.message) for w in parsed.warnings)
    if is_ignored(parsed):
        return f, "ignored", digest, None, warnings
    return f, "changed", digest, parsed, warnings


def _load_packed(args: tuple) -> tuple:
    return _load_one(*args)


def _load_all(files: list[NoteFile], known: dict, parse, options: ParseOptions | None = None,
              workers: int | None = None) -> Iterator[tuple]:
    """`_load_one` over every file, in order; parsed in a process pool when it pays off.

    Only from a single-threaded process (forking a threaded one can deadlock) and with the
    default parser (a custom one may not survive pickling). `workers`: processes to parse in
    (default: the cores, at most 8; 1: no pool)."""
    jobs = [(f, known[f.rel][3] if f.rel in known else None, None, options) for f in files]
    workers = workers or min(os.cpu_count() or 1, 8)
    if parse is not None or workers < 2 or len(files) < PARALLEL_MIN_FILES or threading.active_count() > 1:
        for f, digest, _, _ in jobs:
            yield _load_one(f, digest, parse, options)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from d2lkb.checks.sandbox import die_with_parent

    # the workers die with this process (`kill -9` of a sync left them waiting forever)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        yield from pool.map(_load_packed, jobs, chunksize=16)


ATTEMPTS = 3  # optimistic rounds before a sync matches cards inside its write transaction


def sync(
    conn: sqlite3.Connection,
    notes_dir: Path,
    *,
    now: float | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    parse: Callable[[str, str], ParsedNote] | None = None,
    options: ParseOptions | None = None,
    workers: int | None = None,
    follow_links: bool = False,
    walked: Scan | None = None,
) -> SyncReport:
    """Bring the KB in line with `notes_dir`. Returns counts and every warning.
    `options`: how notes are read (default: the defaults and the vault's `.d2lkb.toml`;
    `KnowledgeBase.sync` passes its config's). `workers`: processes that parse changed notes
    (default: one per core; 1 parses in this process). `follow_links`: read links that leave the
    notes folder too (see `walk_notes`). `walked`: a `vaultscan.scan` of `notes_dir` just made on
    `conn` with the same options (`KnowledgeBase.sync` looks before it loads this module).

    When the walk is the one the KB's last complete sync was made from (every note's path, size
    and mtime, the parser and its options: `vaultscan`), there is nothing to do: no note is
    read and nothing is written.

    Reading, parsing and card matching happen before the write transaction, which holds the
    database's write lock only for the writes: a review answered meanwhile (from another
    connection) is not kept waiting for the parse. The write transaction first checks that
    what the matching was based on (the notes' rows, the matched cards' identities) is still
    what the KB holds; when another sync (or a purge) changed it, the sync starts again, and
    the last of `ATTEMPTS` rounds matches inside the transaction."""
    started = time.perf_counter()
    if options is None and parse is None:
        from d2lkb.config import parse_options, vault_settings

        options = parse_options(vault_settings(notes_dir))
    now_i = int(now if now is not None else time.time())
    notes_dir = Path(notes_dir)
    if walked is None:
        walked = scan(conn, notes_dir, options, follow_links=follow_links)
    if parse is None:  # (a custom parser's notes are not what the KB's key stands for)
        report = walked.unchanged()
        if report is not None:
            report.seconds = time.perf_counter() - started
            return report
    for attempt in range(1, ATTEMPTS + 1):
        report = _sync_once(conn, notes_dir, now_i, on_progress, parse, options, workers, follow_links,
                            locked_match=attempt == ATTEMPTS or conn.in_transaction,
                            walked=walked if attempt == 1 else None)
        if report is not None:
            report.seconds = time.perf_counter() - started
            return report
    raise AssertionError("unreachable: the last attempt matches inside its transaction")


def _note_rows(conn: sqlite3.Connection) -> list[tuple]:
    return sorted(conn.execute("SELECT id, path, size, mtime_ns, hash FROM note"))


def _sync_once(conn, notes_dir: Path, now_i: int, on_progress, parse, options, workers, follow_links: bool, *,
               locked_match: bool, walked: Scan | None = None) -> SyncReport | None:
    """One round of `sync`; None when the KB changed under it (start again). `walked`: the notes
    folder as walked just before (the walk is made again when it is None)."""
    report = SyncReport()
    warnings = report.warnings
    # Another connection's commit changes `data_version`: read before anything else (a given walk
    # read it before walking).
    data_version = walked.data_version if walked is not None else conn.execute("PRAGMA data_version").fetchone()[0]
    note_rows = _note_rows(conn)
    known = {path: (nid, size, mtime, digest) for nid, path, size, mtime, digest in note_rows}
    version = parser_version(options)
    row = conn.execute("SELECT value FROM meta WHERE key = 'parser_version'").fetchone()
    stored_version = row[0] if row is not None else None
    if known and stored_version != version and parse is None:
        # This d2lkb reads notes differently from the one that built the KB: read every note
        # again (identity matching keeps every card's history).
        known = {path: (nid, -1, -1, "") for path, (nid, _size, _mtime, _digest) in known.items()}
    if walked is None:
        files = list(walk_notes(notes_dir, warnings, follow_links=follow_links))
        key = scan_key(notes_dir, version, follow_links, files)
    else:
        files, key = walked.files, walked.key
        warnings.extend(walked.warnings)
    seen: set[str] = set()
    keep: set[str] = set()  # unreadable/unparseable files: keep their previous state
    touched: list[tuple[NoteFile, str]] = []  # (file, digest) whose stat changed but content did not
    changed: list[tuple[NoteFile, str, ParsedNote]] = []
    to_read = []
    for f in files:
        seen.add(f.rel)
        old = known.get(f.rel)
        if old is not None and old[1] == f.size and old[2] == f.mtime_ns:
            report.unchanged += 1
            continue
        to_read.append(f)

    if not known and conn.execute("SELECT 1 FROM card LIMIT 1").fetchone() is None:
        # A first sync: no card has an identity to keep, so notes are written as they are parsed
        # (the pool parses the next files while this process writes).
        with transaction(conn):
            if _note_rows(conn):
                return None  # another sync made the first one meanwhile
            writer = _Writer(conn, now_i)
            for n, (f, outcome, digest, parsed, file_warnings) in enumerate(
                    _load_all(to_read, known, parse, options, workers), 1):
                if on_progress:
                    on_progress(n, len(to_read))
                warnings.extend(file_warnings)
                if outcome == "changed":
                    writer.write_note(None, f, digest, parsed, [None] * len(parsed.cards))
                    report.added += 1
                elif outcome == "keep":
                    keep.add(f.rel)
            _resolve_links(conn)
            rebuild_decktotal(conn)
            merge_search_index(conn)
            _count(conn, report, version)
            record_scan(conn, key if parse is None and not keep else None, report)
        return report

    for n, (f, outcome, digest, parsed, file_warnings) in enumerate(_load_all(to_read, known, parse, options, workers), 1):
        if on_progress:
            on_progress(n, len(to_read))
        warnings.extend(file_warnings)
        if outcome == "keep":
            keep.add(f.rel)
        elif outcome == "touched":
            touched.append((f, digest))
            report.unchanged += 1
        elif outcome == "changed":
            changed.append((f, digest, parsed))

    removed = [path for path in known if path not in seen and path not in keep]
    # A known file that is now ignored (front matter `d2lkb: ignore`) leaves the KB too.
    handled = {c[0].rel for c in changed} | {t[0].rel for t in touched} | keep
    removed.extend(f.rel for f in to_read if f.rel in known and f.rel not in handled)

    plan = None
    if (changed or removed) and not locked_match:
        plan = _match(conn, known, changed, removed)  # outside the write lock
    with transaction(conn):
        if not locked_match and conn.execute("PRAGMA data_version").fetchone()[0] != data_version:
            if walked is not None:
                return None  # the walk may be older than what another sync wrote: walk again
            # Another connection committed since the reads above: reviews leave what the
            # matching used alone; another sync or a purge does not.
            row = conn.execute("SELECT value FROM meta WHERE key = 'parser_version'").fetchone()
            if (_note_rows(conn) != note_rows or (row[0] if row is not None else None) != stored_version
                    or (plan is not None and _pool_rows(conn, plan.note_ids) != plan.rows)):
                return None  # rolls back nothing: nothing was written yet
        for f, _digest in touched:
            conn.execute("UPDATE note SET size=?, mtime_ns=? WHERE path=?", (f.size, f.mtime_ns, f.rel))
        if changed or removed:
            _apply(conn, known, changed, removed, now_i, report, plan or _match(conn, known, changed, removed))
            rebuild_decktotal(conn)
        merge_search_index(conn)  # also a KB whose index an older d2lkb wrote (a no-change sync stops earlier)
        _count(conn, report, version)
        record_scan(conn, key if parse is None and not keep else None, report)
    return report


MERGE_SHARE = 10  # see merge_search_index


def merge_search_index(conn: sqlite3.Connection) -> bool:
    """Merge each FTS5 index (`fts`, `fts_title`) into one segment when two or more of its segments
    each hold 1/MERGE_SHARE of it.

    A large write (a first sync, every note read again) leaves the index in several large segments,
    and a lookup by rowid (the snippets of a search, store.search) seeks in every one of them: at
    100k cards, ten such segments make it ten times dearer. The small segments of everyday syncs stay
    as they are (FTS5's automerge folds them in). Returns whether it merged either."""
    merged = False
    for table in SEARCH_TABLES:
        pages = [n for (n,) in conn.execute(f"SELECT max(pgno) FROM {table}_idx GROUP BY segid")]
        total = sum(pages)
        if sum(n * MERGE_SHARE >= total for n in pages) >= 2:
            conn.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
            merged = True
    return merged


def _count(conn: sqlite3.Connection, report: SyncReport, version: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('parser_version', ?)", (version,))
    report.notes = conn.execute("SELECT count(*) FROM note").fetchone()[0]
    report.cards = conn.execute("SELECT count(*) FROM card WHERE retired_at IS NULL").fetchone()[0]
    report.tags = conn.execute("SELECT count(DISTINCT tag_id) FROM notetag").fetchone()[0]
    report.formulas = conn.execute("SELECT count(*) FROM formula").fetchone()[0]
    report.snippets = conn.execute("SELECT count(*) FROM snippet").fetchone()[0]
    report.links = conn.execute("SELECT count(*) FROM link").fetchone()[0]


@dataclass
class _Plan:
    """What card matching decided, and what it decided on (to check it is still so)."""

    note_ids: list[int]  # notes whose cards were in the identity pool
    rows: list[tuple]  # the pool's rows, as read (see `_pool_rows`)
    old_active: set[int]  # pool cards that were not retired
    matches: dict[int, int]  # index into the changed notes' cards -> old card id
    spans: list[tuple[int, int]]  # per changed note: its cards' indexes


def _pool_rows(conn: sqlite3.Connection, note_ids: list[int]) -> list[tuple]:
    """The identity pool: cards of the given notes, and retired cards (sorted)."""
    columns = "id, kind, reverse, prompt, context, path, retired_at, note_id"
    rows = []
    for chunk in range(0, len(note_ids), 500):
        ids = note_ids[chunk:chunk + 500]
        rows += conn.execute(f"SELECT {columns} FROM card WHERE note_id IN ({','.join('?' * len(ids))})", ids).fetchall()
    rows += conn.execute(f"SELECT {columns} FROM card WHERE retired_at IS NOT NULL").fetchall()
    return sorted(rows)


def _match(conn, known, changed, removed) -> _Plan:
    """Which card of the pool each card of the changed notes continues (`d2lkb.identity`)."""
    # Identity pool: cards of changed and removed notes, and retired cards.
    note_ids = [known[f.rel][0] for f, _, _ in changed if f.rel in known] + [known[p][0] for p in removed]
    rows = _pool_rows(conn, note_ids)
    old: list[tuple[int, Fingerprint]] = []
    old_active: set[int] = set()
    for cid, kind, reverse, prompt, context, path, retired_at, _note_id in rows:
        old.append((cid, Fingerprint(kind, bool(reverse), prompt, context, path)))
        if retired_at is None:
            old_active.add(cid)
    new_fps: list[Fingerprint] = []
    spans: list[tuple[int, int]] = []
    for f, _, parsed in changed:
        start = len(new_fps)
        new_fps.extend(_fingerprint(c, f.rel) for c in parsed.cards)
        spans.append((start, len(new_fps)))
    matches = match_cards(old, new_fps) if old else {}
    return _Plan(note_ids, rows, old_active, matches, spans)


def _apply(conn, known, changed, removed, now_i: int, report: SyncReport, plan: _Plan) -> None:
    writer = _Writer(conn, now_i)
    matches, old_active, spans = plan.matches, plan.old_active, plan.spans
    continued = set(matches.values())
    report.revived_cards = len(continued - old_active)

    # Retire first (frees nothing, but keeps counts honest), then drop removed notes.
    to_retire = [cid for cid in old_active if cid not in continued]
    conn.executemany("UPDATE card SET retired_at=?, note_id=NULL WHERE id=?", [(now_i, cid) for cid in to_retire])
    gone = conn.execute("SELECT id FROM doc WHERE card_id IN (SELECT id FROM card WHERE retired_at IS NOT NULL)").fetchall()
    for table in (*SEARCH_TABLES, "doc"):  # the retired cards' documents, found once
        conn.executemany(f"DELETE FROM {table} WHERE rowid = ?", gone)  # (doc.id is doc's rowid)
    report.retired_cards = len(to_retire)
    for path in removed:
        note_id = known[path][0]
        writer.clear_note(note_id)
        conn.execute("UPDATE card SET note_id=NULL WHERE note_id=?", (note_id,))
        conn.execute("DELETE FROM note WHERE id=?", (note_id,))
        report.removed += 1
    # Renames: a removed path's note id is gone; the new path gets a new note id.
    from d2lkb.store.links import note_keys

    keys: set[str] = set()  # what links may now resolve to a changed or new note
    changed_ids: list[int] = []
    for (f, digest, parsed), (start, end) in zip(changed, spans, strict=True):
        note_id = known[f.rel][0] if f.rel in known else None
        # Cards continued elsewhere must not be claimed twice: clear note ownership first.
        card_ids = [matches.get(i) for i in range(start, end)]
        changed_ids.append(writer.write_note(note_id, f, digest, parsed, card_ids))
        keys |= note_keys(f.rel, parsed.title, _aliases(parsed.front_matter))
        if note_id is None:
            report.added += 1
        else:
            report.updated += 1
    _resolve_links(conn, keys, changed_ids)
    # Tags no longer used by any note or live card (and with no children) go away.
    while conn.execute(
        "DELETE FROM tag WHERE id NOT IN (SELECT tag_id FROM notetag) AND id NOT IN (SELECT tag_id FROM cardtag)"
        " AND id NOT IN (SELECT parent_id FROM tag WHERE parent_id IS NOT NULL)"
    ).rowcount:
        pass


def _resolve_links(conn: sqlite3.Connection, keys: set[str] | None = None, note_ids: list[int] | None = None) -> None:
    """Point links at notes, as Obsidian resolves them (see `d2lkb.store.links`).

    Without `keys`, every unresolved link. With them (a sync that changed notes), also
    every link that might now point elsewhere: links to the changed notes (`note_ids`,
    whose title or aliases may have changed) and links whose target is one of `keys`,
    the names, paths and titles of the changed notes (a new note can take over an
    ambiguous name); relative and `/rooted` links are always looked at again."""
    from d2lkb.store.links import LinkResolver

    notes = []
    for nid, path, title, front_matter in conn.execute("SELECT id, path, title, front_matter FROM note"):
        aliases = _aliases(json.loads(front_matter)) if "alias" in front_matter else []
        notes.append((nid, path, title, aliases))
    resolver = LinkResolver(notes)
    paths = resolver.paths
    query = "SELECT id, target, note_id, target_note_id FROM link WHERE target_note_id IS NULL"
    args: list = []
    if keys is not None:
        query += " OR target_key LIKE '/%' OR target_key LIKE '.%'"
        if len(keys) + len(note_ids or ()) > 5000:  # a big sync: look at every link
            query = "SELECT id, target, note_id, target_note_id FROM link"
        else:
            if note_ids:
                query += f" OR target_note_id IN ({','.join('?' * len(note_ids))})"
                args += note_ids
            if keys:
                query += f" OR target_key IN ({','.join('?' * len(keys))})"
                args += sorted(keys)
    updates = []
    for lid, target, note_id, current in conn.execute(query, args).fetchall():
        nid = resolver.resolve(target, paths.get(note_id, ""))
        if nid != current:
            updates.append((nid, lid))
    conn.executemany("UPDATE link SET target_note_id=? WHERE id=?", updates)
