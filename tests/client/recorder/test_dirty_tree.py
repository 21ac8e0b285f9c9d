"""`record start` in a working tree with uncommitted changes: refused, because the base
snapshot would not be the base commit's tree and the trace's patch would not apply to it;
recorded as `repository.dirty: true` when allowed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from prtrace.schema import TraceMetadata
from prtrace_client.outbox import Outbox
from prtrace_client.recorder.session import (
    NoActiveSession,
    Recorder,
    RecorderError,
    hook_path,
    uncommitted_changes,
)
from tests.client.recorder.conftest import run_git


def assert_nothing_started(repo: Path, outbox: Outbox) -> None:
    assert outbox.sessions() == []
    directory = repo / ".git" / "prtrace"
    assert not (directory / "session.json").exists()
    assert not (directory / "base.tar.gz").exists()
    assert not hook_path(repo).exists()
    with pytest.raises(NoActiveSession):
        Recorder.open(repo)


def recorded_repository(outbox: Outbox, recorder: Recorder) -> dict[str, object]:
    metadata, _, _ = outbox.creation(recorder.info.local_id)
    TraceMetadata.model_validate(metadata)  # what the server will check
    repository: dict[str, object] = metadata["repository"]
    return repository


def test_a_clean_tree_records_dirty_false(buggy_repo: Path, outbox: Outbox) -> None:
    recorder = Recorder.start(buggy_repo, outbox, title="x")
    assert recorded_repository(outbox, recorder)["dirty"] is False
    assert recorder.info.dirty is False


def test_a_modified_tracked_file_is_refused_and_nothing_is_left_behind(
    buggy_repo: Path, outbox: Outbox
) -> None:
    (buggy_repo / "ranges" / "merge.py").write_text("# half a fix\n")
    with pytest.raises(RecorderError) as refused:
        Recorder.start(buggy_repo, outbox, title="x")
    message = str(refused.value)
    assert "uncommitted changes: ranges/merge.py." in message
    assert "Commit or stash them" in message
    assert "--allow-dirty" in message
    assert "repository.dirty: true" in message
    assert_nothing_started(buggy_repo, outbox)


def test_a_staged_only_change_is_refused(buggy_repo: Path, outbox: Outbox) -> None:
    (buggy_repo / "README.md").write_text("staged\n")
    (buggy_repo / "added.py").write_text("x = 1\n")
    run_git(buggy_repo, "add", "README.md", "added.py")
    run_git(buggy_repo, "mv", "ranges/merge.py", "ranges/merging.py")
    assert run_git(buggy_repo, "diff", "--name-only") == ""  # nothing unstaged
    with pytest.raises(RecorderError, match=r"README\.md") as refused:
        Recorder.start(buggy_repo, outbox, title="x")
    # A rename is named by its new path once (git lists the old one after it).
    assert "changes: README.md, added.py, ranges/merging.py." in str(refused.value)
    assert_nothing_started(buggy_repo, outbox)


def test_an_untracked_file_is_refused(buggy_repo: Path, outbox: Outbox) -> None:
    (buggy_repo / "scratch").mkdir()
    (buggy_repo / "scratch" / "repro.py").write_text("print(1)\n")
    with pytest.raises(RecorderError, match=r"uncommitted changes: scratch/repro\.py\."):
        Recorder.start(buggy_repo, outbox, title="x")
    assert_nothing_started(buggy_repo, outbox)


def test_ignored_files_do_not_make_the_tree_dirty(buggy_repo: Path, outbox: Outbox) -> None:
    (buggy_repo / "debug.log").write_text("noise\n")  # *.log is in .gitignore
    (buggy_repo / "__pycache__").mkdir()
    (buggy_repo / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    recorder = Recorder.start(buggy_repo, outbox, title="x")
    assert recorded_repository(outbox, recorder)["dirty"] is False


def test_only_ten_paths_are_named_and_the_rest_counted(buggy_repo: Path, outbox: Outbox) -> None:
    for number in range(13):
        (buggy_repo / f"new{number:02d}.txt").write_text(f"{number}\n")
    with pytest.raises(RecorderError) as refused:
        Recorder.start(buggy_repo, outbox, title="x")
    message = str(refused.value)
    assert "new09.txt (and 3 more)." in message
    assert "new10.txt" not in message


def test_allow_dirty_records_the_tree_as_it_is_and_says_so(
    buggy_repo: Path, outbox: Outbox
) -> None:
    (buggy_repo / "ranges" / "merge.py").write_text("# half a fix\n")
    (buggy_repo / "NOTES.md").write_text("untracked\n")
    recorder = Recorder.start(buggy_repo, outbox, title="x", allow_dirty=True)
    assert recorded_repository(outbox, recorder)["dirty"] is True
    assert recorder.info.dirty is True
    assert Recorder.open(buggy_repo).info.dirty is True  # kept in session.json
    (buggy_repo / "NOTES.md").write_text("edited\n")
    recorder.note("the base holds the uncommitted changes")
    recorder.stop()  # the edits still reproduce the final snapshot from the (dirty) base


def test_a_clean_tree_with_allow_dirty_records_dirty_false(
    buggy_repo: Path, outbox: Outbox
) -> None:
    recorder = Recorder.start(buggy_repo, outbox, title="x", allow_dirty=True)
    assert recorded_repository(outbox, recorder)["dirty"] is False


def test_the_last_sessions_files_do_not_count(buggy_repo: Path, outbox: Outbox) -> None:
    first = Recorder.start(buggy_repo, outbox, title="first")
    (buggy_repo / "README.md").write_text("fixed\n")
    run_git(buggy_repo, "commit", "-q", "-am", "Fix the readme")
    first.stop()
    second = Recorder.start(buggy_repo, outbox, title="second")
    assert recorded_repository(outbox, second)["dirty"] is False


def test_the_session_directory_never_counts_even_inside_the_tree(buggy_repo: Path) -> None:
    """With GIT_DIR inside the working tree, git lists the session directory as untracked."""
    (buggy_repo / "inside").mkdir()
    (buggy_repo / "inside" / "session.json").write_text("{}")
    (buggy_repo / "other.txt").write_text("x\n")
    assert uncommitted_changes(buggy_repo, buggy_repo / "inside") == ["other.txt"]


def test_a_repository_without_a_commit_is_still_refused_for_that(
    tmp_path: Path, outbox: Outbox
) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    run_git(repo, "init", "-q")
    with pytest.raises(RecorderError, match="no commit yet"):
        Recorder.start(repo, outbox, title="x", allow_dirty=True)


# ---- through the CLI ----------------------------------------------------------------------


def prtrace(repo: Path, outbox: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prtrace_cli.main", *args],
        cwd=repo, capture_output=True, text=True, check=False, timeout=120,
        env=os.environ | {"PRTRACE_OUTBOX": str(outbox)},
    )  # fmt: skip


def test_record_start_refuses_a_dirty_tree_and_allow_dirty_records_it(
    buggy_repo: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "cli-outbox.db"
    start = ("record", "start", "--title", "t", "--no-hook", "--no-recorder")
    (buggy_repo / "ranges" / "merge.py").write_text("# half a fix\n")
    refused = prtrace(buggy_repo, journal, *start)
    assert refused.returncode == 1
    assert "error: the working tree of" in refused.stderr
    assert "uncommitted changes: ranges/merge.py." in refused.stderr
    assert "--allow-dirty" in refused.stderr
    assert "Traceback" not in refused.stderr
    with Outbox.open(journal) as outbox:
        assert outbox.sessions() == []
    allowed = prtrace(buggy_repo, journal, *start, "--allow-dirty")
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: the working tree had uncommitted changes" in allowed.stderr
    status = orjson.loads(prtrace(buggy_repo, journal, "record", "status", "--json").stdout)
    with Outbox.open(journal) as outbox:
        metadata, _, _ = outbox.creation(status["session"])
    assert metadata["repository"]["dirty"] is True


def test_record_start_json_says_whether_the_tree_was_dirty(
    buggy_repo: Path, tmp_path: Path
) -> None:
    started = prtrace(
        buggy_repo, tmp_path / "cli-outbox.db",
        "record", "start", "--title", "t", "--no-hook", "--no-recorder", "--json",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert orjson.loads(started.stdout)["dirty"] is False
