"""The embedded AWS emulator (moto's server) on this machine's loopback."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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
