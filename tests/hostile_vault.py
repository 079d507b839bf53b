"""A notes vault written to attack whoever shows or exports it (issue 11, items 3 and 7).

Terminal: OSC 52 (sets the clipboard, ended by BEL and by ST), `ESC[2J` (clears the screen),
OSC 0 (renames the window), a one-character CSI (U+009B), a bidi override, Rich markup
(`[link=file:///etc/passwd]`, `[/oops]`) in a title, a heading, a card, a code snippet and a
file name. Exports: HTML that runs script (`<script>`, `onerror=`, `javascript:` links, an
`<iframe src=file://...>`) and CSV cells a spreadsheet would evaluate (`=cmd|...`, `+`, `-`, `@`).
"""

from __future__ import annotations

from pathlib import Path

OSC52 = "\x1b]52;c;SGVsbG8=\x07"  # clipboard := "Hello", ended by BEL
OSC52_ST = "\x1b]52;c;SGVsbG8=\x1b\\"  # the same, ended by ST
CLEAR = "\x1b[2J"
OSC0 = "\x1b]0;pwned\x07"
CSI8 = "\x9b31m"  # C1 CSI: red text on terminals that take 8-bit controls
RLO = "\u202e"
LINK = "[link=file:///etc/passwd]x[/link]"
OOPS = "[/oops]"
SCRIPT = "<script>alert(1)</script>"
ONERROR = '<img src="x" onerror="alert(2)">'
IFRAME = '<iframe src="file:///etc/passwd"></iframe>'
JS_LINK = '<a href="javascript:alert(3)">j</a>'
FORMULA_CMD = "=cmd|' /C calc'!A0"

NOTE = f"""---
title: "Evil {LINK} {OOPS}"
tags: [evil]
---
# Heading {OOPS} {OSC0}

What sets the clipboard?{OSC52} :: It blanks{CLEAR} the screen {CSI8} red {RLO}evil{OSC52_ST}

Markup in a card {LINK} {OOPS} :: shown as written

The derivative of $x^2$ is ==2x{OSC52}== here, <b>bold</b> in a cloze.

{FORMULA_CMD} :: +1+cmd

@SUM(A1:A2) :: -2+3

Formatting: **bold** and *italic* x<sub>2</sub> {SCRIPT} :: {ONERROR} {IFRAME} {JS_LINK} $\\frac{{a}}{{b}}$

## Formula {OSC0}

$$x = x + 1 {OOPS}$$

## Code

```python
print("{OSC52}")
```

[[odd-name]]
"""

# A file name holding ESC, BEL and markup ("/" cannot be part of a name, so no `[/oops]` here).
ODD_NAME = f"odd{OSC0}name[red].md"
ODD_NOTE = f"# Odd file {CLEAR}\n\nQuestion in an odd file :: answer {OOPS} {OSC52}\n"
# A note whose front matter is not YAML: the sync warning names the file, ESC and all.
BAD_NAME = f"bad{OSC52}yaml[/b].md".replace("/", "")
BAD_NOTE = "---\ntitle: [unclosed\n---\n# Bad front matter\n\nStill a card :: yes\n"


def write_hostile_vault(notes: Path) -> Path:
    """The hostile notes in `notes` (created), every note making cards; returns `notes`."""
    notes.mkdir(parents=True, exist_ok=True)
    (notes / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")
    (notes / "evil.md").write_text(NOTE, encoding="utf-8")
    (notes / ODD_NAME).write_text(ODD_NOTE, encoding="utf-8")
    (notes / BAD_NAME).write_text(BAD_NOTE, encoding="utf-8")
    return notes
