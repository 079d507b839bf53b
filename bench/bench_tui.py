"""TUI latency with Pilot at 100,000 cards: rating -> next card rendered, and start -> home with counts.

    python bench/bench_tui.py [--keep DIR] [--notes 10000] [--answers 60] [--profile OUT.txt]

The real d2lkb app (`D2lkbApp`, headless under Pilot, 120x40) on a KB synced from
`bench/generate.py`'s vault (10 cards per note; the same `DIR/vault` and `DIR/kb-big/kb.sqlite`
that `bench/run.py --keep DIR` builds, reused when present), 60 % of its cards put in review
with thousands due today (`bench_review._make_due`), 1,000 new cards a day allowed.

Rating -> next card: from the key `3` (Good, after `space` revealed the answer; sent as a
terminal sends it, not with `Pilot.press`, which sleeps 40 ms) to the first paint after which
the screen shows what it then keeps showing. The bench waits until the screen holds the new
card, every widget has handled its pending messages (the Markdown widgets have mounted their
blocks) and the screen's own update timer (60 frames a second) has painted all they changed;
every paint's update is kept and replayed on a copy of the screen's text, and the time taken
is that of the first paint whose result equals the final screen (headless apps render every
update and skip only the write to the terminal). Also printed: the last paint (Textual paints
a widget whose size changed once more, the same text) and when the bench saw all settled.
Checked (not timed): the painted screen shows the new card's `path:line`.
Beside it, in the same run and measured the same way: a bare Textual app whose key swaps the
text of a `Static`, and one that swaps a `Markdown` widget's document.

Start -> home: a fresh process (imports, opening the KB, the start-up sync of the vault,
the home screen's deck counts) until the deck table is painted with its counts, with
`D2lkbApp` run directly and through the `d2lkb` command (Typer and the config first; the
app it starts runs under Pilot); beside it a fresh process running a bare Textual app with a
`DataTable` until its first paint.

3 runs each, median [min-max], load before -> after, as `bench/README.md` describes.
Never used by the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from run import RUNS, line, load, percentile, report  # noqa: E402

SIZE = (120, 40)


# -- the KB ------------------------------------------------------------------------------------------
def big_kb(work: Path, notes: int) -> tuple[Path, Path, int]:
    """(template KB folder, vault, cards due today): `run.py`'s big KB, built when missing."""
    from bench_review import _d2lkb_template, _make_due
    from generate import generate

    vault = work / "vault"
    big = work / "kb-big" / "kb.sqlite"
    if notes * 10 >= 100_000 and not big.exists():  # smaller KBs: bench_review builds its own
        from d2lkb.config import load_config
        from d2lkb.store.kb import KnowledgeBase

        if not vault.exists():
            generate(vault, notes)
        big.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with KnowledgeBase(load_config(big.parent, vault)) as kb:
            kb.sync()
        print(f"  built {big} in {time.perf_counter() - t0:.0f} s", flush=True)
    template, vault = _d2lkb_template(work, notes * 10)
    due = _make_due(template / "kb.sqlite")
    return template, vault, due


