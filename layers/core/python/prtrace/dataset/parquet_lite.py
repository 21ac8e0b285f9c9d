"""A small Parquet writer for flat tables, in pure Python, for the Record step's traces
table: pyarrow (~130 MB installed) would more than double the shared Lambda dependency
layer that every function loads, for one row per trace.

What it writes is plain Parquet that pyarrow, DuckDB, Athena and Spark read: one row group,
one v1 data page per column, PLAIN encoding, no compression, every column OPTIONAL (null
allowed; definition levels RLE-encoded), types string (BYTE_ARRAY, UTF8), int64, double,
boolean and timestamp (INT64 microseconds, TIMESTAMP(isAdjustedToUTC, MICROS): an aware
datetime in, a UTC instant out). The metadata is Thrift compact protocol, written by the
few lines below. Output is deterministic: the same rows give the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

ColumnType = Literal["string", "int64", "double", "boolean", "timestamp"]
MAGIC: Final = b"PAR1"
CREATED_BY: Final = "prtrace parquet_lite 1"

# parquet.thrift enums
_PHYSICAL: Final = {"boolean": 0, "int64": 2, "double": 5, "string": 6, "timestamp": 2}
_OPTIONAL: Final = 1
_UTF8: Final = 0
_TIMESTAMP_MICROS: Final = 10  # ConvertedType, for readers that predate LogicalType
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = datetime.resolution  # timedelta(microseconds=1)
_PLAIN, _RLE = 0, 3
_DATA_PAGE: Final = 0
_UNCOMPRESSED: Final = 0

# Thrift compact protocol type ids
_T_TRUE, _T_FALSE, _T_I32, _T_I64, _T_BINARY, _T_LIST, _T_STRUCT = 1, 2, 5, 6, 8, 9, 12


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType


class ParquetValueError(ValueError):
    """A value does not fit its column's type (names the row and the column)."""


# ---- Thrift compact protocol -------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


