"""The local HTTP API against a template's routes, with a scripted Lambda behind it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from infra_cdk.local.http_gateway import LocalHttpApi, routes_from_template


def _template(ttl: int = 300) -> dict[str, Any]:
    def route(key: str, auth: bool) -> dict[str, Any]:
        props: dict[str, Any] = {
            "ApiId": {"Ref": "Api"},
            "RouteKey": key,
            "Target": {"Fn::Join": ["", ["integrations/", {"Ref": "Integration"}]]},
            "AuthorizationType": "CUSTOM" if auth else "NONE",
        }
        if auth:
            props["AuthorizerId"] = {"Ref": "Authorizer"}
        return {"Type": "AWS::ApiGatewayV2::Route", "Properties": props}

    return {
        "Resources": {
            "ApiFn": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "AuthFn": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "Integration": {
                "Type": "AWS::ApiGatewayV2::Integration",
                "Properties": {
                    "IntegrationUri": {"Fn::GetAtt": ["ApiFn", "Arn"]},
                    "PayloadFormatVersion": "2.0",
                },
            },
            "Authorizer": {
                "Type": "AWS::ApiGatewayV2::Authorizer",
                "Properties": {
                    "AuthorizerType": "REQUEST",
                    "EnableSimpleResponses": True,
                    "IdentitySource": ["$request.header.Authorization"],
                    "AuthorizerResultTtlInSeconds": ttl,
                    "AuthorizerUri": {
                        "Fn::Join": ["", ["arn:", {"Fn::GetAtt": ["AuthFn", "Arn"]}, "/inv"]]
                    },
                },
            },
            "Health": route("GET /healthz", auth=False),
            "Item": route("GET /v1/items/{item_id}", auth=True),
            "Special": route("GET /v1/items/special", auth=True),
            "Files": route("GET /files/{path+}", auth=True),
        }
    }


class ScriptedLambdas:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.api_answer: tuple[bytes, bool] = (b'{"statusCode": 200, "body": "ok"}', False)

    def __call__(self, name: str, event: dict[str, Any]) -> tuple[bytes, bool]:
        self.calls.append((name, event))
        if name == "auth-fn":
            allowed = event["headers"].get("authorization") == "Bearer good"
            answer = {"isAuthorized": allowed, "context": {"tenant": "t1"}}
            return orjson.dumps(answer), False
        return self.api_answer


@pytest.fixture
def lambdas() -> ScriptedLambdas:
    return ScriptedLambdas()


@pytest.fixture
def api(lambdas: ScriptedLambdas) -> Iterator[httpx.Client]:
    gateway = LocalHttpApi(lambdas)
    gateway.routes = routes_from_template(
        _template(), {"ApiFn": "api-fn", "AuthFn": "auth-fn", "Integration": "i"}
    )
    gateway.start()
    with httpx.Client(base_url=gateway.url, timeout=5) as client:
        yield client
    gateway.stop()


def _api_events(lambdas: ScriptedLambdas) -> list[dict[str, Any]]:
    return [event for name, event in lambdas.calls if name == "api-fn"]


def test_public_routes_skip_the_authorizer(api: httpx.Client, lambdas: ScriptedLambdas) -> None:
    assert api.get("/healthz").status_code == 200
    assert [name for name, _ in lambdas.calls] == ["api-fn"]
    event = lambdas.calls[0][1]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /healthz"


def test_no_token_is_401_without_calling_anything(
    api: httpx.Client, lambdas: ScriptedLambdas
) -> None:
    answer = api.get("/v1/items/7")
    assert (answer.status_code, answer.json()) == (401, {"message": "Unauthorized"})
    assert lambdas.calls == []


def test_a_refused_token_is_403(api: httpx.Client, lambdas: ScriptedLambdas) -> None:
    answer = api.get("/v1/items/7", headers={"authorization": "Bearer bad"})
    assert (answer.status_code, answer.json()) == (403, {"message": "Forbidden"})
    assert [name for name, _ in lambdas.calls] == ["auth-fn"]


def test_the_authorizer_answer_is_cached_per_token_and_passed_on(
    api: httpx.Client, lambdas: ScriptedLambdas
) -> None:
    for _ in range(3):
        assert api.get("/v1/items/7", headers={"authorization": "Bearer good"}).status_code == 200
    assert [name for name, _ in lambdas.calls].count("auth-fn") == 1
    event = _api_events(lambdas)[0]
    assert event["requestContext"]["authorizer"] == {"lambda": {"tenant": "t1"}}
    assert event["pathParameters"] == {"item_id": "7"}


def test_literal_segments_win_over_parameters_and_greedy_paths_match(
    api: httpx.Client, lambdas: ScriptedLambdas
) -> None:
    auth = {"authorization": "Bearer good"}
    api.get("/v1/items/special", headers=auth)
    api.get("/files/a/b/c.txt?x=1", headers=auth)
    special, files = _api_events(lambdas)
    assert special["routeKey"] == "GET /v1/items/special"
    assert files["pathParameters"] == {"path": "a/b/c.txt"}
    assert files["queryStringParameters"] == {"x": "1"}
    assert api.get("/nowhere").status_code == 404
    assert api.post("/healthz").status_code == 404  # method not routed


def test_responses_come_back_as_the_lambda_gave_them(
    api: httpx.Client, lambdas: ScriptedLambdas
) -> None:
    png = bytes(range(256))
    lambdas.api_answer = (
        orjson.dumps(
            {
                "statusCode": 207,
                "headers": {"Content-Type": "image/png", "X-Trace": "abc"},
                "cookies": ["a=1", "b=2"],
                "body": base64.b64encode(png).decode(),
                "isBase64Encoded": True,
            }
        ),
        False,
    )
    answer = api.get("/healthz")
    assert answer.status_code == 207
    assert answer.content == png
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-trace"] == "abc"
    assert answer.headers["set-cookie"] == "a=1, b=2"


def test_a_bare_payload_is_a_200_json_body(api: httpx.Client, lambdas: ScriptedLambdas) -> None:
    lambdas.api_answer = (b'{"hello": "world"}', False)
    answer = api.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"hello": "world"})


def test_binary_request_bodies_reach_the_lambda_base64_encoded(
    api: httpx.Client, lambdas: ScriptedLambdas
) -> None:
    gateway_routes = routes_from_template({"Resources": {}}, {})  # an empty template serves nothing
    assert gateway_routes == []
    api.request("GET", "/healthz", content=b"\xff\xfe")
    event = _api_events(lambdas)[0]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


@pytest.mark.parametrize(("error_type", "status"), [("ValueError", 500), ("Sandbox.Timedout", 503)])
def test_a_failed_function_is_a_problem_not_a_crash(
    api: httpx.Client, lambdas: ScriptedLambdas, error_type: str, status: int
) -> None:
    lambdas.api_answer = (orjson.dumps({"errorType": error_type, "errorMessage": "x"}), True)
    answer = api.get("/healthz")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:prtrace:problem:upstream-failure"
    assert error_type in problem["detail"]
