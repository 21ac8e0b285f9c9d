"""API tokens: `prt_<id>_<secret>`. Only SHA-256(secret) is stored; the id finds the record,
the secret is compared in constant time. The secret has 256 bits of entropy, so a plain
hash (no slow KDF) is the right tool: it cannot be brute-forced and stays fast enough for
an authorizer."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

Scope = Literal["ingest", "read", "admin"]
SCOPES: Final[tuple[Scope, ...]] = ("ingest", "read", "admin")
TENANT_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_TOKEN = re.compile(r"^prt_([0-9a-f]{16})_([0-9a-f]{64})$")


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    tenant: str
    scopes: tuple[str, ...]
    secret_sha256: str
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None
    description: str = ""

    def public(self) -> dict[str, object]:
        """Everything but the hash, for listings."""
        return {
            "token_id": self.token_id,
            "tenant": self.tenant,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "description": self.description,
        }


@dataclass(frozen=True)
class Principal:
    """Who is calling: what the authorizer hands to the API Lambda."""

    tenant: str
    scopes: frozenset[str]
    token_id: str


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    tenant: str,
    scopes: list[str],
    *,
    now: str,
    expires_at: str | None = None,
    description: str = "",
) -> tuple[str, TokenRecord]:
    """A new token (shown once) and the record to store."""
    if not TENANT_PATTERN.fullmatch(tenant):  # match() would let "$" pass a trailing "\n"
        raise ValueError(f"tenant {tenant!r} must match {TENANT_PATTERN.pattern}")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {scopes}")
    if expires_at is not None and _parse_time(expires_at) <= _parse_time(now):
        raise ValueError("expires_at must be in the future")
    token_id, secret = secrets.token_hex(8), secrets.token_hex(32)
    record = TokenRecord(
        token_id=token_id,
        tenant=tenant,
        scopes=tuple(sorted(set(scopes))),
        secret_sha256=_secret_hash(secret),
        created_at=now,
        expires_at=expires_at,
        description=description[:200],
    )
    return f"prt_{token_id}_{secret}", record


def parse_token(value: str) -> tuple[str, str] | None:
    """(token id, secret) from `prt_<id>_<secret>` (with or without `Bearer `), else None."""
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    match = _TOKEN.fullmatch(value)
    return (match.group(1), match.group(2)) if match else None


def authenticate(record: TokenRecord | None, secret: str, *, now: str) -> Principal | None:
    """The caller, if the secret matches a live token; None otherwise (no reason leaks)."""
    presented = _secret_hash(secret)
    expected = record.secret_sha256 if record else "0" * 64
    matches = hmac.compare_digest(presented, expected)  # constant time, even for unknown ids
    if record is None or not matches or record.revoked_at is not None:
        return None
    if record.expires_at is not None and _parse_time(record.expires_at) <= _parse_time(now):
        return None
    return Principal(
        tenant=record.tenant, scopes=frozenset(record.scopes), token_id=record.token_id
    )


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # naive means UTC
