from pathlib import Path

import orjson

from functions.api.openapi import render

COMMITTED = Path(__file__).resolve().parents[2] / "functions" / "api" / "openapi.json"


def test_committed_openapi_matches_the_code():
    assert COMMITTED.read_bytes() == render(), (
        "functions/api/openapi.json is stale: run `make openapi` and commit the result"
    )


def test_openapi_documents_every_route_and_the_chunk_body():
    document = orjson.loads(COMMITTED.read_bytes())
    assert set(document["paths"]) == {
        "/v1/traces",
        "/v1/traces/{trace_id}",
        "/v1/traces/{trace_id}/chunks/{chunk_seq}",
        "/v1/traces/{trace_id}/artifacts",
        "/v1/traces/{trace_id}/finalize",
        "/healthz",
        "/readyz",
    }
    put = document["paths"]["/v1/traces/{trace_id}/chunks/{chunk_seq}"]["put"]
    schema_ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref == "#/components/schemas/ChunkBody"
    assert "ChunkBody" in document["components"]["schemas"]
    assert put["security"] == [{"bearer": []}]
