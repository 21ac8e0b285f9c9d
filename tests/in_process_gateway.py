"""The API in process, as the tests drive it: `InProcessGateway` turns a request into an
API Gateway HTTP API (payload v2.0) event, runs the authorizer first (simple responses; a
request without the identity source is refused without calling it, and a refusal is API
Gateway's own answer, prtrace.api_paths.gateway_refusal), then the API handler, and returns
what API Gateway would. `gateway_handler` puts it behind an httpx MockTransport, so the
client SDK and the CLI are tested against the API itself, with whatever adapters the API's
dependencies are wired to (moto in tests/functional, in memory in tests/client).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from local_cloud.gateway import authorizer_event, http_api_event
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


HttpHandler = Callable[[httpx.Request], httpx.Response]


def gateway_handler(gateway: InProcessGateway) -> HttpHandler:
    """The MockTransport handler that serves requests through `gateway`. Requests are
    served one at a time, as one Lambda execution environment serves them (the client's
    concurrent chunk uploads would otherwise share the API's per-invocation state)."""
    serving = threading.Lock()

    def handle(request: httpx.Request) -> httpx.Response:
        body = request.read() or None
        with serving:
            answer = gateway.request(request.method, str(request.url), request.headers, body)
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    return handle


def split_by_host(api_host: str, api: HttpHandler, elsewhere: HttpHandler) -> HttpHandler:
    """Requests to `api_host` go to `api`, the others (presigned storage URLs) elsewhere."""
    return lambda request: api(request) if request.url.host == api_host else elsewhere(request)
