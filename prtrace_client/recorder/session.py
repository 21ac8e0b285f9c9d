"""A recording session in a git repository: what `prtrace record`, `run`, `note` and the
post-commit hook do, journaled through the outbox.

Nothing here talks to the network: events and artifacts go to the durable outbox, which the
flusher delivers (at `record stop`, or `prtrace push` after an outage). Everything is
redacted before it is journaled, and the number of redactions is sent with finalize.

The session directory is `<git-dir>/prtrace/` (per worktree, never part of the tree):

    session.json          the active session (absent when none is recording)
    lock                  serializes recorder processes (run, note, the hook, stop)
    index, last-tree      the last recorded state of the working tree (see edits.py)
    base.tar.gz           workspace snapshot at `record start`
    final.tar.gz          workspace snapshot at `record stop`
    reports/              JUnit reports of recorded pytest runs
    sessions/<id>.json    sessions that were stopped
"""

from __future__ import annotations

import fcntl
import getpass
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import orjson

from prtrace.schema import (
    MAX_ARG_LEN,
    MAX_ARGV_ITEMS,
    MAX_DURATION_MS,
    MAX_INLINE_DIFF_LEN,
    MAX_LIST_ITEMS,
    MAX_PATH_LEN,
    MAX_TEXT_LEN,
)
from prtrace_client.outbox import Outbox
from prtrace_client.recorder.edits import EMPTY_TREE, EditTracker, FileEdit, diff_trees
from prtrace_client.recorder.pytest_results import (
    is_pytest,
    read_results,
    requested_report,
    with_junit_report,
)
from prtrace_client.recorder.snapshot import (
    DEFAULT_MAX_BYTES,
    MEDIA_TYPE,
    SnapshotError,
    git,
    snapshot_workspace,
)
from prtrace_client.redaction import redact, redact_argv, redact_bytes

CLIENT_NAME: Final = "prtrace-cli"
CLIENT_VERSION: Final = "0.1.0"
HOOK_MARK: Final = "# prtrace post-commit hook"
MAX_CAPTURED_OUTPUT: Final = 32 * 1024 * 1024  # per stream; the rest is only shown
MAX_LISTED_CHANGES: Final = 10  # uncommitted paths a refused `record start` names
NoteKind = Literal["hypothesis", "plan", "observation", "decision"]


class RecorderError(Exception):
    """The recorder cannot do what was asked; the message says what to do instead."""


class NoActiveSession(RecorderError):
    pass


@dataclass
class SessionInfo:
    """session.json: what every recorder process needs to continue the session."""

    local_id: str
    outbox: str
    repo: str
    started_at: str
    base_commit: str
    base_snapshot: dict[str, Any]
    redactions: int = 0
    runs: int = 0  # pytest runs begun (their reports' numbers)
    hook_installed: bool = False
    dirty: bool = False  # started with uncommitted changes (allow_dirty)
    # Files whose recorded diffs had a secret redacted: the snapshots hold them in clear.
    redacted_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PreparedRun:
    """A command about to run: what `begin_run` decided, what `finish_run` records."""

    argv: list[str]  # as the user gave it (recorded, redacted)
    command: list[str]  # as it runs (a pytest run writes a JUnit report)
    workdir: Path
    report: Path | None  # the JUnit report to read afterwards
    own_report: bool  # the report is prtrace's own: removed once read
    edits: int  # file_edit events recorded before the command

    def to_dict(self) -> dict[str, Any]:
        return {
            "argv": self.argv,
            "command": self.command,
            "workdir": str(self.workdir),
            "report": None if self.report is None else str(self.report),
            "own_report": self.own_report,
            "edits": self.edits,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreparedRun:
        report = data.get("report")
        return cls(
            argv=[str(a) for a in data["argv"]],
            command=[str(a) for a in data["command"]],
            workdir=Path(data["workdir"]),
            report=None if report is None else Path(report),
            own_report=bool(data.get("own_report")),
            edits=int(data.get("edits", 0)),
        )


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    event: Literal["cmd_run", "test_run"]
    seq: int
    edits: int  # file_edit events recorded before the command


@dataclass(frozen=True)
class Stopped:
    local_id: str
    outbox: str
    events: int
    redactions: int
    snapshots: dict[str, dict[str, Any]]
    # Of the files whose diffs had secrets redacted: in the final snapshot (in clear), and
    # left out of it (`exclude_redacted`).
    redacted_in_snapshot: tuple[str, ...] = ()
    excluded_redacted: tuple[str, ...] = ()


# ---- git helpers -------------------------------------------------------------------


def repo_root(cwd: Path) -> Path:
    try:
        return Path(git(cwd, "rev-parse", "--show-toplevel").decode().strip())
    except SnapshotError:
        raise RecorderError(
            f"{cwd} is not inside a git repository; `prtrace record` records sessions in a "
            "git working tree (run `git init` and commit once first)"
        ) from None


def session_dir(repo: Path) -> Path:
    path = git(repo, "rev-parse", "--path-format=absolute", "--git-path", "prtrace")
    return Path(path.decode().strip())


def _head(repo: Path) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "HEAD^{commit}").decode().strip()
    except SnapshotError:
        raise RecorderError(
            f"the repository at {repo} has no commit yet; commit once so the trace has a "
            "base commit"
        ) from None


