"""The API function's cold start: its dependencies are built in the init phase, then frozen
out of the cyclic collector's scans, with a young generation sized for one request
(prtrace.heap); a misconfigured environment still imports and answers per request."""

from __future__ import annotations

import os
import subprocess
import sys

from infra_cdk.assets import CORE_LAYER_DIR, ROOT
from local_cloud.resources import ResourceNames

PROBE = (
    "import gc, functions.api.handler as h; from functions.api import dependencies as d; "
    "from prtrace.heap import YOUNG_GENERATION_THRESHOLD; "
    "print(','.join(d.container().built()) or '-', "
    "gc.get_freeze_count() > 0, gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD)"
)


def _cold_start(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PRTRACE_")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(CORE_LAYER_DIR / "python")])
    base |= {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=base | env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.split()[-3:]


def test_a_lambda_init_builds_the_dependencies_then_freezes() -> None:
    env = ResourceNames().environment() | {"AWS_LAMBDA_FUNCTION_NAME": "api"}
    built = (
        "blob_store,dataset_exports,idempotency,ingest_service,settings,trace_events,trace_results"
    )
    assert _cold_start(**env) == [built, "True", "True"]


def test_outside_lambda_nothing_is_built_at_import() -> None:
    assert _cold_start(**ResourceNames().environment()) == ["-", "True", "True"]


def test_a_misconfigured_lambda_still_imports() -> None:
    assert _cold_start(AWS_LAMBDA_FUNCTION_NAME="api") == ["-", "True", "True"]
