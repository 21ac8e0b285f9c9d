"""`prtrace record start|stop|status|watch`, `prtrace run -- CMD…`, `prtrace note "…"` and
the internal `prtrace hook post-commit`: recording a session in a git repository.

Recording never waits for the network: events go to the local outbox. The session's
recorder process (prtrace_client/recorder/daemon.py) records `prtrace run` and commits
quickly and delivers live in the background; `record stop` delivers the rest (or `prtrace
push` later, when the API was unreachable). Without a running recorder, commands record
directly (prtrace_client/recorder/direct.py). This module is the commands' presentation:
options, messages, exit codes; the recording itself is the recorder package's.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer

from prtrace_cli.console import LazyConsole, escape
from prtrace_cli.remote import (
    EndpointOption,
    JsonOption,
    OutboxOption,
    ProgressOption,
    TokenOption,
    push_advice,
)
from prtrace_client.recorder.protocol import DEFAULT_DELIVER_EVERY_S, DELIVER_EVERY_ENV

err = LazyConsole(stderr=True, soft_wrap=True)
# snapshot.DEFAULT_MAX_BYTES in MiB, spelled out: importing the recorder costs `--help` 0.2 s.
DEFAULT_MAX_SNAPSHOT_MB = 100
record_app = typer.Typer(
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Record a bug-fixing session in a git repository (start, status, watch, stop).",
)
hook_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Git hooks prtrace installs (internal)."
)

MaxSnapshotOption = Annotated[
    int,
    typer.Option(
        "--max-snapshot-mb",
        min=1,
        help="Refuse a workspace snapshot over this many MiB (before compression).",
    ),
]


@contextmanager
def _errors() -> Iterator[None]:
    """One actionable message instead of a traceback for everything expected."""
    from prtrace_client.errors import ConfigError, PrtraceError
    from prtrace_client.recorder.issues import IssueError
    from prtrace_client.recorder.session import RecorderError
    from prtrace_client.recorder.snapshot import SnapshotError

    try:
        yield
    except (ConfigError, IssueError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except (RecorderError, SnapshotError, PrtraceError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None


def _emit(document: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")


@record_app.command("start")
def start(
    title: Annotated[
        str | None, typer.Option(help="What is being fixed (or give --issue).")
    ] = None,
    description: Annotated[str, typer.Option(help="More about the task.")] = "",
    issue: Annotated[
        str | None,
        typer.Option(help="A GitHub or GitLab issue URL to take the title and description from."),
    ] = None,
    author: Annotated[
        str | None, typer.Option(help="Who fixes it (default: git's user.email).")
    ] = None,
    agent: Annotated[bool, typer.Option("--agent", help="The author is an agent.")] = False,
    hook: Annotated[
        bool, typer.Option("--hook/--no-hook", help="Record commits with a post-commit hook.")
    ] = True,
    max_snapshot_mb: MaxSnapshotOption = DEFAULT_MAX_SNAPSHOT_MB,
    allow_dirty: Annotated[
        bool,
        typer.Option(
            "--allow-dirty",
            help="Record even though the working tree has uncommitted changes (refused "
            "otherwise): the trace is marked dirty, as its patch will not apply to the base "
            "commit, and dataset exports mark its instance unusable.",
        ),
    ] = False,
    recorder_process: Annotated[
        bool,
        typer.Option(
            "--recorder/--no-recorder",
            help="Run a background recorder: fast `prtrace run`, live delivery.",
        ),
    ] = True,
    deliver_every: Annotated[
        float,
        typer.Option(
            "--deliver-every",
            envvar=DELIVER_EVERY_ENV,
            min=0,
            help="Send a partly filled chunk at most this many seconds after its first "
            "event (full chunks go at once); 0 delivers only at `record stop`.",
        ),
    ] = DEFAULT_DELIVER_EVERY_S,
    shell: Annotated[
        str | None,
        typer.Option(
            "--shell",
            metavar="bash|zsh",
            help="Also print shell integration to eval: every command typed in this shell "
            'is recorded (not its output), e.g. eval "$(prtrace record start --title … '
            '--shell bash)".',
        ),
    ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    outbox: OutboxOption = None,
    json_output: JsonOption = False,
) -> None:
    """Start recording in this git repository.

    Snapshots the workspace as the base, opens a trace, installs the commit hook and starts
    the session's recorder, which delivers the session live. The working tree must be
    clean (commit or stash first), unless --allow-dirty. Then use `prtrace run -- …`,
    `prtrace note "…"`, commit as usual, and `prtrace record stop`.
    """
    from prtrace_client.outbox import Outbox, default_outbox_path
    from prtrace_client.recorder import daemon
    from prtrace_client.recorder.issues import task_from_issue
    from prtrace_client.recorder.session import Recorder, RecorderError

    with _errors():
        if shell is not None:
            _check_shell(shell)
            if json_output:
                raise typer.BadParameter("--shell prints code to eval: not with --json")
        if issue:
            task = task_from_issue(issue)
            title = title or task["title"]
            description = description or task["description"]
        if not title:
            raise RecorderError('the task needs a title: pass --title "…" or --issue URL')
        journal = Outbox.open(outbox or default_outbox_path())
        try:
            recorder = Recorder.start(
                Path.cwd(),
                journal,
                title=title,
                description=description,
                author=author,
                author_kind="agent" if agent else "human",
                max_snapshot_bytes=max_snapshot_mb * 2**20,
                install_hook=hook,
                allow_dirty=allow_dirty,
            )
        finally:
            journal.close()
    pid = None
    if recorder_process:
        # The recorder finds the API as every command does; explicit options reach it
        # through its environment (never its argv, which `ps` shows).
        for name, value in (("PRTRACE_ENDPOINT", endpoint), ("PRTRACE_TOKEN", token)):
            if value:
                os.environ[name] = value
        pid = daemon.spawn(recorder, every_s=deliver_every)
    info = recorder.info
    if json_output:
        _emit({"session": info.local_id, "repo": info.repo, "base_commit": info.base_commit,
               "base_snapshot": info.base_snapshot, "outbox": info.outbox,
               "hook_installed": info.hook_installed, "dirty": info.dirty,
               "recorder_pid": pid})  # fmt: skip
        return
    err.print(
        f"recording session {info.local_id} in {info.repo} "
        f"(base {info.base_commit[:12]}, snapshot {info.base_snapshot['size']:,} bytes)"
    )
    if info.dirty:
        err.print(
            "[yellow]warning:[/yellow] the working tree had uncommitted changes: the trace is "
            f"marked dirty (its patch will not apply to {info.base_commit[:12]})"
        )
    if recorder_process and pid is None:
        err.print(
            "[yellow]warning:[/yellow] the background recorder did not start (see "
            f"{recorder.directory / 'recorder.log'}); commands are recorded directly (slower)"
        )
    err.print('next: prtrace run -- pytest …, prtrace note "why…", git commit, prtrace record stop')
    if shell is not None:
        from prtrace_client.recorder.shell import snippet

        sys.stdout.write(snippet(shell))
        err.print(f"{shell} integration: the commands typed in this shell are recorded")


def _check_shell(shell: str) -> None:
    from prtrace_client.recorder.shell import SHELLS

    if shell not in SHELLS:
        raise typer.BadParameter(
            f"no shell integration for {shell!r}: choose one of {', '.join(SHELLS)}",
            param_hint="--shell",
        )


@record_app.command("shell")
def shell_command(
    shell: Annotated[str, typer.Argument(metavar="bash|zsh", help="The interactive shell.")],
) -> None:
    """Print shell integration to eval: each command typed in this shell is recorded in the
    active session of its repository (command line, directory, exit code, duration; not its
    output). eval "$(prtrace record shell bash)"; PRTRACE_SHELL_DENY / PRTRACE_SHELL_ALLOW
    change which commands are recorded (default: not cd, editors, pagers, prtrace, builtins).
    """
    from prtrace_client.recorder.shell import snippet

    _check_shell(shell)
    sys.stdout.write(snippet(shell))


@record_app.command("stop")
def stop(
    wait: Annotated[
        bool, typer.Option("--wait", help="Then follow the pipeline until it ends.")
    ] = False,
    max_snapshot_mb: MaxSnapshotOption = DEFAULT_MAX_SNAPSHOT_MB,
    exclude_redacted: Annotated[
        bool | None,
        typer.Option(
            "--exclude-redacted/--keep-redacted",
            help="Leave out of the final snapshot (or keep in it) the files that still hold "
            "a secret redacted from their diffs; QA then runs without them. Asked on a "
            "terminal, else kept with a warning.",
        ),
    ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    progress: ProgressOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop recording, deliver the trace and finalize it.

    Captures the last edits, snapshots the final workspace, delivers everything and
    finalizes; prints the trace id (stdout) and its status.
    """
    from prtrace_cli.remote import delivery_feedback
    from prtrace_client.client import PrtraceClient
    from prtrace_client.errors import PrtraceError
    from prtrace_client.outbox import Flusher, Outbox
    from prtrace_client.recorder import daemon
    from prtrace_client.recorder.session import Recorder

    with _errors():
        recorder = Recorder.open(Path.cwd())
        # The recorder process exits first: what it acknowledged is in the outbox.
        daemon.stop(recorder.directory)
        try:
            if exclude_redacted is None:
                recorder.capture_edits()
                holding = recorder.still_holding_secrets()
                exclude_redacted = bool(holding) and _ask_to_exclude(holding, json_output)
            stopped = recorder.stop(
                max_snapshot_bytes=max_snapshot_mb * 2**20, exclude_redacted=exclude_redacted
            )
        finally:
            recorder.outbox.close()
    result: dict[str, Any] = {
        "session": stopped.local_id,
        "events": stopped.events,
        "redactions": stopped.redactions,
        "redacted_in_snapshot": list(stopped.redacted_in_snapshot),
        "excluded_from_snapshot": list(stopped.excluded_redacted),
        "trace_id": None,
        "status": "recorded",
        "delivered": False,
    }
    failure: PrtraceError | None = None
    with Outbox.open(stopped.outbox) as journal:
        try:
            with (
                PrtraceClient(endpoint, token) as client,
                delivery_feedback(progress) as on_progress,
            ):
                Flusher(journal, client, on_progress=on_progress).push(stopped.local_id)
                state = journal.state(stopped.local_id)
                view = state.finalized or {}
                if wait and state.trace_id:
                    view = client.wait(state.trace_id)
        except PrtraceError as exc:
            result["error"] = str(exc)
            failure = exc
        state = journal.state(stopped.local_id)
        result |= {"trace_id": state.trace_id, "delivered": state.delivered}
        if state.delivered:
            result["status"] = view.get("status", "finalizing")
    if stopped.redacted_in_snapshot:
        err.print(
            "[yellow]warning:[/yellow] secrets were redacted from the diffs of "
            f"{escape(', '.join(stopped.redacted_in_snapshot))}, but the final snapshot holds "
            "them in clear (`record stop --exclude-redacted` leaves such files out)"
        )
    elif stopped.excluded_redacted:
        err.print(
            "left out of the final snapshot (they hold redacted secrets): "
            f"{escape(', '.join(stopped.excluded_redacted))}"
        )
    if json_output:
        _emit(result)
    else:
        if result["trace_id"]:
            typer.echo(result["trace_id"])
        err.print(
            f"{stopped.events} events, {stopped.redactions} secrets redacted; "
            f"status: {result['status']}"
        )
    if failure is not None:
        err.print(
            f"[red]error:[/red] not delivered yet: {escape(result['error'])}; "
            f"{escape(push_advice(failure))}"
        )
        raise typer.Exit(1)


