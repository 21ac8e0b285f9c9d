"""One place that maps errors to RFC 9457 problem+json responses.

`type` is a stable URN per kind of problem (clients switch on it); `detail` says what to
do; validation problems list each bad field as a JSON pointer into the request body.
"""

from __future__ import annotations

from typing import Any

import orjson
from aws_lambda_powertools.event_handler import Response

from prtrace import errors as e

PROBLEM_CONTENT_TYPE = "application/problem+json"

# error class -> (status, type slug, title)
_PROBLEMS: dict[type[e.DomainError], tuple[int, str, str]] = {
    e.InvalidInput: (422, "validation-error", "Request body or parameters are invalid"),
    e.PayloadTooLarge: (413, "payload-too-large", "Request body is too large"),
    e.TraceNotFound: (404, "trace-not-found", "Trace not found"),
    e.ArtifactNotFound: (404, "artifact-not-found", "Artifact not found"),
    e.ChunkNotFound: (404, "chunk-not-found", "Chunk not found"),
    e.TraceNotOpen: (409, "trace-not-open", "Trace no longer accepts changes"),
    e.ChunkConflict: (409, "chunk-conflict", "A different chunk is stored under this seq"),
    e.SeqDiscontinuity: (409, "seq-discontinuity", "Chunk does not continue its neighbour"),
    e.DuplicateEventIds: (409, "duplicate-event-id", "Event id already used in this trace"),
    e.IncompleteTrace: (409, "incomplete-trace", "Trace is incomplete"),
    e.FinalizeConflict: (409, "finalize-conflict", "Trace was finalized differently"),
    e.ArtifactConflict: (409, "artifact-conflict", "Artifact conflicts with a stored one"),
    e.MissingScope: (403, "insufficient-scope", "Token lacks a required scope"),
    e.ResultNotAvailable: (409, "result-not-available", "Result is not available"),
    e.PipelineNotStarted: (503, "pipeline-not-started", "Trace pipeline could not be started"),
    e.ExportNotFound: (404, "export-not-found", "Export not found"),
    e.ExportNotStarted: (503, "export-not-started", "Export job could not be started"),
}


class Unauthenticated(e.DomainError):
    pass


class IdempotencyKeyReused(e.DomainError):
    pass


class RequestInProgress(e.DomainError):
    pass


_PROBLEMS |= {
    Unauthenticated: (401, "unauthenticated", "Missing or invalid credentials"),
    IdempotencyKeyReused: (
        422,
        "idempotency-key-reused",
        "Idempotency-Key was already used with a different request",
    ),
    RequestInProgress: (
        409,
        "request-in-progress",
        "A request with this Idempotency-Key is still in progress",
    ),
    e.StoreBusy: (503, "store-busy", "Storage is busy with concurrent writes"),
}


def problem(
    status: int, slug: str, title: str, detail: str, instance: str | None = None, **extensions: Any
) -> Response[str]:
    body: dict[str, Any] = {
        "type": f"urn:prtrace:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = e.echoed(instance, 512)
    body.update({k: v for k, v in extensions.items() if v is not None})
    retry = status == 503 or slug == "request-in-progress"
    headers = {"Retry-After": "1"} if retry else None
    return Response(
        status_code=status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=orjson.dumps(body).decode(),
        headers=headers,
    )


def _extensions(error: e.DomainError) -> dict[str, Any]:
    match error:
        case e.InvalidInput():
            return {"errors": [{"pointer": f.pointer, "detail": f.message} for f in error.errors]}
        case e.PayloadTooLarge():
            return {"limit_bytes": error.limit}
        case e.ChunkConflict():
            return {
                "chunk_seq": error.chunk_seq,
                "stored_sha256": error.stored_sha256,
                "sent_sha256": error.sent_sha256,
            }
        case e.SeqDiscontinuity():
            pointed = (
                [{"pointer": error.pointer, "detail": error.detail}] if error.pointer else None
            )
            return {
                "expected_seq": error.expected_seq,
                "neighbour_chunk": error.neighbour_chunk,
                "errors": pointed,
            }
        case e.DuplicateEventIds():
            return {
                "duplicates": [
                    {"event_id": k, "chunk_seq": v} for k, v in list(error.duplicates.items())[:100]
                ]
            }
        case e.IncompleteTrace():
            return {
                "missing_chunks": error.missing_chunks[:1000],
                "unexpected_chunks": error.unexpected_chunks[:1000],
            }
        case e.TraceNotOpen():
            return {"trace_status": error.status}
        case e.MissingScope():
            return {"required_scope": error.scope}
        case e.ResultNotAvailable():
            return {"result": error.result, "trace_status": error.status}
    return {}


def from_domain_error(error: e.DomainError, instance: str | None = None) -> Response[str]:
    for cls in type(error).__mro__:
        if cls in _PROBLEMS:
            status, slug, title = _PROBLEMS[cls]
            return problem(status, slug, title, error.detail, instance, **_extensions(error))
    return problem(500, "internal-error", "Internal error", "unexpected error", instance)
