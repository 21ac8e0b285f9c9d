"""What one chunk PUT costs at chunk 1, 100 and 1,000 of one trace, 1,000 ten-event chunks
in order, the median of the ten PUTs around each position, through the ingest service with:
  memory   the in-memory stores (the service's own work: parse, validate, canonicalize, MAC,
           the neighbourhood checks, the commit)
  moto     the DynamoDB and S3 adapters over HTTP against moto's server (the local cloud's
           stores; moto answers a key-range query and copies the table for a transaction in
           time that grows with the partition, which DynamoDB does not)
Keys: chunk_put_<store>_at_<n>_ms and chunk_put_<store>_1000_over_1 (flat: <= 1.2). The
number of stored chunks a PUT reads is asserted constant by tests/unit/test_ingest_concurrency.
`python -m bench.chunk_put_cost` prints the table.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from rich.console import Console
from rich.table import Table

from infra_cdk.local.emulator import local_emulator
from infra_cdk.local.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.memory import MemoryBlobStore, MemoryTraceStore
from prtrace.adapters.s3 import S3BlobStore
from prtrace.adapters.wiring import BOTO_CONFIG, S3_CONFIG
from prtrace.ingest import IngestService
from prtrace.integrity import KeyRing
from prtrace.schema import TraceMetadata
from tests.factories import chunk_body, trace_metadata

CHUNKS = 1_000
EVENTS_PER_CHUNK = 10
POSITIONS = (1, 100, 1_000)
RING = KeyRing(current_id="bench", keys={"bench": b"k" * 32})


@contextmanager
def _memory() -> Iterator[IngestService]:
    yield IngestService(MemoryTraceStore(), MemoryBlobStore(), lambda: RING)


@contextmanager
def _moto() -> Iterator[IngestService]:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)  # the emulator's: any will do
    names = ResourceNames()
    with local_emulator():
        provision(names)
        yield IngestService(
            DynamoTraceStore(boto3.client("dynamodb", config=BOTO_CONFIG), names.traces_table),
            S3BlobStore(boto3.client("s3", config=S3_CONFIG), names.bucket),
            lambda: RING,
        )


def _latencies(service: IngestService) -> list[float]:
    metadata = TraceMetadata.model_validate(trace_metadata())
    trace_id = service.create_trace("bench", metadata).trace_id
    bodies = [chunk_body(seq * EVENTS_PER_CHUNK, EVENTS_PER_CHUNK) for seq in range(CHUNKS)]
    latencies: list[float] = []
    for seq, body in enumerate(bodies):
        start = time.perf_counter()
        service.put_chunk("bench", trace_id, seq, body)
        latencies.append(time.perf_counter() - start)
    return latencies


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    for name, stores in (("memory", _memory), ("moto", _moto)):
        with stores() as service:
            latencies = _latencies(service)
        for position in POSITIONS:
            index = position - 1  # chunk n is the n-th PUT
            window = latencies[max(0, index - 5) : index + 5] or latencies[-10:]
            results[f"chunk_put_{name}_at_{position}_ms"] = round(
                statistics.median(window) * 1000, 3
            )
        first, last = POSITIONS[0], POSITIONS[-1]
        results[f"chunk_put_{name}_{last}_over_{first}"] = round(
            results[f"chunk_put_{name}_at_{last}_ms"] / results[f"chunk_put_{name}_at_{first}_ms"],
            2,
        )
    return results


def main() -> None:
    table = Table("measure", "value")
    for name, value in run().items():
        table.add_row(name, str(value))
    Console().print(table)


if __name__ == "__main__":
    main()
