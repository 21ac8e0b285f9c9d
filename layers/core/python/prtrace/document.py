"""The assembled trace document: what the pipeline's Assemble step writes to S3.

One JSON document per finalized trace: the metadata, every event in seq order, the
event-chain head that proves them, the workspace snapshots (if any) and computed metrics.
The judge and dataset builders read this, never the raw chunks.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict

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
