"""Markdown <-> Anki field HTML.

To Anki: our markdown-it (same plugins as the parser), math as MathJax `\\(...\\)` and
`\\[...\\]`, code highlighted by Pygments with inline styles (Anki has no stylesheet for it).
From Anki: html2text (a maintained HTML -> Markdown converter with no dependencies; chosen
over markdownify, which needs BeautifulSoup, for the same job), with MathJax, cloze
deletions and images lifted out first so the converter cannot escape or drop them.
"""

from __future__ import annotations

import html
import re
from functools import cache

CLOZE = re.compile(r"\{\{c(\d+)::(.*?)(?:::(.*?))?\}\}", re.S)
_MATHJAX = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_IMG = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+)[^>]*>", re.I)
_PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_SOUND = re.compile(r"\[sound:[^\]]+\]")


def _highlight(code: str, lang: str, _attrs: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    name = lang.strip("{}. ").split()[0] if lang.strip("{}. ") else ""
    name = name.lstrip(".") or "text"
    try:
        lexer = get_lexer_by_name(name)
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    body = highlight(code, lexer, HtmlFormatter(noclasses=True, nowrap=True, style="default"))
    # Starting with <pre, markdown-it takes it as is (no second <pre><code> around it).
    return f'<pre style="text-align: left; background: #f8f8f8"><code>{body}</code></pre>\n'



def _math_inline(self, tokens, idx, options, env) -> str:
    return "\\(" + html.escape(tokens[idx].content.strip(), quote=False) + "\\)"


def _math_display(self, tokens, idx, options, env) -> str:
    block = tokens[idx].type == "math_block"
    out = "\\[" + html.escape(tokens[idx].content.strip(), quote=False) + "\\]"
    return f"<p>{out}</p>\n" if block else out


@cache
def _renderer():
    from d2lkb.notes.parse import create_markdown

    md = create_markdown()
    md.options["highlight"] = _highlight
    md.add_render_rule("math_inline", _math_inline)
    for name in ("math_inline_double", "math_block", "math_block_label"):
        md.add_render_rule(name, _math_display)
    return md


def to_anki(markdown: str) -> str:
    """A card side's Markdown as Anki field HTML."""
    out = _renderer().render(markdown).strip()
    # One paragraph: no <p> wrapper (Anki centres its own card; a <p> adds margins).
    if out.startswith("<p>") and out.endswith("</p>") and out.count("<p>") == 1:
        out = out[3:-4]
    return out


def to_markdown(field: str, media: dict[str, str] | None = None) -> str:
    """An Anki field (HTML, MathJax, maybe cloze markers) as Markdown.

    Cloze deletions become `==text==`; MathJax `\\(..\\)`/`\\[..\\]` becomes `$..$`/`$$..$$`;
    images become `![](path)` with `media` mapping Anki's file names to paths (relative to the
    note). Sounds are dropped by the caller's report, not here.
    """
    import html2text

    kept: list[str] = []

    def keep(text: str) -> str:
        kept.append(text)
        # Braces and private-use characters: html2text neither escapes them nor pads them like words
        # (it puts a space between `**bold**` and a following letter).
        return f"{{\ue000{len(kept) - 1}\ue001}}"

    def math(m: re.Match) -> str:
        inline, display = m.group(1), m.group(2)
        tex = html.unescape(re.sub(r"<br\s*/?>", "\n", inline if inline is not None else display)).strip()
        return keep(f"${tex}$" if inline is not None else f"$${tex}$$")

    def image(m: re.Match) -> str:
        src = html.unescape(m.group(1).strip("\"'"))
        target = (media or {}).get(src, src)
        return keep(f"![]({target.replace(' ', '%20')})")

    def pre(m: re.Match) -> str:
        code = html.unescape(_TAG.sub("", re.sub(r"<br\s*/?>", "\n", m.group(1)))).rstrip("\n")
        return "\n\n" + keep(f"```\n{code}\n```") + "\n\n"

    text = CLOZE.sub(lambda m: keep("==") + m.group(2) + keep("=="), field)  # first: its `}}` ends at the first `}}`
    text = _PRE.sub(pre, text)
    text = _MATHJAX.sub(math, text)
    text = _IMG.sub(image, text)
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = False
    converter.unicode_snob = True
    converter.mark_code = False
    out = converter.handle(text).strip()
    out = re.sub(r"  \n", "\n", out)  # html2text's hard breaks: a line break is enough for us
    out = re.sub(r"\n{3,}", "\n\n", out)
    return re.sub("\\{\ue000(\\d+)\ue001\\}", lambda m: kept[int(m.group(1))], out)


def has_sound(field: str) -> bool:
    return bool(_SOUND.search(field))
