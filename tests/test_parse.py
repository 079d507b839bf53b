"""Note parser: what is better said in code than in fixture files.

Robustness on hostile input, line numbers across line endings and multi-line inline
constructs, the plugins' tokens and HTML, and the pure helpers.
"""

from __future__ import annotations

import pytest

from d2lkb.model import CardKind, ParseWarning
from d2lkb.notes import parse as parse_module
from d2lkb.notes.fences import fence_language, is_closing_fence, is_doctest, split_doctest
from d2lkb.notes.latex import describe_row, split_rows
from d2lkb.notes.options import ALL_NOTES, ParseOptions
from d2lkb.notes.parse import create_markdown, note_parser
from d2lkb.notes.parse import parse_note as _parse_note
from d2lkb.notes.plugins.tags import clean_tag_name


def parse_note(text: str, path: str, options: ParseOptions = ALL_NOTES):
    """These tests look at card syntax: every note makes cards (no `#flashcards` opt-in)."""
    return _parse_note(text, path, options)


# --- never raises -------------------------------------------------------------------

NASTY = {
    "empty": "",
    "only whitespace": " \n\t\n",
    "only $$": "$$",
    "only $$ twice": "$$\n$$",
    "unbalanced [[": "[[a [[b [[c" * 1000,
    "unclosed \\[": "\\[\n" * 500,
    "10k nested >": ">" * 10_000 + " deep",
    "nested > on many lines": "".join(">" * i + " x\n" for i in range(500)),
    "NUL chars": "a\x00#tag\x00 ==b\x00== \x00",
    "lone surrogates": "\ud800 #tag \udfff ==x==",
    "very long line": "word #tag ==hl== $x$ [[link]] q :: a " * 5_000,
    "only hashes": "#" * 100_000,
    "only equals": "=" * 100_001,
    "only colons": ":" * 100_000,
    "many fences": "```\n" * 3_001,
    "deep YAML": "---\na: " + "[" * 3_000 + "\n---\n",
    "YAML anchor cycle": "---\na: &a [*a]\nb: &b {x: *b}\n---\n",
    "only front matter marker": "---",
    "CR only": "# a\r#b\r==c==",
    "many list markers": "- " * 5_000 + "x",
    "many ? lines": "?\n" * 2_000,
    "huge cloze paragraph": "==x== " * 20_000,
    "aligned with 5k rows": "$$\\begin{aligned}" + "a & = b && \\text{R} \\\\" * 5_000 + "\\end{aligned}$$",
}


@pytest.mark.parametrize("text", list(NASTY.values()), ids=list(NASTY))
def test_parse_note_never_raises(text: str) -> None:
    note = parse_note(text, "nasty.md")
    assert note.path == "nasty.md"
    assert not [w for w in note.warnings if w.message.startswith("could not parse")]


