"""The embedded AWS emulator (moto's server) on this machine's loopback."""

from __future__ import annotations

import bisect
import copy
import functools
import logging
import os
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import moto.backends
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.server import ThreadedMotoServer

_DYNAMODB_LOCK = threading.RLock()


def serialize_dynamodb() -> None:
    """One DynamoDB call at a time in this process, as DynamoDB itself applies each write
    and transaction atomically. moto's threaded server does not: concurrent transactions
    were seen to count a chunk twice, or to fail while copying a table another thread was
    writing. Idempotent."""
    original: Callable[[Any], Any] = DynamoHandler.call_action
    if getattr(original, "_prtrace_serialized", False):
        return

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return original(self)

    call_action._prtrace_serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    _back_up_only_written_items()
    _query_reads_one_partition()


def _deepcopy_but_tables(value: Any, memo: Any = None) -> Any:
    return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _back_up_only_written_items() -> None:
    """moto backs up a transaction by deep-copying every table it names, so each chunk
    commit cost grew with everything the local cloud stored (about 200 ms at 1,000 chunks).
    Instead, back up only the items the transaction writes, and restore those if it is
    cancelled: the same all-or-nothing result, at a cost independent of the table."""
    original = DynamoDBBackend.transact_write_items
    if getattr(original, "_prtrace_item_backups", False):
        return
    dynamodb_models.copy = types.SimpleNamespace(  # type: ignore[attr-defined,assignment]
        deepcopy=_deepcopy_but_tables, copy=copy.copy
    )

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        backups = _written_items(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(backups):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    transact_write_items._prtrace_item_backups = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _written_items(
    backend: DynamoDBBackend, transact_items: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(table, key, the item as stored now or None) for each Put, Update and Delete."""
    backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName", ""))
        if op_type not in ("Put", "Update", "Delete") or table is None:
            continue
        try:
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            current = backend.get_item(op["TableName"], key)
        except Exception:  # noqa: S112 - a malformed op: moto itself refuses it, writing nothing
            continue
        stored = copy.deepcopy(current.to_json()["Attributes"]) if current is not None else None
        backups.append((op["TableName"], key, stored))
    return backups


# Key conditions answerable from a partition sorted by its range key.
_RANGE_BOUNDS = {"EQ", "=", "LT", "<", "LE", "<=", "GT", ">", "GE", ">=", "BETWEEN", "BEGINS_WITH"}


class _PartitionView:
    """The table as moto's query sees it, but whose `all_items()` is the few items a key
    condition admits from one partition."""

    def __init__(self, table: Table, items: list[Any]) -> None:
        self._table = table
        self._items = items

    def all_items(self) -> list[Any]:
        return self._items

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def _query_reads_one_partition() -> None:
    """moto answers every Query by sorting every item of the table and comparing each, so a
    chunk PUT's neighbour lookups grew with everything stored (DynamoDB reads only the
    key range asked for). For a base-table query with a hash key and a range bound, hand
    moto's own query (its limits, pagination keys, filters and projections) only the
    partition's items inside the bound, found by bisection, and only as many as the limit
    can consume. Anything else (indexes, pagination, BEGINS_WITH, legacy filters) is moto's
    unchanged."""
    original = Table.query
    if getattr(original, "_prtrace_partition", False):
        return

    @functools.wraps(original)
    def query(self: Table, hash_key: Any, range_comparison: Any, range_objs: list[Any],
              limit: Any, exclusive_start_key: Any, scan_index_forward: bool,
              *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        index_name = args[1] if len(args) > 1 else kwargs.get("index_name")
        fast = (
            index_name is None
            and hash_key is not None
            and self.range_key_attr is not None
            and (range_comparison is None or range_comparison in _RANGE_BOUNDS)
            and not set(kwargs) - {"hash_key_conditions", "range_key_conditions"}
        )
        bounded = (self, hash_key, range_comparison, range_objs, scan_index_forward)
        items = _bounded_items(*bounded, exclusive_start_key) if fast else None
        if items is None:
            return original(self, hash_key, range_comparison, range_objs, limit,
                            exclusive_start_key, scan_index_forward, *args, **kwargs)  # fmt: skip
        if limit:
            # moto reads one item past the limit to decide on LastEvaluatedKey
            items = items[: limit + 1] if scan_index_forward else items[-(limit + 1) :]
        view: Any = _PartitionView(self, items)
        return original(view, hash_key, range_comparison, range_objs, limit,
                        exclusive_start_key, scan_index_forward, *args, **kwargs)  # fmt: skip

    query._prtrace_partition = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]


def _bounded_items(
    table: Table,
    hash_key: DynamoType,
    comparison: str | None,
    bounds: list[DynamoType],
    forward: bool,
    start_key: dict[str, Any] | None,
) -> list[Any] | None:
    """The partition's items inside the key condition and after the page's start key, in
    range-key order, and the next one past them in the direction read (moto sets
    LastEvaluatedKey when any item follows the last one a limit admits); None when the keys
    are not all strings or all numbers of the bounds' type (moto decides those)."""
    partition: dict[Any, Any] = table.items.get(hash_key) or {}  # .get: no empty partition made
    range_attr = table.range_key_attr or ""
    start = DynamoType(start_key[range_attr]) if start_key else None
    kinds = {key.type for key in partition} | {bound.type for bound in bounds}
    kinds |= {start.type} if start is not None else set()
    if not kinds <= {"S"} and not kinds <= {"N"}:
        return None
    ordered = sorted(partition.items(), key=lambda pair: pair[0].cast_value)
    keys = [key.cast_value for key, _ in ordered]
    low, high = 0, len(keys)
    values = [bound.cast_value for bound in bounds]
    if comparison in ("EQ", "="):
        low, high = bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[0])
    elif comparison in ("LT", "<"):
        high = bisect.bisect_left(keys, values[0])
    elif comparison in ("LE", "<="):
        high = bisect.bisect_right(keys, values[0])
    elif comparison in ("GT", ">"):
        low = bisect.bisect_right(keys, values[0])
    elif comparison in ("GE", ">="):
        low = bisect.bisect_left(keys, values[0])
    elif comparison == "BETWEEN":
        low, high = bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[1])
    elif comparison == "BEGINS_WITH" and values[0]:
        prefix = values[0]
        after = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # the first string past the prefix
        low, high = bisect.bisect_left(keys, prefix), bisect.bisect_left(keys, after)
    if start is not None:  # the page begins after the previous page's last key
        if forward:
            low = max(low, bisect.bisect_right(keys, start.cast_value))
        else:
            high = min(high, bisect.bisect_left(keys, start.cast_value))
    high = max(low, high)
    if forward:
        high = min(high + 1, len(ordered))
    else:
        low = max(low - 1, 0)
    return [item for _, item in ordered[low:high]]


