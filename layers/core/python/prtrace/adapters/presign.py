"""The QA grant's signer (prtrace.qa.grant.Presigner): S3 requests signed with the PrepareQa
step's own role, for one bucket. A presigned request can do only what the signer's role may
do, and only until the earlier of its expiry and the end of the signer's session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prtrace.ports import PresignedUpload
from prtrace.qa.grant import PresignedForm

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class S3Presigner:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def presign_get(self, key: str, expires_in: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=expires_in
        )

    def presign_put_if_absent(
        self, key: str, content_type: str, expires_in: int
    ) -> PresignedUpload:
        url = self._s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ContentType": content_type,
                "IfNoneMatch": "*",
            },
            ExpiresIn=expires_in,
        )
        # SigV4 signs both headers (X-Amz-SignedHeaders): a PUT without them is refused.
        headers = {"Content-Type": content_type, "If-None-Match": "*"}
        return PresignedUpload(url=url, headers=headers, expires_in=expires_in)

    def presign_post_under(self, key_prefix: str, max_bytes: int, expires_in: int) -> PresignedForm:
        # A key ending in ${filename} makes botocore's policy `starts-with $key key_prefix`.
        post = self._s3.generate_presigned_post(
            self._bucket,
            key_prefix + "${filename}",
            Conditions=[
                ["content-length-range", 1, max_bytes],
                ["starts-with", "$Content-Type", ""],
                # A bucket with default Object Lock retention refuses writes without it.
                ["starts-with", "$Content-MD5", ""],
            ],
            ExpiresIn=expires_in,
        )
        fields = {name: str(value) for name, value in post["fields"].items() if name != "key"}
        return PresignedForm(url=post["url"], fields=fields)
