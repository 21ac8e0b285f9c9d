"""Chunks: the streamed events of a trace, one immutable PUT per chunk seq."""

import base64
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit

from functions.api.dependencies import Ingest, require
from functions.api.models import ChunkReceipt, answer
from functions.api.routes.responses import json_response
from functions.api.routes.traces import TraceId
from functions.api.telemetry import metrics
from prtrace import cloudwatch_names as names
from prtrace.errors import FieldError, InvalidInput, echoed
from prtrace.ingest.service import MAX_CHUNK_SEQ

router = Router()


@router.put(
    "/v1/traces/<trace_id>/chunks/<chunk_seq>",
    summary="Store one chunk of events (idempotent: the same body again gets the same answer)",
    responses=answer(
        201,
        ChunkReceipt,
        "Stored (or already stored with this exact body: Idempotent-Replayed: true)",
        _404="No such trace for this caller",
        _409="A different chunk is stored under this seq, or the chunk does not fit the trace",
    ),
)
def put_chunk(
    trace_id: TraceId,
    chunk_seq: Annotated[
        int, Path(ge=0, le=MAX_CHUNK_SEQ, description="canonical decimal: 1, not 01 or 1.0")
    ],
    ingest: Ingest,
) -> Response[str]:
    _canonical_seq(chunk_seq)
    caller = require(router, "ingest")
    # The body is validated by the domain, not the router: it parses and canonicalizes in
    # one pass (see prtrace.ingest.chunks). Its schema is added to the OpenAPI document by hand.
    outcome = ingest.put_chunk(caller.tenant, trace_id, chunk_seq, _raw_body())
    if not outcome.replayed:
        metrics.add_metric(name=names.CHUNKS_STORED, unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name=names.EVENTS_STORED, unit=MetricUnit.Count, value=outcome.chunk.event_count
        )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return json_response(201, outcome.chunk.receipt(), headers)


def _canonical_seq(chunk_seq: int) -> None:
    """`01`, `+1` and `1.0` all read as 1; a chunk has one name, its canonical decimal."""
    # As sent: the last path segment (routes match the path; the event may have no
    # pathParameters, e.g. behind a $default route).
    sent = router.current_event.path.rsplit("/", 1)[-1]
    if sent != str(chunk_seq):
        raise InvalidInput(
            f"chunk_seq {echoed(sent, 32)!r} is not a canonical non-negative decimal integer "
            f"(no sign, leading zero, fraction or exponent): send {chunk_seq}",
            [FieldError("/path/chunk_seq", "not a canonical non-negative decimal integer")],
        )


def _raw_body() -> bytes:
    """The body as bytes, whatever the client sent (bad UTF-8 is the parser's to report)."""
    event = router.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode()
