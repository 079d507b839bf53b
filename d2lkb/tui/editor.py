"""Open a note in the user's $EDITOR at a line, with the app suspended."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from textual.app import App

from d2lkb.textsafe import printable


def editor_command(path: Path, line: int, editor: str | None = None) -> list[str] | None:
    """`[editor..., +line, path]`, or None when neither $VISUAL nor $EDITOR is set."""
    editor = editor if editor is not None else (os.environ.get("VISUAL") or os.environ.get("EDITOR") or "")
    parts = shlex.split(editor)
    if not parts:
        return None
    return [*parts, f"+{max(1, int(line))}", str(path)]


def open_in_editor(app: App, path: Path, line: int) -> bool:
    """Run the editor on `path` at `line` in the foreground; True when it ran."""
    command = editor_command(path, line)
    if command is None:
        app.notify("Set $EDITOR (e.g. `export EDITOR=vim`) to edit notes from here.",
                   title="No editor", severity="warning", markup=False)
        return False
    if not path.is_file():
        app.notify(printable(f"note not found: {path}"), severity="error", markup=False)
        return False
    try:
        with app.suspend():
            subprocess.call(command)
    except Exception as exc:  # noqa: BLE001 - SuspendNotSupported, OSError: tell the user
        app.notify(printable(f"could not run {command[0]}: {exc}"), severity="error", markup=False)
        return False
    return True
