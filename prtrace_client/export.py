"""Dataset export on a client: the tenant's complete traces, read through the public API
(`ApiTraceSource`), selected and written by the same code the service's export job runs
(`prtrace.dataset.collect`, `prtrace.dataset.files`), so both give the same bytes.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from prtrace.dataset.collect import ResultKind, Selection, UnreadableTrace
from prtrace.dataset.collect import collect as collect_from
from prtrace.dataset.files import (
    FORMATS,
    MANIFEST_FILE,
    ExportError,
    Flagged,
    Skipped,
    Unusable,
    check_destination,
    check_formats,
    write_export,
)
from prtrace.dataset.rows import ExportFilter
from prtrace.provenance.manifest import load_public_keys
from prtrace_client.client import PrtraceClient
from prtrace_client.errors import ApiError
from prtrace_client.provenance import ENVELOPE_NAME, verify_export

__all__ = [
    "FORMATS",
    "ApiTraceSource",
    "ExportError",
    "Flagged",
    "Selection",
    "Skipped",
    "Unusable",
    "check_destination",
    "check_formats",
    "collect",
    "save_server_export",
    "write_export",
]


class ApiTraceSource:
    """The traces one token reaches, through the API (its list, result and artifact links)."""

    def __init__(self, client: PrtraceClient) -> None:
        self._client = client

    def iter_views(self) -> Iterator[Mapping[str, Any]]:
        return self._client.iter_traces()

    def result(self, trace_id: str, kind: ResultKind) -> bytes | None:
        try:
            return self._client.download_result(trace_id, kind)
        except ApiError as exc:
            # A result the trace may lack (QA skipped, judge not stored) is a 409.
            lacking = exc.status == 409 and exc.problem_type == "result-not-available"
            if lacking and kind != "document":
                return None
            raise UnreadableTrace(str(exc)) from exc

    def artifact(self, trace_id: str, sha256: str) -> bytes:
        try:
            return self._client.download_artifact(trace_id, sha256)
        except ApiError as exc:
            raise UnreadableTrace(str(exc)) from exc


def collect(
    client: PrtraceClient,
    chosen: ExportFilter,
    *,
    on_trace: Callable[[str], None] | None = None,
) -> Selection:
    """The traces the filter selects, read through the API one at a time as the selection
    is iterated (it then lists those it had to skip and those it left out)."""
    return collect_from(ApiTraceSource(client), chosen, on_trace=on_trace)


def save_server_export(client: PrtraceClient, view: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """Download a complete server export (GET /v1/exports/{id}) into `out`: every file,
    checked against the manifest's size and SHA-256, the manifest, and its signature,
    verified with the keys the API publishes. Raises ExportError naming what differs."""
    export_id = str(view["export_id"])
    if view.get("status") != "complete":
        raise ExportError(f"export {export_id} is {view.get('status')}: {view.get('error')}")
    check_destination(out)
    # As a client export: downloaded and verified beside `out`, moved in only when all of
    # it checks, so a failed download (a lost connection, a file that differs) leaves nothing.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        manifest = _download_export(client, view, staging)
        out.mkdir(exist_ok=True)
        for path in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST_FILE):
            path.replace(out / path.name)  # manifest.json last
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _download_export(client: PrtraceClient, view: Mapping[str, Any], out: Path) -> dict[str, Any]:
    export_id, links = str(view["export_id"]), view.get("links") or {}
    manifest_bytes = client.download(str(links["manifest"]), f"manifest of {export_id}")
    manifest: dict[str, Any] = orjson.loads(manifest_bytes)
    for name in sorted(manifest["files"]):
        if "/" in name or name.startswith("."):
            raise ExportError(f"manifest of {export_id} names an unsafe file {name!r}")
        url = (links.get("files") or {}).get(name)
        if url is None:
            raise ExportError(f"export {export_id}: no link to {name}, which its manifest lists")
        client.download_to(str(url), out / name, f"{name} of {export_id}")
    if links.get("signature"):
        envelope = client.download(str(links["signature"]), f"signature of {export_id}")
        (out / ENVELOPE_NAME).write_bytes(envelope)
    (out / MANIFEST_FILE).write_bytes(manifest_bytes)
    # A deployment that publishes signing keys signs every export: one without a signature
    # is refused, not accepted on its digests (they are as easy to forge as the files).
    jwks = client.public_keys()
    keys = load_public_keys(orjson.dumps(jwks)) if jwks.get("keys") else []
    checked = verify_export(out, keys, require_signature=bool(keys), export_id=export_id)
    if not checked.ok:
        raise ExportError(f"export {export_id} does not verify: " + "; ".join(checked.failed))
    return manifest