def _ask_to_exclude(holding: list[str], json_output: bool) -> bool:
    """On a terminal, whether to leave the files holding secrets out of the snapshot."""
    if json_output or not sys.stdin.isatty():
        return False
    err.print(
        f"secrets were redacted from the diffs of {escape(', '.join(holding))}; the final "
        "snapshot would hold them in clear."
    )
    return typer.confirm("Leave them out of the final snapshot?", default=True, err=True)


@record_app.command("status")
def record_status(json_output: JsonOption = False) -> None:
    """Show the session recording in this repository, if any."""
    from prtrace_client.recorder import daemon
    from prtrace_client.recorder.session import NoActiveSession, Recorder

    with _errors():
        try:
            recorder = Recorder.open(Path.cwd())
        except NoActiveSession as exc:
            if json_output:
                _emit({"recording": False})
                return
            err.print(str(exc))
            raise typer.Exit(1) from None
        try:
            state = recorder.outbox.state(recorder.info.local_id)
            holding = recorder.still_holding_secrets()
        finally:
            recorder.outbox.close()
        running = daemon.status(recorder.directory)
    document = {
        "recording": True,
        "session": recorder.info.local_id,
        "started_at": recorder.info.started_at,
        "events": state.events,
        "journaled": state.events,
        "delivered": state.delivered_events,
        "pending": state.events - state.delivered_events,
        "redactions": recorder.info.redactions,
        "holding_redacted_secrets": holding,
        "trace_id": state.trace_id,
        "recorder": None
        if running is None
        else {k: running.get(k) for k in ("pid", "live", "deliver_every_s", "last_delivery")},
        "last_error": None if running is None else running.get("last_error"),
    }
    if json_output:
        _emit(document)
        return
    err.print(
        f"recording {document['session']} since {document['started_at']}: "
        f"{state.events} events journaled, {state.delivered_events} delivered, "
        f"{document['pending']} pending; {recorder.info.redactions} secrets redacted"
    )
    if state.trace_id:
        err.print(f"trace {state.trace_id}")
    if running is None:
        err.print("recorder: not running (commands are recorded directly, delivered at stop)")
    else:
        live = "live delivery" if running.get("live") else "no live delivery"
        err.print(f"recorder: pid {running.get('pid')}, {live}")
    if document["last_error"]:
        err.print(f"last error: {escape(str(document['last_error']))}")
    if holding:
        err.print(
            f"files holding redacted secrets: {escape(', '.join(holding))} (the final "
            "snapshot holds them in clear unless `record stop --exclude-redacted`)"
        )


