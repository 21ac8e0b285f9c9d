"""API Gateway HTTP API (payload v2.0) events: the request event an integration receives
and the REQUEST authorizer event derived from it. The local cloud's HTTP gateway
(http_gateway.py) builds them for each request it serves on its socket; the tests' in-process
gateway (tests/in_process_gateway.py) builds the same events.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit


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
