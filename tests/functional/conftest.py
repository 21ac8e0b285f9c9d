"""The API and authorizer Lambdas wired to moto, driven through the in-process gateway
with real API Gateway v2 events."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import orjson
import pytest
import requests
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from functions.api import dependencies
from functions.api.handler import lambda_handler as api_handler
from functions.authorizer import handler as authorizer
from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.wiring import build_token_store
from prtrace.clock import utc_now
from prtrace.tokens import issue_token
from prtrace_client import PrtraceClient
from prtrace_client.config import ClientConfig
from tests.in_process_gateway import (
    GatewayResponse,
    InProcessGateway,
    gateway_handler,
    split_by_host,
)

NAMES = ResourceNames()


def _reset_caches() -> None:
    # A new mock_aws context and environment: the API builds its services again, from the
    # environment as the test has set it, on the test's first request.
    dependencies.reset()
    authorizer.token_store.cache_clear()
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # providers hold boto3 clients


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        provision(NAMES)
        saved = {k: os.environ.get(k) for k in NAMES.environment()}
        os.environ.update(NAMES.environment())
        _reset_caches()
        yield
        _reset_caches()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def api_not_built_yet() -> None:
    """A test changes the API's environment (PRTRACE_*) before its first request, which
    builds the API's services from it (`aws` starts each test with a new container)."""
    built = dependencies.container().built()
    assert not built, f"the API already built {built}: set the environment before requests"


class Client:
    """A tiny HTTP-ish client over the in-process gateway."""

    def __init__(self, gateway: InProcessGateway, token: str | None) -> None:
        self.gateway = gateway
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> GatewayResponse:
        sent = dict(headers or {})
        if self.token:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        if body is not None:
            raw = orjson.dumps(body)
        if raw is not None:
            sent.setdefault("Content-Type", "application/json")
        return self.gateway.request(method, f"https://{API_HOST}{path}", sent, raw)


def make_token(tenant: str, scopes: list[str], **kwargs: Any) -> str:
    token, record = issue_token(tenant, scopes, now=utc_now(), **kwargs)
    build_token_store(NAMES.tokens_table).put_token(record)
    return token


@pytest.fixture
def gateway(aws: None) -> InProcessGateway:
    return InProcessGateway(api_handler, authorizer.lambda_handler)


@pytest.fixture
def client(gateway: InProcessGateway) -> Client:
    return Client(gateway, make_token("acme", ["ingest", "read"]))


@pytest.fixture
def other_tenant(gateway: InProcessGateway) -> Client:
    return Client(gateway, make_token("globex", ["ingest", "read", "admin"]))


EXPORT_MACHINE_DEFINITION = '{"StartAt": "Run", "States": {"Run": {"Type": "Succeed"}}}'


@pytest.fixture
def export_machine(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """An export state machine in moto's plain Step Functions (its executions stay
    RUNNING: tests run the export job's code themselves), configured for the API."""
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="dataset-export",
        definition=EXPORT_MACHINE_DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/export",
    )["stateMachineArn"]
    monkeypatch.setenv("PRTRACE_EXPORT_STATE_MACHINE_ARN", arn)
    api_not_built_yet()
    return arn


API_HOST = "api.local"


def moto_storage(request: httpx.Request) -> httpx.Response:
    """A presigned S3 URL, served by moto (which intercepts `requests`, not httpx)."""
    answer = requests.request(
        request.method,
        str(request.url),
        data=request.read() or None,
        headers={k: v for k, v in request.headers.items() if k != "host"},
        timeout=30,
    )
    return httpx.Response(answer.status_code, content=answer.content)


@pytest.fixture
def sdk(client: Client) -> Iterator[PrtraceClient]:
    """The client SDK with `client`'s token, over the in-process gateway and moto's S3."""
    assert client.token is not None
    handler = split_by_host(API_HOST, gateway_handler(client.gateway), moto_storage)
    config = ClientConfig(f"https://{API_HOST}", client.token, "test")
    with PrtraceClient(config=config, transport=httpx.MockTransport(handler)) as made:
        yield made
