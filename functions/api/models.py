"""The shapes of the API's JSON answers, for the OpenAPI document.

Routes answer with JSON the domain builds (`TraceRecord.public()`, `ChunkRecord.receipt()`,
…) and serialize it once with orjson; these models say what that JSON is, so the document
(and clients generated from it) has the real schema of every answer. Schemathesis checks
every answer of the in-process API against them (tests/functional/test_api_contract.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.types import (
    OpenAPIResponse,
    OpenAPIResponseContentModel,
    OpenAPIResponseContentSchema,
)
from pydantic import BaseModel, ConfigDict, Field

from functions.api.problems import PROBLEM_CONTENT_TYPE
from prtrace.dataset.exports import EXPORT_ID_PATTERN, ExportRequest
from prtrace.ingest.service import TRACE_ID_PATTERN
from prtrace.judge.result import JudgeStatus
from prtrace.pipeline.outcome import FailedStage, QASkipped
from prtrace.qa.report import ErrorReason, FlagCode, Resolution, TargetSource, Verdict
from prtrace.records import TraceStatus
from prtrace.schema import BlobRef, Event, TraceMetadata, WorkspaceSnapshots

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
TraceIdOut = Annotated[str, Field(pattern=TRACE_ID_PATTERN)]
Timestamp = Annotated[str, Field(description="RFC 3339 UTC, milliseconds")]
Count = Annotated[int, Field(ge=0)]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FinalizeView(_Answer):
    """What a finalize recorded (pins exactly the chunks that were finalized)."""

    expected_chunks: Count
    event_count: Count
    manifest_sha256: Sha256
    requested_at: Timestamp
    snapshots: WorkspaceSnapshots | None = None
    redactions: Count | None = None


class TestList(_Answer):
    count: Count
    ids: list[str]
    truncated: bool


class QAFlagView(_Answer):
    """Something the fix did to its tests, the harness or the test run (docs/qa.md,
    "Tamper flags"); blocking: the verdict cannot be `resolved`."""

    code: FlagCode
    blocking: bool
    detail: str
    paths: list[str] = Field(description="the first files or test ids concerned (cut)")
    path_count: Count = Field(description="how many paths the QA report lists")


class QARunView(_Answer):
    """One pytest run of the QA task; its log is the trace's artifact `log_sha256`."""

    exit_code: int | None
    passed: Count
    failed: Count
    errors: Count
    skipped: Count
    timed_out: bool
    error_reason: ErrorReason | None
    log_sha256: Sha256 | None


_BEFORE = "absent on traces recorded before the QA report had it"


class QAView(_Answer):
    verdict: Verdict
    error_reason: ErrorReason | None
    error_detail: str | None
    backend: str | None
    duration_ms: int | None
    fail_to_pass: TestList
    pass_to_pass: TestList
    pass_to_fail: TestList
    fail_to_fail: TestList
    fail_to_absent: TestList | None = Field(
        default=None, description=f"failing before, gone or deselected after; {_BEFORE}"
    )
    fail_to_skipped: TestList | None = Field(
        default=None, description=f"failing before, skipped after; {_BEFORE}"
    )
    target_tests: TestList | None = Field(
        default=None, description=f"the tests the verdict is about; {_BEFORE}"
    )
    unresolved_targets: TestList | None = Field(
        default=None, description=f"target tests that did not pass after the fix; {_BEFORE}"
    )
    target_source: TargetSource | None = Field(
        default=None, description=f"where the target tests came from; {_BEFORE}"
    )
    resolution: Resolution | None = Field(
        default=None, description="all, some or none of the target tests pass (null: no targets)"
    )
    verdict_reason: str | None = Field(default=None, description="one sentence: why this verdict")
    flags: list[QAFlagView] = Field(
        default_factory=list, description="blocking ones first, at most 20 (see flag_count)"
    )
    flag_count: Count = Field(default=0, description="how many flags the QA report raised")
    runs: dict[Literal["base", "final", "base_with_final_tests", "held"], QARunView] = Field(
        default_factory=dict, description="each pytest run that happened"
    )


class ScoreView(_Answer):
    dimension: str
    score: Annotated[int, Field(ge=0, le=5)]
    rationale: str
    cited_event_ids: list[str]


class StandInView(_Answer):
    """Scores of the offline judge kept while the model was unavailable: not the model's."""

    judge: str
    overall: float | None
    scores: list[ScoreView]


class ModelScoresView(_Answer):
    judge: str = Field(description="`openai:<model>`")
    samples: Count = Field(description="its answers that passed validation")
    overall: float | None = Field(description="null: none of its answers was valid")
    scores: dict[str, int] = Field(description="per dimension, the lower median of its answers")


class ReviewView(_Answer):
    """Ensemble mode: how far the answers (of several samples or models) spread."""

    samples: Count
    threshold: int = Field(description="a spread above this flags the result for review")
    spread: dict[str, int] = Field(description="per dimension, max - min over all answers")
    reasons: list[str] = Field(description="why review is needed: who said what")
    models: list[ModelScoresView] = Field(description="each model's scores (several models)")


