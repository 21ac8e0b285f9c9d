"""The QA task's Fargate settings, as `docker run` arguments: what the synthesized task
definition says (user, capabilities, init process, read-only root, the /tmp task storage,
environment, memory and CPU) applied to a local container, so a test runs the runner under
exactly the settings operators deploy.

No registry is reachable here, so the image is the offline `prtrace-qa-python:bookworm-tools`
(Debian's Python 3.11 at /usr/bin/python3) with the QA image's layout bind-mounted
read-only at the Dockerfile's paths (`image_layout`): /opt/prtrace/{app,layer} and a venv at
/opt/venv holding the packages functions/qa_runner/requirements.txt names. The Dockerfile's
ENV values are applied before the task definition's (ECS: the definition wins).

A setting of the container definition this module does not know is an error, never dropped
silently: a hardening added to the task must show up here (or be listed as not applying).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from infra_cdk.pipeline import QA_CONTAINER
from prtrace.qa.runner_site import copy_distributions

ROOT: Final = Path(__file__).resolve().parents[2]
DOCKERFILE: Final = ROOT / "functions" / "qa_runner" / "Dockerfile"
LOCAL_IMAGE: Final = "prtrace-qa-python:bookworm-tools"
# Where the offline image differs from the task image: its interpreter's path.
LOCAL_IMAGE_ENV: Final = {"PRTRACE_QA_PYTHON": "/usr/bin/python3"}
VENV_PYTHON: Final = "3.11"

# Container definition keys: applied below, or not a container setting (image, logs).
_APPLIED: Final = {
    "User", "LinuxParameters", "ReadonlyRootFilesystem", "Privileged", "MountPoints",
    "Environment", "Memory", "EntryPoint", "Name", "Essential",
}  # fmt: skip
_NOT_APPLICABLE: Final = {"Image", "LogConfiguration"}  # the asset image; awslogs
_LINUX_APPLIED: Final = {"Capabilities", "InitProcessEnabled"}


class FargateConfigError(ValueError):
    """The template holds a setting that cannot be reproduced locally."""


def qa_task_definition(template: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task definition's properties and its QA container's definition."""
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        properties = resource["Properties"]
        for container in properties["ContainerDefinitions"]:
            if container["Name"] == QA_CONTAINER:
                return dict(properties), dict(container)
    raise FargateConfigError(f"no task definition in the template has a {QA_CONTAINER!r} container")


def dockerfile_env(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """The final stage's ENV values (`$PATH` expanded against the base image's PATH)."""
    final_stage = dockerfile.read_text().split("\nFROM ")[-1]
    joined = re.sub(r"\\\n\s*", " ", final_stage)
    env: dict[str, str] = {}
    base_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for name, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[name] = value.replace("$PATH", env.get("PATH", base_path))
    return env


def dockerfile_workdir(dockerfile: Path = DOCKERFILE) -> str:
    found = re.findall(r"^WORKDIR (\S+)$", dockerfile.read_text(), re.MULTILINE)
    return str(found[-1]) if found else "/"


def image_layout(root: Path) -> list[str]:
    """Lay out the QA image's own files under `root` (world-readable: the runner may not be
    root) and return the read-only bind mounts that put them where the Dockerfile does."""
    names = [
        line.split("==")[0]
        for line in (ROOT / "functions/qa_runner/requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    venv = root / "venv"
    site = venv / "lib" / f"python{VENV_PYTHON}" / "site-packages"
    copy_distributions([metadata.distribution(name) for name in names], site)
    (venv / "bin").mkdir()
    (venv / "bin" / "python").symlink_to("/usr/bin/python3")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "layers/core/python/prtrace", root / "layer/prtrace", ignore=skip)
    (root / "app/functions").mkdir(parents=True)
    shutil.copyfile(ROOT / "functions/__init__.py", root / "app/functions/__init__.py")
    shutil.copytree(ROOT / "functions/qa_runner", root / "app/functions/qa_runner", ignore=skip)
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)  # noqa: S103 - read by whichever uid the task runs as
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)
    return [
        f"--mount=type=bind,source={root / 'app'},target=/opt/prtrace/app,readonly",
        f"--mount=type=bind,source={root / 'layer'},target=/opt/prtrace/layer,readonly",
        f"--mount=type=bind,source={venv},target=/opt/venv,readonly",
    ]


