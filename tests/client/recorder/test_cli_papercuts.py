"""Small CLI behaviours: `run` outside a session still runs the command, `note` confirms,
`--version`, what a refused delivery advises."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prtrace_cli import remote
from prtrace_cli.main import app
from prtrace_client import client as client_module
from prtrace_client.outbox import Outbox
from prtrace_client.recorder.session import Recorder
from tests.client.conftest import Sleeps, make_client
from tests.client.fake_api import FakeApi, Fault


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


def test_note_confirms_and_refuses_a_note_too_long(
    buggy_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Outbox.open(tmp_path / "outbox.db") as journal:
        Recorder.start(buggy_repo, journal, title="merge() drops the last interval")
    monkeypatch.chdir(buggy_repo)
    result = CliRunner().invoke(app, ["note", "the loop drops it", "--kind", "hypothesis"])
    assert result.exit_code == 0, result.output
    assert "noted (hypothesis)" in result.stderr
    long = CliRunner().invoke(app, ["note", "x" * 20_000])
    assert long.exit_code == 1, long.output
    assert "the note holds 20,000 characters, over the 16,384" in long.stderr
    assert "nothing was recorded" in long.stderr
    assert CliRunner().invoke(app, ["note", "y" * 16_384]).exit_code == 0  # the limit itself
    with Outbox.open(tmp_path / "outbox.db") as journal:
        assert journal.state(journal.sessions()[0].local_id).events == 2


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("prtrace 0.1")


@pytest.mark.parametrize(
    ("status", "problem", "advice"),
    [
        (403, "insufficient-scope", "set a valid token with the ingest scope"),
        (401, "unauthorized", "set a valid token (PRTRACE_TOKEN"),
    ],
)
def test_a_refused_delivery_advises_fixing_the_token_before_push(
    recorder: Recorder,
    api: FakeApi,
    sleeps: Sleeps,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    problem: str,
    advice: str,
) -> None:
    monkeypatch.setattr(
        client_module, "PrtraceClient", lambda endpoint, token: make_client(api, sleeps)
    )
    monkeypatch.setattr(remote, "_client", lambda endpoint, token: make_client(api, sleeps))
    monkeypatch.chdir(recorder.repo)
    recorder.note("something to deliver")
    body = {"type": f"urn:prtrace:problem:{problem}", "detail": "refused"}
    api.add_fault(Fault("POST", "/v1/traces", status=status, body=body, times=2))
    stopped = CliRunner().invoke(app, ["record", "stop"])
    assert stopped.exit_code == 1
    assert advice in stopped.stderr
    assert "when the API is reachable" not in stopped.stderr
    pushed = CliRunner().invoke(app, ["push", "--outbox", recorder.info.outbox])
    assert pushed.exit_code == 1
    assert advice in pushed.stderr
