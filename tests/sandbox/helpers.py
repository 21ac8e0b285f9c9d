"""Run a small test suite in a backend's sandbox, the way QA runs a repository's tests."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from prtrace.qa.junit import JUnitOutcomes
from prtrace.qa.runner_site import build_runner_site
from prtrace.qa.sandbox import SandboxLimits, SandboxResult
from prtrace.qa.service import run_pytest
from tests.sandbox.conftest import Backend, own

PROBES = Path(__file__).parent / "probes"


@dataclass
class SuiteRun:
    result: SandboxResult
    junit: JUnitOutcomes | None
    workspace: Path

    def observation(self, name: str) -> dict[str, object]:
        path = self.workspace / "obs" / f"{name}.json"
        assert path.exists(), f"probe {name} recorded nothing; log:\n{self.log()}"
        loaded: dict[str, object] = json.loads(path.read_text())
        return loaded

    def log(self) -> str:
        return (self.result.stdout + b"\n" + self.result.stderr).decode(errors="replace")[-4000:]


def run_suite(
    backend: Backend,
    root: Path,
    files: dict[str, str],
    limits: SandboxLimits,
    per_test_timeout_s: int = 120,
) -> SuiteRun:
    workspace = root / "workspace"
    workspace.mkdir()
    for name, text in files.items():
        target = workspace / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    own(workspace, backend.owner)
    settings = backend.settings(limits=limits, per_test_timeout_s=per_test_timeout_s)
    result, parsed, _ = run_pytest(
        backend.sandbox, settings, backend.owner, workspace, root / "out", build_runner_site(), None
    )
    return SuiteRun(result=result, junit=parsed, workspace=workspace)


def probe_files(probe: str, config: dict[str, object]) -> dict[str, str]:
    return {
        "tests/test_probe.py": (PROBES / probe).read_text(),
        "kernel_surface.py": (PROBES / "kernel_surface.py").read_text(),
        "probe_config.json": json.dumps(config),
    }


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
