"""The `container` backend as the Fargate task runs it: the runner holds the task's secrets
(in ECS its environment names the task-role credential endpoint and carries the QA grant),
so tests must never share its uid. Started as root it drops every run to the sandbox uid,
which cannot read the runner's environment; started as any other user it refuses to run
(tests would share the runner's uid and that of the container's PID 1). The control run,
made plainly as root, shows the same probe does read the secret otherwise."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import prtrace
from prtrace.adapters.sandbox.bwrap import SANDBOX_UID
from prtrace.qa.runner_site import copy_distributions, distribution_closure
from tests.sandbox.conftest import Backend

LAYER = Path(prtrace.__file__).resolve().parent

PROBE = """
import os
found = []
for pid in os.listdir('/proc'):
    if not pid.isdigit():
        continue
    try:
        data = open(f'/proc/{pid}/environ', 'rb').read()
    except OSError:
        continue
    if SECRET in data:
        found.append(int(pid))
print(found, os.getuid())
"""

DRIVER = """
import json, os, sys
from pathlib import Path
from prtrace.adapters.sandbox.container import ContainerSandbox
from prtrace.qa.errors import BackendUnavailable
from prtrace.qa.sandbox import SandboxLimits, SandboxRun

workspace = Path.cwd()
probe = Path("probe.py").read_text().replace("SECRET", repr(os.environ["RUNNER_SECRET"].encode()))
sandbox = ContainerSandbox(python="/usr/bin/python3", work_dir=workspace.parent)
limits = SandboxLimits(wall_timeout_s=30)
run = SandboxRun(argv=["/usr/bin/python3", "-c", probe], workspace=workspace,
                 output=workspace, env={"PATH": "/usr/bin:/bin"}, limits=limits)
try:
    sandbox.check_available()
except BackendUnavailable as error:
    print(json.dumps({"uid": os.getuid(), "refused": error.detail}))
    sys.exit(0)
from prtrace.adapters.sandbox import processes
# Control: the same probe started plainly (as root, like the runner), not through the backend.
control = processes.run_bounded(run.argv, env=dict(run.env), cwd=workspace, limits=limits,
                                preexec=lambda: None, kill_everything=lambda: None)
guarded = sandbox.run(run)
print(json.dumps({"uid": os.getuid(), "pid": os.getpid(),
                  "control": control.stdout.decode(), "guarded": guarded.stdout.decode()}))
"""


def _drive(scratch: Path, user: int | None) -> dict[str, Any]:
    site = scratch / "site"
    if not site.exists():
        copy_distributions(distribution_closure(("pydantic", "packaging")), site)
        shutil.copytree(LAYER, site / "prtrace", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [site / "prtrace", *(site / "prtrace").rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    workspace = scratch / f"workspace-{user}"
    workspace.mkdir()
    os.chown(workspace, SANDBOX_UID, SANDBOX_UID)
    secret = f"prtrace-runner-secret-{secrets.token_hex(8)}"
    for name, text in (("driver.py", DRIVER), ("probe.py", PROBE)):
        (workspace / name).write_text(text)
        (workspace / name).chmod(0o644)  # whatever the umask
    done = subprocess.run(
        ["/usr/bin/python3", "driver.py"],
        cwd=workspace,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "RUNNER_SECRET": secret},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        user=user,
        group=user,
        extra_groups=None if user is None else [],
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


def test_a_non_root_runner_is_refused(bwrap: Backend, scratch: Path) -> None:
    seen = _drive(scratch, 10001)
    assert seen["uid"] == 10001
    assert "must start as root" in seen["refused"]


def test_tests_cannot_read_the_root_runners_environment(bwrap: Backend, scratch: Path) -> None:
    seen = _drive(scratch, None)
    assert seen["uid"] == 0
    control_pids, control_uid = seen["control"].split("] ")
    assert json.loads(control_pids + "]") == [seen["pid"]]  # readable to root
    assert int(control_uid) == 0
    guarded_pids, guarded_uid = seen["guarded"].split("] ")
    assert json.loads(guarded_pids + "]") == []  # not from the sandbox uid
    assert int(guarded_uid) == SANDBOX_UID
