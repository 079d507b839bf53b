"""What a vault opts into when its notes are read (`[cards]` and `[markdown]` in
`kb/config.toml`). Plain data; the parser and the sync take one `ParseOptions`.

Defaults follow Obsidian Spaced Repetition (OSR): only notes carrying a flashcard
tag (`#flashcards`, or a tag nested under it such as `#flashcards/science`) make
cards; `==highlights==` are clozes there, `**bold**` and `{{curly}}` clozes are off.
`\\(..\\)` / `\\[..\\]` are escaped brackets in Markdown, not math, unless the vault
says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class ParseOptions:
    # A note makes cards when it carries one of these tags (or a tag nested under one),
    # in its front matter or its text. Empty: every note makes cards.
    flashcard_tags: tuple[str, ...] = ("flashcards",)
    cloze_highlights: bool = True  # `==deletion==`
    cloze_bold: bool = False  # `**deletion**`
    cloze_curly: bool = False  # `{{deletion}}`, `{{c1::deletion}}`, `{{c1::deletion::hint}}`
    bracket_math: bool = False  # `\(..\)` and `\[..\]` as math (LaTeX style)

    def makes_cards(self, tag_names: list[str] | tuple[str, ...]) -> bool:
        """Whether a note with these tags (as written, without `#`) makes cards."""
        if not self.flashcard_tags:
            return True
        wanted = [t.lower().lstrip("#") for t in self.flashcard_tags]
        for name in tag_names:
            key = name.lower()
            if any(key == w or key.startswith(w + "/") for w in wanted):
                return True
        return False

    def fingerprint(self) -> str:
        """Short stable text that changes when any option does (a KB built with other
        options re-reads every note)."""
        text = repr([(f.name, getattr(self, f.name)) for f in fields(self)])
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


ALL_NOTES = ParseOptions(flashcard_tags=())
