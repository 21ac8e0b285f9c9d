"""File edits: diffs against the last recorded state (add, modify, delete), line counts,
redacted before diffing, and a recorded state the user's git never sees."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from prtrace_client.recorder.edits import (
    MAX_DIFF_INPUT,
    RACY_NS,
    EditTracker,
    diff_trees,
    file_edit,
)
from prtrace_client.recorder.snapshot import SnapshotError
from tests.client.recorder.conftest import init_repo, run_git

BUG = "    if current is not None and not merged:\n"
FIX = "    if current is not None:\n"
GITHUB_PAT = "ghp_" + "R8mV2kQz7LwX4pN9sT1yB6cJ3hF5dG0aE2uK"


def settle() -> None:
    """Wait until what was just written is no longer "racy" for kept stats."""
    time.sleep(RACY_NS / 1e9 + 0.03)


def stats_tracker(repo: Path) -> EditTracker:
    """A tracker keeping stats (as the recorder process's), with trusted stats kept."""
    tracker = EditTracker(repo, repo / ".git" / "prtrace")
    tracker.keep_stats = True
    tracker.record_baseline()
    settle()
    assert tracker.capture() == []  # a full scan whose stats are trusted
    return tracker


@pytest.fixture(params=["git", "kept-stats"])
def tracker(buggy_repo: Path, request: pytest.FixtureRequest) -> EditTracker:
    """Every test of a capture runs with and without kept stats (the recorder process)."""
    if request.param == "kept-stats":
        return stats_tracker(buggy_repo)
    tracker = EditTracker(buggy_repo, buggy_repo / ".git" / "prtrace")
    tracker.record_baseline()
    return tracker


def fix_bug(repo: Path) -> None:
    merge = repo / "ranges" / "merge.py"
    source = merge.read_text()
    assert BUG in source
    merge.write_text(source.replace(BUG, FIX))


def test_nothing_changed_means_no_edits(tracker: EditTracker) -> None:
    assert tracker.capture() == []


def test_a_modified_file_gives_a_diff_that_git_can_apply(
    tracker: EditTracker, buggy_repo: Path, tmp_path: Path
) -> None:
    fix_bug(buggy_repo)

    [edit] = tracker.capture()

    assert (edit.path, edit.change, edit.lines_added, edit.lines_removed) == (
        "ranges/merge.py",
        "modify",
        1,
        1,
    )
    assert f"-{BUG}" in edit.diff
    assert f"+{FIX}" in edit.diff
    assert edit.diff.startswith("diff --git a/ranges/merge.py b/ranges/merge.py\n--- a/ranges")
    # The recorded diff is a real patch: it turns the committed file into the fixed one.
    patch = tmp_path / "fix.diff"
    patch.write_text(edit.diff)
    run_git(buggy_repo, "stash", "-q")
    run_git(buggy_repo, "apply", str(patch))
    assert FIX in (buggy_repo / "ranges" / "merge.py").read_text()
    assert tracker.capture() == []  # the same content as recorded


def test_each_capture_diffs_against_the_previous_capture(
    tracker: EditTracker, buggy_repo: Path
) -> None:
    notes = buggy_repo / "NOTES.md"
    notes.write_text("one\n")
    [first] = tracker.capture()
    notes.write_text("one\ntwo\nthree\n")
    [second] = tracker.capture()
    assert first.change == "add"
    assert "--- /dev/null\n+++ b/NOTES.md" in first.diff
    assert (second.change, second.lines_added, second.lines_removed) == ("modify", 2, 0)
    assert "+two\n+three\n" in second.diff
    assert "+one" not in second.diff


def test_add_and_delete_in_path_order(tracker: EditTracker, buggy_repo: Path) -> None:
    (buggy_repo / "README.md").unlink()
    (buggy_repo / "ranges" / "extra.py").write_text("X = 1\nY = 2")  # no final newline

    edits = tracker.capture()

    assert [(e.path, e.change) for e in edits] == [
        ("README.md", "delete"),
        ("ranges/extra.py", "add"),
    ]
    deleted, added = edits
    assert deleted.lines_added == 0
    assert deleted.lines_removed == len(
        (Path(__file__).parents[3] / "examples" / "repo-buggy" / "README.md")
        .read_text()
        .splitlines()
    )
    assert "+++ /dev/null" in deleted.diff
    assert (added.lines_added, added.lines_removed) == (2, 0)
    assert added.diff.endswith("+Y = 2\n\\ No newline at end of file\n")


def test_ignored_and_secret_files_are_not_recorded(tracker: EditTracker, buggy_repo: Path) -> None:
    (buggy_repo / "run.log").write_text("ignored\n")
    (buggy_repo / ".env").write_text(f"GITHUB_TOKEN={GITHUB_PAT}\n")
    (buggy_repo / "server.key").write_text("key\n")
    assert tracker.capture() == []


def test_secrets_in_edits_are_redacted_before_diffing(
    tracker: EditTracker, buggy_repo: Path
) -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        "QyNTUxOQAAACBtZXJnZS1rZWVwcy1sYXN0LWludGVydmFsLXRlc3Qta2V5AAAAAAAAAA==\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    )
    (buggy_repo / "deploy.py").write_text(f'TOKEN = "{GITHUB_PAT}"\nKEY = """\n{key}"""\n')

    [edit] = tracker.capture()

    assert GITHUB_PAT not in edit.diff
    assert "b3BlbnNzaC1rZXkt" not in edit.diff
    assert "[REDACTED:github-token:hmac-sha256=" in edit.diff
    assert "[REDACTED:private-key:hmac-sha256=" in edit.diff
    assert edit.redactions == 2


def test_the_users_index_and_status_are_untouched(tracker: EditTracker, buggy_repo: Path) -> None:
    fix_bug(buggy_repo)
    (buggy_repo / "new.py").write_text("x = 1\n")
    before = run_git(buggy_repo, "status", "--porcelain")
    tracker.capture()
    assert run_git(buggy_repo, "status", "--porcelain") == before
    assert run_git(buggy_repo, "diff", "--cached", "--name-only") == ""
    assert " M ranges/merge.py" in before
    assert "?? new.py" in before


def test_binary_files_are_noted_without_content() -> None:
    edit = file_edit("logo.png", "add", b"", b"\x89PNG\r\n\x1a\n\0\0\0")
    assert edit.diff.endswith("Binary files /dev/null and b/logo.png differ\n")
    assert (edit.lines_added, edit.lines_removed) == (0, 0)


def test_a_new_tracker_without_a_baseline_records_everything(buggy_repo: Path) -> None:
    tracker = EditTracker(buggy_repo, buggy_repo / ".git" / "other")
    edits = tracker.capture()
    assert {e.change for e in edits} == {"add"}
    assert "ranges/merge.py" in {e.path for e in edits}


def test_git_errors_say_where(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match=r"git ls-files .* failed in .*not a git repository"):
        EditTracker(tmp_path, tmp_path / "state").record_baseline()


def test_executable_files_keep_their_mode_in_the_diff(
    tracker: EditTracker, buggy_repo: Path
) -> None:
    script = buggy_repo / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    [edit] = tracker.capture()
    assert "new file mode 100755\n" in edit.diff


def test_huge_files_are_noted_without_a_line_diff() -> None:
    big = b"row\n" * (MAX_DIFF_INPUT // 4 + 1)
    edit = file_edit("data.csv", "modify", b"row\n", big)
    assert "not diffed over" in edit.diff
    assert (edit.lines_added, edit.lines_removed) == (0, 0)
    assert len(edit.diff) < 300


def test_submodules_in_commits_are_skipped(buggy_repo: Path, tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "x.txt").write_text("x\n")
    init_repo(inner)
    inner_head = run_git(inner, "rev-parse", "HEAD").strip()
    before = run_git(buggy_repo, "rev-parse", "HEAD").strip()
    # Record a gitlink (what `git submodule add` stores) without cloning anything.
    run_git(buggy_repo, "update-index", "--add", "--cacheinfo", f"160000,{inner_head},vendor/x")
    (buggy_repo / "NOTES.md").write_text("notes\n")
    run_git(buggy_repo, "add", "NOTES.md")
    run_git(buggy_repo, "commit", "-q", "-m", "vendor")
    edits = diff_trees(buggy_repo, before, "HEAD")
    assert [e.path for e in edits] == ["NOTES.md"]


def test_a_moved_file_is_a_rename_with_its_changes(
    tracker: EditTracker, buggy_repo: Path, tmp_path: Path
) -> None:
    source = buggy_repo / "ranges" / "merge.py"
    text = source.read_text()
    source.unlink()
    (buggy_repo / "ranges" / "intervals.py").write_text(text.replace(BUG, FIX))
    (buggy_repo / "README.md").rename(buggy_repo / "README.txt")

    edits = tracker.capture()

    assert [(e.path, e.change, e.old_path) for e in edits] == [
        ("README.txt", "rename", "README.md"),
        ("ranges/intervals.py", "rename", "ranges/merge.py"),
    ]
    moved = edits[1]
    assert (moved.lines_added, moved.lines_removed) == (1, 1)
    assert "rename from ranges/merge.py\nrename to ranges/intervals.py\n" in moved.diff
    assert edits[0].diff.endswith("rename from README.md\nrename to README.txt\n")
    patch = tmp_path / "moves.diff"
    patch.write_text("".join(e.diff for e in edits))
    run_git(buggy_repo, "stash", "-q", "-u")
    run_git(buggy_repo, "apply", str(patch))
    assert FIX in (buggy_repo / "ranges" / "intervals.py").read_text()
    assert not (buggy_repo / "README.md").exists()


# ---- kept stats: captures that need not ask git -------------------------------------------


def test_kept_stats_answer_a_capture_without_git_when_nothing_changed(buggy_repo: Path) -> None:
    tracker = stats_tracker(buggy_repo)
    scans = tracker.git_scans
    for _ in range(3):
        assert tracker.capture() == []
    assert tracker.git_scans == scans


def test_an_edited_file_is_hashed_again_alone_and_a_new_file_means_a_full_scan(
    buggy_repo: Path,
) -> None:
    tracker = stats_tracker(buggy_repo)
    full = tracker.full_scans
    fix_bug(buggy_repo)
    [edit] = tracker.capture()
    assert (edit.path, edit.change) == ("ranges/merge.py", "modify")
    assert tracker.full_scans == full  # the same files: only the edited one was hashed
    (buggy_repo / "ranges" / "new.py").write_text("x = 1\n")
    [added] = tracker.capture()
    assert (added.path, added.change) == ("ranges/new.py", "add")
    assert tracker.full_scans == full + 1


def test_a_file_edited_twice_at_once_is_seen_both_times(buggy_repo: Path) -> None:
    tracker = stats_tracker(buggy_repo)
    notes = buggy_repo / "README.md"
    notes.write_text("one\n")
    [first] = tracker.capture()
    notes.write_text("two\n")  # same size, likely the same clock tick: racy, hashed again
    [second] = tracker.capture()
    assert "+one" in first.diff
    assert "-one\n+two" in second.diff


def test_files_in_new_empty_and_ignored_only_directories_are_seen(buggy_repo: Path) -> None:
    (buggy_repo / "logs").mkdir()
    (buggy_repo / "logs" / "run.log").write_text("ignored\n")  # *.log is ignored
    (buggy_repo / "empty").mkdir()
    tracker = stats_tracker(buggy_repo)
    (buggy_repo / "logs" / "notes.txt").write_text("seen\n")
    (buggy_repo / "empty" / "deep").mkdir()
    settle()  # the new directory's own stats are trusted from here
    assert [e.path for e in tracker.capture()] == ["logs/notes.txt"]
    (buggy_repo / "empty" / "deep" / "x.py").write_text("x = 1\n")
    assert [e.path for e in tracker.capture()] == ["empty/deep/x.py"]


def test_a_file_no_longer_ignored_is_seen(buggy_repo: Path) -> None:
    (buggy_repo / "run.log").write_text("kept\n")
    tracker = stats_tracker(buggy_repo)
    gitignore = buggy_repo / ".gitignore"
    gitignore.write_text(gitignore.read_text().replace("*.log", "*.tmp"))
    assert {e.path for e in tracker.capture()} == {".gitignore", "run.log"}


def test_another_process_recording_means_a_full_scan(buggy_repo: Path) -> None:
    tracker = stats_tracker(buggy_repo)
    fix_bug(buggy_repo)
    other = EditTracker(buggy_repo, buggy_repo / ".git" / "prtrace")
    assert [e.path for e in other.capture()] == ["ranges/merge.py"]
    full = tracker.full_scans
    assert tracker.capture() == []  # the other recorded it: nothing new, and no stale stats
    assert tracker.full_scans == full + 1
