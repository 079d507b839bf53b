"""Clean up written LaTeX so SymPy's LaTeX parser reads what the author meant.

Pure string work: no SymPy here (``d2lkb.checks.formulas`` parses the result).

- :func:`split_formula` cuts a formula into relations: ``aligned``-style rows
  (split on ``\\\\``, ``&`` dropped, a row starting with ``=`` continues the one
  before), chains ``a = b = c``, and a row's trailing ``\\textrm{...}`` label (kept as
  its name) or condition (``\\textrm{for } n \\neq 0``: kept aside, not checked).
- :func:`normalise` rewrites one side of a relation: font commands (``\\mathbf``,
  ``\\boldsymbol``), ``\\left``/``\\right``, ``\\textrm``/``\\operatorname`` names,
  ``g^2(x)`` -> ``(g(x))^{2}``, higher and written-out derivatives
  (``\\frac{d^2}{dx^2}``, ``\\frac{df}{dx}``), primes; it refuses (``LatexError``)
  what no parser would read faithfully: norms, gradients, ellipses, unknown
  commands, words that would become products of letters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from d2lkb.checks import notation
from d2lkb.checks.notation import Atom
from d2lkb.textutil import matching_brace


class LatexError(ValueError):
    """The LaTeX cannot be read faithfully; the message says why."""


@dataclass(frozen=True, slots=True)
class Relation:
    """One written relation: ``sides[0] links[0] sides[1] links[1] sides[2] ...``."""

    sides: tuple[str, ...]
    # "=" an equation, ":=" a definition (``:=``, ``\\coloneqq``, ``\\stackrel{def}{=}``, ...),
    # anything else is the relation as written (``\\leq``, ``\\approx``, ``<``): not an equation.
    links: tuple[str, ...]
    label: str | None = None  # from a ``\\textrm{...}`` label on the row
    conditions: tuple[str, ...] = ()  # e.g. "for n \\neq 0": shown, not checked
    row: int = 1  # 1-based row of an aligned block where the relation starts
    link_rows: tuple[int, ...] = ()  # the row of each link (a relation continued on later rows)


@dataclass(frozen=True, slots=True)
class Normalised:
    text: str  # LaTeX for the parser
    operators: frozenset[str]  # names written as ``\\operatorname{..}``/``\\max``...: functions, not symbols
    atoms: dict[str, Atom] = field(default_factory=dict)  # made-up symbol commands -> what they stand for
    opaque: frozenset[str] = frozenset()  # made-up operator commands (E, P, Var, norms, ...)
    envs: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = field(default_factory=dict)  # matrices, cases


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


GREEK = _words(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa varkappa lambda mu nu "
    "xi omicron pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega "
    "Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega ell"
)
# Commands SymPy's ANTLR grammar understands (LaTeX.g4), besides Greek letters.
_PARSER_COMMANDS = _words(
    "frac dfrac tfrac binom dbinom tbinom sqrt sum prod int lim to rightarrow longrightarrow Rightarrow "
    "Longrightarrow infty exp log lg ln sin cos tan csc sec cot arcsin arccos arctan arccsc arcsec arccot "
    "sinh cosh tanh arsinh arcosh artanh cdot times div partial neq leq geq le ge leqq geqq leqslant "
    "geqslant lfloor rfloor lceil rceil mathit overline"
)
_FUNCTION_WORDS = _words(
    "exp log lg ln sin cos tan csc sec cot arcsin arccos arctan arccsc arcsec arccot sinh cosh tanh "
    "arsinh arcosh artanh"
)
# Operator names the parser does not know; they become functions named after them.
_OPERATOR_COMMANDS = _words("max min sgn det arg argmax argmin tr Pr gcd deg dim rank diag")
_FONT_COMMANDS = "mathbf|boldsymbol|bm|pmb|mathbb|mathcal|mathscr|mathfrak|vec|mathsf|mathnormal|mathbfit"
_TEXT_COMMANDS = "textrm|text|textit|textbf|textsf|textnormal|mbox|mathrm|operatorname\\*?|mathtt"
_LABEL_COMMANDS = _words("textrm text textit textbf textsf textnormal mbox")
_ACCENTS = "hat|bar|tilde|dot|ddot|check|breve|widehat|widetilde|acute|grave"
_ALIGN_ENVS = _words(
    "aligned align align* alignat alignat* split gathered gather gather* eqnarray eqnarray* multline "
    "multline* equation equation* flalign flalign* aligned*"
)
_CONDITION_WORDS = (
    "for",
    "if",
    "where",
    "when",
    "whenever",
    "with",
    "provided",
    "unless",
    "as",
    "assuming",
    "since",
    "because",
    "given",
    "otherwise",
    "iff",
    "s.t",
    "such",
    "and",
    "or",
    "on",
    "all",
)
# Words of 3 letters that are surely not a product of three symbols.
_WORDS3 = _words(
    "sgn max min det arg exp log sin cos tan sec csc cot var cov dim ker deg gcd lcm mod sup inf lim "
    "abs std avg sum div"
)
_DEFINITION_COMMANDS = _words("coloneqq eqqcolon triangleq equiv doteq coloneq defeq")
_OTHER_RELATION_COMMANDS = _words(
    "leq geq le ge neq ne leqq geqq leqslant geqslant approx sim simeq cong propto to rightarrow "
    "longrightarrow mapsto Rightarrow Longrightarrow implies iff Leftrightarrow in notin subset subseteq "
    "leftarrow gets longleftarrow Leftarrow "
    "supset supseteq ll gg lesssim gtrsim asymp"
)
_ELLIPSES = _words("ldots cdots dots vdots ddots dotsc dotsb dotsm")


# ---------------------------------------------------------------------------------------------
# Scanning helpers


def _group_end(s: str, i: int) -> int:
    """Index just past the ``{...}`` group that starts at ``s[i] == '{'``."""
    end = matching_brace(s, i)
    if end < 0:
        raise LatexError("unbalanced braces")
    return end + 1


def _argument(s: str, i: int) -> tuple[str, int]:
    """The argument of a command at ``s[i:]`` (a ``{group}``, a ``\\command`` or one character)."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        raise LatexError("a command is missing its argument")
    if s[i] == "{":
        end = _group_end(s, i)
        return s[i + 1 : end - 1], end
    if s[i] == "\\":
        m = re.match(r"\\([A-Za-z]+|.)", s[i:])
        assert m is not None
        return m.group(0), i + m.end()
    return s[i], i + 1


