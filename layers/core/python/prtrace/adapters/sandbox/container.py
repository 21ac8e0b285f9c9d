"""The `container` backend: for the Fargate task, where the container (a fresh microVM with a
read-only root, no egress, dropped capabilities and the task's CPU/memory limits) is the
sandbox. Only used when selected explicitly. Each run still gets: an empty environment,
rlimits (address space = the memory limit here, there is no per-run cgroup), its own
process group, a wall-clock timeout, and a sweep of every process it left behind (this
process becomes a child subreaper, so daemons that leave the group are re-parented to it).
When started as root, runs drop to an unprivileged uid.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Final

from prtrace.adapters.sandbox.bwrap import SANDBOX_UID
from prtrace.adapters.sandbox.processes import apply_rlimits, run_bounded
from prtrace.qa.errors import BackendUnavailable
from prtrace.qa.sandbox import SandboxPaths, SandboxResult, SandboxRun

_PR_SET_DUMPABLE: Final = 4
_PR_SET_CHILD_SUBREAPER: Final = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, real uid) of a live process."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        return int(fields["PPid"]), int(fields["Uid"].split()[0])
    except (OSError, KeyError, ValueError):
        return None


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := _stat(int(entry))) is not None:
            parents[int(entry)] = info[0]
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


class ContainerSandbox:
    name = "container"

    def __init__(self, python: str | None = None) -> None:
        self._python = python or _default_python()  # python: QASettings.python
        self._privileged = os.geteuid() == 0
        self._uid = SANDBOX_UID if self._privileged else os.geteuid()
        self._gid = SANDBOX_UID if self._privileged else os.getegid()

    @property
    def owner(self) -> tuple[int, int]:
        return (self._uid, self._gid)

    def check_available(self) -> None:
        if not self._python or not Path(self._python).exists():
            raise BackendUnavailable(self.name, f"no Python at {self._python!r}")
        try:
            _prctl(_PR_SET_CHILD_SUBREAPER, 1)
            # Runs may share our uid (a non-root task): make our /proc entries (environ!)
            # root-owned and refuse ptrace from them.
            _prctl(_PR_SET_DUMPABLE, 0)
        except OSError as error:
            raise BackendUnavailable(self.name, f"prctl failed: {error}") from None

    def paths(
        self, run_workspace: Path, runner_site: Path, deps: Path, output: Path
    ) -> SandboxPaths:
        return SandboxPaths(
            workspace=str(run_workspace),
            runner_site=str(runner_site),
            deps=str(deps),
            output=str(output),
            python=self._python,
        )

    def _sweep(self) -> None:
        """Kill every process the run left behind (re-parented to us as the subreaper)."""
        for _ in range(200):
            leftovers = [
                pid
                for pid in _descendants(os.getpid())
                if (info := _stat(pid)) is not None and info[1] == self._uid
            ]
            if not leftovers:
                return
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            time.sleep(0.01)
            for pid in leftovers:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)  # reap our re-parented orphans

    def run(self, run: SandboxRun) -> SandboxResult:
        self.check_available()
        limits = run.limits
        privileged, uid, gid = self._privileged, self._uid, self._gid

        def in_child() -> None:
            apply_rlimits(limits, limits.memory_mb, limits.pids if privileged else None)
            if privileged:
                os.setgroups([])
                os.setresgid(gid, gid, gid)
                os.setresuid(uid, uid, uid)

        finished = run_bounded(
            run.argv,
            env=dict(run.env),
            cwd=run.workspace,
            limits=limits,
            preexec=in_child,
            kill_everything=self._sweep,
        )
        return SandboxResult(
            exit_code=finished.exit_code,
            timed_out=finished.timed_out,
            oom_killed=False,  # no per-run cgroup: a MemoryError or SIGKILL shows in the log
            duration_ms=finished.duration_ms,
            stdout=finished.stdout,
            stderr=finished.stderr,
            signal=finished.signal,
        )


def _default_python() -> str:
    return shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or ""
