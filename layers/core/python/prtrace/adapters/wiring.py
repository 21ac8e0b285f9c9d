"""Composition root: build the domain services with boto3-backed adapters."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from prtrace.adapters.dynamodb import DynamoTokenStore, DynamoTraceStore
from prtrace.adapters.keys import load_key_ring
from prtrace.adapters.s3 import S3BlobStore
from prtrace.adapters.stepfunctions import StepFunctionsPipelineStarter
from prtrace.ingest import IngestService
from prtrace.ports import PipelineStarter
from prtrace.record import RecordStep
from prtrace.results import TraceResults
from prtrace.settings import ExportJobSettings, RecordSettings, Settings, SweeperSettings
from prtrace.sweeper import StuckTraceSweeper
from prtrace.trace_events import TraceEvents
from prtrace.trace_table import TraceTableWriter

if TYPE_CHECKING:
    from prtrace.exports import DatasetExports

# Standard retry mode backs off on throttling; short timeouts keep API latency bounded.
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10
)


# SigV4 presigned URLs sign the checksum and length headers; SigV2 would not bind them.
S3_CONFIG = BOTO_CONFIG.merge(Config(signature_version="s3v4"))


def build_blob_store(settings: Settings) -> S3BlobStore:
    s3 = boto3.client("s3", config=S3_CONFIG)
    presign = None
    if settings.public_s3_endpoint:
        presign = boto3.client("s3", endpoint_url=settings.public_s3_endpoint, config=S3_CONFIG)
    return S3BlobStore(s3, settings.bucket, presign_client=presign)


def build_pipeline_starter(settings: Settings) -> PipelineStarter | None:
    if settings.state_machine_arn is None:
        return None
    return StepFunctionsPipelineStarter(
        boto3.client("stepfunctions", config=BOTO_CONFIG), settings.state_machine_arn
    )


def build_ingest_service(
    settings: Settings,
    blobs: S3BlobStore | None = None,
    pipeline: PipelineStarter | None = None,
) -> IngestService:
    dynamodb = boto3.client("dynamodb", config=BOTO_CONFIG)
    return IngestService(
        traces=DynamoTraceStore(dynamodb, settings.traces_table),
        blobs=blobs or build_blob_store(settings),
        key_ring=partial(
            load_key_ring,
            secret_name=settings.key_secret_name,
            parameter_name=settings.key_parameter_name,
        ),
        upload_url_ttl_s=settings.upload_url_ttl_s,
        pipeline=pipeline,
    )


def build_trace_results(settings: Settings, blobs: S3BlobStore | None = None) -> TraceResults:
    return TraceResults(blobs or build_blob_store(settings), settings.download_url_ttl_s)


def build_trace_events(
    settings: Settings, blobs: S3BlobStore, results: TraceResults
) -> TraceEvents:
    dynamodb = boto3.client("dynamodb", config=BOTO_CONFIG)
    return TraceEvents(DynamoTraceStore(dynamodb, settings.traces_table), blobs, results)


def build_record_step(settings: RecordSettings) -> RecordStep:
    objects = S3BlobStore(boto3.client("s3", config=S3_CONFIG), settings.bucket)
    manifests = None
    if settings.signing_key_id:
        from prtrace.adapters.signing import KmsSigner
        from prtrace.attestation import ManifestSigner

        signer = KmsSigner(boto3.client("kms", config=BOTO_CONFIG), settings.signing_key_id)
        manifests = ManifestSigner(objects, signer, settings.qa_image)
    return RecordStep(
        traces=DynamoTraceStore(
            boto3.client("dynamodb", config=BOTO_CONFIG), settings.traces_table
        ),
        objects=objects,
        manifests=manifests,
    )


def build_trace_table_writer(settings: RecordSettings) -> TraceTableWriter:
    return TraceTableWriter(S3BlobStore(boto3.client("s3", config=S3_CONFIG), settings.bucket))


def build_sweeper(settings: SweeperSettings) -> StuckTraceSweeper:
    step = build_record_step(settings)
    return StuckTraceSweeper(step.traces, step, settings.stuck_after_s)


def build_token_store(table_name: str) -> DynamoTokenStore:
    return DynamoTokenStore(boto3.client("dynamodb", config=BOTO_CONFIG), table_name)


def build_dataset_exports(settings: Settings, blobs: S3BlobStore) -> DatasetExports:
    from prtrace.adapters.stepfunctions import StepFunctionsExportLauncher
    from prtrace.exports import DatasetExports, ExportLauncher, NoExportJob

    launcher: ExportLauncher = NoExportJob()
    if settings.export_state_machine_arn:
        launcher = StepFunctionsExportLauncher(
            boto3.client("stepfunctions", config=BOTO_CONFIG), settings.export_state_machine_arn
        )
    return DatasetExports(blobs, launcher, settings.download_url_ttl_s)


def run_export_job(settings: ExportJobSettings) -> dict[str, Any]:
    """The export task's work, wired to S3, DynamoDB and KMS (prtrace.export_job)."""
    from prtrace.adapters.export_source import StoreTraceSource
    from prtrace.export_job import run_export

    blobs = S3BlobStore(boto3.client("s3", config=S3_CONFIG), settings.bucket)
    traces = DynamoTraceStore(boto3.client("dynamodb", config=BOTO_CONFIG), settings.traces_table)
    signer = None
    if settings.signing_key_id:
        from prtrace.adapters.signing import KmsSigner

        signer = KmsSigner(boto3.client("kms", config=BOTO_CONFIG), settings.signing_key_id)
    return run_export(
        settings.export_tenant,
        settings.export_id,
        blobs=blobs,
        source=StoreTraceSource(traces, blobs, settings.export_tenant),
        signer=signer,
    )
