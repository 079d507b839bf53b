"""Running the checks of the KB: formulas (SymPy) and snippets (torch), cached in `checkresult`.

Results are cached by what they depend on: a formula by its LaTeX; a snippet by the
code chain of its note up to it (computed at sync), the device, the framework whose
cells run, and the environment (Python and every installed distribution's version:
installing or removing a package re-runs the snippets). Every result is kept, failed
and skipped ones too, except those that may differ on a re-run of the same code (a
timeout, a worker crash, `--device cuda` without CUDA). Expected outputs are not part of the key: a
cached run's output is compared again, so editing an expected output never re-runs
code. An unchanged corpus re-checks without starting a worker (and without importing
torch or sympy).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from d2lkb.model import CheckStatus, Snippet
from d2lkb.store.db import transaction

FAILURES = {CheckStatus.REFUTED, CheckStatus.FAILED, CheckStatus.ERROR, CheckStatus.TIMEOUT}
ORDER = {s: i for i, s in enumerate([
    CheckStatus.REFUTED, CheckStatus.FAILED, CheckStatus.ERROR, CheckStatus.TIMEOUT, CheckStatus.UNPARSED,
    CheckStatus.CONTEXT,
    CheckStatus.UNTRUSTED, CheckStatus.SKIPPED, CheckStatus.UNCHECKED, CheckStatus.DEFINITION,
    CheckStatus.VERIFIED, CheckStatus.PASSED])}


@dataclass(frozen=True, slots=True)
class CheckItemResult:
    kind: str  # formula | snippet
    path: str
    line: int
    status: CheckStatus
    detail: str
    device: str
    seconds: float
    name: str = ""
    cached: bool = False
    known_failure: str | None = None
    check_hash: str = ""

    @property
    def is_failure(self) -> bool:
        return self.status in FAILURES and not self.known_failure

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "path": self.path, "line": self.line, "status": self.status.value,
               "detail": self.detail, "device": self.device, "seconds": round(self.seconds, 4)}
        if self.known_failure:
            out["known_failure"] = self.known_failure
        return out


@dataclass
class CheckReport:
    results: list[CheckItemResult] = field(default_factory=list)
    device: str = ""
    torch_version: str = ""
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C: these are the results so far (each stored as it came)

    @property
    def summary(self) -> dict[str, int]:
        return dict(Counter(r.status.value for r in self.results))

    @property
    def failures(self) -> list[CheckItemResult]:
        return [r for r in self.results if r.is_failure]

    @property
    def ok(self) -> bool:
        return not self.failures

    def sorted(self) -> list[CheckItemResult]:
        """Failures first, then by file and line."""
        return sorted(self.results, key=lambda r: (not r.is_failure, ORDER.get(r.status, 99), r.path, r.line))

    def to_dict(self) -> dict:
        return {"results": [r.to_dict() for r in self.sorted()], "summary": self.summary,
                "device": self.device, "torch_version": self.torch_version, "seconds": round(self.seconds, 3),
                "interrupted": self.interrupted}


def torch_version() -> str:
    import importlib.metadata  # ~20 ms (email, zipfile): only when checks run

    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def _version_key(torch: str) -> str:
    return f"{torch} py{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


# Bumped when what a snippet run means changes (cell selection, emulation), so that older results are not reused.
_RUNNER_VERSION = 2


def environment_hash() -> str:
    """12 hex digits of sha256 over this interpreter's installed distributions (name==version)."""
    import importlib.metadata

    names = sorted({f"{(d.name or '').lower()}=={d.version}" for d in importlib.metadata.distributions()})
    return hashlib.sha256("\n".join([sys.version, *names]).encode()).hexdigest()[:12]