class JudgeView(_Answer):
    status: JudgeStatus
    judge: str = Field(
        description="who scored `scores`; for `judge_unavailable` the model that could not "
        "be reached"
    )
    rubric_version: str
    overall: float | None = Field(
        description="the named judge's weighted score; null when it gave none (`invalid`, "
        "`judge_unavailable`)"
    )
    summary: str
    problems: list[str]
    needs_human_review: bool | None
    scores: list[ScoreView]
    stand_in: StandInView | None = Field(
        default=None,
        description="`judge_unavailable`: the offline judge's scores, labelled as a stand-in",
    )
    review: ReviewView | None = Field(
        default=None, description="ensemble mode only: spread, flag reasons, per-model scores"
    )


class ChainView(_Answer):
    key_id: str
    head: str
    length: Count


class StateMismatchView(_Answer):
    path: str
    reason: str
    detail: str
    event_seq: int | None
    unexplained_bytes: Count


class StateCheckView(_Answer):
    """Do the recorded file_edit diffs, applied to the base snapshot, reproduce the final
    snapshot? `state_mismatch` names the first differing file (the trace is not rejected)."""

    status: Literal["match", "state_mismatch", "not_checked"]
    detail: str | None
    files_checked: Count
    edits_applied: Count
    first_mismatch: StateMismatchView | None
    mismatch_count: Count
    unexplained_bytes: Count
    unverified_count: Count


class ProvenanceView(_Answer):
    """The signed trace manifest: download it (and the trace's bundle) with `prtrace
    download`, check it offline with `prtrace verify` and the keys of GET /v1/keys."""

    manifest_sha256: str
    key_id: str = Field(description="RFC 7638 thumbprint of the signing key (its JWKS kid)")
    algorithm: Literal["ES256", "EdDSA"]


class CompleteOutcome(_Answer):
    """How a complete trace's pipeline ended (bounded; the full results are behind links)."""

    qa: QAView | None
    qa_skipped: QASkipped | None
    judge: JudgeView
    metrics: dict[str, Any]
    chain: ChainView
    event_count: Count
    chunk_count: Count
    recorded_at: Timestamp
    state_check: StateCheckView | None = None  # null: no snapshots (or recorded before)
    provenance: ProvenanceView | None = None  # null: no signing key configured


class RejectionReason(_Answer):
    code: str
    detail: str
    chunk_seq: int | None = None
    event_seq: int | None = None
    event_id: str | None = None
    artifact_sha256: str | None = None


class RejectedOutcome(_Answer):
    reason: RejectionReason
    recorded_at: Timestamp


class FailedOutcome(_Answer):
    stage: FailedStage
    error: str
    cause: str
    cause_truncated: bool
    recorded_at: Timestamp


class QAHeadline(_Answer):
    verdict: Verdict
    error_reason: ErrorReason | None


class JudgeHeadline(_Answer):
    status: JudgeStatus | None
    overall: float | None
    judge: str | None = Field(default=None, description="who scored `overall`")
    stand_in_overall: float | None = Field(
        default=None, description="the offline stand-in's overall, when the model was unavailable"
    )


class CompleteHeadline(_Answer):
    """A list page's view of a complete outcome: GET the trace for all of it."""

    qa: QAHeadline | None
    qa_skipped: QASkipped | None
    judge: JudgeHeadline


class FailedHeadline(_Answer):
    stage: FailedStage
    error: str


class ResultLinks(_Answer):
    """Routes that answer with a presigned GET of each result (null: never produced)."""

    document: str
    qa_report: str | None
    judge_result: str


class TraceView(_Answer):
    trace_id: TraceIdOut
    status: TraceStatus
    created_at: Timestamp
    updated_at: Timestamp
    chunks_received: Count
    events_received: Count
    metadata: TraceMetadata
    finalize: FinalizeView | None = Field(default=None, description="once finalized")
    outcome: CompleteOutcome | RejectedOutcome | FailedOutcome | None = Field(
        default=None, description="once the pipeline ended (complete, rejected or failed)"
    )
    links: ResultLinks | None = Field(default=None, description="when complete")


class TraceSummary(TraceView):
    """A list item: the outcome is only its headline."""

    outcome: CompleteHeadline | RejectedOutcome | FailedHeadline | None = Field(  # type: ignore[assignment]
        default=None, description="the outcome's headline, once the pipeline ended"
    )


class TracePage(_Answer):
    items: list[TraceSummary]
    next_token: TraceIdOut | None = Field(description="pass back for the next page; null: last")


class ChunkReceipt(_Answer):
    trace_id: TraceIdOut
    chunk_seq: Count
    sha256: Annotated[Sha256, Field(description="of the stored (canonical) chunk body")]
    first_event_seq: Count
    last_event_seq: Count
    event_count: Count
    stored_at: Timestamp