def _check_braces(s: str) -> None:
    depth = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                raise LatexError("unbalanced braces: '}' without '{'")
        i += 1
    if depth:
        raise LatexError("unbalanced braces: '{' without '}'")


@dataclass(frozen=True, slots=True)
class _Tok:
    start: int
    end: int
    text: str
    depth: int  # brace depth plus depth inside environments that are not aligned-like


def _tokens(s: str) -> list[_Tok]:
    toks: list[_Tok] = []
    depth = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            m = re.match(r"\\(begin|end)\s*\{([^{}]*)\}", s[i:])
            if m:
                env = m.group(2).strip()
                if env not in _ALIGN_ENVS:
                    if m.group(1) == "end":
                        depth -= 1
                    toks.append(_Tok(i, i + m.end(), m.group(0), depth))
                    if m.group(1) == "begin":
                        depth += 1
                else:
                    toks.append(_Tok(i, i + m.end(), m.group(0), depth))
                i += m.end()
                continue
            m = re.match(r"\\([A-Za-z]+|.?)", s[i:])
            assert m is not None
            toks.append(_Tok(i, i + m.end(), m.group(0), depth))
            i += m.end()
            continue
        if c == "}":
            depth -= 1
        toks.append(_Tok(i, i + 1, c, depth))
        if c == "{":
            depth += 1
        i += 1
    return toks


def _split_top(s: str, sep: str) -> list[str]:
    """Split at depth-0 tokens equal to ``sep``."""
    parts, last = [], 0
    for t in _tokens(s):
        if t.depth == 0 and t.text == sep:
            parts.append(s[last : t.start])
            last = t.end
    parts.append(s[last:])
    return parts


# ---------------------------------------------------------------------------------------------
# Rows, labels and relations


def split_formula(latex: str) -> tuple[Relation, ...]:
    """Cut a formula into its relations (see the module docstring).

    Raises ``LatexError`` for unbalanced braces. A formula without any relation
    gives relations with a single side and no links.
    """
    s = latex.strip()
    for open_, close in (("$$", "$$"), ("\\[", "\\]"), ("$", "$")):
        if s.startswith(open_) and s.endswith(close) and len(s) > len(open_) + len(close):
            s = s[len(open_) : -len(close)].strip()
            break
    _check_braces(s)
    s = re.sub(r"\\(label|tag\*?)\s*\{[^{}]*\}", " ", s)
    s = re.sub(r"\\(nonumber|notag)(?![A-Za-z])", " ", s)
    s = re.sub(
        r"\\(begin|end)\s*\{([^{}]*)\}", lambda m: " " if m.group(2).strip() in _ALIGN_ENVS else m.group(0), s
    )
    rows = [r for r in _split_rows(s)]
    relations: list[Relation] = []
    current: tuple[list[str], list[str], list[str], list[str], int, list[int]] | None = None
    for number, raw in enumerate(rows, start=1):
        row = _drop_ampersands(raw)
        row, label, conditions = _split_label(row)
        row = _strip_punctuation(row)
        if not row.strip():
            if (label or conditions) and current is not None:
                if label:
                    current[2].append(label)
                current[3].extend(conditions)
            continue
        for piece in _split_statements(row):
            sides, links = _split_relations(piece)
            if not sides[0].strip() and links:
                if current is None:
                    raise LatexError(f"row {number} starts with '{links[0]}' but nothing comes before it")
                current[0].extend(sides[1:])
                current[1].extend(links)
                current[5].extend([number] * len(links))
            elif not links and current is not None and re.match(r"(?:\s|\\q?quad|\\[,;:!])*(?:[-+]|\\cdot|\\times|\\pm)", piece):
                # `&\quad + c`: the expression of the row before goes on
                current[0][-1] = current[0][-1] + " " + piece
            else:
                if current is not None:
                    relations.append(_relation(current))
                current = ([*sides], [*links], [], [], number, [number] * len(links))
            if label:
                current[2].append(label)
                label = None
            current[3].extend(conditions)
            conditions = ()
    if current is not None:
        relations.append(_relation(current))
    return tuple(relations)


