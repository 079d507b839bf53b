"""Rich output for the CLI that shows user text and obeys none of it.

Two rules, kept by the CLI wherever a note's text, a file name, a tag or a query is printed:

- user text goes to Rich as a `Text` built by `user_text` (never inside a markup string), so
  `[link=file:///etc/passwd]x[/link]` or `[/oops]` in a title is shown as written;
- that `Text` holds `printable` text (`d2lkb.textsafe`), so no ESC, BEL or C1 control from a
  note reaches the terminal.

`SafeConsole` is the net under both: whatever it renders, it drops from plain text segments the
characters `printable` would have replaced (they have no width, so tables keep their layout).
Only the console's own control segments (cursor moves of a progress bar) and the style codes it
adds itself still carry ESC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.style import StyleType
from rich.text import Text

from d2lkb.textsafe import UNSAFE, printable, strip_unsafe


def user_text(text: object, style: StyleType = "") -> Text:
    """User text (`str()` of `text`) as a Rich `Text`: shown as written, never read as markup."""
    return Text(printable(str(text)), style=style)


class SafeConsole(Console):
    """A Rich `Console` that never writes a control character it was given as text."""

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and UNSAFE.search(segment.text):
                segment = Segment(strip_unsafe(segment.text), segment.style)
            yield segment


# Characters `json.dumps(ensure_ascii=False)` writes as they are, but a terminal would obey (C1
# controls, DEL) or that reorder or break the line (bidi controls); lone surrogates (file names
# that are not UTF-8) cannot be written at all.
_JSON_RAW = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def json_text(value: Any, **kwargs: Any) -> str:
    """`json.dumps(value, ensure_ascii=False)`, with the characters a terminal would obey escaped.

    JSON escapes C0 controls itself (`\\u001b`); the rest are escaped the same way, so the data
    read back is unchanged and the output is safe to print.
    """
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
