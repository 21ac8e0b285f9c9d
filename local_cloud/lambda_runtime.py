"""Run moto's Lambda functions for real: a warm pool of worker processes per function.

Each worker has the function's own environment, its deployed code and layers, and is held
to the function's timeout (killed and replaced) and memory size (resident memory watched;
over the limit the worker is killed, as Lambda ends a function that runs out of memory).
Each worker logs to its own file, `<log_dir>/<function>-<n>.log` (as each Lambda execution
environment has its own log stream), so the tail of an invocation's log, returned with it
(LogResult) and printed when it fails, is that invocation's alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from infra_cdk.assets import CORE_LAYER_DIR, ROOT
from local_cloud import lambda_worker
from local_cloud.deploy import unzip_to

log = logging.getLogger("prtrace.local.lambda")

LOG_RESULT_BYTES = 4096
MEMORY_POLL_S = 0.02
# Lambda's init phase (the handler module's import) may take this long, apart from the timeout.
INIT_TIMEOUT_S = 10


@dataclass(frozen=True)
class FunctionSpec:
    """What a worker needs, read from moto's function and the synthesized template."""

    name: str
    arn: str
    handler: str
    code_sha256: str
    code_zip: bytes = field(repr=False)
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout_s: int
    memory_mb: int

    @property
    def fingerprint(self) -> str:
        described = orjson.dumps(
            [self.handler, self.code_sha256, [str(d) for d in self.layer_dirs],
             self.environment, self.timeout_s, self.memory_mb],
            option=orjson.OPT_SORT_KEYS,
        )  # fmt: skip
        return hashlib.sha256(described).hexdigest()


@dataclass(frozen=True)
class Invocation:
    payload: bytes
    errored: bool
    logs: str


