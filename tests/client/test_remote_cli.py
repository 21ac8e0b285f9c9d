"""The remote commands' rendering and exit codes with the in-process API: pipeline
statuses (known, unknown, terminal) as `status --watch` sees them."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from prtrace_cli import remote
from prtrace_cli.main import app
from prtrace_client import PrtraceClient
from tests.client.conftest import Sleeps, make_client
from tests.client.fake_api import FakeApi, Fault
from tests.factories import chunk_body, trace_metadata


@pytest.fixture
def trace_id(client: PrtraceClient) -> str:
    created = str(client.create_trace(trace_metadata())["trace_id"])
    client.put_chunk(created, 0, chunk_body(0, 3))
    client.finalize(created, 1)
    return created


@pytest.fixture(autouse=True)
def cli_uses_fake(api: FakeApi, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "_client", lambda endpoint, token: make_client(api, sleeps))


def script(api: FakeApi, trace_id: str, *statuses: str) -> None:
    """The next GETs of the trace answer these pipeline statuses, in order."""
    view = orjson.loads(orjson.dumps(api.service.get_trace("unit", trace_id).public()))
    for status in statuses:
        extra: dict[str, Any] = {"links": {"report": "https://x/r"}} if status == "complete" else {}
        api.add_fault(Fault("GET", f"/v1/traces/{trace_id}", status=200,
                            body=view | {"status": status} | extra))  # fmt: skip


def test_watch_follows_known_and_unknown_stages_to_the_end(api: FakeApi, trace_id: str) -> None:
    script(api, trace_id, "assembling", "testing", "sandbox_warmup", "judging", "complete")
    result = CliRunner().invoke(app, ["status", trace_id, "--watch", "--interval", "0.2"])
    assert result.exit_code == 0, result.output
    assert "■ complete" in result.stdout
    assert "✓ judging" in result.stdout
    assert "https://x/r" in result.stdout
    stages = [line.split(": ")[1] for line in result.stderr.splitlines()]
    assert stages == ["assembling", "testing", "sandbox_warmup", "judging", "complete"]
    gets = [r for r in api.requests if r.method == "GET"]
    assert len(gets) == 5  # stopped polling at the terminal status


def test_watch_json_and_failure_exit_code(api: FakeApi, trace_id: str) -> None:
    script(api, trace_id, "testing", "rejected")
    result = CliRunner().invoke(app, ["status", trace_id, "--watch", "--json"])
    assert result.exit_code == 1
    assert orjson.loads(result.stdout)["status"] == "rejected"


def test_unknown_status_is_shown_not_fatal(api: FakeApi, trace_id: str) -> None:
    script(api, trace_id, "reticulating")
    result = CliRunner().invoke(app, ["status", trace_id])
    assert result.exit_code == 0
    assert "● reticulating (unknown stage)" in result.stdout


def test_current_stage_is_marked(api: FakeApi, trace_id: str) -> None:
    result = CliRunner().invoke(app, ["status", trace_id])
    assert "✓ open" in result.stdout
    assert "● finalizing" in result.stdout
    assert "· judging" in result.stdout
    assert "3 events in 1 chunk" in result.stdout


def test_counts_agree_in_number(trace_id: str) -> None:
    result = CliRunner().invoke(app, ["status", trace_id])
    assert re.search(r"3 events in 1 chunk *\n", result.output)
