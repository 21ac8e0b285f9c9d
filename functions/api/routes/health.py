"""Liveness and readiness (no authentication; no details an attacker could use)."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from functions.api.dependencies import Ingest
from functions.api.models import Liveness, Readiness, answer
from functions.api.routes.responses import json_response
from functions.api.telemetry import logger

router = Router()

_READINESS = answer(200, Readiness, "Ready")
_READINESS[503] = {
    "description": "Not ready: a check failed (the same shape, not a problem)",
    "content": {"application/json": {"model": Readiness}},
}


@router.get("/healthz", summary="Liveness", responses=answer(200, Liveness, "Alive"))
def healthz() -> Response[str]:
    return json_response(200, {"status": "ok"})


@router.get(
    "/readyz",
    summary="Readiness: the table and the bucket answer",
    responses=_READINESS,
)
def readyz(service: Ingest) -> Response[str]:
    checks: dict[str, str] = {}
    for name, probe in (("table", service.ping_table), ("bucket", service.ping_bucket)):
        try:
            probe()
            checks[name] = "ok"
        except Exception:  # readiness reports, it does not crash
            logger.exception("readiness check failed", extra={"check": name})
            checks[name] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        200 if ready else 503, {"status": "ready" if ready else "not_ready", "checks": checks}
    )