def test_an_unexpected_error_becomes_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(text: str, path: str, options: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(parse_module, "_parse", broken)
    note = parse_note("# Title\n", "dir/broken.md")
    assert note.title == "broken"
    assert note.text == "# Title\n"
    assert note.warnings == (ParseWarning(1, "could not parse note: RuntimeError: boom"),)


def test_huge_cloze_paragraph_is_skipped_with_a_warning() -> None:
    note = parse_note("==x== " * 20_000, "n.md")
    assert note.cards == ()
    assert len(note.highlights) == 20_000
    assert note.warnings == (
        ParseWarning(
            1, "paragraph too large for cloze cards (20000 deletions in 119999 characters); no cards made"
        ),
    )


# --- the shared parser ---------------------------------------------------------------


def test_the_parser_is_built_once() -> None:
    assert note_parser() is note_parser()


def test_parsing_is_deterministic_and_repeatable() -> None:
    text = "# T #a\n\nQ ::: A\n\n==x== and ==y==\n\n$$a = b$$\n"
    assert parse_note(text, "n.md") == parse_note(text, "n.md")


def test_path_is_kept_and_the_title_falls_back_to_the_stem() -> None:
    note = parse_note("no heading", "a/b/Linear Algebra.md")
    assert (note.path, note.title) == ("a/b/Linear Algebra.md", "Linear Algebra")


# --- line numbers --------------------------------------------------------------------


def test_crlf_and_cr_line_endings_give_the_same_lines_as_lf() -> None:
    text = "---\ntags: [a]\n---\n# H\n\ntext #t\n\n```python\nx\n```\n\nQ :: A\n"
    lf = parse_note(text, "n.md")
    assert parse_note(text.replace("\n", "\r\n"), "n.md") == lf
    assert parse_note(text.replace("\n", "\r"), "n.md") == lf
    assert [t.line for t in lf.tags] == [2, 6]
    assert lf.snippets[0].line == 8
    assert lf.cards[0].line == 12


def test_lines_after_multi_line_inline_constructs() -> None:
    text = "a $x\ny$ #one\n`co\nde` #two\n<span\nclass='x'> #three\nlast\\\nline #four ==hl==\n"
    note = parse_note(text, "n.md")
    assert [(t.name, t.line) for t in note.tags] == [("one", 2), ("two", 4), ("three", 6), ("four", 8)]
    assert [(h.text, h.line) for h in note.highlights] == [("hl", 8)]
    assert [(f.latex, f.line) for f in note.formulas] == [("x\ny", 1)]


def test_card_lines_inside_a_paragraph_and_a_list() -> None:
    text = "intro line\nQ1 :: A1\nmore\nQ2 :: A2\n\n- item\n- Q3 :: A3\n"
    note = parse_note(text, "n.md")
    assert [(c.front, c.line) for c in note.cards] == [("Q1", 2), ("Q2", 4), ("Q3", 7)]


def test_nul_characters_are_replaced_like_markdown_it_does() -> None:
    note = parse_note("a\x00b #t\x00", "n.md")
    assert "a\ufffdb" in note.text
    assert [t.name for t in note.tags] == ["t"]


# --- plain text for search ---------------------------------------------------------


def test_note_text_holds_title_prose_code_and_inline_math_but_no_html_or_display_math() -> None:
    text = (
        "---\ntitle: Fm Title\n---\n# Heading\n\nSome *prose* with `code` and $x^2$.\n\n"
        "<div>hidden html</div>\n\n$$display = math$$\n\n```python\nprint('code')\n```\n"
    )
    note = parse_note(text, "n.md")
    assert note.text == "Fm Title\nHeading\nSome prose with code and $x^2$.\nprint('code')\n"
    assert note.sections[0].text == "Some prose with code and $x^2$.\nprint('code')\n"


def test_section_text_excludes_subsections() -> None:
    note = parse_note("# A\n\none\n\n## B\n\ntwo\n\n# C\n\nthree\n", "n.md")
    assert [(s.title, s.text) for s in note.sections] == [("A", "one"), ("B", "two"), ("C", "three")]


# --- cards ---------------------------------------------------------------------------


def test_cloze_siblings_share_a_key_and_other_paragraphs_do_not() -> None:
    note = parse_note("A ==b== c ==d==.\n\nE ==f==.\n", "n.md")
    keys = [c.sibling_key for c in note.cards]
    assert keys[0] == keys[1] != keys[2]
    assert all(key.startswith("cloze:") for key in keys)


def test_cloze_sibling_key_does_not_depend_on_the_file_or_position() -> None:
    first = parse_note("A ==b== c.\n", "one.md")
    moved = parse_note("# New heading\n\nintro\n\nA ==b== c.\n", "renamed/two.md")
    assert first.cards[0].sibling_key == moved.cards[0].sibling_key


def test_adding_a_cloze_keeps_the_other_deletions_prompts() -> None:
    before = parse_note("The ==gradient== points uphill.\n", "n.md")
    after = parse_note("The ==gradient== points ==uphill==.\n", "n.md")
    assert [c.prompt for c in before.cards] == ["gradient"]
    assert [c.prompt for c in after.cards] == ["gradient", "uphill"]
    assert after.cards[0].front == "The [...] points uphill."


def test_every_card_kind_in_one_note_sorted_by_line() -> None:
    text = (
        "# T #deck\n\nQ :: A\n\n==cloze== here\n\n"
        "$$x = 1 \\tag{One}$$\n\n```python\nprint(1)\n```\n```output\n1\n```\n"
    )
    note = parse_note(text, "n.md")
    assert [(c.kind, c.line) for c in note.cards] == [
        (CardKind.BASIC, 3),
        (CardKind.CLOZE, 5),
        (CardKind.FORMULA, 7),
        (CardKind.SNIPPET, 9),
    ]
    assert all(c.tags == ("deck",) for c in note.cards)
    assert note.cards[2].formula == 0 and note.cards[2].back == "$$x = 1$$"
    assert note.cards[3].snippet == 0


def test_snippet_card_uses_a_longer_fence_when_the_code_holds_one() -> None:
    text = "````python\nprint('```')\n````\n\n````output\n```\n````\n"
    note = parse_note(text, "n.md")
    card = note.cards[0]
    assert card.front == "````python\nprint('```')\n````"
    assert card.back == "````output\n```\n````"


def test_seed_excerpt() -> None:
    """A piece of the user's original notes, scrape debris included."""
    text = (
        "### How\n\n"
        "#parameters #参数 A way to solve problem using “machine learning” is to define a flexible "
        "program whose ==behavior== is determined by a number of ==parameters==.\n\n"
        "#### Euclidean norm\n\n"
        "\\(\\|\\mathbf{x}\\|_2 = \\sqrt{\\sum_{i=1}^n x_i^2}.\\)\n\n"
        "Also need to remember power rules\n\n"
        "\\[\\begin{aligned} \\frac{d}{dx} x^n & = n x^{n-1} && \\textrm{for } n \\neq 0 \\\\\\end{aligned}\\]"
        "### Partial Derivatives\n"
    )
    assert not parse_note(text, "seed.md").formulas  # `\(`, `\[`: escaped brackets in Markdown
    note = parse_note(text, "seed.md", ParseOptions(flashcard_tags=(), bracket_math=True))
    assert [t.name for t in note.tags] == ["parameters", "参数"]
    assert [c.back for c in note.cards if c.kind is CardKind.CLOZE] == ["behavior", "parameters"]
    assert note.cards[0].tags == ("parameters", "参数")
    assert [(f.latex, f.display, f.name) for f in note.formulas] == [
        ("\\|\\mathbf{x}\\|_2 = \\sqrt{\\sum_{i=1}^n x_i^2}.", False, None),
        ("\\frac{d}{dx} x^n & = n x^{n-1} && \\textrm{for } n \\neq 0", True, None),
    ]
    assert not [c for c in note.cards if c.kind is CardKind.FORMULA]


# --- plugins: tokens and HTML ---------------------------------------------------------


def test_plugin_tokens() -> None:
    inline = create_markdown().parse("#a ==b== [[c#h|d]] x :: y \\(z\\) $w$")[1]
    assert [(t.type, t.content, t.markup, t.meta) for t in inline.children or []] == [
        ("tag", "a", "#", {"pos": 0}),
        ("text", " ", "", {}),
        ("mark_open", "", "==", {"pos": 3}),
        ("text", "b", "", {}),
        ("mark_close", "", "==", {"pos": 6}),
        ("text", " ", "", {}),
        ("wikilink", "c#h|d", "[[", {"pos": 9, "target": "c", "anchor": "h", "alias": "d"}),
        ("text", " x ", "", {}),
        ("card_sep", "", "::", {"pos": 21}),
        ("text", " y ", "", {}),
        ("math_inline", "z", "\\(", {"pos": 26}),
        ("text", " ", "", {}),
        ("math_inline", "w", "$", {"pos": 32}),
    ]


def test_plugin_html() -> None:
    html = create_markdown().render("#tag [[a#h|b]] ==c== x :: y \\(z\\) $$v$$\n\n\\[\nq\n\\]\n")
    assert html == (
        '<p><span class="tag">#tag</span> <a class="wikilink" href="a#h">b</a> <mark>c</mark> x :: y '
        '<span class="math inline">z</span> <div class="math inline">v</div></p>\n'
        '<div class="math block">\nq\n</div>\n'
    )


def test_suspicious_highlight_markers_render_as_text() -> None:
    assert create_markdown().render("x====y and a ==b") == "<p>x====y and a ==b</p>\n"


# --- helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("ml", "ml"),
        ("ml/supervised", "ml/supervised"),
        ("ml/", "ml"),
        ("draft--", "draft"),
        ("参数", "参数"),
        ("y2024", "y2024"),
        ("2024", None),
        ("1-2", None),
        ("2024/", None),
        ("-x", None),
        ("/x", None),
        ("", None),
        ("a.b", None),
        ("हिंदी", "हिंदी"),
    ],
)
def test_clean_tag_name(raw: str, name: str | None) -> None:
    assert clean_tag_name(raw) == name


