"""What a review session carries besides the screen: its undo history and card lists
(`Session`, `UndoStep`), and the Markdown a card is shown as (question, answer, and what a
failing check found)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from d2lkb.textsafe import printable
from d2lkb.tui.formatting import FAILING, short
from d2lkb.tui.mathtext import plain_math, prettify_math

if TYPE_CHECKING:
    from textual.content import Content

    from d2lkb.review.types import CardView
    from d2lkb.store.study import CheckResultView

CLOZE_BLANK = "[...]"
MODES = ("due", "ahead", "cram")


@dataclass
class UndoStep:
    """One action of this session that `u` can take back."""

    action: str  # answer | bury | suspend | cram | edit
    card_id: int
    label: str  # how the message names the card
    log_id: int | None = None  # answer: the review-log row it wrote
    previous: int | None = None  # bury: buried_until before; cram: the queue position it came from
    grade: int = 0
    path: str = ""  # edit: the note file, its text before and after the editor ran
    text_before: str = ""
    text_after: str = ""


@dataclass
class Session:
    """What survives the switch to the summary screen and back: the session's start, its answers,
    its undo history and, for ahead/cram sessions, the cards still to show."""

    query: str | None
    mode: str = "due"
    days: int = 0
    reschedule: bool = False  # cram: answers reschedule the cards (Anki's filtered decks' option)
    start: datetime | None = None
    answered: int = 0
    undo: list[UndoStep] = field(default_factory=list)
    pending: list[int] | None = None  # ahead/cram: card ids still to show (None: not listed yet)
    resolved: str | None = None  # the query with leaf tags made full (`#mlp` -> `#dl/mlp`)
    error: str = ""  # the query names no tag (shown by the summary)


def card_markdown(card: CardView) -> tuple[str, str]:
    """(question, answer) as Markdown for display: math prettified, a cloze's blank in bold and its
    answer shown in the context it was cut from, as a `==highlight==` (reverse video, underlined,
    bold: it reads without colour); bold when the answer itself holds `==`."""
    front, back = card.front, card.back
    if card.kind == "cloze" and front.count(CLOZE_BLANK) == 1 and "\n" not in back.strip():
        answer = back.strip()
        back = front.replace(CLOZE_BLANK, f"**{answer}**" if "==" in answer else f"=={answer}==")
        front = front.replace(CLOZE_BLANK, f"**{CLOZE_BLANK}**")
    return prettify_math(front), prettify_math(back)


@dataclass(frozen=True)
class CardFaces:
    """A card's question, answer and check findings, rendered for the review screen's Statics."""

    front: Content
    back: Content
    check: Content


def card_faces(card: CardView, check: str = "") -> CardFaces:
    """The card rendered (math prettified, Markdown to `Content`); done in the worker that fetched it."""
    from d2lkb.tui.cardtext import markdown_content

    front, back = card_markdown(card)
    # user text: control characters shown, never obeyed (`printable`), and never read as markup
    return CardFaces(markdown_content(printable(front)), markdown_content(printable(back)),
                     markdown_content(printable(check)))


def check_markdown(card: CardView, result: CheckResultView | None) -> str:
    """For a refuted or failing card: what the check found, as Markdown shown under the answer
    (actual output next to the expected one, the counterexample, the error)."""
    if result is None or card.check_status not in FAILING:
        return ""
    return printable(_check_markdown(card, result))  # the output and the detail are the note's code's


def _check_markdown(card: CardView, result: CheckResultView) -> str:
    fence = "````"
    if card.kind == "snippet" and result.status == "failed" and (result.output or result.expected):
        return ("**✗ This card's expected output is wrong: the code printed something else.**\n\n"
                f"Expected (in the note):\n\n{fence}text\n{result.expected.rstrip()}\n{fence}\n\n"
                f"Actual output:\n\n{fence}text\n{result.output.rstrip()}\n{fence}\n")
    if result.status == "refuted":
        return ("**✗ This formula is refuted: it does not hold.** Counterexample:\n\n"
                f"{fence}text\n{result.detail.strip()}\n{fence}\n")
    what = {"error": "The check raised an error", "timeout": "The check timed out",
            "failed": "The check failed"}.get(result.status, "The check failed")
    return f"**✗ {what}:**\n\n{fence}text\n{result.detail.strip()}\n{fence}\n"


def card_label(card: CardView) -> str:
    """A card as an undo message names it: `"What is the derivative of x²?" (calculus.md:9)`."""
    return printable(f"\"{short(plain_math(card.front), 40)}\" ({card.path}:{card.line})")
