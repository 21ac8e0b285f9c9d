"""Links to a trace's pipeline products: the assembled document, the QA report and the
judge result, each a presigned GET of its object in the data bucket.

A product that does not exist is ResultNotAvailable with a reason the caller can act on:
not produced yet (poll the trace), or never for this trace (rejected, no snapshots, QA
timed out, exited or ran out of memory, the pipeline failed first).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, Literal

from prtrace.errors import ArtifactNotFound, ResultNotAvailable
from prtrace.ports import BlobStore
from prtrace.records import COMPLETE, FAILED, IN_PIPELINE, OPEN, REJECTED, ChunkRecord, TraceRecord
from prtrace.storage_keys import (
    artifact_key,
    document_key,
    judge_result_key,
    manifest_envelope_key,
    manifest_key,
    qa_report_key,
)

_SHA256: Final = re.compile(r"[0-9a-f]{64}")
ResultName = Literal["document", "qa_report", "judge_result", "manifest", "attestation"]

_KEYS: Final[dict[str, Callable[[str, str], str]]] = {
    "document": document_key,
    "qa_report": qa_report_key,
    "judge_result": judge_result_key,
    "manifest": manifest_key,
    "attestation": manifest_envelope_key,
}
_WHAT: Final = {
    "document": "trace document",
    "qa_report": "QA report",
    "judge_result": "judge result",
    "manifest": "signed manifest",
    "attestation": "manifest signature (DSSE envelope)",
}
_QA_SKIPPED: Final = {
    "no_snapshots": "the trace has no workspace snapshots, so its tests were not run",
    "timeout": "the QA task did not finish within its time limit",
    "task_exited": "the QA task exited with an error before storing a report (not run again)",
    "out_of_memory": "the QA task was stopped for using too much memory (not run again)",
}


class TraceResults:
    def __init__(self, blobs: BlobStore, url_ttl_s: int = 300) -> None:
        self._blobs = blobs
        self._ttl_s = url_ttl_s

    def link(self, trace: TraceRecord, result: ResultName) -> dict[str, Any]:
        """{"url": presigned GET, "expires_in": seconds} for a product that is stored."""
        self._never_produced(trace, result)
        key = _KEYS[result](trace.tenant, trace.trace_id)
        if self._blobs.head(key) is None:
            raise self._missing(trace, result)
        return {"url": self._blobs.presign_get(key, self._ttl_s), "expires_in": self._ttl_s}

    def require_document(self, trace: TraceRecord) -> None:
        """Raise ResultNotAvailable unless the trace's assembled document is stored (what
        the routes that read an assembled trace's events require)."""
        self._never_produced(trace, "document")
        if self._blobs.head(document_key(trace.tenant, trace.trace_id)) is None:
            raise self._missing(trace, "document")

    def artifact_link(self, trace: TraceRecord, sha256: str) -> dict[str, Any]:
        """{"url": presigned GET, "expires_in": seconds} for an artifact the trace stored
        (a diff, a command's output, a workspace snapshot), named by its SHA-256."""
        key = artifact_key(trace.tenant, trace.trace_id, sha256)
        if not _SHA256.fullmatch(sha256) or self._blobs.head(key) is None:
            raise ArtifactNotFound(trace.trace_id, sha256)
        return {"url": self._blobs.presign_get(key, self._ttl_s), "expires_in": self._ttl_s}

    def chunk_link(self, chunk: ChunkRecord) -> dict[str, Any]:
        """{"url": presigned GET, "expires_in": seconds} for a stored chunk's canonical
        body (its SHA-256 is in the trace's manifest)."""
        return {
            "url": self._blobs.presign_get(chunk.body_key, self._ttl_s),
            "expires_in": self._ttl_s,
        }

    @staticmethod
    def _never_produced(trace: TraceRecord, result: ResultName) -> None:
        what, tid = _WHAT[result], trace.trace_id
        outcome = trace.outcome or {}
        if trace.status == OPEN:
            raise _unavailable(
                trace,
                result,
                f"trace {tid} is open: its {what} is produced after it is finalized",
            )
        if trace.status == REJECTED:
            reason = outcome.get("reason") or {}
            raise _unavailable(
                trace,
                result,
                f"trace {tid} was rejected ({reason.get('code')}: {reason.get('detail')}); "
                f"no {what} is produced for a rejected trace",
            )
        if result != "qa_report":
            return
        skipped = outcome.get("qa_skipped")
        if skipped is None and (trace.finalize or {}).get("snapshots") is None:
            skipped = "no_snapshots"
        if skipped is not None:
            raise _unavailable(
                trace,
                result,
                f"trace {tid} has no QA report: {_QA_SKIPPED.get(skipped, skipped)}",
            )

    @staticmethod
    def _missing(trace: TraceRecord, result: ResultName) -> ResultNotAvailable:
        what, tid = _WHAT[result], trace.trace_id
        if trace.status in IN_PIPELINE:
            detail = (
                f"trace {tid} is {trace.status}: its {what} is not produced yet; "
                f"poll GET /v1/traces/{tid} until its status is complete"
            )
        elif trace.status == FAILED:
            stage = (trace.outcome or {}).get("stage")
            detail = f"trace {tid} failed in its {stage} step before its {what} was produced"
        elif trace.status == COMPLETE and result in ("manifest", "attestation"):
            detail = (
                f"trace {tid} was recorded without a manifest signing key configured "
                "(or before manifests existed): it has no signed manifest"
            )
        elif trace.status == COMPLETE:
            detail = f"the {what} of trace {tid} is not stored"
        else:
            detail = f"trace {tid} is {trace.status}: it has no {what}"
        return _unavailable(trace, result, detail)


def _unavailable(trace: TraceRecord, result: ResultName, detail: str) -> ResultNotAvailable:
    return ResultNotAvailable(detail, result=result, status=trace.status)
