"""Bad input never stops a sync or loses what the KB already had."""

from __future__ import annotations

import builtins
import os

from tests.conftest import write

GOOD = "# Good\n\n#ok\n\nQ :: A\n"


def warnings_for(report, path):
    return [(w.line, w.message) for w in report.warnings if w.path == path]


def test_each_bad_file_is_reported_and_the_rest_ingested(make_kb, notes_dir):
    write(notes_dir / "good.md", GOOD)
    (notes_dir / "latin1.md").write_bytes(b"# Latin\n\nline two\ncaf\xe9 :: coffee\n")
    (notes_dir / "nul.md").write_bytes(b"# Nul\n\nfirst\nsec\x00ond :: x\n")
    (notes_dir / "huge.md").write_bytes(b"# Huge\n" + b"word " * (4 * 1024 * 1024))  # 20 MiB
    write(notes_dir / "template.md", "---\ndate: {{date}}\ntags: [a\n---\n# Template\n\nT :: U\n")
    write(notes_dir / "fence.md", "# Fence\n\n```python\nprint(1)\n")
    loop = notes_dir / "loop"
    loop.mkdir()
    os.symlink("..", loop / "back")
    kb = make_kb()
    r = kb.sync()
    paths = {w.path for w in r.warnings}
    assert {"latin1.md", "nul.md", "huge.md", "template.md", "fence.md"} <= paths
    assert warnings_for(r, "latin1.md")[0][0] == 4
    assert "UTF-8" in warnings_for(r, "latin1.md")[0][1]
    assert warnings_for(r, "nul.md")[0][0] == 4
    assert "too large" in warnings_for(r, "huge.md")[0][1]
    assert warnings_for(r, "template.md")[0][0] >= 1
    assert "unterminated" in warnings_for(r, "fence.md")[0][1]
    assert any("loop" in w.message for w in r.warnings)
    ingested = {p for (p,) in kb.conn.execute("SELECT path FROM note")}
    assert ingested == {"good.md", "latin1.md", "nul.md", "template.md", "fence.md"}
    fronts = {f for (f,) in kb.conn.execute("SELECT front FROM card")}
    assert {"Q", "caf\ufffd", "T"} <= fronts


def test_unreadable_or_grown_file_keeps_previous_content(make_kb, notes_dir, monkeypatch):
    p = write(notes_dir / "n.md", GOOD)
    kb = make_kb()
    kb.sync()
    # The OS refuses to read the file (tests run as root, so chmod cannot do it).
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if str(file) == str(p):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    p.write_text(GOOD + "\nMore :: stuff\n", encoding="utf-8")
    monkeypatch.setattr(builtins, "open", deny)
    r = kb.sync()
    monkeypatch.undo()
    assert any("cannot read" in w.message for w in r.warnings)
    assert (r.notes, r.cards, r.removed) == (1, 1, 0)
    p.write_bytes(b"# Huge\n" + b"x" * (6 * 1024 * 1024))
    r = kb.sync()
    assert (r.notes, r.cards, r.removed) == (1, 1, 0)
    assert kb.conn.execute("SELECT front FROM card").fetchone()[0] == "Q"
