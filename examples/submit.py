"""Submit a trace directory (trace.json, chunk-NNN.json, artifacts/, optional finalize.json
with the workspace snapshots) through the prtrace API.

Transport-agnostic: `send(method, path, json_body, headers) -> (status, headers, body)` is
either the in-process gateway (the demo) or an HTTP client against a deployed endpoint.
Every POST carries an Idempotency-Key derived from the content, so re-running a submission
after a failure never creates a second trace or re-uploads what is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

Send = Callable[[str, str, bytes | None, dict[str, str]], tuple[int, dict[str, str], bytes]]


class SubmitError(RuntimeError):
    pass


@dataclass
class Submission:
    trace_id: str = ""
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)
    finalized: dict[str, Any] = field(default_factory=dict)


def _expect(status: int, body: bytes, wanted: tuple[int, ...], what: str) -> Any:
    if status not in wanted:
        raise SubmitError(f"{what} failed with HTTP {status}: {body.decode(errors='replace')}")
    return orjson.loads(body)


def idempotency_key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


MEDIA_TYPES = {".diff": "text/x-diff", ".gz": "application/gzip", ".zst": "application/zstd",
               ".tar": "application/x-tar"}  # fmt: skip


def chunk_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("chunk-*.json"))


def submit_trace(
    send: Send, directory: Path, upload: Callable[..., httpx.Response] = httpx.put
) -> Submission:
    result = Submission()
    metadata = (directory / "trace.json").read_bytes()
    chunks = chunk_files(directory)
    key = idempotency_key("create", metadata.decode(), *(c.read_text() for c in chunks))
    status, _, body = send("POST", "/v1/traces", metadata, {"Idempotency-Key": key})
    result.trace_id = _expect(status, body, (201,), "create trace")["trace_id"]
    status, _, body = send("GET", f"/v1/traces/{result.trace_id}", None, {})
    if _expect(status, body, (200,), "read trace")["status"] == "open":
        _send_contents(send, directory, chunks, result, upload)
    # A finalized trace means an earlier run got this far and lost only the answer: the
    # finalize below replays under the same idempotency key.

    result.finalized = _finalize(send, directory, chunks, result.trace_id)
    return result


def _send_contents(
    send: Send,
    directory: Path,
    chunks: list[Path],
    result: Submission,
    upload: Callable[..., httpx.Response],
) -> None:
    for path in sorted((directory / "artifacts").glob("*")):
        content = path.read_bytes()
        request = {
            "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content),
            "media_type": MEDIA_TYPES.get(path.suffix, "text/plain"),
        }
        status, _, body = send(
            "POST",
            f"/v1/traces/{result.trace_id}/artifacts",
            orjson.dumps(request),
            {"Idempotency-Key": idempotency_key(result.trace_id, path.name)},
        )
        answer = _expect(status, body, (201,), f"artifact {path.name}")
        if answer["upload"] is not None:
            put = upload(
                answer["upload"]["url"],
                content=content,
                headers=answer["upload"]["headers"],
                timeout=30,
            )
            if put.status_code >= 300:
                raise SubmitError(
                    f"upload of {path.name} failed: HTTP {put.status_code} {put.text}"
                )
        result.artifacts.append({"name": path.name, **answer})

    for seq, path in enumerate(chunks):
        status, _, body = send(
            "PUT", f"/v1/traces/{result.trace_id}/chunks/{seq}", path.read_bytes(), {}
        )
        result.receipts.append(_expect(status, body, (201,), f"chunk {seq}"))


def _finalize(send: Send, directory: Path, chunks: list[Path], trace_id: str) -> Any:
    finalize: dict[str, Any] = {"expected_chunks": len(chunks)}
    if (directory / "finalize.json").exists():
        finalize = orjson.loads((directory / "finalize.json").read_bytes())
    status, _, body = send(
        "POST",
        f"/v1/traces/{trace_id}/finalize",
        orjson.dumps(finalize),
        {"Idempotency-Key": idempotency_key(trace_id, "finalize")},
    )
    return _expect(status, body, (202,), "finalize")
