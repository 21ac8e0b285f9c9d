"""The direct path: what a front end records in its own process when the session's recorder
process did not answer (none was started, it crashed, it refused). As durable as the
recorder (the same outbox), only slower; and a recorder that died is started again for the
commands that follow. Errors are raised for the front end to present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prtrace_client.recorder import daemon
from prtrace_client.recorder.session import NoActiveSession, PreparedRun, Recorder


def begin_run(argv: list[str], cwd: Path, *, typed: bool = False) -> dict[str, Any]:
    """Record the edits so far and prepare the run of `argv` (as protocol.begin answers)."""
    recorder = Recorder.open(cwd)
    try:
        return recorder.begin_run(argv, cwd, typed=typed).to_dict()
    finally:
        recorder.outbox.close()


def finish_run(
    prepared: dict[str, Any], exit_code: int, out: bytes, err: bytes, duration_ms: int
) -> None:
    """Record the run `begin` prepared whose `end` the recorder did not acknowledge."""
    recorder = Recorder.open(Path(prepared["workdir"]))
    try:
        recorder.finish_run(PreparedRun.from_dict(prepared), exit_code, out, err, duration_ms)
    finally:
        recorder.outbox.close()
    daemon.revive(recorder)


def record_commit(cwd: Path) -> int | None:
    """Record HEAD of the repository holding `cwd` (the post-commit hook); its seq, None
    when it was recorded already or no session records there (a leftover hook)."""
    try:
        recorder = Recorder.open(cwd)
    except NoActiveSession:
        return None
    try:
        return recorder.record_commit()
    finally:
        recorder.outbox.close()
