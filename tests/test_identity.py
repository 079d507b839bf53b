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
