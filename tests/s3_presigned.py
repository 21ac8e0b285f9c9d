"""What S3 checks on a presigned request and moto 5.2.5 does not: the SigV4 query signature
over the headers sent (GET, PUT) and a POST policy's signature and conditions. Tests use
these to show what a presigned request allows on AWS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from tests.functional.test_presigned_upload import expected_signature, query


def _signing_key(secret: str, date: str, region: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def s3_accepts(method: str, url: str, headers: dict[str, str], secret: str) -> bool:
    """The signature S3 computes for this request equals the URL's (headers as sent)."""
    signed = query(url)["X-Amz-SignedHeaders"].split(";")
    sent = {k.lower() for k in headers}
    if any(name not in sent for name in signed if name != "host"):
        return False  # a signed header not sent: S3 computes another signature
    return hmac.compare_digest(
        expected_signature(method, url, headers, secret), query(url)["X-Amz-Signature"]
    )


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    return json.loads(base64.b64decode(fields["policy"]))  # type: ignore[no-any-return]


def s3_accepts_post(
    bucket: str, fields: dict[str, str], size: int, secret: str, now: datetime | None = None
) -> bool:
    """S3's checks of a browser-based POST: the policy's signature, its expiry, and every
    condition against the form's fields and the file's size. (No form field outside the
    policy except `file`, `policy`, `x-amz-signature`.)"""
    credential = fields["x-amz-credential"]
    _, date, region, _, _ = credential.split("/")
    expected = hmac.new(
        _signing_key(secret, date, region), fields["policy"].encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, fields["x-amz-signature"]):
        return False
    policy = policy_of(fields)
    moment = now or datetime.now(UTC)
    if datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")) <= moment:
        return False
    form = {k.lower(): v for k, v in fields.items()} | {"bucket": bucket}
    covered = {"policy", "x-amz-signature", "file"}
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            ((name, value),) = condition.items()
            if form.get(name.lower()) != value:
                return False
            covered.add(name.lower())
        elif condition[0] == "content-length-range":
            if not condition[1] <= size <= condition[2]:
                return False
        else:
            operator, name, value = condition
            field = name.lstrip("$").lower()
            sent = form.get(field)
            if sent is None:
                return False
            if operator == "eq" and sent != value:
                return False
            if operator == "starts-with" and not sent.startswith(value):
                return False
            covered.add(field)
    return set(form) <= covered
