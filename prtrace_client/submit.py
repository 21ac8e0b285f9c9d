"""Submitting pre-recorded traces.

Two layouts:
  * a trace directory (examples/sample-trace-chunks): trace.json (TraceMetadata),
    chunk-NNN.json (chunk bodies, sent as they are), artifacts/ (uploaded first) and an
    optional finalize.json (its snapshots are used);
  * a JSONL file of events, one per line (seq optional: if given it must count from 0),
    with the metadata from a separate file; the outbox cuts it into chunks, so an
    interrupted submission is finished by `prtrace push` (or by submitting it again).

Both are safe to repeat: the trace is created under an Idempotency-Key derived from the
content, so a second run finishes the same trace instead of creating another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from prtrace.media_types import of_path
from prtrace_client.client import PrtraceClient
from prtrace_client.errors import PrtraceError
from prtrace_client.outbox import Flusher, Outbox


class InvalidSubmission(PrtraceError):
    """The directory or file is not a trace the client can submit."""


@dataclass
class Submission:
    trace_id: str = ""
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # {name, blob_ref, uploaded}
    receipts: list[dict[str, Any]] = field(default_factory=list)
    finalized: dict[str, Any] = field(default_factory=dict)  # the finalize answer


def media_type(path: Path) -> str:
    return of_path(path)


def _read_json(path: Path, what: str) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InvalidSubmission(f"{path} is missing: {what}") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidSubmission(f"{path} is not valid JSON ({exc}): {what}") from None


def submit_directory(
    client: PrtraceClient,
    directory: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> Submission:
    """Submit a trace directory (see the module doc) and finalize it."""
    if not directory.is_dir():
        raise InvalidSubmission(f"{directory} is not a directory")
    metadata = _read_json(directory / "trace.json", "the trace metadata (TraceMetadata)")
    chunks = sorted(directory.glob("chunk-*.json"))
    if not chunks:
        raise InvalidSubmission(f"{directory} has no chunk-NNN.json files")
    bodies = [c.read_bytes() for c in chunks]
    content_key = hashlib.sha256(orjson.dumps(metadata) + b"".join(bodies)).hexdigest()[:40]
    result = Submission()
    created = client.create_trace(metadata, idempotency_key=f"submit-{content_key}")
    result.trace_id = trace_id = str(created["trace_id"])
    progress(f"trace {trace_id}")
    if client.get_trace(trace_id)["status"] == "open":
        # Finalized already means an earlier run lost only the finalize answer.
        for path in sorted((directory / "artifacts").glob("*")):
            if not path.is_file():
                continue
            upload = client.upload_artifact(
                trace_id, path, media_type(path), idempotency_key=f"artifact-{trace_id}-{path.name}"
            )
            result.artifacts.append(
                {"name": path.name, "blob_ref": upload.blob_ref, "uploaded": upload.uploaded}
            )
            progress(f"artifact {path.name}")
        for seq, body in enumerate(bodies):
            result.receipts.append(client.put_chunk(trace_id, seq, body))
            progress(f"chunk {seq}")
    finalize: dict[str, Any] = {}
    if (directory / "finalize.json").exists():
        finalize = _read_json(directory / "finalize.json", "the finalize request")
    result.finalized = client.finalize(
        trace_id,
        len(bodies),
        snapshots=finalize.get("snapshots"),
        idempotency_key=f"finalize-{trace_id}",
    )
    return result


def read_jsonl_events(path: Path) -> list[dict[str, Any]]:
    """Events of a JSONL file, without their seq (checked to count from 0 if present)."""
    events: list[dict[str, Any]] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InvalidSubmission(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(event, dict):
                raise InvalidSubmission(f"{path}:{number}: an event must be a JSON object")
            seq = event.pop("seq", len(events))
            if seq != len(events):
                raise InvalidSubmission(
                    f"{path}:{number}: event seq {seq} where {len(events)} was expected "
                    "(seqs count from 0 without gaps; leave them out to have them assigned)"
                )
            events.append(event)
    if not events:
        raise InvalidSubmission(f"{path} holds no events")
    return events


def submit_jsonl(
    client: PrtraceClient,
    outbox: Outbox,
    path: Path,
    metadata: dict[str, Any],
    *,
    artifacts: Sequence[Path] = (),
    snapshots: dict[str, Any] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[str, Submission]:
    """Journal a JSONL trace in the outbox (once per content) and deliver it; returns
    (local session id, submission). If delivery fails, `prtrace push` finishes it."""
    raw = path.read_bytes()
    digest = hashlib.sha256(orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS) + raw)
    local_id = f"ls_sub_{digest.hexdigest()[:32]}"
    session = outbox.start_trace(metadata, local_id=local_id)
    state = outbox.state(session)
    if state.events == 0:
        events = read_jsonl_events(path)
        wanted = referenced_sha256s([*events, {"snapshots": snapshots or {}}])
        for artifact in artifacts:
            if _file_sha256(artifact) in wanted:  # the others are nobody's: not uploaded
                outbox.add_artifact(session, artifact, media_type(artifact))
        outbox.append_many(session, events)
    if not outbox.state(session).finalize_requested:
        outbox.request_finalize(session, snapshots=snapshots)
    Flusher(outbox, client, on_progress=on_progress).push(session)
    done = outbox.state(session)
    return session, Submission(trace_id=done.trace_id or "", finalized=done.finalized or {})


def referenced_sha256s(documents: Sequence[Any]) -> set[str]:
    """The sha256 of every blob reference (a mapping with `sha256`) in `documents`."""
    found: set[str] = set()
    pending = list(documents)
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if isinstance(item.get("sha256"), str):
                found.add(item["sha256"])
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def referenced_artifacts(
    paths: Sequence[Path], events_file: Path, snapshots: dict[str, Any] | None
) -> tuple[list[Path], list[Path]]:
    """`paths` split into the files the JSONL trace's events (or its snapshots) reference by
    sha256, and the others."""
    wanted = referenced_sha256s([*read_jsonl_events(events_file), {"snapshots": snapshots or {}}])
    used: list[Path] = []
    unused: list[Path] = []
    for path in paths:
        (used if _file_sha256(path) in wanted else unused).append(path)
    return used, unused


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
