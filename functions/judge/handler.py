"""Judge step Lambda (Step Functions task): score a trace, store the result in S3.

Input: {"trace_id", "bucket" (optional), "document_key", "qa_report_key" (may be null),
"result_key"}. Output: {"result_key", "overall", "status", "judge"}; states pass keys,
never the result itself. An unreachable model, or a server answering anything but a chat
completion, still completes: status `judge_unavailable`, `overall` null, the offline scores
kept apart as a labelled stand-in; missing inputs fail the task (Step Functions retries,
then catches).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from prtrace import cloudwatch_names as names
from prtrace.adapters.openai_chat import build_llm_judge
from prtrace.adapters.wiring import build_object_store, build_s3_client
from prtrace.judge.llm import LLMJudge
from prtrace.judge.result import OFFLINE_JUDGE, JudgeResult
from prtrace.judge.rubric import load_rubric
from prtrace.judge.service import JudgeRequest, run_judge_step
from prtrace.judge.settings import JudgeSettings
from prtrace.settings import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

SERVICE = names.JUDGE_SERVICE
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=names.NAMESPACE, service=SERVICE)

Key = Annotated[str, Field(min_length=1, max_length=1024)]
# Kept back from the model for the offline fallback and the result's write, so an
# unresponsive model ends as `judge_unavailable` rather than as a Lambda timeout.
STORE_RESERVE_S = 5.0


class JudgeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    trace_id: Annotated[str, Field(min_length=1, max_length=128)]
    bucket: str | None = None
    document_key: Key
    qa_report_key: Key | None = None
    result_key: Key


@cache
def settings() -> JudgeSettings:
    return JudgeSettings.from_env()


@cache
def s3_client() -> S3Client:
    return build_s3_client()  # one per container; the bucket may differ per event


def llm_judge() -> LLMJudge | None:
    # Built per invocation, and only when there is something to judge: the key comes from
    # Powertools' cache (5 minutes), so a rotated secret is picked up by warm containers.
    return build_llm_judge(settings(), load_rubric())


def reset() -> None:
    """Forget cached settings and clients (tests change the environment between cases)."""
    settings.cache_clear()
    s3_client.cache_clear()


@logger.inject_lambda_context(log_event=True)  # keys and ids only: nothing secret
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = JudgeEvent.model_validate(event)
    bucket = request.bucket or settings().bucket
    if not bucket:
        raise ConfigurationError("no bucket in the event and PRTRACE_BUCKET is not set")
    store = build_object_store(bucket, s3_client())
    result = run_judge_step(
        JudgeRequest(
            trace_id=request.trace_id,
            document_key=request.document_key,
            qa_report_key=request.qa_report_key,
            result_key=request.result_key,
        ),
        store,
        load_rubric(),
        llm_judge,
        time_left_s=lambda: context.get_remaining_time_in_millis() / 1000 - STORE_RESERVE_S,
    )
    _publish_metrics(result)
    facts = {"trace_id": request.trace_id, "status": result.status, "judge": result.judge}
    if result.status == "ok":
        logger.info("judged", extra=facts)
    else:  # an operator should see why the model's scores are missing
        logger.warning("judged without model scores", extra=facts | {"problems": result.problems})
    return {
        "result_key": request.result_key,
        "overall": result.overall,
        "status": result.status,
        "judge": result.judge,
    }


def _publish_metrics(result: JudgeResult) -> None:
    """An unreachable model must not go unnoticed: the alarm on JudgeUnavailable says so.
    0 is published too, so the dashboard shows the share of traces affected."""
    unavailable = 1 if result.status == "judge_unavailable" else 0
    metrics.add_metric(name=names.JUDGE_UNAVAILABLE, unit=MetricUnit.Count, value=unavailable)
    if settings().mode != "offline":
        # `auto` without a key scores offline and says nothing else: this is what says so.
        fallback = 1 if result.judge == OFFLINE_JUDGE and result.status == "ok" else 0
        metrics.add_metric(name=names.JUDGE_OFFLINE_FALLBACK, unit=MetricUnit.Count, value=fallback)
    if result.usage is None:
        return  # the offline judge spends no tokens
    usage = result.usage
    metrics.add_metric(
        name=names.JUDGE_PROMPT_TOKENS, unit=MetricUnit.Count, value=usage.prompt_tokens
    )
    metrics.add_metric(
        name=names.JUDGE_COMPLETION_TOKENS, unit=MetricUnit.Count, value=usage.completion_tokens
    )
    if usage.cost_usd is not None:
        metrics.add_metric(name=names.JUDGE_COST_USD, unit=MetricUnit.NoUnit, value=usage.cost_usd)
