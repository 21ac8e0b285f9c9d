"""`prtrace submit | push | status | traces` against the local cloud: JSON for scripts,
readable output for people, and one actionable line (no traceback) for expected errors."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner, Result

from examples.submit_example import EXAMPLE
from prtrace_cli.main import app
from tests.client.conftest import recorded
from tests.factories import trace_metadata

Run = Callable[..., Result]


@pytest.fixture
def run(cli_env: dict[str, str]) -> Run:
    runner = CliRunner()

    def invoke(*args: str, **env: str) -> Result:
        return runner.invoke(app, list(args), env=cli_env | env, catch_exceptions=False)

    return invoke


def test_submit_directory_then_status_and_traces(run: Run) -> None:
    submitted = run("submit", str(EXAMPLE), "--json")
    assert submitted.exit_code == 0, submitted.output
    answer = orjson.loads(submitted.stdout)
    trace_id = answer["trace_id"]
    assert answer["chunks"] == 3
    assert answer["finalized"]["events_received"] == 11
    again = run("submit", str(EXAMPLE), "--json")  # a rerun finishes the same trace
    assert orjson.loads(again.stdout)["trace_id"] == trace_id

    status = run("status", trace_id, "--json")
    assert status.exit_code == 0
    view = orjson.loads(status.stdout)
    assert (view["trace_id"], view["events_received"]) == (trace_id, 11)
    human = run("status", trace_id)
    assert trace_id in human.stdout
    assert "11 events in 3 chunks" in human.stdout
    assert "✓ open" in human.stdout

    watched = run("status", trace_id, "--watch", "--timeout", "0.5", "--interval", "0.2",
                  "--json")  # fmt: skip
    assert orjson.loads(watched.stdout)["trace_id"] == trace_id

    listed = run("traces", "--json")
    assert [t["trace_id"] for t in orjson.loads(listed.stdout)["items"]] == [trace_id]
    table = run("traces")
    assert trace_id in table.stdout
    assert "merge() drops the last interval" in table.stdout


def test_submit_jsonl_is_chunked_by_the_outbox(run: Run, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(recorded(i)) + b"\n" for i in range(2_500)))
    metadata = tmp_path / "meta.json"
    metadata.write_bytes(orjson.dumps(trace_metadata("JSONL session")))
    artifacts = tmp_path / "artifacts"
    shutil.copytree(EXAMPLE / "artifacts", artifacts)
    done = run("submit", str(events), "--metadata", str(metadata), "--artifacts",
               str(artifacts), "--finalize", str(EXAMPLE / "finalize.json"), "--json")  # fmt: skip
    assert done.exit_code == 0, done.output
    answer = orjson.loads(done.stdout)
    assert answer["finalized"]["events_received"] == 2_500
    assert answer["finalized"]["chunks_received"] == 3  # 1,000 events per chunk
    assert (
        answer["finalized"]["finalize"]["snapshots"]
        == orjson.loads((EXAMPLE / "finalize.json").read_bytes())["snapshots"]
    )
    again = run("submit", str(events), "--metadata", str(metadata), "--artifacts",
                str(artifacts), "--finalize", str(EXAMPLE / "finalize.json"), "--json")  # fmt: skip
    assert orjson.loads(again.stdout)["trace_id"] == answer["trace_id"]
    assert len(orjson.loads(run("traces", "--json").stdout)["items"]) == 1
    assert orjson.loads(run("push", "--json").stdout) == {"sessions": []}


def test_bad_jsonl_names_the_line(run: Run, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [orjson.dumps({**recorded(0), "seq": 0}), orjson.dumps({**recorded(1), "seq": 5})]
    events.write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "trace.json").write_bytes(orjson.dumps(trace_metadata()))
    result = run("submit", str(events))
    assert result.exit_code == 2
    assert f"{events}:2: event seq 5 where 1 was expected" in result.stderr
    assert "Traceback" not in result.output


def test_expected_failures_are_one_actionable_line(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = run("traces", PRTRACE_TOKEN="prt_not_a_real_token")
    assert wrong.exit_code == 1
    assert "HTTP 403: Forbidden" in wrong.stderr  # the gateway's authorizer refuses it
    assert "set PRTRACE_TOKEN or pass --token" in wrong.stderr
    missing = run("status", "tr_01M8AXW2HE5EQVXK8PANGCVZH9")
    assert missing.exit_code == 1
    assert "trace tr_01M8AXW2HE5EQVXK8PANGCVZH9 does not exist" in missing.stderr
    monkeypatch.chdir(tmp_path)  # no .prtrace/local.json above it either
    unconfigured = run("traces", PRTRACE_ENDPOINT="", PRTRACE_TOKEN="")
    assert unconfigured.exit_code == 2
    assert "no API endpoint or token configured" in unconfigured.stderr
    down = run("traces", PRTRACE_ENDPOINT="http://127.0.0.1:9")
    assert down.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in down.stderr
    nothing = run("submit", str(tmp_path / "absent"))
    assert (nothing.exit_code, "does not exist" in nothing.stderr) == (2, True)
    for result in (wrong, missing, down, nothing):
        assert "Traceback" not in result.output
