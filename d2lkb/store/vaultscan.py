"""The notes folder as the KB sees it: the walk (one stat per note) and the quick answer to
"has anything changed since the last sync?".

A sync that leaves the KB in line with every note it walked records the walk's key (a hash of
every note's path, size and mtime, of the notes folder and of how notes are read) in `meta`,
with the counts it reported. The next sync walks the folder again and, when the key is the
same, has nothing to do: no note is read, no table is scanned and nothing is written. This
module imports nothing heavy, so a command whose notes have not changed pays only the walk.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from d2lkb.notes.options import ParseOptions

NOTE_SUFFIXES = (".md", ".markdown")
MAX_NOTE_BYTES = 5 * 1024 * 1024  # larger files are reported and skipped
SKIP_DIRS = {".git", ".hg", ".svn", ".obsidian", ".trash", ".logseq", "node_modules", ".venv", "__pycache__"}

# Bump when parsing changes what a note yields (cards, text, tags): KBs built before re-read
# every note once.
PARSER_VERSION = "6"

SCAN_META_KEY = "notes_scan"  # meta: the key of the walk the last complete sync was made from
COUNTS = ("notes", "cards", "tags", "formulas", "snippets", "links")


@dataclass(frozen=True, slots=True)
class SyncWarning:
    path: str
    line: int
    message: str

    def to_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "message": self.message}


@dataclass
class SyncReport:
    notes: int = 0
    cards: int = 0
    tags: int = 0
    formulas: int = 0
    snippets: int = 0
    links: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    retired_cards: int = 0
    revived_cards: int = 0
    seconds: float = 0.0
    warnings: list[SyncWarning] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in (
            "notes", "cards", "tags", "formulas", "snippets", "links", "added", "updated",
            "removed", "unchanged", "retired_cards", "revived_cards")}
        out["seconds"] = round(self.seconds, 4)
        out["warnings"] = [w.to_dict() for w in self.warnings]
        return out


@dataclass(slots=True)
class NoteFile:
    rel: str
    abs: str
    size: int
    mtime_ns: int


def shown_name(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 (kept by Python as surrogates) written `\\xff`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_BY_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")
_BY_NAME = attrgetter("name")


def walk_notes(root: Path, warnings: list[SyncWarning], *, follow_links: bool = False) -> Iterator[NoteFile]:
    """Every Markdown file under `root`, following links inside it (never in a loop), in a fixed
    order (each folder's entries by name). Hidden files and folders, and SKIP_DIRS, are left out.

    A link (to a folder or a note) whose real path is outside `root` is skipped with a warning
    unless `follow_links` (`[sync] follow_symlinks` of the KB's config). A file or folder whose name
    is not valid UTF-8 is skipped with a warning naming it (its path cannot be stored as text).
    Each note costs one `stat`, made relative to its open folder (no path lookup from the root)."""
    root_str = os.fspath(root)
    root_real = os.path.realpath(root_str)
    seen_dirs: set[tuple[int, int]] = set()
    stack = [(root_str, "")]
    while stack:
        directory, rel_dir = stack.pop()
        fd = None
        try:
            if _BY_FD:
                fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
                st = os.fstat(fd)
            else:  # pragma: no cover - every POSIX system d2lkb runs on has scandir(fd)
                st = os.stat(directory)
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                warnings.append(SyncWarning(rel_dir or ".", 0, "symlink loop: directory already visited, skipped"))
                continue
            seen_dirs.add(key)
            entries = sorted(os.scandir(directory if fd is None else fd), key=_BY_NAME)
            prefix = directory if directory.endswith(os.sep) else directory + os.sep
            rel_prefix = f"{rel_dir}/" if rel_dir else ""
            subdirs = []
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue  # hidden files and folders
                try:
                    if entry.is_file(follow_symlinks=False):  # the usual case: a plain file (no stat yet)
                        if not name.lower().endswith(NOTE_SUFFIXES):
                            continue
                        if not name.isprintable() and not _utf8(name):
                            warnings.append(SyncWarning(shown_name(rel_prefix + name), 0, "note name is not valid "
                                                        "UTF-8; skipped (rename it to read it)"))
                            continue
                        st = entry.stat(follow_symlinks=False)
                        yield NoteFile(rel_prefix + name, prefix + name, st.st_size, st.st_mtime_ns)
                        continue
                    is_dir = entry.is_dir()  # follows links
                    if is_dir:
                        if name in SKIP_DIRS:
                            continue
                    elif not name.lower().endswith(NOTE_SUFFIXES):
                        continue
                    rel = rel_prefix + name
                    what = "folder" if is_dir else "note"
                    if not name.isprintable() and not _utf8(name):
                        warnings.append(SyncWarning(shown_name(rel), 0, f"{what} name is not valid UTF-8; skipped "
                                                                        "(rename it to read it)"))
                        continue
                    if entry.is_symlink() and not follow_links:
                        target = os.path.realpath(prefix + name)
                        if not _inside(target, root_real):
                            warnings.append(SyncWarning(rel, 0, f"link to a {what} outside the notes folder "
                                                                f"({shown_name(target)}); not followed (set "
                                                                "`follow_symlinks = true` under [sync] in the KB's "
                                                                "config.toml to read it)"))
                            continue
                    if is_dir:
                        subdirs.append((prefix + name, rel))
                        continue
                    st = entry.stat()  # follows links; relative to `fd`
                except OSError as exc:
                    warnings.append(SyncWarning(shown_name(rel_prefix + name), 0, f"cannot stat: {exc.strerror or exc}"))
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield NoteFile(rel_prefix + name, prefix + name, st.st_size, st.st_mtime_ns)
            stack.extend(reversed(subdirs))
        except OSError as exc:
            warnings.append(SyncWarning(rel_dir or ".", 0, f"cannot read directory: {exc.strerror or exc}"))
        finally:
            if fd is not None:
                os.close(fd)


def parser_version(options: ParseOptions | None) -> str:
    """PARSER_VERSION, plus the vault's parse options when they are not the defaults
    (changing them re-reads every note, as a new parser does)."""
    if options is None or options == ParseOptions():
        return PARSER_VERSION
    return f"{PARSER_VERSION}+{options.fingerprint()}"


def scan_key(notes_dir: Path, version: str, follow_links: bool, files: list[NoteFile]) -> str:
    """What a sync of these files reads is decided by: the folder, how notes are read, and
    every note's path, size and mtime (as the per-note check of a sync compares them)."""
    h = hashlib.blake2b(digest_size=16)
    head = f"{os.path.realpath(notes_dir)}\0{version}\0{int(follow_links)}\0{len(files)}\n"
    h.update(head.encode("utf-8", "surrogateescape"))
    h.update("\0".join([f.rel for f in files]).encode("utf-8", "surrogateescape"))
    try:
        h.update(array("q", [f.size for f in files]).tobytes())
        h.update(array("q", [f.mtime_ns for f in files]).tobytes())
    except OverflowError:  # pragma: no cover - an mtime after the year 2262
        h.update(repr([(f.size, f.mtime_ns) for f in files]).encode())
    return h.hexdigest()


@dataclass
class Scan:
    """One walk of the notes folder, and what the KB recorded about the last sync."""

    files: list[NoteFile]
    warnings: list[SyncWarning]
    data_version: int  # the connection's PRAGMA data_version before the walk
    key: str  # `scan_key` of this walk
    version: str  # how this d2lkb reads the notes (`parser_version`)
    recorded: dict | None  # the last complete sync's key and counts (None: none recorded)
    recorded_version: str | None  # the parser version the KB's notes were read with

    def unchanged(self) -> SyncReport | None:
        """The report of the sync that would change nothing, or None when a note may have changed."""
        rec = self.recorded
        if rec is None or rec.get("key") != self.key or self.recorded_version != self.version:
            return None
        counts = {k: int(rec.get(k, 0)) for k in COUNTS}
        return SyncReport(**counts, unchanged=counts["notes"], warnings=list(self.warnings))


def scan(conn: sqlite3.Connection, notes_dir: Path, options: ParseOptions | None, *,
         follow_links: bool = False) -> Scan:
    """Walk `notes_dir` and read what the KB recorded of its last complete sync (one query)."""
    notes_dir = Path(notes_dir)
    if not notes_dir.is_dir():
        raise FileNotFoundError(f"notes folder not found: {notes_dir}")
    # Read before the walk: a sync that uses this walk starts again if another connection commits meanwhile.
    data_version = conn.execute("PRAGMA data_version").fetchone()[0]
    warnings: list[SyncWarning] = []
    files = list(walk_notes(notes_dir, warnings, follow_links=follow_links))
    version = parser_version(options)
    key = scan_key(notes_dir, version, follow_links, files)
    rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN (?, 'parser_version')", (SCAN_META_KEY,)))
    return Scan(files, warnings, data_version, key, version, _loads(rows.get(SCAN_META_KEY)), rows.get("parser_version"))


def _loads(value: str | None) -> dict | None:
    if value is None:
        return None
    try:
        out = json.loads(value)
    except ValueError:
        return None
    return out if isinstance(out, dict) else None


def record_scan(conn: sqlite3.Connection, key: str | None, report: SyncReport) -> None:
    """Inside a sync's write transaction, after it wrote the parser version: the KB now holds every
    note of the walk `key` (None: it does not, e.g. a note could not be read, so the next sync
    must look at the notes again)."""
    if key is None:
        conn.execute("DELETE FROM meta WHERE key = ?", (SCAN_META_KEY,))
        return
    value = json.dumps({"key": key} | {k: getattr(report, k) for k in COUNTS})
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (SCAN_META_KEY, value))
