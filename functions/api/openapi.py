"""The API's OpenAPI document, generated from the routes and models (never edited by hand).

Powertools derives paths, parameters and the small JSON bodies from the route signatures.
Three things it cannot see are added here: the chunk body (validated by the domain for
speed), the problem+json error shape, and bearer authentication.

    python -m functions.api.openapi > functions/api/openapi.json
"""

from __future__ import annotations

import sys
from typing import Any

import orjson
from pydantic.json_schema import models_json_schema

from functions.api.handler import app
from prtrace.schema import ChunkBody

TITLE = "prtrace API"
VERSION = "1.0.0"
_PUBLIC = {"/healthz", "/readyz"}

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


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description="Capture, verify, test and score bug-fixing sessions.",
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
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "prt_<id>_<secret>"}
    }
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
            if path not in _PUBLIC:
                operation["security"] = [{"bearer": []}]
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
