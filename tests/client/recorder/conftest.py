"""Shared helpers: scratch git repositories (with the example's buggy repository) that
never read the user's git configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prtrace_client.outbox import Outbox
from prtrace_client.recorder.session import Recorder

REPO_BUGGY = Path(__file__).resolve().parents[3] / "examples" / "repo-buggy"


def run_git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git config (hooks paths, signing, templates) leaks in."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    for name, value in {
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }.items():
        monkeypatch.setenv(name, value)


def init_repo(path: Path) -> Path:
    run_git(path, "init", "-q", "-b", "main")
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def buggy_repo(tmp_path: Path, isolated_git: None) -> Path:
    """A git repository holding a copy of examples/repo-buggy, committed once."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_BUGGY, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    (repo / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n*.log\n")
    return init_repo(repo)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An outbox in tmp_path and no API anywhere (the recorder runs without live delivery)."""
    outbox = tmp_path / "outbox.db"
    monkeypatch.setenv("PRTRACE_OUTBOX", str(outbox))
    monkeypatch.setenv("PRTRACE_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("PRTRACE_ENDPOINT", raising=False)
    monkeypatch.delenv("PRTRACE_TOKEN", raising=False)
    return outbox


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    """The session journal, in tmp_path."""
    with Outbox.open(tmp_path / "outbox.db") as journal:
        yield journal


@pytest.fixture
def recorder(buggy_repo: Path, outbox: Outbox) -> Recorder:
    """A session recording in the buggy repository (in-process, no recorder process)."""
    return Recorder.start(buggy_repo, outbox, title="merge() drops the last interval")


def session_state(outbox: Any, local_id: str, snapshots: dict[str, Any], events: list[Any]) -> Any:
    """The trace-to-state check (prtrace.provenance.state_check) of a stopped session, from
    its outbox: its file_edit events (diff inline or as an artifact) and its two snapshots."""
    import io

    from prtrace.provenance.state_check import RecordedEdit, check_state

    def blob(sha256: str) -> bytes:
        return (outbox.blob_dir / sha256).read_bytes()

    edits = [
        RecordedEdit(
            e["seq"],
            e["payload"]["path"],
            e["payload"]["change"],
            e["payload"].get("diff") or blob(e["payload"]["diff_ref"]["sha256"]).decode(),
            e["payload"].get("old_path"),
        )
        for e in events
        if e["type"] == "file_edit"
    ]

    def opener(name: str) -> Any:
        ref = snapshots[name]
        return lambda: (io.BytesIO(blob(ref["sha256"])), ref["media_type"])

    return check_state(edits, opener("base"), opener("final"))


def session_events(outbox: Any, local_id: str) -> list[Any]:
    import orjson

    outbox.seal(local_id, force=True)  # what the flusher does with a stopped session
    events: list[Any] = []
    for seq in range(outbox.state(local_id).chunks):
        events += orjson.loads(outbox.chunk(local_id, seq).body)["events"]
    return events


@pytest.fixture(autouse=True)
def every_stopped_session_matches_its_final_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> list[Any]:
    """Every session a test here stops in-process is checked: its recorded edits, applied
    to the base snapshot, must reproduce the final snapshot (prtrace.provenance.state_check)."""
    from prtrace_client.recorder.session import Recorder

    checked: list[Any] = []
    real_stop = Recorder.stop

    def stop_and_check(self: Recorder, **kwargs: Any) -> Any:
        stopped = real_stop(self, **kwargs)
        events = session_events(self.outbox, stopped.local_id)
        result = session_state(self.outbox, stopped.local_id, stopped.snapshots, events)
        assert result.status == "match", result.model_dump()
        checked.append(result)
        return stopped

    monkeypatch.setattr(Recorder, "stop", stop_and_check)
    return checked
