"""Artifact upload through a presigned S3 PUT, over real HTTP against moto's server.

S3 binds such an upload to its bytes twice: the SigV4 signature covers the
x-amz-checksum-sha256, content-length and content-type headers, and S3 checks the body
against x-amz-checksum-sha256. moto 5.2.5 checks neither (nor the signature, nor the
expiry), so these tests verify the signature the way S3 does (`s3_would_accept`) and pin
what moto does instead, so that an upgrade that starts enforcing is noticed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import httpx
import pytest

from prtrace.adapters.s3 import S3BlobStore
from prtrace.adapters.wiring import S3_CONFIG
from prtrace.ports import PresignedUpload
from tests.moto_server import moto_server, reset

BUCKET = "prtrace-data"
KEY = "tenants/acme/traces/tr_01JD0000000000000000000001/artifacts/sha256/ab cd+ef.txt"
BODY = b"Traceback (most recent call last):\n  AssertionError: 3 != 4\n" * 20


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def s3(endpoint: str) -> Iterator[Any]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=S3_CONFIG)
    client.create_bucket(Bucket=BUCKET)
    yield client
    reset(endpoint)


@pytest.fixture
def blobs(s3: Any) -> S3BlobStore:
    return S3BlobStore(s3, BUCKET)


def presign(
    blobs: S3BlobStore, body: bytes = BODY, content_type: str = "text/plain", key: str = KEY
) -> PresignedUpload:
    return blobs.presign_put(
        key, hashlib.sha256(body).hexdigest(), len(body), content_type, expires_in=300
    )


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def expected_signature(method: str, url: str, headers: dict[str, str], secret_key: str) -> str:
    """SigV4 query-string signature S3 computes for a request (UNSIGNED-PAYLOAD)."""
    parts = urlsplit(url)
    params = query(url)
    params.pop("X-Amz-Signature")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    sent = {k.lower(): " ".join(v.split()) for k, v in headers.items()} | {"host": parts.netloc}
    signed = params["X-Amz-SignedHeaders"].split(";")
    canonical_headers = "".join(f"{name}:{sent.get(name, '')}\n" for name in signed)
    canonical_request = "\n".join(
        [
            method,
            parts.path,
            canonical_query,
            canonical_headers,
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    _, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _sign(f"AWS4{secret_key}".encode(), date)
    for part in (region, service, terminator):
        key = _sign(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def s3_would_accept(url: str, headers: dict[str, str], body: bytes) -> bool:
    """What S3 checks before storing a presigned PUT (the parts moto skips): the signature
    over the headers sent, the body's length and its SHA-256 against the signed checksum."""
    secret = boto3.Session().get_credentials().get_frozen_credentials().secret_key
    lowered = {k.lower(): v for k, v in headers.items()}
    return (
        hmac.compare_digest(
            expected_signature("PUT", url, headers, secret), query(url)["X-Amz-Signature"]
        )
        and lowered.get("content-length") == str(len(body))
        and lowered.get("x-amz-checksum-sha256")
        == base64.b64encode(hashlib.sha256(body).digest()).decode()
    )


# ---- what the presigned URL binds -------------------------------------------------------


def test_url_signs_the_checksum_length_and_content_type(blobs, endpoint):
    upload = presign(blobs)
    params = query(upload.url)
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Expires"] == "300"
    assert upload.expires_in == 300
    assert set(params["X-Amz-SignedHeaders"].split(";")) >= {
        "content-length",
        "content-type",
        "host",
        "x-amz-checksum-sha256",
    }
    assert upload.headers == {
        "Content-Type": "text/plain",
        "Content-Length": str(len(BODY)),
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(BODY).digest()).decode(),
    }
    assert upload.url.startswith(f"{endpoint}/{BUCKET}/tenants/acme/traces/")


def test_signature_verifies_for_the_declared_upload_only(blobs):
    upload = presign(blobs)
    assert s3_would_accept(upload.url, upload.headers, BODY)  # the verifier agrees with botocore

    other = bytes(reversed(BODY))  # same size, other bytes
    assert len(other) == len(BODY)
    assert other != BODY
    assert not s3_would_accept(upload.url, upload.headers, other)  # BadDigest
    rehashed = upload.headers | {
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(other).digest()).decode()
    }
    assert not s3_would_accept(upload.url, rehashed, other)  # SignatureDoesNotMatch
    longer = BODY + b"!"
    resized = rehashed | {
        "Content-Length": str(len(longer)),
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(longer).digest()).decode(),
    }
    assert not s3_would_accept(upload.url, resized, longer)
    assert not s3_would_accept(upload.url, upload.headers | {"Content-Type": "text/html"}, BODY)


# ---- over HTTP against moto ---------------------------------------------------------------


def test_presigned_put_of_the_declared_bytes_stores_them(blobs, s3):
    upload = presign(blobs)
    response = httpx.put(upload.url, content=BODY, headers=upload.headers, timeout=10)
    assert response.status_code == 200, response.text
    stored = s3.get_object(Bucket=BUCKET, Key=KEY)
    assert stored["Body"].read() == BODY
    assert stored["ContentType"] == "text/plain"
    assert blobs.head(KEY) == len(BODY)


def test_url_names_the_public_endpoint_clients_reach(endpoint):
    # The API's own client may use an address only the API can reach; presigning is local.
    internal = boto3.client(
        "s3", endpoint_url="http://s3.internal.invalid:9", region_name="us-east-1", config=S3_CONFIG
    )
    public = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=S3_CONFIG)
    public.create_bucket(Bucket=BUCKET)
    try:
        upload = presign(S3BlobStore(internal, BUCKET, presign_client=public))
        assert upload.url.startswith(f"{endpoint}/{BUCKET}/")
        assert (
            httpx.put(upload.url, content=BODY, headers=upload.headers, timeout=10).status_code
            == 200
        )
        assert public.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == BODY
    finally:
        reset(endpoint)


def test_moto_stores_other_bytes_under_the_signed_checksum(blobs, s3):
    """moto 5.2.5 limitation, pinned: real S3 answers 400 BadDigest here and keeps the
    object as it was; moto stores the other bytes and keeps no checksum for the object."""
    upload = presign(blobs)
    assert (
        httpx.put(upload.url, content=BODY, headers=upload.headers, timeout=10).status_code == 200
    )
    other = bytes(reversed(BODY))
    response = httpx.put(upload.url, content=other, headers=upload.headers, timeout=10)
    assert not s3_would_accept(upload.url, upload.headers, other)
    assert response.status_code == 200  # S3: 400 BadDigest
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == other
    attributes = s3.head_object(Bucket=BUCKET, Key=KEY, ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in attributes


def test_moto_ignores_the_signature_of_a_presigned_put(blobs, s3):
    """moto 5.2.5 limitation, pinned: it never checks a query-string signature (with IAM
    auth switched on it fails with a 500 instead), so changed headers and a forged
    signature are accepted. Real S3 answers 403 SignatureDoesNotMatch to both."""
    upload = presign(blobs)
    longer = BODY + b"!"
    changed = {
        "Content-Type": "text/html",
        "Content-Length": str(len(longer)),
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(longer).digest()).decode(),
    }
    assert not s3_would_accept(upload.url, changed, longer)
    assert httpx.put(upload.url, content=longer, headers=changed, timeout=10).status_code == 200
    forged = upload.url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert not s3_would_accept(forged, upload.headers, BODY)
    assert httpx.put(forged, content=BODY, headers=upload.headers, timeout=10).status_code == 200
    assert s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == BODY
