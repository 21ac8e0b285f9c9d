"""HTTP API Lambda: routing, error mapping and request limits. Logic lives in prtrace."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api import dependencies, problems
from functions.api.routes import artifacts, chunks, health, traces
from functions.api.telemetry import logger, metrics, tracer
from prtrace.errors import DomainError
from prtrace.ingest import MAX_CHUNK_BODY_BYTES, MAX_SMALL_BODY_BYTES
from prtrace.validation import field_errors

app = APIGatewayHttpResolver(enable_validation=True)
for module in (traces, chunks, artifacts, health):
    app.include_router(module.router)


@app.exception_handler(DomainError)
def _domain_error(error: DomainError) -> Response[str]:
    return problems.from_domain_error(error, app.current_event.path)


@app.exception_handler(RequestValidationError)
def _validation_error(error: RequestValidationError) -> Response[str]:
    errors = []
    for item in field_errors(error.errors()):
        where = item.pointer
        # Powertools prefixes the location: body fields -> /body/..., params -> /path/x, /query/x
        if where.startswith("/body"):
            where = where[len("/body") :]
        errors.append({"pointer": where, "detail": item.message})
    shown = "; ".join(f"{e['pointer'] or '/'}: {e['detail']}" for e in errors[:3])
    return problems.problem(
        422,
        "validation-error",
        "Request body or parameters are invalid",
        f"request is invalid: {shown}",
        app.current_event.path,
        errors=errors,
    )


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
        # Refused before routing: nothing is parsed, nothing is stored.
        response = problems.problem(
            413,
            "payload-too-large",
            "Request body is too large",
            f"request body is {size} bytes; the limit for this route is {limit} bytes",
            str(event.get("rawPath")),
            limit_bytes=limit,
        )
        return {
            "statusCode": response.status_code,
            "body": response.body,
            "headers": {"Content-Type": problems.PROBLEM_CONTENT_TYPE},
            "isBase64Encoded": False,
        }
    dependencies.register_lambda_context(context)
    return app.resolve(event, context)
