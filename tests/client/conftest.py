"""Shared fixtures of the client tests: the in-process API (fake_api.py) and clients of it, and no
recorder process left running after a test."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.api import dependencies
from prtrace_client import Outbox, PrtraceClient, RetryPolicy
from prtrace_client.config import ClientConfig
from tests.client.fake_api import API_HOST, FakeApi
from tests.factories import event

RECORDER_MODULES = {b"prtrace_client.recorder.daemon", b"prtrace_cli.recorderd"}


def recorders_under(root: Path) -> list[int]:
    """Pids of the recorder processes (`python -m prtrace_client.recorder.daemon REPO`, or
    prtrace_cli.recorderd as earlier versions started them) serving a repository under
    `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if RECORDER_MODULES & set(argv) and len(argv) >= 2:
            repo = Path(os.fsdecode(argv[-2] if argv[-1] == b"" else argv[-1]))
            if repo.is_relative_to(root):
                found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_recorder_left(tmp_path: Path) -> Iterator[None]:
    """A test that ran `record start` without `record stop` (or failed before it) must not
    leave its session's recorder process running: end those under its tmp_path."""
    yield
    pids = recorders_under(tmp_path)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # it exits cleanly: what it acknowledged is journaled
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    made = FakeApi()
    with pytest.MonkeyPatch.context() as wiring:  # not undone by the test's monkeypatch.undo()
        made.wire(wiring)
        yield made
        dependencies.reset()  # nothing built on the in-memory stores outlives the test


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_client(api: FakeApi, sleeps: Sleeps, attempts: int = 6) -> PrtraceClient:
    return PrtraceClient(
        config=ClientConfig(f"http://{API_HOST}", api.token, "test"),
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
