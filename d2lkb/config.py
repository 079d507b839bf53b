"""Knowledge-base settings: `kb/config.toml`, with documented defaults.

`load_config(kb_dir)` never fails on a missing file; a malformed file or a bad
value raises `ValueError` naming every problem.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path

from d2lkb.notes.options import ParseOptions

CONFIG_NAME = "config.toml"
FRAMEWORKS = ("pytorch", "mxnet", "tensorflow", "jax")  # as in d2lkb.checks.cells
DB_NAME = "kb.sqlite"
# A vault's own reading conventions ([cards], [markdown]), in the notes folder's root.
VAULT_CONFIG_NAME = ".d2lkb.toml"


def parse_duration(text: str) -> timedelta:
    """`"90s"`, `"1m"`, `"10m"`, `"2h"`, `"1d"` -> timedelta."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = str(text).strip()
    if len(text) < 2 or text[-1] not in units or not text[:-1].replace(".", "", 1).isdigit():
        raise ValueError(f"bad duration {text!r} (use e.g. 30s, 10m, 2h, 1d)")
    return timedelta(seconds=float(text[:-1]) * units[text[-1]])


@dataclass(frozen=True)
class ReviewConfig:
    desired_retention: float = 0.9
    learning_steps: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=10))
    relearning_steps: tuple[timedelta, ...] = (timedelta(minutes=10),)
    maximum_interval: int = 36500
    fuzz: bool = True
    new_per_day: int = 20
    reviews_per_day: int = 200
    day_starts_at: int = 4
    leech_lapses: int = 8
    leech_suspend: bool = False


@dataclass(frozen=True)
class ChecksConfig:
    device: str = "auto"
    framework: str = "pytorch"  # which cells of a d2lbook note (`%%tab pytorch`) run
    snippet_timeout: float = 30.0
    snippet_memory_mb: int = 4096
    formula_timeout: float = 10.0
    # Read only to warn that it is ignored: trust is the user's (`d2lkb trust`, d2lkb.trust),
    # and a notes repository that ships kb/config.toml cannot grant it to itself.
    trusted: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncConfig:
    # Links (to folders or notes) whose target is outside the notes folder are skipped with a warning
    # unless this is true. A setting of the user's KB, not of the vault: a notes repo cannot make
    # d2lkb read files outside itself.
    follow_symlinks: bool = False


@dataclass(frozen=True)
class CardsConfig:
    flashcard_tags: tuple[str, ...] = ("flashcards",)  # [] = every note makes cards
    highlights: bool = True  # ==cloze==
    bold: bool = False  # **cloze**
    curly: bool = False  # {{cloze}}, {{c1::cloze::hint}}


@dataclass(frozen=True)
class MarkdownConfig:
    bracket_math: bool = False  # \(..\) and \[..\] are math, not escaped brackets


@dataclass(frozen=True)
class Config:
    kb_dir: Path
    notes_dir: Path
    review: ReviewConfig = field(default_factory=ReviewConfig)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    # The [cards] / [markdown] keys this file sets; they win over the vault's own
    # `.d2lkb.toml`, which wins over the defaults (see `parse_options`).
    parse_settings: dict = field(default_factory=dict)

    @property
    def parse(self) -> ParseOptions:
        """The reading options for the notes folder: defaults, then the vault's
        `.d2lkb.toml`, then this KB's config."""
        return parse_options(vault_settings(self.notes_dir), self.parse_settings)

    @property
    def db_path(self) -> Path:
        return self.kb_dir / DB_NAME

    @property
    def ignored_trusted(self) -> tuple[str, ...]:
        """`[checks] trusted` as written in the file: it grants nothing (see `KnowledgeBase.trust_notices`)."""
        return self.checks.trusted


