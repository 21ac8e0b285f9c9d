"""Traces: create, read, list, finalize."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from functions.api.dependencies import ingest_service, require, run_idempotent
from functions.api.routes.responses import json_response
from prtrace.ingest import TRACE_ID_PATTERN, FinalizeRequest
from prtrace.schema import TraceMetadata

router = Router()

# Not pattern-checked here: an id that is not one we could have issued is simply not found
# (404), like another tenant's trace.
TraceId = Annotated[str, Path(description=f"trace id, {TRACE_ID_PATTERN}")]


@router.post("/v1/traces", summary="Create a trace", responses={201: {"description": "Created"}})
def create_trace(metadata: Annotated[TraceMetadata, Body(embed=False)]) -> Response[str]:
    caller = require(router, "ingest")
    body = metadata.model_dump(mode="json")

    def create() -> dict[str, object]:
        return ingest_service().create_trace(caller.tenant, metadata).public()

    result = run_idempotent(router, caller.tenant, "create_trace", "-", body, create)
    return json_response(201, result, {"Location": f"/v1/traces/{result['trace_id']}"})


@router.get("/v1/traces", summary="List the caller's traces, newest first")
def list_traces(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    next_token: Annotated[str | None, Query(pattern=TRACE_ID_PATTERN)] = None,
) -> Response[str]:
    caller = require(router, "read")
    page = ingest_service().list_traces(caller.tenant, limit, next_token)
    return json_response(
        200, {"items": [t.public() for t in page.items], "next_token": page.next_token}
    )


@router.get("/v1/traces/<trace_id>", summary="Get a trace's status and counts")
def get_trace(trace_id: TraceId) -> Response[str]:
    caller = require(router, "read")
    return json_response(200, ingest_service().get_trace(caller.tenant, trace_id).public())


@router.post(
    "/v1/traces/<trace_id>/finalize",
    summary="Finalize a trace",
    responses={202: {"description": "Accepted: the trace is finalizing"}},
)
def finalize_trace(
    trace_id: TraceId, request: Annotated[FinalizeRequest, Body(embed=False)]
) -> Response[str]:
    caller = require(router, "ingest")

    def finalize() -> dict[str, object]:
        return (
            ingest_service()
            .finalize(
                caller.tenant,
                trace_id,
                request.expected_chunks,
                request.snapshots,
                request.redactions,
            )
            .public()
        )

    result = run_idempotent(
        router, caller.tenant, "finalize", trace_id, request.model_dump(mode="json"), finalize
    )
    return json_response(202, result)
