"""Stored traces for the Assemble step's tests and benchmark, written the way ingestion
stores them (canonical bodies, MACs, finalize manifest) but without ingestion's checks, so
a test can also store what ingestion would refuse (seq gaps, duplicate ids, late clocks)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.adapters.memory import MemoryTraceStore
from prtrace.canonical import canonical_json
from prtrace.integrity import KeyRing, chunk_mac, sha256_hex
from prtrace.ports import PresignedUpload
from prtrace.records import ChunkRecord, TraceRecord
from prtrace.schema import Event
from prtrace.storage_keys import artifact_key, trace_prefix
from tests.factories import blob_ref, event, trace_metadata

KEY_RING = KeyRing(current_id="k1", keys={"k1": b"assemble-test-key-".ljust(32, b"k")})
TENANT = "acme"
TRACE_ID = "tr_01JD0000000000000000000042"
NOW = "2026-11-25T10:00:00.000Z"
_START = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
_EVENT = TypeAdapter(Event)


def at_ms(offset_ms: int) -> str:
    when = _START + timedelta(milliseconds=offset_ms)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def stdout_of(seq: int) -> bytes:
    return f"stdout of the command at event {seq}\n".encode()


def session(start: int, count: int, step_ms: int = 1_500) -> list[dict[str, Any]]:
    """The factories' rotating mix of events, one every `step_ms`, with each command's
    stdout an artifact whose content `stdout_of` gives."""
    made = []
    for seq in range(start, start + count):
        one = event(seq)
        one["ts"] = at_ms(seq * step_ms)
        if one["type"] == "cmd_run":
            one["payload"]["stdout_ref"] = blob_ref(stdout_of(seq))
        made.append(one)
    return made


def chunked(events: Sequence[dict[str, Any]], per_chunk: int) -> list[list[dict[str, Any]]]:
    return [list(events[i : i + per_chunk]) for i in range(0, len(events), per_chunk)]


def artifacts_of(chunks: Iterable[Iterable[dict[str, Any]]]) -> list[bytes]:
    return [stdout_of(one["seq"]) for chunk in chunks for one in chunk if one["type"] == "cmd_run"]


def canonical_event(raw: dict[str, Any]) -> bytes:
    """Exactly what prepare_chunk stores for the event."""
    return canonical_json(_EVENT.validate_python(raw).model_dump(mode="json", exclude_none=True))


def canonical_body(events: Iterable[dict[str, Any]]) -> bytes:
    return b'{"events":[' + b",".join(canonical_event(e) for e in events) + b"]}"


@dataclass
class StoredTrace:
    traces: MemoryTraceStore
    blobs: DirectoryArtifactStore
    tenant: str
    trace_id: str

    def chunk(self, seq: int) -> ChunkRecord:
        return self.traces.chunks[(self.tenant, self.trace_id, seq)]

    def set_chunk(self, record: ChunkRecord) -> None:
        self.traces.chunks[(self.tenant, self.trace_id, record.chunk_seq)] = record

    def drop_chunk(self, seq: int) -> None:
        del self.traces.chunks[(self.tenant, self.trace_id, seq)]

    def record(self) -> TraceRecord:
        return self.traces.traces[(self.tenant, self.trace_id)]

    def set_finalize(self, **changes: Any) -> None:
        trace = self.record()
        finalize = dict(trace.finalize or {}) | changes
        self.traces.traces[(self.tenant, self.trace_id)] = replace(trace, finalize=finalize)

    def artifact_path(self, content: bytes) -> Any:
        key = artifact_key(self.tenant, self.trace_id, hashlib.sha256(content).hexdigest())
        return self.blobs.root.joinpath(*key.split("/"))

    def body_path(self, seq: int) -> Any:
        return self.blobs.root.joinpath(*self.chunk(seq).body_key.split("/"))


def store_trace(
    traces: MemoryTraceStore,
    blobs: DirectoryArtifactStore,
    chunks: Iterable[Sequence[dict[str, Any]]],  # consumed once: may be a generator
    *,
    artifacts: Iterable[bytes] = (),
    snapshots: dict[str, Any] | None = None,
    tenant: str = TENANT,
    trace_id: str = TRACE_ID,
    ring: KeyRing = KEY_RING,
    status: str = "assembling",
) -> StoredTrace:
    for content in artifacts:
        digest = hashlib.sha256(content).hexdigest()
        blobs.put_if_absent(artifact_key(tenant, trace_id, digest), content, digest, "text/plain")
    digests = []
    events = 0
    for seq, chunk_events in enumerate(chunks):
        body = canonical_body(chunk_events)
        digest = sha256_hex(body)
        body_key = f"{trace_prefix(tenant, trace_id)}/chunks/{seq:06d}-{digest}.json"
        blobs.put_if_absent(body_key, body, digest, "application/json")
        traces.chunks[(tenant, trace_id, seq)] = ChunkRecord(
            tenant=tenant,
            trace_id=trace_id,
            chunk_seq=seq,
            first_event_seq=chunk_events[0]["seq"],
            last_event_seq=chunk_events[-1]["seq"],
            sha256=digest,
            mac=chunk_mac(
                ring.current, tenant=tenant, trace_id=trace_id, chunk_seq=seq, chunk_sha256=digest
            ),
            key_id=ring.current_id,
            body_key=body_key,
            size_bytes=len(body),
            stored_at=NOW,
            event_ids=tuple(e["event_id"] for e in chunk_events),
        )
        digests.append(digest)
        events += len(chunk_events)
    finalize: dict[str, Any] = {
        "expected_chunks": len(digests),
        "event_count": events,
        "manifest_sha256": sha256_hex("\n".join(digests).encode()),
        "requested_at": NOW,
    }
    if snapshots is not None:
        finalize["snapshots"] = copy.deepcopy(snapshots)
    traces.traces[(tenant, trace_id)] = TraceRecord(
        tenant=tenant,
        trace_id=trace_id,
        status=status,
        metadata=trace_metadata(),
        created_at=NOW,
        updated_at=NOW,
        chunk_count=len(digests),
        event_count=events,
        finalize=finalize,
    )
    return StoredTrace(traces, blobs, tenant, trace_id)


class IngestBlobs(DirectoryArtifactStore):
    """The directory store with what ingestion also asks of a blob store."""

    def head(self, key: str) -> int | None:
        found = self.open_read(key)
        if found is None:
            return None
        found.body.close()
        return found.size

    def presign_put(
        self, key: str, sha256_hex: str, size: int, content_type: str, expires_in: int
    ) -> PresignedUpload:
        return PresignedUpload(url=f"file://{key}", headers={}, expires_in=expires_in)

    def ping(self) -> None:
        return None
