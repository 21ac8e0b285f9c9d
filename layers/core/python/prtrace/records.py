"""What the stores keep about traces and chunks (plain data; no storage details)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

# open -> finalizing -> assembling -> testing -> judging -> complete | rejected | failed.
# The API writes open and finalizing, the state machine the progress statuses, and only
# the Record step a terminal one.
TraceStatus = Literal[
    "open", "finalizing", "assembling", "testing", "judging", "complete", "rejected", "failed"
]
TerminalStatus = Literal["complete", "rejected", "failed"]
OPEN: Final = "open"
FINALIZING: Final = "finalizing"
ASSEMBLING: Final = "assembling"
TESTING: Final = "testing"
JUDGING: Final = "judging"
COMPLETE: Final = "complete"
REJECTED: Final = "rejected"
FAILED: Final = "failed"
# Finalized, with the pipeline still to record how it ended.
IN_PIPELINE: Final[tuple[str, ...]] = (FINALIZING, ASSEMBLING, TESTING, JUDGING)
TERMINAL: Final[tuple[str, ...]] = (COMPLETE, REJECTED, FAILED)

RESULT_ROUTES: Final = {
    "document": "document",
    "qa_report": "qa-report",
    "judge_result": "judge-result",
}


def result_links(trace_id: str) -> dict[str, str]:
    """Where a client fetches the pipeline's products (each answers with a presigned URL)."""
    return {name: f"/v1/traces/{trace_id}/{route}" for name, route in RESULT_ROUTES.items()}


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
    # How the pipeline ended (prtrace.pipeline.outcome builds it, bounded); None until terminal.
    outcome: dict[str, Any] | None = None

    def public(self, brief: bool = False) -> dict[str, Any]:
        """The API's view of a trace (never the tenant: callers know their own). `brief`
        (list pages) keeps only the headline of the outcome, so a page of 100 traces stays
        small; the trace's own view has all of it."""
        view: dict[str, Any] = {
            "trace_id": self.trace_id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": rfc3339_ms(self.updated_at),
            "chunks_received": self.chunk_count,
            "events_received": self.event_count,
            "metadata": self.metadata,
        }
        if self.finalize is not None:
            view["finalize"] = self.finalize
        if self.outcome is not None:
            view["outcome"] = _headline(self.status, self.outcome) if brief else self.outcome
        if self.status == COMPLETE:
            links: dict[str, str | None] = dict(result_links(self.trace_id))
            if (self.outcome or {}).get("qa_skipped"):
                links["qa_report"] = None  # QA did not run: there is no report to fetch
            view["links"] = links
        return view


def _headline(status: str, outcome: dict[str, Any]) -> dict[str, Any]:
    if status == COMPLETE:
        qa, judge = outcome.get("qa"), outcome.get("judge") or {}
        return {
            "qa": None if qa is None else {k: qa.get(k) for k in ("verdict", "error_reason")},
            "qa_skipped": outcome.get("qa_skipped"),
            "judge": {
                **{k: judge.get(k) for k in ("status", "overall", "judge")},
                "stand_in_overall": (judge.get("stand_in") or {}).get("overall"),
            },
        }
    if status == FAILED:
        return {k: outcome.get(k) for k in ("stage", "error")}
    return outcome  # rejected: the reason is already short


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
class ChunkNeighbourhood:
    """What a new chunk must fit with: the stored chunk at its seq (a replay), and the
    nearest stored chunks below and above it, with their event ids. Reading it costs the
    same at chunk 1 and at chunk 10,000."""

    below: ChunkRecord | None
    same: ChunkRecord | None
    above: ChunkRecord | None


@dataclass(frozen=True)
class Page:
    items: list[TraceRecord]
    next_token: str | None


def rfc3339_ms(moment: str) -> str:
    """`moment` as every time the API shows: UTC, milliseconds, `Z`. The state machine
    stamps its status changes with Step Functions' own clock format (microseconds, or an
    offset, depending on the engine), the services with prtrace.ingest.service.utc_timestamp; read
    back, they look the same. Text that is not a time is shown as it is."""
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
