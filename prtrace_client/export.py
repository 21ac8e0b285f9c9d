"""Dataset export on a client: the tenant's complete traces, read through the public API
(`ApiTraceSource`), selected and written by the same code the service's export job runs
(`prtrace.dataset.collect`, `prtrace.dataset.files`), so both give the same bytes.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    staged_export,
    write_export,
)
from prtrace.dataset.rows import ExportFilter
from prtrace.provenance.manifest import (
    ProvenanceError,
    TraceManifest,
    load_public_keys,
    parse_manifest,
    signed_manifest_digest,
    verify_envelope,
)
from prtrace_client.client import PrtraceClient
from prtrace_client.errors import ApiError
from prtrace_client.provenance import (
    ENVELOPE_NAME,
    Verification,
    trusted_key_id,
    verify_export,
)

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
    "verify_against_service",
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
    # As a client export: downloaded and verified beside `out`, moved in only when all of
    # it checks, so a failed download (a lost connection, a file that differs) leaves nothing.
    with staged_export(out) as staging:
        return _download_export(client, view, staging)


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


# ---- verifying a client export against the service ----------------------------------------


class SignedTraceSource(ApiTraceSource):
    """ApiTraceSource that checks every result it reads against the trace's signed
    manifest (GET /v1/traces/{id}/manifest and its DSSE signature, verified with `keys`):
    a document, QA report or judge result whose SHA-256 is not the signed one is reported
    in `found` and not used. Lists only `trace_ids`, in their order."""

    def __init__(
        self,
        client: PrtraceClient,
        keys: Sequence[Mapping[str, Any]],
        trace_ids: Sequence[str],
        found: Verification,
    ) -> None:
        super().__init__(client)
        self._client, self._keys, self._found = client, keys, found
        self._trace_ids = list(trace_ids)
        self._signed: dict[str, TraceManifest | None] = {}

    def iter_views(self) -> Iterator[Mapping[str, Any]]:
        listed = {str(view["trace_id"]): view for view in self._client.iter_traces()}
        for trace_id in self._trace_ids:
            if self._found.check(
                trace_id in listed,
                f"{trace_id}: listed",
                f"{trace_id}: not listed by the service (deleted, or another tenant's)",
            ):
                yield listed[trace_id]

    def result(self, trace_id: str, kind: ResultKind) -> bytes | None:
        data = super().result(trace_id, kind)
        signed = self._manifest(trace_id)
        if signed is None:
            raise UnreadableTrace(f"trace {trace_id} has no verifiable signed manifest")
        entries = {
            "document": signed.document,
            "qa-report": signed.qa.report if signed.qa else None,
            "judge-result": signed.judge.result if signed.judge else None,
        }
        entry = entries[kind]
        digest = None if data is None else hashlib.sha256(data).hexdigest()
        expected = None if entry is None else entry.sha256
        if not self._found.check(
            digest == expected,
            f"{trace_id}: {kind} is the signed one",
            f"{trace_id}: {kind} SHA-256 {digest} is not the signed manifest's {expected}",
        ):
            raise UnreadableTrace(f"trace {trace_id}: {kind} does not match its signed manifest")
        return data

    def _manifest(self, trace_id: str) -> TraceManifest | None:
        if trace_id not in self._signed:
            self._signed[trace_id] = self._verified_manifest(trace_id)
        return self._signed[trace_id]

    def _verified_manifest(self, trace_id: str) -> TraceManifest | None:
        try:
            manifest_bytes = self._client.download_result(trace_id, "manifest")
            envelope = self._client.download_result(trace_id, "attestation")
            statement = verify_envelope(envelope, self._keys)
            signed = signed_manifest_digest(statement)
            manifest = parse_manifest(manifest_bytes)
        except (ApiError, ProvenanceError) as exc:
            self._found.failed.append(f"{trace_id}: signed manifest: {exc}")
            return None
        predicate = statement.get("predicate") or {}
        ok = self._found.check(
            hashlib.sha256(manifest_bytes).hexdigest() == signed
            and predicate.get("trace_id") == manifest.trace_id == trace_id,
            f"{trace_id}: manifest signed (key {trusted_key_id(envelope, self._keys)})",
            f"{trace_id}: the manifest is not the one signed for this trace",
        )
        return manifest if ok else None


def verify_against_service(
    root: Path, client: PrtraceClient, keys: Sequence[Mapping[str, Any]]
) -> Verification:
    """Check an export written by `prtrace export` (on a client, unsigned) against the
    service: every file's size and SHA-256 against its manifest, then the same export made
    again, through SignedTraceSource (every result checked against its trace's signed
    manifest), from the traces the manifest lists with its filter and formats: each file
    must hold the same bytes. The rows are a function of the signed results, so equal
    files mean every row is what the signed traces give."""
    found = verify_export(root, keys, require_signature=False)
    manifest_bytes = (
        (root / MANIFEST_FILE).read_bytes() if (root / MANIFEST_FILE).is_file() else b""
    )
    if not found.ok or not manifest_bytes:
        return found
    manifest: dict[str, Any] = orjson.loads(manifest_bytes)
    chosen = ExportFilter.from_description(manifest["filter"])
    source = SignedTraceSource(client, keys, manifest["trace_ids"], found)
    selection = collect_from(source, chosen)
    with tempfile.TemporaryDirectory(prefix="prtrace-verify-") as scratch:
        again = Path(scratch) / "again"
        remade = write_export(
            selection,
            again,
            formats=manifest["formats"],
            chosen=chosen,
            read_artifact=selection.read_artifact,
            string_test_lists=manifest.get("test_lists") == "json-strings",
        )
        found.check(
            remade["trace_ids"] == manifest["trace_ids"],
            f"{MANIFEST_FILE}: the same {len(manifest['trace_ids'])} traces, signed",
            f"{MANIFEST_FILE}: lists {manifest['trace_ids']}, the signed traces give "
            f"{remade['trace_ids']}",
        )
        for name, entry in sorted(remade["files"].items()):
            theirs = manifest["files"].get(name, {}).get("sha256")
            found.check(
                theirs == entry["sha256"],
                f"{name}: the bytes the signed traces give",
                f"{name}: differs from the export the signed traces give "
                f"(SHA-256 {theirs}, expected {entry['sha256']})",
            )
    return found
