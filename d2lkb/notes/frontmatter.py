"""YAML front matter: load it safely, make it JSON-friendly, read its tags."""

from __future__ import annotations

import datetime as dt
from typing import Any

from d2lkb.model import ParseWarning

_MAX_DEPTH = 32


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-compatible copy: dates become ISO strings, keys strings, sets lists.
    (YAML anchors can build cycles; the depth limit cuts them.)"""
    if depth > _MAX_DEPTH:
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def load_front_matter(content: str, first_line: int) -> tuple[dict[str, Any], list[ParseWarning]]:
    """Parse the YAML between the `---` markers; `first_line` is the 1-based line of
    the first YAML line. Broken YAML (e.g. an unfilled `{{date}}` template) or a
    non-mapping gives `{}` and a warning naming the line."""
    import yaml  # imported here: notes without front matter never pay for it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(content, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        last_line = first_line + max(content.count("\n"), 0)
        line = min(first_line + (mark.line if mark is not None else 0), last_line)
        problem = exc.problem or exc.context or "invalid YAML"
        return {}, [ParseWarning(line, f"front matter is not valid YAML ({problem}); ignored")]
    except Exception as exc:  # YAML can fail in many ways (bad dates, deep nesting...)
        return {}, [ParseWarning(first_line, f"front matter is not valid YAML ({exc}); ignored")]
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        kind = type(data).__name__
        return {}, [ParseWarning(first_line, f"front matter is a {kind}, not a mapping; ignored")]
    return _plain(data), []


def front_matter_tag_names(front_matter: dict[str, Any]) -> list[str]:
    """Raw tag names from `tags:` (or `tag:`): a list, or a string separated by
    spaces or commas; a leading `#` is stripped. Validation is the caller's."""
    raw = front_matter.get("tags", front_matter.get("tag"))
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    names: list[str] = []
    for item in items:
        if item is None or isinstance(item, dict | list):
            continue
        for word in str(item).replace(",", " ").split():
            word = word.lstrip("#")
            if word:
                names.append(word)
    return names


def tags_key_line(content: str, first_line: int) -> int:
    """The line of the `tags:` key in the YAML source (the first YAML line if absent)."""
    for offset, line in enumerate(content.split("\n")):
        if line.startswith(("tags:", "tag:")):
            return first_line + offset
    return first_line