def uncommitted_changes(repo: Path, directory: Path) -> list[str]:
    """The paths git reports as changed against HEAD: staged, unstaged or untracked (not
    ignored); the session directory's own files never count."""
    listed = git(
        repo, "--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all"
    ).split(b"\0")
    own, root = directory.resolve(), repo.resolve()
    changed = []
    entries = iter(listed)
    for entry in entries:
        if not entry:
            continue
        status, name = entry[:2], os.fsdecode(entry[3:])
        if b"R" in status or b"C" in status:
            next(entries, None)  # a rename or copy: its source path follows
        if not (root / name).is_relative_to(own):  # git's paths: relative, no `..`
            changed.append(name)
    return changed


def _refuse_dirty(repo: Path, base_commit: str, changed: list[str]) -> RecorderError:
    listed = ", ".join(changed[:MAX_LISTED_CHANGES])
    if len(changed) > MAX_LISTED_CHANGES:
        listed += f" (and {len(changed) - MAX_LISTED_CHANGES:,} more)"
    return RecorderError(
        f"the working tree of {repo} has uncommitted changes: {listed}. The base snapshot "
        f"would hold them, so it would not be the tree of base commit {base_commit[:12]} and "
        "the trace's patch would not apply to that commit. Commit or stash them (`git stash "
        "--include-untracked`), or pass --allow-dirty to record anyway: the trace then says "
        "repository.dirty: true and dataset exports mark its instance unusable"
    )


def repository_url(repo: Path) -> str:
    """origin's URL without any credentials in it, else the working tree as file://."""
    try:
        url = git(repo, "remote", "get-url", "origin").decode().strip()
    except SnapshotError:
        url = ""
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    if url and "@" in url and ":" in url.split("@", 1)[1]:
        return url  # scp-like ssh form: git@host:owner/repo.git
    if url:
        return Path(repo, url).resolve().as_uri()
    return repo.resolve().as_uri()


def default_author(repo: Path) -> str:
    """The email git would put on a commit (config or GIT_AUTHOR_EMAIL), else the login."""
    try:
        ident = git(repo, "var", "GIT_AUTHOR_IDENT").decode(errors="replace")
    except SnapshotError:
        ident = ""
    start, end = ident.find("<"), ident.find(">")
    email = ident[start + 1 : end].strip() if 0 <= start < end else ""
    return email or getpass.getuser()


# ---- the recorder ------------------------------------------------------------------


