"""QA configuration: one pydantic model, read from PRTRACE_QA_* variables by entry points."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prtrace.qa.archive import ArchiveLimits
from prtrace.qa.sandbox import SandboxLimits
from prtrace.settings import ConfigurationError

BackendName = Literal["bwrap", "docker", "container"]


class QASettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: BackendName = "bwrap"
    limits: SandboxLimits = SandboxLimits()
    # Dependency preparation gets its own, longer clock and memory.
    prepare_limits: SandboxLimits = SandboxLimits(wall_timeout_s=900, memory_mb=2048, pids=512)
    per_test_timeout_s: Annotated[int, Field(ge=1)] = 120
    reruns: Annotated[int, Field(ge=0, le=5)] = 0
    install_dependencies: bool = True
    dependency_network: bool = True
    archive_limits: ArchiveLimits = ArchiveLimits()
    work_dir: Path | None = None  # default: a private directory under /var/tmp
    docker_image: str = "prtrace-qa-python:bookworm"
    keep_work_dir: bool = False

    @classmethod
    def from_env(cls, **overrides: object) -> QASettings:
        env = os.environ
        values: dict[str, object] = {}
        if "PRTRACE_SANDBOX_BACKEND" in env:
            values["backend"] = env["PRTRACE_SANDBOX_BACKEND"]
        limits: dict[str, object] = {}
        for name, var in [
            ("wall_timeout_s", "PRTRACE_QA_WALL_TIMEOUT_S"),
            ("memory_mb", "PRTRACE_QA_MEMORY_MB"),
            ("pids", "PRTRACE_QA_PIDS"),
            ("cpus", "PRTRACE_QA_CPUS"),
        ]:
            if var in env:
                limits[name] = env[var]
        if limits:
            values["limits"] = SandboxLimits.model_validate(limits)
        for name, var in [
            ("per_test_timeout_s", "PRTRACE_QA_PER_TEST_TIMEOUT_S"),
            ("reruns", "PRTRACE_QA_RERUNS"),
            ("install_dependencies", "PRTRACE_QA_INSTALL_DEPENDENCIES"),
            ("dependency_network", "PRTRACE_QA_DEPENDENCY_NETWORK"),
            ("work_dir", "PRTRACE_QA_WORK_DIR"),
            ("docker_image", "PRTRACE_QA_DOCKER_IMAGE"),
        ]:
            if var in env:
                values[name] = env[var]
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            names = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            raise ConfigurationError(f"invalid QA configuration: {names}") from None
