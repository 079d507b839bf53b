"""Card Markdown rendered to one Textual `Content` (d2lkb.tui.cardtext): what cards hold survives."""

from __future__ import annotations

from d2lkb.tui.cardtext import markdown_content
from d2lkb.tui.mathtext import prettify_math


def styles_of(content, word: str) -> set[str]:
    start = content.plain.index(word)
    return {span.style for span in content.spans if span.start <= start < span.end}


def test_inline_styles_and_blocks():
    text = ("# Title\n\nA **bold** *it* ~~gone~~ `code` ==hl== [link](https://x.org) word.\n\n"
            "- one\n- two\n\n3. three\n4. four\n\n> quoted\n\n| a | bb |\n|---|---|\n| 1 | 2 |\n\n---\n\n<b>raw</b>\n")
    content = markdown_content(text)
    plain = content.plain
    assert plain.startswith("Title\n\nA bold it gone code hl link word.")
    assert "• one\n• two" in plain and "3. three\n4. four" in plain
    assert "│ quoted" in plain and "a │ bb\n──┼───\n1 │ 2" in plain and "<b>raw</b>" in plain
    assert "bold" in styles_of(content, "bold")
    assert "italic" in styles_of(content, "it ")
    assert "strike" in styles_of(content, "gone")
    assert any("reverse" in s and "underline" in s for s in styles_of(content, "hl"))
    assert any("underline" in s for s in styles_of(content, "link"))
    assert "https" not in plain


def test_code_is_kept_line_for_line_and_highlighted_with_a_language():
    math = markdown_content(prettify_math(
        r"$$\mathbf{A}^{-1} = \frac{1}{ad-bc}\begin{bmatrix} d & -b \\ -c & a\end{bmatrix}$$"))
    lines = math.plain.split("\n")
    assert len(lines) == 3 and "⎡ d   -b ⎤" in lines[1] and "⎣ -c  a  ⎦" in lines[2]
    assert len({len(line) for line in lines}) == 1 and lines[1].startswith("  𝐀⁻¹")  # one box, lines aligned
    code = markdown_content("```python\nx = [1, 2]\nprint(sum(x))\n```\n")
    assert code.plain == "  x = [1, 2]     \n  print(sum(x))  "
    assert len({s.style for s in code.spans}) > 2  # tokens coloured, not one style


def test_text_is_never_read_as_markup():
    content = markdown_content("[bold]not markup[/bold] and $var and [link](x)")
    assert "[bold]not markup[/bold]" in content.plain and "$var" in content.plain
    assert markdown_content("").plain == "" and markdown_content("  \n").plain == ""


def test_code_highlighting_is_textuals_own_with_the_lexer_kept():
    """The kept lexers give exactly what `textual.highlight.highlight` gives, for a known language,
    an unknown one (plain text) and tabs, also when asked again (the lexer reused)."""
    from textual.highlight import highlight

    from d2lkb.tui.cardtext import _highlight

    cases = [("python", "import torch\nx = torch.ones(3)  # ones\nprint(x.sum())\n"),
             ("bash", "echo $HOME | grep -c x"), ("no-such-language", "a\tb c"), ("python", "def f():\n\treturn 1")]
    for language, code in cases * 2:
        got, want = _highlight(code, language), highlight(code, language=language)
        assert (got.plain, got.spans) == (want.plain, want.spans)
