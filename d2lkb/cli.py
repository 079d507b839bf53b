"""The `d2lkb` command: Typer commands wired to the knowledge base (the composition root)."""

from __future__ import annotations

import sys
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated, NoReturn
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from d2lkb.cliparams import install as _plain_params
from d2lkb.completion import complete_device, complete_format, complete_note, complete_query
from d2lkb.config import FRAMEWORKS, Config, config_from_env
from d2lkb.query import QueryError
from d2lkb.store.db import KBError
from d2lkb.store.search import COUNT_CAP, HIGHLIGHT
from d2lkb.terminal import SafeConsole, json_text, user_text
from d2lkb.textsafe import printable


class _Group(TyperGroup):
    """The command group: the one place where a failure of the KB file (missing, damaged, read-only,
    newer, full disk, ...) becomes one line and exit status 1 instead of a traceback, and where a KB
    this run created is removed again when the command fails."""

    def invoke(self, ctx):
        import sqlite3

        try:
            return super().invoke(ctx)
        except typer.Exit as exc:
            if exc.exit_code:
                _discard_new_kb(ctx.obj)
            raise
        except KBError as exc:
            _discard_new_kb(ctx.obj)
            fail(str(exc))
        except (sqlite3.DatabaseError, OSError) as exc:
            message = _kb_failure(exc, ctx.obj)
            _discard_new_kb(ctx.obj)
            if message is None:
                raise
            fail(message)
        except BaseException:
            _discard_new_kb(ctx.obj)
            raise


def _kb_failure(exc: Exception, state) -> str | None:
    """The one line for an SQLite or disk failure (None: a bug, shown as a traceback)."""
    import errno
    import sqlite3

    from d2lkb.store.db import describe

    db_path = state.config.db_path if isinstance(state, State) and state._config is not None else Path("kb.sqlite")
    if isinstance(exc, sqlite3.DatabaseError):
        known = ("full", "readonly", "read-only", "not a database", "malformed", "could not decode", "locked",
                 "busy", "disk i/o", "unable to open")
        return describe(exc, db_path) if any(k in str(exc).lower() for k in known) else None
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        if exc.errno == errno.EROFS:
            return f"{exc.filename or db_path}: on a read-only file system; this command needs to write there"
        return describe(exc, db_path)
    return None


def _discard_new_kb(state) -> None:
    """A command that fails leaves no new, empty KB behind (nor the folder it made for it)."""
    import sqlite3

    if not isinstance(state, State) or state.created is None:
        return
    path, folders = state.created
    state.created = None
    for kb in state.opened:  # this run's own connections would look like another process's
        kb.close()
    try:
        # Several processes on a first use each think they made the KB: remove it only while no other
        # connection has it open (an exclusive lock, not waited for) and it is still empty, and hold
        # that lock (out of WAL mode, so that closing removes nothing) while the files go.
        if not path.exists():
            Path(f"{path}.lock").unlink(missing_ok=True)
        else:
            with closing(sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=rw", uri=True, timeout=0,
                                         isolation_level=None)) as conn:
                conn.execute("PRAGMA locking_mode = EXCLUSIVE")
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if any(conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()
                       for t in ("note", "card", "reviewlog", "trusted") if t in tables):
                    return  # something was kept after all (another process may have written it): leave it
                conn.execute("PRAGMA journal_mode = DELETE").fetchone()
                conn.execute("BEGIN EXCLUSIVE")
                conn.execute("COMMIT")
                for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
    except (sqlite3.Error, OSError):
        return  # in use by another process, or not the empty KB this run made: leave it
    for folder in folders:  # innermost first; only if nothing else was put there
        try:
            folder.rmdir()
        except OSError:
            break


_plain_params()  # str/int values without importing pydantic (Typer's own coercion for the rest)
app = typer.Typer(
    cls=_Group,
    help="d2lkb: search, review (FSRS) and check your Markdown study notes. Run without a command for the TUI.",
    no_args_is_help=False,
    add_completion=True,
    rich_markup_mode="rich",
)
# Everything printed goes through a SafeConsole, and user text (notes, file names, tags, queries)
# goes in as `user_text`, never inside markup: a note can neither style nor drive the terminal.
console = SafeConsole()
err = SafeConsole(stderr=True)


