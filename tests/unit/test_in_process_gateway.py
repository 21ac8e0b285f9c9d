"""The tests' in-process gateway refuses requests as API Gateway (and the local HTTP
gateway, tests/unit/test_http_gateway.py) does: the same answers from the one definition,
prtrace.api_paths.gateway_refusal; and its httpx transport carries requests and answers
through unchanged."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from prtrace.api_paths import FORBIDDEN, UNAUTHORIZED, gateway_refusal
from tests.in_process_gateway import InProcessGateway, gateway_handler


class Lambdas:
    def __init__(self) -> None:
        self.authorizer_calls: list[str] = []
        self.api_events: list[dict[str, Any]] = []

    def authorizer(self, event: dict[str, Any], _: Any) -> dict[str, Any]:
        token = event["headers"]["authorization"]
        self.authorizer_calls.append(token)
        if token == "Bearer good":
            return {"isAuthorized": True, "context": {"tenant": "acme"}}
        return {"isAuthorized": False}

    def api(self, event: dict[str, Any], _: Any) -> dict[str, Any]:
        self.api_events.append(event)
        return {"statusCode": 200, "headers": {"X-Seen": "1"}, "body": '{"ok":true}'}


@pytest.fixture
def lambdas() -> Lambdas:
    return Lambdas()


@pytest.fixture
def gateway(lambdas: Lambdas) -> InProcessGateway:
    return InProcessGateway(lambdas.api, lambdas.authorizer)


def test_the_refusals_are_api_gateways_own() -> None:
    assert gateway_refusal(None) == UNAUTHORIZED == (401, "Unauthorized")
    assert gateway_refusal({"isAuthorized": False}) == FORBIDDEN == (403, "Forbidden")
    assert gateway_refusal({}) == FORBIDDEN  # anything but an explicit yes
    assert gateway_refusal({"isAuthorized": "true"}) == FORBIDDEN
    assert gateway_refusal({"isAuthorized": True, "context": {}}) is None


def test_no_token_is_401_without_calling_the_authorizer(
    gateway: InProcessGateway, lambdas: Lambdas
) -> None:
    answer = gateway.request("GET", "https://api.local/v1/traces")
    assert (answer.status, answer.json()) == (401, {"message": "Unauthorized"})
    assert lambdas.authorizer_calls == []
    assert lambdas.api_events == []


def test_a_refused_token_is_403(gateway: InProcessGateway, lambdas: Lambdas) -> None:
    answer = gateway.request("GET", "https://api.local/v1/traces", {"Authorization": "Bearer x"})
    assert (answer.status, answer.json()) == (403, {"message": "Forbidden"})
    assert lambdas.authorizer_calls == ["Bearer x"]
    assert lambdas.api_events == []


def test_public_paths_skip_the_authorizer(gateway: InProcessGateway, lambdas: Lambdas) -> None:
    assert gateway.request("GET", "https://api.local/v1/keys").status == 200
    assert lambdas.authorizer_calls == []


def test_the_transport_passes_the_caller_and_the_answer_through(
    gateway: InProcessGateway, lambdas: Lambdas
) -> None:
    with httpx.Client(transport=httpx.MockTransport(gateway_handler(gateway))) as http:
        answer = http.post(
            "https://api.local/v1/traces?x=1",
            content=b'{"a":1}',
            headers={"authorization": "Bearer good", "content-type": "application/json"},
        )
    assert (answer.status_code, answer.headers["x-seen"], answer.json()) == (200, "1", {"ok": True})
    (event,) = lambdas.api_events
    assert (event["requestContext"]["http"]["method"], event["rawPath"]) == ("POST", "/v1/traces")
    assert event["queryStringParameters"] == {"x": "1"}
    assert orjson.loads(event["body"]) == {"a": 1}
    assert event["requestContext"]["authorizer"] == {"lambda": {"tenant": "acme"}}
