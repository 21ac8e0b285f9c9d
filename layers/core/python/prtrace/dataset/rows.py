"""Dataset rows built from a complete trace: SWE-bench-style instances, event rows and
trace rows, plus the export filters and the patch between two workspace trees.

Pure: everything here takes the assembled document, the QA report and the judge result
(already fetched) and returns plain dicts, so the CLI export and any later export job build
the same rows. Nothing reads the clock: the same inputs give the same rows.

The patch of an instance is the diff from the base workspace snapshot to the final one,
the trees QA tested, not the `file_edit` events: those are per-edit (a file edited three
times has three diffs), may be hunks without file headers, or artifacts, and do not compose
reliably into one diff against the base. A trace without snapshots has no patch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from prtrace.assemble.document import TraceDocument
from prtrace.canonical import canonical_json
from prtrace.dataset.document_stream import (
    StreamedDocument,
    TraceHeader,
    document_events,
    document_header,
    event_count,
)
from prtrace.dataset.harness import harness_fields
from prtrace.judge.result import JudgeResult
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.patches import patch_files, split_patch
from prtrace.qa.report import QAReport
from prtrace.schema import Event

# v2: events.jsonl holds the typed event rows (v1: the canonical events), instances say
# whether they are usable and carry the harness fields, trajectories and a dataset card.
EXPORT_VERSION: Final = "prtrace.export/v2"
PatchSource = Literal["snapshots", "none"]
# Whose test changes an instance's `test_patch` holds: SWE-bench's come from the upstream
# fix's pull request; here they are what the candidate (the recorded session) wrote.
TestPatchSource = Literal["candidate", "none"]
# Why an instance cannot be used as it is (`unusable_reasons`; none: `usable`).
UnusableReason = Literal[
    "no_patch",  # no change to code that is not tests
    "no_qa",  # QA did not run: nothing says which tests the fix must turn
    "qa_error",  # QA could not run the tests
    "no_target_tests",  # QA found no test the verdict is about
    "tamper_flags",  # the fix may have gamed its tests (prtrace.qa.report.TAMPER_FLAGS)
    "state_mismatch",  # the recorded edits do not reproduce the final code
    "base_dirty",  # recorded from a dirty tree: the patch does not apply to base_commit
    "base_unrecorded",  # recorded before clients said whether the tree was clean
]
TEST_SPLIT_PERCENT: Final = 20  # of repositories, by hash: every instance of one goes together
# ---- the rows -------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceBundle:
    """A complete trace as the export reads it: the API's trace view, the assembled
    document (a large one streamed: prtrace.dataset.document_stream), the QA report (None:
    QA did not run) and the judge result. Read the document's fields through `header` and
    its events through `events()`, which holds one at a time when the document streams."""

    view: Mapping[str, Any]
    document: TraceDocument | StreamedDocument
    qa_report: QAReport | None
    judge_result: JudgeResult | None
    patch: str = ""
    patch_source: PatchSource = "none"

    @property
    def trace_id(self) -> str:
        return self.header.trace_id

    @property
    def header(self) -> TraceDocument | TraceHeader:
        """The document's fields but its events."""
        return document_header(self.document)

    def events(self) -> Iterator[Event]:
        """The events in seq order; each call reads them again."""
        return document_events(self.document)

    @property
    def event_count(self) -> int:
        return event_count(self.document)


def repository_slug(url: str) -> str:
    """`owner/name` of a repository URL (https, ssh, scp-style or file), `.git` dropped."""
    path = url.split("://", 1)[1] if "://" in url else url.split(":", 1)[-1]
    if "://" in url:
        path = path.split("/", 1)[1] if "/" in path else ""
    parts = [p for p in path.rstrip("/").removesuffix(".git").split("/") if p]
    return "/".join(parts[-2:]) if parts else url


def judge_scores(result: JudgeResult | None) -> dict[str, int | None]:
    """Score per rubric dimension, every dimension present (None: not scored)."""
    scored: dict[str, int] = {s.dimension: s.score for s in result.scores} if result else {}
    return {dimension: scored.get(dimension) for dimension in DIMENSION_IDS}


