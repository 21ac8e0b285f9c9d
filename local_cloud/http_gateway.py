"""The local HTTP API: serves the routes of the synthesized template on a real socket.

For each request it does what an API Gateway HTTP API does: picks the route (most specific
match first), runs the route's Lambda authorizer (simple responses, answers cached per
identity source for the authorizer's TTL), then invokes the integration's Lambda through
the Lambda API with a payload v2.0 event and returns its response as is (status, headers,
cookies, base64 bodies). The Lambdas run in the local cloud's workers, behind moto.
Errors the gateway itself produces are problem+json, except an unrouted request (404) and
a missing or refused token (401/403), which keep API Gateway's own `{"message": ...}` shape.
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
from typing import Any

import orjson

from local_cloud.gateway import authorizer_event, http_api_event
from local_cloud.http_server import HttpLimits, HttpReply, HttpRequest, HttpServer, problem
from local_cloud.static_site import StaticSite
from prtrace.api_paths import gateway_refusal

log = logging.getLogger("prtrace.local.gateway")

# (function name, event) -> (payload, errored)
Invoke = Callable[[str, dict[str, Any]], tuple[bytes, bool]]


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
    """The template's routes behind the local HTTP/1.1 server (`http_server.py`: its limits,
    timeouts and problem+json errors). `limits` is for tests that need short timeouts."""

    def __init__(
        self,
        invoke: Invoke,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: HttpLimits | None = None,
    ) -> None:
        self._invoke = invoke
        self.routes: list[Route] = []
        self._cache: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()
        self._sites: list[StaticSite] = []
        self._server = HttpServer(self._handle, host, port, limits=limits)

    def serve_static(self, site: StaticSite) -> None:
        """Serve these files beside the API's routes (the viewer: CloudFront on AWS)."""
        self._sites.append(site)

    @property
    def url(self) -> str:
        return f"http://localhost:{self._server.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    # -- one request ----------------------------------------------------------------

    def _handle(self, request: HttpRequest) -> HttpReply:
        started = time.perf_counter()
        reply = self._answer(request)
        log.info("%s %s -> %s (%.0f ms)", request.method, request.target, reply.status,
                 (time.perf_counter() - started) * 1000)  # fmt: skip
        return reply

    def _answer(self, request: HttpRequest) -> HttpReply:
        method, raw_path = request.method, request.target
        headers = _joined_headers(request.headers)
        path = raw_path.split("?", 1)[0]
        for site in self._sites:
            if site.handles(path):
                return site.answer(method, path)
        route, params = self._route(method, path)
        if route is None:
            # API Gateway's own answer, which clients of the deployed API see.
            return _aws_message(404, "Not Found")
        event = http_api_event(
            method, f"http://localhost{raw_path}", headers, request.body or None, route.route_key
        )
        if params:
            event["pathParameters"] = params
        if headers.get("cookie"):
            event["cookies"] = [c.strip() for c in headers["cookie"].split(";") if c.strip()]
        if route.authorizer is not None:
            verdict = self._authorize(route.authorizer, event)
            refused = gateway_refusal(verdict)  # API Gateway's own answer, and its shape
            if refused is not None:
                return _aws_message(*refused)
            event["requestContext"]["authorizer"] = {"lambda": (verdict or {}).get("context") or {}}
        request_id = event["requestContext"]["requestId"]
        try:
            payload, errored = self._invoke(route.function, event)
        except Exception as error:
            log.exception("invoking %s failed", route.function)
            return _upstream_problem(500, request_id, f"invoke failed: {type(error).__name__}")
        try:
            return _response(payload, errored, request_id)
        except (ValueError, TypeError, AttributeError) as error:  # a malformed Lambda answer
            return _upstream_problem(500, request_id, f"invalid function response: {error}")

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


def _aws_message(status: int, message: str) -> HttpReply:
    return HttpReply(
        status, [("content-type", "application/json")], orjson.dumps({"message": message})
    )


def _response(payload: bytes, errored: bool, request_id: str) -> HttpReply:
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
        return HttpReply(200, [("content-type", "application/json")], orjson.dumps(result))
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ",".join(str(v) for v in values)
    # One Set-Cookie line per cookie, as API Gateway sends them.
    cookies = [("set-cookie", str(c)) for c in result.get("cookies") or []]
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    status = int(result["statusCode"])
    if not 200 <= status <= 599:
        raise ValueError(f"statusCode {status}")
    return HttpReply(status, [*headers.items(), *cookies], body)


def _upstream_problem(status: int, request_id: str, cause: str | None) -> HttpReply:
    """Where AWS answers {"message": "Internal Server Error"}, the local gateway answers
    the API's own problem format, naming the request so its log can be found."""
    return problem(
        status,
        "upstream-failure",
        f"the function serving this route failed ({cause or 'unknown'}); request id {request_id}",
    )


def _joined_headers(fields: list[tuple[str, str]]) -> dict[str, str]:
    """HTTP APIs join repeated headers with commas (cookies with "; ") and lower-case the
    names."""
    headers: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        joiner = "; " if key == "cookie" else ","
        headers[key] = f"{headers[key]}{joiner}{value}" if key in headers else value
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
