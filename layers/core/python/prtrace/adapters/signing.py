"""Signers for the trace manifest (prtrace.provenance.manifest.Signer) and the published key set.

- `KmsSigner`: an AWS KMS asymmetric key (key spec ECC_NIST_P256, SIGN_VERIFY), signing
  with ECDSA_SHA_256 over the raw message (at most 4096 bytes: the DSSE pre-authentication
  encoding of a small in-toto Statement). The private key never leaves KMS. The same
  adapter serves the local cloud: moto's KMS implements Sign and GetPublicKey for this key
  spec (the CDK bridge creates the stack's key with its KeySpec and KeyUsage).
- `Ed25519FileSigner`: an Ed25519 private key in a PEM file (PKCS#8), for signing outside
  AWS (tests, an operator's offline tooling).
- `KmsKeySet`: the JWKS of the current key and every earlier one (rotation: a new KMS key
  becomes current, old ones stay listed so bundles they signed still verify).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prtrace.provenance.manifest import (
    Algorithm,
    ProvenanceError,
    jwk_from_der,
    jwk_from_public_key,
)

SIGNING_ALGORITHM = "ECDSA_SHA_256"


class KmsSigner:
    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self._key = key_id
        self._jwk: dict[str, str] | None = None
        self._lock = threading.Lock()

    @property
    def algorithm(self) -> Algorithm:
        return "ES256"

    @property
    def key_id(self) -> str:
        return self.public_jwk()["kid"]

    def public_jwk(self) -> dict[str, str]:
        with self._lock:
            if self._jwk is None:
                self._jwk = kms_public_jwk(self._kms, self._key)
            return self._jwk

    def sign(self, message: bytes) -> bytes:
        answer = self._kms.sign(
            KeyId=self._key,
            Message=message,
            MessageType="RAW",
            SigningAlgorithm=SIGNING_ALGORITHM,
        )
        return bytes(answer["Signature"])


def kms_public_jwk(kms: Any, key_id: str) -> dict[str, str]:
    answer = kms.get_public_key(KeyId=key_id)
    # moto answers without KeySpec; the DER key itself must be P-256 either way.
    spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec") or "ECC_NIST_P256"
    if spec != "ECC_NIST_P256" or answer.get("KeyUsage", "SIGN_VERIFY") != "SIGN_VERIFY":
        raise ProvenanceError(
            f"KMS key {key_id} is {spec}/{answer.get('KeyUsage')}; the manifest signing key "
            "must be ECC_NIST_P256 for SIGN_VERIFY"
        )
    return jwk_from_der(bytes(answer["PublicKey"]))


class KmsKeySet:
    """JWKS of the signing keys, current first; cached (public keys never change)."""

    def __init__(self, kms: Any, key_ids: Sequence[str]) -> None:
        self._kms = kms
        self._key_ids = [k for k in key_ids if k]
        self._cached: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            if self._cached is None:
                keys = [kms_public_jwk(self._kms, key) for key in self._key_ids]
                self._cached = {"keys": keys}
            return self._cached


class Ed25519FileSigner:
    def __init__(self, path: Path) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ProvenanceError(f"{path} does not hold an Ed25519 private key")
        self._key = key
        self._jwk = jwk_from_public_key(key.public_key())

    @staticmethod
    def generate(path: Path) -> Ed25519FileSigner:
        """Write a new key (mode 0600, never over an existing file) and load it."""
        import os

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        return Ed25519FileSigner(path)

    @property
    def algorithm(self) -> Algorithm:
        return "EdDSA"

    @property
    def key_id(self) -> str:
        return self._jwk["kid"]

    def public_jwk(self) -> dict[str, str]:
        return dict(self._jwk)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)
