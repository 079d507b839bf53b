"""`KnowledgeBase`: the one object the CLI and the TUI talk to.

It owns the SQLite connection and the config, and exposes the same operations to
both interfaces, so the TUI never opens a database session of its own. The connection,
sync, search, graph and maintenance are `KBCore`'s (`d2lkb.store.kbcore`); the mixins add
reviews, study, card lists, deck statistics, imports and checks.
"""

from __future__ import annotations

from d2lkb.store.cards import CardsMixin
from d2lkb.store.checks import ChecksMixin
from d2lkb.store.deckstats import DeckStatsMixin
from d2lkb.store.imports.mixin import ImportMixin
from d2lkb.store.kbcore import KBCore, bundled_notes_dir
from d2lkb.store.reviews import ReviewMixin
from d2lkb.store.study import StudyMixin

__all__ = ["KBCore", "KnowledgeBase", "bundled_notes_dir"]


class KnowledgeBase(KBCore, ImportMixin, StudyMixin, CardsMixin, DeckStatsMixin, ReviewMixin, ChecksMixin):
    """Everything: `KBCore` and the review, study, card, deck-statistics, import and check features."""
