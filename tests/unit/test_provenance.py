"""The signed trace manifest: Merkle root, DSSE/in-toto signing with KMS (moto) and a file
key, and offline verification of a bundle, including every way of tampering with it."""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from prtrace.adapters.signing import Ed25519FileSigner, KmsKeySet, KmsSigner
from prtrace.canonical import canonical_json
from prtrace.provenance.manifest import (
    ProvenanceError,
    load_public_keys,
    merkle_root,
    parse_manifest,
    verify_envelope,
)
from prtrace.storage_keys import manifest_envelope_key, manifest_key
from prtrace_client.provenance import artifact_name, chunk_name, verify_bundle
from tests.assemble_support import KEY_RING
from tests.provenance_support import SignedTrace, signed_trace, write_bundle

# ---- RFC 6962 ---------------------------------------------------------------------------


def _leaf(d: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + d).digest()


def _node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def test_merkle_root_is_rfc_6962_tree_hash() -> None:
    d = [bytes([i]) * 32 for i in range(5)]
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()
    assert merkle_root(d[:1]) == _leaf(d[0]).hex()
    assert merkle_root(d[:2]) == _node(_leaf(d[0]), _leaf(d[1])).hex()
    # n = 3 splits at 2: ((0 1) 2); n = 5 splits at 4: (((0 1)(2 3)) 4)
    assert merkle_root(d[:3]) == _node(_node(_leaf(d[0]), _leaf(d[1])), _leaf(d[2])).hex()
    four = _node(_node(_leaf(d[0]), _leaf(d[1])), _node(_leaf(d[2]), _leaf(d[3])))
    assert merkle_root(d) == _node(four, _leaf(d[4])).hex()
    assert merkle_root(d[::-1]) != merkle_root(d)  # order is part of the root


# ---- signers ----------------------------------------------------------------------------


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name="us-east-1")


def kms_key(kms: Any) -> str:
    return str(
        kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
    )


@pytest.fixture
def file_signer(tmp_path: Path) -> Ed25519FileSigner:
    return Ed25519FileSigner.generate(tmp_path / "signing.pem")


def jwks(*signers: Any) -> bytes:
    return orjson.dumps({"keys": [s.public_jwk() for s in signers]})


@pytest.fixture
def trace(tmp_path: Path, kms: Any) -> SignedTrace:
    return signed_trace(tmp_path, KmsSigner(kms, kms_key(kms)))


@pytest.fixture
def bundle(tmp_path: Path, trace: SignedTrace) -> Path:
    return write_bundle(trace, tmp_path / "bundle")


def keys_of(trace: SignedTrace, kms: Any) -> list[dict[str, Any]]:
    key_id = kms.list_keys()["Keys"][0]["KeyId"]
    return load_public_keys(orjson.dumps(KmsKeySet(kms, [key_id]).jwks()))


def test_record_signs_a_complete_manifest_with_kms(trace: SignedTrace, kms: Any) -> None:
    manifest = parse_manifest(trace.object(manifest_key(trace.tenant, trace.trace_id)))
    assert manifest.version == "prtrace.manifest/v1"
    assert (manifest.tenant, manifest.trace_id) == (trace.tenant, trace.trace_id)
    assert [c.seq for c in manifest.chunks] == [0, 1]
    assert manifest.chain.head == trace.assembled.chain.head
    assert manifest.document.sha256 == trace.assembled.document_sha256
    assert manifest.state_check == "match"
    assert manifest.snapshots is not None
    assert manifest.qa is not None
    assert manifest.qa.image == "qa@sha256:" + "c" * 64
    assert manifest.judge is not None
    assert (manifest.judge.judge, manifest.judge.rubric_version) == ("offline-heuristic v1", "v1")
    assert {a.sha256 for a in manifest.artifacts} >= set(manifest.snapshots.values())
    envelope = trace.object(manifest_envelope_key(trace.tenant, trace.trace_id))
    statement = verify_envelope(envelope, keys_of(trace, kms))
    assert (
        statement["subject"][0]["digest"]["sha256"]
        == hashlib.sha256(manifest.canonical()).hexdigest()
    )
    provenance = trace.outcome["provenance"]
    assert provenance["algorithm"] == "ES256"
    assert provenance["key_id"] == keys_of(trace, kms)[0]["kid"]


def test_a_downloaded_bundle_verifies_with_only_the_public_key(
    bundle: Path, trace: SignedTrace, kms: Any
) -> None:
    result = verify_bundle(bundle, keys_of(trace, kms), chain_keys=KEY_RING)
    assert result.ok, result.failed
    assert any("signature verifies" in p for p in result.passed)
    assert any(p.startswith("chain: recomputed head") for p in result.passed)


