"""Run a small test suite in a backend's sandbox, the way QA runs a repository's tests."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.qa.junit import JUnitOutcomes
from prtrace.qa.local_inputs import store_local_snapshot
from prtrace.qa.report import QAReport
from prtrace.qa.runner_site import build_runner_site
from prtrace.qa.sandbox import SandboxLimits, SandboxResult
from prtrace.qa.service import QAService, run_pytest
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
        backend.sandbox,
        settings,
        backend.owner,
        workspace,
        root / "out",
        build_runner_site(settings.cache_dir),
        None,
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


def run_qa(
    backend: Backend,
    root: Path,
    base: Path,
    final: Path,
    trace: str = "tr_qa",
    reproduction: list[str] | None = None,
    **settings: object,
) -> tuple[QAReport, DirectoryArtifactStore]:
    """The whole QA of two workspace trees, as the QA task runs it (`reproduction`: the
    failing test ids the trace recorded before its fix)."""
    store = DirectoryArtifactStore(root / f"artifacts-{trace}")
    base_ref = store_local_snapshot(base, store, "t1", trace)
    final_ref = store_local_snapshot(final, store, "t1", trace)
    service = QAService(backend.sandbox, store, backend.settings(**settings), backend.owner)
    return service.run("t1", trace, base_ref, final_ref, reproduction=reproduction or ()), store


def wheel(name: str, version: str, module_text: str, requires: tuple[str, ...] = ()) -> bytes:
    """A minimal pure-Python wheel, so dependency tests need no index."""
    dist = f"{name}-{version}.dist-info"
    requirements = "".join(f"Requires-Dist: {spec}\n" for spec in requires)
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requirements}"
    files = {
        f"{name}/__init__.py": module_text.encode(),
        f"{dist}/METADATA": metadata.encode(),
        f"{dist}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = ""
    for path, body in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(body)}\n"
    files[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, body in files.items():
            archive.writestr(path, body)
    return buffer.getvalue()
