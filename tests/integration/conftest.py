"""Per-test API clients of the shared local cloud (tests/local_cloud.py): a fresh tenant
for each test, so what a test lists is only what it created."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local_cloud.cloud import LocalCloudInfo
from tests.local_cloud import Api, make_token, new_tenant


@pytest.fixture
def tenant_api(cloud: LocalCloudInfo) -> Iterator[Api]:
    """A fresh tenant (ingest and read), so what a test lists is only what it created."""
    tenant = new_tenant()
    api = Api(cloud.endpoint, make_token(cloud, tenant, ["ingest", "read"]), tenant)
    yield api
    api.close()


@pytest.fixture
def make_api(cloud: LocalCloudInfo) -> Iterator[Any]:
    """Factory: an Api for a token of `tenant` (default: a new one) with `scopes`."""
    made: list[Api] = []

    def make(tenant: str | None = None, scopes: tuple[str, ...] = ("ingest", "read")) -> Api:
        tenant = tenant or new_tenant()
        api = Api(cloud.endpoint, make_token(cloud, tenant, list(scopes)), tenant)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()