# -- measuring a paint -------------------------------------------------------------------------------
async def _until(condition, timeout: float = 30.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the screen did not change")
        await asyncio.sleep(0.0005)


def _paint_pending(screen) -> bool:
    return bool(screen._layout_required or screen._scroll_required or screen._repaint_required
                or screen._recompose_required or screen._dirty_widgets)


async def _painted(pilot) -> None:
    """Every widget of the screen has handled its messages, and the screen's own update timer
    (60 frames a second) has painted what they changed: the paint is Textual's, not forced here."""
    for _ in range(3):  # mounting children queues more messages: go round until none are left
        await pilot._wait_for_screen()
    screen = pilot.app.screen
    end = time.perf_counter() + 5
    while _paint_pending(screen) and time.perf_counter() < end:
        await asyncio.sleep(0.0005)


def press(app, key: str) -> None:
    """The key as a terminal sends it (`Pilot.press` also waits for idle: 40 ms of sleeps at least)."""
    from textual import events

    event = events.Key(key, " " if key == "space" else key)
    event.set_sender(app)
    app._driver.send_message(event)


class Paints:
    """Every paint of the app, kept (time, the compositor's update) and replayed on a copy of the
    screen's text, so that a measure can say when the screen first looked as it finally stays.
    Headless apps render every update and skip only the write to the terminal."""

    def __init__(self, app) -> None:
        self.log: list[tuple[float, object]] = []
        display = app._display

        def kept_display(screen, renderable):
            if renderable is not None:
                self.log.append((time.perf_counter(), renderable))
            return display(screen, renderable)

        app._display = kept_display
        self.lines: list[list[str]] = [list(line) for line in screen_text(app).split("\n")]
        self.log.clear()

    def _apply(self, update) -> None:
        from textual._compositor import ChopsUpdate, LayoutUpdate

        if isinstance(update, LayoutUpdate):
            x0, y0 = update.region.x, update.region.y
            for y, chop in enumerate(update.strips, y0):
                self._write(y, x0, "".join(strip.text for strip in chop))
        elif isinstance(update, ChopsUpdate):
            for y, x1, x2 in update.spans:
                for end, (x, strip) in zip(update.chop_ends[y], update.chops[y].items(), strict=False):
                    if strip is not None and not (x > x2 or end <= x1):
                        self._write(y, x, strip.text)

    def _write(self, y: int, x: int, text: str) -> None:
        while len(self.lines) <= y:
            self.lines.append([])
        line = self.lines[y]
        if len(line) < x + len(text):
            line.extend(" " * (x + len(text) - len(line)))
        line[x:x + len(text)] = text

    def shown_at(self, t0: float) -> tuple[float, float]:
        """(first paint showing the final screen, last paint), in seconds after t0; the log is emptied."""
        states = []
        for t, update in self.log:
            self._apply(update)
            states.append((t, ["".join(line) for line in self.lines]))
        self.log.clear()
        if not states:
            return 0.0, 0.0
        final = states[-1][1]
        first = next(t for t, state in states if state == final)
        return first - t0, states[-1][0] - t0


def screen_text(app) -> str:
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(strip.text for strip in chop) for chop in update.strips)


# -- the real app --------------------------------------------------------------------------------------
async def _review_loop(kb_dir: Path, vault: Path, answers: int, profile: Path | None = None) -> dict:
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase
    from d2lkb.tui.app import D2lkbApp

    kb = KnowledgeBase(load_config(kb_dir, vault))
    app = D2lkbApp(kb, start="review", sync_on_start=False)
    rate, reveal, settled, lasts, misses = [], [], [], [], 0
    profiler = None
    async with app.run_test(size=SIZE) as pilot:
        await _until(lambda: getattr(app.screen, "card", None) is not None and not app.screen.busy)
        await _painted(pilot)
        screen = app.screen
        paints = Paints(app)
        if profile is not None:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        for i in range(answers):
            t0 = time.perf_counter()
            press(app, "space")
            await _until(lambda: screen.revealed)
            await _painted(pilot)
            reveal.append(paints.shown_at(t0)[0])
            old = screen.card
            t0 = time.perf_counter()
            press(app, "3")
            await _until(lambda old=old: (screen.card is not old and not screen.busy) or app.screen is not screen)
            await _painted(pilot)
            t1 = time.perf_counter()
            shown, last = paints.shown_at(t0)
            rate.append(shown)
            lasts.append(last)
            settled.append(t1 - t0)
            if app.screen is not screen:
                break
            if i < 10 and profiler is None:  # checked, not timed: the painted screen shows the new card
                card = screen.card
                if f"{card.path}:{card.line}" not in screen_text(app):
                    misses += 1
        if profiler is not None:
            profiler.disable()
            import io
            import pstats

            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("cumulative").print_stats(70)
            stats.sort_stats("tottime").print_stats(40)
            profile.write_text(text.getvalue())
        await app.workers.wait_for_complete()
    kb.close()
    return {"rate": rate, "reveal": reveal, "settled": settled, "last": lasts, "misses": misses}


# -- bare Textual baselines ---------------------------------------------------------------------------
def _bare_app(markdown: bool):
    from textual.app import App
    from textual.widgets import Footer, Header, Markdown, Static

    texts = [f"## Card {i}\n\nWhat is **gradient descent** number {i}? It updates `w` by `-lr * grad`.\n\n"
             f"- a point {i}\n- another point\n" for i in range(1000)]

    class Bare(App):
        BINDINGS = [("3", "next", "Next")]

        def __init__(self) -> None:
            super().__init__()
            self.i = 0

        def compose(self):
            yield Header()
            yield (Markdown(texts[0], id="card") if markdown else Static(texts[0], id="card", markup=False))
            yield Footer()

        async def action_next(self) -> None:
            self.i += 1
            widget = self.query_one("#card")
            if markdown:
                await widget.update(texts[self.i % len(texts)])
            else:
                widget.update(texts[self.i % len(texts)])

    return Bare()


