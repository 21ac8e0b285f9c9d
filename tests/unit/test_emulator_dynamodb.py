"""The local emulator's DynamoDB: each call applied alone, and a cancelled transaction
rolled back from backups of the items it writes, never from a copy of the whole table
(which made every chunk commit dearer as the local cloud filled up)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from local_cloud.moto_patches import emulator_patches
from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTraceStore
from prtrace.adapters.wiring import BOTO_CONFIG
from prtrace.ports import NeighbourChanged
from tests.unit.test_dynamodb_adapters import chunk, raw_items, trace

NAMES = ResourceNames()


@pytest.fixture
def db() -> Iterator[Any]:
    with emulator_patches(), mock_aws():
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


# Key-range queries: moto's own answer, from one partition's bounded items only.

KEY_CONDITIONS = [
    "pk = :p",
    "pk = :p AND sk = :a",
    "pk = :p AND sk < :a",
    "pk = :p AND sk <= :a",
    "pk = :p AND sk > :a",
    "pk = :p AND sk >= :a",
    "pk = :p AND sk BETWEEN :a AND :b",
]


@pytest.fixture(params=["S", "N"])
def keyed_table(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    kind = request.param
    with emulator_patches(), mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": kind},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for partition in ("a", "b", "c"):
            for n in (0, 1, 2, 5, 9, 10, 11, 20, 100, 101):
                value = f"k{n:03d}" if kind == "S" else str(n - 7)
                db.put_item(
                    TableName="t",
                    Item={"pk": {"S": partition}, "sk": {kind: value}, "v": {"N": str(n)}},
                )
        yield db, kind


def _bound(kind: str, n: int) -> dict[str, str]:
    return {"S": f"k{n:03d}"} if kind == "S" else {"N": str(n - 7)}


@pytest.mark.slow
def test_a_key_range_query_answers_as_moto_does(
    keyed_table: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, kind = keyed_table
    requests = []
    for condition, forward, limit, (low, high) in itertools.product(
        KEY_CONDITIONS, (True, False), (None, 1, 2, 30), ((-1, 3), (5, 10), (10, 10), (11, 200))
    ):
        values = {":p": {"S": "b"}}
        if ":a" in condition:
            values[":a"] = _bound(kind, low)
        if ":b" in condition:
            values[":b"] = _bound(kind, high)
        request: dict[str, Any] = {
            "TableName": "t",
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
        }
        if limit:
            request["Limit"] = limit
        requests.append(request)

    if kind == "S":
        for prefix, forward, limit in itertools.product(
            ("k00", "k1", "k", "k01", "zz", "j"), (True, False), (None, 1, 3)
        ):
            request = {
                "TableName": "t",
                "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
                "ExpressionAttributeValues": {":p": {"S": "b"}, ":s": {"S": prefix}},
                "ScanIndexForward": forward,
            }
            if limit:
                request["Limit"] = limit
            requests.append(request)
    # Later pages: each request again, starting after a key inside and outside its range.
    for request in list(requests):
        for n in (0, 5, 10, 101):
            requests.append(
                request | {"ExclusiveStartKey": {"pk": {"S": "b"}, "sk": _bound(kind, n)}}
            )

    def answers() -> list[Any]:
        got = [db.query(**request) for request in requests]
        return [(a["Items"], a["Count"], a.get("LastEvaluatedKey")) for a in got]

    patched = answers()
    monkeypatch.setattr(Table, "query", Table.query.__wrapped__)
    unpatched = answers()
    for request, mine, theirs in zip(requests, patched, unpatched, strict=True):
        assert mine == theirs, request


def test_a_key_range_query_does_not_read_the_whole_table(
    keyed_table: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, kind = keyed_table

    def refuse(*_: Any) -> Any:
        raise AssertionError("a key-range query read every item of the table")

    monkeypatch.setattr(Table, "all_items", refuse)
    got = db.query(
        TableName="t",
        KeyConditionExpression="pk = :p AND sk > :a",
        ExpressionAttributeValues={":p": {"S": "c"}, ":a": _bound(kind, 9)},
        Limit=1,
    )
    assert [item["v"]["N"] for item in got["Items"]] == ["10"]
    assert got["LastEvaluatedKey"]["sk"] == _bound(kind, 10)
