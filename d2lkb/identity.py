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

The work per new card is bounded, so that a sync after a vault-wide rewording costs
about what a cold sync does (not new cards x old cards): stage 1 is a dictionary
lookup; stages 2 and 3 compute the (costly) similarity for at most `CANDIDATES` old
cards of the new card's own file and as many from elsewhere. Those are the closest by
a cheap filter: the character trigrams the two cards share, counted through an
inverted index that is read rarest trigram first and for at most `POSTINGS` entries.
A file with few candidates left (at most `CANDIDATES`) has all of them compared, so
within a note the rules above hold exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from heapq import nlargest

from rapidfuzz.distance import Indel

from d2lkb.textutil import normalise

PROMPT_SIMILARITY = 0.8  # stage 3: a fixed typo keeps identity
CLOZE_PROMPT_SIMILARITY = 0.6  # a cloze deletion may change more if its paragraph stays
CLOZE_CONTEXT_SIMILARITY = 0.8
CANDIDATES = 16  # stages 2 and 3: similarities computed per new card, per side (same file / elsewhere)
POSTINGS = 300  # stage 3: inverted-index entries read per new card
GRAM = 3


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


def _may_reach(a: str, b: str, threshold: float) -> bool:
    """Whether `_similarity(a, b)` can be >= `threshold`. Exact: difflib's ratio counts
    matched blocks, never more than a longest common subsequence, whose ratio rapidfuzz
    computes in C (`Indel`)."""
    floor = threshold - 1e-6  # rapidfuzz's float cut-off may round 0.8 down; the filter stays on the safe side
    return Indel.normalized_similarity(a, b, score_cutoff=floor) >= floor


def _grams(text: str) -> set[str]:
    if len(text) <= GRAM:
        return {text} if text else set()
    return {text[i : i + GRAM] for i in range(len(text) - GRAM + 1)}


@dataclass(slots=True)
class _Old:
    cid: int
    kind: str
    reverse: bool
    prompt: str
    context: str
    path: str


class _Queue:
    """Old cards with one key, in order: the first unused one, preferring a file (amortised O(1))."""

    __slots__ = ("items", "by_path", "next", "next_in")

    def __init__(self) -> None:
        self.items: list[int] = []
        self.by_path: dict[str, list[int]] = {}
        self.next = 0
        self.next_in: dict[str, int] = {}

    def add(self, j: int, path: str) -> None:
        self.items.append(j)
        self.by_path.setdefault(path, []).append(j)

    def first(self, path: str | None, used: set[int]) -> int | None:
        """The first unused old card of `path`, else (or with `path` None) of any file."""
        if path is not None:
            own = self.by_path.get(path)
            if own:
                k = self.next_in.get(path, 0)
                while k < len(own) and own[k] in used:
                    k += 1
                self.next_in[path] = k
                if k < len(own):
                    return own[k]
        k = self.next
        while k < len(self.items) and self.items[k] in used:
            k += 1
        self.next = k
        return self.items[k] if k < len(self.items) else None

    def some(self, path: str | None, used: set[int], limit: int) -> list[int]:
        """Up to `limit` unused old cards of `path` (None: any), in order, from the first unused one."""
        items = self.items if path is None else self.by_path.get(path, [])
        start = self.next if path is None else self.next_in.get(path, 0)
        out = []
        for j in items[start : start + 4 * limit]:
            if j not in used:
                out.append(j)
                if len(out) == limit:
                    break
        return out


class _Index:
    """Character trigrams -> old cards, to find the old cards closest to a text cheaply."""

    def __init__(self, texts: Iterable[tuple[int, Iterable[str]]]) -> None:
        self.postings: dict[str, list[int]] = defaultdict(list)
        for j, features in texts:
            for g in features:
                self.postings[g].append(j)

    def shared(self, features: Iterable[str], used: set[int], budget: int = POSTINGS) -> dict[int, int]:
        """{old card: features shared}, reading the rarest features' postings first, `budget` in all."""
        postings = self.postings
        lists = sorted((lst for g in features if (lst := postings.get(g))), key=len)
        counts: dict[int, int] = defaultdict(int)
        for lst in lists:
            if budget <= 0:
                break
            for j in lst[:budget] if len(lst) > budget else lst:
                if j not in used:
                    counts[j] += 1
            budget -= len(lst)
        return counts


def _closest(counts: dict[int, int], sizes: list[int], size: int, old: list[_Old], path: str) -> list[int]:
    """The `CANDIDATES` old cards of `path` with the highest share of common trigrams
    (2 x shared / (|a| + |b|), as the similarity ratio counts), and as many of other files."""
    own: list[tuple[float, int]] = []
    other: list[tuple[float, int]] = []
    for j, shared in counts.items():
        (own if old[j].path == path else other).append((2 * shared / (size + sizes[j]), -j))
    return [-j for _, j in nlargest(CANDIDATES, own)] + [-j for _, j in nlargest(CANDIDATES, other)]


