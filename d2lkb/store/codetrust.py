"""May this note's code run? Decided per note file, at run time, from the file itself.

A note's code may run only when
- the file, opened now through the notes folder, really is (symbolic links resolved, as
  the kernel opened it) inside a folder of the user's trust list (`d2lkb.trust`);
- its bytes are the ones the KB read at the last sync (so a KB reused across notes
  folders, or a note kept because it could not be re-read, never runs another
  folder's code);
- and, before anything runs, the snippets parsed from those bytes are the KB's rows,
  code for code: what runs comes from the trusted file, never from the KB alone.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from d2lkb.model import Snippet
from d2lkb.notes.options import ParseOptions
from d2lkb.trust import trusted_folder

UNTRUSTED_HINT = "run `d2lkb trust FOLDER` to allow its code"


@dataclass
class NoteCode:
    """One note's verdict: `reason` is None when its code may run."""

    rel: str
    reason: str | None
    data: bytes = b""
    _parsed: tuple[list[Snippet], list[str]] | None = field(default=None, repr=False)

    def snippets(self, options: ParseOptions) -> tuple[list[Snippet], list[str]]:
        """The note's snippets and their check hashes, parsed from the bytes that were verified."""
        if self._parsed is None:
            from d2lkb.notes.parse import parse_note
            from d2lkb.store.sync import chain_hashes, decode_note

            parsed = parse_note(decode_note(self.data, self.rel, []), self.rel, options)
            self._parsed = (list(parsed.snippets), chain_hashes(parsed))
        return self._parsed

    def runnable(self, rows: list, options: ParseOptions) -> list[Snippet] | str:
        """The snippets to run for these KB rows (s.note_id, path, idx, language, code, expected, ...,
        check_hash last), taken from the file; or why not (the KB's copy is not the file's)."""
        snippets, hashes = self.snippets(options)
        out = []
        for r in rows:
            idx, language, code, check_hash = r[2], r[3], r[4], r[10]
            if not (0 <= idx < len(snippets)) or hashes[idx] != check_hash or \
                    snippets[idx].language != language or snippets[idx].code != code:
                return f"the KB's copy of {self.rel} is not the file's: run `d2lkb sync` first"
            out.append(snippets[idx])
        return out


def note_verdicts(notes_dir: Path, notes: dict[int, tuple[str, str | None]], folders: list[str],
                  problem: str | None, max_bytes: int) -> dict[int, NoteCode]:
    """{note id: NoteCode} for notes given as {id: (path relative to notes_dir, the KB's content hash)}.
    `folders`: the trusted real paths; `problem`: why the trust list could not be read (nothing runs)."""
    out = {}
    for nid, (rel, digest) in notes.items():
        if problem:
            out[nid] = NoteCode(rel, f"cannot read the trust list: {problem}")
        elif not folders:
            out[nid] = NoteCode(rel, f"no folder is trusted: {UNTRUSTED_HINT}")
        else:
            out[nid] = _verdict(notes_dir, rel, digest, folders, max_bytes)
    return out


def _verdict(notes_dir: Path, rel: str, digest: str | None, folders: list[str], max_bytes: int) -> NoteCode:
    path = os.path.join(notes_dir, rel)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return NoteCode(rel, f"cannot open {path}: {exc.strerror or exc}")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return NoteCode(rel, f"{path} is not a regular file")
        real = _opened_path(fd, path)
        folder = trusted_folder(real, folders) if real is not None else None
        if folder is None:
            return NoteCode(rel, f"{real or path} is not in a trusted folder: {UNTRUSTED_HINT}")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        return NoteCode(rel, f"cannot read {path}: {exc.strerror or exc}")
    finally:
        os.close(fd)
    # The same digest as sync's (d2lkb.store.sync._load_one).
    if digest is None or hashlib.blake2b(data, digest_size=16).hexdigest() != digest:
        return NoteCode(rel, f"{rel} is not the file the KB read at the last sync: run `d2lkb sync` first")
    return NoteCode(rel, None, data)


def _opened_path(fd: int, path: str) -> str | None:
    """The real path of the file open on `fd`: what the kernel opened (Linux), else `path` resolved."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)
    if real.endswith(" (deleted)") or not real.startswith("/"):
        return None
    return real
