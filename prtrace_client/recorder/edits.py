"""File edits: unified diffs of the working tree against the last recorded state.

The last recorded state is a git tree written through a private index in the session
directory (`<git-dir>/prtrace/index`), never the user's index, so recording changes nothing
the user sees in `git status` and nothing of it can be committed. Git's stat cache keeps
re-scans cheap: only files whose size or mtime changed are hashed again.

A long-lived tracker (the session's recorder process) asks git less: after each capture it
keeps the stat data (mtime, ctime, size, inode, mode) of every recorded file, and of what
decides which files there are: every directory that is not ignored, the .gitignore files and
.git/info/exclude. Creating, deleting or renaming a file changes its directory's stats,
editing a file its own, and ctime cannot be set back. When those "watched" stats all match,
only the files whose own stats differ are hashed again (none: no edits, git is not run);
otherwise the whole working tree is scanned as without kept stats. A stat that changed within
RACY_NS of the scan that read it is not trusted ("racy": a later change in the same clock tick
could look the same): such a file is hashed again next time, such a directory means a full
scan. The kept stats describe one recorded tree: when another process records meanwhile, the
next capture scans in full.

Both sides of each changed file are redacted before they are diffed, so a credential never
reaches a diff, and a multi-line one (a private key) becomes one marker line on both sides.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from prtrace_client.recorder.snapshot import (
    SECRET_FILE_PATTERNS,
    git,
    is_secret_file,
    workspace_files,
)
from prtrace_client.redaction import MARKER_PATTERN, redact

Change = Literal["add", "modify", "delete", "rename"]
EMPTY_TREE: Final = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_BINARY_SNIFF: Final = 8000
_SUBMODULE: Final = "160000"
MAX_DIFF_INPUT: Final = 4 * 1024 * 1024  # bytes per side
_STATUS: Final[dict[str, Change]] = {"A": "add", "M": "modify", "D": "delete", "T": "modify"}
RACY_NS: Final = 100_000_000  # a change within 0.1 s of a scan may share its clock tick
MAX_STAT_ENTRIES: Final = 50_000  # past this, stat-ing every path costs about what git does
_MISSING: Final = (0, 0, 0, 0, 0)

StatKey = tuple[int, int, int, int, int]  # mtime_ns, ctime_ns, size, inode, mode


def _stat_key(path: str) -> StatKey:
    try:
        info = os.lstat(path)
    except OSError:
        return _MISSING
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino, info.st_mode)


def _trusted(key: StatKey, scan_started_ns: int) -> StatKey | None:
    """`key`, or None when it changed too close to the scan (see the module's docstring)."""
    return None if key[1] >= scan_started_ns - RACY_NS else key


@dataclass
class WorkTreeStat:
    """The stats of a working tree when `tree` was recorded from it (None: racy)."""

    tree: str
    watched: dict[str, StatKey | None]  # directories, ignore files: which files there are
    files: dict[str, StatKey | None]  # the recorded files, relative to the repository

    def changed_files(self, repo: Path) -> list[str] | None:
        """The files whose stats changed; None when files may have come or gone."""
        root = os.fspath(repo)
        for name, key in self.watched.items():
            if key is None or _stat_key(os.path.join(root, name)) != key:
                return None
        return [
            name
            for name, key in self.files.items()
            if key is None or _stat_key(os.path.join(root, name)) != key
        ]

    def restat(self, repo: Path, tree: str, names: list[str], scan_started_ns: int) -> None:
        self.tree = tree
        for name in names:
            self.files[name] = _trusted(_stat_key(os.path.join(repo, name)), scan_started_ns)


def take_stat(
    repo: Path,
    tree: str,
    files: Iterable[str],
    ignored_dirs: set[str],
    also_watch: Iterable[Path],
    scan_started_ns: int,
) -> WorkTreeStat | None:
    """The stats of `files`, of every directory of `repo` but .git ones and `ignored_dirs`
    (paths ending in "/"), of its .gitignore files and of `also_watch`; None when there are
    too many to be worth it."""
    root = os.fspath(repo)
    watched: dict[str, StatKey | None] = {
        os.fspath(path): _trusted(_stat_key(os.fspath(path)), scan_started_ns)
        for path in also_watch
    }
    pending = [""]
    while pending:
        relative = pending.pop()
        watched[relative] = _trusted(_stat_key(os.path.join(root, relative)), scan_started_ns)
        with os.scandir(os.path.join(root, relative)) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    name = f"{relative}{entry.name}/"
                    if entry.name != ".git" and name not in ignored_dirs:  # nested repos too
                        pending.append(name)
                elif entry.name == ".gitignore":
                    name = f"{relative}{entry.name}"
                    watched[name] = _trusted(_stat_key(entry.path), scan_started_ns)
        if len(watched) > MAX_STAT_ENTRIES:
            return None
    kept: dict[str, StatKey | None] = {}
    for name in files:
        kept[name] = _trusted(_stat_key(os.path.join(root, name)), scan_started_ns)
        if len(kept) + len(watched) > MAX_STAT_ENTRIES:
            return None
    return WorkTreeStat(tree, watched, kept)


@dataclass(frozen=True)
class FileEdit:
    path: str
    change: Change
    diff: str  # unified diff, redacted
    lines_added: int
    lines_removed: int
    redactions: int  # markers in `diff`
    old_path: str | None = None  # for a rename


class EditTracker:
    """Diffs of the working tree of `repo` since the last call, in path order."""

    def __init__(
        self,
        repo: Path,
        state_dir: Path,
        exclude: Iterable[str] = SECRET_FILE_PATTERNS,
    ) -> None:
        self.repo = repo
        self.state_dir = state_dir
        self._exclude = tuple(exclude)
        self._index = state_dir / "index"
        self._tree_file = state_dir / "last-tree"
        # Keep stats between captures (see the module's docstring): worth it only in a
        # long-lived tracker, the session's recorder process.
        self.keep_stats = False
        self._stat: WorkTreeStat | None = None
        self._reader: _BlobReader | None = None  # kept with the stats (see _modified)
        self.git_scans = 0  # captures that asked git (the others were answered by stats)
        self.full_scans = 0  # of those, the ones that listed the whole working tree

    @property
    def last_tree(self) -> str | None:
        try:
            return self._tree_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def record_baseline(self) -> str:
        """Take the working tree as it is now as the last recorded state."""
        scan_started_ns = time.time_ns()
        tree, files = self._write_tree()
        self._save(tree)
        self._keep_stat(tree, files, scan_started_ns)
        return tree

    def capture(self) -> list[FileEdit]:
        """The edits since the last recorded state; they become the recorded state."""
        old = self.last_tree or EMPTY_TREE
        kept, self._stat = self._stat, None
        changed = kept.changed_files(self.repo) if kept is not None and kept.tree == old else None
        if kept is not None and changed == []:
            self._stat = kept
            return []
        self.git_scans += 1
        scan_started_ns = time.time_ns()
        if kept is not None and changed is not None:  # the same files, some of them edited
            self._git(
                "update-index", "-z", "--add", "--remove", "--replace", "--stdin",
                input_bytes=b"".join(os.fsencode(n) + b"\0" for n in changed),
            )  # fmt: skip
            new = self._git("write-tree").decode().strip()
        else:
            self.full_scans += 1
            new, files = self._write_tree()
        if new == old:
            edits = []
        elif kept is not None and changed is not None:
            edits = self._modified(old, new, changed)
        else:
            edits = diff_trees(self.repo, old, new, self._exclude)
        if new != old:
            self._save(new)  # only after the diffs are built: a crash re-captures them
        if kept is not None and changed is not None:
            kept.restat(self.repo, new, changed, scan_started_ns)
            self._stat = kept
        else:
            self._keep_stat(new, files, scan_started_ns)
        return edits

    def _modified(self, old: str, new: str, changed: list[str]) -> list[FileEdit]:
        """The edits of `changed`, files of both trees (the same files, some edited), read
        through the tracker's own long-lived `git cat-file`: no diff-tree, no process
        started. Anything unexpected falls back to diff_trees."""
        if any("\n" in name for name in changed):
            return diff_trees(self.repo, old, new, self._exclude)
        try:
            if self._reader is None:
                self._reader = _BlobReader(self.repo)
            edits = []
            for name in sorted(changed):
                before = self._reader.lookup(f"{old}:{name}")
                after = self._reader.lookup(f"{new}:{name}")
                if before is None or after is None:
                    return diff_trees(self.repo, old, new, self._exclude)
                if before[0] != after[0]:  # a mode-only change is no edit, as in diff_trees
                    edits.append(file_edit(name, "modify", before[1], after[1]))
            return edits
        except (OSError, RuntimeError, ValueError):
            self.close()  # the reader broke: a new one next time
            return diff_trees(self.repo, old, new, self._exclude)

    def close(self) -> None:
        """End the long-lived `git cat-file` (a tracker keeping stats starts one)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(OSError):
                reader.close()

    def _keep_stat(self, tree: str, files: list[str], scan_started_ns: int) -> None:
        if not self.keep_stats:
            return
        ignored = {
            os.fsdecode(raw)
            for raw in self._git(
                "ls-files", "-z", "-o", "-i", "--exclude-standard", "--directory"
            ).split(b"\0")
            if raw.endswith(b"/")
        }
        exclude = Path(os.fsdecode(self._git("rev-parse", "--git-path", "info/exclude").strip()))
        also_watch = [exclude if exclude.is_absolute() else self.repo / exclude]
        try:
            self._stat = take_stat(self.repo, tree, files, ignored, also_watch, scan_started_ns)
        except OSError:
            self._stat = None  # something moved meanwhile: scan in full next time

    # ---- git plumbing -------------------------------------------------------------

    def _git(self, *args: str, input_bytes: bytes | None = None) -> bytes:
        env = os.environ | {"GIT_INDEX_FILE": str(self._index)}
        result = subprocess.run(  # noqa: S603 - fixed git argv, no shell
            ["git", *args],  # noqa: S607 - git from PATH, as the user runs it
            cwd=self.repo,
            input=input_bytes,
            capture_output=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"git {args[0]} failed in {self.repo}: {message}")
        return result.stdout

    def _write_tree(self) -> tuple[str, list[str]]:
        """The tree of the working tree as it is now, and the files in it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        wanted = [
            name for name in workspace_files(self.repo) if not is_secret_file(name, self._exclude)
        ]
        indexed = {os.fsdecode(raw) for raw in self._git("ls-files", "-z").split(b"\0") if raw}
        gone = sorted(indexed.difference(wanted))
        if gone:
            self._git(
                "update-index", "-z", "--force-remove", "--stdin",
                input_bytes=b"".join(os.fsencode(n) + b"\0" for n in gone),
            )  # fmt: skip
        if wanted:
            # update-index skips hashing files whose stat data is unchanged.
            self._git(
                "update-index", "-z", "--add", "--replace", "--stdin",
                input_bytes=b"".join(os.fsencode(n) + b"\0" for n in wanted),
            )  # fmt: skip
        return self._git("write-tree").decode().strip(), wanted

    def _save(self, tree: str) -> None:
        scratch = self._tree_file.with_suffix(".tmp")
        scratch.write_text(tree + "\n")
        os.replace(scratch, self._tree_file)


@dataclass(frozen=True, order=True)
class _Change:
    path: str
    change: Change
    old_blob: str
    new_blob: str
    old_mode: str
    new_mode: str
    old_path: str | None = None


def diff_trees(
    repo: Path, old: str, new: str, exclude: Iterable[str] = SECRET_FILE_PATTERNS
) -> list[FileEdit]:
    """The redacted edits between two trees (or commits) of `repo`, in path order;
    renames are found by content (git's 50% similarity); secret files are left out,
    mode-only changes too."""
    patterns = tuple(exclude)
    raw = git(repo, "diff-tree", "-r", "-z", "-M", "--raw", old, new)
    fields = iter(raw.split(b"\0"))
    changes: list[_Change] = []
    for header in fields:
        if not header:
            continue
        old_mode, new_mode, old_blob, new_blob, status = header.decode()[1:].split(" ")
        path = os.fsdecode(next(fields))
        old_path = None
        if status[0] == "R":  # two paths follow: source, destination
            old_path, path = path, os.fsdecode(next(fields))
        kind: Change = "rename" if old_path is not None else _STATUS.get(status[0], "modify")
        if is_secret_file(path, patterns) or (old_path and is_secret_file(old_path, patterns)):
            continue
        if _SUBMODULE in (old_mode, new_mode):
            continue  # a submodule's commit id, not content of this repository
        if old_blob == new_blob and kind != "rename":
            continue
        changes.append(_Change(path, kind, old_blob, new_blob, old_mode, new_mode, old_path))
    edits = []
    blobs = _BlobReader(repo)
    try:
        for item in sorted(changes):
            before = b"" if item.change == "add" else blobs.read(item.old_blob)
            after = b"" if item.change == "delete" else blobs.read(item.new_blob)
            mode = item.old_mode if item.change == "delete" else item.new_mode
            edits.append(file_edit(item.path, item.change, before, after, mode, item.old_path))
    finally:
        blobs.close()
    return edits


class _BlobReader:
    """One `git cat-file --batch` process for all the blobs of a capture."""

    def __init__(self, repo: Path) -> None:
        self._process = subprocess.Popen(
            ["git", "cat-file", "--batch"],  # noqa: S607
            cwd=repo,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def read(self, blob: str) -> bytes:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(blob.encode() + b"\n")
        self._process.stdin.flush()
        header = self._process.stdout.readline().split()
        if len(header) != 3:
            raise RuntimeError(f"git cat-file could not read blob {blob}")
        data = self._process.stdout.read(int(header[2]))
        self._process.stdout.read(1)  # the newline after the contents
        return data

    def lookup(self, spec: str) -> tuple[str, bytes] | None:
        """(object id, contents) of `spec` (`<tree>:<path>`), None when it names nothing."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(spec.encode() + b"\n")
        self._process.stdin.flush()
        header = self._process.stdout.readline().split()
        if len(header) != 3:
            if header[-1:] in ([b"missing"], [b"ambiguous"]):
                return None
            raise RuntimeError(f"git cat-file could not read {spec}")
        data = self._process.stdout.read(int(header[2]))
        self._process.stdout.read(1)  # the newline after the contents
        return header[0].decode(), data

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:_BINARY_SNIFF]


def unified_diff_body(
    before: str, after: str, old_name: str, new_name: str
) -> tuple[str, int, int]:
    """The unified diff of two texts (git's form for a last line without a newline), with
    the lines it adds and removes."""
    body: list[str] = []
    added = removed = 0
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), old_name, new_name, n=3
    )
    for line in lines:
        if line.startswith("+") and not line.startswith("+++ "):
            added += 1
        elif line.startswith("-") and not line.startswith("--- "):
            removed += 1
        body.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(body), added, removed


def file_edit(
    path: str,
    change: Change,
    before: bytes,
    after: bytes,
    mode: str = "100644",
    old_path: str | None = None,
) -> FileEdit:
    """The redacted unified diff (git's format, three lines of context) of one file."""
    source = old_path or path
    header = [f"diff --git a/{source} b/{path}\n"]
    if change == "add":
        header.append(f"new file mode {mode}\n")
    elif change == "delete":
        header.append(f"deleted file mode {mode}\n")
    elif change == "rename":
        header.append(f"rename from {source}\nrename to {path}\n")
    old_name = "/dev/null" if change == "add" else f"a/{source}"
    new_name = "/dev/null" if change == "delete" else f"b/{path}"

    def summary(text: str) -> FileEdit:
        return FileEdit(path, change, "".join([*header, text]), 0, 0, 0, old_path)

    if _is_binary(before) or _is_binary(after):
        return summary(f"Binary files {old_name} and {new_name} differ\n")
    if max(len(before), len(after)) > MAX_DIFF_INPUT:
        # Line diffs of generated or data files cost more than they tell.
        return summary(
            f"Files {old_name} and {new_name} differ ({len(before):,} -> {len(after):,} bytes; "
            f"not diffed over {MAX_DIFF_INPUT:,} bytes)\n"
        )
    body, added, removed = unified_diff_body(
        redact(before.decode("utf-8", "replace")).text,
        redact(after.decode("utf-8", "replace")).text,
        old_name,
        new_name,
    )
    diff = "".join(header) + body
    redactions = len(MARKER_PATTERN.findall(diff))
    return FileEdit(path, change, diff, added, removed, redactions, old_path)
