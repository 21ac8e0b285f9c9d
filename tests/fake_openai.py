"""A tiny OpenAI-compatible HTTP server for tests: serves POST /v1/chat/completions from a
script of canned answers, one per request, and records every request it received. The
real `openai` client talks to it over real HTTP; nothing in the SDK is patched."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from prtrace.judge.rubric import DIMENSION_IDS


@dataclass(frozen=True)
class Scripted:
    status: int = 200
    body: dict[str, Any] | str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"


def completion(
    content: str | None,
    prompt_tokens: int = 1_000,
    completion_tokens: int = 200,
    finish_reason: str = "stop",
) -> Scripted:
    return Scripted(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": "fake-judge",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def answer(
    scores: dict[str, int] | None = None, cite: list[str] | None = None, **edits: Any
) -> str:
    """A well-formed judge answer; `edits` replace whole dimension entries (None removes)."""
    scores = scores or {}
    body: dict[str, Any] = {
        "scores": {
            name: {
                "rationale": f"{name} looks fine.",
                "cited_event_ids": cite if cite is not None else ["evt-0002"],
                "score": scores.get(name, 4),
            }
            for name in DIMENSION_IDS
        },
        "summary": "A careful, test-first fix.",
    }
    for name, replacement in edits.items():
        if replacement is None:
            del body["scores"][name]
        else:
            body["scores"][name] = replacement
    return orjson.dumps(body).decode()


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: deque[Scripted] = deque()
        # Answers for one model (by the request's `model`), before the shared script.
        self.by_model: dict[str, deque[Scripted]] = {}
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""

    def push(self, *replies: Scripted) -> None:
        self.script.extend(replies)

    def push_for(self, model: str, *replies: Scripted) -> None:
        self.by_model.setdefault(model, deque()).extend(replies)

    def next_reply(self, request: dict[str, Any]) -> Scripted | None:
        own = self.by_model.get(str(request.get("model")))
        if own:
            return own.popleft()
        return self.script.popleft() if self.script else None


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.path != "/v1/chat/completions":
                self._send(Scripted(status=404, body={"error": {"message": "no route"}}))
                return
            request = orjson.loads(body)
            fake.requests.append(request)
            fake.headers.append({k.lower(): v for k, v in self.headers.items()})
            reply = fake.next_reply(request)
            if reply is None:
                reply = Scripted(status=500, body={"error": {"message": "script exhausted"}})
            time.sleep(reply.delay_s)
            self._send(reply)

        def _send(self, reply: Scripted) -> None:
            raw = reply.body if isinstance(reply.body, str) else orjson.dumps(reply.body).decode()
            data = raw.encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left: that is the scenario under test

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_openai_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
