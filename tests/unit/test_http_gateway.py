"""The local HTTP API against a template's routes, with a scripted Lambda behind it: first
through an HTTP client, then over raw sockets sending exactly what a hostile client sends."""

from __future__ import annotations

import base64
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from local_cloud.http_gateway import LocalHttpApi, routes_from_template
from local_cloud.http_server import HttpLimits

READ_TIMEOUT_S = 0.5  # the gateway's head/body read timeout in these tests
TEN_MB = 10 * 1024 * 1024


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
            "Upload": route("POST /upload", auth=False),
        }
    }


class ScriptedLambdas:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.api_answer: tuple[bytes, bool] = (b'{"statusCode": 200, "body": "ok"}', False)
        self.delay_s = 0.0
        self._lock = threading.Lock()

    def __call__(self, name: str, event: dict[str, Any]) -> tuple[bytes, bool]:
        with self._lock:
            self.calls.append((name, event))
        time.sleep(self.delay_s)
        if name == "auth-fn":
            allowed = event["headers"].get("authorization") == "Bearer good"
            answer = {"isAuthorized": allowed, "context": {"tenant": "t1"}}
            return orjson.dumps(answer), False
        return self.api_answer


@pytest.fixture
def lambdas() -> ScriptedLambdas:
    return ScriptedLambdas()


