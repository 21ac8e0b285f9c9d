"""Ingestion use cases: create a trace, store chunks, hand out artifact uploads, finalize.

Every method takes the caller's tenant and only ever reads or writes under it, so another
tenant's trace is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from prtrace.clock import utc_now
from prtrace.errors import (
    ChunkConflict,
    ChunkNotFound,
    DuplicateEventIds,
    FieldError,
    IncompleteTrace,
    InvalidInput,
    PayloadTooLarge,
    PipelineNotStarted,
    SeqDiscontinuity,
    StoreBusy,
    TraceNotFound,
    TraceNotOpen,
)
from prtrace.ingest.chunks import PreparedChunk, prepare_chunk
from prtrace.integrity import KeyRing, sha256_hex
from prtrace.ports import (
    AlreadyExists,
    BlobStore,
    ConditionFailed,
    Contention,
    NeighbourChanged,
    PipelineStarter,
    PipelineUnavailable,
    TraceStore,
)
from prtrace.records import FINALIZING, OPEN, ChunkNeighbourhood, ChunkRecord, Page, TraceRecord
from prtrace.schema import (
    MAX_BLOB_SIZE,
    BlobRef,
    Sha256Hex,
    TraceMetadata,
    WorkspaceSnapshots,
    artifact_uri,
)
from prtrace.storage_keys import artifact_key, chunk_body_key
from prtrace.validation import summarize

MAX_CHUNK_SEQ: Final = 999_999
MAX_CHUNK_BODY_BYTES: Final = 4 * 1024 * 1024
MAX_SMALL_BODY_BYTES: Final = 64 * 1024
MAX_REDACTIONS: Final = 2**53 - 1  # integers stay exact in canonical JSON
TRACE_ID_PATTERN: Final = r"^tr_[0-9A-HJKMNP-TV-Z]{26}$"
_TRACE_ID = re.compile(TRACE_ID_PATTERN)


class ArtifactRequest(BaseModel):
    """Body of `POST /v1/traces/{id}/artifacts`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    sha256: Sha256Hex
    size: Annotated[int, Field(ge=0, le=MAX_BLOB_SIZE, description="bytes (0 for empty output)")]
    media_type: Annotated[
        str, Field(pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$", max_length=127)
    ] = "application/octet-stream"


class FinalizeRequest(BaseModel):
    """Body of `POST /v1/traces/{id}/finalize`."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    expected_chunks: Annotated[
        int, Field(ge=1, le=MAX_CHUNK_SEQ + 1, description="chunk seqs 0..N-1 must all be stored")
    ]
    snapshots: Annotated[
        WorkspaceSnapshots | None,
        Field(description="workspace archives for QA; each must already be uploaded"),
    ] = None
    redactions: Annotated[
        int | None,
        Field(
            ge=0,
            le=MAX_REDACTIONS,
            description="how many secrets the client redacted from outputs and diffs",
        ),
    ] = None


def new_trace_id() -> str:
    """Time-ordered, so a tenant's traces list newest first without an index."""
    return f"tr_{ULID()}"


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
        pipeline: PipelineStarter | None = None,
    ) -> None:
        self._traces = traces
        self._blobs = blobs
        self._key_ring = key_ring
        self._now = clock
        self._upload_url_ttl_s = upload_url_ttl_s
        self._pipeline = pipeline  # None: nothing processes finalized traces (ingest only)

    def ping_table(self) -> None:
        self._traces.ping()

    def ping_bucket(self) -> None:
        self._blobs.ping()

    # ---- traces ---------------------------------------------------------------------

    def create_trace(self, tenant: str, metadata: TraceMetadata) -> TraceRecord:
        now = self._now()
        trace = TraceRecord(
            tenant=tenant,
            trace_id=new_trace_id(),
            status=OPEN,
            metadata=metadata.model_dump(mode="json"),
            created_at=now,
            updated_at=now,
        )
        self._traces.create_trace(trace)  # a ULID collision raises rather than overwrites
        return trace

    def get_trace(self, tenant: str, trace_id: str) -> TraceRecord:
        if not _TRACE_ID.fullmatch(trace_id):  # never a key we could have issued
            raise TraceNotFound(trace_id[:64])
        trace = self._traces.get_trace(tenant, trace_id)
        if trace is None:
            raise TraceNotFound(trace_id)
        return trace

    def list_traces(self, tenant: str, limit: int, after: str | None) -> Page:
        return self._traces.list_traces(tenant, limit, after)

    def get_chunk(self, tenant: str, trace_id: str, chunk_seq: int) -> ChunkRecord:
        """A stored chunk's record (the caller checked the trace is the tenant's)."""
        chunk = self._traces.get_chunk(tenant, trace_id, chunk_seq)
        if chunk is None:
            raise ChunkNotFound(trace_id, chunk_seq)
        return chunk

    # ---- chunks ---------------------------------------------------------------------

    def put_chunk(self, tenant: str, trace_id: str, chunk_seq: int, raw: bytes) -> ChunkOutcome:
        if len(raw) > MAX_CHUNK_BODY_BYTES:
            raise PayloadTooLarge(len(raw), MAX_CHUNK_BODY_BYTES)
        trace = self.get_trace(tenant, trace_id)
        prepared = prepare_chunk(raw, chunk_seq)
        around = self._traces.chunk_neighbourhood(tenant, trace_id, chunk_seq)
        if around.same is not None:
            return self._replay(around.same, prepared)
        if trace.status != OPEN:
            raise TraceNotOpen(trace_id, trace.status)
        _check_fits(prepared, around)

        ring = self._key_ring()
        body_key = chunk_body_key(tenant, trace_id, chunk_seq, prepared.sha256)
        try:
            self._blobs.put_if_absent(body_key, prepared.body, prepared.sha256, "application/json")
        except Contention:
            raise StoreBusy(
                f"chunk {chunk_seq} is being stored by a concurrent request; "
                "retry the same PUT in a moment"
            ) from None
        record = ChunkRecord(
            tenant=tenant,
            trace_id=trace_id,
            chunk_seq=chunk_seq,
            first_event_seq=prepared.first_event_seq,
            last_event_seq=prepared.last_event_seq,
            sha256=prepared.sha256,
            mac=prepared.mac(ring.current, tenant=tenant, trace_id=trace_id),
            key_id=ring.current_id,
            body_key=body_key,
            size_bytes=len(prepared.body),
            stored_at=self._now(),
            event_ids=prepared.event_ids,
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
        except NeighbourChanged:
            # An adjacent chunk landed meanwhile; explain the mismatch as if it had been first
            # (or answer as a replay, if the same chunk landed too).
            around = self._traces.chunk_neighbourhood(tenant, trace_id, chunk_seq)
            if around.same is not None:
                return self._replay(around.same, prepared)
            _check_fits(prepared, around)
            raise StoreBusy(f"chunk {chunk_seq} raced an adjacent chunk; retry the PUT") from None
        except Contention:
            raise StoreBusy(
                f"trace {trace_id} is busy with concurrent writes; retry the same PUT in a moment"
            ) from None
        return ChunkOutcome(record, replayed=False)

    @staticmethod
    def _replay(stored: ChunkRecord, prepared: PreparedChunk) -> ChunkOutcome:
        if stored.sha256 != prepared.sha256:
            raise ChunkConflict(stored.chunk_seq, stored.sha256, prepared.sha256)
        return ChunkOutcome(stored, replayed=True)

    # ---- artifacts ------------------------------------------------------------------

    def artifact_ref(self, tenant: str, trace_id: str, request: ArtifactRequest) -> dict[str, Any]:
        """The BlobRef events use for this artifact, while the trace accepts artifacts."""
        trace = self.get_trace(tenant, trace_id)
        if trace.status != OPEN:
            raise TraceNotOpen(trace_id, trace.status)
        return BlobRef(
            uri=artifact_uri(request.sha256),
            sha256=request.sha256,
            size=request.size,
            media_type=request.media_type,
        ).model_dump(mode="json")

    def request_artifact_upload(
        self, tenant: str, trace_id: str, request: ArtifactRequest
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {"blob_ref": self.artifact_ref(tenant, trace_id, request)}
        key = artifact_key(tenant, trace_id, request.sha256)
        if self._blobs.head(key) == request.size:
            # Content-addressed and checksum-verified on upload: same key, same bytes.
            return answer | {"status": "present", "upload": None}
        upload = self._blobs.presign_put(
            key, request.sha256, request.size, request.media_type, self._upload_url_ttl_s
        )
        return answer | {
            "status": "upload_required",
            "upload": {
                "method": "PUT",
                "url": upload.url,
                "headers": upload.headers,
                "expires_in": upload.expires_in,
            },
        }

    # ---- finalize -------------------------------------------------------------------

    def finalize(
        self,
        tenant: str,
        trace_id: str,
        expected_chunks: int,
        snapshots: WorkspaceSnapshots | None = None,
        redactions: int | None = None,
    ) -> TraceRecord:
        """open -> finalizing, then start the trace's pipeline. A retried (or concurrent)
        identical finalize answers with the trace as it is now, and starts the pipeline again
        while the trace is still `finalizing`: that heals a crash between the two steps, and
        the pipeline starter runs one execution per trace however often it is asked."""
        wanted = None if snapshots is None else snapshots.model_dump(mode="json")
        for _ in range(3):  # a chunk committed while we checked: check again
            trace = self.get_trace(tenant, trace_id)
            if trace.status != OPEN:
                self._finalized_already(trace, expected_chunks, wanted, redactions)
                if trace.status == FINALIZING:
                    self._start_pipeline(trace)
                return trace
            chunks = list(self._traces.list_chunks(tenant, trace_id, with_event_ids=False))
            self._check_complete(trace_id, chunks, expected_chunks)
            if snapshots is not None:
                self._check_snapshots_uploaded(tenant, trace_id, snapshots)
            events = sum(c.event_count for c in chunks)
            now = self._now()
            finalize: dict[str, Any] = {
                "expected_chunks": expected_chunks,
                "event_count": events,
                # One digest over the ordered chunk digests pins exactly what was finalized.
                "manifest_sha256": sha256_hex("\n".join(c.sha256 for c in chunks).encode()),
                "requested_at": now,
            }
            if wanted is not None:
                finalize["snapshots"] = wanted
            if redactions is not None:
                finalize["redactions"] = redactions
            try:
                # Conditional on the counts we checked: the manifest is exactly what is stored.
                finalized = self._traces.mark_finalizing(
                    tenant, trace_id, finalize, now, len(chunks), events
                )
            except ConditionFailed:
                self._repair_drifted_counts(trace, (len(chunks), events))
                continue
            self._start_pipeline(finalized)
            return finalized
        raise StoreBusy(f"trace {trace_id} kept changing while it was being finalized; retry")

    def _repair_drifted_counts(self, seen: TraceRecord, stored: tuple[int, int]) -> None:
        """The counters are a running total kept beside the chunk items. When they disagree
        with the stored items and did not move while we listed them, no chunk was committed
        meanwhile (a commit moves them): they drifted, and the items are the truth. Without
        this, any drift would keep the trace from ever being finalized."""
        counted = (seen.chunk_count, seen.event_count)
        if counted == stored:
            return
        latest = self._traces.get_trace(seen.tenant, seen.trace_id)
        if latest is None or latest.status != OPEN:
            return
        if (latest.chunk_count, latest.event_count) != counted:
            return  # a chunk landed meanwhile: list again
        with contextlib.suppress(ConditionFailed):  # it moved since: list again
            self._traces.repair_counts(seen.tenant, seen.trace_id, counted, stored)

    def _start_pipeline(self, trace: TraceRecord) -> None:
        if self._pipeline is None:
            return
        try:
            self._pipeline.start(trace.tenant, trace.trace_id)
        except PipelineUnavailable:
            raise PipelineNotStarted(
                f"trace {trace.trace_id} is finalized but its pipeline could not be started; "
                "retry the same finalize request to start it"
            ) from None

    @staticmethod
    def _finalized_already(
        trace: TraceRecord,
        expected_chunks: int,
        snapshots: dict[str, Any] | None,
        redactions: int | None,
    ) -> None:
        """A retried finalize is the same request (same chunks, snapshots and redaction
        count) in whatever status the pipeline has moved the trace to since; anything else
        is refused."""
        asked = trace.finalize or {}
        if (
            asked.get("expected_chunks") != expected_chunks
            or asked.get("snapshots") != snapshots
            or asked.get("redactions") != redactions
        ):
            raise TraceNotOpen(trace.trace_id, trace.status)

    def _check_snapshots_uploaded(
        self, tenant: str, trace_id: str, snapshots: WorkspaceSnapshots
    ) -> None:
        errors = []
        for name in ("base", "final"):
            ref: BlobRef = getattr(snapshots, name)
            stored = self._blobs.head(artifact_key(tenant, trace_id, ref.sha256))
            if stored != ref.size:
                found = (
                    "is not uploaded" if stored is None else f"has {stored} bytes, not {ref.size}"
                )
                errors.append(FieldError(f"/snapshots/{name}", f"artifact {ref.sha256} {found}"))
        if errors:
            raise InvalidInput(
                "workspace snapshots must be uploaded as artifacts of this trace before "
                f"finalize: {summarize(errors)}",
                errors,
            )

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
                parts.append(
                    f"chunk seq(s) {', '.join(map(str, unexpected[:20]))} beyond "
                    f"expected_chunks={expected}"
                )
            raise IncompleteTrace(
                f"trace {trace_id} is incomplete: {'; '.join(parts)}", missing, unexpected
            )
        # Chunks PUT concurrently can each pass their own checks and still not fit together
        # (an event seq gap between non-adjacent chunks, an event id used twice). Stored
        # chunks are immutable, so refusing finalize would leave the trace open forever:
        # it is finalized, and the pipeline's Assemble step rejects it naming the chunk and
        # event, a terminal status the client can see.


def _check_fits(chunk: PreparedChunk, around: ChunkNeighbourhood) -> None:
    """Refuse a chunk that could never be part of a complete trace with the chunks already
    stored: stored chunks are immutable, so accepting it would block the trace.

    Every chunk holds at least one event, so between the nearest stored chunk below and this
    one there must be room for one event per missing chunk; the same holds above. Adjacent
    chunks must continue each other exactly. Event ids must not be used by either of those
    two chunks: a duplicate in a farther chunk is found by Assemble, which rejects the trace
    naming both (docs/schema.md, "Duplicate event ids"), so a PUT costs the same at chunk 1 and at
    chunk 10,000.
    """
    seq = chunk.chunk_seq
    below, above = around.below, around.above
    last_pointer = f"/events/{chunk.last_event_seq - chunk.first_event_seq}/seq"
    if below is not None:
        gap = seq - below.chunk_seq
        least = below.last_event_seq + gap
        if chunk.first_event_seq < least or (gap == 1 and chunk.first_event_seq != least):
            raise SeqDiscontinuity(
                _seq_detail(seq, below.chunk_seq, least, chunk.first_event_seq, gap, "start"),
                expected_seq=least,
                neighbour_chunk=below.chunk_seq,
                pointer="/events/0/seq",
            )
    if above is not None:
        gap = above.chunk_seq - seq
        most = above.first_event_seq - gap
        if chunk.last_event_seq > most or (gap == 1 and chunk.last_event_seq != most):
            raise SeqDiscontinuity(
                _seq_detail(seq, above.chunk_seq, most, chunk.last_event_seq, gap, "end"),
                expected_seq=most,
                neighbour_chunk=above.chunk_seq,
                pointer=last_pointer,
            )
    mine = set(chunk.event_ids)
    duplicates: dict[str, int] = {}
    for stored in (below, above):
        if stored is not None:
            for event_id in mine.intersection(stored.event_ids):
                duplicates[event_id] = stored.chunk_seq
    if duplicates:
        raise DuplicateEventIds(duplicates)


def _seq_detail(seq: int, other: int, bound: int, got: int, gap: int, end: str) -> str:
    where = "first" if end == "start" else "last"
    if gap == 1:
        return (
            f"chunk {seq} does not continue stored chunk {other}: its {where} event must "
            f"have seq {bound}, got {got}"
        )
    relation = "at least" if end == "start" else "at most"
    return (
        f"chunk {seq} cannot fit with stored chunk {other}: its {where} event must have "
        f"seq {relation} {bound} to leave one event for each of the {gap - 1} chunk(s) "
        f"in between, got {got}"
    )
