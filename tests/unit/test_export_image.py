"""The export task image's packages (functions/export_job/requirements.txt): every
distribution the task's code imports is listed, at the version the lock pins (the
development environment's), so the image runs what the tests ran."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "functions" / "export_job" / "requirements.txt"
# What the task imports: its entry point, the job, the store source, the signer and
# pyarrow's Parquet writer (imported on first use by prtrace.dataset.files).
# numpy is not in the image: pyarrow imports it only when it is installed (here it is, for
# pandas), so the probe runs as the image would, without it.
PROBE = """
import json, sys
sys.modules["numpy"] = None
import functions.export_job.main, prtrace.dataset.job, prtrace.adapters.export_source
import prtrace.adapters.signing, prtrace.adapters.wiring, prtrace.dataset.files as files
files._pyarrow()
print(json.dumps(sorted({n.split(".")[0] for n, m in sys.modules.items() if m is not None})))
"""


def _requirements() -> dict[str, str]:
    pinned = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[name.strip().lower().replace("_", "-")] = version.strip()
    return pinned


def test_every_distribution_the_task_imports_is_pinned_as_locked() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'layers' / 'core' / 'python'}", "PATH": "/usr/bin"},
    )
    modules = json.loads(done.stdout)
    owners = metadata.packages_distributions()
    imported = {
        dist.lower().replace("_", "-") for module in modules for dist in owners.get(module, [])
    }
    pinned = _requirements()
    assert imported - set(pinned) == set(), "imported but not in the image's requirements"
    for name, version in pinned.items():
        assert metadata.version(name) == version, name
    assert "pyarrow" in imported
    assert not {"moto", "pytest", "duckdb", "openai"} & set(pinned)
