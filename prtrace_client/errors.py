"""Errors the SDK raises. Every message says what went wrong and what to do about it.

`PrtraceError` is the base; `ApiError` carries the server's RFC 9457 problem (its `type`
slug, `detail` and per-field JSON pointers) so callers can switch on `problem_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class PrtraceError(Exception):
    """Base class of everything the prtrace client raises on purpose."""


class ConfigError(PrtraceError):
    """No usable endpoint or token, or an unreadable config file."""


class TransportError(PrtraceError):
    """The API could not be reached (after every retry)."""


class UploadFailed(PrtraceError):
    """The presigned artifact upload was refused by the storage service."""


@dataclass(frozen=True)
class FieldProblem:
    pointer: str  # RFC 6901 JSON pointer into the request body ("" = the whole body)
    detail: str


class ApiError(PrtraceError):
    """The API answered with an error status (after retrying what is retryable)."""

    def __init__(
        self, method: str, path: str, status: int, problem: dict[str, Any] | None, text: str
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.problem = problem or {}
        self.problem_type = str(self.problem.get("type", "")).removeprefix("urn:prtrace:problem:")
        # problem+json has `detail`; the API gateway's own refusals say `message`.
        detail = self.problem.get("detail") or self.problem.get("message")
        self.detail = str(detail or text.strip()[:500] or "(no body)")
        self.field_problems = [
            FieldProblem(str(item.get("pointer", "")), str(item.get("detail", "")))
            for item in self.problem.get("errors") or []
            if isinstance(item, dict)
        ]
        super().__init__(self._message())

    def _message(self) -> str:
        kind = f" {self.problem_type}" if self.problem_type else ""
        lines = [f"{self.method} {self.path} failed: HTTP {self.status}{kind}: {self.detail}"]
        lines += [f"  at {p.pointer or '/'}: {p.detail}" for p in self.field_problems[:20]]
        hint = _HINTS.get(self.status)
        if self.status == 403 and self.problem_type != "insufficient-scope":
            hint = _HINTS[401]  # the gateway's authorizer refuses unknown tokens with 403
        if hint:
            lines.append(f"  hint: {hint}")
        return "\n".join(lines)


_HINTS = {
    401: "the token is missing, wrong, expired or revoked; set PRTRACE_TOKEN or pass --token",
    403: "the token lacks a scope this request needs (ingest to upload, read to query)",
    404: "check the trace id; traces of another tenant are not visible to this token",
}


class NotFound(ApiError):
    pass


class Unauthorized(ApiError):
    """401 or 403."""


class ValidationFailed(ApiError):
    """422: the request body was refused; `field_problems` point at each bad field."""


class RetriesExhausted(ApiError):
    """A retryable status (429/5xx) persisted through every attempt."""


class ChunkConflict(PrtraceError):
    """A different chunk is stored under this (trace, chunk seq): stored chunks are
    immutable, so this local journal and the server disagree about the trace."""

    def __init__(self, trace_id: str, chunk_seq: int, stored_sha256: str, sent_sha256: str):
        self.trace_id = trace_id
        self.chunk_seq = chunk_seq
        self.stored_sha256 = stored_sha256
        self.sent_sha256 = sent_sha256
        super().__init__(
            f"trace {trace_id} already stores a different chunk {chunk_seq} "
            f"(stored sha256 {stored_sha256 or 'unknown'}, this one {sent_sha256}); "
            "stored chunks never change, so this trace cannot be completed from this "
            "journal: record the session again as a new trace"
        )


def api_error(
    method: str, path: str, status: int, problem: dict[str, Any] | None, text: str
) -> ApiError:
    """The most specific ApiError subclass for this status."""
    cls: type[ApiError] = ApiError
    if status == 404:
        cls = NotFound
    elif status in (401, 403):
        cls = Unauthorized
    elif status == 422:
        cls = ValidationFailed
    elif status == 429 or status >= 500:
        cls = RetriesExhausted
    return cls(method, path, status, problem, text)
