# ruff: noqa: S108, S603, RUF100 - deliberately hostile code, run only inside the sandbox
"""Runs INSIDE the sandbox (copied into a workspace as tests/test_probe.py; the file name
keeps pytest from collecting it on the host). Each test makes a real attempt to cross a
boundary and records what happened in obs/<name>.json; the host side
(tests/sandbox/test_isolation.py) asserts on the record. The probes themselves only fail on
a bug in the probe, so a missing record means the probe never ran."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CONFIG = json.loads(Path("probe_config.json").read_text())
OBS = Path("obs")
OBS.mkdir(exist_ok=True)


def record(name, value):
    (OBS / f"{name}.json").write_text(json.dumps(value, sort_keys=True))


def attempt(fn):
    """'ok' or the exception's class and errno name."""
    try:
        fn()
    except OSError as error:
        code = errno.errorcode.get(error.errno, str(error.errno)) if error.errno else ""
        return f"{type(error).__name__}:{code}"
    except Exception as error:
        return type(error).__name__
    return "ok"


def connect_tcp(host, port):
    def go():
        with socket.create_connection((host, port), timeout=3):
            pass

    return attempt(go)


def test_network():
    observed = {
        "internet_ip": connect_tcp("1.1.1.1", 443),
        "internet_ip_53": connect_tcp("8.8.8.8", 53),
        "host_loopback": connect_tcp("127.0.0.1", CONFIG["host_port"]),
        "host_ip": connect_tcp(CONFIG["host_ip"], CONFIG["host_ip_port"]),
        "dns": attempt(lambda: socket.getaddrinfo("example.com", 443)),
        "unix_path": attempt(lambda: _unix(CONFIG["unix_path"])),
        "unix_abstract": attempt(lambda: _unix("\0" + CONFIG["abstract_name"])),
        "docker_socket": attempt(lambda: _unix("/var/run/docker.sock")),
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
    }
    record("network", observed)


def _unix(address):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(3)
        client.connect(address)


def _read(path):
    def go():
        p = Path(path)
        if p.is_dir():
            os.listdir(p)
        else:
            p.read_bytes()

    return attempt(go)


def test_host_files():
    observed = {
        path: _read(path)
        for path in [
            "/etc/shadow",
            "/root",
            "/root/.bashrc",
            CONFIG["project_dir"],
            CONFIG["project_dir"] + "/pyproject.toml",
            "/home",
            "/var/cache/prtrace",
        ]
    }
    observed["etc_listing"] = sorted(os.listdir("/etc"))
    observed["proc_pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    record("host_files", observed)


def _write(path):
    def go():
        with open(path, "wb") as handle:
            handle.write(b"x")

    return attempt(go)


def test_writes():
    token = CONFIG["token"]
    observed = {
        path: _write(path)
        for path in [
            f"/etc/{token}",
            f"/usr/{token}",
            f"/{token}",
            f"/var/tmp/{token}",
            f"/opt/prtrace/runner/{token}",
            CONFIG["outside_path"],
            f"/proc/sys/kernel/{token}",
        ]
    }
    observed["tmp"] = _write(f"/tmp/{token}")
    observed["workspace"] = _write(f"written-{token}")
    record("writes", observed)


def test_fork_bomb():
    children = []
    refused = ""
    for _ in range(2000):  # far above the limit the host side sets
        try:
            pid = os.fork()
        except OSError as error:
            refused = errno.errorcode.get(error.errno, str(error.errno))
            break
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    record("fork_bomb", {"forked": len(children), "refused": refused})


HOG = """
import sys
blocks = []
for i in range(64):
    blocks.append(bytearray(32 * 1024 * 1024))  # touched: bytearray zero-fills
    print(i + 1, flush=True)
"""


def test_memory_hog():
    proc = subprocess.run(
        [sys.executable, "-c", HOG], capture_output=True, text=True, timeout=60, check=False
    )
    lines = proc.stdout.split()
    record(
        "memory_hog",
        {
            "returncode": proc.returncode,
            "allocated_mb": int(lines[-1]) * 32 if lines else 0,
            "stderr_tail": proc.stderr[-200:],
        },
    )


SPIN = "import time\nend = time.monotonic() + 3\nwhile time.monotonic() < end: pass\n"


def test_cpu_spin():
    start = time.monotonic()
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(2)]
    for spinner in spinners:
        spinner.wait()
    wall = time.monotonic() - start
    usage = os.times()
    record(
        "cpu_spin",
        {"wall_s": wall, "cpu_s": usage.children_user + usage.children_system},
    )


def _fill(path, total):
    written = 0
    try:
        with open(path, "wb") as handle:
            chunk = b"\0" * (1024 * 1024)
            while written < total:
                handle.write(chunk)
                handle.flush()
                written += len(chunk)
    except OSError as error:
        return written, errno.errorcode.get(error.errno, str(error.errno))
    return written, "ok"


def test_huge_file():
    limit = CONFIG["file_size_mb"] * 1024 * 1024
    workspace_bytes, workspace_error = _fill("huge.bin", 4 * limit)
    os.remove("huge.bin")
    tmp_total = 0
    tmp_error = "ok"
    for index in range(64):  # many files under the per-file cap fill the /tmp tmpfs
        written, tmp_error = _fill(f"/tmp/fill-{index}", limit // 2)
        tmp_total += written
        if tmp_error != "ok":
            break
    record(
        "huge_file",
        {
            "workspace_bytes": workspace_bytes,
            "workspace_error": workspace_error,
            "tmp_bytes": tmp_total,
            "tmp_error": tmp_error,
        },
    )


def test_environment():
    seen = {"environ": dict(os.environ)}
    for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
        for name in ("environ", "cmdline"):
            try:
                seen[f"/proc/{pid}/{name}"] = (
                    Path(f"/proc/{pid}/{name}").read_bytes().decode("utf-8", "replace")
                )
            except OSError as error:
                seen[f"/proc/{pid}/{name}"] = f"unreadable: {error.strerror}"
    record("environment", seen)


def test_kernel_surface():
    """Syscalls an unprivileged host process may make; the seccomp layer refuses them."""
    output = subprocess.check_output([sys.executable, "kernel_surface.py"])
    record("kernel_surface", json.loads(output))
