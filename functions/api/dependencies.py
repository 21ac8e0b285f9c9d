"""Per-request context (the caller) and the per-container services the routes receive.

Routes declare what they use as parameters, e.g. `ingest: Ingest`, and Powertools' `Depends`
injects it (these parameters are not in the OpenAPI document). The objects come from one
`Container` per execution environment: built once from `Settings`, in the init phase
(`build_all`), by the builders of `prtrace.adapters.wiring`. Tests replace a service with
`app.dependency_overrides[provider] = ...`; the providers take no parameters, so any
zero-argument callable replaces one.

Powertools reads a route's signature on every request to find its Depends parameters, so the
route modules and this one evaluate their annotations at import (no `from __future__ import
annotations`): strings would be compiled again per request (tests/unit/test_api_dependencies).
"""

import re
from collections.abc import Callable
from functools import cached_property
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler import Depends
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
    build_blob_store,
    build_dataset_exports,
    build_idempotency_store,
    build_ingest_service,
    build_key_set,
    build_pipeline_starter,
    build_trace_events,
    build_trace_results,
)
from prtrace.dataset.exports import DatasetExports
from prtrace.errors import FieldError, InvalidInput, MissingScope
from prtrace.ingest.service import IngestService
from prtrace.results.events import TraceEvents
from prtrace.results.products import TraceResults
from prtrace.settings import Settings
from prtrace.tokens import Principal

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


class Idempotency:
    """Runs an action once per Idempotency-Key (24 h); replays return the stored answer."""

    def __init__(self, store: DynamoDBPersistenceLayer) -> None:
        self._store = store

    def run(
        self,
        router: Router,
        tenant: str,
        operation: str,
        target: str,
        body: dict[str, Any],
        action: Callable[[], dict[str, Any]],
    ) -> dict[str, Any]:
        key = idempotency_key(router)
        if key is None:
            return action()

        @idempotent_function(
            data_keyword_argument="request",
            persistence_store=self._store,
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
                f"Idempotency-Key {key!r} was used with a different {operation} request in the "
                "last 24 hours; use a new key for a new request"
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise RequestInProgress(
                f"a {operation} request with Idempotency-Key {key!r} is still running; "
                "retry shortly"
            ) from None
        return result


class Container:
    """The objects one execution environment builds once (on first use) and keeps: clients
    connect on first call, and the services hold nothing of a request."""

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_env()

    @cached_property
    def blob_store(self) -> S3BlobStore:
        return build_blob_store(self.settings)

    @cached_property
    def ingest_service(self) -> IngestService:
        pipeline = build_pipeline_starter(self.settings)
        return build_ingest_service(self.settings, blobs=self.blob_store, pipeline=pipeline)

    @cached_property
    def trace_results(self) -> TraceResults:
        return build_trace_results(self.settings, blobs=self.blob_store)

    @cached_property
    def trace_events(self) -> TraceEvents:
        return build_trace_events(self.settings, self.blob_store, self.trace_results)

    @cached_property
    def key_set(self) -> KmsKeySet:
        return build_key_set(self.settings)

    @cached_property
    def dataset_exports(self) -> DatasetExports:
        return build_dataset_exports(self.settings, self.blob_store)

    @cached_property
    def idempotency(self) -> Idempotency:
        return Idempotency(build_idempotency_store(self.settings))

    def build(self) -> None:
        """Build what most requests use (the key set is built by the first GET /v1/keys)."""
        names = ("ingest_service", "trace_results", "trace_events", "dataset_exports")
        for name in (*names, "idempotency"):
            getattr(self, name)

    def built(self) -> list[str]:
        """The names of the objects built so far."""
        return sorted(vars(self))


_container = Container()


def build_all() -> None:
    """Build the per-container objects now: during a cold start (Lambda's init phase), not
    in the first request's time, and before `gc.freeze()` moves them out of the cyclic
    collector's scans. No network call: clients connect on first use."""
    _container.build()


def container() -> Container:
    return _container


def reset() -> None:
    """Start a new container. The one reset, for test fixtures only: each moto-per-test
    context (tests/functional/conftest.py `aws`, tests/infra/test_iam.py) needs clients and
    settings of its own, and tests/unit/test_api_dependencies starts from an unbuilt one.
    A test that replaces a service uses `app.dependency_overrides` instead."""
    global _container
    _container = Container()


# The providers `Depends` calls, and the parameter types routes declare. Zero-argument on
# purpose: Powertools calls an override with the arguments of the provider it replaces.


def ingest_service() -> IngestService:
    return _container.ingest_service


def trace_results() -> TraceResults:
    return _container.trace_results


def trace_events() -> TraceEvents:
    return _container.trace_events


def key_set() -> KmsKeySet:
    return _container.key_set


def dataset_exports() -> DatasetExports:
    return _container.dataset_exports


def idempotency() -> Idempotency:
    return _container.idempotency


Ingest = Annotated[IngestService, Depends(ingest_service)]
Results = Annotated[TraceResults, Depends(trace_results)]
Events = Annotated[TraceEvents, Depends(trace_events)]
Keys = Annotated[KmsKeySet, Depends(key_set)]
Exports = Annotated[DatasetExports, Depends(dataset_exports)]
Once = Annotated[Idempotency, Depends(idempotency)]


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