def test_one_byte_of_one_chunk_changed_is_named(bundle: Path, trace: SignedTrace, kms: Any) -> None:
    path = bundle / chunk_name(1)
    data = bytearray(path.read_bytes())
    data[40] ^= 0x01
    path.write_bytes(bytes(data))
    result = verify_bundle(bundle, keys_of(trace, kms))
    assert not result.ok
    assert result.failed[0].startswith("chunks/000001.json: SHA-256 ")
    assert "(chunk 1, events 7..13): the chunk was changed" in result.failed[0]


def _resign_free_edit(bundle: Path, change: dict[str, Any]) -> None:
    """Change a field of the manifest (kept canonical), leaving the signature as it was."""
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    for dotted, value in change.items():
        target = manifest
        *path, last = dotted.split(".")
        for part in path:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    (bundle / "manifest.json").write_bytes(canonical_json(manifest))


@pytest.mark.parametrize(
    "field",
    [
        "trace_id",
        "tenant",
        "chain.head",
        "chunks.0.sha256",
        "chunk_merkle_root",
        "artifacts.0.sha256",
        "artifacts.0.size",
        "document.sha256",
        "qa.report.sha256",
        "qa.image",
        "judge.result.sha256",
        "judge.judge",
        "judge.rubric_version",
        "state_check",
    ],
)
def test_tampering_with_any_signed_field_fails(
    bundle: Path, trace: SignedTrace, kms: Any, field: str
) -> None:
    manifest = orjson.loads((bundle / "manifest.json").read_bytes())
    value: Any = manifest
    for part in field.split("."):
        value = value[int(part)] if part.isdigit() else value[part]
    forged = (
        value + 1 if isinstance(value, int) else ("0" * 64 if len(value) == 64 else value + "x")
    )
    _resign_free_edit(bundle, {field: forged})
    result = verify_bundle(bundle, keys_of(trace, kms))
    assert not result.ok
    assert any(
        f.startswith("manifest.json: SHA-256 ") and "is not the signed" in f for f in result.failed
    ), result.failed


def test_a_forged_signature_fails(
    bundle: Path, trace: SignedTrace, kms: Any, file_signer: Any
) -> None:
    envelope = orjson.loads((bundle / "manifest.dsse.json").read_bytes())
    genuine = keys_of(trace, kms)[0]["kid"]
    # Someone else's key signs the same statement, claiming the genuine key id.
    from prtrace.provenance.manifest import PAYLOAD_TYPE, pae

    payload = base64.b64decode(envelope["payload"])
    forged = file_signer.sign(pae(PAYLOAD_TYPE, payload))
    envelope["signatures"] = [{"keyid": genuine, "sig": base64.b64encode(forged).decode()}]
    (bundle / "manifest.dsse.json").write_bytes(orjson.dumps(envelope))
    result = verify_bundle(bundle, keys_of(trace, kms))
    assert result.failed[0] == (
        f"manifest.dsse.json: signature by key {genuine} does not verify: the signed statement "
        "or the signature was changed, or it was made by another key"
    )


def test_a_changed_statement_fails_the_signature(
    bundle: Path, trace: SignedTrace, kms: Any
) -> None:
    envelope = orjson.loads((bundle / "manifest.dsse.json").read_bytes())
    statement = orjson.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(canonical_json(statement)).decode()
    (bundle / "manifest.dsse.json").write_bytes(orjson.dumps(envelope))
    result = verify_bundle(bundle, keys_of(trace, kms))
    assert "does not verify" in result.failed[0]


def test_a_key_not_trusted_is_refused_by_name(
    bundle: Path, trace: SignedTrace, file_signer: Any
) -> None:
    result = verify_bundle(bundle, load_public_keys(jwks(file_signer)))
    assert result.failed[0].startswith("manifest.dsse.json: no signature by a key you trust")
    assert file_signer.key_id in result.failed[0]


def test_rotated_keys_stay_listed_and_old_bundles_still_verify(
    tmp_path: Path, kms: Any, trace: SignedTrace, bundle: Path
) -> None:
    old_key = kms.list_keys()["Keys"][0]["KeyId"]
    new_key = kms_key(kms)  # rotation: a new key signs from now on
    keys = KmsKeySet(kms, [new_key, old_key]).jwks()["keys"]
    assert len(keys) == 2
    trusted = load_public_keys(orjson.dumps({"keys": keys}))
    assert verify_bundle(bundle, trusted).ok
    newer = signed_trace(tmp_path / "newer", KmsSigner(kms, new_key))
    newer_bundle = write_bundle(newer, tmp_path / "newer-bundle")
    assert verify_bundle(newer_bundle, trusted).ok
    only_old = load_public_keys(orjson.dumps({"keys": keys[1:]}))
    assert not verify_bundle(newer_bundle, only_old).ok


