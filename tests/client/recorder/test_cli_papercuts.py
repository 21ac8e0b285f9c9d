"""Small CLI behaviours: `run` outside a session still runs the command, `note` confirms,
`--version`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prtrace_cli.main import app
from prtrace_client.outbox import Outbox
from prtrace_client.recorder.session import Recorder


@pytest.mark.parametrize("where", ["repository", "plain directory"])
def test_run_outside_a_session_runs_the_command_and_exits_with_its_status(
    where: str, buggy_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = buggy_repo if where == "repository" else tmp_path / "plain"
    directory.mkdir(exist_ok=True)
    monkeypatch.chdir(directory)
    script = "open('ran', 'w').write('yes'); raise SystemExit(3)"
    result = CliRunner().invoke(app, ["run", "--", sys.executable, "-c", script])
    assert result.exit_code == 3
    assert (directory / "ran").read_text() == "yes"
    assert "warning: not recorded" in result.stderr


def test_run_outside_a_session_of_a_missing_command_exits_127(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--", "no-such-command-anywhere"])
    assert result.exit_code == 127
    assert "cannot run no-such-command-anywhere" in result.stderr


def test_note_confirms_and_says_when_it_was_cut(
    buggy_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Outbox.open(tmp_path / "outbox.db") as journal:
        Recorder.start(buggy_repo, journal, title="merge() drops the last interval")
    monkeypatch.chdir(buggy_repo)
    result = CliRunner().invoke(app, ["note", "the loop drops it", "--kind", "hypothesis"])
    assert result.exit_code == 0, result.output
    assert "noted (hypothesis)" in result.stderr
    long = CliRunner().invoke(app, ["note", "x" * 20_000])
    assert long.exit_code == 0, long.output
    assert "only the first 16,384 were recorded" in long.stderr


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("prtrace 0.1")
