"""Trajectories: one record per trace for training and evaluating coding agents. Every
event becomes a step (what the developer did, what came back), followed by the QA verdict,
the judge's scores with their rationales and citations (as step indexes), the integrity
summary, and the session rendered as an OpenAI-format chat.

Pure: the caller fetches the bundle and passes a reader for artifacts (`sha256 → bytes`,
None when unreadable); nothing here touches a file, the network or the clock, so the same
bundle and artifacts give the same record, byte for byte (written with `export_json`).

The record is shaped for loaders (Hugging Face `datasets`, pandas, pyarrow, DuckDB), which
give each column one type, inferred from the data (`datasets` from the first 10 MiB of a
file only, and it then refuses a later value where all it saw was null or `[]`). So a field
is a typed column only when every record has a value of that type; whatever varies in
shape or may be null or empty (a step's action and observation, its artifact lists, the QA
verdict, the judge's scores) is canonical JSON text. `messages` stays structured (the chat
shape trainers read), with the same four keys in every message. And no top-level `type`,
`id`, `message` or `payload`: with those, `datasets` takes a file for an agent harness's
log and will not load it.

Nothing is added that the stored trace does not hold and nothing is un-redacted: the
recorder redacted secrets before upload, and the stored text is exported as stored.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any, Final

from prtrace.dataset.rows import TraceBundle, export_json, flag_codes, swebench_instance
from prtrace.judge.result import DimensionScore, JudgeResult
from prtrace.qa.report import QAReport
from prtrace.schema import BlobRef, CmdRunEvent, CommitEvent, Event, FileEditEvent, TestRunEvent

TRAJECTORY_VERSION: Final = "prtrace.trajectory/v1"
TRAJECTORIES_FILE: Final = "trajectories.jsonl"
ARTIFACTS_DIR: Final = "artifacts"
# The tool each action is called in `messages` (a note is assistant text, not a call).
TOOL_NAMES: Final = {
    "cmd_run": "run_command",
    "file_edit": "edit_file",
    "test_run": "run_tests",
    "commit": "commit",
}

ReadArtifact = Callable[[str], bytes | None]


@dataclass(frozen=True)
class ObservationCaps:
    """How much of a step's text is kept inline, and which artifacts travel with it."""

    # Bytes of text kept inline per step: the observation's texts share it, the action's
    # diff has as much again. Longer text keeps its head and tail around a marker.
    inline_bytes: int = 16_384
    # Largest artifact exported beside the trajectories; bigger ones are referenced only.
    artifact_bytes: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.inline_bytes < 0 or self.artifact_bytes < 0:
            raise ValueError("caps are byte counts, 0 or more")


@dataclass(frozen=True)
class Trajectory:
    """One line of `trajectories.jsonl` and the artifacts it brings along (sha256 → bytes,
    written as `artifacts/<sha256>`)."""

    record: dict[str, Any]
    artifacts: dict[str, bytes] = field(default_factory=dict)

    def line(self) -> bytes:
        """The record as its JSON line (keys sorted, no whitespace, newline-terminated)."""
        return export_json(self.record) + b"\n"


def json_text(value: Any) -> str:
    """A value as the text of a JSON-text field (sorted keys, no whitespace)."""
    return export_json(value).decode()


# ---- text that fits -------------------------------------------------------------------


def truncation_marker(dropped: int) -> str:
    """What stands between a clipped text's head and tail."""
    return f"\n[... {dropped} bytes dropped ...]\n"


def _char_start(data: bytes, at: int, *, forward: bool) -> int:
    """`at` moved onto the start of a UTF-8 character (at most 3 continuation bytes away;
    invalid UTF-8 is left to the decoder's replacement character)."""
    step = 1 if forward else -1
    for _ in range(3):
        if not 0 < at < len(data) or data[at] & 0xC0 != 0x80:
            break
        at += step
    return at


