"""`KeyFooter`: Textual's `Footer`, redrawn only when the keys it shows change.

Textual's footer removes and mounts all its keys whenever a screen's bindings may have
changed (every focus change, every `refresh_bindings`). On the review screen that happened
two to three times per card and was the largest single cost between a rating and the next
card painted (issue 10, point 9). This footer compares what it would show with what it shows:
nothing changed, nothing is done; only labels or enabled states changed (space: "Show answer"
-> "Scroll down"), the keys that changed are updated in place (without a new layout when their
width stays); anything else, it recomposes as `Footer` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.screen import Screen

Shown = tuple[str, str, str, str, bool, str]  # key, key display, description, action, enabled, tooltip


class KeyFooter(Footer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: list[Shown] | None = None
        self._recompose_pending = False

    def _what_to_show(self) -> list[Shown] | None:
        """The keys `Footer.compose` would show, in order; None when it would group some (then always recompose)."""
        app = self.app
        active = self.screen.active_bindings
        shown: list[Shown] = []
        actions: set[str] = set()
        for _node, binding, enabled, tooltip in active.values():
            if not binding.show:
                continue
            if binding.group is not None:
                return None
            if binding.action in actions:  # Footer shows the first binding of an action
                continue
            actions.add(binding.action)
            shown.append((binding.key, app.get_key_display(binding), binding.description, binding.action, enabled,
                          tooltip))
        if self.show_command_palette and app.ENABLE_COMMAND_PALETTE and app.COMMAND_PALETTE_BINDING in active:
            _node, binding, enabled, tooltip = active[app.COMMAND_PALETTE_BINDING]
            shown.append((binding.key, app.get_key_display(binding), binding.description, binding.action, enabled,
                          binding.tooltip or binding.description))
        return shown

    def compose(self) -> ComposeResult:
        self._recompose_pending = False
        yield from super().compose()

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or not (self.is_attached and screen is self.screen):
            return
        shown = self._what_to_show()
        if shown is not None and shown == self._shown:
            return
        keys = list(self.query_children(FooterKey))
        previous, self._shown = self._shown, shown
        if (shown is not None and previous is not None and not self._recompose_pending
                and len(keys) == len(shown) == len(previous)
                and all(a[0] == b[0] and a[1] == b[1] for a, b in zip(shown, previous, strict=True))):
            for widget, now, before in zip(keys, shown, previous, strict=True):
                if now != before:
                    self._update_key(widget, now, layout=len(now[2]) != len(before[2]))
            return
        self._recompose_pending = True
        self.call_after_refresh(self.recompose)

    @staticmethod
    def _update_key(widget: FooterKey, shown: Shown, layout: bool) -> None:
        """One key's label, action and state, in place (a layout only when its width changes)."""
        _key, _display, description, action, enabled, tooltip = shown
        widget.description = description
        widget.action = action
        widget._disabled = not enabled
        widget.set_class(not enabled, "-disabled")
        if (tooltip or None) != widget.tooltip:
            widget.tooltip = tooltip or None
        widget.refresh(layout=layout)
