"""ML notation with its meaning, as text for SymPy's LaTeX parser (pure string work, no SymPy).

The book writes ``\\mathbf{X}`` for a matrix, ``\\hat{y}_i`` for one symbol,
``x^{(i)}`` for the i-th example, ``E[X]`` for an expectation and ``P(A \\mid B)``
for a conditional probability. SymPy's parser knows none of that, so before parsing:

- every *decorated atom* (bold, accented, calligraphic, subscripted, with an index
  superscript ``^{(i)}``, a star ``^*`` or a prime on a variable) becomes one made-up
  command ``\\Zz...`` that the parser reads as one symbol; :class:`Atom` remembers what
  it was (``kind``: scalar, vector, matrix, identity, zero) and its indices, so that
  the checker can make bold capitals non-commutative matrices and ``x_i`` under
  ``\\sum_i`` a term that depends on i;
- ``^\\top`` becomes a power by the marker ``\\Ztop`` (a transpose for the checker);
- expectations, variances, covariances and probabilities become *opaque operators*
  (``\\ZopE(...)``, ``\\ZopP(...)``; a condition ``|``/``\\mid`` is an argument
  separator of a distinct operator), ``\\max``/``\\argmin`` with a subscript an opaque
  operator of the subscript and the rest of the side; a ``\\sum_i`` without limits
  runs from 1 to a made-up integer bound.

The checker may *verify* with opaque operators (an identity that holds for any
function holds for them) but never refutes with them: their properties are not modelled.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from d2lkb.textutil import matching_brace

_GREEK_LOWER = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa varkappa lambda mu nu "
    "xi omicron pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega ell"
)
GREEK_LOWER = frozenset(_GREEK_LOWER.split())
GREEK_UPPER = frozenset(["Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"])
_BOLD = "mathbf|boldsymbol|bm|pmb|mathbfit|vec"
_SCRIPT_FONTS = "mathcal|mathscr|mathfrak|mathsf|mathbb|mathrm|mathit|mathnormal"
_FONT_NAMES = frozenset((_BOLD + "|" + _SCRIPT_FONTS + "|textrm|text|operatorname").split("|"))
_ACCENT = "hat|bar|tilde|widehat|widetilde|dot|ddot|check|breve|overline|acute|grave|mathring"
# Letters whose ``X(...)``/``X[...]`` are probabilities or expectations in ML texts.
_PROB_LETTERS = {"P": "P", "p": "p", "q": "q"}
_OPERATOR_WORDS = {"E": "E", "Var": "Var", "Cov": "Cov", "var": "Var", "cov": "Cov", "Pr": "P", "Corr": "Corr"}
MARK = "Zz"  # made-up commands start with \Zz (atoms) or \Zop (operators); \Ztop is the transpose


class NotationError(ValueError):
    """The notation cannot be read faithfully."""


@dataclass(frozen=True, slots=True)
class Atom:
    name: str  # the made-up command without the backslash: "Zzqkfh..."
    latex: str  # as written
    kind: str  # "scalar" | "vector" | "matrix" | "identity" | "zero"
    base: str  # the letter or Greek name
    indices: tuple[str, ...]  # subscript parts and ^{(i)} parts, as written
    function: bool = False  # written as applied: \hat{f}(x)


def _code(text: str) -> str:
    digest = hashlib.blake2b(text.encode(), digest_size=6).digest()
    return MARK + "".join(chr(ord("a") + b % 26) for b in digest)


def op_name(op: str, text: str = "") -> str:
    """A made-up operator command name: ``ZopE``, ``ZopPcond``; ``text`` (a subscript) makes it distinct."""
    suffix = "".join(chr(ord("a") + b % 26) for b in hashlib.blake2b(text.encode(), digest_size=3).digest())
    return "Zop" + op + (suffix if text else "")


def _group(s: str, i: int) -> tuple[str, int] | None:
    """``{...}`` at s[i] (after spaces) or a single token: (content, end)."""
    j = i
    while j < len(s) and s[j] == " ":
        j += 1
    if j >= len(s):
        return None
    if s[j] == "{":
        end = matching_brace(s, j)
        if end < 0:
            return None
        return s[j + 1 : end], end + 1
    if s[j] == "\\":
        m = re.match(r"\\[A-Za-z]+|\\.", s[j:])
        if not m:
            return None
        end = j + m.end()
        if m.group(0)[1:] in _FONT_NAMES and end < len(s) and s[end] == "{":  # _\mathcal{B}
            close = matching_brace(s, end)
            if close < 0:
                return None
            return s[j : close + 1], close + 1
        return m.group(0), end
    if re.match(r"[A-Za-z0-9*]", s[j]):
        return s[j], j + 1
    return None


_BASE = re.compile(
    r"\\(?P<bold>" + _BOLD + r")(?![A-Za-z])"
    r"|\\(?P<font>" + _SCRIPT_FONTS + r")(?![A-Za-z])"
    r"|\\(?P<accent>" + _ACCENT + r")(?![A-Za-z])"
    r"|\\(?P<greek>[A-Za-z]+)(?![A-Za-z])"
    r"|(?<!\\)(?P<letter>[A-Za-z])"
)


def atomize(s: str, atoms: dict[str, Atom]) -> str:
    """Replace decorated atoms by made-up commands (see the module docstring); fills ``atoms``."""
    out: list[str] = []
    i = 0
    while i < len(s):
        m = _BASE.search(s, i)
        if not m:
            break
        found = _read_atom(s, m)
        if found is None:
            out.append(s[i : m.end()])
            i = m.end()
            continue
        atom_end, atom = found
        out.append(s[i : m.start()])
        if atom is None:
            out.append(s[m.start() : atom_end])
        else:
            atoms.setdefault(atom.name, atom)
            out.append(" \\" + atom.name + " ")
        i = atom_end
    out.append(s[i:])
    return "".join(out)


def _read_atom(s: str, m: re.Match[str]) -> tuple[int, Atom | None] | None:
    """(end, atom) for an atom starting at m; atom None when it needs no renaming."""
    decorated = False
    kind = "scalar"
    if m.group("letter"):
        base = m.group("letter")
        end = m.end()
        # a word (\textrm leftovers, "dx"): only a letter standing alone or followed by a decoration
    elif m.group("greek"):
        name = m.group("greek")
        if name not in GREEK_LOWER and name not in GREEK_UPPER:
            return None
        base = "\\" + name
        end = m.end()
    else:
        g = _group(s, m.end())
        if g is None:
            return None
        content, end = g
        content = content.strip()
        inner = re.fullmatch(r"[A-Za-z0-9]|\\[A-Za-z]+", content)
        if m.group("font"):
            if not inner or m.group("font") in ("mathrm", "mathit") and not re.fullmatch(r"[A-Za-z]", content):
                return None
            if m.group("font") == "mathbb" and content in ("E", "P"):
                return None  # \mathbb{E}, \mathbb{P}: operators, see operators()
            if m.group("font") in ("mathrm", "mathit", "mathnormal"):
                base = content  # \mathrm{d}, \mathit{x}: the plain letter
                decorated = False
            else:
                base = f"\\{m.group('font')}{{{content}}}"
                decorated = True
        elif m.group("bold"):
            if inner is None:
                # \mathbf{\hat{y}}: bold of an accented letter
                am = re.fullmatch(r"\\(" + _ACCENT + r")\s*\{?\s*([A-Za-z]|\\[A-Za-z]+)\s*\}?", content)
                if not am:
                    return None
                inner_base = am.group(2)
                base = f"\\{am.group(1)}{{\\mathbf{{{inner_base}}}}}"
                kind = _bold_kind(inner_base)
            else:
                base = content
                kind = _bold_kind(content)
            decorated = True
        else:  # accent
            am = re.fullmatch(
                r"([A-Za-z]|\\[A-Za-z]+)|\\(" + _BOLD + r")\s*\{?\s*([A-Za-z]|\\[A-Za-z]+)\s*\}?", content
            )
            if not am:
                return None
            letter = am.group(1) or am.group(3)
            if letter.startswith("\\") and letter[1:] not in GREEK_LOWER | GREEK_UPPER:
                return None
            if am.group(2):
                kind = _bold_kind(letter)
            base = f"\\{m.group('accent')}{{{content}}}"
            decorated = True
    indices: list[str] = []
    j = end
    while True:
        k = j
        while k < len(s) and s[k] == " ":
            k += 1
        if k < len(s) and s[k] == "_":
            g = _group(s, k + 1)
            if g is None:
                break
            indices.extend(p.strip() for p in _split_commas(g[0]))
            j = g[1]
            decorated = True
            continue
        if k < len(s) and s[k] == "^":
            g = _group(s, k + 1)
            if g is None:
                break
            sup = g[0].strip()
            pm = re.fullmatch(r"\((.+)\)", sup)
            if pm and not re.fullmatch(r"-?\d+", pm.group(1).strip()):  # x^{(i)}: an index; x^{(2)}: also
                indices.append("(" + pm.group(1).strip() + ")")
                j = g[1]
                decorated = True
                continue
            if pm:
                indices.append(sup)
                j = g[1]
                decorated = True
                continue
            if sup in ("*", "\\ast", "\\star"):
                indices.append("*")
                j = g[1]
                decorated = True
                continue
            if sup in ("\\prime", "'") and not _applied(s, g[1]):
                indices.append("'")
                j = g[1]
                decorated = True
                continue
            break
        if k < len(s) and s[k] == "'" and not _applied(s, k + 1) and (decorated or kind != "scalar"):
            indices.append("'")
            j = k + 1
            continue
        break
    if m.group("letter") and not decorated:
        # x' as a variable (k(x, x')): a symbol of its own, unless it is f'(x)
        k = j
        primes = 0
        while k < len(s) and s[k] == "'":
            primes += 1
            k += 1
        if primes and not _applied(s, k) and not re.match(r"\s*\(", s[k:]):
            indices.append("'" * primes)
            j = k
            decorated = True
    if not decorated:
        return j, None
    written = s[m.start() : j]
    canonical = re.sub(r"\s+", "", written)
    if kind in ("matrix", "vector") and not indices:
        if re.fullmatch(r"I", base):
            kind = "identity"
        elif base == "0":
            kind = "zero"
    function = _applied(s, j) and kind == "scalar"
    return j, Atom(_code(canonical), written.strip(), kind, base, tuple(indices), function)


def _bold_kind(content: str) -> str:
    if content.startswith("\\"):
        return "matrix" if content[1:] in GREEK_UPPER else "vector"
    if content.isdigit():
        return "zero" if content == "0" else "vector"
    return "matrix" if content.isupper() else "vector"


def _applied(s: str, i: int) -> bool:
    return bool(re.match(r"\s*'*\s*\(", s[i:]))


def _split_commas(text: str) -> list[str]:
    parts, depth, last = [], 0, 0
    for k, c in enumerate(text):
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[last:k])
            last = k + 1
    parts.append(text[last:])
    return [p for p in parts if p.strip()]


# -- transposes ----------------------------------------------------------------------------------

_TRANSPOSE = re.compile(r"\^\s*(?:\{\s*(?:\\top|\\intercal|\\mathsf\s*\{\s*T\s*\}|\\mathrm\s*\{\s*T\s*\}|T)\s*\}"
                        r"|\\top(?![A-Za-z])|\\intercal(?![A-Za-z])|T(?![A-Za-z]))")


def transposes(s: str, matrices_written: bool) -> str:
    """``^\\top`` -> ``^{\\Ztop}``; ``^T`` only where the formula writes bold matrices or vectors."""

    def fix(m: re.Match[str]) -> str:
        if m.group(0).rstrip().endswith("T") and "\\" not in m.group(0) and not matrices_written:
            return m.group(0)
        return "^{\\Ztop}"

    return _TRANSPOSE.sub(fix, s)


# -- operators -----------------------------------------------------------------------------------

_OPEN = {"[": "]", "(": ")", "\\{": "\\}"}


def _bracket_end(s: str, i: int) -> int:
    """Index just past the bracket group opening at s[i] (``[``, ``(``); -1 if unbalanced."""
    open_ = s[i]
    close = _OPEN[open_]
    depth = 0
    k = i
    while k < len(s):
        c = s[k]
        if c == "\\":
            k += 2
            continue
        if c == "{":
            end = matching_brace(s, k)
            if end < 0:
                return -1
            k = end + 1
            continue
        if c == open_:
            depth += 1
        elif c == close:
            depth -= 1
            if depth == 0:
                return k + 1
        k += 1
    return -1


def _top_level_split(text: str, seps: tuple[str, ...]) -> tuple[list[str], str | None]:
    """Split at the first kind of separator found at depth 0: (parts, separator)."""
    depth = 0
    k = 0
    found: list[int] = []
    which = None
    while k < len(text):
        c = text[k]
        if c == "\\":
            mm = re.match(r"\\([A-Za-z]+|.)", text[k:])
            word = mm.group(0) if mm else c
            if depth == 0 and word in seps and (which is None or which == word):
                which = word
                found.append(k)
                found.append(k + len(word))
            k += len(word)
            continue
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        elif depth == 0 and c in seps and (which is None or which == c):
            which = c
            found.append(k)
            found.append(k + 1)
        k += 1
    if not found:
        return [text], None
    parts, last = [], 0
    for a, b in zip(found[::2], found[1::2], strict=True):
        parts.append(text[last:a])
        last = b
    parts.append(text[last:])
    return parts, which


def operators(s: str, opaque: set[str]) -> str:
    """Expectations, variances, covariances, probabilities -> opaque ``\\Zop...(...)`` calls."""
    pattern = re.compile(
        r"(?P<bb>\\mathbb\s*\{\s*(?P<bbl>[EP])\s*\}|\\mathbb\s+(?P<bbs>[EP]))"
        r"|\\(?:operatorname\*?|mathrm|textrm|text|mathit|mathsf)\s*\{\s*(?P<word>[A-Za-z]+)\s*\}"
        r"|\\(?P<cmd>Pr)(?![A-Za-z])"
        r"|(?<!\\)(?<!_\{)(?<!\^\{)(?P<letter>[EPpq])(?![A-Za-z])"
        r"|(?P<command>\\[A-Za-z]+)"  # any other command name is passed over whole (the p of \exp is no P)
    )
    out: list[str] = []
    i = 0
    for _ in range(200):
        m = pattern.search(s, i)
        if not m:
            break
        if m.group("command"):
            out.append(s[i : m.end()])
            i = m.end()
            continue
        if m.group("bb"):
            op = m.group("bbl") or m.group("bbs")
        elif m.group("word"):
            op = _OPERATOR_WORDS.get(m.group("word"), "")
            if not op and re.match(r"\s*\[", s[m.end() :]) and len(m.group("word")) > 1:
                op = m.group("word")  # \textrm{bias}[\hat{\theta}]: an operator written with brackets
            if not op:
                out.append(s[i : m.end()])
                i = m.end()
                continue
        elif m.group("cmd"):
            op = "P"
        else:
            op = m.group("letter")
        j = m.end()
        sub = ""
        k = j
        while k < len(s) and s[k] == " ":
            k += 1
        if k < len(s) and s[k] == "_" and op in ("E", "P", "Var", "Cov"):
            g = _group(s, k + 1)
            if g is None:
                out.append(s[i:j])
                i = j
                continue
            sub = g[0]
            k = g[1]
            while k < len(s) and s[k] == " ":
                k += 1
        if k >= len(s) or s[k] not in "[(":
            out.append(s[i:j])
            i = j
            continue
        if m.group("letter") and op in ("p", "q", "P") and s[k] == "[":
            out.append(s[i:j])
            i = j
            continue
        if m.group("letter") == "E" and s[k] == "(" and not sub:
            # E(X): an expectation only when written with a conditional or next to Var/Cov; else E is a function
            pass
        end = _bracket_end(s, k)
        if end < 0:
            raise NotationError(f"unbalanced brackets after {op}")
        inner = s[k + 1 : end - 1]
        parts, sep = _top_level_split(inner, ("|", "\\mid", ";"))
        name = op
        if sep is not None and len(parts) == 2:
            # the count of variables before the bar is part of the name: P(A, B | C) is not P(A | B, C)
            before, _ = _top_level_split(parts[0], (",",))
            name += "cond" + chr(ord("a") + min(len(before), 25))
            args = parts
        else:
            args = [inner]
        eq_parts, eq = _top_level_split(args[0], ("=",))
        if eq is not None and len(eq_parts) == 2:
            name += "eq"
            args = eq_parts + args[1:]
        command = op_name(name, re.sub(r"\s+", "", sub))
        opaque.add(command)
        rendered = ", ".join(operators(a, opaque) for a in args)
        out.append(s[i : m.start()])
        out.append(f" \\{command}({rendered}) ")
        i = end
    out.append(s[i:])
    return "".join(out)


def functionals(s: str, opaque: set[str]) -> str:
    """``H[P]``, ``R[p, f]``: a capital letter applied with square brackets is a functional (an
    opaque operator), not a product with a bracketed group."""
    out: list[str] = []
    i = 0
    for m in re.finditer(r"(?<![\\A-Za-z{_^])([A-Z])\s*\[", s):
        if m.start() < i:
            continue
        end = _bracket_end(s, m.end() - 1)
        if end < 0:
            continue
        command = op_name("L" + m.group(1))
        opaque.add(command)
        out.append(s[i : m.start()])
        out.append(f" \\{command}({s[m.end() : end - 1]}) ")
        i = end
    out.append(s[i:])
    return "".join(out)


def conditionals(s: str, opaque: set[str]) -> str:
    """``H(Y \\mid X)``, ``p_\\theta(y | x)``, ``D(P \\| Q)``: any function written with a conditioning bar
    is an opaque operator of its parts (entropies, likelihoods, divergences)."""
    pattern = re.compile(
        r"(?<![\\A-Za-z])(?P<head>[A-Za-z]|\\[A-Za-z]+)(?P<sub>\s*_\s*(?:\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}|[A-Za-z0-9]))?\s*\("
    )
    out: list[str] = []
    i = 0
    for _ in range(200):
        m = pattern.search(s, i)
        if not m:
            break
        head = m.group("head")
        if head.startswith("\\") and head[1:] not in GREEK_LOWER | GREEK_UPPER and head[1:] not in ("Zz",):
            out.append(s[i : m.end()])
            i = m.end()
            continue
        start = m.end() - 1
        end = _bracket_end(s, start)
        if end < 0:
            break
        inner = s[start + 1 : end - 1]
        parts, sep = _top_level_split(inner, ("|", "\\mid", "\\|"))
        if sep is None or len(parts) != 2:
            out.append(s[i : m.end()])
            i = m.end()
            continue
        command = op_name("Fcond", head + (m.group("sub") or "").replace(" ", ""))
        opaque.add(command)
        out.append(s[i : m.start()])
        out.append(f" \\{command}({conditionals(parts[0], opaque)}, {conditionals(parts[1], opaque)}) ")
        i = end
    out.append(s[i:])
    return "".join(out)


_EXTREMA = "max|min|argmax|argmin|sup|inf|arg\\s*max|arg\\s*min"


def extrema(s: str, opaque: set[str]) -> str:
    """``\\max_{x} body`` / ``\\operatorname*{argmin}_w body``: an opaque operator of the subscript and
    the rest of the side (how far the body reaches is not written; the rest of the side is the rule)."""
    pattern = re.compile(
        r"\\(?:operatorname\*?|mathrm|textrm)\s*\{\s*(?P<word>" + _EXTREMA + r")\s*\}"
        r"|\\(?P<cmd>max|min|sup|inf|argmax|argmin)(?![A-Za-z])"
    )
    m = None
    for candidate in pattern.finditer(s):
        rest = s[candidate.end() :].lstrip()
        if rest.startswith("_"):
            m = candidate
            break
    if m is None:
        return s
    word = re.sub(r"\s+", "", m.group("word") or m.group("cmd"))
    k = s.index("_", m.end())
    g = _group(s, k + 1)
    if g is None:
        raise NotationError(f"\\{word} with a subscript that cannot be read")
    sub, body_start = g
    body = s[body_start:].strip()
    if not body:
        raise NotationError(f"\\{word} without an argument")
    command = op_name(word.capitalize(), re.sub(r"\s+", "", sub))
    opaque.add(command)
    return s[: m.start()] + f" \\{command}({extrema(body, opaque)}) "


def sums_over_sets(s: str) -> str:
    """``\\sum_{i \\in \\mathcal{B}}``: a sum over the members of a set, as a sum from 1 to a made-up bound."""

    def fix(m: re.Match[str]) -> str:
        var = m.group(2)
        return f"\\{m.group(1)}_{{{var}=1}}^{{\\ZzN{var}}}"

    return re.sub(r"\\(sum|prod)\s*_\s*\{\s*([A-Za-z])'*\s*\\in(?![A-Za-z])[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", fix, s)


def sums_without_limits(s: str) -> str:
    """``\\sum_i`` / ``\\sum_{i}`` / ``\\prod_{j}`` -> from 1 to a made-up integer bound ``\\ZzN``."""

    def fix(m: re.Match[str]) -> str:
        var = m.group(2) or m.group(3)
        return f"\\{m.group(1)}_{{{var}=1}}^{{\\ZzN{var.strip(chr(92))}}}"

    return re.sub(
        r"\\(sum|prod)\s*_\s*(?:\{\s*([A-Za-z]|\\[A-Za-z]+)\s*\}|([A-Za-z]))(?!\s*\^)(?![A-Za-z])", fix, s
    )
