"""`make images` (.ci/images.sh): its arguments, and what it requires of this machine
before building (buildx, an arm64 builder on x86, a scanner), against a stand-in `docker`
that answers as buildx's does. No image is built here (no registry is reachable)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "images.sh"


def fake_tools(
    bin_dir: Path, *, buildx: bool = True, platforms: str = "linux/amd64*", trivy: bool = True
) -> None:
    bin_dir.mkdir(exist_ok=True)
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'if [ "$1 $2" = "buildx version" ]; then {"exit 0" if buildx else "exit 1"}; fi\n'
        f'if [ "$1 $2" = "buildx inspect" ]; then echo " Platforms: {platforms}"; exit 0; fi\n'
        "exit 0\n"
    )
    docker.chmod(0o755)
    if trivy:
        (bin_dir / "trivy").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "trivy").chmod(0o755)


def images(bin_dir: Path, *args: str, machine: str = "x86_64") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "PRTRACE_BUILD_MACHINE": machine}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_dry_run_builds_scans_and_pushes_both_images_for_arm64(tmp_path: Path) -> None:
    fake_tools(tmp_path, platforms="linux/amd64*, linux/arm64, linux/arm/v7")
    done = images(
        tmp_path,
        "--dry-run",
        "--tag",
        "t1",
        "--registry",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prtrace",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prtrace"
    build = "docker buildx build --platform linux/arm64 --file"
    assert lines == [
        f"{build} functions/qa_runner/Dockerfile --tag prtrace-qa-runner:t1 --load .",
        "trivy image --exit-code 1 --severity HIGH,CRITICAL --ignore-unfixed prtrace-qa-runner:t1",
        f"docker tag prtrace-qa-runner:t1 {registry}/prtrace-qa-runner:t1",
        f"docker push {registry}/prtrace-qa-runner:t1",
        f"{build} functions/export_job/Dockerfile --tag prtrace-export-job:t1 --load .",
        "trivy image --exit-code 1 --severity HIGH,CRITICAL --ignore-unfixed prtrace-export-job:t1",
        f"docker tag prtrace-export-job:t1 {registry}/prtrace-export-job:t1",
        f"docker push {registry}/prtrace-export-job:t1",
    ]


def test_an_arm64_machine_needs_no_emulation_and_no_registry_means_no_push(tmp_path: Path) -> None:
    fake_tools(tmp_path, platforms="linux/arm64*")
    done = images(tmp_path, "--dry-run", "--no-scan", "--tag", "t2", machine="aarch64")
    assert done.returncode == 0, done.stderr
    assert not any(word in done.stdout for word in ("push", "trivy"))
    assert done.stdout.count("docker buildx build --platform linux/arm64") == 2


@pytest.mark.parametrize(
    ("tools", "args", "message", "fix"),
    [
        ({"buildx": False}, (), "no docker buildx", "docker-buildx"),
        ({"platforms": "linux/amd64*, linux/386"}, (), "cannot build linux/arm64",
         "qemu-user-static"),
        ({"trivy": False, "platforms": "linux/arm64"}, (), "no image scanner",
         "--no-scan"),
        ({}, ("--platform", "windows/arm64"), "--platform must be", ""),
        ({}, ("--tag", "bad tag"), "is not a valid image tag", ""),
        ({}, ("--registry", "https://x"), "is not a registry URI", ""),
        ({}, ("--bogus",), "unknown argument --bogus", ""),
    ],
)  # fmt: skip
def test_what_stops_it_before_any_build_says_so_with_its_fix(
    tmp_path: Path, tools: dict[str, object], args: tuple[str, ...], message: str, fix: str
) -> None:
    fake_tools(tmp_path, **tools)  # type: ignore[arg-type]
    done = images(tmp_path, "--dry-run", *args)
    assert done.returncode != 0
    assert message in done.stderr
    assert fix in done.stderr
    assert "buildx build" not in done.stdout
