"""Artifacts: large blobs (diffs, logs, workspace snapshots) uploaded straight to S3."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from functions.api.dependencies import Ingest, Once, Results, require
from functions.api.models import ArtifactUpload, ResultLink, answer
from functions.api.routes.responses import json_response
from functions.api.routes.traces import TraceId
from prtrace.ingest.service import ArtifactRequest

router = Router()


@router.post(
    "/v1/traces/<trace_id>/artifacts",
    summary="Get a presigned upload bound to the artifact's SHA-256 and size",
    responses=answer(
        201,
        ArtifactUpload,
        "Upload URL issued, or the artifact is already present",
        _404="No such trace for this caller",
        _409="The trace no longer accepts artifacts",
    ),
)
def request_artifact_upload(
    trace_id: TraceId,
    request: Annotated[ArtifactRequest, Body(embed=False)],
    service: Ingest,
    once: Once,
) -> Response[str]:
    caller = require(router, "ingest")
    # The key guards the request (a reused key with another body is refused), but the
    # answer is computed afresh every time: the upload URL expires, and once uploaded the
    # artifact is reported present. Requests are idempotent by content anyway.
    once.run(
        router,
        caller.tenant,
        "artifact",
        trace_id,
        request.model_dump(mode="json"),
        lambda: service.artifact_ref(caller.tenant, trace_id, request),
    )
    return json_response(201, service.request_artifact_upload(caller.tenant, trace_id, request))


@router.get(
    "/v1/traces/<trace_id>/artifacts/<sha256>",
    summary="Link to an artifact of the trace (a presigned GET), by its SHA-256",
    responses=answer(
        200,
        ResultLink,
        "A download link",
        _404="No such trace for this caller, or no such artifact in it",
    ),
)
def get_artifact(
    trace_id: TraceId,
    sha256: Annotated[str, Path(description="lowercase hex SHA-256 of the artifact")],
    ingest: Ingest,
    results: Results,
) -> Response[str]:
    caller = require(router, "read")
    trace = ingest.get_trace(caller.tenant, trace_id)
    return json_response(200, results.artifact_link(trace, sha256))
