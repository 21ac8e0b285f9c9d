"""Dataset exports: ask for one (a job writes it to S3), then read its status and links."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from functions.api.dependencies import Exports, Once, require
from functions.api.models import ExportView, answer
from functions.api.routes.responses import json_response
from prtrace.clock import utc_now
from prtrace.dataset.exports import EXPORT_ID_PATTERN, ExportRequest

router = Router()

# Not pattern-checked: an id we could not have issued is simply not found (404).
ExportId = Annotated[str, Path(description=f"export id, {EXPORT_ID_PATTERN}")]


@router.post(
    "/v1/exports",
    summary="Export the caller's traces as a dataset, written by a job to S3",
    description=(
        "The same formats and filter as `prtrace export` (SWE-bench-style instances JSONL, "
        "events JSONL, Parquet), for exports too large to read trace by trace through the "
        "API. Answers at once with the export's id; poll GET /v1/exports/{export_id} until "
        "its status is complete (links to each file, the manifest and its signature) or "
        "failed (why)."
    ),
    responses=answer(202, ExportView, "Accepted (Location: the export)"),
)
def create_export(
    request: Annotated[ExportRequest, Body(embed=False)], exports: Exports, once: Once
) -> Response[str]:
    caller = require(router, "read")
    body = request.model_dump(mode="json")

    def start() -> dict[str, object]:
        return exports.start(caller.tenant, request, utc_now())

    result = once.run(router, caller.tenant, "create_export", "-", body, start)
    return json_response(202, result, {"Location": f"/v1/exports/{result['export_id']}"})


@router.get(
    "/v1/exports/<export_id>",
    summary="Get an export's status and, once complete, its manifest and download links",
    responses=answer(200, ExportView, "The export", _404="No such export for this caller"),
)
def get_export(export_id: ExportId, exports: Exports) -> Response[str]:
    caller = require(router, "read")
    return json_response(200, exports.get(caller.tenant, export_id))
