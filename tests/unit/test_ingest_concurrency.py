"""Concurrent clients against the ingest service on both stores (in-memory, and DynamoDB
under moto): identical PUTs racing each other are one chunk with one receipt, drifted
counters never keep a trace from being finalized, and a PUT reads a constant number of
chunks whatever the trace holds."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import orjson
import pytest
from moto import mock_aws

from local_cloud.moto_patches import emulator_patches
from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.memory import MemoryBlobStore, MemoryTraceStore
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.errors import DuplicateEventIds
from prtrace.ingest.service import IngestService
from prtrace.integrity import KeyRing
from prtrace.ports import TraceStore
from prtrace.schema import TraceMetadata
from tests.factories import chunk_body, event, trace_metadata

RING = KeyRing(current_id="k1", keys={"k1": b"s" * 32})
NAMES = ResourceNames()
WRITERS = 16
ROUNDS = 100


# DynamoDB under moto takes ~15 s for the 100 rounds of 16 racing writers.
@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest) -> Iterator[TraceStore]:
    if request.param == "memory":
        yield MemoryTraceStore()
        return
    # DynamoDB's own atomicity, which moto's threads lack
    with emulator_patches(), mock_aws():
        provision(NAMES)
        yield DynamoTraceStore(boto3.client("dynamodb", config=BOTO_CONFIG), NAMES.traces_table)


def _service(store: TraceStore) -> IngestService:
    return IngestService(store, MemoryBlobStore(), lambda: RING)


def _new_trace(service: IngestService) -> str:
    return service.create_trace("acme", TraceMetadata.model_validate(trace_metadata())).trace_id


def test_identical_puts_racing_are_one_chunk_with_one_receipt(store: TraceStore) -> None:
    service = _service(store)
    body = chunk_body(3, 2)
    with ThreadPoolExecutor(WRITERS) as pool:
        for round_no in range(ROUNDS):
            trace_id = _new_trace(service)
            service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
            put = functools.partial(service.put_chunk, "acme", trace_id, 1)
            outcomes = list(pool.map(put, [body] * WRITERS))
            receipts = {orjson.dumps(o.chunk.receipt()) for o in outcomes}
            assert len(receipts) == 1, f"round {round_no}: {receipts}"
            assert sum(not o.replayed for o in outcomes) <= 1
            finalized = service.finalize("acme", trace_id, 2)
            assert finalized.status == "finalizing", f"round {round_no}"
            assert (finalized.chunk_count, finalized.event_count) == (2, 5), f"round {round_no}"


def _drift(store: TraceStore, trace_id: str) -> None:
    """What the emulator's transactions were seen to do: count a chunk that is not there."""
    if isinstance(store, MemoryTraceStore):
        from dataclasses import replace

        trace = store.traces[("acme", trace_id)]
        store.traces[("acme", trace_id)] = replace(
            trace, chunk_count=trace.chunk_count + 1, event_count=trace.event_count + 2
        )
        return
    assert isinstance(store, DynamoTraceStore)
    boto3.client("dynamodb", config=BOTO_CONFIG).update_item(
        TableName=NAMES.traces_table,
        Key={"pk": {"S": "T#acme"}, "sk": {"S": f"TRACE#{trace_id}"}},
        UpdateExpression="ADD chunk_count :one, event_count :two",
        ExpressionAttributeValues={":one": {"N": "1"}, ":two": {"N": "2"}},
    )


def test_finalize_repairs_counters_that_drifted_from_the_stored_chunks(
    store: TraceStore,
) -> None:
    service = _service(store)
    trace_id = _new_trace(service)
    service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
    service.put_chunk("acme", trace_id, 1, chunk_body(3, 2))
    _drift(store, trace_id)
    assert (store.get_trace("acme", trace_id).chunk_count) == 3  # type: ignore[union-attr]
    finalized = service.finalize("acme", trace_id, 2)
    assert finalized.status == "finalizing"
    assert (finalized.chunk_count, finalized.event_count) == (2, 5)
    assert finalized.finalize is not None
    assert finalized.finalize["event_count"] == 5


def test_the_neighbourhood_is_the_nearest_stored_chunks(store: TraceStore) -> None:
    service = _service(store)
    trace_id = _new_trace(service)
    for seq, first in ((0, 0), (3, 10), (7, 30)):
        service.put_chunk("acme", trace_id, seq, chunk_body(first, 2))

    def seqs(at: int) -> tuple[int | None, ...]:
        around = store.chunk_neighbourhood("acme", trace_id, at)
        return tuple(
            None if c is None else c.chunk_seq for c in (around.below, around.same, around.above)
        )

    assert seqs(0) == (None, 0, 3)
    assert seqs(2) == (0, None, 3)
    assert seqs(3) == (0, 3, 7)
    assert seqs(5) == (3, None, 7)
    assert seqs(9) == (7, None, None)
    around = store.chunk_neighbourhood("acme", trace_id, 5)
    assert around.below is not None
    assert len(around.below.event_ids) == 2  # with event ids: duplicates are checked


def test_a_duplicate_id_is_refused_next_door_and_left_to_assemble_farther_away(
    store: TraceStore,
) -> None:
    service = _service(store)
    trace_id = _new_trace(service)
    service.put_chunk("acme", trace_id, 0, chunk_body(0, 2))  # ids ev-0000000, ev-0000001
    service.put_chunk("acme", trace_id, 1, chunk_body(2, 2))
    reused = orjson.dumps({"events": [event(4, event_id="ev-0000002")]})
    with pytest.raises(DuplicateEventIds):  # chunk 1, the neighbour below, holds it
        service.put_chunk("acme", trace_id, 2, reused)
    farther = orjson.dumps({"events": [event(4, event_id="ev-0000000")]})
    assert not service.put_chunk("acme", trace_id, 2, farther).replayed  # Assemble rejects it


class _CountingStore(MemoryTraceStore):
    def __init__(self) -> None:
        super().__init__()
        self.chunks_read = 0

    def chunk_neighbourhood(self, *args: Any) -> Any:
        around = super().chunk_neighbourhood(*args)
        self.chunks_read += sum(c is not None for c in (around.below, around.same, around.above))
        return around

    def list_chunks(self, *args: Any) -> Any:
        for chunk in super().list_chunks(*args):
            self.chunks_read += 1
            yield chunk


def test_a_put_reads_the_same_number_of_chunks_at_chunk_1_and_chunk_1000() -> None:
    store = _CountingStore()
    service = _service(store)
    trace_id = _new_trace(service)
    reads = []
    for seq in range(1000):
        before = store.chunks_read
        service.put_chunk("acme", trace_id, seq, chunk_body(seq, 1))
        reads.append(store.chunks_read - before)
    assert max(reads) <= 1  # only the chunk below: nothing above, nothing at its seq
