"""The Record step: store how a trace's pipeline ended (complete, rejected or failed).

The state machine calls it with one of three events, told apart by `status`:
  {"tenant", "trace_id", "status": "complete", "assembled": <Assemble output>,
   "qa": {"report_key": str | null,
          "skipped": null | "no_snapshots" | "timeout" | "task_exited" | "out_of_memory",
          "exit_code": int (task_exited), "reason": str (out_of_memory)},
   "judge_result_key": str}
  {"tenant", "trace_id", "status": "rejected", "reason": <Assemble rejection>}
  {"tenant", "trace_id", "status": "failed", "stage": "assemble" | "qa" | "judge" | "record",
   "error": str, "cause": str | null}
The terminal status and a bounded outcome (prtrace.pipeline.outcome) are written to the trace item
once: a retry finds the same status stored and succeeds; any other terminal status already
stored is never overwritten (OutcomeConflict).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, Protocol, cast

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from prtrace.clock import utc_now
from prtrace.ingest.service import TRACE_ID_PATTERN
from prtrace.judge.result import JudgeResult
from prtrace.pipeline.attestation import ManifestSigner
from prtrace.pipeline.outcome import (
    FailedStage,
    QASkipped,
    complete_outcome,
    failed_outcome,
    qa_skipped_detail,
    rejected_outcome,
)
from prtrace.ports import ConditionFailed, TraceStore
from prtrace.qa.report import QAReport
from prtrace.records import TERMINAL, TraceRecord
from prtrace.storage_keys import trace_prefix
from prtrace.validation import describe, field_errors, summarize

Key = Annotated[str, Field(min_length=1, max_length=1024)]
_EVENT = ConfigDict(strict=True, extra="ignore", frozen=True)


class InvalidRecordEvent(ValueError):
    """The event does not have the shape the Record step takes (a state machine bug)."""


class RecordInputMissing(Exception):
    """A QA report or judge result the event names is not stored."""


class OutcomeConflict(Exception):
    """The trace is not in a status the pipeline may end: already ended otherwise, still
    open, or gone."""


class ChainSummary(BaseModel):
    model_config = _EVENT

    key_id: str
    head: str
    length: Annotated[int, Field(ge=0)]


class AssembleSummary(BaseModel):
    model_config = _EVENT

    event_count: Annotated[int, Field(ge=0)]
    chunk_count: Annotated[int, Field(ge=0)]
    chain: ChainSummary
    metrics: dict[str, Any] = Field(default_factory=dict)
    state_check: dict[str, Any] | None = None  # prtrace.provenance.state_check.summary


class Assembled(BaseModel):
    model_config = _EVENT

    outcome: Literal["assembled"]
    document_key: Key
    qa_report_key: Key
    judge_result_key: Key
    has_snapshots: bool
    summary: AssembleSummary
    manifest_draft_key: Key | None = None  # absent: assembled before manifests existed


class QAStep(BaseModel):
    model_config = _EVENT

    report_key: Key | None = None
    skipped: QASkipped | None = None
    # How a QA task that stored no report ended (the state machine reads them from ECS).
    exit_code: int | None = None
    reason: Annotated[str, Field(max_length=1024)] | None = None

    @model_validator(mode="after")
    def _report_unless_skipped(self) -> QAStep:
        if self.skipped is None and self.report_key is None:
            raise ValueError("report_key is required unless QA was skipped")
        return self

    def skipped_detail(self) -> str | None:
        if self.skipped is None:
            return None
        return qa_skipped_detail(self.skipped, self.exit_code, self.reason)


class RejectionReason(BaseModel):
    model_config = _EVENT

    code: Annotated[str, Field(min_length=1)]
    detail: str
    chunk_seq: int | None = None
    event_seq: int | None = None
    event_id: str | None = None
    artifact_sha256: str | None = None


class _RecordEventBase(BaseModel):
    model_config = _EVENT

    tenant: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    trace_id: Annotated[str, Field(pattern=TRACE_ID_PATTERN)]

    def keys(self) -> list[tuple[str, str]]:
        return []

    @model_validator(mode="after")
    def _keys_under_the_trace(self) -> _RecordEventBase:
        # A key from another trace (or tenant) would show someone else's results here.
        prefix = trace_prefix(self.tenant, self.trace_id) + "/"
        for where, key in self.keys():
            if not key.startswith(prefix):
                raise ValueError(f"{where} {key!r} is not under {prefix}")
        return self


class RecordComplete(_RecordEventBase):
    status: Literal["complete"]
    assembled: Assembled
    qa: QAStep
    judge_result_key: Key

    def keys(self) -> list[tuple[str, str]]:
        keys = [
            ("assembled.document_key", self.assembled.document_key),
            ("judge_result_key", self.judge_result_key),
        ]
        if self.assembled.manifest_draft_key is not None:
            keys.append(("assembled.manifest_draft_key", self.assembled.manifest_draft_key))
        if self.qa.report_key is not None:
            keys.append(("qa.report_key", self.qa.report_key))
        return keys


class RecordRejected(_RecordEventBase):
    status: Literal["rejected"]
    reason: RejectionReason


class RecordFailed(_RecordEventBase):
    status: Literal["failed"]
    stage: FailedStage
    error: str
    cause: str | None = None  # Step Functions gives no cause for some errors


RecordEvent = Annotated[
    RecordComplete | RecordRejected | RecordFailed, Field(discriminator="status")
]
_RECORD_EVENT: TypeAdapter[RecordEvent] = TypeAdapter(RecordEvent)


def parse_record_event(event: Any) -> RecordComplete | RecordRejected | RecordFailed:
    """The event, or InvalidRecordEvent naming each bad field by its JSON pointer."""
    try:
        return _RECORD_EVENT.validate_python(event)
    except ValidationError as exc:
        located = []
        for error in exc.errors(include_url=False, include_input=False):
            loc = tuple(error["loc"])
            if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc = ("status",)
            elif loc and loc[0] in ("complete", "rejected", "failed"):
                loc = loc[1:]  # pydantic's step into the tagged member; not in the event
            located.append({"loc": loc, "msg": error["msg"]})
        errors = field_errors(located)
        raise InvalidRecordEvent(f"Record step event is invalid: {summarize(errors)}") from None


def _json_text(value: Any) -> Any:
    """Step Functions gives an execution's input as JSON text."""
    if isinstance(value, str | bytes):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
    return value


