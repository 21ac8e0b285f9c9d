"""The recorder without a server: what it journals in the outbox, its session directory,
its git hook, and the errors a user sees."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from prtrace.schema import MAX_INLINE_DIFF_LEN, TestRunPayload
from prtrace_client.outbox import Outbox
from prtrace_client.recorder.issues import IssueError, task_from_issue
from prtrace_client.recorder.session import (
    HOOK_MARK,
    NoActiveSession,
    Recorder,
    RecorderError,
    hook_path,
    repository_url,
)
from prtrace_client.recorder.snapshot import SnapshotTooLarge
from tests.client.recorder.conftest import init_repo, run_git

GITHUB_PAT = "ghp_" + "R8mV2kQz7LwX4pN9sT1yB6cJ3hF5dG0aE2uK"


def journaled(outbox: Outbox, session: str) -> list[dict[str, Any]]:
    outbox.seal(session, force=True)
    events: list[dict[str, Any]] = []
    for seq in range(outbox.state(session).chunks):
        events += orjson.loads(outbox.chunk(session, seq).body)["events"]
    return events


def quiet_run(recorder: Recorder, argv: list[str]) -> tuple[int, bytes, bytes]:
    out, err = io.BytesIO(), io.BytesIO()
    outcome = recorder.run(argv, stdout=out, stderr=err, cwd=recorder.repo)
    return outcome.exit_code, out.getvalue(), err.getvalue()


def test_start_opens_a_trace_with_the_repository_and_a_base_snapshot(
    recorder: Recorder, outbox: Outbox, buggy_repo: Path
) -> None:
    metadata, _, _ = outbox.creation(recorder.info.local_id)
    head = run_git(buggy_repo, "rev-parse", "HEAD").strip()
    assert metadata["repository"] == {
        "url": buggy_repo.as_uri(),
        "base_commit": head,
        "dirty": False,
    }
    assert metadata["task"]["title"] == "merge() drops the last interval"
    assert metadata["author"] == {"id": "ada@example.com", "kind": "human"}
    assert metadata["client"]["name"] == "prtrace-cli"
    directory = buggy_repo / ".git" / "prtrace"
    assert recorder.directory == directory
    assert (directory / "base.tar.gz").read_bytes()
    assert [a.sha256 for a in outbox.pending_artifacts(recorder.info.local_id)] == [
        recorder.info.base_snapshot["sha256"]
    ]
    session = orjson.loads((directory / "session.json").read_bytes())
    assert session["local_id"] == recorder.info.local_id
    assert HOOK_MARK in hook_path(buggy_repo).read_text()


def test_a_second_start_in_the_same_repository_is_refused(
    recorder: Recorder, outbox: Outbox, buggy_repo: Path
) -> None:
    with pytest.raises(RecorderError, match=r"already recording.*record stop"):
        Recorder.start(buggy_repo, outbox, title="again")


def test_start_needs_a_commit_and_a_git_repository(tmp_path: Path, outbox: Outbox) -> None:
    with pytest.raises(RecorderError, match="not inside a git repository"):
        Recorder.start(tmp_path, outbox, title="x")
    run_git(tmp_path, "init", "-q")
    with pytest.raises(RecorderError, match="no commit yet"):
        Recorder.start(tmp_path, outbox, title="x")


def test_a_workspace_over_the_cap_stops_start_before_anything_is_opened(
    buggy_repo: Path, outbox: Outbox
) -> None:
    (buggy_repo / "blob.bin").write_bytes(b"x" * 5000)
    run_git(buggy_repo, "add", "blob.bin")
    run_git(buggy_repo, "commit", "-q", "-m", "Add a blob")
    with pytest.raises(SnapshotTooLarge, match=r"blob\.bin"):
        Recorder.start(buggy_repo, outbox, title="x", max_snapshot_bytes=4096)
    assert outbox.sessions() == []
    with pytest.raises(NoActiveSession):
        Recorder.open(buggy_repo)


def test_commands_are_recorded_with_redacted_output(recorder: Recorder, outbox: Outbox) -> None:
    code, out, _ = quiet_run(
        recorder,
        [sys.executable, "-c", f"import sys; print('token {GITHUB_PAT}'); sys.exit(3)"],
    )
    assert code == 3
    assert GITHUB_PAT.encode() in out  # shown as is on the terminal
    [event] = journaled(outbox, recorder.info.local_id)
    payload = event["payload"]
    assert event["type"] == "cmd_run"
    assert (payload["exit_code"], payload["cwd"]) == (3, ".")
    assert "stderr_ref" not in payload  # nothing on stderr
    stored = Path(outbox.blob_dir / payload["stdout_ref"]["sha256"]).read_bytes()
    assert GITHUB_PAT.encode() not in stored
    assert stored.startswith(b"token [REDACTED:github-token:hmac-sha256=")
    assert GITHUB_PAT not in orjson.dumps(event).decode()  # nor in the argv
    assert Recorder.open(recorder.repo, outbox).info.redactions == 2


def test_secrets_in_arguments_are_redacted(recorder: Recorder, outbox: Outbox) -> None:
    quiet_run(recorder, ["echo", f"--token={GITHUB_PAT}"])
    [event] = journaled(outbox, recorder.info.local_id)
    assert GITHUB_PAT not in orjson.dumps(event).decode()
    assert event["payload"]["argv"][1].startswith("--token=[REDACTED:github-token:")


def test_a_secret_after_a_space_separated_flag_is_redacted(
    recorder: Recorder, outbox: Outbox
) -> None:
    quiet_run(recorder, ["echo", "--password", "letmein12345", "--user", "ada"])
    [event] = journaled(outbox, recorder.info.local_id)
    assert "letmein12345" not in orjson.dumps(event).decode()
    argv = event["payload"]["argv"]
    assert argv[:2] == ["echo", "--password"]
    assert argv[2].startswith("[REDACTED:flag-secret:hmac-sha256=")
    assert argv[3:] == ["--user", "ada"]


def test_a_missing_command_is_recorded_as_exit_127(recorder: Recorder, outbox: Outbox) -> None:
    code, _, err = quiet_run(recorder, ["no-such-command-anywhere"])
    assert code == 127
    assert b"cannot run no-such-command-anywhere" in err
    [event] = journaled(outbox, recorder.info.local_id)
    assert event["payload"]["exit_code"] == 127


def test_edits_are_recorded_before_the_command_and_large_diffs_become_artifacts(
    recorder: Recorder, outbox: Outbox, buggy_repo: Path
) -> None:
    (buggy_repo / "small.txt").write_text("one line\n")
    (buggy_repo / "large.txt").write_text("x" * 100 + "\n" * 1 + "y\n" * MAX_INLINE_DIFF_LEN)
    quiet_run(recorder, ["true"])
    large, small, run = journaled(outbox, recorder.info.local_id)
    assert [large["type"], small["type"], run["type"]] == ["file_edit", "file_edit", "cmd_run"]
    assert "diff" not in large["payload"]
    assert large["payload"]["diff_ref"]["media_type"] == "text/x-diff"
    assert large["payload"]["lines_added"] == MAX_INLINE_DIFF_LEN + 1
    assert small["payload"]["diff"].endswith("+one line\n")


def test_notes_and_commits(recorder: Recorder, outbox: Outbox, buggy_repo: Path) -> None:
    (buggy_repo / "ranges" / "merge.py").write_text("# rewritten\n")
    recorder.note(f"the token {GITHUB_PAT} was in the log", "hypothesis")
    with pytest.raises(RecorderError, match="needs some text"):
        recorder.note("   ")
    run_git(buggy_repo, "commit", "-q", "-am", "Rewrite")  # the hook records it
    head = run_git(buggy_repo, "rev-parse", "HEAD").strip()
    assert recorder.record_commit(head) is None  # already recorded by the hook

    edit, note, commit = journaled(outbox, recorder.info.local_id)
    assert edit["payload"]["path"] == "ranges/merge.py"
    assert note["payload"]["kind"] == "hypothesis"
    assert note["payload"]["text"].startswith("the token [REDACTED:github-token:hmac-sha256=")
    assert commit["payload"]["sha"] == head
    assert commit["payload"]["files"] == ["ranges/merge.py"]


def test_stop_finalizes_with_snapshots_and_the_redaction_count(
    recorder: Recorder, outbox: Outbox, buggy_repo: Path
) -> None:
    quiet_run(recorder, ["echo", GITHUB_PAT])
    (buggy_repo / "ranges" / "merge.py").write_text("# fixed\n")

    stopped = recorder.stop()

    assert stopped.redactions == 2  # the argument and the output
    assert stopped.events == 2  # the cmd_run and the edit captured at stop
    outbox.seal(stopped.local_id, force=True)
    expected, body = outbox.finalize_request(stopped.local_id) or (0, {})
    assert body["redactions"] == 2
    assert body["snapshots"]["base"] == recorder.info.base_snapshot
    assert body["snapshots"]["final"]["sha256"] != body["snapshots"]["base"]["sha256"]
    assert expected >= 1
    directory = buggy_repo / ".git" / "prtrace"
    assert not (directory / "session.json").exists()
    assert (directory / "sessions" / f"{stopped.local_id}.json").exists()
    assert not hook_path(buggy_repo).exists()
    with pytest.raises(NoActiveSession, match="record start"):
        Recorder.open(buggy_repo)
    with pytest.raises(NoActiveSession, match="was stopped"):
        recorder.note("late")


def test_stop_without_anything_recorded_is_refused(recorder: Recorder) -> None:
    with pytest.raises(RecorderError, match="nothing was recorded"):
        recorder.stop()
    assert Recorder.open(recorder.repo).info.local_id == recorder.info.local_id  # still on


def test_an_existing_post_commit_hook_keeps_running_and_is_restored(
    buggy_repo: Path, outbox: Outbox, tmp_path: Path
) -> None:
    mine = hook_path(buggy_repo)
    marker = tmp_path / "my-hook-ran"
    mine.write_text(f"#!/bin/sh\ntouch {marker}\n")
    mine.chmod(0o755)
    recorder = Recorder.start(buggy_repo, outbox, title="x")
    (buggy_repo / "README.md").write_text("changed\n")
    run_git(buggy_repo, "commit", "-q", "-am", "Change the readme")
    assert marker.exists()
    events = [e["type"] for e in journaled(outbox, recorder.info.local_id)]
    assert events == ["file_edit", "commit"]
    recorder.stop()
    assert mine.read_text() == f"#!/bin/sh\ntouch {marker}\n"


def test_repository_urls_never_carry_credentials(buggy_repo: Path) -> None:
    run_git(buggy_repo, "remote", "add", "origin", f"https://ada:{GITHUB_PAT}@github.com/a/b.git")
    assert repository_url(buggy_repo) == "https://github.com/a/b.git"
    run_git(buggy_repo, "remote", "set-url", "origin", "git@github.com:a/b.git")
    assert repository_url(buggy_repo) == "git@github.com:a/b.git"


def test_a_github_issue_gives_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(
            200, json={"title": "merge() drops the last interval", "body": f"token {GITHUB_PAT}"}
        )

    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        task = task_from_issue("https://github.com/acme/ranges/issues/42", http)
    assert seen == ["https://api.github.com/repos/acme/ranges/issues/42"]
    assert task["title"] == "merge() drops the last interval"
    assert task["description"].startswith("token [REDACTED:github-token:")
    assert task["description"].endswith("Issue: https://github.com/acme/ranges/issues/42")


def test_unreadable_issues_say_what_to_pass_instead() -> None:
    with pytest.raises(IssueError, match="pass --title"):
        task_from_issue("https://example.com/tickets/1")
    with (
        httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(404))) as http,
        pytest.raises(IssueError, match=r"answered 404.*GITHUB_TOKEN"),
    ):
        task_from_issue("https://github.com/acme/private/issues/1", http)


def cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prtrace_cli.main", *args],
        cwd=repo, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_cli_errors_are_one_actionable_line(tmp_path: Path, buggy_repo: Path) -> None:
    outside = cli(tmp_path, "run", "--", "false")  # runs anyway, with its own status
    assert outside.returncode == 1
    assert "not inside a git repository" in outside.stderr
    assert "warning: not recorded" in outside.stderr
    assert "Traceback" not in outside.stderr
    idle = cli(buggy_repo, "note", "why")
    assert idle.returncode == 1
    assert "no session is recording" in idle.stderr
    untitled = cli(buggy_repo, "record", "start")
    assert untitled.returncode == 1
    assert "--title" in untitled.stderr
    status = cli(buggy_repo, "record", "status", "--json")
    assert orjson.loads(status.stdout) == {"recording": False}


def test_cli_run_exits_with_the_commands_code_and_journals_offline(
    buggy_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRTRACE_OUTBOX", str(tmp_path / "cli-outbox.db"))
    assert cli(buggy_repo, "record", "start", "--title", "t", "--no-hook").returncode == 0
    done = cli(buggy_repo, "run", "--", sys.executable, "-c", "print('hi'); raise SystemExit(4)")
    assert (done.returncode, done.stdout) == (4, "hi\n")
    status = orjson.loads(cli(buggy_repo, "record", "status", "--json").stdout)
    assert (status["recording"], status["events"], status["trace_id"]) == (True, 1, None)
    assert not hook_path(buggy_repo).exists()


def test_a_fresh_repository_can_record(tmp_path: Path, outbox: Outbox) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    (repo / "a.py").write_text("x = 1\n")
    init_repo(repo)
    recorder = Recorder.start(
        repo, outbox, title="t", description=f"seen {GITHUB_PAT}", author="bot-7",
        author_kind="agent",
    )  # fmt: skip
    metadata, _, _ = outbox.creation(recorder.info.local_id)
    assert metadata["author"] == {"id": "bot-7", "kind": "agent"}
    assert metadata["task"]["description"].startswith("seen [REDACTED:github-token:")
    assert recorder.info.redactions == 1


@pytest.mark.slow
def test_the_watcher_records_edits_as_they_happen(
    buggy_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRTRACE_OUTBOX", str(tmp_path / "cli-outbox.db"))
    assert cli(buggy_repo, "record", "start", "--title", "t", "--no-hook").returncode == 0
    (buggy_repo / "ranges" / "merge.py").write_text("# one\n")
    (buggy_repo / "NOTES.md").write_text("two\n")
    watched = cli(buggy_repo, "record", "watch", "--once")
    assert watched.returncode == 0
    assert "recorded 2 file edit(s)" in watched.stderr
    assert cli(buggy_repo, "record", "watch", "--once").stderr == ""  # nothing new
    status = orjson.loads(cli(buggy_repo, "record", "status", "--json").stdout)
    assert status["events"] == 2


def test_a_failed_start_leaves_no_session_and_no_hook(buggy_repo: Path, outbox: Outbox) -> None:
    hooks = hook_path(buggy_repo)
    hooks.write_text("#!/bin/sh\n")
    hooks.chmod(0o755)
    hooks.with_name("post-commit.prtrace-original").write_text("#!/bin/sh\n")  # a leftover
    with pytest.raises(RecorderError, match="from an earlier session"):
        Recorder.start(buggy_repo, outbox, title="x")
    assert outbox.sessions() == []
    assert hooks.read_text() == "#!/bin/sh\n"
    with pytest.raises(NoActiveSession):
        Recorder.open(buggy_repo)


def test_output_reaches_the_terminal_while_the_command_runs(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first line is on the terminal before the command ends (it waits for it)."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)

    class Terminal(io.BytesIO):
        def __init__(self, flag: Path) -> None:
            super().__init__()
            self.flag = flag

        def write(self, data: Any) -> int:
            if b"first" in bytes(data):
                self.flag.write_text("seen")
            return super().write(data)

    flag = recorder.directory / "seen-flag"
    program = (
        "import pathlib, time\n"
        "print('first')\n"
        f"flag = pathlib.Path({str(flag)!r})\n"
        "deadline = time.time() + 20\n"
        "while not flag.exists() and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('second' if flag.exists() else 'never shown live')\n"
    )
    terminal = Terminal(flag)
    outcome = recorder.run([sys.executable, "-c", program], stdout=terminal, stderr=io.BytesIO())
    assert outcome.exit_code == 0
    assert terminal.getvalue() == b"first\nsecond\n"


def test_a_rename_is_journaled_with_its_old_path(
    recorder: Recorder, outbox: Outbox, buggy_repo: Path
) -> None:
    run_git(buggy_repo, "mv", "README.md", "README.rst")
    quiet_run(recorder, ["true"])
    rename, _run = journaled(outbox, recorder.info.local_id)
    assert rename["payload"]["change"] == "rename"
    assert (rename["payload"]["path"], rename["payload"]["old_path"]) == ("README.rst", "README.md")


@pytest.mark.slow
def test_a_note_while_a_command_runs_is_recorded_once_each(
    buggy_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRTRACE_OUTBOX", str(tmp_path / "cli-outbox.db"))
    assert cli(buggy_repo, "record", "start", "--title", "t", "--no-hook").returncode == 0
    started, noted = tmp_path / "started", tmp_path / "noted"
    program = (
        f"import pathlib, time; pathlib.Path({str(started)!r}).touch()\n"
        "deadline = time.time() + 60\n"
        f"while not pathlib.Path({str(noted)!r}).exists() and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
    )
    running = subprocess.Popen(
        [sys.executable, "-m", "prtrace_cli.main", "run", "--", sys.executable, "-c", program],
        cwd=buggy_repo,
    )
    try:
        for _ in range(400):
            if started.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        (buggy_repo / "NOTES.md").write_text("found it\n")
        assert cli(buggy_repo, "note", "while the command runs").returncode == 0
        assert running.poll() is None  # the note did not wait for the command
    finally:
        noted.touch()
        assert running.wait(timeout=60) == 0
    with Outbox.open(tmp_path / "cli-outbox.db") as journal:
        [state] = journal.sessions()
        events = journaled(journal, state.local_id)
    assert [e["type"] for e in events] == ["file_edit", "rationale_note", "cmd_run"]
    assert [e["seq"] for e in events] == [0, 1, 2]


@pytest.mark.slow
def test_a_pytest_run_with_its_own_report_is_read_from_it(
    recorder: Recorder, outbox: Outbox, buggy_repo: Path
) -> None:
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", "r.xml"]
    code, _, _ = quiet_run(recorder, argv)
    assert code == 1
    [event] = journaled(outbox, recorder.info.local_id)
    payload = event["payload"]
    assert event["type"] == "test_run"
    assert payload["command"] == argv
    assert payload["failing_tests"] == ["tests/test_ranges.py::test_merge_keeps_last_interval"]
    assert payload["report_ref"]["media_type"] == "application/xml"
    assert (buggy_repo / "r.xml").is_file()  # the user's file stays


@pytest.mark.slow  # a real pytest process per case
@pytest.mark.parametrize(
    ("args", "code", "outcome"),
    [
        ([], 1, "failed"),
        (["tests/no_such_test.py"], 4, "usage_error"),
        (["-k", "nothing_is_named_this"], 5, "no_tests_collected"),
        (["tests/broken_module.py"], 2, "collection_error"),
    ],
)
def test_a_pytest_run_records_its_exit_status_and_outcome(
    recorder: Recorder, outbox: Outbox, buggy_repo: Path, args: list[str], code: int, outcome: str
) -> None:
    (buggy_repo / "tests" / "broken_module.py").write_text("import no_such_module_here\n")
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    assert quiet_run(recorder, argv)[0] == code
    [event] = [e for e in journaled(outbox, recorder.info.local_id) if e["type"] == "test_run"]
    assert (event["payload"]["exit_code"], event["payload"]["outcome"]) == (code, outcome)
    TestRunPayload.model_validate(event["payload"])


def test_a_command_is_stamped_when_it_exits_and_edits_before_it(
    recorder: Recorder, outbox: Outbox, buggy_repo: Path
) -> None:
    """docs/schema.md, Timestamps: `ts` is when the event was complete (a command's exit)."""
    (buggy_repo / "ranges" / "merge.py").write_text("# edited\n")
    before = datetime.now(UTC)
    quiet_run(recorder, [sys.executable, "-c", "import time; time.sleep(0.5)"])
    edit, command = journaled(outbox, recorder.info.local_id)
    assert (edit["type"], command["type"]) == ("file_edit", "cmd_run")

    def stamp(event: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))

    assert stamp(edit) < stamp(command)
    started = stamp(command) - timedelta(milliseconds=command["payload"]["duration_ms"])
    assert stamp(command) - before >= timedelta(milliseconds=500)
    assert abs(started - before) < timedelta(milliseconds=400)
