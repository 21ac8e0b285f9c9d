"""Start a process with rlimits in its own process group, capture bounded output, enforce
a wall-clock timeout. Shared by the bwrap and container backends."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from prtrace.qa.sandbox import SandboxLimits

_READ = 64 * 1024


class BoundedCapture:
    """Keeps the first and the last `limit // 2` bytes of a stream, and counts the rest."""

    def __init__(self, limit: int) -> None:
        self._half = limit // 2
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self._half - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if not data:
            return
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size - len(self._tail[0]) >= self._half:
            dropped = len(self._tail.popleft())
            self._tail_size -= dropped
            self.dropped += dropped
        excess = self._tail_size - self._half
        if excess > 0:
            self._tail[0] = self._tail[0][excess:]
            self._tail_size -= excess
            self.dropped += excess

    def value(self) -> bytes:
        tail = b"".join(self._tail)
        if self.dropped:
            marker = f"\n[... {self.dropped} bytes cut ...]\n".encode()
            return bytes(self._head) + marker + tail
        return bytes(self._head) + tail


def _drain(stream: IO[bytes], capture: BoundedCapture) -> None:
    while chunk := stream.read1(_READ):  # type: ignore[attr-defined]
        capture.feed(chunk)
    stream.close()


def apply_rlimits(limits: SandboxLimits, address_space_mb: int, nproc: int | None) -> None:
    """Second layer behind cgroups (the only layer for the `container` backend). Also a
    fixed umask, so what a run creates does not depend on the caller's."""
    os.umask(0o022)
    cpu_s = int(limits.wall_timeout_s * limits.cpus) + 5
    settings: list[tuple[int, int]] = [
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, limits.file_size_mb * 1024 * 1024),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_AS, address_space_mb * 1024 * 1024),
    ]
    if nproc is not None:
        settings.append((resource.RLIMIT_NPROC, nproc))
    for which, value in settings:
        resource.setrlimit(which, (value, value))


@dataclass(frozen=True)
class Finished:
    exit_code: int | None
    signal: int | None
    timed_out: bool
    duration_ms: int
    stdout: bytes
    stderr: bytes


def run_bounded(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    limits: SandboxLimits,
    preexec: Callable[[], None],
    kill_everything: Callable[[], None],
    pass_fds: tuple[int, ...] = (),
) -> Finished:
    """Run `argv`; on timeout kill its process group and then call `kill_everything` (which
    must also reach processes that left the group, e.g. daemons)."""
    out = BoundedCapture(limits.output_bytes)
    err = BoundedCapture(limits.output_bytes)
    start = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - argv is built by the backend, never a shell
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: one killpg reaches the run
        preexec_fn=preexec,
        close_fds=True,
        pass_fds=pass_fds,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.wall_timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:  # an exception on our side: never leave the run behind
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        kill_everything()
    duration_ms = int((time.monotonic() - start) * 1000)
    for reader in readers:
        reader.join(timeout=5)
    code = proc.returncode
    return Finished(
        exit_code=None if timed_out or code < 0 else code,
        signal=-code if code < 0 else None,
        timed_out=timed_out,
        duration_ms=duration_ms,
        stdout=out.value(),
        stderr=err.value(),
    )
