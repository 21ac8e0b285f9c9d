"""The Assemble step on stored traces: the document it writes, and every reason it rejects."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import TypeAdapter

from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.adapters.memory import MemoryTraceStore
from prtrace.assemble.document import ChainSummary, TraceDocument
from prtrace.assemble.metrics import compute_metrics
from prtrace.assemble.service import (
    TIMESTAMP_TOLERANCE_MS,
    Assembled,
    AssembleService,
    DocumentConflict,
    Rejected,
)
from prtrace.ingest.service import ArtifactRequest, IngestService
from prtrace.integrity import KeyRing, chunk_mac, compute_chain, sha256_hex
from prtrace.schema import Event, TraceMetadata, WorkspaceSnapshots
from prtrace.storage_keys import artifact_key, document_key, judge_result_key, qa_report_key
from tests.assemble_support import (
    KEY_RING,
    TENANT,
    TRACE_ID,
    IngestBlobs,
    StoredTrace,
    artifacts_of,
    at_ms,
    canonical_event,
    chunked,
    session,
    store_trace,
)
from tests.factories import blob_ref, event, trace_metadata

EVENTS = TypeAdapter(list[Event])
BASE = b"base workspace archive bytes"
FINAL = b"final workspace archive bytes!"
SNAPSHOTS = {
    "base": blob_ref(BASE, "application/gzip"),
    "final": blob_ref(FINAL, "application/gzip"),
}


@pytest.fixture
def traces() -> MemoryTraceStore:
    return MemoryTraceStore()


@pytest.fixture
def blobs(tmp_path: Path) -> DirectoryArtifactStore:
    return DirectoryArtifactStore(tmp_path / "bucket")


def service(traces: MemoryTraceStore, blobs: DirectoryArtifactStore) -> AssembleService:
    return AssembleService(traces, blobs, lambda: KEY_RING)


def stored(
    traces: MemoryTraceStore,
    blobs: DirectoryArtifactStore,
    chunks: list[list[dict[str, Any]]] | None = None,
    snapshots: dict[str, Any] | None = SNAPSHOTS,
) -> StoredTrace:
    chunks = chunks if chunks is not None else chunked(session(0, 21), 7)
    return store_trace(
        traces,
        blobs,
        chunks,
        artifacts=[*artifacts_of(chunks), BASE, FINAL],
        snapshots=snapshots,
    )


def assembled(trace: StoredTrace) -> Assembled:
    outcome = service(trace.traces, trace.blobs).assemble(trace.tenant, trace.trace_id)
    assert isinstance(outcome, Assembled), outcome
    return outcome


def rejection(trace: StoredTrace) -> dict[str, Any]:
    outcome = service(trace.traces, trace.blobs).assemble(trace.tenant, trace.trace_id)
    assert isinstance(outcome, Rejected), outcome
    output = outcome.as_output()
    assert output["outcome"] == "rejected"
    assert trace.blobs.open_read(document_key(trace.tenant, trace.trace_id)) is None
    reason: dict[str, Any] = output["reason"]
    assert set(reason) == {
        "code",
        "detail",
        "chunk_seq",
        "event_seq",
        "event_id",
        "artifact_sha256",
    }
    return reason


def stored_document(trace: StoredTrace) -> bytes:
    return trace.blobs.get(document_key(trace.tenant, trace.trace_id))


# ---- the document ---------------------------------------------------------------------


def test_assembles_the_document_with_chain_and_metrics(traces, blobs):
    raw_events = session(0, 21)
    trace = stored(traces, blobs, chunked(raw_events, 7))
    result = assembled(trace)

    events = EVENTS.validate_python(raw_events)
    head = compute_chain(KEY_RING.current, TRACE_ID, [canonical_event(e) for e in raw_events])[-1]
    chain = ChainSummary(key_id="k1", head=head, length=21)
    metrics = compute_metrics(events)
    expected = TraceDocument(
        trace_id=TRACE_ID,
        metadata=TraceMetadata.model_validate(trace_metadata()),
        events=events,
        chain=chain,
        snapshots=WorkspaceSnapshots.model_validate(SNAPSHOTS),
        metrics=metrics,
        state_check=result.state_check,
    )
    # These snapshots are not archives: the state check says so, the trace still assembles.
    assert result.state_check is not None
    assert result.state_check.status == "not_checked"
    assert "not a readable tar archive" in str(result.state_check.detail)
    body = stored_document(trace)
    # Streamed out chunk by chunk, yet byte for byte what the model would serialize.
    assert body == expected.model_dump_json().encode()
    assert TraceDocument.model_validate_json(body) == expected
    assert result.document_sha256 == hashlib.sha256(body).hexdigest()
    assert result.document_bytes == len(body)
    assert result.written

    output = result.as_output()
    assert output == {
        "outcome": "assembled",
        "document_key": f"tenants/{TENANT}/traces/{TRACE_ID}/document.json",
        "qa_report_key": f"tenants/{TENANT}/traces/{TRACE_ID}/qa/report.json",
        "judge_result_key": f"tenants/{TENANT}/traces/{TRACE_ID}/judge/result.json",
        "has_snapshots": True,
        "manifest_draft_key": f"tenants/{TENANT}/traces/{TRACE_ID}/manifest/assembled.json",
        # The refs PrepareQa signs URLs for (prtrace.qa.grant), as the document has them.
        "snapshots": expected.snapshots.model_dump(mode="json"),
        "summary": {
            "event_count": 21,
            "chunk_count": 3,
            "chain": {"key_id": "k1", "head": head, "length": 21},
            "metrics": metrics,
            "state_check": result.state_check.model_dump(
                mode="json", exclude={"mismatches", "unverified"}
            ),
        },
    }
    assert metrics["event_count"] == 21
    assert metrics["commands"] == 4
    assert len(orjson.dumps(output)) < 4 * 1024  # state data, not content


def test_storage_keys_are_the_pipeline_contract():
    assert document_key("t", "tr_1") == "tenants/t/traces/tr_1/document.json"
    assert qa_report_key("t", "tr_1") == "tenants/t/traces/tr_1/qa/report.json"
    assert judge_result_key("t", "tr_1") == "tenants/t/traces/tr_1/judge/result.json"


def test_a_trace_without_snapshots_skips_qa(traces, blobs):
    trace = stored(traces, blobs, snapshots=None)
    result = assembled(trace)
    assert result.as_output()["has_snapshots"] is False
    assert result.as_output()["snapshots"] is None
    assert TraceDocument.model_validate_json(stored_document(trace)).snapshots is None


def test_document_is_deterministic_and_a_retry_finds_it_stored(traces, blobs, tmp_path):
    trace = stored(traces, blobs)
    first = assembled(trace)
    body = stored_document(trace)
    again = assembled(trace)
    assert not again.written  # the conditional create found it: success, nothing rewritten
    assert again.as_output() == first.as_output()
    assert stored_document(trace) == body

    elsewhere = stored(MemoryTraceStore(), DirectoryArtifactStore(tmp_path / "other"))
    assert assembled(elsewhere).document_sha256 == first.document_sha256
    assert stored_document(elsewhere) == body


def test_a_different_document_already_stored_is_never_overwritten(traces, blobs):
    stored(traces, blobs)
    key = document_key(TENANT, TRACE_ID)
    squatter = b'{"not": "this trace"}'
    blobs.put_if_absent(key, squatter, sha256_hex(squatter), "application/json")
    with pytest.raises(DocumentConflict, match="different document"):
        service(traces, blobs).assemble(TENANT, TRACE_ID)
    assert blobs.get(key) == squatter


def test_each_distinct_artifact_is_read_once(traces, blobs):
    log = b"the same output, referenced by every command\n"
    raw = session(0, 30)
    for one in raw:
        if one["type"] == "cmd_run":
            one["payload"]["stdout_ref"] = blob_ref(log)
    trace = store_trace(traces, blobs, chunked(raw, 10), artifacts=[log])
    opened: list[str] = []
    original = blobs.open_read

    def counting(key: str) -> Any:
        opened.append(key)
        return original(key)

    blobs.open_read = counting  # type: ignore[method-assign]
    assembled(trace)
    assert opened.count(artifact_key(TENANT, TRACE_ID, hashlib.sha256(log).hexdigest())) == 1


def test_assembles_what_ingestion_stored(tmp_path):
    traces, blobs = MemoryTraceStore(), IngestBlobs(tmp_path / "bucket")
    rotated = KeyRing(current_id="k2", keys={"k1": KEY_RING.current, "k2": b"2" * 32})
    ingest = IngestService(traces, blobs, lambda: KEY_RING)
    trace = ingest.create_trace(TENANT, TraceMetadata.model_validate(trace_metadata()))
    raw = session(0, 12)
    for content in artifacts_of([raw]):
        sha = hashlib.sha256(content).hexdigest()
        ingest.artifact_ref(TENANT, trace.trace_id, ArtifactRequest(sha256=sha, size=len(content)))
        blobs.put_if_absent(artifact_key(TENANT, trace.trace_id, sha), content, sha, "text/plain")
    for seq, events in enumerate(chunked(raw, 5)):
        ingest.put_chunk(TENANT, trace.trace_id, seq, orjson.dumps({"events": events}))
    ingest.finalize(TENANT, trace.trace_id, expected_chunks=3)

    # Chunks signed with k1 still verify after rotation; the chain uses the current key.
    outcome = AssembleService(traces, blobs, lambda: rotated).assemble(TENANT, trace.trace_id)
    assert isinstance(outcome, Assembled), outcome
    expected_head = compute_chain(b"2" * 32, trace.trace_id, [canonical_event(e) for e in raw])
    assert outcome.chain == ChainSummary(key_id="k2", head=expected_head[-1], length=12)


# ---- rejections -----------------------------------------------------------------------


def test_edited_chunk_body_is_rejected_naming_the_chunk(traces, blobs):
    trace = stored(traces, blobs)
    path = trace.body_path(1)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"module_", b"modulX_", 1))
    reason = rejection(trace)
    assert reason["code"] == "chunk_body_mismatch"
    assert reason["chunk_seq"] == 1
    assert "changed after upload" in reason["detail"]


def test_forged_mac_is_rejected(traces, blobs):
    trace = stored(traces, blobs)
    record = trace.chunk(2)
    forged = chunk_mac(
        b"x" * 32, tenant=TENANT, trace_id=TRACE_ID, chunk_seq=2, chunk_sha256=record.sha256
    )
    trace.set_chunk(replace(record, mac=forged))
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_mac_invalid", 2)


def test_body_and_record_edited_together_fail_the_mac(traces, blobs):
    trace = stored(traces, blobs)
    path = trace.body_path(0)
    edited = path.read_bytes().replace(b"module_", b"modulX_", 1)
    path.write_bytes(edited)
    trace.set_chunk(replace(trace.chunk(0), sha256=sha256_hex(edited), size_bytes=len(edited)))
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_mac_invalid", 0)


def test_a_chunk_moved_to_another_seq_fails_the_mac(traces, blobs):
    trace = stored(traces, blobs, chunked(session(0, 6), 3))
    first, second = trace.chunk(0), trace.chunk(1)
    trace.set_chunk(replace(second, chunk_seq=0))
    trace.set_chunk(replace(first, chunk_seq=1))
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_mac_invalid", 0)


def test_a_chunk_signed_with_an_unknown_key_is_rejected(traces, blobs):
    trace = stored(traces, blobs)
    trace.set_chunk(replace(trace.chunk(1), key_id="k9"))
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_key_unknown", 1)
    assert "'k9'" in reason["detail"]


@pytest.mark.parametrize("missing", [0, 1, 2])
def test_missing_chunk_is_rejected_naming_it(traces, blobs, missing):
    trace = stored(traces, blobs)
    trace.drop_chunk(missing)
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_missing", missing)


def test_chunk_beyond_expected_chunks_is_rejected(traces, blobs):
    trace = stored(traces, blobs)
    trace.set_finalize(expected_chunks=2)
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_unexpected", 2)


def test_missing_chunk_body_is_rejected(traces, blobs):
    trace = stored(traces, blobs)
    trace.body_path(1).unlink()
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_body_missing", 1)


def test_event_seq_gap_between_chunks_is_rejected(traces, blobs):
    raw = session(0, 10)
    trace = stored(traces, blobs, [raw[:5], raw[6:]])
    reason = rejection(trace)
    assert reason["code"] == "event_seq_gap"
    assert (reason["chunk_seq"], reason["event_seq"], reason["event_id"]) == (1, 6, "ev-0000006")
    assert "the next event seq is 5" in reason["detail"]


def test_event_seq_gap_inside_a_chunk_is_rejected(traces, blobs):
    raw = session(0, 10)
    trace = stored(traces, blobs, [raw[:5], raw[5:7] + raw[8:]])
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"], reason["event_seq"]) == ("event_seq_gap", 1, 8)
    assert "the next event seq is 7" in reason["detail"]


def test_duplicate_event_id_is_rejected(traces, blobs):
    raw = session(0, 10)
    raw[7]["event_id"] = raw[2]["event_id"]
    trace = stored(traces, blobs, chunked(raw, 5))
    reason = rejection(trace)
    assert reason["code"] == "duplicate_event_id"
    assert (reason["chunk_seq"], reason["event_seq"], reason["event_id"]) == (1, 7, "ev-0000002")


def test_timestamp_regression_beyond_the_tolerance_is_rejected(traces, blobs):
    raw = session(0, 10, step_ms=1_000)
    raw[6]["ts"] = at_ms(5_000 - TIMESTAMP_TOLERANCE_MS - 1)  # event 5 was at 5,000 ms
    trace = stored(traces, blobs, chunked(raw, 5))
    reason = rejection(trace)
    assert reason["code"] == "timestamp_regression"
    assert (reason["chunk_seq"], reason["event_seq"]) == (1, 6)
    assert "2001 ms before event seq 5" in reason["detail"]


def test_timestamp_regression_within_the_tolerance_is_accepted(traces, blobs):
    raw = session(0, 10, step_ms=1_000)
    raw[6]["ts"] = at_ms(5_000 - TIMESTAMP_TOLERANCE_MS)
    raw[7]["ts"] = at_ms(5_000 - TIMESTAMP_TOLERANCE_MS + 500)  # still behind event 5
    assembled(stored(traces, blobs, chunked(raw, 5)))


def test_a_slow_drift_backwards_is_caught_against_the_latest_timestamp(traces, blobs):
    raw = session(0, 10, step_ms=1_000)
    for offset, seq in enumerate(range(6, 10), start=1):
        raw[seq]["ts"] = at_ms(5_000 - 900 * offset)  # each step back is small
    reason = rejection(stored(traces, blobs, chunked(raw, 5)))
    assert (reason["code"], reason["event_seq"]) == ("timestamp_regression", 8)


def cmd_event(trace_events: list[dict[str, Any]]) -> dict[str, Any]:
    return next(e for e in trace_events if e["type"] == "cmd_run" and e["seq"] > 7)


def test_missing_artifact_is_rejected_naming_it(traces, blobs):
    raw = session(0, 21)
    trace = stored(traces, blobs, chunked(raw, 7))
    victim = cmd_event(raw)
    content = f"stdout of the command at event {victim['seq']}\n".encode()
    trace.artifact_path(content).unlink()
    reason = rejection(trace)
    assert reason["code"] == "artifact_missing"
    assert reason["artifact_sha256"] == victim["payload"]["stdout_ref"]["sha256"]
    assert (reason["event_seq"], reason["event_id"]) == (victim["seq"], victim["event_id"])
    assert reason["chunk_seq"] == victim["seq"] // 7
    assert "/payload/stdout_ref" in reason["detail"]


@pytest.mark.parametrize(
    ("replacement", "code"),
    [
        (lambda b: b + b"more", "artifact_size_mismatch"),
        (lambda b: b[:-2] + b"!\n", "artifact_digest_mismatch"),  # same size, other bytes
    ],
)
def test_wrong_artifact_is_rejected(traces, blobs, replacement, code):
    raw = session(0, 21)
    trace = stored(traces, blobs, chunked(raw, 7))
    victim = cmd_event(raw)
    path = trace.artifact_path(f"stdout of the command at event {victim['seq']}\n".encode())
    path.write_bytes(replacement(path.read_bytes()))
    reason = rejection(trace)
    assert reason["code"] == code
    assert reason["artifact_sha256"] == victim["payload"]["stdout_ref"]["sha256"]
    assert reason["event_seq"] == victim["seq"]


def test_a_second_reference_with_another_size_is_rejected(traces, blobs):
    log = b"shared output\n"
    raw = session(0, 10)
    commands = [e for e in raw if e["type"] == "cmd_run"]
    for one in commands:
        one["payload"]["stdout_ref"] = blob_ref(log)
    commands[1]["payload"]["stdout_ref"]["size"] = len(log) + 1
    trace = store_trace(traces, blobs, chunked(raw, 5), artifacts=[log])
    reason = rejection(trace)
    assert (reason["code"], reason["event_seq"]) == ("artifact_size_mismatch", commands[1]["seq"])


@pytest.mark.parametrize("name", ["base", "final"])
def test_missing_snapshot_is_rejected(traces, blobs, name):
    trace = stored(traces, blobs)
    trace.artifact_path(BASE if name == "base" else FINAL).unlink()
    reason = rejection(trace)
    assert reason["code"] == "artifact_missing"
    assert reason["artifact_sha256"] == SNAPSHOTS[name]["sha256"]
    assert reason["event_seq"] is None
    assert reason["chunk_seq"] is None
    assert f"snapshots/{name}" in reason["detail"]


def test_manifest_mismatch_is_rejected(traces, blobs):
    trace = stored(traces, blobs)
    trace.set_finalize(manifest_sha256="0" * 64)
    assert rejection(trace)["code"] == "manifest_mismatch"


def test_event_count_mismatch_is_rejected(traces, blobs):
    trace = stored(traces, blobs)
    trace.set_finalize(event_count=20)
    assert rejection(trace)["code"] == "event_count_mismatch"


def test_record_range_that_disagrees_with_the_body_is_rejected(traces, blobs):
    trace = stored(traces, blobs)
    trace.set_chunk(replace(trace.chunk(1), last_event_seq=14))
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_range_mismatch", 1)


def _sign_body(trace: StoredTrace, seq: int, body: bytes) -> None:
    """Store a body with a valid MAC, as if a buggy writer had stored it."""
    digest = sha256_hex(body)
    path = trace.body_path(seq)
    path.write_bytes(body)
    mac = chunk_mac(
        KEY_RING.current, tenant=TENANT, trace_id=TRACE_ID, chunk_seq=seq, chunk_sha256=digest
    )
    trace.set_chunk(replace(trace.chunk(seq), sha256=digest, mac=mac, size_bytes=len(body)))
    digests = [trace.chunk(s).sha256 for s in range(trace.record().chunk_count)]
    trace.set_finalize(manifest_sha256=sha256_hex("\n".join(digests).encode()))


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b'{"events":[{"seq":0}]}', "trace schema"),
        (None, "canonical form"),
    ],
)
def test_a_validly_signed_but_bad_body_is_rejected(traces, blobs, body, says):
    raw = session(0, 6)
    trace = stored(traces, blobs, chunked(raw, 3))
    if body is None:  # the right events, pretty-printed
        body = orjson.dumps({"events": raw[3:]}, option=orjson.OPT_INDENT_2)
    _sign_body(trace, 1, body)
    reason = rejection(trace)
    assert (reason["code"], reason["chunk_seq"]) == ("chunk_body_invalid", 1)
    assert says in reason["detail"]


def test_unknown_and_unfinalized_traces_are_rejected(traces, blobs):
    assert rejection(StoredTrace(traces, blobs, TENANT, TRACE_ID))["code"] == "trace_not_found"
    trace = stored(traces, blobs)
    traces.traces[(TENANT, TRACE_ID)] = replace(trace.record(), status="open", finalize=None)
    assert rejection(trace)["code"] == "trace_not_finalized"
    other_tenant = StoredTrace(traces, blobs, "globex", TRACE_ID)
    assert rejection(other_tenant)["code"] == "trace_not_found"


def test_rejection_detail_is_bounded():
    from prtrace.assemble.rejection import MAX_DETAIL_CHARS, Rejection

    long = Rejection("chunk_body_invalid", "x" * 5_000, chunk_seq=3).as_dict()
    assert len(long["detail"]) == MAX_DETAIL_CHARS


# ---- failures that are not the trace's fault ----------------------------------------------


class StoreDown(Exception):
    pass


def test_store_errors_propagate_for_the_state_machine_to_retry(traces, blobs):
    trace = stored(traces, blobs)

    def unreachable(key: str) -> Any:
        raise StoreDown(key)

    blobs.open_read = unreachable  # type: ignore[method-assign]
    with pytest.raises(StoreDown):
        service(traces, blobs).assemble(TENANT, TRACE_ID)
    blobs.open_read = DirectoryArtifactStore.open_read.__get__(blobs)  # type: ignore[method-assign]
    assert isinstance(service(trace.traces, blobs).assemble(TENANT, TRACE_ID), Assembled)


def test_settings_name_the_missing_variables(monkeypatch):
    from prtrace.assemble.settings import AssembleSettings
    from prtrace.settings import ConfigurationError

    monkeypatch.delenv("PRTRACE_TRACES_TABLE", raising=False)
    monkeypatch.setenv("PRTRACE_BUCKET", "prtrace-data")
    monkeypatch.setenv("PRTRACE_KEY_SECRET_NAME", "prtrace/integrity-key")
    with pytest.raises(ConfigurationError, match="PRTRACE_TRACES_TABLE"):
        AssembleSettings.from_env()
    monkeypatch.setenv("PRTRACE_TRACES_TABLE", "prtrace-traces")
    settings = AssembleSettings.from_env()
    assert (settings.bucket, settings.key_secret_name) == ("prtrace-data", "prtrace/integrity-key")
    assert settings.spool_dir is None


# ---- the trace-to-state check ---------------------------------------------------------


def _edit_session(with_readme_edit: bool) -> tuple[list[dict[str, Any]], bytes, bytes]:
    """Two edits (one diff inline, one as an artifact) between real tar.gz snapshots."""
    from prtrace_client.recorder.edits import file_edit
    from tests.unit.test_state_check import tar_gz

    merge_before, merge_after = (
        b"def merge(a):\n    return a[:-1]\n",
        b"def merge(a):\n    return a\n",
    )
    readme_before = b"".join(b"line %d\n" % i for i in range(4000))
    readme_after = readme_before.replace(b"line 7\n", b"line seven\n")
    base = tar_gz({"merge.py": merge_before, "README": readme_before})
    final = tar_gz({"merge.py": merge_after, "README": readme_after})
    events = [
        event(0, "file_edit")
        | {"payload": {"path": "merge.py", "change": "modify", "lines_added": 1,
                       "lines_removed": 1,
                       "diff": file_edit("merge.py", "modify", merge_before, merge_after).diff}},
    ]  # fmt: skip
    if with_readme_edit:
        diff = file_edit("README", "modify", readme_before, readme_after).diff.encode()
        events.append(
            event(1, "file_edit")
            | {"payload": {"path": "README", "change": "modify", "lines_added": 1,
                           "lines_removed": 1, "diff_ref": blob_ref(diff, "text/x-diff")}}
        )  # fmt: skip
    return events, base, final


@pytest.mark.parametrize("complete", [True, False])
def test_assemble_checks_the_edits_reproduce_the_final_snapshot(traces, blobs, complete):
    events, base, final = _edit_session(with_readme_edit=complete)
    snapshots = {
        "base": blob_ref(base, "application/gzip"),
        "final": blob_ref(final, "application/gzip"),
    }
    artifacts = [base, final]
    if complete:
        from prtrace_client.recorder.edits import file_edit  # the diff artifact's bytes

        readme = b"".join(b"line %d\n" % i for i in range(4000))
        artifacts.append(
            file_edit(
                "README", "modify", readme, readme.replace(b"line 7\n", b"line seven\n")
            ).diff.encode()
        )
    trace = store_trace(traces, blobs, [events], artifacts=artifacts, snapshots=snapshots)
    result = assembled(trace)  # a mismatch never rejects the trace

    state = result.as_output()["summary"]["state_check"]
    document = TraceDocument.model_validate_json(stored_document(trace))
    assert document.state_check == result.state_check
    if complete:
        assert state["status"] == "match"
        assert state["edits_applied"] == 2
    else:
        assert state["status"] == "state_mismatch"
        assert state["first_mismatch"]["path"] == "README"
        assert state["first_mismatch"]["reason"] == "changed_without_edit"
        assert state["first_mismatch"]["unexplained_bytes"] == len(b"line 7\nline seven\n")


def test_diffs_beyond_what_the_check_holds_leave_the_state_not_checked(traces, blobs, monkeypatch):
    from prtrace.assemble import service as assemble_service

    monkeypatch.setattr(assemble_service, "MAX_STATE_CHECK_DIFF_BYTES", 10)
    events, base, final = _edit_session(with_readme_edit=False)
    snapshots = {
        "base": blob_ref(base, "application/gzip"),
        "final": blob_ref(final, "application/gzip"),
    }
    trace = store_trace(traces, blobs, [events], artifacts=[base, final], snapshots=snapshots)
    state = assembled(trace).state_check
    assert state is not None
    assert state.status == "not_checked"
    assert "more than the 10 the check holds" in str(state.detail)
