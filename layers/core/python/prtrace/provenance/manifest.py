"""Provenance anyone can verify offline: a signed trace manifest.

The HMAC event chain proves integrity only to whoever holds the server's key. The manifest
states, in canonical JSON (RFC 8785 via prtrace.canonical), everything a trace's products
are made of: the chain head, every chunk's SHA-256 and a Merkle root over them, every
artifact's SHA-256 and size, the document's, the QA report's and the judge result's
digests with the judge and rubric versions. It is signed with an asymmetric key whose
public half is published (`GET /v1/keys`, JWKS), so anyone holding a downloaded bundle and
that key can check it, offline.

Formats, each an existing standard:
- the signature is a DSSE envelope (in-toto's Dead Simple Signing Envelope,
  github.com/secure-systems-lab/dsse): it signs bytes, not re-serialized JSON, binds the
  payload type into what is signed (PAE), and holds several signatures (key rotation);
- its payload is an in-toto Statement v1 whose subject is `manifest.json` by SHA-256: the
  signed message stays small (AWS KMS signs at most 4096 bytes of raw message, and a
  manifest lists every chunk and artifact), and generic in-toto tooling can read it;
- the chunk digests' Merkle root is RFC 6962's Merkle Tree Hash (Certificate
  Transparency: domain-separated leaves and nodes, so no second-preimage tricks);
- public keys are JWKs (RFC 7517; EC P-256 "ES256" from KMS, OKP Ed25519 "EdDSA" per
  RFC 8037) named by their RFC 7638 thumbprint, which is the DSSE `keyid`: a verifier can
  tell which of its keys a signature claims without trusting anything else.
ES256 signatures are DER-encoded ECDSA (as KMS returns them, as cosign stores them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prtrace.canonical import canonical_json

MANIFEST_VERSION: Final = "prtrace.manifest/v1"
PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE: Final = "https://prtrace.dev/attestations/trace-manifest/v1"
# A dataset export's manifest (prtrace.dataset.exports), signed the same way by the export job.
EXPORT_PREDICATE_TYPE: Final = "https://prtrace.dev/attestations/dataset-export/v1"
MANIFEST_NAME: Final = "manifest.json"
MAX_SIGNED_BYTES: Final = 4096  # KMS Sign with MessageType RAW
Algorithm = Literal["ES256", "EdDSA"]

_Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_STRICT = ConfigDict(extra="forbid", frozen=True)


# ---- the manifest ---------------------------------------------------------------------


class DigestedFile(BaseModel):
    model_config = _STRICT

    sha256: _Sha256
    size: Annotated[int, Field(ge=0)]


class ChunkEntry(BaseModel):
    model_config = _STRICT

    seq: Annotated[int, Field(ge=0)]
    first_event_seq: Annotated[int, Field(ge=0)]
    last_event_seq: Annotated[int, Field(ge=0)]
    sha256: _Sha256


class ArtifactEntry(BaseModel):
    model_config = _STRICT

    sha256: _Sha256
    size: Annotated[int, Field(ge=0)]
    media_type: str


class ChainEntry(BaseModel):
    model_config = _STRICT

    key_id: str
    head: str
    length: Annotated[int, Field(ge=0)]


class QAEntry(BaseModel):
    model_config = _STRICT

    report: DigestedFile
    report_version: str
    verdict: str
    backend: str
    image: str | None  # the QA task's image (URI with its digest or asset hash), if known


class JudgeEntry(BaseModel):
    model_config = _STRICT

    result: DigestedFile
    judge: str
    rubric_version: str
    status: str


class TraceManifest(BaseModel):
    """Written by Assemble (`qa`, `judge` unset) and completed by Record, which signs it."""

    model_config = _STRICT

    version: Literal["prtrace.manifest/v1"] = MANIFEST_VERSION
    trace_id: str
    tenant: str
    document: DigestedFile
    chain: ChainEntry
    event_count: Annotated[int, Field(ge=0)]
    chunks: list[ChunkEntry]
    chunk_merkle_root: _Sha256  # RFC 6962 over the chunks' SHA-256 digests, in seq order
    artifacts: list[ArtifactEntry]  # by SHA-256
    snapshots: dict[Literal["base", "final"], _Sha256] | None = None
    state_check: str | None = None  # match | state_mismatch | not_checked (document has all)
    qa: QAEntry | None = None
    qa_skipped: str | None = None
    judge: JudgeEntry | None = None

    def canonical(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))


def parse_manifest(data: bytes) -> TraceManifest:
    try:
        return TraceManifest.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = "/".join(str(p) for p in first["loc"])
        raise ProvenanceError(f"manifest.json is not a {MANIFEST_VERSION} manifest: "
                              f"{where}: {first['msg']}") from None  # fmt: skip


# ---- RFC 6962 Merkle tree hash ----------------------------------------------------------


def merkle_root(leaves: Sequence[bytes]) -> str:
    """MTH of RFC 6962 section 2.1: leaf = SHA-256(0x00 || d), node = SHA-256(0x01 || l || r),
    split at the largest power of two below n; the empty tree hashes the empty string."""

    def mth(items: Sequence[bytes]) -> bytes:
        if not items:
            return hashlib.sha256(b"").digest()
        if len(items) == 1:
            return hashlib.sha256(b"\x00" + items[0]).digest()
        k = 1 << ((len(items) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()

    return mth(list(leaves)).hex()


def chunk_merkle_root(chunk_sha256s: Iterable[str]) -> str:
    return merkle_root([bytes.fromhex(digest) for digest in chunk_sha256s])


# ---- DSSE + in-toto ---------------------------------------------------------------------


class ProvenanceError(Exception):
    """A manifest, envelope or key that does not verify; the message says exactly what."""


class Signer(Protocol):
    @property
    def key_id(self) -> str:
        """The RFC 7638 thumbprint of the public key."""

    @property
    def algorithm(self) -> Algorithm: ...

    def sign(self, message: bytes) -> bytes:
        """The signature of `message` (ES256: DER ECDSA over SHA-256; EdDSA: 64 bytes)."""

    def public_jwk(self) -> dict[str, str]: ...


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(
    manifest_bytes: bytes, predicate: Mapping[str, Any], predicate_type: str = PREDICATE_TYPE
) -> bytes:
    """The in-toto Statement (canonical JSON) naming the manifest by its SHA-256."""
    return canonical_json(
        {
            "_type": STATEMENT_TYPE,
            "subject": [
                {
                    "name": MANIFEST_NAME,
                    "digest": {"sha256": hashlib.sha256(manifest_bytes).hexdigest()},
                }
            ],
            "predicateType": predicate_type,
            "predicate": dict(predicate),
        }
    )


def sign_statement(payload: bytes, signer: Signer) -> bytes:
    """The DSSE envelope (canonical JSON) of a statement, signed by `signer`."""
    message = pae(PAYLOAD_TYPE, payload)
    if len(message) > MAX_SIGNED_BYTES:  # ids and tenants are bounded: never
        raise ProvenanceError(f"the signed statement is {len(message)} bytes, over 4096")
    signature = signer.sign(message)
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(signature).decode()}],
    }
    return canonical_json(envelope)


def sign_manifest(manifest: TraceManifest, signer: Signer) -> tuple[bytes, bytes]:
    """(manifest.json bytes, manifest.dsse.json bytes)."""
    body = manifest.canonical()
    predicate = {
        "manifest_version": MANIFEST_VERSION,
        "trace_id": manifest.trace_id,
        "tenant": manifest.tenant,
    }
    return body, sign_statement(statement(body, predicate), signer)


def sign_export_manifest(
    manifest_bytes: bytes, export_id: str, tenant: str, signer: Signer
) -> bytes:
    """manifest.dsse.json of a dataset export's manifest.json."""
    predicate = {"export_id": export_id, "tenant": tenant}
    return sign_statement(statement(manifest_bytes, predicate, EXPORT_PREDICATE_TYPE), signer)