def _relation(parts: tuple[list[str], list[str], list[str], list[str], int, list[int]]) -> Relation:
    sides, links, labels, conditions, row, link_rows = parts
    return Relation(
        sides=tuple(x.strip() for x in sides),
        links=tuple(links),
        label=labels[0] if labels else None,
        conditions=tuple(conditions),
        row=row,
        link_rows=tuple(link_rows),
    )


def _split_statements(row: str) -> list[str]:
    """``h(x) = f(x) g(x), \\quad h'(x) = ...``: two statements on one row."""
    pieces = [p for p in re.split(r"[,;]\s*\\q?quad(?![A-Za-z])", row) if p.strip()]
    try:
        for piece in pieces:
            _check_braces(piece)
    except LatexError:
        return [row]
    return [_strip_punctuation(p) for p in pieces] or [row]


def _split_rows(s: str) -> list[str]:
    rows, last = [], 0
    for t in _tokens(s):
        if t.depth == 0 and t.text in ("\\\\", "\\cr"):
            rows.append(s[last : t.start])
            last = t.end
    rows.append(s[last:])
    # `\\[2pt]` spacing after a row break
    rows = [re.sub(r"^\s*\[[0-9.]+\s*[a-z]{2}\]", "", r) for r in rows]
    return [r for r in rows if r.strip()]


def _drop_ampersands(row: str) -> str:
    out, last = [], 0
    for t in _tokens(row):
        if t.depth == 0 and t.text == "&":
            out.append(row[last : t.start])
            out.append(" ")
            last = t.end
    out.append(row[last:])
    return "".join(out)


def _text_content(row: str, tok: _Tok) -> tuple[str, int]:
    content, end = _argument(row, tok.end)
    return content, end


def _plain_text(s: str) -> str:
    """A label or condition as readable text (text commands unwrapped, spacing collapsed)."""
    s = re.sub(r"\\(?:" + _TEXT_COMMANDS + r")\s*\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\(?:quad|qquad|,|;|:|!|\s)", " ", s)
    s = s.replace("~", " ")
    return re.sub(r"\s+", " ", s).strip(" ,.;:")


def _split_label(row: str) -> tuple[str, str | None, tuple[str, ...]]:
    """Split off a leading/trailing text label or a trailing condition from a row."""
    toks = _tokens(row)
    text_toks = [
        (k, t)
        for k, t in enumerate(toks)
        if t.depth == 0 and t.text[1:] in _LABEL_COMMANDS and not _after_script(toks, k)
        and not _applied_text(row, t)
    ]
    if not text_toks:
        return row, None, ()
    k, tok = text_toks[0]
    content, end = _text_content(row, tok)
    before = row[: tok.start]
    if not before.strip() and re.match(r"\s*(?:=|\\approx|:=)", row[end:]):
        # `\textrm{statistical significance} = ...`: the text names the left side
        return row, None, ()
    if not before.strip() and re.fullmatch(r"\s*[A-Za-z]+\s*", content) and re.match(r"\s*[\[(]", row[end:]):
        # `\textrm{Var}[X] = ...`: an operator applied, not a label
        return row, None, ()
    if not before.strip():
        # leading label: `\text{Product rule:} (fg)' = ...`
        label = _plain_text(content)
        return row[end:], (label or None), ()
    tail = row[tok.start :]
    words = _plain_text(content)
    rest = re.sub(r"\\(?:" + _TEXT_COMMANDS + r")\s*\{[^{}]*\}", " ", tail)
    rest = re.sub(r"\\(?:quad|qquad|,|;|:|!)|[\s,.;:()~]", "", rest)
    first_word = re.split(r"[\s,]+", words.lower().strip("( "), maxsplit=1)[0] if words else ""
    if not rest and words and first_word.rstrip(".") not in _CONDITION_WORDS:
        return before, words.strip("() "), ()
    return before, None, (_plain_text(tail),)


