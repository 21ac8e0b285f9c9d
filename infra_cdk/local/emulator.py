"""The embedded AWS emulator (moto's server) on this machine's loopback."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start moto's server (port 0: any free port) and yield its endpoint URL.

    The endpoint uses `localhost`, not 127.0.0.1: moto reads the first label of an address
    as a bucket name.
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
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
