"""Provenance routes: the public signing keys (JWKS, no authentication, like /healthz) and
links to what `prtrace download` puts in a trace bundle beyond the results: the signed
manifest, its DSSE envelope and each chunk's stored body."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from functions.api.dependencies import Ingest, Keys, Results, require
from functions.api.models import KeySet, ResultLink, answer
from functions.api.routes.responses import json_response
from functions.api.routes.traces import _RESULT_RESPONSES, TraceId, _result_link

router = Router()


@router.get(
    "/v1/keys",
    summary="The public keys that sign trace manifests (JWKS, RFC 7517)",
    description=(
        "No authentication: anyone holding a downloaded trace bundle verifies it with these "
        "keys, offline (`prtrace verify BUNDLE --key keys.json`). The current key comes "
        "first; keys rotated out stay listed so the bundles they signed still verify."
    ),
    responses=answer(200, KeySet, "The key set"),
)
def get_keys(keys: Keys) -> Response[str]:
    response = json_response(200, keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@router.get(
    "/v1/traces/<trace_id>/manifest",
    summary="Link to the trace manifest (canonical JSON: every digest the trace is made of)",
    responses=_RESULT_RESPONSES,
)
def get_manifest(trace_id: TraceId, ingest: Ingest, results: Results) -> Response[str]:
    return _result_link(trace_id, "manifest", ingest, results)


@router.get(
    "/v1/traces/<trace_id>/attestation",
    summary="Link to the manifest's signature: a DSSE envelope over an in-toto Statement",
    responses=_RESULT_RESPONSES,
)
def get_attestation(trace_id: TraceId, ingest: Ingest, results: Results) -> Response[str]:
    return _result_link(trace_id, "attestation", ingest, results)


@router.get(
    "/v1/traces/<trace_id>/chunks/<chunk_seq>",
    summary="Link to a stored chunk's canonical body (its SHA-256 is in the manifest)",
    responses=answer(
        200,
        ResultLink,
        "A download link",
        _404="No such trace for this caller, or no such chunk in it",
    ),
)
def get_chunk(
    trace_id: TraceId,
    chunk_seq: Annotated[int, Path(ge=0, le=1_000_000, description="chunk seq, from 0")],
    ingest: Ingest,
    results: Results,
) -> Response[str]:
    caller = require(router, "read")
    trace = ingest.get_trace(caller.tenant, trace_id)
    chunk = ingest.get_chunk(caller.tenant, trace.trace_id, chunk_seq)
    return json_response(200, results.chunk_link(chunk))
