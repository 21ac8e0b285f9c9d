"""Ingestion use cases: create a trace, store chunks, hand out artifact uploads, finalize.

Every method takes the caller's tenant and only ever reads or writes under it, so another
tenant's trace is indistinguishable from one that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from prtrace.chunks import PreparedChunk, prepare_chunk
from prtrace.errors import (
    ChunkConflict,
    DuplicateEventIds,
    IncompleteTrace,
    PayloadTooLarge,
    SeqDiscontinuity,
    TraceNotFound,
    TraceNotOpen,
)
from prtrace.integrity import KeyRing, sha256_hex
from prtrace.ports import AlreadyExists, BlobStore, ConditionFailed, TraceStore
from prtrace.records import FINALIZING, OPEN, ChunkRecord, Page, TraceRecord
from prtrace.schema import MAX_BLOB_SIZE, BlobRef, Sha256Hex, TraceMetadata

MAX_CHUNK_SEQ: Final = 999_999
MAX_CHUNK_BODY_BYTES: Final = 4 * 1024 * 1024
MAX_SMALL_BODY_BYTES: Final = 64 * 1024
TRACE_ID_PATTERN: Final = r"^tr_[0-9A-HJKMNP-TV-Z]{26}$"


class ArtifactRequest(BaseModel):
    """Body of `POST /v1/traces/{id}/artifacts`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    sha256: Sha256Hex
    size: Annotated[int, Field(ge=1, le=MAX_BLOB_SIZE, description="bytes")]
    media_type: Annotated[
        str, Field(pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$", max_length=127)
    ] = "application/octet-stream"


class FinalizeRequest(BaseModel):
    """Body of `POST /v1/traces/{id}/finalize`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    expected_chunks: Annotated[
        int, Field(ge=1, le=MAX_CHUNK_SEQ + 1, description="chunk seqs 0..N-1 must all be stored")
    ]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_trace_id() -> str:
    """Time-ordered, so a tenant's traces list newest first without an index."""
    return f"tr_{ULID()}"


def trace_prefix(tenant: str, trace_id: str) -> str:
    return f"tenants/{tenant}/traces/{trace_id}"


@dataclass(frozen=True)
class ChunkOutcome:
    chunk: ChunkRecord
    replayed: bool  # True when this exact chunk was already stored


class IngestService:
    def __init__(
        self,
        traces: TraceStore,
        blobs: BlobStore,
        key_ring: Callable[[], KeyRing],
        clock: Callable[[], str] = utc_now,
        upload_url_ttl_s: int = 900,
    ) -> None:
        self._traces = traces
        self._blobs = blobs
        self._key_ring = key_ring
        self._now = clock
        self._upload_url_ttl_s = upload_url_ttl_s

    def ping_table(self) -> None:
        self._traces.ping()

    def ping_bucket(self) -> None:
        self._blobs.ping()

    # ---- traces ---------------------------------------------------------------------

    def create_trace(self, tenant: str, metadata: TraceMetadata) -> TraceRecord:
        now = self._now()
        trace = TraceRecord(
            tenant=tenant, trace_id=new_trace_id(), status=OPEN,
            metadata=metadata.model_dump(mode="json"), created_at=now, updated_at=now,
        )
        self._traces.create_trace(trace)  # a ULID collision raises rather than overwrites
        return trace

    def get_trace(self, tenant: str, trace_id: str) -> TraceRecord:
        trace = self._traces.get_trace(tenant, trace_id)
        if trace is None:
            raise TraceNotFound(trace_id)
        return trace

    def list_traces(self, tenant: str, limit: int, after: str | None) -> Page:
        return self._traces.list_traces(tenant, limit, after)

    # ---- chunks ---------------------------------------------------------------------

    def put_chunk(self, tenant: str, trace_id: str, chunk_seq: int, raw: bytes) -> ChunkOutcome:
        if len(raw) > MAX_CHUNK_BODY_BYTES:
            raise PayloadTooLarge(len(raw), MAX_CHUNK_BODY_BYTES)
        trace = self.get_trace(tenant, trace_id)
        prepared = prepare_chunk(raw, chunk_seq)
        stored = self._traces.get_chunk(tenant, trace_id, chunk_seq)
        if stored is not None:
            return self._replay(stored, prepared)
        if trace.status != OPEN:
            raise TraceNotOpen(trace_id, trace.status)
        self._check_neighbours(tenant, trace_id, prepared)
        self._check_event_ids_unused(tenant, trace_id, prepared)

        ring = self._key_ring()
        body_key = f"{trace_prefix(tenant, trace_id)}/chunks/{chunk_seq:06d}-{prepared.sha256}.json"
        self._blobs.put_if_absent(body_key, prepared.body, prepared.sha256, "application/json")
        record = ChunkRecord(
            tenant=tenant, trace_id=trace_id, chunk_seq=chunk_seq,
            first_event_seq=prepared.first_event_seq, last_event_seq=prepared.last_event_seq,
            sha256=prepared.sha256, mac=prepared.mac(ring.current, tenant=tenant, trace_id=trace_id),
            key_id=ring.current_id, body_key=body_key, size_bytes=len(prepared.body),
            stored_at=self._now(), event_ids=prepared.event_ids,
        )
        try:
            self._traces.commit_chunk(record)
        except AlreadyExists:
            # Lost a race with a concurrent PUT of the same seq: answer as a replay would.
            winner = self._traces.get_chunk(tenant, trace_id, chunk_seq)
            if winner is None:  # pragma: no cover - the store just said it exists
                raise
            return self._replay(winner, prepared)
        except ConditionFailed:
            raise TraceNotOpen(trace_id, self.get_trace(tenant, trace_id).status) from None
        return ChunkOutcome(record, replayed=False)

    @staticmethod
    def _replay(stored: ChunkRecord, prepared: PreparedChunk) -> ChunkOutcome:
        if stored.sha256 != prepared.sha256:
            raise ChunkConflict(stored.chunk_seq, stored.sha256, prepared.sha256)
        return ChunkOutcome(stored, replayed=True)

    def _check_neighbours(self, tenant: str, trace_id: str, chunk: PreparedChunk) -> None:
        seq = chunk.chunk_seq
        neighbours = self._traces.get_chunks(tenant, trace_id, [s for s in (seq - 1, seq + 1) if s >= 0])
        before, after = neighbours.get(seq - 1), neighbours.get(seq + 1)
        if before is not None and chunk.first_event_seq != before.last_event_seq + 1:
            raise SeqDiscontinuity(seq, before.chunk_seq, before.last_event_seq + 1,
                                   chunk.first_event_seq, "/events/0/seq")
        if after is not None and chunk.last_event_seq != after.first_event_seq - 1:
            last = chunk.last_event_seq - chunk.first_event_seq
            raise SeqDiscontinuity(seq, after.chunk_seq, after.first_event_seq - 1,
                                   chunk.last_event_seq, f"/events/{last}/seq")

    def _check_event_ids_unused(self, tenant: str, trace_id: str, chunk: PreparedChunk) -> None:
        mine = set(chunk.event_ids)
        duplicates: dict[str, int] = {}
        for stored in self._traces.list_chunks(tenant, trace_id, with_event_ids=True):
            for event_id in mine.intersection(stored.event_ids):
                duplicates[event_id] = stored.chunk_seq
        if duplicates:
            raise DuplicateEventIds(duplicates)

    # ---- artifacts ------------------------------------------------------------------

    def request_artifact_upload(self, tenant: str, trace_id: str, request: ArtifactRequest
                                ) -> dict[str, Any]:
        trace = self.get_trace(tenant, trace_id)
        if trace.status != OPEN:
            raise TraceNotOpen(trace_id, trace.status)
        blob_ref = BlobRef(uri=f"artifact://sha256/{request.sha256}", sha256=request.sha256,
                           size=request.size, media_type=request.media_type)
        key = f"{trace_prefix(tenant, trace_id)}/artifacts/sha256/{request.sha256}"
        answer: dict[str, Any] = {"blob_ref": blob_ref.model_dump(mode="json")}
        if self._blobs.head(key) == request.size:
            # Content-addressed and checksum-verified on upload: same key, same bytes.
            return answer | {"status": "present", "upload": None}
        upload = self._blobs.presign_put(key, request.sha256, request.size, request.media_type,
                                         self._upload_url_ttl_s)
        return answer | {
            "status": "upload_required",
            "upload": {"method": "PUT", "url": upload.url, "headers": upload.headers,
                       "expires_in": upload.expires_in},
        }

    # ---- finalize -------------------------------------------------------------------

    def finalize(self, tenant: str, trace_id: str, expected_chunks: int) -> TraceRecord:
        trace = self.get_trace(tenant, trace_id)
        if trace.status != OPEN:
            return self._finalized_already(trace, expected_chunks)
        chunks = list(self._traces.list_chunks(tenant, trace_id, with_event_ids=True))
        self._check_complete(trace_id, chunks, expected_chunks)
        finalize = {
            "expected_chunks": expected_chunks,
            "event_count": sum(c.event_count for c in chunks),
            # One digest over the ordered chunk digests pins exactly what was finalized.
            "manifest_sha256": sha256_hex("\n".join(c.sha256 for c in chunks).encode()),
            "requested_at": self._now(),
        }
        try:
            return self._traces.mark_finalizing(tenant, trace_id, finalize, finalize["requested_at"])
        except ConditionFailed:
            return self._finalized_already(self.get_trace(tenant, trace_id), expected_chunks)

    @staticmethod
    def _finalized_already(trace: TraceRecord, expected_chunks: int) -> TraceRecord:
        asked = (trace.finalize or {}).get("expected_chunks")
        if trace.status == FINALIZING and asked == expected_chunks:
            return trace  # a retried finalize gets the same answer
        raise TraceNotOpen(trace.trace_id, trace.status)

    @staticmethod
    def _check_complete(trace_id: str, chunks: list[ChunkRecord], expected: int) -> None:
        present = {c.chunk_seq for c in chunks}
        missing = [seq for seq in range(expected) if seq not in present]
        unexpected = sorted(seq for seq in present if seq >= expected)
        if missing or unexpected:
            parts = []
            if missing:
                shown = ", ".join(map(str, missing[:20])) + (" …" if len(missing) > 20 else "")
                parts.append(f"missing chunk seq(s) {shown}")
            if unexpected:
                parts.append(f"chunk seq(s) {', '.join(map(str, unexpected[:20]))} beyond "
                             f"expected_chunks={expected}")
            raise IncompleteTrace(f"trace {trace_id} is incomplete: {'; '.join(parts)}",
                                  missing, unexpected)
        # Concurrent PUTs can each pass their own checks; re-check the whole trace here.
        owner: dict[str, int] = {}
        duplicates: dict[str, int] = {}
        next_seq = 0
        for chunk in chunks:
            if chunk.first_event_seq != next_seq:
                raise SeqDiscontinuity(chunk.chunk_seq, chunk.chunk_seq - 1, next_seq,
                                       chunk.first_event_seq, "/events/0/seq")
            next_seq = chunk.last_event_seq + 1
            for event_id in chunk.event_ids:
                if event_id in owner:
                    duplicates[event_id] = owner[event_id]
                owner[event_id] = chunk.chunk_seq
        if duplicates:
            raise DuplicateEventIds(duplicates)
