"""PrepareQa step Lambda (Step Functions task): sign the QA task's grant.

Input: {"tenant", "trace_id", "document_key", "qa_report_key", "snapshots": {"base",
"final"}} (the Assemble step's keys and snapshot refs; other keys ignored). Output:
{"grant": "<JSON>", "expires_at": "<RFC 3339>"}: the state machine passes `grant` to the QA
task as PRTRACE_QA_GRANT (prtrace.qa.grant). The grant is a bearer credential for one trace:
it is never logged. Bad input or a grant too large for ECS's overrides fails the task with
a message saying why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from prtrace.adapters.wiring import build_codeartifact_token_source, build_grant_presigner
from prtrace.clock import utc_timestamp
from prtrace.qa.grant import Presigner, QaGrantSettings, build_grant, env_chars
from prtrace.qa.package_index import CodeArtifactSettings
from prtrace.schema import WorkspaceSnapshots

SERVICE = "prtrace-qa-grant"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)

Key = Annotated[str, Field(min_length=1, max_length=1024)]


class PrepareQaEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant: Annotated[str, Field(min_length=1, max_length=128)]
    trace_id: Annotated[str, Field(min_length=1, max_length=128)]
    document_key: Key
    qa_report_key: Key
    snapshots: WorkspaceSnapshots


@cache
def settings() -> QaGrantSettings:
    return QaGrantSettings.from_env()


@cache
def presigner() -> Presigner:
    return build_grant_presigner(settings().bucket)


@cache
def index_settings() -> CodeArtifactSettings:
    return CodeArtifactSettings.from_env()


def package_index_token() -> str | None:
    """A fresh read token of the private package proxy, when the stack has one."""
    proxy = index_settings()
    return build_codeartifact_token_source()(proxy) if proxy.configured else None


def reset() -> None:
    """Forget cached settings and clients (tests change the environment between cases)."""
    settings.cache_clear()
    presigner.cache_clear()
    index_settings.cache_clear()


@logger.inject_lambda_context(log_event=True)  # keys and snapshot refs: nothing secret
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PrepareQaEvent.model_validate(event)
    grant = build_grant(
        presigner(),
        tenant=request.tenant,
        trace_id=request.trace_id,
        document_key=request.document_key,
        report_key=request.qa_report_key,
        base=request.snapshots.base,
        final=request.snapshots.final,
        expires_in=settings().qa_grant_ttl_s,
        now=datetime.now(UTC),
        package_index_token=package_index_token(),
    )
    expires_at = utc_timestamp(grant.expires_at)
    logger.info(
        "granted",  # never the grant itself
        extra={
            "tenant": request.tenant,
            "trace_id": request.trace_id,
            "expires_at": expires_at,
            "grant_chars": env_chars(grant),
        },
    )
    return {"grant": grant.to_env(), "expires_at": expires_at}
