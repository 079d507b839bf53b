"""Shared fixtures: real SQLite files, real notes folders in tmp_path, a fixed clock."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from d2lkb.config import load_config
from d2lkb.store.kb import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "notes"


class Clock:
    """A settable, timezone-aware clock (the only thing tests fake about time)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**kwargs)


@pytest.fixture(autouse=True)
def user_config(tmp_path_factory, monkeypatch) -> Path:
    """The user's configuration folder (the trust list): a fresh empty one per test, so a test
    never reads or writes the real home's, and no folder is trusted unless the test says so."""
    home = tmp_path_factory.mktemp("user-config")
    monkeypatch.setenv("D2LKB_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


@pytest.fixture
def notes_dir(tmp_path: Path) -> Path:
    """A test vault in which every note makes cards (its `.d2lkb.toml` says so; without
    it only notes tagged #flashcards would, as in Obsidian Spaced Repetition)."""
    d = tmp_path / "notes"
    d.mkdir()
    (d / ".d2lkb.toml").write_text("[cards]\nflashcard_tags = []\n", encoding="utf-8")
    return d


@pytest.fixture
def make_kb(tmp_path: Path, clock: Clock):
    """KnowledgeBase over tmp_path/notes (or a given folder) with a fixed clock."""
    opened: list[KnowledgeBase] = []

    def make(notes: Path | None = None) -> KnowledgeBase:
        cfg = load_config(tmp_path / "kb", notes or tmp_path / "notes")
        kb = KnowledgeBase(cfg, clock=clock)
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        kb.close()


@pytest.fixture
def bundled_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "bundled"
    shutil.copytree(BUNDLED, dest)
    return dest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