class _Struct:
    """Fields in increasing id order; `end()` gives the encoded struct."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._last = 0

    def _header(self, field_id: int, kind: int) -> None:
        delta = field_id - self._last
        if 0 < delta <= 15:
            self._out.append((delta << 4) | kind)
        else:
            self._out.append(kind)
            self._out += _varint(_zigzag(field_id))
        self._last = field_id

    def i32(self, field_id: int, value: int) -> _Struct:
        self._header(field_id, _T_I32)
        self._out += _varint(_zigzag(value))
        return self

    def bool(self, field_id: int, value: bool) -> _Struct:
        self._header(field_id, _T_TRUE if value else _T_FALSE)  # the value is the type
        return self

    def i64(self, field_id: int, value: int) -> _Struct:
        self._header(field_id, _T_I64)
        self._out += _varint(_zigzag(value))
        return self

    def binary(self, field_id: int, value: bytes | str) -> _Struct:
        data = value.encode() if isinstance(value, str) else value
        self._header(field_id, _T_BINARY)
        self._out += _varint(len(data)) + data
        return self

    def struct(self, field_id: int, value: bytes) -> _Struct:
        self._header(field_id, _T_STRUCT)
        self._out += value
        return self

    def list(self, field_id: int, kind: int, items: Sequence[bytes]) -> _Struct:
        """`items` already encoded (structs, or zigzag varints for i32)."""
        self._header(field_id, _T_LIST)
        size = len(items)
        self._out += bytes([(size << 4) | kind]) if size < 15 else bytes([0xF0 | kind])
        if size >= 15:
            self._out += _varint(size)
        for item in items:
            self._out += item
        return self

    def end(self) -> bytes:
        return bytes(self._out) + b"\x00"


def _i32_item(value: int) -> bytes:
    return _varint(_zigzag(value))


def _binary_item(value: str) -> bytes:
    data = value.encode()
    return _varint(len(data)) + data


# ---- pages ---------------------------------------------------------------------------------


def _definition_levels(present: Sequence[bool]) -> bytes:
    """RLE runs (bit width 1), with the 4-byte length prefix of a v1 data page."""
    runs = bytearray()
    index = 0
    while index < len(present):
        value = present[index]
        end = index
        while end < len(present) and present[end] == value:
            end += 1
        runs += _varint((end - index) << 1) + bytes([1 if value else 0])
        index = end
    return struct.pack("<i", len(runs)) + bytes(runs)


def _plain(column: Column, values: Sequence[Any]) -> bytes:
    if column.type == "string":
        out = bytearray()
        for value in values:
            data = value.encode()
            out += struct.pack("<i", len(data)) + data
        return bytes(out)
    if column.type in ("int64", "timestamp"):
        return struct.pack(f"<{len(values)}q", *values)
    if column.type == "double":
        return struct.pack(f"<{len(values)}d", *values)
    bits = bytearray((len(values) + 7) // 8)
    for index, value in enumerate(values):
        if value:
            bits[index // 8] |= 1 << (index % 8)
    return bytes(bits)


def _checked(column: Column, row: int, value: Any) -> Any:
    expected: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "int64": (int,),
        "double": (float, int),
        "boolean": (bool,),
        "timestamp": (datetime,),
    }
    ok = isinstance(value, expected[column.type]) and not (
        column.type in ("int64", "double") and isinstance(value, bool)
    )
    if not ok:
        raise ParquetValueError(
            f"row {row}, column {column.name!r}: {type(value).__name__} is not {column.type}"
        )
    if column.type == "int64" and not -(2**63) <= value < 2**63:
        raise ParquetValueError(f"row {row}, column {column.name!r}: {value} overflows int64")
    if column.type == "timestamp":
        if value.tzinfo is None:
            raise ParquetValueError(f"row {row}, column {column.name!r}: a naive datetime")
        return (value - _EPOCH) // _MICROSECOND  # exact: no float rounding
    return float(value) if column.type == "double" else value


def _timestamp_type() -> bytes:
    """LogicalType.TIMESTAMP (field 8): TimestampType{isAdjustedToUTC, unit: MICROS}."""
    micros = _Struct().struct(2, _Struct().end()).end()  # TimeUnit union, MICROS (field 2)
    timestamp = _Struct().bool(1, True).struct(2, micros).end()
    return _Struct().struct(8, timestamp).end()


def write_table(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The rows (each a mapping with every column's name; None is null) as a Parquet file."""
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ParquetValueError("column names must be unique")
    for index, row in enumerate(rows):
        unknown = set(row) - set(names)
        if unknown:
            raise ParquetValueError(f"row {index}: unknown columns {sorted(unknown)}")
    out = bytearray(MAGIC)
    chunks: list[bytes] = []
    total = 0
    for column in columns:
        raw = [row.get(column.name) for row in rows]
        present = [value is not None for value in raw]
        values = [_checked(column, i, v) for i, v in enumerate(raw) if v is not None]
        page = _definition_levels(present) + _plain(column, values)
        data_header = _Struct().i32(1, len(rows)).i32(2, _PLAIN).i32(3, _RLE).i32(4, _RLE).end()
        header = (
            _Struct()
            .i32(1, _DATA_PAGE)
            .i32(2, len(page))
            .i32(3, len(page))
            .struct(5, data_header)
            .end()
        )
        offset = len(out)
        out += header + page
        size = len(header) + len(page)
        total += size
        meta = (
            _Struct()
            .i32(1, _PHYSICAL[column.type])
            .list(2, _T_I32, [_i32_item(_PLAIN), _i32_item(_RLE)])
            .list(3, _T_BINARY, [_binary_item(column.name)])
            .i32(4, _UNCOMPRESSED)
            .i64(5, len(rows))
            .i64(6, size)
            .i64(7, size)
            .i64(9, offset)
            .end()
        )
        chunks.append(_Struct().i64(2, offset).struct(3, meta).end())
    schema = [_Struct().binary(4, "schema").i32(5, len(columns)).end()]
    for column in columns:
        element = _Struct().i32(1, _PHYSICAL[column.type]).i32(3, _OPTIONAL).binary(4, column.name)
        if column.type == "string":
            element.i32(6, _UTF8)
        elif column.type == "timestamp":
            element.i32(6, _TIMESTAMP_MICROS).struct(10, _timestamp_type())
        schema.append(element.end())
    row_group = _Struct().list(1, _T_STRUCT, chunks).i64(2, total).i64(3, len(rows)).end()
    footer = (
        _Struct()
        .i32(1, 1)
        .list(2, _T_STRUCT, schema)
        .i64(3, len(rows))
        .list(4, _T_STRUCT, [row_group])
        .binary(6, CREATED_BY)
        .end()
    )
    out += footer + struct.pack("<i", len(footer)) + MAGIC
    return bytes(out)