def _applied_text(row: str, tok: _Tok) -> bool:
    """``\\textrm{Var}(X)``: a word applied to an argument is an operator, not a label."""
    try:
        content, end = _argument(row, tok.end)
    except LatexError:
        return False
    return bool(re.fullmatch(r"\s*[A-Za-z]+\s*", content)) and bool(
        re.match(r"\s*(?:\\left\s*)?[\[(]", row[end:])
    )


def _after_script(toks: list[_Tok], k: int) -> bool:
    j = k - 1
    while j >= 0 and toks[j].text.isspace():
        j -= 1
    return j >= 0 and toks[j].text in ("_", "^")


def _strip_punctuation(row: str) -> str:
    prev = None
    while prev != row:
        prev = row
        row = row.rstrip()
        row = re.sub(r"(\\(?:quad|qquad|,|;|:|!)|[.,;])$", "", row)
    return row


def _split_relations(row: str) -> tuple[list[str], list[str]]:
    toks = _tokens(row)
    sides: list[str] = []
    links: list[str] = []
    last = 0
    k = 0
    parens = 0  # `P(X = x)`: an `=` inside parentheses is not a relation of the row
    while k < len(toks):
        t = toks[k]
        if t.depth != 0:
            k += 1
            continue
        if t.text in ("(", "["):
            parens += 1
        elif t.text in (")", "]"):
            parens = max(parens - 1, 0)
        if parens:
            k += 1
            continue
        link: str | None = None
        start, end = t.start, t.end
        name = t.text[1:] if t.text.startswith("\\") else None
        if t.text == "=":
            prev = row[:start].rstrip()[-1:] if row[:start].strip() else ""
            nxt = row[end:].lstrip()[:1]
            if prev and (prev in "<>" or prev == "!" and row[start - 1 : start] == "!"):
                # `<=`, `>=`, `!=` written with ASCII: not an equation (`3! = 6` is a factorial)
                start = row[:start].rstrip().__len__() - 1
                link = prev + "="
            elif prev == ":":  # `:=`
                start = len(row[:start].rstrip()) - 1
                link = ":="
            elif nxt == ":":
                end = row.index(":", end) + 1
                link = ":="
            else:
                link = "="
        elif name in ("stackrel", "overset") and k + 1 < len(toks):
            _, after_first = _argument(row, t.end)
            second, after_second = _argument(row, after_first)
            if second.strip() == "=":
                link, end = ":=", after_second
        elif name in _DEFINITION_COMMANDS:
            link = ":="
        elif name in _OTHER_RELATION_COMMANDS or t.text in ("<", ">"):
            link = t.text
        if link is None:
            k += 1
            continue
        sides.append(row[last:start])
        links.append(link)
        last = end
        while k < len(toks) and toks[k].start < end:
            k += 1
    sides.append(row[last:])
    return sides, links


# ---------------------------------------------------------------------------------------------
# Definitions the parser cannot carry


def definition_shape(side: str) -> str | None:
    """``"norm"`` for a side that is one norm ``\\|x\\|_2`` (optionally with a power),
    ``"gradient"`` for ``\\nabla_x f(x)``; None otherwise.

    SymPy's LaTeX parser reads neither, so a relation whose left side has one of
    these shapes can only be a definition (see ``d2lkb.checks.formulas``).
    """
    s = re.sub(r"\\(left|right|big|Big|bigg|Bigg)(?![A-Za-z])", "", side).strip()
    if re.match(r"\\nabla(?![A-Za-z])", s):
        return "gradient"
    m = re.match(r"\\\||\\lVert(?![A-Za-z])|\\Vert(?![A-Za-z])|\|\|", s)
    if not m:
        return None
    close = {"\\lVert": r"\\rVert(?![A-Za-z])", "\\Vert": r"\\Vert(?![A-Za-z])"}.get(
        m.group(0), re.escape(m.group(0))
    )
    c = re.compile(close).search(s, m.end())
    if not c or not s[m.end() : c.start()].strip():
        return None
    rest = s[c.end() :]
    try:
        for script in ("_", "^"):
            rest = rest.lstrip()
            if rest.startswith(script):
                argument, end = _argument(rest, 1)
                if argument.startswith("\\") and rest[end:].lstrip().startswith("{"):  # _\textrm{F}
                    _, end = _argument(rest, end)
                rest = rest[end:]
    except LatexError:
        return None
    return "norm" if not rest.strip() else None


# ---------------------------------------------------------------------------------------------
# Normalising one side


