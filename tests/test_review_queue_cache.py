"""The queue head kept in memory between cards always equals the queue computed afresh."""

from __future__ import annotations

import random

from d2lkb.config import load_config
from d2lkb.review.types import Grade
from d2lkb.store.kb import KnowledgeBase
from tests.conftest import write


def _vault(notes_dir):
    for i in range(6):
        lines = [f"# Note {i} #deck{i % 2}", ""]
        for j in range(8):
            lines += [f"Question {i}-{j} :: Answer {i}-{j}", ""]
        lines += [f"Cloze ==one {i}== and ==two {i}== and ==three {i}==.", ""]
        lines += [f"Both ways {i} ::: reversed {i}", ""]
        write(notes_dir / f"n{i}.md", "\n".join(lines))


def test_cached_head_matches_a_fresh_queue(tmp_path, notes_dir, clock):
    _vault(notes_dir)
    cfg = load_config(tmp_path / "kb", notes_dir)
    write(tmp_path / "kb" / "config.toml", "[review]\nfuzz = false\nnew_per_day = 30\n")
    cfg = load_config(tmp_path / "kb", notes_dir)
    kb = KnowledgeBase(cfg, clock=clock)
    kb.sync()
    rng = random.Random(7)
    served = 0
    for step in range(400):
        query = "#deck1" if step % 97 > 60 else None
        card = kb.next_card(query)
        fresh = KnowledgeBase(cfg, clock=clock)
        expected = fresh.next_card(query)
        assert (card.id if card else None) == (expected.id if expected else None), f"step {step}"
        action = rng.random()
        if card is None or action < 0.05:
            clock.advance(minutes=rng.choice([1, 5, 11, 30, 60 * 20]))
        elif action < 0.08:
            kb.bury(card.id)
        elif action < 0.10:
            fresh.suspend(card.id)  # another connection writes: the cache must notice
        elif action < 0.12:
            kb.undo()
        else:
            kb.answer(card.id, rng.choice([Grade.AGAIN, Grade.HARD, Grade.GOOD, Grade.GOOD, Grade.EASY]))
            served += 1
            if rng.random() < 0.3:
                clock.advance(seconds=rng.randint(5, 400))
        fresh.close()
    kb.close()
    assert served > 250
