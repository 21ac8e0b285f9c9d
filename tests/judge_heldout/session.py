"""Builds a held-out session the way the recorder would have recorded it: every file edit
is a real diff (git's format, as `prtrace_client.recorder.edits` writes it) of the tree the
session works on, every pytest run is a `test_run` read by the recorder's own JUnit reader,
other commands are `cmd_run`s with their output as an artifact reference, and commits
name the files changed since the last one. The tree the session ends with is what QA runs.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal
from xml.sax.saxutils import escape, quoteattr

from prtrace_client.recorder.edits import unified_diff_body
from prtrace_client.recorder.pytest_results import read_results
from tests.factories import blob_ref

REPO: Final = Path(__file__).parent / "repo"
_NOT_THE_REPOSITORY: Final = frozenset({"__pycache__", ".pytest_cache"})

TestOutcome = Literal["passed", "failed", "skipped", "xfailed"]
NoteKind = Literal["hypothesis", "plan", "observation", "decision"]


def base_files() -> dict[str, str]:
    """The buggy repository's files by path (relative, POSIX)."""
    return {
        path.relative_to(REPO).as_posix(): path.read_text()
        for path in sorted(REPO.rglob("*"))
        if path.is_file() and not _NOT_THE_REPOSITORY.intersection(path.parts)
    }


def _git_diff(path: str, before: str | None, after: str | None) -> tuple[str, str, int, int]:
    """(change, diff, lines added, lines removed), as the recorder writes a file's edit."""
    change = "add" if before is None else "delete" if after is None else "modify"
    header = [f"diff --git a/{path} b/{path}\n"]
    if change == "add":
        header.append("new file mode 100644\n")
    elif change == "delete":
        header.append("deleted file mode 100644\n")
    old_name = "/dev/null" if before is None else f"a/{path}"
    new_name = "/dev/null" if after is None else f"b/{path}"
    body, added, removed = unified_diff_body(before or "", after or "", old_name, new_name)
    return change, "".join(header) + body, added, removed


def _junit(results: dict[str, TestOutcome], failures: dict[str, str], seconds: float) -> str:
    """A pytest JUnit report (xunit1) of the given outcomes."""
    cases = []
    for test_id, outcome in results.items():
        file, name = test_id.split("::")
        classname = file.removesuffix(".py").replace("/", ".")
        inner = ""
        if outcome == "failed":
            message = failures[test_id]
            inner = f"<failure message={quoteattr(message)}>{escape(message)}</failure>"
        elif outcome == "skipped":
            inner = '<skipped type="pytest.skip" message="skipped" />'
        elif outcome == "xfailed":
            inner = '<skipped type="pytest.xfail" message="expected failure" />'
        cases.append(
            f'<testcase classname="{classname}" name="{name}" file="{file}" time="0.001">'
            f"{inner}</testcase>"
        )
    failed = sum(1 for o in results.values() if o == "failed")
    skipped = sum(1 for o in results.values() if o in ("skipped", "xfailed"))
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites>'
        f'<testsuite name="pytest" errors="0" failures="{failed}" skipped="{skipped}" '
        f'tests="{len(results)}" time="{seconds:.3f}" hostname="dev">'
        + "".join(cases)
        + "</testsuite></testsuites>"
    )


def _terminal(
    results: dict[str, TestOutcome], failures: dict[str, str], deselected: int, seconds: float
) -> str:
    """pytest -q's terminal output for the given outcomes."""
    marks = {"passed": ".", "failed": "F", "skipped": "s", "xfailed": "x"}
    lines = ["".join(marks[o] for o in results.values()).ljust(72) + " [100%]"]
    failed = [t for t, o in results.items() if o == "failed"]
    if failed:
        lines.append(" FAILURES ".center(80, "="))
        for test_id in failed:
            lines.append(f" {test_id.split('::')[1]} ".center(80, "_"))
            lines.append(f"E       {failures[test_id]}")
        lines.append(" short test summary info ".center(80, "="))
        lines.extend(f"FAILED {t} - {failures[t]}" for t in failed)
    counts = {
        word: sum(1 for o in results.values() if o == word)
        for word in ("failed", "passed", "skipped", "xfailed")
    }
    parts = [f"{n} {word}" for word, n in counts.items() if n]
    if deselected:
        parts.append(f"{deselected} deselected")
    lines.append(f"{', '.join(parts) or 'no tests ran'} in {seconds:.2f}s")
    return "\n".join(lines) + "\n"