def function_letters(latex: str) -> frozenset[str]:
    """Letters written as functions, ``f(x)``/``f'(x)``/``g^2(x)``, and never as a plain variable.

    ``n(n+1)`` or ``a(b+c) = ab + ac`` use the letter as a variable elsewhere, so
    there the parenthesis is a product.
    """
    s = re.sub(r"\\(?:begin|end|" + _TEXT_COMMANDS + r")\s*\{[^{}]*\}", " ", latex)
    # the variable of a derivative's numerator (`\frac{df}{dx}`) says nothing either way
    s = re.sub(r"\{\s*(?:d|\\partial)\s*(?:\^\s*\{?\s*\d+\s*\}?)?\s*[A-Za-z]\s*\}", " ", s)
    # Greek letters too: \sigma(z) is a function, \epsilon(a + b) next to a plain \epsilon a product
    greek_applied: set[str] = set()
    greek_plain: set[str] = set()
    for m in re.finditer(r"\\([A-Za-z]+)", s):
        if m.group(1) not in GREEK:
            continue
        rest = s[m.end() :]
        if re.match(r"\s*_", rest):
            continue
        if re.match(r"\s*(?:\\left)?\s*('+|\^\s*(\{[^{}]*\}|[0-9]))?\s*\(", rest):
            greek_applied.add("\\" + m.group(1))
        else:
            greek_plain.add("\\" + m.group(1))
    s = re.sub(r"\\[A-Za-z]+", " ", s)
    s = re.sub(r"\\.", " ", s)
    applied: set[str] = set()
    plain: set[str] = set()
    for m in re.finditer(r"[A-Za-z]", s):
        letter = m.group(0)
        rest = s[m.end() :]
        if re.match(r"\s*_", rest):
            continue  # x_0 is another symbol
        if re.match(r"\s*('+|\^\s*(\{[^{}]*\}|[0-9]))?\s*\(", rest):
            applied.add(letter)
        else:
            plain.add(letter)
    # "=\\epsilon": a Greek letter the formula also writes as a plain value (see _products_with_parentheses)
    values = {"=" + g for g in greek_applied & greek_plain}
    return frozenset((applied - plain) | (greek_applied - greek_plain) | values)


def normalise(side: str, functions: frozenset[str] = frozenset()) -> Normalised:
    """LaTeX of one side -> text for SymPy's parser (see the module docstring).

    ``functions`` are the letters the formula uses as functions (:func:`function_letters`);
    any other letter followed by ``(`` is a product. ML notation (bold matrices, indices,
    expectations, ...) is read as :mod:`d2lkb.checks.notation` describes.
    """
    s = side.strip()
    if not s:
        raise LatexError("a side of the relation is empty")
    _check_braces(s)
    operators: set[str] = set()
    opaque: set[str] = set()
    atoms: dict[str, Atom] = {}
    envs: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {}
    m = re.search(r"\\(" + "|".join(sorted(_ELLIPSES)) + r")(?![A-Za-z])", s)
    if m:
        raise LatexError(f"an ellipsis (\\{m.group(1)}) cannot be checked")
    if re.search(r"\\(?:mathcal\s*\{\s*O\s*\}|mathcal\s+O)\s*\(|(?<![\\A-Za-z])[Oo]\s*\(", s):
        raise LatexError("an asymptotic term O(...) is not an exact value")
    try:
        s = _environments(s, envs)
        s = re.sub(r"\\(displaystyle|textstyle|scriptstyle|limits|nolimits)(?![A-Za-z])", " ", s)
        s = re.sub(r"\\(quad|qquad|,|;|:|!|\s)", " ", s)
        s = re.sub(r"(?<!\\)~", " ", s)
        s = re.sub(r"\\(left|right)\s*\.", " ", s)
        s = re.sub(
            r"\\(left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![A-Za-z])", " ", s
        )
        s = re.sub(r"\\[lr]Vert(?![A-Za-z])|\\Vert(?![A-Za-z])|\|\|", r"\\|", s)
        s = re.sub(r"\\[lr]?vert(?![A-Za-z])|\\mid(?![A-Za-z])", "|", s)
        s = re.sub(r"\\lbrack(?![A-Za-z])", "[", s)
        s = re.sub(r"\\rbrack(?![A-Za-z])", "]", s)
        s = re.sub(r"\\ast(?![A-Za-z])", "*", s)
        s = re.sub(r"\^\s*\{\s*((?:\\prime\s*)+)\}", lambda m: "'" * m.group(1).count("prime"), s)
        s = re.sub(r"\^\s*\\prime(?![A-Za-z])", "'", s)
        s = _norms(s, opaque)
        s = _gradients(s, opaque)
        s = notation.extrema(s, opaque)
        s = notation.operators(s, opaque)
        s = notation.conditionals(s, opaque)
        s = notation.functionals(s, opaque)
        s = re.sub(r"\\partial\s*_\s*(\{[^{}]*\}|[A-Za-z])", lambda m: f"\\frac{{\\partial}}{{\\partial {m.group(1).strip('{}')}}} ", s)
        s = notation.sums_over_sets(s)
        s = notation.sums_without_limits(s)
        bold = bool(re.search(r"\\(mathbf|boldsymbol|bm|pmb|mathbfit)(?![A-Za-z])", s)) or bool(envs)
        s = notation.transposes(s, bold)
        s = notation.atomize(s, atoms)
    except notation.NotationError as exc:
        raise LatexError(str(exc)) from None
    if re.search(r"\\(" + _FONT_COMMANDS + r")(?![A-Za-z])", s):
        m = re.search(r"\\(" + _FONT_COMMANDS + r")(?![A-Za-z])", s)
        assert m is not None
        raise LatexError(f"\\{m.group(1)} over more than one symbol is not supported")
    s = _accents(s)
    s = _unwrap(s, _TEXT_COMMANDS, lambda content, script: _text_in_math(content, script, operators))
    for m in re.finditer(r"\\([A-Za-z]+)", s):
        if m.group(1) in _OPERATOR_COMMANDS:
            operators.add(m.group(1))
    for op in operators:
        if re.search(r"\\" + op + r"\s*_", s):
            raise LatexError(f"\\{op} with a subscript is not supported")
    known: set[str] = set(functions)  # \frac{dy}{dx} makes y a function: the helpers below learn it
    known |= {a.name for a in atoms.values() if a.function}
    s = _derivative_fractions(s, known)
    s = _powers_of_functions(s, known)
    s = _euler_derivatives(s, known)
    s = _products_with_parentheses(s, known)
    # a vector or matrix written before a parenthesis multiplies it: \mathbf{X}(\mathbf{w} - \mathbf{y})
    for atom in atoms.values():
        if not atom.function:
            s = re.sub(r"\\" + atom.name + r"(?![A-Za-z])\s*\(", f"\\\\{atom.name} \\\\cdot (", s)
    made_up = set(atoms) | set(opaque) | set(envs) | {"Ztop"}
    for m in re.finditer(r"\\([A-Za-z]+)", s):
        name = m.group(1)
        if name in made_up or name.startswith("ZzN"):
            continue
        if name not in _PARSER_COMMANDS and name not in GREEK and name not in operators:
            raise LatexError(f"unknown LaTeX command \\{name}")
    m = re.search(r"\\[^A-Za-z{}]", s)
    if m:
        raise LatexError(f"unsupported LaTeX '{m.group(0)}'")
    _check_words(s)
    return Normalised(
        re.sub(r"\s+", " ", s).strip(), frozenset(operators), atoms, frozenset(opaque), envs
    )


