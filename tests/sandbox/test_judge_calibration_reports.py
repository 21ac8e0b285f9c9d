"""The calibration set's committed QA reports (tests/judge_calibration/reports/) are what
QA says today: each session's final tree is run through the whole QA again on bubblewrap
and compared, less timings and artifact keys. When QA changes on purpose, regenerate them
with `python -m tests.judge_calibration.generate` and re-check the calibration test."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.judge_calibration.generate import run_calibration_qa, stable
from tests.judge_calibration.sessions import Calibration, calibration_set
from tests.sandbox.conftest import Backend


@pytest.mark.slow
@pytest.mark.parametrize("calibration", [pytest.param(c, id=c.name) for c in calibration_set()])
def test_committed_report_matches_a_fresh_qa_run(
    bwrap: Backend, scratch: Path, calibration: Calibration
) -> None:
    fresh = stable(run_calibration_qa(bwrap, calibration, scratch))
    committed = orjson.loads(calibration.report_path.read_bytes())
    assert fresh == committed, (
        f"{calibration.name}: QA now says {fresh['verdict']} ({fresh['verdict_reason']}); "
        "regenerate with `python -m tests.judge_calibration.generate "
        f"{calibration.name}` if QA changed on purpose"
    )
