"""The session's recorder process, `python -m prtrace_client.recorder.daemon REPO`: started
by `prtrace record start`, stopped by `prtrace record stop`. It keeps the recorder (outbox,
edit tracker, redaction) loaded, so a recorded command pays a socket round trip instead of
an interpreter start-up, and it delivers the session live: a background Flusher sends full
chunks as they fill and a partial chunk once its oldest event is `deliver_every_s` old (the
same sealing, retries and receipts as `prtrace push`).

It answers its front ends (the `prtrace run` fast path, the shell integration of shell.py,
an editor) in the protocol of protocol.py, one request per connection: `begin` (record the
edits so far, say how to run the command; `typed`: one a shell runs as typed), `end` (record
the command's run), `commit` (the post-commit hook), `status`, `stop`. An answer is sent
only after what it acknowledges is committed to the outbox, so killing this process loses
nothing acknowledged; the front end records directly whatever was not acknowledged.

Files in the session directory: `recorder.json` (pid, session, delivery interval; present
while it serves), `recorder.lock` (held for its lifetime: one recorder per session),
`recorder.log`. The functions at the end start, query, revive and stop it from a front end.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from prtrace_client.errors import PrtraceError
from prtrace_client.outbox import Flusher
from prtrace_client.recorder.protocol import (
    DEFAULT_DELIVER_EVERY_S,
    DELIVER_EVERY_ENV,
    SESSION_FILE,
    SOCKET_NAME,
    WIRE_VERSION,
    RecorderUnavailable,
    frame,
    read_frame,
    receive,
    request,
)
from prtrace_client.recorder.session import PreparedRun, Recorder, RecorderError

MODULE: Final = "prtrace_client.recorder.daemon"  # started as `python -m MODULE REPO`
log = logging.getLogger(MODULE)

RECORDER_FILE: Final = "recorder.json"  # pid, session, delivery interval (while it serves)
_LOCK_FILE: Final = "recorder.lock"
_LOG_FILE: Final = "recorder.log"


@dataclass
class Delivery:
    """Live delivery's settings and what `status` reports of it."""

    every_s: float
    flusher: Flusher | None = None
    not_live: str | None = None  # why nothing is delivered live (no endpoint, disabled)

    def status(self) -> dict[str, Any]:
        error = self.not_live
        if self.flusher is not None and self.flusher.last_error is not None:
            error = str(self.flusher.last_error)
        return {
            "live": self.flusher is not None,
            "deliver_every_s": self.every_s,
            "last_error": error,
            "last_delivery": None if self.flusher is None else self.flusher.last_delivery,
        }


class RecorderService:
    """What the requests do, one at a time (the recorder is not shared across threads)."""

    def __init__(self, recorder: Recorder, delivery: Delivery) -> None:
        self.recorder = recorder
        self.delivery = delivery
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.requests = 0

    def handle(self, header: dict[str, Any], payload: bytes) -> dict[str, Any]:
        op = header.get("op")
        with self._lock:
            self.requests += 1
            if op == "begin":
                prepared = self.recorder.begin_run(
                    [str(a) for a in header["argv"]],
                    Path(str(header["cwd"])),
                    typed=bool(header.get("typed")),
                )
                return {"ok": True, "run": prepared.to_dict()}
            if op == "end":
                out_len = int(header["out"])
                outcome = self.recorder.finish_run(
                    PreparedRun.from_dict(header["run"]),
                    int(header["exit_code"]),
                    payload[:out_len],
                    payload[out_len:],
                    int(header["duration_ms"]),
                )
                return {"ok": True, "seq": outcome.seq, "event": outcome.event}
            if op == "commit":
                return {"ok": True, "seq": self.recorder.record_commit()}
            if op == "status":
                return {
                    "ok": True,
                    "pid": os.getpid(),
                    "session": self.recorder.info.local_id,
                    "requests": self.requests,
                    "git_scans": self.recorder.edits.git_scans,  # the others: stats only
                }
            if op == "stop":
                self.stopping.set()
                return {"ok": True}
        return {"ok": False, "error": f"unknown request {op!r}"}

    def status(self) -> dict[str, Any]:
        return self.delivery.status()


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        connection: socket.socket = self.request
        answer: dict[str, Any]
        try:
            header = read_frame(connection)
            if not isinstance(header, dict):
                raise ValueError("not a request")
            payload = receive(connection, int(header.get("out", 0)) + int(header.get("err", 0)))
        except (OSError, ValueError, EOFError, TypeError):
            return  # the client went away or spoke gibberish: it records directly
        try:
            if header.get("v") != WIRE_VERSION:
                answer = _other_version(header.get("v"))
            else:
                answer = self.server.service.handle(header, payload)
                if header.get("op") == "status":
                    answer |= self.server.service.status()
        except (RecorderError, PrtraceError, KeyError, ValueError, TypeError) as exc:
            answer = {"ok": False, "error": str(exc)}
        except Exception as exc:  # answer, so the client records directly instead
            log.exception("request failed")
            answer = {"ok": False, "error": f"recorder failure: {exc}"}
        with contextlib.suppress(OSError):
            connection.sendall(frame(answer))


