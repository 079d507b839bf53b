"""LaTeX in card text, made readable in a terminal.

The Markdown widget knows nothing about math, so before a card is rendered its
`$...$` and `$$...$$` spans are turned into code-styled Unicode text:
`$\\frac{\\partial f}{\\partial x_i}$` shows as `∂f/∂xᵢ`. This is a modest
prettifier for the commands study notes use most; anything it does not know is
kept as LaTeX source, so nothing is ever lost, only left unprettified.

Both entry points (`plain_math`, `prettify_math`) return text for the screen, so control
characters in it come back as visible stand-ins (`d2lkb.textsafe.printable`).
"""

from __future__ import annotations

from d2lkb.textsafe import printable

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν",
    "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "upsilon": "υ", "phi": "ϕ", "varphi": "φ",
    "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ",
    "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}

SYMBOLS = {
    "cdot": "·", "times": "×", "div": "÷", "pm": "±", "mp": "∓", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥",
    "neq": "≠", "ne": "≠", "approx": "≈", "equiv": "≡", "sim": "∼", "propto": "∝", "infty": "∞",
    "partial": "∂", "nabla": "∇", "sum": "Σ", "prod": "∏", "int": "∫", "oint": "∮", "to": "→",
    "rightarrow": "→", "leftarrow": "←", "Rightarrow": "⇒", "Leftarrow": "⇐", "leftrightarrow": "↔",
    "Leftrightarrow": "⇔", "implies": "⇒", "iff": "⇔", "mapsto": "↦", "in": "∈", "notin": "∉",
    "subset": "⊂", "subseteq": "⊆", "supset": "⊃", "cup": "∪", "cap": "∩", "forall": "∀", "exists": "∃",
    "emptyset": "∅", "neg": "¬", "land": "∧", "lor": "∨", "ldots": "…", "cdots": "⋯", "dots": "…",
    "vdots": "⋮", "ddots": "⋱", "mid": "|", "top": "⊤", "intercal": "ᵀ", "odot": "⊙", "otimes": "⊗",
    "oplus": "⊕", "circ": "∘", "star": "⋆", "ast": "∗", "langle": "⟨", "rangle": "⟩", "lceil": "⌈",
    "rceil": "⌉", "lfloor": "⌊", "rfloor": "⌋", "prime": "′", "ell": "ℓ", "hbar": "ℏ", "Re": "ℜ",
    "Im": "ℑ", "lvert": "|", "rvert": "|", "lVert": "‖", "rVert": "‖", "vert": "|", "Vert": "‖",
    "quad": "  ", "qquad": "    ", "colon": ":", "gets": "←", "ll": "≪", "gg": "≫", "perp": "⊥",
    "parallel": "∥", "angle": "∠", "triangle": "△", "square": "□", "checkmark": "✓", "sqrt": "√",
}

# Binary operators and relations get a space on each side.
SPACED = {"cdot", "times", "div", "pm", "mp", "leq", "le", "geq", "ge", "neq", "ne", "approx", "equiv", "sim",
          "propto", "to", "rightarrow", "leftarrow", "Rightarrow", "Leftarrow", "leftrightarrow", "Leftrightarrow",
          "implies", "iff", "mapsto", "in", "notin", "subset", "subseteq", "supset", "cup", "cap", "odot",
          "otimes", "oplus", "circ", "gets", "ll", "gg", "perp", "mid", "land", "lor"}

# Symbols that bind to what follows: the space after them goes.
PREFIX = {"partial", "nabla", "neg", "sum", "prod", "int", "oint"}

# Words set upright in math: \log x -> "log x".
FUNCTIONS = {"log", "ln", "exp", "sin", "cos", "tan", "sinh", "cosh", "tanh", "max", "min", "arg", "argmax",
             "argmin", "sup", "inf", "lim", "det", "dim", "ker", "sgn", "softmax", "Pr", "deg", "gcd", "lg"}

# Single-character escapes: \, \; \{ ...
ESCAPES = {",": " ", ";": " ", ":": " ", "!": "", " ": " ", "{": "{", "}": "}", "|": "‖", "%": "%", "$": "$",
           "#": "#", "&": "&", "_": "_", "\\": "\n"}

# Commands whose one argument is shown as is (fonts and text).
PLAIN_ARG = {"mathrm", "text", "textrm", "textbf", "textit", "mathit", "operatorname", "mathsf", "mathtt", "texttt", "emph", "mbox", "displaystyle", "textstyle", "underline",
             "overline", "mathnormal"}

