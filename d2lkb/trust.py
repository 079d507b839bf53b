"""The user's list of trusted folders: the only thing that lets `d2lkb check` run code.

It lives in the user's own configuration folder (`$D2LKB_CONFIG_HOME`, else the
platform's, e.g. `$XDG_CONFIG_HOME/d2lkb` or `~/.config/d2lkb`), never in a notes
repository or a KB folder, so that a cloned repository cannot trust itself (as with
direnv's allow list or an editor's workspace trust). Entries are real paths: a folder
is resolved when it is trusted, and a note's file is resolved when its code is about
to run (`d2lkb.store.codetrust`).

A folder's contents change all the time, so there is no content stamp here; what runs
is re-read from the file and compared with the KB's copy at run time instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

from d2lkb.locks import file_lock

ENV_VAR = "D2LKB_CONFIG_HOME"
FILE_NAME = "trust.toml"
_HEADER = (
    "# Folders whose code `d2lkb check` may run (real paths, symbolic links resolved).\n"
    "# Written by `d2lkb trust PATH`; `d2lkb trust --remove PATH` takes one out.\n"
)


def config_home() -> Path:
    """The user's d2lkb configuration folder (`$D2LKB_CONFIG_HOME` wins; tests set it)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_config_dir("d2lkb", appauthor=False))


def trust_file() -> Path:
    return config_home() / FILE_NAME


def load_trusted(path: Path | None = None) -> list[str]:
    """The trusted folders (real paths, as written). No file: none. A malformed file raises
    `ValueError` naming it (and the line, for TOML syntax errors)."""
    path = path or trust_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read: {exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    unknown = [key for key in raw if key != "trusted"]
    folders = raw.get("trusted", [])
    if unknown:
        raise ValueError(f"{path}: unknown key {unknown[0]!r} (only `trusted = [...]`)")
    if not isinstance(folders, list) or not all(isinstance(f, str) and os.path.isabs(f) for f in folders):
        raise ValueError(f"{path}: `trusted` must be a list of absolute paths")
    return list(dict.fromkeys(folders))


def real_folder(path: Path | str) -> str:
    """A folder's real path (links resolved), or FileNotFoundError / ValueError saying why not."""
    resolved = os.path.realpath(os.path.expanduser(os.fspath(path)))
    if not os.path.isdir(resolved):
        raise FileNotFoundError(f"not a folder: {path}")
    try:
        resolved.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"cannot trust {path!r}: its path is not valid UTF-8") from None
    return resolved


def add_trusted(path: Path | str) -> tuple[str, bool]:
    """Trust a folder: (its real path, whether it was new)."""
    folder = real_folder(path)
    with _locked() as file:
        folders = load_trusted(file)
        if folder in folders:
            return folder, False
        _write(file, [*folders, folder])
    return folder, True


def remove_trusted(path: Path | str) -> str | None:
    """Stop trusting a folder, given as written or as its real path; the entry removed, or None."""
    candidates = {os.path.abspath(os.path.expanduser(os.fspath(path))),
                  os.path.realpath(os.path.expanduser(os.fspath(path)))}
    with _locked() as file:
        folders = load_trusted(file)
        gone = [f for f in folders if f in candidates]
        if not gone:
            return None
        _write(file, [f for f in folders if f not in candidates])
    return gone[0]


def trusted_folder(real: str, folders: Sequence[str]) -> str | None:
    """The trusted folder that holds a real path, or None."""
    for folder in folders:
        if real == folder or real.startswith(folder.rstrip(os.sep) + os.sep):
            return folder
    return None


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    """The trust file, with an exclusive lock held on its side file (one writer at a time)."""
    file = trust_file()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with file_lock(file.parent / (FILE_NAME + ".lock"), 0o600):
        yield file


def _write(file: Path, folders: list[str]) -> None:
    # A JSON string is a TOML basic string once DEL (which JSON leaves as it is) is escaped.
    quoted = [json.dumps(f, ensure_ascii=False).replace("\x7f", "\\u007f") for f in folders]
    body = "".join(f"  {q},\n" for q in quoted)
    tmp = file.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"{_HEADER}trusted = [\n{body}]\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, file)
