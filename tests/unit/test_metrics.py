"""Trace metrics: every figure checked on a hand-built session, plus streaming equivalence."""

from __future__ import annotations

from pydantic import TypeAdapter

from prtrace.assemble.metrics import (
    IDLE_THRESHOLD_MS,
    MetricsAccumulator,
    compute_metrics,
    timestamp_ms,
)
from prtrace.canonical import check_canonicalizable
from prtrace.schema import Event
from tests.judge_factories import disciplined_events, flailing_events, huge_events, sample_events

_EVENTS = TypeAdapter(list[Event])


def _events(raw):
    return _EVENTS.validate_python(raw)


def test_sample_trace_metrics():
    m = compute_metrics(_events(sample_events()))
    assert m["event_count"] == 11
    assert m["events_by_type"] == {
        "file_edit": 1,
        "cmd_run": 2,
        "test_run": 2,
        "commit": 1,
        "rationale_note": 5,
    }
    # 09:00:05.000 -> 09:05:42.000
    assert m["duration_ms"] == 337_000
    assert m["active_ms"] == 337_000  # no gap over the idle threshold
    assert m["files_touched"] == 1
    assert (m["lines_added"], m["lines_removed"]) == (1, 1)
    assert (m["commands"], m["commands_failed"]) == (2, 1)
    assert (m["test_runs"], m["test_runs_failing"]) == (2, 1)
    assert m["time_to_first_failing_test_ms"] == 36_300  # 09:00:41.300
    assert m["time_to_green_ms"] == 255_800  # 09:04:20.800
    assert m["edit_test_cycles"] == 1
    assert (m["commits"], m["notes"]) == (1, 5)


def test_idle_gaps_are_left_out_of_active_time():
    raw = disciplined_events()
    raw[4]["ts"] = "2026-11-25T10:30:00.000Z"  # the edit comes after a long break
    for later in raw[5:]:
        later["ts"] = later["ts"].replace("T09:", "T10:").replace("T10:0", "T10:3", 1)
    m = compute_metrics(_events(raw))
    assert m["idle_gaps"] == 1
    assert m["duration_ms"] - m["active_ms"] > IDLE_THRESHOLD_MS


def test_clock_stepping_back_never_counts_negative_time():
    raw = disciplined_events()[:3]
    raw[2]["ts"] = "2026-11-25T08:00:00.000Z"
    m = compute_metrics(_events(raw))
    assert m["active_ms"] >= 0
    assert m["duration_ms"] == timestamp_ms(raw[1]["ts"]) - timestamp_ms(raw[2]["ts"])


def test_no_tests_means_no_time_to_green():
    m = compute_metrics(_events(flailing_events()))
    assert m["test_runs"] == 0
    assert m["time_to_first_failing_test_ms"] is None
    assert m["time_to_green_ms"] is None
    assert m["edit_test_cycles"] == 0
    assert m["files_touched"] == 2


def test_empty_trace():
    m = compute_metrics([])
    assert m["event_count"] == 0
    assert m["duration_ms"] == 0


def test_streaming_chunk_by_chunk_equals_one_call_and_is_canonical_json():
    events = _events(huge_events(5_000))
    accumulator = MetricsAccumulator()
    for start in range(0, len(events), 1_000):  # the Assemble step feeds chunks
        for event in events[start : start + 1_000]:
            accumulator.add(event)
    assert accumulator.result() == compute_metrics(events)
    check_canonicalizable(accumulator.result())  # integers only: safe for canonical JSON


def test_timestamp_ms_handles_any_fraction_length():
    assert timestamp_ms("1970-01-01T00:00:01Z") == 1_000
    assert timestamp_ms("1970-01-01T00:00:01.5Z") == 1_500
    assert timestamp_ms("1970-01-01T00:00:01.123456789Z") == 1_123
