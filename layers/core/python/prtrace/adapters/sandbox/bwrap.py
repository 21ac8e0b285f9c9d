"""The `bwrap` backend: bubblewrap in fresh namespaces, as an unprivileged host uid, in a
per-run cgroup, with rlimits as a second layer.

Facts this relies on (SANDBOX_NOTES.md, re-checked by tests/sandbox/):
- bwrap started by root with `--uid 65534` would still be host uid 0, so root first drops to
  the sandbox uid with setpriv, then starts bwrap (unprivileged user namespace).
- bwrap's own pid 1 keeps the environment bwrap was started with (/proc/1/environ), so
  setpriv and bwrap are started with an EMPTY environment; the run's variables are given
  with --setenv after --clearenv.
- `--die-with-parent` + a pid namespace: killing bwrap kills everything inside, daemons
  included; the cgroup sweep afterwards is the backstop.
- A seccomp filter (seccomp.py) refuses syscalls tests have no use for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from functools import cache
from pathlib import Path
from typing import Final

from prtrace.adapters.sandbox.cgroups import (
    CgroupUnavailable,
    check_cgroups,
    create_run_cgroup,
)
from prtrace.adapters.sandbox.processes import apply_rlimits, run_bounded
from prtrace.adapters.sandbox.seccomp import filter_program
from prtrace.qa.errors import BackendUnavailable
from prtrace.qa.runner_site import cache_root
from prtrace.qa.sandbox import SandboxPaths, SandboxResult, SandboxRun
from prtrace.qa.shared_dirs import shared_dir

SANDBOX_UID: Final = 65534  # nobody: owns no file on the host
WORKSPACE: Final = "/workspace"
RUNNER: Final = "/opt/prtrace/runner"
DEPS: Final = "/opt/prtrace/deps"
OUTPUT: Final = "/opt/prtrace/out"
PYTHON: Final = "/usr/bin/python3"

_ETC_FILES: Final = {
    "passwd": f"root:x:0:0::/:/usr/sbin/nologin\nsandbox:x:{SANDBOX_UID}:{SANDBOX_UID}::"
    f"{WORKSPACE}:/usr/sbin/nologin\n",
    "group": f"root:x:0:\nsandbox:x:{SANDBOX_UID}:\n",
    "hosts": "127.0.0.1 localhost\n::1 localhost\n",
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    "resolv.conf": "",  # replaced by the host's for dependency preparation only
    "timezone": "Etc/UTC\n",
}
# UTC, as in the docker and Fargate images: tests that read the local zone (parametrised
# over `localtime`, say) see the same on every backend.
_LOCALTIME: Final = "/usr/share/zoneinfo/Etc/UTC"


def _bwrap_binary() -> str | None:
    return shutil.which("bwrap", path="/usr/bin:/usr/local/bin:/bin")


@cache
def _synthetic_etc(base: Path) -> Path:
    """A minimal /etc: no host secrets, only what libc and Python look up."""
    etc = base / "etc-v2"
    if not etc.is_dir():
        staging = shared_dir(base) / f".etc-{uuid.uuid4().hex}"
        staging.mkdir()
        for name, text in _ETC_FILES.items():
            (staging / name).write_text(text)
        (staging / "ssl").mkdir()  # mount point for the host's CA certificates (preparation)
        if Path("/etc/ld.so.cache").exists():
            shutil.copyfile("/etc/ld.so.cache", staging / "ld.so.cache")
        for path in [staging, *staging.iterdir()]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.symlink(_LOCALTIME, staging / "localtime")  # made last: chmod would follow it
        try:
            staging.rename(etc)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return etc


class BwrapSandbox:
    name = "bwrap"

    def __init__(self, python: str = PYTHON, uid: int = SANDBOX_UID) -> None:
        self._python = python
        self._uid = uid
        self._privileged = os.geteuid() == 0

    @property
    def owner(self) -> tuple[int, int]:
        """Who must own the workspace so the sandbox can write it."""
        if self._privileged:
            return (self._uid, self._uid)
        return (os.geteuid(), os.getegid())

    def check_available(self) -> None:
        binary = _bwrap_binary()
        if binary is None:
            raise BackendUnavailable(
                self.name, "bwrap is not installed (apt-get install bubblewrap)"
            )
        if self._privileged and shutil.which("setpriv") is None:
            raise BackendUnavailable(self.name, "setpriv (util-linux) is missing")
        if not Path(self._python).exists():
            raise BackendUnavailable(self.name, f"no Python at {self._python} for the sandbox")
        try:
            check_cgroups()
        except CgroupUnavailable as error:
            raise BackendUnavailable(self.name, str(error)) from None
        probe = subprocess.run(  # noqa: S603 - fixed argv
            [
                *self._drop_privileges(),
                binary,
                "--unshare-all",
                "--ro-bind",
                "/usr",
                "/usr",
                "--symlink",
                "usr/bin",
                "/bin",
                "--symlink",
                "usr/lib",
                "/lib",
                "--symlink",
                "usr/lib64",
                "/lib64",
                "/usr/bin/true",
            ],
            env={},
            capture_output=True,
            timeout=30,
            check=False,
        )
        if probe.returncode != 0:
            why = probe.stderr.decode(errors="replace").strip() or f"exit {probe.returncode}"
            raise BackendUnavailable(self.name, f"bwrap cannot create namespaces here: {why}")

    def paths(
        self, run_workspace: Path, runner_site: Path, deps: Path, output: Path
    ) -> SandboxPaths:
        return SandboxPaths(
            workspace=WORKSPACE, runner_site=RUNNER, deps=DEPS, output=OUTPUT, python=self._python
        )

    def _drop_privileges(self) -> list[str]:
        if not self._privileged:
            return []  # already unprivileged: bwrap's user namespace maps us to the sandbox uid
        return [
            "setpriv",
            f"--reuid={self._uid}",
            f"--regid={self._uid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
        ]

    def command(self, run: SandboxRun, seccomp_fd: int | None = None) -> list[str]:
        binary = _bwrap_binary()
        assert binary is not None
        etc = _synthetic_etc(cache_root())
        # fmt: off
        argv = [
            *self._drop_privileges(), binary,
            "--unshare-all", *(["--share-net"] if run.network else []),
            "--unshare-user", "--disable-userns",
            "--die-with-parent", "--new-session",
            "--cap-drop", "ALL",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/sbin", "/sbin",
            "--ro-bind", str(etc), "/etc",
        ]
        if run.network:  # dependency preparation: name resolution and CA certificates
            argv += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
            argv += ["--ro-bind-try", "/etc/ssl", "/etc/ssl"]
        argv += [
            "--proc", "/proc",
            "--dev", "/dev",
            "--size", str(run.limits.tmp_size_mb * 1024 * 1024),
            "--tmpfs", "/tmp",  # noqa: S108 - the sandbox's own tmpfs
            # Binds after the /tmp tmpfs, or it would hide them.
            "--bind", str(run.workspace), WORKSPACE,
            "--bind", str(run.output), OUTPUT,
        ]
        # fmt: on
        if run.runner_site is not None:
            argv += ["--ro-bind", str(run.runner_site), RUNNER]
        if run.deps is not None:
            argv += ["--bind" if run.deps_writable else "--ro-bind", str(run.deps), DEPS]
        if seccomp_fd is not None:
            argv += ["--seccomp", str(seccomp_fd)]
        argv += ["--chdir", WORKSPACE, "--remount-ro", "/", "--clearenv"]
        for key, value in sorted(run.env.items()):
            argv += ["--setenv", key, value]
        return [*argv, "--", *run.argv]

    def run(self, run: SandboxRun) -> SandboxResult:
        try:
            cgroup = create_run_cgroup(f"run-{uuid.uuid4().hex}", run.limits)
        except CgroupUnavailable as error:
            raise BackendUnavailable(self.name, str(error)) from None
        nproc = run.limits.pids if self._privileged else None
        # The address-space cap is generous: the cgroup is the memory limit; this only
        # catches a single absurd allocation.
        address_space = max(run.limits.memory_mb * 4, run.limits.memory_mb + 2048)

        def in_child() -> None:
            cgroup.attach(os.getpid())
            apply_rlimits(run.limits, address_space, nproc)

        program = filter_program()
        seccomp_fd = None
        if program is not None:
            seccomp_fd = os.memfd_create("prtrace-seccomp")
            os.write(seccomp_fd, program)
            os.lseek(seccomp_fd, 0, os.SEEK_SET)
        try:
            finished = run_bounded(
                self.command(run, seccomp_fd),
                env={},  # nothing of ours reaches setpriv, bwrap or its pid 1
                cwd=run.workspace,
                limits=run.limits,
                preexec=in_child,
                kill_everything=cgroup.kill_all,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
            )
            oom = cgroup.oom_killed()
        finally:
            if seccomp_fd is not None:
                os.close(seccomp_fd)
            cgroup.kill_all()
            cgroup.remove()
        return SandboxResult(
            exit_code=finished.exit_code,
            timed_out=finished.timed_out,
            oom_killed=oom,
            duration_ms=finished.duration_ms,
            stdout=finished.stdout,
            stderr=finished.stderr,
            signal=finished.signal,
        )
