"""Domain errors. They say what is wrong in the caller's terms; functions/api/problems.py
maps each one to an HTTP status and an RFC 9457 problem type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    pointer: str  # RFC 6901 JSON pointer into the request body ("" = the whole body)
    message: str


class DomainError(Exception):
    """Base class; `detail` is a sentence a human can act on."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(detail)
        self.errors = list(errors)


class PayloadTooLarge(DomainError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"request body is {size} bytes; the limit is {limit} bytes")
        self.limit = limit


MAX_ECHOED_CHARS = 128


def echoed(text: str, limit: int = MAX_ECHOED_CHARS) -> str:
    """What a problem repeats of a client's input: at most `limit` characters (an id can be
    anything up to the request's size; repeating 30 KB of it helps no one)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


class TraceNotFound(DomainError):
    def __init__(self, trace_id: str) -> None:
        super().__init__(f"trace {echoed(trace_id)} does not exist")


class TraceNotOpen(DomainError):
    def __init__(self, trace_id: str, status: str) -> None:
        super().__init__(f"trace {trace_id} is {status}; it no longer accepts changes")
        self.status = status


class ChunkConflict(DomainError):
    """A different body was sent for a chunk seq that is already stored."""

    def __init__(self, chunk_seq: int, stored_sha256: str, sent_sha256: str) -> None:
        super().__init__(
            f"chunk {chunk_seq} is already stored with a different body "
            f"(stored sha256 {stored_sha256}, sent {sent_sha256}); stored chunks are immutable"
        )
        self.chunk_seq = chunk_seq
        self.stored_sha256 = stored_sha256
        self.sent_sha256 = sent_sha256


class SeqDiscontinuity(DomainError):
    """The chunk's events cannot continue the event seq of the stored chunks around it."""

    def __init__(
        self, detail: str, *, expected_seq: int, neighbour_chunk: int, pointer: str | None
    ) -> None:
        super().__init__(detail)
        self.expected_seq = expected_seq
        self.neighbour_chunk = neighbour_chunk
        self.pointer = pointer  # into the chunk body, when the error is about one


class DuplicateEventIds(DomainError):
    """Event ids already used by a stored chunk of the same trace."""

    def __init__(self, duplicates: dict[str, int]) -> None:
        shown = ", ".join(
            f"{event_id} (chunk {seq})" for event_id, seq in list(duplicates.items())[:10]
        )
        super().__init__(f"{len(duplicates)} event id(s) already stored in this trace: {shown}")
        self.duplicates = duplicates


class IncompleteTrace(DomainError):
    def __init__(
        self, detail: str, missing_chunks: Sequence[int], unexpected_chunks: Sequence[int]
    ) -> None:
        super().__init__(detail)
        self.missing_chunks = list(missing_chunks)
        self.unexpected_chunks = list(unexpected_chunks)


class FinalizeConflict(DomainError):
    pass


class ArtifactConflict(DomainError):
    pass


class StoreBusy(DomainError):
    """Storage refused a write for a transient reason (contention); safe to retry."""


class MissingScope(DomainError):
    def __init__(self, scope: str) -> None:
        super().__init__(f"this token lacks the {scope!r} scope needed for this request")
        self.scope = scope


class PipelineNotStarted(DomainError):
    """The trace is finalized but its pipeline could not be started; retrying the same
    finalize starts it."""


class ExportNotStarted(DomainError):
    """A dataset export was recorded but its job could not be started; asking again
    starts a new one."""


class ExportNotFound(DomainError):
    def __init__(self, export_id: str) -> None:
        super().__init__(f"export {echoed(export_id)} does not exist")


class ArtifactNotFound(DomainError):
    """No artifact with this SHA-256 was uploaded to the trace."""

    def __init__(self, trace_id: str, sha256: str) -> None:
        super().__init__(f"trace {trace_id} has no artifact with SHA-256 {echoed(sha256)}")


class ChunkNotFound(DomainError):
    """No chunk with this seq is stored in the trace."""

    def __init__(self, trace_id: str, chunk_seq: int) -> None:
        super().__init__(f"trace {trace_id} has no chunk {chunk_seq}")


class ResultNotAvailable(DomainError):
    """A pipeline product (document, QA report, judge result) does not exist: not yet, or
    never for this trace."""

    def __init__(self, detail: str, *, result: str, status: str) -> None:
        super().__init__(detail)
        self.result = result
        self.status = status
