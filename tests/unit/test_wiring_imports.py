"""Importing the composition root costs boto3 and nothing of the domain: each builder imports
what it builds, so a function's cold start imports only the services it uses."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from infra_cdk.assets import CORE_LAYER_DIR, ROOT


def _imported(module: str) -> set[str]:
    """The prtrace and functions modules a fresh interpreter has after importing `module`."""
    probe = (
        f"import sys, {module}; "
        "print(' '.join(m for m in sys.modules if m.startswith(('prtrace', 'functions'))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRTRACE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(CORE_LAYER_DIR / "python")])
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    return set(done.stdout.split())


def test_the_wiring_module_imports_no_domain_module() -> None:
    assert _imported("prtrace.adapters.wiring") == {
        "prtrace",
        "prtrace.adapters",
        "prtrace.adapters.wiring",
    }


@pytest.mark.parametrize(
    ("handler", "unused"),
    [
        (
            "functions.judge.handler",
            {"prtrace.ingest.service", "prtrace.pipeline.sweeper", "prtrace.pipeline.record"},
        ),
        (
            "functions.assemble.handler",
            {"prtrace.ingest.service", "prtrace.pipeline.sweeper", "prtrace.pipeline.record"},
        ),
        (
            "functions.qa_runner.main",
            {"prtrace.ingest.service", "prtrace.pipeline.sweeper", "prtrace.pipeline.record"},
        ),
    ],
)
def test_a_step_imports_none_of_the_services_it_does_not_use(
    handler: str, unused: set[str]
) -> None:
    imported = _imported(handler)
    assert handler in imported
    assert not imported & unused