def clip(data: bytes, keep: int) -> tuple[str, bool]:
    """`data` as text (UTF-8, invalid bytes replaced): whole when it fits in `keep` bytes,
    else its head and tail (at most `keep` bytes together, cut between characters) around
    a marker stating how many bytes were dropped. Returns the text and whether it was cut."""
    if len(data) <= keep:
        return data.decode("utf-8", "replace"), False
    head_end = _char_start(data, keep // 2, forward=False)
    tail_start = _char_start(data, len(data) - (keep - keep // 2), forward=True)
    head = data[:head_end].decode("utf-8", "replace")
    tail = data[tail_start:].decode("utf-8", "replace")
    return head + truncation_marker(tail_start - head_end) + tail, True


def shares(sizes: Mapping[str, int], budget: int) -> dict[str, int]:
    """Split `budget` bytes between texts: the shorter ones whole, the rest equally."""
    granted: dict[str, int] = {}
    left = budget
    pending = sorted(sizes, key=lambda name: (sizes[name], name))
    for index, name in enumerate(pending):
        granted[name] = min(sizes[name], left // (len(pending) - index))
        left -= granted[name]
    return granted


# ---- artifacts ------------------------------------------------------------------------


class _Artifacts:
    """The bundle's artifacts as the steps meet them, checked against their digest (other
    bytes are as good as unreadable). Those within the cap are kept for export (and not
    read twice); bigger ones are held only while their step is built."""

    def __init__(self, read: ReadArtifact, caps: ObservationCaps) -> None:
        self._read = read
        self._caps = caps
        self._unreadable: set[str] = set()
        self.refs: dict[str, BlobRef] = {}  # first reference of each, in step order
        self.exported: dict[str, bytes] = {}

    def get(self, ref: BlobRef) -> bytes | None:
        sha = ref.sha256
        self.refs.setdefault(sha, ref)
        if sha in self.exported or sha in self._unreadable:
            return self.exported.get(sha)
        data = self._read(sha)
        if data is None or hashlib.sha256(data).hexdigest() != sha:
            self._unreadable.add(sha)
            return None
        if len(data) <= self._caps.artifact_bytes:
            self.exported[sha] = data
        return data

    def listing(self) -> list[dict[str, Any]]:
        return [
            {
                "sha256": sha,
                "size": ref.size,
                "media_type": ref.media_type,
                "exported": sha in self.exported,
            }
            for sha, ref in self.refs.items()
        ]


# ---- steps ----------------------------------------------------------------------------


@dataclass
class _Step:
    """A step being built: its artifacts are read first, its texts clipped once all are
    known (the observation's texts share one budget)."""

    event: Event
    artifacts: _Artifacts
    action: dict[str, Any] = field(default_factory=dict)
    observation: dict[str, Any] | None = None
    action_diff: bytes | None = None
    texts: dict[str, bytes] = field(default_factory=dict)  # observation field → full text
    refs: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def read(self, ref: BlobRef) -> bytes | None:
        if ref.sha256 not in self.refs:
            self.refs.append(ref.sha256)
        data = self.artifacts.get(ref)
        if data is None and ref.sha256 not in self.missing:
            self.missing.append(ref.sha256)
        return data

    def read_text(self, name: str, ref: BlobRef | None) -> None:
        """Observation field `name`: null unless recorded as artifact `ref` and readable."""
        assert self.observation is not None
        self.observation[name] = None
        data = self.read(ref) if ref is not None else None
        if data is not None:
            self.texts[name] = data


def _build_step(event: Event, artifacts: _Artifacts) -> _Step:
    """What the event did and what came back, its texts read but not yet clipped."""
    step = _Step(event, artifacts)
    if isinstance(event, CmdRunEvent):
        cmd = event.payload
        step.action = {"command": list(cmd.argv), "cwd": cmd.cwd}
        step.observation = {"exit_code": cmd.exit_code, "duration_ms": cmd.duration_ms}
        step.read_text("stdout", cmd.stdout_ref)
        step.read_text("stderr", cmd.stderr_ref)
    elif isinstance(event, FileEditEvent):
        edit = event.payload
        step.action = {
            "path": edit.path,
            "change": edit.change,
            "old_path": edit.old_path,
            "diff": None,
            "lines_added": edit.lines_added,
            "lines_removed": edit.lines_removed,
        }
        if edit.diff is not None:
            step.action_diff = edit.diff.encode()
        elif edit.diff_ref is not None:
            step.action_diff = step.read(edit.diff_ref)
    elif isinstance(event, TestRunEvent):
        run = event.payload
        step.action = {"command": list(run.command), "framework": run.framework}
        step.observation = {
            "passed": run.passed,
            "failed": run.failed,
            "errors": run.errors,
            "skipped": run.skipped,
            "outcome": run.outcome,
            "exit_code": run.exit_code,
            "duration_ms": run.duration_ms,
            "failing_tests": list(run.failing_tests),
        }
        step.read_text("report", run.report_ref)
    elif isinstance(event, CommitEvent):
        commit = event.payload
        step.action = {"sha": commit.sha, "message": commit.message, "files": list(commit.files)}
        if commit.diff_ref is not None:  # without its diff nothing it returned was recorded
            step.observation = {}
            step.read_text("diff", commit.diff_ref)
    else:
        step.action = {"kind": event.payload.kind, "text": event.payload.text}
    return step


def _finish_step(index: int, step: _Step, caps: ObservationCaps) -> dict[str, Any]:
    """The step with its texts clipped to the caps (structured: encoded in `_encoded`)."""
    action_truncated = observation_truncated = False
    if step.action_diff is not None:
        step.action["diff"], action_truncated = clip(step.action_diff, caps.inline_bytes)
    granted = shares({name: len(data) for name, data in step.texts.items()}, caps.inline_bytes)
    for name, data in step.texts.items():
        assert step.observation is not None  # texts are only read for an observation
        step.observation[name], cut = clip(data, granted[name])
        observation_truncated |= cut
    event = step.event
    return {
        "step": index,
        "seq": event.seq,
        "event_id": event.event_id,
        "ts": event.ts,
        "type": event.type,
        "action": step.action,
        "observation": step.observation,
        "action_truncated": action_truncated,
        "observation_truncated": observation_truncated,
        "observation_missing": step.missing,
        "artifacts": step.refs,
    }


# The step fields that are JSON text in the record (they vary in shape or may be empty).
STEP_JSON_FIELDS: Final = ("action", "observation", "observation_missing", "artifacts")


def _encoded(step: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: json_text(value) if key in STEP_JSON_FIELDS else value for key, value in step.items()
    }


# ---- verdict, scores, integrity -------------------------------------------------------


def _qa(report: QAReport | None) -> dict[str, Any]:
    return {
        "verdict": report.verdict if report else None,
        "resolution": report.resolution if report else None,
        "verdict_reason": report.verdict_reason if report else None,
        "FAIL_TO_PASS": list(report.fail_to_pass) if report else [],
        "PASS_TO_PASS": list(report.pass_to_pass) if report else [],
        "PASS_TO_FAIL": list(report.pass_to_fail) if report else [],
        "target_tests": list(report.target_tests) if report else [],
        "flags": flag_codes(report),
        "tamper_flags": flag_codes(report, tamper_only=True),
    }


def _scores(scores: list[DimensionScore], step_of: Mapping[str, int]) -> list[dict[str, Any]]:
    """Each score with its citations also as step indexes (an id that names no event of the
    trace has no step: it stays in `cited_event_ids` only)."""
    return [
        {
            "dimension": score.dimension,
            "score": score.score,
            "rationale": score.rationale,
            "cited_event_ids": list(score.cited_event_ids),
            "cited_steps": [step_of[i] for i in score.cited_event_ids if i in step_of],
        }
        for score in scores
    ]


def _cited_event_ids(result: JudgeResult | None) -> set[str]:
    """Every event id the judge's scores cite (the stand-in's too)."""
    if result is None:
        return set()
    scores = [*result.scores, *(result.stand_in.scores if result.stand_in else [])]
    return {event_id for score in scores for event_id in score.cited_event_ids}


def _judge(result: JudgeResult | None, step_of: Mapping[str, int]) -> dict[str, Any]:
    """Who scored and how; the offline stand-in (when the model was unavailable) apart and
    labelled, never as the result's own scores."""
    stand_in = result.stand_in if result else None
    return {
        "judge": result.judge if result else None,
        "status": result.status if result else None,
        "rubric_version": result.rubric_version if result else None,
        "overall": result.overall if result else None,
        "summary": result.summary if result else None,
        "scores": _scores(result.scores, step_of) if result else [],
        "stand_in": {
            "judge": stand_in.judge,
            "overall": stand_in.overall,
            "scores": _scores(stand_in.scores, step_of),
        }
        if stand_in
        else None,
    }


def _integrity(bundle: TraceBundle) -> dict[str, Any]:
    document = bundle.header
    state = document.state_check
    return {
        "chain_head": document.chain.head,
        "chain_key_id": document.chain.key_id,
        "state_check": state.status if state is not None else None,
    }


# ---- the chat -------------------------------------------------------------------------


def _message(
    role: str,
    content: str | None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_call_id: str | None = None,
) -> dict[str, Any]:
    return {
        "role": role,
        "content": content,
        "tool_calls": tool_calls,
        "tool_call_id": tool_call_id,
    }


def _arguments(step: Mapping[str, Any]) -> dict[str, Any]:
    """What the tool was called with: the action's fields of its event type."""
    action = step["action"]
    keys = {
        "cmd_run": ("command", "cwd"),
        "file_edit": ("path", "change", "old_path", "diff"),
        "test_run": ("command", "framework"),
        "commit": ("message", "files"),
    }[step["type"]]
    return {key: action[key] for key in keys if action[key] is not None}


def _unreadable(step: Mapping[str, Any]) -> list[str]:
    return [f"[artifact {sha} could not be read]" for sha in step["observation_missing"]]


def _tool_reply(step: Mapping[str, Any]) -> str:
    """The step's observation as text (for an edit, what the edit recorded)."""
    action, seen = step["action"], step["observation"]
    kind = step["type"]
    if kind == "file_edit":
        what = f"{action['change']} {action['path']}"
        if action["old_path"] is not None:
            what = f"rename {action['old_path']} -> {action['path']}"
        lines = f"{what}: +{action['lines_added']} -{action['lines_removed']} lines"
        return "\n".join([lines, *_unreadable(step)])
    if kind == "commit":
        parts = [f"committed {action['sha']}"]
        if seen is not None and seen["diff"] is not None:
            parts.append(seen["diff"])
        return "\n".join([*parts, *_unreadable(step)])
    if kind == "cmd_run":
        parts = [f"exit code {seen['exit_code']}"]
        parts += [f"{name}:\n{seen[name]}" for name in ("stdout", "stderr") if seen[name]]
        return "\n".join([*parts, *_unreadable(step)])
    counts = ", ".join(f"{seen[n]} {n}" for n in ("passed", "failed", "errors", "skipped"))
    ended = [f"outcome {seen['outcome']}"] if seen["outcome"] is not None else []
    ended += [f"exit code {seen['exit_code']}"] if seen["exit_code"] is not None else []
    parts = [f"{counts} ({', '.join(ended)})" if ended else counts]
    if seen["failing_tests"]:
        parts.append("failing tests:\n" + "\n".join(seen["failing_tests"]))
    if seen["report"]:
        parts.append(f"report:\n{seen['report']}")
    return "\n".join([*parts, *_unreadable(step)])


def _system_prompt(bundle: TraceBundle, repo: str, base_commit: str) -> str:
    author = bundle.header.metadata.author.kind
    return (
        f"A recorded bug-fixing session in the repository {repo} at commit {base_commit}, "
        f"by a {author} developer. Each tool call is one recorded action (run_command, "
        "edit_file, run_tests, commit), in the order it happened; each tool reply is what it "
        "returned, as recorded. The developer's notes are assistant text."
    )


class _Chat:
    """OpenAI chat, a step at a time: system, user (the problem), then per action an
    assistant tool call and its tool reply. Notes are the assistant's own words: they become
    the text of the next call's assistant message (or a last assistant message when no call
    follows)."""

    def __init__(self, system: str, problem: str) -> None:
        self.opening = [_message("system", system), _message("user", problem)]
        self._notes: list[str] = []

    def add(self, step: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The messages the step adds (none for a note: it waits for the next call)."""
        action = step["action"]
        if step["type"] == "rationale_note":
            self._notes.append(f"{action['kind'].capitalize()}: {action['text']}")
            return []
        call_id = f"call_{step['step']}"
        call = {
            "id": call_id,
            "type": "function",
            "function": {
                "name": TOOL_NAMES[step["type"]],
                "arguments": json_text(_arguments(step)),
            },
        }
        notes, self._notes = self._notes, []
        return [
            _message("assistant", "\n\n".join(notes) or None, [call]),
            _message("tool", _tool_reply(step), tool_call_id=call_id),
        ]

    def end(self) -> list[dict[str, Any]]:
        """The notes after the last call, as a last assistant message."""
        return [_message("assistant", "\n\n".join(self._notes))] if self._notes else []


# ---- the record -----------------------------------------------------------------------

Sink = Callable[[dict[str, Any]], None]


class _Walk:
    """One pass over a trace's events: each becomes a step (its artifacts read, its texts
    clipped), given encoded to `on_step`, and the chat messages it adds to `on_message`.
    Only what the record needs of all steps is kept: the artifacts met (those exported,
    with their bytes) and the steps of the events the judge cites."""

    def __init__(
        self,
        bundle: TraceBundle,
        read_artifact: ReadArtifact,
        caps: ObservationCaps,
        on_step: Sink,
        on_message: Sink,
    ) -> None:
        self._bundle, self._caps = bundle, caps
        self._on_step, self._on_message = on_step, on_message
        self._instance = swebench_instance(bundle)
        self._artifacts = _Artifacts(read_artifact, caps)
        self._cited = _cited_event_ids(bundle.judge_result)
        self._step_of: dict[str, int] = {}
        self._count = 0
        repo, base_commit = self._instance["repo"], self._instance["base_commit"]
        system = _system_prompt(bundle, repo, base_commit)
        self._chat = _Chat(system, self._instance["problem_statement"])
        for message in self._chat.opening:
            on_message(message)

    def add(self, event: Event) -> None:
        """The next event, in seq order."""
        index, self._count = self._count, self._count + 1
        step = _finish_step(index, _build_step(event, self._artifacts), self._caps)
        if event.event_id in self._cited:
            self._step_of.setdefault(event.event_id, index)
        self._on_step(_encoded(step))
        for message in self._chat.add(step):
            self._on_message(message)

    def finish(self, steps: Any, messages: Any) -> dict[str, Any]:
        """The record, with `steps` and `messages` as given (after the last event)."""
        for message in self._chat.end():
            self._on_message(message)
        bundle, instance = self._bundle, self._instance
        return {
            "version": TRAJECTORY_VERSION,
            "trace_id": bundle.trace_id,
            "instance_id": instance["instance_id"],
            "repo": instance["repo"],
            "base_commit": instance["base_commit"],
            "problem_statement": instance["problem_statement"],
            "steps": steps,
            "qa": json_text(_qa(bundle.qa_report)),
            "judge": json_text(_judge(bundle.judge_result, self._step_of)),
            "integrity": json_text(_integrity(bundle)),
            "artifacts": json_text(self._artifacts.listing()),
            "messages": messages,
        }

    def artifacts(self) -> dict[str, bytes]:
        return dict(sorted(self._artifacts.exported.items()))


def trajectory(
    bundle: TraceBundle, read_artifact: ReadArtifact, caps: ObservationCaps = ObservationCaps()
) -> Trajectory:
    """The trace as a trajectory record and the artifacts to write beside it.

    `read_artifact(sha256)` gives an artifact's stored bytes, or None when they cannot be
    read: the step then lists the digest in `observation_missing` and the export goes on.
    The record is held whole: an export writes a large trace's with `TrajectoryLine`."""
    steps: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    walk = _Walk(bundle, read_artifact, caps, steps.append, messages.append)
    for event in bundle.events():
        walk.add(event)
    return Trajectory(walk.finish(steps, messages), walk.artifacts())


# The record's lists that grow with the trace: spooled, not held.
_SPOOLED: Final = ("messages", "steps")
SPOOL_BLOCK: Final = 1 << 20


class TrajectoryLine:
    """A trajectory's JSON line built as the trace's events are given (`add`, in seq
    order) and read as bytes (`pieces`): the same bytes as `trajectory(...).line()` without
    the record in memory. Its steps and messages wait in two spools (`spool()` opens each:
    a file for a large trace), since fields sorted before them (`artifacts`, `judge`) need
    every step first. Close it when done."""

    def __init__(
        self,
        bundle: TraceBundle,
        read_artifact: ReadArtifact,
        caps: ObservationCaps = ObservationCaps(),
        spool: Callable[[], IO[bytes]] = io.BytesIO,
    ) -> None:
        self._spools = {name: spool() for name in _SPOOLED}
        self._walk = _Walk(
            bundle,
            read_artifact,
            caps,
            partial(_append, self._spools["steps"]),
            partial(_append, self._spools["messages"]),
        )

    def add(self, event: Event) -> None:
        self._walk.add(event)

    def pieces(self) -> Iterator[bytes]:
        """The line (no newline) in pieces, as `export_json` writes the record: keys
        sorted, no whitespace. Once, after the last event."""
        record = self._walk.finish(None, None)
        for index, key in enumerate(sorted(record)):
            yield (b"," if index else b"{") + export_json(key) + b":"
            if key in self._spools:
                yield from _spooled_list(self._spools[key])
            else:
                yield export_json(record[key])
        yield b"}"

    def artifacts(self) -> dict[str, bytes]:
        """The artifacts to write beside it (sha256 → bytes), once all events are added."""
        return self._walk.artifacts()

    def close(self) -> None:
        for spooled in self._spools.values():
            spooled.close()


def _append(spool: IO[bytes], item: dict[str, Any]) -> None:
    """A list item, after a comma unless it is the first."""
    spool.write(b"," + export_json(item) if spool.tell() else export_json(item))


def _spooled_list(spool: IO[bytes]) -> Iterator[bytes]:
    yield b"["
    spool.seek(0)
    while block := spool.read(SPOOL_BLOCK):
        yield block
    yield b"]"