ACCENTS = {"hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "tilde": "\u0303", "widetilde": "\u0303",
           "vec": "\u20d7", "dot": "\u0307", "ddot": "\u0308"}

# Bold vectors and matrices: Unicode's mathematical bold letters, digits and Greek (one cell wide).
BOLD_COMMANDS = {"mathbf", "boldsymbol", "bm", "pmb", "mathbfit"}
BOLD = {**{chr(ord("A") + i): chr(0x1D400 + i) for i in range(26)},
        **{chr(ord("a") + i): chr(0x1D41A + i) for i in range(26)},
        **{chr(ord("0") + i): chr(0x1D7CE + i) for i in range(10)},
        **{ch: chr(0x1D6A8 + i + (i > 16)) for i, ch in enumerate("ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ")},  # ϴ after Ρ
        **{ch: chr(0x1D6C2 + i) for i, ch in enumerate("αβγδεζηθικλμνξοπρςστυφχψω")},
        "ϵ": "𝛜", "ϑ": "𝛝", "ϕ": "𝛟", "φ": "𝛗",
        "∇": "𝛁", "∂": "𝛛"}

BLACKBOARD = {"R": "ℝ", "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "E": "𝔼", "P": "ℙ"}
CALLIGRAPHIC = {"L": "ℒ", "N": "𝒩", "O": "𝒪", "D": "𝒟", "F": "ℱ", "H": "ℋ", "X": "𝒳", "Y": "𝒴"}

SUPERSCRIPT = dict(zip("0123456789+-=()nijkTtaxyz", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱʲᵏᵀᵗᵃˣʸᶻ", strict=True))
SUPERSCRIPT.update({"′": "′", "*": "*", "∗": "*", "⊤": "ᵀ", "ᵀ": "ᵀ"})
SUBSCRIPT = dict(zip("0123456789+-=()aeijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))

DELIMITERS = {"(": "(", ")": ")", "[": "[", "]": "]", "|": "|", ".": "", "/": "/", "<": "⟨", ">": "⟩"}

def _script(text: str, table: dict[str, str], mark: str) -> str:
    if text and all(ch in table for ch in text):
        return "".join(table[ch] for ch in text)
    if len(text) == 1:
        return mark + text
    return f"{mark}({text})"


def _wrap(text: str) -> str:
    """Parenthesise a fraction part unless it is one simple token."""
    text = text.strip()
    if len(text) <= 1 or text.replace(".", "").isalnum() or (text[0] in "([" and _balanced_outer(text)):
        return text
    if text[0] == "√" and len(text) > 2 and text[1] == "(" and _balanced_outer(text[1:]):
        return text
    if all(ch.isalnum() or ch in "∂∇′" for ch in text):  # ∂f, ∂xᵢ
        return text
    return f"({text})"


def _balanced_outer(text: str) -> bool:
    close = {"(": ")", "[": "]"}[text[0]]
    if text[-1] != close:
        return False
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == text[0]
        depth -= ch == close
        if depth == 0 and i < len(text) - 1:
            return False
    return True


class _Reader:
    def __init__(self, src: str):
        self.src = src
        self.pos = 0

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def skip_spaces(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def group_source(self) -> str | None:
        """Raw source of a `{...}` group at the cursor (cursor moved past it), or None."""
        self.skip_spaces()
        if self.peek() != "{":
            return None
        depth, start = 0, self.pos
        while self.pos < len(self.src):
            ch = self.src[self.pos]
            if ch == "\\":
                self.pos += 2
                continue
            depth += ch == "{"
            depth -= ch == "}"
            self.pos += 1
            if depth == 0:
                return self.src[start + 1:self.pos - 1]
        return self.src[start + 1:]

    def argument(self) -> str:
        """One argument, converted: a group, a command, or a single character."""
        raw = self.group_source()
        if raw is not None:
            return convert(raw)
        self.skip_spaces()
        if self.peek() == "\\":
            return self.command(eat_space=False)
        ch = self.peek()
        self.pos += 1 if ch else 0
        return ch

    def optional(self) -> str | None:
        self.skip_spaces()
        if self.peek() != "[":
            return None
        end = self.src.find("]", self.pos)
        if end < 0:
            return None
        raw = self.src[self.pos + 1:end]
        self.pos = end + 1
        return convert(raw)

    def inline_environment(self, env: str) -> str:
        """A matrix, `cases` or `aligned` on one line: `[a, b; c, d]`, `{ x, x > 0; 0, otherwise }`."""
        from d2lkb.tui.mathlayout import _env_end, split_rows

        start = self.pos
        end, after = _env_end(self.src, start, env)
        self.pos = after
        body = self.src[start:end]
        if env == "array" and body.lstrip().startswith("{"):
            body = body[body.index("}") + 1:]
        rows = [[" ".join(convert(c).split()) for c in row] for row in split_rows(body)]
        base = env.rstrip("*")
        if base.endswith("matrix") or env == "array":
            left, right = {"b": ("[", "]"), "p": ("(", ")"), "v": ("|", "|"), "V": ("‖", "‖"),
                           "B": ("{", "}")}.get(env[0] if env != "matrix" else "", ("[", "]"))
            return left + "; ".join(", ".join(row) for row in rows) + right
        if base in ("cases", "dcases"):
            return "{ " + "; ".join(", ".join(c for c in row if c) for row in rows) + " }"
        return "; ".join(" ".join(c for c in row if c) for row in rows)

    def command(self, eat_space: bool = True) -> str:
        """A `\\command` (cursor at the backslash) and its arguments, converted."""
        self.pos += 1
        start = self.pos
        while self.peek().isalpha():
            self.pos += 1
        name = self.src[start:self.pos]
        if not name:  # \, \{ \\ ...
            ch = self.peek()
            self.pos += 1 if ch else 0
            return ESCAPES.get(ch, ch)
        spaced = self.peek().isspace()
        if eat_space and name in PREFIX:  # `\\partial f` -> ∂f; other spacing is the author's
            self.skip_spaces()
        if name in GREEK:
            return GREEK[name]
        if name in FUNCTIONS:
            return name + ("" if self.peek() in ("", "_", "^", "(", "{") else " ")
        if name in ("frac", "dfrac", "tfrac", "cfrac"):
            glued_before = self.pos - len(name) - 2 >= 0 and self.src[self.pos - len(name) - 2].isalnum()
            num, den = self.argument(), self.argument()
            text = f"{_wrap(num)}/{_wrap(den)}"
            # `\frac{1}{n}\sum` or `\frac{d}{dx}\sigma(x)`: a fraction glued to what follows (or
            # follows a factor) is bracketed and spaced, so it reads `(1/n) Σ`, not `1/nΣ`.
            rest = self.src[self.pos:].lstrip()
            if glued_before or (rest and (rest[0].isalnum() or rest[0] in "(\\[") and not _starts_operator(rest)):
                return f"({text}) " if not glued_before else f" ({text})"
            return text
        if name == "binom":
            n, k = self.argument(), self.argument()
            return f"C({n}, {k})"
        if name == "sqrt":
            index = self.optional()
            arg = self.argument()
            root = {"3": "∛", "4": "∜"}.get(index or "", "√" if not index else _script(index, SUPERSCRIPT, "^") + "√")
            return root + (arg if len(arg) <= 1 else f"({arg})")
        if name in BOLD_COMMANDS:
            arg = self.argument()
            return "".join(BOLD.get(c, c) for c in arg)
        if name == "operatorname" and self.peek() == "*":  # \operatorname*{argmin}: limits below
            self.pos += 1
        if name in PLAIN_ARG:
            if name in ("displaystyle", "textstyle"):
                return ""
            return self.argument()
        if name == "mathbb":
            arg = self.argument()
            return "".join(BLACKBOARD.get(c, c) for c in arg)
        if name == "mathcal":
            arg = self.argument()
            return "".join(CALLIGRAPHIC.get(c, c) for c in arg)
        if name in ACCENTS:
            arg = self.argument()
            return arg + ACCENTS[name] if len(arg) == 1 else f"{name}({arg})"
        if name in ("left", "right", "bigl", "bigr", "Bigl", "Bigr", "big", "Big", "bigg", "Bigg"):
            self.skip_spaces()
            if self.peek() == "\\":
                return self.command()
            ch = self.peek()
            self.pos += 1 if ch else 0
            return DELIMITERS.get(ch, ch)
        if name in ("begin", "end"):
            env = self.group_source() or ""
            if name == "end":
                return ""
            return self.inline_environment(env)
        if name in ("label", "tag", "nonumber", "notag"):
            if name in ("label", "tag"):
                self.group_source()
            return ""
        if name in SYMBOLS:
            return f" {SYMBOLS[name]} " if name in SPACED else SYMBOLS[name]
        if name in ("limits", "nolimits"):
            return ""
        # unknown: keep the source, arguments included
        out = "\\" + name
        while True:
            before = self.pos
            raw = self.group_source()
            if raw is None:
                self.pos = before
                break
            out += "{" + convert(raw) + "}"
        return out + (" " if spaced and self.peek().isalnum() else "")


def _starts_operator(rest: str) -> bool:
    """Does `rest` start with a binary operator or relation (`\\cdot`, `\\leq`, ...)?"""
    if not rest.startswith("\\"):
        return False
    end = 1
    while end < len(rest) and rest[end].isalpha():
        end += 1
    return rest[1:end] in SPACED or rest[1:end] in ("right", "end", "quad", "qquad", "\\")


def convert(src: str) -> str:
    """LaTeX math source -> readable Unicode text."""
    reader = _Reader(src)
    out: list[str] = []
    while reader.pos < len(src):
        ch = reader.peek()
        if ch == "\\":
            out.append(reader.command())
        elif ch == "{":
            out.append(convert(reader.group_source() or ""))
        elif ch == "}":
            reader.pos += 1
        elif ch in "^_":
            reader.pos += 1
            arg = reader.argument()
            out.append(_script(arg, SUPERSCRIPT if ch == "^" else SUBSCRIPT, ch))
        elif ch == "~":
            out.append(" ")
            reader.pos += 1
        elif ch == "'":
            out.append("′")
            reader.pos += 1
        else:
            out.append(ch)
            reader.pos += 1
    return "".join(out)


def latex_to_unicode(src: str) -> str:
    """Readable text for a display formula: two-dimensional (stacked fractions, bracketed matrices,
    `cases` with a brace, `aligned` rows lined up at `&`) where it has such parts, else one line."""
    from d2lkb.tui import mathlayout

    if mathlayout.needs_layout(src):
        return mathlayout.render(src)
    text = convert(src.strip())
    text = text.replace("&", "")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def inline_math(src: str) -> str:
    """One line of readable text for inline math (matrices as `[a, b; c, d]`)."""
    return " ".join(convert(src.strip()).replace("&", " ").split())


def _inline_code(text: str) -> str:
    text = " ".join(text.split())
    ticks = "``" if "`" in text else "`"
    pad = " " if ticks == "``" or text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _find_closing(text: str, start: int, delim: str) -> int:
    """Index of the closing `delim` for math opened before `start`, or -1."""
    i = start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if text.startswith(delim, i):
            if delim == "$" and (text[i - 1].isspace() or (i + 1 < len(text) and text[i + 1].isdigit())):
                i += 1
                continue
            return i
        i += 1
    return -1


def _prettify_span(text: str, markdown: bool = True) -> str:
    """Math in one block of Markdown prose (no fenced code inside); plain one-line text unless `markdown`."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            out.append(text[i:i + 2])
            i += 2
        elif ch == "`":  # inline code: copy verbatim up to the matching run of backticks
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            end = text.find("`" * run, i + run)
            if end < 0:
                out.append(text[i:i + run])
                i += run
            else:
                out.append(text[i:end + run])
                i = end + run
        elif text.startswith("$$", i):
            end = _find_closing(text, i + 2, "$$")
            if end < 0:
                out.append(text[i:])
                break
            body = latex_to_unicode(text[i + 2:end])
            if markdown:
                out.append("\n```\n" + body + "\n```\n" if body else "")
            else:
                out.append(inline_math(text[i + 2:end]))
            i = end + 2
        elif ch == "$" and i + 1 < n and not text[i + 1].isspace():
            end = _find_closing(text, i + 1, "$")
            if end < 0 or "\n\n" in text[i:end]:
                out.append(ch)
                i += 1
            else:
                body = inline_math(text[i + 1:end])
                out.append(_inline_code(body) if markdown else body)
                i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def plain_math(text: str) -> str:
    """One line of text (a title, a search snippet) with its math as Unicode, no Markdown added."""
    text = printable(text)
    return _prettify_span(text, markdown=False) if "$" in text else text


def prettify_math(markdown: str) -> str:
    """Markdown with its `$`/`$$` math replaced by code-styled Unicode; fenced code is left alone."""
    markdown = printable(markdown)
    if "$" not in markdown:
        return markdown
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines(keepends=True):
        stripped = line.lstrip()
        marker = stripped[:3]
        if fence is None and marker in ("```", "~~~"):
            if prose:
                out.append(_prettify_span("".join(prose)))
                prose = []
            fence = marker
            out.append(line)
        elif fence is not None:
            out.append(line)
            if stripped.startswith(fence) and not stripped.strip().strip(fence[0]):
                fence = None
        else:
            prose.append(line)
    if prose:
        out.append(_prettify_span("".join(prose)))
    return "".join(out)
