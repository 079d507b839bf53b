"""The "Latest figures" table of bench/README.md, from the output of one `bench/run.py` run.

    python bench/table.py bench/results/cpu-2core.txt

Every number in the table is copied from the run's output (median [min-max], load, yardstick);
ratios are those the run printed, except the home tree's, which divides the two medians. A
figure the output does not hold is left out of the table, never taken from elsewhere.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

FIGURE = re.compile(r"^(?P<indent>\s+)(?P<label>\S.*?)\s{2,}(?P<med>[\d,.]+)(?P<unit> ms| s| notes/s)? "
                    r"\[(?P<lo>[\d,.]+)-(?P<hi>[\d,.]+)\](?P<unit2> ms| s| notes/s)?\s*(?P<goal>.*?)\s*"
                    r"\(load (?P<load>[^,]+), yardstick (?P<yard>[\d,]+) notes/s\)$")
TOP = re.compile(r"^\s+top 20, all queries\s+(?P<same>\d+) of (?P<all>\d+)")
TOP_ONE = re.compile(r"^\s+top 20 of .*\(in the same order\)$")
SLOW = re.compile(r"^\s+shapes over 10 ms at p95 \(worst round\)\s+(?P<slow>.*?)\s*$")


@dataclass
class Fig:
    med: str
    lo: str
    hi: str
    unit: str
    load: str
    yard: str

    def __str__(self) -> str:
        return f"{self.med}{self.unit} [{self.lo}-{self.hi}]"

    @property
    def value(self) -> float:
        return float(self.med.replace(",", ""))


def parse(text: str) -> tuple[dict[str, Fig], dict]:
    figs: dict[str, Fig] = {}
    extra: dict = {"same_order": 0}
    last = ""
    for raw in text.splitlines():
        m = FIGURE.match(raw)
        if m:
            label = m["label"].strip()
            if label.startswith("same,"):  # belongs to the figure above it
                label = f"{last} | {label}"
            else:
                last = label
            figs[label] = Fig(m["med"], m["lo"], m["hi"], (m["unit"] or m["unit2"] or ""), m["load"], m["yard"])
            continue
        if t := TOP.match(raw):
            extra["top"] = (int(t["same"]), int(t["all"]))
        elif TOP_ONE.match(raw):
            extra["same_order"] += 1
        elif sl := SLOW.match(raw):
            extra.setdefault("slow", {})[last] = sl["slow"]  # of the figure above
        elif "due today" in raw and "in review" in raw:
            m1 = re.search(r"([\d,]+) due today", raw)
            m2 = re.search(r"anki: ([\d,]+) due", raw)
            extra["due"] = m1.group(1) if m1 else ""
            extra["anki_due"] = m2.group(1) if m2 else ""
        elif raw.startswith("d2lkb bench"):
            extra["header"] = raw
    return figs, extra


def main() -> None:
    text = Path(sys.argv[1]).read_text(encoding="utf-8")
    figs, extra = parse(text)

    def f(label: str) -> Fig | None:
        return figs.get(label)

    def cpu(label: str, what: str = "CPU time of the process") -> Fig | None:
        return figs.get(f"{label} | same, {what}") or figs.get(f"{label} | same, CPU time of the thread") or \
            figs.get(f"{label} | same, CPU time of the searching thread") or \
            figs.get(f"{label} | same, CPU time of the process (all threads)") or \
            figs.get(f"{label} | same, CPU time of the processes") or figs.get(f"{label} | same, CPU time")

    def where(*figures: Fig | None) -> str:
        got = [x for x in figures if x is not None]
        yards = sorted(int(x.yard.replace(",", "")) for x in got)
        span = f"{yards[0]:,}" if yards and yards[0] == yards[-1] else f"{yards[0]:,}-{yards[-1]:,}" if yards else ""
        return f"{got[0].load}; {span}" if got else ""

    def ok(value: float, goal: float, le: bool = True) -> str:
        return "✓" if (value <= goal if le else value >= goal) else "✗"

    rows: list[tuple[str, ...]] = []

    def with_cpu(label: str) -> str:
        x, c = f(label), cpu(label)
        return f"{x}; CPU {c}" if c else str(x)

    due = extra.get("due", "")
    sizes = [("1,000 new cards", "1,000 new cards"), ("10,000 new cards", "10,000 new cards"),
             ("100,000 new cards", "100,000 new cards"),
             (f"100,000 cards, {due} due", f"100,000 cards, 60% reviewed, {due} due")]
    counts = [f(f"of which due_counts after an answer (mean; {s})") for s, _ in sizes]
    if counts[2] and counts[3]:
        rows.append(("due counts after an answer (the counts part of `review_step`, which the review screen calls per card)",
                     f"{counts[2]}; {due} due: {counts[3]}", "", "",
                     f"≤ 1 ms {ok(max(counts[2].value, counts[3].value), 1)}", where(counts[2], counts[3])))
    anki_version = next((k.split()[1] for k in figs if k.startswith("anki ") and "per answer" in k), "")
    for what, title, goal_applies in (
            ("engine with counts", "engine per answer with counts (answer, next card, counts, previews)", True),
            ("with the card rendered", "per answer with the card rendered (Anki: `question()`, `answer()`)", False)):
        for n, (size, shown) in enumerate(sizes):
            ours, ratio = f"d2lkb per answer, {what} ({size})", f"d2lkb / anki, {what} ({size})"
            theirs = f"anki {anki_version} per answer, {what} ({size})"
            if f(ours) is None:
                continue
            anki_cell = f"Anki {with_cpu(theirs)}" if f(theirs) else ""
            if anki_cell and "due" in size and extra.get("anki_due"):
                anki_cell = anki_cell.replace(";", f" ({extra['anki_due']} due);", 1)
            r, rc = f(ratio), f(f"d2lkb / anki, {what}, CPU time ({size})")
            ratio_cell = f"{r.med} [{r.lo}-{r.hi}]" + (f"; CPU {rc.med} [{rc.lo}-{rc.hi}]" if rc else "") if r else ""
            goal = (f"≤ 1.0 {ok(r.value, 1.0)}" + (f" (CPU {ok(rc.value, 1.0)})" if rc else "")) \
                if r and goal_applies else ""
            rows.append((f"{title}, {shown}" if n == 0 else f"same, {shown}", with_cpu(ours), anki_cell, ratio_cell,
                         goal, where(f(ours), f(theirs), r)))
    home = next((k for k in figs if k.startswith("home deck tree")), None)
    if home:
        h, anki = f(home), f("anki deck_due_tree (one deck)")
        rows.append((f"home deck tree (all + 15 tags), {due} due, first call after start-up", with_cpu(home),
                     f"Anki `deck_due_tree` (1 deck) {with_cpu('anki deck_due_tree (one deck)')}" if anki else "",
                     f"{h.value / anki.value:.2f} (medians)" if anki else "", f"≤ 50 ms {ok(h.value, 50)}",
                     where(h, cpu(home), anki)))
        heat = f("home heatmap (first visit; later visits are kept)")
        if heat:
            rows.append(("home heatmap, first visit (kept afterwards)", str(heat), "", "", "", where(heat)))
    shapes = [k[4:] for k in figs if k.startswith("p95 ") and " | " not in k and k != "p95, all queries together"]
    together = f("p95, all queries together")
    if together:
        grep = next((f(k) for k in figs if k.startswith("grep -rli")), None)
        rows.append((f"search p95, all {len(shapes)} query shapes together (wall)", str(together),
                     f"`grep -rli` {grep}" if grep else "", "", f"≤ 10 ms {ok(together.value, 10)}",
                     where(together, grep)))
        c = cpu("p95, all queries together")
        if c:
            rows.append(("same, CPU time of the searching thread", str(c), "", "", f"≤ 10 ms {ok(c.value, 10)}",
                         where(c)))
    for q in sorted(shapes, key=lambda q: -(cpu(f"p95 {q}") or f(f"p95 {q}")).value):  # type: ignore[union-attr]
        w, c = f(f"p95 {q}"), cpu(f"p95 {q}")
        goal = f"≤ 10 ms {ok(c.value if c else w.value, 10)}" + (" (CPU; wall ✗)" if c and c.value <= 10 < w.value
                                                                 else "")  # type: ignore[union-attr]
        rows.append((f"search p95 `{q}`", f"{w}; CPU {c}" if c else str(w), "", "", goal, where(w, c)))
    if "top" in extra:
        same, every = extra["top"]
        rows.append((f"top 20 of the {len(shapes)} shapes, bounded ranking against ranking every match",
                     f"{same} of {every} the same ({extra['same_order']} shapes identical, in the same order)",
                     "", "", "", ""))
    for box in [k for k in figs if k.startswith(("TUI search box", "`d2lkb search` in process"))]:
        slow = extra.get("slow", {}).get(box, "none")
        if box.startswith("TUI"):  # 200 hits: more than the goal's shapes ask for
            rows.append((f"{box} (not a goal of the issue)", str(f(box)), "", "", "", where(f(box))))
        else:  # the goal's shapes as the CLI runs them: with the count it prints
            rows.append((f"{box}: the search goal's shapes with the count the CLI prints", str(f(box)), "", "",
                         f"≤ 10 ms, every shape {'✓' if slow == 'none' else '✗'}", where(f(box))))
        rows.append(("same, shapes over 10 ms at p95 (worst round)", slow, "", "", "", ""))
    help_ = f("d2lkb --help")
    for label, title in (("d2lkb search --no-sync gradient", "CLI `search --no-sync gradient`"),
                         ("d2lkb search gradient (syncs first)", "CLI `search gradient` (no-op sync of 10,000 notes first)")):
        if f(label) is None or help_ is None:
            continue
        name = label.split(" (")[0]
        r, rc = f(f"{name} / --help"), f(f"{name} / --help, CPU time")
        rows.append((title, with_cpu(label), f"`d2lkb --help` {with_cpu('d2lkb --help')}",
                     f"{r.med} [{r.lo}-{r.hi}]" + (f"; CPU {rc.med} [{rc.lo}-{rc.hi}]" if rc else "") if r else "",
                     f"≤ 1.5 {ok(r.value, 1.5)}" if r else "", where(f(label), help_, r)))
    for workers, title in (("one worker (no pool)", "cold sync, 500 notes, one worker (no pool)"),
                           ("pool (2 cores)", "cold sync, 500 notes, pool (2 cores)")):
        rate, ratio = f(f"cold sync, {workers}"), f(f"cold sync / raw parse, {workers}")
        if rate and ratio:
            rows.append((title, str(rate), "raw parse of the same files", f"{ratio.med} [{ratio.lo}-{ratio.hi}]",
                         f"≥ 0.50 {ok(ratio.value, 0.5, le=False)}", where(rate, ratio)))
    noop = next((k for k in figs if k.startswith("no-op re-sync")), None)
    if noop:
        rows.append((noop, str(f(noop)), "", "", f"≤ 0.3 s {ok(f(noop).value, 0.3)}", where(f(noop))))  # type: ignore[union-attr]
    opt = next((k for k in figs if k.startswith("optimize:")), None)
    if opt:
        c = cpu(opt)
        rows.append((f"`optimize`, {opt.split(': ', 1)[1]}", f"{f(opt)}" + (f"; CPU (all threads) {c}" if c else ""),
                     "", "", f"≤ 1 s {ok(f(opt).value, 1)}" + (f" (CPU {ok(c.value, 1)})" if c else ""),  # type: ignore[union-attr]
                     where(f(opt), c)))
    for label, title in (("TUI start to first card (daily start: KB exists)",
                          "TUI start to first card, daily start (KB exists, bundled notes)"),
                         ("TUI start to first card (first run: KB created + synced)",
                          "TUI start to first card, first run (KB created + synced)")):
        if f(label):
            rows.append((title, str(f(label)), "", "", f"≤ 1 s {ok(f(label).value, 1)}", where(f(label))))  # type: ignore[union-attr]

    book = next((k for k in figs if k.startswith("D2L book check, cold")), None)
    if book:
        c = cpu(book, "CPU time of the processes")
        rows.append((f"whole D2L book, `d2lkb check` cold{book.split('cold', 1)[1]}",
                     f"{f(book)}" + (f"; CPU (all processes) {c}" if c else ""), "", "",
                     f"≤ 60 s {ok(f(book).value, 60)}", where(f(book), c)))  # type: ignore[union-attr]
        again = f("D2L book check, unchanged (cached)")
        if again:
            rows.append(("same, unchanged (cached)", str(again), "", "", "", where(again)))

    print("| what (100,000 cards unless said) | d2lkb, median [min-max] | baseline, same run | ratio | goal "
          "| load, yardstick |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
