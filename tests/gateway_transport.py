"""httpx over the in-process gateway: a request an httpx client sends becomes an API
Gateway HTTP API (payload v2.0) event that runs through the real authorizer and the real
API handler (infra_cdk.local.gateway.InProcessGateway), and the handler's answer becomes
the httpx response. So the client SDK and the CLI can be tested against the API itself,
with whatever adapters the API's dependencies are wired to (moto or in memory)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

from infra_cdk.local.gateway import InProcessGateway

Handler = Callable[[httpx.Request], httpx.Response]


def gateway_handler(gateway: InProcessGateway) -> Handler:
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


def split_by_host(api_host: str, api: Handler, elsewhere: Handler) -> Handler:
    """Requests to `api_host` go to `api`, the others (presigned storage URLs) elsewhere."""
    return lambda request: api(request) if request.url.host == api_host else elsewhere(request)
