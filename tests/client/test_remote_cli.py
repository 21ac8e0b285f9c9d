"""The remote commands' rendering and exit codes with the in-process API: pipeline
statuses (known, unknown, terminal) as `status --watch` sees them."""

from __future__ import annotations

import re
from pathlib import Path
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


DIMENSIONS = ("correctness", "testing", "process", "clarity", "safety", "efficiency")


def complete_view(api: FakeApi, trace_id: str, *, qa_skipped: str | None) -> dict[str, Any]:
    view = orjson.loads(orjson.dumps(api.service.get_trace("unit", trace_id).public()))
    qa = None if qa_skipped else {
        "verdict": "resolved",
        "fail_to_pass": {"count": 1, "ids": ["t::a"], "truncated": False},
        "pass_to_fail": {"count": 0, "ids": [], "truncated": False},
    }  # fmt: skip
    judge = {
        "judge": "offline-heuristic",
        "overall": 4,
        "scores": [{"dimension": d, "score": n % 5 + 1} for n, d in enumerate(DIMENSIONS)],
    }
    links = {"report": "https://x/r", "qa_report": None if qa_skipped else "https://x/qa"}
    return view | {
        "status": "complete",
        "outcome": {"qa": qa, "qa_skipped": qa_skipped, "judge": judge},
        "links": links,
    }


def test_a_complete_trace_shows_its_verdict_and_the_six_scores(api: FakeApi, trace_id: str) -> None:
    view = complete_view(api, trace_id, qa_skipped=None)
    api.add_fault(Fault("GET", f"/v1/traces/{trace_id}", status=200, body=view))
    result = CliRunner().invoke(app, ["status", trace_id])
    assert result.exit_code == 0, result.output
    assert re.search(r"verdict +resolved \(fail_to_pass 1, pass_to_fail 0\)", result.stdout)
    assert re.search(r"judge +offline-heuristic, overall 4", result.stdout)
    for n, dimension in enumerate(DIMENSIONS):
        assert re.search(rf"  {dimension} +{n % 5 + 1} *\n", result.stdout), dimension
    assert "✓ testing" in result.stdout
    assert "https://x/qa" in result.stdout


def test_a_stand_in_is_shown_as_such_never_as_the_models_overall(
    api: FakeApi, trace_id: str
) -> None:
    view = complete_view(api, trace_id, qa_skipped=None)
    offline = view["outcome"]["judge"] | {"judge": "offline-heuristic v1", "overall": 3.45}
    view["outcome"]["judge"] = {
        "judge": "openai:gpt-4.1-mini",
        "status": "judge_unavailable",
        "overall": None,
        "scores": [],
        "stand_in": {k: offline[k] for k in ("judge", "overall", "scores")},
    }
    api.add_fault(Fault("GET", f"/v1/traces/{trace_id}", status=200, body=view))
    out = CliRunner().invoke(app, ["status", trace_id]).stdout
    assert re.search(r"judge +openai:gpt-4.1-mini, overall none \(judge_unavailable\)", out)
    assert re.search(r"stand-in +offline-heuristic v1, overall 3.45 \(not a model score\)", out)
    assert re.search(rf"  {DIMENSIONS[0]} +1 *\n", out)  # the stand-in's scores, under it


def test_an_ensemble_shows_each_models_scores_and_the_review_flag(
    api: FakeApi, trace_id: str
) -> None:
    view = complete_view(api, trace_id, qa_skipped=None)
    view["outcome"]["judge"] |= {
        "judge": "openai:a + openai:b",
        "status": "ok",
        "needs_human_review": True,
        "review": {
            "models": [
                {"judge": "openai:a", "overall": 2.5, "scores": {"diagnosis": 1}},
                {"judge": "openai:b", "overall": 4.5, "scores": {"diagnosis": 5}},
            ],
            "reasons": ["diagnosis: openai:a said 1, openai:b said 5 (spread 4 > 2)"],
        },
    }
    api.add_fault(Fault("GET", f"/v1/traces/{trace_id}", status=200, body=view))
    out = CliRunner().invoke(app, ["status", trace_id]).stdout
    assert re.search(r"  openai:a +overall 2.5: diagnosis 1", out)
    assert re.search(r"  openai:b +overall 4.5: diagnosis 5", out)
    assert re.search(r"review +needs human review: diagnosis: openai:a said 1, openai:b", out)


