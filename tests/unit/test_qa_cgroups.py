"""Per-run cgroup files for both hierarchies, on a fake cgroup root (v1 is also exercised for
real by tests/sandbox/; v2 is not mounted with controllers on this machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prtrace.adapters.sandbox.cgroups import (
    CgroupUnavailable,
    cgroup_version,
    check_cgroups,
    create_run_cgroup,
)
from prtrace.qa.sandbox import SandboxLimits

LIMITS = SandboxLimits(memory_mb=256, pids=64, cpus=0.5)


def test_v2_run_group_gets_memory_pids_and_cpu_limits(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert cgroup_version(tmp_path) == 2
    group = create_run_cgroup("run-1", LIMITS, root=tmp_path)
    run = tmp_path / "prtrace-qa" / "run-1"
    assert (run / "memory.max").read_text() == str(256 * 1024 * 1024)
    assert (run / "pids.max").read_text() == "64"
    assert (run / "cpu.max").read_text() == "50000 100000"
    assert (tmp_path / "prtrace-qa" / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    group.attach(4242)
    assert (run / "cgroup.procs").read_text() == "4242"
    (run / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.oom_killed()
    (run / "cgroup.procs").write_text("")
    group.kill_all()


def test_v1_run_group_gets_limits_in_each_controller(tmp_path: Path) -> None:
    for controller in ("memory", "pids", "cpu"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "cgroup.procs").write_text("")
    assert cgroup_version(tmp_path) == 1
    group = create_run_cgroup("run-1", LIMITS, root=tmp_path)
    memory = tmp_path / "memory" / "prtrace-qa" / "run-1"
    assert (memory / "memory.limit_in_bytes").read_text() == str(256 * 1024 * 1024)
    assert (tmp_path / "pids" / "prtrace-qa" / "run-1" / "pids.max").read_text() == "64"
    assert (tmp_path / "cpu" / "prtrace-qa" / "run-1" / "cpu.cfs_quota_us").read_text() == "50000"
    (memory / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not group.oom_killed()


def test_no_hierarchy_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CgroupUnavailable, match="no cgroup v2 hierarchy or v1"):
        check_cgroups(tmp_path)