def judge_columns(result: JudgeResult | None) -> dict[str, Any]:
    """Which judge scored what: `judge_overall` is the named judge's own (null when the
    model was unavailable); an offline stand-in's overall is its own column."""
    stand_in = result.stand_in if result else None
    return {
        "judge": result.judge if result else None,
        "judge_overall": result.overall if result else None,
        "judge_stand_in": stand_in.judge if stand_in else None,
        "judge_stand_in_overall": stand_in.overall if stand_in else None,
    }


def swebench_instance(bundle: TraceBundle) -> dict[str, Any]:
    """One SWE-bench-style instance; the prtrace fields come after SWE-bench's own."""
    document, report, judge = bundle.header, bundle.qa_report, bundle.judge_result
    metadata = document.metadata
    slug = repository_slug(metadata.repository.url)
    code_patch, test_patch = split_patch(bundle.patch)
    task = metadata.task
    reasons = unusable_reasons(bundle)
    return {
        "instance_id": f"{slug.replace('/', '__')}-{document.trace_id}",
        "repo": slug,
        "base_commit": metadata.repository.base_commit,
        "patch": code_patch,
        "test_patch": test_patch,
        "problem_statement": f"{task.title}\n\n{task.description}".strip(),
        "hints_text": "",
        "created_at": str(bundle.view.get("created_at", "")),
        **harness_fields(document, report, test_patch),
        "FAIL_TO_PASS": list(report.fail_to_pass) if report else [],
        "PASS_TO_PASS": list(report.pass_to_pass) if report else [],
        "trace_id": document.trace_id,
        "chain_head": document.chain.head,
        "repo_url": metadata.repository.url,
        "patch_source": bundle.patch_source,
        "test_patch_source": tests_patch_source(bundle),
        "qa_verdict": report.verdict if report else None,
        **qa_evidence(report),
        "judge_status": judge.status if judge else None,
        **judge_columns(judge),
        "judge_scores": judge_scores(judge),
        **state_columns(document),
        **provenance_columns(bundle),
        "base_dirty": base_dirty(document),
        "split": split_of(slug),
        "usable": not reasons,
        "unusable_reasons": reasons,
    }


def base_dirty(document: TraceDocument | TraceHeader) -> bool | None:
    """Whether the tree was dirty at record start (None: the client did not say)."""
    return document.metadata.repository.dirty


def unusable_reasons(bundle: TraceBundle) -> list[UnusableReason]:
    """Why the instance cannot be trained or evaluated on as it is, in a fixed order; empty:
    usable (a patch to code, QA's target tests, no integrity flag, a base that is
    `base_commit`). An unresolved verdict is not a reason: failed fixes are data too."""
    report, document = bundle.qa_report, bundle.header
    reasons: list[UnusableReason] = []
    if not split_patch(bundle.patch)[0].strip():
        reasons.append("no_patch")
    if report is None:
        reasons.append("no_qa")
    else:
        if report.verdict == "error":
            reasons.append("qa_error")
        if not report.target_tests:
            reasons.append("no_target_tests")
        if report.tamper_flags:
            reasons.append("tamper_flags")
    if document.state_check is not None and document.state_check.status == "state_mismatch":
        reasons.append("state_mismatch")
    dirty = base_dirty(document)
    if dirty is None:
        reasons.append("base_unrecorded")
    elif dirty:
        reasons.append("base_dirty")
    return reasons


def split_of(repo: str) -> Literal["train", "test"]:
    """The split of every instance of a repository: a fixed share of repositories by the
    hash of `owner/name`, so one repository never sits in both and the same repository is
    in the same split in every export."""
    bucket = int.from_bytes(hashlib.sha256(repo.encode()).digest()[:4], "big") % 100
    return "test" if bucket < TEST_SPLIT_PERCENT else "train"


