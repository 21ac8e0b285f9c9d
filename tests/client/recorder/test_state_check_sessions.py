"""The trace-to-state check on sessions the recorder really records: every one matches;
the same session with one edit left out is `state_mismatch`, naming the file."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from prtrace.provenance.state_check import RecordedEdit, StateCheck, check_state
from prtrace.schema import MAX_INLINE_DIFF_LEN
from prtrace_client.outbox import Outbox
from prtrace_client.recorder.session import Recorder
from tests.client.recorder.conftest import run_git


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox.open(tmp_path / "outbox.db") as journal:
        yield journal


def recorded(outbox: Outbox, recorder: Recorder) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    stopped = recorder.stop()
    outbox.seal(stopped.local_id, force=True)
    events: list[dict[str, Any]] = []
    for seq in range(outbox.state(stopped.local_id).chunks):
        events += orjson.loads(outbox.chunk(stopped.local_id, seq).body)["events"]
    _, body = outbox.finalize_request(stopped.local_id) or (0, {})
    return events, body


def state_of(
    outbox: Outbox, session: str, events: list[dict[str, Any]], body: dict[str, Any]
) -> StateCheck:
    blobs = {a.sha256: a.path for a in outbox.pending_artifacts(session)}
    edits = []
    for event in events:
        if event["type"] != "file_edit":
            continue
        payload = event["payload"]
        diff = payload.get("diff")
        if diff is None:
            diff = blobs[payload["diff_ref"]["sha256"]].read_text()
        edits.append(
            RecordedEdit(
                event["seq"], payload["path"], payload["change"], diff, payload.get("old_path")
            )
        )

    def opener(name: str) -> Callable[[], tuple[io.BytesIO, str]]:
        ref = body["snapshots"][name]
        return lambda: (io.BytesIO(blobs[ref["sha256"]].read_bytes()), ref["media_type"])

    return check_state(edits, opener("base"), opener("final"))


def a_session(repo: Path, outbox: Outbox) -> tuple[Recorder, list[dict[str, Any]], dict[str, Any]]:
    recorder = Recorder.start(repo, outbox, title="merge() drops the last interval")
    merge = repo / "ranges" / "merge.py"
    merge.write_text(merge.read_text().replace("\n", "\n# checked\n", 1))
    recorder.run(["true"], stdout=io.BytesIO(), stderr=io.BytesIO(), cwd=repo)
    run_git(repo, "mv", "README.md", "README.rst")  # a rename
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0" + bytes(range(256)))  # binary
    (repo / "big.txt").write_text("y\n" * MAX_INLINE_DIFF_LEN)  # diff becomes an artifact
    tool = repo / "tool.sh"
    tool.write_text("#!/bin/sh\necho ok\n")
    os.chmod(tool, 0o755)  # noqa: S103 - an executable script of the workspace
    recorder.run(["true"], stdout=io.BytesIO(), stderr=io.BytesIO(), cwd=repo)
    merge.write_text(merge.read_text() + "# twice\n")  # a second edit of the same file
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0changed")
    events, body = recorded(outbox, recorder)
    return recorder, events, body


def test_a_recorded_session_reproduces_its_final_snapshot(
    buggy_repo: Path, outbox: Outbox, every_stopped_session_matches_its_final_snapshot: list[Any]
) -> None:
    recorder, events, body = a_session(buggy_repo, outbox)
    # conftest.py checks every session a test stops; this one was among them.
    assert len(every_stopped_session_matches_its_final_snapshot) == 1
    kinds = {
        (e["payload"]["path"], e["payload"]["change"]) for e in events if e["type"] == "file_edit"
    }
    assert ("README.rst", "rename") in kinds
    assert ("logo.png", "add") in kinds
    assert any("diff_ref" in e["payload"] for e in events if e["type"] == "file_edit")

    result = state_of(outbox, recorder.info.local_id, events, body)

    assert result.status == "match", result.mismatches
    assert result.edits_applied == sum(e["type"] == "file_edit" for e in events) >= 7
    assert {(u.path, u.reason) for u in result.unverified} == {("logo.png", "binary")}


def test_the_session_with_an_edit_removed_is_flagged_naming_the_file(
    buggy_repo: Path, outbox: Outbox
) -> None:
    recorder, events, body = a_session(buggy_repo, outbox)
    tool = next(e for e in events if e["type"] == "file_edit" and e["payload"]["path"] == "tool.sh")
    left_out = [e for e in events if e is not tool]

    result = state_of(outbox, recorder.info.local_id, left_out, body)

    assert result.status == "state_mismatch"
    assert result.first_mismatch is not None
    assert result.first_mismatch.path == "tool.sh"
    assert result.first_mismatch.reason == "added_without_edit"
    assert result.first_mismatch.unexplained_bytes == len("#!/bin/sh\necho ok\n")


def test_the_session_with_an_invented_edit_is_flagged(buggy_repo: Path, outbox: Outbox) -> None:
    recorder, events, body = a_session(buggy_repo, outbox)
    invented = {
        "seq": len(events),
        "type": "file_edit",
        "payload": {
            "path": "ranges/merge.py",
            "change": "modify",
            "diff": "--- a/ranges/merge.py\n+++ b/ranges/merge.py\n@@ -1,0 +1,1 @@\n+import os\n",
        },
    }
    result = state_of(outbox, recorder.info.local_id, [*events, invented], body)
    assert result.first_mismatch is not None
    assert result.first_mismatch.path == "ranges/merge.py"
    assert result.first_mismatch.reason == "content_differs"
    assert result.first_mismatch.unexplained_bytes == len("import os\n")
