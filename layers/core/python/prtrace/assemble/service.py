"""The Assemble step: verify a finalized trace end to end and write its TraceDocument.

One pass over the trace's chunk records in chunk seq order (never a listing of the S3
prefix: a lost commit race can leave an orphan body there). For each chunk: its MAC, its
stored body against the record's digest, the body's events against the strict schema and
canonical form, then every event: contiguous seq, unused id, timestamp, referenced
artifacts. Verified events feed the event chain, the metrics and the document file as
they come, so memory holds one chunk at a time, plus the set of event ids and the sizes
of verified artifacts.

A trace that fails a check is *rejected* (returned, with exactly where); a store that
fails is an error (raised: the state machine retries).
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prtrace.assemble.document import ChainSummary, TraceDocumentWriter
from prtrace.assemble.metrics import MetricsAccumulator, timestamp_ms
from prtrace.assemble.ports import StreamingBlobStore
from prtrace.assemble.rejection import Rejection, TraceRejected, reject
from prtrace.canonical import canonical_json
from prtrace.integrity import EventChain, KeyRing, UnknownKey, verify_chunk_mac
from prtrace.ports import OpenedBlob, ReadableBlob, TraceStore
from prtrace.provenance.manifest import (
    ArtifactEntry,
    ChainEntry,
    ChunkEntry,
    DigestedFile,
    TraceManifest,
    chunk_merkle_root,
)
from prtrace.provenance.state_check import (
    RecordedEdit,
    StateCheck,
    StateCheckError,
    check_state,
    not_checked,
)
from prtrace.provenance.state_check import summary as state_summary
from prtrace.records import ChunkRecord
from prtrace.schema import (
    BlobRef,
    ChunkBody,
    CmdRunEvent,
    CommitEvent,
    Event,
    FileEditEvent,
    Sha256Hex,
    TestRunEvent,
    TraceMetadata,
    WorkspaceSnapshots,
)
from prtrace.storage_keys import (
    artifact_key,
    document_key,
    judge_result_key,
    manifest_draft_key,
    qa_report_key,
)
from prtrace.validation import describe
from prtrace.write_once import READ_BLOCK_BYTES, StoredDiffers, upload_once

# Recorders on one machine can still step their clock back a little (NTP slews, a restart
# that reads a slightly stale clock); more than this is a reordered or edited trace.
TIMESTAMP_TOLERANCE_MS: Final = 2_000
# Canonical bodies can outgrow the 4 MiB request they came from (defaults filled in);
# a stored "chunk body" past this is not one ingestion wrote, so it is never read.
MAX_STORED_CHUNK_BYTES: Final = 16 * 1024 * 1024
# The trace-to-state check holds every diff of the trace at once (Assemble has 1 GiB+).
MAX_STATE_CHECK_DIFF_BYTES: Final = 256 * 1024 * 1024
DOCUMENT_CONTENT_TYPE: Final = "application/json"


class DocumentConflict(StoredDiffers):
    """Another document is stored under this trace's document key. Assembling is
    deterministic, so this is never a retry of ours; nothing is overwritten."""


class FinalizeRecord(BaseModel):
    """The part of the trace's finalize record (ingest.finalize) that Assemble checks."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    expected_chunks: Annotated[int, Field(ge=1)]
    event_count: Annotated[int, Field(ge=0)]
    manifest_sha256: Sha256Hex
    snapshots: WorkspaceSnapshots | None = None


