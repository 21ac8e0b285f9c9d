"""Shared fixtures. Tests never reach a real AWS account: credentials are fake and every
AWS call goes to moto (in-process, or its server for HTTP-level tests)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import botocore.loaders
import botocore.session
import pytest
from hypothesis import HealthCheck, settings

from tests.local_cloud import SHARED_CLOUD

if TYPE_CHECKING:
    from local_cloud.cloud import LocalCloudInfo

# Before anything creates a boto3 client.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_NAMESPACE": "prtrace-tests",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)
# Tests never reach OpenAI: a key or endpoint in the developer's shell must not leak in.
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)
# Nor the Hugging Face Hub: `datasets` loads local files only (tests/e2e/test_export.py).
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})

# moto drops boto3's default session on every mock start, and each new botocore session
# re-reads the service models' JSON (about 40 ms a client). One loader per data path for
# the whole run keeps the parsed models: they are read-only.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)

# `make test-fast`: property tests try fewer examples in the edit loop; `make test` (CI)
# keeps each test's own settings.
settings.register_profile(
    "fast", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

TESTS = Path(__file__).parent
# Suites that start their own local cloud in this process (another context) or in a child.
OWN_CLOUD_DIRS = (TESTS / "e2e",)
CLOUD_PROCESS_TESTS = ("test_make_local.py", "test_make_deploy_local.py")


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloudInfo]:
    """The shared local cloud (tests/local_cloud.py): started once for every suite that
    needs the default stack; stopped after the last of them (see the hooks below)."""
    yield SHARED_CLOUD.info(tmp_path_factory.mktemp("local-cloud"))
    SHARED_CLOUD.stop()


def _uses_shared_cloud(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.get("cloud", ()) if info else ()
    # The last definition is the one the test gets: a module may define its own `cloud`.
    return bool(definitions) and definitions[-1].func.__module__ == __name__


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by what it needs (`localcloud`, `sandbox`), and run the tests without
    a local cloud first, then those sharing the default cloud, then the suites with their
    own: one cloud in this process at a time, and none while moto's in-process mocks run."""

    def group(item: pytest.Item) -> int:
        path = Path(str(item.path))
        if path.is_relative_to(TESTS / "sandbox"):
            item.add_marker(pytest.mark.sandbox)
        if _uses_shared_cloud(item):
            item.add_marker(pytest.mark.localcloud)
            return 1
        if any(path.is_relative_to(d) for d in OWN_CLOUD_DIRS) or "cloud" in item.fixturenames:
            item.add_marker(pytest.mark.localcloud)
            return 2
        if path.name in CLOUD_PROCESS_TESTS:
            item.add_marker(pytest.mark.localcloud)
        return 0

    items.sort(key=group)  # stable: each group keeps the collection order


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Stop the shared cloud right after the last test that uses it, before any suite that
    starts a cloud of its own."""
    result = yield
    if _uses_shared_cloud(item) and (nextitem is None or not _uses_shared_cloud(nextitem)):
        SHARED_CLOUD.stop()
    return result