def match_cards(old: Sequence[tuple[int, Fingerprint]], new: Sequence[Fingerprint]) -> dict[int, int]:
    """Return {index into `new`: old card id} for every new card that continues an old one.

    `old` holds the cards that may be continued: those of changed or removed notes and
    retired cards. Unmatched new cards are new; unmatched old cards are to be retired.
    """
    olds = [_Old(cid, fp.kind, fp.reverse, normalise(fp.prompt), normalise(fp.context), fp.path) for cid, fp in old]
    news = [_Old(-1, fp.kind, fp.reverse, normalise(fp.prompt), normalise(fp.context), fp.path) for fp in new]
    used: set[int] = set()
    result: dict[int, int] = {}

    def take(i: int, j: int | None) -> None:
        if j is not None:
            used.add(j)
            result[i] = olds[j].cid

    def best(candidates: Iterable[int], score) -> int | None:
        """The unused candidate with the highest score (None: not a match); ties: the first in `old`."""
        found, found_score = None, None
        for j in sorted(set(candidates)):
            if j in used:
                continue
            s = score(olds[j])
            if s is not None and (found_score is None or s > found_score):
                found, found_score = j, s
        return found

    # Stage 1: exact (the same file first, else the first in `old`).
    exact: dict[tuple, _Queue] = defaultdict(_Queue)
    by_prompt: dict[tuple, _Queue] = defaultdict(_Queue)
    for j, o in enumerate(olds):
        exact[(o.kind, o.reverse, o.prompt, o.context)].add(j, o.path)
        by_prompt[(o.kind, o.reverse, o.prompt)].add(j, o.path)
    for i, n in enumerate(news):
        queue = exact.get((n.kind, n.reverse, n.prompt, n.context))
        if queue is not None:
            take(i, queue.first(n.path, used))

    # Stage 2: same prompt, edited context (the same file wins; then the closest context).
    context_grams: dict[str, set[str]] = {}

    def grams_of(text: str) -> set[str]:
        found = context_grams.get(text)
        if found is None:
            found = context_grams[text] = _grams(text)
        return found

    group_index: dict[tuple, _Index] = {}
    for i, n in enumerate(news):
        if i in result:
            continue
        key = (n.kind, n.reverse, n.prompt)
        queue = by_prompt.get(key)
        if queue is None:
            continue
        # The same file wins: when it has an unused card with this prompt, only its cards compete.
        first = queue.first(n.path, used)
        if first is None:
            continue
        side = n.path if olds[first].path == n.path else None
        items = queue.items if side is None else queue.by_path[side]
        if len(items) <= CANDIDATES:
            candidates = items
        else:  # many cards with this prompt: those with the closest contexts
            index = group_index.get(key)
            if index is None:
                index = group_index[key] = _Index((j, grams_of(olds[j].context)) for j in queue.items)
            shared = index.shared(grams_of(n.context), used)
            mine = [j for j in shared if side is None or olds[j].path == side]
            candidates = nlargest(CANDIDATES, mine, key=shared.__getitem__) or queue.some(side, used, CANDIDATES)
        unused = [j for j in candidates if j not in used]
        if len(unused) == 1:  # the only one: no similarity to compare
            take(i, unused[0])
        else:
            take(i, best(unused, lambda c, p=n.path, ctx=n.context: (c.path == p, _similarity(ctx, c.context))))

    # Stage 3: similar prompt (typo fixes), among the closest old cards by shared trigrams.
    left: dict[tuple, list[int]] = defaultdict(list)  # (kind, reverse) -> unused old cards
    per_file: dict[tuple, list[int]] = defaultdict(list)  # (kind, reverse, path) -> unused old cards
    for j, o in enumerate(olds):
        if j not in used:
            left[(o.kind, o.reverse)].append(j)
            per_file[(o.kind, o.reverse, o.path)].append(j)
    prompt_index: dict[tuple, _Index] = {}
    context_index: dict[tuple, _Index] = {}
    prompt_grams = [_grams(o.prompt) for o in olds]
    prompt_sizes = [len(g) for g in prompt_grams]
    context_sizes = [len(grams_of(o.context)) if o.kind == "cloze" else 0 for o in olds]
    def fuzzy(c: _Old, n: _Old) -> tuple | None:
        cloze = n.kind == "cloze"
        if not _may_reach(n.prompt, c.prompt, CLOZE_PROMPT_SIMILARITY if cloze else PROMPT_SIMILARITY):
            return None  # most candidates stop here, before difflib
        ps = _similarity(n.prompt, c.prompt)
        if ps >= PROMPT_SIMILARITY:
            return (c.path == n.path, ps + _similarity(n.context, c.context))
        if cloze and ps >= CLOZE_PROMPT_SIMILARITY and _may_reach(n.context, c.context, CLOZE_CONTEXT_SIMILARITY):
            cs = _similarity(n.context, c.context)
            if cs >= CLOZE_CONTEXT_SIMILARITY:
                return (c.path == n.path, ps + cs)
        return None

    for i, n in enumerate(news):
        if i in result:
            continue
        group = (n.kind, n.reverse)
        if group not in left:
            continue
        score = lambda c, n=n: fuzzy(c, n)  # noqa: E731
        own = per_file.get((n.kind, n.reverse, n.path), [])
        if len(own) <= CANDIDATES:
            # A small file: every card of it is compared, and one that passes wins over any
            # card elsewhere (the same file first), so the index is not even asked.
            found = best(own, score)
            if found is not None:
                take(i, found)
                continue
        index = prompt_index.get(group)
        if index is None:
            index = prompt_index[group] = _Index((j, prompt_grams[j]) for j in left[group])
        grams = _grams(n.prompt)
        candidates = _closest(index.shared(grams, used), prompt_sizes, len(grams), olds, n.path)
        if n.kind == "cloze":  # a cloze may also keep its identity by its paragraph
            index = context_index.get(group)
            if index is None:
                index = context_index[group] = _Index((j, grams_of(olds[j].context)) for j in left[group])
            grams = grams_of(n.context)
            candidates += _closest(index.shared(grams, used), context_sizes, len(grams), olds, n.path)
        mine = [j for j in candidates if olds[j].path == n.path]
        found = best(mine, score)  # the same file first: a card of it that passes wins
        take(i, found if found is not None else best([j for j in candidates if olds[j].path != n.path], score))
    return result
