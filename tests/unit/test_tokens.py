"""API tokens: issue, parse, authenticate. A live token with the right secret yields its
tenant and scopes; everything else yields None, and the stored record never holds the
secret."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, replace

import pytest

from prtrace.tokens import Principal, TokenRecord, authenticate, issue_token, parse_token

NOW = "2026-11-25T10:00:00.000Z"
LATER = "2026-11-25T11:00:00.000Z"
TOKEN_FORMAT = re.compile(r"^prt_[0-9a-f]{16}_[0-9a-f]{64}$")


def issue(expires_at: str | None = None) -> tuple[str, TokenRecord]:
    return issue_token("acme", ["ingest", "read"], now=NOW, expires_at=expires_at)


def secret_of(token: str) -> str:
    parsed = parse_token(token)
    assert parsed is not None
    return parsed[1]


def test_a_good_token_authenticates_with_its_tenant_and_scopes() -> None:
    token, record = issue()
    assert TOKEN_FORMAT.match(token)
    token_id, secret = parse_token(token) or ("", "")
    assert token_id == record.token_id
    assert authenticate(record, secret, now=NOW) == Principal(
        tenant="acme", scopes=frozenset({"ingest", "read"}), token_id=record.token_id
    )


def test_issued_record() -> None:
    token, record = issue_token(
        "acme-2", ["read", "ingest", "read"], now=NOW, expires_at=LATER, description="d" * 300
    )
    assert record.tenant == "acme-2"
    assert record.scopes == ("ingest", "read")  # sorted, deduplicated
    assert (record.created_at, record.expires_at, record.revoked_at) == (NOW, LATER, None)
    assert record.description == "d" * 200
    assert record.secret_sha256 == hashlib.sha256(secret_of(token).encode()).hexdigest()


def test_every_token_is_new() -> None:
    (one, first), (other, second) = issue(), issue()
    assert one != other
    assert first.token_id != second.token_id
    assert authenticate(first, secret_of(other), now=NOW) is None


def test_the_record_never_contains_the_secret() -> None:
    token, record = issue()
    secret = secret_of(token)
    stored = repr(asdict(record)) + repr(record) + repr(record.public())
    assert secret not in stored
    assert secret[:16] not in stored
    assert "secret_sha256" not in record.public()
    assert record.secret_sha256 not in repr(record.public())


# ---- refusals: always None, never a reason ---------------------------------------------


def test_a_wrong_secret_is_refused() -> None:
    token, record = issue()
    secret = secret_of(token)
    wrong = ("0" if secret[0] != "0" else "1") + secret[1:]
    assert authenticate(record, wrong, now=NOW) is None
    assert authenticate(record, "", now=NOW) is None
    assert authenticate(record, record.secret_sha256, now=NOW) is None  # the hash is no secret


def test_an_unknown_token_is_refused() -> None:
    token, _ = issue()
    assert authenticate(None, secret_of(token), now=NOW) is None
    assert authenticate(None, "0" * 64, now=NOW) is None


def test_a_revoked_token_is_refused() -> None:
    token, record = issue()
    revoked = replace(record, revoked_at=NOW)
    assert authenticate(revoked, secret_of(token), now=NOW) is None


def test_an_expired_token_is_refused() -> None:
    token, record = issue(expires_at=LATER)
    secret = secret_of(token)
    assert authenticate(record, secret, now="2026-11-25T10:59:59.999Z") is not None
    assert authenticate(record, secret, now=LATER) is None  # expiry is exclusive
    assert authenticate(record, secret, now="2027-01-01T00:00:00Z") is None


def test_expiry_compares_instants_not_strings() -> None:
    token, record = issue(expires_at="2026-11-25T12:00:00+01:00")  # 11:00 UTC
    assert authenticate(record, secret_of(token), now="2026-11-25T10:30:00Z") is not None
    assert authenticate(record, secret_of(token), now="2026-11-25T11:30:00Z") is None


# ---- parsing ------------------------------------------------------------------------------


def test_parse_token_accepts_a_bearer_prefix() -> None:
    token, record = issue()
    expected = (record.token_id, secret_of(token))
    for value in (token, f"Bearer {token}", f"bearer {token}", f"BEARER   {token} "):
        assert parse_token(value) == expected


GOOD = "prt_" + "a" * 16 + "_" + "b" * 64


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer ",
        "Bearer",
        "prt_",
        GOOD[:-1],
        GOOD + "b",
        GOOD.replace("prt_", "prx_"),
        GOOD.replace("prt_", "PRT_"),
        GOOD.upper(),
        "prt_" + "a" * 15 + "_" + "b" * 65,
        "prt_" + "g" * 16 + "_" + "b" * 64,
        GOOD + "\n",
        " " + GOOD,
        "Basic " + GOOD,
        "Bearer Bearer " + GOOD,
        "Token " + GOOD,
        "prt_" + "a" * 16 + "-" + "b" * 64,
    ],
)
def test_parse_token_rejects_malformed_values(value: str) -> None:
    assert parse_token(value) is None


def test_parse_token_accepts_the_canonical_form() -> None:
    assert parse_token(GOOD) == ("a" * 16, "b" * 64)


# ---- issue_token refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    "tenant", ["", "Acme", "-acme", "acme_corp", "a" * 64, "acme corp", "acmé", "acme\n"]
)
def test_issue_token_rejects_invalid_tenants(tenant: str) -> None:
    with pytest.raises(ValueError, match="tenant"):
        issue_token(tenant, ["read"], now=NOW)


def test_issue_token_accepts_valid_tenants() -> None:
    for tenant in ("a", "0", "acme-2", "a" * 63):
        assert issue_token(tenant, ["read"], now=NOW)[1].tenant == tenant


@pytest.mark.parametrize("scopes", [[], ["write"], ["read", "root"], ["READ"]])
def test_issue_token_rejects_invalid_scopes(scopes: list[str]) -> None:
    with pytest.raises(ValueError, match="scopes must be a non-empty subset"):
        issue_token("acme", scopes, now=NOW)


@pytest.mark.parametrize("expires_at", [NOW, "2026-11-25T09:59:59.999Z", "2020-01-01T00:00:00Z"])
def test_issue_token_rejects_an_expiry_not_in_the_future(expires_at: str) -> None:
    with pytest.raises(ValueError, match="expires_at must be in the future"):
        issue_token("acme", ["admin"], now=NOW, expires_at=expires_at)
