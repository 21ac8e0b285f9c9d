"""Trace bundles: download one (`prtrace download ID`), verify one offline (`prtrace
verify BUNDLE --key KEYS`), with nothing but the public key (and, optionally, the server's
chain key to recompute the HMAC event chain).

A bundle is a directory:

    manifest.json        the trace manifest (canonical JSON, prtrace.manifest/v1)
    manifest.dsse.json   its signature: DSSE envelope over an in-toto Statement v1
    document.json        the assembled trace document
    qa-report.json       the QA report (absent when QA did not run)
    judge-result.json    the judge result
    chunks/NNNNNN.json   every chunk's canonical body, as ingested
    artifacts/SHA256     every artifact (diffs, command output, snapshots)

Verification checks, and names exactly what fails: the signature (by a key you trust),
the manifest's digest against the signed statement, the Merkle root over the chunk
digests, every chunk's and artifact's digest and size, the document, QA report and judge
result digests, that the document's events are exactly the chunks' events, and, given the
chain key, the event chain head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from prtrace.canonical import canonical_json
from prtrace.dataset.rows import EXPORT_VERSION
from prtrace.integrity import KeyRing, UnknownKey, compute_chain, file_sha256
from prtrace.provenance.manifest import (
    EXPORT_PREDICATE_TYPE,
    MANIFEST_NAME,
    ProvenanceError,
    TraceManifest,
    chunk_merkle_root,
    parse_manifest,
    signed_manifest_digest,
    verify_envelope,
)
from prtrace_client.client import PrtraceClient

ENVELOPE_NAME = "manifest.dsse.json"
DOCUMENT_NAME = "document.json"
QA_REPORT_NAME = "qa-report.json"
JUDGE_RESULT_NAME = "judge-result.json"


def chunk_name(seq: int) -> str:
    return f"chunks/{seq:06d}.json"


def artifact_name(sha256: str) -> str:
    return f"artifacts/{sha256}"


# ---- download ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Downloaded:
    path: Path
    chunks: int
    artifacts: int
    bytes: int


def download_bundle(
    client: PrtraceClient,
    trace_id: str,
    dest: Path,
    on_file: Callable[[str, int], None] | None = None,
) -> Downloaded:
    """Everything the trace's manifest names, into the new (or empty) directory `dest`.
    Files are written as downloaded: checking them is `verify_bundle`'s job."""
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; choose a new directory for the bundle")
    dest.mkdir(parents=True, exist_ok=True)
    total = 0

    def put(name: str, data: bytes) -> None:
        nonlocal total
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        total += len(data)
        if on_file:
            on_file(name, len(data))

    manifest_bytes = client.download_result(trace_id, "manifest")
    put(MANIFEST_NAME, manifest_bytes)
    put(ENVELOPE_NAME, client.download_result(trace_id, "attestation"))
    manifest = parse_manifest(manifest_bytes)
    put(DOCUMENT_NAME, client.download_result(trace_id, "document"))
    if manifest.qa is not None:
        put(QA_REPORT_NAME, client.download_result(trace_id, "qa-report"))
    if manifest.judge is not None:
        put(JUDGE_RESULT_NAME, client.download_result(trace_id, "judge-result"))
    for chunk in manifest.chunks:
        put(chunk_name(chunk.seq), client.download_chunk(trace_id, chunk.seq))
    for artifact in manifest.artifacts:
        put(artifact_name(artifact.sha256), client.download_artifact(trace_id, artifact.sha256))
    return Downloaded(dest, len(manifest.chunks), len(manifest.artifacts), total)


# ---- verify -----------------------------------------------------------------------------


@dataclass
class Verification:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def check(self, ok: bool, passed: str, failed: str) -> bool:
        (self.passed if ok else self.failed).append(passed if ok else failed)
        return ok


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(root: Path, name: str) -> bytes | None:
    path = root / name
    if path.is_symlink() or not path.is_file():
        return None
    return path.read_bytes()