def _environment(container: Mapping[str, Any], extra_env: Mapping[str, str]) -> dict[str, str]:
    env = dockerfile_env() | LOCAL_IMAGE_ENV
    unresolved: list[str] = []
    for entry in container.get("Environment", []):
        name, value = entry["Name"], entry["Value"]
        if isinstance(value, str):
            env[name] = value
        elif name not in extra_env:
            unresolved.append(name)  # a CloudFormation reference: the caller must give it
    if unresolved:
        raise FargateConfigError(f"give a local value in extra_env for {sorted(unresolved)}")
    return env | dict(extra_env)


def _linux_args(linux: Mapping[str, Any]) -> list[str]:
    unknown = set(linux) - _LINUX_APPLIED
    if unknown:
        raise FargateConfigError(f"LinuxParameters not reproduced locally: {sorted(unknown)}")
    args = ["--init"] if linux.get("InitProcessEnabled") else []
    capabilities = linux.get("Capabilities", {})
    args += [f"--cap-drop={name}" for name in capabilities.get("Drop", [])]
    args += [f"--cap-add={name}" for name in capabilities.get("Add", [])]
    return args


def _task_storage_args(
    properties: Mapping[str, Any], container: Mapping[str, Any], task_storage: Path
) -> list[str]:
    volumes = {volume["Name"]: volume for volume in properties.get("Volumes", [])}
    args: list[str] = []
    for mount in container.get("MountPoints", []):
        volume = volumes[mount["SourceVolume"]]
        if set(volume) != {"Name"}:
            raise FargateConfigError(f"volume {volume} is not task storage")
        # Task storage: a disk directory, not a tmpfs (executables run from it).
        readonly = ",readonly" if mount["ReadOnly"] else ""
        target = mount["ContainerPath"]
        args.append(f"--mount=type=bind,source={task_storage},target={target}{readonly}")
    return args


def qa_task_docker_args(
    template: Mapping[str, Any],
    *,
    layout: Sequence[str],
    task_storage: Path,
    network: str = "none",
    extra_env: Mapping[str, str] | None = None,
    extra_mounts: Sequence[str] = (),
    command: Sequence[str] | None = None,
    name: str | None = None,
) -> list[str]:
    """`docker run` arguments (after `run`) for the QA container under the template's
    settings. `layout`: image_layout's mounts; `task_storage`: the host directory standing
    for the task's ephemeral storage (mode 1777, as /tmp); `extra_env`: what ECS adds (the
    state machine's overrides, the credentials URI) and values for references the template
    leaves to CloudFormation; `command`: instead of the definition's entry point."""
    properties, container = qa_task_definition(template)
    unknown = set(container) - _APPLIED - _NOT_APPLICABLE
    if unknown:
        raise FargateConfigError(f"container settings not reproduced locally: {sorted(unknown)}")
    if container.get("Privileged"):
        raise FargateConfigError("a privileged container is not the QA task")
    args = ["--rm", f"--network={network}"]
    if name:
        args.append(f"--name={name}")
    if "User" in container:
        args.append(f"--user={container['User']}")
    args += _linux_args(container.get("LinuxParameters", {}))
    if container.get("ReadonlyRootFilesystem"):
        args.append("--read-only")
    memory = container.get("Memory") or properties["Memory"]
    args += [f"--memory={memory}m", f"--memory-swap={memory}m"]  # Fargate has no swap
    args.append(f"--cpus={int(properties['Cpu']) / 1024:g}")
    args += _task_storage_args(properties, container, task_storage)
    args += [*layout, *extra_mounts]
    for key, value in sorted(_environment(container, extra_env or {}).items()):
        args += ["--env", f"{key}={value}"]
    entry_point = list(command or container["EntryPoint"])
    args.append(f"--workdir={dockerfile_workdir()}")
    return [*args, f"--entrypoint={entry_point[0]}", LOCAL_IMAGE, *entry_point[1:]]
