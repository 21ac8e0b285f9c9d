"""prtrace client SDK: `PrtraceClient` (HTTP API, retries, idempotency) and the durable
`Outbox` + `Flusher` that deliver recorded events exactly once; `recorder/` records a
session (its process, protocol and front-end helpers).

The names below are imported when first used: importing this package, as every recorded
command does on its way to recorder/protocol.py, must not load httpx and pydantic."""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it so)
if TYPE_CHECKING:
    from prtrace.integrity import file_sha256 as file_digest  # the SDK's name for it
    from prtrace_client.client import (
        PIPELINE_STATUSES,
        TERMINAL_STATUSES,
        ArtifactUpload,
        PrtraceClient,
    )
    from prtrace_client.config import ClientConfig, resolve_config
    from prtrace_client.errors import (
        ApiError,
        ChunkConflict,
        ConfigError,
        NotFound,
        PrtraceError,
        RetriesExhausted,
        TransportError,
        Unauthorized,
        UploadFailed,
        ValidationFailed,
    )
    from prtrace_client.outbox import (
        Flusher,
        FlushReport,
        InvalidEvent,
        Outbox,
        SessionClosed,
        SessionState,
        default_outbox_path,
    )
    from prtrace_client.retry import RetryPolicy

# name -> the module it comes from (file_digest: prtrace.integrity.file_sha256)
_EXPORTS = {
    "file_digest": "prtrace.integrity",
    "PIPELINE_STATUSES": "prtrace_client.client",
    "TERMINAL_STATUSES": "prtrace_client.client",
    "ArtifactUpload": "prtrace_client.client",
    "PrtraceClient": "prtrace_client.client",
    "ClientConfig": "prtrace_client.config",
    "resolve_config": "prtrace_client.config",
    "ApiError": "prtrace_client.errors",
    "ChunkConflict": "prtrace_client.errors",
    "ConfigError": "prtrace_client.errors",
    "NotFound": "prtrace_client.errors",
    "PrtraceError": "prtrace_client.errors",
    "RetriesExhausted": "prtrace_client.errors",
    "TransportError": "prtrace_client.errors",
    "Unauthorized": "prtrace_client.errors",
    "UploadFailed": "prtrace_client.errors",
    "ValidationFailed": "prtrace_client.errors",
    "Flusher": "prtrace_client.outbox",
    "FlushReport": "prtrace_client.outbox",
    "InvalidEvent": "prtrace_client.outbox",
    "Outbox": "prtrace_client.outbox",
    "SessionClosed": "prtrace_client.outbox",
    "SessionState": "prtrace_client.outbox",
    "default_outbox_path": "prtrace_client.outbox",
    "RetryPolicy": "prtrace_client.retry",
}

__all__ = [
    "PIPELINE_STATUSES",
    "TERMINAL_STATUSES",
    "ApiError",
    "ArtifactUpload",
    "ChunkConflict",
    "ClientConfig",
    "ConfigError",
    "FlushReport",
    "Flusher",
    "InvalidEvent",
    "NotFound",
    "Outbox",
    "PrtraceClient",
    "PrtraceError",
    "RetriesExhausted",
    "RetryPolicy",
    "SessionClosed",
    "SessionState",
    "TransportError",
    "Unauthorized",
    "UploadFailed",
    "ValidationFailed",
    "default_outbox_path",
    "file_digest",
    "resolve_config",
]

if not TYPE_CHECKING:  # mypy sees the imports above; an unknown name stays an error there

    def __getattr__(name: str) -> object:
        try:
            module = _EXPORTS[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        from importlib import import_module

        value = getattr(import_module(module), "file_sha256" if name == "file_digest" else name)
        globals()[name] = value  # once: later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(__all__))
