"""The `docker` backend: one container per run through the Docker SDK.

--network=none, a non-root user, memory (no extra swap), pids and CPU limits, all
capabilities dropped, no-new-privileges, read-only root with a size-capped tmpfs /tmp,
rlimits via --ulimit. Killing a `docker run` client leaves the container running, so the
timeout removes the container itself (SANDBOX_NOTES.md).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Final

import docker  # type: ignore[import-untyped]
from docker.errors import DockerException, ImageNotFound  # type: ignore[import-untyped]
from docker.types import Ulimit  # type: ignore[import-untyped]
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout

from prtrace.adapters.sandbox.bwrap import DEPS, OUTPUT, RUNNER, SANDBOX_UID, WORKSPACE
from prtrace.adapters.sandbox.processes import BoundedCapture
from prtrace.qa.errors import BackendUnavailable
from prtrace.qa.sandbox import SandboxPaths, SandboxResult, SandboxRun

DEFAULT_IMAGE: Final = "prtrace-qa-python:bookworm-tools"
PYTHON: Final = "/usr/bin/python3"
LABEL: Final = "prtrace.qa.run"
# The host's CA bundle: the dependency step (only it has network) must trust what the host
# trusts, e.g. an intercepting HTTPS proxy's CA. Never mounted into a test run.
HOST_CA_BUNDLE: Final = Path("/etc/ssl/certs/ca-certificates.crt")


class DockerSandbox:
    name = "docker"

    def __init__(self, image: str = DEFAULT_IMAGE, python: str = PYTHON) -> None:
        self._image = image
        self._python = python
        self._client: docker.DockerClient | None = None

    @property
    def owner(self) -> tuple[int, int]:
        if os.geteuid() == 0:
            return (SANDBOX_UID, SANDBOX_UID)
        return (os.geteuid(), os.getegid())

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=30)
                self._client.ping()
            except DockerException as error:
                self._client = None
                raise BackendUnavailable(self.name, f"no Docker engine answers: {error}") from None
        return self._client

    def check_available(self) -> None:
        client = self._docker()
        try:
            client.images.get(self._image)
        except ImageNotFound:
            raise BackendUnavailable(
                self.name, f"image {self._image} is missing (see .ci/sandbox-setup.sh)"
            ) from None

    def paths(
        self, run_workspace: Path, runner_site: Path, deps: Path, output: Path
    ) -> SandboxPaths:
        return SandboxPaths(
            workspace=WORKSPACE, runner_site=RUNNER, deps=DEPS, output=OUTPUT, python=self._python
        )

    def container_options(self, run: SandboxRun) -> dict[str, Any]:
        limits = run.limits
        volumes: dict[str, dict[str, str]] = {
            str(run.workspace): {"bind": WORKSPACE, "mode": "rw"},
            str(run.output): {"bind": OUTPUT, "mode": "rw"},
        }
        if run.runner_site is not None:
            volumes[str(run.runner_site)] = {"bind": RUNNER, "mode": "ro"}
        if run.deps is not None:
            volumes[str(run.deps)] = {"bind": DEPS, "mode": "rw" if run.deps_writable else "ro"}
        if run.network and HOST_CA_BUNDLE.is_file():
            volumes[str(HOST_CA_BUNDLE.resolve())] = {"bind": str(HOST_CA_BUNDLE), "mode": "ro"}
        memory = f"{limits.memory_mb}m"
        uid, gid = self.owner
        cpu_s = int(limits.wall_timeout_s * limits.cpus) + 5
        fsize = limits.file_size_mb * 1024 * 1024
        return {
            "image": self._image,
            "command": run.argv,
            "name": f"prtrace-qa-{uuid.uuid4().hex[:16]}",
            "labels": {LABEL: "1"},
            "user": f"{uid}:{gid}",
            "working_dir": WORKSPACE,
            "environment": run.env,
            "network_mode": "bridge" if run.network else "none",
            "mem_limit": memory,
            "memswap_limit": memory,  # no swap beyond the memory limit
            "pids_limit": limits.pids,
            "nano_cpus": int(limits.cpus * 1e9),
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {"/tmp": f"size={limits.tmp_size_mb}m,mode=1777"},  # noqa: S108
            "volumes": volumes,
            "ulimits": [
                Ulimit(name="fsize", soft=fsize, hard=fsize),
                Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
                Ulimit(name="core", soft=0, hard=0),
                Ulimit(name="cpu", soft=cpu_s, hard=cpu_s),
            ],
            "hostname": "sandbox",
            "detach": True,
        }

    def run(self, run: SandboxRun) -> SandboxResult:
        client = self._docker()
        start = time.monotonic()
        try:
            container = client.containers.create(**self.container_options(run))
        except DockerException as error:
            raise BackendUnavailable(self.name, f"cannot create the container: {error}") from None
        timed_out = False
        exit_code: int | None = None
        stdout = BoundedCapture(run.limits.output_bytes)
        stderr = BoundedCapture(run.limits.output_bytes)
        oom = False
        try:
            container.start()
            try:
                status = container.wait(timeout=run.limits.wall_timeout_s)
                exit_code = int(status.get("StatusCode", -1))
            except (ReadTimeout, RequestsConnectionError):
                timed_out = True
                container.kill()
            for chunk in container.logs(stdout=True, stderr=False, stream=True):
                stdout.feed(chunk)
            for chunk in container.logs(stdout=False, stderr=True, stream=True):
                stderr.feed(chunk)
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        finally:
            container.remove(force=True)  # also kills whatever is still running inside
        duration_ms = int((time.monotonic() - start) * 1000)
        killed = timed_out or (exit_code is not None and exit_code >= 128)
        return SandboxResult(
            exit_code=None if killed else exit_code,
            timed_out=timed_out,
            oom_killed=oom,
            duration_ms=duration_ms,
            stdout=stdout.value(),
            stderr=stderr.value(),
            signal=(exit_code - 128) if exit_code is not None and exit_code >= 128 else None,
        )
