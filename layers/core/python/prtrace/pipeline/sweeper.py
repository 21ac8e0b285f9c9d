"""The stuck-trace sweeper: a trace still in the pipeline long after it was finalized (longer
than any execution may run) is ended as failed, stage `pipeline`.

The execution-end rule already records executions that end FAILED, TIMED_OUT or ABORTED;
this catches what that cannot: a pipeline that never started (the finalize that should
have started it crashed, and was not retried), an event EventBridge gave up on, a Record
that kept failing. Ending a trace goes through the Record step's own write, which changes
only a trace still in the pipeline, so a sweep that races its pipeline loses harmlessly.
An ended trace's row goes to the Parquet traces table as Record's would
(prtrace.dataset.trace_table; written once, so a trace Record already wrote is left as is).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol, cast

from prtrace.clock import utc_timestamp
from prtrace.pipeline.record import RecordFailed, RecordStep, parse_record_event
from prtrace.ports import TraceStore
from prtrace.records import FAILED, TraceRecord

STUCK_ERROR = "PipelineStuck"


class TableWriter(Protocol):
    def write(self, trace: TraceRecord) -> str | None: ...


class StuckTraceSweeper:
    def __init__(
        self,
        traces: TraceStore,
        record: RecordStep,
        stuck_after_s: int,
        batch: int = 100,
        table: TableWriter | None = None,  # None: rows are not written (unit tests)
    ) -> None:
        self._traces = traces
        self._record = record
        self._stuck_after = timedelta(seconds=stuck_after_s)
        self._batch = batch
        self._table = table

    def sweep(self, now: datetime) -> list[TraceRecord]:
        """End every trace finalized more than `stuck_after_s` before `now` that is still in
        the pipeline (at most `batch` per call: the next sweep takes the rest)."""
        before = utc_timestamp(now - self._stuck_after)
        hours = self._stuck_after.total_seconds() / 3600
        ended = []
        for tenant, trace_id in self._traces.in_pipeline_since_before(before, self._batch):
            trace = self._traces.get_trace(tenant, trace_id)
            status = trace.status if trace is not None else "gone"
            failure = parse_record_event(
                {
                    "tenant": tenant,
                    "trace_id": trace_id,
                    "status": "failed",
                    "stage": "pipeline",
                    "error": STUCK_ERROR,
                    "cause": f"the trace was still {status} {hours:g} h after it was finalized: "
                    "its pipeline never recorded how it ended",
                }
            )
            failed = self._record.record_ended_execution(cast(RecordFailed, failure))
            if self._table is not None and failed.status == FAILED:
                # (A trace its own Record ended meanwhile has its row, and its events.)
                self._table.write(failed)
            ended.append(failed)
        return ended
