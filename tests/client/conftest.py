"""Shared fixtures of the client tests: the in-process API and clients of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prtrace_client import Outbox, PrtraceClient, RetryPolicy
from prtrace_client.config import ClientConfig
from tests.client.fake_api import FakeApi
from tests.factories import event


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(api: FakeApi, sleeps: Sleeps, attempts: int = 6) -> PrtraceClient:
    return PrtraceClient(
        config=ClientConfig("http://api.test", "prt_test", "test"),
        transport=api.transport(),
        sleep=sleeps,
        retry=RetryPolicy(attempts=attempts, base_s=0.1, cap_s=2.0, max_retry_after_s=30.0),
    )


@pytest.fixture
def client(api: FakeApi, sleeps: Sleeps) -> Iterator[PrtraceClient]:
    made = make_client(api, sleeps)
    yield made
    made.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    opened = Outbox.open(tmp_path / "outbox.db")
    yield opened
    opened.close()


def recorded(seq: int) -> dict[str, Any]:
    """A factory event as a recorder appends it: no seq (the outbox assigns it)."""
    made = event(seq)
    del made["seq"]
    return made
