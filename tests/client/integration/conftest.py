"""For the client's fault tests on the shared local cloud (tests/local_cloud.py): a fresh
tenant per test, and a fault-injecting HTTP proxy in front of the API."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from local_cloud.cloud import LocalCloudInfo
from tests.client.integration.proxy import FaultProxy
from tests.local_cloud import make_token, new_tenant


@dataclass(frozen=True)
class Tenant:
    name: str
    token: str


@pytest.fixture
def tenant(cloud: LocalCloudInfo) -> Tenant:
    name = new_tenant()
    return Tenant(name, make_token(cloud, name, ["ingest", "read"]))


@pytest.fixture
def proxy(cloud: LocalCloudInfo) -> Iterator[FaultProxy]:
    started = FaultProxy(cloud.endpoint)
    started.start()
    yield started
    started.stop()


@pytest.fixture
def cli_env(tmp_path: Path, tenant: Tenant, proxy: FaultProxy) -> dict[str, str]:
    """Environment of a `prtrace` process: the proxy as endpoint, no user config."""
    return {
        "PRTRACE_ENDPOINT": proxy.url,
        "PRTRACE_TOKEN": tenant.token,
        "PRTRACE_OUTBOX": str(tmp_path / "outbox.db"),
        "PRTRACE_CONFIG": str(tmp_path / "no-config.toml"),
        "HOME": str(tmp_path),
    }