class UploadInstructions(_Answer):
    method: Literal["PUT"]
    url: str
    headers: dict[str, str] = Field(description="send exactly these headers with the PUT")
    expires_in: Annotated[int, Field(description="seconds the URL stays valid")]


class ArtifactUpload(_Answer):
    blob_ref: BlobRef
    status: Literal["upload_required", "present"]
    upload: UploadInstructions | None = Field(description="null when already present")


class ResultLink(_Answer):
    url: Annotated[str, Field(description="presigned GET of the stored JSON object")]
    expires_in: Annotated[int, Field(description="seconds the URL stays valid")]


class PublicJwk(BaseModel):
    """A manifest signing key (RFC 7517; EC P-256 or OKP Ed25519). `kid` is its RFC 7638
    thumbprint, the `keyid` of the DSSE signatures it made."""

    model_config = ConfigDict(extra="allow")

    kty: Literal["EC", "OKP"]
    crv: Literal["P-256", "Ed25519"]
    x: str
    y: str | None = None
    kid: str
    alg: Literal["ES256", "EdDSA"]
    use: Literal["sig"]


class KeySet(_Answer):
    """The JWKS of the trace-manifest signing keys: the current key first, then earlier ones."""

    keys: list[PublicJwk]


class EventPageView(_Answer):
    """A range of an assembled trace's events, in seq order."""

    trace_id: TraceIdOut
    event_count: Annotated[Count, Field(description="events in the whole trace")]
    from_seq: Count
    events: list[Event]
    next_from_seq: Count | None = Field(description="pass back for the next page; null: last")


class Liveness(_Answer):
    status: Literal["ok"]


class ReadinessChecks(_Answer):
    table: Literal["ok", "unavailable"]
    bucket: Literal["ok", "unavailable"]


class Readiness(_Answer):
    status: Literal["ready", "not_ready"]
    checks: ReadinessChecks


Content = dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel]

PROBLEM: Content = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


class ExportFileEntry(_Answer):
    bytes: Count
    rows: Count
    sha256: Sha256


class FlaggedLeftOut(_Answer):
    trace_id: str
    flags: list[FlagCode] = Field(description="the tamper flags' codes")


class UnusableLeftOut(_Answer):
    trace_id: str
    reasons: list[str] = Field(description="why its instance is not usable (unusable_reasons)")


class ExportManifest(_Answer):
    """The export's manifest.json (byte for byte what `prtrace export` writes for the same
    traces and filter)."""

    model_config = ConfigDict(extra="allow")

    version: str
    formats: list[str]
    filter: dict[str, Any]
    trace_count: Count
    event_count: Count
    trace_ids: list[str]
    skipped: list[dict[str, str]]
    flagged_left_out: list[FlaggedLeftOut] = Field(
        default_factory=list,
        description="selected but left out: their QA report has tamper flags (the request's "
        "include_flagged takes them); absent from exports made before",
    )
    flagged_left_out_count: Count = 0
    flagged_count: Count = Field(0, description="exported traces that have tamper flags")
    unusable_left_out: list[UnusableLeftOut] = Field(
        default_factory=list,
        description="selected but left out: their instance is not usable as it is (the "
        "request's include_unusable takes them); absent from exports made before",
    )
    unusable_left_out_count: Count = 0
    usable_count: Count = Field(0, description="exported instances that are usable")
    splits: dict[str, Count] = Field(
        default_factory=dict, description="instances per split (by repository)"
    )
    files: dict[str, ExportFileEntry]


class ExportLinks(_Answer):
    files: dict[str, str] = Field(description="presigned GET of each file, by name")
    manifest: str = Field(description="presigned GET of manifest.json")
    signature: str | None = Field(
        description="presigned GET of manifest.dsse.json (null: no signing key configured)"
    )
    expires_in: Annotated[int, Field(description="seconds the URLs stay valid")]


class ExportError(_Answer):
    error: str
    detail: str


class ExportView(_Answer):
    export_id: Annotated[str, Field(pattern=EXPORT_ID_PATTERN)]
    status: Literal["running", "complete", "failed"]
    created_at: Timestamp
    request: ExportRequest
    manifest: ExportManifest | None = Field(default=None, description="once complete")
    links: ExportLinks | None = Field(default=None, description="once complete")
    error: ExportError | None = Field(default=None, description="once failed")


def answer(
    status: int, model: type[BaseModel], description: str, **problems: str
) -> dict[int, OpenAPIResponse]:
    """A route's `responses=`: its success answer as `model`, and the problems it documents
    by status (`_404="No such trace"`); every route also has the 4XX/5XX problem answers."""
    responses: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {"application/json": {"model": model}}}
    }
    for key, text in problems.items():
        responses[int(key.lstrip("_"))] = {"description": text, "content": PROBLEM}
    return responses
