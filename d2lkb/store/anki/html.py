"""Markdown <-> Anki field HTML.

To Anki: our markdown-it (same plugins as the parser), math as MathJax `\\(...\\)` and
`\\[...\\]`, code highlighted by Pygments with inline styles (Anki has no stylesheet for it).
From Anki: html2text (a maintained HTML -> Markdown converter with no dependencies; chosen
over markdownify, which needs BeautifulSoup, for the same job), with MathJax, cloze
deletions and images lifted out first so the converter cannot escape or drop them.

Notes may hold raw HTML (markdown-it passes it through, as Obsidian shows it), and Anki shows a
field's HTML in a web view that runs scripts. So every field we write goes through nh3, the
Python binding of Rust's ammonia (a maintained allow-list sanitiser, html5ever's parser): only
the formatting a card needs survives (`b`/`strong`, `i`/`em`, `u`, `s`, `mark`, `br`, `p`,
`div`, `span`, `code`, `pre`, `sub`, `sup`, lists, tables, headings, links and images with
http(s) or relative addresses, inline colours from Pygments); `<script>`, `<iframe>`, `on*=`
handlers, `javascript:`/`file:` addresses and CSS `url()` do not. MathJax `\\(...\\)` and cloze
`{{c1::...}}` are text to the sanitiser and pass unchanged.
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


# What a card's HTML may keep (everything else is removed, the text inside kept; the contents
# of script and style elements go too).
FIELD_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol",
    "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var",
})
FIELD_ATTRIBUTES = {
    "*": {"class", "style", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})  # and relative addresses: Anki's media files
STYLE_PROPERTIES = frozenset({
    "background", "background-color", "border", "color", "font-family", "font-size", "font-style", "font-weight",
    "margin", "padding", "text-align", "text-decoration", "vertical-align", "white-space",
})
_CSS_FETCH = re.compile(r"url\s*\(|image-set\s*\(|expression\s*\(|@import|\\", re.I)


def _style_filter(tag: str, attribute: str, value: str) -> str | None:
    """Drop a style that could fetch or run something (`url(...)`, `expression(...)`, CSS escapes)."""
    if attribute == "style" and _CSS_FETCH.search(value):
        return None
    return value


def clean_field(field_html: str) -> str:
    """Field HTML with only the allowed formatting left (see the module docstring)."""
    import nh3

    return nh3.clean(field_html, tags=set(FIELD_TAGS), attributes={k: set(v) for k, v in FIELD_ATTRIBUTES.items()},
                     url_schemes=set(URL_SCHEMES), filter_style_properties=set(STYLE_PROPERTIES),
                     attribute_filter=_style_filter, strip_comments=True, link_rel="noopener noreferrer")


def to_anki(markdown: str) -> str:
    """A card side's Markdown as Anki field HTML (sanitised: `clean_field`)."""
    out = clean_field(_renderer().render(markdown)).strip()
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