def _list_moto_services_once() -> None:
    """moto's server lists its own package folder (a listdir, and an isdir per service) on
    every request to find which service a host names; the list cannot change while it runs."""
    if getattr(moto.backends.list_of_moto_modules, "_prtrace_listed", False):
        return
    listed = tuple(moto.backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return listed

    list_of_moto_modules._prtrace_listed = True  # type: ignore[attr-defined]
    moto.backends.list_of_moto_modules = list_of_moto_modules


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start moto's server (port 0: any free port) and yield its endpoint URL.

    The endpoint uses `localhost`, not 127.0.0.1: moto reads the first label of an address
    as a bucket name.
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
    serialize_dynamodb()
    _list_moto_services_once()
    # Keep-alive: HTTP/1.0 made every AWS call open a connection and start a server thread.
    MotoRequestHandler.protocol_version = "HTTP/1.1"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        _, bound = server.get_host_and_port()
        yield f"http://localhost:{bound}"
    finally:
        server.stop()


@contextmanager
def local_emulator(port: int = 0) -> Iterator[str]:
    """moto's server, with every boto3 client of this process pointed at it."""
    with moto_server(port) as endpoint:
        saved = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            yield endpoint
        finally:
            if saved is None:
                os.environ.pop("AWS_ENDPOINT_URL", None)
            else:
                os.environ["AWS_ENDPOINT_URL"] = saved
