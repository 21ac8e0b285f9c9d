"""The recorded usage the IAM check reads is the functions' usage now: tests/functional,
recorded afresh, make exactly the calls of tests/infra/iam_usage.json. A new call (a grant
it needs) or a dropped one (a grant left unused) fails here until `make iam-usage`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infra_cdk.assets import ROOT

COMMITTED = Path(__file__).with_name("iam_usage.json")


def test_the_committed_usage_is_what_the_functional_tests_call(tmp_path: Path) -> None:
    fresh = tmp_path / "iam_usage.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "tests/functional", "-q",
            "-p", "tests.infra.aws_calls", f"--record-aws-calls={fresh}",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    recorded = json.loads(fresh.read_text())["functions"]
    committed = json.loads(COMMITTED.read_text())["functions"]
    for function in sorted(set(recorded) | set(committed)):
        now = {json.dumps(c, sort_keys=True) for c in recorded.get(function, [])}
        then = {json.dumps(c, sort_keys=True) for c in committed.get(function, [])}
        assert now == then, (
            f"{function}: calls not in iam_usage.json {sorted(now - then)}; "
            f"recorded there but no longer made {sorted(then - now)}; run `make iam-usage`"
        )