def provenance_columns(bundle: TraceBundle) -> dict[str, Any]:
    """The trace's signed manifest (its SHA-256 and the signing key's id), so a row can be
    checked against `GET /v1/traces/{id}/manifest` and its signature; null when the trace
    was recorded without a signing key."""
    signed = ((bundle.view.get("outcome") or {}).get("provenance")) or {}
    return {
        "trace_manifest_sha256": signed.get("manifest_sha256"),
        "trace_manifest_key_id": signed.get("key_id"),
    }


def tests_patch_source(bundle: TraceBundle) -> TestPatchSource:
    """`candidate`: the instance's `test_patch` is the candidate's own test changes (the
    base-to-final diff of the test files), not tests written independently of the fix."""
    return "candidate" if bundle.patch_source == "snapshots" else "none"


def flag_codes(report: QAReport | None, *, tamper_only: bool = False) -> list[str]:
    """The codes of the report's flags (or of its tamper flags), sorted, each once."""
    if report is None:
        return []
    flags = report.tamper_flags if tamper_only else report.flags
    return sorted({flag.code for flag in flags})


def qa_evidence(report: QAReport | None) -> dict[str, Any]:
    """What the QA verdict rests on (prtrace.qa.report): its target tests and where they
    came from, those left unresolved, the resolution, why, and the flags' codes."""
    return {
        "qa_target_tests": list(report.target_tests) if report else [],
        "qa_target_source": report.target_source if report else None,
        "qa_unresolved_targets": list(report.unresolved_targets) if report else [],
        "qa_resolution": report.resolution if report else None,
        "qa_verdict_reason": report.verdict_reason if report else None,
        "qa_flags": flag_codes(report),
        "qa_tamper_flags": flag_codes(report, tamper_only=True),
    }


def state_columns(document: TraceDocument | TraceHeader) -> dict[str, Any]:
    """The trace-to-state check (prtrace.provenance.state_check), so a dataset can drop traces whose
    recorded edits do not reproduce their final code; null where it did not run."""
    state = document.state_check
    first = state.first_mismatch if state is not None else None
    return {
        "state_check": state.status if state is not None else None,
        "state_first_mismatch": first.path if first is not None else None,
        "state_unexplained_bytes": state.unexplained_bytes if state is not None else None,
    }


def parse_ts(ts: str) -> datetime:
    """An RFC 3339 UTC timestamp of the schema, to microseconds (finer digits dropped)."""
    date, _, rest = ts.rstrip("Z").partition("T")
    clock, _, fraction = rest.partition(".")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    parsed = datetime.strptime(f"{date}T{clock}", "%Y-%m-%dT%H:%M:%S")
    return parsed.replace(microsecond=micro, tzinfo=UTC)


# The typed columns of an event row, every one in every row (null where the event type has
# no such field), so JSON loaders infer one type per column; the whole payload stays too.
EVENT_COLUMN_TYPES: Final[Mapping[str, str | list[str]]] = {
    "trace_id": "string", "seq": "int64", "event_id": "string", "ts": "string",
    "type": "string",
    # file_edit
    "path": "string", "change": "string", "old_path": "string", "lines_added": "int64",
    "lines_removed": "int64",
    # cmd_run (argv), test_run
    "command": ["string"], "cwd": "string", "exit_code": "int64", "duration_ms": "int64",
    # test_run
    "framework": "string", "tests_passed": "int64", "tests_failed": "int64",
    "tests_errors": "int64", "tests_skipped": "int64", "failing_tests": ["string"],
    # commit
    "commit_sha": "string", "commit_message": "string", "commit_files": ["string"],
    # rationale_note
    "note_kind": "string", "note_text": "string",
    "payload": "string",
}  # fmt: skip
# The same names, in order: what every event row holds. Their types above are the one
# declaration the card (`datasets` dtypes), events.parquet and the events table read.
EVENT_COLUMNS: Final = tuple(EVENT_COLUMN_TYPES)


