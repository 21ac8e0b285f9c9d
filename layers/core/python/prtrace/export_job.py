"""The export job: what the export task runs for one export id (prtrace.exports).

It reads the request the API stored, selects and reads the tenant's traces from the
stores (the same selection and reading `prtrace export` does through the API), writes the
files with `prtrace.dataset_files.write_export` into a scratch directory, uploads each,
signs the manifest when a signing key is configured, and uploads the manifest last: its
presence is what "complete" means. On failure it stores error.json saying why.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import orjson

from prtrace.dataset_collect import TraceSource, collect
from prtrace.dataset_files import MANIFEST_FILE, write_export
from prtrace.exports import ExportRequest
from prtrace.integrity import file_sha256, sha256_hex
from prtrace.media_types import JSON, of_path
from prtrace.provenance import Signer, sign_export_manifest
from prtrace.storage_keys import (
    export_envelope_key,
    export_error_key,
    export_file_key,
    export_manifest_key,
    export_request_key,
)

log = logging.getLogger("prtrace.export_job")


class ExportJobError(Exception):
    """The export cannot be made as asked (its request is missing or invalid)."""


class JobBlobs(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool: ...

    def upload_if_absent(
        self, key: str, source: BinaryIO, size: int, sha256_hex: str, content_type: str
    ) -> bool: ...


def run_export(
    tenant: str,
    export_id: str,
    *,
    blobs: JobBlobs,
    source: TraceSource,
    signer: Signer | None,
    on_trace: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Make the export; its manifest. Stores error.json and re-raises when it fails."""
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
    stored = blobs.get(export_request_key(tenant, export_id))
    if stored is None:
        raise ExportJobError(f"export {export_id} of tenant {tenant} has no request.json")
    request = ExportRequest.model_validate(orjson.loads(stored)["request"])
    chosen = request.to_filter()
    bundles, skipped = collect(source, chosen, on_trace=on_trace)
    with tempfile.TemporaryDirectory(prefix="prtrace-export-job-") as scratch:
        out = Path(scratch)
        manifest = write_export(
            bundles, out, formats=request.formats, chosen=chosen, skipped=skipped
        )
        for name, entry in sorted(manifest["files"].items()):
            path = out / name
            digest, size = file_sha256(path)
            if (digest, size) != (entry["sha256"], entry["bytes"]):  # changed on disk since
                raise ExportJobError(f"{name}: SHA-256 {digest} is not the manifest's")
            with open(path, "rb") as body:
                blobs.upload_if_absent(
                    export_file_key(tenant, export_id, name),
                    body,
                    size,
                    digest,
                    of_path(path),
                )
        manifest_bytes = (out / MANIFEST_FILE).read_bytes()
    if signer is not None:
        envelope = sign_export_manifest(manifest_bytes, export_id, tenant, signer)
        blobs.put_if_absent(
            export_envelope_key(tenant, export_id), envelope, sha256_hex(envelope), JSON
        )
    blobs.put_if_absent(
        export_manifest_key(tenant, export_id), manifest_bytes, sha256_hex(manifest_bytes), JSON
    )
    log.info(
        "export %s: %d traces, %d events, %d skipped",
        export_id, manifest["trace_count"], manifest["event_count"], len(skipped),
    )  # fmt: skip
    return manifest
