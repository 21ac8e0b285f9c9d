"""The QA task's ArtifactStore over its grant's presigned requests (prtrace.qa.grant), with
httpx: no AWS credentials and no boto3. It reads only the keys the grant names and writes
only the trace's report and QA artifacts; anything else is refused before a request."""

from __future__ import annotations

import base64
import hashlib
from typing import BinaryIO, Final

import httpx

from prtrace.qa.grant import QaGrant
from prtrace.qa.ports import ArtifactMissing, ArtifactTooLarge

_CHUNK: Final = 1024 * 1024
# Snapshots are large: a generous read timeout; connection attempts are retried.
_TIMEOUT: Final = httpx.Timeout(10.0, read=60.0)


class GrantTransferError(RuntimeError):
    """S3 answered a granted request with an error the task cannot treat as absence."""


class KeyNotGranted(PermissionError):
    """The grant does not cover this key (the task asked for another trace's object)."""


def _content_md5(body: bytes) -> str:
    """S3 refuses a write without Content-MD5 (or a checksum) to a bucket with default
    Object Lock retention; an unsigned Content-MD5 is accepted beside a presigned URL."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def _error(method: str, key: str, response: httpx.Response) -> GrantTransferError:
    # The URL is a bearer credential: name the key and the status, never the URL.
    return GrantTransferError(f"{method} {key}: HTTP {response.status_code}")


class PresignedArtifactStore:
    def __init__(self, grant: QaGrant, client: httpx.Client | None = None) -> None:
        self._grant = grant
        self._http = client or httpx.Client(
            timeout=_TIMEOUT, transport=httpx.HTTPTransport(retries=3), follow_redirects=False
        )

    def download(self, key: str, dest: BinaryIO, max_bytes: int) -> int:
        url = self._grant.read_url(key)
        if url is None:
            raise ArtifactMissing(f"{key} is not in this task's grant")
        with self._http.stream("GET", url) as response:
            if response.status_code in (403, 404):
                # Without s3:ListBucket S3 answers 403 for a missing key (or an expired URL).
                raise ArtifactMissing(f"{key}: HTTP {response.status_code}")
            if response.status_code != 200:
                raise _error("GET", key, response)
            declared = response.headers.get("content-length")
            if declared is not None and int(declared) > max_bytes:
                raise ArtifactTooLarge(f"{declared} bytes, more than {max_bytes}")
            copied = 0
            for block in response.iter_bytes(_CHUNK):
                copied += len(block)
                if copied > max_bytes:
                    raise ArtifactTooLarge(f"more than {max_bytes} bytes")
                dest.write(block)
        return copied

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        if hashlib.sha256(body).hexdigest() != sha256_hex:
            raise ValueError(f"body does not match its SHA-256 for {key}")
        if key == self._grant.report.key:
            return self._put_report(key, body)
        if self._grant.may_post(key):
            return self._post_artifact(key, body, content_type)
        raise KeyNotGranted(f"{key} is not writable with this task's grant")

    def _put_report(self, key: str, body: bytes) -> bool:
        response = self._http.put(
            self._grant.url(self._grant.report),
            content=body,
            headers=self._grant.report.headers | {"Content-MD5": _content_md5(body)},
        )
        if response.status_code == 412:  # If-None-Match: the report exists already
            return False
        if response.status_code != 200:
            raise _error("PUT", key, response)
        return True

    def _post_artifact(self, key: str, body: bytes, content_type: str) -> bool:
        """True once stored: S3 has no conditional POST, and the key is the bytes' digest,
        so an existing object at it holds these bytes."""
        if len(body) > self._grant.artifacts.max_bytes:
            raise ValueError(
                f"{key}: {len(body)} bytes, more than the grant's {self._grant.artifacts.max_bytes}"
            )
        form = self._grant.artifact_post()
        data = form.fields | {
            "key": key,
            "Content-Type": content_type,
            "Content-MD5": _content_md5(body),
        }
        response = self._http.post(form.url, data=data, files={"file": ("artifact", body)})
        if response.status_code not in (200, 201, 204):
            raise _error("POST", key, response)
        return True