def event_rows(document: TraceDocument | StreamedDocument) -> Iterator[dict[str, Any]]:
    """One flat row per event in seq order (the events table, `events.jsonl` and
    `events.parquet`): typed columns for each event type's main fields, and the payload
    whole as canonical JSON (artifact references included). Not `{type, payload}` objects:
    JSON loaders take those for other tools' agent-trace formats."""
    trace_id = document_header(document).trace_id
    for event in document_events(document):
        yield event_row(trace_id, event)


def event_row(trace_id: str, event: Event) -> dict[str, Any]:
    """The row of one event of trace `trace_id` (`event_rows`)."""
    payload = event.payload.model_dump(mode="json", exclude_none=True)
    kind = event.type
    row = dict.fromkeys(EVENT_COLUMNS)
    row |= {
        "trace_id": trace_id,
        "seq": event.seq,
        "event_id": event.event_id,
        "ts": event.ts,
        "type": kind,
        "duration_ms": payload.get("duration_ms"),
        "exit_code": payload.get("exit_code"),
        "payload": canonical_json(payload).decode(),
    }
    if kind == "file_edit":
        row |= {key: payload.get(key) for key in ("path", "change", "old_path")}
        row |= {
            "lines_added": payload["lines_added"],
            "lines_removed": payload["lines_removed"],
        }
    elif kind == "cmd_run":
        row |= {"command": payload["argv"], "cwd": payload["cwd"]}
    elif kind == "test_run":
        row |= {
            "command": payload["command"],
            "framework": payload["framework"],
            "tests_passed": payload["passed"],
            "tests_failed": payload["failed"],
            "tests_errors": payload["errors"],
            "tests_skipped": payload["skipped"],
            "failing_tests": payload.get("failing_tests", []),
        }
    elif kind == "commit":
        row |= {
            "commit_sha": payload["sha"],
            "commit_message": payload["message"],
            "commit_files": payload["files"],
        }
    elif kind == "rationale_note":
        row |= {"note_kind": payload["kind"], "note_text": payload["text"]}
    return row


def trace_row(bundle: TraceBundle) -> dict[str, Any]:
    """One flat row per trace (the traces table)."""
    document, report, judge = bundle.header, bundle.qa_report, bundle.judge_result
    metadata = document.metadata
    scores = judge_scores(judge)
    reasons = unusable_reasons(bundle)
    return {
        "trace_id": document.trace_id,
        "status": str(bundle.view.get("status", "")),
        "created_at": str(bundle.view.get("created_at", "")),
        "repo": repository_slug(metadata.repository.url),
        "repo_url": metadata.repository.url,
        "base_commit": metadata.repository.base_commit,
        "task_title": metadata.task.title,
        "task_description": metadata.task.description,
        "author_id": metadata.author.id,
        "author_kind": metadata.author.kind,
        "client_name": metadata.client.name,
        "client_version": metadata.client.version,
        "event_count": bundle.event_count,
        "chain_key_id": document.chain.key_id,
        "chain_head": document.chain.head,
        "qa_verdict": report.verdict if report else None,
        "fail_to_pass": list(report.fail_to_pass) if report else [],
        "pass_to_pass": list(report.pass_to_pass) if report else [],
        "pass_to_fail": list(report.pass_to_fail) if report else [],
        "fail_to_fail": list(report.fail_to_fail) if report else [],
        "fail_to_absent": list(report.fail_to_absent) if report else [],
        "fail_to_skipped": list(report.fail_to_skipped) if report else [],
        **qa_evidence(report),
        "judge_status": judge.status if judge else None,
        **judge_columns(judge),
        **{f"score_{dimension}": score for dimension, score in scores.items()},
        "patch_source": bundle.patch_source,
        "patch_files": patch_files(bundle.patch),
        "metrics": canonical_json(document.metrics).decode(),
        **state_columns(document),
        **provenance_columns(bundle),
        "base_dirty": base_dirty(document),
        "split": split_of(repository_slug(metadata.repository.url)),
        "usable": not reasons,
        "unusable_reasons": reasons,
    }


