"""Review benchmark: answering 1,000 cards in d2lkb vs Anki's own engine, same machine, same run.

d2lkb goes through the same KnowledgeBase calls the TUI makes for each card
(next card, interval previews, answer with a durable commit). Anki (PyPI `anki`,
headless) does get_queued_cards -> build_answer -> answer_card. Both collections
hold 10,000 new cards and allow 1,000 new cards a day; every answer is "Good".
Also: TUI start to first card on the bundled notes, in a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from generate import generate
from run import line

ROOT = Path(__file__).resolve().parents[1]
N_CARDS = 10_000
N_ANSWERS = 1_000
ROUNDS = 3  # fresh collections each round, sides interleaved; the best round counts (shared machines are noisy)


def _d2lkb_setup(work: Path):
    from d2lkb.config import load_config
    from d2lkb.review.types import Grade
    from d2lkb.store.kb import KnowledgeBase

    vault = work / "review-vault"
    if not vault.exists():
        generate(vault, N_CARDS // 10, cards_per_note=10)
    kb_dir = work / "review-kb"
    kb_dir.mkdir(exist_ok=True)
    (kb_dir / "config.toml").write_text("[review]\nnew_per_day = 1000\nreviews_per_day = 9999\nfuzz = false\n")
    for f in kb_dir.glob("kb.sqlite*"):
        f.unlink()
    kb = KnowledgeBase(load_config(kb_dir, vault))
    kb.sync()
    cards = kb.conn.execute("SELECT count(*) FROM card").fetchone()[0]

    def one_round() -> float:
        t0 = time.perf_counter()
        for _ in range(N_ANSWERS):
            card = kb.next_card()
            kb.preview_intervals(card.id)
            kb.answer(card.id, Grade.GOOD, duration_ms=1000)
        return time.perf_counter() - t0

    return kb, cards, one_round


def _anki_setup(work: Path):
    try:
        from anki.collection import Collection
        from anki.scheduler.v3 import CardAnswer
    except ImportError:
        line("anki", "not installed", "(pip install -c constraints.txt -e '.[bench]')")
        return None, None
    path = work / "anki" / "collection.anki2"
    path.parent.mkdir(exist_ok=True)
    for f in path.parent.glob("collection.anki2*"):
        f.unlink()
    col = Collection(str(path))
    model = col.models.by_name("Basic")
    deck_id = col.decks.id("bench")
    conf = col.decks.config_dict_for_deck_id(deck_id)
    conf["new"]["perDay"] = 1000
    conf["rev"]["perDay"] = 9999
    col.decks.save(conf)
    col.decks.select(deck_id)
    from anki.collection import AddNoteRequest

    requests = []
    for i in range(N_CARDS):
        note = col.new_note(model)
        note["Front"] = f"Question {i} about gradient descent"
        note["Back"] = f"Answer {i}"
        requests.append(AddNoteRequest(note=note, deck_id=deck_id))
    col.add_notes(requests)

    def one_round() -> float:
        t0 = time.perf_counter()
        for _ in range(N_ANSWERS):
            queued = col.sched.get_queued_cards(fetch_limit=1)
            qc = queued.cards[0]
            card = col.get_card(qc.card.id)
            card.start_timer()
            answer = col.sched.build_answer(card=card, states=qc.states, rating=CardAnswer.GOOD)
            col.sched.answer_card(answer)
        return time.perf_counter() - t0

    return col, one_round


def _anki_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("anki")


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
        for _ in range(3):
            if fresh:
                for f in kb_dir.glob("kb.sqlite*"):
                    f.unlink()
            out = subprocess.run([sys.executable, "-c", START_PROBE, str(kb_dir), str(ROOT / "notes")],
                                 capture_output=True, text=True, cwd=ROOT)
            if out.returncode != 0:
                line(f"TUI start ({label})", "failed", out.stderr.strip().splitlines()[-1:])
                return
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        best = min(r["seconds"] for r in runs)
        line(f"TUI start to first card ({label})", f"{best:.2f} s",
             f"goal <= 1 s; shown={all(r['shown'] for r in runs)} torch={runs[0]['torch']} sympy={runs[0]['sympy']}")


def _optimize(work: Path) -> None:
    """`d2lkb optimize` over a KB holding 100,000 reviews (synthetic learners, fixed seed)."""
    import random

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
    t0 = time.perf_counter()
    result = kb.optimize(apply=False)
    seconds = time.perf_counter() - t0
    kb.close()
    line(f"optimize: {len(rows):,} reviews of {card:,} cards", f"{seconds:.2f} s",
         f"goal <= 1 s; log loss {result.log_loss_before:.4f} -> {result.log_loss_after:.4f}")


def bench_review(work: Path) -> None:
    print(f"\n== review (best of {ROUNDS} rounds, fresh collections each, {N_ANSWERS} answers, new cards/day 1000)")
    ours, theirs = [], []
    for _ in range(ROUNDS):
        kb, cards, ours_round = _d2lkb_setup(work)
        ours.append(ours_round())
        logged = kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0]
        kb.close()
        assert logged == N_ANSWERS, logged
        col, theirs_round = _anki_setup(work)
        if theirs_round is None:
            continue
        theirs.append(theirs_round())
        revlog = col.db.scalar("select count() from revlog")
        col.close()
        assert revlog == N_ANSWERS, revlog
    line(f"d2lkb: {N_ANSWERS} answers ({cards:,} cards)", f"{min(ours):.2f} s", f"{min(ours) / N_ANSWERS * 1000:.2f} ms/card")
    if theirs:
        line(f"anki {_anki_version()}: {N_ANSWERS} answers ({N_CARDS:,} cards)", f"{min(theirs):.2f} s",
             f"{min(theirs) / N_ANSWERS * 1000:.2f} ms/card")
        line("d2lkb / anki time", f"{min(ours) / min(theirs):.2f}x", "goal <= 1.0")
    _tui_start(work)
    _optimize(work)