async def _bare_loop(markdown: bool, answers: int) -> dict:
    app = _bare_app(markdown)
    times, settled, lasts = [], [], []
    async with app.run_test(size=SIZE) as pilot:
        await _painted(pilot)
        paints = Paints(app)
        for _ in range(answers):
            i = app.i
            t0 = time.perf_counter()
            press(app, "3")
            await _until(lambda i=i: app.i != i)
            await _painted(pilot)
            t1 = time.perf_counter()
            shown, last = paints.shown_at(t0)
            times.append(shown)
            lasts.append(last)
            settled.append(t1 - t0)
        assert f"Card {app.i}" in screen_text(app)
    return {"rate": times, "settled": settled, "last": lasts}


# -- start -> home ------------------------------------------------------------------------------------
HOME_PROBE = r"""
import json, os, sys, time, asyncio
t0 = time.perf_counter()
kb_dir, vault, how = sys.argv[1:4]
out = {}

async def until_home(app):
    async with app.run_test(size=(120, 40)) as pilot:
        while not getattr(app.screen, "decks", None):
            await asyncio.sleep(0.001)
        for _ in range(3):
            await pilot._wait_for_screen()
        app.screen._on_timer_update()
        out["seconds"] = time.perf_counter() - t0
        out["decks"] = len(app.screen.decks)
        await app.workers.wait_for_complete()

if how == "cli":  # the `d2lkb` command: Typer, the config, then the TUI (run under Pilot here)
    import d2lkb.tui.app as tui_app

    def run_app(kb, query=None, start="home", **kwargs):
        asyncio.run(until_home(tui_app.D2lkbApp(kb, query=query, start=start, **kwargs)))

    tui_app.run_app = run_app
    os.environ.update(D2LKB_KB=kb_dir, D2LKB_NOTES=vault)
    from d2lkb.cli import main

    sys.argv = ["d2lkb"]
    try:
        main()
    except SystemExit:
        pass
else:
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase
    from d2lkb.tui.app import D2lkbApp
    out["imports"] = time.perf_counter() - t0
    kb = KnowledgeBase(load_config(kb_dir, vault))
    asyncio.run(until_home(D2lkbApp(kb, start="home", sync_on_start=how == "sync")))
print(json.dumps(out))
"""

BARE_PROBE = r"""
import json, sys, time, asyncio
t0 = time.perf_counter()
from textual.app import App
from textual.widgets import DataTable, Footer, Header

class Bare(App):
    def compose(self):
        yield Header()
        table = DataTable()
        table.add_columns("Deck", "New", "Learn", "Due")
        table.add_rows([(f"#tag{i}", i, i, i) for i in range(16)])
        yield table
        yield Footer()

async def main():
    app = Bare()
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(3):
            await pilot._wait_for_screen()
        app.screen._on_timer_update()
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds}))

asyncio.run(main())
"""