def _readable_help_names() -> None:
    """Typer 0.29 prints a flag as `--help <bool>` and a required argument as `{QUERY}` (`{fmt}`);
    print them as `--help` and `QUERY`, `FORMAT`: a flag takes no value, arguments in capitals,
    optional ones in brackets (click's usual forms). Skipped if Typer's internals differ."""
    from typer.core import TyperArgument, TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or not hasattr(TyperArgument, "_usage_display_name"):
        return

    def display_type_rich(self, ctx):
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    def usage_name(self) -> str:
        name = self.display_name_raw.upper()
        return (name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")

    def row_name(self) -> str:
        return self.display_name_raw.upper() + ("..." if self.metavar is None and self.nargs != 1 else "")

    TyperOption.display_type_rich = display_type_rich
    TyperArgument._usage_display_name = usage_name
    TyperArgument._rich_display_name = row_name


_readable_help_names()

# metavar "": a flag takes no value, so its help shows none (Typer would print `<bool>`)
JsonOpt = Annotated[bool, typer.Option("--json", metavar="", help="Print JSON instead of a table.")]


class State:
    def __init__(self, kb: str | None, notes: str | None):
        self.kb_opt, self.notes_opt = kb, notes
        self._config: Config | None = None
        # (the KB file, the folders made for it) when this run created the KB (see `_discard_new_kb`)
        self.created: tuple[Path, list[Path]] | None = None
        self.opened: list = []  # the KnowledgeBases `open` gave (closed before a new KB is removed)

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = config_from_env(self.kb_opt, self.notes_opt)
            except ValueError as exc:
                fail(str(exc))
        return self._config

    def open(self, *, full: bool = True):
        """The KB; `full=False`: a `KBCore` (sync, search, graph, trust, maintenance), for the commands
        that need no more: they do not load the review, study, import and check code."""
        if full:
            from d2lkb.store.kb import KnowledgeBase as kb_class
        else:
            from d2lkb.store.kbcore import KBCore as kb_class

        path = self.config.db_path
        if self.created is None and not path.exists():
            folders = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
            self.created = (path, folders)
        try:
            kb = kb_class(self.config)
        except KBError as exc:
            fail(str(exc))
        self.opened.append(kb)
        for notice in kb.trust_notices():  # old places that no longer grant trust
            err.print(user_text(f"warning: {notice}", style="yellow"), soft_wrap=True)
        return kb


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(Text.assemble(("error:", "bold red"), " ", user_text(message)), soft_wrap=True)
    raise typer.Exit(code)


def _state(ctx: typer.Context) -> State:
    return ctx.ensure_object(State) if ctx.obj is None else ctx.obj


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    kb: Annotated[str | None, typer.Option("--kb", envvar="D2LKB_KB", help="Knowledge-base folder (default: ./kb).")] = None,
    notes: Annotated[str | None, typer.Option("--notes", envvar="D2LKB_NOTES",
                                              help="Notes folder (default: from kb/config.toml, ./notes).")] = None,
) -> None:
    ctx.obj = State(kb, notes)
    if ctx.invoked_subcommand is None:
        _run_tui(ctx.obj, query=None, start="home")


def _run_tui(state: State, query: str | None, start: str, mode: str = "due", days: int = 0,
             extra_new: int = 0, reschedule: bool = False) -> None:
    notes = state.config.notes_dir
    if not notes.is_dir():
        fail(f"notes folder not found: {notes} (set --notes, D2LKB_NOTES or `notes` in "
             f"{state.config.kb_dir / 'config.toml'})")
    try:
        from d2lkb.tui.app import run_app
    except ImportError as exc:  # pragma: no cover - the TUI ships with the package
        fail(f"the TUI is not available: {exc}")
    kb = state.open()
    if extra_new:
        kb.extra_new_today(extra_new)
    try:
        run_app(kb, query=query, start=start, mode=mode, days=days, reschedule=reschedule)
    finally:
        kb.close()


