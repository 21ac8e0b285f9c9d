"""An export's status as GET /v1/exports/{id} reports it (prtrace.dataset.exports.DatasetExports),
from its stored objects and its job's execution: error.json is final only once the
execution ended (a failed task may be started again), and an ended execution's status is
named as an error (JobTimedOut, not JobTimed_Out)."""

from __future__ import annotations

import orjson
import pytest

from prtrace.adapters.memory import MemoryBlobStore
from prtrace.dataset.exports import DatasetExports, ExportRequest
from prtrace.integrity import sha256_hex
from prtrace.storage_keys import export_error_key

NOW = "2026-12-05T10:00:00Z"


class Blobs(MemoryBlobStore):
    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)


class Launcher:
    def __init__(self, state: tuple[str, str | None] | None) -> None:
        self.current = state

    def start(self, tenant: str, export_id: str) -> None:
        pass

    def state(self, export_id: str) -> tuple[str, str | None] | None:
        return self.current


def started(state: tuple[str, str | None] | None) -> tuple[DatasetExports, Blobs, str]:
    blobs = Blobs()
    exports = DatasetExports(blobs, Launcher(state))
    export_id = str(exports.start("acme", ExportRequest(), NOW)["export_id"])
    return exports, blobs, export_id


def store_error(blobs: Blobs, export_id: str) -> None:
    body = orjson.dumps({"error": "ConnectionError", "detail": "connection reset"})
    blobs.put_if_absent(export_error_key("acme", export_id), body, sha256_hex(body), "x")


@pytest.mark.parametrize(
    ("status", "named"),
    [("FAILED", "JobFailed"), ("TIMED_OUT", "JobTimedOut"), ("ABORTED", "JobAborted")],
)
def test_an_ended_execution_without_a_manifest_is_failed_with_its_status(
    status: str, named: str
) -> None:
    exports, _, export_id = started((status, "the task was stopped: OutOfMemoryError"))
    view = exports.get("acme", export_id)
    assert view["status"] == "failed"
    assert view["error"] == {"error": named, "detail": "the task was stopped: OutOfMemoryError"}


def test_error_json_is_final_only_once_the_execution_ended() -> None:
    exports, blobs, export_id = started(("RUNNING", None))
    store_error(blobs, export_id)
    assert exports.get("acme", export_id)["status"] == "running"
    exports._launcher.current = ("FAILED", "States.TaskFailed")  # type: ignore[attr-defined]
    view = exports.get("acme", export_id)
    assert view["status"] == "failed"
    assert view["error"] == {"error": "ConnectionError", "detail": "connection reset"}


def test_no_execution_on_record_says_it_never_started_or_ended_long_ago() -> None:
    exports, _, export_id = started(None)
    error = exports.get("acme", export_id)["error"]
    assert error["error"] == "NotStarted"
    assert "never started, or it ended over 90 days ago" in error["detail"]
