"""`python -m functions.qa_runner`: the QA task's entry point.

Input from arguments or environment (arguments win; prtrace.qa.settings.QATaskInput):
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

from botocore.exceptions import BotoCoreError, ClientError

from prtrace.adapters.sandbox.select import build_sandbox
from prtrace.adapters.wiring import build_artifact_store
from prtrace.qa.service import QAService
from prtrace.qa.settings import QASettings, QATaskInput
from prtrace.qa.task import parse_request, run_qa_task
from prtrace.settings import ConfigurationError


def _input(argv: Sequence[str] | None) -> QATaskInput:
    """The arguments given, and the variables of those not given (QATaskInput)."""
    parser = argparse.ArgumentParser(prog="python -m functions.qa_runner")
    for name in QATaskInput.model_fields:
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
    bucket = task_input.bucket
    if not bucket:
        return _fail("set PRTRACE_BUCKET or --bucket", 2)
    values: dict[str, object] = {
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
    store = build_artifact_store(bucket)
    sandbox, owner = build_sandbox(settings)
    service = QAService(sandbox, store, settings, owner)
    try:
        report, written = run_qa_task(request, store, service, sandbox.name)
    except (BotoCoreError, ClientError) as error:
        return _fail(f"no report stored: {error}", 1)
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