@pytest.fixture
def gateway(lambdas: ScriptedLambdas) -> Iterator[LocalHttpApi]:
    gateway = LocalHttpApi(lambdas, limits=HttpLimits(read_timeout_s=READ_TIMEOUT_S))
    gateway.routes = routes_from_template(
        _template(), {"ApiFn": "api-fn", "AuthFn": "auth-fn", "Integration": "i"}
    )
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def api(gateway: LocalHttpApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=5) as client:
        yield client


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
    missing = api.get("/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})  # as AWS
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


@pytest.mark.parametrize("status_code", [99, "abc", 700])
def test_an_invalid_status_from_the_function_is_an_upstream_failure(
    api: httpx.Client, lambdas: ScriptedLambdas, status_code: object
) -> None:
    lambdas.api_answer = (orjson.dumps({"statusCode": status_code, "body": "x"}), False)
    answer = api.get("/healthz")
    assert answer.status_code == 500
    assert answer.json()["type"] == "urn:prtrace:problem:upstream-failure"


# -- over raw sockets ----------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json"
        problem: dict[str, Any] = orjson.loads(self.body)
        assert problem["status"] == self.status
        assert problem["title"]
        assert problem["detail"]
        return problem


def _connect(gateway: LocalHttpApi) -> socket.socket:
    port = int(gateway.url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _until_closed(sock: socket.socket, within_s: float = 5.0) -> bytes:
    """Everything the server sends until it closes; fails if it has not closed in time."""
    sock.settimeout(within_s)
    received = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return received
        received += data


def _answers(raw: bytes) -> list[Answer]:
    """Parse the HTTP/1.1 responses in `raw` (framed by Content-Length, as the gateway sends)."""
    answers = []
    while raw:
        head, _, raw = raw.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in fields:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", 0))
        answers.append(Answer(int(status_line.split()[1]), headers, raw[:size]))
        raw = raw[size:]
    return answers


def _one_answer_then_closed(sock: socket.socket, within_s: float = 5.0) -> Answer:
    answers = _answers(_until_closed(sock, within_s))
    assert len(answers) == 1, answers
    return answers[0]


def _read_answer(sock: socket.socket) -> Answer:
    """One response on a connection that stays open."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536)
    head, _, rest = raw.partition(b"\r\n\r\n")
    size = int(_answers(head + b"\r\n\r\n")[0].headers.get("content-length", 0))
    while len(rest) < size:
        rest += sock.recv(65536)
    return _answers(head + b"\r\n\r\n" + rest)[0]


GET_HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


def test_an_oversized_body_is_413_and_the_connection_closes_before_its_bytes_are_parsed(
    gateway: LocalHttpApi, lambdas: ScriptedLambdas
) -> None:
    with _connect(gateway) as sock:
        # The "body" is a request: if the gateway answered 413 and kept reading, it would
        # be served as the next request (request smuggling).
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\n"
            + f"Content-Length: {TEN_MB + 1}\r\n\r\n".encode()
            + GET_HEALTHZ
        )
        answer = _one_answer_then_closed(sock)
    assert answer.status == 413
    assert answer.headers["connection"] == "close"
    problem = answer.problem()
    assert problem["type"] == "urn:prtrace:problem:payload-too-large"
    assert problem["limit_bytes"] == TEN_MB
    assert lambdas.calls == []


def test_an_oversized_chunked_body_is_413_and_closed(
    gateway: LocalHttpApi, lambdas: ScriptedLambdas
) -> None:
    chunk = b"x" * (1024 * 1024)
    with _connect(gateway) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(11):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n" + GET_HEALTHZ)
        answer = _one_answer_then_closed(sock)
    assert answer.status == 413
    assert answer.problem()["type"] == "urn:prtrace:problem:payload-too-large"
    assert lambdas.calls == []


def test_many_concurrent_connections_are_all_answered(
    gateway: LocalHttpApi, lambdas: ScriptedLambdas
) -> None:
    lambdas.delay_s = 0.3  # every request is in flight at once
    clients = 64
    statuses: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients)

    def one() -> None:
        try:
            barrier.wait()
            with _connect(gateway) as sock:
                sock.sendall(GET_HEALTHZ)
                statuses.append(_read_answer(sock).status)
        except BaseException as error:  # a reset connection is the failure looked for
            errors.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert statuses == [200] * clients
    assert time.monotonic() - started < clients * lambdas.delay_s / 4  # served concurrently


def test_a_chunked_body_reaches_the_lambda_intact_and_the_connection_is_kept(
    gateway: LocalHttpApi, lambdas: ScriptedLambdas
) -> None:
    parts = [b'{"events": [', b"\xff\xfe binary ", b"]}" * 3000]
    with _connect(gateway) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for part in parts:
            sock.sendall(b"%x;ext=1\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")
        assert _read_answer(sock).status == 200
        sock.sendall(GET_HEALTHZ)  # the same connection serves the next request
        assert _read_answer(sock).status == 200
    upload = _api_events(lambdas)[0]
    assert upload["isBase64Encoded"] is True
    assert base64.b64decode(upload["body"]) == b"".join(parts)


def test_expect_100_continue_is_honoured(gateway: LocalHttpApi, lambdas: ScriptedLambdas) -> None:
    with _connect(gateway) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"hello")
        assert _read_answer(sock).status == 200
    assert _api_events(lambdas)[0]["body"] == "hello"


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: -1\r\n",
        b"Content-Length: abc\r\n",
        b"Content-Length: 3\r\nContent-Length: 4\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    ],
)
def test_invalid_body_framing_is_400_at_once(
    gateway: LocalHttpApi, lambdas: ScriptedLambdas, framing: bytes
) -> None:
    started = time.monotonic()
    with _connect(gateway) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: localhost\r\n" + framing + b"\r\nhello")
        answer = _one_answer_then_closed(sock)
    assert time.monotonic() - started < READ_TIMEOUT_S  # promptly, not after a timeout
    assert answer.status == 400
    assert answer.problem()["type"] == "urn:prtrace:problem:bad-request"
    assert lambdas.calls == []


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: loc", id="half-a-head"),
        pytest.param(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc",
            id="half-a-body",
        ),
    ],
)
def test_a_stalled_client_is_answered_408_and_dropped_after_the_timeout(
    gateway: LocalHttpApi, lambdas: ScriptedLambdas, sent: bytes
) -> None:
    with _connect(gateway) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        answer = _one_answer_then_closed(sock, within_s=READ_TIMEOUT_S + 3)
        waited = time.monotonic() - started
    assert READ_TIMEOUT_S * 0.8 <= waited < READ_TIMEOUT_S + 2.5
    assert answer.status == 408
    assert answer.problem()["type"] == "urn:prtrace:problem:request-timeout"
    assert lambdas.calls == []


def test_a_head_dripped_byte_by_byte_still_times_out(gateway: LocalHttpApi) -> None:
    with _connect(gateway) as sock:
        started = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: yes":
            if select.select([sock], [], [], 0)[0]:  # answered: stop dripping
                break
            sock.sendall(bytes([byte]))
            time.sleep(READ_TIMEOUT_S / 5)
        answer = _one_answer_then_closed(sock)
        assert time.monotonic() - started < READ_TIMEOUT_S * 3  # not reset by each byte
        assert answer.status == 408


def test_an_idle_connection_is_closed_without_an_answer(lambdas: ScriptedLambdas) -> None:
    idle = LocalHttpApi(lambdas, limits=HttpLimits(idle_timeout_s=0.3))
    idle.start()
    try:
        with _connect(idle) as sock:
            assert _until_closed(sock, within_s=3) == b""
    finally:
        idle.stop()


@pytest.mark.parametrize("method", [b"TRACE", b"CONNECT", b"FOO"])
def test_methods_an_http_api_does_not_serve_are_405(
    gateway: LocalHttpApi, lambdas: ScriptedLambdas, method: bytes
) -> None:
    with _connect(gateway) as sock:
        sock.sendall(method + b" /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = _one_answer_then_closed(sock)
    assert answer.status == 405
    assert "GET" in answer.headers["allow"]
    assert answer.problem()["type"] == "urn:prtrace:problem:method-not-allowed"
    assert lambdas.calls == []


@pytest.mark.parametrize(
    ("request_head", "status", "slug"),
    [
        pytest.param(
            b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
            414,
            "uri-too-long",
            id="path-past-the-head-limit",
        ),
        pytest.param(
            b"GET /" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
            414,
            "uri-too-long",
            id="path-past-the-target-limit",
        ),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
            431,
            "request-header-fields-too-large",
            id="one-huge-header",
        ),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
            + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 900) for i in range(12))
            + b"\r\n",
            431,
            "request-header-fields-too-large",
            id="many-headers",
        ),
        pytest.param(b"GET /healthz HTTP/1.1\r\n\r\n", 400, "bad-request", id="no-host"),
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", 400, "bad-request", id="garbage"),
        pytest.param(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "not-implemented",
            id="unknown-transfer-coding",
        ),
    ],
)
def test_over_long_or_malformed_heads_are_problems(
    gateway: LocalHttpApi, lambdas: ScriptedLambdas, request_head: bytes, status: int, slug: str
) -> None:
    with _connect(gateway) as sock:
        sock.sendall(request_head)
        answer = _one_answer_then_closed(sock)
    assert answer.status == status
    assert answer.problem()["type"] == f"urn:prtrace:problem:{slug}"
    assert lambdas.calls == []


def test_pipelined_requests_are_answered_in_order(gateway: LocalHttpApi) -> None:
    with _connect(gateway) as sock:
        sock.sendall(
            GET_HEALTHZ
            + b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n"
            + b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        answers = _answers(_until_closed(sock))
    assert [a.status for a in answers] == [200, 404, 200]