@dataclass(frozen=True)
class Assembled:
    document_key: str
    qa_report_key: str
    judge_result_key: str
    has_snapshots: bool
    event_count: int
    chunk_count: int
    chain: ChainSummary
    metrics: dict[str, Any]
    document_sha256: str
    document_bytes: int
    written: bool  # False: an earlier attempt stored this same document
    state_check: StateCheck | None = None  # None: no snapshots to check against
    manifest_draft_key: str | None = None  # the unsigned manifest Record completes
    # The two snapshot refs (verified above), so the PrepareQa step signs their URLs
    # without reading the document (up to 64 MB).
    snapshots: WorkspaceSnapshots | None = None

    def as_output(self) -> dict[str, Any]:
        """The step's result in Step Functions state: keys and a bounded summary."""
        return {
            "outcome": "assembled",
            "document_key": self.document_key,
            "qa_report_key": self.qa_report_key,
            "judge_result_key": self.judge_result_key,
            "has_snapshots": self.has_snapshots,
            "manifest_draft_key": self.manifest_draft_key,
            "snapshots": None if self.snapshots is None else self.snapshots.model_dump(mode="json"),
            "summary": {
                "event_count": self.event_count,
                "chunk_count": self.chunk_count,
                "chain": self.chain.model_dump(),
                "metrics": self.metrics,
                "state_check": None
                if self.state_check is None
                else state_summary(self.state_check),
            },
        }


@dataclass(frozen=True)
class Rejected:
    reason: Rejection

    def as_output(self) -> dict[str, Any]:
        return {"outcome": "rejected", "reason": self.reason.as_dict()}


AssembleOutcome = Assembled | Rejected


def blob_refs(event: Event) -> Iterator[tuple[str, BlobRef]]:
    """Every artifact an event references, with the field that references it."""
    refs: tuple[tuple[str, BlobRef | None], ...] = ()
    if isinstance(event, FileEditEvent | CommitEvent):
        refs = (("diff_ref", event.payload.diff_ref),)
    elif isinstance(event, CmdRunEvent):
        refs = (("stdout_ref", event.payload.stdout_ref), ("stderr_ref", event.payload.stderr_ref))
    elif isinstance(event, TestRunEvent):
        refs = (("report_ref", event.payload.report_ref),)
    for name, ref in refs:
        if ref is not None:
            yield f"/payload/{name}", ref


def _read_bounded(body: ReadableBlob, limit: int) -> bytes:
    """All of a stream, or at most `limit + 1` bytes (enough to know it is too long)."""
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        block = body.read(min(READ_BLOCK_BYTES, limit + 1 - total))
        if not block:
            break
        parts.append(block)
        total += len(block)
    return b"".join(parts)


class ArtifactChecker:
    """Each distinct artifact is read and hashed once; later references compare sizes."""

    def __init__(self, blobs: StreamingBlobStore, tenant: str, trace_id: str) -> None:
        self._blobs = blobs
        self._tenant = tenant
        self._trace_id = trace_id
        self._verified: dict[str, int] = {}  # sha256 -> stored size
        self.media_types: dict[str, str] = {}  # sha256 -> first declared media type

    @property
    def verified_count(self) -> int:
        return len(self._verified)

    def entries(self) -> list[ArtifactEntry]:
        """Every verified artifact, by SHA-256 (for the manifest)."""
        return [
            ArtifactEntry(sha256=sha, size=size, media_type=self.media_types[sha])
            for sha, size in sorted(self._verified.items())
        ]

    def check(self, ref: BlobRef, where: str, **at: Any) -> None:
        stored = self._verified.get(ref.sha256)
        if stored is None:
            stored = self._verify(ref, where, at)
            self._verified[ref.sha256] = stored
            self.media_types[ref.sha256] = ref.media_type
        if stored != ref.size:
            raise reject(
                "artifact_size_mismatch",
                f"{where}: artifact {ref.sha256} is declared as {ref.size} bytes, "
                f"the stored one has {stored}",
                artifact_sha256=ref.sha256,
                **at,
            )

    def _verify(self, ref: BlobRef, where: str, at: dict[str, Any]) -> int:
        key = artifact_key(self._tenant, self._trace_id, ref.sha256)
        opened = self._blobs.open_read(key)
        if opened is None:
            raise reject(
                "artifact_missing",
                f"{where}: artifact {ref.sha256} ({ref.size} bytes) is not stored at {key}",
                artifact_sha256=ref.sha256,
                **at,
            )
        if opened.size != ref.size:
            opened.body.close()
            return opened.size  # the caller reports the size mismatch
        digest = hashlib.sha256()
        read = 0
        try:
            while block := opened.body.read(READ_BLOCK_BYTES):
                digest.update(block)
                read += len(block)
        finally:
            opened.body.close()
        actual = digest.hexdigest()
        if read != ref.size or actual != ref.sha256:
            raise reject(
                "artifact_digest_mismatch",
                f"{where}: the artifact stored at {key} has SHA-256 {actual} ({read} bytes), "
                f"not the declared {ref.sha256}",
                artifact_sha256=ref.sha256,
                **at,
            )
        return read


