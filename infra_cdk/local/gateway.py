"""An in-process HTTP API gateway: builds API Gateway payload v2.0 events, runs the
authorizer first (simple responses), then the API handler, and returns what API Gateway
would. The local cloud's HTTP gateway serves real sockets on top of the same event shape.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from prtrace.api_paths import IDENTITY_HEADER, PUBLIC_PATHS, gateway_refusal

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LambdaContext:
    """What handlers read from the Lambda context object."""

    function_name: str = "prtrace-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:prtrace-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    deadline_ms: int = field(default_factory=lambda: int(time.time() * 1000) + 30_000)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def http_api_event(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    route_key: str = "$default",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2.0) event for one request."""
    parts = urlsplit(url)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    text_body: str | None = None
    encoded = False
    if body is not None:
        try:
            text_body, encoded = body.decode(), False
        except UnicodeDecodeError:
            text_body, encoded = base64.b64encode(body).decode(), True
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "stage": "$default",
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if parts.query:
        event["queryStringParameters"] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if text_body is not None:
        event["body"] = text_body
    return event


def authorizer_event(request: dict[str, Any]) -> dict[str, Any]:
    """The v2 REQUEST authorizer event API Gateway derives from a request event."""
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:000000000000:local/$default/"
        f"{request['requestContext']['http']['method']}{request['rawPath']}",
        "identitySource": [request["headers"].get("authorization", "")],
        "routeKey": request["routeKey"],
        "rawPath": request["rawPath"],
        "rawQueryString": request["rawQueryString"],
        "headers": request["headers"],
        "requestContext": request["requestContext"],
    }


class InProcessGateway:
    """Routes flagged public skip the authorizer, as the HTTP API's routes do; a request
    without the identity source is refused without calling it, as API Gateway does."""

    def __init__(
        self,
        api: Handler,
        authorizer: Handler,
        public_paths: frozenset[str] = PUBLIC_PATHS,
    ) -> None:
        self._api = api
        self._authorizer = authorizer
        self._public = public_paths

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> GatewayResponse:
        event = http_api_event(method, url, headers, body)
        if event["rawPath"] not in self._public:
            verdict = None
            if event["headers"].get(IDENTITY_HEADER.lower()):
                verdict = self._authorizer(authorizer_event(event), LambdaContext())
            refused = gateway_refusal(verdict)
            if refused is not None:
                status, message = refused
                answer = orjson.dumps({"message": message})
                return GatewayResponse(status, {"content-type": "application/json"}, answer)
            event["requestContext"]["authorizer"] = {"lambda": (verdict or {}).get("context", {})}
        result = self._api(event, LambdaContext())
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        headers_out = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        return GatewayResponse(int(result["statusCode"]), headers_out, payload)
