"""HTTP API Lambda: routing, error mapping and request limits. Logic lives in prtrace."""

from __future__ import annotations

from typing import Any

import orjson
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api import dependencies, problems
from functions.api.routes import artifacts, chunks, health, traces
from functions.api.telemetry import logger, metrics, tracer
from prtrace.errors import DomainError, FieldError, InvalidInput
from prtrace.ingest import MAX_CHUNK_BODY_BYTES, MAX_SMALL_BODY_BYTES
from prtrace.validation import field_errors, summarize

# orjson: faster, and a too-long integer is a JSON error (422), not a ValueError (500).
app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=orjson.loads)
for module in (traces, chunks, artifacts, health):
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


@app.not_found
def _not_found(_: Exception) -> Response[str]:
    return problems.problem(
        404,
        "route-not-found",
        "No such route",
        f"{app.current_event.http_method} {app.current_event.path} is not a route of this API",
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


def _body_limit(event: dict[str, Any]) -> int:
    route = str(event.get("routeKey") or "")
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
    path = str(event.get("rawPath") or "")
    if "/chunks/" in route or (method == "PUT" and "/chunks/" in path):
        return MAX_CHUNK_BODY_BYTES
    return MAX_SMALL_BODY_BYTES


def _content_type_refused(event: dict[str, Any]) -> str | None:
    """Bodies are JSON; say so plainly instead of trying to read a form (curl -d) as one."""
    if not event.get("body"):
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media_type = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    if not media_type or media_type == "application/json" or media_type.endswith("+json"):
        return None
    return media_type


def _raw_problem(
    status: int, slug: str, title: str, detail: str, event: dict[str, Any], **extensions: Any
) -> dict[str, Any]:
    """A problem answered before routing: nothing is parsed, nothing is stored."""
    response = problems.problem(
        status, slug, title, detail, str(event.get("rawPath")), **extensions
    )
    return {
        "statusCode": response.status_code,
        "body": response.body,
        "headers": {"Content-Type": problems.PROBLEM_CONTENT_TYPE},
        "isBase64Encoded": False,
    }


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
            f"request bodies are JSON: send Content-Type: application/json "
            f"(got {media_type[:100]})",
            event,
        )
    dependencies.register_lambda_context(context)
    return app.resolve(event, context)
