"""The session's recorder process and the fast `prtrace run`: commands are recorded through
it, a SIGKILLed recorder loses no acknowledged event (the next command records directly and
restarts it), and without one the direct path records.

No API here: the recorder journals only (live delivery is tested against the local cloud in
test_session_local_cloud.py).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.client.recorder.conftest import run_git

# Each test starts recorder processes and real `prtrace` interpreters.
pytestmark = pytest.mark.slow

FAST = [sys.executable, "-m", "prtrace_cli.fast"]


def prtrace(repo: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*FAST, *args], cwd=repo, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == expect, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def recorder_pid(repo: Path) -> int:
    info = orjson.loads((repo / ".git" / "prtrace" / "recorder.json").read_bytes())
    return int(info["pid"])


def journaled(outbox: Path) -> list[dict[str, Any]]:
    """Every event of the outbox, sealed or not, in seq order."""
    with sqlite3.connect(outbox) as db:
        loose = [orjson.loads(row[0]) for row in db.execute("SELECT body FROM events")]
        sealed = [
            event
            for (body,) in db.execute("SELECT body FROM chunks")
            for event in orjson.loads(body)["events"]
        ]
    return sorted(loose + sealed, key=lambda e: e["seq"])


def commands(events: list[dict[str, Any]]) -> list[list[str]]:
    return [e["payload"]["argv"] for e in events if e["type"] == "cmd_run"]


def wait_until(check: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_commands_and_commits_are_recorded_through_the_recorder(
    buggy_repo: Path, env: Path
) -> None:
    prtrace(buggy_repo, "record", "start", "--title", "fast path")
    pid = recorder_pid(buggy_repo)
    (buggy_repo / "NOTES.md").write_text("an edit\n")
    shown = prtrace(buggy_repo, "run", "--", "sh", "-c", "echo out; echo err >&2; exit 3", expect=3)
    assert (shown.stdout, shown.stderr) == ("out\n", "err\n")  # live, and unchanged
    prtrace(buggy_repo, "run", "--", "true")
    run_git(buggy_repo, "add", "NOTES.md")
    run_git(buggy_repo, "commit", "-q", "-m", "notes")

    events = journaled(env)
    assert [e["type"] for e in events] == ["file_edit", "cmd_run", "cmd_run", "commit"]
    assert [e["seq"] for e in events] == [0, 1, 2, 3]
    failed = events[1]["payload"]
    assert (failed["exit_code"], failed["cwd"]) == (3, ".")
    assert (failed["stdout_ref"]["size"], failed["stderr_ref"]["size"]) == (4, 4)
    assert recorder_pid(buggy_repo) == pid  # one recorder served all of it, no fallback

    status = orjson.loads(prtrace(buggy_repo, "record", "status", "--json").stdout)
    assert (status["journaled"], status["delivered"], status["pending"]) == (4, 0, 4)
    assert status["recorder"]["pid"] == pid
    assert "not delivering live" in status["last_error"]

    prtrace(buggy_repo, "record", "stop", expect=1)  # recorded, not delivered: no API
    wait_until(lambda: not _alive(pid))
    assert not (buggy_repo / ".git" / "prtrace" / "recorder.json").exists()


def test_a_killed_recorder_loses_no_acknowledged_event(buggy_repo: Path, env: Path) -> None:
    prtrace(buggy_repo, "record", "start", "--title", "crash")
    for n in range(3):
        prtrace(buggy_repo, "run", "--", "echo", f"before-{n}")
    first = recorder_pid(buggy_repo)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not _alive(first))

    # The next command records directly (and says so), then starts a new recorder.
    degraded = prtrace(buggy_repo, "run", "--", "echo", "after-0")
    assert "recording directly" in degraded.stderr
    wait_until(lambda: _serving(buggy_repo, first))
    second = recorder_pid(buggy_repo)
    for n in range(1, 3):
        quick = prtrace(buggy_repo, "run", "--", "echo", f"after-{n}")
        assert quick.stderr == ""
    assert recorder_pid(buggy_repo) == second

    events = journaled(env)
    assert [e["seq"] for e in events] == list(range(6))
    assert commands(events) == [
        ["echo", "before-0"], ["echo", "before-1"], ["echo", "before-2"],
        ["echo", "after-0"], ["echo", "after-1"], ["echo", "after-2"],
    ]  # fmt: skip
    prtrace(buggy_repo, "record", "stop", expect=1)
    wait_until(lambda: not _alive(second))


def test_without_a_recorder_the_direct_path_records(buggy_repo: Path, env: Path) -> None:
    prtrace(buggy_repo, "record", "start", "--title", "direct", "--no-recorder")
    assert not (buggy_repo / ".git" / "prtrace" / "recorder.sock").exists()
    prtrace(buggy_repo, "run", "--", "false", expect=1)
    prtrace(buggy_repo, "run", "--", "true")
    events = journaled(env)
    assert commands(events) == [["false"], ["true"]]
    assert [e["payload"]["exit_code"] for e in events] == [1, 0]
    status = orjson.loads(prtrace(buggy_repo, "record", "status", "--json").stdout)
    assert (status["recorder"], status["journaled"]) == (None, 2)


def test_a_missing_command_is_recorded_like_the_direct_path(buggy_repo: Path, env: Path) -> None:
    prtrace(buggy_repo, "record", "start", "--title", "typo")
    shown = prtrace(buggy_repo, "run", "--", "no-such-command-xyz", expect=127)
    assert "cannot run no-such-command-xyz" in shown.stderr
    (event,) = journaled(env)
    assert event["payload"]["exit_code"] == 127
    prtrace(buggy_repo, "record", "stop", expect=1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (its parent has not reaped it yet) is gone for our purposes.
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" not in status.read_text()


def _serving(repo: Path, not_pid: int) -> bool:
    info = repo / ".git" / "prtrace" / "recorder.json"
    return (
        info.exists() and recorder_pid(repo) != not_pid and (info.parent / "recorder.sock").exists()
    )


def test_a_recorder_left_running_is_found_for_the_teardown(
    buggy_repo: Path, env: Path, tmp_path: Path
) -> None:
    """No `record stop` here: tests/client/conftest.py's no_recorder_left ends it."""
    from tests.client.conftest import recorders_under

    prtrace(buggy_repo, "record", "start", "--title", "left running")
    assert recorders_under(tmp_path) == [recorder_pid(buggy_repo)]
    assert recorders_under(tmp_path / "elsewhere") == []
