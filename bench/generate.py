"""Deterministic synthetic vault: N notes with tags, links, cards, formulas and code.

    python bench/generate.py OUT_DIR --notes 1000 [--cards-per-note 10] [--seed 1]

The same arguments always write byte-identical files.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

WORDS = ["tensor", "gradient", "descent", "model", "parameter", "loss", "function", "optimizer", "layer", "network", "weight", "bias", "activation", "softmax", "regression", "classification", "probability", "expectation", "variance", "matrix", "vector", "norm", "derivative", "chain", "rule", "backpropagation", "convolution", "kernel", "pooling", "recurrent", "attention", "transformer", "embedding", "token", "batch", "epoch", "learning", "rate", "momentum", "dropout", "regularization", "overfitting", "generalization", "dataset", "feature", "label", "sample", "distribution", "entropy", "likelihood", "posterior", "prior", "bayes", "sequence", "memory", "hidden", "state", "output", "input"]
# Real notes follow a Zipf law over thousands of words; a 60-word vocabulary would make every
# word match a third of the corpus. Filler words are pronounceable pseudo-words, ranked.
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "ri", "do", "fe", "gu", "ha"]
FILLER = sorted({a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES})[:4000]
FILLER_WEIGHTS = [1.0 / (rank + 1) for rank in range(len(FILLER))]
CJK = ["参数", "模型", "梯度", "损失", "张量", "学习"]
TAGS = ["ml", "ml/supervised", "ml/unsupervised", "math", "math/calculus", "math/linear-algebra", "dl",
        "dl/cnn", "dl/rnn", "optim", "prob", "参数", "code", "review-later", "concept"]


def sentence(rng: random.Random, n: int = 12) -> str:
    words = rng.choices(FILLER, FILLER_WEIGHTS, k=n)
    for _ in range(max(1, n // 6)):  # domain terms: about one word in six
        words[rng.randrange(n)] = rng.choice(WORDS)
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), rng.choice(CJK))
    return " ".join(words).capitalize() + "."


def note(rng: random.Random, i: int, n_notes: int, cards: int) -> str:
    tags = rng.sample(TAGS, 2)
    out = [f"---\ntitle: Note {i} {rng.choice(WORDS)}\ntags: [{', '.join(tags)}]\n---", f"# Note {i}", ""]
    made = 0
    section = 0
    while made < cards:
        section += 1
        out += [f"## Section {section} #{rng.choice(TAGS)}", "", sentence(rng, 20) + " " + sentence(rng, 15), ""]
        out += [f"See [[note-{rng.randrange(n_notes):05d}]] and [[note-{rng.randrange(n_notes):05d}|an alias]].", ""]
        kind = made % 5
        if kind == 0:
            out += [f"What is {rng.choice(WORDS)} {rng.choice(WORDS)} number {i}-{made}? :: {sentence(rng, 8)}", ""]
            made += 1
        elif kind == 1:
            out += [f"A {rng.choice(WORDS)} has ==behavior {i}-{made}== set by ==parameters {i}-{made}== here.", ""]
            made += 2
        elif kind == 2:
            out += [f"Define {rng.choice(WORDS)} {i}-{made}", "?", sentence(rng, 10), ""]
            made += 1
        elif kind == 3:
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            out += [f"### Identity {i}-{made}", "", "$$", f"(x + {a})^2 = x^2 + {2 * a} x + {a * a}", "$$", "",
                    f"Inline math $x_{b}$ and more.", ""]
            made += 1
        else:
            a = rng.randint(1, 99)
            out += ["```python", f"x = {a}", "x * 2", "```", "", "```output", str(a * 2), "```", ""]
            made += 1
        out += [sentence(rng, 14), ""]
    return "\n".join(out)


def generate(out: Path, notes: int, cards_per_note: int = 10, seed: int = 1) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    # A study vault: every note makes cards (not only those tagged #flashcards).
    (out / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")
    for i in range(notes):
        rng = random.Random(seed * 1_000_003 + i)
        folder = out / f"folder-{i % 20:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"note-{i:05d}.md").write_text(note(rng, i, notes, cards_per_note), encoding="utf-8")
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--notes", type=int, default=1000)
    ap.add_argument("--cards-per-note", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    generate(args.out, args.notes, args.cards_per_note, args.seed)
    print(f"wrote {args.notes} notes to {args.out}")
