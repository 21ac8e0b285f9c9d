"""The API's OpenAPI document, generated from the routes and models (never edited by hand).

Powertools derives paths, parameters and the small JSON bodies from the route signatures.
What it cannot see is added here: the chunk body (validated by the domain for speed), the
problem+json error shape, bearer authentication and API Gateway's own 401/403 answers.
Answers are documented per route with `functions.api.models.answer`.

    python -m functions.api.openapi > functions/api/openapi.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic.json_schema import models_json_schema

from functions.api.handler import app
from prtrace.api_paths import FORBIDDEN, PUBLIC_PATHS, UNAUTHORIZED
from prtrace.json_schema import NUMBERS_NOTE
from prtrace.schema import ChunkBody

COMMITTED_PATH = Path(__file__).with_name("openapi.json")
TITLE = "prtrace API"
VERSION = "1.0.0"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "description": "stable URN, e.g. urn:prtrace:problem:chunk-conflict",
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong and what to do"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "detail"],
                "properties": {
                    "pointer": {"type": "string", "description": "RFC 6901"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


# API Gateway answers 401/403 itself when the authorizer refuses a request.
GATEWAY_MESSAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "API Gateway's own answer (not a problem document)",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description="Capture, verify, test and score bug-fixing sessions. Bodies are UTF-8 "
            f"JSON (application/json or any +json type); {NUMBERS_NOTE}",
        )
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _, chunk_defs = models_json_schema(
        [(ChunkBody, "validation")], ref_template="#/components/schemas/{model}"
    )
    schemas.update(chunk_defs.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.pop("ResponseValidationError", None)  # Powertools' own; never answered
    schemas["GatewayMessage"] = GATEWAY_MESSAGE_SCHEMA
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "prt_<id>_<secret>"}
    }
    gateway_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayMessage"}}}
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["4XX"] = {
                "description": "Client error (problem details)",
                "content": problem_ref,
            }
            responses["5XX"] = {
                "description": "Server error (problem details)",
                "content": problem_ref,
            }
            if path not in PUBLIC_PATHS:
                operation["security"] = [{"bearer": []}]
                responses[str(UNAUTHORIZED[0])] = {
                    "description": "No bearer token (answered by API Gateway)",
                    "content": gateway_ref,
                }
                responses[str(FORBIDDEN[0])] = {
                    "description": "Token refused (API Gateway), or it lacks the route's "
                    "scope (problem type urn:prtrace:problem:insufficient-scope)",
                    "content": gateway_ref | problem_ref,
                }
            if method == "put" and path.endswith("/chunks/{chunk_seq}"):
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ChunkBody"}}
                    },
                }
    return document


def render() -> bytes:
    return (
        orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


if __name__ == "__main__":
    sys.stdout.buffer.write(render())