def test_a_flagged_verdict_shows_why_the_resolution_and_the_flags(
    api: FakeApi, trace_id: str
) -> None:
    view = complete_view(api, trace_id, qa_skipped=None)
    view["outcome"]["qa"] |= {
        "verdict": "unresolved",
        "verdict_reason": "the fix modified its target test tests/t.py::test_[a]",
        "target_source": "reproduction",
        "resolution": "partial",
        "target_tests": {"count": 3, "ids": ["t::a", "t::b", "t::c"], "truncated": False},
        "unresolved_targets": {"count": 3, "ids": ["t::b", "t::c"], "truncated": True},
        "flags": [
            {"code": "target_test_modified", "blocking": True, "path_count": 1,
             "detail": "a target test's definition changed",
             "paths": ["tests/t.py::test_[red]a[/]"]},
            {"code": "test_files_changed", "blocking": False, "detail": "2 test files changed",
             "paths": ["tests/t.py"], "path_count": 2},
        ],
        "flag_count": 3,
    }  # fmt: skip
    api.add_fault(Fault("GET", f"/v1/traces/{trace_id}", status=200, body=view))
    result = CliRunner().invoke(app, ["status", trace_id])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(r"why +the fix modified its target test tests/t.py::test_\[a\]", out)
    assert re.search(r"resolution +partial \(target tests from reproduction\)", out)
    assert re.search(r"unresolved +3: t::b, t::c \(\+1 more\)", out)
    assert re.search(
        r"flag +target_test_modified \(blocking\): a target test's definition changed "
        r"\[tests/t.py::test_\[red\]a\[/\]\]",
        out,
    )  # repository-controlled text is shown as it is, never as markup
    assert re.search(r"flag +test_files_changed \(not blocking\): 2 test files changed "
                     r"\[tests/t.py, \+1 more\]", out)  # fmt: skip
    assert re.search(r"flag +\+1 more in the QA report", out)


def test_a_verdict_recorded_before_flags_existed_shows_no_new_rows(
    api: FakeApi, trace_id: str
) -> None:
    view = complete_view(api, trace_id, qa_skipped=None)
    api.add_fault(Fault("GET", f"/v1/traces/{trace_id}", status=200, body=view))
    result = CliRunner().invoke(app, ["status", trace_id])
    for row in ("why", "resolution", "unresolved", "flag"):
        assert not re.search(rf"^{row} ", result.stdout, re.MULTILINE), row


def test_skipped_qa_says_skipped_and_shows_no_missing_report(api: FakeApi, trace_id: str) -> None:
    view = complete_view(api, trace_id, qa_skipped="no_snapshots")
    api.add_fault(Fault("GET", f"/v1/traces/{trace_id}", status=200, body=view))
    result = CliRunner().invoke(app, ["status", trace_id])
    assert result.exit_code == 0, result.output
    assert "testing skipped (no_snapshots)" in result.stdout
    assert "✓ testing" not in result.stdout
    assert "QA skipped (no_snapshots)" in result.stdout
    assert "qa_report" not in result.stdout
    assert "None" not in result.stdout


def test_submit_jsonl_uploads_only_the_artifacts_its_events_reference(
    api: FakeApi, tmp_path: Path
) -> None:
    from tests.factories import blob_ref, event

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "stdout.txt").write_bytes(b"stdout 1")  # what event 1 references
    (artifacts / "unrelated.log").write_bytes(b"a file of something else")
    (artifacts / "notes.md").write_bytes(b"nobody's")
    first, second = event(0, "rationale_note"), event(1, "cmd_run")
    assert second["payload"]["stdout_ref"] == blob_ref(b"stdout 1")
    trace = tmp_path / "trace.jsonl"
    trace.write_bytes(b"\n".join(orjson.dumps(e) for e in (first, second)) + b"\n")
    (tmp_path / "trace.json").write_bytes(orjson.dumps(trace_metadata()))

    result = CliRunner().invoke(
        app,
        ["submit", str(trace), "--artifacts", str(artifacts), "--outbox", str(tmp_path / "o.db")],
    )
    assert result.exit_code == 0, result.output
    assert "not uploading 2 files of" in result.stderr
    uploads = [
        orjson.loads(r.content)["sha256"]
        for r in api.requests
        if r.method == "POST" and r.url.path.endswith("/artifacts")
    ]
    assert uploads == [blob_ref(b"stdout 1")["sha256"]]


def test_push_says_when_it_retries_and_can_show_progress(api: FakeApi, tmp_path: Path) -> None:
    from prtrace_client.outbox import Outbox
    from tests.client.conftest import recorded

    with Outbox.open(tmp_path / "outbox.db") as journal:
        session = journal.start_trace(trace_metadata())
        journal.append_many(session, [recorded(i) for i in range(3)])
        journal.request_finalize(session)
    api.add_fault(Fault("PUT", r"/v1/traces/[^/]+/chunks/0", status=503))
    result = CliRunner().invoke(
        app, ["push", "--outbox", str(tmp_path / "outbox.db"), "--progress"]
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"retrying: PUT /v1/traces/\S+/chunks/0: HTTP 503; retrying in", result.stderr)
    assert "3 events" in result.stdout
    assert "chunks" not in result.stdout  # "1 chunk"
    assert re.search(r"sending chunks .* 1/1", result.stderr)  # --progress, even off a terminal
