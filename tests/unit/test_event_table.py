"""The events table Record writes: the export's typed event rows (its events.parquet's
columns, in its order), lists as JSON text, `time` a UTC timestamp; written once from the
stored document, and not at all without one or for one too large to parse in Record."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from prtrace.dataset import event_table
from prtrace.dataset.event_table import COLUMNS, events_parquet, write_events
from prtrace.dataset.files import events_schema
from prtrace.dataset.rows import event_rows, parse_ts
from prtrace.storage_keys import document_key
from tests.judge_factories import sample_document


class Objects:
    def __init__(self, stored: dict[str, bytes] | None = None) -> None:
        self.stored = dict(stored or {})
        self.puts: list[str] = []

    def get(self, key: str) -> bytes | None:
        return self.stored.get(key)

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool:
        self.puts.append(key)
        if key in self.stored:
            return False
        self.stored[key] = body
        return True


def test_the_columns_are_the_exports_events_parquet_columns():
    exported = events_schema()
    assert [c.name for c in COLUMNS] == exported.names
    for column in COLUMNS:
        kind = exported.field(column.name).type
        if pa.types.is_integer(kind):
            assert column.type == "int64", column.name
        elif pa.types.is_timestamp(kind):
            assert (column.type, kind.tz) == ("timestamp", "UTC")
        else:  # strings, and lists as JSON array text
            assert column.type == "string", column.name
            assert pa.types.is_string(kind) or pa.types.is_list(kind), column.name


def test_the_rows_read_back_as_the_exports_event_rows():
    document = sample_document()
    table = pq.read_table(io.BytesIO(events_parquet(document)))
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    read = table.to_pylist()
    expected = list(event_rows(document))
    assert len(read) == len(expected) == 11
    for got, want in zip(read, expected, strict=True):
        lists = {k: orjson.loads(got[k]) if got[k] is not None else None
                 for k in ("command", "failing_tests", "commit_files")}  # fmt: skip
        assert got | lists == want | {"time": parse_ts(want["ts"])}


def stored_document(tenant: str, trace_id: str) -> dict[str, Any]:
    return {document_key(tenant, trace_id): sample_document().model_dump_json().encode()}


def test_written_once_under_the_tenant_and_date():
    objects = Objects(stored_document("acme", "tr_sample"))
    key = write_events(objects, "acme", "tr_sample", "2026-11-25")
    assert key == "tenants/acme/parquet/events/date=2026-11-25/tr_sample.parquet"
    first = objects.stored[key]
    assert write_events(objects, "acme", "tr_sample", "2026-11-25") == key  # a retry
    assert objects.stored[key] == first
    assert pq.read_table(io.BytesIO(first)).num_rows == 11


def test_no_file_without_a_document_or_for_one_too_large_or_unreadable(monkeypatch):
    objects = Objects()
    assert write_events(objects, "acme", "tr_sample", "2026-11-25") is None
    objects.stored[document_key("acme", "tr_sample")] = b'{"trace_id": "tr_sample", "events": []}'
    assert write_events(objects, "acme", "tr_sample", "2026-11-25") is None
    stored = Objects(stored_document("acme", "tr_sample"))
    monkeypatch.setattr(event_table, "MAX_DOCUMENT_BYTES", 100)
    assert write_events(stored, "acme", "tr_sample", "2026-11-25") is None
    assert objects.puts == stored.puts == []
