"""`python -m functions.qa_runner`: the QA task's entry point.

Input from the pipeline: PRTRACE_QA_GRANT (prtrace.qa.grant), presigned requests for exactly
this trace's document, snapshots, report and QA artifacts; with it the task needs no bucket,
no AWS credentials and no other input (the variable is never an argument: argv is visible
to every process). Without it, from arguments or environment (arguments win;
prtrace.qa.settings.QATaskInput), through S3 with the task's own credentials:
  --trace-id / PRTRACE_TRACE_ID, --bucket / PRTRACE_BUCKET, --tenant / PRTRACE_TENANT
  either --document-key / PRTRACE_DOCUMENT_KEY (the assembled trace document)
  or     --base-key --base-sha256 --base-size --base-media-type (PRTRACE_BASE_*) and the
         same for --final-* (snapshot keys with their SHA-256 and size)
  --report-key / PRTRACE_REPORT_KEY (default tenants/<t>/traces/<id>/qa/report.json)
Sandbox: PRTRACE_SANDBOX_BACKEND (bwrap | docker | container) and PRTRACE_QA_* (settings).
Prints one JSON line; exit code 0 when a report is stored (whatever the verdict), 1 when
no report could be stored, 2 for unusable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from prtrace.adapters.presigned_store import (
    GrantTransferError,
    KeyNotGranted,
    PresignedArtifactStore,
)
from prtrace.adapters.sandbox.select import build_sandbox
from prtrace.adapters.wiring import build_artifact_store
from prtrace.qa.grant import GrantError, QaGrant, parse_grant
from prtrace.qa.ports import ArtifactStore
from prtrace.qa.service import QAService
from prtrace.qa.settings import QASettings, QATaskInput
from prtrace.qa.task import parse_request, run_qa_task
from prtrace.settings import ConfigurationError


def _input(argv: Sequence[str] | None) -> QATaskInput:
    """The arguments given, and the variables of those not given (QATaskInput)."""
    parser = argparse.ArgumentParser(prog="python -m functions.qa_runner")
    for name in QATaskInput.model_fields:
        if name != "qa_grant":
            parser.add_argument(f"--{name.replace('_', '-')}")
    given = {name: value for name, value in vars(parser.parse_args(argv)).items() if value}
    return QATaskInput.from_env(**given)


def _fail(message: str, code: int) -> int:
    print(json.dumps({"error": message}), file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    try:
        task_input = _input(argv)
    except ConfigurationError as error:
        return _fail(str(error), 2)
    grant: QaGrant | None = None
    if task_input.qa_grant is not None:
        try:
            grant = parse_grant(task_input.qa_grant.get_secret_value())
        except GrantError as error:
            return _fail(str(error), 2)
        if grant.expires_at <= datetime.now(UTC):
            return _fail(f"the QA grant expired at {grant.expires_at.isoformat()}", 2)
        values: dict[str, object] = {
            "trace_id": grant.trace_id,
            "tenant": grant.tenant,
            "document_key": grant.document.key,
            "report_key": grant.report.key,
        }
    elif not task_input.bucket:
        return _fail("set PRTRACE_QA_GRANT, or PRTRACE_BUCKET (or --bucket)", 2)
    else:
        values = {
            name: getattr(task_input, name)
            for name in ("trace_id", "tenant", "document_key", "report_key")
            if getattr(task_input, name) is not None
        }
        for side in ("base", "final"):
            snapshot = task_input.snapshot(side)
            if snapshot is not None:
                values[side] = snapshot
    try:
        request = parse_request(values)
        settings = QASettings.from_env()
    except (ValueError, ConfigurationError) as error:
        return _fail(str(error), 2)
    store: ArtifactStore
    if grant is not None:
        store = PresignedArtifactStore(grant)
        if grant.package_index_token is not None:
            try:  # the dependency step's only credential: the proxy's read token
                settings = settings.with_index_token(grant.package_index_token)
            except ValueError as error:
                return _fail(str(error), 2)
    else:
        assert task_input.bucket is not None
        store = build_artifact_store(task_input.bucket)
    sandbox, owner = build_sandbox(settings)
    service = QAService(sandbox, store, settings, owner)
    try:
        report, written = run_qa_task(request, store, service, sandbox.name)
    except (
        BotoCoreError,
        ClientError,
        httpx.HTTPError,
        GrantTransferError,
        KeyNotGranted,
    ) as error:
        # httpx names the request's URL in some errors: only its type leaves the task then.
        detail = type(error).__name__ if isinstance(error, httpx.HTTPError) else str(error)
        return _fail(f"no report stored: {detail}", 1)
    summary = {
        "trace_id": report.trace_id,
        "verdict": report.verdict,
        "error_reason": report.error_reason,
        "fail_to_pass": len(report.fail_to_pass),
        "pass_to_fail": len(report.pass_to_fail),
        "backend": report.backend,
        "report_key": request.report_key_or_default,
        "stored": "written" if written else "already stored",
    }
    print(json.dumps(summary))
    return 0