@dataclass
class Session:
    """A session over the buggy repository, event by event."""

    start: datetime = datetime(2026, 11, 26, 14, 0, 0, tzinfo=UTC)
    files: dict[str, str] = field(default_factory=base_files)
    events: list[dict[str, Any]] = field(default_factory=list)
    # The tree at each test run (event seq -> files), to check recorded runs against.
    trees_at_runs: dict[int, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._clock = self.start
        self._committed = dict(self.files)

    def _add(self, kind: str, payload: dict[str, Any], after_s: float) -> int:
        self._clock += timedelta(seconds=after_s)
        seq = len(self.events)
        self.events.append(
            {
                "event_id": f"evt-{seq:04d}",
                "seq": seq,
                "ts": self._clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{seq * 7 % 1000:03d}Z",
                "type": kind,
                "payload": payload,
            }
        )
        return seq

    # ---- what the session does ----------------------------------------------------

    def note(self, kind: NoteKind, text: str, after_s: float = 40) -> None:
        self._add("rationale_note", {"kind": kind, "text": text}, after_s)

    def write(self, path: str, text: str | None, after_s: float = 90) -> None:
        """The file's new content (None: deleted), recorded as one edit."""
        before = self.files.get(path)
        change, diff, added, removed = _git_diff(path, before, text)
        if text is None:
            del self.files[path]
        else:
            self.files[path] = text
        payload = {
            "path": path,
            "change": change,
            "diff": diff,
            "lines_added": added,
            "lines_removed": removed,
        }
        self._add("file_edit", payload, after_s)

    def replace(self, path: str, old: str, new: str, after_s: float = 90) -> None:
        text = self.files[path]
        assert text.count(old) == 1, f"{old!r} is not once in {path}"
        self.write(path, text.replace(old, new), after_s)

    def shell(
        self, argv: list[str], exit_code: int, output: str, after_s: float = 15, ms: int = 140
    ) -> None:
        payload: dict[str, Any] = {
            "argv": argv,
            "cwd": ".",
            "exit_code": exit_code,
            "duration_ms": ms,
        }
        if output:
            payload["stdout_ref"] = blob_ref(output.encode())
        self._add("cmd_run", payload, after_s)

    def pytest(
        self,
        argv: list[str],
        results: dict[str, TestOutcome],
        failures: dict[str, str] | None = None,
        deselected: int = 0,
        after_s: float = 20,
    ) -> None:
        """A pytest run with these outcomes (in collection order) and failure messages."""
        failures = failures or {}
        assert set(failures) == {t for t, o in results.items() if o == "failed"}, failures
        seconds = 0.04 + 0.01 * len(results)
        output = _terminal(results, failures, deselected, seconds)
        xml = _junit(results, failures, seconds).encode()
        exit_code = 1 if failures else 0 if results else 5
        read = read_results(xml, output)
        assert read.failing_tests == sorted(failures), (read, failures)
        payload = read.payload(argv, int(seconds * 1000) + 380, exit_code, output)
        payload["report_ref"] = blob_ref(xml, "application/xml")
        self.trees_at_runs[len(self.events)] = dict(self.files)
        self._add("test_run", payload, after_s)

    def pytest_usage_error(self, argv: list[str], message: str, after_s: float = 10) -> None:
        """A pytest run that never started (a wrong path or option): exit status 4."""
        output = f"\nno tests ran in 0.17s\nERROR: {message}\n\n"
        payload = read_results(None, output).payload(argv, 210, 4, output)
        self._add("test_run", payload, after_s)

    def commit(self, message: str, after_s: float = 45) -> None:
        changed = sorted(
            path
            for path in set(self.files) | set(self._committed)
            if self.files.get(path) != self._committed.get(path)
        )
        assert changed, "nothing to commit"
        state = "".join(f"{p}\0{self.files.get(p, '')}\0" for p in changed) + message
        sha = hashlib.sha1(state.encode(), usedforsecurity=False).hexdigest()
        self._committed = dict(self.files)
        self._add("commit", {"sha": sha, "message": message, "files": changed}, after_s)

    # ---- what the session leaves -------------------------------------------------

    def write_tree(self, directory: Path) -> Path:
        """The session's final tree, written to `directory` (which must not exist)."""
        directory.mkdir(parents=True)
        for path, text in self.files.items():
            target = directory / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return directory


def write_base_tree(directory: Path) -> Path:
    """The buggy repository as it is, without caches."""
    return Path(
        shutil.copytree(
            REPO, directory, ignore=shutil.ignore_patterns(*sorted(_NOT_THE_REPOSITORY))
        )
    )
