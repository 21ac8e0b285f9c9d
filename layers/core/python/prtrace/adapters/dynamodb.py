"""DynamoDB adapters: traces and chunks in one table, API tokens in another.

Traces table keys (pk, sk):
  trace  T#{tenant}            / TRACE#{trace_id}   (ULIDs: newest-first listing per tenant)
  chunk  T#{tenant}#{trace_id} / CHUNK#{seq:06d}    (one item per chunk, never per event)
Every write carries a condition, so a retry can never overwrite or lose a stored item.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from prtrace.ports import AlreadyExists, ConditionFailed, Contention, NeighbourChanged
from prtrace.records import (
    FINALIZING,
    IN_PIPELINE,
    OPEN,
    ChunkNeighbourhood,
    ChunkRecord,
    Page,
    TraceRecord,
)
from prtrace.tokens import TokenRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

_TRANSACTION_ATTEMPTS = 5
_MAX_SEQ = 10**6 - 1  # the largest seq a six-digit chunk sort key holds
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_numbers(v)) for k, v in values.items() if v is not None}


def _numbers(value: Any) -> Any:
    """DynamoDB takes no floats: scores (an outcome's `overall`) go in as exact decimals."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: counts are integers, scores may not be."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# A sparse index of the traces in the pipeline (finalized, not yet ended): one partition,
# sorted by when they were finalized; its keys exist only on those trace items.
IN_PIPELINE_INDEX: Final = "InPipeline"
IN_PIPELINE_KEY: Final = "in_pipeline"
IN_PIPELINE_SINCE: Final = "in_pipeline_since"
IN_PIPELINE_LISTED: Final = "listed"


_READINESS_KEY: Final = {"pk": {"S": "READYZ"}, "sk": {"S": "READYZ"}}


def _trace_key(tenant: str, trace_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"T#{tenant}"}, "sk": {"S": f"TRACE#{trace_id}"}}


def _chunk_key(tenant: str, trace_id: str, chunk_seq: int) -> dict[str, Any]:
    return {"pk": {"S": f"T#{tenant}#{trace_id}"}, "sk": {"S": _chunk_sk(chunk_seq)}}


def _chunk_sk(chunk_seq: int) -> str:
    """Zero-padded, so sort-key order is seq order (key ranges, newest/oldest queries)."""
    return f"CHUNK#{chunk_seq:06d}"


def _trace_from_item(item: dict[str, Any]) -> TraceRecord:
    v = _from_item(item)
    return TraceRecord(
        tenant=v["tenant"],
        trace_id=v["trace_id"],
        status=v["status"],
        metadata=v["metadata"],
        created_at=v["created_at"],
        updated_at=v["updated_at"],
        chunk_count=v.get("chunk_count", 0),
        event_count=v.get("event_count", 0),
        finalize=v.get("finalize"),
        outcome=v.get("outcome"),
    )


def _chunk_from_item(item: dict[str, Any]) -> ChunkRecord:
    v = _from_item(item)
    ids = v.get("event_ids")
    return ChunkRecord(
        tenant=v["tenant"],
        trace_id=v["trace_id"],
        chunk_seq=v["chunk_seq"],
        first_event_seq=v["first_event_seq"],
        last_event_seq=v["last_event_seq"],
        sha256=v["sha256"],
        mac=v["mac"],
        key_id=v["key_id"],
        body_key=v["body_key"],
        size_bytes=v["size_bytes"],
        stored_at=v["stored_at"],
        event_ids=tuple(ids.split("\n")) if ids else (),
    )


class DynamoTraceStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def create_trace(self, trace: TraceRecord) -> None:
        item = _trace_key(trace.tenant, trace.trace_id) | _to_item(
            {
                "tenant": trace.tenant,
                "trace_id": trace.trace_id,
                "status": trace.status,
                "metadata": trace.metadata,
                "created_at": trace.created_at,
                "updated_at": trace.updated_at,
                "chunk_count": 0,
                "event_count": 0,
            }
        )
        try:
            self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if _condition_failed(error):
                raise AlreadyExists(trace.trace_id) from error
            raise

    def get_trace(self, tenant: str, trace_id: str) -> TraceRecord | None:
        item = self._db.get_item(
            TableName=self._table, Key=_trace_key(tenant, trace_id), ConsistentRead=True
        ).get("Item")
        return _trace_from_item(item) if item else None

    def list_traces(self, tenant: str, limit: int, after: str | None) -> Page:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"T#{tenant}"}, ":prefix": {"S": "TRACE#"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:  # rebuilt from the caller's tenant: a cursor cannot cross tenants
            query["ExclusiveStartKey"] = _trace_key(tenant, after)
        response = self._db.query(**query)
        items = [_trace_from_item(i) for i in response.get("Items", [])]
        more = "LastEvaluatedKey" in response and len(items) == limit
        return Page(items=items, next_token=items[-1].trace_id if more and items else None)

    def get_chunk(self, tenant: str, trace_id: str, chunk_seq: int) -> ChunkRecord | None:
        item = self._db.get_item(
            TableName=self._table, Key=_chunk_key(tenant, trace_id, chunk_seq), ConsistentRead=True
        ).get("Item")
        return _chunk_from_item(item) if item else None

    def list_chunks(
        self, tenant: str, trace_id: str, with_event_ids: bool
    ) -> Iterator[ChunkRecord]:
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"T#{tenant}#{trace_id}"},
                ":prefix": {"S": "CHUNK#"},
            },
            "ConsistentRead": True,
        }
        if not with_event_ids:
            query["ProjectionExpression"] = (
                "tenant, trace_id, chunk_seq, first_event_seq, last_event_seq, sha256, mac, "
                "key_id, body_key, size_bytes, stored_at"
            )
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(**query):
            for item in page.get("Items", []):
                yield _chunk_from_item(item)

    def chunk_neighbourhood(self, tenant: str, trace_id: str, chunk_seq: int) -> ChunkNeighbourhood:
        """Two queries of at most two items, whatever the number of stored chunks."""
        below = (
            self._chunks_between(tenant, trace_id, 0, chunk_seq - 1, limit=1, forward=False)
            if chunk_seq > 0
            else []
        )
        upward = self._chunks_between(tenant, trace_id, chunk_seq, _MAX_SEQ, limit=2, forward=True)
        same = upward[0] if upward and upward[0].chunk_seq == chunk_seq else None
        above = [c for c in upward if c.chunk_seq != chunk_seq][:1]
        return ChunkNeighbourhood(
            below=below[0] if below else None, same=same, above=above[0] if above else None
        )

    def _chunks_between(
        self, tenant: str, trace_id: str, low: int, high: int, limit: int, forward: bool
    ) -> list[ChunkRecord]:
        response = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
            ExpressionAttributeValues={
                ":pk": {"S": f"T#{tenant}#{trace_id}"},
                ":low": {"S": _chunk_sk(low)},
                ":high": {"S": _chunk_sk(high)},
            },
            ScanIndexForward=forward,
            Limit=limit,
            ConsistentRead=True,
        )
        return [_chunk_from_item(item) for item in response.get("Items", [])]

    def commit_chunk(self, chunk: ChunkRecord) -> None:
        item = _chunk_key(chunk.tenant, chunk.trace_id, chunk.chunk_seq) | _to_item(
            {
                "tenant": chunk.tenant,
                "trace_id": chunk.trace_id,
                "chunk_seq": chunk.chunk_seq,
                "first_event_seq": chunk.first_event_seq,
                "last_event_seq": chunk.last_event_seq,
                "sha256": chunk.sha256,
                "mac": chunk.mac,
                "key_id": chunk.key_id,
                "body_key": chunk.body_key,
                "size_bytes": chunk.size_bytes,
                "stored_at": chunk.stored_at,
                "event_ids": "\n".join(chunk.event_ids),
            }
        )
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _trace_key(chunk.tenant, chunk.trace_id),
                    "ConditionExpression": "#status = :open",
                    "UpdateExpression": "ADD chunk_count :one, event_count :events "
                    "SET updated_at = :now",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":open": {"S": OPEN},
                        ":one": {"N": "1"},
                        ":events": {"N": str(chunk.event_count)},
                        ":now": {"S": chunk.stored_at},
                    },
                }
            },
            # Adjacent chunks committed concurrently must still continue this one.
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": _chunk_key(chunk.tenant, chunk.trace_id, chunk.chunk_seq + 1),
                    "ConditionExpression": "attribute_not_exists(pk) OR first_event_seq = :next",
                    "ExpressionAttributeValues": {":next": {"N": str(chunk.last_event_seq + 1)}},
                }
            },
        ]
        if chunk.chunk_seq > 0:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": _chunk_key(chunk.tenant, chunk.trace_id, chunk.chunk_seq - 1),
                        "ConditionExpression": "attribute_not_exists(pk) OR last_event_seq = :prev",
                        "ExpressionAttributeValues": {
                            ":prev": {"N": str(chunk.first_event_seq - 1)}
                        },
                    }
                }
            )
        for attempt in range(_TRANSACTION_ATTEMPTS):
            try:
                self._db.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
                return
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            failed = {i for i, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
            if 0 in failed:
                raise AlreadyExists(chunk.chunk_seq)
            if 1 in failed:
                raise ConditionFailed(chunk.trace_id)
            if failed:
                raise NeighbourChanged(chunk.chunk_seq)
            if "TransactionConflict" not in reasons:
                raise Contention(f"chunk transaction cancelled: {reasons}")
            # Concurrent chunks of one trace all update the trace item; back off and retry
            # (the transaction is all-or-nothing, so a retry cannot double-count).
            time.sleep(random.uniform(0.02, 0.05) * (attempt + 1))  # noqa: S311 - jitter
        raise Contention(f"trace {chunk.trace_id} stayed contended")

    def mark_finalizing(
        self,
        tenant: str,
        trace_id: str,
        finalize: dict[str, Any],
        now: str,
        chunk_count: int,
        event_count: int,
    ) -> TraceRecord:
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=_trace_key(tenant, trace_id),
                ConditionExpression="#status = :open AND chunk_count = :chunks "
                "AND event_count = :events",
                # The in-pipeline index keys: the trace is listed there until it ends.
                UpdateExpression=(
                    "SET #status = :finalizing, finalize = :finalize, updated_at = :now, "
                    f"{IN_PIPELINE_KEY} = :listed, {IN_PIPELINE_SINCE} = :now"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":listed": {"S": IN_PIPELINE_LISTED},
                    ":open": {"S": OPEN},
                    ":finalizing": {"S": FINALIZING},
                    ":finalize": _serializer.serialize(finalize),
                    ":now": {"S": now},
                    ":chunks": {"N": str(chunk_count)},
                    ":events": {"N": str(event_count)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                raise ConditionFailed(trace_id) from error
            raise
        return _trace_from_item(response["Attributes"])

    def repair_counts(
        self, tenant: str, trace_id: str, seen: tuple[int, int], stored: tuple[int, int]
    ) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_trace_key(tenant, trace_id),
                ConditionExpression="#status = :open AND chunk_count = :seen_chunks "
                "AND event_count = :seen_events",
                UpdateExpression="SET chunk_count = :chunks, event_count = :events",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":open": {"S": OPEN},
                    ":seen_chunks": {"N": str(seen[0])},
                    ":seen_events": {"N": str(seen[1])},
                    ":chunks": {"N": str(stored[0])},
                    ":events": {"N": str(stored[1])},
                },
            )
        except ClientError as error:
            if _condition_failed(error):
                raise ConditionFailed(trace_id) from error
            raise

    def record_outcome(
        self, tenant: str, trace_id: str, status: str, outcome: dict[str, Any], now: str
    ) -> TraceRecord:
        # The state machine writes the progress statuses with its own UpdateItem on this
        # item (status, updated_at); any of them, or finalizing, may precede the outcome.
        in_pipeline = {f":s{i}": {"S": s} for i, s in enumerate(IN_PIPELINE)}
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key=_trace_key(tenant, trace_id),
                ConditionExpression=f"#status IN ({', '.join(in_pipeline)})",
                UpdateExpression="SET #status = :status, outcome = :outcome, updated_at = :now "
                f"REMOVE {IN_PIPELINE_KEY}, {IN_PIPELINE_SINCE}",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=in_pipeline
                | {
                    ":status": {"S": status},
                    ":outcome": _serializer.serialize(_numbers(outcome)),
                    ":now": {"S": now},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            stored = self.get_trace(tenant, trace_id)
            if stored is not None and stored.status == status:
                return stored  # a retry of the write that already landed
            raise ConditionFailed(trace_id) from error
        return _trace_from_item(response["Attributes"])

    def in_pipeline_since_before(self, before: str, limit: int) -> list[tuple[str, str]]:
        response = self._db.query(
            TableName=self._table,
            IndexName=IN_PIPELINE_INDEX,
            KeyConditionExpression=f"{IN_PIPELINE_KEY} = :listed AND {IN_PIPELINE_SINCE} < :before",
            ExpressionAttributeValues={
                ":listed": {"S": IN_PIPELINE_LISTED},
                ":before": {"S": before},
            },
            Limit=limit,
        )
        return [
            (item["pk"]["S"].removeprefix("T#"), item["sk"]["S"].removeprefix("TRACE#"))
            for item in response.get("Items", [])
        ]

    def ping(self) -> None:
        # A read of a key no item has (every stored pk starts with T#): the API may read
        # items, while DescribeTable is granted to nobody.
        self._db.get_item(TableName=self._table, Key=_READINESS_KEY)


class DynamoTokenStore:
    """Tokens keyed by token id alone: the authorizer needs one GetItem and nothing else."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._db = client
        self._table = table_name

    def put_token(self, token: TokenRecord) -> None:
        item = _to_item(
            {
                "token_id": token.token_id,
                "tenant": token.tenant,
                "scopes": list(token.scopes),
                "secret_sha256": token.secret_sha256,
                "created_at": token.created_at,
                "expires_at": token.expires_at,
                "description": token.description,
            }
        )
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(token_id)",
            )
        except ClientError as error:
            if _condition_failed(error):
                raise AlreadyExists(token.token_id) from error
            raise

    def get_token(self, token_id: str) -> TokenRecord | None:
        item = self._db.get_item(
            TableName=self._table, Key={"token_id": {"S": token_id}}, ConsistentRead=True
        ).get("Item")
        return _token_from_item(item) if item else None

    def list_tokens(self, tenant: str | None) -> list[TokenRecord]:
        tokens: list[TokenRecord] = []
        for page in self._db.get_paginator("scan").paginate(TableName=self._table):
            tokens.extend(_token_from_item(i) for i in page.get("Items", []))
        return sorted(
            (t for t in tokens if tenant is None or t.tenant == tenant),
            key=lambda t: (t.tenant, t.created_at),
        )

    def revoke_token(self, token_id: str, now: str) -> TokenRecord:
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key={"token_id": {"S": token_id}},
                ConditionExpression="attribute_exists(token_id)",
                # A second revoke keeps the first revocation time.
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                ExpressionAttributeValues={":now": {"S": now}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                raise ConditionFailed(token_id) from error
            raise
        return _token_from_item(response["Attributes"])


def _token_from_item(item: dict[str, Any]) -> TokenRecord:
    v = _from_item(item)
    return TokenRecord(
        token_id=v["token_id"],
        tenant=v["tenant"],
        scopes=tuple(v["scopes"]),
        secret_sha256=v["secret_sha256"],
        created_at=v["created_at"],
        expires_at=v.get("expires_at"),
        revoked_at=v.get("revoked_at"),
        description=v.get("description", ""),
    )
