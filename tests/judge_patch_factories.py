"""Workspace snapshots for the judge's patch (tar archives built in memory, the sample
trace's base and final trees, documents that name them) and long traces with a few edits
in much noise (the prompt's ranking; tests and `make bench`)."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import UTC, datetime, timedelta
from typing import Any

from prtrace.assemble.document import TraceDocument
from prtrace.judge.patch import PatchEvidence, patch_evidence
from prtrace.schema import BlobRef, WorkspaceSnapshots
from tests.factories import blob_ref

MERGE_BEFORE = b"""def merge(intervals):
    merged = []
    current = None
    for start, end in sorted(intervals):
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            merged.append(current)
        current = (start, end)
    if current is not None and not merged:
        merged.append(current)
    return merged
"""
MERGE_AFTER = MERGE_BEFORE.replace(b"is not None and not merged:", b"is not None:")
TESTS_BEFORE = b"""from ranges.merge import merge


def test_merge_overlapping():
    assert merge([(1, 3), (2, 4)]) == [(1, 4)]
"""
TESTS_AFTER = (
    TESTS_BEFORE
    + b"""

def test_merge_keeps_last_interval():
    assert merge([(1, 3), (2, 4), (6, 8)]) == [(1, 4), (6, 8)]
"""
)
SAMPLE_BASE = {
    "ranges/__init__.py": b"",
    "ranges/merge.py": MERGE_BEFORE,
    "tests/test_ranges.py": TESTS_BEFORE,
    "logo.png": b"\x89PNG\r\n\x1a\n\0\0",
}
SAMPLE_FINAL = SAMPLE_BASE | {
    "ranges/merge.py": MERGE_AFTER,
    "tests/test_ranges.py": TESTS_AFTER,
    "logo.png": b"\x89PNG\r\n\x1a\n\0\1",
}


def tar_archive(files: dict[str, bytes], *, compress: bool = True) -> bytes:
    """A tar (gzip'd unless told otherwise) of `files`, in sorted order, fixed metadata."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name in sorted(files):
            member = tarfile.TarInfo(name)
            member.size = len(files[name])
            member.mtime = 1_764_000_000
            archive.addfile(member, io.BytesIO(files[name]))
    data = raw.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def with_snapshots(document: TraceDocument, base: bytes, final: bytes) -> TraceDocument:
    """`document` naming `base` and `final` (archives) as its workspace snapshots."""
    snapshots = WorkspaceSnapshots(
        base=BlobRef.model_validate(blob_ref(base, _media_type(base))),
        final=BlobRef.model_validate(blob_ref(final, _media_type(final))),
    )
    return document.model_copy(update={"snapshots": snapshots})


def _media_type(archive: bytes) -> str:
    return "application/gzip" if archive.startswith(b"\x1f\x8b") else "application/x-tar"


def snapshot_patch(
    document: TraceDocument, base: dict[str, bytes], final: dict[str, bytes]
) -> tuple[TraceDocument, PatchEvidence]:
    """The document with `base` and `final` as snapshots, and the patch the judge reads."""
    archives = {"base": tar_archive(base), "final": tar_archive(final)}
    doc = with_snapshots(document, archives["base"], archives["final"])
    by_digest = {blob_ref(data)["sha256"]: data for data in archives.values()}
    return doc, patch_evidence(doc, lambda ref: by_digest.get(ref.sha256))


def event_ts(seq: int) -> str:
    moment = datetime(2026, 11, 25, 9, tzinfo=UTC) + timedelta(milliseconds=250 * seq)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def trace_event(seq: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": f"e-{seq:06d}", "seq": seq, "ts": event_ts(seq), "type": kind,
            "payload": payload}  # fmt: skip


def note_event(seq: int, text: str) -> dict[str, Any]:
    return trace_event(seq, "rationale_note", {"kind": "observation", "text": text})


def green_run(seq: int, passed: int = 40) -> dict[str, Any]:
    return trace_event(seq, "test_run", {
        "framework": "pytest", "command": ["pytest", "-q"], "passed": passed, "failed": 0,
        "errors": 0, "skipped": 0, "failing_tests": [], "duration_ms": 900,
    })  # fmt: skip


def edit_event(seq: int, path: str, diff: str) -> dict[str, Any]:
    return trace_event(seq, "file_edit", {"path": path, "change": "modify", "diff": diff,
                                     "lines_added": 1, "lines_removed": 1})  # fmt: skip


def command_event(seq: int) -> dict[str, Any]:
    return trace_event(seq, "cmd_run", {"argv": ["git", "status"], "cwd": "/workspace",
                                   "exit_code": 0, "duration_ms": 40 + seq % 7})  # fmt: skip


def needle_trace(total: int, edits: dict[int, str]) -> list[dict[str, Any]]:
    """`total` events: notes (each different), identical green runs and commands, with
    edits at the given positions."""
    events = []
    for seq in range(total):
        if seq in edits:
            events.append(edit_event(seq, edits[seq], f"@@ -1 +1 @@\n-old {seq}\n+new {seq}\n"))
        elif seq % 5 == 3:
            events.append(green_run(seq))
        elif seq % 5 == 4 and seq % 10 != 9:
            events.append(command_event(seq))
        else:
            events.append(note_event(seq, f"Still reading the code ({seq}); nothing found yet."))
    return events
