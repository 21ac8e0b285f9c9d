"""The recorder's socket protocol, wire version 1: how a front end (the `prtrace run` fast
path, the shell integration, an editor extension) talks to a session's recorder process
(daemon.py). docs/recording/protocol.md describes it for implementers in other languages.

Where: a Unix stream socket named `recorder.sock` in the session directory,
`<git-dir>/prtrace/` (mode 0600: only the user who started the session can connect). It
exists while a recorder serves; without it, or without an answer, a front end records
directly (session.Recorder in its own process), so a dead recorder never loses a command.

Framing, one request per connection: a 4-byte big-endian length, a header of that length,
then the raw bytes the header announces (`out` + `err` bytes, zero unless it says so). The
answer is a 4-byte length and a document; then the recorder closes the connection. Headers
and answers are `marshal`led dicts of plain values (str, int, float, bool, None, lists and
dicts of them): every front end so far runs the same interpreter as the recorder, and
marshal costs the fast path nothing to import.

Requests (`op`): `begin` (record the edits so far, say how to run the command), `end` (record
how it ended, with its output), `commit` (record HEAD: the post-commit hook), `status`,
`stop`. An answer with `"ok": true` is sent only once what it acknowledges is committed to
the outbox; `"ok": false` carries an `error`.

Versioning: every request carries `"v": WIRE_VERSION`. A change that an older recorder or
front end would misread (a field renamed, removed or reinterpreted, another encoding) takes
a new version; a new optional field or a new `op` does not. A recorder refuses a request of
another version with `"ok": false`, an error naming both versions and `"wire_version"` (the
one it speaks); the front end then records directly, which is always correct, only slower.

This module imports only built-in modules (no json, no typing): it is on the path of every
recorded command (prtrace_cli/fast.py), where each millisecond of imports shows.
"""

import _socket
import marshal
import os

WIRE_VERSION = 1
SOCKET_NAME = "recorder.sock"  # in the session directory
SESSION_FILE = "session.json"  # in the session directory while a session records
DELIVER_EVERY_ENV = "PRTRACE_DELIVER_EVERY"  # how the recorder is told its interval
DEFAULT_DELIVER_EVERY_S = 5.0
TIMEOUT_S = 120.0  # a begin diffs the edits made so far: can be slow for a huge change
_MAX_FRAME = 1 << 30  # a length past this is not a header of ours


class RecorderUnavailable(Exception):
    """The recorder did not answer (absent, crashed, refused): record directly."""


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


def served_session(cwd: str) -> str | None:
    """The session directory of `cwd` when a recorder was started for it (its socket
    exists), else None."""
    directory = session_dir(cwd)
    if directory is None or not os.path.exists(os.path.join(directory, SOCKET_NAME)):
        return None
    return directory


# ---- framing ------------------------------------------------------------------------------


def frame(document: dict[str, object]) -> bytes:
    """A header or an answer as sent: its length, then its bytes."""
    encoded = marshal.dumps(document)
    return len(encoded).to_bytes(4, "big") + encoded


def read_frame(connection: _socket.socket) -> object:
    """The document the peer framed (not necessarily a dict: the caller checks)."""
    size = int.from_bytes(receive(connection, 4), "big")
    if size > _MAX_FRAME:
        raise ValueError("not a frame of the recorder's protocol")
    return marshal.loads(receive(connection, size))  # noqa: S302 - a 0600 socket, our own


def receive(connection: _socket.socket, size: int) -> bytes:
    """Exactly `size` bytes; OSError when the peer closes first."""
    parts = []
    while size:
        part = connection.recv(min(size, 1 << 20))
        if not part:
            raise OSError("the recorder closed the connection")
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


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


# ---- the client's side -----------------------------------------------------------------


def request(
    directory: str, header: dict[str, object], payload: bytes = b"", timeout_s: float = TIMEOUT_S
) -> dict[str, object]:
    """One request to the recorder of the session in `directory`; its answer, or
    RecorderUnavailable unless it answered ok."""
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        connection.settimeout(timeout_s)
        connect_in(connection, directory)
        connection.sendall(frame({"v": WIRE_VERSION, **header}) + payload)
        answer = read_frame(connection)
    except (OSError, ValueError, EOFError, TypeError) as exc:
        raise RecorderUnavailable(str(exc) or type(exc).__name__) from None
    finally:
        connection.close()
    if not isinstance(answer, dict) or not answer.get("ok"):
        error = answer.get("error", "refused") if isinstance(answer, dict) else "bad answer"
        raise RecorderUnavailable(str(error))
    return answer


def begin(directory: str, argv: list[str], cwd: str, *, typed: bool = False) -> dict[str, object]:
    """`begin`: the edits so far are recorded; the prepared run (run its `command` in its
    `workdir`, then pass it back to `end` unchanged)."""
    header: dict[str, object] = {"op": "begin", "argv": argv, "cwd": cwd}
    if typed:
        header["typed"] = True
    prepared = request(directory, header)["run"]
    if not isinstance(prepared, dict):
        raise RecorderUnavailable("bad answer to begin")
    return prepared


def end(
    directory: str,
    prepared: dict[str, object],
    exit_code: int,
    duration_ms: int,
    out: bytes = b"",
    err: bytes = b"",
) -> dict[str, object]:
    """`end`: the run `begin` prepared is recorded with how it ended and its output."""
    header = {
        "op": "end",
        "run": prepared,
        "exit_code": exit_code,
        "duration_ms": duration_ms,
        "out": len(out),
        "err": len(err),
    }
    return request(directory, header, out + err)


def commit(directory: str) -> dict[str, object]:
    """`commit`: HEAD is recorded with the edits before it (`seq` None: recorded already)."""
    return request(directory, {"op": "commit"})
