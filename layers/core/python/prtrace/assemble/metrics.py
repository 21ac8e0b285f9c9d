"""Trace metrics: what a session cost and how it went, computed from its events alone.

One pass, in seq order, through `MetricsAccumulator.add(event)`; memory is bounded by the
number of distinct file paths touched, never by the number of events, so the Assemble
step can feed it chunk by chunk and the judge can run it over 100,000+ events.
Every value is an integer (milliseconds, counts): metrics stay canonical-JSON safe.

| metric | definition |
| --- | --- |
| `event_count` | events seen |
| `events_by_type` | count per event type (all five types always present) |
| `duration_ms` | latest minus earliest event timestamp |
| `active_ms` | sum of the gaps between consecutive events, leaving out each gap over |
|  | `IDLE_THRESHOLD_MS` (the developer was away) |
| `idle_gaps` | gaps left out of `active_ms` |
| `files_touched` | distinct paths edited (a rename counts both paths) |
| `file_edits`, `lines_added`, `lines_removed` | from `file_edit` events |
| `commands`, `commands_failed` | `cmd_run` events; failed = non-zero exit code |
| `test_runs`, `test_runs_failing` | `test_run` events; failing = any failure or error |
| `time_to_first_failing_test_ms` | first event to the first failing test run, or null |
| `time_to_green_ms` | first event to the first all-passing test run after a failing one, or null |
| `edit_test_cycles` | test runs preceded by at least one edit since the previous test run |
| `commits`, `notes` | `commit` and `rationale_note` events |
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from prtrace.schema import (
    EVENT_TYPES,
    CmdRunEvent,
    CommitEvent,
    Event,
    FileEditEvent,
    RationaleNoteEvent,
    TestRunEvent,
)

METRICS_VERSION: Final = "prtrace.metrics/v1"
# A gap longer than this between two events is time away from the task, not work on it.
IDLE_THRESHOLD_MS: Final = 5 * 60 * 1000


def timestamp_ms(ts: str) -> int:
    """Milliseconds since the epoch of a schema-valid `...Z` timestamp (fraction truncated)."""
    head, _, frac = ts[:-1].partition(".")
    seconds = int(datetime.fromisoformat(f"{head}+00:00").timestamp())
    return seconds * 1000 + int((frac + "000")[:3])


def is_failing(event: TestRunEvent) -> bool:
    return event.payload.failed > 0 or event.payload.errors > 0


def is_green(event: TestRunEvent) -> bool:
    """All-passing: something ran and nothing failed."""
    return not is_failing(event) and event.payload.passed > 0


class MetricsAccumulator:
    """Feed events in seq order with `add`; read the result with `result()` at any time."""

    def __init__(self) -> None:
        self._count = 0
        self._by_type = dict.fromkeys(EVENT_TYPES, 0)
        self._first_ms: int | None = None
        self._previous_ms: int | None = None
        self._earliest_ms: int | None = None
        self._latest_ms: int | None = None
        self._active_ms = 0
        self._idle_gaps = 0
        self._files: set[str] = set()
        self._lines_added = 0
        self._lines_removed = 0
        self._commands_failed = 0
        self._test_runs_failing = 0
        self._first_failing_ms: int | None = None
        self._green_ms: int | None = None
        self._edited_since_test = False
        self._edit_test_cycles = 0

    def add(self, event: Event, ts_ms: int | None = None) -> None:
        """`ts_ms`: the event's `timestamp_ms`, when the caller has computed it already."""
        self._count += 1
        self._by_type[event.type] += 1
        now = timestamp_ms(event.ts) if ts_ms is None else ts_ms
        self._track_time(now)
        if isinstance(event, FileEditEvent):
            self._files.add(event.payload.path)
            if event.payload.old_path is not None:
                self._files.add(event.payload.old_path)
            self._lines_added += event.payload.lines_added
            self._lines_removed += event.payload.lines_removed
            self._edited_since_test = True
        elif isinstance(event, CmdRunEvent):
            self._commands_failed += event.payload.exit_code != 0
        elif isinstance(event, TestRunEvent):
            self._add_test_run(event, now)
        elif isinstance(event, CommitEvent | RationaleNoteEvent):
            pass  # counted by type

    def _track_time(self, now: int) -> None:
        if self._first_ms is None:
            self._first_ms = now
        if self._previous_ms is not None:
            # Clocks can step back between recorder restarts: a negative gap is no time.
            gap = max(0, now - self._previous_ms)
            if gap > IDLE_THRESHOLD_MS:
                self._idle_gaps += 1
            else:
                self._active_ms += gap
        self._previous_ms = now
        self._earliest_ms = now if self._earliest_ms is None else min(self._earliest_ms, now)
        self._latest_ms = now if self._latest_ms is None else max(self._latest_ms, now)

    def _add_test_run(self, event: TestRunEvent, now: int) -> None:
        assert self._first_ms is not None  # _track_time ran first
        if self._edited_since_test:
            self._edit_test_cycles += 1
            self._edited_since_test = False
        if is_failing(event):
            self._test_runs_failing += 1
            if self._first_failing_ms is None:
                self._first_failing_ms = max(0, now - self._first_ms)
        elif is_green(event) and self._first_failing_ms is not None and self._green_ms is None:
            self._green_ms = max(0, now - self._first_ms)

    def result(self) -> dict[str, Any]:
        earliest, latest = self._earliest_ms or 0, self._latest_ms or 0
        return {
            "version": METRICS_VERSION,
            "event_count": self._count,
            "events_by_type": dict(self._by_type),
            "duration_ms": latest - earliest,
            "active_ms": self._active_ms,
            "idle_threshold_ms": IDLE_THRESHOLD_MS,
            "idle_gaps": self._idle_gaps,
            "files_touched": len(self._files),
            "file_edits": self._by_type["file_edit"],
            "lines_added": self._lines_added,
            "lines_removed": self._lines_removed,
            "commands": self._by_type["cmd_run"],
            "commands_failed": self._commands_failed,
            "test_runs": self._by_type["test_run"],
            "test_runs_failing": self._test_runs_failing,
            "time_to_first_failing_test_ms": self._first_failing_ms,
            "time_to_green_ms": self._green_ms,
            "edit_test_cycles": self._edit_test_cycles,
            "commits": self._by_type["commit"],
            "notes": self._by_type["rationale_note"],
        }


def compute_metrics(events: Iterable[Event]) -> dict[str, Any]:
    accumulator = MetricsAccumulator()
    for event in events:
        accumulator.add(event)
    return accumulator.result()
