"""Anki packages with the real Anki engine (PyPI `anki`, headless): our export opened by Anki, a
package written by Anki imported by us, and the round trip d2lkb -> Anki package -> d2lkb."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anki.collection as anki_collection  # the dev extra installs it: a missing engine fails, never skips
import pytest
from typer.testing import CliRunner

from d2lkb.cli import app
from d2lkb.review.days import day_start
from d2lkb.review.types import Grade
from d2lkb.store.imports.apkg import import_apkg
from d2lkb.store.imports.common import ImportFailed
from tests.conftest import write

Collection = anki_collection.Collection
runner = CliRunner()


def _open_in_anki(package: Path, work: Path):
    """A fresh Anki collection with `package` imported, schedules included (as a user would)."""
    work.mkdir(parents=True, exist_ok=True)
    col = Collection(str(work / "collection.anki2"))
    col.import_anki_package(anki_collection.ImportAnkiPackageRequest(
        package_path=str(package), options=anki_collection.ImportAnkiPackageOptions(with_scheduling=True)))
    return col


def _review_some(kb, clock, days: int = 3, per_day: int = 8) -> None:
    grades = [Grade.GOOD, Grade.EASY, Grade.AGAIN, Grade.GOOD, Grade.HARD]
    n = 0
    for _ in range(days):
        for _ in range(per_day):
            card = kb.next_card()
            if card is None:
                break
            kb.answer(card.id, grades[n % len(grades)], duration_ms=4000 + n)
            n += 1
            clock.advance(minutes=2)
        clock.advance(days=1)


def _anki_day_offset(col, card) -> int:
    """Days from Anki's today to the card's due day."""
    return card.due - col.sched.today


def _local_day(ts: int, hour: int = 4):
    return day_start(datetime.fromtimestamp(ts, UTC), hour).date()


@pytest.fixture
def reviewed(make_kb, bundled_copy, clock):
    # Anki's engine schedules against the real clock: review "recently" so its day numbers are sane.
    clock.now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    # The bundled notes have clozes, formula and snippet cards; add the other kinds.
    write(bundled_copy / "kinds.md", "# Kinds #extra\n\nGradient of $x^2$ :: $2x$\n\nLoss ::: objective\n\n"
          "Two steps\nof a question\n?\nThe answer\n")
    kb = make_kb(bundled_copy)
    kb.sync()
    _review_some(kb, clock)
    clock.now = datetime.now(UTC).replace(microsecond=0)
    return kb


def test_export_opens_in_anki_with_note_types_schedule_and_revlog(reviewed, tmp_path):
    kb = reviewed
    out = tmp_path / "bundled.apkg"
    n = kb.export("apkg", out)
    cards = kb.conn.execute("SELECT id, kind, reverse, sibling_key, state, due, last_review, stability, difficulty"
                            " FROM card WHERE retired_at IS NULL").fetchall()
    assert n == len(cards)
    col = _open_in_anki(out, tmp_path / "anki")
    try:
        assert col.card_count() == len(cards)
        by_type = {}
        for nid in col.find_notes(""):
            note = col.get_note(nid)
            by_type.setdefault(note.note_type()["name"], []).append(note)
        clozes = {r[3] for r in cards if r[1] == "cloze"}
        assert len(by_type["d2lkb Cloze"]) == len(clozes)
        assert col.models.by_name("d2lkb Cloze")["type"] == 1  # a real cloze note type
        assert sum(len(n.cards()) for n in by_type["d2lkb Cloze"]) == sum(r[1] == "cloze" for r in cards)
        assert len(by_type["d2lkb Basic"]) == sum(r[1] != "cloze" and not r[3].startswith("reverse:")
                                                  for r in cards)
        (pair,) = by_type["d2lkb Basic (and reversed card)"]
        assert [c.ord for c in pair.cards()] == [0, 1]
        assert pair.cards()[1].question().endswith("objective") and pair.cards()[1].answer().count("Loss") == 1
        basic = next(n for n in by_type["d2lkb Basic"] if n["Back"] == "\\(2x\\)")
        assert basic.cards()[0].question().endswith("Gradient of \\(x^2\\)")

        # Rendered question and answer of each kind.
        cloze_card = by_type["d2lkb Cloze"][0].cards()[0]
        assert '<span class="cloze"' in cloze_card.question() and "[...]" in cloze_card.question()
        formula = next(n for n in by_type["d2lkb Basic"] if n["Front"] == "Product rule")
        assert "\\[\\frac{d}{dx} [f(x) g(x)]" in formula.cards()[0].answer()  # MathJax delimiters
        snippet = next(n for n in by_type["d2lkb Basic"] if "arange" in n["Front"])
        q = snippet.cards()[0].question()
        assert "<pre" in q and 'style="color:' in q  # highlighted, inline styles
        assert "preliminaries/" in snippet["Source"] and ".md:" in snippet["Source"]
        assert all(n.tags for notes in by_type.values() for n in notes)

        # Schedule: every reviewed card has Anki's type, due day, interval and FSRS memory state.
        anki_by_source = {}
        for notes in by_type.values():
            for note in notes:
                for card in note.cards():
                    anki_by_source.setdefault(note["Source"], []).append(card)
        reviewed_cards = [r for r in cards if r[4] == 2]
        assert reviewed_cards, "the fixture reviews some cards into review state"
        path_line = {cid: f"{p}:{ln}" for cid, p, ln in kb.conn.execute("SELECT id, path, line FROM card")}
        today = _local_day(int(datetime.now(UTC).timestamp()))
        candidates = [c for cs in anki_by_source.values() for c in cs if c.type == 2]
        for cid, kind, _rev, _key, _state, due, last, s, _d in reviewed_cards:
            match = [c for c in candidates if abs(c.memory_state.stability - s) < 1e-3
                     and _anki_day_offset(col, c) == (_local_day(due) - today).days
                     and c.last_review_time == last]
            assert match, (cid, kind, path_line[cid])
            assert match[0].ivl == max(1, round((due - last) / 86400))
        # Revlog: every answer, with its grade, time and duration.
        log = kb.conn.execute("SELECT rating, reviewed_at, duration_ms FROM reviewlog ORDER BY reviewed_at").fetchall()
        revlog = col.db.all("SELECT ease, id / 1000, time FROM revlog ORDER BY id")
        assert [tuple(r) for r in revlog] == [tuple(r) for r in log]
    finally:
        col.close()


def test_round_trip_into_an_empty_folder_keeps_cards_schedule_and_history(reviewed, tmp_path, make_kb):
    out = tmp_path / "bundled.apkg"
    reviewed.export("apkg", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase

    back = KnowledgeBase(load_config(tmp_path / "kb2", empty), clock=reviewed.clock)
    try:
        report = import_apkg(back, out)
        assert report.notes_written == ["d2lkb.md"]
        assert report.problems == []
        q = ("SELECT kind, reverse, front, back, state, last_review, reps, lapses, stability, difficulty FROM card"
             " WHERE retired_at IS NULL ORDER BY kind, front, back")
        mine, theirs = back.conn.execute(q).fetchall(), reviewed.conn.execute(q).fetchall()
        assert [r[:8] for r in mine] == [r[:8] for r in theirs]
        # Memory states as Anki stores them (it keeps difficulty to 3 decimals).
        for a, b in zip(mine, theirs, strict=True):
            assert (a[8] is None) == (b[8] is None) and (a[8] is None or abs(a[8] - b[8]) < 1e-3), (a, b)
            assert (a[9] is None) == (b[9] is None) and (a[9] is None or abs(a[9] - b[9]) < 1e-3), (a, b)
        # Review cards are due on the same review day (Anki keeps days, not times).
        q_due = "SELECT kind, front, back, due FROM card WHERE state = 2 ORDER BY kind, front, back"
        assert [(*r[:3], _local_day(r[3])) for r in back.conn.execute(q_due)] == \
               [(*r[:3], _local_day(r[3])) for r in reviewed.conn.execute(q_due)]
        log = ("SELECT c.kind, c.front, r.rating, r.reviewed_at, r.duration_ms, r.state_before, r.state_after,"
               " r.due_after, round(r.stability_after, 6), round(r.difficulty_after, 6) FROM reviewlog r JOIN card c ON c.id = r.card_id"
               " ORDER BY r.reviewed_at, c.front")
        assert back.conn.execute(log).fetchall() == reviewed.conn.execute(log).fetchall()
        assert back.forecast(30) == reviewed.forecast(30)
        assert back.review_stats() == reviewed.review_stats()
        # Importing it again is refused, naming the notes, and changes nothing.
        before = (empty / "d2lkb.md").read_text(encoding="utf-8")
        with pytest.raises(ImportFailed) as exc:
            import_apkg(back, out)
        assert "already imported" in str(exc.value) and "exists" in str(exc.value)
        assert (empty / "d2lkb.md").read_text(encoding="utf-8") == before
    finally:
        back.close()


RULES = """# Rules