@pytest.mark.parametrize(
    ("info", "language"),
    [
        ("python", "python"),
        ("py", "python"),
        ("python3", "python"),
        ("ipython", "python"),
        ("PyCon", "pycon"),
        ("sympy", "sympy"),
        ("output", "output"),
        ("{.python .input}", "python"),
        ("{.python .input  n=1}", "python"),
        ("{python}", "python"),
        ("{.output}", "output"),
        ("{n=1 .python}", "python"),
        ("python title='a.py'", "python"),
        ("bash", None),
        ("", None),
        ("{.bash}", None),
        ("text output", None),
    ],
)
def test_fence_language(info: str, language: str | None) -> None:
    assert fence_language(info) == language


def test_doctest_helpers() -> None:
    assert is_doctest("\n>>> 1\n1\n")
    assert not is_doctest("x = 1\n>>> 2\n")
    assert split_doctest(">>> a = [\n...     1]\n>>> a\n[1]\n\n") == ("a = [\n    1]\na\n", "[1]")
    assert split_doctest(">>> x = 1\n") == ("x = 1\n", None)
    assert split_doctest(">>> print('a')\na\n\nb\n") == ("print('a')\n", "a\n\nb")


def test_is_closing_fence() -> None:
    assert is_closing_fence("```", "```")
    assert is_closing_fence("  ````  ", "```")
    assert is_closing_fence("> > ```", "```")
    assert not is_closing_fence("``", "```")
    assert not is_closing_fence("``` x", "```")
    assert not is_closing_fence("~~~", "```")


