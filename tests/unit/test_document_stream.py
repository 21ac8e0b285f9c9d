"""A large trace streams through an export (prtrace.dataset.document_stream): its header is
what the whole document holds but the events, its events are the whole document's, read
one at a time, and every file of the export, the trajectory line spooled a step at a time
and the Parquet tables written from Arrow batches, is the same bytes as from the whole
document."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from prtrace.assemble.document import TraceDocument
from prtrace.dataset import files as export_files
from prtrace.dataset.collect import UnreadableTrace, collect
from prtrace.dataset.document_stream import (
    STREAM_ABOVE_BYTES,
    StreamedDocument,
    TraceHeader,
    document_events,
    load_document,
)
from prtrace.dataset.files import write_export
from prtrace.dataset.rows import ExportFilter, TraceBundle, event_rows, parse_ts
from prtrace.dataset.trajectory import ObservationCaps, TrajectoryLine, trajectory
from prtrace.judge.result import JudgeResult
from tests.judge_factories import document, huge_events, qa_report, sample_document
from tests.pipeline_factories import judge_result
from tests.unit.test_trajectory import STORED, TRACE, scores, session_events


def documents() -> list[TraceDocument]:
    return [
        sample_document(),
        document(session_events(), trace_id=TRACE),
        document(huge_events(300), trace_id="tr_huge"),
        document([], trace_id="tr_empty"),
    ]


def as_json(doc: TraceDocument, exclude_none: bool) -> bytes:
    return doc.model_dump_json(exclude_none=exclude_none).encode()


@pytest.mark.parametrize("exclude_none", [False, True])
def test_a_streamed_document_holds_what_the_whole_one_does(exclude_none):
    for whole in documents():
        streamed = StreamedDocument(as_json(whole, exclude_none))
        assert streamed.header.model_dump() == whole.model_dump(exclude={"events"})
        assert streamed.event_count == len(whole.events)
        assert list(streamed.events()) == whole.events
        assert list(streamed.events()) == whole.events  # each pass reads them again


def test_the_header_is_the_document_but_its_events():
    fields = {name: str(f.annotation) for name, f in TraceDocument.model_fields.items()}
    del fields["events"]
    assert {name: str(f.annotation) for name, f in TraceHeader.model_fields.items()} == fields


def test_only_large_documents_stream():
    data = as_json(sample_document(), exclude_none=True)
    assert isinstance(load_document(data), TraceDocument)
    assert isinstance(load_document(data, stream_above=len(data) - 1), StreamedDocument)


def test_a_streamed_document_refuses_what_the_whole_one_would():
    good = orjson.loads(as_json(sample_document(), exclude_none=True))
    with pytest.raises(ValueError, match="has events"):
        StreamedDocument(orjson.dumps({k: v for k, v in good.items() if k != "events"}))
    with pytest.raises(ValueError, match="are a list"):
        StreamedDocument(orjson.dumps(good | {"events": {"seq": 0}}))
    with pytest.raises(ValueError, match="JSON object"):
        StreamedDocument(b"[]")
    with pytest.raises(ValidationError):
        StreamedDocument(orjson.dumps(good | {"unknown": 1}))
    broken = good | {"events": [good["events"][0] | {"seq": -1}]}
    with pytest.raises(ValidationError):
        list(StreamedDocument(orjson.dumps(broken)).events())


def bundle(doc: TraceDocument, streamed: bool, **fields: Any) -> TraceBundle:
    loaded = StreamedDocument(as_json(doc, exclude_none=True)) if streamed else doc
    values: dict[str, Any] = {
        "view": {
            "trace_id": doc.trace_id,
            "status": "complete",
            "created_at": "2026-11-25T09:00:00Z",
        },
        "document": loaded,
        "qa_report": qa_report("resolved", trace_id=doc.trace_id),
        "judge_result": judge_result(doc.trace_id, scores=scores(["evt-0001", "evt-0003", "nope"])),
    }
    return TraceBundle(**(values | fields))


def stand_in_judge(trace_id: str) -> JudgeResult:
    return JudgeResult.model_validate(
        {
            "trace_id": trace_id,
            "judge": "openai:gpt-x",
            "rubric_version": "v2",
            "status": "judge_unavailable",
            "overall": None,
            "scores": [],
            "qa_verdict": "resolved",
            "stand_in": {"judge": "offline", "overall": 3.0, "scores": scores(["evt-0004"])},
        }
    )


@pytest.mark.parametrize("caps", [ObservationCaps(), ObservationCaps(inline_bytes=100)])
def test_a_trajectory_line_is_the_records_line_a_step_at_a_time(caps):
    cases = [bundle(doc, streamed=True) for doc in documents()]
    cases.append(bundle(documents()[1], streamed=True, judge_result=stand_in_judge(TRACE)))
    cases.append(bundle(documents()[1], streamed=False, judge_result=None, qa_report=None))
    for case in cases:
        expected = trajectory(case, STORED.get, caps)
        for spool in (None, tempfile.TemporaryFile):  # in memory, and on disk
            line = TrajectoryLine(case, STORED.get, caps, **({"spool": spool} if spool else {}))
            for event in case.events():
                line.add(event)
            assert b"".join(line.pieces()) + b"\n" == expected.line()
            assert line.artifacts() == expected.artifacts
            line.close()


def test_event_rows_are_the_same_streamed():
    doc = documents()[2]
    streamed = StreamedDocument(as_json(doc, exclude_none=False))
    assert list(event_rows(streamed)) == list(event_rows(doc))
    assert list(document_events(streamed)) == list(document_events(doc))


def hashes(out: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in out.iterdir()}


def test_an_export_is_the_same_bytes_streamed_or_whole(tmp_path, monkeypatch):
    # Small row groups and batches that do not divide them: several groups, each filled
    # from several batches and a remainder.
    monkeypatch.setattr(export_files, "ROW_GROUP_ROWS", 700)
    monkeypatch.setattr(export_files, "BATCH_ROWS", 300)
    written = {}
    for streamed in (False, True):
        bundles = [bundle(doc, streamed) for doc in documents()]
        out = tmp_path / f"streamed-{streamed}"
        manifest = write_export(
            bundles,
            out,
            chosen=ExportFilter(include_unusable=True),
            read_artifact=lambda _trace, sha: STORED.get(sha),
        )
        assert manifest["event_count"] == sum(len(doc.events) for doc in documents())
        written[streamed] = hashes(out)
    assert written[True] == written[False]


def test_parquet_from_batches_is_the_file_one_conversion_per_group_gives(tmp_path, monkeypatch):
    monkeypatch.setattr(export_files, "ROW_GROUP_ROWS", 700)
    monkeypatch.setattr(export_files, "BATCH_ROWS", 300)
    schema = export_files.events_schema()
    rows = [row | {"time": parse_ts(row["ts"])} for row in event_rows(documents()[2])] * 7
    batched = export_files._ParquetRows(tmp_path / "batched.parquet", schema)
    for row in rows:
        batched.write(row)
    batched.close()
    options = {k: v for k, v in export_files.PARQUET_OPTIONS.items() if k != "row_group_size"}
    with pq.ParquetWriter(str(tmp_path / "whole.parquet"), schema, **options) as writer:
        for start in range(0, len(rows), 700):
            table = pa.Table.from_pylist(rows[start : start + 700], schema=schema)
            writer.write_table(table, row_group_size=700)
    assert (tmp_path / "batched.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "batched.parquet").metadata.num_row_groups == 3


def test_a_selection_streams_a_large_document_and_exports_it_as_the_whole_one(tmp_path):
    whole = document(huge_events(5_000), trace_id="tr_big")
    data = as_json(whole, exclude_none=True)
    assert len(data) > STREAM_ABOVE_BYTES

    class Source:
        def iter_views(self):
            yield {"trace_id": "tr_big", "status": "complete", "created_at": "2026-11-25T09:00:00Z"}

        def result(self, trace_id, kind):
            return data if kind == "document" else None

        def artifact(self, trace_id, sha256):
            raise UnreadableTrace("not stored")

    chosen = ExportFilter(include_unusable=True)
    selection = collect(Source(), chosen)
    bundles = list(selection)
    assert isinstance(bundles[0].document, StreamedDocument)
    streamed = write_export(bundles, tmp_path / "streamed", chosen=chosen)
    view = bundles[0].view
    write_export([TraceBundle(view, whole, None, None)], tmp_path / "whole", chosen=chosen)
    assert streamed["event_count"] == 5_000
    assert hashes(tmp_path / "streamed") == hashes(tmp_path / "whole")