_MATRIX_ENVS = ("bmatrix", "pmatrix", "Bmatrix", "matrix", "vmatrix", "smallmatrix", "cases", "array")


def _environments(s: str, envs: dict[str, tuple[str, tuple[tuple[str, ...], ...]]]) -> str:
    """Matrices and ``cases`` -> ``\\ZzEnv...`` placeholders with their cells kept in ``envs``."""
    for _ in range(100):
        m = None
        for candidate in re.finditer(r"\\begin\s*\{([^{}]*)\}", s):
            m = candidate  # the last opening: its environment holds no other
        if m is None:
            return s
        env = m.group(1).strip()
        if env not in _MATRIX_ENVS:
            raise LatexError(f"the {env} environment is not supported")
        end = re.compile(r"\\end\s*\{\s*" + re.escape(env) + r"\s*\}").search(s, m.end())
        if end is None:
            raise LatexError(f"\\begin{{{env}}} without \\end")
        body = s[m.end() : end.start()]
        if env == "array":
            spec = _group_end(body, body.index("{")) if body.lstrip().startswith("{") else 0
            body = body[spec:]
        rows = tuple(
            tuple(cell.strip() for cell in _split_top(row, "&"))
            for row in _split_rows(body)
            if row.strip()
        )
        if not rows:
            raise LatexError(f"an empty {env}")
        kind = "cases" if env == "cases" else ("det" if env == "vmatrix" else "matrix")
        name = notation.MARK + "Env" + "".join(chr(ord("a") + int(d)) for d in str(len(envs)))
        envs[name] = (kind, rows)
        s = s[: m.start()] + f" \\{name} " + s[end.end() :]
    raise LatexError("too many nested environments")


def _norms(s: str, opaque: set[str]) -> str:
    """``\\|x\\|_p`` -> an opaque norm operator (its properties are not modelled)."""
    for _ in range(50):
        start = s.find("\\|")
        if start < 0:
            return s
        close = s.find("\\|", start + 2)
        if close < 0:
            # one bar: a separator, as in D(P \| Q)
            s = s[:start] + " | " + s[start + 2 :]
            continue
        inner = s[start + 2 : close]
        rest = close + 2
        sub = ""
        m = re.match(r"\s*_\s*(\{[^{}]*\}|[A-Za-z0-9]|\\[A-Za-z]+)", s[rest:])
        if m:
            sub = m.group(1).strip("{}")
            rest += m.end()
        command = notation.op_name("Norm", re.sub(r"\s+", "", sub))
        opaque.add(command)
        s = s[:start] + f" \\{command}({inner}) " + s[rest:]
    raise LatexError("too many norms")


