"""One warm Lambda worker process: imports the handler once, then serves invocations.

Started by lambda_runtime with the function's own environment and a sys.path made of the
deployed code, its layers and this environment's third-party packages (never the project
tree: what runs is what was deployed). Frames on stdin/stdout are 4-byte big-endian length
+ JSON; the handler's own prints go to stderr, which the runtime keeps as the log.

PRTRACE_WORKER_PATH and PRTRACE_WORKER_HIDE are how lambda_runtime hands that path over,
not configuration: they are read with os.environ before the path exists (so before
anything, the settings models included, can be imported from it) and removed at once, so
the handler never sees them.
"""

from __future__ import annotations

import importlib
import os
import struct
import sys
import threading
import time
import traceback
from typing import IO, Any

import orjson


class Context:
    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.invoked_function_arn = request["function_arn"]
        self.aws_request_id = request["request_id"]
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline_ms = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def read_frame(stream: IO[bytes]) -> bytes | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    return stream.read(size)


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(struct.pack(">I", len(payload)) + payload)
    stream.flush()


def _exit_with_parent(parent: int) -> None:
    """Workers end with the local cloud, even one killed without cleaning up (a thread,
    because PR_SET_PDEATHSIG fires when the spawning *thread* ends)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() in a handler lands in the log, not in the protocol stream
    sys.stdout = sys.stderr
    protocol_in = os.fdopen(os.dup(0), "rb")
    extra_paths = [p for p in os.environ.pop("PRTRACE_WORKER_PATH", "").split(os.pathsep) if p]
    hidden = {p for p in os.environ.pop("PRTRACE_WORKER_HIDE", "").split(os.pathsep) if p}
    sys.path[:] = extra_paths + [p for p in sys.path if os.path.abspath(p or ".") not in hidden]
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # an import error is the invocation's error, as in Lambda
        handler = None
        init_error = _error(exc, "Runtime.ImportModuleError")
    # The init phase is over: Lambda gives it its own time (10 s), apart from the timeout.
    write_frame(protocol_out, b'{"ready": true}')
    while (frame := read_frame(protocol_in)) is not None:
        request = orjson.loads(frame)
        print(f"START RequestId: {request['request_id']}", file=sys.stderr, flush=True)
        if handler is None:
            reply = {"errored": True, "payload": init_error}
        else:
            try:
                result = handler(request["event"], Context(request))
                reply = {"errored": False, "payload": result}
            except Exception as exc:
                traceback.print_exc()
                reply = {"errored": True, "payload": _error(exc, type(exc).__name__)}
        print(f"END RequestId: {request['request_id']}", file=sys.stderr, flush=True)
        write_frame(protocol_out, orjson.dumps(reply, default=str))


def _error(exc: BaseException, error_type: str) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type,
        "stackTrace": traceback.format_exception(exc)[-8:],
    }


if __name__ == "__main__":
    main()
