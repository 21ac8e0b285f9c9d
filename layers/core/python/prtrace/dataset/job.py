"""The export job: what the export task runs for one export id (prtrace.dataset.exports).

It reads the request the API stored, selects and reads the tenant's traces from the
stores (the same selection and reading `prtrace export` does through the API), writes the
files with `prtrace.dataset.files.write_export` into a scratch directory, uploads each,
signs the manifest when a signing key is configured, and uploads the manifest last: its
presence is what "complete" means. On failure it stores error.json saying why.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson

from prtrace.dataset.collect import TraceSource, collect
from prtrace.dataset.exports import ExportRequest
from prtrace.dataset.files import MANIFEST_FILE, write_export
from prtrace.integrity import file_sha256, sha256_hex
from prtrace.media_types import JSON, of_path
from prtrace.provenance.manifest import (
    Signer,
    sign_export_manifest,
    signed_manifest_digest,
    unverified_statement,
)
from prtrace.storage_keys import (
    export_envelope_key,
    export_error_key,
    export_file_key,
    export_manifest_key,
    export_request_key,
)
from prtrace.write_once import StoredDiffers, WriteOnceStore, upload_once

log = logging.getLogger("prtrace.dataset.job")


class ExportJobError(Exception):
    """The export cannot be made as asked (its request is missing or invalid), or an
    earlier attempt of this export stored other bytes than this one would."""


class JobBlobs(WriteOnceStore, Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool: ...


def run_export(
    tenant: str,
    export_id: str,
    *,
    blobs: JobBlobs,
    source: TraceSource,
    signer: Signer | None,
    on_trace: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Make the export; its manifest. Stores error.json and re-raises when it fails.

    The task may be started again after a failure (the state machine retries a task that
    failed to start, and one that failed part way): an attempt finding the manifest returns
    it; one finding files of an earlier attempt keeps them when they hold the same bytes
    (exports are deterministic) and fails, naming the file, when they do not (the traces
    the request selects changed in between: ask for the export again)."""
    try:
        return _run(tenant, export_id, blobs, source, signer, on_trace)
    except Exception as exc:
        error = {"error": type(exc).__name__, "detail": str(exc)}
        body = orjson.dumps(error, option=orjson.OPT_SORT_KEYS)
        blobs.put_if_absent(export_error_key(tenant, export_id), body, sha256_hex(body), JSON)
        raise


def _run(
    tenant: str,
    export_id: str,
    blobs: JobBlobs,
    source: TraceSource,
    signer: Signer | None,
    on_trace: Callable[[str], None] | None,
) -> dict[str, Any]:
    done = blobs.get(export_manifest_key(tenant, export_id))
    if done is not None:  # an earlier attempt completed the export
        manifest: dict[str, Any] = orjson.loads(done)
        return manifest
    stored = blobs.get(export_request_key(tenant, export_id))
    if stored is None:
        raise ExportJobError(f"export {export_id} of tenant {tenant} has no request.json")
    request = ExportRequest.model_validate(orjson.loads(stored)["request"])
    chosen = request.to_filter()
    selection = collect(source, chosen, on_trace=on_trace)
    with tempfile.TemporaryDirectory(prefix="prtrace-export-job-") as scratch:
        out = Path(scratch)
        manifest = write_export(
            selection,
            out,
            formats=request.formats,
            chosen=chosen,
            skipped=selection.skipped,
            flagged=selection.flagged,
            unusable=selection.unusable,
            read_artifact=selection.read_artifact,
            string_test_lists=request.string_test_lists,
        )
        for name, entry in sorted(manifest["files"].items()):
            _upload_file(blobs, export_file_key(tenant, export_id, name), out / name, entry)
        manifest_bytes = (out / MANIFEST_FILE).read_bytes()
    manifest_sha256 = sha256_hex(manifest_bytes)
    if signer is not None:
        envelope_key = export_envelope_key(tenant, export_id)
        envelope = sign_export_manifest(manifest_bytes, export_id, tenant, signer)
        if not blobs.put_if_absent(envelope_key, envelope, sha256_hex(envelope), JSON):
            _check_stored_envelope(blobs, envelope_key, manifest_sha256)
    manifest_key = export_manifest_key(tenant, export_id)
    already_stored = not blobs.put_if_absent(manifest_key, manifest_bytes, manifest_sha256, JSON)
    if already_stored and blobs.get(manifest_key) != manifest_bytes:  # a concurrent attempt
        raise ExportJobError(f"{manifest_key}: an earlier attempt stored another manifest")
    log.info(
        "export %s: %d traces, %d events, %d skipped, %d left out for tamper flags, %d as "
        "not usable",
        export_id, manifest["trace_count"], manifest["event_count"], len(selection.skipped),
        len(selection.flagged), len(selection.unusable),
    )  # fmt: skip
    return manifest


def _upload_file(blobs: JobBlobs, key: str, path: Path, entry: dict[str, Any]) -> None:
    digest, size = file_sha256(path)
    if (digest, size) != (entry["sha256"], entry["bytes"]):  # changed on disk since
        raise ExportJobError(f"{key}: SHA-256 {digest} is not the manifest's {entry['sha256']}")
    try:
        with open(path, "rb") as body:
            upload_once(blobs, key, body, size, digest, of_path(path), what="export file")
    except StoredDiffers as exc:
        raise ExportJobError(
            f"{exc}: an earlier attempt of this export selected other traces; ask for the "
            "export again"
        ) from exc


def _check_stored_envelope(blobs: JobBlobs, key: str, manifest_sha256: str) -> None:
    """An earlier attempt signed a manifest: the same one, or this attempt cannot finish.
    (ECDSA signatures differ from one signing to the next; the signed digest does not.)"""
    stored = blobs.get(key)
    signed = None if stored is None else signed_manifest_digest(unverified_statement(stored))
    if signed != manifest_sha256:
        raise ExportJobError(
            f"{key}: an earlier attempt signed manifest SHA-256 {signed}, not this attempt's "
            f"{manifest_sha256}"
        )
