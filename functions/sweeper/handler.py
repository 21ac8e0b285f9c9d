"""Sweeper Lambda (an hourly EventBridge schedule): end the traces the pipeline left in
progress long after their finalize (prtrace.pipeline.sweeper). Returns {"ended": [trace ids]}."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from prtrace.adapters.wiring import build_sweeper
from prtrace.pipeline.sweeper import StuckTraceSweeper
from prtrace.settings import SweeperSettings

SERVICE = "prtrace-sweeper"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


@cache
def sweeper() -> StuckTraceSweeper:
    return build_sweeper(SweeperSettings.from_env())


def reset() -> None:
    """Forget cached settings and clients (tests change the environment between cases)."""
    sweeper.cache_clear()


def scheduled_time(event: dict[str, Any]) -> datetime:
    """The schedule's own time for this run (EventBridge's `time`), else now."""
    raw = event.get("time") if isinstance(event, dict) else None
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            logger.warning("unreadable schedule time; sweeping as of now", extra={"time": raw})
    return datetime.now(UTC)


@logger.inject_lambda_context(log_event=True)  # a schedule's event: nothing secret
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    ended = sweeper().sweep(scheduled_time(event))
    for trace in ended:
        logger.warning(
            "ended a trace its pipeline left in progress",
            extra={"tenant": trace.tenant, "trace_id": trace.trace_id, "status": trace.status},
        )
    return {"ended": [trace.trace_id for trace in ended]}