def _gradients(s: str, opaque: set[str]) -> str:
    """``\\nabla_{\\mathbf{w}} L`` -> an opaque gradient operator of the rest of the side."""
    m = re.search(r"\\nabla(?![A-Za-z])", s)
    if not m:
        return s
    rest = s[m.end() :]
    sub = ""
    sm = re.match(r"\s*_\s*", rest)
    if sm:
        try:
            sub, end = _argument(rest, sm.end())
        except LatexError:
            raise LatexError("\\nabla with a subscript that cannot be read") from None
        rest = rest[end:]
    if not rest.strip():
        raise LatexError("\\nabla without an argument")
    command = notation.op_name("Grad", re.sub(r"\s+", "", sub))
    opaque.add(command)
    return s[: m.start()] + f" \\{command}({_gradients(rest, opaque)}) "


def _unwrap(s: str, commands: str, replace) -> str:
    """Replace ``\\cmd{content}`` (or ``\\cmd x``) by ``replace(content, in_script)``, innermost last."""
    pattern = re.compile(r"\\(?:" + commands + r")(?![A-Za-z])")
    for _ in range(100):
        m = pattern.search(s)
        if not m:
            return s
        content, end = _argument(s, m.end())
        script = bool(re.search(r"[_^]\s*$", s[: m.start()]))
        s = s[: m.start()] + replace(content.strip(), script) + s[end:]
    raise LatexError("too many nested font commands")


def _as_group(content: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9]|\\[A-Za-z]+", content):
        return " " + content + " "
    return "{" + content + "}"


def _text_in_math(content: str, script: bool, operators: set[str]) -> str:
    if not content:
        return " "
    if re.fullmatch(r"[A-Za-z0-9]", content):
        return "{" + content + "}" if script else " " + content + " "
    if re.fullmatch(r"[A-Za-z]+", content):
        if script:
            return "{" + content + "}"
        if content in _FUNCTION_WORDS:
            return "\\" + content + " "
        operators.add(content)
        return "\\" + content + " "
    raise LatexError(f"text '{content}' inside the formula")


def _accents(s: str) -> str:
    pattern = re.compile(r"\\(" + _ACCENTS + r")(?![A-Za-z])")
    for _ in range(100):
        m = pattern.search(s)
        if not m:
            return s
        content, end = _argument(s, m.end())
        content = content.strip()
        if not re.fullmatch(r"[A-Za-z]|\\[A-Za-z]+", content):
            raise LatexError(f"\\{m.group(1)} over '{content}' is not supported")
        if re.match(r"\s*_", s[end:]):
            raise LatexError(f"\\{m.group(1)} on a subscripted symbol is not supported")
        # a symbol of its own: \hat{y} -> y_{hat}
        s = s[: m.start()] + f" {content}_{{\\mathit{{{m.group(1)}}}}} " + s[end:]
    raise LatexError("too many accents")


_D = r"(?:d|\\partial(?![A-Za-z]))"
_POWER = r"(?:\^\s*(?:\{\s*(\d+)\s*\}|(\d)))?"


