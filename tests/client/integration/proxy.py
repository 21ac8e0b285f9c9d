"""A small fault-injecting HTTP proxy (threaded http.server + httpx) in front of the API.

Each request is matched against the rules in order; the first rule with uses left decides:
  forward      pass it on (optionally after `delay_s`)
  refuse       close the connection without forwarding (the server looks down)
  lose_answer  forward it, then close the connection instead of answering
  status       answer `status` with `headers` without forwarding (e.g. 429 + Retry-After)
Unmatched requests are forwarded. Everything is logged for the test to inspect.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

import httpx

Action = Literal["forward", "refuse", "lose_answer", "status"]
_HOP = {"connection", "transfer-encoding", "content-length", "keep-alive", "content-encoding"}


@dataclass
class Rule:
    method: str
    path: str  # a regex over the path
    action: Action
    times: int = 1_000_000
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    action: Action
    upstream_status: int | None  # None when the request was not forwarded


class FaultProxy:
    def __init__(self, upstream: str, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.log: list[Logged] = []
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=self.upstream, timeout=60)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def count(self, method: str, path: str, action: Action | None = None) -> int:
        return sum(
            1
            for entry in list(self.log)
            if entry.method == method
            and re.fullmatch(path, entry.path)
            and (action is None or entry.action == action)
        )

    def _decide(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if (
                    rule.times > 0
                    and rule.method in (method, "*")
                    and re.fullmatch(rule.path, path)
                ):
                    rule.times -= 1
                    return rule
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return None

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                rule = proxy._decide(self.command, path)
                action: Action = rule.action if rule else "forward"
                if rule and rule.delay_s:
                    time.sleep(rule.delay_s)
                if action == "refuse":
                    proxy.log.append(Logged(self.command, path, action, None))
                    self.close_connection = True
                    return
                if action == "status" and rule is not None:
                    proxy.log.append(Logged(self.command, path, action, None))
                    payload = b'{"detail": "injected by the fault proxy"}'
                    self.send_response(rule.status)
                    for name, value in rule.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}
                }
                answer = proxy._client.request(
                    self.command, self.path, content=body, headers=headers
                )
                proxy.log.append(Logged(self.command, path, action, answer.status_code))
                if action == "lose_answer":
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_DELETE = _any  # noqa: N815

        return Handler
