"""The local cloud that the suites needing one share, and the helpers that drive it only
the way a client would: HTTP against the API endpoint, boto3 against the AWS endpoint.

One cloud (the default context) starts the first time a test asks for the `cloud` fixture
and stops after the last such test: tests/conftest.py orders those tests together and
after every test that runs without a cloud, because a running local cloud patches moto
(local_cloud/moto_patches.py) and moto's backends are the process's, so no other
local cloud, nor moto's in-process mocks, may run in this process beside it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from local_cloud.cloud import LocalCloud, LocalCloudInfo
from local_cloud.emulator import emulator_client
from prtrace.adapters.dynamodb import DynamoTokenStore
from prtrace.clock import utc_now
from prtrace.tokens import issue_token
from tests.factories import trace_metadata

PROBLEM = "application/problem+json"
REGION = "us-east-1"


class SharedCloud:
    """The default local cloud, started on first use and stopped once (idempotent)."""

    def __init__(self) -> None:
        self._cloud: LocalCloud | None = None
        self._info: LocalCloudInfo | None = None

    def info(self, state_dir: Path) -> LocalCloudInfo:
        if self._info is None:
            self._cloud = LocalCloud(aws_port=0, api_port=0, state_dir=state_dir)
            self._info = self._cloud.start()
        return self._info

    def stop(self) -> None:
        if self._cloud is not None:
            self._cloud.stop()
        self._cloud = None
        self._info = None


SHARED_CLOUD = SharedCloud()


def aws(info: LocalCloudInfo, service: str) -> Any:
    """A boto3 client of the local cloud's AWS endpoint (explicit, not from os.environ)."""
    return emulator_client(service, info.aws_endpoint, REGION)


def new_tenant() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


def token_store(info: LocalCloudInfo) -> DynamoTokenStore:
    """The deployed tokens table (boto3 underneath, through the local cloud's endpoint)."""
    return DynamoTokenStore(aws(info, "dynamodb"), info.stack.outputs["TokensTableName"])


def make_token(info: LocalCloudInfo, tenant: str, scopes: list[str]) -> str:
    token, record = issue_token(tenant, scopes, now=utc_now(), description="integration test")
    token_store(info).put_token(record)
    return token


class Api:
    """An HTTP client of the local cloud's API endpoint, with an optional bearer token."""

    def __init__(self, endpoint: str, token: str | None, tenant: str = "") -> None:
        self.tenant = tenant
        self.endpoint = endpoint
        self.token = token
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=endpoint, headers=headers, timeout=30)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if body is not None:
            raw = orjson.dumps(body)
        if raw is not None:
            sent.setdefault("content-type", "application/json")
        return self.http.request(method, path, content=raw, headers=sent)

    def new_trace(self, title: str = "merge() drops the last interval") -> str:
        response = self.call("POST", "/v1/traces", trace_metadata(title))
        assert response.status_code == 201, response.text
        return str(response.json()["trace_id"])

    def put_chunk(self, trace_id: str, seq: int, body: bytes) -> httpx.Response:
        return self.call("PUT", f"/v1/traces/{trace_id}/chunks/{seq}", raw=body)

    def trace(self, trace_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/v1/traces/{trace_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, trace_id: str, timeout_s: float = 180) -> dict[str, Any]:
        """The trace's view once its pipeline has ended (the SDK's `wait`)."""
        from prtrace_client import TERMINAL_STATUSES, PrtraceClient

        assert self.token is not None, "waiting needs a token"
        with PrtraceClient(self.endpoint, self.token) as sdk:
            view = sdk.wait(trace_id, poll_s=0.25, timeout_s=timeout_s)
        if view["status"] not in TERMINAL_STATUSES:
            raise AssertionError(f"trace {trace_id} did not finish its pipeline in {timeout_s} s")
        return view

    def close(self) -> None:
        self.http.close()


def problem_type(response: httpx.Response) -> str:
    """The problem's type slug, after checking it is a well-formed RFC 9457 problem."""
    assert response.headers["content-type"] == PROBLEM, response.text
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    assert body["detail"]
    return str(body["type"]).removeprefix("urn:prtrace:problem:")
