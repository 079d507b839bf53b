"""Card identity: which card of the previous sync is which card now.

Review history hangs on a card's id, so re-parsing a note must give each card
back the id it had. Cards are matched on their content, never on position:

1. exact: same kind, direction, prompt and context (an unchanged card, wherever
   it moved: within the note, to another note, or with its note renamed);
2. same prompt: the answer / surrounding paragraph was edited;
3. similar prompt: a typo fixed in the question (or in a cloze deletion whose
   paragraph is otherwise the same).

Within each stage a candidate in the same file wins over one elsewhere, and the
closest context wins among equals. Each old card is used at most once, so two
clozes with the same text in one paragraph keep their own histories.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from d2lkb.textutil import normalise

PROMPT_SIMILARITY = 0.8  # stage 3: a fixed typo keeps identity
CLOZE_PROMPT_SIMILARITY = 0.6  # a cloze deletion may change more if its paragraph stays
CLOZE_CONTEXT_SIMILARITY = 0.8


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What identity is decided on. `path` is the file the card was (or is) in."""

    kind: str
    reverse: bool
    prompt: str
    context: str
    path: str


def _similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:
        return matcher.quick_ratio() * 0.5
    return matcher.ratio()


def match_cards(old: Sequence[tuple[int, Fingerprint]], new: Sequence[Fingerprint]) -> dict[int, int]:
    """Return {index into `new`: old card id} for every new card that continues an old one.

    `old` holds the cards that may be continued: those of changed or removed notes and
    retired cards. Unmatched new cards are new; unmatched old cards are to be retired.
    """
    norm_old = [(cid, fp.kind, fp.reverse, normalise(fp.prompt), normalise(fp.context), fp.path) for cid, fp in old]
    norm_new = [(fp.kind, fp.reverse, normalise(fp.prompt), normalise(fp.context), fp.path) for fp in new]
    used: set[int] = set()
    result: dict[int, int] = {}

    def take(i: int, candidates: list[tuple], score) -> None:
        best, best_score = None, None
        for cand in candidates:
            if cand[0] in used:
                continue
            s = score(cand)
            if s is None:
                continue
            if best_score is None or s > best_score:
                best, best_score = cand, s
        if best is not None:
            used.add(best[0])
            result[i] = best[0]

    # Stage 1: exact.
    exact: dict[tuple, list[tuple]] = defaultdict(list)
    by_prompt: dict[tuple, list[tuple]] = defaultdict(list)
    by_kind: dict[tuple, list[tuple]] = defaultdict(list)
    for cand in norm_old:
        exact[cand[1:5]].append(cand)
        by_prompt[cand[1:4]].append(cand)
        by_kind[cand[1:3]].append(cand)
    for i, (kind, rev, prompt, context, path) in enumerate(norm_new):
        take(i, exact.get((kind, rev, prompt, context), []), lambda c, p=path: c[5] == p)
    # Stage 2: same prompt, edited context.
    for i, (kind, rev, prompt, context, path) in enumerate(norm_new):
        if i in result:
            continue
        take(i, by_prompt.get((kind, rev, prompt), []),
             lambda c, p=path, ctx=context: (c[5] == p, _similarity(ctx, c[4])))
    # Stage 3: similar prompt (typo fixes).
    for i, (kind, rev, prompt, context, path) in enumerate(norm_new):
        if i in result:
            continue

        def fuzzy(c, p=path, pr=prompt, ctx=context, k=kind):
            ps = _similarity(pr, c[3])
            cs = _similarity(ctx, c[4])
            if ps >= PROMPT_SIMILARITY or (k == "cloze" and ps >= CLOZE_PROMPT_SIMILARITY and cs >= CLOZE_CONTEXT_SIMILARITY):
                return (c[5] == p, ps + cs)
            return None

        take(i, by_kind.get((kind, rev), []), fuzzy)
    return result
