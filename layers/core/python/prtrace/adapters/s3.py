"""S3 adapter for chunk bodies and artifacts (keys under tenants/{tenant}/traces/{trace}/)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, BinaryIO

from botocore.exceptions import ClientError

from prtrace.ports import Contention, OpenedBlob, PresignedUpload
from prtrace.storage_keys import READINESS_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


def _b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


class S3BlobStore:
    def __init__(
        self, client: S3Client, bucket: str, presign_client: S3Client | None = None
    ) -> None:
        self._s3 = client
        self._bucket = bucket
        # Presigned URLs must name the endpoint clients reach, which may differ from ours.
        self._presign = presign_client or client

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ChecksumSHA256=_b64(sha256_hex),  # S3 rejects the write if bytes were damaged
                IfNoneMatch="*",  # never overwrite
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "PreconditionFailed":  # 412: the object exists, complete
                return False
            if code == "ConditionalRequestConflict":  # 409: another write is still in flight
                raise Contention(key) from error
            raise
        return True

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def open_read(self, key: str) -> OpenedBlob | None:
        """The object as a stream (bounded memory whatever its size), or None."""
        try:
            answer = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return OpenedBlob(size=answer["ContentLength"], body=answer["Body"])

    def upload_if_absent(
        self, key: str, source: BinaryIO, size: int, sha256_hex: str, content_type: str
    ) -> bool:
        """Like put_if_absent, streaming the body from a file instead of holding it."""
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=source,
                ContentLength=size,
                ContentType=content_type,
                ChecksumSHA256=_b64(sha256_hex),
                IfNoneMatch="*",
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == "PreconditionFailed":
                return False
            if code == "ConditionalRequestConflict":
                raise Contention(key) from error
            raise
        return True

    def head(self, key: str) -> int | None:
        try:
            return self._s3.head_object(Bucket=self._bucket, Key=key)["ContentLength"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def presign_put(
        self, key: str, sha256_hex: str, size: int, content_type: str, expires_in: int
    ) -> PresignedUpload:
        checksum = _b64(sha256_hex)
        url = self._presign.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": size,
                "ChecksumSHA256": checksum,
            },
            ExpiresIn=expires_in,
        )
        # The signature covers these headers: an upload of other bytes or another size fails.
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(size),
            "x-amz-checksum-sha256": checksum,
        }
        return PresignedUpload(url=url, headers=headers, expires_in=expires_in)

    def presign_get(self, key: str, expires_in: int) -> str:
        return self._presign.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )

    def ping(self) -> None:
        # A listing under the tenants' prefix, which the listing grant allows; HeadBucket
        # would need s3:ListBucket on the whole bucket.
        self._s3.list_objects_v2(Bucket=self._bucket, Prefix=READINESS_PREFIX, MaxKeys=1)
