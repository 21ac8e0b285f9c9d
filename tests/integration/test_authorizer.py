"""The Lambda authorizer behind the local gateway: who gets in, and who is told what.

The gateway caches an authorizer's answer per token for the configured TTL (300 s), so
every token here is fresh and is revoked or expired before its first use.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import httpx

from local_cloud.cloud import LocalCloudInfo, local_environment
from prtrace.clock import utc_now
from prtrace.tokens import issue_token
from tests.factories import trace_metadata
from tests.local_cloud import Api, make_token, new_tenant, problem_type, token_store

FORBIDDEN = {"message": "Forbidden"}


def gateway_refusal(response: httpx.Response, status: int) -> None:
    """API Gateway's own answer (not the API's problem+json): the API was never called."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    expected = {"message": "Unauthorized"} if status == 401 else FORBIDDEN
    assert response.json() == expected


def test_missing_token_is_401(cloud: LocalCloudInfo) -> None:
    anonymous = Api(cloud.endpoint, None)
    gateway_refusal(anonymous.call("GET", "/v1/traces"), 401)
    gateway_refusal(anonymous.call("POST", "/v1/traces", trace_metadata()), 401)
    anonymous.close()


def test_malformed_and_forged_tokens_are_403(cloud: LocalCloudInfo) -> None:
    for token in ("prt_nope", "not-even-a-prefix", "prt_0123456789abcdef_" + "0" * 64):
        api = Api(cloud.endpoint, token)
        gateway_refusal(api.call("GET", "/v1/traces"), 403)
        api.close()
    raw = httpx.get(f"{cloud.endpoint}/v1/traces", headers={"authorization": "Basic Zm9vOmJhcg=="})
    gateway_refusal(raw, 403)


def test_revoked_token_is_403(cloud: LocalCloudInfo) -> None:
    token, record = issue_token(new_tenant(), ["ingest", "read"], now=utc_now())
    store = token_store(cloud)
    store.put_token(record)
    store.revoke_token(record.token_id, utc_now())  # before its first use: nothing cached
    api = Api(cloud.endpoint, token)
    gateway_refusal(api.call("GET", "/v1/traces"), 403)
    gateway_refusal(api.call("POST", "/v1/traces", trace_metadata()), 403)
    api.close()


def test_expired_token_is_403(cloud: LocalCloudInfo) -> None:
    tenant = new_tenant()
    token, record = issue_token(
        tenant, ["ingest", "read"], now=utc_now(), expires_at="2999-01-01T00:00:00Z"
    )
    # issue_token refuses an expiry in the past; the stored record has one.
    token_store(cloud).put_token(dataclasses.replace(record, expires_at="2026-01-01T00:00:00Z"))
    api = Api(cloud.endpoint, token)
    gateway_refusal(api.call("GET", "/v1/traces"), 403)
    api.close()
    # A sibling token of the same tenant that has not expired gets in.
    live = Api(cloud.endpoint, make_token(cloud, tenant, ["read"]))
    assert live.call("GET", "/v1/traces").status_code == 200
    live.close()


def test_token_without_ingest_scope_gets_the_apis_403_problem(cloud: LocalCloudInfo) -> None:
    reader = Api(cloud.endpoint, make_token(cloud, new_tenant(), ["read"]))
    response = reader.call("POST", "/v1/traces", trace_metadata())
    assert response.status_code == 403
    assert problem_type(response) == "insufficient-scope"  # the API's answer, not the gateway's
    assert response.json()["required_scope"] == "ingest"
    assert reader.call("GET", "/v1/traces").status_code == 200
    reader.close()

    writer = Api(cloud.endpoint, make_token(cloud, new_tenant(), ["ingest"]))
    listing = writer.call("GET", "/v1/traces")
    assert listing.status_code == 403
    assert problem_type(listing) == "insufficient-scope"
    assert listing.json()["required_scope"] == "read"
    writer.close()


def test_admin_scope_implies_ingest_and_read(cloud: LocalCloudInfo) -> None:
    admin = Api(cloud.endpoint, make_token(cloud, new_tenant(), ["admin"]))
    trace_id = admin.new_trace()
    assert admin.trace(trace_id)["status"] == "open"
    admin.close()


def test_dev_token_of_the_local_cloud_works(cloud: LocalCloudInfo) -> None:
    dev = Api(cloud.endpoint, cloud.token)
    trace_id = dev.new_trace()
    assert trace_id in {
        t["trace_id"] for t in dev.call("GET", "/v1/traces?limit=100").json()["items"]
    }
    dev.close()


def prtrace_cli(cloud: LocalCloudInfo, *args: str) -> str:
    env = local_environment(cloud.aws_endpoint, "us-east-1")
    done = subprocess.run(
        [sys.executable, "-m", "prtrace_cli.main", "tokens", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_tokens_from_the_admin_cli_against_the_deployed_table(cloud: LocalCloudInfo) -> None:
    table = cloud.stack.outputs["TokensTableName"]
    tenant = new_tenant()
    token = prtrace_cli(
        cloud, "create", "--tenant", tenant, "--scopes", "ingest,read", "--table", table
    )
    api = Api(cloud.endpoint, token)
    trace_id = api.new_trace()
    assert api.trace(trace_id)["status"] == "open"
    api.close()

    revoked = prtrace_cli(cloud, "create", "--tenant", tenant, "--scopes", "read", "--table", table)
    token_id = revoked.split("_")[1]
    assert prtrace_cli(cloud, "revoke", token_id, "--table", table).startswith(
        f"revoked {token_id}"
    )
    refused = Api(cloud.endpoint, revoked)
    gateway_refusal(refused.call("GET", "/v1/traces"), 403)
    refused.close()
