"""The Judge Lambda shows the model the fix itself: it reads the trace's workspace
snapshots (artifacts under the trace's prefix, moto's S3) and puts their patch in the
prompt; snapshots it cannot use leave the recorded edits in their place, labelled."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from functions.judge import handler
from prtrace.judge.result import JudgeResult
from prtrace.storage_keys import artifact_key
from tests.fake_openai import answer, completion, fake_openai_server
from tests.in_process_gateway import LambdaContext
from tests.judge_factories import flagged_qa_report, sample_document
from tests.judge_patch_factories import SAMPLE_BASE, SAMPLE_FINAL, tar_archive, with_snapshots

BUCKET = "prtrace-judge-patch-test"
PREFIX = "tenants/t1/traces/tr_sample"
EVENT = {
    "trace_id": "tr_sample",
    "document_key": f"{PREFIX}/document.json",
    "qa_report_key": f"{PREFIX}/qa/report.json",
    "result_key": f"{PREFIX}/judge/result.json",
}
ENV = ("PRTRACE_BUCKET", "OPENAI_API_KEY", "OPENAI_BASE_URL", "PRTRACE_OPENAI_SECRET_NAME",
       "PRTRACE_JUDGE_MODE", "PRTRACE_JUDGE_MODEL", "PRTRACE_JUDGE_MODELS")  # fmt: skip


def _clear_caches() -> None:
    handler.reset()
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()


@pytest.fixture
def s3(monkeypatch) -> Iterator[object]:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRTRACE_BUCKET", BUCKET)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        qa = flagged_qa_report("tr_sample")
        client.put_object(Bucket=BUCKET, Key=EVENT["qa_report_key"], Body=qa.model_dump_json())
        _clear_caches()
        yield client
        _clear_caches()


def _store_trace(client, *, store_final: bool = True) -> None:
    base, final = tar_archive(SAMPLE_BASE), tar_archive(SAMPLE_FINAL)
    doc = with_snapshots(sample_document(), base, final)
    client.put_object(Bucket=BUCKET, Key=EVENT["document_key"], Body=doc.model_dump_json())
    assert doc.snapshots is not None
    stored = [(doc.snapshots.base.sha256, base)]
    if store_final:
        stored.append((doc.snapshots.final.sha256, final))
    for digest, data in stored:
        client.put_object(Bucket=BUCKET, Key=artifact_key("t1", "tr_sample", digest), Body=data)


def _judged_prompt(monkeypatch) -> tuple[str, JudgeResult]:
    with fake_openai_server() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        fake.push(completion(answer({"fix_correctness": 5}, cite=["evt-0005"])))
        handler.lambda_handler(dict(EVENT), LambdaContext())
    client = boto3.client("s3")
    body = client.get_object(Bucket=BUCKET, Key=EVENT["result_key"])["Body"].read()
    return fake.requests[0]["messages"][1]["content"], JudgeResult.model_validate_json(body)


def test_the_model_is_shown_the_snapshots_patch_and_its_contradiction_is_lowered(s3, monkeypatch):
    _store_trace(s3)
    user, result = _judged_prompt(monkeypatch)
    patch = user.split("\n## Patch (", 1)[1].split("\n## Events", 1)[0]
    assert patch.startswith("snapshots: ")
    assert "+    if current is not None:\n" in patch
    assert "+def test_merge_keeps_last_interval():" in patch
    # The flagged QA report bounds fix_correctness at 1: the model's 5 is not stored.
    assert result.status == "ok"
    assert result.score_of("fix_correctness") == 1
    assert any("fix_correctness" in p and "lowered from 5 to 1" in p for p in result.problems)


def test_a_snapshot_not_stored_leaves_the_recorded_edits_labelled(s3, monkeypatch):
    _store_trace(s3, store_final=False)
    user, result = _judged_prompt(monkeypatch)
    assert "## Patch (edits: " in user
    assert "the final snapshot is not stored" in user
    assert result.status == "ok"


def test_a_snapshot_read_that_raises_falls_back_to_the_recorded_edits() -> None:
    """An S3 error reading a snapshot must not fail the Judge step (a retry pays the model
    twice): the recorded edits stand in, labelled."""
    from prtrace.judge.service import _patch_or_edits

    base, final = tar_archive(SAMPLE_BASE), tar_archive(SAMPLE_FINAL)
    document = with_snapshots(sample_document(), base, final)

    def broken(_ref: object) -> bytes | None:
        raise OSError("No space left on device")

    evidence = _patch_or_edits(document, broken)
    assert evidence.source == "edits"
    assert "could not be read (OSError)" in evidence.detail
    assert evidence.files