# ---- keys -------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the canonical JSON of the key's required members."""
    required = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}.get(str(jwk.get("kty")))
    if required is None:
        raise ProvenanceError(f"unsupported key type {jwk.get('kty')!r} (EC P-256 or OKP Ed25519)")
    try:
        members = {name: str(jwk[name]) for name in required}
    except KeyError as missing:
        raise ProvenanceError(f"the {jwk['kty']} key lacks its {missing} member") from None
    return _b64url(hashlib.sha256(canonical_json(members)).digest())


def jwk_from_public_key(public_key: Any) -> dict[str, str]:
    """The JWK (with kid = thumbprint, alg, use) of a `cryptography` public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ProvenanceError(f"EC keys must be on P-256, not {public_key.curve.name}")
        numbers = public_key.public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
            "alg": "ES256",
        }
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw), "alg": "EdDSA"}
    else:
        raise ProvenanceError(f"unsupported public key {type(public_key).__name__}")
    return jwk | {"use": "sig", "kid": jwk_thumbprint(jwk)}


def jwk_from_der(spki_der: bytes) -> dict[str, str]:
    """The JWK of a DER SubjectPublicKeyInfo (what KMS GetPublicKey answers)."""
    from cryptography.hazmat.primitives import serialization

    return jwk_from_public_key(serialization.load_der_public_key(spki_der))


def _public_key(jwk: Mapping[str, Any]) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    try:
        if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            x = int.from_bytes(_b64url_decode(str(jwk["x"])), "big")
            y = int.from_bytes(_b64url_decode(str(jwk["y"])), "big")
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(_b64url_decode(str(jwk["x"])))
    except (KeyError, ValueError, binascii.Error) as exc:
        raise ProvenanceError(f"key {jwk.get('kid')!r} is not a valid JWK: {exc}") from None
    raise ProvenanceError(
        f"key {jwk.get('kid')!r}: unsupported key {jwk.get('kty')}/{jwk.get('crv')} "
        "(EC P-256 or OKP Ed25519)"
    )


def load_public_keys(data: bytes) -> list[dict[str, Any]]:
    """Keys from a JWKS ({"keys": [...]}), one JWK, a PEM or a DER public key (what
    `aws kms get-public-key` gives, base64-decoded); each gets its thumbprint as kid (a kid
    that is not the thumbprint is refused: it would name another key)."""
    if data[:1] == b"\x30":  # a DER SEQUENCE: SubjectPublicKeyInfo
        try:
            return [jwk_from_der(data)]
        except ValueError as exc:
            raise ProvenanceError(f"the DER key cannot be read: {exc}") from None
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        from cryptography.hazmat.primitives import serialization

        try:
            return [jwk_from_public_key(serialization.load_pem_public_key(text))]
        except ValueError as exc:
            raise ProvenanceError(f"the PEM key cannot be read: {exc}") from None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProvenanceError(
            "the key file is neither JSON (JWKS or JWK) nor PEM nor DER"
        ) from None
    keys = parsed.get("keys") if isinstance(parsed, dict) and "keys" in parsed else [parsed]
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise ProvenanceError("the JWKS holds no keys")
    loaded = []
    for jwk in keys:
        thumbprint = jwk_thumbprint(jwk)
        if "kid" in jwk and jwk["kid"] != thumbprint:
            raise ProvenanceError(
                f"key {jwk['kid']!r}: its kid is not its RFC 7638 thumbprint ({thumbprint})"
            )
        _public_key(jwk)  # refuse an invalid point now, not at verification
        loaded.append(dict(jwk) | {"kid": thumbprint})
    return loaded


# ---- verification -----------------------------------------------------------------------


def verify_signature(jwk: Mapping[str, Any], signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = _public_key(jwk)
    try:
        if jwk["kty"] == "EC":
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_envelope(
    envelope_bytes: bytes,
    keys: Sequence[Mapping[str, Any]],
    predicate_type: str = PREDICATE_TYPE,
) -> dict[str, Any]:
    """The verified in-toto Statement, or ProvenanceError saying what fails. A signature
    counts only when its keyid names one of `keys` and it verifies with that key, and the
    statement must be of `predicate_type` (a trace's manifest, or a dataset export's)."""
    try:
        envelope = orjson.loads(envelope_bytes)
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = list(envelope["signatures"])
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error, ValueError) as exc:
        raise ProvenanceError(f"manifest.dsse.json is not a DSSE envelope: {exc}") from None
    if payload_type != PAYLOAD_TYPE:
        raise ProvenanceError(
            f"manifest.dsse.json: payloadType {payload_type!r} is not {PAYLOAD_TYPE!r}"
        )
    by_id = {str(k["kid"]): k for k in keys}
    message = pae(payload_type, payload)
    named = []
    for entry in signatures:
        keyid = str(entry.get("keyid", "")) if isinstance(entry, dict) else ""
        named.append(keyid)
        if keyid not in by_id:
            continue
        try:
            signature = base64.b64decode(entry["sig"], validate=True)
        except (KeyError, TypeError, binascii.Error, ValueError):
            raise ProvenanceError(f"signature by key {keyid}: not base64") from None
        if not verify_signature(by_id[keyid], signature, message):
            raise ProvenanceError(
                f"signature by key {keyid} does not verify: the signed statement or the "
                "signature was changed, or it was made by another key"
            )
        break
    else:
        raise ProvenanceError(
            "no signature by a key you trust: the envelope is signed by "
            + (", ".join(named) or "no key")
            + "; the trusted keys are "
            + ", ".join(by_id)
        )
    try:
        verified: dict[str, Any] = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ProvenanceError("the signed payload is not JSON") from None
    if verified.get("_type") != STATEMENT_TYPE or verified.get("predicateType") != predicate_type:
        raise ProvenanceError(
            f"the signed payload is not an in-toto Statement v1 of {predicate_type}"
        )
    return verified


def unverified_statement(envelope_bytes: bytes) -> dict[str, Any]:
    """The statement an envelope carries, its signatures not checked: for reading back an
    envelope this service stored itself, never for trusting one."""
    try:
        statement: dict[str, Any] = orjson.loads(
            base64.b64decode(orjson.loads(envelope_bytes)["payload"], validate=True)
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error, ValueError) as exc:
        raise ProvenanceError(f"manifest.dsse.json is not a DSSE envelope: {exc}") from None
    return statement


def signed_manifest_digest(verified_statement: Mapping[str, Any]) -> str:
    for subject in verified_statement.get("subject") or []:
        if subject.get("name") == MANIFEST_NAME:
            return str((subject.get("digest") or {}).get("sha256", ""))
    raise ProvenanceError(f"the signed statement names no {MANIFEST_NAME} subject")
