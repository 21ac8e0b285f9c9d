"""Artifact stores for QA and Assemble: S3 (the pipeline) and a local directory (the CLI,
tests, benchmarks)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from botocore.exceptions import ClientError

from prtrace.adapters.s3 import S3BlobStore
from prtrace.ports import OpenedBlob
from prtrace.qa.ports import ArtifactMissing, ArtifactTooLarge

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_CHUNK = 1024 * 1024


def _copy_bounded(source: BinaryIO, dest: BinaryIO, max_bytes: int) -> int:
    copied = 0
    while chunk := source.read(_CHUNK):
        copied += len(chunk)
        if copied > max_bytes:
            raise ArtifactTooLarge(f"more than {max_bytes} bytes")
        dest.write(chunk)
    return copied


class S3ArtifactStore(S3BlobStore):
    """The ingestion S3 adapter plus a bounded, streamed download."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        super().__init__(client, bucket)

    def download(self, key: str, dest: BinaryIO, max_bytes: int) -> int:
        try:
            answer = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ArtifactMissing(key) from error
            raise
        body = answer["Body"]
        try:
            return _copy_bounded(body, dest, max_bytes)  # type: ignore[arg-type]
        finally:
            body.close()


class DirectoryArtifactStore:
    """Keys are paths under `root`; writes never overwrite (same contract as S3)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not a relative key: {key!r}")
        return self.root.joinpath(*parts)

    def download(self, key: str, dest: BinaryIO, max_bytes: int) -> int:
        try:
            source = self._path(key).open("rb")
        except FileNotFoundError:
            raise ArtifactMissing(key) from None
        with source:
            return _copy_bounded(source, dest, max_bytes)

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        if hashlib.sha256(body).hexdigest() != sha256_hex:
            raise ValueError(f"body does not match its SHA-256 for {key}")
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        return True

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open_read(self, key: str) -> OpenedBlob | None:
        try:
            source = self._path(key).open("rb")
        except FileNotFoundError:
            return None
        return OpenedBlob(size=os.fstat(source.fileno()).st_size, body=source)

    def upload_if_absent(
        self, key: str, source: BinaryIO, size: int, sha256_hex: str, content_type: str
    ) -> bool:
        """Copied to a temporary file first and linked into place, so a reader never sees
        a partial object and an existing one is never replaced."""
        path = self._path(key)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                while block := source.read(_CHUNK):
                    digest.update(block)
                    out.write(block)
                copied = out.tell()
            if copied != size or digest.hexdigest() != sha256_hex:
                raise ValueError(f"upload of {key} does not match its size and SHA-256")
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(temporary)
