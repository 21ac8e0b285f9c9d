"""Reading an assembled trace's events by seq range, for the viewer and other clients
that page through a trace instead of downloading its whole document.

The events come from the stored chunk bodies (each chunk item says which event seqs its
body holds), so a page costs one chunk listing and the few bodies that cover the range,
whatever the trace's size. Only an assembled trace is served: Assemble verified every
chunk (MAC, seq continuity, schema) and chained the events, so what a page shows is
exactly what the document and its chain head cover. Each body read is checked against the
SHA-256 its chunk item records before any event of it is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from prtrace.errors import FieldError, InvalidInput
from prtrace.integrity import sha256_hex
from prtrace.ports import TraceStore
from prtrace.records import TraceRecord
from prtrace.results.products import TraceResults

MAX_PAGE_EVENTS: Final = 500
DEFAULT_PAGE_EVENTS: Final = 100
# An API Gateway/Lambda answer is capped at 6 MB; a page stops adding events beyond this
# (always at least one event, which a chunk body's own limit keeps small).
MAX_PAGE_BYTES: Final = 4 * 1024 * 1024


class ReadableBlobs(Protocol):
    def get(self, key: str) -> bytes | None: ...


class StoredChunkChanged(RuntimeError):
    """A chunk body no longer matches the digest recorded when it was stored (never
    expected: bodies are written once, conditionally). Served as an internal error."""


@dataclass(frozen=True)
class EventPage:
    trace_id: str
    event_count: int
    from_seq: int
    events: list[dict[str, Any]]
    next_from_seq: int | None

    def public(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "event_count": self.event_count,
            "from_seq": self.from_seq,
            "events": self.events,
            "next_from_seq": self.next_from_seq,
        }


class TraceEvents:
    def __init__(self, traces: TraceStore, blobs: ReadableBlobs, results: TraceResults) -> None:
        self._traces = traces
        self._blobs = blobs
        self._results = results

    def page(self, trace: TraceRecord, from_seq: int, limit: int) -> EventPage:
        """Events `from_seq` … `from_seq + limit - 1` (fewer at the end of the trace or when
        the page reaches MAX_PAGE_BYTES); `next_from_seq` is where the next page starts,
        None after the last event."""
        if from_seq < 0:
            raise InvalidInput(
                f"from_seq is {from_seq}; it must be 0 or more",
                [FieldError("/query/from_seq", "must be >= 0")],
            )
        if not 1 <= limit <= MAX_PAGE_EVENTS:
            raise InvalidInput(
                f"limit is {limit}; it must be between 1 and {MAX_PAGE_EVENTS}",
                [FieldError("/query/limit", f"must be between 1 and {MAX_PAGE_EVENTS}")],
            )
        self._results.require_document(trace)
        total = trace.event_count
        if from_seq > total:
            raise InvalidInput(
                f"from_seq {from_seq} is past the end of trace {trace.trace_id}, "
                f"which has {total} events (seqs 0 to {total - 1})",
                [FieldError("/query/from_seq", f"must be at most {total}")],
            )
        end = min(from_seq + limit, total)  # exclusive
        events: list[dict[str, Any]] = []
        size = 0
        next_seq = from_seq
        for chunk in self._traces.list_chunks(trace.tenant, trace.trace_id, with_event_ids=False):
            if next_seq >= end or size > MAX_PAGE_BYTES:
                break
            if chunk.last_event_seq < next_seq:
                continue
            body = self._blobs.get(chunk.body_key)
            if body is None or sha256_hex(body) != chunk.sha256:
                raise StoredChunkChanged(
                    f"chunk {chunk.chunk_seq} of trace {trace.trace_id}: the stored body "
                    "is missing or does not match its recorded SHA-256"
                )
            for event in orjson.loads(body)["events"]:
                seq = event["seq"]
                if seq < next_seq:
                    continue
                if seq >= end or (events and size > MAX_PAGE_BYTES):
                    break
                events.append(event)
                size += len(orjson.dumps(event))
                next_seq = seq + 1
        return EventPage(
            trace_id=trace.trace_id,
            event_count=total,
            from_seq=from_seq,
            events=events,
            next_from_seq=next_seq if next_seq < total else None,
        )
