"""HTTP API Lambda: routing, error mapping and request limits. Logic lives in prtrace."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api import dependencies, problems
from functions.api.routes import artifacts, chunks, exports, health, provenance, traces
from functions.api.telemetry import logger, metrics, tracer
from prtrace.errors import DomainError, FieldError, InvalidInput, echoed
from prtrace.heap import settle_after_init
from prtrace.ingest.service import MAX_CHUNK_BODY_BYTES, MAX_SMALL_BODY_BYTES
from prtrace.validation import field_errors, load_json, summarize

JSON_MEDIA_TYPE = "application/json"

# orjson: faster, and a too-long integer is a JSON error (422), not a ValueError (500);
# load_json reads 3.0 as the integer 3, as the documented JSON Schema does.
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=load_json)
for module in (traces, chunks, artifacts, health, provenance, exports):
    app.include_router(module.router)


@app.exception_handler(DomainError)
def _domain_error(error: DomainError) -> Response[str]:
    return problems.from_domain_error(error, app.current_event.path)


@app.exception_handler(RequestValidationError)
def _validation_error(error: RequestValidationError) -> Response[str]:
    errors = []
    for item in field_errors(error.errors()):
        if item.message.startswith("JSON decode error"):
            errors.append(FieldError("", "request body is not valid JSON"))
            continue
        # Powertools prefixes the location: body fields -> /body/..., params -> /path/x, /query/x
        errors.append(FieldError(item.pointer.removeprefix("/body"), item.message))
    invalid = InvalidInput(f"request is invalid: {summarize(errors)}", errors)
    return problems.from_domain_error(invalid, app.current_event.path)


def _allowed_methods(path: str) -> list[str]:
    """The methods some route serves at `path` (Powertools keeps its routes in two lists)."""
    routes = app._static_routes + app._dynamic_routes
    return sorted({r.method for r in routes if r.rule.fullmatch(path)})


@app.not_found
def _not_found(_: Exception) -> Response[str]:
    event = app.current_event
    allowed = _allowed_methods(event.path)
    if allowed:
        response = problems.problem(
            405,
            "method-not-allowed",
            "Method not allowed",
            f"{echoed(event.http_method, 16)} is not served at this path; "
            f"it serves {', '.join(allowed)}",
            event.path,
            allowed=allowed,
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return problems.problem(
        404,
        "route-not-found",
        "No such route",
        f"{echoed(app.current_event.http_method, 16)} {echoed(app.current_event.path)} "
        "is not a route of this API",
        app.current_event.path,
    )


@app.exception_handler(Exception)
def _unexpected(error: Exception) -> Response[str]:
    logger.exception("unhandled error")
    return problems.problem(
        500,
        "internal-error",
        "Internal error",
        "the request failed unexpectedly; it is safe to retry with the same Idempotency-Key",
        app.current_event.path,
    )


def _is_chunk_put(event: dict[str, Any]) -> bool:
    route = str(event.get("routeKey") or "")
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    path = str(event.get("rawPath") or "")
    return "/chunks/" in route or (method == "PUT" and "/chunks/" in path)


def _body_limit(event: dict[str, Any]) -> int:
    return MAX_CHUNK_BODY_BYTES if _is_chunk_put(event) else MAX_SMALL_BODY_BYTES


def _media_type(event: dict[str, Any]) -> tuple[str, str | None]:
    """The body's media type, lowercased (media types are case-insensitive), and its charset."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    kind, *params = str(headers.get("content-type", "")).split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return kind.strip().lower(), charset


def _is_json(media_type: str) -> bool:
    """application/json, or any structured-syntax `+json` type (RFC 6839); none sent = JSON."""
    if not media_type or media_type == JSON_MEDIA_TYPE:
        return True
    top, _, sub = media_type.partition("/")
    return bool(top) and sub.endswith("+json") and len(sub) > len("+json")


def _content_type_refused(event: dict[str, Any]) -> str | None:
    """Bodies are JSON; say so plainly instead of trying to read a form (curl -d) as one."""
    if not event.get("body"):
        return None
    media_type, charset = _media_type(event)
    if not _is_json(media_type):
        return media_type
    if charset not in (None, "utf-8", "utf8"):
        return f"{media_type}; charset={charset}"
    return None


def _present_as_json(event: dict[str, Any]) -> None:
    """Powertools reads a body as JSON only under the exact spelling `application/json`; the
    media type was accepted above (any case, `+json`, parameters), so present it that way."""
    headers = event.get("headers") or {}
    for name in [k for k in headers if k.lower() == "content-type"]:
        headers[name] = JSON_MEDIA_TYPE


def _utf8_error(event: dict[str, Any]) -> InvalidInput | None:
    """JSON is UTF-8 (RFC 8259). Chunk bodies are checked by the chunk parser in the same
    pass that reads them; the small bodies are checked here, before Powertools decodes them."""
    body = event.get("body")
    if not body or not event.get("isBase64Encoded"):
        return None  # a text body reached the Lambda as a str: it is valid Unicode already
    try:
        base64.b64decode(body, validate=True).decode("utf-8")
    except binascii.Error:
        return InvalidInput(
            "request body is not valid base64", [FieldError("", "request body is not base64")]
        )
    except UnicodeDecodeError as error:
        where = f"byte 0x{error.object[error.start]:02x} at offset {error.start}"
        message = f"request body is not valid UTF-8 ({error.reason}: {where})"
        return InvalidInput(f"{message}; JSON bodies must be UTF-8", [FieldError("", message)])
    return None


def _raw_response(response: Response[str]) -> dict[str, Any]:
    """A problem answered before routing: nothing is parsed, nothing is stored."""
    return {
        "statusCode": response.status_code,
        "body": response.body,
        "headers": {"Content-Type": problems.PROBLEM_CONTENT_TYPE},
        "isBase64Encoded": False,
    }


def _raw_problem(
    status: int, slug: str, title: str, detail: str, event: dict[str, Any], **extensions: Any
) -> dict[str, Any]:
    return _raw_response(
        problems.problem(status, slug, title, detail, str(event.get("rawPath")), **extensions)
    )


def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4  # decoded size, without decoding a possibly huge body
    return len(body.encode()) if isinstance(body, str) else len(body)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False
)  # events carry bearer tokens: never log them
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    size, limit = _body_size(event), _body_limit(event)
    if size > limit:
        return _raw_problem(
            413,
            "payload-too-large",
            "Request body is too large",
            f"request body is {size} bytes; the limit for this route is {limit} bytes",
            event,
            limit_bytes=limit,
        )
    media_type = _content_type_refused(event)
    if media_type is not None:
        return _raw_problem(
            415,
            "unsupported-media-type",
            "Request body must be JSON",
            f"request bodies are UTF-8 JSON: send Content-Type: application/json "
            f"(got {media_type[:100]})",
            event,
        )
    if event.get("body"):
        if not _is_chunk_put(event) and (invalid := _utf8_error(event)) is not None:
            return _raw_response(problems.from_domain_error(invalid, str(event.get("rawPath"))))
        _present_as_json(event)
    dependencies.register_lambda_context(context)
    return app.resolve(event, context)


if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # a Lambda environment's init phase
    with contextlib.suppress(Exception):  # a misconfiguration is then answered per request
        dependencies.build_all()
# What the cold start built (modules, validators, schemas, SDK clients) lives as long as the
# execution environment: frozen out of the cyclic collector's scans (see prtrace.heap).
settle_after_init()
