"""The patch between two workspace trees, and reading a git-style unified diff back by
file: what an export's instance carries and what the judge is shown, computed the same way.

Pure: trees in, text out.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Final

# SWE-bench's harness treats files under these directories as test files.
_TEST_DIRS: Final = frozenset({"test", "tests", "testing", "e2e", "__tests__"})
_NO_NEWLINE: Final = "\\ No newline at end of file\n"


def workspace_patch(base: Mapping[str, bytes], final: Mapping[str, bytes]) -> str:
    """A git-style unified diff (`git apply -p1`) turning the `base` tree into `final`,
    files in path order. Trees map a POSIX relative path to the file's bytes. Files that
    are not UTF-8 text (binary) are left out: a text patch cannot carry them."""
    parts: list[str] = []
    for path in sorted(set(base) | set(final)):
        before, after = base.get(path), final.get(path)
        if before == after:
            continue
        old, new = _text(before), _text(after)
        if old is None or new is None:
            continue
        parts.append(
            _file_diff(path, None if before is None else old, None if after is None else new)
        )
    return "".join(parts)


def _text(data: bytes | None) -> str | None:
    if data is None:
        return ""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _lines(text: str) -> list[str]:
    """Lines with their "\n" (only "\n" ends a line, as for git), the last maybe without."""
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _file_diff(path: str, old: str | None, new: str | None) -> str:
    header = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        header.append("new file mode 100644\n")
    elif new is None:
        header.append("deleted file mode 100644\n")
    hunks = list(
        difflib.unified_diff(
            _lines(old or ""),
            _lines(new or ""),
            fromfile="/dev/null" if old is None else f"a/{path}",
            tofile="/dev/null" if new is None else f"b/{path}",
            n=3,
        )
    )
    body: list[str] = []
    for line in hunks:
        body.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE)
    return "".join(header + body)


def is_test_file(path: str) -> bool:
    """Whether a path is a test file, by SWE-bench's rule of thumb: under a test directory,
    or named like a test (test_*.py, *_test.py, *.test.js, *.spec.ts, conftest.py)."""
    *directories, name = path.split("/")
    if _TEST_DIRS & set(directories):
        return True
    stem = name.rsplit(".", 1)[0]
    return (
        name == "conftest.py"
        or stem.startswith("test_")
        or stem.endswith(("_test", ".test", ".spec"))
    )


def split_patch(patch: str) -> tuple[str, str]:
    """(code patch, test patch): the file diffs of `patch` not touching and touching test
    files. Joined they are the whole patch, as SWE-bench's `patch` and `test_patch` are."""
    code: list[str] = []
    tests: list[str] = []
    for path, diff in file_diffs(patch):
        (tests if is_test_file(path) else code).append(diff)
    return "".join(code), "".join(tests)


def patch_files(patch: str) -> list[str]:
    return [path for path, _ in file_diffs(patch)]


def file_diffs(patch: str) -> list[tuple[str, str]]:
    found: list[tuple[str, list[str]]] = []
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git a/"):
            # The paths are the same on both sides (no renames are produced here).
            path = line.removeprefix("diff --git a/").rstrip("\n").split(" b/", 1)[0]
            found.append((path, []))
        if found:
            found[-1][1].append(line)
    return [(path, "".join(lines)) for path, lines in found]
