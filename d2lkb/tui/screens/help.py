"""Help: every key of every screen, and the search query language."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

HELP = """\
### Home
- `enter` review the highlighted deck (a tag with its nested tags)
- `r` review all due cards · `b` browse / search · `k` card browser · `s` stats of the highlighted deck · `c` checks
- `y` sync the notes now · `q` quit

### Review
- `space` show the answer
- `1` Again · `2` Hard · `3` Good · `4` Easy (each shows the next interval)
- `u` undo this session's last answer, bury or suspend (again and again, newest first)
- `b` bury until tomorrow · `s` suspend
- `e` edit the note at the card's line in `$EDITOR`
- `x` what a failing check found (actual output, counterexample)
- `esc` / `q` back

### Session end / nothing to review
- `r` review again · `u` undo · `a` review ahead 1 day · `w` 7 days
- `c` cram the deck (the schedule is not touched) · `n` 10 more new cards today

### Card browser
- type a query in the filter (`/`) · `o` next sort column · `O` reverse (or click a header)
- `space` mark · `A` mark all · `s` suspend · `U` unsuspend · `R` reset to new · `d` due today · `b` bury
- `e` open the note · the right pane: FSRS state and review history

### Browse
- type to search; `enter` in the box goes to the results
- `enter` on a result or `r`: review the cards of the query
- `e` edit the highlighted result's note · `/` back to the box · `esc` back

Query language: words and `"phrases"`, `#tag` (nested tags included), `tag:x`, `path:x`,
`kind:card|note|section|formula|snippet`, `status:refuted|passed|new|suspended|…`,
`due:today|tomorrow|overdue|N`, `AND` / `OR` / `NOT` / `-x`, parentheses.

### Stats
- `g` refresh · `esc` back

### Checks
- `r` re-run the highlighted note's checks · `a` re-run all · `esc` back

### Everywhere
- `?` / `F1` this help · `ctrl+t` light/dark theme · `ctrl+p` command palette · `ctrl+q` quit
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def __init__(self, context: str = "") -> None:
        super().__init__(id="help")
        self.context = context

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("d2lkb keys  (esc to close)", id="help-title")
            with VerticalScroll(id="help-scroll"):
                yield Markdown(HELP, id="help-text")

    def action_close(self) -> None:
        self.dismiss()