@record_app.command("watch")
def watch(
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between scans.")] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Scan once and exit.")] = False,
) -> None:
    """Record file edits as they happen (polls the working tree; Ctrl-C to end)."""
    from prtrace_client.recorder.session import NoActiveSession, Recorder

    with _errors():
        recorder = Recorder.open(Path.cwd())
        try:
            while True:
                count = recorder.capture_edits()
                if count:
                    err.print(f"recorded {count} file edit(s)")
                if once:
                    return
                time.sleep(interval)
        except (KeyboardInterrupt, NoActiveSession):
            return
        finally:
            recorder.outbox.close()


def run_command(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments.")],
) -> None:
    """Run and record a command: prtrace run -- pytest -x

    Its output is shown live and recorded (redacted); pytest runs are recorded as test
    runs with counts and failing tests. Exits with the command's exit code.
    """
    from prtrace_client.recorder import daemon
    from prtrace_client.recorder.session import Recorder, RecorderError

    with _errors():
        try:
            recorder = Recorder.open(Path.cwd())
        except RecorderError as exc:  # no session, not a git repository, …
            # The command still runs: its exit status must be its own, never ours.
            err.print(f"[yellow]warning:[/yellow] not recorded: {escape(str(exc))}")
            code = _run_unrecorded(command)
        else:
            try:
                code = recorder.run(command).exit_code
            finally:
                recorder.outbox.close()
            daemon.revive(recorder)  # its recorder process died: start another
    raise typer.Exit(code if 0 <= code <= 255 else 128 + abs(code))


