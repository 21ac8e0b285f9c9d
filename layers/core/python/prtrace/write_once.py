"""Writing an object once. A step that is retried (a Lambda invocation, an ECS task started
again) may find the object its earlier attempt wrote: the step is deterministic, so the
stored object must hold exactly the bytes this attempt has. It is read back and compared,
never overwritten and never trusted blindly: other bytes mean the inputs changed between
attempts, which the caller reports.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO, Final, Protocol

from prtrace.ports import OpenedBlob

READ_BLOCK_BYTES: Final = 1024 * 1024


class StoredDiffers(RuntimeError):
    """The key already holds other bytes; they were left as they are."""

    def __init__(self, key: str, what: str, stored_sha256: str, sha256: str) -> None:
        super().__init__(
            f"{key} already holds a different {what} (SHA-256 {stored_sha256}, this one "
            f"{sha256}); it was left as it is"
        )
        self.key = key


class WriteOnceStore(Protocol):
    def open_read(self, key: str) -> OpenedBlob | None: ...

    def upload_if_absent(
        self, key: str, source: BinaryIO, size: int, sha256_hex: str, content_type: str
    ) -> bool: ...


def upload_once(
    store: WriteOnceStore,
    key: str,
    source: BinaryIO,
    size: int,
    sha256: str,
    content_type: str,
    *,
    what: str = "object",
    conflict: type[StoredDiffers] = StoredDiffers,
) -> bool:
    """Stream `size` bytes into a new object: True when written; False when an earlier
    attempt stored the same bytes; `conflict` (a StoredDiffers) when it stored others."""
    if store.upload_if_absent(key, source, size, sha256, content_type):
        return True
    opened = store.open_read(key)
    if opened is None:  # deleted between the two calls: nothing to compare, nothing kept
        raise conflict(key, what, "none (the object vanished)", sha256)
    stored = hashlib.sha256()
    try:
        while block := opened.body.read(READ_BLOCK_BYTES):
            stored.update(block)
    finally:
        opened.body.close()
    if stored.hexdigest() != sha256:
        raise conflict(key, what, stored.hexdigest(), sha256)
    return False