class _TraceVerifier:
    """The running checks across chunks, and everything computed from verified events."""

    def __init__(
        self,
        tenant: str,
        trace_id: str,
        finalize: FinalizeRecord,
        ring: KeyRing,
        artifacts: ArtifactChecker,
    ) -> None:
        self.tenant = tenant
        self.trace_id = trace_id
        self.finalize = finalize
        self.ring = ring
        self.artifacts = artifacts
        self.chain = EventChain(ring.current, trace_id)
        self.metrics = MetricsAccumulator()
        self.manifest = hashlib.sha256()
        self.next_chunk_seq = 0
        self.next_event_seq = 0
        self.event_ids: set[str] = set()
        self.latest_ms: int | None = None
        self.latest_seq = -1
        self.latest_ts = ""
        self.chunk_entries: list[ChunkEntry] = []
        # file_edit events, in seq order, for the trace-to-state check
        self.edits: list[tuple[int, str, str, str | None, str | BlobRef]] = []
        # Only a trace with snapshots is checked; the diffs it holds are bounded.
        self.collect_edits = finalize.snapshots is not None
        self.edit_bytes = 0

    # ---- one chunk ----------------------------------------------------------------------

    def check_record(self, chunk: ChunkRecord) -> None:
        seq = chunk.chunk_seq
        if seq >= self.finalize.expected_chunks:
            raise reject(
                "chunk_unexpected",
                f"chunk {seq} is stored, but the trace was finalized with "
                f"expected_chunks={self.finalize.expected_chunks}",
                chunk_seq=seq,
            )
        if seq != self.next_chunk_seq:
            raise reject(
                "chunk_missing",
                f"chunk {self.next_chunk_seq} is not stored (the next stored chunk is {seq})",
                chunk_seq=self.next_chunk_seq,
            )
        try:
            key = self.ring.get(chunk.key_id)
        except UnknownKey:
            raise reject(
                "chunk_key_unknown",
                f"chunk {seq} is signed with key id {chunk.key_id!r}, "
                "which the integrity key ring does not hold",
                chunk_seq=seq,
            ) from None
        if not verify_chunk_mac(
            key,
            chunk.mac,
            tenant=self.tenant,
            trace_id=self.trace_id,
            chunk_seq=seq,
            chunk_sha256=chunk.sha256,
        ):
            raise reject(
                "chunk_mac_invalid",
                f"chunk {seq}: the record's MAC does not verify; its digest, seq or trace "
                "was changed after it was stored",
                chunk_seq=seq,
            )
        self.manifest.update(chunk.sha256.encode() if seq == 0 else b"\n" + chunk.sha256.encode())
        self.next_chunk_seq = seq + 1

    @staticmethod
    def parse_body(chunk: ChunkRecord, body: bytes) -> tuple[list[Event], list[bytes]]:
        """The body's events (strict schema) and their canonical bytes, which the chain
        covers; a body is accepted only in the exact canonical form ingestion stores."""
        seq = chunk.chunk_seq
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise reject(
                "chunk_body_invalid", f"chunk {seq}: body is not JSON: {exc}", chunk_seq=seq
            ) from None
        try:
            events = ChunkBody.model_validate(document).events
        except ValidationError as exc:
            raise reject(
                "chunk_body_invalid",
                f"chunk {seq}: body does not pass the trace schema: {describe(exc)}",
                chunk_seq=seq,
            ) from None
        canonical = [canonical_json(raw) for raw in document["events"]]
        if b'{"events":[' + b",".join(canonical) + b"]}" != body:
            raise reject(
                "chunk_body_invalid",
                f"chunk {seq}: body is not in canonical form",
                chunk_seq=seq,
            )
        return events, canonical

    def check_events(self, chunk: ChunkRecord, events: list[Event], canonical: list[bytes]) -> None:
        seq = chunk.chunk_seq
        for event, canonical_event in zip(events, canonical, strict=True):
            at = {"chunk_seq": seq, "event_seq": event.seq, "event_id": event.event_id}
            if event.seq != self.next_event_seq:
                raise reject(
                    "event_seq_gap",
                    f"chunk {seq}: event {event.event_id!r} has seq {event.seq}, but the "
                    f"next event seq is {self.next_event_seq}",
                    **at,
                )
            if event.event_id in self.event_ids:
                raise reject(
                    "duplicate_event_id",
                    f"event seq {event.seq} in chunk {seq} reuses event id "
                    f"{event.event_id!r} of an earlier event",
                    **at,
                )
            now = timestamp_ms(event.ts)
            if self.latest_ms is not None and now < self.latest_ms - TIMESTAMP_TOLERANCE_MS:
                raise reject(
                    "timestamp_regression",
                    f"event seq {event.seq} (chunk {seq}) has ts {event.ts}, "
                    f"{self.latest_ms - now} ms before event seq {self.latest_seq} "
                    f"({self.latest_ts}); at most {TIMESTAMP_TOLERANCE_MS} ms is tolerated",
                    **at,
                )
            for where, ref in blob_refs(event):
                self.artifacts.check(ref, f"event seq {event.seq} {where}", **at)
            self.event_ids.add(event.event_id)
            if self.latest_ms is None or now >= self.latest_ms:
                self.latest_ms, self.latest_seq, self.latest_ts = now, event.seq, event.ts
            if isinstance(event, FileEditEvent) and self.collect_edits:
                self.collect_edit(event)
            self.chain.append(canonical_event)
            self.metrics.add(event, now)
            self.next_event_seq += 1
        first, last = events[0].seq, events[-1].seq
        if (first, last) != (chunk.first_event_seq, chunk.last_event_seq):
            raise reject(
                "chunk_range_mismatch",
                f"chunk {seq}: the record says event seqs {chunk.first_event_seq}.."
                f"{chunk.last_event_seq}, the body holds {first}..{last}",
                chunk_seq=seq,
            )
        self.chunk_entries.append(
            ChunkEntry(seq=seq, first_event_seq=first, last_event_seq=last, sha256=chunk.sha256)
        )

    def collect_edit(self, event: FileEditEvent) -> None:
        p = event.payload
        diff = p.diff if p.diff_ref is None else p.diff_ref
        size = p.diff_ref.size if p.diff_ref is not None else len(p.diff or "")
        self.edit_bytes += size
        if self.edit_bytes > MAX_STATE_CHECK_DIFF_BYTES:
            self.collect_edits = False  # _check_state reports it not_checked
            self.edits.clear()
            return
        old = None if p.old_path is None else str(p.old_path)
        self.edits.append((event.seq, str(p.path), p.change, old, diff or ""))

    # ---- the whole trace ------------------------------------------------------------------

    def check_complete(self) -> None:
        if self.next_chunk_seq < self.finalize.expected_chunks:
            raise reject(
                "chunk_missing",
                f"chunk {self.next_chunk_seq} is not stored; the trace was finalized with "
                f"expected_chunks={self.finalize.expected_chunks}",
                chunk_seq=self.next_chunk_seq,
            )
        manifest = self.manifest.hexdigest()
        if manifest != self.finalize.manifest_sha256:
            raise reject(
                "manifest_mismatch",
                f"the stored chunks' digests hash to {manifest}, not the manifest "
                f"{self.finalize.manifest_sha256} pinned at finalize",
            )
        if self.next_event_seq != self.finalize.event_count:
            raise reject(
                "event_count_mismatch",
                f"the chunks hold {self.next_event_seq} events, finalize counted "
                f"{self.finalize.event_count}",
            )

    def chain_summary(self) -> ChainSummary:
        return ChainSummary(
            key_id=self.ring.current_id, head=self.chain.head.hex(), length=self.chain.length
        )


