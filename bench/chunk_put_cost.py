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

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

from local_cloud.emulator import emulator_client, moto_server
from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.memory import MemoryBlobStore, MemoryTraceStore
from prtrace.adapters.s3 import S3BlobStore
from prtrace.adapters.wiring import BOTO_CONFIG, S3_CONFIG
from prtrace.ingest.service import IngestService
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
    names = ResourceNames()
    with moto_server() as endpoint:
        # The emulator's clients, named explicitly: nothing of this process's environment.
        provision(
            names,
            "us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the emulator takes any
        )
        dynamodb = emulator_client("dynamodb", endpoint, "us-east-1", config=BOTO_CONFIG)
        s3 = emulator_client("s3", endpoint, "us-east-1", config=S3_CONFIG)
        yield IngestService(
            DynamoTraceStore(dynamodb, names.traces_table),
            S3BlobStore(s3, names.bucket),
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