def _run_unrecorded(command: list[str]) -> int:
    import subprocess

    try:
        return subprocess.run(command, check=False).returncode  # noqa: S603 - the user's own
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot run {escape(command[0])}: {escape(str(exc))}")
        return 127


def finish_run_directly(
    prepared: dict[str, Any], exit_code: int, out: bytes, err_out: bytes, duration_ms: int
) -> int:
    """The fast path ran a command but its recorder did not acknowledge the end: record it
    in this process. Returns the exit status for the wrapper. (Shell agents started by
    earlier versions import this by name.)"""
    from prtrace_client.recorder import direct

    try:
        with _errors():
            direct.finish_run(prepared, exit_code, out, err_out, duration_ms)
    except typer.Exit as exc:
        return exc.exit_code
    return exit_code if 0 <= exit_code <= 255 else 128 + abs(exit_code)


def note_command(
    text: Annotated[str, typer.Argument(help="Why: a hypothesis, a plan, an observation.")],
    kind: Annotated[
        Literal["hypothesis", "plan", "observation", "decision"],
        typer.Option(help="What kind of note this is."),
    ] = "observation",
) -> None:
    """Record a rationale note (edits made so far are recorded first); at most 16,384
    characters."""
    from prtrace_client.recorder.session import Recorder

    note_kind: NoteKind = kind
    with _errors():
        recorder = Recorder.open(Path.cwd())
        try:
            recorder.note(text, note_kind)
        finally:
            recorder.outbox.close()
    err.print(f"noted ({kind})")


@hook_app.command("post-commit")
def post_commit() -> None:
    """Record the commit just made (run by the installed git hook)."""
    from prtrace_client.recorder import direct

    with _errors():
        direct.record_commit(Path.cwd())  # a leftover hook, no session: records nothing


def post_commit_hook() -> int:
    """The hook's entry point: only this module's imports, so commits stay quick."""
    try:
        post_commit()
    except typer.Exit as exc:
        return exc.exit_code
    return 0


def register(app: typer.Typer) -> None:
    app.add_typer(record_app, name="record")
    app.command(
        "run",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(run_command)
    app.command("note")(note_command)
    app.add_typer(hook_app, name="hook", hidden=True)


if TYPE_CHECKING:  # the commands import these when they run (fast --help)
    from prtrace_client.recorder.session import NoteKind
