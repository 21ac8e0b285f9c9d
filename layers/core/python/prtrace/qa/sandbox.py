"""The sandbox interface every backend implements (prtrace.adapters.sandbox.*).

A run gets: the workspace (the only writable tree besides a size-capped /tmp), read-only
extras (the pytest runner site, the dependency site), an explicit environment (nothing is
inherited from the caller) and limits. Backends map host paths to where the sandboxed
process sees them (`SandboxPaths`), so the caller builds one command line for any backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field


class SandboxLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    wall_timeout_s: Annotated[float, Field(gt=0)] = 600.0
    memory_mb: Annotated[int, Field(ge=64)] = 2048
    pids: Annotated[int, Field(ge=16)] = 256
    cpus: Annotated[float, Field(gt=0)] = 1.0
    tmp_size_mb: Annotated[int, Field(ge=1)] = 256
    file_size_mb: Annotated[int, Field(ge=1)] = 256
    open_files: Annotated[int, Field(ge=64)] = 1024
    # stdout and stderr are each kept up to this many bytes (head and tail).
    output_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024


@dataclass(frozen=True)
class SandboxPaths:
    """Where the sandboxed process sees each host path."""

    workspace: str
    runner_site: str
    deps: str
    output: str
    python: str


@dataclass(frozen=True)
class SandboxRun:
    argv: list[str]
    workspace: Path  # host directory, writable inside
    output: Path  # host directory for result files (JUnit), writable inside
    runner_site: Path | None = None  # read-only
    deps: Path | None = None  # read-only, or writable when `deps_writable` (preparation)
    deps_writable: bool = False
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False  # only dependency preparation asks for it
    limits: SandboxLimits = field(default_factory=SandboxLimits)


@dataclass(frozen=True)
class SandboxResult:
    exit_code: int | None  # None when killed by a signal or the timeout
    timed_out: bool
    oom_killed: bool
    duration_ms: int
    stdout: bytes
    stderr: bytes
    signal: int | None = None


class Sandbox(Protocol):
    name: str

    def check_available(self) -> None:
        """Raise BackendUnavailable with the reason when this backend cannot run here."""

    def paths(
        self, run_workspace: Path, runner_site: Path, deps: Path, output: Path
    ) -> SandboxPaths:
        """Where a run with these host paths sees them."""

    def run(self, run: SandboxRun) -> SandboxResult:
        """Run to completion or to the wall-clock timeout; on timeout everything the run
        started is dead when this returns."""
