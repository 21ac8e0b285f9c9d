"""Write reports/<name>.json: the real QA report of the tree each calibration session ends
in, run by the bubblewrap sandbox exactly as the QA task runs it (needs root and
.ci/sandbox-setup.sh). `python -m tests.judge_calibration.generate [name ...]`

Committed rather than produced at test time so the calibration test runs anywhere in a
second; tests/sandbox/test_judge_calibration_reports.py re-runs QA and fails when a
committed report no longer matches what QA says.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import orjson

from prtrace.qa.report import QAReport
from tests.judge_calibration.sessions import EXAMPLE_REPO, Calibration, calibration_set
from tests.sandbox.conftest import Backend, make_scratch, select_backend
from tests.sandbox.helpers import run_qa

# What differs from one run to the next (timings, artifact keys, the runner's versions):
# left out of the committed reports and of the comparison.
_VOLATILE_RUN_FIELDS = ("duration_ms", "log_key", "junit_key", "pytest_version")


def stable(report: QAReport) -> dict[str, Any]:
    """The report without what changes between runs of the same trees."""
    data = report.model_dump(mode="json")
    data["duration_ms"] = 0
    for run in ("base", "final", "base_with_final_tests", "held"):
        if data.get(run) is not None:
            for name in _VOLATILE_RUN_FIELDS:
                data[run][name] = 0 if name == "duration_ms" else None
    return data


def write_tree(calibration: Calibration, root: Path) -> Path:
    tree = root / "final"
    for path, text in calibration.final_files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    return tree


def run_calibration_qa(backend: Backend, calibration: Calibration, scratch: Path) -> QAReport:
    final = write_tree(calibration, scratch)
    report, _ = run_qa(
        backend,
        scratch,
        EXAMPLE_REPO,
        final,
        trace=calibration.trace_id,
        reproduction=calibration.reproduction(),
    )
    return report


def encode(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(names: list[str]) -> None:
    backend = select_backend("bwrap")
    for calibration in calibration_set():
        if names and calibration.name not in names:
            continue
        scratch = make_scratch(f"calibration-{calibration.name}")
        try:
            report = run_calibration_qa(backend, calibration, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        calibration.report_path.write_bytes(encode(stable(report)))
        print(f"{calibration.name}: {report.verdict} ({report.verdict_reason})")


if __name__ == "__main__":
    main(sys.argv[1:])
