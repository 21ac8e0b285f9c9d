"""Why a finalized trace cannot be assembled: a stable code plus where exactly.

A rejection is a verdict on the stored trace (tampered, incomplete or inconsistent), not a
failure of the step: the pipeline records it as status `rejected` and never retries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

RejectionCode = Literal[
    "trace_not_found",  # no such trace under this tenant
    "trace_not_finalized",  # the trace has no finalize record
    "finalize_invalid",  # the finalize record does not have the expected shape
    "metadata_invalid",  # the stored metadata does not pass the schema
    "chunk_missing",  # a chunk seq below expected_chunks is not stored
    "chunk_unexpected",  # a chunk seq at or beyond expected_chunks is stored
    "chunk_key_unknown",  # a chunk's MAC names a key id the key ring does not hold
    "chunk_mac_invalid",  # a chunk record's MAC does not verify
    "chunk_body_missing",  # the stored chunk body is gone
    "chunk_body_mismatch",  # the stored chunk body is not the one the record's digest names
    "chunk_body_invalid",  # the body is not canonical JSON of schema-valid events
    "chunk_range_mismatch",  # the body's event seqs are not the record's first..last
    "event_seq_gap",  # event seqs are not contiguous from 0 across the trace
    "duplicate_event_id",  # an event id is used twice in the trace
    "timestamp_regression",  # an event's ts is earlier than allowed (see TIMESTAMP_TOLERANCE_MS)
    "artifact_missing",  # a referenced artifact is not stored
    "artifact_size_mismatch",  # a stored artifact's size is not the declared one
    "artifact_digest_mismatch",  # a stored artifact's SHA-256 is not the declared one
    "manifest_mismatch",  # the chunk digests are not the ones finalize pinned
    "event_count_mismatch",  # the events are not as many as finalize counted
]

MAX_DETAIL_CHARS: Final = 1_000  # the rejection travels in Step Functions state data


@dataclass(frozen=True)
class Rejection:
    code: RejectionCode
    detail: str
    chunk_seq: int | None = None
    event_seq: int | None = None
    event_id: str | None = None
    artifact_sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        detail = self.detail
        if len(detail) > MAX_DETAIL_CHARS:
            detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
        return {
            "code": self.code,
            "detail": detail,
            "chunk_seq": self.chunk_seq,
            "event_seq": self.event_seq,
            "event_id": self.event_id,
            "artifact_sha256": self.artifact_sha256,
        }


class TraceRejected(Exception):
    """Raised where a check fails; the service turns it into the `rejected` outcome."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


def reject(code: RejectionCode, detail: str, **where: Any) -> TraceRejected:
    return TraceRejected(Rejection(code, detail, **where))
