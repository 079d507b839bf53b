"""Cards, titles and links on real-style vaults: d2lkb against a reference of OSR's rules.

    PYTHONPATH=. python bench/vault_cards.py

Prints (1) how many of OSR's own parser test cases agree with d2lkb (the rest are the
deliberate differences listed in notes/README.md), (2) card recall and precision on the
four fixture vaults (tests/fixtures/vaults: OSR, Obsidian, Logseq and zk styles) against
tests/osr_reference.py, and (3) the bundled notes' card count. No timings: nothing here
depends on the machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from d2lkb.config import parse_options, vault_settings  # noqa: E402
from d2lkb.notes.options import ParseOptions  # noqa: E402
from d2lkb.notes.parse import parse_note  # noqa: E402
from tests.test_osr_cases import CASES, DIFFERENCES, agrees  # noqa: E402
from tests.test_vaults import STYLES, VAULTS, measure  # noqa: E402


def main() -> None:
    agree = [c for c in CASES if agrees(c)]
    by_source: dict[str, list[int]] = {}
    for case in CASES:
        counts = by_source.setdefault(case.source, [0, 0])
        counts[0] += case in agree
        counts[1] += 1
    print(f"OSR parser test cases agreeing: {len(agree)}/{len(CASES)}")
    for source, (n, m) in by_source.items():
        print(f"  {source}: {n}/{m}")
    reasons: dict[str, int] = {}
    for case in CASES:
        if case not in agree:
            reasons[DIFFERENCES.get(case.id, "UNDOCUMENTED")] = reasons.get(DIFFERENCES.get(case.id, "UNDOCUMENTED"), 0) + 1
    for reason, n in sorted(reasons.items(), key=lambda item: -item[1]):
        print(f"  {n:2d} x {reason}")
    print()
    print(f"{'vault':10} {'notes':>5} {'OSR ref cards':>13} {'d2lkb cards':>11} {'matched':>7} {'recall':>7} {'precision':>9}")
    for style in STYLES:
        for label, options in ((style, ParseOptions()), (f"{style}*", ParseOptions(flashcard_tags=()))):
            m = measure(VAULTS / style, options)
            print(f"{label:10} {m.notes:5d} {m.reference:13d} {m.d2lkb:11d} {m.matched:7d} "
                  f"{m.recall:7.1%} {m.precision:9.1%}")
    print("(* every note makes cards, `flashcard_tags = []`, in both d2lkb and the reference)")
    print()
    notes = ROOT / "notes"
    options = parse_options(vault_settings(notes))
    total = 0
    for path in sorted(notes.rglob("*.md")):
        note = parse_note(path.read_text(encoding="utf-8"), path.relative_to(notes).as_posix(), options)
        if note.front_matter.get("d2lkb") != "ignore":
            total += len(note.cards)
    print(f"bundled notes: {total} cards")


if __name__ == "__main__":
    main()
