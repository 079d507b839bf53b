"""The queue head, the due counts and the heatmap kept in memory between cards always equal those
computed afresh."""

from __future__ import annotations

import json
import random

import fsrs
import pytest

from d2lkb.config import load_config
from d2lkb.review.types import Grade
from d2lkb.store.kb import KnowledgeBase
from d2lkb.store.reviews import PARAMETERS_META_KEY
from tests.conftest import write


def _vault(notes_dir):
    for i in range(6):
        lines = [f"# Note {i} #deck{i % 2}", ""]
        for j in range(8):
            lines += [f"Question {i}-{j} :: Answer {i}-{j}", ""]
        lines += [f"Cloze ==one {i}== and ==two {i}== and ==three {i}==.", ""]
        lines += [f"Both ways {i} ::: reversed {i}", ""]
        write(notes_dir / f"n{i}.md", "\n".join(lines))


@pytest.mark.parametrize(("limits", "seed"), [("new_per_day = 30", 7), ("new_per_day = 12\nreviews_per_day = 6", 3),
                                              ("new_per_day = 200\nreviews_per_day = 2", 11)])
def test_cached_head_and_counts_match_a_fresh_queue(tmp_path, notes_dir, clock, limits, seed):
    _vault(notes_dir)
    write(tmp_path / "kb" / "config.toml", f"[review]\nfuzz = false\n{limits}\n")
    cfg = load_config(tmp_path / "kb", notes_dir)
    kb = KnowledgeBase(cfg, clock=clock)
    kb.sync()
    rng = random.Random(seed)
    served = incremental = 0
    weights = [list(fsrs.Scheduler().parameters), None]
    for step in range(400):
        query = "#deck1" if step % 97 > 60 else None
        incremental += kb._valid_counts(query, kb.now()) is not None  # served from memory
        if step % 2:  # the review screen's one call, or the three it stands for
            card, counts, previews = kb.review_step(query)
        else:
            card = kb.next_card(query)
            counts = kb.due_counts(query)
            previews = kb.preview_intervals(card.id) if card else {}
        fresh = KnowledgeBase(cfg, clock=clock)
        expected = fresh.next_card(query)
        assert (card.id if card else None) == (expected.id if expected else None), f"step {step}"
        assert counts == fresh.due_counts(query), f"step {step}"
        assert previews == (fresh.preview_intervals(card.id) if card else {}), f"step {step}"
        assert kb.due_counts("#deck0") == fresh.due_counts("#deck0"), f"step {step}"  # another deck's counts
        assert kb.heatmap() == fresh.heatmap(), f"step {step}"  # kept, and added to by each answer
        action = rng.random()
        if card is None or action < 0.05:
            clock.advance(minutes=rng.choice([1, 5, 11, 30, 60 * 20]))
        elif action < 0.08:
            kb.bury(card.id)
        elif action < 0.10:
            fresh.suspend(card.id)  # another connection writes: the cache must notice
        elif action < 0.12:
            # Another process fits new FSRS weights (or drops them): previews and answers follow.
            weights[0][rng.randrange(4)] *= rng.choice([0.5, 2.0])  # the initial stabilities
            value = weights[step % 2]
            with fresh.conn:
                fresh.conn.execute("DELETE FROM meta WHERE key = ?", (PARAMETERS_META_KEY,))
                if value is not None:
                    fresh.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                                       (PARAMETERS_META_KEY, json.dumps(value)))
        elif action < 0.13:
            kb.suspend(card.id)
        elif action < 0.14:
            kb.bury(rng.choice(kb.card_ids(None)))  # any card: in the queue or not
        elif action < 0.16:
            kb.undo()
        elif action < 0.18:
            # A card answered from outside the head (the API allows it): the counts must follow.
            kb.answer(rng.choice(kb.card_ids(query)), rng.choice(list(Grade)))
        else:
            result = kb.answer(card.id, rng.choice([Grade.AGAIN, Grade.HARD, Grade.GOOD, Grade.GOOD, Grade.EASY]))
            assert result.log_id == kb.last_review_id()
            if card.state == 0:  # the weights in use: a new card's first stability is one of them
                stability = kb.conn.execute("SELECT stability FROM card WHERE id = ?", (card.id,)).fetchone()[0]
                assert stability == (fresh._parameters() or fsrs.Scheduler().parameters)[result.grade - 1]
            served += 1
            if rng.random() < 0.3:
                clock.advance(seconds=rng.randint(5, 400))
        fresh.close()
    kb.close()
    assert served > 200
    assert incremental > 200  # the counts were mostly served from memory, not rebuilt


def test_the_whole_queue_is_read_with_the_collector_paused_and_left_as_it_was(tmp_path, notes_dir, clock):
    """Reading the whole queue pauses Python's garbage collector (its thousands of tuples would trigger
    collections) and leaves it as it found it, on or off, an error or not."""
    import gc

    from d2lkb.store import reviewqueue

    _vault(notes_dir)
    kb = KnowledgeBase(load_config(tmp_path / "kb", notes_dir), clock=clock)
    kb.sync()
    seen = []
    real = reviewqueue.QueueMixin._read_queue

    def spy(self, query, now, need):
        seen.append((need, gc.isenabled()))
        return real(self, query, now, need)

    reviewqueue.QueueMixin._read_queue = spy  # type: ignore[method-assign]
    try:
        assert gc.isenabled()
        kb.due_counts(None)
        kb.next_card(None)
        assert gc.isenabled() and seen == [(None, False), (50, True)]  # the head alone: a few rows
        gc.disable()
        try:
            kb._queue(None, kb._now())
            assert not gc.isenabled()
        finally:
            gc.enable()
        with pytest.raises(KeyError), reviewqueue._gc_paused():
            assert not gc.isenabled()
            raise KeyError("a failed read")
        assert gc.isenabled()
    finally:
        reviewqueue.QueueMixin._read_queue = real  # type: ignore[method-assign]
        kb.close()
