"""The local cloud (moto with the synthesized CDK stack deployed into it, Lambda workers,
the HTTP API gateway) started once for this package, and helpers that drive it only the
way a client would: HTTP against the API endpoint, boto3 against the AWS endpoint.

The fixture is package-scoped: it starts once, and is stopped as soon as the last test of
this package is done, so the AWS endpoint variables it sets in this process never leak
into the unit tests (moto's in-process mocks) that run after it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import orjson
import pytest

from infra_cdk.local.cloud import LocalCloud, LocalCloudInfo
from prtrace.adapters.dynamodb import DynamoTokenStore
from prtrace.adapters.wiring import build_token_store
from prtrace.ingest import utc_now
from prtrace.tokens import issue_token
from tests.factories import trace_metadata

PROBLEM = "application/problem+json"
REGION = "us-east-1"


@pytest.fixture(scope="package")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloudInfo]:
    with LocalCloud(
        aws_port=0, api_port=0, state_dir=tmp_path_factory.mktemp("local-cloud")
    ) as info:
        yield info


def aws(info: LocalCloudInfo, service: str) -> Any:
    """A boto3 client of the local cloud's AWS endpoint (explicit, not from os.environ)."""
    return boto3.client(
        service,
        endpoint_url=info.aws_endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def new_tenant() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


def token_store(info: LocalCloudInfo) -> DynamoTokenStore:
    """The deployed tokens table (boto3 underneath, through the local cloud's endpoint)."""
    return build_token_store(info.stack.outputs["TokensTableName"])


def make_token(info: LocalCloudInfo, tenant: str, scopes: list[str]) -> str:
    token, record = issue_token(tenant, scopes, now=utc_now(), description="integration test")
    token_store(info).put_token(record)
    return token


class Api:
    """An HTTP client of the local cloud's API endpoint, with an optional bearer token."""

    def __init__(self, endpoint: str, token: str | None, tenant: str = "") -> None:
        self.tenant = tenant
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


@pytest.fixture
def tenant_api(cloud: LocalCloudInfo) -> Iterator[Api]:
    """A fresh tenant (ingest and read), so what a test lists is only what it created."""
    tenant = new_tenant()
    api = Api(cloud.endpoint, make_token(cloud, tenant, ["ingest", "read"]), tenant)
    yield api
    api.close()


@pytest.fixture
def make_api(cloud: LocalCloudInfo) -> Iterator[Any]:
    """Factory: an Api for a token of `tenant` (default: a new one) with `scopes`."""
    made: list[Api] = []

    def make(tenant: str | None = None, scopes: tuple[str, ...] = ("ingest", "read")) -> Api:
        tenant = tenant or new_tenant()
        api = Api(cloud.endpoint, make_token(cloud, tenant, list(scopes)), tenant)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()
