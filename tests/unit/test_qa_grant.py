"""The QA task's grant (prtrace.qa.grant) signed by the S3 presigner: what each request
allows on AWS (checked the way S3 checks it, tests/s3_presigned.py), its expiry, and its
size against ECS's 8,192-character limit on a RunTask's container overrides."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import pytest

from prtrace.adapters.presign import S3Presigner
from prtrace.adapters.presigned_store import PresignedArtifactStore
from prtrace.adapters.wiring import S3_CONFIG
from prtrace.qa.grant import (
    ARTIFACT_MAX_BYTES,
    GRANT_MAX_CHARS,
    GrantError,
    QaGrant,
    build_grant,
    env_chars,
    parse_grant,
)
from prtrace.schema import BlobRef, artifact_uri
from prtrace.storage_keys import artifact_key, document_key, qa_report_key
from tests.functional.test_presigned_upload import query
from tests.s3_presigned import policy_of, s3_accepts, s3_accepts_post

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "prtrace-prod-data-0123456789ab"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TENANT = "acme"
TRACE = "tr_01JD0000000000000000000001"
OTHER_TRACE = "tr_01JD0000000000000000000002"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TTL = 4500
# A Lambda's session token is about 1,100 characters of base64.
LAMBDA_TOKEN = base64.b64encode(secrets.token_bytes(825)).decode()


def ref(fill: str, size: int = 10_000) -> BlobRef:
    sha = fill * 64
    return BlobRef(uri=artifact_uri(sha), sha256=sha, size=size, media_type="application/x-tar")


def grant_for(
    tenant: str = TENANT,
    trace: str = TRACE,
    token: str | None = LAMBDA_TOKEN,
    index_token: str | None = None,
    **keys: str,
) -> QaGrant:
    s3 = boto3.client(
        "s3",
        region_name="eu-west-1",
        aws_access_key_id="ASIAEXAMPLEEXAMPLE00",
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=S3_CONFIG,
    )
    return build_grant(
        S3Presigner(s3, BUCKET),
        tenant=tenant,
        trace_id=trace,
        document_key=keys.get("document_key", document_key(tenant, trace)),
        report_key=keys.get("report_key", qa_report_key(tenant, trace)),
        base=ref("a"),
        final=ref("b"),
        expires_in=TTL,
        now=NOW,
        package_index_token=index_token,
    )


def test_each_read_url_gets_exactly_its_key_until_the_grant_expires() -> None:
    grant = grant_for()
    keys = {
        document_key(TENANT, TRACE),
        artifact_key(TENANT, TRACE, "a" * 64),
        artifact_key(TENANT, TRACE, "b" * 64),
    }
    assert {grant.document.key, grant.base.key, grant.final.key} == keys
    assert grant.base.ref == ref("a")
    assert grant.final.ref == ref("b")
    assert grant.expires_at == NOW + timedelta(seconds=TTL)
    for key in keys:
        url = grant.read_url(key)
        assert url is not None
        assert urlsplit(url).path == f"/{key}"
        params = query(url)
        assert params["X-Amz-Expires"] == str(TTL)
        assert params["X-Amz-Security-Token"] == LAMBDA_TOKEN
        assert s3_accepts("GET", url, {}, SECRET)
        assert not s3_accepts("PUT", url, {}, SECRET)  # GET only
        # The same signature on another trace's object is refused.
        other = url.replace(TRACE, OTHER_TRACE)
        assert not s3_accepts("GET", other, {}, SECRET)
    assert grant.read_url(qa_report_key(TENANT, TRACE)) is None
    assert grant.read_url(document_key(TENANT, OTHER_TRACE)) is None


def test_the_report_put_is_write_once_by_its_signature() -> None:
    grant = grant_for()
    url = grant.url(grant.report)
    assert grant.report.key == qa_report_key(TENANT, TRACE)
    assert set(query(url)["X-Amz-SignedHeaders"].split(";")) == {
        "content-type",
        "host",
        "if-none-match",
    }
    assert grant.report.headers == {"Content-Type": "application/json", "If-None-Match": "*"}
    assert s3_accepts("PUT", url, grant.report.headers, SECRET)
    # Without If-None-Match (an overwrite) or with another condition S3 refuses it.
    assert not s3_accepts("PUT", url, {"Content-Type": "application/json"}, SECRET)
    assert not s3_accepts("PUT", url, grant.report.headers | {"If-None-Match": "x"}, SECRET)
    assert not s3_accepts("GET", url, grant.report.headers, SECRET)
    assert not s3_accepts("PUT", url.replace(TRACE, OTHER_TRACE), grant.report.headers, SECRET)


def test_the_artifact_post_allows_only_this_traces_artifacts_up_to_the_size_limit() -> None:
    grant = grant_for()
    form = grant.artifact_post()
    prefix = artifact_key(TENANT, TRACE, "")
    assert grant.artifacts.key_prefix == prefix
    policy = policy_of(form.fields)
    assert ["starts-with", "$key", prefix] in policy["conditions"]
    assert ["content-length-range", 1, ARTIFACT_MAX_BYTES] in policy["conditions"]
    assert {"bucket": BUCKET} in policy["conditions"]
    assert {"x-amz-security-token": LAMBDA_TOKEN} in policy["conditions"]
    # botocore dates a policy from the clock, not from `now`: TTL seconds from signing.
    expiry = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(seconds=TTL - 60) < expiry - datetime.now(UTC) <= timedelta(seconds=TTL)

    def accepted(key: str, size: int = 100, at: datetime | None = None) -> bool:
        fields = form.fields | {
            "key": key,
            "Content-Type": "text/plain; charset=utf-8",
            "Content-MD5": "XUFAKrxLKna5cZ2REBfFkg==",
        }
        return s3_accepts_post(BUCKET, fields, size, SECRET, now=at)

    mine = artifact_key(TENANT, TRACE, "c" * 64)
    assert accepted(mine, at=expiry - timedelta(seconds=1))
    assert not accepted(mine, at=expiry + timedelta(seconds=1))  # expired
    assert not accepted(mine, size=ARTIFACT_MAX_BYTES + 1, at=expiry - timedelta(seconds=1))
    for elsewhere in (
        artifact_key(TENANT, OTHER_TRACE, "c" * 64),
        qa_report_key(TENANT, TRACE),
        document_key(TENANT, TRACE),
        f"tenants/{TENANT}/traces/{TRACE}/chunks/000000-x.json",
    ):
        assert not accepted(elsewhere, at=expiry - timedelta(seconds=1)), elsewhere
    assert grant.may_post(mine)
    assert not grant.may_post(mine + "/x")
    assert not grant.may_post(prefix)


def test_a_grant_with_a_lambda_session_token_and_the_longest_tenant_fits_ecs() -> None:
    tenant = "t" * 63  # prtrace.tokens.TENANT_PATTERN's longest
    # With the package proxy's token too: CodeArtifact's are about 1,100-1,300 characters.
    grant = grant_for(tenant=tenant, index_token="e" * 1400)
    size = env_chars(grant)
    assert size <= GRANT_MAX_CHARS
    # The override as Step Functions passes it to ECS: RunQa's environment, filled in.
    asl = json.loads((ROOT / "state_machines/trace_pipeline.asl.json").read_text())
    (container,) = asl["States"]["RunQa"]["Parameters"]["Overrides"]["ContainerOverrides"]
    values = {"PRTRACE_QA_GRANT": grant.to_env(), "PRTRACE_TENANT": tenant}
    environment = [
        {"name": e["Name"], "value": values.get(e["Name"], TRACE)} for e in container["Environment"]
    ]
    override = {"containerOverrides": [{"name": "qa-runner", "environment": environment}]}
    assert len(json.dumps(override, separators=(",", ":"))) <= 8192
    # The token is kept once in the URLs' shared parameters and once in the POST policy.
    assert grant.to_env().count(LAMBDA_TOKEN) == 1


def test_a_grant_too_large_for_ecs_is_refused_with_the_reason() -> None:
    token = base64.b64encode(secrets.token_bytes(3000)).decode()
    with pytest.raises(GrantError, match=r"more than the \d+ left for it in ECS's 8192"):
        grant_for(token=token)


def test_the_grant_round_trips_and_a_bad_one_is_named_without_its_values() -> None:
    grant = grant_for()
    assert parse_grant(grant.to_env()) == grant
    broken = json.loads(grant.to_env())
    del broken["report"]
    broken["document"]["key"] = ""
    with pytest.raises(GrantError) as error:
        parse_grant(json.dumps(broken))
    assert "PRTRACE_QA_GRANT is not a valid QA grant: document.key, report" in str(error.value)
    assert LAMBDA_TOKEN not in str(error.value)
    with pytest.raises(GrantError, match="not a valid QA grant"):
        parse_grant("not json")


@pytest.mark.parametrize(
    "keys",
    [
        {"document_key": document_key(TENANT, OTHER_TRACE)},
        {"report_key": qa_report_key("other", TRACE)},
        {"report_key": f"tenants/{TENANT}/traces/{TRACE}/qa/report .json"},
    ],
)
def test_keys_outside_the_trace_are_refused(keys: dict[str, str]) -> None:
    with pytest.raises(GrantError, match="is not a plain key under the trace's"):
        grant_for(**keys)


@pytest.mark.parametrize("tenant", ["", "a/b", "x" * 129])
def test_ids_that_would_blur_the_trace_prefix_are_refused(tenant: str) -> None:
    with pytest.raises(GrantError, match="tenant"):
        grant_for(tenant=tenant)


def test_the_store_sends_content_md5_with_every_write_as_object_lock_requires() -> None:
    """A bucket with default Object Lock retention (the prod profile) refuses a PUT or a
    POST that carries neither Content-MD5 nor a checksum."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204 if request.method == "POST" else 200)

    grant = grant_for()
    store = PresignedArtifactStore(grant, httpx.Client(transport=httpx.MockTransport(answer)))
    body = b'{"verdict": "resolved"}'
    digest = hashlib.sha256(body).hexdigest()
    md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    assert store.put_if_absent(qa_report_key(TENANT, TRACE), body, digest, "application/json")
    assert store.put_if_absent(artifact_key(TENANT, TRACE, digest), body, digest, "text/plain")
    put, post = sent
    assert put.method == "PUT"
    assert put.headers["content-md5"] == md5
    assert post.method == "POST"
    assert f'name="Content-MD5"\r\n\r\n{md5}\r\n'.encode() in post.read()
