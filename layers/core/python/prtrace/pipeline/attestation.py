"""The Record step's part of the trace manifest: complete the draft Assemble wrote with the
QA report's and the judge result's digests and versions, sign it, store both files.

Nothing stored is overwritten: the manifest is deterministic (canonical JSON of the same
inputs), so a retried Record finds the same bytes stored and keeps the envelope an earlier
attempt signed (ECDSA signatures differ per attempt; either one verifies). A different
manifest already stored is a conflict, raised for an operator to look at.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from prtrace.judge.result import JudgeResult
from prtrace.provenance.manifest import (
    DigestedFile,
    JudgeEntry,
    QAEntry,
    Signer,
    parse_manifest,
    sign_manifest,
)
from prtrace.qa.report import QAReport
from prtrace.storage_keys import manifest_envelope_key, manifest_key

CONTENT_TYPE = "application/json"


class ManifestStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool: ...


class ManifestConflict(RuntimeError):
    """Another manifest is stored for this trace; it was left as it is."""


@dataclass(frozen=True)
class SignedManifest:
    manifest_sha256: str
    key_id: str
    algorithm: str

    def view(self) -> dict[str, Any]:
        return {
            "manifest_sha256": self.manifest_sha256,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
        }


def _digested(data: bytes) -> DigestedFile:
    return DigestedFile(sha256=hashlib.sha256(data).hexdigest(), size=len(data))


class ManifestSigner:
    def __init__(self, store: ManifestStore, signer: Signer, qa_image: str | None = None) -> None:
        self._store = store
        self._signer = signer
        self._qa_image = qa_image

    def complete(
        self,
        tenant: str,
        trace_id: str,
        draft: bytes,
        qa: tuple[QAReport, bytes] | None,
        qa_skipped: str | None,
        judge: tuple[JudgeResult, bytes],
    ) -> SignedManifest:
        manifest = parse_manifest(draft)
        if (manifest.tenant, manifest.trace_id) != (tenant, trace_id):
            raise ManifestConflict(
                f"the draft manifest is for {manifest.tenant}/{manifest.trace_id}, "
                f"not {tenant}/{trace_id}"
            )
        qa_entry = None
        if qa is not None:
            report, raw = qa
            qa_entry = QAEntry(
                report=_digested(raw),
                report_version=report.version,
                verdict=report.verdict,
                backend=report.backend,
                image=self._qa_image,
            )
        result, raw_result = judge
        complete = manifest.model_copy(
            update={
                "qa": qa_entry,
                "qa_skipped": qa_skipped,
                "judge": JudgeEntry(
                    result=_digested(raw_result),
                    judge=result.judge,
                    rubric_version=result.rubric_version,
                    status=result.status,
                ),
            }
        )
        body, envelope = sign_manifest(complete, self._signer)
        digest = hashlib.sha256(body).hexdigest()
        key = manifest_key(tenant, trace_id)
        if not self._store.put_if_absent(key, body, digest, CONTENT_TYPE):
            stored = self._store.get(key)
            if stored != body:
                raise ManifestConflict(f"{key} already holds a different manifest")
        envelope_key = manifest_envelope_key(tenant, trace_id)
        self._store.put_if_absent(
            envelope_key, envelope, hashlib.sha256(envelope).hexdigest(), CONTENT_TYPE
        )
        return SignedManifest(digest, self._signer.key_id, self._signer.algorithm)
