"""`GET /v1/traces/{id}/artifacts/{sha256}`: a presigned GET of an artifact the trace
stored (the dataset export reads workspace snapshots through it)."""

from __future__ import annotations

import pytest
import requests

from tests.factories import blob_ref
from tests.functional.conftest import Client
from tests.functional.test_pipeline_api import (
    SNAPSHOT_BASE,
    SNAPSHOT_FINAL,
    finalized_trace,
    problem_type,
)
from tests.functional.test_pipeline_api import state_machine as state_machine

# Finalize starts the pipeline, so a state machine must exist.
pytestmark = pytest.mark.usefixtures("state_machine")


@pytest.mark.parametrize("content", [SNAPSHOT_BASE, SNAPSHOT_FINAL])
def test_an_uploaded_artifact_is_linked_and_downloads(client, content):
    trace_id = finalized_trace(client)
    sha256 = blob_ref(content)["sha256"]
    response = client.call("GET", f"/v1/traces/{trace_id}/artifacts/{sha256}")
    assert response.status == 200, response.body
    body = response.json()
    assert body["expires_in"] == 300
    assert requests.get(body["url"], timeout=10).content == content


@pytest.mark.parametrize("sha256", ["0" * 64, "not-a-digest", "A" * 64])
def test_an_artifact_the_trace_does_not_have_is_404(client, sha256):
    trace_id = finalized_trace(client)
    response = client.call("GET", f"/v1/traces/{trace_id}/artifacts/{sha256}")
    assert response.status == 404
    assert problem_type(response) == "artifact-not-found"


def test_another_tenants_artifact_is_404(client: Client, other_tenant):
    trace_id = finalized_trace(client)
    sha256 = blob_ref(SNAPSHOT_BASE)["sha256"]
    response = other_tenant.call("GET", f"/v1/traces/{trace_id}/artifacts/{sha256}")
    assert response.status == 404
    assert problem_type(response) == "trace-not-found"
