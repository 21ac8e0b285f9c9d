"""prtrace client SDK: `PrtraceClient` (HTTP API, retries, idempotency) and the durable
`Outbox` + `Flusher` that deliver recorded events exactly once."""

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