def test_split_rows() -> None:
    assert split_rows("a = b") is None
    rows = split_rows("\\begin{aligned} a & = b \\\\[3pt]\n c & = d \\\\ \\end{aligned}")
    assert rows is not None
    assert [(r.latex, r.offset) for r in rows] == [("a & = b", 16), ("c & = d", 33)]
    alignat = split_rows("\\begin{alignat}{2} x & = 1 \\\\ y & = 2 \\end{alignat}")
    assert alignat is not None
    assert [r.latex for r in alignat] == ["x & = 1", "y & = 2"]
    assert split_rows("\\begin{aligned}\\end{aligned}") == []


@pytest.mark.parametrize(
    ("row", "shown", "labelled", "name"),
    [
        ("a & = b && \\textrm{Product rule}", "a = b", True, "Product rule"),
        ("a & = b && \\text{(Chain rule)}", "a = b", True, "Chain rule"),
        ("x^n & = n && \\textrm{for } n \\neq 0", "x^n = n", True, None),
        ("a & = b && \\text{where } b > 0", "a = b", True, None),
        ("a & = b && \\text{When } b > 0", "a = b", True, None),
        ("a & = b && \\textrm{Rule } (1)", "a = b", True, None),
        ("a & = b && (1)", "a = b", True, None),
        ("a = b \\tag{Swap}", "a = b", True, "Swap"),
        ("a = b \\tag*{2}", "a = b", True, None),
        ("a \\& b & = c", "a \\& b = c", False, None),
        ("\\text{if } x & = 1", "\\text{if } x = 1", False, None),
        ("a & = \\begin{cases} 1 && 2 \\end{cases}", "a = \\begin{cases} 1 && 2 \\end{cases}", False, None),
        (
            "M & = \\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix} && \\text{Identity}",
            "M = \\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}",
            True,
            "Identity",
        ),
        ("a &&& b", "a", True, None),
    ],
)
def test_describe_row(row: str, shown: str, labelled: bool, name: str | None) -> None:
    label = describe_row(row)
    assert (label.shown, label.labelled, label.name) == (shown, labelled, name)
