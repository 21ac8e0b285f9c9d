"""Composition root: build the domain services with boto3-backed adapters."""

from __future__ import annotations

from functools import partial

import boto3
from botocore.config import Config

from prtrace.adapters.dynamodb import DynamoTokenStore, DynamoTraceStore
from prtrace.adapters.keys import load_key_ring
from prtrace.adapters.s3 import S3BlobStore
from prtrace.ingest import IngestService
from prtrace.settings import Settings

# Standard retry mode backs off on throttling; short timeouts keep API latency bounded.
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10
)


# SigV4 presigned URLs sign the checksum and length headers; SigV2 would not bind them.
S3_CONFIG = BOTO_CONFIG.merge(Config(signature_version="s3v4"))


def build_ingest_service(settings: Settings) -> IngestService:
    dynamodb = boto3.client("dynamodb", config=BOTO_CONFIG)
    s3 = boto3.client("s3", config=S3_CONFIG)
    presign = None
    if settings.public_s3_endpoint:
        presign = boto3.client("s3", endpoint_url=settings.public_s3_endpoint, config=S3_CONFIG)
    return IngestService(
        traces=DynamoTraceStore(dynamodb, settings.traces_table),
        blobs=S3BlobStore(s3, settings.bucket, presign_client=presign),
        key_ring=partial(
            load_key_ring,
            secret_name=settings.key_secret_name,
            parameter_name=settings.key_parameter_name,
        ),
        upload_url_ttl_s=settings.upload_url_ttl_s,
    )


def build_token_store(table_name: str) -> DynamoTokenStore:
    return DynamoTokenStore(boto3.client("dynamodb", config=BOTO_CONFIG), table_name)