def test_a_missing_artifact_is_named(bundle: Path, trace: SignedTrace, kms: Any) -> None:
    manifest = parse_manifest((bundle / "manifest.json").read_bytes())
    gone = manifest.artifacts[0]
    (bundle / artifact_name(gone.sha256)).unlink()
    result = verify_bundle(bundle, keys_of(trace, kms))
    assert result.failed == [
        f"artifacts/{gone.sha256}: missing (artifact ({gone.media_type}), {gone.size} bytes, "
        f"SHA-256 {gone.sha256})"
    ]


def test_a_changed_document_and_results_are_named(
    bundle: Path, trace: SignedTrace, kms: Any
) -> None:
    for name in ("document.json", "judge-result.json", "qa-report.json"):
        (bundle / name).write_bytes((bundle / name).read_bytes().replace(b"}", b" }", 1))
    failed = verify_bundle(bundle, keys_of(trace, kms)).failed
    for name in ("document.json", "judge-result.json", "qa-report.json"):
        assert any(f.startswith(f"{name}: SHA-256 ") for f in failed), failed


def test_a_wrong_chain_key_is_detected(bundle: Path, trace: SignedTrace, kms: Any) -> None:
    from prtrace.integrity import KeyRing

    wrong = KeyRing("k1", {"k1": b"w" * 32})
    result = verify_bundle(bundle, keys_of(trace, kms), chain_keys=wrong)
    assert result.failed == [result.failed[0]]
    assert result.failed[0].startswith("chain: the recomputed head ")


def test_an_ed25519_file_key_signs_the_same_format(tmp_path: Path, file_signer: Any) -> None:
    trace = signed_trace(tmp_path, file_signer)
    bundle = write_bundle(trace, tmp_path / "bundle")
    assert trace.outcome["provenance"]["algorithm"] == "EdDSA"
    assert verify_bundle(bundle, load_public_keys(jwks(file_signer))).ok
    # A PEM public key works as well as a JWKS.
    from cryptography.hazmat.primitives import serialization

    pem = file_signer._key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert verify_bundle(bundle, load_public_keys(pem)).ok


def test_the_kms_public_key_as_der_verifies_too(bundle: Path, trace: SignedTrace, kms: Any) -> None:
    """`aws kms get-public-key --key-id ARN` (the stack output) gives DER: enough to verify."""
    key_id = kms.list_keys()["Keys"][0]["KeyId"]
    der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    keys = load_public_keys(der)
    assert keys[0]["kid"] == keys_of(trace, kms)[0]["kid"]
    assert verify_bundle(bundle, keys).ok


def test_record_retried_keeps_the_stored_manifest(tmp_path: Path, file_signer: Any) -> None:
    trace = signed_trace(tmp_path, file_signer)
    key = manifest_envelope_key(trace.tenant, trace.trace_id)
    first = trace.object(key)
    from prtrace.pipeline.attestation import ManifestSigner

    again = ManifestSigner(trace.blobs, file_signer, "qa@sha256:" + "c" * 64)
    from tests.judge_factories import qa_report
    from tests.pipeline_factories import judge_result

    draft = trace.object(trace.assembled.manifest_draft_key or "")
    report, result = qa_report("resolved", trace_id=trace.trace_id), judge_result(trace.trace_id)
    signed = again.complete(
        trace.tenant, trace.trace_id, draft,
        (report, report.model_dump_json().encode()), None,
        (result, result.model_dump_json().encode()),
    )  # fmt: skip
    assert signed.manifest_sha256 == trace.outcome["provenance"]["manifest_sha256"]
    assert trace.object(key) == first  # nothing overwritten


def test_bad_key_files_say_what_is_wrong() -> None:
    with pytest.raises(ProvenanceError, match="neither JSON"):
        load_public_keys(b"not a key")
    with pytest.raises(ProvenanceError, match="unsupported key type 'RSA'"):
        load_public_keys(b'{"kty": "RSA", "n": "x", "e": "AQAB"}')
    with pytest.raises(ProvenanceError, match="not its RFC 7638 thumbprint"):
        load_public_keys(
            b'{"kty": "OKP", "crv": "Ed25519", "x": "' + b"A" * 43 + b'", "kid": "me"}'
        )


def test_a_bundle_without_its_files_is_not_a_bundle(tmp_path: Path) -> None:
    result = verify_bundle(tmp_path, [])
    assert result.failed == ["manifest.dsse.json, manifest.json: missing; not a trace bundle"]


def test_copy_of_the_bundle_elsewhere_still_verifies(
    bundle: Path, trace: SignedTrace, kms: Any, tmp_path: Path
) -> None:
    moved = Path(shutil.copytree(bundle, tmp_path / "elsewhere"))
    assert verify_bundle(moved, keys_of(trace, kms)).ok
