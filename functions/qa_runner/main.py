"""`python -m functions.qa_runner`: the QA task's entry point.

Input from arguments or environment (arguments win):
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
import os
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from prtrace.adapters.sandbox.select import build_sandbox
from prtrace.adapters.wiring import build_artifact_store
from prtrace.qa.service import QAService
from prtrace.qa.settings import QASettings
from prtrace.qa.task import parse_request, run_qa_task
from prtrace.schema import artifact_uri
from prtrace.settings import ConfigurationError

_ARGS = [
    "trace-id", "bucket", "tenant", "document-key", "report-key",
    "base-key", "base-sha256", "base-size", "base-media-type",
    "final-key", "final-sha256", "final-size", "final-media-type",
]  # fmt: skip


def _options(argv: Sequence[str] | None) -> dict[str, str]:
    parser = argparse.ArgumentParser(prog="python -m functions.qa_runner")
    for name in _ARGS:
        parser.add_argument(f"--{name}")
    given = vars(parser.parse_args(argv))
    options: dict[str, str] = {}
    for name in _ARGS:
        attribute = name.replace("-", "_")
        value = given[attribute] or os.environ.get(f"PRTRACE_{attribute.upper()}")
        if value:
            options[attribute] = value
    return options


def _snapshot(options: dict[str, str], side: str) -> dict[str, object] | None:
    if f"{side}_key" not in options:
        return None
    sha256 = options.get(f"{side}_sha256", "")
    return {
        "key": options[f"{side}_key"],
        "ref": {
            "uri": artifact_uri(sha256),
            "sha256": sha256,
            "size": int(options.get(f"{side}_size", "-1")),
            "media_type": options.get(f"{side}_media_type", "application/x-tar"),
        },
    }


def _fail(message: str, code: int) -> int:
    print(json.dumps({"error": message}), file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    options = _options(argv)
    bucket = options.pop("bucket", "")
    if not bucket:
        return _fail("set PRTRACE_BUCKET or --bucket", 2)
    values: dict[str, object] = {
        k: v for k, v in options.items() if not k.startswith(("base_", "final_"))
    }
    for side in ("base", "final"):
        snapshot = _snapshot(options, side)
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
