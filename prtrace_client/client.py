"""`PrtraceClient`: the typed HTTP client of the prtrace ingestion API.

Every call is one *logical* call: it is retried on network errors, 429 and 5xx with
exponential backoff and full jitter (honouring Retry-After, bounded), and a POST carries
one Idempotency-Key for all of its attempts, so a retry after a lost answer gets the first
answer instead of a second trace or finalize. Chunk PUTs are idempotent by content.

    with PrtraceClient() as client:                       # endpoint/token: see config.py
        trace = client.create_trace(metadata)
        ref = client.upload_artifact(trace["trace_id"], Path("pytest.log"), "text/plain")
        client.put_chunk(trace["trace_id"], 0, b'{"events": [...]}')
        client.finalize(trace["trace_id"], expected_chunks=1)
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import httpx
import orjson

from prtrace.integrity import file_sha256
from prtrace_client.config import ClientConfig, resolve_config
from prtrace_client.errors import (
    ApiError,
    ChunkConflict,
    TransportError,
    UploadFailed,
    api_error,
)
from prtrace_client.retry import RETRYABLE_STATUSES, RetryPolicy

log = logging.getLogger("prtrace_client")

TERMINAL_STATUSES: Final = frozenset({"complete", "rejected", "failed"})
PIPELINE_STATUSES: Final = (
    "open",
    "finalizing",
    "assembling",
    "testing",
    "judging",
    "complete",
    "rejected",
    "failed",
)
_READ_BLOCK = 1024 * 1024
_VERSION = "0.1.0"


@dataclass(frozen=True)
class ArtifactUpload:
    blob_ref: dict[str, Any]  # the BlobRef events use: {uri, sha256, size, media_type}
    uploaded: bool  # False when the API already had these bytes for this trace


def new_idempotency_key(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


class PrtraceClient:
    """The ingestion API over HTTP. Thread-safe (one httpx.Client underneath)."""

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        config: ClientConfig | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = f"prtrace-client/{_VERSION}",
    ) -> None:
        """Endpoint/token from the arguments, else `config`, else `resolve_config()`
        (environment, config file, local cloud). Raises ConfigError if none is found."""
        self.config = config or resolve_config(endpoint, token)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.config.endpoint,
            headers={"authorization": f"Bearer {self.config.token}", "user-agent": user_agent},
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            transport=transport,
        )
        # Presigned uploads go to the storage service, never with our bearer token.
        self._storage = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)), transport=transport
        )

    @property
    def endpoint(self) -> str:
        return self.config.endpoint

    def close(self) -> None:
        self._http.close()
        self._storage.close()

    def __enter__(self) -> PrtraceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- traces -----------------------------------------------------------------------

    def create_trace(
        self, metadata: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/traces → the trace view ({trace_id, status, ...}). Pass a key you
        stored durably to make the creation safe to repeat across process restarts."""
        return self._json(
            "POST", "/v1/traces", body=orjson.dumps(dict(metadata)),
            idempotency_key=idempotency_key or new_idempotency_key("create-"),
        )  # fmt: skip

    def get_trace(self, trace_id: str) -> dict[str, Any]:
        """GET /v1/traces/{id} → {trace_id, status, chunks_received, events_received, ...}."""
        return self._json("GET", f"/v1/traces/{trace_id}")

    def list_traces(self, *, limit: int = 25, next_token: str | None = None) -> dict[str, Any]:
        """One page, newest first: {items: [trace view…], next_token: str | None}."""
        params: dict[str, str | int] = {"limit": limit}
        if next_token:
            params["next_token"] = next_token
        return self._json("GET", "/v1/traces", params=params)

    def iter_traces(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every trace of the caller's tenant, newest first, fetching pages lazily."""
        token: str | None = None
        while True:
            page = self.list_traces(limit=page_size, next_token=token)
            yield from page["items"]
            token = page.get("next_token")
            if not token:
                return

    def finalize(
        self,
        trace_id: str,
        expected_chunks: int,
        *,
        snapshots: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """POST /v1/traces/{id}/finalize → the trace view (status "finalizing").
        `extra` adds further FinalizeRequest fields (e.g. redaction counts)."""
        body: dict[str, Any] = {"expected_chunks": expected_chunks}
        if snapshots is not None:
            body["snapshots"] = dict(snapshots)
        body.update(extra or {})
        try:
            return self._json(
                "POST", f"/v1/traces/{trace_id}/finalize", body=orjson.dumps(body),
                idempotency_key=idempotency_key or new_idempotency_key("finalize-"),
            )  # fmt: skip
        except ApiError as exc:
            if exc.status != 409 or exc.problem_type != "trace-not-open":
                raise
            # An earlier attempt was accepted (its answer lost) and the pipeline has moved
            # the trace on since: the stored finalize record says whether it was this one.
            view = self.get_trace(trace_id)
            asked = view.get("finalize") or {}
            wanted = {k: v for k, v in body.items() if k != "expected_chunks"}
            if asked.get("expected_chunks") == expected_chunks and all(
                asked.get(k) == v for k, v in wanted.items()
            ):
                return view
            raise

    def result_links(self, trace_id: str) -> dict[str, str]:
        """Links to a trace's results (report, verdicts) once the pipeline has published
        them in the trace view under `links`; empty until then."""
        links = self.get_trace(trace_id).get("links") or {}
        return {str(k): str(v) for k, v in links.items()} if isinstance(links, dict) else {}

    def download_result(self, trace_id: str, result: str) -> bytes:
        """The bytes of a result of a complete trace: `document`, `qa-report` or
        `judge-result` (GET its link, then the presigned URL)."""
        link = self._json("GET", f"/v1/traces/{trace_id}/{result}")
        return self._download(str(link["url"]), f"{result} of {trace_id}")

    def download_artifact(self, trace_id: str, sha256: str) -> bytes:
        """The bytes of an artifact the trace uploaded, by its SHA-256 (checked)."""
        link = self._json("GET", f"/v1/traces/{trace_id}/artifacts/{sha256}")
        data = self._download(str(link["url"]), f"artifact {sha256[:12]}… of {trace_id}")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ApiError("GET", f"artifact {sha256}", 200, None, "downloaded bytes differ")
        return data

    def download_chunk(self, trace_id: str, chunk_seq: int) -> bytes:
        """A stored chunk's canonical body, as ingested (its digest is in the manifest)."""
        link = self._json("GET", f"/v1/traces/{trace_id}/chunks/{chunk_seq}")
        return self._download(str(link["url"]), f"chunk {chunk_seq} of {trace_id}")

    def public_keys(self) -> dict[str, Any]:
        """The JWKS of the manifest signing keys (GET /v1/keys; public)."""
        return self._json("GET", "/v1/keys")

    def _download(self, url: str, what: str) -> bytes:
        # A presigned URL carries its own authorization: never send our bearer token there.
        response = self._with_retries("GET", what, lambda: self._storage.get(url))
        if response.status_code >= 300:
            raise ApiError("GET", what, response.status_code, None, response.text)
        return response.content

    def wait(
        self,
        trace_id: str,
        *,
        poll_s: float = 2.0,
        timeout_s: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the trace reaches a terminal status (complete, rejected, failed) or
        `timeout_s` passes; returns the last view. `on_update` sees every view polled."""
        return self._poll(
            lambda: self.get_trace(trace_id), TERMINAL_STATUSES, poll_s, timeout_s, on_update
        )

    def _poll(
        self,
        read: Callable[[], dict[str, Any]],
        final: Collection[str],
        poll_s: float,
        timeout_s: float | None,
        on_update: Callable[[dict[str, Any]], None] | None,
    ) -> dict[str, Any]:
        started = time.monotonic()
        while True:
            view = read()
            if on_update:
                on_update(view)
            if view.get("status") in final:
                return view
            if timeout_s is not None and time.monotonic() - started >= timeout_s:
                return view
            self._sleep(poll_s)

    # ---- dataset exports ---------------------------------------------------------------

    def start_export(
        self, request: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/exports ({formats, statuses, verdicts, min_overall, min_scores, since,
        until, repositories}) → the export's view, status running."""
        return self._json(
            "POST", "/v1/exports", body=orjson.dumps(dict(request)),
            idempotency_key=idempotency_key or new_idempotency_key("export-"),
        )  # fmt: skip

    def get_export(self, export_id: str) -> dict[str, Any]:
        """GET /v1/exports/{id} → status running, complete (manifest, links) or failed."""
        return self._json("GET", f"/v1/exports/{export_id}")

    def wait_export(
        self,
        export_id: str,
        *,
        poll_s: float = 2.0,
        timeout_s: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the export is complete or failed, or `timeout_s` passes."""
        return self._poll(
            lambda: self.get_export(export_id),
            ("complete", "failed"),
            poll_s,
            timeout_s,
            on_update,
        )

    def download(self, url: str, what: str) -> bytes:
        """The bytes behind a presigned link the API gave (never sends the bearer token)."""
        return self._download(url, what)

    def download_to(self, url: str, path: Path, what: str) -> tuple[str, int]:
        """Stream a presigned link's bytes into `path` (bounded memory, whatever the size);
        returns their SHA-256 and size."""
        digest, size = hashlib.sha256(), 0

        def attempt() -> httpx.Response:
            nonlocal digest, size
            digest, size = hashlib.sha256(), 0
            with self._storage.stream("GET", url) as response:
                if response.status_code >= 300:
                    response.read()
                    return response
                with path.open("wb") as out:
                    for block in response.iter_bytes(1 << 20):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
            return response

        response = self._with_retries("GET", what, attempt)
        if response.status_code >= 300:
            raise ApiError("GET", what, response.status_code, None, response.text)
        return digest.hexdigest(), size

    # ---- chunks -----------------------------------------------------------------------

    def put_chunk(self, trace_id: str, chunk_seq: int, body: bytes) -> dict[str, Any]:
        """PUT one chunk ({"events": [...]}) → its receipt {trace_id, chunk_seq, sha256,
        first_event_seq, last_event_seq, event_count, stored_at}.

        Repeating a PUT with the same events is answered with the same receipt, marked
        "replayed": True (the API's Idempotent-Replayed header). A 409
        chunk-conflict is resolved by comparing digests: if the stored chunk's sha256 is
        this body's, it is already stored (the receipt is rebuilt from the problem, with
        "replayed": True); otherwise ChunkConflict names the trace and seq.
        """
        path = f"/v1/traces/{trace_id}/chunks/{chunk_seq}"
        try:
            response = self._call("PUT", path, body=body)
        except ApiError as exc:
            if exc.status != 409 or exc.problem_type != "chunk-conflict":
                raise
            stored = str(exc.problem.get("stored_sha256", ""))
            sent = str(exc.problem.get("sent_sha256", "")) or hashlib.sha256(body).hexdigest()
            if stored and stored in (sent, hashlib.sha256(body).hexdigest()):
                return {"trace_id": trace_id, "chunk_seq": chunk_seq, "sha256": stored,
                        "replayed": True}  # fmt: skip
            raise ChunkConflict(trace_id, chunk_seq, stored, sent) from exc
        receipt = _document("PUT", path, response)
        if response.headers.get("idempotent-replayed") == "true":
            receipt["replayed"] = True
        return receipt

    # ---- artifacts --------------------------------------------------------------------

    def upload_artifact(
        self,
        trace_id: str,
        path: Path,
        media_type: str = "application/octet-stream",
        *,
        sha256: str | None = None,
        idempotency_key: str | None = None,
    ) -> ArtifactUpload:
        """Upload a file as an artifact of the trace: its SHA-256 is computed while
        streaming it (or taken from `sha256` if the caller already has it), a presigned
        upload is requested, and the file is PUT with exactly the signed headers. Nothing
        is uploaded when the API reports the artifact already present."""
        if sha256 is None:
            sha256, size = file_sha256(path)
        else:
            size = path.stat().st_size
        request = {"sha256": sha256, "size": size, "media_type": media_type}
        answer = self._json(
            "POST", f"/v1/traces/{trace_id}/artifacts", body=orjson.dumps(request),
            idempotency_key=idempotency_key or new_idempotency_key("artifact-"),
        )  # fmt: skip
        upload = answer.get("upload")
        if answer.get("status") == "present" or not upload:
            return ArtifactUpload(answer["blob_ref"], uploaded=False)
        self._put_presigned(path, upload, what=f"artifact {path.name} ({sha256[:12]}…)")
        return ArtifactUpload(answer["blob_ref"], uploaded=True)

    def _put_presigned(self, path: Path, upload: Mapping[str, Any], what: str) -> None:
        def attempt() -> httpx.Response:
            with path.open("rb") as stream:
                return self._storage.request(
                    str(upload.get("method", "PUT")),
                    str(upload["url"]),
                    content=_blocks(stream),
                    headers=dict(upload.get("headers") or {}),
                )

        response = self._with_retries("PUT", what, attempt)
        if response.status_code >= 300:
            raise UploadFailed(
                f"upload of {what} was refused: HTTP {response.status_code} "
                f"{response.text[:300]}; if the file changed after it was recorded, its "
                "checksum no longer matches: record it again"
            )

    # ---- transport --------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        response = self._call(
            method, path, body=body, params=params, idempotency_key=idempotency_key
        )
        return _document(method, path, response)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """One logical call (retried); an error status raises the matching ApiError."""
        headers: dict[str, str] = {}
        if body is not None:
            headers["content-type"] = "application/json"
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key

        def attempt() -> httpx.Response:
            return self._http.request(method, path, content=body, params=params, headers=headers)

        response = self._with_retries(method, path, attempt)
        if response.status_code >= 400:
            raise api_error(method, path, response.status_code, _problem(response), response.text)
        return response

    def _with_retries(
        self, method: str, what: str, attempt: Callable[[], httpx.Response]
    ) -> httpx.Response:
        """Run `attempt` until it answers with a non-retryable status or attempts run out
        (the last retryable answer is returned; the last network error is raised)."""
        waited = 0.0
        policy = self.retry
        for retry in range(policy.attempts):
            last = retry == policy.attempts - 1
            try:
                response = attempt()
            except httpx.TransportError as exc:
                if last or waited >= policy.deadline_s:
                    # Only an upload has something for `prtrace push` to resend.
                    then = (
                        "then retry"
                        if method in ("GET", "HEAD")
                        else "then retry (nothing is lost: `prtrace push` resends what was "
                        "not acknowledged)"
                    )
                    raise TransportError(
                        f"{method} {what}: cannot reach {self.endpoint} after {retry + 1} "
                        f"attempt(s): {type(exc).__name__}: {exc or 'connection failed'}; "
                        f"check the endpoint and your network, {then}"
                    ) from exc
                delay = policy.delay(retry, None)
                log.info("%s %s: %s; retrying in %.2fs", method, what, type(exc).__name__, delay)
            else:
                if not _retryable(response) or last or waited >= policy.deadline_s:
                    return response
                delay = policy.delay(retry, response.headers.get("retry-after"))
                log.info("%s %s: HTTP %d; retrying in %.2fs", method, what,
                         response.status_code, delay)  # fmt: skip
            self._sleep(delay)
            waited += delay
        raise AssertionError("unreachable")  # pragma: no cover


def _document(method: str, path: str, response: httpx.Response) -> dict[str, Any]:
    document = orjson.loads(response.content) if response.content else {}
    if not isinstance(document, dict):
        raise ApiError(method, path, response.status_code, None, "expected a JSON object")
    return document


def _retryable(response: httpx.Response) -> bool:
    if response.status_code in RETRYABLE_STATUSES:
        return True
    # The same Idempotency-Key is still being processed by an earlier attempt.
    return response.status_code == 409 and b"request-in-progress" in response.content


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def _blocks(stream: BinaryIO) -> Iterator[bytes]:
    while block := stream.read(_READ_BLOCK):
        yield block