def _probe(code: str, *args: str) -> dict:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip()[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_start(kb_dir: Path, vault: Path) -> None:
    print(f"\n== start -> home with deck counts (fresh processes, {RUNS} runs each, interleaved)")
    runs: dict[str, list[dict]] = {"sync": [], "nosync": [], "cli": [], "bare": []}
    before = load()
    for _ in range(RUNS):
        for how in ("sync", "nosync", "cli"):
            runs[how].append(_probe(HOME_PROBE, str(kb_dir), str(vault), how))
        runs["bare"].append(_probe(BARE_PROBE))
    report("d2lkb start -> home painted with counts (start-up sync on)", [r["seconds"] for r in runs["sync"]],
           unit=" s", goal="goal <= 1 s", before=before)
    report("    of which imports (d2lkb.tui.app, kb)", [r["imports"] for r in runs["sync"]], unit=" s", before=before)
    report("same, --no-sync", [r["seconds"] for r in runs["nosync"]], unit=" s", before=before)
    report("same, through the `d2lkb` command (Typer, sync on)", [r["seconds"] for r in runs["cli"]], unit=" s",
           goal="goal <= 1 s", before=before)
    report("bare Textual app start -> DataTable painted", [r["seconds"] for r in runs["bare"]], unit=" s",
           before=before)
    report("d2lkb (sync on) / bare", [a["seconds"] / b["seconds"] for a, b in zip(runs["sync"], runs["bare"], strict=True)],
           before=before)
    line("decks on home", str(runs["sync"][0]["decks"]))


def bench_rating(template: Path, vault: Path, due: int, work: Path, answers: int) -> None:
    from bench_review import _copy_kb

    print(f"\n== rating -> next card painted, {answers} answers per run, {RUNS} runs, fresh KB copies "
          f"({due:,} due), Pilot {SIZE[0]}x{SIZE[1]}")
    ours: list[dict] = []
    bare_static: list[dict] = []
    bare_md: list[dict] = []
    before = load()
    for r in range(RUNS):  # interleaved
        kb_dir = _copy_kb(template, work / "tui-round")
        ours.append(asyncio.run(_review_loop(kb_dir, vault, answers)))
        bare_static.append(asyncio.run(_bare_loop(False, answers)))
        bare_md.append(asyncio.run(_bare_loop(True, answers)))
        print(f"    round {r + 1}: d2lkb p50 {percentile(ours[-1]['rate'], .5) * 1000:.1f} ms, p95 "
              f"{percentile(ours[-1]['rate'], .95) * 1000:.1f} ms; bare Static p50 "
              f"{percentile(bare_static[-1]['rate'], .5) * 1000:.1f}, bare Markdown p50 "
              f"{percentile(bare_md[-1]['rate'], .5) * 1000:.1f}; not painted: {ours[-1]['misses']}", flush=True)
    ms = 1000
    for label, runs in (("d2lkb rating -> next card", ours), ("bare Textual, Static swapped", bare_static),
                        ("bare Textual, Markdown swapped", bare_md)):
        goal = "goal <= 50 ms" if runs is ours else ""
        report(f"{label}: p50", [percentile(x["rate"], .5) * ms for x in runs], fmt="{:.1f}", unit=" ms",
               before=before)
        report(f"{label}: p95", [percentile(x["rate"], .95) * ms for x in runs], fmt="{:.1f}", unit=" ms",
               goal=goal, before=before)
    for label, runs in (("d2lkb", ours), ("bare Static", bare_static), ("bare Markdown", bare_md)):
        report(f"{label}: p95 to the last paint (a widget whose size changed is repainted once more)",
               [percentile(x["last"], .95) * ms for x in runs], fmt="{:.1f}", unit=" ms", before=before)
        report(f"{label}: p95 until the bench saw every widget settle",
               [percentile(x["settled"], .95) * ms for x in runs], fmt="{:.1f}", unit=" ms", before=before)
    report("d2lkb space -> answer shown: p50", [percentile(x["reveal"], .5) * ms for x in ours], fmt="{:.1f}",
           unit=" ms", before=before)
    report("d2lkb space -> answer shown: p95", [percentile(x["reveal"], .95) * ms for x in ours], fmt="{:.1f}",
           unit=" ms", before=before)
    for label, runs in (("bare Static", bare_static), ("bare Markdown", bare_md)):
        report(f"d2lkb p95 / {label} p95",
               [percentile(a["rate"], .95) / percentile(b["rate"], .95) for a, b in zip(ours, runs, strict=True)],
               before=before)
    line("screens checked without the new card painted", str(sum(x["misses"] for x in ours)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notes", type=int, default=10_000, help="synthetic notes (10 cards each)")
    ap.add_argument("--answers", type=int, default=60, help="answers per run")
    ap.add_argument("--keep", type=Path, help="folder of run.py's vault and big KB (reused; built when missing)")
    ap.add_argument("--only", default="rating,start")
    ap.add_argument("--profile", type=Path, help="profile one run of the review loop (cProfile, the UI thread) into this file")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="d2lkb-bench-tui-"))
    work.mkdir(parents=True, exist_ok=True)
    import sqlite3

    import textual

    print(f"d2lkb TUI bench  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  python {sys.version.split()[0]}"
          f"  textual {textual.__version__}  sqlite {sqlite3.sqlite_version}  cpus {os.cpu_count()}"
          f"  load {os.getloadavg()}")
    template, vault, due = big_kb(work, args.notes)
    if args.profile:
        from bench_review import _copy_kb

        out = asyncio.run(_review_loop(_copy_kb(template, work / "tui-round"), vault, args.answers, args.profile))
        print(f"profile of {len(out['rate'])} answers written to {args.profile}; p50 "
              f"{percentile(out['rate'], .5) * 1000:.1f} ms")
        return
    only = set(args.only.split(","))
    if "rating" in only:
        bench_rating(template, vault, due, work, args.answers)
    if "start" in only:
        bench_start(template, vault)


if __name__ == "__main__":
    main()
