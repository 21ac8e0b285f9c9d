"""An in-process prtrace API for the client's unit tests: an httpx transport that runs
the real IngestService (in-memory stores) and maps its errors through the real problem
mapping, plus scripted faults (a status with headers, a dropped connection before or
after the request reaches the service)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from functions.api.problems import from_domain_error
from prtrace.adapters.memory import MemoryBlobStore, MemoryTraceStore
from prtrace.errors import DomainError
from prtrace.ingest import ArtifactRequest, FinalizeRequest, IngestService
from prtrace.integrity import KeyRing
from prtrace.ports import PresignedUpload
from prtrace.schema import TraceMetadata
from prtrace.validation import invalid_body

TENANT = "unit"
KEY = KeyRing(current_id="k", keys={"k": b"k" * 32})
STORAGE = "http://storage.test/"


class _Blobs(MemoryBlobStore):
    def presign_put(
        self, key: str, sha256_hex: str, size: int, content_type: str, expires_in: int
    ) -> PresignedUpload:
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        return PresignedUpload(url=STORAGE + key, headers=headers, expires_in=expires_in)


@dataclass
class Fault:
    """Applies to the next request matching `method` and `path` (a regex)."""

    method: str
    path: str
    status: int = 0  # answer this instead of serving (0: serve)
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # the scripted answer's JSON body
    drop_before: bool = False  # connection fails before the service sees the request
    drop_after: bool = False  # the service handles it, then the answer is lost
    times: int = 1


class FakeApi:
    def __init__(self) -> None:
        self.traces = MemoryTraceStore()
        self.blobs = _Blobs()
        self.service = IngestService(self.traces, self.blobs, lambda: KEY)
        self.faults: list[Fault] = []
        self.requests: list[httpx.Request] = []
        self.served: list[tuple[str, str, int]] = []  # what reached the service
        self._idempotent: dict[str, tuple[bytes, int, bytes]] = {}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        fault = self._fault_for(request)
        if fault and fault.drop_before:
            raise httpx.ConnectError("connection refused (fault)", request=request)
        if fault and fault.status:
            return httpx.Response(
                fault.status, headers=fault.headers, json=fault.body or {"status": fault.status}
            )
        response = self._serve(request)
        self.served.append((request.method, request.url.path, response.status_code))
        if fault and fault.drop_after:
            raise httpx.ReadError("connection reset after the request (fault)", request=request)
        return response

    def _fault_for(self, request: httpx.Request) -> Fault | None:
        for fault in self.faults:
            if (
                fault.times > 0
                and fault.method == request.method
                and re.fullmatch(fault.path, request.url.path)
            ):
                fault.times -= 1
                return fault
        return None

    # ---- the routes -------------------------------------------------------------------

    def _serve(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.startswith(STORAGE):
            key = url.removeprefix(STORAGE)
            self.blobs.objects[key] = request.content
            return httpx.Response(200)
        if request.headers.get("authorization") != "Bearer prt_test":
            return _problem(401, "unauthenticated", "missing or invalid credentials")
        path, method = request.url.path, request.method
        key = request.headers.get("idempotency-key")
        if method == "POST" and key:
            remembered = self._idempotent.get(key)
            if remembered is not None:
                body, status, answer = remembered
                if body != request.content:
                    return _problem(422, "idempotency-key-reused", f"key {key} reused")
                return httpx.Response(status, content=answer,
                                      headers={"content-type": "application/json"})  # fmt: skip
        try:
            status, document = self._route(method, path, request)
        except DomainError as exc:
            problem = from_domain_error(exc)
            return httpx.Response(
                problem.status_code,
                content=str(problem.body).encode(),
                headers={"content-type": "application/problem+json"}
                | {k: str(v) for k, v in (problem.headers or {}).items()},
            )
        answer = orjson.dumps(document)
        if method == "POST" and key:
            self._idempotent[key] = (request.content, status, answer)
        return httpx.Response(status, content=answer, headers={"content-type": "application/json"})

    def _route(self, method: str, path: str, request: httpx.Request) -> tuple[int, Any]:
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("POST", r"/v1/traces", self._create),
            ("GET", r"/v1/traces", self._list),
            ("GET", r"/v1/traces/([^/]+)", self._get),
            ("PUT", r"/v1/traces/([^/]+)/chunks/(\d+)", self._chunk),
            ("POST", r"/v1/traces/([^/]+)/artifacts", self._artifact),
            ("POST", r"/v1/traces/([^/]+)/finalize", self._finalize),
        ]
        for wanted, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if wanted == method and match:
                return handler(request, *match.groups())
        return 404, {"detail": "no route"}

    def _create(self, request: httpx.Request) -> tuple[int, Any]:
        metadata = TraceMetadata.model_validate(orjson.loads(request.content))
        return 201, self.service.create_trace(TENANT, metadata).public()

    def _list(self, request: httpx.Request) -> tuple[int, Any]:
        limit = int(request.url.params.get("limit", 25))
        page = self.service.list_traces(TENANT, limit, request.url.params.get("next_token"))
        return 200, {"items": [t.public() for t in page.items], "next_token": page.next_token}

    def _get(self, request: httpx.Request, trace_id: str) -> tuple[int, Any]:
        return 200, self.service.get_trace(TENANT, trace_id).public()

    def _chunk(self, request: httpx.Request, trace_id: str, seq: str) -> tuple[int, Any]:
        outcome = self.service.put_chunk(TENANT, trace_id, int(seq), request.content)
        return 201, outcome.chunk.receipt()

    def _artifact(self, request: httpx.Request, trace_id: str) -> tuple[int, Any]:
        body = ArtifactRequest.model_validate(orjson.loads(request.content))
        return 201, self.service.request_artifact_upload(TENANT, trace_id, body)

    def _finalize(self, request: httpx.Request, trace_id: str) -> tuple[int, Any]:
        try:
            body = FinalizeRequest.model_validate_json(request.content)
        except ValidationError as exc:
            raise invalid_body(exc, "finalize request") from None
        view = self.service.finalize(
            TENANT, trace_id, body.expected_chunks, body.snapshots, body.redactions
        )
        return 202, view.public()


def _problem(status: int, slug: str, detail: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": f"urn:prtrace:problem:{slug}", "title": slug, "status": status,
              "detail": detail},
        headers={"content-type": "application/problem+json"},
    )  # fmt: skip
