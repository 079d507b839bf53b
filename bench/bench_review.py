"""Review benchmark: d2lkb against Anki's own engine (PyPI `anki`, headless), same machine, same run.

Per card d2lkb runs exactly what the TUI's review screen runs, called on the screen's own code:
`ReviewScreen._record_answer` (`kb.answer`, a durable commit, and the session's undo step), then
`ReviewScreen._fetch_engine` (`kb.review_step`: next card, due counts, interval previews) -- the
engine figure -- and then also the card's rendering (`ReviewScreen._fetch`).
Anki runs get_queued_cards (which returns its counts and the buttons' next states) ->
build_answer -> answer_card, and for the second figure also renders the card
(`card.question()`, `card.answer()`).
Both answer 1,000 cards "Good" in collections of 1k, 10k and 100k new cards (1,000 new cards
a day allowed), and in the 100k collection with 60% of the cards in review, thousands of them
due today. Fresh copies of each collection for each of the 3 rounds. Then: the home screen's
deck tree and heatmap at 100k cards with thousands due (Anki: deck_due_tree; one deck there,
15 tags in d2lkb),
`optimize` over 100,000 reviews, and TUI start to first card in a fresh process.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from generate import generate
from run import RUNS, line, load, report, timed

ROOT = Path(__file__).resolve().parents[1]
N_ANSWERS = 1_000
CONFIG = "[review]\nnew_per_day = 1000\nreviews_per_day = 9999\nfuzz = false\n"
REVIEWED = 0.6  # share of cards put in review state for the "thousands due" collections


# -- d2lkb -------------------------------------------------------------------------------------------
def _d2lkb_template(work: Path, n_cards: int) -> tuple[Path, Path]:
    """(KB folder, vault) synced once; rounds copy its kb.sqlite."""
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase

    big = work / "kb-big" / "kb.sqlite"
    vault = work / "vault" if n_cards >= 100_000 and big.exists() else work / f"review-vault-{n_cards}"
    kb_dir = work / f"review-template-{n_cards}"
    kb_dir.mkdir(exist_ok=True)
    (kb_dir / "config.toml").write_text(CONFIG)
    if vault == work / "vault":
        shutil.copy(big, kb_dir / "kb.sqlite")
    else:
        if not vault.exists():
            generate(vault, n_cards // 10, cards_per_note=10)
        for f in kb_dir.glob("kb.sqlite*"):
            f.unlink()
        with KnowledgeBase(load_config(kb_dir, vault)) as kb:
            kb.sync()
    return kb_dir, vault


def _make_due(db: Path, seed: int = 5) -> int:
    """Put REVIEWED of the cards in review state, due from 3 days ago to 30 days ahead."""
    conn = sqlite3.connect(db, isolation_level=None)
    now = int(time.time())
    rng = random.Random(seed)
    ids = [r[0] for r in conn.execute("SELECT id FROM card ORDER BY id")]
    rng.shuffle(ids)
    # As a real collection's: every card with a schedule of its own (interval 1-60 days, due from
    # 3 days ago to 30 days ahead), so no two cards' interval previews are alike.
    rows = []
    for cid in ids[:int(len(ids) * REVIEWED)]:
        due = now + rng.randint(-3 * 86400, 30 * 86400)
        interval = rng.randint(1, 60) * 86400
        rows.append((due, due - interval, rng.uniform(1.0, 90.0), rng.uniform(1.0, 10.0), cid))
    conn.execute("BEGIN")
    conn.executemany("UPDATE card SET state = 2, due = ?, last_review = ?, stability = ?, difficulty = ?,"
                     " reps = 3 WHERE id = ?", rows)
    conn.execute("COMMIT")
    due = conn.execute("SELECT count(*) FROM card WHERE state = 2 AND due < ?", (now + 86400,)).fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return due


def _copy_kb(template: Path, dest: Path) -> Path:
    dest.mkdir(exist_ok=True)
    for f in dest.glob("kb.sqlite*"):
        f.unlink()
    shutil.copy(template / "kb.sqlite", dest / "kb.sqlite")
    (dest / "config.toml").write_text(CONFIG)
    return dest


class _ScreenStandIn:
    """A review screen without a terminal: the real `ReviewScreen` methods, bound to this object."""

    def __init__(self, kb):
        from d2lkb.tui.session import Session

        synced = threading.Event()
        synced.set()
        self.app = SimpleNamespace(kb=kb, synced=synced, notify=lambda *a, **k: None)
        self.session = Session(None, mode="due", days=0)
        self.review_query = None

    def __getattr__(self, name):
        from d2lkb.tui.screens.review import ReviewScreen

        return getattr(ReviewScreen, name).__get__(self)


def _tui_fetch(kb, render: bool = True):
    """The review screen's own `_fetch` (`_fetch_engine` without the card's rendering), on a
    stand-in for the screen (no terminal): its first value is the next card."""
    return _tui_steps(kb, render)[1]


def _tui_steps(kb, render: bool = True):
    """(answer, fetch): the review screen's own `_record_answer(card, grade, ms)` and `_fetch`
    (`_fetch_engine` without the rendering) -- together its `answer_card` worker, less the
    hand-over to the UI thread -- on a stand-in for the screen (no terminal)."""
    screen = _ScreenStandIn(kb)
    return screen._record_answer, (lambda: screen._fetch()) if render else (lambda: screen._fetch_engine())


def _d2lkb_round(kb_dir: Path, vault: Path, render: bool) -> tuple[float, float, list[float]]:
    """Seconds (wall, CPU of the process, all threads) for N_ANSWERS answers as the TUI makes
    them, with or without rendering each card; the due_counts call times."""
    from d2lkb.config import load_config
    from d2lkb.review.types import Grade
    from d2lkb.store.kb import KnowledgeBase

    kb = KnowledgeBase(load_config(kb_dir, vault))
    counts_times: list[float] = []
    due_counts = kb._due_counts  # what `review_step` (and `due_counts`) call for the counts

    def timed_counts(*args, **kwargs):
        t0 = time.perf_counter()
        out = due_counts(*args, **kwargs)
        counts_times.append(time.perf_counter() - t0)
        return out

    kb._due_counts = timed_counts  # type: ignore[method-assign]
    answer, fetch = _tui_steps(kb, render)
    # Modules the TUI imports once at start-up (the screen's, with Textual, and fsrs's): the first
    # round timed their import as part of its answers (0.1 ms more per answer than the other rounds).
    import d2lkb.review.scheduler  # noqa: F401
    import d2lkb.tui.screens.review  # noqa: F401
    t0, c0 = time.perf_counter(), time.process_time()
    card = fetch()[0]  # ReviewScreen.load_next
    for _ in range(N_ANSWERS):  # ReviewScreen.answer_card
        answer(card, Grade.GOOD, 1000)
        card = fetch()[0]
    seconds = time.perf_counter() - t0
    if kb.checkpointer is not None:  # the CPU time counts its checkpoint thread's work (checkpoint.py)
        kb.checkpointer.close()
    cpu = time.process_time() - c0
    kb.close()
    conn = sqlite3.connect(kb_dir / "kb.sqlite")
    logged = conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0]
    conn.close()
    assert logged == N_ANSWERS, logged
    return seconds, cpu, counts_times


# -- Anki --------------------------------------------------------------------------------------------
def _anki_version() -> str | None:
    try:
        import importlib.metadata

        return importlib.metadata.version("anki")
    except Exception:  # noqa: BLE001
        return None


def _anki_template(work: Path, n_cards: int) -> Path:
    from anki.collection import AddNoteRequest, Collection

    path = work / f"anki-template-{n_cards}" / "collection.anki2"
    path.parent.mkdir(exist_ok=True)
    for f in path.parent.glob("collection.anki2*"):
        f.unlink()
    col = Collection(str(path))
    model = col.models.by_name("Basic")
    parent = col.decks.id("bench")
    # One deck: subdecks make Anki's queue slower (15 of them: ~3x per answer here), and the
    # comparison should not flatter d2lkb.
    decks = [parent]
    conf = col.decks.config_dict_for_deck_id(parent)
    conf["new"]["perDay"] = 1000
    conf["rev"]["perDay"] = 9999
    col.decks.save(conf)
    requests = []
    for i in range(n_cards):
        note = col.new_note(model)
        note["Front"] = f"Question {i} about gradient descent"
        note["Back"] = f"Answer {i}"
        requests.append(AddNoteRequest(note=note, deck_id=decks[i % len(decks)]))
    col.add_notes(requests)
    col.close()
    return path


def _anki_make_due(path: Path, seed: int = 5) -> int:
    from anki.collection import Collection

    col = Collection(str(path))
    today = col.sched.today
    rng = random.Random(seed)
    ids = list(col.find_cards(""))
    ids.sort()
    rng.shuffle(ids)
    rows = [(rng.randint(1, 60), today + rng.randint(-3, 30), rng.randint(1300, 3000), cid)
            for cid in ids[:int(len(ids) * REVIEWED)]]
    col.db.executemany("update cards set type = 2, queue = 2, ivl = ?, due = ?, factor = ?, reps = 3"
                       " where id = ?", rows)
    due = col.db.scalar("select count() from cards where queue = 2 and due <= ?", today)
    col.close()
    return due


def _anki_copy(template: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(exist_ok=True)
    for f in dest_dir.glob("collection.anki2*"):
        f.unlink()
    shutil.copy(template, dest_dir / "collection.anki2")
    return dest_dir / "collection.anki2"


def _anki_round(path: Path, render: bool) -> tuple[float, float]:
    from anki.collection import Collection
    from anki.scheduler.v3 import CardAnswer

    col = Collection(str(path))
    col.decks.select(col.decks.id("bench"))
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(N_ANSWERS):
        queued = col.sched.get_queued_cards(fetch_limit=1)  # also returns the new/learn/review counts
        qc = queued.cards[0]
        card = col.get_card(qc.card.id)
        card.start_timer()
        if render:  # as Anki's reviewer shows it: question, then the answer side
            card.question(reload=True)
            card.answer()
        answer = col.sched.build_answer(card=card, states=qc.states, rating=CardAnswer.GOOD)
        col.sched.answer_card(answer)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    revlog = col.db.scalar("select count() from revlog")
    col.close()
    assert revlog == N_ANSWERS, revlog
    return seconds, cpu


# -- the comparison ----------------------------------------------------------------------------------
def _compare(work: Path, label: str, d2lkb_template: Path, vault: Path, anki_template: Path | None) -> None:
    """Per answer, d2lkb against Anki: the engine (answer, next card, counts, previews), then the same
    with each card rendered as the screen shows it (d2lkb: Markdown to Textual `Content`; Anki:
    `card.question()` and `card.answer()`, its template rendering)."""
    for render, what in ((False, "engine with counts"), (True, "with the card rendered")):
        ours, theirs, counts, ours_cpu, theirs_cpu = [], [], [], [], []
        before = load()
        for r in range(RUNS):  # sides interleaved, fresh copies each round
            seconds, cpu, counts_times = _d2lkb_round(_copy_kb(d2lkb_template, work / "review-round"), vault,
                                                      render)
            ours.append(seconds / N_ANSWERS * 1000)
            ours_cpu.append(cpu / N_ANSWERS * 1000)
            counts.append(counts_times)
            if anki_template is not None:
                seconds, cpu = _anki_round(_anki_copy(anki_template, work / "anki-round"), render)
                theirs.append(seconds / N_ANSWERS * 1000)
                theirs_cpu.append(cpu / N_ANSWERS * 1000)
            print(f"    round {r + 1}, {what}: d2lkb {ours[-1]:.3f} ms/answer (CPU {ours_cpu[-1]:.3f})"
                  + (f", anki {theirs[-1]:.3f} (CPU {theirs_cpu[-1]:.3f})" if theirs else ""), flush=True)
        report(f"d2lkb per answer, {what} ({label})", ours, fmt="{:.3f}", unit=" ms", before=before)
        report("    same, CPU time of the process", ours_cpu, fmt="{:.3f}", unit=" ms", before=before)
        if not render:
            report(f"  of which due_counts after an answer (mean; {label})",
                   [statistics.mean(c[1:]) * 1000 for c in counts], fmt="{:.3f}", unit=" ms", goal="goal <= 1 ms",
                   before=before)
            report(f"  due_counts at the first card (queue built; {label})", [c[0] * 1000 for c in counts],
                   fmt="{:.1f}", unit=" ms", before=before)
        if theirs:
            report(f"anki {_anki_version()} per answer, {what} ({label})", theirs, fmt="{:.3f}", unit=" ms",
                   before=before)
            report("    same, CPU time of the process", theirs_cpu, fmt="{:.3f}", unit=" ms", before=before)
            report(f"d2lkb / anki, {what} ({label})", [a / b for a, b in zip(ours, theirs, strict=True)],
                   goal="goal <= 1.0" if not render else "", before=before)
            report(f"d2lkb / anki, {what}, CPU time ({label})",
                   [a / b for a, b in zip(ours_cpu, theirs_cpu, strict=True)],
                   goal="goal <= 1.0" if not render else "", before=before)


def _home(work: Path, d2lkb_due: Path, vault: Path, anki_due: Path | None, due: int) -> None:
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase

    kb_dir = _copy_kb(d2lkb_due, work / "home-kb")
    decks, decks_cpu, heat, total = [], [], [], []
    before = load()
    for _ in range(RUNS):
        kb = KnowledgeBase(load_config(kb_dir, vault))  # as at start-up: nothing kept yet
        t0, c0 = time.perf_counter(), time.thread_time()
        tree = kb.deck_counts()
        t1 = time.perf_counter()
        decks_cpu.append((time.thread_time() - c0) * 1000)
        kb.heatmap(days=365)
        t2 = time.perf_counter()
        kb.close()
        decks.append((t1 - t0) * 1000)
        heat.append((t2 - t1) * 1000)
        total.append((t2 - t0) * 1000)
    cards = tree[0].cards
    report(f"home deck tree, {cards:,} cards, {due:,} due, {len(tree) - 1} decks", decks, fmt="{:.1f}", unit=" ms",
           goal="goal <= 50 ms", before=before)
    report("    same, CPU time of the thread", decks_cpu, fmt="{:.1f}", unit=" ms", goal="goal <= 50 ms", before=before)
    report("home heatmap (first visit; later visits are kept)", heat, fmt="{:.1f}", unit=" ms", before=before)
    if anki_due is not None:
        from anki.collection import Collection

        anki_path = _anki_copy(anki_due, work / "anki-home")
        theirs, theirs_cpu = [], []
        before = load()
        for _ in range(RUNS):
            col = Collection(str(anki_path))
            t0, c0 = time.perf_counter(), time.process_time()
            col.sched.deck_due_tree()
            theirs.append((time.perf_counter() - t0) * 1000)
            theirs_cpu.append((time.process_time() - c0) * 1000)
            col.close()
        report("anki deck_due_tree (one deck)", theirs, fmt="{:.1f}", unit=" ms", before=before)
        report("    same, CPU time of the process", theirs_cpu, fmt="{:.1f}", unit=" ms", before=before)


START_PROBE = r"""
import json, sys, time, asyncio
t0 = time.perf_counter()
from d2lkb.config import load_config
from d2lkb.store.kb import KnowledgeBase
from d2lkb.tui.app import D2lkbApp

