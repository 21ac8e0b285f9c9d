"""The `prtrace` entry point, and the fast path of `prtrace run` and the post-commit hook.

A recorded command must cost a few milliseconds, and the interpreter's start-up plus the
CLI's imports (typer, rich, pydantic, httpx) cost half a second. So this module imports only
built-in modules and the recorder's protocol (no json, no typing: they cost more than the
whole round trip; what one path alone needs, it imports on that path). It asks the
session's recorder process (prtrace_client/recorder/daemon.py, started by `prtrace record
start`) to record the edits made so far (`begin`), runs the command here, in the user's
terminal, and sends how it ended with its output (`end`), in the protocol of
prtrace_client/recorder/protocol.py. It returns only after the recorder's answer, which
comes once the event is committed to the outbox: an acknowledged event survives the
recorder's crash.

Whenever the recorder cannot answer (none was started, it crashed, it refused), the command
takes the direct path: the full CLI in this process, as slow as before and as durable.
Every other command goes to the full CLI at once.
"""

import _signal  # type: ignore[import-not-found]  # no stubs: `signal` without enum
import os
import sys
import time

from prtrace_client.recorder import protocol

MAX_CAPTURED_OUTPUT = 32 * 1024 * 1024  # per stream, as the direct path keeps


# ---- running the command here ---------------------------------------------------------


def run_here(command: list[str], workdir: str) -> tuple[int, bytes, bytes, int]:
    """Run `command` with the user's stdin, show its output live and keep a bounded copy:
    (exit code, stdout, stderr, duration in ms). Mirrors the direct path's _run_streaming."""
    import select  # here: the commit hook's path does without it

    environment = dict(os.environ)
    # Output goes through a pipe: ask Python programs not to hold it back.
    environment.setdefault("PYTHONUNBUFFERED", "1")
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    started = time.monotonic()
    try:
        pid = os.posix_spawnp(
            command[0],
            command,
            environment,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, out_write, 1),
                (os.POSIX_SPAWN_DUP2, err_write, 2),
                (os.POSIX_SPAWN_CLOSE, out_read),
                (os.POSIX_SPAWN_CLOSE, err_read),
            ],
        )
    except (FileNotFoundError, PermissionError) as exc:
        for fd in (out_read, out_write, err_read, err_write):
            os.close(fd)
        shown = " ".join(command)
        message = f"prtrace: cannot run {shown}: {exc.strerror}\n".encode()
        _show(2, message)
        return (127 if isinstance(exc, FileNotFoundError) else 126), b"", message, 0
    os.close(out_write)
    os.close(err_write)
    # Ctrl-C reaches the command; this waits to record its end. `_signal`, not `signal`:
    # the latter imports enum, 4 ms.
    previous = _signal.signal(_signal.SIGINT, lambda *_: None)
    try:
        kept = {out_read: bytearray(), err_read: bytearray()}
        sinks = {out_read: 1, err_read: 2}
        poller = select.poll()
        for fd in kept:
            poller.register(fd, select.POLLIN | select.POLLHUP)
        open_fds = len(kept)
        while open_fds:
            for fd, _ in poller.poll():
                chunk = os.read(fd, 65536)
                if not chunk:
                    poller.unregister(fd)
                    os.close(fd)
                    open_fds -= 1
                    continue
                _show(sinks[fd], chunk)
                room = MAX_CAPTURED_OUTPUT - len(kept[fd])
                if room > 0:
                    kept[fd] += chunk[:room]
        _, status = os.waitpid(pid, 0)
    finally:
        _signal.signal(_signal.SIGINT, previous)
    duration_ms = round((time.monotonic() - started) * 1000)
    return (
        os.waitstatus_to_exitcode(status),
        bytes(kept[out_read]),
        bytes(kept[err_read]),
        duration_ms,
    )


def _show(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass  # the terminal went away: keep recording


def _exit_status(code: int) -> int:
    return code if 0 <= code <= 255 else 128 + abs(code)


# ---- the fast paths ---------------------------------------------------------------------


def run(command: list[str]) -> int:
    """`prtrace run -- COMMAND…` through the session's recorder, else the direct path."""
    cwd = os.getcwd()
    directory = protocol.served_session(cwd)
    if directory is None:
        return _direct(["run", "--", *command])
    try:
        prepared = protocol.begin(directory, command, cwd)
    except protocol.RecorderUnavailable as exc:
        _warn_recorder_down(str(exc))
        return _direct(["run", "--", *command])
    as_run, workdir = prepared["command"], prepared["workdir"]  # a pytest gets a report
    assert isinstance(as_run, list)
    assert isinstance(workdir, str)
    code, out, err, duration_ms = run_here(as_run, workdir)
    try:
        protocol.end(directory, prepared, code, duration_ms, out, err)
    except protocol.RecorderUnavailable as exc:
        _warn_recorder_down(str(exc))
        return _finish_directly(prepared, code, out, err, duration_ms)
    return _exit_status(code)


def post_commit() -> int:
    """The post-commit hook: record the commit through the recorder, else directly.
    (Installed hooks call this by name: prtrace_client/recorder/session.py writes them.)"""
    directory = protocol.served_session(os.getcwd())
    if directory is not None:
        try:
            protocol.commit(directory)
            return 0
        except protocol.RecorderUnavailable as exc:
            _warn_recorder_down(str(exc))
    from prtrace_cli.record import post_commit_hook  # the slow path

    return post_commit_hook()


def _warn_recorder_down(reason: str) -> None:
    _show(
        2,
        f"prtrace: the session's recorder did not answer ({reason}); recording directly "
        "(slower) and restarting it\n".encode(),
    )


def _direct(args: list[str]) -> int:
    """The full CLI in this process: the direct path (which also restarts a session's
    recorder that died, for the next commands)."""
    from prtrace_cli.main import app  # the slow path

    app(args=args, prog_name="prtrace")
    return 0


def _finish_directly(
    prepared: dict[str, object], code: int, out: bytes, err: bytes, duration_ms: int
) -> int:
    """The command ran but the recorder did not acknowledge its end: record it here."""
    from prtrace_cli.record import finish_run_directly  # the slow path

    return finish_run_directly(prepared, code, out, err, duration_ms)


def main() -> int:
    """`prtrace …`: `run` and `hook post-commit` take the fast path; all else the CLI."""
    args = sys.argv[1:]
    if args[:1] == ["run"]:
        command = args[2:] if args[1:2] == ["--"] else args[1:]
        if command and not command[0].startswith("-"):
            return run(command)
    elif args == ["hook", "post-commit"]:
        return post_commit()
    from prtrace_cli.main import app  # everything else: the full CLI

    app(prog_name="prtrace")
    return 0


if __name__ == "__main__":
    sys.exit(main())
