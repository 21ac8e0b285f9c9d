"""Tamper evidence: a server MAC on every stored chunk and an HMAC chain over all events.

    h_-1 = HMAC-SHA256(k, "prtrace/chain/v1\\0" || trace_id)
    h_n  = HMAC-SHA256(k, h_{n-1} || canonical(event_n))

Because each link covers the previous one, editing, inserting, removing or reordering any
event changes every later link and the head. The chunk MAC binds a chunk's digest to its
tenant, trace and position, so a stored chunk cannot be swapped or moved unnoticed.
Keys live in a KeyRing (loaded by adapters/keys.py); records name the key id they used so
keys can rotate without invalidating what is stored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CHAIN_DOMAIN = b"prtrace/chain/v1\x00"
CHUNK_DOMAIN = b"prtrace/chunk/v1\x00"
MIN_KEY_BYTES = 32


class UnknownKey(LookupError):
    """A record names a key id the key ring does not hold."""


@dataclass(frozen=True)
class KeyRing:
    """Integrity keys by id; `current_id` signs new records, any listed key verifies."""

    current_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise UnknownKey(f"current key id {self.current_id!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(f"key {key_id!r} is shorter than {MIN_KEY_BYTES} bytes")

    @property
    def current(self) -> bytes:
        return self.keys[self.current_id]

    def get(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKey(f"key id {key_id!r} is not in the key ring") from None


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in blocks (never whole into memory)."""
    with path.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256")
        return digest.hexdigest(), stream.tell()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_mac(key: bytes, *, tenant: str, trace_id: str, chunk_seq: int, chunk_sha256: str) -> str:
    message = b"\x00".join(
        (
            CHUNK_DOMAIN,
            tenant.encode(),
            trace_id.encode(),
            str(chunk_seq).encode(),
            chunk_sha256.encode(),
        )
    )
    return hmac.digest(key, message, "sha256").hex()


def verify_chunk_mac(
    key: bytes, mac: str, *, tenant: str, trace_id: str, chunk_seq: int, chunk_sha256: str
) -> bool:
    expected = chunk_mac(
        key, tenant=tenant, trace_id=trace_id, chunk_seq=chunk_seq, chunk_sha256=chunk_sha256
    )
    return hmac.compare_digest(expected, mac)


def chain_seed(key: bytes, trace_id: str) -> bytes:
    """h_-1: derived from the trace id, so a chain cannot be replayed under another trace."""
    return hmac.digest(key, CHAIN_DOMAIN + trace_id.encode(), "sha256")


class EventChain:
    """Incremental chain: feed canonical events in seq order, read links and the head."""

    __slots__ = ("_key", "head", "length")

    def __init__(self, key: bytes, trace_id: str) -> None:
        self._key = key
        self.head = chain_seed(key, trace_id)
        self.length = 0

    def append(self, canonical_event: bytes) -> bytes:
        self.head = hmac.digest(self._key, self.head + canonical_event, "sha256")
        self.length += 1
        return self.head


def compute_chain(key: bytes, trace_id: str, canonical_events: Iterable[bytes]) -> list[str]:
    """Every link h_0..h_n as hex; the last one is the head."""
    chain = EventChain(key, trace_id)
    return [chain.append(event).hex() for event in canonical_events]


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    event_count: int
    head: str
    first_mismatch: int | None = None  # index of the first event whose link differs
    reason: str = ""


def verify_chain(
    key: bytes,
    trace_id: str,
    canonical_events: Iterable[bytes],
    *,
    expected_head: str,
    expected_links: Sequence[str] | None = None,
) -> ChainVerdict:
    """Recompute the chain; with the recorded links, also say where it first diverges."""
    chain = EventChain(key, trace_id)
    first_mismatch: int | None = None
    for index, event in enumerate(canonical_events):
        link = chain.append(event).hex()
        if (
            first_mismatch is None
            and expected_links is not None
            and (
                index >= len(expected_links) or not hmac.compare_digest(link, expected_links[index])
            )
        ):
            first_mismatch = index
    head = chain.head.hex()
    count = chain.length
    if expected_links is not None and first_mismatch is None and count != len(expected_links):
        first_mismatch = count  # events were removed from the end
    if hmac.compare_digest(head, expected_head) and first_mismatch is None:
        return ChainVerdict(ok=True, event_count=count, head=head)
    if first_mismatch is not None:
        reason = f"chain diverges at event index {first_mismatch}"
    else:
        reason = "chain head does not match"
    return ChainVerdict(
        ok=False, event_count=count, head=head, first_mismatch=first_mismatch, reason=reason
    )
