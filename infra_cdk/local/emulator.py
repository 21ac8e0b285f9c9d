"""The embedded AWS emulator (moto's server) on this machine's loopback."""

from __future__ import annotations

import copy
import logging
import os
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
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


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start moto's server (port 0: any free port) and yield its endpoint URL.

    The endpoint uses `localhost`, not 127.0.0.1: moto reads the first label of an address
    as a bucket name.
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
    serialize_dynamodb()
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