class Recorder:
    """One active session of one repository. Methods that journal hold the session lock,
    so the hook, `run`, `note` and `stop` from several processes never interleave."""

    def __init__(self, repo: Path, directory: Path, info: SessionInfo, outbox: Outbox) -> None:
        self.repo = repo
        self.directory = directory
        self.info = info
        self.outbox = outbox
        self.edits = EditTracker(repo, directory)

    # ---- lifecycle --------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        cwd: Path,
        outbox: Outbox,
        *,
        title: str,
        description: str = "",
        author: str | None = None,
        author_kind: Literal["human", "agent"] = "human",
        max_snapshot_bytes: int = DEFAULT_MAX_BYTES,
        install_hook: bool = True,
        allow_dirty: bool = False,
    ) -> Recorder:
        """Snapshot the base workspace, open the trace in the outbox, take the working tree
        as the recorded state and install the post-commit hook.

        A working tree with uncommitted changes is refused unless `allow_dirty`: its
        snapshot is not the base commit's tree, so the trace's patch would not apply to
        that commit. Allowed, the trace says so (`repository.dirty`)."""
        repo = repo_root(cwd)
        directory = session_dir(repo)
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory):
            if (directory / "session.json").exists():
                active = _read_info(directory)
                raise RecorderError(
                    f"session {active.local_id} is already recording in {repo}; "
                    "`prtrace record stop` it first"
                )
            base_commit = _head(repo)
            changed = uncommitted_changes(repo, directory)
            if changed and not allow_dirty:
                raise _refuse_dirty(repo, base_commit, changed)
            snapshot = snapshot_workspace(repo, max_bytes=max_snapshot_bytes)
            redacted_title = redact(title.strip())
            redacted_description = redact(description)
            title_text = redacted_title.text[:256]
            if not title_text:
                raise RecorderError("the task needs a title: pass --title or --issue")
            metadata = {
                "repository": {
                    "url": repository_url(repo),
                    "base_commit": base_commit,
                    "dirty": bool(changed),
                },
                "task": {
                    "title": title_text,
                    "description": redacted_description.text[:MAX_TEXT_LEN],
                },
                "author": {
                    "id": (author or default_author(repo))[:128],
                    "kind": author_kind,
                },
                "client": {"name": CLIENT_NAME, "version": CLIENT_VERSION},
            }
            # Everything that can fail locally happens before the outbox holds a session,
            # so a failed start leaves nothing for `prtrace push` to deliver.
            EditTracker(repo, directory).record_baseline()
            shutil.rmtree(directory / "commits", ignore_errors=True)  # the last session's
            base_path = directory / "base.tar.gz"
            _atomic_write(base_path, snapshot.data)
            if install_hook:
                install_post_commit_hook(repo)
            try:
                local_id = outbox.start_trace(metadata)
                base_ref = outbox.add_artifact(local_id, base_path, MEDIA_TYPE)
                info = SessionInfo(
                    local_id=local_id,
                    outbox=str(outbox.path),
                    repo=str(repo),
                    started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    base_commit=base_commit,
                    base_snapshot=base_ref,
                    redactions=redacted_title.count + redacted_description.count,
                    hook_installed=install_hook,
                    dirty=bool(changed),
                )
                _write_info(directory, info)
            except BaseException:
                if install_hook:
                    uninstall_post_commit_hook(repo)
                raise
            recorder = cls(repo, directory, info, outbox)
        return recorder

    @classmethod
    def open(cls, cwd: Path, outbox: Outbox | None = None) -> Recorder:
        """The active session of the repository holding `cwd`."""
        repo = repo_root(cwd)
        directory = session_dir(repo)
        if not (directory / "session.json").exists():
            raise NoActiveSession(
                f"no session is recording in {repo}; start one with "
                '`prtrace record start --title "…"`'
            )
        info = _read_info(directory)
        return cls(repo, directory, info, outbox or Outbox.open(info.outbox))

    def stop(
        self, *, max_snapshot_bytes: int = DEFAULT_MAX_BYTES, exclude_redacted: bool = False
    ) -> Stopped:
        """Capture the last edits, snapshot the final workspace and ask the outbox to
        finalize. The session ends here; delivery is the flusher's job.

        `exclude_redacted` leaves the files whose diffs had secrets redacted out of the
        final snapshot (QA then runs without them)."""
        with self._locked():
            self._capture_edits()
            state = self.outbox.state(self.info.local_id)
            if state.events == 0:
                raise RecorderError(
                    "nothing was recorded in this session (no command, note, edit or "
                    "commit); record something before stopping"
                )
            redacted = set(self.still_holding_secrets())
            snapshot = snapshot_workspace(
                self.repo,
                max_bytes=max_snapshot_bytes,
                exclude_paths=redacted if exclude_redacted else (),
            )
            final_path = self.directory / "final.tar.gz"
            _atomic_write(final_path, snapshot.data)
            final_ref = self.outbox.add_artifact(self.info.local_id, final_path, MEDIA_TYPE)
            snapshots = {"base": self.info.base_snapshot, "final": final_ref}
            self.outbox.request_finalize(
                self.info.local_id,
                snapshots=snapshots,
                extra={"redactions": self.info.redactions},
            )
            if self.info.hook_installed:
                uninstall_post_commit_hook(self.repo)
            history = self.directory / "sessions"
            history.mkdir(exist_ok=True)
            os.replace(self.directory / "session.json", history / f"{self.info.local_id}.json")
            return Stopped(
                local_id=self.info.local_id,
                outbox=self.info.outbox,
                events=state.events,
                redactions=self.info.redactions,
                snapshots=snapshots,
                redacted_in_snapshot=tuple(f for f in snapshot.files if f in redacted),
                excluded_redacted=tuple(f for f in snapshot.excluded if f in redacted),
            )

    def still_holding_secrets(self) -> list[str]:
        """The files whose recorded diffs had secrets redacted and that still hold one:
        the final snapshot would carry them in clear."""
        holding = []
        for name in self.info.redacted_files:
            path = self.repo / name
            if path.is_file() and not path.is_symlink():
                text = path.read_bytes().decode("utf-8", "replace")
                if redact(text).count:
                    holding.append(name)
        return holding

    # ---- what gets recorded ---------------------------------------------------------

    def capture_edits(self) -> int:
        """Record the working tree's edits since the last recorded state."""
        with self._locked():
            return self._capture_edits()

    def note(self, text: str, kind: NoteKind = "observation") -> int:
        cleaned = text.strip()
        if not cleaned:
            raise RecorderError('a note needs some text: prtrace note "why …"')
        if len(cleaned) > MAX_TEXT_LEN:
            raise RecorderError(
                f"the note holds {len(cleaned):,} characters, over the {MAX_TEXT_LEN:,} a note "
                "can hold; nothing was recorded: shorten it or split it into several notes"
            )
        with self._locked():
            self._capture_edits()
            redacted = self._redact(cleaned)
            return self.outbox.append(
                self.info.local_id,
                {
                    "type": "rationale_note",
                    "payload": {"kind": kind, "text": redacted[:MAX_TEXT_LEN]},
                },
            )

    def record_commit(self, sha: str | None = None) -> int | None:
        """Record a commit (HEAD by default) with the edits before it; None when this
        commit was recorded already (a rerun hook, an amend recorded twice)."""
        with self._locked():
            commit = sha or _head(self.repo)
            seen = self.directory / "commits"
            if (seen / commit).exists():
                return None
            self._capture_edits()
            message = git(self.repo, "log", "-1", "--format=%B", commit).decode("utf-8", "replace")
            parents = git(self.repo, "rev-list", "--parents", "-n", "1", commit).split()
            parent = parents[1].decode() if len(parents) > 1 else EMPTY_TREE
            names = git(
                self.repo, "diff-tree", "-r", "-z", "--no-renames", "--name-only",
                "--no-commit-id", parent, commit,
            ).split(b"\0")  # fmt: skip
            files = sorted({os.fsdecode(n)[:MAX_PATH_LEN] for n in names if n})
            payload: dict[str, Any] = {
                "sha": commit,
                "message": self._redact(message.strip() or "(no message)")[:MAX_TEXT_LEN],
                "files": files[:MAX_LIST_ITEMS],
            }
            # Diffs of the committed files, redacted on both sides like file_edit diffs.
            edits = diff_trees(self.repo, parent, commit)
            patch = "".join(edit.diff for edit in edits)
            if patch:
                self._count_edits(edits)
                payload["diff_ref"] = self.outbox.add_artifact_bytes(
                    self.info.local_id, patch.encode(), "text/x-diff"
                )
            seq = self.outbox.append(self.info.local_id, {"type": "commit", "payload": payload})
            seen.mkdir(exist_ok=True)
            (seen / commit).touch()
            return seq

    def run(
        self,
        argv: list[str],
        *,
        stdout: IO[bytes] | None = None,
        stderr: IO[bytes] | None = None,
        cwd: Path | None = None,
    ) -> RunOutcome:
        """Run `argv`, showing its output live while capturing it, and record a `cmd_run`
        (a `test_run` for pytest). The edits made before it are recorded first."""
        prepared = self.begin_run(argv, cwd or Path.cwd())
        started = time.monotonic()
        exit_code, out, err = _run_streaming(
            prepared.command,
            prepared.workdir,
            stdout or sys.stdout.buffer,
            stderr or sys.stderr.buffer,
        )
        duration_ms = round((time.monotonic() - started) * 1000)
        return self.finish_run(prepared, exit_code, out, err, duration_ms)

    def begin_run(self, argv: list[str], cwd: Path, *, typed: bool = False) -> PreparedRun:
        """Before a command runs: record the edits made so far and say how to run it (a
        pytest run gets a JUnit report). The command runs wherever the caller is (its own
        terminal); `finish_run` records how it ended. A `typed` command (shell integration)
        runs as the user typed it: no report, recorded as a `cmd_run`."""
        if not argv:
            raise RecorderError("nothing to run: prtrace run -- COMMAND [ARGS…]")
        workdir = cwd.resolve()
        pytest = not typed and is_pytest(argv)
        with self._locked():
            edits = self._capture_edits()
            if pytest:  # the run number names its report; other runs need no write here
                self.info.runs += 1
                _write_info(self.directory, self.info)
            run_number = self.info.runs
        report: Path | None = None
        own_report = False
        command = argv
        if pytest:
            reports = self.directory / "reports"
            reports.mkdir(exist_ok=True)
            report = reports / f"junit-{run_number:05d}-{os.getpid()}.xml"
            report.unlink(missing_ok=True)
            command = with_junit_report(argv, report)
            own_report = True
            if (asked := requested_report(argv)) is not None:
                report = workdir / asked  # the user's own report: read it, keep it
                own_report = False
        return PreparedRun(list(argv), command, workdir, report, own_report, edits)

    def finish_run(
        self, prepared: PreparedRun, exit_code: int, out: bytes, err: bytes, duration_ms: int
    ) -> RunOutcome:
        """Record the command `begin_run` prepared, with how it ended."""
        duration_ms = max(0, min(MAX_DURATION_MS, duration_ms))
        with self._locked():
            argv = prepared.argv
            shown, redacted_args = redact_argv(argv[:MAX_ARGV_ITEMS])
            self._count(redacted_args)
            shown_argv = [arg[:MAX_ARG_LEN] for arg in shown]
            if prepared.report is not None:
                seq = self._record_test_run(
                    shown_argv,
                    exit_code,
                    out,
                    prepared.report,
                    duration_ms,
                    remove=prepared.own_report,
                )
                event: Literal["cmd_run", "test_run"] = "test_run"
            else:
                seq = self._record_cmd_run(
                    shown_argv, prepared.workdir, exit_code, out, err, duration_ms
                )
                event = "cmd_run"
        return RunOutcome(exit_code, event, seq, prepared.edits)

    # ---- internals ------------------------------------------------------------------

    def _record_cmd_run(
        self,
        argv: list[str],
        workdir: Path,
        exit_code: int,
        out: bytes,
        err: bytes,
        duration_ms: int,
    ) -> int:
        relative = os.path.relpath(workdir, self.repo)
        payload: dict[str, Any] = {
            "argv": argv,
            "cwd": relative if not relative.startswith("..") else str(workdir),
            "exit_code": max(-255, min(255, exit_code)),
            "duration_ms": duration_ms,
        }
        for name, data in (("stdout_ref", out), ("stderr_ref", err)):
            if data:
                redacted, count = redact_bytes(data)
                self._count(count)
                payload[name] = self.outbox.add_artifact_bytes(
                    self.info.local_id, redacted, "text/plain"
                )
        return self.outbox.append(self.info.local_id, {"type": "cmd_run", "payload": payload})

    def _record_test_run(
        self,
        argv: list[str],
        exit_code: int,
        out: bytes,
        report: Path,
        duration_ms: int,
        *,
        remove: bool,
    ) -> int:
        output, count = redact_bytes(out)
        self._count(count)
        xml: bytes | None = None
        if report.is_file():
            xml, count = redact_bytes(report.read_bytes())
            self._count(count)
            if remove:
                report.unlink()
        text = output.decode("utf-8", "replace")
        results = read_results(xml, text)
        payload = results.payload(argv, duration_ms, exit_code, text)
        if xml is not None:
            payload["report_ref"] = self.outbox.add_artifact_bytes(
                self.info.local_id, xml, "application/xml"
            )
        return self.outbox.append(self.info.local_id, {"type": "test_run", "payload": payload})

    def _capture_edits(self) -> int:
        edits = self.edits.capture()
        if not edits:
            return 0
        self.outbox.append_many(self.info.local_id, [self._edit_event(e) for e in edits])
        self._count_edits(edits)
        return len(edits)

    def _edit_event(self, edit: FileEdit) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "path": edit.path,
            "change": edit.change,
            "lines_added": edit.lines_added,
            "lines_removed": edit.lines_removed,
        }
        if edit.old_path is not None:
            payload["old_path"] = edit.old_path
        if len(edit.diff) <= MAX_INLINE_DIFF_LEN:
            payload["diff"] = edit.diff
        else:
            payload["diff_ref"] = self.outbox.add_artifact_bytes(
                self.info.local_id, edit.diff.encode(), "text/x-diff"
            )
        return {"type": "file_edit", "payload": payload}

    def _redact(self, text: str) -> str:
        result = redact(text)
        self._count(result.count)
        return result.text

    def _count_edits(self, edits: list[FileEdit]) -> None:
        redacted = [
            e.path for e in edits if e.redactions and e.path not in self.info.redacted_files
        ]
        self.info.redacted_files.extend(redacted)  # written by _count below
        self._count(sum(e.redactions for e in edits))

    def _count(self, redactions: int) -> None:
        if redactions:
            self.info.redactions += redactions
            _write_info(self.directory, self.info)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with _locked(self.directory):
            # Another process may have recorded meanwhile: continue from its counts.
            if (self.directory / "session.json").exists():
                current = _read_info(self.directory)
                if current.local_id == self.info.local_id:
                    self.info = current
            elif self.info.local_id:
                raise NoActiveSession(
                    f"session {self.info.local_id} was stopped; start a new one with "
                    "`prtrace record start`"
                )
            yield


