"""moto's server on a free local port, for tests that need real HTTP (presigned URLs, a CLI
in a subprocess). Its backends are process-global, shared with `mock_aws`: reset between
tests so no state leaks either way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from local_cloud import emulator


@contextmanager
def moto_server() -> Iterator[str]:
    with emulator.moto_server() as endpoint:
        reset(endpoint)
        yield endpoint
        reset(endpoint)


def reset(endpoint: str) -> None:
    httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
