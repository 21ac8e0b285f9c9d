"""Workspace snapshots: deterministic tar.gz archives of a git working tree.

What goes in is what `git ls-files -co --exclude-standard` lists (tracked files plus
untracked ones .gitignore does not exclude), minus files that usually hold credentials
(`.env`, key files, `.netrc`, …), which stay on the machine unless the caller asks for them.
The archive is byte-for-byte reproducible: names in path order, fixed owners, modes and
times, gzip without a timestamp, so the same tree always has the same SHA-256.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

MEDIA_TYPE: Final = "application/gzip"
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024

# Matched against the file name, and against the whole path for patterns with a slash.
SECRET_FILE_PATTERNS: Final[tuple[str, ...]] = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    "credentials",
    "credentials.json",
    "*credentials*.json",
    "service-account*.json",
    ".aws/*",
    ".ssh/*",
    ".docker/config.json",
)


class SnapshotError(Exception):
    """The workspace cannot be archived; the message says what to change."""


class SnapshotTooLarge(SnapshotError):
    def __init__(self, total: int, limit: int, biggest: list[tuple[str, int]]) -> None:
        listed = ", ".join(f"{name} ({size:,} bytes)" for name, size in biggest)
        super().__init__(
            f"the workspace holds {total:,} bytes, over the {limit:,} byte snapshot cap; "
            f"biggest files: {listed}. Add them to .gitignore or raise the cap."
        )
        self.total = total
        self.limit = limit
        self.biggest = biggest


@dataclass(frozen=True)
class Snapshot:
    data: bytes
    files: list[str]
    excluded: list[str] = field(default_factory=list)
    content_bytes: int = 0


def _path_key(name: str) -> tuple[str, ...]:
    return PurePosixPath(name).parts


def is_secret_file(name: str, patterns: Iterable[str] = SECRET_FILE_PATTERNS) -> bool:
    base = name.rsplit("/", 1)[-1]
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, f"*/{pattern}"):
                return True
        elif fnmatch.fnmatchcase(base, pattern):
            return True
    return False


def deterministic_tar_gz(root: Path, names: Iterable[str]) -> bytes:
    """A tar.gz of `names` (relative to `root`; files, directories or symlinks) and every
    parent directory, in path order, with fixed owners, modes and times."""
    entries = set()
    for name in names:
        parts = _path_key(name)
        entries.add(name)
        for depth in range(1, len(parts)):
            entries.add("/".join(parts[:depth]))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(entries, key=_path_key):
            path = root / name
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                info.type, info.mode = tarfile.SYMTYPE, 0o777
                info.linkname = os.readlink(path)
                archive.addfile(info)
            elif stat.S_ISDIR(mode):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                data = path.read_bytes()
                info.size = len(data)
                info.mode = 0o755 if mode & stat.S_IXUSR else 0o644
                archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def git(repo: Path, *args: str, input_bytes: bytes | None = None) -> bytes:
    """Run git in `repo`; a failure is a SnapshotError carrying git's own message."""
    result = subprocess.run(  # noqa: S603 - fixed git argv, no shell
        ["git", *args],  # noqa: S607 - git from PATH, as the user runs it
        cwd=repo,
        input=input_bytes,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip() or f"exit {result.returncode}"
        raise SnapshotError(f"git {' '.join(args[:2])} failed in {repo}: {message}")
    return result.stdout


def workspace_files(repo: Path) -> list[str]:
    """Tracked and not-ignored untracked paths that exist in the working tree (deleted
    tracked files and submodule directories are left out)."""
    listed = git(repo, "ls-files", "-z", "-c", "-o", "--exclude-standard").split(b"\0")
    names: set[str] = set()
    for raw in listed:
        if not raw:
            continue
        name = os.fsdecode(raw)
        try:
            mode = os.lstat(repo / name).st_mode
        except FileNotFoundError:
            continue  # tracked but deleted in the working tree
        if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
            names.add(name)
    return sorted(names, key=_path_key)


def snapshot_workspace(
    repo: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    exclude: Iterable[str] = SECRET_FILE_PATTERNS,
    exclude_paths: Iterable[str] = (),
) -> Snapshot:
    """Archive the working tree of the git repository at `repo`, without the files
    matching `exclude` (patterns) or named in `exclude_paths` (paths from the root)."""
    patterns = tuple(exclude)
    dropped = set(exclude_paths)
    kept: list[str] = []
    excluded: list[str] = []
    sizes: list[tuple[str, int]] = []
    for name in workspace_files(repo):
        if name in dropped or is_secret_file(name, patterns):
            excluded.append(name)
            continue
        kept.append(name)
        sizes.append((name, os.lstat(repo / name).st_size))
    total = sum(size for _, size in sizes)
    if total > max_bytes:
        biggest = sorted(sizes, key=lambda item: (-item[1], item[0]))[:5]
        raise SnapshotTooLarge(total, max_bytes, biggest)
    return Snapshot(deterministic_tar_gz(repo, kept), kept, excluded, total)
