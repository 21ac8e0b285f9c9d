"""A hostile repository under the QA task's exact Fargate settings (read from the
synthesized template by tests/sandbox/fargate_config.py) with the environment ECS gives the
task: the credentials URI, the tenant and trace, and the presigned grant. Its tests try to
read every process's environment and memory, attach to them with ptrace, signal them, read
the inputs and other runs' files and reach the network; each test prints what it got and
passes only when it got nothing. The runner's report and logs must then show every probe
test passed in every run and hold no secret.

The inputs come from a local directory store bind-mounted into the container (the runner's
store is swapped for it before its entry point runs; everything else is the real runner),
so the container stays on `--network none`. The store also holds another tenant's snapshot.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from infra_cdk.app import build_app
from prtrace.storage_keys import artifact_key
from tests.sandbox.conftest import select_backend
from tests.sandbox.fargate_config import image_layout, qa_task_docker_args

STORE = "/srv/prtrace-store"
RUNS = ("base", "final", "held", "base_with_final_tests")
# Where each run's outcome of a test is in the report (`after` is the final run's).
OUTCOMES = (
    "base",
    "after",
    "held",
    "base_with_final_tests",
)  # where the store is mounted in the container
TENANT = f"tenant-{secrets.token_hex(4)}"
TRACE = f"tr_{secrets.token_hex(6)}"

# Each probe prints what it obtained ("GOT <probe> <json>") and passes only when that is
# nothing. No secret is written in this file: the probes find whatever there is.
PROBES = r'''
import ctypes, json, os, signal, socket

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_DETACH = 16, 17


def others():
    """Every process outside this run's own session (the runner, PID 1, anything else)."""
    mine = os.getsid(0)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getsid(int(entry)) != mine:
                    found.append(int(entry))
            except OSError:
                found.append(int(entry))
    return found


def report(probe, got):
    print("GOT", probe, json.dumps(got, default=repr))
    assert not got, f"{probe}: {got}"


def test_environ_of_other_processes():
    got = {}
    for pid in others():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                got[pid] = handle.read().decode("latin-1")
        except OSError:
            pass
    report("environ", got)


def test_cmdline_of_other_processes_carries_no_settings():
    got = {}
    for pid in others():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                text = handle.read().decode("latin-1")
        except OSError:
            continue
        print("cmdline", pid, text)
        if "X-Amz-" in text or "/credentials/" in text:
            got[pid] = text
    report("cmdline", got)


def test_ptrace_attach_to_other_processes():
    got = []
    for pid in others():
        if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
            got.append(pid)
            os.waitpid(pid, 0)
            libc.ptrace(PTRACE_DETACH, pid, None, None)
    report("ptrace", got)


def test_memory_of_other_processes():
    got = {}
    for pid in others():
        try:
            with open(f"/proc/{pid}/maps") as maps:
                stack = [line for line in maps if "[stack]" in line]
            with open(f"/proc/{pid}/mem", "rb") as mem:
                start = int(stack[0].split("-")[1].split()[0], 16) - 4096 if stack else 0
                mem.seek(start)
                got[pid] = mem.read(4096).decode("latin-1")
        except (OSError, ValueError, IndexError):
            pass
    report("mem", got)


def test_signal_other_processes():
    got = []
    for pid in others():
        try:
            os.kill(pid, 0)  # the permission check of any signal, delivering none
            got.append(pid)
        except OSError:
            pass
    report("signal", got)


def _readable_files(root):
    got = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            try:
                with open(path, "rb") as handle:
                    got[path] = handle.read(200).decode("latin-1")
            except OSError:
                pass
    return got


