"""Record step Lambda: store how a trace's pipeline ended.

Called by the state machine (events and outcome shapes: prtrace.pipeline.record and
prtrace.pipeline.outcome) and by the execution-end rule with EventBridge's "Step Functions
Execution Status Change" for executions that ended FAILED, TIMED_OUT or ABORTED, which never
ran their own Record (a trace already ended is left as it is). Returns {"status",
"trace_id"}. A malformed event, a QA report or judge result that is not stored, or a trace
already ended otherwise raise, so the state machine catches them (and EventBridge retries).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from prtrace import cloudwatch_names as names
from prtrace.adapters.wiring import build_record_step, build_trace_table_writer
from prtrace.dataset.trace_table import TraceTableWriter
from prtrace.pipeline.record import (
    RecordStep,
    is_execution_end,
    parse_execution_end,
    parse_record_event,
)
from prtrace.records import COMPLETE, TraceRecord
from prtrace.settings import RecordSettings

SERVICE = names.RECORD_SERVICE
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


@cache
def record_step() -> RecordStep:
    return build_record_step(RecordSettings.from_env())


@cache
def trace_table() -> TraceTableWriter:
    return build_trace_table_writer(RecordSettings.from_env())


def reset() -> None:
    """Forget cached settings and clients (tests change the environment between cases)."""
    record_step.cache_clear()
    trace_table.cache_clear()


@logger.inject_lambda_context(log_event=True)  # ids, keys, statuses: nothing secret
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_execution_end(event):
        failure = parse_execution_end(event)
        tenant, trace = failure.tenant, record_step().record_ended_execution(failure)
    else:
        request = parse_record_event(event)
        tenant, trace = request.tenant, record_step().record(request)
    trace_table().write(trace)  # the ended trace's row in the Parquet traces table (once)
    logger.info(
        "recorded",
        extra={"tenant": tenant, "trace_id": trace.trace_id, "status": trace.status},
    )
    _count_verdict(trace)
    return {"status": trace.status, "trace_id": trace.trace_id}


def _count_verdict(trace: TraceRecord) -> None:
    """The QA verdict is known for certain only here, once the trace is complete."""
    qa = (trace.outcome or {}).get("qa") if trace.status == COMPLETE else None
    if not qa or not qa.get("verdict"):
        return  # QA skipped (no snapshots), or the trace did not complete
    with single_metric(
        name=names.QA_VERDICT,
        unit=MetricUnit.Count,
        value=1,
        namespace=names.NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as metric:
        metric.add_dimension(name=names.VERDICT_DIMENSION, value=str(qa["verdict"]))