async def main():
    kb = KnowledgeBase(load_config(sys.argv[1], sys.argv[2]))
    app = D2lkbApp(kb, start="review")
    async with app.run_test(size=(100, 30)) as pilot:
        for _ in range(1000):
            if getattr(app.screen, "card", None) is not None:
                break
            await pilot.pause(0.005)
        seconds = time.perf_counter() - t0
        shown = getattr(app.screen, "card", None) is not None
        await app.workers.wait_for_complete()
    print(json.dumps({"seconds": seconds, "shown": shown, "torch": "torch" in sys.modules,
                      "sympy": "sympy" in sys.modules}))

asyncio.run(main())
"""


def _tui_start(work: Path) -> None:
    """Fresh process: imports + opening the KB + the review screen's first card (bundled notes)."""
    kb_dir = work / "tui-kb"
    for label, fresh in (("first run: KB created + synced", True), ("daily start: KB exists", False)):
        runs = []
        before = load()
        for _ in range(RUNS):
            if fresh:
                for f in kb_dir.glob("kb.sqlite*"):
                    f.unlink()
            out = subprocess.run([sys.executable, "-c", START_PROBE, str(kb_dir), str(ROOT / "notes")],
                                 capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                line(f"TUI start ({label})", "failed", out.stderr.strip().splitlines()[-1:])
                return
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        report(f"TUI start to first card ({label})", [r["seconds"] for r in runs], unit=" s",
               goal=f"goal <= 1 s; shown={all(r['shown'] for r in runs)} torch={runs[0]['torch']}",
               before=before)


def _optimize(work: Path) -> None:
    """`d2lkb optimize` over a KB holding 100,000 reviews (synthetic learners, fixed seed)."""
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase

    kb_dir = work / "optimize-kb"
    kb_dir.mkdir(exist_ok=True)
    for f in kb_dir.glob("kb.sqlite*"):
        f.unlink()
    kb = KnowledgeBase(load_config(kb_dir, work))
    rng = random.Random(11)
    rows, card = [], 0
    while len(rows) < 100_000:
        card += 1
        t = 1_700_000_000 + rng.randint(0, 86400 * 30)
        interval = 1.0
        for _ in range(rng.randint(3, 15)):
            recalled = rng.random() < 0.9 ** (1 / max(interval, 1) ** 0.2)
            rows.append((card, 3 if recalled else 1, t))
            interval = interval * 2.5 if recalled else 1.0
            t += int(interval * 86400)
    kb.conn.execute("BEGIN")
    kb.conn.executemany("INSERT INTO card (id, path, line, kind, front, back, prompt, context, created_at)"
                        " VALUES (?, 'x.md', 1, 'basic', 'q', 'a', 'q', 'a', 0)", [(i,) for i in range(1, card + 1)])
    kb.conn.executemany("INSERT INTO reviewlog (card_id, rating, reviewed_at, state_before, state_after, due_before,"
                        " due_after) VALUES (?, ?, ?, 2, 2, 0, 0)", rows)
    kb.conn.execute("COMMIT")
    results = []
    before = load()
    seconds, cpu = [], []
    for _ in range(RUNS):
        c0 = time.process_time()
        s, result = timed(kb.optimize, apply=False)
        cpu.append(time.process_time() - c0)
        seconds.append(s)
        results.append(result)
    kb.close()
    report(f"optimize: {len(rows):,} reviews of {card:,} cards", seconds, unit=" s",
           goal=f"goal <= 1 s; log loss {results[0].log_loss_before:.4f} -> {results[0].log_loss_after:.4f}",
           before=before)
    report("    same, CPU time of the process (all threads)", cpu, unit=" s", goal="goal <= 1 s", before=before)


def bench_review(work: Path, big: int = 100_000) -> None:
    anki = _anki_version()
    print(f"\n== review: {N_ANSWERS:,} answers per round, {RUNS} rounds, fresh copies; "
          f"Anki {anki or 'not installed (pip install -c constraints.txt -e .[bench])'}")
    sizes = sorted({1_000, 10_000, big})
    for n in sizes:
        d2lkb_template, vault = _d2lkb_template(work, n)
        anki_template = _anki_template(work, n) if anki else None
        _compare(work, f"{n:,} new cards", d2lkb_template, vault, anki_template)
        if n != big:
            continue
        due = _make_due(d2lkb_template / "kb.sqlite")
        anki_due = _anki_make_due(anki_template) if anki_template is not None else 0
        line(f"{n:,} cards, {REVIEWED:.0%} in review", f"{due:,} due today",
             f"(anki: {anki_due:,} due)" if anki_template is not None else "")
        _compare(work, f"{n:,} cards, {due:,} due", d2lkb_template, vault, anki_template)
        _home(work, d2lkb_template, vault, anki_template, due)
    _optimize(work)
    _tui_start(work)
