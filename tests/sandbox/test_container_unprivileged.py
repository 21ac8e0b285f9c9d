"""The `container` backend as the Fargate task runs it: the runner is NOT root, so the tests
it starts share its uid. The runner's environment (in ECS it names the task-role credential
endpoint) must still be out of their reach: the backend makes the runner non-dumpable, which
makes its /proc entries root-owned. The control run, made before that, shows the same probe
does read the secret otherwise."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import prtrace
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
print(found)
"""

DRIVER = """
import json, os, sys
from pathlib import Path
from prtrace.adapters.sandbox.container import ContainerSandbox
from prtrace.qa.sandbox import SandboxLimits, SandboxRun

workspace = Path.cwd()
probe = Path("probe.py").read_text().replace("SECRET", repr(os.environ["RUNNER_SECRET"].encode()))
sandbox = ContainerSandbox(python="/usr/bin/python3")
limits = SandboxLimits(wall_timeout_s=30)
run = SandboxRun(argv=["/usr/bin/python3", "-c", probe], workspace=workspace,
                 output=workspace, env={"PATH": "/usr/bin:/bin"}, limits=limits)
from prtrace.adapters.sandbox import processes
# Control: the same probe started plainly, before the backend made this process non-dumpable.
control = processes.run_bounded(run.argv, env=dict(run.env), cwd=workspace, limits=limits,
                                preexec=lambda: None, kill_everything=lambda: None)
sandbox.check_available()
guarded = sandbox.run(run)
print(json.dumps({"uid": os.getuid(), "pid": os.getpid(),
                  "control": control.stdout.decode(), "guarded": guarded.stdout.decode()}))
"""


def test_tests_cannot_read_a_non_root_runners_environment(bwrap: Backend, scratch: Path) -> None:
    # The runner's packages, readable by the unprivileged uid wherever this checkout lives
    # (like the task image's venv, used with the system interpreter).
    site = scratch / "site"
    copy_distributions(distribution_closure(("pydantic", "packaging")), site)
    shutil.copytree(LAYER, site / "prtrace", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [site / "prtrace", *(site / "prtrace").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    workspace = scratch / "workspace"
    workspace.mkdir()
    os.chown(workspace, 65534, 65534)
    secret = f"prtrace-runner-secret-{secrets.token_hex(8)}"
    for name, text in (("driver.py", DRIVER), ("probe.py", PROBE)):
        (workspace / name).write_text(text)
        (workspace / name).chmod(0o644)  # whatever the umask
    done = subprocess.run(
        ["/usr/bin/python3", "driver.py"],
        cwd=workspace,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(site),
            "RUNNER_SECRET": secret,
        },
        user=65534,
        group=65534,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["uid"] == 65534
    assert json.loads(seen["control"]) == [seen["pid"]]  # readable while dumpable
    assert json.loads(seen["guarded"]) == []  # not through the backend
