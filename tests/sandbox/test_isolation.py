"""Each isolation property, proven by real attempts from inside a test suite that runs in
the sandbox (probes/isolation_probes.py), on every available backend.

Every boundary test has a positive control, so it can fail: the host listeners accept the
host's own connection, the workspace and /tmp are writable from inside, the probe read
/proc/1/environ, the spinners and the hog actually ran."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from prtrace.qa.sandbox import SandboxLimits
from tests.sandbox.conftest import Backend, make_scratch, select_backend
from tests.sandbox.helpers import PROBES, SuiteRun, probe_files, remove, run_suite

PROJECT_DIR = Path(__file__).resolve().parents[2]
LIMITS = SandboxLimits(
    wall_timeout_s=120, memory_mb=256, pids=64, cpus=0.5, tmp_size_mb=16, file_size_mb=8
)


class Listener:
    """A host socket that counts connections; proven reachable from the host first."""

    def __init__(self, family: int, address: object) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)  # type: ignore[arg-type]
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def prove_reachable(self, family: int, address: object) -> None:
        with socket.socket(family, socket.SOCK_STREAM) as client:
            client.connect(address)  # type: ignore[arg-type]
        deadline = time.monotonic() + 2
        while self.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.accepted == 1
        self.accepted = 0

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def _host_ip() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            address: str = probe.getsockname()[0]
            return address
        except OSError:
            return "127.0.0.1"


@pytest.fixture(scope="module")
def probed(backend: Backend) -> Iterator[tuple[SuiteRun, dict[str, object], list[Listener]]]:
    root = make_scratch(f"isolation-{backend.name}")
    token = secrets.token_hex(8)
    unix_path = root / f"host-{token}.sock"
    abstract = f"prtrace-probe-{token}"
    tcp = Listener(socket.AF_INET, ("127.0.0.1", 0))
    host_ip = _host_ip()
    tcp_ip = Listener(socket.AF_INET, (host_ip, 0))
    unix = Listener(socket.AF_UNIX, str(unix_path))
    os.chmod(unix_path, 0o777)  # noqa: S103 - permissions must not be what stops the probe
    abstract_listener = Listener(socket.AF_UNIX, "\0" + abstract)
    listeners = [tcp, tcp_ip, unix, abstract_listener]
    tcp.prove_reachable(socket.AF_INET, tcp.sock.getsockname())
    tcp_ip.prove_reachable(socket.AF_INET, tcp_ip.sock.getsockname())
    unix.prove_reachable(socket.AF_UNIX, str(unix_path))
    abstract_listener.prove_reachable(socket.AF_UNIX, "\0" + abstract)
    config: dict[str, object] = {
        "token": token,
        "host_port": tcp.sock.getsockname()[1],
        "host_ip": host_ip,
        "host_ip_port": tcp_ip.sock.getsockname()[1],
        "unix_path": str(unix_path),
        "abstract_name": abstract,
        "project_dir": str(PROJECT_DIR),
        "outside_path": str(root / f"outside-{token}"),
        "file_size_mb": LIMITS.file_size_mb,
        "secret": "",  # the secret is never given to the probe; it has to find it
    }
    secret = f"prtrace-secret-{secrets.token_hex(12)}"
    os.environ["PRTRACE_PROBE_SECRET"] = secret  # in the parent's environment during the run
    try:
        run = run_suite(backend, root, probe_files("isolation_probes.py", config), LIMITS)
    finally:
        del os.environ["PRTRACE_PROBE_SECRET"]
    config["secret"] = secret
    yield run, config, listeners
    for listener in listeners:
        listener.close()
    remove(root)


def test_probe_suite_ran_completely(
    probed: tuple[SuiteRun, dict[str, object], list[Listener]],
) -> None:
    run, _, _ = probed
    assert not run.result.timed_out, run.log()
    assert run.junit is not None, run.log()
    assert run.junit.count("passed") == 9, run.junit.outcomes


def test_no_network_at_all(probed: tuple[SuiteRun, dict[str, object], list[Listener]]) -> None:
    run, _, listeners = probed
    seen = run.observation("network")
    for attempt in (
        "internet_ip",
        "internet_ip_53",
        "host_loopback",
        "host_ip",
        "dns",
        "unix_path",
        "unix_abstract",
        "docker_socket",
    ):
        assert seen[attempt] != "ok", (attempt, seen)
    assert seen["interfaces"] == ["lo"]  # a private, empty network namespace
    assert str(seen["dns"]).startswith("gaierror"), seen
    assert [listener.accepted for listener in listeners] == [0, 0, 0, 0]


def test_host_files_are_invisible(
    backend: Backend, probed: tuple[SuiteRun, dict[str, object], list[Listener]]
) -> None:
    run, config, _ = probed
    seen = run.observation("host_files")
    project = str(config["project_dir"])
    for path in [
        "/etc/shadow",
        "/root",
        "/root/.bashrc",
        project,
        project + "/pyproject.toml",
        "/var/cache/prtrace",
    ]:
        assert str(seen[path]).split(":")[0] in ("FileNotFoundError", "PermissionError"), (
            path,
            seen[path],
        )
    pids = seen["proc_pids"]
    assert isinstance(pids, list)
    assert len(pids) <= 6, pids  # its own pid namespace: only the run's processes
    assert max(pids) < 100, pids
    if backend.name == "bwrap":  # a synthetic /etc, not the host's
        assert seen["etc_listing"] == [
            "group",
            "hosts",
            "ld.so.cache",
            "localtime",  # UTC, as in the images
            "nsswitch.conf",
            "passwd",
            "resolv.conf",
            "ssl",
            "timezone",
        ]


def test_only_workspace_and_tmp_are_writable(
    probed: tuple[SuiteRun, dict[str, object], list[Listener]],
) -> None:
    run, config, _ = probed
    seen = run.observation("writes")
    token = str(config["token"])
    assert seen.pop("tmp") == "ok"
    assert seen.pop("workspace") == "ok"
    assert (run.workspace / f"written-{token}").read_bytes() == b"x"
    for path, outcome in seen.items():
        assert outcome != "ok", path
    assert not Path(str(config["outside_path"])).exists()
    assert not Path(f"/var/tmp/{token}").exists()  # noqa: S108
    assert not Path(f"/{token}").exists()


def test_fork_bomb_stops_at_the_pids_limit(
    probed: tuple[SuiteRun, dict[str, object], list[Listener]],
) -> None:
    seen = probed[0].observation("fork_bomb")
    assert seen["refused"] == "EAGAIN", seen
    assert 5 < int(str(seen["forked"])) < LIMITS.pids, seen


def test_memory_hog_is_killed_at_the_limit(
    probed: tuple[SuiteRun, dict[str, object], list[Listener]],
) -> None:
    seen = probed[0].observation("memory_hog")
    assert seen["returncode"] == -9, seen  # SIGKILL from the OOM killer
    assert 0 < int(str(seen["allocated_mb"])) <= LIMITS.memory_mb, seen


def test_cpu_is_throttled_to_the_quota(
    probed: tuple[SuiteRun, dict[str, object], list[Listener]],
) -> None:
    seen = probed[0].observation("cpu_spin")
    wall, cpu = float(str(seen["wall_s"])), float(str(seen["cpu_s"]))
    # Two spinners for 3 s would burn ~6 CPU-s on two free cores; the quota is 0.5 CPU.
    assert cpu > 0.5, seen
    assert cpu <= LIMITS.cpus * wall * 1.3 + 0.3, seen


def test_file_size_and_tmp_are_capped(
    probed: tuple[SuiteRun, dict[str, object], list[Listener]],
) -> None:
    seen = probed[0].observation("huge_file")
    cap = LIMITS.file_size_mb * 1024 * 1024
    assert seen["workspace_error"] == "EFBIG", seen
    assert seen["workspace_bytes"] == cap, seen
    assert seen["tmp_error"] == "ENOSPC", seen
    assert int(str(seen["tmp_bytes"])) <= LIMITS.tmp_size_mb * 1024 * 1024, seen


def test_no_secret_reaches_the_sandbox(
    backend: Backend, probed: tuple[SuiteRun, dict[str, object], list[Listener]]
) -> None:
    run, config, _ = probed
    seen = run.observation("environment")
    secret = str(config["secret"])
    everything = repr(seen)
    assert secret not in everything
    assert "AWS_SECRET_ACCESS_KEY" not in everything  # set by tests/conftest.py on the host
    # The probe did read pid 1's environment (bwrap's own init, or the run itself):
    assert not str(seen["/proc/1/environ"]).startswith("unreadable"), seen["/proc/1/environ"]
    if backend.name == "bwrap":  # bwrap's own pid 1 was started with an empty environment
        assert seen["/proc/1/environ"] == ""
        assert str(seen["/proc/1/cmdline"]).startswith("/usr/bin/bwrap\x00")
    environ = seen["environ"]
    assert isinstance(environ, dict)
    assert set(environ) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONNOUSERSITE",
        "PYTHONHASHSEED",
        "PWD",
        "LC_CTYPE",
        "HOSTNAME",
        "PYTEST_CURRENT_TEST",
        "PYTEST_VERSION",
    }, sorted(environ)


def _processes_with(token: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry))
    return found


def _timeout_kills_daemons(runner: Backend) -> None:
    root = make_scratch(f"daemon-{runner.name}")
    token = secrets.token_hex(8)
    limits = LIMITS.model_copy(update={"wall_timeout_s": 4.0})
    try:
        start = time.monotonic()
        run = run_suite(runner, root, probe_files("daemon_probe.py", {"token": token}), limits)
        elapsed = time.monotonic() - start
        assert run.result.timed_out, run.log()
        assert elapsed < 15
        assert (run.workspace / "daemon-started").exists(), run.log()  # it did start
        heartbeat = run.workspace / "heartbeat"
        assert heartbeat.stat().st_size > 0
        size = heartbeat.stat().st_size
        time.sleep(0.5)
        assert heartbeat.stat().st_size == size, "the daemon is still writing"
        assert _processes_with(token) == []
    finally:
        for pid in _processes_with(token):  # never leave it running, even when failing
            os.kill(pid, 9)
        remove(root)


def test_timeout_kills_daemons_left_behind(backend: Backend) -> None:
    _timeout_kills_daemons(backend)


def test_container_backend_timeout_kills_daemons_left_behind() -> None:
    """The Fargate backend has no pid namespace of its own: the subreaper sweep must work."""
    _timeout_kills_daemons(select_backend("container"))


def test_seccomp_refuses_kernel_surface_the_host_allows(
    backend: Backend, probed: tuple[SuiteRun, dict[str, object], list[Listener]]
) -> None:
    seen = probed[0].observation("kernel_surface")
    if backend.name == "docker":  # Docker's own default seccomp profile
        assert seen["keyctl"] == "EPERM", seen
        return
    assert seen == {"keyctl": "EPERM", "io_uring_setup": "EPERM", "perf_event_open": "EPERM"}
    # Control: the same calls as the same unprivileged uid, outside the sandbox.
    control_dir = make_scratch("seccomp-control")  # readable by the uid wherever we live
    shutil.copyfile(PROBES / "kernel_surface.py", control_dir / "kernel_surface.py")
    (control_dir / "kernel_surface.py").chmod(0o644)
    outside = subprocess.run(
        ["/usr/bin/python3", "kernel_surface.py"],
        cwd=control_dir,
        user=65534,
        group=65534,
        extra_groups=[],
        env={},
        capture_output=True,
        text=True,
        check=True,
    )
    remove(control_dir)
    control = json.loads(outside.stdout)
    assert control["keyctl"] == "ok"
    assert control["io_uring_setup"] == "ok"
