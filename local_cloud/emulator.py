"""The embedded AWS emulator (moto's server) on this machine's loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from local_cloud.moto_patches import emulator_patches


@contextmanager
def moto_server(port: int = 0) -> Iterator[str]:
    """Start moto's server (port 0: any free port), with the emulator's patches
    (moto_patches.py), and yield its endpoint URL. Nothing of this process is pointed at
    it: clients name the endpoint.

    The endpoint uses `localhost`, not 127.0.0.1: moto reads the first label of an address
    as a bucket name.
    """
    with emulator_patches():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            _, bound = server.get_host_and_port()
            yield f"http://localhost:{bound}"
        finally:
            server.stop()


def emulator_client(service: str, aws_endpoint: str, region: str, **options: Any) -> Any:
    """A boto3 client of an emulator (it accepts any credentials), named explicitly: the
    local cloud points nothing of this process's environment at it."""
    return boto3.client(  # type: ignore[call-overload]  # any service, by name
        service,
        endpoint_url=aws_endpoint,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the emulator's dummy credentials
        **options,
    )
