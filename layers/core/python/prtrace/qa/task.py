"""The QA task the pipeline runs (one ECS task per trace): find the two snapshots (from the
assembled trace document, or given directly), run QA, write the report.

A report is written whenever the report key can be written at all, including for verdict
`error`; only a failure to write it is a failure of the task.
"""

from __future__ import annotations

import hashlib
import io
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prtrace.assemble.document import TraceDocument
from prtrace.qa.errors import QAError
from prtrace.qa.ports import ArtifactMissing, ArtifactStore, ArtifactTooLarge
from prtrace.qa.report import QAReport
from prtrace.qa.service import QAService
from prtrace.qa.targets import reproduction
from prtrace.schema import BlobRef
from prtrace.storage_keys import qa_report_key, tenant_of_trace_key

MAX_DOCUMENT_BYTES: Final = 64 * 1024 * 1024


class SnapshotInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, Field(min_length=1)]
    ref: BlobRef


class QATaskRequest(BaseModel):
    """What the state machine passes (S3 keys, never content)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trace_id: Annotated[str, Field(min_length=1)]
    tenant: str | None = None  # derived from the document key when it is under tenants/...
    document_key: str | None = None
    base: SnapshotInput | None = None
    final: SnapshotInput | None = None
    report_key: str | None = None  # default: <trace prefix>/qa/report.json

    @model_validator(mode="after")
    def _one_source(self) -> QATaskRequest:
        direct = self.base is not None and self.final is not None
        if (self.document_key is None) == (not direct):
            raise ValueError("give either document_key or both base and final snapshots")
        if (self.base is None) != (self.final is None):
            raise ValueError("give both base and final snapshots")
        if self.tenant is None:
            tenant = tenant_of_trace_key(self.document_key or "")
            if tenant is None:
                raise ValueError("tenant is required unless document_key is under tenants/")
            object.__setattr__(self, "tenant", tenant)
        return self

    @property
    def tenant_id(self) -> str:
        assert self.tenant is not None  # set by the validator
        return self.tenant

    @property
    def report_key_or_default(self) -> str:
        return self.report_key or qa_report_key(self.tenant_id, self.trace_id)


def parse_request(values: dict[str, object]) -> QATaskRequest:
    """Raises ValueError with one readable line."""
    try:
        return QATaskRequest.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            (".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "") + e["msg"]
            for e in exc.errors()
        )
        raise ValueError(f"invalid QA task input: {problems}") from None


def _snapshots_from_document(
    store: ArtifactStore, request: QATaskRequest
) -> tuple[BlobRef, BlobRef, list[str]]:
    """The two snapshots and the trace's reproduction (targets.py)."""
    assert request.document_key is not None
    buffer = io.BytesIO()
    try:
        store.download(request.document_key, buffer, MAX_DOCUMENT_BYTES)
    except (ArtifactMissing, ArtifactTooLarge) as error:
        raise QAError("infra_error", f"trace document {request.document_key}: {error!r}") from None
    try:
        document = TraceDocument.model_validate_json(buffer.getvalue())
    except ValidationError as error:
        raise QAError(
            "infra_error",
            f"trace document {request.document_key} is invalid: {error.error_count()} errors",
        ) from None
    if document.trace_id != request.trace_id:
        raise QAError("infra_error", f"trace document is for {document.trace_id}")
    if document.snapshots is None:
        raise QAError("infra_error", "the trace has no workspace snapshots to test")
    return document.snapshots.base, document.snapshots.final, reproduction(document.events)


def run_qa_task(
    request: QATaskRequest, store: ArtifactStore, service: QAService, backend: str
) -> tuple[QAReport, bool]:
    """The report, and whether this call stored it (False: one was stored already)."""
    try:
        if request.base is not None and request.final is not None:
            refs = (request.base.ref, request.final.ref)
            keys: tuple[str, str] | None = (request.base.key, request.final.key)
            failing_before: list[str] = []
        else:
            try:
                base_ref, final_ref, failing_before = _snapshots_from_document(store, request)
                refs = (base_ref, final_ref)
            except QAError:
                raise
            except Exception as error:  # e.g. S3 access denied: still a report
                raise QAError("infra_error", f"{type(error).__name__}: {error}") from None
            keys = None
        report = service.run(
            request.tenant_id, request.trace_id, refs[0], refs[1], keys, failing_before
        )
    except QAError as error:
        report = QAReport(
            trace_id=request.trace_id,
            verdict="error",
            error_reason=error.reason,
            error_detail=error.detail,
            backend=backend,
        )
    body = report.model_dump_json().encode()
    digest = hashlib.sha256(body).hexdigest()
    written = store.put_if_absent(request.report_key_or_default, body, digest, "application/json")
    return report, written
