"""The small interfaces the domain needs from storage. Adapters implement them with boto3
(adapters/dynamodb.py, adapters/s3.py) or in memory (adapters/memory.py, for tests).

Every write is conditional: the store raises instead of overwriting what is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prtrace.records import ChunkNeighbourhood, ChunkRecord, Page, TraceRecord
from prtrace.tokens import TokenRecord

# ---- streamed reads (Assemble, the export job, write-once uploads) ----


class ReadableBlob(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class OpenedBlob:
    size: int  # bytes stored, known before reading any
    body: ReadableBlob  # the caller closes it


class AlreadyExists(Exception):
    """A conditional create found the item already stored."""


class ConditionFailed(Exception):
    """A conditional update found the item in another state."""


class NeighbourChanged(Exception):
    """A chunk commit found an adjacent chunk stored meanwhile that it does not fit."""


class Contention(Exception):
    """The store gave up on a write after retrying transient conflicts; nothing was written."""


class TraceStore(Protocol):
    def create_trace(self, trace: TraceRecord) -> None:
        """Raises AlreadyExists."""

    def get_trace(self, tenant: str, trace_id: str) -> TraceRecord | None: ...

    def list_traces(self, tenant: str, limit: int, after: str | None) -> Page:
        """Newest first; `after` is the last trace id of the previous page."""

    def get_chunk(self, tenant: str, trace_id: str, chunk_seq: int) -> ChunkRecord | None: ...

    def list_chunks(
        self, tenant: str, trace_id: str, with_event_ids: bool
    ) -> Iterator[ChunkRecord]:
        """All chunks of a trace in chunk seq order."""

    def chunk_neighbourhood(self, tenant: str, trace_id: str, chunk_seq: int) -> ChunkNeighbourhood:
        """The chunk stored at `chunk_seq` and the nearest below and above, with event ids,
        in a constant number of reads."""

    def commit_chunk(self, chunk: ChunkRecord) -> None:
        """Store the chunk and count it on its trace, atomically, only while the trace is
        open, the chunk seq is free and each adjacent chunk is absent or continues this
        one's event seq. Raises AlreadyExists (seq taken), ConditionFailed (trace not open),
        NeighbourChanged or Contention."""

    def mark_finalizing(
        self,
        tenant: str,
        trace_id: str,
        finalize: dict[str, Any],
        now: str,
        chunk_count: int,
        event_count: int,
    ) -> TraceRecord:
        """open -> finalizing, only while the trace still holds exactly the chunks and events
        the caller checked; raises ConditionFailed otherwise."""

    def repair_counts(
        self, tenant: str, trace_id: str, seen: tuple[int, int], stored: tuple[int, int]
    ) -> None:
        """Set the open trace's (chunk_count, event_count) from `seen` to what its stored
        chunk items hold, only while they still read `seen`; ConditionFailed otherwise."""

    def record_outcome(
        self, tenant: str, trace_id: str, status: str, outcome: dict[str, Any], now: str
    ) -> TraceRecord:
        """Store a terminal status and its outcome, only while the trace is finalized and
        not yet terminal. A trace already in this same terminal status is returned as
        stored (a retried Record step); any other status raises ConditionFailed, so a
        recorded outcome is never overwritten."""

    def in_pipeline_since_before(self, before: str, limit: int) -> list[tuple[str, str]]:
        """(tenant, trace_id) of traces finalized before `before` (a UTC timestamp as
        utc_now writes it) that the pipeline has not ended yet, oldest first, at most
        `limit`: what the sweeper ends when their pipeline never recorded them."""

    def ping(self) -> None:
        """Raise when the store cannot be reached (readiness)."""


class PipelineUnavailable(Exception):
    """The pipeline could not be started (the service refused or could not be reached)."""


class PipelineStarter(Protocol):
    def start(self, tenant: str, trace_id: str) -> None:
        """Start the trace's pipeline once: one execution per trace, however often this is
        called. Raises PipelineUnavailable."""


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    headers: dict[str, str]
    expires_in: int


class BlobStore(Protocol):
    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        """Write unless the key exists; True when written, False when it already exists.
        Keys are content-addressed by their callers, so an existing key holds the same
        bytes. Raises Contention while another write to the key is still in flight."""

    def head(self, key: str) -> int | None:
        """Size of the stored object, or None."""

    def presign_put(
        self, key: str, sha256_hex: str, size: int, content_type: str, expires_in: int
    ) -> PresignedUpload: ...

    def presign_get(self, key: str, expires_in: int) -> str:
        """A URL that downloads the object until it expires."""

    def ping(self) -> None: ...


class TokenStore(Protocol):
    def put_token(self, token: TokenRecord) -> None:
        """Raises AlreadyExists."""

    def get_token(self, token_id: str) -> TokenRecord | None: ...

    def list_tokens(self, tenant: str | None) -> list[TokenRecord]: ...

    def revoke_token(self, token_id: str, now: str) -> TokenRecord:
        """Raises ConditionFailed when there is no such token."""
