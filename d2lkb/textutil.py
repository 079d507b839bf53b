"""Small text helpers shared by the core and the store (no dependencies)."""

from __future__ import annotations

import re
import unicodedata

# Han, Hiragana, Katakana, Hangul and CJK punctuation/compatibility blocks.
_CJK = "\u2e80-\u2fff\u3000-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_CJK_CHAR = re.compile(f"([{_CJK}])")
_CJK_SPACED = re.compile(f"(?<=[{_CJK}]) +(?=[{_CJK}])")
_SPACES = re.compile(" {2,}")
_WS = re.compile(r"\s+")


def has_cjk(text: str) -> bool:
    return _CJK_CHAR.search(text) is not None


def split_cjk(text: str) -> str:
    """Put spaces around CJK characters so the FTS5 word index sees one token per character.

    Chinese has no spaces between words; with one token per character, a phrase query
    of the characters finds any substring ("参数" in "模型的参数").
    """
    if not has_cjk(text):
        return text
    return _CJK_CHAR.sub(r" \1 ", text)


def join_cjk(text: str) -> str:
    """Undo `split_cjk` spacing in text shown to people (search snippets)."""
    return _SPACES.sub(" ", _CJK_SPACED.sub("", text)) if has_cjk(text) else text


def normalise(text: str) -> str:
    """Whitespace-collapsed, case-folded, NFKC text: the form identities are compared in."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def tag_token(name: str) -> str:
    """The FTS token standing for a tag (lower-cased name): `t` + hex of its UTF-8 bytes.

    Hex keeps any tag (`ml/supervised`, `参数`) a single alphanumeric token that no word of
    ordinary text can collide with, because user text terms never search the `meta` column.
    """
    return "t" + name.lower().encode().hex()


def tag_tokens(names) -> str:
    """Tokens for tags and all their ancestors: `ml/supervised` also stands for `ml`."""
    out: dict[str, None] = {}
    for name in names:
        parts = name.lower().split("/")
        for i in range(1, len(parts) + 1):
            out[tag_token("/".join(parts[:i]))] = None
    return " ".join(out)


def kind_token(kind: str) -> str:
    """`kcard`, `ksection`, ...; kinds of card (`basic`, `cloze`) get `kc` + kind."""
    return ("kc" if kind in ("basic", "cloze") else "k") + kind


def matching_brace(src: str, open_pos: int) -> int:
    """Index of the `}` closing the `{` at `open_pos` (backslash escapes skipped), or -1.

    Shared by the Markdown side (aligned rows) and the LaTeX normaliser of the checks.
    """
    depth = 0
    i = open_pos
    n = len(src)
    while i < n:
        ch = src[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1
