"""The ingest hot path for one chunk: parse, validate, canonicalize, dedupe, MAC.

Pure and storage-free so it can be benchmarked and tested on its own. The canonical form
of an event is its validated model dumped without null fields: two bodies that mean the
same events (key order, whitespace, explicit nulls) produce the same bytes and digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson
from pydantic import ValidationError

from prtrace.canonical import canonical_json
from prtrace.errors import FieldError, InvalidInput
from prtrace.integrity import chunk_mac, sha256_hex
from prtrace.schema import ChunkBody, Event
from prtrace.validation import summarize, validate_document


@dataclass(frozen=True)
class PreparedChunk:
    chunk_seq: int
    first_event_seq: int
    last_event_seq: int
    event_ids: tuple[str, ...]
    events: list[dict[str, Any]] = field(repr=False)  # validated, as JSON values
    body: bytes  # canonical JSON of {"events": [...]}, what is stored
    sha256: str

    @cached_property
    def canonical_events(self) -> tuple[bytes, ...]:
        """Each event's canonical bytes (the pieces of `body`), for chaining."""
        return tuple(canonical_json(event) for event in self.events)

    def mac(self, key: bytes, *, tenant: str, trace_id: str) -> str:
        return chunk_mac(
            key,
            tenant=tenant,
            trace_id=trace_id,
            chunk_seq=self.chunk_seq,
            chunk_sha256=self.sha256,
        )


def parse_chunk(raw: bytes) -> ChunkBody:
    try:
        # The bodies clients send parse and validate in one pass inside pydantic-core.
        return ChunkBody.model_validate_json(raw)
    except ValidationError:
        pass  # refused: answered by the reference path below, with its errors and its
        # reading of whole-number floats, so both paths accept exactly the same bodies
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"chunk body is not valid JSON: {exc}", [FieldError("", str(exc))]
        ) from None
    return validate_document(ChunkBody, document, "chunk body")


def prepare_chunk(raw: bytes, chunk_seq: int) -> PreparedChunk:
    """Everything that can be checked without looking at stored data."""
    chunk = parse_chunk(raw)
    events = chunk.events
    first = events[0].seq
    errors: list[FieldError] = []
    if chunk_seq == 0 and first != 0:
        errors.append(
            FieldError("/events/0/seq", f"the first chunk must start at event seq 0, got {first}")
        )
    elif first < chunk_seq:
        # Each of the chunks before this one holds at least one event.
        errors.append(
            FieldError(
                "/events/0/seq",
                f"chunk {chunk_seq} cannot start before event seq {chunk_seq} "
                f"(every earlier chunk holds at least one event), got {first}",
            )
        )
    event_ids = tuple(event.event_id for event in events)
    contiguous = [event.seq for event in events] == list(range(first, first + len(events)))
    if not contiguous or len(set(event_ids)) != len(event_ids):
        errors += _order_errors(events, first)
    if errors:
        raise InvalidInput(f"chunk {chunk_seq} is inconsistent: {summarize(errors)}", errors)
    # One dump of the whole body (one call into pydantic-core, not one per event).
    dumped = chunk.model_dump(mode="json", exclude_none=True)["events"]
    body = canonical_json({"events": dumped})  # one serializer call for the whole chunk
    return PreparedChunk(
        chunk_seq=chunk_seq,
        first_event_seq=first,
        last_event_seq=events[-1].seq,
        event_ids=event_ids,
        events=dumped,
        body=body,
        sha256=sha256_hex(body),
    )


def _order_errors(events: Sequence[Event], first: int) -> list[FieldError]:
    """Where the events break contiguous seqs or reuse an event id (the slow path: the
    caller found that they do)."""
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.seq != first + index:
            errors.append(
                FieldError(
                    f"/events/{index}/seq",
                    f"expected seq {first + index} (contiguous), got {event.seq}",
                )
            )
        if event.event_id in seen:
            errors.append(
                FieldError(
                    f"/events/{index}/event_id",
                    f"duplicate event_id {event.event_id!r}, "
                    f"first used at /events/{seen[event.event_id]}",
                )
            )
        else:
            seen[event.event_id] = index
    return errors
