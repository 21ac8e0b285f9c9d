"""The two extra workspaces QA builds when a fix changed tests or harness:

- base with final tests: the final snapshot's tests against the base snapshot's code
  (SWE-bench's "test patch on the base commit"), which gives tests added with the fix a
  "before";
- held: the base snapshot's own test files and harness (every conftest.py and the pytest
  configuration files) against the final snapshot's code, so that tests the candidate did
  not write decide the verdict.

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
from typing import Final

from prtrace.qa.shared_dirs import READABLE

_TEST_DIRS = frozenset({"tests", "test"})
# Files at the repository's root where pytest reads its configuration (addopts, -p
# plugins, deselection, testpaths): part of the harness, so the held run uses the base's.
HARNESS_CONFIG_FILES: Final = (
    "pytest.ini",
    "pytest.toml",
    ".pytest.toml",
    "tox.ini",
    "setup.cfg",
    "pyproject.toml",
)


def is_harness_file(relative: PurePosixPath) -> bool:
    """A conftest.py anywhere, or a pytest configuration file at the root."""
    return relative.name == "conftest.py" or (
        len(relative.parts) == 1 and relative.name in HARNESS_CONFIG_FILES
    )


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


def _held_paths(root: Path) -> dict[PurePosixPath, Path]:
    """Every test or harness path of `root`, symlinks included (not followed): all of them
    are replaced by the base's in the held workspace."""
    found: dict[PurePosixPath, Path] = {}
    for directory, dirs, files in os.walk(root):
        entries = list(files)
        for name in list(dirs):
            if os.path.islink(os.path.join(directory, name)):
                dirs.remove(name)
                entries.append(name)  # a linked directory is an entry, never walked
        for name in entries:
            path = Path(directory, name)
            relative = PurePosixPath(path.relative_to(root).as_posix())
            if is_test_file(relative) or is_harness_file(relative):
                found[relative] = path
            elif path.is_symlink() and name in _TEST_DIRS:
                found[relative] = path  # `tests -> elsewhere`: not the base's tests
    return found


def stage_base_harness(base: Path, dest: Path) -> int:
    """Copy the base's test files and harness files (regular files only) to `dest`, before
    any run can change them. Returns how many were staged."""
    staged = 0
    for relative, path in _held_paths(base).items():
        if not stat.S_ISREG(os.lstat(path).st_mode):
            continue
        target = dest.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target, follow_symlinks=False)
        staged += 1
    return staged


def build_held(final: Path, staged: Path, dest: Path) -> bool:
    """Copy the final tree to `dest`, then make its tests and harness exactly the base's
    (staged by stage_base_harness): the final's own are removed, links included. Returns
    whether anything differs from the final's (no difference: the held run would be the
    final run again)."""
    shutil.copytree(final, dest, symlinks=True)
    theirs = _held_paths(dest)
    ours = {
        relative: path
        for relative, path in _held_paths(staged).items()
        if stat.S_ISREG(os.lstat(path).st_mode)
    }
    differs = False
    for relative, path in theirs.items():
        regular = stat.S_ISREG(os.lstat(path).st_mode)
        if relative in ours and regular and filecmp.cmp(ours[relative], path, shallow=False):
            continue
        differs = True
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    for relative, source in sorted(ours.items()):
        target = dest.joinpath(*relative.parts)
        if target.is_symlink() or target.exists():
            continue  # identical to the final's, kept above
        parent = _real_parent(dest, relative)
        if parent is None:
            differs = True  # a linked or non-directory component: the test stays absent
            continue
        shutil.copyfile(source, parent / relative.name, follow_symlinks=False)
        differs = True
    return differs
