"""How the API's routes receive their services: Powertools' `Depends`, with providers a test
replaces through `app.dependency_overrides`; the injected parameters stay out of the OpenAPI
document, and route signatures are evaluated once, at import (Powertools reads them on
every request)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aws_lambda_powertools.event_handler.api_gateway import Route
from aws_lambda_powertools.event_handler.depends import _get_depends_from_annotation

from functions.api import dependencies
from functions.api.handler import app, lambda_handler
from functions.api.openapi import openapi_document
from local_cloud.gateway import http_api_event
from prtrace.errors import TraceNotFound
from tests.in_process_gateway import LambdaContext


def _routes() -> list[Route]:
    return app._static_routes + app._dynamic_routes  # Powertools keeps its routes in two lists


def _injected(route: Route) -> dict[str, Any]:
    """The route's parameters that `Depends` fills: name -> provider."""
    found = {}
    for name, parameter in inspect.signature(route.func).parameters.items():
        depends = _get_depends_from_annotation(parameter.annotation)
        if depends is not None:
            found[name] = depends.dependency
    return found


@pytest.fixture
def container() -> Iterator[dependencies.Container]:
    dependencies.reset()
    yield dependencies.container()
    dependencies.reset()


def test_routes_that_use_services_receive_them_from_the_providers() -> None:
    providers = {
        dependencies.ingest_service,
        dependencies.trace_results,
        dependencies.trace_events,
        dependencies.key_set,
        dependencies.dataset_exports,
        dependencies.idempotency,
    }
    injected = {f"{r.method} {r.path}": _injected(r) for r in _routes()}
    assert injected["GET /v1/traces/<trace_id>/events"] == {
        "ingest": dependencies.ingest_service,
        "events": dependencies.trace_events,
    }
    assert injected["POST /v1/traces"] == {
        "ingest": dependencies.ingest_service,
        "once": dependencies.idempotency,
    }
    assert injected["POST /v1/exports"] == {
        "exports": dependencies.dataset_exports,
        "once": dependencies.idempotency,
    }
    assert injected["GET /healthz"] == {}
    used = {p for route in injected.values() for p in route.values()}
    assert used == providers
    # An override is called with the replaced provider's own parameters: none.
    assert all(not inspect.signature(p).parameters for p in providers)


def test_route_signatures_are_evaluated_at_import() -> None:
    """String annotations (`from __future__ import annotations`) would be compiled again on
    every request, when Powertools looks for the route's Depends parameters."""
    for route in _routes():
        for parameter in inspect.signature(route.func).parameters.values():
            assert not isinstance(parameter.annotation, str), (route.path, parameter.name)


def test_injected_parameters_are_not_in_the_openapi_document() -> None:
    document = openapi_document()
    for route in _routes():
        injected = _injected(route)
        if not injected:
            continue
        path = route.path.replace("<", "{").replace(">", "}")
        operation = document["paths"][path][route.method.lower()]
        documented = {p["name"] for p in operation.get("parameters", [])}
        assert not documented & set(injected), path
        if "requestBody" in operation:  # the model itself, not an object embedding parameters
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert set(schema) == {"$ref"}, path


class _Keys:
    def jwks(self) -> dict[str, Any]:
        return {"keys": [{"kid": "k1"}]}


class _Traces:
    def get_trace(self, tenant: str, trace_id: str) -> Any:
        raise TraceNotFound(trace_id)


def _call(event: dict[str, Any]) -> dict[str, Any]:
    return lambda_handler(event, LambdaContext())


def test_an_override_replaces_a_service_for_the_requests(
    container: dependencies.Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.dependency_overrides, dependencies.key_set, _Keys)
    answer = _call(http_api_event("GET", "https://api.local/v1/keys"))
    assert answer["statusCode"] == 200
    assert orjson.loads(answer["body"]) == {"keys": [{"kid": "k1"}]}
    assert container.built() == []  # nothing of the container was built, not even settings


def test_a_domain_error_raised_by_a_replaced_service_is_its_problem_answer(
    container: dependencies.Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.dependency_overrides, dependencies.ingest_service, _Traces)
    event = http_api_event("GET", "https://api.local/v1/traces/tr_01JZZZZZZZZZZZZZZZZZZZZZZZ")
    event["requestContext"]["authorizer"] = {
        "lambda": {"tenant": "acme", "token_id": "tok_1", "scopes": "read"}
    }
    answer = _call(event)
    assert answer["statusCode"] == 404
    assert orjson.loads(answer["body"])["type"] == "urn:prtrace:problem:trace-not-found"


def test_a_provider_that_fails_is_answered_like_the_route_failing(
    container: dependencies.Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Powertools wraps a provider's exception in DependencyResolutionError; the API answers
    the original (a misconfigured environment: the problem handlers' 500, nothing leaked)."""
    for name in [k for k in os.environ if k.startswith("PRTRACE_")]:
        monkeypatch.delenv(name)
    answer = _call(http_api_event("GET", "https://api.local/v1/keys"))
    assert answer["statusCode"] == 500
    body = orjson.loads(answer["body"])
    assert body["type"] == "urn:prtrace:problem:internal-error"
    assert "PRTRACE" not in body["detail"]
