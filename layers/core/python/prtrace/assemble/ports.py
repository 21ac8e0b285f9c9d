"""What the Assemble step needs from blob storage beyond ingestion's `BlobStore`: reads and
writes that stream, so memory stays bounded whatever the size of a trace or an artifact.
Implemented by adapters/s3.py (`S3BlobStore`) and by in-memory fakes in the tests."""

from __future__ import annotations

from typing import BinaryIO, Protocol

from prtrace.ports import OpenedBlob


class StreamingBlobStore(Protocol):
    def open_read(self, key: str) -> OpenedBlob | None:
        """The stored object as a stream, or None when there is no such object."""

    def upload_if_absent(
        self, key: str, source: BinaryIO, size: int, sha256_hex: str, content_type: str
    ) -> bool:
        """Stream `size` bytes from `source` into a new object, checksum-verified by the
        store; False (nothing written) when the key already exists."""