class _Worker:
    def __init__(
        self, spec: FunctionSpec, code_dir: Path, base_env: dict[str, str], log_path: Path
    ) -> None:
        self.spec = spec
        self.log_path = log_path
        self._initialized = False
        env = {
            **base_env,
            **spec.environment,
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "PRTRACE_WORKER_PATH": os.pathsep.join(
                [str(code_dir), *(str(d / "python") for d in spec.layer_dirs)]
            ),
            # The editable install puts the project tree on sys.path; the worker drops it.
            "PRTRACE_WORKER_HIDE": os.pathsep.join([str(ROOT), str(CORE_LAYER_DIR / "python")]),
        }
        self._log_file = open(log_path, "ab")  # noqa: SIM115 - lives as long as the worker
        self.process = subprocess.Popen(  # noqa: S603 - our own worker module
            [sys.executable, "-I", lambda_worker.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env=env,
            cwd=code_dir,
        )

    def invoke(self, event: Any, request_id: str) -> Invocation:
        spec = self.spec
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        start = self.log_path.stat().st_size
        if not self._initialized:
            # Lambda's init phase (imports, module-level setup) has a budget of its own:
            # a slow cold start does not eat into the invocation's timeout.
            failed = self._await_init(start)
            if failed is not None:
                return failed
        deadline = time.time() + spec.timeout_s
        request = {
            "event": event,
            "request_id": request_id,
            "function_arn": spec.arn,
            "deadline_ms": int(deadline * 1000),
        }
        killed_for: list[str] = []
        stop_watch = threading.Event()
        watcher = threading.Thread(
            target=self._watch, args=(deadline, stop_watch, killed_for), daemon=True
        )
        watcher.start()
        try:
            lambda_worker.write_frame(self.process.stdin, orjson.dumps(request))
            frame = lambda_worker.read_frame(self.process.stdout)
        except (BrokenPipeError, OSError):
            frame = None
        finally:
            stop_watch.set()
            watcher.join()
        logs = self._logs_since(start)
        if frame is None:
            self.kill()
            reason = killed_for[0] if killed_for else "exited"
            if reason == "timeout":
                error = {
                    "errorMessage": f"Task timed out after {spec.timeout_s}.00 seconds",
                    "errorType": "Sandbox.Timedout",
                }
            elif reason == "memory":
                error = {
                    "errorMessage": f"Runtime exited: memory size {spec.memory_mb} MB exceeded",
                    "errorType": "Runtime.OutOfMemory",
                }
            else:
                error = {
                    "errorMessage": f"Runtime exited with code {self.process.poll()}",
                    "errorType": "Runtime.ExitError",
                }
            return Invocation(orjson.dumps(error), True, logs)
        reply = orjson.loads(frame)
        return Invocation(orjson.dumps(reply["payload"]), bool(reply["errored"]), logs)

    def _await_init(self, log_start: int) -> Invocation | None:
        """Wait for the worker's init to end; an Invocation when it failed to."""
        assert self.process.stdout is not None
        killed_for: list[str] = []
        stop_watch = threading.Event()
        watcher = threading.Thread(
            target=self._watch,
            args=(time.time() + INIT_TIMEOUT_S, stop_watch, killed_for),
            daemon=True,
        )
        watcher.start()
        try:
            frame = lambda_worker.read_frame(self.process.stdout)
        except OSError:
            frame = None
        finally:
            stop_watch.set()
            watcher.join()
        if frame is not None:
            self._initialized = True
            return None
        self.kill()
        error = {
            "errorMessage": f"Init did not finish within {INIT_TIMEOUT_S} seconds"
            if killed_for == ["timeout"]
            else f"Runtime exited during init with code {self.process.poll()}",
            "errorType": "Runtime.InitError",
        }
        return Invocation(orjson.dumps(error), True, self._logs_since(log_start))

    def _watch(self, deadline: float, stop: threading.Event, killed_for: list[str]) -> None:
        limit_kb = self.spec.memory_mb * 1024
        while not stop.wait(MEMORY_POLL_S):
            if time.time() > deadline:
                killed_for.append("timeout")
                self.kill()
                return
            if _rss_kb(self.process.pid) > limit_kb:
                killed_for.append("memory")
                self.kill()
                return

    def _logs_since(self, offset: int) -> str:
        with open(self.log_path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._log_file.close()


class FunctionPool:
    """Warm workers for one function version; grows with concurrent invocations."""

    def __init__(
        self,
        spec: FunctionSpec,
        work_dir: Path,
        base_env: dict[str, str],
        log_dir: Path,
        max_workers: int,
    ) -> None:
        self.spec = spec
        self._code_dir = unzip_to(spec.code_zip, work_dir / spec.name / spec.fingerprint[:16])
        self._base_env = base_env
        self._log_dir = log_dir
        self._started = itertools.count(1)
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_workers)

    def invoke(self, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        with self._slots, self._worker() as worker:
            result = worker.invoke(event, request_id)
        if result.errored:
            log.warning(
                "%s failed (request %s): %s\n%s",
                self.spec.name, request_id, result.payload.decode()[:500],
                _tail(result.logs),
            )  # fmt: skip
        return result

    @contextlib.contextmanager
    def _worker(self) -> Iterator[_Worker]:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None or not worker.alive():
            log_path = self._log_dir / f"{self.spec.name}-{next(self._started)}.log"
            worker = _Worker(self.spec, self._code_dir, self._base_env, log_path)
            with self._lock:
                self._all.append(worker)
        try:
            yield worker
        finally:
            if worker.alive():
                with self._lock:
                    self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            worker.kill()


class LambdaRuntime:
    """All pools; `invoke` is what moto calls instead of running a Docker container."""

    def __init__(
        self,
        *,
        work_dir: Path,
        log_dir: Path,
        base_env: dict[str, str],
        layer_dirs_for: Callable[[str], tuple[Path, ...]],
        max_workers_per_function: int = 4,
    ) -> None:
        self._work_dir = work_dir
        self._log_dir = log_dir
        self._base_env = base_env
        self._layer_dirs_for = layer_dirs_for
        self._max_workers = max_workers_per_function
        self._pools: dict[tuple[str, str], FunctionPool] = {}
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    def pool_for(self, spec: FunctionSpec) -> FunctionPool:
        # A configuration change (environment, timeout, memory, code) gets fresh workers,
        # as a Lambda update does.
        key = (spec.name, spec.fingerprint)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = FunctionPool(
                    spec, self._work_dir, self._base_env, self._log_dir, self._max_workers
                )
                self._pools[key] = pool
        return pool

    def invoke_moto_function(self, function: Any, event: Any) -> tuple[str, bool, str]:
        """The signature of moto.awslambda.models.LambdaFunction._invoke_lambda."""
        spec = self.spec_of(function)
        if isinstance(event, (str, bytes)):
            event = orjson.loads(event or b"{}")
        result = self.pool_for(spec).invoke(event)
        return result.payload.decode(), result.errored, result.logs[-LOG_RESULT_BYTES:]

    def spec_of(self, function: Any) -> FunctionSpec:
        code_zip: bytes = function.code_bytes
        return FunctionSpec(
            name=function.function_name,
            arn=function.function_arn,
            handler=function.handler,
            code_sha256=hashlib.sha256(code_zip).hexdigest(),
            code_zip=code_zip,
            layer_dirs=self._layer_dirs_for(function.function_name),
            environment={str(k): str(v) for k, v in (function.environment_vars or {}).items()},
            timeout_s=int(function.timeout or 3),
            memory_mb=int(function.memory_size or 128),
        )

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def _rss_kb(pid: int) -> int:
    """Resident memory from /proc/<pid>/statm (pages): far cheaper for the kernel to produce
    than /proc/<pid>/status, and read every MEMORY_POLL_S while a function runs."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tail(logs: str, lines: int = 30) -> str:
    return "\n".join("    " + line for line in logs.strip().splitlines()[-lines:])
