"""Sessions the recorder really records, exported: every instance's `patch` and
`test_patch` apply to a fresh checkout of its `base_commit` and give the tree the session
ended with. A session started with `--allow-dirty` is marked `base_dirty` and left out by
default, and rightly: its patch does not apply to `base_commit`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from prtrace.assemble.document import TraceDocument
from prtrace.dataset.collect import ResultKind, UnreadableTrace, collect
from prtrace.dataset.files import write_export
from prtrace.dataset.rows import ExportFilter
from prtrace.schema import WorkspaceSnapshots
from prtrace_client.outbox import Outbox
from prtrace_client.recorder.session import Recorder
from tests.client.recorder.conftest import run_git
from tests.judge_factories import document, qa_report
from tests.pipeline_factories import judge_result

TARGET = "tests/test_ranges.py::test_merge_keeps_last_interval"
FIX = ("    if current is not None and not merged:", "    if current is not None:")


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox.open(tmp_path / "outbox.db") as journal:
        yield journal


class RecordedSource:
    """The sessions the outbox holds, as the API would serve them once assembled (QA's
    report stands in: what is checked here is the patch against the base commit)."""

    def __init__(self, outbox: Outbox, sessions: list[str]) -> None:
        self.documents: dict[str, bytes] = {}
        self.blobs: dict[str, Path] = {}
        for n, session in enumerate(sessions):
            outbox.seal(session, force=True)
            metadata, _, _ = outbox.creation(session)
            events: list[dict[str, Any]] = []
            for seq in range(outbox.state(session).chunks):
                events += orjson.loads(outbox.chunk(session, seq).body)["events"]
            _, body = outbox.finalize_request(session) or (0, {})
            trace_id = f"tr_session{n}"
            doc: TraceDocument = document(events, trace_id=trace_id, **metadata)
            snapshots = WorkspaceSnapshots.model_validate(body["snapshots"])
            doc = doc.model_copy(update={"snapshots": snapshots})
            self.documents[trace_id] = doc.model_dump_json(exclude_none=True).encode()
            self.blobs |= {a.sha256: a.path for a in outbox.pending_artifacts(session)}

    def iter_views(self) -> Iterator[Mapping[str, Any]]:
        for trace_id in self.documents:
            yield {"trace_id": trace_id, "status": "complete",
                   "created_at": "2026-12-08T09:00:00.000Z", "outcome": {}}  # fmt: skip

    def result(self, trace_id: str, kind: ResultKind) -> bytes | None:
        if kind == "document":
            return self.documents[trace_id]
        if kind == "qa-report":
            report = qa_report("resolved", trace_id=trace_id, target_tests=[TARGET])
            return report.model_dump_json().encode()
        return judge_result(trace_id).model_dump_json().encode()

    def artifact(self, trace_id: str, sha256: str) -> bytes:
        if sha256 not in self.blobs:
            raise UnreadableTrace(f"artifact {sha256} is not in the outbox")
        return self.blobs[sha256].read_bytes()


def fix_and_stop(repo: Path, recorder: Recorder) -> str:
    merge = repo / "ranges" / "merge.py"
    assert FIX[0] in merge.read_text()
    merge.write_text(merge.read_text().replace(*FIX))
    (repo / "tests" / "test_more.py").write_text("def test_more():\n    assert True\n")
    return recorder.stop().local_id


def tracked_tree(root: Path) -> dict[str, bytes]:
    listed = run_git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return {name: (root / name).read_bytes() for name in sorted(filter(None, listed.split("\0")))}


def git_apply(
    checkout: Path, patch: str, *, check: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "apply", *(["--check"] if check else []), "-"],
        cwd=checkout, input=patch, text=True, capture_output=True, check=False,
    )  # fmt: skip


def test_every_exported_patch_applies_to_a_fresh_checkout_of_its_base_commit(
    buggy_repo: Path, outbox: Outbox, tmp_path: Path
) -> None:
    recorder = Recorder.start(buggy_repo, outbox, title="merge drops the last interval")
    session = fix_and_stop(buggy_repo, recorder)
    source = RecordedSource(outbox, [session])
    out = tmp_path / "export"
    selection = collect(source, ExportFilter())
    manifest = write_export(selection, out, formats=["swebench"])
    assert selection.unusable == selection.skipped == []
    (instance,) = [orjson.loads(line) for line in (out / "instances.jsonl").open("rb")]
    assert manifest["usable_count"] == 1
    assert (instance["usable"], instance["base_dirty"]) == (True, False)
    assert "tests/test_more.py" in instance["test_patch"]

    checkout = tmp_path / "checkout"
    run_git(tmp_path, "clone", "--quiet", "--no-checkout", str(buggy_repo), str(checkout))
    run_git(checkout, "checkout", "--quiet", instance["base_commit"])
    for part in ("patch", "test_patch"):
        applied = git_apply(checkout, instance[part])
        assert applied.returncode == 0, applied.stderr
    assert tracked_tree(checkout) == tracked_tree(buggy_repo)  # the tree the session ended with


def test_a_dirty_base_is_marked_left_out_by_default_and_does_not_apply(
    buggy_repo: Path, outbox: Outbox, tmp_path: Path
) -> None:
    # Half a fix already in the tree when recording starts: the base snapshot holds it.
    merge = buggy_repo / "ranges" / "merge.py"
    merge.write_text(merge.read_text().replace("    return merged", "    return list(merged)"))
    recorder = Recorder.start(buggy_repo, outbox, title="merge drops it", allow_dirty=True)
    session = fix_and_stop(buggy_repo, recorder)

    left_out = collect(RecordedSource(outbox, [session]), ExportFilter())
    manifest = write_export(left_out, tmp_path / "default", formats=["swebench"])
    assert manifest["trace_count"] == 0
    assert [u.reasons for u in left_out.unusable] == [("base_dirty",)]

    taken = collect(RecordedSource(outbox, [session]), ExportFilter(include_unusable=True))
    write_export(taken, tmp_path / "all", formats=["swebench"])
    (instance,) = [orjson.loads(line) for line in (tmp_path / "all" / "instances.jsonl").open("rb")]
    assert (instance["usable"], instance["unusable_reasons"]) == (False, ["base_dirty"])
    checkout = tmp_path / "checkout"
    run_git(tmp_path, "clone", "--quiet", "--no-checkout", str(buggy_repo), str(checkout))
    run_git(checkout, "checkout", "--quiet", instance["base_commit"])
    refused = git_apply(checkout, instance["patch"], check=True)
    assert refused.returncode != 0  # why such an instance is never exported as usable
    assert "patch failed" in refused.stderr or "does not apply" in refused.stderr
