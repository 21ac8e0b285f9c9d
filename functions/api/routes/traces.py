"""Traces: create, read, list, finalize."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from functions.api.dependencies import Events, Ingest, Once, Results, require
from functions.api.models import EventPageView, ResultLink, TracePage, TraceView, answer
from functions.api.routes.responses import json_response
from prtrace.ingest.service import TRACE_ID_PATTERN, FinalizeRequest, IngestService
from prtrace.results.events import DEFAULT_PAGE_EVENTS, MAX_PAGE_EVENTS
from prtrace.results.products import ResultName, TraceResults
from prtrace.schema import TraceMetadata

router = Router()

# Not pattern-checked here: an id that is not one we could have issued is simply not found
# (404), like another tenant's trace.
TraceId = Annotated[str, Path(description=f"trace id, {TRACE_ID_PATTERN}")]


@router.post(
    "/v1/traces",
    summary="Create a trace",
    responses=answer(201, TraceView, "Created (Location: the trace)"),
)
def create_trace(
    metadata: Annotated[TraceMetadata, Body(embed=False)], ingest: Ingest, once: Once
) -> Response[str]:
    caller = require(router, "ingest")
    body = metadata.model_dump(mode="json")

    def create() -> dict[str, object]:
        return ingest.create_trace(caller.tenant, metadata).public()

    result = once.run(router, caller.tenant, "create_trace", "-", body, create)
    return json_response(201, result, {"Location": f"/v1/traces/{result['trace_id']}"})


@router.get(
    "/v1/traces",
    summary="List the caller's traces, newest first",
    description="Items are trace views with only the headline of an outcome (QA verdict, "
    "judge status and overall score, failure stage); GET the trace for all of it.",
    responses=answer(200, TracePage, "A page of traces"),
)
def list_traces(
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    next_token: Annotated[str | None, Query(pattern=TRACE_ID_PATTERN)] = None,
    *,
    ingest: Ingest,
) -> Response[str]:
    caller = require(router, "read")
    page = ingest.list_traces(caller.tenant, limit, next_token)
    return json_response(
        200, {"items": [t.public(brief=True) for t in page.items], "next_token": page.next_token}
    )


@router.get(
    "/v1/traces/<trace_id>",
    summary="Get a trace's status, counts and, once its pipeline ended, its outcome",
    description=(
        "Status: open, finalizing, assembling, testing, judging, then complete, rejected or "
        "failed. A complete trace has `outcome` (QA verdict and test lists, judge scores "
        "with rationales, metrics, event chain head) and `links` to its results; a rejected "
        "one the reason; a failed one the stage, error and cause."
    ),
    responses=answer(200, TraceView, "The trace", _404="No such trace for this caller"),
)
def get_trace(trace_id: TraceId, ingest: Ingest) -> Response[str]:
    caller = require(router, "read")
    return json_response(200, ingest.get_trace(caller.tenant, trace_id).public())


_RESULT_RESPONSES: dict[int, OpenAPIResponse] = answer(
    200,
    ResultLink,
    "A download link",
    _404="No such trace for this caller",
    _409="Not produced yet, or never for this trace "
    "(type urn:prtrace:problem:result-not-available)",
)


def _result_link(
    trace_id: str, result: ResultName, ingest: IngestService, results: TraceResults
) -> Response[str]:
    caller = require(router, "read")
    trace = ingest.get_trace(caller.tenant, trace_id)
    return json_response(200, results.link(trace, result))


@router.get(
    "/v1/traces/<trace_id>/document",
    summary="Link to the assembled trace document",
    responses=_RESULT_RESPONSES,
)
def get_document(trace_id: TraceId, ingest: Ingest, results: Results) -> Response[str]:
    return _result_link(trace_id, "document", ingest, results)


@router.get(
    "/v1/traces/<trace_id>/qa-report",
    summary="Link to the QA report (test outcomes before and after the fix)",
    responses=_RESULT_RESPONSES,
)
def get_qa_report(trace_id: TraceId, ingest: Ingest, results: Results) -> Response[str]:
    return _result_link(trace_id, "qa_report", ingest, results)


@router.get(
    "/v1/traces/<trace_id>/judge-result",
    summary="Link to the judge result (scores and rationales)",
    responses=_RESULT_RESPONSES,
)
def get_judge_result(trace_id: TraceId, ingest: Ingest, results: Results) -> Response[str]:
    return _result_link(trace_id, "judge_result", ingest, results)


@router.get(
    "/v1/traces/<trace_id>/events",
    summary="A range of an assembled trace's events, by seq",
    description=(
        "Events `from_seq` to `from_seq + limit - 1` in seq order, as stored (fewer at the "
        "end of the trace, or when a page reaches 4 MiB); `next_from_seq` starts the next "
        "page. Served once the trace is assembled (the events its document and chain cover)."
    ),
    responses=answer(
        200,
        EventPageView,
        "A page of events",
        _404="No such trace for this caller",
        _409="The trace is not assembled (yet, or ever) "
        "(type urn:prtrace:problem:result-not-available)",
        _422="from_seq past the end of the trace, or limit out of range",
    ),
)
def get_events(
    trace_id: TraceId,
    from_seq: Annotated[int, Query(ge=0, description="seq of the first event")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_EVENTS)] = DEFAULT_PAGE_EVENTS,
    *,
    ingest: Ingest,
    events: Events,
) -> Response[str]:
    caller = require(router, "read")
    trace = ingest.get_trace(caller.tenant, trace_id)
    return json_response(200, events.page(trace, from_seq, limit).public())


@router.post(
    "/v1/traces/<trace_id>/finalize",
    summary="Finalize a trace",
    responses=answer(
        202,
        TraceView,
        "Accepted: the trace is finalizing and its pipeline started (the same finalize "
        "again answers the trace as it is now)",
        _404="No such trace for this caller",
        _409="Chunks missing, or the trace was finalized differently",
    ),
)
def finalize_trace(
    trace_id: TraceId,
    request: Annotated[FinalizeRequest, Body(embed=False)],
    ingest: Ingest,
    once: Once,
) -> Response[str]:
    caller = require(router, "ingest")

    def finalize() -> dict[str, object]:
        return ingest.finalize(
            caller.tenant,
            trace_id,
            request.expected_chunks,
            request.snapshots,
            request.redactions,
        ).public()

    result = once.run(
        router, caller.tenant, "finalize", trace_id, request.model_dump(mode="json"), finalize
    )
    return json_response(202, result)
