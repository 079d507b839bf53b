"""Which note a link points at, the way Obsidian (and Logseq) resolve links.

For a link target `T` written in the note at `S`:

1. `./T`, `../T`, and a Markdown link with an explicit `.md` (`[x](b.md)`): the path
   relative to `S`'s folder, when that note exists;
2. the exact path from the vault root (`[[folder/note]]`, case-insensitive, `.md`
   optional);
3. a partial path: a note whose path ends with `/T` (`[[other/b]]` finds `sub/other/b.md`);
4. a name: a note whose file name is `T` (a Logseq namespace file `a___b.md` is named
   `a/b`);
5. a front matter `title`, `aliases` / Logseq `alias::` (only when unique).

Where several notes match in 3 or 4, the one in `S`'s folder wins, else the one
nearest the vault root (fewest folders, then alphabetical).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

NOTE_SUFFIXES = (".md", ".markdown")


def _strip_suffix(path: str) -> str:
    low = path.lower()
    for suffix in NOTE_SUFFIXES:
        if low.endswith(suffix):
            return path[: -len(suffix)]
    return path


def note_names(path: str) -> list[str]:
    """Lower-cased names a note answers to: its file name, and as a Logseq namespace."""
    stem = _strip_suffix(posixpath.basename(path)).lower()
    names = [stem]
    logseq = stem.replace("___", "/").replace("%2f", "/")
    if logseq != stem:
        names.append(logseq)
    return names


def note_keys(path: str, title: str, aliases: Iterable[str]) -> set[str]:
    """Every link target (as `sync.link_key` normalises it) that could resolve to this
    note: its path and each partial path, its names, title and aliases."""
    key = _key(path)
    keys = {key, *note_names(path), title.strip().lower(), *(a.strip().lower() for a in aliases)}
    cut = key.find("/")
    while cut >= 0:
        keys.add(key[cut + 1 :])
        cut = key.find("/", cut + 1)
    keys.discard("")
    return keys


def _key(path: str) -> str:
    return _strip_suffix(path.strip().replace("\\", "/")).lower()


class LinkResolver:
    def __init__(self, notes: Iterable[tuple[int, str, str, Iterable[str]]]):
        """`notes`: (id, path, title, aliases) of every note."""
        self.by_path: dict[str, int] = {}
        self.paths: dict[int, str] = {}
        self.by_name: dict[str, list[int]] = {}
        self.by_title: dict[str, list[int]] = {}
        self.by_suffix: dict[str, list[int]] = {}  # `b/c` and `c` of `a/b/c`
        for nid, path, title, aliases in notes:
            self.paths[nid] = path
            key = _key(path)
            self.by_path[key] = nid
            cut = key.find("/")
            while cut >= 0:
                self.by_suffix.setdefault(key[cut + 1 :], []).append(nid)
                cut = key.find("/", cut + 1)
            for name in note_names(path):
                self.by_name.setdefault(name, []).append(nid)
            for label in {title.strip().lower(), *(a.strip().lower() for a in aliases)}:
                if label:
                    self.by_title.setdefault(label, []).append(nid)

    def _pick(self, candidates: list[int], source: str) -> int | None:
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0]
        folder = posixpath.dirname(source)
        same = [c for c in candidates if posixpath.dirname(self.paths[c]) == folder]
        if len(same) == 1:
            return same[0]
        pool = same or candidates
        return min(pool, key=lambda c: (self.paths[c].count("/"), self.paths[c]))

    def resolve(self, target: str, source: str) -> int | None:
        raw = target.strip().replace("\\", "/")
        if not raw:
            return None
        folder = posixpath.dirname(source)
        relative = raw.startswith(("./", "../"))
        if relative or raw.lower().endswith(NOTE_SUFFIXES):
            joined = posixpath.normpath(posixpath.join(folder, raw))
            nid = self.by_path.get(_key(joined))
            if nid is not None:
                return nid
        key = _key(raw).lstrip("/")
        while key.startswith("./"):
            key = key[2:]
        while key.startswith("../"):
            key = key[3:]
        if not key:
            return None
        nid = self.by_path.get(key)
        if nid is not None:
            return nid
        if "/" in key:
            nid = self._pick(self.by_suffix.get(key, []), source)
            if nid is not None:
                return nid
        nid = self._pick(self.by_name.get(key, []), source)
        if nid is not None:
            return nid
        titled = self.by_title.get(key, [])
        return titled[0] if len(titled) == 1 else None
