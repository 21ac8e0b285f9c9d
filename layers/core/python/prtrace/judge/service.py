"""The Judge step's use case: read the trace document and QA report, score the trace with
the LLM judge (or the offline judge), store the result once.

Storage is an `ObjectStore` (adapters/s3.py in AWS, a dict in tests). The result is
written with a conditional put: when a retried invocation finds a result already stored,
the stored one wins and is returned, so a retry never replaces a result (and never pays
for a second model call).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from prtrace.assemble.document import TraceDocument
from prtrace.assemble.metrics import compute_metrics
from prtrace.judge.llm import JudgeUnavailable, LLMJudge
from prtrace.judge.offline import score_offline
from prtrace.judge.patch import ArtifactReader, PatchEvidence, patch_evidence, patch_from_edits
from prtrace.judge.result import JudgeResult, StandIn
from prtrace.judge.rubric import Rubric
from prtrace.qa.report import QAReport
from prtrace.storage_keys import artifact_key, tenant_of_trace_key


class ObjectStore(Protocol):
    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when there is no such object."""

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        """True when written, False when the key already holds an object."""


class JudgeInputMissing(Exception):
    """The document or QA report named by the request is not stored (yet)."""


@dataclass(frozen=True)
class JudgeRequest:
    trace_id: str
    document_key: str
    qa_report_key: str | None
    result_key: str


def judge_trace(
    document: TraceDocument,
    qa: QAReport | None,
    rubric: Rubric,
    llm: LLMJudge | None,
    time_left_s: Callable[[], float] | None = None,
    patch: PatchEvidence | None = None,
) -> JudgeResult:
    """The LLM's result when a model is configured (`patch`: the fix it is shown; the
    recorded edits when None); the offline one otherwise. When the
    model could not be reached: `judge_unavailable`, no scores of its own, the offline
    scores under `stand_in`."""
    # Recomputed rather than read from the document: a pure function of the events.
    metrics = compute_metrics(document.events)
    if llm is None:
        return score_offline(document, qa, rubric, metrics)
    try:
        return llm.judge(document, qa, metrics, time_left_s, patch)
    except JudgeUnavailable as unavailable:
        # No model score exists: the offline scores are kept, labelled as a stand-in, and
        # `overall` stays null so no reader takes heuristics for the model's judgement.
        offline = score_offline(document, qa, rubric, metrics)
        return JudgeResult(
            trace_id=document.trace_id,
            judge=llm.name,
            rubric_version=rubric.version,
            status="judge_unavailable",
            overall=None,
            scores=[],
            qa_verdict=qa.verdict if qa else None,
            summary=f"{unavailable.reason}; no model scores ({offline.judge} stands in).",
            problems=[*unavailable.problems, unavailable.reason],
            usage=unavailable.usage,
            stand_in=StandIn(judge=offline.judge, overall=offline.overall, scores=offline.scores),
        )


def encode_result(result: JudgeResult) -> bytes:
    return orjson.dumps(result.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def _load(store: ObjectStore, key: str, what: str) -> bytes:
    body = store.get(key)
    if body is None:
        raise JudgeInputMissing(f"{what} {key!r} is not stored")
    return body


def _artifact_reader(store: ObjectStore, request: JudgeRequest) -> ArtifactReader | None:
    """Reads the trace's artifacts under its own prefix (Assemble verified them there)."""
    tenant = tenant_of_trace_key(request.document_key)
    if tenant is None:
        return None
    return lambda ref: store.get(artifact_key(tenant, request.trace_id, ref.sha256))


def run_judge_step(
    request: JudgeRequest,
    store: ObjectStore,
    rubric: Rubric,
    llm: Callable[[], LLMJudge | None],
    time_left_s: Callable[[], float] | None = None,
) -> JudgeResult:
    """`llm` is called only when there is something to judge (it may read a secret).
    `time_left_s` reports the seconds the model may still use (the Lambda's remaining time
    minus what storing the result needs)."""
    stored = store.get(request.result_key)
    if stored is not None:
        return JudgeResult.model_validate_json(stored)
    document = TraceDocument.model_validate_json(
        _load(store, request.document_key, "trace document")
    )
    if document.trace_id != request.trace_id:
        raise ValueError(f"document {request.document_key!r} is not trace {request.trace_id}")
    qa = None
    if request.qa_report_key is not None:
        qa = QAReport.model_validate_json(_load(store, request.qa_report_key, "QA report"))
        if qa.trace_id != request.trace_id:
            raise ValueError(f"QA report {request.qa_report_key!r} is not trace {request.trace_id}")
    judge = llm()
    # The model is shown the fix itself: the snapshots' patch (read only for a model).
    patch = None if judge is None else _patch_or_edits(document, _artifact_reader(store, request))
    result = judge_trace(document, qa, rubric, judge, time_left_s, patch)
    body = encode_result(result)
    digest = hashlib.sha256(body).hexdigest()
    if store.put_if_absent(request.result_key, body, digest, "application/json"):
        return result
    # Another invocation stored a result meanwhile: that one is the result.
    return JudgeResult.model_validate_json(_load(store, request.result_key, "judge result"))


def _patch_or_edits(document: TraceDocument, read: ArtifactReader | None) -> PatchEvidence:
    """Whatever goes wrong reading the snapshots (S3, a full /tmp) falls back to the
    recorded edits, labelled: a failed step would be retried, and the model paid twice."""
    try:
        return patch_evidence(document, read)
    except Exception as error:  # any failure has the same, labelled fallback
        return patch_from_edits(
            document, f"the snapshots could not be read ({type(error).__name__})"
        )