def _is_export(manifest_bytes: bytes) -> bool:
    try:
        version = str(orjson.loads(manifest_bytes).get("version", ""))
        return version.startswith(EXPORT_VERSION.rsplit("/", 1)[0] + "/")  # every version
    except (orjson.JSONDecodeError, AttributeError):
        return False


def verify_export(
    root: Path,
    keys: Sequence[Mapping[str, Any]],
    *,
    require_signature: bool = True,
    export_id: str | None = None,
) -> Verification:
    """Check a dataset export written by the service's export job (`prtrace export
    --on-server`): its manifest's signature by a trusted key, the export the signature
    names (`export_id` when the caller knows which it asked for), and every file's size
    and SHA-256 against the manifest (read in blocks: export files can be large). Without
    `require_signature` (a deployment with no signing key), an unsigned export passes on
    its digests alone."""
    result = Verification()
    envelope = _read(root, ENVELOPE_NAME)
    manifest_bytes = _read(root, MANIFEST_NAME)
    if manifest_bytes is None:
        result.failed.append(f"{MANIFEST_NAME}: missing; not an export")
        return result
    if envelope is None and require_signature:
        result.failed.append(f"{ENVELOPE_NAME}: missing; the export's manifest is not signed")
    elif envelope is not None:
        try:
            statement = verify_envelope(envelope, keys, EXPORT_PREDICATE_TYPE)
            signed = signed_manifest_digest(statement)
            predicate = statement.get("predicate") or {}
            signed_as = f"export {predicate.get('export_id')} of tenant {predicate.get('tenant')}"
            result.passed.append(f"{ENVELOPE_NAME}: signature verifies, for {signed_as}")
            if export_id is not None:
                result.check(
                    predicate.get("export_id") == export_id,
                    f"{ENVELOPE_NAME}: signed for export {export_id}, the one asked for",
                    f"{ENVELOPE_NAME}: signed for {signed_as}, not export {export_id}: "
                    "these files belong to another export",
                )
            result.check(
                signed == _sha256(manifest_bytes),
                f"{MANIFEST_NAME}: SHA-256 is the signed one",
                f"{MANIFEST_NAME}: SHA-256 {_sha256(manifest_bytes)} is not the signed "
                f"{signed}: the manifest was changed after it was signed",
            )
        except ProvenanceError as exc:
            result.failed.append(f"{ENVELOPE_NAME}: {exc}")
    files = orjson.loads(manifest_bytes).get("files") or {}
    for name, entry in sorted(files.items()):
        path = root / name
        if "/" in name or name.startswith(".") or path.is_symlink() or not path.is_file():
            result.failed.append(f"{name}: missing ({entry['rows']} rows, {entry['bytes']} bytes)")
            continue
        digest, size = file_sha256(path)
        result.check(
            (digest, size) == (entry["sha256"], entry["bytes"]),
            f"{name}: SHA-256 and size match the manifest",
            f"{name}: SHA-256 {digest} ({size} bytes) is not the manifest's "
            f"{entry['sha256']} ({entry['bytes']} bytes)",
        )
    return result


def _digest_check(
    result: Verification, root: Path, name: str, sha256: str, size: int, what: str
) -> bytes | None:
    data = _read(root, name)
    if data is None:
        result.failed.append(f"{name}: missing ({what}, {size} bytes, SHA-256 {sha256})")
        return None
    actual = _sha256(data)
    result.check(
        actual == sha256 and len(data) == size,
        f"{name}: SHA-256 and size match the manifest",
        f"{name}: SHA-256 {actual} ({len(data)} bytes) is not the manifest's {sha256} "
        f"({size} bytes) for {what}",
    )
    return data


