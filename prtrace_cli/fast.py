"""The `prtrace` entry point, and the fast path of `prtrace run` and the post-commit hook.

A recorded command must cost a few milliseconds, and the interpreter's start-up plus the
CLI's imports (typer, rich, pydantic, httpx) cost half a second. So this module imports only
built-in modules (no json, no typing: they cost more than the whole round trip): it connects
to the session's recorder process (prtrace_cli/recorderd.py, started by `prtrace record
start`) on `<git-dir>/prtrace/recorder.sock`, asks it to
record the edits made so far (`begin`), runs the command here, in the user's terminal, and
sends how it ended with its output (`end`). It returns only after the recorder's answer,
which comes once the event is committed to the outbox: an acknowledged event survives the
recorder's crash.

Whenever the recorder cannot answer (none was started, it crashed, it refused), the command
takes the direct path: the full CLI in this process, as slow as before and as durable.
Every other command goes to the full CLI at once.

Wire format, one request per connection: a 4-byte big-endian length, a header of that
length, then the raw bytes the header announces (`out`, `err`: the command's output); the
answer is a length and a document. Headers and answers are `marshal`led dicts of plain
values: both ends are this interpreter, and the socket is the user's own (mode 0600 in the
git directory), so nothing else can speak to either end.
"""

import _signal  # type: ignore[import-not-found]  # no stubs: `signal` without enum
import _socket
import marshal
import os
import select
import sys
import time

SOCKET_NAME = "recorder.sock"  # in the session directory
DELIVER_EVERY_ENV = "PRTRACE_DELIVER_EVERY"
DEFAULT_DELIVER_EVERY_S = 5.0
WIRE_VERSION = 1
MAX_CAPTURED_OUTPUT = 32 * 1024 * 1024  # per stream, as the direct path keeps
TIMEOUT_S = 120.0  # a begin diffs the edits made so far: can be slow for a huge change


class RecorderUnavailable(Exception):
    """The recorder did not answer (absent, crashed, refused): take the direct path."""


# ---- finding the session's recorder ---------------------------------------------------


def session_dir(cwd: str) -> str | None:
    """`<git-dir>/prtrace` of the repository holding `cwd`, found without running git; None
    when git would have to be asked (GIT_DIR set, no .git found)."""
    if os.environ.get("GIT_DIR"):
        return None
    directory = cwd
    while True:
        dot_git = os.path.join(directory, ".git")
        if os.path.isdir(dot_git):
            return os.path.join(dot_git, "prtrace")
        if os.path.isfile(dot_git):  # a linked worktree: "gitdir: <path>"
            try:
                with open(dot_git, encoding="utf-8") as handle:
                    line = handle.readline().strip()
            except OSError:
                return None
            if not line.startswith("gitdir:"):
                return None
            return os.path.join(directory, line[len("gitdir:") :].strip(), "prtrace")
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def request(
    directory: str, header: dict[str, object], payload: bytes = b"", timeout_s: float = TIMEOUT_S
) -> dict[str, object]:
    """One request to the recorder of the session in `directory`; raises
    RecorderUnavailable unless it answered ok."""
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        connection.settimeout(timeout_s)
        connect_in(connection, directory)
        encoded = marshal.dumps({"v": WIRE_VERSION, **header})
        connection.sendall(len(encoded).to_bytes(4, "big") + encoded + payload)
        size = int.from_bytes(receive(connection, 4), "big")
        answer = marshal.loads(receive(connection, size))  # noqa: S302 - our own recorder
    except (OSError, ValueError, EOFError, TypeError) as exc:
        raise RecorderUnavailable(str(exc) or type(exc).__name__) from None
    finally:
        connection.close()
    if not isinstance(answer, dict) or not answer.get("ok"):
        error = answer.get("error", "refused") if isinstance(answer, dict) else "bad answer"
        raise RecorderUnavailable(str(error))
    return answer


def connect_in(connection: _socket.socket, directory: str) -> None:
    """Connect to `directory`/recorder.sock by a relative name: a Unix socket's path is
    limited to 107 bytes, and a repository's git directory can be deeper than that."""
    here = os.open(".", os.O_RDONLY)
    try:
        os.chdir(directory)
        connection.connect(SOCKET_NAME)
    finally:
        os.fchdir(here)
        os.close(here)


def receive(connection: _socket.socket, size: int) -> bytes:
    parts = []
    while size:
        part = connection.recv(min(size, 1 << 20))
        if not part:
            raise OSError("the recorder closed the connection")
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


# ---- running the command here ---------------------------------------------------------


def run_here(command: list[str], workdir: str) -> tuple[int, bytes, bytes, int]:
    """Run `command` with the user's stdin, show its output live and keep a bounded copy:
    (exit code, stdout, stderr, duration in ms). Mirrors the direct path's _run_streaming."""
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
    directory = _served_session(cwd)
    if directory is None:
        return _direct(["run", "--", *command])
    try:
        answer = request(directory, {"op": "begin", "argv": command, "cwd": cwd})
    except RecorderUnavailable as exc:
        _warn_recorder_down(str(exc))
        return _direct(["run", "--", *command])
    prepared = answer["run"]
    assert isinstance(prepared, dict)
    code, out, err, duration_ms = run_here(prepared["command"], prepared["workdir"])
    header = {
        "op": "end",
        "run": prepared,
        "exit_code": code,
        "duration_ms": duration_ms,
        "out": len(out),
        "err": len(err),
    }
    try:
        request(directory, header, out + err)
    except RecorderUnavailable as exc:
        _warn_recorder_down(str(exc))
        return _finish_directly(prepared, code, out, err, duration_ms)
    return _exit_status(code)


def post_commit() -> int:
    """The post-commit hook: record the commit through the recorder, else directly."""
    directory = _served_session(os.getcwd())
    if directory is not None:
        try:
            request(directory, {"op": "commit"})
            return 0
        except RecorderUnavailable as exc:
            _warn_recorder_down(str(exc))
    from prtrace_cli.record import post_commit_hook  # the slow path

    return post_commit_hook()


def _served_session(cwd: str) -> str | None:
    """The session directory when a recorder was started for it (its socket exists)."""
    directory = session_dir(cwd)
    if directory is None or not os.path.exists(os.path.join(directory, SOCKET_NAME)):
        return None
    return directory


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
