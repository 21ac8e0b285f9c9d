"""The prtrace API in process, for the client's tests: an httpx MockTransport whose
requests run through the real authorizer and the real API handler as API Gateway v2 events
(tests/in_process_gateway.py), with the API's dependencies wired to in-memory adapters
(prtrace.adapters.memory, and an in-memory idempotency store). Routing, authentication,
validation, problems and idempotency are therefore the API's own.

Around it, only what the API does not do: the storage service the presigned URLs point at
(bytes kept in the blob store), and scripted faults (a status with headers and body, a
dropped connection before or after the request reaches the API)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import (
    BasePersistenceLayer,
    DataRecord,
)

from functions.api import dependencies
from functions.api.handler import app as api_app
from functions.api.handler import lambda_handler as api_handler
from functions.authorizer import handler as authorizer
from local_cloud.resources import ResourceNames
from prtrace.adapters.memory import MemoryBlobStore, MemoryTokenStore, MemoryTraceStore
from prtrace.clock import utc_now
from prtrace.ingest.service import IngestService
from prtrace.integrity import KeyRing
from prtrace.ports import PresignedUpload
from prtrace.results.events import TraceEvents
from prtrace.results.products import TraceResults
from prtrace.tokens import issue_token
from tests.in_process_gateway import InProcessGateway, gateway_handler, split_by_host

TENANT = "unit"
KEY = KeyRing(current_id="k", keys={"k": b"k" * 32})
API_HOST = "api.test"
STORAGE = "http://storage.test/"


class _Blobs(MemoryBlobStore):
    """Presigned URLs on the fake storage host, which keeps what is PUT there."""

    def presign_put(
        self, key: str, sha256_hex: str, size: int, content_type: str, expires_in: int
    ) -> PresignedUpload:
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        return PresignedUpload(url=STORAGE + key, headers=headers, expires_in=expires_in)

    def presign_get(self, key: str, expires_in: int) -> str:
        return STORAGE + key

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)


class MemoryIdempotency(BasePersistenceLayer):
    """Powertools idempotency records in a dict, with what the DynamoDB layer does on its
    writes: a record is taken over only once it (or its in-progress lock) has expired, and
    a request whose payload differs from the held record's is refused."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        record = self.records.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        held = self.records.get(data_record.idempotency_key)
        if held is not None and not held.is_expired and not _lock_expired(held):
            # As the DynamoDB layer does with the item its failed write returns: another
            # request under the same key is refused (IdempotencyValidationError).
            self._validate_payload(data_payload=data_record, stored_data_record=held)
            raise IdempotencyItemAlreadyExistsError(old_data_record=held)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


def _lock_expired(record: DataRecord) -> bool:
    expiry = record.in_progress_expiry_timestamp
    return record.status == "INPROGRESS" and expiry is not None and expiry < _now_ms()


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Fault:
    """Applies to the next request matching `method` and `path` (a regex)."""

    method: str
    path: str
    status: int = 0  # answer this instead of serving (0: serve)
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # the scripted answer's JSON body
    drop_before: bool = False  # connection fails before the API sees the request
    drop_after: bool = False  # the API handles it, then the answer is lost
    times: int = 1


class FakeApi:
    """The API wired to in-memory stores (see `wire`), its token, and the faults to apply."""

    def __init__(self) -> None:
        self.traces = MemoryTraceStore()
        self.blobs = _Blobs()
        self.tokens = MemoryTokenStore()
        self.idempotency = MemoryIdempotency()
        self.service = IngestService(self.traces, self.blobs, lambda: KEY)
        self.token, record = issue_token(TENANT, ["ingest", "read"], now=utc_now())
        self.tokens.put_token(record)
        self.faults: list[Fault] = []
        self.requests: list[httpx.Request] = []
        self.served: list[tuple[str, str, int]] = []  # what reached the API
        self._api = gateway_handler(InProcessGateway(api_handler, authorizer.lambda_handler))
        self._serve = split_by_host(API_HOST, self._api, self._storage)

    def wire(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point the API handler's and the authorizer's dependencies at these stores (for
        the test's duration: `monkeypatch` undoes it)."""
        for name, value in ResourceNames().environment().items():
            monkeypatch.setenv(name, value)  # read by Settings; no table is used
        # The handler's CloudWatch metrics (EMF on stdout) would mix with CLI output.
        monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        results = TraceResults(self.blobs)
        events = TraceEvents(self.traces, self.blobs, results)
        once = dependencies.Idempotency(self.idempotency)  # type: ignore[arg-type]
        overrides: dict[Any, Any] = {
            dependencies.ingest_service: lambda: self.service,
            dependencies.trace_results: lambda: results,
            dependencies.trace_events: lambda: events,
            dependencies.idempotency: lambda: once,
        }
        for provider, override in overrides.items():
            monkeypatch.setitem(api_app.dependency_overrides, provider, override)
        monkeypatch.setattr(authorizer, "token_store", lambda: self.tokens)

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
        if request.url.host == API_HOST:
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

    def _storage(self, request: httpx.Request) -> httpx.Response:
        key = str(request.url).removeprefix(STORAGE)
        if request.method == "PUT":
            self.blobs.objects[key] = request.content
            return httpx.Response(200)
        stored = self.blobs.objects.get(key)
        return httpx.Response(404) if stored is None else httpx.Response(200, content=stored)