def _other_version(version: object) -> dict[str, Any]:
    """The answer to a request of another wire version: refused, saying which this speaks
    (the front end records directly)."""
    return {
        "ok": False,
        "error": f"wire version {version!r} is not spoken here; this recorder speaks "
        f"version {WIRE_VERSION}",
        "wire_version": WIRE_VERSION,
    }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    service: RecorderService


def _start_delivery(recorder: Recorder, every_s: float) -> Delivery:
    delivery = Delivery(every_s)
    if every_s <= 0:
        delivery.not_live = "live delivery is off: the session is delivered at `record stop`"
        return delivery
    from prtrace_client.client import PrtraceClient
    from prtrace_client.errors import ConfigError

    try:
        client = PrtraceClient()
    except ConfigError as exc:
        delivery.not_live = f"not delivering live: {exc}"
        return delivery
    delivery.flusher = Flusher(
        recorder.outbox, client, max_age_s=every_s, interval_s=min(0.5, every_s)
    )
    delivery.flusher.start(recorder.info.local_id)
    return delivery


def serve(repo: Path, every_s: float) -> int:
    """Serve the active session of `repo` until `stop`, SIGTERM or the session ends."""
    recorder = Recorder.open(repo)
    recorder.edits.keep_stats = True  # a command after no edit asks git nothing
    directory = recorder.directory
    lock = open(directory / _LOCK_FILE, "a+b")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("another recorder serves this session")
        return 0
    path = directory / SOCKET_NAME
    path.unlink(missing_ok=True)
    # Bound by its relative name (see protocol.connect_in), never group- or world-writable.
    here = os.getcwd()
    previous_umask = os.umask(0o177)
    try:
        os.chdir(directory)
        server = _Server(SOCKET_NAME, _Handler)
    finally:
        os.umask(previous_umask)
        os.chdir(here)
    delivery = _start_delivery(recorder, every_s)
    server.service = RecorderService(recorder, delivery)
    info = {
        "pid": os.getpid(),
        "session": recorder.info.local_id,
        "deliver_every_s": every_s,
    }
    scratch = directory / f".{RECORDER_FILE}.{os.getpid()}.tmp"
    scratch.write_bytes(orjson.dumps(info))
    os.replace(scratch, directory / RECORDER_FILE)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: server.service.stopping.set())
    threading.Thread(target=server.serve_forever, name="recorder-serve", daemon=True).start()
    log.info("recording session %s (pid %d) on %s", recorder.info.local_id, os.getpid(), path)
    try:
        while not server.service.stopping.wait(1.0):
            if not _still_active(directory, recorder.info.local_id):
                log.info("session %s ended; exiting", recorder.info.local_id)
                break
    finally:
        server.shutdown()
        with server.service._lock:  # no request is half-recorded at exit
            if delivery.flusher is not None:
                delivery.flusher.stop(final_push=False, timeout_s=5.0)
            with contextlib.suppress(FileNotFoundError):
                current = orjson.loads((directory / RECORDER_FILE).read_bytes())
                if current.get("pid") == os.getpid():
                    (directory / RECORDER_FILE).unlink()
            path.unlink(missing_ok=True)
            server.server_close()
            recorder.edits.close()
            recorder.outbox.close()
    return 0


