"""Composition root: build the domain services with boto3-backed adapters.

Every function (API, authorizer, Assemble, QA task, Judge, Record, sweeper) and the CLI get
their clients and services from these builders; none creates a boto3 client of its own.
The builders import what they build when called, so importing this module costs boto3 and
nothing else: a function's cold start imports only the services it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from mypy_boto3_s3.client import S3Client

    from prtrace.adapters.artifacts import S3ArtifactStore
    from prtrace.adapters.dynamodb import DynamoTokenStore
    from prtrace.adapters.presign import S3Presigner
    from prtrace.adapters.s3 import S3BlobStore
    from prtrace.adapters.signing import KmsKeySet
    from prtrace.assemble.service import AssembleService
    from prtrace.assemble.settings import AssembleSettings
    from prtrace.dataset.exports import DatasetExports
    from prtrace.dataset.trace_table import TraceTableWriter
    from prtrace.ingest.service import IngestService
    from prtrace.pipeline.record import RecordStep
    from prtrace.pipeline.sweeper import StuckTraceSweeper
    from prtrace.ports import PipelineStarter
    from prtrace.qa.package_index import CodeArtifactSettings
    from prtrace.results.events import TraceEvents
    from prtrace.results.products import TraceResults
    from prtrace.settings import ExportJobSettings, RecordSettings, Settings, SweeperSettings

# Standard retry mode backs off on throttling; short timeouts keep API latency bounded.
BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4}, connect_timeout=3, read_timeout=10
)


# SigV4 presigned URLs sign the checksum and length headers; SigV2 would not bind them.
S3_CONFIG = BOTO_CONFIG.merge(Config(signature_version="s3v4"))

# The QA task moves workspace snapshots (large): one more attempt, a generous read timeout.
SNAPSHOT_TRANSFER_CONFIG = S3_CONFIG.merge(
    Config(retries={"mode": "standard", "max_attempts": 5}, read_timeout=60)
)


def build_s3_client(config: Config = S3_CONFIG) -> S3Client:
    return boto3.client("s3", config=config)


def build_object_store(bucket: str, client: S3Client | None = None) -> S3BlobStore:
    """The objects of one bucket (a function that caches `client` per container passes it)."""
    from prtrace.adapters.s3 import S3BlobStore

    return S3BlobStore(client or build_s3_client(), bucket)


def build_blob_store(settings: Settings) -> S3BlobStore:
    from prtrace.adapters.s3 import S3BlobStore

    presign = None
    if settings.public_s3_endpoint:
        presign = boto3.client("s3", endpoint_url=settings.public_s3_endpoint, config=S3_CONFIG)
    return S3BlobStore(build_s3_client(), settings.bucket, presign_client=presign)


def build_artifact_store(bucket: str) -> S3ArtifactStore:
    """The QA task's snapshot and report store (bounded, streamed downloads)."""
    from prtrace.adapters.artifacts import S3ArtifactStore

    return S3ArtifactStore(build_s3_client(SNAPSHOT_TRANSFER_CONFIG), bucket)


def build_grant_presigner(bucket: str) -> S3Presigner:
    """The PrepareQa step's signer: the QA task's presigned requests, signed with its role."""
    from prtrace.adapters.presign import S3Presigner

    return S3Presigner(build_s3_client(), bucket)


def build_codeartifact_token_source() -> Callable[[CodeArtifactSettings], str]:
    """The PrepareQa step's read token of the private PyPI proxy (CodeArtifact)."""
    client = boto3.client("codeartifact", config=BOTO_CONFIG)

    def token(proxy: CodeArtifactSettings) -> str:
        answer = client.get_authorization_token(**proxy.token_request())
        return str(answer["authorizationToken"])

    return token


def build_pipeline_starter(settings: Settings) -> PipelineStarter | None:
    if settings.state_machine_arn is None:
        return None
    from prtrace.adapters.stepfunctions import StepFunctionsPipelineStarter

    return StepFunctionsPipelineStarter(
        boto3.client("stepfunctions", config=BOTO_CONFIG), settings.state_machine_arn
    )