# EventBridge's event when a Step Functions execution changes status (the execution-end
# rule sends the ones below to this step: the pipeline ended without recording the trace).
EXECUTION_STATUS_CHANGE: Final = "Step Functions Execution Status Change"
ENDED_BADLY: Final = ("FAILED", "TIMED_OUT", "ABORTED")
_ENDED_ERRORS: Final = {
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "States.Timeout",
    "ABORTED": "ExecutionAborted",
}


class _ExecutionInput(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant: str
    trace_id: str


class _ExecutionEnd(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    executionArn: str  # noqa: N815 - EventBridge's own field names
    status: Literal["FAILED", "TIMED_OUT", "ABORTED"]
    input: Annotated[_ExecutionInput, BeforeValidator(_json_text)]
    error: str | None = None
    cause: str | None = None


class _ExecutionStatusChange(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    detail_type: Annotated[Literal[EXECUTION_STATUS_CHANGE], Field(alias="detail-type")]  # type: ignore[valid-type]
    detail: _ExecutionEnd


def is_execution_end(event: Any) -> bool:
    return isinstance(event, dict) and event.get("detail-type") == EXECUTION_STATUS_CHANGE


def parse_execution_end(event: Any) -> RecordFailed:
    """The failure to record for a pipeline execution that ended FAILED, TIMED_OUT or
    ABORTED (its input names the trace), or InvalidRecordEvent."""
    try:
        end = _ExecutionStatusChange.model_validate(event).detail
    except ValidationError as exc:
        raise InvalidRecordEvent(f"execution-end event is invalid: {describe(exc)}") from None
    failure = parse_record_event(
        {
            "tenant": end.input.tenant,
            "trace_id": end.input.trace_id,
            "status": "failed",
            "stage": "pipeline",
            "error": end.error or _ENDED_ERRORS[end.status],
            "cause": end.cause
            or f"the pipeline execution {end.executionArn} ended {end.status} before it "
            "recorded the trace",
        }
    )
    return cast(RecordFailed, failure)  # "status": "failed" chose the member


class ObjectReader(Protocol):
    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None when there is no such object."""


class RecordStep:
    def __init__(
        self,
        traces: TraceStore,
        objects: ObjectReader,
        clock: Callable[[], str] = utc_now,
        manifests: ManifestSigner | None = None,  # None: no signing key configured
    ) -> None:
        self._traces = traces
        self._objects = objects
        self._now = clock
        self._manifests = manifests

    @property
    def traces(self) -> TraceStore:
        return self._traces

    def record(self, event: RecordComplete | RecordRejected | RecordFailed) -> TraceRecord:
        now = self._now()
        match event:
            case RecordComplete():
                outcome = self._complete(event, now)
            case RecordRejected():
                outcome = rejected_outcome(event.reason.model_dump(), now)
            case RecordFailed():
                outcome = failed_outcome(event.stage, event.error, event.cause or "", now)
        try:
            return self._traces.record_outcome(
                event.tenant, event.trace_id, event.status, outcome, now
            )
        except ConditionFailed:
            stored = self._traces.get_trace(event.tenant, event.trace_id)
            found = "does not exist" if stored is None else f"is {stored.status}"
            raise OutcomeConflict(
                f"cannot record trace {event.trace_id} as {event.status}: it {found}; "
                "only a finalized trace the pipeline has not ended yet can be"
            ) from None

    def record_ended_execution(self, failure: RecordFailed) -> TraceRecord:
        """Record a failure for a trace whose execution ended without recording it. A trace
        its own Record step already ended (the usual case for FAILED) is left as it is:
        this runs for every execution that ends badly, and may run more than once."""
        try:
            return self.record(failure)
        except OutcomeConflict:
            stored = self._traces.get_trace(failure.tenant, failure.trace_id)
            if stored is not None and stored.status in TERMINAL:
                return stored
            raise

    def _complete(self, event: RecordComplete, now: str) -> dict[str, Any]:
        qa: QAReport | None = None
        qa_raw = b""
        if event.qa.skipped is None and event.qa.report_key is not None:
            qa_raw = self._load(event.qa.report_key, "QA report")
            qa = QAReport.model_validate_json(qa_raw)
            self._same_trace(qa.trace_id, event, "QA report", event.qa.report_key)
        judge_raw = self._load(event.judge_result_key, "judge result")
        judge = JudgeResult.model_validate_json(judge_raw)
        self._same_trace(judge.trace_id, event, "judge result", event.judge_result_key)
        outcome = complete_outcome(
            event.assembled.summary.model_dump(),
            qa,
            event.qa.skipped,
            judge,
            now,
            qa_detail=event.qa.skipped_detail(),
        )
        draft_key = event.assembled.manifest_draft_key
        if self._manifests is not None and draft_key is not None:
            signed = self._manifests.complete(
                event.tenant,
                event.trace_id,
                self._load(draft_key, "draft manifest"),
                None if qa is None else (qa, qa_raw),
                event.qa.skipped,
                (judge, judge_raw),
            )
            outcome["provenance"] = signed.view()
        return outcome

    def _load(self, key: str, what: str) -> bytes:
        body = self._objects.get(key)
        if body is None:
            raise RecordInputMissing(f"{what} {key!r} is not stored")
        return body

    @staticmethod
    def _same_trace(found: str, event: RecordComplete, what: str, key: str) -> None:
        if found != event.trace_id:
            raise InvalidRecordEvent(f"{what} {key!r} is for trace {found}, not {event.trace_id}")
