"""The local emulator's DynamoDB: each call applied alone, and a cancelled transaction
rolled back from backups of the items it writes, never from a copy of the whole table
(which made every chunk commit dearer as the local cloud filled up)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from infra_cdk.local.emulator import serialize_dynamodb
from infra_cdk.local.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.ports import NeighbourChanged
from tests.unit.test_dynamodb_adapters import chunk, raw_items, trace

NAMES = ResourceNames()


@pytest.fixture
def db() -> Iterator[Any]:
    serialize_dynamodb()
    with mock_aws():
        provision(NAMES)
        yield boto3.client("dynamodb", config=BOTO_CONFIG)


def test_a_cancelled_transaction_leaves_every_item_as_it_was(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any) -> Any:
        raise AssertionError("a transaction deep-copied a whole table")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
    store = DynamoTraceStore(db, NAMES.traces_table)
    store.create_trace(trace())
    tid = trace().trace_id
    store.commit_chunk(chunk(tid, 0, first=0, count=3, tag="a"))
    before = raw_items(db)
    # Chunk 1 is put and the trace's counters updated before the check on chunk 0 fails.
    with pytest.raises(NeighbourChanged):
        store.commit_chunk(chunk(tid, 1, first=5, count=2, tag="b"))
    assert raw_items(db) == before
    stored = store.get_trace("acme", tid)
    assert stored is not None
    assert (stored.chunk_count, stored.event_count) == (1, 3)


def test_a_committed_transaction_is_applied_whole(db: Any) -> None:
    store = DynamoTraceStore(db, NAMES.traces_table)
    store.create_trace(trace())
    tid = trace().trace_id
    for seq in range(3):
        store.commit_chunk(chunk(tid, seq, first=3 * seq, count=3, tag=str(seq)))
    stored = store.get_trace("acme", tid)
    assert stored is not None
    assert (stored.chunk_count, stored.event_count) == (3, 9)
    assert [c.chunk_seq for c in store.list_chunks("acme", tid, with_event_ids=False)] == [0, 1, 2]
