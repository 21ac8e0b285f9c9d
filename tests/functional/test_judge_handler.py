"""The Judge Lambda against moto's S3 (and Secrets Manager): reads the document and QA
report, writes the result once, and completes with offline scores when the model is down."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from functions.judge import handler
from prtrace.judge.result import OFFLINE_JUDGE, JudgeResult
from prtrace.judge.service import JudgeInputMissing
from tests.fake_openai import Scripted, answer, completion, fake_openai_server
from tests.in_process_gateway import LambdaContext
from tests.judge_factories import qa_report, sample_document

BUCKET = "prtrace-judge-test"
PREFIX = "tenants/t1/traces/tr_sample"
EVENT = {
    "trace_id": "tr_sample",
    "document_key": f"{PREFIX}/document.json",
    "qa_report_key": f"{PREFIX}/qa/report.json",
    "result_key": f"{PREFIX}/judge/result.json",
}
JUDGE_ENV = (
    "PRTRACE_BUCKET",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "PRTRACE_OPENAI_SECRET_NAME",
    "PRTRACE_JUDGE_MODE",
    "PRTRACE_JUDGE_MODEL",
    "PRTRACE_JUDGE_MAX_RETRIES",
    "PRTRACE_JUDGE_TIMEOUT_S",
    "PRTRACE_JUDGE_MODELS",
)


def _clear_caches() -> None:
    handler.reset()
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # providers hold boto3 clients


@pytest.fixture
def s3(monkeypatch) -> Iterator[object]:
    for name in JUDGE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRTRACE_BUCKET", BUCKET)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(
            Bucket=BUCKET, Key=EVENT["document_key"], Body=sample_document().model_dump_json()
        )
        qa = qa_report("resolved", trace_id="tr_sample")
        client.put_object(Bucket=BUCKET, Key=EVENT["qa_report_key"], Body=qa.model_dump_json())
        _clear_caches()
        yield client
        _clear_caches()


def _stored(client, key: str = EVENT["result_key"]) -> JudgeResult:
    body = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return JudgeResult.model_validate_json(body)


def test_offline_by_default_and_result_stored(s3):
    answer_ = handler.lambda_handler(dict(EVENT), LambdaContext())
    stored = _stored(s3)
    assert answer_ == {
        "result_key": EVENT["result_key"],
        "overall": stored.overall,
        "status": "ok",
        "judge": OFFLINE_JUDGE,
    }
    assert stored.overall == 5.0
    assert stored.qa_verdict == "resolved"
    assert stored.rubric_version == "prtrace.rubric/v1"
    assert len(stored.scores) == 6


def test_without_a_qa_report(s3):
    event = dict(EVENT, qa_report_key=None)
    answer_ = handler.lambda_handler(event, LambdaContext())
    stored = _stored(s3)
    assert stored.qa_verdict is None
    assert stored.score_of("fix_correctness") == 3  # own green run, unconfirmed by QA
    assert answer_["overall"] == stored.overall


def test_a_retry_never_replaces_a_stored_result(s3):
    first = handler.lambda_handler(dict(EVENT), LambdaContext())
    before = s3.get_object(Bucket=BUCKET, Key=EVENT["result_key"])
    # Even with another judge configured now, the retry returns what is stored.
    again = handler.lambda_handler(dict(EVENT), LambdaContext())
    after = s3.get_object(Bucket=BUCKET, Key=EVENT["result_key"])
    assert again == first
    assert after["ETag"] == before["ETag"]


def test_model_unreachable_completes_with_offline_scores(s3, monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(handler.logger.registered_handler, "stream", log)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port}/v1")
    monkeypatch.setenv("PRTRACE_JUDGE_MAX_RETRIES", "1")
    answer_ = handler.lambda_handler(dict(EVENT), LambdaContext())
    stored = _stored(s3)
    assert answer_["status"] == stored.status == "judge_unavailable"
    assert answer_["judge"] == stored.judge == "openai:gpt-4.1-mini"  # the one asked
    assert answer_["overall"] is None  # no model score; the offline one stands apart
    assert stored.stand_in is not None
    assert (stored.stand_in.judge, stored.stand_in.overall) == (OFFLINE_JUDGE, 5.0)
    assert any("unavailable" in p and "APIConnectionError" in p for p in stored.problems)
    logged = log.getvalue()
    assert "judged without model scores" in logged
    assert "sk-test-not-real" not in logged  # the key never reaches the logs


def test_openai_judge_with_the_key_from_secrets_manager(s3, monkeypatch):
    boto3.client("secretsmanager").create_secret(
        Name="prtrace/openai", SecretString=orjson.dumps({"api_key": "sk-from-sm"}).decode()
    )
    monkeypatch.setenv("PRTRACE_OPENAI_SECRET_NAME", "prtrace/openai")
    monkeypatch.setenv("PRTRACE_JUDGE_MODEL", "judge-model-y")
    with fake_openai_server() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        fake.push(completion(answer({"fix_correctness": 5}, cite=["evt-0007"])))
        answer_ = handler.lambda_handler(dict(EVENT), LambdaContext())
    assert fake.headers[0]["authorization"] == "Bearer sk-from-sm"
    stored = _stored(s3)
    assert answer_["judge"] == stored.judge == "openai:judge-model-y"
    assert answer_["status"] == "ok"
    assert stored.score_of("fix_correctness") == 5
    assert stored.usage is not None
    assert stored.usage.prompt_tokens == 1_000


def test_an_html_200_ends_judge_unavailable_not_a_failed_task(s3, monkeypatch):
    """A proxy's error page with status 200: the task completes (no Step Functions retry
    of a paid call, no failed trace), the result says what came back."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    with fake_openai_server() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        fake.push(
            Scripted(200, "<html><h1>Bad Gateway</h1></html>", content_type="text/html"),
            completion(answer()),
        )
        answer_ = handler.lambda_handler(dict(EVENT), LambdaContext())
    assert len(fake.requests) == 1
    stored = _stored(s3)
    assert answer_ == {
        "result_key": EVENT["result_key"],
        "overall": None,
        "status": "judge_unavailable",
        "judge": "openai:gpt-4.1-mini",
    }
    assert stored.stand_in is not None
    assert stored.stand_in.judge == OFFLINE_JUDGE
    assert "text/html" in stored.problems[-1]
    assert "Bad Gateway" in stored.problems[-1]


