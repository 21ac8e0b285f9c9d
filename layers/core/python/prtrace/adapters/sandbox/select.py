"""Build the configured sandbox backend. An unavailable backend is an error, never a
silent fallback to another backend or to no sandbox."""

from __future__ import annotations

from prtrace.qa.sandbox import Sandbox
from prtrace.qa.settings import QASettings


def build_sandbox(settings: QASettings) -> tuple[Sandbox, tuple[int, int]]:
    """The backend and the host (uid, gid) that must own workspaces for it."""
    if settings.backend == "bwrap":
        from prtrace.adapters.sandbox.bwrap import BwrapSandbox

        bwrap = BwrapSandbox()
        return bwrap, bwrap.owner
    if settings.backend == "docker":
        from prtrace.adapters.sandbox.docker_engine import DockerSandbox

        docker = DockerSandbox(image=settings.docker_image)
        return docker, docker.owner
    from prtrace.adapters.sandbox.container import ContainerSandbox

    container = ContainerSandbox(python=settings.python, work_dir=settings.work_dir)
    return container, container.owner