def _still_active(directory: Path, local_id: str) -> bool:
    try:
        active = orjson.loads((directory / SESSION_FILE).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(active, dict) and active.get("local_id") == local_id


# ---- managing it from a front end --------------------------------------------------------------


def spawn(recorder: Recorder, *, every_s: float, wait_s: float = 20.0) -> int | None:
    """Start the session's recorder process and wait until it answers; its pid, or None
    (commands are then recorded directly; the reason is in recorder.log)."""
    directory = recorder.directory
    env = os.environ | {DELIVER_EVERY_ENV: repr(every_s)}
    with open(directory / _LOG_FILE, "ab") as log_file:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, this module
            [sys.executable, "-m", MODULE, str(recorder.repo)],
            cwd=recorder.repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # Ctrl-C in the terminal does not reach it
            close_fds=True,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        if (directory / SOCKET_NAME).exists():
            with contextlib.suppress(RecorderUnavailable):
                answer = request(str(directory), {"op": "status"}, timeout_s=2.0)
                if answer.get("pid") == process.pid:
                    return process.pid
        time.sleep(0.05)
    return None


def revive(recorder: Recorder) -> None:
    """The session had a recorder process and it died: start another for the next
    commands, without waiting for it (the outbox holds everything it acknowledged)."""
    if was_started(recorder.directory) and not is_running(recorder.directory):
        spawn(recorder, every_s=started_with(recorder.directory), wait_s=0)


def status(directory: Path) -> dict[str, Any] | None:
    """The running recorder's answer to `status`, or None when none answers."""
    if not (directory / SOCKET_NAME).exists():
        return None
    try:
        return request(str(directory), {"op": "status"}, timeout_s=5.0)
    except RecorderUnavailable:
        return None


def was_started(directory: Path) -> bool:
    """The session has a recorder (recorder.json stays when it was killed)."""
    return (directory / RECORDER_FILE).exists()


def started_with(directory: Path) -> float:
    """The delivery interval the session's recorder was started with."""
    try:
        return float(orjson.loads((directory / RECORDER_FILE).read_bytes())["deliver_every_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_DELIVER_EVERY_S


def stop(directory: Path, *, wait_s: float = 15.0) -> None:
    """Ask the session's recorder to exit and wait until it has (SIGKILL after `wait_s`:
    everything it acknowledged is in the outbox already)."""
    try:
        info = orjson.loads((directory / RECORDER_FILE).read_bytes())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    with contextlib.suppress(RecorderUnavailable):
        request(str(directory), {"op": "stop"}, timeout_s=5.0)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and is_running(directory):
        time.sleep(0.05)
    if is_running(directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    (directory / RECORDER_FILE).unlink(missing_ok=True)
    (directory / SOCKET_NAME).unlink(missing_ok=True)


def is_running(directory: Path) -> bool:
    """A recorder process holds the session's recorder lock (it serves, or is exiting)."""
    with open(directory / _LOCK_FILE, "a+b") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        return False


def main() -> int:
    repo = Path(sys.argv[1])
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    every_s = float(os.environ.get(DELIVER_EVERY_ENV) or DEFAULT_DELIVER_EVERY_S)
    return serve(repo, every_s)


if __name__ == "__main__":
    sys.exit(main())