def test_inputs_and_other_runs_files():
    """Read the inputs and other runs' trees, list the work directories, plant a test in
    another run's workspace, write into the shared cache (its environments, its pytest)."""
    here = os.path.dirname(os.getcwd())  # this run's side directory (.../run-X/<side>)
    run_dir = os.path.dirname(here)
    work = os.path.dirname(run_dir)
    cache = os.path.join(os.path.dirname(work), "cache")
    stores = [line.split()[4] for line in open("/proc/self/mountinfo")]
    stores = [m for m in stores if m.startswith(("/srv", "/mnt", "/data", "/var"))]
    got = {}
    for root in [run_dir, work, *stores]:
        try:
            got[f"list {root}"] = os.listdir(root)
        except OSError:
            pass
    for root in stores:
        got |= {f"read {k}": v for k, v in _readable_files(root).items()}
    for other in ("base", "final", "held", "base_with_final_tests", "held-harness"):
        path = os.path.join(run_dir, other)
        if path == here:
            continue
        got |= {f"read {k}": v for k, v in _readable_files(path).items()}
        target = os.path.join(path, "workspace", "tests", "test_planted.py")
        try:
            with open(target, "w") as handle:
                handle.write("def test_planted():\n    pass\n")
            got[f"wrote {target}"] = True
        except OSError:
            pass
    for directory, _, _ in os.walk(cache):
        try:
            with open(os.path.join(directory, "planted.pth"), "w") as handle:
                handle.write("import os\n")
            got[f"wrote {directory}"] = True
        except OSError:
            pass
    report("files", got)


def test_network():
    got = {}
    for host, port in (("169.254.170.2", 80), ("169.254.169.254", 80), ("1.1.1.1", 443),
                       ("8.8.8.8", 53), ("127.0.0.1", 80)):
        try:
            socket.create_connection((host, port), timeout=3).close()
            got[f"tcp {host}:{port}"] = True
        except OSError:
            pass
    try:
        got["dns"] = socket.getaddrinfo("example.com", 443)
    except OSError:
        pass
    try:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", ("8.8.8.8", 53))
        got["udp 8.8.8.8:53"] = True
    except OSError:
        pass
    report("network", got)