def _path_fingerprint() -> str:
    """The folders on sys.path and their modification times: installing or removing a package
    adds or removes a `*.dist-info` folder in one of them, which changes that folder's time."""
    parts = [sys.version]
    for entry in sys.path:
        try:
            parts.append(f"{entry}\0{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            parts.append(f"{entry}\0-")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class ChecksMixin:
    """Methods of KnowledgeBase (uses self.conn, self.config, self.lock, self.now(), self.code_verdicts())."""

    def _environment_hash(self) -> str:
        """`environment_hash()`, remembered per sys.path fingerprint (reading every
        distribution's metadata takes ~50-100 ms; a cached re-check should not)."""
        key = f"environment {_path_fingerprint()}"
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row:
            return row[0]
        value = environment_hash()
        self.conn.execute("DELETE FROM meta WHERE key LIKE 'environment %'")
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def _snippet_variant(self, version: str, framework: str) -> str:
        """What a snippet's cached result depends on besides its code chain and the device."""
        return f"{version} {framework} env:{self._environment_hash()} r{_RUNNER_VERSION}"

    def resolve_check_device(self, requested: str) -> str:
        """auto -> cuda/cpu, remembered per torch version so cached re-checks need no torch import."""
        if requested != "auto":
            return requested
        from d2lkb.checks.snippets import _fake_cuda, resolve_device

        fake = _fake_cuda()
        if fake is not None:
            return "cuda" if fake else "cpu"
        version = torch_version()
        if "+cpu" in version or version == "none" or not Path("/proc/driver/nvidia/version").exists():
            return "cpu"
        key = f"auto-device {version}"
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row:
            return row[0]
        device = resolve_device("auto")
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, device))
        return device

    def _check_targets(self, query: str | None) -> tuple[list, dict[int, list]]:
        """(display formulas, {note_id: snippets}) in scope of the query (all when None)."""
        if query:
            from d2lkb.query import parse_query
            from d2lkb.store.searchsql import _Compiler

            comp = _Compiler(self.search_context())
            rows = self.conn.execute(
                f"SELECT d.check_hash, d.note_id FROM doc d WHERE d.check_hash IS NOT NULL AND {comp.sql(parse_query(query))}",
                comp.params).fetchall()
            hashes = {h for h, _ in rows}
            notes = {n for _, n in rows}
        formulas = []
        by_note: dict[int, list] = {}
        for row in self.conn.execute(
            "SELECT f.id, n.path, f.line, f.latex, f.name, f.known_failure, f.check_hash, f.note_id, f.display,"
            " f.block, f.section FROM formula f JOIN note n ON n.id = f.note_id ORDER BY n.path, f.idx"
        ):
            by_note.setdefault(row[7], []).append(row)
        for note_rows in by_note.values():
            for row, source in zip(note_rows, formula_sources(note_rows), strict=True):
                if source is None or query and row[6] not in hashes:
                    continue
                formulas.append((*row[:8], source))
        snippets: dict[int, list] = {}
        for row in self.conn.execute(
            "SELECT s.note_id, n.path, s.idx, s.language, s.code, s.expected, s.line, s.expected_line, s.info,"
            " s.known_failure, s.check_hash FROM snippet s JOIN note n ON n.id = s.note_id ORDER BY n.path, s.idx"
        ):
            if query and row[0] not in notes:
                continue
            snippets.setdefault(row[0], []).append(row)
        return formulas, snippets

    def _cached(self, kind: str, check_hash: str, device: str, version: str):
        return self.conn.execute(
            "SELECT status, detail, output, seconds FROM checkresult WHERE kind=? AND check_hash=? AND device=?"
            " AND torch_version=?", (kind, check_hash, device, version)).fetchone()

    def _store(self, kind, check_hash, device, version, status, detail, output, seconds) -> None:
        self.conn.execute(
            "INSERT INTO checkresult (kind, check_hash, device, torch_version, status, detail, output, seconds, checked_at)"
            " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (kind, check_hash, device, torch_version) DO UPDATE SET"
            " status=excluded.status, detail=excluded.detail, output=excluded.output, seconds=excluded.seconds,"
            " checked_at=excluded.checked_at",
            (kind, check_hash, device, version, str(status), detail, output, seconds, int(self.now().timestamp())))

    def run_checks(
        self,
        query: str | None = None,
        *,
        device: str | None = None,
        framework: str | None = None,
        use_cache: bool = True,
        jobs: int | None = None,
        on_progress: Callable[[int, int, CheckItemResult], None] | None = None,
        into: CheckReport | None = None,
    ) -> CheckReport:
        """Check formulas and snippets (all, or those a search query selects) and store the results.

        `jobs`: formula worker processes (default: the available cores). Each result is
        stored as it comes and added to `into` (a new report by default), so a caller
        that catches KeyboardInterrupt keeps the results so far; the workers are killed.
        """
        started = time.perf_counter()
        cfg = self.config.checks
        with self.lock:
            dev = self.resolve_check_device(device or cfg.device)
            version = _version_key(torch_version())
            fw = (framework or cfg.framework).strip().lower()
            formulas, notes = self._check_targets(query)
            variant = self._snippet_variant(version, fw) if notes else ""
        # Whether a note's code may run: from its file now (real path in a trusted folder, the bytes
        # the KB read), per note; and what runs is parsed from those bytes (d2lkb.store.codetrust).
        verdicts = self.code_verdicts({nid: rows[0][1] for nid, rows in notes.items()
                                       if any(r[3] in ("python", "pycon", "sympy") for r in rows)})
        report = into if into is not None else CheckReport()
        report.device, report.torch_version = dev, version
        total = len(formulas) + sum(len(v) for v in notes.values())
        done = 0

        def emit(item: CheckItemResult) -> None:
            nonlocal done
            done += 1
            report.results.append(item)
            if on_progress:
                on_progress(done, total, item)

        # Formulas and sympy blocks: cached by content.
        todo: list[tuple] = []
        for fid, path, line, _latex, name, known, h, _nid, source in formulas:
            key = formula_key(source)
            cached = self._cached("formula", h, "", key) if use_cache else None
            if cached:
                emit(CheckItemResult("formula", path, line, CheckStatus(cached[0]), cached[1], "", cached[3],
                                     name or "", True, known, h))
            else:
                todo.append(("formula", fid, path, line, source, name, known, h, key))
        for rows in notes.values():
            for row in rows:
                if row[3] != "sympy":
                    continue
                nid, path, _idx, _lang, code, _e, line, _el, _info, known, h = row
                verdict = verdicts[nid]
                if verdict.reason:
                    emit(CheckItemResult("snippet", path, line, CheckStatus.UNTRUSTED, verdict.reason, dev, 0.0,
                                         "sympy", False, known, h))
                    continue
                cached = self._cached("formula", h, "", "") if use_cache else None
                if cached:
                    emit(CheckItemResult("snippet", path, line, CheckStatus(cached[0]), cached[1], "", cached[3],
                                         "sympy", True, known, h))
                    continue
                from_file = verdict.runnable([row], self.config.parse)
                if isinstance(from_file, str):
                    emit(CheckItemResult("snippet", path, line, CheckStatus.UNTRUSTED, from_file, dev, 0.0,
                                         "sympy", False, known, h))
                else:
                    todo.append(("sympy", None, path, line, from_file[0].code, "sympy", known, h, ""))
        if todo:
            from d2lkb.checks.pool import FormulaChecker, available_cores

            by_key = {i: t for i, t in enumerate(todo)}
            items = [(i, "latex" if t[0] == "formula" else "sympy", t[4]) for i, t in by_key.items()]
            workers = min(len(items), jobs or available_cores())
            with FormulaChecker(timeout=cfg.formula_timeout, jobs=workers) as fc:
                for key, res in fc.check_many(items):
                    kind, _fid, path, line, _src, name, known, h, version_key = by_key[key]
                    with self.lock:
                        self._store("formula", h, "", version_key, res.status, res.detail, "", res.seconds)
                    emit(CheckItemResult("formula" if kind == "formula" else "snippet", path, line, res.status,
                                         res.detail, "", res.seconds, name or "", False, known, h))
        # Snippets: per note, cached by code chain + device + framework + environment.
        runner = None
        runner_broken: str | None = None  # why the snippet worker could not start: every snippet says so
        try:
            for nid, rows in notes.items():
                code_rows = [r for r in rows if r[3] in ("python", "pycon")]
                if not code_rows:
                    continue
                why_not = verdicts[nid].reason
                cached = [self._cached("snippet", r[10], dev, variant) for r in code_rows] \
                    if use_cache and why_not is None else [None]
                snippets: list[Snippet] = []
                if why_not is None and not all(cached):  # it runs: the code is the file's, not the KB's copy
                    from_file = verdicts[nid].runnable(code_rows, self.config.parse)
                    why_not, snippets = (from_file, []) if isinstance(from_file, str) else (None, from_file)
                if why_not is not None:
                    for r in code_rows:
                        emit(CheckItemResult("snippet", r[1], r[6], CheckStatus.UNTRUSTED, why_not, dev, 0.0,
                                             r[3], False, r[9], r[10]))
                    continue
                if all(cached):
                    for r, c in zip(code_rows, cached, strict=True):
                        status, detail = _rejudge(c, r[5])
                        emit(CheckItemResult("snippet", r[1], r[6], status, detail, dev, c[3], r[3], True, r[9], r[10]))
                    continue
                if runner is None and runner_broken is None:
                    from d2lkb.checks.snippets import SnippetRunner, WorkerError

                    runner = SnippetRunner(device=dev, timeout=cfg.snippet_timeout, memory_mb=cfg.snippet_memory_mb,
                                           framework=fw)
                    try:
                        runner.start()
                    except WorkerError as exc:
                        runner.close()
                        runner, runner_broken = None, str(exc)
                if runner is None:
                    for r in code_rows:
                        emit(CheckItemResult("snippet", r[1], r[6], CheckStatus.ERROR,
                                             f"the snippet worker could not start: {runner_broken}", dev, 0.0,
                                             r[3], False, r[9], r[10]))
                    continue
                results = runner.run_note(snippets)
                with self.lock, transaction(self.conn):
                    for r, res in zip(code_rows, results, strict=True):
                        if res.cacheable:  # failed and skipped too: an unchanged note is not re-run
                            self._store("snippet", r[10], dev, variant, res.status, res.detail, res.output, res.seconds)
                for r, res in zip(code_rows, results, strict=True):
                    emit(CheckItemResult("snippet", r[1], r[6], res.status, res.detail, res.device or dev, res.seconds,
                                         r[3], False, r[9], r[10]))
        finally:
            if runner is not None:
                runner.close()
        report.seconds = time.perf_counter() - started
        return report

    def check_results(self) -> list[dict]:
        """Latest stored result of every display formula and snippet (for the TUI)."""
        out = []
        with self.lock:
            rows = self.conn.execute(
                "SELECT 'formula', n.path, f.line, f.check_hash, f.name FROM formula f JOIN note n ON n.id = f.note_id"
                " WHERE f.display = 1 UNION ALL SELECT 'snippet', n.path, s.line, s.check_hash, s.language FROM snippet s"
                " JOIN note n ON n.id = s.note_id ORDER BY 2, 3").fetchall()
            for kind, path, line, h, name in rows:
                r = self.conn.execute(
                    "SELECT status, detail, seconds, device FROM checkresult WHERE check_hash = ?"
                    " ORDER BY checked_at DESC, id DESC LIMIT 1", (h,)).fetchone()
                status, detail, seconds, device = r if r else ("unchecked", "", 0.0, "")
                out.append({"kind": kind, "path": path, "line": line, "status": status, "detail": detail,
                            "seconds": seconds, "device": device, "name": name or ""})
        failing = {s.value for s in FAILURES}
        return sorted(out, key=lambda x: (x["status"] not in failing, x["path"], x["line"]))


