"""A private PyPI proxy, emulated: CodeArtifact's role on AWS, for the QA task's Fargate
configuration run locally (tests/sandbox/fargate_config.py).

The QA container joins an internal docker network (`docker network create --internal`: no
route out) whose only other member is this proxy; the proxy alone is also on the default
bridge, so it, and only it, reaches PyPI. The proxy is proxpi (a caching PyPI proxy from
PyPI, pinned below), installed once into a cached directory with pip and run from the
offline image with that directory mounted read-only; it keeps the files it fetched in a
cache directory and serves them from there (`PROXPI_DOWNLOAD_TIMEOUT` is long, so it never
redirects a client to PyPI, which the client could not reach).

Nothing here talks to a container's address from the host: readiness is checked from
inside the proxy's own network namespace (`docker exec`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.sandbox.fargate_config import LOCAL_IMAGE, ROOT

# proxpi and what it imports, each pinned (wheels only, for the image's Python 3.11).
PROXPI: Final = (
    "proxpi==1.3.1",
    "flask==3.1.3",
    "werkzeug==3.1.9",
    "jinja2==3.1.6",
    "markupsafe==3.0.4",
    "itsdangerous==2.2.0",
    "click==8.5.1",
    "blinker==1.9.0",
    "lxml==6.2.1",
    "requests==2.34.2",
    "urllib3==2.8.0",
    "idna==3.21",
    "charset-normalizer==3.5.3",
    "certifi==2026.10.19.post1",
)
SETUP_CACHE: Final = Path(os.environ.get("PRTRACE_QA_SETUP_CACHE", "/var/cache/prtrace/setup"))
ALIAS: Final = "pypi-proxy"
PORT: Final = 5000
INDEX_URL: Final = f"http://{ALIAS}:{PORT}/index/"
HOST_CA_BUNDLE: Final = Path("/etc/ssl/certs/ca-certificates.crt")


class ProxyUnavailable(RuntimeError):
    pass


def _docker(*args: str, timeout: float = 60, check: bool = True) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise ProxyUnavailable(f"docker {' '.join(args[:3])}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _pip_python() -> str:
    """An interpreter with pip (the project's venv is uv's and has none): `make setup`'s
    tool venv, else the machine's python3."""
    for candidate in (ROOT / ".tools" / "bin" / "python", shutil.which("python3")):
        if (
            candidate
            and subprocess.run(
                [str(candidate), "-m", "pip", "--version"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return str(candidate)
    raise ProxyUnavailable("no interpreter with pip to install the proxy with")


def install_proxpi(cache: Path = SETUP_CACHE) -> Path:
    """proxpi's pinned packages in a directory of their own (installed once, then reused)."""
    target = cache / ("proxpi-" + PROXPI[0].split("==")[1])
    if (target / "proxpi" / "server.py").is_file():
        return target
    staging = cache / f".proxpi-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    done = subprocess.run(
        [
            _pip_python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--target", str(staging), *PROXPI,
        ],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise ProxyUnavailable(f"cannot install proxpi: {done.stderr.strip()[-2000:]}")
    for directory, _, files in os.walk(staging):
        os.chmod(directory, 0o755)  # noqa: S103 - read by the proxy container's user
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    try:
        staging.rename(target)
    except OSError:  # installed concurrently: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass(frozen=True)
class PackageProxy:
    network: str  # the internal network the QA container joins
    container: str
    cache_dir: Path  # the proxy's file cache, on the host
    index_url: str = INDEX_URL

    def cached_files(self) -> list[str]:
        return sorted(p.name for p in self.cache_dir.rglob("*") if p.is_file())

    def cut_off_from_pypi(self) -> None:
        """Take the proxy off the bridge: from now on it can only serve what it cached."""
        _docker("network", "disconnect", "bridge", self.container)


def _wait_ready(container: str, timeout_s: float = 60) -> None:
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/', timeout=2)"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["docker", "exec", container, "python3", "-c", probe],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return
        time.sleep(0.5)
    logs = _docker("logs", "--tail", "30", container, check=False)
    raise ProxyUnavailable(f"the proxy did not answer within {timeout_s:.0f} s: {logs}")


@contextmanager
def package_proxy(cache_dir: Path) -> Iterator[PackageProxy]:
    """An internal network and the proxy on it (and on the bridge); both removed after."""
    site = install_proxpi()
    cache_dir.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex[:8]
    network, container = f"prtrace-qa-internal-{suffix}", f"prtrace-pypi-proxy-{suffix}"
    _docker("network", "create", "--internal", network)
    try:
        mounts = [
            f"--mount=type=bind,source={site},target=/opt/proxpi,readonly",
            f"--mount=type=bind,source={cache_dir},target=/var/cache/proxpi",
        ]
        env = {
            "PYTHONPATH": "/opt/proxpi",
            "PROXPI_CACHE_DIR": "/var/cache/proxpi",
            "PROXPI_DOWNLOAD_TIMEOUT": "600",  # wait for a download, never redirect to PyPI
            "PROXPI_INDEX_TTL": "3600",
        }
        if HOST_CA_BUNDLE.is_file():  # the host's trust (an intercepting proxy's CA, say)
            mounts.append(
                f"--mount=type=bind,source={HOST_CA_BUNDLE.resolve()},"
                "target=/etc/ssl/certs/host-ca.crt,readonly"
            )
            env["REQUESTS_CA_BUNDLE"] = "/etc/ssl/certs/host-ca.crt"
        _docker(
            "run", "--detach", f"--name={container}", "--network=bridge",
            *mounts, *(f"--env={k}={v}" for k, v in env.items()),
            "--entrypoint=python3", LOCAL_IMAGE,
            "-m", "flask", "--app", "proxpi.server", "run",
            "--host", "0.0.0.0", "--port", str(PORT), "--with-threads",  # noqa: S104
        )  # fmt: skip
        try:
            _docker("network", "connect", f"--alias={ALIAS}", network, container)
            _wait_ready(container)
            yield PackageProxy(network=network, container=container, cache_dir=cache_dir)
        finally:
            _docker("rm", "--force", container, check=False)
    finally:
        _docker("network", "rm", network, check=False)
