"""Shared helpers: scratch git repositories (with the example's buggy repository) that
never read the user's git configuration."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

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
