"""Secrets in the final snapshot: files whose diffs had secrets redacted are named at
`record stop` (their snapshot copy is in clear), and can be left out of the snapshot."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from prtrace_cli.main import app
from prtrace_client import client as client_module
from prtrace_client.outbox import Outbox
from prtrace_client.recorder.session import Recorder
from tests.client.conftest import Sleeps, make_client
from tests.client.fake_api import FakeApi

GITHUB_PAT = "ghp_" + "R8mV2kQz7LwX4pN9sT1yB6cJ3hF5dG0aE2uK"


def snapshot_names(repo: Path) -> set[str]:
    data = (repo / ".git" / "prtrace" / "final.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {member.name for member in tar.getmembers() if member.isfile()}


@pytest.fixture
def recorder(recorder: Recorder, buggy_repo: Path) -> Recorder:
    """The conftest's session, with secrets recorded in two files, one since cleaned."""
    (buggy_repo / "settings.py").write_text(f'TOKEN = "{GITHUB_PAT}"\n')
    (buggy_repo / "old.py").write_text(f'TOKEN = "{GITHUB_PAT}"\n')
    recorder.capture_edits()
    (buggy_repo / "old.py").write_text("TOKEN = os.environ['TOKEN']\n")  # the secret is gone
    return recorder


def test_stop_names_the_files_still_holding_a_redacted_secret(recorder: Recorder) -> None:
    stopped = recorder.stop()
    assert stopped.redacted_in_snapshot == ("settings.py",)
    assert stopped.excluded_redacted == ()
    assert {"settings.py", "old.py"} <= snapshot_names(recorder.repo)


def test_stop_can_leave_them_out_of_the_final_snapshot(recorder: Recorder) -> None:
    stopped = recorder.stop(exclude_redacted=True)
    assert stopped.redacted_in_snapshot == ()
    assert stopped.excluded_redacted == ("settings.py",)
    names = snapshot_names(recorder.repo)
    assert "settings.py" not in names
    assert "old.py" in names
    assert GITHUB_PAT.encode() not in gzip.decompress(
        (recorder.repo / ".git" / "prtrace" / "final.tar.gz").read_bytes()
    )


@pytest.fixture
def cli(
    recorder: Recorder,
    api: FakeApi,
    sleeps: Sleeps,
    outbox: Outbox,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    # `record stop` imports the client when it runs (prtrace --help stays fast): patch it there.
    monkeypatch.setattr(
        client_module, "PrtraceClient", lambda endpoint, token: make_client(api, sleeps)
    )
    monkeypatch.chdir(recorder.repo)
    return recorder.repo


def test_record_stop_warns_that_the_snapshot_holds_them_in_clear(cli: Path) -> None:
    result = CliRunner().invoke(app, ["record", "stop", "--json"])
    assert result.exit_code == 0, result.output
    assert "settings.py, but the final snapshot holds them in clear" in result.stderr
    assert "--exclude-redacted" in result.stderr
    document = orjson.loads(result.stdout)
    assert document["redacted_in_snapshot"] == ["settings.py"]
    assert "settings.py" in snapshot_names(cli)


def test_record_stop_exclude_redacted_leaves_them_out(cli: Path) -> None:
    result = CliRunner().invoke(app, ["record", "stop", "--exclude-redacted", "--json"])
    assert result.exit_code == 0, result.output
    assert "left out of the final snapshot" in result.stderr
    assert orjson.loads(result.stdout)["excluded_from_snapshot"] == ["settings.py"]
    assert "settings.py" not in snapshot_names(cli)


def test_record_status_lists_the_files_holding_redacted_secrets(cli: Path) -> None:
    result = CliRunner().invoke(app, ["record", "status", "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["holding_redacted_secrets"] == ["settings.py"]
