"""What QA needs from artifact storage: read a snapshot, keep logs and JUnit files.

Adapters: prtrace.adapters.artifacts (S3, a local directory). Keys are S3-style paths;
snapshots and QA outputs are content-addressed under the trace
(prtrace.storage_keys.artifact_key).
"""

from __future__ import annotations

from typing import BinaryIO, Protocol


class ArtifactMissing(Exception):
    """No object at the key."""


class ArtifactTooLarge(Exception):
    """The object holds more bytes than the reader was willing to take."""


class ArtifactStore(Protocol):
    def download(self, key: str, dest: BinaryIO, max_bytes: int) -> int:
        """Copy the object into `dest`; return its size. Raises ArtifactMissing, or
        ArtifactTooLarge as soon as more than `max_bytes` arrived."""

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        """Write unless the key exists (True when written). Content-addressed keys make an
        existing key the same bytes."""
