"""Card identity is decided on content, never position (d2lkb.identity)."""

from d2lkb.identity import Fingerprint, match_cards


def fp(prompt, context="", kind="basic", path="a.md", reverse=False):
    return Fingerprint(kind, reverse, prompt, context, path)


def test_unchanged_cards_match_wherever_they_moved():
    old = [(1, fp("What is a tensor?", "An n-d array")), (2, fp("What is a model?", "A program"))]
    new = [fp("What is a model?", "A program", path="b.md"), fp("What is a tensor?", "An n-d array")]
    assert match_cards(old, new) == {0: 2, 1: 1}


def test_edited_answer_keeps_identity():
    old = [(7, fp("Derivative of x^2?", "2x"))]
    assert match_cards(old, [fp("Derivative of x^2?", "2 x (by the power rule)")]) == {0: 7}


def test_typo_fix_in_question_keeps_identity():
    old = [(3, fp("What is gradient decsent?", "an optimiser"))]
    assert match_cards(old, [fp("What is gradient descent?", "an optimiser")]) == {0: 3}


def test_different_question_is_a_new_card():
    old = [(3, fp("What is gradient descent?", "an optimiser"))]
    assert match_cards(old, [fp("Who invented backpropagation?", "several people")]) == {}


def test_reordered_clozes_keep_their_own_history():
    ctx = "A model has behavior determined by parameters."
    old = [(10, fp("behavior", ctx, "cloze")), (11, fp("parameters", ctx, "cloze"))]
    new = [fp("parameters", ctx, "cloze"), fp("behavior", ctx, "cloze")]
    assert match_cards(old, new) == {0: 11, 1: 10}


def test_added_cloze_does_not_steal_history():
    ctx_old = "A model has behavior determined by parameters."
    ctx_new = "A model has behavior determined by many parameters."
    old = [(10, fp("behavior", ctx_old, "cloze")), (11, fp("parameters", ctx_old, "cloze"))]
    new = [fp("behavior", ctx_new, "cloze"), fp("many", ctx_new, "cloze"), fp("parameters", ctx_new, "cloze")]
    assert match_cards(old, new) == {0: 10, 2: 11}


def test_duplicate_cloze_texts_each_keep_one_card():
    ctx = "parameters and more parameters"
    old = [(1, fp("parameters", ctx, "cloze")), (2, fp("parameters", ctx, "cloze"))]
    got = match_cards(old, [fp("parameters", ctx, "cloze"), fp("parameters", ctx, "cloze")])
    assert sorted(got.values()) == [1, 2]


def test_same_file_wins_over_elsewhere():
    old = [(1, fp("Q", "A", path="other.md")), (2, fp("Q", "A", path="a.md"))]
    assert match_cards(old, [fp("Q", "A", path="a.md")]) == {0: 2}


def test_direction_and_kind_are_part_of_identity():
    old = [(1, fp("Q", "A", reverse=True)), (2, fp("Q", "A", kind="cloze"))]
    assert match_cards(old, [fp("Q", "A")]) == {}


def _vault(files: int, per_file: int, reworded: bool) -> list[Fingerprint]:
    """Cards of a vault; `reworded`: every question said differently, every tenth one only
    had a typo fixed (so keeps its identity)."""
    out = []
    for f in range(files):
        for k in range(per_file):
            n = f * per_file + k
            question = f"What is the gradient rule of layer {n}?"
            if reworded:
                question = question.replace("gradient", "gradeint") if n % 10 == 0 else f"Explain rule {n}, layer by layer."
            out.append(fp(question, f"derivative {n} of the loss", path=f"n{f}.md"))
    return out


def test_vault_wide_rewording_is_matched_with_bounded_work(monkeypatch):
    """Issue 11: rewording every note compared every new card with every old one. Now the
    costly similarity runs a bounded number of times per card, whatever the vault's size,
    and the typo fixes keep their identity."""
    import d2lkb.identity as identity

    calls = {"bound": 0, "ratio": 0}
    may_reach, similarity = identity._may_reach, identity._similarity

    def counted_bound(*args):
        calls["bound"] += 1
        return may_reach(*args)

    def counted_ratio(*args):
        calls["ratio"] += 1
        return similarity(*args)

    monkeypatch.setattr(identity, "_may_reach", counted_bound)
    monkeypatch.setattr(identity, "_similarity", counted_ratio)
    old = list(enumerate(_vault(300, 10, reworded=False), 1))
    new = _vault(300, 10, reworded=True)
    got = match_cards(old, new)
    assert got == {i: i + 1 for i in range(0, len(new), 10)}  # the typo fixes, nothing else
    per_card = 2 * identity.CANDIDATES + identity.CANDIDATES  # own file + elsewhere, + a small file whole
    assert calls["bound"] <= per_card * len(new)  # was len(old) x len(new) ratios
    assert calls["ratio"] <= 2 * per_card * len(new) // 10  # only the typo fixes pass the bound


def test_retired_cards_in_a_large_pool_come_back():
    retired = [(10_000 + n, c) for n, c in enumerate(_vault(200, 10, reworded=False))]
    back = [fp("What is the gradient rule of layer 1234?", "derivative 1234 of the loss", path="elsewhere.md"),
            fp("What is the gradeint rule of layer 77?", "derivative 77 of the loss", path="n7.md")]
    assert match_cards(retired, back) == {0: 11_234, 1: 10_077}


def test_many_cards_with_one_prompt_keep_the_closest_context():
    """Stage 2 with a crowd: 500 clozes of the same word, each paragraph edited a little."""
    old = [(n, fp("softmax", f"paragraph {n}: the softmax of layer {n} normalises", "cloze")) for n in range(500)]
    new = [fp("softmax", f"paragraph {n}: the softmax of layer {n} normalises scores", "cloze") for n in range(500)]
    assert match_cards(old, new) == {n: n for n in range(500)}
