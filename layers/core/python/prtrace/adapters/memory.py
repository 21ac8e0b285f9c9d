"""In-memory implementations of the storage ports, with the same conditional semantics as
the real adapters. For unit tests and benchmarks; not for production."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from prtrace.ports import (
    AlreadyExists,
    ConditionFailed,
    NeighbourChanged,
    PipelineUnavailable,
    PresignedUpload,
)
from prtrace.records import (
    FINALIZING,
    IN_PIPELINE,
    OPEN,
    ChunkNeighbourhood,
    ChunkRecord,
    Page,
    TraceRecord,
)
from prtrace.tokens import TokenRecord


class _ChunkTable(dict[tuple[str, str, int], ChunkRecord]):
    """Chunks by (tenant, trace, seq), with each trace's stored seqs kept sorted, so the
    neighbourhood of a seq is found by bisection (tests may set and delete items)."""

    def __init__(self) -> None:
        super().__init__()
        self._seqs: dict[tuple[str, str], list[int]] = {}

    def __setitem__(self, key: tuple[str, str, int], value: ChunkRecord) -> None:
        if key not in self:
            bisect.insort(self._seqs.setdefault(key[:2], []), key[2])
        super().__setitem__(key, value)

    def __delitem__(self, key: tuple[str, str, int]) -> None:
        super().__delitem__(key)
        self._seqs[key[:2]].remove(key[2])

    def seqs(self, tenant: str, trace_id: str) -> list[int]:
        return self._seqs.get((tenant, trace_id), [])


class MemoryTraceStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.traces: dict[tuple[str, str], TraceRecord] = {}
        self.chunks = _ChunkTable()
        # (tenant, trace_id) -> when it was finalized, while the pipeline has not ended it
        self._in_pipeline: dict[tuple[str, str], str] = {}

    def create_trace(self, trace: TraceRecord) -> None:
        with self._lock:
            if (trace.tenant, trace.trace_id) in self.traces:
                raise AlreadyExists(trace.trace_id)
            self.traces[(trace.tenant, trace.trace_id)] = trace

    def get_trace(self, tenant: str, trace_id: str) -> TraceRecord | None:
        return self.traces.get((tenant, trace_id))

    def list_traces(self, tenant: str, limit: int, after: str | None) -> Page:
        ids = sorted((t for (ten, t) in self.traces if ten == tenant), reverse=True)
        if after is not None:
            ids = [t for t in ids if t < after]
        page = [self.traces[(tenant, t)] for t in ids[:limit]]
        return Page(items=page, next_token=page[-1].trace_id if len(ids) > limit else None)

    def get_chunk(self, tenant: str, trace_id: str, chunk_seq: int) -> ChunkRecord | None:
        return self.chunks.get((tenant, trace_id, chunk_seq))

    def list_chunks(
        self, tenant: str, trace_id: str, with_event_ids: bool
    ) -> Iterator[ChunkRecord]:
        for seq in list(self.chunks.seqs(tenant, trace_id)):
            chunk = self.chunks[(tenant, trace_id, seq)]
            yield chunk if with_event_ids else replace(chunk, event_ids=())

    def chunk_neighbourhood(self, tenant: str, trace_id: str, chunk_seq: int) -> ChunkNeighbourhood:
        seqs = self.chunks.seqs(tenant, trace_id)
        at = bisect.bisect_left(seqs, chunk_seq)
        same = at < len(seqs) and seqs[at] == chunk_seq
        above = at + 1 if same else at

        def chunk(index: int) -> ChunkRecord | None:
            if 0 <= index < len(seqs):
                return self.chunks[(tenant, trace_id, seqs[index])]
            return None

        return ChunkNeighbourhood(
            below=chunk(at - 1), same=chunk(at) if same else None, above=chunk(above)
        )

    def commit_chunk(self, chunk: ChunkRecord) -> None:
        with self._lock:
            key = (chunk.tenant, chunk.trace_id, chunk.chunk_seq)
            if key in self.chunks:
                raise AlreadyExists(chunk.chunk_seq)
            trace = self.traces.get((chunk.tenant, chunk.trace_id))
            if trace is None or trace.status != OPEN:
                raise ConditionFailed(chunk.trace_id)
            after = self.chunks.get((chunk.tenant, chunk.trace_id, chunk.chunk_seq + 1))
            before = self.chunks.get((chunk.tenant, chunk.trace_id, chunk.chunk_seq - 1))
            if (after is not None and after.first_event_seq != chunk.last_event_seq + 1) or (
                before is not None and before.last_event_seq != chunk.first_event_seq - 1
            ):
                raise NeighbourChanged(chunk.chunk_seq)
            self.chunks[key] = chunk
            self.traces[(chunk.tenant, chunk.trace_id)] = replace(
                trace,
                chunk_count=trace.chunk_count + 1,
                event_count=trace.event_count + chunk.event_count,
                updated_at=chunk.stored_at,
            )

    def mark_finalizing(
        self,
        tenant: str,
        trace_id: str,
        finalize: dict[str, Any],
        now: str,
        chunk_count: int,
        event_count: int,
    ) -> TraceRecord:
        with self._lock:
            trace = self.traces.get((tenant, trace_id))
            if (
                trace is None
                or trace.status != OPEN
                or trace.chunk_count != chunk_count
                or trace.event_count != event_count
            ):
                raise ConditionFailed(trace_id)
            updated = replace(trace, status=FINALIZING, finalize=finalize, updated_at=now)
            self.traces[(tenant, trace_id)] = updated
            self._in_pipeline[(tenant, trace_id)] = now
            return updated

    def repair_counts(
        self, tenant: str, trace_id: str, seen: tuple[int, int], stored: tuple[int, int]
    ) -> None:
        with self._lock:
            trace = self.traces.get((tenant, trace_id))
            if (
                trace is None
                or trace.status != OPEN
                or (trace.chunk_count, trace.event_count) != seen
            ):
                raise ConditionFailed(trace_id)
            self.traces[(tenant, trace_id)] = replace(
                trace, chunk_count=stored[0], event_count=stored[1]
            )

    def set_status(self, tenant: str, trace_id: str, status: str, now: str) -> None:
        """What the state machine does to the item between steps (tests only)."""
        with self._lock:
            trace = self.traces[(tenant, trace_id)]
            self.traces[(tenant, trace_id)] = replace(trace, status=status, updated_at=now)

    def record_outcome(
        self, tenant: str, trace_id: str, status: str, outcome: dict[str, Any], now: str
    ) -> TraceRecord:
        with self._lock:
            trace = self.traces.get((tenant, trace_id))
            if trace is not None and trace.status == status:
                return trace  # a retry of the write that already landed
            if trace is None or trace.status not in IN_PIPELINE:
                raise ConditionFailed(trace_id)
            updated = replace(trace, status=status, outcome=outcome, updated_at=now)
            self.traces[(tenant, trace_id)] = updated
            self._in_pipeline.pop((tenant, trace_id), None)
            return updated

    def in_pipeline_since_before(self, before: str, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            listed = sorted(
                (since, key) for key, since in self._in_pipeline.items() if since < before
            )
        return [key for _, key in listed[:limit]]

    def ping(self) -> None:
        return None


class MemoryBlobStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        if key in self.objects:
            return False
        self.objects[key] = body
        return True

    def head(self, key: str) -> int | None:
        body = self.objects.get(key)
        return None if body is None else len(body)

    def presign_put(
        self, key: str, sha256_hex: str, size: int, content_type: str, expires_in: int
    ) -> PresignedUpload:
        return PresignedUpload(
            url=f"memory://{key}", headers={"Content-Type": content_type}, expires_in=expires_in
        )

    def presign_get(self, key: str, expires_in: int) -> str:
        return f"memory://{key}?expires_in={expires_in}"

    def ping(self) -> None:
        return None


class MemoryPipelineStarter:
    """Executions by name, as Step Functions keeps them: a second start of the same trace
    starts nothing. `calls` counts every start, `executions` what actually started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []
        self.executions: dict[str, dict[str, str]] = {}
        self.unavailable = False  # set to make the next starts fail as the service would

    def start(self, tenant: str, trace_id: str) -> None:
        with self._lock:
            self.calls.append((tenant, trace_id))
            if self.unavailable:
                raise PipelineUnavailable("pipeline service unavailable (test)")
            self.executions.setdefault(trace_id, {"tenant": tenant, "trace_id": trace_id})


class MemoryTokenStore:
    def __init__(self) -> None:
        self.tokens: dict[str, TokenRecord] = {}

    def put_token(self, token: TokenRecord) -> None:
        if token.token_id in self.tokens:
            raise AlreadyExists(token.token_id)
        self.tokens[token.token_id] = token

    def get_token(self, token_id: str) -> TokenRecord | None:
        return self.tokens.get(token_id)

    def list_tokens(self, tenant: str | None) -> list[TokenRecord]:
        return [t for t in self.tokens.values() if tenant is None or t.tenant == tenant]

    def revoke_token(self, token_id: str, now: str) -> TokenRecord:
        token = self.tokens.get(token_id)
        if token is None:
            raise ConditionFailed(token_id)
        revoked = replace(token, revoked_at=token.revoked_at or now)
        self.tokens[token_id] = revoked
        return revoked
