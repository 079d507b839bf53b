"""Screens of the TUI on the bundled notes, as text and SVG, for the README (docs/screens/).

    python docs/make_screens.py

Builds a throw-away KB from `notes/`, answers cards over 20 simulated days (fixed clock,
fixed grades), runs the checks, then drives the real app at 80x24 and saves each screen.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screens"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _text(app) -> str:
    from rich.console import Console

    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True,
                      color_system=None)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def _kb(tmp: Path):
    from d2lkb.config import load_config
    from d2lkb.review.types import Grade
    from d2lkb.store.kb import KnowledgeBase

    clock_now = [NOW - timedelta(days=20)]
    (tmp / "kb").mkdir()
    (tmp / "kb" / "config.toml").write_text("[review]\nfuzz = false\nnew_per_day = 6\n")
    kb = KnowledgeBase(load_config(tmp / "kb", ROOT / "notes"), clock=lambda: clock_now[0])
    os.environ["D2LKB_CONFIG_HOME"] = str(tmp / "user-config")  # a trust list of its own, not the user's
    kb.trust(ROOT / "notes")
    kb.sync()
    grades = [Grade.GOOD, Grade.GOOD, Grade.AGAIN, Grade.EASY, Grade.GOOD, Grade.HARD]
    i = 0
    for day in range(20):
        clock_now[0] = NOW - timedelta(days=20 - day)
        for _ in range(12):
            card = kb.next_card()
            if card is None:
                break
            kb.answer(card.id, grades[i % len(grades)], duration_ms=6000)
            i += 1
            clock_now[0] += timedelta(minutes=11)
    clock_now[0] = NOW
    kb.run_checks(device="cpu")
    return kb


async def _shoot(kb, start: str, name: str, keys=(), typed: str = "", query: str | None = None,
                 size: tuple[int, int] = (80, 24)) -> None:
    from d2lkb.tui.app import D2lkbApp

    app = D2lkbApp(kb, start=start, query=query)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        if typed:
            await pilot.press(*typed)
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.3)
            await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        (OUT / f"{name}.txt").write_text(_text(app), encoding="utf-8")
        (OUT / f"{name}.svg").write_text(app.export_screenshot(title=f"d2lkb {name}"), encoding="utf-8")


MATH_NOTE = r"""# Linear algebra #linalg

The inverse of a 2x2 matrix :: $$\mathbf{A}^{-1} = \frac{1}{ad-bc}\begin{bmatrix} d & -b \\ -c & a\end{bmatrix}$$

Leaky ReLU :: $$\textrm{leaky ReLU}(x) = \begin{cases}x & \textrm{if } x > 0\\ \alpha x & \textrm{otherwise}\end{cases}$$
"""


async def _math_cards(tmp: Path) -> None:
    """A matrix card and a cases card (2-D math), from a one-note vault."""
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase
    from d2lkb.tui.app import D2lkbApp

    (tmp / "notes").mkdir()
    (tmp / "notes" / "linalg.md").write_text(MATH_NOTE, encoding="utf-8")
    (tmp / "notes" / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")
    (tmp / "kb").mkdir()
    kb = KnowledgeBase(load_config(tmp / "kb", tmp / "notes"), clock=lambda: NOW)
    kb.sync()
    for name, query in (("review-matrix", "inverse"), ("review-cases", '"Leaky ReLU"')):
        app = D2lkbApp(kb, query=query, start="review", sync_on_start=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.5)
            await app.workers.wait_for_complete()
            await pilot.press("space")
            await pilot.pause(0.3)
            (OUT / f"{name}.txt").write_text(_text(app), encoding="utf-8")
            (OUT / f"{name}.svg").write_text(app.export_screenshot(title=f"d2lkb {name}"), encoding="utf-8")
    kb.close()


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    # the KB lives under the repository's (ignored) build/ and the screens are shot from its root, so
    # the paths a screen shows (notes, kb/config.toml) read the same on every machine
    os.chdir(ROOT)
    work = ROOT / "build" / "screens"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        kb = _kb(work)
        await _shoot(kb, "home", "home")
        await _shoot(kb, "review", "review", keys=("space",))
        await _shoot(kb, "browse", "browse", typed="gradient")
        await _shoot(kb, "stats", "stats")
        await _shoot(kb, "checks", "checks")
        await _shoot(kb, "stats", "stats-deck", query="#calculus", size=(120, 60))
        await _shoot(kb, "cards", "cards", query="#calculus", size=(120, 30), keys=("o", "o", "O"))
        kb.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        await _math_cards(Path(tmp))
    print(f"wrote {len(list(OUT.glob('*')))} files to {OUT}")


if __name__ == "__main__":
    os.environ["TZ"] = "UTC"
    time.tzset()
    asyncio.run(main())