def _chunk_events(result: Verification, name: str, body: bytes) -> list[bytes] | None:
    """The canonical events of a chunk body (the form ingestion stores and the chain
    covers), or None when the body is not that form."""
    try:
        events = orjson.loads(body)["events"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        result.failed.append(f'{name}: not a chunk body ({{"events": [...]}})')
        return None
    canonical = [canonical_json(event) for event in events]
    if b'{"events":[' + b",".join(canonical) + b"]}" != body:
        result.failed.append(f"{name}: not in canonical form")
        return None
    return canonical


def _document_events(document: bytes) -> list[bytes]:
    """The document's events as ingestion canonicalized them (None fields left out)."""
    from pydantic import TypeAdapter

    from prtrace.schema import Event

    raw = orjson.loads(document)["events"]
    parsed = TypeAdapter(list[Event]).validate_python(raw)
    return [canonical_json(e.model_dump(mode="json", exclude_none=True)) for e in parsed]


def trusted_key_id(envelope: bytes, keys: Sequence[Mapping[str, Any]]) -> str:
    """The id of the trusted key a verified DSSE envelope was signed with."""
    trusted = {str(key["kid"]) for key in keys}
    signatures = orjson.loads(envelope)["signatures"]
    return str(next(s["keyid"] for s in signatures if s.get("keyid") in trusted))


def verify_bundle(
    root: Path,
    keys: Sequence[Mapping[str, Any]],
    chain_keys: KeyRing | None = None,
) -> Verification:
    """Check the bundle at `root` against the trusted `keys` (JWKs); every failure is
    listed, each naming the file and what differs."""
    result = Verification()
    envelope = _read(root, ENVELOPE_NAME)
    manifest_bytes = _read(root, MANIFEST_NAME)
    if manifest_bytes is not None and _is_export(manifest_bytes):
        return verify_export(root, keys)
    if envelope is None or manifest_bytes is None:
        missing = [
            n for n, d in ((ENVELOPE_NAME, envelope), (MANIFEST_NAME, manifest_bytes)) if d is None
        ]
        result.failed.append(f"{', '.join(missing)}: missing; not a trace bundle")
        return result
    statement: Mapping[str, Any] = {}
    try:
        statement = verify_envelope(envelope, keys)
        keyid = trusted_key_id(envelope, keys)
        result.passed.append(f"{ENVELOPE_NAME}: signature verifies (key {keyid})")
    except ProvenanceError as exc:
        result.failed.append(f"{ENVELOPE_NAME}: {exc}")
    if statement:
        try:
            signed = signed_manifest_digest(statement)
            actual = _sha256(manifest_bytes)
            result.check(
                actual == signed,
                f"{MANIFEST_NAME}: SHA-256 is the signed one",
                f"{MANIFEST_NAME}: SHA-256 {actual} is not the signed {signed}: the manifest "
                "was changed after it was signed",
            )
        except ProvenanceError as exc:
            result.failed.append(f"{ENVELOPE_NAME}: {exc}")
    try:
        manifest = parse_manifest(manifest_bytes)
    except ProvenanceError as exc:
        result.failed.append(str(exc))
        return result
    if statement:
        predicate = statement.get("predicate") or {}
        result.check(
            (predicate.get("trace_id"), predicate.get("tenant"))
            == (manifest.trace_id, manifest.tenant),
            f"{MANIFEST_NAME}: trace {manifest.trace_id} of tenant {manifest.tenant}, as signed",
            f"{MANIFEST_NAME}: names trace {manifest.trace_id} of {manifest.tenant}, the "
            f"signature trace {predicate.get('trace_id')} of {predicate.get('tenant')}",
        )
    canonical = manifest.canonical()
    result.check(
        canonical == manifest_bytes,
        f"{MANIFEST_NAME}: canonical JSON",
        f"{MANIFEST_NAME}: not in canonical form (RFC 8785)",
    )
    _verify_contents(result, root, manifest, chain_keys)
    return result


def _verify_contents(
    result: Verification, root: Path, manifest: TraceManifest, chain_keys: KeyRing | None
) -> None:
    root_hash = chunk_merkle_root(c.sha256 for c in manifest.chunks)
    result.check(
        root_hash == manifest.chunk_merkle_root,
        f"chunks: Merkle root {root_hash[:16]}… matches",
        f"{MANIFEST_NAME}: the chunks' Merkle root is {root_hash}, the manifest says "
        f"{manifest.chunk_merkle_root}",
    )
    expected_seq, expected_event = 0, 0
    chunk_events: list[bytes] = []
    chunks_whole = True
    for chunk in manifest.chunks:
        where = f"chunk {chunk.seq}, events {chunk.first_event_seq}..{chunk.last_event_seq}"
        if (chunk.seq, chunk.first_event_seq) != (expected_seq, expected_event):
            result.failed.append(
                f"{MANIFEST_NAME}: {where} does not follow chunk {expected_seq - 1}"
            )
        expected_seq, expected_event = chunk.seq + 1, chunk.last_event_seq + 1
        name = chunk_name(chunk.seq)
        data = _read(root, name)
        if data is None:
            result.failed.append(f"{name}: missing ({where}, SHA-256 {chunk.sha256})")
            chunks_whole = False
            continue
        actual = _sha256(data)
        if actual != chunk.sha256:
            result.failed.append(
                f"{name}: SHA-256 {actual} is not the manifest's {chunk.sha256} ({where}): "
                "the chunk was changed"
            )
            chunks_whole = False
            continue
        events = _chunk_events(result, name, data)
        if events is None:
            chunks_whole = False
            continue
        chunk_events.extend(events)
    if chunks_whole:
        result.passed.append(f"chunks: all {len(manifest.chunks)} match their digests")
    result.check(
        expected_event == manifest.event_count == manifest.chain.length,
        f"chunks: {manifest.event_count} events, contiguous",
        f"{MANIFEST_NAME}: the chunks cover {expected_event} events, the manifest counts "
        f"{manifest.event_count} and the chain {manifest.chain.length}",
    )
    bad_artifacts = len(result.failed)
    for artifact in manifest.artifacts:
        _digest_check(
            result, root, artifact_name(artifact.sha256), artifact.sha256, artifact.size,
            f"artifact ({artifact.media_type})",
        )  # fmt: skip
    if len(result.failed) == bad_artifacts:
        result.passed = [p for p in result.passed if not p.startswith("artifacts/")]
        result.passed.append(f"artifacts: all {len(manifest.artifacts)} match")
    document = _digest_check(
        result, root, DOCUMENT_NAME, manifest.document.sha256, manifest.document.size,
        "the trace document",
    )  # fmt: skip
    if document is not None and chunks_whole:
        try:
            same = _document_events(document) == chunk_events
        except (orjson.JSONDecodeError, KeyError, ValueError):
            same = False
        result.check(
            same,
            f"{DOCUMENT_NAME}: its events are exactly the chunks' events",
            f"{DOCUMENT_NAME}: its events are not the chunks' events",
        )
    if manifest.qa is not None:
        _digest_check(
            result, root, QA_REPORT_NAME, manifest.qa.report.sha256, manifest.qa.report.size,
            "the QA report",
        )  # fmt: skip
    if manifest.judge is not None:
        _digest_check(
            result, root, JUDGE_RESULT_NAME, manifest.judge.result.sha256,
            manifest.judge.result.size, "the judge result",
        )  # fmt: skip
    if chain_keys is not None and chunks_whole:
        try:
            key = chain_keys.get(manifest.chain.key_id)
        except UnknownKey:
            result.failed.append(
                f"chain: the manifest's chain key id {manifest.chain.key_id!r} is not in the "
                "given chain key ring"
            )
            return
        links = compute_chain(key, manifest.trace_id, chunk_events)
        head = links[-1] if links else ""
        result.check(
            head == manifest.chain.head,
            f"chain: recomputed head {head[:16]}… matches (key {manifest.chain.key_id})",
            f"chain: the recomputed head {head} is not the manifest's {manifest.chain.head}",
        )
