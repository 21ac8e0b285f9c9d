"""What the stores keep about traces and chunks (plain data; no storage details)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TraceStatus = Literal["open", "finalizing"]
OPEN: TraceStatus = "open"
FINALIZING: TraceStatus = "finalizing"


@dataclass(frozen=True)
class TraceRecord:
    tenant: str
    trace_id: str
    status: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    chunk_count: int = 0
    event_count: int = 0
    finalize: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        """The API's view of a trace (never the tenant: callers know their own)."""
        view: dict[str, Any] = {
            "trace_id": self.trace_id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "chunks_received": self.chunk_count,
            "events_received": self.event_count,
            "metadata": self.metadata,
        }
        if self.finalize is not None:
            view["finalize"] = self.finalize
        return view


@dataclass(frozen=True)
class ChunkRecord:
    tenant: str
    trace_id: str
    chunk_seq: int
    first_event_seq: int
    last_event_seq: int
    sha256: str  # of the canonical chunk body
    mac: str
    key_id: str
    body_key: str  # where the canonical body is stored
    size_bytes: int
    stored_at: str
    event_ids: tuple[str, ...] = field(default=(), repr=False)

    @property
    def event_count(self) -> int:
        return self.last_event_seq - self.first_event_seq + 1

    def receipt(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "chunk_seq": self.chunk_seq,
            "sha256": self.sha256,
            "first_event_seq": self.first_event_seq,
            "last_event_seq": self.last_event_seq,
            "event_count": self.event_count,
            "stored_at": self.stored_at,
        }


@dataclass(frozen=True)
class Page:
    items: list[TraceRecord]
    next_token: str | None
