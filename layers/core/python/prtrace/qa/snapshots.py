"""Fetch a workspace snapshot by its BlobRef and prove it is the promised bytes.

The SHA-256 and size are checked on the downloaded file before anything opens it as an
archive: a swapped or truncated object never reaches the extractor.
"""

from __future__ import annotations

from pathlib import Path

from prtrace.integrity import file_sha256
from prtrace.qa.errors import QAError
from prtrace.qa.ports import ArtifactMissing, ArtifactStore, ArtifactTooLarge
from prtrace.schema import BlobRef
from prtrace.snapshot_media import MEDIA_TYPES
from prtrace.storage_keys import artifact_key


def fetch_snapshot(
    store: ArtifactStore,
    tenant: str,
    trace_id: str,
    ref: BlobRef,
    dest: Path,
    key: str | None = None,
) -> Path:
    """Download the snapshot (from the trace's artifact key, or `key` when the caller names
    one) to `dest` and verify it; raise QAError otherwise."""
    if ref.media_type not in MEDIA_TYPES:
        raise QAError(
            "unsafe_archive",
            f"snapshot {ref.sha256[:12]}: media type {ref.media_type!r} is not one of "
            + ", ".join(MEDIA_TYPES),
        )
    key = key or artifact_key(tenant, trace_id, ref.sha256)
    try:
        with dest.open("wb") as out:
            size = store.download(key, out, max_bytes=ref.size)
    except ArtifactMissing:
        raise QAError("infra_error", f"snapshot not found at {key}") from None
    except ArtifactTooLarge:
        raise QAError(
            "unsafe_archive", f"snapshot at {key} is larger than its declared {ref.size} bytes"
        ) from None
    if size != ref.size:
        raise QAError("unsafe_archive", f"snapshot at {key}: {size} bytes, expected {ref.size}")
    actual, _ = file_sha256(dest)
    if actual != ref.sha256:
        raise QAError(
            "unsafe_archive", f"snapshot at {key}: SHA-256 {actual}, expected {ref.sha256}"
        )
    return dest