# ---- filters --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilter:
    """Which traces an export takes. A trace view (a list item) is checked first, cheaply;
    the per-dimension thresholds need the judge result, so they are checked on the bundle."""

    statuses: frozenset[str] = frozenset({"complete"})
    verdicts: frozenset[str] = frozenset()  # empty: any; "none" matches a trace without QA
    min_overall: float | None = None
    min_scores: Mapping[str, int] = field(default_factory=dict)
    since: str | None = None  # created_at >= since (RFC 3339 UTC)
    until: str | None = None  # created_at < until
    repositories: frozenset[str] = frozenset()  # URL or owner/name; empty: any
    # False: a trace whose QA report has tamper flags (the fix may have gamed its tests,
    # prtrace.qa.report.TAMPER_FLAGS) is left out, and the manifest says so.
    include_flagged: bool = False
    # False: an instance with other `unusable_reasons` (no patch, no target tests, a dirty
    # base, ...) is left out, and the manifest says why.
    include_unusable: bool = False

    def describe(self) -> dict[str, Any]:
        """The filter as recorded in an export's manifest."""
        return {
            "statuses": sorted(self.statuses),
            "verdicts": sorted(self.verdicts),
            "min_overall": self.min_overall,
            "min_scores": dict(sorted(self.min_scores.items())),
            "since": self.since,
            "until": self.until,
            "repositories": sorted(self.repositories),
            "include_flagged": self.include_flagged,
            "include_unusable": self.include_unusable,
        }

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> ExportFilter:
        """The filter an export's manifest records (`describe`'s output); a switch an older
        export did not record is off."""
        return cls(
            statuses=frozenset(described["statuses"]),
            verdicts=frozenset(described["verdicts"]),
            min_overall=described["min_overall"],
            min_scores=dict(described["min_scores"]),
            since=described["since"],
            until=described["until"],
            repositories=frozenset(described["repositories"]),
            include_flagged=bool(described.get("include_flagged", False)),
            include_unusable=bool(described.get("include_unusable", False)),
        )

    def left_out_for_flags(self, bundle: TraceBundle) -> list[str]:
        """The tamper flags' codes that leave this trace out (none: it is taken)."""
        return [] if self.include_flagged else flag_codes(bundle.qa_report, tamper_only=True)

    def left_out_as_unusable(self, bundle: TraceBundle) -> list[str]:
        """The reasons, other than tamper flags, that leave this trace out (none: taken)."""
        if self.include_unusable:
            return []
        return [reason for reason in unusable_reasons(bundle) if reason != "tamper_flags"]

    def matches_view(self, view: Mapping[str, Any]) -> bool:
        if view.get("status") not in self.statuses:
            return False
        created = parse_ts(str(view.get("created_at", "")))
        if self.since and created < parse_ts(self.since):
            return False
        if self.until and created >= parse_ts(self.until):
            return False
        if self.repositories:
            url = str(((view.get("metadata") or {}).get("repository") or {}).get("url", ""))
            if not {url, repository_slug(url)} & self.repositories:
                return False
        outcome = view.get("outcome") or {}
        if self.verdicts:
            verdict = (outcome.get("qa") or {}).get("verdict") or "none"
            if verdict not in self.verdicts:
                return False
        if self.min_overall is not None:
            overall = (outcome.get("judge") or {}).get("overall")
            if overall is None or overall < self.min_overall:
                return False
        return True

    def matches_bundle(self, bundle: TraceBundle) -> bool:
        if not self.min_scores:
            return True
        scores = judge_scores(bundle.judge_result)
        for dimension, least in self.min_scores.items():
            score = scores.get(dimension)
            if score is None or score < least:
                return False
        return True


def sorted_bundles(bundles: Iterable[TraceBundle]) -> list[TraceBundle]:
    """Traces in trace id order, whatever order they were fetched in."""
    return sorted(bundles, key=lambda b: b.trace_id)


def export_json(value: Any) -> bytes:
    """JSON with keys sorted and no whitespace: canonical JSON (RFC 8785) where the value
    has no fractional numbers; judge scores' means are written as orjson's shortest
    round-trip form, the same bytes every time."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
