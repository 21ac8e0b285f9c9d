"""The pure-Python Parquet writer: what it writes reads back identically in pyarrow and
DuckDB (nulls, Unicode, extremes, many rows, UTC timestamps), deterministically; bad values
are refused naming the row and the column."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta, timezone

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prtrace.dataset.parquet_lite import Column, ParquetValueError, write_table

COLUMNS = (
    Column("s", "string"),
    Column("i", "int64"),
    Column("d", "double"),
    Column("b", "boolean"),
)
ROW = st.fixed_dictionaries(
    {
        "s": st.none() | st.text(max_size=40),
        "i": st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
        "d": st.none() | st.floats(allow_nan=False),
        "b": st.none() | st.booleans(),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ROW, max_size=40))
def test_pyarrow_reads_back_what_was_written(rows):
    table = pq.read_table(io.BytesIO(write_table(COLUMNS, rows)))
    assert [str(f.type) for f in table.schema] == ["string", "int64", "double", "bool"]
    assert table.to_pylist() == rows


def test_duckdb_reads_it_too(tmp_path):
    rows = [{"s": f"ü{n}", "i": n, "d": n / 2, "b": n % 2 == 0} for n in range(1000)]
    rows[7] = {"s": None, "i": None, "d": None, "b": None}
    path = tmp_path / "t.parquet"
    path.write_bytes(write_table(COLUMNS, rows))
    ((count, nulls, total),) = duckdb.execute(
        "select count(*), count(*) - count(s), sum(i) from read_parquet(?)", [str(path)]
    ).fetchall()
    assert (count, nulls, total) == (1000, 1, sum(range(1000)) - 7)
    found = duckdb.execute("select s from read_parquet(?) where i = 999", [str(path)])
    assert found.fetchall() == [("ü999",)]


def test_the_same_rows_give_the_same_bytes():
    rows = [{"s": "x", "i": 1, "d": math.pi, "b": True}]
    assert write_table(COLUMNS, rows) == write_table(COLUMNS, rows)


def test_an_empty_table_is_valid():
    assert pq.read_table(io.BytesIO(write_table(COLUMNS, []))).num_rows == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"i": "1"}, "row 0, column 'i': str is not int64"),
        ({"i": True}, "row 0, column 'i': bool is not int64"),
        ({"i": 2**63}, "overflows int64"),
        ({"s": 3}, "column 's': int is not string"),
        ({"zz": 1}, "unknown columns ['zz']"),
        ({"t": "2026-01-01T00:00:00Z"}, "column 't': str is not timestamp"),
        ({"t": datetime(2026, 1, 1)}, "column 't': a naive datetime"),
    ],
)
def test_values_that_do_not_fit_are_refused(row, message):
    with pytest.raises(ParquetValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        write_table((*COLUMNS, Column("t", "timestamp")), [row])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.none()
        | st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))]),
        ),
        max_size=20,
    )
)
def test_timestamps_read_back_as_the_same_utc_instants(times):
    columns = (Column("t", "timestamp"),)
    table = pq.read_table(io.BytesIO(write_table(columns, [{"t": t} for t in times])))
    assert str(table.schema.field("t").type) == "timestamp[us, tz=UTC]"
    assert table.column("t").to_pylist() == times  # aware datetimes compare as instants


def test_duckdb_reads_timestamps_as_timestamptz(tmp_path):
    path = tmp_path / "t.parquet"
    at = datetime(2026, 11, 25, 9, 0, 0, 123456, tzinfo=UTC)
    path.write_bytes(write_table((Column("t", "timestamp"),), [{"t": at}, {"t": None}]))
    found = duckdb.execute("select typeof(t), epoch_us(t) from read_parquet(?)", [str(path)])
    assert found.fetchall() == [
        ("TIMESTAMP WITH TIME ZONE", int(at.timestamp()) * 10**6 + 123456),
        ("TIMESTAMP WITH TIME ZONE", None),
    ]
