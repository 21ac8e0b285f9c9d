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
        "/v1/traces/{trace_id}/artifacts/{sha256}",
        "/v1/traces/{trace_id}/finalize",
        "/v1/traces/{trace_id}/document",
        "/v1/traces/{trace_id}/qa-report",
        "/v1/traces/{trace_id}/judge-result",
        "/v1/traces/{trace_id}/manifest",
        "/v1/traces/{trace_id}/attestation",
        "/v1/keys",
        "/v1/exports",
        "/v1/exports/{export_id}",
        "/v1/traces/{trace_id}/events",
        "/healthz",
        "/readyz",
    }
    assert "security" not in document["paths"]["/v1/keys"]["get"]  # public, like /healthz
    assert document["paths"]["/v1/traces/{trace_id}/chunks/{chunk_seq}"]["get"]["security"] == [
        {"bearer": []}
    ]
    put = document["paths"]["/v1/traces/{trace_id}/chunks/{chunk_seq}"]["put"]
    schema_ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref == "#/components/schemas/ChunkBody"
    assert "ChunkBody" in document["components"]["schemas"]
    assert put["security"] == [{"bearer": []}]


def test_result_links_document_their_answer_and_problems():
    document = orjson.loads(COMMITTED.read_bytes())
    link = document["paths"]["/v1/traces/{trace_id}/qa-report"]["get"]
    ok = link["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok == "#/components/schemas/ResultLink"
    assert set(document["components"]["schemas"]["ResultLink"]["properties"]) == {
        "url",
        "expires_in",
    }
    for status in ("404", "409"):
        content = link["responses"][status]["content"]
        assert (
            content["application/problem+json"]["schema"]["$ref"] == "#/components/schemas/Problem"
        )
    assert link["security"] == [{"bearer": []}]


def test_every_answer_has_its_real_schema():
    document = orjson.loads(COMMITTED.read_bytes())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                assert response.get("content"), (method, path, status)
                for media_type, content in response["content"].items():
                    schema = content["schema"]
                    # answers are objects: never the `string` a `Response[str]` annotation gives
                    assert "$ref" in schema, (method, path, status, media_type, schema)
                    if status.startswith("2"):
                        assert media_type == "application/json"
                    elif media_type != "application/json":
                        assert schema["$ref"] == "#/components/schemas/Problem"


def test_success_answers_name_their_models():
    document = orjson.loads(COMMITTED.read_bytes())
    ref = "#/components/schemas/"

    def answer(path: str, method: str, status: str) -> str:
        content = document["paths"][path][method]["responses"][status]["content"]
        return content["application/json"]["schema"]["$ref"].removeprefix(ref)

    assert answer("/v1/traces", "post", "201") == "TraceView"
    assert answer("/v1/traces", "get", "200") == "TracePage"
    assert answer("/v1/traces/{trace_id}", "get", "200") == "TraceView"
    assert answer("/v1/traces/{trace_id}/chunks/{chunk_seq}", "put", "201") == "ChunkReceipt"
    assert answer("/v1/traces/{trace_id}/artifacts", "post", "201") == "ArtifactUpload"
    assert answer("/v1/traces/{trace_id}/finalize", "post", "202") == "TraceView"
    assert answer("/healthz", "get", "200") == "Liveness"
    assert answer("/readyz", "get", "503") == "Readiness"