def build_ingest_service(
    settings: Settings,
    blobs: S3BlobStore | None = None,
    pipeline: PipelineStarter | None = None,
) -> IngestService:
    from prtrace.adapters.dynamodb import DynamoTraceStore
    from prtrace.adapters.keys import load_key_ring
    from prtrace.ingest.service import IngestService

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
    from prtrace.results.products import TraceResults

    return TraceResults(blobs or build_blob_store(settings), settings.download_url_ttl_s)


def build_trace_events(
    settings: Settings, blobs: S3BlobStore, results: TraceResults
) -> TraceEvents:
    from prtrace.adapters.dynamodb import DynamoTraceStore
    from prtrace.results.events import TraceEvents

    dynamodb = boto3.client("dynamodb", config=BOTO_CONFIG)
    return TraceEvents(DynamoTraceStore(dynamodb, settings.traces_table), blobs, results)


def build_key_set(settings: Settings) -> KmsKeySet:
    """The public keys of the manifest signing keys, current first (the API's JWKS)."""
    from prtrace.adapters.signing import KmsKeySet

    return KmsKeySet(boto3.client("kms", config=BOTO_CONFIG), settings.signing_key_ids)


def build_idempotency_store(settings: Settings) -> DynamoDBPersistenceLayer:
    """Where the API keeps the answers to requests sent with an Idempotency-Key."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    client = boto3.client("dynamodb", config=BOTO_CONFIG)
    return DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=client)


def build_assemble_service(settings: AssembleSettings) -> AssembleService:
    from prtrace.adapters.dynamodb import DynamoTraceStore
    from prtrace.adapters.keys import load_key_ring
    from prtrace.assemble.service import AssembleService

    return AssembleService(
        traces=DynamoTraceStore(
            boto3.client("dynamodb", config=BOTO_CONFIG), settings.traces_table
        ),
        blobs=build_object_store(settings.bucket),
        key_ring=partial(
            load_key_ring,
            secret_name=settings.key_secret_name,
            parameter_name=settings.key_parameter_name,
        ),
        spool_dir=settings.spool_dir,
    )


def build_record_step(settings: RecordSettings) -> RecordStep:
    from prtrace.adapters.dynamodb import DynamoTraceStore
    from prtrace.pipeline.record import RecordStep

    objects = build_object_store(settings.bucket)
    manifests = None
    if settings.signing_key_id:
        from prtrace.adapters.signing import KmsSigner
        from prtrace.pipeline.attestation import ManifestSigner

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
    from prtrace.dataset.trace_table import TraceTableWriter

    return TraceTableWriter(build_object_store(settings.bucket))


def build_sweeper(settings: SweeperSettings) -> StuckTraceSweeper:
    from prtrace.pipeline.sweeper import StuckTraceSweeper

    step = build_record_step(settings)
    table = build_trace_table_writer(settings)
    return StuckTraceSweeper(step.traces, step, settings.stuck_after_s, table=table)


def build_token_store(table_name: str) -> DynamoTokenStore:
    from prtrace.adapters.dynamodb import DynamoTokenStore

    return DynamoTokenStore(boto3.client("dynamodb", config=BOTO_CONFIG), table_name)


def build_dataset_exports(settings: Settings, blobs: S3BlobStore) -> DatasetExports:
    from prtrace.adapters.stepfunctions import StepFunctionsExportLauncher
    from prtrace.dataset.exports import DatasetExports, ExportLauncher, NoExportJob

    launcher: ExportLauncher = NoExportJob()
    if settings.export_state_machine_arn:
        launcher = StepFunctionsExportLauncher(
            boto3.client("stepfunctions", config=BOTO_CONFIG), settings.export_state_machine_arn
        )
    return DatasetExports(blobs, launcher, settings.download_url_ttl_s)


def run_export_job(settings: ExportJobSettings) -> dict[str, Any]:
    """The export task's work, wired to S3, DynamoDB and KMS (prtrace.dataset.job)."""
    from prtrace.adapters.dynamodb import DynamoTraceStore
    from prtrace.adapters.export_source import StoreTraceSource
    from prtrace.adapters.s3 import S3BlobStore
    from prtrace.dataset.job import run_export

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
