"""Helpers for the pipeline's end-to-end tests: a client of the API (the SDK uploads;
finalize and polling are plain HTTP, so tests see the status codes) and variants of the example
trace whose final workspace differs (a fix that breaks another test, a hanging test)."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from examples.snapshots import TRACE_DIR, finalize_request, fixed_workspace, workspace_archive
from prtrace_client import PrtraceClient
from prtrace_client.submit import media_type

TERMINAL = {"complete", "rejected", "failed"}


class TraceClient:
    """One tenant's client of the HTTP API."""

    def __init__(self, endpoint: str, token: str, tenant: str) -> None:
        self.tenant = tenant
        self.sdk = PrtraceClient(endpoint, token)
        self.http = httpx.Client(
            base_url=endpoint, headers={"authorization": f"Bearer {token}"}, timeout=60
        )

    def upload(self, directory: Path) -> str:
        """Create the trace, upload its artifacts and chunks through the SDK (finalize is
        left to the test); returns the trace id."""
        metadata = orjson.loads((directory / "trace.json").read_bytes())
        metadata["task"]["title"] += f" ({uuid.uuid4().hex[:8]})"  # a new trace every time
        trace_id = str(self.sdk.create_trace(metadata)["trace_id"])
        for path in sorted((directory / "artifacts").iterdir()):
            self.sdk.upload_artifact(trace_id, path, media_type(path))
        for seq, path in enumerate(sorted(directory.glob("chunk-*.json"))):
            self.sdk.put_chunk(trace_id, seq, path.read_bytes())
        return trace_id

    def finalize(self, trace_id: str, directory: Path) -> httpx.Response:
        return self.http.post(
            f"/v1/traces/{trace_id}/finalize",
            content=(directory / "finalize.json").read_bytes(),
            headers={"content-type": "application/json"},
        )

    def trace(self, trace_id: str) -> dict[str, Any]:
        return dict(self._ok(self.http.get(f"/v1/traces/{trace_id}"), 200))

    def wait(
        self,
        trace_id: str,
        timeout_s: float = 180,
        poll_s: float = 0.25,
        since: float | None = None,
    ) -> tuple[dict[str, Any], dict[str, float]]:
        """Poll until the pipeline ends; returns the final view and each status seen, in
        order, with when it was first seen (seconds after `since`, a perf_counter time,
        by default the call)."""
        started = time.perf_counter() if since is None else since
        seen: dict[str, float] = {}

        def note(view: dict[str, Any]) -> None:
            seen.setdefault(view["status"], time.perf_counter() - started)

        left = timeout_s - (time.perf_counter() - started)
        view = self.sdk.wait(trace_id, poll_s=poll_s, timeout_s=max(left, 0), on_update=note)
        if view["status"] not in TERMINAL:
            raise AssertionError(f"trace {trace_id} not finished after {timeout_s} s: {list(seen)}")
        return view, seen

    def download(self, trace_id: str, result: str) -> Any:
        link = self._ok(self.http.get(f"/v1/traces/{trace_id}/{result}"), 200)
        answer = httpx.get(link["url"], timeout=60)
        assert answer.status_code == 200, answer.text
        return orjson.loads(answer.content)

    @staticmethod
    def _ok(answer: httpx.Response, status: int) -> Any:
        assert answer.status_code == status, (
            f"{answer.request.url}: {answer.status_code} {answer.text}"
        )
        return orjson.loads(answer.content)


def trace_variant(target: Path, change_final: Callable[[Path], None]) -> Path:
    """The example trace with its final workspace changed by `change_final` (the recorded
    events stay as they are: QA judges the snapshots)."""
    shutil.copytree(TRACE_DIR, target)
    with tempfile.TemporaryDirectory() as scratch:
        final = fixed_workspace(Path(scratch) / "workspace")
        change_final(final)
        archives = {
            "workspace-base.tar.gz": (target / "artifacts" / "workspace-base.tar.gz").read_bytes(),
            "workspace-final.tar.gz": workspace_archive(final),
        }
    (target / "artifacts" / "workspace-final.tar.gz").write_bytes(
        archives["workspace-final.tar.gz"]
    )
    chunks = len(list(target.glob("chunk-*.json")))
    (target / "finalize.json").write_bytes(orjson.dumps(finalize_request(archives, chunks)))
    return target


def break_shared_points(workspace: Path) -> None:
    """Keeps the fix but makes touching intervals stop overlapping: a regression."""
    merge = workspace / "ranges" / "merge.py"
    merge.write_text(
        merge.read_text() + "\n\ndef overlaps(a, b):\n    return a[0] < b[1] and b[0] < a[1]\n"
    )


def add_hanging_test(workspace: Path) -> None:
    (workspace / "tests" / "test_hangs.py").write_text(
        "import time\n\n\ndef test_waits_forever():\n    time.sleep(3600)\n"
    )