def _sync(kb, quiet: bool = False):
    """Sync with a progress bar when there is a lot to read (a read-only KB: a notice, no sync)."""
    from d2lkb.store.vaultscan import SyncReport

    if kb.read_only:
        err.print(user_text(f"KB is read-only: not syncing ({kb.config.db_path})", style="dim"), soft_wrap=True)
        return SyncReport()
    progress = None
    task = None

    def on_progress(done: int, total: int) -> None:
        nonlocal progress, task
        if quiet or total < 200 or not err.is_terminal:
            return
        if progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            progress = Progress(TextColumn("syncing notes"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=err, transient=True)
            progress.start()
            task = progress.add_task("sync", total=total)
        progress.update(task, completed=done)

    try:
        return kb.sync(on_progress=on_progress)
    except FileNotFoundError as exc:
        fail(f"{exc} (set --notes, D2LKB_NOTES or `notes` in {kb.config.kb_dir / 'config.toml'})")
    except ValueError as exc:  # a malformed vault `.d2lkb.toml`
        fail(str(exc))
    finally:
        if progress is not None:
            progress.stop()


@app.command("sync")
def sync_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Read the notes folder into the knowledge base (incremental)."""
    kb = _state(ctx).open(full=False)
    with kb:
        if kb.read_only:
            fail(f"{kb.config.db_path}: read-only; cannot sync the notes into it")
        report = _sync(kb)
    if as_json:
        print(json_text(report.to_dict()))
        return
    table = Table(title=user_text(f"Synced {kb.config.notes_dir}"), show_header=True)
    for col in ("notes", "cards", "tags", "formulas", "snippets", "links", "added", "updated", "removed", "unchanged"):
        table.add_column(col, justify="right")
    table.add_row(*(str(getattr(report, c)) for c in ("notes", "cards", "tags", "formulas", "snippets", "links",
                                                     "added", "updated", "removed", "unchanged")))
    console.print(table)
    if report.retired_cards or report.revived_cards:
        console.print(f"{report.retired_cards} card(s) retired, {report.revived_cards} came back")
    if report.notes and not report.cards and kb.config.parse.flashcard_tags:
        tags = ", ".join("#" + t for t in kb.config.parse.flashcard_tags)
        console.print(user_text(f"No cards: only notes tagged {tags} make cards (as in Obsidian Spaced Repetition); "
                                "set `flashcard_tags = []` under [cards] in the vault's .d2lkb.toml for every note "
                                "(see notes/README.md)."))
    _print_warnings(report.warnings)
    console.print(f"[dim]{report.seconds:.2f} s[/]")


@contextmanager
def _synced(ctx: typer.Context, *, full: bool = True):
    """The KB, synced quietly first (query commands always answer from the current notes)."""
    kb = _state(ctx).open(full=full)
    with kb:
        _sync(kb, quiet=True)
        yield kb


def _print_warnings(warnings) -> None:
    for w in warnings:
        where = f"{w.path}:{w.line}" if w.line else w.path
        err.print(Text.assemble(("warning:", "yellow"), " ", user_text(f"{where}: {w.message}")), soft_wrap=True)


def _highlighted(snippet: str) -> Text:
    """The snippet with its matched words in bold; the markers are split off before `printable`
    shows the note's own control characters (it would show the markers as ␂ and ␃ too)."""
    text = Text()
    parts = snippet.split(HIGHLIGHT[0])
    text.append(printable(parts[0]))
    for part in parts[1:]:
        hit, _, rest = part.partition(HIGHLIGHT[1])
        text.append(printable(hit), style="bold yellow")
        text.append(printable(rest))
    return text


@app.command("search")
def search_cmd(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(metavar="QUERY", help='e.g. \'#calculus "product rule" -kind:snippet\'',
                                         autocompletion=complete_query)],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10000, help="Most hits to show.")] = 20,
    as_json: JsonOpt = False,
    no_sync: Annotated[bool, typer.Option("--no-sync", metavar="", help="Do not sync the notes first.")] = False,
) -> None:
    """Search notes, sections, cards, formulas and snippets.

    Query language: words, "phrases", #tag (matches nested tags), tag:x, path:x,
    kind:card|note|section|formula|snippet, status:refuted|passed|new|suspended|...,
    due:today|tomorrow|overdue|N, AND / OR / NOT / -x, parentheses.
    """
    _check_query(query)  # fail fast, before touching the KB
    kb = _state(ctx).open(full=False)
    with kb:
        if not no_sync:
            report = _sync(kb, quiet=True)
            if not as_json:
                _print_warnings(report.warnings)
        try:
            resolved = kb.resolve_query(query)
            hits, total = kb.search_counted(resolved.query or query, limit=limit + 1)
            more = len(hits) > limit
        except QueryError as exc:
            fail(f"bad query: {exc}", code=2)
    hits = hits[:limit]
    if as_json:
        print(json_text([h.to_dict() for h in hits]))
        return
    for note in resolved.notes:
        err.print(user_text(note, style="dim"))
    if not hits:
        console.print("no matches")
        return
    table = Table(show_header=True, header_style="bold", expand=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("where", overflow="fold")
    table.add_column("match", ratio=1)
    for h in hits:
        match = Text()
        if h.kind in ("note", "section", "formula"):
            match = user_text(_short(h.title, 60) + "\n", style="bold")
        match.append_text(_highlighted(h.snippet))
        if h.tags:
            match.append_text(user_text("\n" + " ".join("#" + t for t in h.tags), style="cyan"))
        table.add_row(h.kind, user_text(f"{h.path}:{h.line}"), match)
    console.print(table)
    if more:
        shown = f"{COUNT_CAP:,}+" if total > COUNT_CAP else f"{total:,}"
        console.print(f"[dim]showing {limit} of {shown} matches; more with --limit N[/]", highlight=False)


@app.command("tags")
def tags_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The tag tree with counts of notes and cards (nested tags include their children)."""
    with _synced(ctx, full=False) as kb:
        tags = kb.tags()
    if as_json:
        print(json_text([t.to_dict() for t in tags]))
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("tag")
    table.add_column("notes", justify="right")
    table.add_column("cards", justify="right")
    for t in tags:
        table.add_row(user_text("  " * t.depth + "#" + t.tag.rsplit("/", 1)[-1], style="cyan"), str(t.count),
                      str(t.cards))
    console.print(table)


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    note: Annotated[str, typer.Argument(metavar="NOTE", help="Path, file name or title of a note.",
                                        autocompletion=complete_note)],
    as_json: JsonOpt = False,
) -> None:
    """One note: sections, tags, cards, formulas, snippets, links, backlinks and related notes."""
    with _synced(ctx, full=False) as kb:
        found = kb.find_note(note)
        if not found:
            fail(f"no note matches {note!r} (try `d2lkb search {note}`)")
        if len(found) > 1 and not any(p == note for _, p, _ in found):
            names = ", ".join(p for _, p, _ in found[:8])
            fail(f"{note!r} matches {len(found)} notes: {names}; give the path")
        view = kb.note(found[0][0])
    if as_json:
        print(json_text(view.to_dict(), default=str))
        return
    console.print(Text.assemble(user_text(view.title, "bold"), "  ", user_text(view.path, "dim")))
    if view.tags:
        console.print(user_text(" ".join("#" + t for t in view.tags), style="cyan"))
    if view.sections:
        console.rule("sections")
        for s in view.sections:
            console.print(Text.assemble("  " * (s["level"] - 1), user_text(s["title"]), " ",
                                        (f":{s['line']}-{s['end_line']}", "dim")))
    if view.cards:
        console.rule(f"cards ({len(view.cards)})")
        table = Table(show_header=True, header_style="bold", expand=True)
        table.add_column("line", justify="right")
        table.add_column("kind")
        table.add_column("front", ratio=2)
        table.add_column("back", ratio=1)
        for c in view.cards:
            table.add_row(str(c["line"]), c["kind"], user_text(_short(c["front"], 160)), user_text(_short(c["back"], 80)))
        console.print(table)
    if view.formulas or view.snippets:
        console.rule("checks")
        for f in view.formulas:
            if f["display"]:
                console.print(Text.assemble(user_text(f":{f['line']} formula {f['name'] or ''} "),
                                            user_text(f["status"], "bold")))
        for s in view.snippets:
            console.print(Text.assemble(user_text(f":{s['line']} {s['language']} snippet "),
                                        user_text(s["status"], "bold")))
    for title, items, fmt in (
        ("links", view.links, lambda x: f":{x['line']} [[{x['target']}]] -> {x['resolved'] or '(unresolved)'}"),
        ("backlinks", view.backlinks, lambda x: f"{x['path']}:{x['line']}  {x['title']}"),
        ("related", view.related, lambda x: f"{x['path']}  {x['title']}  ({', '.join(x['because'])})"),
    ):
        if items:
            console.rule(title)
            for x in items:
                console.print(user_text(fmt(x)))


@app.command("review")
def review_cmd(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(metavar="QUERY", help="Search query selecting the cards, e.g. '#calculus'.",
                                                autocompletion=complete_query)] = None,
    ahead: Annotated[int, typer.Option("--ahead", min=0, max=3650, metavar="DAYS",
                                       help="Review cards due in the next DAYS days (rescheduled as usual).")] = 0,
    cram: Annotated[bool, typer.Option("--cram", metavar="", help="Go through every card the query selects; the schedule "
                                       "is not touched.")] = False,
    reschedule: Annotated[bool, typer.Option("--reschedule", metavar="", help="With --cram: answers reschedule "
                                             "the cards, as in review (Anki's filtered decks' option).")] = False,
    extra_new: Annotated[int, typer.Option("--extra-new", min=0, max=10000, metavar="N",
                                           help="Allow N more new cards today (kept until the day ends).")] = 0,
) -> None:
    """Open the TUI straight into reviewing the due cards a query selects (all when omitted).

    A leaf tag finds its nested tag (#mlp is #dl/mlp); a tag nothing carries is an error."""
    if query:
        _check_query(query)
    if ahead and cram:
        fail("--ahead and --cram do not go together", code=2)
    if reschedule and not cram:
        fail("--reschedule goes with --cram (review and --ahead always reschedule)", code=2)
    mode = "ahead" if ahead else "cram" if cram else "due"
    _run_tui(_state(ctx), query=query, start="review", mode=mode, days=ahead, extra_new=extra_new,
             reschedule=reschedule)


@app.command("stats")
def stats_cmd(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(metavar="QUERY", help="Only the cards a query selects, e.g. '#calculus'.",
                                                autocompletion=complete_query)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Card counts, due today, reviews today, 30-day retention, the week's forecast by date, and
    the interval and difficulty distributions (of all cards, or of a query's)."""
    if query:
        _check_query(query)
    with _synced(ctx) as kb:
        try:
            resolved = kb.resolve_query(query).query if query else None
        except QueryError as exc:
            fail(str(exc), code=2)
        stats = kb.review_stats() if resolved is None else {}
        qs = kb.query_stats(resolved, days=7)
        due_today = kb.due_counts(resolved).total
    if as_json:
        if resolved is None:
            print(json_text(stats))
        else:
            print(json_text(qs.to_dict() | {"due_today": due_today}))
        return
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    if resolved:
        table.add_row("query", user_text(resolved))
    numbers = stats or {"cards": qs.cards, "new": qs.new, "learning": qs.learning, "review": qs.review,
                        "suspended": qs.suspended, "due_today": due_today, "retention_30d": qs.retention_30d}
    for key, value in numbers.items():
        if key == "retention_30d":
            value = "—" if value is None else f"{value:.1%}"
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)
    console.print("[bold]due next 7 days[/]")
    for i, (day, n) in enumerate(qs.forecast):
        label = "today" if i == 0 else "tomorrow" if i == 1 else f"{day:%a %d %b}"
        console.print(f"  {label:<10} {'█' * min(n, 40)} {n}", highlight=False)
    for title, rows in (("intervals (review cards)", qs.intervals), ("difficulty (1 easy - 10 hard)", qs.difficulty)):
        if any(n for _, n in rows):
            console.print(f"[bold]{title}[/]  " + "  ".join(f"{label} {n}" for label, n in rows if n), highlight=False)
        else:
            console.print(f"[bold]{title}[/]  no data yet", highlight=False)


@app.command("optimize")
def optimize_cmd(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; keep the current parameters.")] = False,
    reset: Annotated[bool, typer.Option("--reset", help="Go back to FSRS's default parameters.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit the FSRS parameters to your own review log (kept only if they predict it better)."""
    from d2lkb.review.optimize import NotEnoughReviews

    kb = _state(ctx).open()
    with kb:
        if reset:
            console.print("default parameters restored" if kb.reset_parameters() else "already on default parameters")
            return
        try:
            result = kb.optimize(apply=not dry_run)
        except NotEnoughReviews as exc:
            fail(str(exc))
    if as_json:
        print(json_text(result.to_dict() | {"applied": result.improved and not dry_run}))
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("log loss", justify="right")
    table.add_column("RMSE (bins)", justify="right")
    table.add_row("current parameters", f"{result.log_loss_before:.4f}", f"{result.rmse_before:.4f}")
    table.add_row("fitted parameters", f"{result.log_loss_after:.4f}", f"{result.rmse_after:.4f}")
    console.print(table)
    console.print(f"{result.reviews} reviews of {result.cards} cards, fitted in {result.seconds:.2f} s")
    if not result.improved:
        console.print("the fitted parameters do not predict your reviews better; kept the current ones")
    elif dry_run:
        console.print("dry run: parameters not changed")
    else:
        console.print("[green]new parameters saved[/]; they apply to the next answers")


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="Only what this search query selects, e.g. '#calculus'.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda (default: from config)",
                                               autocompletion=complete_device)] = None,
    framework: Annotated[str | None, typer.Option(
        "--framework", help="Cells of d2lbook notes to run: pytorch | mxnet | tensorflow | jax (default: from config)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Re-run everything.")] = False,
    as_json: JsonOpt = False,
    junit: Annotated[Path | None, typer.Option("--junit", help="Also write a JUnit XML report here.")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, max=256, show_default=False,
                                             help="Parallel formula workers (default: available cores).")] = None,
) -> None:
    """Verify formulas with SymPy and re-run code snippets with torch. Exits 1 on any failure.

    Ctrl-C stops the run and prints what was checked so far (exit status 130).
    """
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from d2lkb.store.checks import CheckReport

    if device is not None and device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        fail(f"--device must be auto, cpu or cuda (got {device!r})", code=2)
    if framework is not None and framework.lower() not in FRAMEWORKS:
        fail(f"--framework must be one of {', '.join(FRAMEWORKS)} (got {framework!r})", code=2)
    if query:
        _check_query(query)
    kb = _state(ctx).open()
    with kb:
        report = _sync(kb, quiet=True)
        if not as_json:
            _print_warnings(report.warnings)
        progress = Progress(TextColumn("checking"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.description}", markup=False),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err, transient=True,
                            disable=as_json or not err.is_terminal)
        with progress:
            task = progress.add_task("", total=None)

            def on_progress(done, total, item):
                progress.update(task, completed=done, total=total, description=printable(f"{item.path}:{item.line}"))

            result = CheckReport()
            started = time.perf_counter()
            try:
                kb.run_checks(query, device=device, framework=framework, use_cache=not no_cache, jobs=jobs,
                              on_progress=on_progress, into=result)
            except KeyboardInterrupt:  # the workers are gone; report what was checked
                result.interrupted = True
                result.seconds = time.perf_counter() - started
    if junit:
        _write_junit(junit, result)
    if as_json:
        print(json_text(result.to_dict()))
    else:
        _print_checks(result)
    if result.interrupted:
        err.print(f"interrupted after {len(result.results)} results; they are cached, so the next check goes on from there")
        raise typer.Exit(130)
    raise typer.Exit(0 if result.ok else 1)


STATUS_STYLE = {"verified": "green", "passed": "green", "definition": "cyan", "refuted": "bold red",
                "failed": "bold red", "error": "bold red", "timeout": "red", "unparsed": "yellow", "context": "yellow",
                "skipped": "dim", "untrusted": "magenta", "unchecked": "dim"}


def _print_checks(result) -> None:
    if not result.results:
        console.print("nothing to check: no display formulas, ```sympy blocks or code snippets selected")
        return
    table = Table(show_header=True, header_style="bold")
    table.add_column("status", no_wrap=True)
    table.add_column("where", overflow="fold")
    table.add_column("what", max_width=28, overflow="ellipsis", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True, min_width=4)
    for r in result.sorted():
        status = r.status.value + (" (known)" if r.known_failure else "") + (" ·" if r.cached else "")
        table.add_row(Text(status, style=STATUS_STYLE.get(r.status.value, "")), user_text(f"{r.path}:{r.line}"),
                      user_text(r.name or r.kind), f"{r.seconds:.2f}")
    console.print(table)
    for r in result.sorted():
        if r.is_failure or r.status.value in ("unparsed", "untrusted", "context") or r.known_failure:
            style = STATUS_STYLE.get(r.status.value, "")
            console.print(user_text(f"{r.path}:{r.line} {r.status.value}", style=style))
            if r.known_failure:
                console.print(user_text(f"  known failure: {r.known_failure}", style="dim"))
            console.print(user_text("  " + r.detail.replace("\n", "\n  ")), soft_wrap=True)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(result.summary.items()))
    console.print(Text.assemble(user_text(f"{len(result.results)} checks on {result.device or 'cpu'} "
                                          f"(torch {result.torch_version}): {summary} "),
                                (f"({result.seconds:.2f} s; · = cached)", "dim")))
    if result.failures:
        console.print(f"[bold red]{len(result.failures)} failing[/]")


def _write_junit(path: Path, result) -> None:
    from xml.etree import ElementTree as ET

    suite = ET.Element("testsuite", name="d2lkb check", tests=str(len(result.results)),
                       failures=str(len(result.failures)), time=f"{result.seconds:.3f}")
    for r in result.sorted():
        case = ET.SubElement(suite, "testcase", classname=r.path, name=f"{r.kind} line {r.line} {r.name}".strip(),
                             time=f"{r.seconds:.3f}")
        if r.is_failure:
            ET.SubElement(case, "failure", message=r.status.value).text = r.detail
        elif r.status.value in ("skipped", "untrusted", "unparsed", "context") or r.known_failure:
            ET.SubElement(case, "skipped", message=f"{r.status.value}: {r.detail[:200]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


@app.command("orphans")
def orphans_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Notes with no links in or out (candidates for linking into the rest of your notes)."""
    with _synced(ctx, full=False) as kb:
        paths = kb.orphans()
    if as_json:
        print(json_text(paths))
        return
    for path in paths:
        console.print(user_text(path))
    console.print(f"[dim]{len(paths)} orphan note(s)[/]")


@app.command("trust")
def trust_cmd(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="Folder whose code snippets may run.", show_default=False)] = None,
    remove: Annotated[bool, typer.Option("--remove", metavar="", help="Stop trusting the folder.")] = False,
    list_: Annotated[bool, typer.Option("--list", metavar="",
                                        help="Show the trusted folders and the file that keeps them.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Allow `d2lkb check` to run code from a folder, in your own trust list (not the notes repository's).

    Neither a notes folder nor its kb/config.toml can trust itself; a note whose real file (links resolved) is outside every trusted folder is reported untrusted, not run.
    """
    from d2lkb.trust import load_trusted, trust_file

    if list_:
        try:
            folders = load_trusted()
        except ValueError as exc:
            fail(str(exc))
        if as_json:
            print(json_text({"file": str(trust_file()), "trusted": folders}))
            return
        console.print(user_text(f"{trust_file()}:"))
        for folder in folders:
            console.print(user_text(f"  {folder}"))
        if not folders:
            console.print("  (no folder is trusted: `d2lkb check` runs no code)")
        return
    if path is None:
        fail("give a folder (or --list)", code=2)
        return
    kb = _state(ctx).open(full=False)
    with kb:
        try:
            if remove:
                console.print(user_text(f"removed {path}" if kb.untrust(path) else f"{path} was not trusted"))
                return
            before = [str(p) for p in kb.trusted_dirs()]
            resolved = kb.trust(path)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
    if str(resolved) in before:
        console.print(user_text(f"{resolved} was already trusted"))
    else:
        console.print(user_text(f"trusted {resolved} (in {trust_file()})"))


@app.command("suspend")
def suspend_cmd(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Search query selecting the cards, e.g. '#calculus kind:cloze'.")],
    undo: Annotated[bool, typer.Option("--undo", help="Unsuspend instead.")] = False,
) -> None:
    """Suspend the cards a query selects (or unsuspend them with --undo, e.g. `suspend status:suspended --undo`)."""
    _check_query(query)
    with _synced(ctx, full=False) as kb:
        n = kb.set_suspended(query, not undo)
    console.print(f"{'unsuspended' if undo else 'suspended'} {n} card(s)")


@app.command("backup")
def backup_cmd(
    ctx: typer.Context,
    dest: Annotated[Path | None, typer.Argument(help="File to write (default: kb/backups/kb-DATE-TIME.sqlite).")] = None,
) -> None:
    """Write a consistent copy of the knowledge base (review history included)."""
    kb = _state(ctx).open(full=False)
    with kb:
        try:
            path = kb.backup(dest)
        except (FileExistsError, RuntimeError, OSError) as exc:
            fail(str(exc))
    console.print(user_text(f"backed up to {path} ({path.stat().st_size / 2**20:.1f} MiB)"))


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Argument(help="csv | json (cards and review log) | apkg (Anki package)",
                                       autocompletion=complete_format)],
    query: Annotated[str | None, typer.Argument(help="Only the cards this query selects.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: d2lkb.FORMAT).")] = None,
) -> None:
    """Export cards (with their schedule and tags) to CSV, JSON or an Anki .apkg."""
    if fmt not in ("csv", "json", "apkg"):
        fail(f"unknown format {fmt!r}: use csv, json or apkg", code=2)
    if query:
        _check_query(query)
    dest = output or Path(f"d2lkb.{fmt}")
    with _synced(ctx, full=False) as kb:
        try:
            n = kb.export(fmt, dest, query)
        except OSError as exc:
            fail(f"cannot write {dest}: {exc.strerror or exc}")
    console.print(user_text(f"wrote {n} card(s) to {dest}"))


