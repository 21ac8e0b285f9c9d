"""Per-run cgroups (v1 controllers as on this machine, or the v2 unified hierarchy): memory,
pids and CPU limits, OOM detection, and a sweep that kills every process of the run."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Final, Protocol

from prtrace.qa.sandbox import SandboxLimits

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
_GROUP: Final = "prtrace-qa"
_PERIOD_US: Final = 100_000


class CgroupUnavailable(Exception):
    pass


class RunCgroup(Protocol):
    def attach(self, pid: int) -> None: ...
    def kill_all(self) -> None: ...
    def oom_killed(self) -> bool: ...
    def remove(self) -> None: ...


def _write(path: Path, value: str) -> None:
    with path.open("w") as handle:
        handle.write(value)


def _pids_in(procs_file: Path) -> list[int]:
    try:
        return [int(line) for line in procs_file.read_text().split()]
    except FileNotFoundError:
        return []


def _sweep(procs_file: Path) -> None:
    """SIGKILL until empty: a fork racing the sweep is caught on the next pass."""
    for _ in range(200):
        pids = _pids_in(procs_file)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    raise RuntimeError(f"processes survive in {procs_file.parent}")


class CgroupV1:
    CONTROLLERS: Final = ("memory", "pids", "cpu")

    def __init__(self, root: Path, run_id: str, limits: SandboxLimits) -> None:
        self.dirs = {c: root / c / _GROUP / run_id for c in self.CONTROLLERS}
        for directory in self.dirs.values():
            directory.mkdir(parents=True, exist_ok=False)
        memory = self.dirs["memory"]
        limit = str(limits.memory_mb * 1024 * 1024)
        _write(memory / "memory.limit_in_bytes", limit)
        if (memory / "memory.memsw.limit_in_bytes").exists():  # no swap beyond the limit
            _write(memory / "memory.memsw.limit_in_bytes", limit)
        _write(self.dirs["pids"] / "pids.max", str(limits.pids))
        _write(self.dirs["cpu"] / "cpu.cfs_period_us", str(_PERIOD_US))
        _write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(int(limits.cpus * _PERIOD_US)))

    def attach(self, pid: int) -> None:
        for directory in self.dirs.values():
            _write(directory / "cgroup.procs", str(pid))

    def kill_all(self) -> None:
        _sweep(self.dirs["pids"] / "cgroup.procs")

    def oom_killed(self) -> bool:
        control = (self.dirs["memory"] / "memory.oom_control").read_text()
        for line in control.splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value) > 0
        return int((self.dirs["memory"] / "memory.failcnt").read_text()) > 0

    def remove(self) -> None:
        for directory in self.dirs.values():
            for _ in range(50):  # rmdir fails while the kernel still tears tasks down
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


class CgroupV2:
    def __init__(self, root: Path, run_id: str, limits: SandboxLimits) -> None:
        parent = root / _GROUP
        parent.mkdir(exist_ok=True)
        for level in (root, parent):  # delegate the controllers down to the run's group
            _write(level / "cgroup.subtree_control", "+memory +pids +cpu")
        self.dir = parent / run_id
        self.dir.mkdir()
        _write(self.dir / "memory.max", str(limits.memory_mb * 1024 * 1024))
        if (self.dir / "memory.swap.max").exists():
            _write(self.dir / "memory.swap.max", "0")
        _write(self.dir / "pids.max", str(limits.pids))
        _write(self.dir / "cpu.max", f"{int(limits.cpus * _PERIOD_US)} {_PERIOD_US}")

    def attach(self, pid: int) -> None:
        _write(self.dir / "cgroup.procs", str(pid))

    def kill_all(self) -> None:
        if (self.dir / "cgroup.kill").exists():
            _write(self.dir / "cgroup.kill", "1")
        _sweep(self.dir / "cgroup.procs")

    def oom_killed(self) -> bool:
        for line in (self.dir / "memory.events").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value) > 0
        return False

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.dir.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)


def cgroup_version(root: Path = CGROUP_ROOT) -> int | None:
    if (root / "cgroup.controllers").exists():
        return 2
    if all((root / c / "cgroup.procs").exists() for c in CgroupV1.CONTROLLERS):
        return 1
    return None


def check_cgroups(root: Path = CGROUP_ROOT) -> None:
    version = cgroup_version(root)
    if version is None:
        raise CgroupUnavailable(f"no cgroup v2 hierarchy or v1 memory/pids/cpu under {root}")
    probe = root / "pids" if version == 1 else root
    if not os.access(probe, os.W_OK):
        raise CgroupUnavailable(f"{probe} is not writable (run as root for per-run limits)")


def create_run_cgroup(run_id: str, limits: SandboxLimits, root: Path = CGROUP_ROOT) -> RunCgroup:
    version = cgroup_version(root)
    try:
        if version == 2:
            return CgroupV2(root, run_id, limits)
        if version == 1:
            return CgroupV1(root, run_id, limits)
    except OSError as error:
        raise CgroupUnavailable(f"cannot create the run's cgroup: {error}") from error
    raise CgroupUnavailable(f"no usable cgroup hierarchy under {root}")
