"""The docker backend's container options: what each kind of run is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from prtrace.adapters.sandbox import docker_engine
from prtrace.adapters.sandbox.docker_engine import DockerSandbox
from prtrace.qa.sandbox import SandboxRun


def _run(tmp_path: Path, network: bool) -> SandboxRun:
    return SandboxRun(
        argv=["python3", "-m", "pip", "install", "x"],
        workspace=tmp_path / "ws",
        output=tmp_path / "out",
        deps=tmp_path / "deps",
        deps_writable=network,
        network=network,
    )


def test_only_the_dependency_step_trusts_the_hosts_ca_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr(docker_engine, "HOST_CA_BUNDLE", bundle)
    sandbox = DockerSandbox()

    preparation = sandbox.container_options(_run(tmp_path, network=True))
    assert preparation["network_mode"] == "bridge"
    assert preparation["volumes"][str(bundle)] == {"bind": str(bundle), "mode": "ro"}

    test_run = sandbox.container_options(_run(tmp_path, network=False))
    assert test_run["network_mode"] == "none"
    assert str(bundle) not in test_run["volumes"]
    assert test_run["read_only"] is True
    assert test_run["cap_drop"] == ["ALL"]


def test_no_bundle_on_the_host_mounts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker_engine, "HOST_CA_BUNDLE", tmp_path / "absent.crt")
    options = DockerSandbox().container_options(_run(tmp_path, network=True))
    assert set(options["volumes"]) == {str(tmp_path / p) for p in ("ws", "out", "deps")}
