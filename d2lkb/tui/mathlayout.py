"""Display math laid out in two dimensions: stacked fractions, matrices as bracketed grids,
`cases` with a brace and aligned columns, `aligned` rows aligned at `&`.

Everything one-dimensional (symbols, scripts, fonts) is the job of `mathtext.convert`;
this module only places its one-line pieces in boxes. Why not a library: SymPy's
`parse_latex` silently drops terms it does not understand (`\\frac{1}{n}\\sum_i x_i`
comes back as `1/n`) and rewrites the author's notation (`\\exp(-x)` as `ℯ⁻ˣ`,
`\\mathrm{ReLU}` as a product of letters), which a flash card must never do; its
`stringPict` layout would pull all of SymPy (about 1 s) onto the review path; and the
LaTeX->Unicode libraries on PyPI (pylatexenc, unicodeit, flatlatex) are one-line only.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len

from d2lkb.textutil import matching_brace

# Environments laid out as grids: name -> (left delimiter, right delimiter, column style)
MATRICES = {"matrix": ("", ""), "smallmatrix": ("", ""), "array": ("", ""), "bmatrix": ("[", "]"),
            "pmatrix": ("(", ")"), "vmatrix": ("|", "|"), "Vmatrix": ("‖", "‖"), "Bmatrix": ("{", "}")}
ALIGNED = {"aligned", "align", "align*", "split", "eqnarray", "eqnarray*", "alignat", "alignat*", "flalign"}
GATHERED = {"gathered", "gather", "gather*", "multline", "multline*"}
CASES = {"cases", "dcases", "rcases"}
FRACTIONS = {"frac", "dfrac", "tfrac", "cfrac"}

# Tall delimiters: (top, middle, bottom, extension)
TALL = {
    "[": ("⎡", "⎢", "⎣", "⎢"), "]": ("⎤", "⎥", "⎦", "⎥"),
    "(": ("⎛", "⎜", "⎝", "⎜"), ")": ("⎞", "⎟", "⎠", "⎟"),
    "{": ("⎧", "⎨", "⎩", "⎪"), "}": ("⎫", "⎬", "⎭", "⎪"),
    "|": ("│", "│", "│", "│"), "‖": ("‖", "‖", "‖", "‖"),
    "⌈": ("⎡", "⎢", "⎢", "⎢"), "⌉": ("⎤", "⎥", "⎥", "⎥"),
    "⌊": ("⎢", "⎢", "⎣", "⎢"), "⌋": ("⎥", "⎥", "⎦", "⎥"),
}


@dataclass(frozen=True)
class Box:
    """Lines of equal display width; `baseline` is the row that lines up with neighbouring text."""

    lines: tuple[str, ...]
    baseline: int = 0

    @staticmethod
    def text(s: str) -> Box:
        return Box((s,), 0)

    @property
    def width(self) -> int:
        return max((cell_len(line) for line in self.lines), default=0)

    @property
    def height(self) -> int:
        return len(self.lines)

    def padded(self, width: int, align: str = "l") -> Box:
        out = []
        for line in self.lines:
            gap = max(0, width - cell_len(line))
            left = gap if align == "r" else gap // 2 if align == "c" else 0
            out.append(" " * left + line + " " * (gap - left))
        return Box(tuple(out), self.baseline)


def hcat(boxes: list[Box]) -> Box:
    """Side by side, lined up on their baselines."""
    boxes = [b for b in boxes if b.lines and b.width]
    if not boxes:
        return Box(("",), 0)
    above = max(b.baseline for b in boxes)
    below = max(b.height - b.baseline for b in boxes)
    rows = [""] * (above + below)
    for b in boxes:
        w = b.width
        top = above - b.baseline
        for i in range(above + below):
            j = i - top
            line = b.lines[j] if 0 <= j < b.height else ""
            rows[i] += line + " " * (w - cell_len(line))
    return Box(tuple(rows), above)


def vstack(boxes: list[Box], align: str = "c", baseline: int | None = None) -> Box:
    width = max((b.width for b in boxes), default=0)
    lines: list[str] = []
    for b in boxes:
        lines.extend(b.padded(width, align).lines)
    return Box(tuple(lines), (len(lines) - 1) // 2 if baseline is None else baseline)


def fraction(num: Box, den: Box) -> Box:
    width = max(num.width, den.width) + 2
    bar = Box(("─" * width,))
    return vstack([num.padded(width, "c"), bar, den.padded(width, "c")], baseline=num.height)


def delimited(box: Box, left: str, right: str) -> Box:
    """`box` between delimiters as tall as it is (a brace or bracket per line)."""
    def column(ch: str) -> Box:
        if not ch:
            return Box(("",) * box.height, box.baseline)
        if box.height == 1 or ch not in TALL:
            return Box((ch,) * box.height, box.baseline)
        top, mid, bottom, ext = TALL[ch]
        h = box.height
        cells = [ext] * h
        cells[0], cells[-1] = top, bottom
        if ch in "{}" and h >= 3:
            cells[box.baseline if 0 < box.baseline < h - 1 else h // 2] = mid
        elif ch in "{}":  # two lines: the brace's two halves
            cells = ["⎰", "⎱"] if ch == "{" else ["⎱", "⎰"]
        return Box(tuple(cells), box.baseline)

    return hcat([column(left), box, column(right)])


def grid(rows: list[list[Box]], aligns: list[str], gap: int) -> Box:
    """Cells in columns (each column as wide as its widest cell), rows lined up on their baselines."""
    ncols = max((len(r) for r in rows), default=0)
    widths = [max((r[j].width for r in rows if j < len(r)), default=0) for j in range(ncols)]
    lines: list[Box] = []
    for row in rows:
        cells = []
        for j in range(ncols):
            cell = row[j] if j < len(row) else Box.text("")
            cells.append(cell.padded(widths[j], aligns[j % len(aligns)]))
            if j < ncols - 1 and gap:
                cells.append(Box.text(" " * gap))
        lines.append(hcat(cells))
    return vstack(lines, align="l")


# -- LaTeX source -> boxes ------------------------------------------------------------
def _name_at(src: str, i: int) -> str:
    """The command name after the backslash at `i` ("" for `\\\\`, `\\,` ...)."""
    j = i + 1
    while j < len(src) and src[j].isalpha():
        j += 1
    return src[i + 1:j]


def _group_end(src: str, i: int) -> int:
    """Index just past the `{...}` group opening at `i` (the end of `src` when it is not closed)."""
    end = matching_brace(src, i)
    return end + 1 if end >= 0 else len(src)


def _argument(src: str, i: int) -> tuple[str, int]:
    """(raw argument, index after it) at `i`: a group, a command, or one character."""
    while i < len(src) and src[i].isspace():
        i += 1
    if i >= len(src):
        return "", i
    if src[i] == "{":
        end = _group_end(src, i)
        return src[i + 1:end - 1], end
    if src[i] == "\\":
        name = _name_at(src, i)
        end = i + 1 + max(1, len(name))
        return src[i:end], end
    return src[i], i + 1


def _env_end(src: str, i: int, env: str) -> tuple[int, int]:
    """(start of `\\end{env}`, index after it) for an environment whose body starts at `i`."""
    depth, j = 1, i
    opening, closing = "\\begin{" + env + "}", "\\end{" + env + "}"
    while j < len(src):
        if src.startswith(opening, j):
            depth += 1
            j += len(opening)
        elif src.startswith(closing, j):
            depth -= 1
            if depth == 0:
                return j, j + len(closing)
            j += len(closing)
        elif src[j] == "\\":
            j += 2
        else:
            j += 1
    return len(src), len(src)


def _right_end(src: str, i: int) -> tuple[int, int]:
    """(start of the matching `\\right`, index after it) for a `\\left` whose inside starts at `i`."""
    depth, j = 1, i
    while j < len(src):
        if src[j] == "\\":
            name = _name_at(src, j)
            if name == "left":
                depth += 1
            elif name == "right":
                depth -= 1
                if depth == 0:
                    return j, j + 6
            j += 1 + max(1, len(name))
        else:
            j += 1
    return len(src), len(src)


def split_rows(body: str) -> list[list[str]]:
    """An environment's body as rows (split at top-level `\\\\`) of cells (split at `&`)."""
    rows: list[list[str]] = [[]]
    cell_start, i, depth = 0, 0, 0
    while i < len(body):
        ch = body[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "\\" and body.startswith("\\begin{", i):
            env, after = _argument(body, i + 6)
            i = _env_end(body, after, env)[1]
            continue
        elif ch == "\\" and depth == 0 and body.startswith("\\\\", i):
            rows[-1].append(body[cell_start:i])
            rows.append([])
            i += 2
            # `\\[2pt]`: extra row spacing, not content
            if body[i:i + 1] == "[" and "]" in body[i:]:
                i = body.index("]", i) + 1
            cell_start = i
            continue
        elif ch == "\\":
            i += 2
            continue
        elif ch == "&" and depth == 0:
            rows[-1].append(body[cell_start:i])
            cell_start = i + 1
        i += 1
    rows[-1].append(body[cell_start:])
    return [r for r in rows if any(c.strip() for c in r)]


TRIGGERS = ("\\frac", "\\dfrac", "\\tfrac", "\\cfrac", "\\begin", "\\\\")


def needs_layout(src: str) -> bool:
    return any(t in src for t in TRIGGERS)


def environment(env: str, body: str) -> Box:
    if env == "array":  # column spec first
        body = body[_group_end(body, body.index("{")):] if body.lstrip().startswith("{") else body
    rows = split_rows(body)
    cells = [[layout(c.strip()) for c in row] for row in rows]
    if env in MATRICES or env == "array":
        left, right = MATRICES.get(env, ("", ""))
        inner = grid(cells, ["c"], 2)
        if left:  # a space inside the brackets: `⎡ d  -b ⎤`
            inner = hcat([Box((" ",) * inner.height, inner.baseline), inner, Box((" ",) * inner.height, inner.baseline)])
        return delimited(inner, left, right)
    if env in CASES:
        box = grid(cells, ["l"], 2)
        return delimited(box, "", "}") if env == "rcases" else delimited(box, "{", "")
    if env in GATHERED:
        return grid(cells, ["c"], 0)
    if env in ALIGNED or any(len(r) > 1 for r in rows):
        return grid(cells, ["r", "l"], 1) if any(len(r) > 1 for r in rows) else grid(cells, ["l"], 0)
    return layout(body)  # equation and friends: just the body


def layout(src: str) -> Box:
    """Display math source -> a box (one line unless it has fractions, environments or rows)."""
    from d2lkb.tui.mathtext import convert

    if "\\\\" in src and not src.lstrip().startswith("\\begin"):
        rows = split_rows(src)
        if len(rows) > 1:
            cells = [[layout(c.strip()) for c in row] for row in rows]
            return grid(cells, ["r", "l"], 1)
    items: list[Box] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            text = " ".join(convert("".join(buf)).replace("\n", " ").split())
            if items and items[-1].height > 1 and text and text[0] not in ".,;:)]}!'′":
                text = " " + text  # `1/n Σ`, not `1/nΣ`
            items.append(Box.text(text))
            buf.clear()

    def add_box(box: Box) -> None:
        # a space between a tall box and text glued to it: `1/n Σ`, not `1/nΣ`
        tall = box.height > 1 or (items and items[-1].height > 1)
        if tall and items and not (items[-1].height == 1 and items[-1].lines[0].endswith(" ")):
            items.append(Box.text(" "))
        items.append(box)

    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "\\":
            name = _name_at(src, i)
            after = i + 1 + len(name)
            if name in FRACTIONS:
                num, j = _argument(src, after)
                den, j = _argument(src, j)
                flush()
                add_box(fraction(layout(num), layout(den)))
                i = j
                continue
            if name == "begin":
                env, j = _argument(src, after)
                end, j_after = _env_end(src, j, env)
                flush()
                add_box(environment(env, src[j:end]))
                i = j_after
                continue
            if name == "left":
                k = after
                while k < n and src[k].isspace():
                    k += 1
                opening, k = _argument(src, k)
                end, k_after = _right_end(src, k)
                closing, k_after = _argument(src, k_after)
                inner = layout(src[k:end])
                if inner.height > 1:
                    flush()
                    add_box(delimited(inner, convert(opening).strip() if opening != "." else "",
                                      convert(closing).strip() if closing != "." else ""))
                else:
                    buf.append(src[i:k_after])
                i = k_after
                continue
            if name and items and not buf and items[-1].height > 1 and name in ("top", "intercal"):
                items[-1] = hcat([items[-1], Box.text("ᵀ")])
                i = after
                continue
            buf.append(src[i:after if name else i + 2])
            i = after if name else i + 2
            continue
        if ch == "{":
            end = _group_end(src, i)
            inner = src[i + 1:end - 1]
            if needs_layout(inner):
                flush()
                add_box(layout(inner))
            else:
                buf.append(src[i:end])
            i = end
            continue
        if ch in "^_" and not buf and items and items[-1].height > 1:
            # a script on a tall box (a matrix's inverse, a bracket's power): beside its top or bottom line
            arg, j = _argument(src, i + 1)
            script = convert(ch + "{" + arg + "}")
            tall = items[-1]
            col = [""] * tall.height
            col[0 if ch == "^" else -1] = script
            items[-1] = hcat([tall, Box(tuple(col), tall.baseline)])
            i = j
            continue
        buf.append(ch)
        i += 1
    flush()
    return hcat(items)


def render(src: str) -> str:
    """Display math as lines of text, trailing spaces removed."""
    box = layout(src.strip())
    lines = [line.rstrip() for line in box.lines]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)
