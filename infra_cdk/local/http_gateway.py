"""The local HTTP API: serves the routes of the synthesized template on a real socket.

For each request it does what an API Gateway HTTP API does: picks the route (most specific
match first), runs the route's Lambda authorizer (simple responses, answers cached per
identity source for the authorizer's TTL), then invokes the integration's Lambda through
the Lambda API with a payload v2.0 event and returns its response as is (status, headers,
cookies, base64 bodies). The Lambdas run in the local cloud's workers, behind moto.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from infra_cdk.local.gateway import authorizer_event, http_api_event

log = logging.getLogger("prtrace.local.gateway")

# (function name, event) -> (payload, errored)
Invoke = Callable[[str, dict[str, Any]], tuple[bytes, bool]]
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


@dataclass(frozen=True)
class Authorizer:
    function: str
    identity_headers: tuple[str, ...]
    ttl_s: int


@dataclass(frozen=True)
class Route:
    method: str  # or ANY
    path: str
    function: str
    authorizer: Authorizer | None

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in {method, "ANY"}:
            return None
        found = _template_regex(self.path).fullmatch(path)
        return None if found is None else found.groupdict()

    @property
    def specificity(self) -> tuple[int, int]:
        """Literal segments beat parameters, and greedy parameters come last."""
        segments = self.path.strip("/").split("/")
        return (-sum(not s.startswith("{") for s in segments), int(self.path.endswith("+}")))


def routes_from_template(template: dict[str, Any], physical_ids: dict[str, str]) -> list[Route]:
    resources: dict[str, Any] = template["Resources"]

    def function_of(node: Any) -> str:
        for logical_id in _getatt_arns(node):
            if resources.get(logical_id, {}).get("Type") == "AWS::Lambda::Function":
                return physical_ids[logical_id]
        raise ValueError(f"no Lambda function referenced in {node!r}")

    authorizers: dict[str, Authorizer] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::ApiGatewayV2::Authorizer":
            continue
        props = resource["Properties"]
        if props.get("AuthorizerType") != "REQUEST" or not props.get("EnableSimpleResponses"):
            raise ValueError(f"{logical_id}: only Lambda REQUEST authorizers with simple responses")
        headers = tuple(
            source.removeprefix("$request.header.").lower()
            for source in props.get("IdentitySource", [])
        )
        authorizers[logical_id] = Authorizer(
            function=function_of(props["AuthorizerUri"]),
            identity_headers=headers,
            ttl_s=int(props.get("AuthorizerResultTtlInSeconds", 300)),
        )
    routes = []
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        props = resource["Properties"]
        method, _, path = props["RouteKey"].partition(" ")
        integration_id = _refs(props["Target"])[0]
        integration = resources[integration_id]["Properties"]
        if integration.get("PayloadFormatVersion") != "2.0":
            raise ValueError(f"route {props['RouteKey']}: only payload format 2.0 is served")
        authorizer = None
        if props.get("AuthorizationType", "NONE") == "CUSTOM":
            authorizer = authorizers[_refs(props["AuthorizerId"])[0]]
        routes.append(Route(method, path, function_of(integration["IntegrationUri"]), authorizer))
    return sorted(routes, key=lambda r: (r.specificity, r.route_key))


class LocalHttpApi:
    def __init__(self, invoke: Invoke, host: str = "127.0.0.1", port: int = 0) -> None:
        self._invoke = invoke
        self.routes: list[Route] = []
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                api._handle(self)

            # http.server dispatches on do_<METHOD>.
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://localhost:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- one request ----------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        method = request.command
        raw_path = request.path
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_BODY_BYTES:
            self._reply(request, 413, {"content-type": "application/json"},
                        b'{"message":"Request Entity Too Large"}')  # fmt: skip
            return
        body = request.rfile.read(size) if size else None
        headers = _joined_headers(request)
        path = raw_path.split("?", 1)[0]
        route, params = self._route(method, path)
        if route is None:
            self._reply(
                request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'
            )
            return
        event = http_api_event(
            method, f"http://localhost{raw_path}", headers, body, route.route_key
        )
        if params:
            event["pathParameters"] = params
        if request.headers.get("cookie"):
            event["cookies"] = [c.strip() for c in request.headers["cookie"].split(";")]
        if route.authorizer is not None:
            verdict = self._authorize(route.authorizer, event)
            if verdict is None:
                self._reply(request, 401, {"content-type": "application/json"},
                            b'{"message":"Unauthorized"}')  # fmt: skip
                return
            if not verdict.get("isAuthorized"):
                self._reply(request, 403, {"content-type": "application/json"},
                            b'{"message":"Forbidden"}')  # fmt: skip
                return
            event["requestContext"]["authorizer"] = {"lambda": verdict.get("context") or {}}
        payload, errored = self._invoke(route.function, event)
        status, out_headers, out_body = _response(payload, errored, event)
        self._reply(request, status, out_headers, out_body)
        log.info("%s %s -> %s (%.0f ms)", method, raw_path, status,
                 (time.perf_counter() - started) * 1000)  # fmt: skip

    def _route(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return route, params
        return None, {}

    def _authorize(self, authorizer: Authorizer, event: dict[str, Any]) -> dict[str, Any] | None:
        """None: an identity source is missing (API Gateway answers 401 without calling)."""
        identity = tuple(event["headers"].get(h, "") for h in authorizer.identity_headers)
        if not all(identity):
            return None
        key = (authorizer.function, identity)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        payload, errored = self._invoke(authorizer.function, authorizer_event(event))
        verdict: dict[str, Any] = {"isAuthorized": False}
        if not errored:
            try:
                answer = orjson.loads(payload)
                if isinstance(answer, dict) and isinstance(answer.get("isAuthorized"), bool):
                    verdict = answer
            except orjson.JSONDecodeError:
                pass
        if authorizer.ttl_s > 0 and not errored:
            with self._cache_lock:
                self._cache[key] = (now + authorizer.ttl_s, verdict)
        return verdict

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                request.send_header(name, value)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


def _response(
    payload: bytes, errored: bool, event: dict[str, Any]
) -> tuple[int, dict[str, str], bytes]:
    request_id = event["requestContext"]["requestId"]
    if errored:
        error = orjson.loads(payload) if payload else {}
        timed_out = error.get("errorType") == "Sandbox.Timedout"
        return _upstream_problem(503 if timed_out else 500, request_id, error.get("errorType"))
    try:
        result = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _upstream_problem(500, request_id, "invalid JSON from the function")
    if not (isinstance(result, dict) and "statusCode" in result):
        # Payload v2.0: anything else is the body of a 200 JSON response.
        return 200, {"content-type": "application/json"}, orjson.dumps(result)
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ",".join(str(v) for v in values)
    if result.get("cookies"):
        headers["set-cookie"] = ", ".join(result["cookies"])
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return int(result["statusCode"]), headers, body


def _upstream_problem(
    status: int, request_id: str, cause: str | None
) -> tuple[int, dict[str, str], bytes]:
    """Where AWS answers {"message": "Internal Server Error"}, the local gateway answers
    the API's own problem format, naming the request so its log can be found."""
    problem = {
        "type": "urn:prtrace:problem:upstream-failure",
        "title": "Service Unavailable" if status == 503 else "Internal Server Error",
        "status": status,
        "detail": f"the function serving this route failed ({cause or 'unknown'}); "
        f"request id {request_id}",
    }
    return status, {"content-type": "application/problem+json"}, orjson.dumps(problem)


def _joined_headers(request: BaseHTTPRequestHandler) -> dict[str, str]:
    """HTTP APIs join repeated headers with commas and lower-case the names."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


@functools.cache  # route templates are few and fixed; requests are many
def _template_regex(path: str) -> re.Pattern[str]:
    pattern = ""
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            pattern += f"/(?P<{_group(segment[1:-2])}>.+)"
        elif segment.startswith("{") and segment.endswith("}"):
            pattern += f"/(?P<{_group(segment[1:-1])}>[^/]+)"
        else:
            pattern += "/" + re.escape(segment)
    return re.compile(pattern or "/")


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _intrinsics(node: Any) -> Iterator[dict[str, Any]]:
    """Every object inside a template value, depth first (intrinsics are objects)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _intrinsics(value)
    elif isinstance(node, list):
        for item in node:
            yield from _intrinsics(item)


def _getatt_arns(node: Any) -> list[str]:
    return [
        n["Fn::GetAtt"][0]
        for n in _intrinsics(node)
        if "Fn::GetAtt" in n and n["Fn::GetAtt"][1] == "Arn"
    ]


def _refs(node: Any) -> list[str]:
    return [n["Ref"] for n in _intrinsics(node) if "Ref" in n]