def test_several_models_answer_through_the_handler(s3, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.setenv("PRTRACE_JUDGE_MODELS", "model-a,model-b")
    with fake_openai_server() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        fake.push_for("model-a", completion(answer({"diagnosis": 0}, cite=["evt-0007"])))
        fake.push_for("model-b", completion(answer({"diagnosis": 5}, cite=["evt-0007"])))
        answer_ = handler.lambda_handler(dict(EVENT), LambdaContext())
    stored = _stored(s3)
    assert answer_["judge"] == stored.judge == "openai:model-a + openai:model-b"
    assert stored.score_of("diagnosis") == 0
    assert stored.review is not None
    assert stored.review.needs_human_review is True
    assert stored.review.reasons[0].startswith("diagnosis: openai:model-a said 0")


@pytest.mark.aws_calls_unrecorded("a bucket the stack does not have")
def test_bucket_in_the_event_wins(s3, monkeypatch):
    s3.create_bucket(Bucket="other-bucket")
    for key in (EVENT["document_key"], EVENT["qa_report_key"]):
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        s3.put_object(Bucket="other-bucket", Key=key, Body=body)
    monkeypatch.setenv("PRTRACE_BUCKET", "not-a-bucket")
    handler.reset()
    handler.lambda_handler(dict(EVENT, bucket="other-bucket"), LambdaContext())
    assert s3.head_object(Bucket="other-bucket", Key=EVENT["result_key"])


def test_missing_document_fails_the_task(s3):
    s3.delete_object(Bucket=BUCKET, Key=EVENT["document_key"])
    with pytest.raises(JudgeInputMissing, match="trace document"):
        handler.lambda_handler(dict(EVENT), LambdaContext())


def test_document_of_another_trace_is_refused(s3):
    with pytest.raises(ValueError, match="is not trace"):
        handler.lambda_handler(dict(EVENT, trace_id="tr_other"), LambdaContext())


def test_no_model_call_is_started_too_close_to_the_lambda_deadline(s3, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    with fake_openai_server() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        fake.push(completion(answer()))
        context = LambdaContext(deadline_ms=int(time.time() * 1000) + 6_000)  # 6 s left
        answer_ = handler.lambda_handler(dict(EVENT), context)
    assert fake.requests == []  # 6 s minus the 5 s kept for storing leaves too little
    assert answer_["status"] == "judge_unavailable"
    assert any("before the deadline" in p for p in _stored(s3).problems)


def _published(captured: str) -> dict[str, Any]:
    """The metrics (name -> value) and dimensions of the handler's one EMF record."""
    records = [orjson.loads(line) for line in captured.splitlines() if '"_aws"' in line]
    assert len(records) == 1, records
    (directive,) = records[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "prtrace"
    names = [m["Name"] for m in directive["Metrics"]]
    dimensions = {d: records[0][d] for group in directive["Dimensions"] for d in group}
    # Powertools writes each value as a list of the values added (one here).
    metrics = {}
    for name in names:
        (metrics[name],) = records[0][name]
    return {"metrics": metrics, "dimensions": dimensions}


def test_an_unreachable_model_publishes_judge_unavailable(s3, monkeypatch, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port}/v1")
    monkeypatch.setenv("PRTRACE_JUDGE_MAX_RETRIES", "0")
    capsys.readouterr()
    assert handler.lambda_handler(dict(EVENT), LambdaContext())["status"] == "judge_unavailable"
    published = _published(capsys.readouterr().out)
    assert published["dimensions"] == {"service": "prtrace-judge"}
    assert published["metrics"]["JudgeUnavailable"] == 1.0
    assert "JudgeCostUsd" not in published["metrics"]  # no price configured


def test_a_model_answer_publishes_its_tokens_and_no_unavailability(s3, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.setenv("PRTRACE_JUDGE_INPUT_USD_PER_1M", "2")
    monkeypatch.setenv("PRTRACE_JUDGE_OUTPUT_USD_PER_1M", "8")
    with fake_openai_server() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        fake.push(completion(answer(), prompt_tokens=1_500, completion_tokens=250))
        capsys.readouterr()
        assert handler.lambda_handler(dict(EVENT), LambdaContext())["status"] == "ok"
    metrics = _published(capsys.readouterr().out)["metrics"]
    assert metrics["JudgeUnavailable"] == 0.0
    assert metrics["JudgeOfflineFallback"] == 0.0
    assert (metrics["JudgePromptTokens"], metrics["JudgeCompletionTokens"]) == (1500.0, 250.0)
    assert metrics["JudgeCostUsd"] == pytest.approx(0.005)  # 1500*2/1e6 + 250*8/1e6


def test_auto_mode_without_a_key_publishes_the_offline_fallback(s3, capsys):
    """No key in `auto` mode scores offline with status ok: only this metric tells."""
    capsys.readouterr()
    handler.lambda_handler(dict(EVENT), LambdaContext())
    assert _published(capsys.readouterr().out)["metrics"] == {
        "JudgeUnavailable": 0.0,
        "JudgeOfflineFallback": 1.0,
    }


def test_the_offline_judge_publishes_no_token_counts_and_no_fallback(s3, monkeypatch, capsys):
    monkeypatch.setenv("PRTRACE_JUDGE_MODE", "offline")
    capsys.readouterr()
    handler.lambda_handler(dict(EVENT), LambdaContext())
    assert _published(capsys.readouterr().out)["metrics"] == {"JudgeUnavailable": 0.0}
