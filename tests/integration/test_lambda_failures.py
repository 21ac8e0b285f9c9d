"""A Lambda that raises or times out: the client gets a clean 5xx problem+json, nothing is
half-written, and the same request succeeds once the function is healthy again.

The API function's configuration is changed through the Lambda API (as an operator's
deploy would) and restored afterwards; the local runtime keys its warm workers on the
whole configuration, so every change gets fresh workers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from local_cloud.cloud import LocalCloudInfo
from tests.factories import chunk_body
from tests.local_cloud import PROBLEM, Api, aws


def api_function(cloud: LocalCloudInfo) -> str:
    (name,) = [
        physical
        for logical, physical in cloud.stack.physical_ids.items()
        if logical.startswith("ApiFunction")
    ]
    return name


@contextmanager
def reconfigured(cloud: LocalCloudInfo, **changes: Any) -> Iterator[dict[str, Any]]:
    """The API function with `changes` applied (Environment: variables merged in);
    the original configuration is restored afterwards, whatever happens."""
    lambda_ = aws(cloud, "lambda")
    name = api_function(cloud)
    original = lambda_.get_function_configuration(FunctionName=name)
    update: dict[str, Any] = dict(changes)
    if "Environment" in update:
        variables = {**original["Environment"]["Variables"], **update["Environment"]}
        update["Environment"] = {"Variables": variables}
    lambda_.update_function_configuration(FunctionName=name, **update)
    try:
        yield original
    finally:
        lambda_.update_function_configuration(
            FunctionName=name,
            Environment=original["Environment"],
            Timeout=original["Timeout"],
            Handler=original["Handler"],
        )
        restored = lambda_.get_function_configuration(FunctionName=name)
        assert restored["Environment"] == original["Environment"]
        assert (restored["Timeout"], restored["Handler"]) == (
            original["Timeout"],
            original["Handler"],
        )


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        server.close()


def stored_chunk_objects(cloud: LocalCloudInfo, api: Api, trace_id: str) -> list[str]:
    listed = aws(cloud, "s3").list_objects_v2(
        Bucket=cloud.stack.outputs["DataBucketName"],
        Prefix=f"tenants/{api.tenant}/traces/{trace_id}/",
    )
    return [o["Key"] for o in listed.get("Contents", [])]


def assert_nothing_stored(cloud: LocalCloudInfo, api: Api, trace_id: str) -> None:
    status = api.trace(trace_id)
    assert (status["status"], status["chunks_received"], status["events_received"]) == (
        "open",
        0,
        0,
    )
    assert stored_chunk_objects(cloud, api, trace_id) == []


def assert_retry_succeeds(cloud: LocalCloudInfo, api: Api, trace_id: str, body: bytes) -> None:
    retry = api.put_chunk(trace_id, 0, body)
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers  # stored now, not before
    status = api.trace(trace_id)
    assert (status["chunks_received"], status["events_received"]) == (1, 4)
    assert len(stored_chunk_objects(cloud, api, trace_id)) == 1


def test_function_raising_on_a_storage_error_is_a_clean_500(
    cloud: LocalCloudInfo, tenant_api: Api
) -> None:
    trace_id = tenant_api.new_trace()
    body = chunk_body(0, 4)
    with reconfigured(cloud, Environment={"PRTRACE_BUCKET": "prtrace-no-such-bucket"}):
        response = tenant_api.put_chunk(trace_id, 0, body)
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:prtrace:problem:internal-error"
    assert problem["status"] == 500
    assert "no-such-bucket" not in response.text  # no internals leak
    assert_nothing_stored(cloud, tenant_api, trace_id)
    assert_retry_succeeds(cloud, tenant_api, trace_id, body)


def test_function_that_cannot_start_is_a_clean_500(cloud: LocalCloudInfo, tenant_api: Api) -> None:
    """An unhandled function error (here: its handler cannot be imported) reaches the
    gateway as a Lambda function error, which answers a problem naming the request."""
    trace_id = tenant_api.new_trace()
    body = chunk_body(0, 4)
    with reconfigured(cloud, Handler="functions.api.handler.no_such_handler"):
        response = tenant_api.put_chunk(trace_id, 0, body)
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:prtrace:problem:upstream-failure"
    assert problem["status"] == 500
    assert "Runtime.ImportModuleError" in problem["detail"]
    assert_nothing_stored(cloud, tenant_api, trace_id)
    assert_retry_succeeds(cloud, tenant_api, trace_id, body)


def test_function_timing_out_is_a_clean_503(
    cloud: LocalCloudInfo, tenant_api: Api, blackhole: str
) -> None:
    trace_id = tenant_api.new_trace()
    body = chunk_body(0, 4)
    with reconfigured(cloud, Environment={"AWS_ENDPOINT_URL_S3": blackhole}, Timeout=2):
        # Warm a worker of the new configuration first (a route that needs no S3), so the
        # timeout below is the S3 write hanging, not a cold start.
        assert tenant_api.call("GET", "/healthz").status_code == 200
        started = time.monotonic()
        response = tenant_api.put_chunk(trace_id, 0, body)
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert 2 <= elapsed < 8, elapsed
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:prtrace:problem:upstream-failure"
    assert problem["status"] == 503
    assert "Sandbox.Timedout" in problem["detail"]
    assert_nothing_stored(cloud, tenant_api, trace_id)
    assert_retry_succeeds(cloud, tenant_api, trace_id, body)
