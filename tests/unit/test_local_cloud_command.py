"""The local cloud's command under its old name: `python -m infra_cdk.local` still starts
`python -m local_cloud`, and says on stderr that the name has changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_old_command_runs_the_local_cloud_and_names_the_new_one() -> None:
    old = subprocess.run(
        [sys.executable, "-m", "infra_cdk.local", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert old.returncode == 0, old.stderr
    assert old.stderr.splitlines()[0] == (
        "`python -m infra_cdk.local` is deprecated: run `python -m local_cloud`."
    )
    # The same command, its arguments handed on: local_cloud's own options and usage line.
    assert "python -m local_cloud" in old.stdout
    assert "--cdk-cli" in old.stdout
