"""Which files are tests, what the fix changed in them, and laying them over the base tree
without ever writing through a symlink."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from prtrace.qa.overlay import build_overlay, changed_tests, is_test_file
from tests.factories import write_files


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_x.py", True),
        ("test_top.py", True),
        ("pkg/thing_test.py", True),
        ("pkg/conftest.py", True),
        ("tests/data/input.json", True),
        ("src/test/helpers.py", True),
        ("src/testing.py", False),
        ("ranges/merge.py", False),
        ("contest.py", False),
    ],
)
def test_test_files(path: str, expected: bool) -> None:
    assert is_test_file(PurePosixPath(path)) is expected


def test_changes_and_overlay(tmp_path: Path) -> None:
    base = write_files(
        tmp_path / "base",
        {
            "src/a.py": "old",
            "tests/test_a.py": "old",
            "tests/test_gone.py": "x",
            "tests/same.py": "s",
        },
    )
    final = write_files(
        tmp_path / "final",
        {
            "src/a.py": "new",
            "tests/test_a.py": "new",
            "tests/test_new.py": "n",
            "tests/same.py": "s",
        },
    )
    changes = changed_tests(base, final)
    assert sorted(map(str, changes.written)) == ["tests/test_a.py", "tests/test_new.py"]
    assert changes.deleted == [PurePosixPath("tests/test_gone.py")]
    overlay = tmp_path / "overlay"
    assert build_overlay(base, changes, overlay) == []
    assert (overlay / "src" / "a.py").read_text() == "old"  # the base code
    assert (overlay / "tests" / "test_a.py").read_text() == "new"  # the final's tests
    assert (overlay / "tests" / "test_new.py").read_text() == "n"
    assert not (overlay / "tests" / "test_gone.py").exists()


def test_overlay_never_writes_through_a_symlink(tmp_path: Path) -> None:
    base = write_files(tmp_path / "base", {"src/a.py": "code"})
    (base / "tests").symlink_to("src")  # the base's tests dir is a link into the tree
    final = write_files(tmp_path / "final", {"tests/test_a.py": "new"})
    overlay = tmp_path / "overlay"
    assert build_overlay(base, changed_tests(base, final), overlay) == ["tests/test_a.py"]
    assert not (overlay / "src" / "test_a.py").exists()