# ---- session files ------------------------------------------------------------------


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_info(directory: Path) -> SessionInfo:
    try:
        return SessionInfo(**orjson.loads((directory / "session.json").read_bytes()))
    except (OSError, ValueError, TypeError) as exc:
        raise RecorderError(
            f"the session file {directory / 'session.json'} is unreadable ({exc}); "
            "remove it to start over (its events stay in the outbox)"
        ) from None


def _write_info(directory: Path, info: SessionInfo) -> None:
    _atomic_write(
        directory / "session.json", orjson.dumps(asdict(info), option=orjson.OPT_INDENT_2)
    )


def _atomic_write(path: Path, data: bytes) -> None:
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(scratch, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)


# ---- running a command ----------------------------------------------------------------


def _pump(source: IO[bytes], sink: IO[bytes], kept: bytearray) -> None:
    """Copy the child's output to the terminal as it comes, keeping a bounded copy."""
    fd = source.fileno()
    while chunk := os.read(fd, 65536):
        try:
            sink.write(chunk)
            sink.flush()
        except (BrokenPipeError, ValueError):
            pass  # the terminal went away: keep recording
        room = MAX_CAPTURED_OUTPUT - len(kept)
        if room > 0:
            kept += chunk[:room]


def _run_streaming(
    argv: list[str], cwd: Path, stdout: IO[bytes], stderr: IO[bytes]
) -> tuple[int, bytes, bytes]:
    try:
        process = subprocess.Popen(  # noqa: S603 - the user's own command, as given
            argv,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Output goes through a pipe: ask Python programs not to hold it back, so the
            # terminal shows it live.
            env={"PYTHONUNBUFFERED": "1"} | dict(os.environ),
        )
    except (FileNotFoundError, PermissionError) as exc:
        message = f"prtrace: cannot run {shlex.join(argv)}: {exc.strerror}\n".encode()
        stderr.write(message)
        stderr.flush()
        return (127 if isinstance(exc, FileNotFoundError) else 126), b"", message
    out, err = bytearray(), bytearray()
    assert process.stdout is not None
    assert process.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, stdout, out), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, stderr, err), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    while True:
        try:
            exit_code = process.wait()
            break
        except KeyboardInterrupt:
            continue  # Ctrl-C reached the command too; record how it ended
    for pump in pumps:
        pump.join()
    process.stdout.close()
    process.stderr.close()
    return exit_code, bytes(out), bytes(err)


