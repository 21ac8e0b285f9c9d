"""Run the final snapshot's tests against the base snapshot's code (SWE-bench's "test patch
on the base commit").

A fix usually comes with a new or changed test. On the base snapshot that test is absent
or in its old form, so comparing base with final alone could never show it failing before
the fix. When the fix changed test files, QA also runs a third workspace: the base tree
with the final's test files laid over it (added and modified ones copied, deleted ones
removed). Its outcomes are the "before" of every test it ran.

Test files: `test_*.py`, `*_test.py`, `conftest.py`, and any file under a directory named
`tests` or `test` (fixtures and data included).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from prtrace.qa.shared_dirs import READABLE

_TEST_DIRS = frozenset({"tests", "test"})


def is_test_file(relative: PurePosixPath) -> bool:
    name = relative.name
    if name == "conftest.py" or (name.endswith(".py") and name.startswith("test_")):
        return True
    if name.endswith("_test.py"):
        return True
    return any(part in _TEST_DIRS for part in relative.parts[:-1])


def _test_files(root: Path) -> dict[PurePosixPath, Path]:
    """Regular test files by relative path; symlinks are never followed or copied."""
    found: dict[PurePosixPath, Path] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(directory, d))]
        for name in files:
            path = Path(directory, name)
            relative = PurePosixPath(path.relative_to(root).as_posix())
            if is_test_file(relative) and stat.S_ISREG(os.lstat(path).st_mode):
                found[relative] = path
    return found


@dataclass(frozen=True)
class ChangedTests:
    written: dict[PurePosixPath, Path]  # added or modified: relative path -> final's file
    deleted: list[PurePosixPath]

    @property
    def any(self) -> bool:
        return bool(self.written or self.deleted)


def changed_tests(base: Path, final: Path) -> ChangedTests:
    in_base, in_final = _test_files(base), _test_files(final)
    written = {
        relative: path
        for relative, path in in_final.items()
        if relative not in in_base or not filecmp.cmp(in_base[relative], path, shallow=False)
    }
    deleted = sorted(set(in_base) - set(in_final))
    return ChangedTests(written=written, deleted=deleted)


def _real_parent(root: Path, relative: PurePosixPath) -> Path | None:
    """The parent directory inside `root`, created as needed; None when a component is a
    symlink or not a directory (never write through a link)."""
    current = root
    for part in relative.parts[:-1]:
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current)
            os.chmod(current, READABLE)
            continue
        if not stat.S_ISDIR(info.st_mode):
            return None
    return current


def build_overlay(base: Path, changes: ChangedTests, dest: Path) -> list[str]:
    """Copy the base tree to `dest` and lay the final's test changes over it. Returns the
    paths that could not be laid over (a symlink in the way), for the log."""
    shutil.copytree(base, dest, symlinks=True)
    skipped: list[str] = []
    for relative, source in sorted(changes.written.items()):
        parent = _real_parent(dest, relative)
        target = None if parent is None else parent / relative.name
        if target is None or (target.is_symlink() or (target.exists() and not target.is_file())):
            skipped.append(str(relative))
            continue
        shutil.copyfile(source, target, follow_symlinks=False)
    for relative in changes.deleted:
        target = dest.joinpath(*relative.parts)
        if target.is_file() and not target.is_symlink():
            target.unlink()
    return skipped
