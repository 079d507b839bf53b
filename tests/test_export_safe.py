"""Exports carry no injections (issue 11): the hostile vault exported as an Anki package, opened
with the real Anki engine, and as CSV, read back with the csv module."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime

import anki.collection as anki_collection  # the dev extra installs it: a missing engine fails, never skips
import pytest

from d2lkb.config import load_config
from d2lkb.store.anki.html import clean_field, to_anki
from d2lkb.store.export import csv_cell
from d2lkb.store.kb import KnowledgeBase
from tests.hostile_vault import FORMULA_CMD, write_hostile_vault

# What must never reach a field Anki renders (its web view runs scripts).
DANGEROUS = re.compile(r"<\s*(script|iframe|frame|object|embed|style|form|svg|math|link|meta|base)\b"  # elements
                       r"|<[^>]*\son[a-z]+\s*="  # event handlers
                       r"|<[^>]*\b(href|src|action|formaction|data)\s*=\s*[\"']?\s*(javascript|vbscript|file|data):"
                       r"|<[^>]*\bstyle\s*=[^>]*url\s*\(", re.I)


@pytest.fixture
def hostile_kb(tmp_path):
    kb = KnowledgeBase(load_config(tmp_path / "kb", write_hostile_vault(tmp_path / "notes")),
                       clock=lambda: datetime.now(UTC).replace(microsecond=0))
    kb.sync()
    yield kb
    kb.close()


def test_field_sanitiser_keeps_anki_formatting_and_drops_what_runs():
    kept = ('<b>b</b> <i>i</i> <u>u</u> <s>s</s> <mark>m</mark> x<sub>2</sub> y<sup>3</sup> a<br>b '
            '<div>d</div> <span class="cloze">c</span> <code>c</code> <pre>p</pre> <img src="pic.png"> '
            '<a href="https://d2l.ai">d2l</a> \\(\\frac{a}{b}\\) \\[x^2\\] {{c1::deleted::hint}}')
    out = clean_field(kept)
    for piece in ("<b>b</b>", "<i>i</i>", "<u>u</u>", "<s>s</s>", "<mark>m</mark>", "<sub>2</sub>", "<sup>3</sup>",
                  "<br>", "<div>d</div>", '<span class="cloze">c</span>', "<code>c</code>", "<pre>p</pre>",
                  '<img src="pic.png">', 'href="https://d2l.ai"', "\\(\\frac{a}{b}\\)", "\\[x^2\\]",
                  "{{c1::deleted::hint}}"):
        assert piece in out, (piece, out)
    hostile = ('<script>alert(1)</script><img src="x" onerror="alert(2)"><iframe src="file:///etc/passwd"></iframe>'
               '<a href="javascript:alert(3)">j</a><svg onload="alert(4)"></svg><img src="file:///etc/passwd">'
               '<span style="color: red; background: url(https://t.example/x)">s</span>'
               '<object data="x.swf"></object><style>body{}</style><form action="https://x"><input></form>')
    out = clean_field(hostile)
    assert not DANGEROUS.search(out), out
    assert "alert(1)" not in out  # a script's text goes with it


def test_code_highlighting_and_tables_survive_the_sanitiser():
    code = to_anki("```python\nprint('<b>')\n```")
    assert code.startswith('<pre style="text-align:left;background:#f8f8f8"><code><span style="color:')
    assert "&lt;b&gt;" in code  # the code's text, escaped
    table = to_anki("| a | b |\n|:-|-:|\n| 1 | 2 |")
    assert '<th style="text-align:left">a</th>' in table and '<td style="text-align:right">2</td>' in table


def _open_in_anki(package, work):
    work.mkdir(parents=True, exist_ok=True)
    col = anki_collection.Collection(str(work / "collection.anki2"))
    col.import_anki_package(anki_collection.ImportAnkiPackageRequest(
        package_path=str(package), options=anki_collection.ImportAnkiPackageOptions(with_scheduling=True)))
    return col


def test_apkg_of_a_hostile_vault_opens_clean_in_anki_with_its_formatting(hostile_kb, tmp_path):
    out = tmp_path / "hostile.apkg"
    n = hostile_kb.export("apkg", out)
    assert n >= 8
    col = _open_in_anki(out, tmp_path / "anki")
    try:
        notes = [col.get_note(nid) for nid in col.find_notes("")]
        assert len(notes) >= 7
        rendered = []
        for note in notes:
            for name, value in note.items():
                if name != "Markdown":  # HTML-escaped Markdown source: text to Anki, never markup
                    assert not DANGEROUS.search(value), (name, value)
            for card in note.cards():
                rendered += [card.question(), card.answer()]
        for html in rendered:  # what Anki's web view is given, after its templates (less the note type's CSS)
            assert not DANGEROUS.search(re.sub(r"<style>.*?</style>", "", html, flags=re.S)), html

        formatting = next(n for n in notes if "Formatting" in n["Front"])
        front, back = formatting["Front"], formatting["Back"]
        assert "<strong>bold</strong>" in front and "<em>italic</em>" in front and "x<sub>2</sub>" in front
        assert "alert(1)" not in front and "<script" not in front
        assert '<img src="x">' in back and "onerror" not in back and "iframe" not in back
        assert "javascript" not in back and ">j</a>" in back  # the link's text stays, the address goes
        assert "\\(\\frac{a}{b}\\)" in back  # MathJax kept as text
        # The Markdown field is the note's own text, escaped: what `import apkg` writes back, unchanged.
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in formatting["Markdown"]

        cloze = next(n for n in notes if n.note_type()["name"] == "d2lkb Cloze")
        assert "{{c1::2x" in cloze["Text"] and "<b>bold</b>" in cloze["Text"]
        question = cloze.cards()[0].question()
        assert '<span class="cloze"' in question and "[...]" in question and "<b>bold</b>" in question
    finally:
        col.close()


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(hostile_kb, tmp_path):
    out = tmp_path / "cards.csv"
    hostile_kb.export("csv", out)
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for row in rows:
        for column, value in row.items():
            if value and value[0] in "=+-@\t\r":
                assert re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", value), (column, value)
    fronts = {r["front"] for r in rows}
    backs = {r["back"] for r in rows}
    assert "'" + FORMULA_CMD in fronts and "'@SUM(A1:A2)" in fronts
    assert "'+1+cmd" in backs and "'-2+3" in backs
    assert all(r["line"].isdigit() and r["id"].isdigit() for r in rows)  # numbers stay numbers


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"), ("+1+cmd", "'+1+cmd"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\r=1", "'\r=1"), ("- item", "'- item"), ("-", "'-"), ("-1\n=cmd", "'-1\n=cmd"),
    ("-1", "-1"), ("+2.5", "+2.5"), ("-1e3", "-1e3"), ("-.5", "-.5"), ("1-2", "1-2"), ("a=b", "a=b"), ("", ""),
    (3, 3), (None, None), (-1.5, -1.5),
])
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell
