"""A trace document read for an export without holding its events: the header (every
field but `events`) parsed at once, the events validated one at a time as they are
iterated, each pass re-reading the document's JSON. A trace of 100,000 events is ~30 MB of
JSON but ~300 MB as models; streamed, the export holds its bytes and one event.

Small documents are parsed whole (`TraceDocument`): that is fastest, and their models are
small. `load_document` picks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final, Literal

import ijson
import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter

from prtrace.assemble.document import ChainSummary, TraceDocument
from prtrace.provenance.state_check import StateCheck
from prtrace.schema import Event, TraceMetadata, WorkspaceSnapshots

# Documents up to this size are parsed whole: their models take ~10 times their JSON
# (~10 MB here), and parsing in one go is several times faster than streaming.
STREAM_ABOVE_BYTES: Final = 1 << 20
_EVENT: Final = TypeAdapter(Event)
_OPENS: Final = frozenset({"start_map", "start_array"})
_CLOSES: Final = frozenset({"end_map", "end_array"})


class TraceHeader(BaseModel):
    """A TraceDocument's fields but `events` (the same types and checks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal["prtrace.document/v1"]
    trace_id: str
    metadata: TraceMetadata
    chain: ChainSummary
    snapshots: WorkspaceSnapshots | None = None
    metrics: dict[str, Any]
    state_check: StateCheck | None = None


class StreamedDocument:
    """A document's JSON with its header parsed and its events counted; `events()` parses
    them again on each call, one at a time, validated as `TraceDocument` would."""

    def __init__(self, data: bytes) -> None:
        fields, self.event_count = _header_fields(data)
        # Through JSON, so every field is checked exactly as the whole document's would be.
        self.header = TraceHeader.model_validate_json(orjson.dumps(fields))
        self._data = data

    def events(self) -> Iterator[Event]:
        for item in ijson.items(self._data, "events.item", use_float=True):
            yield _EVENT.validate_json(orjson.dumps(item))


def load_document(
    data: bytes, stream_above: int = STREAM_ABOVE_BYTES
) -> TraceDocument | StreamedDocument:
    """The document as an export reads it: whole when small, streamed when larger."""
    if len(data) <= stream_above:
        return TraceDocument.model_validate_json(data)
    return StreamedDocument(data)


def document_header(document: TraceDocument | StreamedDocument) -> TraceDocument | TraceHeader:
    """Every field but the events (a whole document is its own header)."""
    return document.header if isinstance(document, StreamedDocument) else document


def document_events(document: TraceDocument | StreamedDocument) -> Iterator[Event]:
    """The events in seq order, one at a time when streamed."""
    return document.events() if isinstance(document, StreamedDocument) else iter(document.events)


def event_count(document: TraceDocument | StreamedDocument) -> int:
    if isinstance(document, StreamedDocument):
        return document.event_count
    return len(document.events)


def _header_fields(data: bytes) -> tuple[dict[str, Any], int]:
    """The document's top-level fields but `events`, and how many events it has: one pass
    over the parser's tokens, the event list skipped (its items only counted)."""
    tokens = ijson.basic_parse(data, use_float=True)
    if next(tokens, (None, None))[0] != "start_map":
        raise ValueError("a trace document is a JSON object")
    fields: dict[str, Any] = {}
    count = 0
    for kind, key in tokens:
        if kind == "end_map":
            break
        if key == "events":
            count = _count_items(tokens)
            fields[key] = None  # seen: a document without events is refused below
        else:
            fields[key] = _value(tokens)
    if "events" not in fields:
        raise ValueError("a trace document has events")
    del fields["events"]
    return fields, count


def _value(tokens: Iterator[tuple[str, Any]]) -> Any:
    """The next value, built."""
    builder = ijson.ObjectBuilder()
    depth = 0
    for kind, value in tokens:
        builder.event(kind, value)
        depth += (kind in _OPENS) - (kind in _CLOSES)
        if depth == 0:
            break
    return builder.value


def _count_items(tokens: Iterator[tuple[str, Any]]) -> int:
    """The next value, a list, skipped: how many items it has."""
    depth = count = 0
    for kind, _ in tokens:
        if depth == 0 and kind != "start_array":
            raise ValueError("a trace document's events are a list")
        if depth == 1 and kind not in _CLOSES:
            count += 1  # an item of the list starts
        depth += (kind in _OPENS) - (kind in _CLOSES)
        if depth == 0:
            break
    return count
