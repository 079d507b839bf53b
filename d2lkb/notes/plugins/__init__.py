"""markdown-it-py plugins for the syntax d2lkb reads in notes.

Each is a `plugin(md)` function that adds named inline rules (and render rules):
tags (`#tag`), highlights (`==x==`), wikilinks (`[[target|alias]]`), the card
separator (`::`), curly clozes (`{{x}}`), bracket math (`\\(..\\)`, `\\[..\\]`), and source positions
(`meta["pos"]` on tokens of existing rules).
"""

from d2lkb.notes.plugins.cards import card_separator_plugin, curly_cloze_plugin
from d2lkb.notes.plugins.highlights import highlights_plugin
from d2lkb.notes.plugins.math import bracket_math_plugin, each_position_plugin, source_positions_plugin
from d2lkb.notes.plugins.tags import tags_plugin
from d2lkb.notes.plugins.wikilinks import wikilinks_plugin

__all__ = [
    "bracket_math_plugin",
    "card_separator_plugin",
    "curly_cloze_plugin",
    "each_position_plugin",
    "highlights_plugin",
    "source_positions_plugin",
    "tags_plugin",
    "wikilinks_plugin",
]