'''
PROBE_TESTS = {
    name.split("(")[0].removeprefix("def ")
    for name in PROBES.splitlines()
    if name.startswith("def test_")
}


def _repository(root: Path, extra_test: bool) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "hostile"\nversion = "0"\n')
    (root / "tests" / "test_probes.py").write_text(PROBES)
    if extra_test:  # the fix adds a test: the held and overlay runs exist too
        (root / "tests" / "test_added.py").write_text("def test_added():\n    pass\n")
    return root


def _tgz(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def _put(store: Path, key: str, body: bytes) -> None:
    path = store / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    build_app({"stage": "test"}, build_deps=False, outdir=str(outdir)).synth()
    return dict(json.loads((outdir / "prtrace-test.template.json").read_text()))


# The runner with its store swapped for the mounted directory, then its own entry point.
# The grant stands for the presigned one here: the runner takes the snapshots from the
# store, so the variable is taken out of the runner's os.environ before main. The process
# environment (/proc/<pid>/environ of PID 1 and of the runner) still holds it.
SHIM = f"""
import os, runpy
from pathlib import Path
os.environ.pop("PRTRACE_QA_GRANT")
import functions.qa_runner.main as runner
from prtrace.adapters.artifacts import DirectoryArtifactStore
runner.build_artifact_store = lambda bucket: DirectoryArtifactStore(Path({STORE!r}))
runpy.run_module("functions.qa_runner", run_name="__main__", alter_sys=True)
"""


def _owner_of(args: list[str]) -> tuple[int, int]:
    """The uid and gid the container starts as (root without a --user)."""
    user = next((a.split("=", 1)[1] for a in args if a.startswith("--user=")), "0:0")
    uid, _, gid = user.partition(":")
    return int(uid), int(gid or uid)


def test_a_hostile_repository_reaches_no_secret_and_nothing_outside_its_run(
    template: dict[str, Any], scratch: Path
) -> None:
    select_backend("docker")  # an engine and the offline image (or skip/fail as required)
    secret_uri = f"/v2/credentials/{uuid.uuid4()}"
    grant_signature = secrets.token_hex(20)
    grant = json.dumps(
        {"document": f"https://bucket.s3.amazonaws.com/doc?X-Amz-Signature={grant_signature}"}
    )
    other_tenant_secret = f"other-tenant-source-{secrets.token_hex(8)}"
    store = scratch / "store"
    base = _repository(scratch / "base", extra_test=False)
    final = _repository(scratch / "final", extra_test=True)
    env = {
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": secret_uri,
        "AWS_DEFAULT_REGION": "us-east-1",
        "PRTRACE_BUCKET": "prtrace-data",
        "PRTRACE_TENANT": TENANT,
        "PRTRACE_TRACE_ID": TRACE,
        "PRTRACE_QA_GRANT": grant,
        # The private package proxy's URL (a reference in the template); unreachable here.
        "PRTRACE_QA_PACKAGE_INDEX": "https://packages.invalid/simple/",
    }
    for side, directory in (("BASE", base), ("FINAL", final)):
        body = _tgz(directory)
        digest = hashlib.sha256(body).hexdigest()
        key = artifact_key(TENANT, TRACE, digest)
        _put(store, key, body)
        env |= {
            f"PRTRACE_{side}_KEY": key,
            f"PRTRACE_{side}_SHA256": digest,
            f"PRTRACE_{side}_SIZE": str(len(body)),
            f"PRTRACE_{side}_MEDIA_TYPE": "application/gzip",
        }
    other = artifact_key("other", "tr_other", hashlib.sha256(b"x").hexdigest())
    _put(store, other, other_tenant_secret.encode())
    task_storage = scratch / "task-storage"
    task_storage.mkdir()
    os.chmod(task_storage, 0o1777)  # noqa: S103 - the task's /tmp
    layout = image_layout(scratch / "image")
    name = f"prtrace-hostile-{uuid.uuid4().hex[:8]}"
    args = qa_task_docker_args(
        template,
        layout=layout,
        task_storage=task_storage,
        extra_env=env,
        extra_mounts=[f"--mount=type=bind,source={store},target={STORE}"],
        command=["python", "-c", SHIM],
        name=name,
    )
    # The store is the runner's alone: owned by the uid the task starts as, mode 0700.
    uid, gid = _owner_of(args)
    for folder, dirs, files in os.walk(store):
        for entry in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(entry, uid, gid)
    os.chmod(store, 0o700)
    try:
        done = subprocess.run(
            ["docker", "run", *args], capture_output=True, timeout=600, check=False
        )
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output.decode(errors="replace")[-4000:]
    report_path = store / "tenants" / TENANT / "traces" / TRACE / "qa" / "report.json"
    report = json.loads(report_path.read_text())
    runs = {run: report[run] for run in RUNS if report.get(run)}
    assert set(runs) == set(RUNS), report.get("error_detail")
    logs = "".join((store / s["log_key"]).read_text(errors="replace") for s in runs.values())
    print("\n".join(line for line in logs.splitlines() if line.startswith("GOT ")))
    # No secret anywhere the runner wrote or printed (the other tenant's object aside).
    written = b"".join(
        p.read_bytes() for p in store.rglob("*") if p.is_file() and p != store / other
    )
    for secret in (secret_uri, grant_signature, other_tenant_secret, f"={TENANT}"):
        assert secret.encode() not in output + written, f"{secret} leaked"
    # Every probe ran in every run and obtained nothing.
    outcomes = {t["test_id"].split("::")[-1]: t for t in report["tests"]}
    assert set(outcomes) >= PROBE_TESTS, sorted(outcomes)
    obtained = {
        test: {run: outcome[run] for run in OUTCOMES}
        for test, outcome in outcomes.items()
        if test in PROBE_TESTS and any(outcome[run] != "passed" for run in OUTCOMES)
    }
    assert not obtained, obtained
    assert "test_planted" not in outcomes