$$
\\begin{aligned}
(C f)' & = C f' && \\textrm{Constant rule} \\\\
(f + g)' & = f' + g' && \\textrm{Sum rule} \\\\
(f g)' & = f' g + f g' && \\textrm{Product rule}
\\end{aligned}
$$

Gradient of $x^2$ :: $2x$
"""


def _sibling_groups(kb) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for front, key in kb.conn.execute("SELECT front, sibling_key FROM card WHERE retired_at IS NULL"):
        groups.setdefault(key or front, set()).add(front)
    return {frozenset(g) for g in groups.values()}


def test_round_trip_keeps_the_rows_of_one_formula_block_siblings(tmp_path, make_kb, notes_dir, clock):
    """The named rows of one display are siblings (one of them a day, as Anki buries a note's cards):
    a round trip through an Anki package keeps them one block, so today's queue is the same. Each
    row came back as a display of its own before, and today's new cards counted all three."""
    write(notes_dir / "rules.md", RULES)
    kb = make_kb()
    kb.sync()
    assert frozenset({"Constant rule", "Sum rule", "Product rule"}) in _sibling_groups(kb)
    (sum_rule,) = kb.conn.execute("SELECT id FROM card WHERE front = 'Sum rule'").fetchone()
    kb.answer(sum_rule, Grade.GOOD)
    clock.advance(days=1)  # the siblings it buried are back
    out = tmp_path / "rules.apkg"
    kb.export("apkg", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    from d2lkb.config import load_config
    from d2lkb.store.kb import KnowledgeBase

    back = KnowledgeBase(load_config(tmp_path / "kb2", empty), clock=clock)
    try:
        report = import_apkg(back, out)
        assert report.problems == []
        assert _sibling_groups(back) == _sibling_groups(kb)
        # Each row keeps its own schedule and history (the answered row is the one that was answered).
        q = "SELECT front, state, reps FROM card ORDER BY front"
        assert back.conn.execute(q).fetchall() == kb.conn.execute(q).fetchall()
        assert ("Sum rule", 1, 1) in kb.conn.execute(q).fetchall()
        assert back.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == 1
        import genanki

        (guid,) = back.conn.execute("SELECT json_extract(i.detail, '$.guid') FROM importlog i JOIN card c"
                                    " ON c.id = i.card_id WHERE c.front = 'Sum rule' AND i.source = 'apkg'").fetchone()
        assert guid == genanki.guid_for("d2lkb", sum_rule)  # the row's own Anki note
        assert back.due_counts().total == kb.due_counts().total == 2  # one of the three rules, and the gradient
        assert back.review_stats() == kb.review_stats()
        # Importing what comes back again (its own Anki package) keeps them too.
        again = tmp_path / "again.apkg"
        back.export("apkg", again)
        third = tmp_path / "third"
        third.mkdir()
        with KnowledgeBase(load_config(tmp_path / "kb3", third), clock=clock) as kb3:
            import_apkg(kb3, again)
            assert _sibling_groups(kb3) == _sibling_groups(kb)
    finally:
        back.close()


def _anki_built_package(tmp_path: Path, legacy: bool) -> tuple[Path, dict]:
    """A deck made with Anki itself: a cloze (with MathJax), a reversed card, an image, reviews."""
    work = tmp_path / "anki-src"
    work.mkdir(parents=True)
    col = Collection(str(work / "collection.anki2"))
    try:
        deck = col.decks.id("Maths::Calculus")
        (work / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
        image = col.media.add_file(str(work / "plot.png"))
        cloze = col.new_note(col.models.by_name("Cloze"))
        cloze["Text"] = "The derivative of {{c1::\\(x^2\\)}} is {{c2::<b>2x</b>}}."
        cloze.tags = ["calculus", "maths::derivatives"]
        col.add_note(cloze, deck)
        rev = col.new_note(col.models.by_name("Basic (and reversed card)"))
        rev["Front"], rev["Back"] = "Chain rule", "\\[ (f \\circ g)' = (f' \\circ g) g' \\]"
        col.add_note(rev, deck)
        basic = col.new_note(col.models.by_name("Basic"))
        basic["Front"], basic["Back"] = f'What does this show? <img src="{image}">', "A parabola"
        col.add_note(basic, deck)
        # A few reviews with Anki's own scheduler.
        col.decks.select(deck)
        for answered in range(6):
            card = col.sched.getCard()
            if card is None:
                break
            col.sched.answerCard(card, 3 if answered % 3 else 4)
        # A review card due in a few days, the way Anki users reschedule (a "manual" revlog entry).
        col.sched.set_due_date([basic.cards()[0].id], "5")
        expected = {
            "cards": col.card_count(),
            "revlog": col.db.scalar("SELECT count(*) FROM revlog WHERE ease BETWEEN 1 AND 4"),
            "manual": col.db.scalar("SELECT count(*) FROM revlog WHERE ease = 0"),
            "review_days": sorted(c.due - col.sched.today for c in (col.get_card(i) for i in col.find_cards(""))
                                  if c.queue == 2),
        }
        out = tmp_path / ("legacy.apkg" if legacy else "current.apkg")
        col.export_anki_package(out_path=str(out), limit=None, options=anki_collection.ExportAnkiPackageOptions(
            with_scheduling=True, with_deck_configs=False, with_media=True, legacy=legacy))
    finally:
        col.close()
    return out, expected


@pytest.mark.parametrize("legacy", [False, True], ids=["anki21b", "anki2"])
def test_import_a_package_written_by_anki(tmp_path, make_kb, notes_dir, legacy):
    package, expected = _anki_built_package(tmp_path, legacy)
    with zipfile.ZipFile(package) as z:
        assert ("collection.anki2" if legacy else "collection.anki21b") in z.namelist()
    kb = make_kb()
    kb.clock.now = datetime.now(UTC).replace(microsecond=0)
    report = import_apkg(kb, package)
    assert report.notes_written == ["Maths/Calculus.md"]
    text = (notes_dir / "Maths/Calculus.md").read_text(encoding="utf-8")
    assert "The derivative of ==$x^2$== is ==**2x**==." in text
    assert "Chain rule ::: $$(f \\circ g)' = (f' \\circ g) g'$$" in text
    assert "![](../attachments/plot.png)" in text and (notes_dir / "attachments/plot.png").is_file()
    assert "## #calculus #maths/derivatives" in text
    cards = kb.conn.execute("SELECT kind, reverse, front, back FROM card ORDER BY id").fetchall()
    assert len(cards) == expected["cards"] == 5
    assert ("cloze", 0, "The derivative of [...] is **2x**.", "$x^2$") in cards
    assert ("basic", 1, "$$(f \\circ g)' = (f' \\circ g) g'$$", "Chain rule") in cards
    tags = {r[0] for r in kb.conn.execute("SELECT tag.display FROM cardtag JOIN tag ON tag.id = cardtag.tag_id")}
    assert tags >= {"calculus", "maths/derivatives"}
    assert kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == expected["revlog"] == report.reviews
    events = kb.conn.execute("SELECT count(*) FROM importlog WHERE detail LIKE '%anki_revlog%'").fetchone()[0]
    assert events == expected["manual"] >= 1
    # Due dates as Anki had them.
    today = _local_day(int(kb.now().timestamp()))
    review_days = sorted((_local_day(d) - today).days for (d,) in kb.conn.execute(
        "SELECT due FROM card WHERE state = 2"))
    assert review_days == expected["review_days"] and 5 in review_days
    stats = kb.review_stats()
    assert stats["review"] == len(expected["review_days"])
    assert kb.forecast(7)[5] >= 1


def test_bad_packages_are_refused_with_file_and_nothing_changes(tmp_path, make_kb, notes_dir):
    write(notes_dir / "mine.md", "Q :: A\n")
    kb = make_kb()
    kb.sync()
    before = sorted(p.relative_to(notes_dir) for p in notes_dir.rglob("*"))

    def refused(path: Path, *needles: str) -> None:
        with pytest.raises(ImportFailed) as exc:
            import_apkg(kb, path)
        for needle in needles:
            assert needle in str(exc.value), str(exc.value)
        assert sorted(p.relative_to(notes_dir) for p in notes_dir.rglob("*")) == before
        assert kb.conn.execute("SELECT count(*) FROM card").fetchone()[0] == 1

    good, _ = _anki_built_package(tmp_path, legacy=True)
    truncated = tmp_path / "truncated.apkg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    refused(truncated, str(truncated), "truncated")
    other = tmp_path / "other.apkg"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hello")
    refused(other, str(other), "not an Anki package")
    text = tmp_path / "plain.apkg"
    text.write_text("not a zip", encoding="utf-8")
    refused(text, str(text), "not a readable zip")

    # An unknown schema version, and duplicate notes, in an otherwise valid legacy package.
    def doctored(name: str, sql: str) -> Path:
        work = tmp_path / name
        work.mkdir()
        with zipfile.ZipFile(good) as z:
            z.extractall(work)
        # Anki's legacy export holds the real collection as .anki21 (and a stub .anki2 for old Ankis).
        member = "collection.anki21" if (work / "collection.anki21").exists() else "collection.anki2"
        db = sqlite3.connect(work / member)
        db.executescript(sql)
        db.commit()
        db.close()
        out = tmp_path / f"{name}.apkg"
        with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w") as dst:
            for item in src.namelist():
                dst.write(work / item, item)
        return out

    refused(doctored("future", "UPDATE col SET ver = 99"), "future.apkg", "schema version 99")
    # The current format (zstd + protobuf) says its version in `meta`; Anki's engine refuses a newer one.
    current, _ = _anki_built_package(tmp_path / "cur", legacy=False)
    newer = tmp_path / "newer.apkg"
    with zipfile.ZipFile(current) as src, zipfile.ZipFile(newer, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, b"\x08\x09" if item == "meta" else src.read(item))  # PackageMetadata.version = 9
    refused(newer, "newer.apkg", "requires a newer version of Anki")
    refused(doctored("dups", "UPDATE notes SET guid = 'same'"), "dups.apkg", "share the GUID 'same'")
    # A package whose deck file would overwrite a note: refused before anything is written.
    write(notes_dir / "Maths" / "Calculus.md", "mine\n")
    before = sorted(p.relative_to(notes_dir) for p in notes_dir.rglob("*"))
    refused(good, "Calculus.md", "exists")


def test_cli_import_apkg_and_json_export_show_import_events(tmp_path, notes_dir):
    package, _ = _anki_built_package(tmp_path, legacy=False)
    base = ["--kb", str(tmp_path / "kb"), "--notes", str(notes_dir)]
    result = runner.invoke(app, [*base, "import", "apkg", str(package)])
    assert result.exit_code == 0, result.output
    assert "wrote Maths/Calculus.md" in result.stdout and "card schedule(s) imported" in result.stdout
    out = tmp_path / "d.json"
    assert runner.invoke(app, [*base, "export", "json", "-o", str(out)]).exit_code == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {e["source"] for e in data["imports"]} == {"apkg"}
    assert len(data["reviews"]) >= 1
    bad = runner.invoke(app, [*base, "import", "apkg", str(tmp_path / "missing.apkg")])
    assert bad.exit_code == 1 and "missing.apkg: no such file" in bad.stderr


def test_what_cannot_be_carried_over_is_reported_per_note(tmp_path, make_kb, notes_dir):
    work = tmp_path / "src"
    work.mkdir()
    col = Collection(str(work / "collection.anki2"))
    try:
        deck = col.decks.id("Geo")
        optional = col.new_note(col.models.by_name("Basic (optional reversed card)"))
        optional["Front"], optional["Back"], optional["Add Reverse"] = "France", "Paris", "y"
        col.add_note(optional, deck)
        hinted = col.new_note(col.models.by_name("Cloze"))
        hinted["Text"], hinted["Back Extra"] = "The capital of Italy is {{c1::Rome::city}}.", "Since 1871"
        col.add_note(hinted, deck)
        custom = col.models.copy(col.models.by_name("Basic"))
        custom["name"] = "Fancy"
        col.models.add_field(custom, col.models.new_field("Notes"))
        custom["tmpls"][0]["qfmt"] = "<b>{{Front}}</b>"
        col.models.update_dict(custom)
        fancy = col.new_note(col.models.by_name("Fancy"))
        fancy["Front"], fancy["Back"], fancy["Notes"] = "Spain", "Madrid", "an add-on's field"
        col.add_note(fancy, deck)
        out = tmp_path / "geo.apkg"
        col.export_anki_package(out_path=str(out), limit=None, options=anki_collection.ExportAnkiPackageOptions(
            with_scheduling=True, with_deck_configs=False, with_media=True, legacy=False))
    finally:
        col.close()
    kb = make_kb()
    report = import_apkg(kb, out)
    text = (notes_dir / "Geo.md").read_text(encoding="utf-8")
    assert "France ::: Paris" in text and "The capital of Italy is ==Rome==." in text and "Spain :: Madrid" in text
    problems = [str(p) for p in report.problems]
    assert f"anki note {hinted.id}: cloze hints not carried over" in problems
    assert f"anki note {hinted.id}: field 'Back Extra' kept as text after the cloze (not shown with the card)" in problems
    assert any(p.startswith(f"anki note {fancy.id}: custom template of 'Fancy'") for p in problems)
    assert f"anki note {fancy.id}: field 'Notes' not carried over" in problems
    assert not any(str(optional.id) in p for p in problems)
    assert kb.conn.execute("SELECT count(*) FROM card").fetchone()[0] == 4  # 2 + 1 + 1


def test_undo_never_takes_back_imported_history(tmp_path, make_kb, notes_dir):
    package, expected = _anki_built_package(tmp_path, legacy=False)
    kb = make_kb()
    kb.clock.now = datetime.now(UTC).replace(microsecond=0)
    kb.import_apkg(package)
    log = kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0]
    assert log == expected["revlog"] and kb.undo() is None
    card = kb.conn.execute("SELECT id FROM card WHERE state = 0 OR due <= ? LIMIT 1",
                           (int(kb.now().timestamp()) + 86400 * 30,)).fetchone()[0]
    before = kb.conn.execute("SELECT state, due, stability FROM card WHERE id = ?", (card,)).fetchone()
    kb.answer(card, Grade.GOOD)
    assert kb.undo() == card
    assert kb.conn.execute("SELECT state, due, stability FROM card WHERE id = ?", (card,)).fetchone() == before
    assert kb.undo() is None
    assert kb.conn.execute("SELECT count(*) FROM reviewlog").fetchone()[0] == log


def test_ctrl_c_mid_import_leaves_notes_folder_and_kb_as_they_were(tmp_path, make_kb, notes_dir, monkeypatch):
    """Files are written and synced inside the import's transaction: an interruption while schedules
    are written removes the new files and rolls the KB back (sync included)."""
    import d2lkb.store.imports.apkg as apkg_mod

    write(notes_dir / "mine.md", "Q :: A\n")
    package, _ = _anki_built_package(tmp_path, legacy=False)
    kb = make_kb()
    kb.sync()
    before_files = sorted(p.relative_to(notes_dir) for p in notes_dir.rglob("*"))
    before_db = [kb.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("note", "card", "reviewlog")]
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = apkg_mod.record_import
    monkeypatch.setattr(apkg_mod, "record_import", interrupted)
    with pytest.raises(KeyboardInterrupt):
        kb.import_apkg(package)
    assert sorted(p.relative_to(notes_dir) for p in notes_dir.rglob("*")) == before_files
    assert [kb.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("note", "card", "reviewlog")] \
        == before_db
    assert kb.conn.execute("SELECT count(*) FROM importlog").fetchone()[0] == 0
    monkeypatch.undo()
    assert kb.import_apkg(package).imported >= 1  # and then it goes through


def _reset_card_package(tmp_path: Path) -> Path:
    """A deck made with Anki: one card reviewed twice, then reset to new (its history kept)."""
    work = tmp_path / "anki-reset"
    work.mkdir()
    col = Collection(str(work / "collection.anki2"))
    try:
        note = col.new_note(col.models.by_name("Basic"))
        note["Front"], note["Back"] = "Capital of France", "Paris"
        col.add_note(note, col.decks.id("Geo"))
        col.decks.select(col.decks.id("Geo"))
        for _ in range(2):
            card = col.sched.getCard()
            col.sched.answerCard(card, 3)
        col.sched.schedule_cards_as_new([note.cards()[0].id])
        out = tmp_path / "reset.apkg"
        col.export_anki_package(out_path=str(out), limit=None, options=anki_collection.ExportAnkiPackageOptions(
            with_scheduling=True, with_deck_configs=False, with_media=False, legacy=False))
    finally:
        col.close()
    return out


def test_a_card_reset_to_new_in_anki_is_new_as_of_the_kbs_clock(tmp_path, make_kb, notes_dir, clock):
    """The import takes its time from the KB's clock, never the machine's (which an imported day number
    cannot avoid: see the next test). The fixed clock here is months away from the real one."""
    package = _reset_card_package(tmp_path)
    kb = make_kb()
    report = import_apkg(kb, package)
    assert report.reviews == 2
    assert kb.conn.execute("SELECT state, due FROM card").fetchall() == [(0, int(clock.now.timestamp()))]


def test_a_day_rollover_while_anki_imports_the_package_imports_it_again(tmp_path, monkeypatch):
    """Anki's engine shifts review cards' day numbers by the days between the package's collection
    and the new one, both counted to the clock's today: a rollover in between would move them by a
    day, so the package is imported again, into a fresh collection."""
    from anki.scheduler.base import SchedulerBase

    from d2lkb.store.anki import read

    package, expected = _anki_built_package(tmp_path, legacy=False)
    real_today = SchedulerBase.today
    asked: list[int] = []

    def today(sched) -> int:  # the first collection sees the day roll over during its import
        asked.append(1)
        return real_today.fget(sched) + (1 if len(asked) == 2 else 0)

    opened: list[str] = []
    real_collection = anki_collection.Collection

    def collection(path, *args, **kwargs):
        opened.append(path)
        return real_collection(path, *args, **kwargs)

    monkeypatch.setattr(SchedulerBase, "today", property(today))
    monkeypatch.setattr(anki_collection, "Collection", collection)
    pkg = read.read_package(package)
    try:
        assert len(opened) == 2 and not Path(opened[0]).exists()  # the first one is gone
        cards = [c for n in pkg.notes for c in n.cards]
        review_days = sorted(c.due - pkg.today for c in cards if c.queue == 2)
        assert review_days == expected["review_days"]
    finally:
        pkg.tmp.cleanup()
