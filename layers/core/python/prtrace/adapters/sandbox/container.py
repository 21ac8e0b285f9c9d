"""The `container` backend: for the Fargate task, where the container (a fresh microVM with a
read-only root, no egress, the task's CPU/memory limits) is the sandbox. Only used when
selected explicitly.

The runner holds the task's secrets (its environment: the credentials URI, the QA grant), so
tests never share its uid: the task starts as root with only the capabilities this needs
(`REQUIRED_CAPABILITIES`; infra_cdk.fargate_task) and every run drops to `SANDBOX_UID`
after PR_SET_NO_NEW_PRIVS and setgroups([]). A root process's /proc entries (environ, mem)
and ptrace are closed to another uid without CAP_SYS_PTRACE, and so is signalling it. The
runner is also non-dumpable. Started as any other user, the backend refuses to run.

Each run also gets: an empty environment, rlimits (address space = the memory limit here,
there is no per-run cgroup), its own process group, a wall-clock timeout, a sweep of every
process it left behind (this process becomes a child subreaper, so daemons that leave the
group are re-parented to it), and only its own directories within the QA run: the other
runs' directories (the other side's workspace, the held and overlay trees, the staged
harness) are closed to other users while it runs (there is no mount namespace here).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from prtrace.adapters.sandbox.bwrap import SANDBOX_UID
from prtrace.adapters.sandbox.processes import apply_rlimits, run_bounded
from prtrace.qa.errors import BackendUnavailable
from prtrace.qa.sandbox import SandboxPaths, SandboxResult, SandboxRun
from prtrace.qa.shared_dirs import DEFAULT_WORK_DIR

_PR_SET_DUMPABLE: Final = 4
_PR_SET_CHILD_SUBREAPER: Final = 36
_PR_SET_NO_NEW_PRIVS: Final = 38
# What the root runner needs (capability numbers, linux/capability.h): give workspaces to
# the sandbox uid and take prepared environments back (CHOWN), manage the trees that uid
# wrote (DAC_OVERRIDE, FOWNER), kill what a run left behind (KILL), drop to the sandbox
# uid (SETGID, SETUID). The task keeps exactly these (infra_cdk.fargate_task).
REQUIRED_CAPABILITIES: Final = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "KILL": 5, "SETGID": 6, "SETUID": 7,
}  # fmt: skip


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option})")


def _effective_capabilities() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


@contextlib.contextmanager
def _only_this_run_reachable(work_dir: Path, run: SandboxRun) -> Iterator[None]:
    """Close to other users, while the run lasts, every directory of its QA run (the
    child of `work_dir` holding its workspace) that holds none of the run's own paths."""
    own = [p.resolve() for p in (run.workspace, run.output, run.deps, run.runner_site) if p]
    work_dir = work_dir.resolve()
    run_dirs = {
        work_dir / p.relative_to(work_dir).parts[0] for p in own if p.is_relative_to(work_dir)
    }
    closed: list[tuple[Path, int]] = []
    try:
        for run_dir in run_dirs:
            for entry in os.scandir(run_dir):
                path = Path(entry.path)
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                    continue
                if any(p == path or p.is_relative_to(path) for p in own):
                    continue
                os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)
                closed.append((path, stat.S_IMODE(info.st_mode)))
        yield
    finally:
        for path, mode in closed:
            os.chmod(path, mode)


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

    def __init__(self, python: str | None = None, work_dir: Path | None = None) -> None:
        self._python = python or _default_python()  # python: QASettings.python
        self._work_dir = work_dir or DEFAULT_WORK_DIR  # QASettings.work_dir
        self._uid = self._gid = SANDBOX_UID

    @property
    def owner(self) -> tuple[int, int]:
        return (self._uid, self._gid)

    def check_available(self) -> None:
        if not self._python or not Path(self._python).exists():
            raise BackendUnavailable(self.name, f"no Python at {self._python!r}")
        if os.geteuid() != 0:
            raise BackendUnavailable(
                self.name,
                f"must start as root (uid {os.geteuid()} now) so that tests run under their "
                f"own uid ({SANDBOX_UID}), never the runner's: set the task's user to 0",
            )
        missing = [
            name
            for name, bit in REQUIRED_CAPABILITIES.items()
            if not _effective_capabilities() & (1 << bit)
        ]
        if missing:
            raise BackendUnavailable(
                self.name, f"the task must keep the capabilities {', '.join(missing)}"
            )
        try:
            _prctl(_PR_SET_CHILD_SUBREAPER, 1)
            # Our /proc entries (environ!) root's and no ptrace, whatever else holds.
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
        uid, gid = self._uid, self._gid

        def in_child() -> None:
            apply_rlimits(limits, limits.memory_mb, limits.pids)
            # No setuid binary or file capability can give back what the drop takes.
            _prctl(_PR_SET_NO_NEW_PRIVS, 1)
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)  # all three: no way back to root

        with _only_this_run_reachable(self._work_dir, run):
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