# ---- the post-commit hook -----------------------------------------------------------


def hook_path(repo: Path) -> Path:
    path = git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks/post-commit")
    return Path(path.decode().strip())


def _hook_script() -> str:
    python = shlex.quote(sys.executable)
    return f"""#!/bin/sh
{HOOK_MARK} (installed by `prtrace record start`, removed by `prtrace record stop`)
status=0
original="$(dirname "$0")/post-commit.prtrace-original"
entry='import sys; from prtrace_cli.fast import post_commit; sys.exit(post_commit())'
if [ -x "$original" ]; then
    "$original" "$@"
    status=$?
fi
{python} -c "$entry" \\
    || echo "prtrace: this commit was not recorded; run 'prtrace hook post-commit'" >&2
exit $status
"""


def install_post_commit_hook(repo: Path) -> Path:
    """Install the hook; a hook already there is kept and run first."""
    path = hook_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and HOOK_MARK not in path.read_text(errors="replace"):
        original = path.with_name("post-commit.prtrace-original")
        if original.exists():
            raise RecorderError(
                f"{original} exists from an earlier session; restore it as {path} or remove it"
            )
        os.replace(path, original)
    _atomic_write(path, _hook_script().encode())
    path.chmod(0o755)
    return path


def uninstall_post_commit_hook(repo: Path) -> None:
    path = hook_path(repo)
    if path.exists() and HOOK_MARK in path.read_text(errors="replace"):
        path.unlink()
    original = path.with_name("post-commit.prtrace-original")
    if original.exists() and not path.exists():
        os.replace(original, path)
