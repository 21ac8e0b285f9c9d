"""Per-request context (the caller) and per-container dependencies (built once, cached)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any, cast

import boto3
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.api.problems import IdempotencyKeyReused, RequestInProgress, Unauthenticated
from prtrace.adapters.s3 import S3BlobStore
from prtrace.adapters.signing import KmsKeySet
from prtrace.adapters.wiring import (
    BOTO_CONFIG,
    build_blob_store,
    build_dataset_exports,
    build_ingest_service,
    build_pipeline_starter,
    build_trace_events,
    build_trace_results,
)
from prtrace.errors import FieldError, InvalidInput, MissingScope
from prtrace.exports import DatasetExports
from prtrace.ingest import IngestService
from prtrace.results import TraceResults
from prtrace.settings import Settings
from prtrace.tokens import Principal
from prtrace.trace_events import TraceEvents

IDEMPOTENCY_TTL_S = 24 * 3600
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

# The key names the operation, its target and the caller's tenant, so two tenants (or two
# routes) reusing a key never see each other's answers; the body must match on replay.
_IDEMPOTENCY_CONFIG = IdempotencyConfig(
    event_key_jmespath="[tenant, operation, target, key]",
    payload_validation_jmespath="body",
    expires_after_seconds=IDEMPOTENCY_TTL_S,
    raise_on_no_idempotency_key=True,
)


def register_lambda_context(context: LambdaContext) -> None:
    """Lets idempotency expire an in-progress record when this invocation would time out."""
    _IDEMPOTENCY_CONFIG.register_lambda_context(context)


def build_all() -> None:
    """Build every per-container dependency now: during a cold start (Lambda's init phase),
    not in the first request's time, and before `gc.freeze()` moves them out of the cyclic
    collector's scans. No network call: clients connect on first use."""
    ingest_service()
    trace_results()
    trace_events()
    dataset_exports()
    _idempotency_store()


@cache
def settings() -> Settings:
    return Settings.from_env()


@cache
def blob_store() -> S3BlobStore:
    return build_blob_store(settings())


@cache
def ingest_service() -> IngestService:
    return build_ingest_service(
        settings(), blobs=blob_store(), pipeline=build_pipeline_starter(settings())
    )


@cache
def trace_results() -> TraceResults:
    return build_trace_results(settings(), blobs=blob_store())


@cache
def key_set() -> KmsKeySet:
    return KmsKeySet(boto3.client("kms", config=BOTO_CONFIG), settings().signing_key_ids)


@cache
def trace_events() -> TraceEvents:
    return build_trace_events(settings(), blob_store(), trace_results())


@cache
def dataset_exports() -> DatasetExports:
    return build_dataset_exports(settings(), blob_store())


@cache
def _idempotency_store() -> DynamoDBPersistenceLayer:
    client = boto3.client("dynamodb", config=BOTO_CONFIG)
    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table, boto3_client=client)


def reset() -> None:
    """Forget cached dependencies (tests change the environment between cases)."""
    for cached in (
        settings,
        blob_store,
        ingest_service,
        trace_results,
        key_set,
        trace_events,
        dataset_exports,
        _idempotency_store,
    ):
        cached.cache_clear()


def principal(router: Router) -> Principal:
    """The caller, as established by the authorizer (never by anything in the request)."""
    event = cast(APIGatewayProxyEventV2, router.current_event)
    context: dict[str, Any] = event.request_context.authorizer.get_lambda or {}
    tenant, token_id = context.get("tenant"), context.get("token_id")
    if not isinstance(tenant, str) or not tenant or not isinstance(token_id, str):
        raise Unauthenticated("no authenticated caller; send Authorization: Bearer prt_…")
    scopes = frozenset(str(context.get("scopes", "")).split(","))
    return Principal(tenant=tenant, scopes=scopes, token_id=token_id)


def require(router: Router, scope: str) -> Principal:
    caller = principal(router)
    if scope not in caller.scopes and "admin" not in caller.scopes:
        raise MissingScope(scope)
    return caller


def idempotency_key(router: Router) -> str | None:
    key = router.current_event.headers.get("idempotency-key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidInput(
            "Idempotency-Key must be 1-255 visible ASCII characters",
            [FieldError("", "invalid Idempotency-Key header")],
        )
    return key


def run_idempotent(
    router: Router,
    tenant: str,
    operation: str,
    target: str,
    body: dict[str, Any],
    action: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run `action` once per Idempotency-Key (24 h); replays return the stored answer."""
    key = idempotency_key(router)
    if key is None:
        return action()

    @idempotent_function(
        data_keyword_argument="request",
        persistence_store=_idempotency_store(),
        config=_IDEMPOTENCY_CONFIG,
        key_prefix="prtrace-api",
    )
    def once(request: dict[str, Any]) -> dict[str, Any]:
        return action()

    try:
        result: dict[str, Any] = once(
            request={
                "tenant": tenant,
                "operation": operation,
                "target": target,
                "key": key,
                "body": body,
            }
        )
    except IdempotencyValidationError:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was used with a different {operation} request in the last "
            "24 hours; use a new key for a new request"
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise RequestInProgress(
            f"a {operation} request with Idempotency-Key {key!r} is still running; retry shortly"
        ) from None
    return result