def _section(cls, raw: dict, name: str, problems: list[str]):
    if not isinstance(raw, dict):
        problems.append(f"[{name}] must be a table")
        return cls()
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(f"[{name}] unknown key {key!r}")
            continue
        default = getattr(cls(), key)
        try:
            if key.endswith("_steps"):
                value = tuple(parse_duration(v) for v in value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ValueError("expected true or false")
            elif isinstance(default, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("expected an integer")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError("expected a number")
                value = float(value)
            elif isinstance(default, tuple):
                if not isinstance(value, list):
                    raise ValueError("expected a list")
                value = tuple(str(v) for v in value)
            elif isinstance(default, str):
                value = str(value)
        except (ValueError, TypeError) as exc:
            problems.append(f"[{name}] {key}: {exc}")
            continue
        values[key] = value
    return replace(cls(), **values)


def load_config(kb_dir: Path | str, notes_dir: Path | str | None = None) -> Config:
    """Read `kb_dir/config.toml` (if present). `notes_dir` (CLI/env) wins over the file."""
    kb_dir = Path(kb_dir).expanduser()
    path = kb_dir / CONFIG_NAME
    raw: dict = {}
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
    problems: list[str] = []
    review = _section(ReviewConfig, raw.get("review", {}), "review", problems)
    checks = _section(ChecksConfig, raw.get("checks", {}), "checks", problems)
    sync = _section(SyncConfig, raw.get("sync", {}), "sync", problems)
    parse_settings = {key: raw[key] for key in ("cards", "markdown") if key in raw}
    _check_parse_settings(parse_settings, problems)
    for key in raw:
        if key not in ("notes", "review", "checks", "sync", "cards", "markdown"):
            problems.append(f"unknown key {key!r}")
    if not 0.5 <= review.desired_retention < 1:
        problems.append("[review] desired_retention must be in [0.5, 1)")
    if not 0 <= review.day_starts_at <= 23:
        problems.append("[review] day_starts_at must be an hour 0..23")
    if checks.device not in ("auto", "cpu", "cuda"):
        problems.append("[checks] device must be auto, cpu or cuda")
    if checks.framework not in FRAMEWORKS:
        problems.append(f"[checks] framework must be one of {', '.join(FRAMEWORKS)}")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    if notes_dir is None:
        notes = Path(str(raw.get("notes", "notes"))).expanduser()
        # Relative paths in the file are relative to the kb folder's parent (the project root).
        notes_dir = notes if notes.is_absolute() else kb_dir.resolve().parent / notes
    return Config(kb_dir=kb_dir, notes_dir=Path(notes_dir).expanduser(), review=review, checks=checks, sync=sync,
                  parse_settings=parse_settings)


def _check_parse_settings(raw: dict, problems: list[str]) -> tuple[CardsConfig, MarkdownConfig]:
    cards = _section(CardsConfig, raw.get("cards", {}), "cards", problems)
    markdown = _section(MarkdownConfig, raw.get("markdown", {}), "markdown", problems)
    return cards, markdown


def parse_options(*layers: dict) -> ParseOptions:
    """`ParseOptions` from [cards] / [markdown] tables, later layers winning key by key."""
    merged: dict[str, dict] = {"cards": {}, "markdown": {}}
    for layer in layers:
        for table in merged:
            value = layer.get(table)
            if isinstance(value, dict):
                merged[table].update(value)
    problems: list[str] = []
    cards, markdown = _check_parse_settings(merged, problems)
    if problems:
        raise ValueError("; ".join(problems))
    return ParseOptions(
        flashcard_tags=tuple(t.strip().lstrip("#") for t in cards.flashcard_tags if t.strip().lstrip("#")),
        cloze_highlights=cards.highlights,
        cloze_bold=cards.bold,
        cloze_curly=cards.curly,
        bracket_math=markdown.bracket_math,
    )


def vault_settings(notes_dir: Path | str) -> dict:
    """The [cards] / [markdown] tables of the vault's own `.d2lkb.toml` ({} without one).
    A malformed file raises `ValueError` naming it."""
    path = Path(notes_dir) / VAULT_CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    problems = [f"unknown key {key!r}" for key in raw if key not in ("cards", "markdown")]
    _check_parse_settings(raw, problems)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return {key: raw[key] for key in ("cards", "markdown") if key in raw}


def config_from_env(kb: str | None = None, notes: str | None = None) -> Config:
    """CLI composition: explicit option > environment > default `./kb`."""
    kb = kb or os.environ.get("D2LKB_KB") or "kb"
    notes = notes or os.environ.get("D2LKB_NOTES") or None
    return load_config(kb, notes)