def _derivative_fractions(s: str, functions: set[str]) -> str:
    """``\\frac{d^2 f}{dx^2}``/``\\frac{df}{dx}``/``\\frac{\\partial^2}{\\partial x \\partial y}`` -> nested ``\\frac{d}{dx}``."""
    out, i = [], 0
    for m in re.finditer(r"\\[dt]?frac(?![A-Za-z])", s):
        if m.start() < i:
            continue
        try:
            upper, after_upper = _argument(s, m.end())
            lower, after_lower = _argument(s, after_upper)
        except LatexError:
            continue
        top = re.fullmatch(r"\s*(" + _D + r")\s*" + _POWER + r"\s*(.*?)\s*", upper, re.S)
        if not top:
            continue
        op = top.group(1)
        order = int(top.group(2) or top.group(3) or 1)
        body = top.group(4)
        var_pattern = r"\s*" + re.escape(op) + r"\s*([A-Za-z]|\\[A-Za-z]+)\s*" + _POWER
        if not re.fullmatch(r"(?:" + var_pattern + r")+\s*", lower):
            continue
        variables: list[str] = []
        for vm in re.finditer(var_pattern, lower):
            variables += [vm.group(1)] * int(vm.group(2) or vm.group(3) or 1)
        if len(variables) != order:
            raise LatexError(f"derivative \\frac{{{upper}}}{{{lower}}}: the orders do not match")
        if order == 1 and not body and s[m.start() : m.end()] == "\\frac":
            nxt = re.match(r"\s*([A-Za-z])(?![A-Za-z(_'^])", s[after_lower:])
            if nxt and nxt.group(1) != variables[0] and (nxt.group(1) in functions or nxt.group(1) in "fghuvyFG"):
                # \frac{d}{dx} f: the derivative of the function f
                functions.add(nxt.group(1))
                out.append(s[i:after_lower])
                out.append(f" {nxt.group(1)}({variables[0]}) ")
                i = after_lower + nxt.end()
            continue  # the parser reads \frac{d}{dx} itself
        ops = " ".join(f"\\frac{{{op}}}{{{op} {v}}}" for v in variables)
        applied = re.match(r"\s*\(", s[after_lower:])
        if applied and re.fullmatch(r"[A-Za-z]", body) and len(set(variables)) == 1 and order <= 3:
            # \frac{dF}{dx}(y): the derivative of F at y, which is F'(y)
            functions.add(body)
            out.append(s[i : m.start()])
            out.append(f" {body}{chr(39) * order}")
            i = after_lower
            continue
        if re.fullmatch(r"[A-Za-z]|\\[A-Za-z]+", body):
            # \frac{dy}{dx}: y is a function of x, not a constant
            functions.add(body)
            body += "(" + ", ".join(dict.fromkeys(variables)) + ")"
        text = f"{{{ops} {{{body}}}}}" if body else ops
        out.append(s[i : m.start()])
        out.append(" " + text + " ")
        i = after_lower
    out.append(s[i:])
    return "".join(out)


def _powers_of_functions(s: str, functions: set[str]) -> str:
    """``g^2(x)`` -> ``(g(x))^{2}`` for letters used as functions."""
    pattern = re.compile(r"(?<![\\A-Za-z])([A-Za-z])\s*\^\s*(\{[^{}]*\}|[0-9A-Za-z])\s*\(")
    for _ in range(100):
        m = next((m for m in pattern.finditer(s) if m.group(1) in functions), None)
        if m is None:
            return s
        close = _paren_end(s, m.end() - 1)
        args = s[m.end() : close - 1]
        s = s[: m.start()] + f"({m.group(1)}({args}))^{{{m.group(2).strip('{}')}}}" + s[close:]
    return s


def _euler_derivatives(s: str, functions: set[str]) -> str:
    """Euler's notation ``Df(x)``/``D_x f(x)`` -> ``\\frac{d}{dx} f(x)`` for letters used as functions."""

    def fix(m: re.Match[str]) -> str:
        if m.group(2) not in functions:
            return m.group(0)
        return f"\\frac{{d}}{{d{m.group(1) or m.group(3)}}} {m.group(2)}({m.group(3)})"

    pattern = r"(?<![\\A-Za-z])D(?:_\s*\{?\s*([A-Za-z])\s*\}?)?\s*([A-Za-z])\s*\(\s*([A-Za-z])\s*\)"
    return re.sub(pattern, fix, s)


def _paren_end(s: str, i: int) -> int:
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    raise LatexError("unbalanced parentheses")


def _tuple_follows(s: str, i: int) -> bool:
    """Does the parenthesis at ``s[i]`` hold a comma-separated list?"""
    end = notation._bracket_end(s, i)
    return end > 0 and notation._top_level_split(s[i + 1 : end - 1], (",",))[1] is not None


def _products_with_parentheses(s: str, functions: set[str]) -> str:
    """``n(n+1)`` -> ``n \\cdot (n+1)`` when ``n`` is a variable, not a function."""

    def fix(m: re.Match[str]) -> str:
        if m.group(1) in functions or _tuple_follows(s, m.end() - 1):
            return m.group(0)  # u(a, b): an argument list makes it a function, never a product
        return m.group(1) + " \\cdot ("

    s = re.sub(r"(?<![\\A-Za-z_^])(?<![_^] )([A-Za-z])(?![A-Za-z'])\s*\(", fix, s)

    def fix_greek(m: re.Match[str]) -> str:
        name = "\\" + m.group(1)
        if m.group(1) not in GREEK or name in functions or "=" + name not in functions:
            return m.group(0)
        return name + " \\cdot ("

    return re.sub(r"\\([A-Za-z]+)(?![A-Za-z])\s*\(", fix_greek, s)


def _check_words(s: str) -> None:
    bare = re.sub(r"\\[A-Za-z]+", " ", s)
    bare = re.sub(r"_\s*\{[^{}]*\}|_\s*[A-Za-z0-9]", " ", bare)
    for m in re.finditer(r"[A-Za-z]{3,}", bare):
        word = m.group(0)
        if len(word) >= 4 or word.lower() in _WORDS3:
            product = "*".join(word)
            raise LatexError(f"'{word}' would be read as the product {product}")