# Bump when the formula checker's verdicts change, so cached results are recomputed.
FORMULA_CHECKER_VERSION = "2"
_DEFINITION_HEAD = re.compile(
    r"^\s*(?:\\(?:mathbf|boldsymbol|hat|bar|tilde|mathcal)\s*\{?\s*)?(\\[A-Za-z]+|[A-Za-z])")


_CONTINUATION = re.compile(r"^\s*&?\s*(?:\\quad|\\qquad|\\;|\\,|\s)*(?:[-+]|\\cdot|\\times|\\pm)")
_RELATION = re.compile(r"(?<![<>!\\])=|\\(?:approx|leq|geq|le|ge|neq|propto|sim|leftarrow)(?![A-Za-z])")


def formula_sources(rows: list) -> list[dict | None]:
    """What the checker needs for each display formula row of one note (None for inline ones): its
    LaTeX, the rows of its block before it, the earlier formulas of its section that may define the
    names it uses (the latest 20), and the names the note has used before it. One pass over the
    note: a re-check of an unchanged corpus builds these for every formula.

    ``rows``: the note's formulas in order, each (id, path, line, latex, name, known_failure,
    check_hash, note_id, display, block, section). Definitions come from the same section only: a
    note reuses letters (an example's f, then a general f), and a definition from another section
    would be a guess.
    """
    sources: list[dict | None] = []
    known: set[str] = set()
    definitions: list[tuple[Any, ...]] = []  # (row, name pattern) of rows written `name ... = ...`
    blocks: dict[int, list[str]] = {}
    for k, row in enumerate(rows):
        latex, block = row[3], row[9]
        if not row[8]:
            sources.append(None)
        else:
            before = list(blocks.get(block, [])) if block is not None else []
            text = " ".join([*before, latex])
            context = [
                (r[2], r[3]) for r, pattern in definitions
                if r[10] == row[10] and not (r[8] and block is not None and r[9] == block) and pattern.search(text)
            ]
            after = []  # `&\quad + c`: rows that continue this row's expression belong to its check
            for r in rows[k + 1 :]:
                if block is None or r[9] != block or not r[8] or not _CONTINUATION.match(r[3]) or \
                        _RELATION.search(r[3]):
                    break
                after.append(r[3])
            source = {"latex": latex, "rows_before": before, "context": context[-20:], "known": sorted(known)}
            if after:
                source["rows_after"] = after
            sources.append(source)
        # what this row adds for the rows after it
        known.update(re.findall(r"\\[A-Za-z]+|[A-Za-z]", latex))
        if row[8] and block is not None:
            blocks.setdefault(block, []).append(latex)
        head, _, rest = latex.partition("=")
        m = _DEFINITION_HEAD.match(head)
        if rest and m and not head.rstrip().endswith(("<", ">", "!", ":", "\\")):
            name = m.group(1)
            pattern = re.escape(name) + r"(?![A-Za-z])"
            if not name.startswith("\\"):
                pattern = r"(?<![A-Za-z\\])" + pattern
            definitions.append((row, re.compile(pattern)))
    return sources


def formula_key(source: dict) -> str:
    """The cache key of a formula's check beside its own LaTeX: the checker version and its context."""
    parts = [source["rows_before"], source["context"], source["known"], source.get("rows_after", [])]
    if not any(parts):
        return "v" + FORMULA_CHECKER_VERSION
    digest = hashlib.blake2b(json.dumps(parts).encode(), digest_size=8)
    return f"v{FORMULA_CHECKER_VERSION}:{digest.hexdigest()}"


def _rejudge(cached, expected: str | None) -> tuple[CheckStatus, str]:
    """A cached run compared with the (possibly edited) expected output."""
    status, detail, output, _seconds = cached
    status = CheckStatus(status)
    if status not in (CheckStatus.PASSED, CheckStatus.FAILED) or detail == "raised the expected exception":
        return status, detail
    if expected is None:
        return CheckStatus.PASSED, "ran, no expected output"
    from d2lkb.checks.outputs import compare_output

    ok, diff = compare_output(expected, output)
    return (CheckStatus.PASSED, "output matches") if ok else (CheckStatus.FAILED, diff)
