"""`prtrace submit | push | status | traces`: the commands that talk to the prtrace API.

Endpoint and token come from --endpoint/--token, then PRTRACE_ENDPOINT/PRTRACE_TOKEN, then
~/.config/prtrace/config.toml (or $PRTRACE_CONFIG), then a running local cloud. Each
command prints a human view by default and one JSON document with --json. Expected
failures (no configuration, unreachable API, refused requests) print one actionable
message and exit non-zero: 1 for a failed request, 2 for a usage or configuration error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from prtrace_cli.console import LazyConsole, escape

err = LazyConsole(stderr=True, soft_wrap=True)

EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint",
        help="API endpoint (default: PRTRACE_ENDPOINT, the config file, or the local cloud).",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", help="Bearer token (default: PRTRACE_TOKEN or the config file).",
                 show_default=False),
]  # fmt: skip
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OutboxOption = Annotated[
    Path | None,
    typer.Option(
        "--outbox",
        envvar="PRTRACE_OUTBOX",
        help="The local journal (default: ~/.local/share/prtrace/outbox.db).",
        show_default=False,
    ),
]
ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Show delivery progress on stderr (default: when stderr is a terminal).",
        show_default=False,
    ),
]
_STYLE = {"complete": "green", "rejected": "yellow", "failed": "red"}


@contextmanager
def cli_errors(*usage: type[Exception]) -> Iterator[None]:
    """One clear message instead of a traceback for everything expected: configuration
    and `usage` errors exit 2, a failed request exits 1."""
    from prtrace_client import ConfigError, PrtraceError
    from prtrace_client.submit import InvalidSubmission

    expected_usage: tuple[type[Exception], ...] = (ConfigError, InvalidSubmission, *usage)
    try:
        yield
    except expected_usage as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except PrtraceError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None


@contextmanager
def delivery_feedback(progress: bool | None) -> Iterator[Callable[[str, int, int], None] | None]:
    """While delivering: each retry said on stderr, and (on a terminal, or with --progress)
    a progress display of the artifacts and chunks sent. Yields the Flusher's on_progress."""
    import logging

    class RetryMessages(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if "retrying" in message:
                err.print(f"[yellow]retrying:[/yellow] {escape(message)}")

    logger = logging.getLogger("prtrace_client")
    handler = RetryMessages(logging.INFO)
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        if not (sys.stderr.isatty() if progress is None else progress):
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        console = err.get()  # on a terminal it goes away when done; elsewhere it stays
        with Progress(*columns, console=console, transient=console.is_terminal) as display:
            tasks: dict[str, Any] = {}

            def update(kind: str, done: int, total: int) -> None:
                if kind not in tasks:
                    tasks[kind] = display.add_task(f"sending {kind}", total=total)
                display.update(tasks[kind], completed=done, total=total)

            yield update
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def push_advice(exc: BaseException) -> str:
    """What to do about a delivery that failed with `exc`: `prtrace push` helps only once
    the token and the endpoint are right."""
    from prtrace_client import ConfigError
    from prtrace_client.errors import Unauthorized

    if isinstance(exc, Unauthorized):
        scope = " with the ingest scope" if exc.status == 403 else ""
        return (
            f"the session is safe in the outbox; set a valid token{scope} (PRTRACE_TOKEN or "
            "--token), then run `prtrace push`"
        )
    if isinstance(exc, ConfigError):
        return "the session is safe in the outbox; configure the API, then run `prtrace push`"
    return "the session is safe in the outbox, run `prtrace push` when the API is reachable"


def _client(endpoint: str | None, token: str | None) -> PrtraceClient:
    from prtrace_client import PrtraceClient

    return PrtraceClient(endpoint, token)


def _print_json(document: Any) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")


def submit(
    path: Annotated[
        Path,
        typer.Argument(
            help="A trace directory (trace.json, chunk-NNN.json, artifacts/, finalize.json) "
            "or a JSONL file of events.",
            show_default=False,
        ),
    ],
    metadata: Annotated[
        Path | None,
        typer.Option(help="TraceMetadata JSON for a JSONL file (default: trace.json beside it)."),
    ] = None,
    artifacts: Annotated[
        Path | None,
        typer.Option(help="For a JSONL file: a directory of artifacts its events reference."),
    ] = None,
    finalize: Annotated[
        Path | None,
        typer.Option(help="For a JSONL file: finalize.json with the workspace snapshots."),
    ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    outbox: OutboxOption = None,
    progress: ProgressOption = None,
    json_output: JsonOption = False,
) -> None:
    """Submit a pre-recorded trace and finalize it.

    Safe to run again after a failure: it finishes the same trace, never a second one."""
    from prtrace_client import Outbox, default_outbox_path
    from prtrace_client.submit import (
        InvalidSubmission,
        referenced_artifacts,
        submit_directory,
        submit_jsonl,
    )

    with cli_errors():
        if not path.exists():
            raise InvalidSubmission(f"{path} does not exist")
        with _client(endpoint, token) as client:
            if path.is_dir():
                with delivery_feedback(False):  # its steps are printed as they go
                    result = submit_directory(client, path, lambda step: err.print(f"  {step}"))
                answer: dict[str, Any] = {
                    "trace_id": result.trace_id,
                    "finalized": result.finalized,
                    "chunks": len(result.receipts),
                    "artifacts": result.artifacts,
                }
            else:
                meta_path = metadata or path.with_name("trace.json")
                if not meta_path.is_file():
                    raise InvalidSubmission(
                        f"no trace metadata for {path}: pass --metadata FILE "
                        f"(a TraceMetadata JSON; {meta_path} does not exist)"
                    )
                meta = orjson.loads(meta_path.read_bytes())
                snapshots = (
                    orjson.loads(finalize.read_bytes()).get("snapshots") if finalize else None
                )
                extra_files: list[Path] = []
                if artifacts:
                    if not artifacts.is_dir():
                        raise InvalidSubmission(f"--artifacts {artifacts} is not a directory")
                    extra_files, unused = referenced_artifacts(
                        sorted(p for p in artifacts.iterdir() if p.is_file()), path, snapshots
                    )
                    if unused:
                        err.print(
                            f"  not uploading {_plural(len(unused), 'file')} of {artifacts} "
                            "that no event references"
                        )
                with (
                    Outbox.open(outbox or default_outbox_path()) as journal,
                    delivery_feedback(progress) as on_progress,
                ):
                    session, result = submit_jsonl(
                        client,
                        journal,
                        path,
                        meta,
                        artifacts=extra_files,
                        snapshots=snapshots,
                        on_progress=on_progress,
                    )
                answer = {
                    "trace_id": result.trace_id,
                    "finalized": result.finalized,
                    "session": session,
                }
    if json_output:
        _print_json(answer)
        return
    view = answer["finalized"]
    err.print(
        f"submitted [bold]{answer['trace_id']}[/bold]: "
        f"{_plural(view.get('events_received', '?'), 'event')} in "
        f"{_plural(view.get('chunks_received', '?'), 'chunk')}, status {view.get('status')}"
    )
    typer.echo(answer["trace_id"])


def push(
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    outbox: OutboxOption = None,
    progress: ProgressOption = None,
    json_output: JsonOption = False,
) -> None:
    """Deliver everything recorded that the API has not acknowledged yet.

    Run it after a crash, a reboot or an outage: it sends exactly what is missing."""
    from rich.console import Console
    from rich.table import Table

    from prtrace_client import Flusher, Outbox, PrtraceError, default_outbox_path

    failures: list[PrtraceError] = []
    rows: list[dict[str, Any]] = []
    with cli_errors():
        path = outbox or default_outbox_path()
        if not path.exists():
            err.print(f"nothing to push: no outbox at {path}")
            if json_output:
                _print_json({"sessions": []})
            return
        with (
            Outbox.open(path) as journal,
            _client(endpoint, token) as client,
            delivery_feedback(progress) as on_progress,
        ):
            flusher = Flusher(journal, client, on_progress=on_progress)
            for state in journal.sessions(pending_only=True):
                row: dict[str, Any] = {"session": state.local_id, "title": state.title}
                try:
                    report = flusher.push(state.local_id)
                except PrtraceError as exc:
                    failures.append(exc)
                    row["error"] = str(exc)
                    err.print(f"[red]error:[/red] {state.local_id}: {escape(str(exc))}")
                else:
                    row |= {"chunks_sent": report.chunks_sent, "events_sent": report.events_sent,
                            "artifacts_uploaded": report.artifacts_uploaded}  # fmt: skip
                done = journal.state(state.local_id)
                row |= {"trace_id": done.trace_id, "delivered": done.delivered,
                        "status": (done.finalized or {}).get("status", "open")}  # fmt: skip
                rows.append(row)
    if json_output:
        _print_json({"sessions": rows})
    elif not rows:
        err.print("nothing to push: every recorded session is delivered")
    else:
        table = Table("session", "trace", "sent", "state")
        for row in rows:
            state_text = (
                f"[red]{escape(row['error'][:120])}[/red]"
                if "error" in row
                else ("delivered, " + str(row["status"]) if row["delivered"] else "pending")
            )
            sent = (
                f"{_plural(row.get('events_sent', 0), 'event')} / "
                f"{_plural(row.get('chunks_sent', 0), 'chunk')}"
            )
            table.add_row(row["session"], row["trace_id"] or "-", sent, state_text)
        Console().print(table)
    if failures:
        err.print(push_advice(failures[-1]).replace("the session is", "what was not delivered is"))
        raise typer.Exit(1)


def status(
    trace_id: Annotated[str, typer.Argument(help="The trace id (tr_…).", show_default=False)],
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Follow the pipeline until it ends.")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 2.0,
    timeout: Annotated[
        float | None, typer.Option(help="Stop watching after this many seconds.")
    ] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a trace's status and counts (--watch: follow it until the pipeline ends).

    Exit code 1 when the trace was rejected or failed."""
    from rich.console import Console
    from rich.live import Live

    with cli_errors(), _client(endpoint, token) as client:
        if not watch:
            view = client.get_trace(trace_id)
        elif json_output or not sys.stderr.isatty():
            seen: list[str] = []

            def changed(update: dict[str, Any]) -> None:  # one line per stage, for logs
                current = str(update.get("status"))
                if not seen or seen[-1] != current:
                    seen.append(current)
                    err.print(f"{trace_id}: {escape(current)}")

            view = client.wait(trace_id, poll_s=interval, timeout_s=timeout, on_update=changed)
        else:
            with Live(
                _progress(client.get_trace(trace_id)), console=err.get(), transient=False
            ) as live:
                view = client.wait(
                    trace_id,
                    poll_s=interval,
                    timeout_s=timeout,
                    on_update=lambda v: live.update(_progress(v)),
                )
    if json_output:
        _print_json(view)
    elif not watch or not sys.stderr.isatty():  # a live display was not shown
        console = Console()
        console.width = max(console.width, 160)  # one line of stages; ids never cut
        console.print(_progress(view))
    if view.get("status") in ("rejected", "failed"):
        raise typer.Exit(1)


def _plural(count: object, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _progress(view: dict[str, Any]) -> Table:
    """Stages as a checklist: done ✓, current ●, to come ·; an unknown status is shown
    as it is (newer servers may add stages)."""
    from rich.table import Table
    from rich.text import Text

    from prtrace_client import PIPELINE_STATUSES, TERMINAL_STATUSES

    current = str(view.get("status", "?"))
    table = Table.grid(padding=(0, 1))
    table.add_row(Text("trace", style="bold"), Text(str(view.get("trace_id", ""))))
    events, chunks = view.get("events_received", 0), view.get("chunks_received", 0)
    counts = f"{_plural(events, 'event')} in {_plural(chunks, 'chunk')}"
    table.add_row(Text("received", style="bold"), Text(counts))
    stages = [s for s in PIPELINE_STATUSES if s not in TERMINAL_STATUSES]
    outcome = view.get("outcome") if isinstance(view.get("outcome"), dict) else {}
    assert isinstance(outcome, dict)
    qa_skipped = outcome.get("qa_skipped")
    line = Text()
    index = stages.index(current) if current in stages else None
    for position, stage in enumerate(stages):
        if stage == "testing" and qa_skipped and current in TERMINAL_STATUSES:
            line.append(f"- testing skipped ({qa_skipped})  ", style="yellow")
        elif current in TERMINAL_STATUSES or (index is not None and position < index):
            line.append(f"✓ {stage}  ", style="green")
        elif index == position:
            line.append(f"● {stage}  ", style="bold cyan")
        else:
            line.append(f"· {stage}  ", style="dim")
    if current in TERMINAL_STATUSES:
        line.append(f"■ {current}", style=f"bold {_STYLE[current]}")
    elif index is None:
        line.append(f"● {current} (unknown stage)", style="bold magenta")
    table.add_row(Text("status", style="bold"), line)
    for name, value in _outcome_rows(current, outcome):
        table.add_row(Text(name, style="bold"), value)
    for name, url in sorted((view.get("links") or {}).items()):
        if url:  # a result that does not exist (no QA report when QA was skipped) is left out
            table.add_row(Text(str(name), style="bold"), Text(str(url)))
    return table


def _outcome_rows(status: str, outcome: dict[str, Any]) -> list[tuple[str, Text]]:
    """How the pipeline ended: QA's verdict and the judge's scores, the rejection reason or
    the failed stage."""
    from rich.text import Text

    rows: list[tuple[str, Text]] = []
    if status == "complete":
        qa = outcome.get("qa")
        if isinstance(qa, dict):
            counts = ", ".join(
                f"{name} {qa[name].get('count', 0)}"
                for name in ("fail_to_pass", "pass_to_fail")
                if isinstance(qa.get(name), dict)
            )
            verdict = str(qa.get("verdict", "?")) + (f" ({counts})" if counts else "")
            rows.append(("verdict", Text(verdict, style="bold")))
            rows.extend(_qa_rows(qa))
        elif outcome.get("qa_skipped"):
            rows.append(("verdict", Text(f"none: QA skipped ({outcome['qa_skipped']})")))
        judge = outcome.get("judge")
        if isinstance(judge, dict):
            rows.extend(_judge_rows(judge))
    elif status == "rejected" and isinstance(outcome.get("reason"), dict):
        reason = outcome["reason"]
        rows.append(("reason", Text(f"{reason.get('code')}: {reason.get('detail', '')}")))
    elif status == "failed" and outcome:
        rows.append(("failed in", Text(f"{outcome.get('stage')}: {outcome.get('error', '')}")))
    return rows


def _judge_rows(judge: dict[str, Any]) -> list[tuple[str, Text]]:
    """Which judge scored what: the judge's own overall (none when the model was
    unavailable), a stand-in's scores labelled as such, and an ensemble's per-model scores
    and review flag."""
    from rich.text import Text

    def scores(items: object) -> list[tuple[str, Text]]:
        listed = items if isinstance(items, list) else []
        return [
            (f"  {s.get('dimension')}", Text(str(s.get("score", "?"))))
            for s in listed
            if isinstance(s, dict)
        ]

    status = f" ({judge['status']})" if judge.get("status") else ""
    overall = judge.get("overall")
    shown = "none" if overall is None else str(overall)
    rows = [("judge", Text(f"{judge.get('judge', '?')}, overall {shown}{status}"))]
    rows += scores(judge.get("scores"))
    stand_in = judge.get("stand_in")
    if isinstance(stand_in, dict):
        line = (
            f"{stand_in.get('judge', '?')}, overall {stand_in.get('overall')} (not a model score)"
        )
        rows.append(("stand-in", Text(line, style="yellow")))
        rows += scores(stand_in.get("scores"))
    review = judge.get("review")
    if isinstance(review, dict):
        for model in review.get("models") or []:
            if isinstance(model, dict):
                per = ", ".join(f"{k} {v}" for k, v in (model.get("scores") or {}).items())
                rows.append(
                    (f"  {model.get('judge')}", Text(f"overall {model.get('overall')}: {per}"))
                )
    if judge.get("needs_human_review"):
        reasons = review.get("reasons") if isinstance(review, dict) else None
        detail = "; ".join(str(r) for r in reasons or []) or "the answers disagree"
        rows.append(("review", Text(f"needs human review: {detail}", style="bold red")))
    return rows


def _listed(tests: object) -> str | None:
    """A bounded test list of the outcome ({"count", "ids", "truncated"}) as one line."""
    if not isinstance(tests, dict) or not tests.get("count"):
        return None
    ids = [str(i) for i in tests.get("ids") or []]
    more = int(tests["count"]) - len(ids)
    return ", ".join(ids) + (f" (+{more} more)" if more > 0 else "")


def _qa_rows(qa: dict[str, Any]) -> list[tuple[str, Text]]:
    """Why the verdict, the target tests' resolution, the unresolved ones and the flags
    (blocking ones marked), as the outcome states them; nothing is shown that is absent."""
    from rich.text import Text

    rows: list[tuple[str, Text]] = []
    if qa.get("verdict_reason"):
        rows.append(("why", Text(str(qa["verdict_reason"]))))
    if qa.get("resolution"):
        source = qa.get("target_source")
        of = f" (target tests from {source})" if source and source != "none" else ""
        rows.append(("resolution", Text(f"{qa['resolution']}{of}")))
    unresolved = _listed(qa.get("unresolved_targets"))
    if unresolved:
        count = qa["unresolved_targets"]["count"]
        rows.append(("unresolved", Text(f"{count}: {unresolved}", style="yellow")))
    flags = [f for f in qa.get("flags") or [] if isinstance(f, dict)]
    for flag in flags:
        blocking = bool(flag.get("blocking"))
        line = Text(f"{flag.get('code')}", style="bold red" if blocking else "yellow")
        line.append(" (blocking)" if blocking else " (not blocking)")
        if flag.get("detail"):
            line.append(f": {flag['detail']}")
        paths = [str(p) for p in flag.get("paths") or []]
        if paths:
            more = int(flag.get("path_count") or 0) - len(paths)
            line.append(" [" + ", ".join(paths) + (f", +{more} more" if more > 0 else "") + "]")
        rows.append(("flag", line))
    hidden = int(qa.get("flag_count") or 0) - len(flags)
    if hidden > 0:
        rows.append(("flag", Text(f"+{hidden} more in the QA report")))
    return rows


def traces(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 25,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
    json_output: JsonOption = False,
) -> None:
    """List your traces, newest first."""
    from rich.console import Console
    from rich.table import Table

    items: list[dict[str, Any]] = []
    with cli_errors(), _client(endpoint, token) as client:
        for item in client.iter_traces(page_size=min(limit, 100)):
            items.append(item)
            if len(items) >= limit:
                break
    if json_output:
        _print_json({"items": items})
        return
    if not items:
        err.print("no traces yet: `prtrace submit DIR` or `prtrace record start` makes one")
        return
    table = Table("trace", "status", "events", "created", "task")
    for item in items:
        state = str(item.get("status"))
        table.add_row(
            str(item["trace_id"]),
            f"[{_STYLE.get(state, 'cyan')}]{escape(state)}[/]",
            str(item.get("events_received", 0)),
            str(item.get("created_at", "")),
            escape(str(item.get("metadata", {}).get("task", {}).get("title", ""))[:60]),
        )
    console = Console()
    console.width = max(console.width, 140)  # ids are copied into other commands: never cut
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("push")(push)
    app.command("status")(status)
    app.command("traces")(traces)


if TYPE_CHECKING:  # the commands import these when they run (fast --help)
    from rich.table import Table
    from rich.text import Text

    from prtrace_client import PrtraceClient, PrtraceError
