"""The assembled trace document: what the pipeline's Assemble step writes to S3.

One JSON document per finalized trace: the metadata, every event in seq order, the
event-chain head that proves them, the workspace snapshots (if any) and computed metrics.
The judge and dataset builders read this, never the raw chunks.

`TraceDocumentWriter` writes the same bytes `TraceDocument.model_dump_json()` would, without
ever holding all events: they go out chunk by chunk, and the fields computed from all of
them (chain, metrics) come after `events` in the model, so they are written last.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, BinaryIO, Final, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from prtrace.provenance.state_check import StateCheck
from prtrace.schema import Event, TraceMetadata, WorkspaceSnapshots

DOCUMENT_VERSION: Final = "prtrace.document/v1"


class ChainSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str
    head: str
    length: int


class TraceDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal["prtrace.document/v1"] = DOCUMENT_VERSION
    trace_id: str
    metadata: TraceMetadata
    events: list[Event]
    chain: ChainSummary
    snapshots: WorkspaceSnapshots | None = None
    metrics: dict[str, Any]
    # Do the recorded edits reproduce the final snapshot? (prtrace.provenance.state_check; None: the
    # trace has no snapshots, or was assembled before the check existed)
    state_check: StateCheck | None = None


_EVENT_LIST: Final = TypeAdapter(list[Event])
# JSON strings escape every quote, so this byte sequence can only be the field itself.
_EMPTY_EVENTS: Final = b'"events":[]'
_PLACEHOLDER_CHAIN: Final = ChainSummary(key_id="", head="", length=0)


def _split_at_events(document: TraceDocument) -> tuple[bytes, bytes]:
    """The document (with no events) as the bytes before and after the event list."""
    raw = document.model_dump_json().encode()
    at = raw.index(_EMPTY_EVENTS) + len(_EMPTY_EVENTS) - 1  # just after '['
    return raw[:at], raw[at:]


class TraceDocumentWriter:
    """Streams a TraceDocument as JSON into a binary file; tracks its size and SHA-256."""

    def __init__(
        self,
        out: BinaryIO,
        *,
        trace_id: str,
        metadata: TraceMetadata,
        snapshots: WorkspaceSnapshots | None,
    ) -> None:
        self._out = out
        self._trace_id = trace_id
        self._metadata = metadata
        self._snapshots = snapshots
        self._digest = hashlib.sha256()
        self.size = 0
        self._any_events = False
        self._head, _ = _split_at_events(self._frame(_PLACEHOLDER_CHAIN, {}))
        self._write(self._head)

    def _frame(
        self, chain: ChainSummary, metrics: dict[str, Any], state_check: StateCheck | None = None
    ) -> TraceDocument:
        return TraceDocument(
            trace_id=self._trace_id,
            metadata=self._metadata,
            events=[],
            chain=chain,
            snapshots=self._snapshots,
            metrics=metrics,
            state_check=state_check,
        )

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._digest.update(data)
        self.size += len(data)

    def add_events(self, events: Sequence[Event]) -> None:
        """The next events in seq order (typically one chunk's)."""
        if not events:
            return
        listed = _EVENT_LIST.dump_json(list(events))  # b"[e1,e2,...]", as in the document
        if self._any_events:
            self._write(b",")
        self._write(listed[1:-1])
        self._any_events = True

    def finish(
        self, chain: ChainSummary, metrics: dict[str, Any], state_check: StateCheck | None = None
    ) -> str:
        """Write the rest of the document; returns its SHA-256 (hex)."""
        head, tail = _split_at_events(self._frame(chain, metrics, state_check))
        if head != self._head:  # pragma: no cover - the fields before events are fixed
            raise AssertionError("document fields before `events` changed while writing")
        self._write(tail)
        return self._digest.hexdigest()
