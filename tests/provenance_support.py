"""A complete, signed trace as the pipeline stores it (Assemble, then Record with a
manifest signer) and the bundle `prtrace download` would write from it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.adapters.memory import MemoryTraceStore
from prtrace.assemble.service import Assembled, AssembleService
from prtrace.pipeline.attestation import ManifestSigner
from prtrace.pipeline.record import RecordStep, parse_record_event
from prtrace.provenance.manifest import Signer, parse_manifest
from prtrace.storage_keys import (
    artifact_key,
    judge_result_key,
    manifest_envelope_key,
    manifest_key,
    qa_report_key,
)
from prtrace_client.provenance import (
    DOCUMENT_NAME,
    ENVELOPE_NAME,
    JUDGE_RESULT_NAME,
    QA_REPORT_NAME,
    artifact_name,
    chunk_name,
)
from prtrace_client.recorder.edits import file_edit
from tests.assemble_support import KEY_RING, chunked, session, store_trace
from tests.factories import blob_ref, event
from tests.judge_factories import qa_report
from tests.pipeline_factories import judge_result
from tests.unit.test_state_check import tar_gz

BEFORE = b"def merge(a):\n    return a[:-1]\n"
AFTER = b"def merge(a):\n    return a\n"


@dataclass
class SignedTrace:
    traces: MemoryTraceStore
    blobs: DirectoryArtifactStore
    tenant: str
    trace_id: str
    assembled: Assembled
    outcome: dict[str, Any]

    def object(self, key: str) -> bytes:
        return self.blobs.get(key)


def signed_trace(tmp: Path, signer: Signer) -> SignedTrace:
    """Fourteen events in two chunks (one a file_edit between real snapshots), QA and
    judge results stored, then Record with `signer`."""
    traces, blobs = MemoryTraceStore(), DirectoryArtifactStore(tmp / "bucket")
    base, final = tar_gz({"merge.py": BEFORE}), tar_gz({"merge.py": AFTER})
    events = session(0, 14)
    events[0] = event(0, "file_edit") | {
        "ts": events[0]["ts"],
        "payload": {
            "path": "merge.py",
            "change": "modify",
            "lines_added": 1,
            "lines_removed": 1,
            "diff": file_edit("merge.py", "modify", BEFORE, AFTER).diff,
        },
    }
    for one in events[1:]:  # no other file edits: the snapshots hold merge.py only
        if one["type"] == "file_edit":
            one["type"], one["payload"] = (
                "rationale_note",
                {"text": "a note", "kind": "observation"},
            )
    from tests.assemble_support import artifacts_of

    chunks = chunked(events, 7)
    stored = store_trace(
        traces,
        blobs,
        chunks,
        artifacts=[*artifacts_of(chunks), base, final],
        snapshots={
            "base": blob_ref(base, "application/gzip"),
            "final": blob_ref(final, "application/gzip"),
        },
    )
    outcome = AssembleService(traces, blobs, lambda: KEY_RING).assemble(
        stored.tenant, stored.trace_id
    )
    assert isinstance(outcome, Assembled), outcome
    tenant, trace_id = stored.tenant, stored.trace_id
    report = qa_report("resolved", trace_id=trace_id).model_dump_json().encode()
    result = judge_result(trace_id).model_dump_json().encode()
    for key, body in ((qa_report_key(tenant, trace_id), report),
                      (judge_result_key(tenant, trace_id), result)):  # fmt: skip
        blobs.put_if_absent(key, body, hashlib.sha256(body).hexdigest(), "application/json")
    step = RecordStep(
        traces, blobs, manifests=ManifestSigner(blobs, signer, "qa@sha256:" + "c" * 64)
    )
    event_in = {
        "tenant": tenant,
        "trace_id": trace_id,
        "status": "complete",
        "assembled": outcome.as_output(),
        "qa": {"report_key": qa_report_key(tenant, trace_id), "skipped": None},
        "judge_result_key": judge_result_key(tenant, trace_id),
    }
    recorded = step.record(parse_record_event(event_in))
    return SignedTrace(traces, blobs, tenant, trace_id, outcome, recorded.outcome or {})


def write_bundle(trace: SignedTrace, dest: Path) -> Path:
    """What download_bundle writes, straight from the stores."""
    t, tid = trace.tenant, trace.trace_id
    manifest_bytes = trace.object(manifest_key(t, tid))
    manifest = parse_manifest(manifest_bytes)
    files = {
        "manifest.json": manifest_bytes,
        ENVELOPE_NAME: trace.object(manifest_envelope_key(t, tid)),
        DOCUMENT_NAME: trace.object(trace.assembled.document_key),
        QA_REPORT_NAME: trace.object(qa_report_key(t, tid)),
        JUDGE_RESULT_NAME: trace.object(judge_result_key(t, tid)),
    }
    for chunk in manifest.chunks:
        record = trace.traces.chunks[(t, tid, chunk.seq)]
        files[chunk_name(chunk.seq)] = trace.object(record.body_key)
    for artifact in manifest.artifacts:
        files[artifact_name(artifact.sha256)] = trace.object(artifact_key(t, tid, artifact.sha256))
    for name, data in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
    return dest
