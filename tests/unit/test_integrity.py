"""Tamper evidence: the chunk MAC binds a chunk to its place, the event chain detects any
edit, insertion, removal or reordering, and says where the recorded chain first diverges."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest

from prtrace.canonical import canonical_json
from prtrace.integrity import (
    CHAIN_DOMAIN,
    MIN_KEY_BYTES,
    KeyRing,
    UnknownKey,
    chain_seed,
    chunk_mac,
    compute_chain,
    sha256_hex,
    verify_chain,
    verify_chunk_mac,
)
from tests.factories import event, events

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
TRACE = "tr_01JDQ8Z3V6K4M2N9P7R5T3W1XY"
OTHER_TRACE = "tr_01JDQ8Z3V6K4M2N9P7R5T3W1XZ"
DIGEST = sha256_hex(b'{"events":[]}')
BOUND: dict[str, Any] = {
    "tenant": "acme",
    "trace_id": TRACE,
    "chunk_seq": 3,
    "chunk_sha256": DIGEST,
}


# ---- chunk MAC ---------------------------------------------------------------------------


def test_chunk_mac_verifies_for_what_it_was_made_for() -> None:
    mac = chunk_mac(KEY, **BOUND)
    assert re.fullmatch("[0-9a-f]{64}", mac)
    assert verify_chunk_mac(KEY, mac, **BOUND)


def test_chunk_mac_message_layout() -> None:
    """HMAC-SHA256(k, "prtrace/chunk/v1\\0" || tenant \\0 trace_id \\0 seq \\0 sha256)."""
    message = b"prtrace/chunk/v1\x00\x00acme\x00" + TRACE.encode() + b"\x003\x00" + DIGEST.encode()
    assert chunk_mac(KEY, **BOUND) == hmac.new(KEY, message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant", "acme2"),
        ("trace_id", OTHER_TRACE),
        ("chunk_seq", 4),
        ("chunk_sha256", sha256_hex(b"other body")),
    ],
)
def test_chunk_mac_binds_tenant_trace_seq_and_digest(field: str, value: object) -> None:
    mac = chunk_mac(KEY, **BOUND)
    moved = BOUND | {field: value}
    assert not verify_chunk_mac(KEY, mac, **moved)
    assert chunk_mac(KEY, **moved) != mac


def test_chunk_mac_fields_cannot_be_shifted_across_the_separator() -> None:
    one = chunk_mac(KEY, tenant="ab", trace_id="c", chunk_seq=1, chunk_sha256=DIGEST)
    other = chunk_mac(KEY, tenant="a", trace_id="bc", chunk_seq=1, chunk_sha256=DIGEST)
    assert one != other


def test_chunk_mac_depends_on_the_key() -> None:
    mac = chunk_mac(KEY, **BOUND)
    assert not verify_chunk_mac(OTHER_KEY, mac, **BOUND)
    assert not verify_chunk_mac(KEY, mac.upper(), **BOUND)
    assert not verify_chunk_mac(KEY, "", **BOUND)


# ---- key ring ----------------------------------------------------------------------------


def test_key_ring_signs_with_current_and_verifies_with_any() -> None:
    ring = KeyRing(current_id="k2", keys={"k1": KEY, "k2": OTHER_KEY})
    assert ring.current == OTHER_KEY
    assert ring.get("k1") == KEY
    with pytest.raises(UnknownKey, match="'k3'"):
        ring.get("k3")


def test_key_ring_rejects_short_keys() -> None:
    KeyRing(current_id="k1", keys={"k1": b"x" * MIN_KEY_BYTES})
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        KeyRing(current_id="k1", keys={"k1": b"x" * (MIN_KEY_BYTES - 1)})
    with pytest.raises(ValueError, match="'old'"):
        KeyRing(current_id="k1", keys={"k1": KEY, "old": b"short"})


def test_key_ring_rejects_an_unknown_current_id() -> None:
    with pytest.raises(UnknownKey, match="current key id 'k2'"):
        KeyRing(current_id="k2", keys={"k1": KEY})
    with pytest.raises(UnknownKey):
        KeyRing(current_id="k1", keys={})


def test_key_ring_repr_hides_key_material() -> None:
    assert "kkkk" not in repr(KeyRing(current_id="k1", keys={"k1": KEY}))


# ---- event chain -------------------------------------------------------------------------

CANONICAL = [canonical_json(e) for e in events(0, 6)]


def chain(items: list[bytes], key: bytes = KEY, trace: str = TRACE) -> list[str]:
    return compute_chain(key, trace, items)


def test_chain_formula() -> None:
    seed = hmac.new(KEY, CHAIN_DOMAIN + TRACE.encode(), hashlib.sha256).digest()
    assert CHAIN_DOMAIN == b"prtrace/chain/v1\x00"
    assert chain_seed(KEY, TRACE) == seed
    h0 = hmac.new(KEY, seed + CANONICAL[0], hashlib.sha256).digest()
    h1 = hmac.new(KEY, h0 + CANONICAL[1], hashlib.sha256).digest()
    assert chain(CANONICAL[:2]) == [h0.hex(), h1.hex()]


def test_an_untouched_chain_verifies() -> None:
    links = chain(CANONICAL)
    for expected_links in (None, links):
        verdict = verify_chain(
            KEY, TRACE, CANONICAL, expected_head=links[-1], expected_links=expected_links
        )
        assert verdict.ok
        assert (verdict.event_count, verdict.head, verdict.first_mismatch) == (6, links[-1], None)


def test_an_empty_chain_has_the_seed_as_head() -> None:
    assert chain([]) == []
    verdict = verify_chain(KEY, TRACE, [], expected_head=chain_seed(KEY, TRACE).hex())
    assert verdict.ok
    assert verdict.event_count == 0


def _edited() -> list[bytes]:
    tampered = list(CANONICAL)
    tampered[2] = canonical_json(event(2) | {"ts": "2026-11-25T09:00:02.003Z"})
    assert tampered[2] != CANONICAL[2]
    return tampered


TAMPERINGS = {
    # name: (tampered events, index of the first link that differs)
    "edited": (_edited(), 2),
    "inserted": ([*CANONICAL[:3], canonical_json(event(99)), *CANONICAL[3:]], 3),
    "inserted_at_end": ([*CANONICAL, canonical_json(event(6))], 6),
    "removed_middle": ([*CANONICAL[:1], *CANONICAL[2:]], 1),
    "removed_first": (CANONICAL[1:], 0),
    "removed_last": (CANONICAL[:-1], 5),
    "reordered": ([*CANONICAL[:3], CANONICAL[4], CANONICAL[3], CANONICAL[5]], 3),
    "swapped_first_and_last": ([CANONICAL[5], *CANONICAL[1:5], CANONICAL[0]], 0),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_is_located_with_the_recorded_links(name: str) -> None:
    tampered, first_mismatch = TAMPERINGS[name]
    links = chain(CANONICAL)
    verdict = verify_chain(KEY, TRACE, tampered, expected_head=links[-1], expected_links=links)
    assert not verdict.ok
    assert verdict.first_mismatch == first_mismatch
    assert verdict.event_count == len(tampered)
    assert verdict.reason == f"chain diverges at event index {first_mismatch}"


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_changes_the_head(name: str) -> None:
    tampered, _ = TAMPERINGS[name]
    links = chain(CANONICAL)
    verdict = verify_chain(KEY, TRACE, tampered, expected_head=links[-1])
    assert not verdict.ok
    assert verdict.first_mismatch is None
    assert verdict.reason == "chain head does not match"
    assert verdict.head != links[-1]


def test_links_before_the_tampering_are_unchanged() -> None:
    links, tampered = chain(CANONICAL), chain(_edited())
    assert tampered[:2] == links[:2]
    assert all(a != b for a, b in zip(tampered[2:], links[2:], strict=True))


def test_a_chain_does_not_verify_under_another_trace_id() -> None:
    links = chain(CANONICAL)
    assert chain(CANONICAL, trace=OTHER_TRACE)[0] != links[0]
    verdict = verify_chain(
        KEY, OTHER_TRACE, CANONICAL, expected_head=links[-1], expected_links=links
    )
    assert not verdict.ok
    assert verdict.first_mismatch == 0


def test_a_chain_does_not_verify_under_another_key() -> None:
    links = chain(CANONICAL)
    verdict = verify_chain(
        OTHER_KEY, TRACE, CANONICAL, expected_head=links[-1], expected_links=links
    )
    assert not verdict.ok
    assert verdict.first_mismatch == 0
    assert not verify_chain(OTHER_KEY, TRACE, CANONICAL, expected_head=links[-1]).ok


def test_a_forged_head_is_detected_even_with_matching_links() -> None:
    links = chain(CANONICAL)
    verdict = verify_chain(KEY, TRACE, CANONICAL, expected_head="0" * 64, expected_links=links)
    assert not verdict.ok
    assert verdict.reason == "chain head does not match"
