"""Assemble step Lambda (Step Functions task): verify a finalized trace, write its document.

Input: {"tenant", "trace_id"} (other keys ignored). Output, always a small dict:
{"outcome": "assembled", "document_key", "qa_report_key", "judge_result_key",
"has_snapshots", "summary": {"event_count", "chunk_count", "chain", "metrics"}} or
{"outcome": "rejected", "reason": {"code", "detail", "chunk_seq", "event_seq", "event_id",
"artifact_sha256"}}. A tampered or incomplete trace is a `rejected` answer; only store and
configuration errors raise (Step Functions retries, then catches).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from prtrace.adapters.wiring import build_assemble_service
from prtrace.assemble.service import Assembled, AssembleService
from prtrace.assemble.settings import AssembleSettings

SERVICE = "prtrace-assemble"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)


class AssembleEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant: Annotated[str, Field(min_length=1, max_length=128)]
    trace_id: Annotated[str, Field(min_length=1, max_length=128)]


@cache
def service() -> AssembleService:
    return build_assemble_service(AssembleSettings.from_env())


def reset() -> None:
    """Forget the cached service (tests change the environment between cases)."""
    service.cache_clear()


@logger.inject_lambda_context(log_event=True)  # tenant and trace id only
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = AssembleEvent.model_validate(event)
    outcome = service().assemble(request.tenant, request.trace_id)
    facts: dict[str, Any] = {"tenant": request.tenant, "trace_id": request.trace_id}
    if isinstance(outcome, Assembled):
        logger.info(
            "assembled",
            extra=facts
            | {
                "events": outcome.event_count,
                "chunks": outcome.chunk_count,
                "document_bytes": outcome.document_bytes,
                "written": outcome.written,
            },
        )
    else:  # an operator should see exactly what was wrong with the trace
        logger.warning("rejected", extra=facts | {"reason": outcome.reason.as_dict()})
    return outcome.as_output()
