"""The local cloud's Lambda workers: real processes held to the function's configuration."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from local_cloud.lambda_runtime import FunctionSpec, LambdaRuntime

HANDLER = """
import os, time

_cold = time.time()


def handler(event, context):
    action = event.get("action")
    if action == "env":
        wanted = ("PRTRACE", "SECRET", "AWS_LAMBDA")
        return {k: v for k, v in os.environ.items() if k.startswith(wanted)}
    if action == "raise":
        print("about to fail")
        raise ValueError("bad input: " + event.get("why", ""))
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "hog":
        blocks = [bytearray(1024 * 1024) for _ in range(event["mb"])]
        time.sleep(1)
        return len(blocks)
    if action == "exit":
        os._exit(3)
    if action == "chatter":
        for line in range(event["lines"]):
            print(event["who"], line, flush=True)
            time.sleep(0.01)
        raise RuntimeError(event["who"])
    remaining = context.get_remaining_time_in_millis()
    return {"cold": _cold, "pid": os.getpid(), "remaining_ms": remaining,
            "name": context.function_name}
"""


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    os.environ["SECRET_OF_THE_HOST"] = "do-not-leak"
    runtime = LambdaRuntime(
        work_dir=tmp_path / "work",
        log_dir=tmp_path / "logs",
        base_env={"PATH": os.environ["PATH"], "PRTRACE_BASE": "base"},
        layer_dirs_for=lambda name: (),
    )
    yield runtime
    runtime.close()
    os.environ.pop("SECRET_OF_THE_HOST")


def _spec(**changes: object) -> FunctionSpec:
    code = _zip({"fn.py": HANDLER})
    values: dict[str, object] = {
        "name": "probe",
        "arn": "arn:aws:lambda:us-east-1:123456789012:function:probe",
        "handler": "fn.handler",
        "code_sha256": "c" * 64,
        "code_zip": code,
        "layer_dirs": (),
        "environment": {"PRTRACE_OWN": "mine"},
        "timeout_s": 3,
        "memory_mb": 128,
    }
    values.update(changes)
    return FunctionSpec(**values)  # type: ignore[arg-type]


def _invoke(
    runtime: LambdaRuntime, spec: FunctionSpec, event: dict[str, object]
) -> tuple[object, bool, str]:
    result = runtime.pool_for(spec).invoke(event)
    return orjson.loads(result.payload), result.errored, result.logs


def test_a_warm_worker_serves_the_next_invocation(runtime: LambdaRuntime) -> None:
    spec = _spec()
    first, errored, _ = _invoke(runtime, spec, {})
    second, _, _ = _invoke(runtime, spec, {})
    assert not errored
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["pid"] == second["pid"]  # same process: warm
    assert first["cold"] == second["cold"]
    assert first["name"] == "probe"
    assert 0 < first["remaining_ms"] <= 3000


def test_a_worker_sees_its_function_environment_and_nothing_of_the_host(
    runtime: LambdaRuntime,
) -> None:
    env, _, _ = _invoke(runtime, _spec(), {"action": "env"})
    assert env == {
        "PRTRACE_BASE": "base",
        "PRTRACE_OWN": "mine",
        "AWS_LAMBDA_FUNCTION_NAME": "probe",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "3",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }


def test_an_exception_is_the_invocations_error_with_its_log(runtime: LambdaRuntime) -> None:
    error, errored, logs = _invoke(runtime, _spec(), {"action": "raise", "why": "no seq"})
    assert errored
    assert error["errorType"] == "ValueError"  # type: ignore[index]
    assert error["errorMessage"] == "bad input: no seq"  # type: ignore[index]
    assert "about to fail" in logs
    assert "Traceback" in logs
    again, errored, _ = _invoke(runtime, _spec(), {})
    assert not errored  # the worker survives a handled error
    assert "pid" in again  # type: ignore[operator]


def test_concurrent_invocations_get_only_their_own_log(runtime: LambdaRuntime) -> None:
    """Each worker logs to its own file: a failing invocation's log never carries lines
    another invocation printed meanwhile."""
    spec = _spec()
    results: dict[str, str] = {}

    def chatter(who: str) -> None:
        results[who] = _invoke(runtime, spec, {"action": "chatter", "who": who, "lines": 20})[2]

    threads = [threading.Thread(target=chatter, args=(who,)) for who in ("alpha", "omega")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "alpha 19" in results["alpha"]
    assert "omega" not in results["alpha"]
    assert "omega 19" in results["omega"]
    assert "alpha" not in results["omega"]


def test_the_timeout_kills_the_worker_and_a_fresh_one_serves_next(runtime: LambdaRuntime) -> None:
    spec = _spec(timeout_s=1)
    first, _, _ = _invoke(runtime, spec, {})
    error, errored, _ = _invoke(runtime, spec, {"action": "sleep", "seconds": 5})
    assert errored
    assert error == {  # type: ignore[comparison-overlap]
        "errorMessage": "Task timed out after 1.00 seconds",
        "errorType": "Sandbox.Timedout",
    }
    after, errored, _ = _invoke(runtime, spec, {})
    assert not errored
    assert after["pid"] != first["pid"]  # type: ignore[index]


def test_a_slow_init_does_not_count_against_the_timeout(runtime: LambdaRuntime) -> None:
    """As in Lambda, the init phase (the handler module's import) has its own budget: a
    cold start slower than the function's timeout still serves its first invocation."""
    slow = "import time\ntime.sleep(1.5)\n" + HANDLER
    spec = _spec(timeout_s=1, code_zip=_zip({"fn.py": slow}), code_sha256="d" * 64)
    first, errored, _ = _invoke(runtime, spec, {})
    assert not errored, first
    assert 0 < first["remaining_ms"] <= 1000  # type: ignore[index]


def test_the_memory_size_is_enforced(runtime: LambdaRuntime) -> None:
    error, errored, _ = _invoke(runtime, _spec(memory_mb=128), {"action": "hog", "mb": 300})
    assert errored
    assert error["errorType"] == "Runtime.OutOfMemory"  # type: ignore[index]
    fits, errored, _ = _invoke(runtime, _spec(memory_mb=512), {"action": "hog", "mb": 100})
    assert (fits, errored) == (100, False)


def test_a_crashing_worker_is_an_error_not_a_hang(runtime: LambdaRuntime) -> None:
    error, errored, _ = _invoke(runtime, _spec(), {"action": "exit"})
    assert errored
    assert error["errorType"] == "Runtime.ExitError"  # type: ignore[index]


def test_an_unimportable_handler_is_reported(runtime: LambdaRuntime) -> None:
    error, errored, _ = _invoke(runtime, _spec(handler="missing.handler"), {})
    assert errored
    assert error["errorType"] == "Runtime.ImportModuleError"  # type: ignore[index]


def test_a_configuration_change_gets_new_workers(runtime: LambdaRuntime) -> None:
    first, _, _ = _invoke(runtime, _spec(), {})
    changed, _, _ = _invoke(runtime, _spec(environment={"PRTRACE_OWN": "changed"}), {})
    assert changed["pid"] != first["pid"]  # type: ignore[index]
    changed, _, _ = _invoke(
        runtime, _spec(environment={"PRTRACE_OWN": "changed"}), {"action": "env"}
    )
    assert changed["PRTRACE_OWN"] == "changed"  # type: ignore[index]


def test_closing_leaves_no_worker_behind(tmp_path: Path) -> None:
    runtime = LambdaRuntime(
        work_dir=tmp_path / "work",
        log_dir=tmp_path / "logs",
        base_env={"PATH": os.environ["PATH"]},
        layer_dirs_for=lambda name: (),
    )
    pids = [_invoke(runtime, _spec(), {})[0]["pid"] for _ in range(2)]  # type: ignore[index]
    runtime.close()
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
