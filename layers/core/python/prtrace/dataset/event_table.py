"""The events table: one Parquet file per complete trace, a row per event, written by the
Record step beside the traces table (prtrace.dataset.trace_table), under the same partitions:

    tenants/{tenant}/parquet/events/date=YYYY-MM-DD/{trace_id}.parquet

The rows are the export's typed event rows (prtrace.dataset.rows.event_rows, as in its
`events.parquet`) with their `time`, a UTC timestamp; as in the traces table, lists
(`command`, `failing_tests`, `commit_files`) are JSON array text. Record parses the
assembled document for them, so a document over MAX_DOCUMENT_BYTES (tens of thousands of
events), or one that does not parse as a TraceDocument, is left to exports: no file, and
the trace's row says how many events it has (`event_count`). The Record step does not fail
for it: the trace is recorded, and this table is a copy of what its document holds.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import orjson
from pydantic import ValidationError

from prtrace.assemble.document import TraceDocument
from prtrace.dataset.parquet_lite import Column, ColumnType, write_table
from prtrace.dataset.rows import EVENT_COLUMN_TYPES, EVENT_COLUMNS, event_rows, parse_ts
from prtrace.integrity import sha256_hex
from prtrace.media_types import PARQUET
from prtrace.storage_keys import document_key

# ~25,000 events; parsed, ~10 times as much memory, within the Record function's.
MAX_DOCUMENT_BYTES: Final = 8 << 20
_INTEGERS: Final = frozenset(n for n, t in EVENT_COLUMN_TYPES.items() if t == "int64")
_LISTS: Final = frozenset(  # JSON array text
    n for n, t in EVENT_COLUMN_TYPES.items() if isinstance(t, list)
)


def _type(name: str) -> ColumnType:
    return "int64" if name in _INTEGERS else "string"


def _names() -> tuple[str, ...]:
    """The export's columns, `time` after `ts` as in its events.parquet."""
    at = EVENT_COLUMNS.index("ts") + 1
    return (*EVENT_COLUMNS[:at], "time", *EVENT_COLUMNS[at:])


COLUMNS: Final[tuple[Column, ...]] = tuple(
    Column(name, "timestamp" if name == "time" else _type(name)) for name in _names()
)


class ObjectStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool: ...


def table_prefix(tenant: str) -> str:
    return f"tenants/{tenant}/parquet/events"


def table_row(event: dict[str, Any]) -> dict[str, Any]:
    """An export event row as this table holds it."""
    row = dict(event)
    row["time"] = parse_ts(str(event["ts"]))
    for name in _LISTS:
        if row[name] is not None:
            row[name] = orjson.dumps(row[name]).decode()
    return row


def events_parquet(document: TraceDocument) -> bytes:
    return write_table(COLUMNS, [table_row(event) for event in event_rows(document)])


def write_events(objects: ObjectStore, tenant: str, trace_id: str, date: str) -> str | None:
    """Write the trace's events file (once) from its assembled document; its key, or None
    when the document is not stored, too large to parse here, or not a TraceDocument."""
    key = f"{table_prefix(tenant)}/date={date}/{trace_id}.parquet"
    body = objects.get(document_key(tenant, trace_id))
    if body is None or len(body) > MAX_DOCUMENT_BYTES:
        return None
    try:
        document = TraceDocument.model_validate_json(body)
    except ValidationError:
        return None
    table = events_parquet(document)
    objects.put_if_absent(key, table, sha256_hex(table), PARQUET)
    return key