class AssembleService:
    def __init__(
        self,
        traces: TraceStore,
        blobs: StreamingBlobStore,
        key_ring: Callable[[], KeyRing],
        spool_dir: str | None = None,
    ) -> None:
        self._traces = traces
        self._blobs = blobs
        self._key_ring = key_ring
        self._spool_dir = spool_dir  # where the document is written before upload

    def assemble(self, tenant: str, trace_id: str) -> AssembleOutcome:
        try:
            return self._assemble(tenant, trace_id)
        except TraceRejected as rejected:
            return Rejected(rejected.rejection)

    def _assemble(self, tenant: str, trace_id: str) -> Assembled:
        metadata, finalize = self._finalized_trace(tenant, trace_id)
        verifier = _TraceVerifier(
            tenant,
            trace_id,
            finalize,
            self._key_ring(),
            ArtifactChecker(self._blobs, tenant, trace_id),
        )
        with tempfile.TemporaryFile(dir=self._spool_dir) as spool:
            writer = TraceDocumentWriter(
                spool, trace_id=trace_id, metadata=metadata, snapshots=finalize.snapshots
            )
            for chunk in self._traces.list_chunks(tenant, trace_id, with_event_ids=False):
                verifier.check_record(chunk)
                events, canonical = verifier.parse_body(chunk, self._chunk_body(chunk))
                verifier.check_events(chunk, events, canonical)
                writer.add_events(events)
            verifier.check_complete()
            if finalize.snapshots is not None:
                for name in ("base", "final"):
                    ref: BlobRef = getattr(finalize.snapshots, name)
                    verifier.artifacts.check(ref, f"snapshots/{name}")
            state = None
            if finalize.snapshots is not None and verifier.edit_bytes > MAX_STATE_CHECK_DIFF_BYTES:
                state = not_checked(
                    f"the recorded diffs hold {verifier.edit_bytes} bytes, more than the "
                    f"{MAX_STATE_CHECK_DIFF_BYTES} the check holds in memory"
                )
            elif finalize.snapshots is not None:
                state = self._check_state(tenant, trace_id, verifier.edits, finalize.snapshots)
            chain = verifier.chain_summary()
            metrics = verifier.metrics.result()
            digest = writer.finish(chain, metrics, state)
            spool.flush()
            spool.seek(0)
            key = document_key(tenant, trace_id)
            written = self._store_document(key, spool, writer.size, digest)
        manifest = TraceManifest(
            trace_id=trace_id,
            tenant=tenant,
            document=DigestedFile(sha256=digest, size=writer.size),
            chain=ChainEntry(**chain.model_dump()),
            event_count=verifier.next_event_seq,
            chunks=verifier.chunk_entries,
            chunk_merkle_root=chunk_merkle_root(c.sha256 for c in verifier.chunk_entries),
            artifacts=verifier.artifacts.entries(),
            snapshots=None
            if finalize.snapshots is None
            else {"base": finalize.snapshots.base.sha256, "final": finalize.snapshots.final.sha256},
            state_check=None if state is None else state.status,
        )
        draft = manifest.canonical()
        draft_key = manifest_draft_key(tenant, trace_id)
        self._store_document(
            draft_key, io.BytesIO(draft), len(draft), hashlib.sha256(draft).hexdigest()
        )
        return Assembled(
            document_key=key,
            qa_report_key=qa_report_key(tenant, trace_id),
            judge_result_key=judge_result_key(tenant, trace_id),
            has_snapshots=finalize.snapshots is not None,
            event_count=verifier.next_event_seq,
            chunk_count=verifier.next_chunk_seq,
            chain=chain,
            metrics=metrics,
            document_sha256=digest,
            document_bytes=writer.size,
            written=written,
            state_check=state,
            manifest_draft_key=draft_key,
            snapshots=finalize.snapshots,
        )

    def _check_state(
        self,
        tenant: str,
        trace_id: str,
        edits: list[tuple[int, str, str, str | None, str | BlobRef]],
        snapshots: WorkspaceSnapshots,
    ) -> StateCheck:
        """Every artifact here was verified above (digest and size) before it is read."""

        def read(ref: BlobRef) -> OpenedBlob:
            opened = self._blobs.open_read(artifact_key(tenant, trace_id, ref.sha256))
            if opened is None:  # pragma: no cover - verified a moment ago
                raise StateCheckError(f"artifact {ref.sha256} is no longer stored")
            return opened

        def diff_text(diff: str | BlobRef) -> str:
            if isinstance(diff, str):
                return diff
            opened = read(diff)
            try:
                return _read_bounded(opened.body, diff.size).decode("utf-8", "replace")
            finally:
                opened.body.close()

        def opener(ref: BlobRef) -> Callable[[], tuple[ReadableBlob, str]]:
            def open_snapshot() -> tuple[ReadableBlob, str]:
                opened = read(ref)
                opened_bodies.append(opened.body)
                return opened.body, ref.media_type

            return open_snapshot

        opened_bodies: list[ReadableBlob] = []
        try:
            recorded = [
                RecordedEdit(seq, path, change, diff_text(diff), old)  # type: ignore[arg-type]
                for seq, path, change, old, diff in edits
            ]
            return check_state(recorded, opener(snapshots.base), opener(snapshots.final))
        except StateCheckError as exc:
            return not_checked(str(exc))
        finally:
            for body in opened_bodies:
                body.close()

    def _finalized_trace(self, tenant: str, trace_id: str) -> tuple[TraceMetadata, FinalizeRecord]:
        trace = self._traces.get_trace(tenant, trace_id)
        if trace is None:
            raise reject("trace_not_found", f"trace {trace_id} does not exist")
        if trace.finalize is None:
            raise reject(
                "trace_not_finalized", f"trace {trace_id} is {trace.status}, not finalized"
            )
        try:
            finalize = FinalizeRecord.model_validate(trace.finalize)
        except ValidationError as exc:
            raise reject(
                "finalize_invalid", f"the finalize record is invalid: {describe(exc)}"
            ) from None
        try:
            metadata = TraceMetadata.model_validate(trace.metadata)
        except ValidationError as exc:
            raise reject(
                "metadata_invalid", f"the trace metadata is invalid: {describe(exc)}"
            ) from None
        return metadata, finalize

    def _chunk_body(self, chunk: ChunkRecord) -> bytes:
        seq = chunk.chunk_seq
        opened = self._blobs.open_read(chunk.body_key)
        if opened is None:
            raise reject(
                "chunk_body_missing",
                f"chunk {seq}: its body is not stored at {chunk.body_key}",
                chunk_seq=seq,
            )
        try:
            if opened.size > MAX_STORED_CHUNK_BYTES:
                raise reject(
                    "chunk_body_mismatch",
                    f"chunk {seq}: the stored body has {opened.size} bytes, more than any "
                    "chunk ingestion stores",
                    chunk_seq=seq,
                )
            body = _read_bounded(opened.body, MAX_STORED_CHUNK_BYTES)
        finally:
            opened.body.close()
        digest = hashlib.sha256(body).hexdigest()
        if digest != chunk.sha256:
            raise reject(
                "chunk_body_mismatch",
                f"chunk {seq}: the stored body has SHA-256 {digest}, but the chunk was "
                f"stored with {chunk.sha256}: the body was changed after upload",
                chunk_seq=seq,
            )
        return body

    def _store_document(self, key: str, spool: BinaryIO, size: int, digest: str) -> bool:
        # An earlier attempt may have got this far: it must have written exactly these bytes.
        return upload_once(
            self._blobs, key, spool, size, digest, DOCUMENT_CONTENT_TYPE,
            what="document", conflict=DocumentConflict,
        )  # fmt: skip