import_app = typer.Typer(help="Move in: schedules and review history from OSR vaults and Anki packages.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")


def _print_import(report, as_json: bool) -> None:
    if as_json:
        print(json_text(report.to_dict()))
        return
    for path in report.notes_written:
        console.print(user_text(f"wrote {path}"))
    console.print(f"{report.imported} card schedule(s) imported, {report.reviews} review(s) of history,"
                  f" {report.unchanged} unchanged, {report.kept} kept (already reviewed in d2lkb)"
                  + (f", {report.media} media file(s)" if report.media else ""))
    for path in report.stripped:
        console.print(user_text(f"stripped OSR schedule data from {path}"))
    for problem in report.problems:
        err.print(user_text(f"not carried over: {problem}", style="yellow"), soft_wrap=True)


def _import_failed(exc) -> None:
    for problem in exc.problems:
        err.print(user_text(f"error: {problem}", style="red"), soft_wrap=True)
    fail("nothing was imported (the knowledge base and the notes folder are unchanged)")


@import_app.command("osr")
def import_osr_cmd(
    ctx: typer.Context,
    vault: Annotated[Path | None, typer.Argument(help="The OSR vault (default: the notes folder).")] = None,
    strip: Annotated[bool, typer.Option("--strip", help="Remove OSR's schedule comments and sr-* keys from the"
                                        " notes after a successful import.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Take over the Obsidian Spaced Repetition schedules of a vault (<!--SR:...--> and sr-due front matter)."""
    from d2lkb.store.imports.common import ImportFailed

    state = _state(ctx)
    if vault is not None:
        state.notes_opt = str(vault)
    if not state.config.notes_dir.is_dir():
        fail(f"notes folder not found: {state.config.notes_dir}")
    kb = state.open()
    with kb:
        try:
            report = kb.import_osr(strip=strip)
        except ImportFailed as exc:
            _import_failed(exc)
    _print_import(report, as_json)


@import_app.command("apkg")
def import_apkg_cmd(
    ctx: typer.Context,
    package: Annotated[Path, typer.Argument(help="An Anki deck package (.apkg / .colpkg).")],
    as_json: JsonOpt = False,
) -> None:
    """Turn an Anki package into Markdown notes (one file per deck) with schedules and review history."""
    from d2lkb.store.imports.common import ImportFailed

    state = _state(ctx)
    if not state.config.notes_dir.is_dir():
        fail(f"notes folder not found: {state.config.notes_dir}")
    kb = state.open()
    with kb:
        try:
            report = kb.import_apkg(package)
        except ImportFailed as exc:
            _import_failed(exc)
    _print_import(report, as_json)


def _check_query(query: str) -> None:
    from d2lkb.query import parse_query

    try:
        parse_query(query)
    except QueryError as exc:
        fail(f"bad query: {exc}", code=2)


@app.command("retired")
def retired_cmd(
    ctx: typer.Context,
    purge: Annotated[bool, typer.Option("--purge", help="Delete retired cards and their review history.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before purging.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List cards whose text disappeared from the notes (history kept), or purge them."""
    with _synced(ctx, full=False) as kb:
        cards = kb.retired_cards()
        if purge:
            if cards and not yes and not typer.confirm(f"Delete {len(cards)} retired card(s) and their history?"):
                raise typer.Exit(1)
            n = kb.purge_retired()
            console.print(f"purged {n} retired card(s)")
            return
    if as_json:
        print(json_text(cards))
        return
    if not cards:
        console.print("no retired cards")
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("id", "kind", "last seen", "front", "reviews"):
        table.add_column(col)
    for c in cards:
        table.add_row(str(c["id"]), c["kind"], user_text(f"{c['path']}:{c['line']}"), user_text(_short(c["front"], 70)),
                      str(c["reviews"]))
    console.print(table)


def _dash_queries(argv: list[str]) -> list[str]:
    """``d2lkb search '-draft'``: a query that starts with ``-`` is a query, not an option.

    Click would read it as options (``-d``, or ``-n`` inside ``-tensor``); such an argument is moved
    after a ``--``, the way ``search -- '-draft'`` is written by hand.
    """
    if not any(a.startswith("-") and not a.startswith("--") for a in argv[1:]):
        return argv  # nothing to move (the usual case: no Click command tree built twice)
    import typer.main

    command = typer.main.get_command(app)
    for k, word in enumerate(argv):
        sub = getattr(command, "commands", {}).get(word)
        if sub is None or not any(p.param_type_name == "argument" for p in sub.params):
            continue
        if "--" in argv[k + 1 :]:
            return argv  # written by hand: the usual meaning
        known = {o for p in sub.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        head, rest, moved = argv[: k + 1], [], []
        takes_value = {o for p in sub.params if p.param_type_name == "option" and not p.is_flag
                       for o in p.opts}
        i = k + 1
        while i < len(argv):
            a = argv[i]
            attached = a[:2] in known and (a[:2] not in takes_value or a[2:].isdigit())  # -n5
            if a.startswith("-") and not a.startswith("--") and a not in known and not attached \
                    and not a[1:2].isdigit():
                moved.append(a)
            else:
                rest.append(a)
                if a in takes_value and i + 1 < len(argv):
                    rest.append(argv[i + 1])
                    i += 1
            i += 1
        return head + rest + (["--", *moved] if moved else [])
    return argv


def main() -> None:
    sys.argv = _dash_queries(sys.argv)
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
