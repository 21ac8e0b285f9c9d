"""The traces table: one Parquet file per ended trace (complete, rejected or failed), written
by the Record step, under a prefix partitioned by tenant and the day the trace was recorded:

    tenants/{tenant}/parquet/traces/date=YYYY-MM-DD/{trace_id}.parquet

Athena queries them through the Glue table the stack defines (partition projection: the
tenant is injected, so every query names one tenant; the date is a projected range);
locally, `prtrace query "SQL"` runs DuckDB over the same files. A row holds what the trace's
recorded outcome holds (metadata, QA, judge scores, metrics), flat; the file is written
once, conditionally: a retried Record finds it already there (same bytes).

The columns the export's `traces.parquet` has (prtrace.dataset.rows.trace_row) have its
names and meanings, with two differences the writer (prtrace.dataset.parquet_lite) and the
Record step's inputs make: lists are JSON array text, not list<string>; and
`unusable_reasons` cannot say `no_patch` (the patch is the diff of the workspace snapshots,
which the export computes and Record does not), so a trace without a code patch is
`usable` here and not in an export. Rows of rejected and failed traces have their status,
`failure_stage`/`failure_code` and what the metadata says (repository, `split`,
`base_dirty`, task, author, client); their QA, judge, metrics and `usable` columns are null.
"""

from __future__ import annotations

import re
from typing import Any, Final, Protocol

import orjson

from prtrace.dataset.event_table import write_events
from prtrace.dataset.parquet_lite import Column, write_table
from prtrace.dataset.rows import UnusableReason, repository_slug, split_of
from prtrace.integrity import sha256_hex
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.media_types import PARQUET
from prtrace.qa.report import TAMPER_FLAGS
from prtrace.records import COMPLETE, FAILED, REJECTED, TERMINAL, TraceRecord

# v2: rows of rejected and failed traces; the export's `repo`, `task_description`, state
# check, manifest, `base_dirty`, `split` and `usable` columns; `target_tests` and
# `unresolved_targets` renamed `qa_target_tests` and `qa_unresolved_targets` as there.
TABLE_VERSION: Final = 2
PARQUET_MEDIA_TYPE: Final = PARQUET
_DATE: Final = re.compile(r"^(\d{4}-\d{2}-\d{2})T")
_METRIC_COLUMNS: Final = (
    "duration_ms",
    "active_ms",
    "files_touched",
    "file_edits",
    "lines_added",
    "lines_removed",
    "commands",
    "commands_failed",
    "test_runs",
    "test_runs_failing",
    "time_to_first_failing_test_ms",
    "time_to_green_ms",
    "edit_test_cycles",
    "commits",
    "notes",
)
_TEST_LISTS: Final = ("fail_to_pass", "pass_to_pass", "pass_to_fail", "fail_to_fail")
# Recorded since the QA report has them (null in rows of traces recorded before).
_QA_LISTS: Final = (
    "fail_to_absent",
    "fail_to_skipped",
    "qa_target_tests",
    "qa_unresolved_targets",
)

COLUMNS: Final[tuple[Column, ...]] = (
    Column("table_version", "int64"),
    Column("trace_id", "string"),
    Column("status", "string"),
    Column("created_at", "string"),
    Column("recorded_at", "string"),
    Column("failure_stage", "string"),  # failed: the stage that failed
    Column("failure_code", "string"),  # failed: the error; rejected: the rejection's code
    Column("repo", "string"),  # owner/name
    Column("repo_url", "string"),
    Column("base_commit", "string"),
    Column("task_title", "string"),
    Column("task_description", "string"),
    Column("author_id", "string"),
    Column("author_kind", "string"),
    Column("client_name", "string"),
    Column("client_version", "string"),
    Column("event_count", "int64"),
    Column("chunk_count", "int64"),
    Column("chain_key_id", "string"),
    Column("chain_head", "string"),
    Column("qa_verdict", "string"),
    Column("qa_skipped", "string"),
    Column("qa_backend", "string"),
    Column("qa_duration_ms", "int64"),
    *(Column(f"{name}_count", "int64") for name in _TEST_LISTS),
    *(Column(name, "string") for name in _TEST_LISTS),  # JSON arrays of test ids
    Column("qa_target_source", "string"),
    Column("qa_resolution", "string"),
    Column("qa_verdict_reason", "string"),
    *(Column(f"{name}_count", "int64") for name in _QA_LISTS),
    *(Column(name, "string") for name in _QA_LISTS),  # JSON arrays of test ids
    Column("qa_flags", "string"),  # JSON array of the flags' codes, sorted, each once
    Column("qa_blocking_flags", "string"),  # the same, of the blocking flags
    Column("qa_tamper_flags", "string"),  # the same, of the tamper flags (TAMPER_FLAGS)
    Column("qa_flag_count", "int64"),
    Column("judge", "string"),
    Column("judge_status", "string"),
    Column("judge_overall", "double"),
    Column("judge_stand_in", "string"),  # the offline stand-in when the model was down
    Column("judge_stand_in_overall", "double"),  # its overall: not the judge's
    Column("needs_human_review", "boolean"),
    *(Column(f"score_{dimension}", "int64") for dimension in DIMENSION_IDS),
    *(Column(f"metric_{name}", "int64") for name in _METRIC_COLUMNS),
    Column("metrics", "string"),  # the whole metrics object, JSON
    Column("state_check", "string"),
    Column("state_first_mismatch", "string"),
    Column("state_unexplained_bytes", "int64"),
    Column("trace_manifest_sha256", "string"),
    Column("trace_manifest_key_id", "string"),
    Column("base_dirty", "boolean"),
    Column("split", "string"),
    Column("usable", "boolean"),
    Column("unusable_reasons", "string"),  # JSON array, the export's order
)
# Athena/Glue column types for the same columns (infra_cdk defines the table with them).
GLUE_TYPES: Final = {
    "string": "string",
    "int64": "bigint",
    "double": "double",
    "boolean": "boolean",
    "timestamp": "timestamp",
}


class ObjectWriter(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put_if_absent(self, key: str, body: bytes, sha256_hex: str, content_type: str) -> bool: ...


def table_prefix(tenant: str) -> str:
    return f"tenants/{tenant}/parquet/traces"


def recorded_date(recorded_at: str) -> str:
    """The partition's date (YYYY-MM-DD) of a trace recorded at `recorded_at`."""
    found = _DATE.match(recorded_at)
    if found is None:
        raise ValueError(f"recorded_at {recorded_at!r} is not an RFC 3339 UTC timestamp")
    return found[1]


def parquet_key(tenant: str, trace_id: str, recorded_at: str) -> str:
    return f"{table_prefix(tenant)}/date={recorded_date(recorded_at)}/{trace_id}.parquet"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def trace_row(trace: TraceRecord) -> dict[str, Any]:
    """The table's row of an ended trace, from what Record stored on it."""
    outcome = trace.outcome or {}
    metadata = trace.metadata
    repository = metadata.get("repository") or {}
    url = repository.get("url")
    slug = repository_slug(url) if isinstance(url, str) and url else None
    dirty = repository.get("dirty")
    qa = outcome.get("qa") or {}
    judge = outcome.get("judge") or {}
    chain = outcome.get("chain") or {}
    metrics = outcome.get("metrics") or {}
    scores = {s.get("dimension"): s.get("score") for s in judge.get("scores") or []}
    overall = judge.get("overall")
    stand_in = judge.get("stand_in") or {}
    stand_in_overall = stand_in.get("overall")
    row: dict[str, Any] = {
        "table_version": TABLE_VERSION,
        "trace_id": trace.trace_id,
        "status": trace.status,
        "created_at": trace.created_at,
        "recorded_at": outcome.get("recorded_at"),
        **_failure(trace.status, outcome),
        "repo": slug,
        "repo_url": url,
        "base_commit": repository.get("base_commit"),
        "task_title": (metadata.get("task") or {}).get("title"),
        "task_description": (metadata.get("task") or {}).get("description"),
        "author_id": (metadata.get("author") or {}).get("id"),
        "author_kind": (metadata.get("author") or {}).get("kind"),
        "client_name": (metadata.get("client") or {}).get("name"),
        "client_version": (metadata.get("client") or {}).get("version"),
        "event_count": _int(outcome.get("event_count")),
        "chunk_count": _int(outcome.get("chunk_count")),
        "chain_key_id": chain.get("key_id"),
        "chain_head": chain.get("head"),
        "qa_verdict": qa.get("verdict"),
        "qa_skipped": outcome.get("qa_skipped"),
        "qa_backend": qa.get("backend"),
        "qa_duration_ms": _int(qa.get("duration_ms")),
        "judge": judge.get("judge"),
        "judge_status": judge.get("status"),
        "judge_overall": float(overall) if isinstance(overall, int | float) else None,
        "judge_stand_in": stand_in.get("judge"),
        "judge_stand_in_overall": float(stand_in_overall)
        if isinstance(stand_in_overall, int | float)
        else None,
        "needs_human_review": judge.get("needs_human_review")
        if isinstance(judge.get("needs_human_review"), bool)
        else None,
        "metrics": orjson.dumps(metrics, option=orjson.OPT_SORT_KEYS).decode()
        if trace.status == COMPLETE
        else None,
        **_state(outcome.get("state_check")),
        "trace_manifest_sha256": (outcome.get("provenance") or {}).get("manifest_sha256"),
        "trace_manifest_key_id": (outcome.get("provenance") or {}).get("key_id"),
        "base_dirty": dirty if isinstance(dirty, bool) else None,
        "split": split_of(slug) if slug else None,
        "usable": None,
        "unusable_reasons": None,
    }
    if trace.status == COMPLETE:
        reasons = unusable_reasons(outcome, dirty)
        row["usable"] = not reasons
        row["unusable_reasons"] = orjson.dumps(reasons).decode()
    for name in (*_TEST_LISTS, *_QA_LISTS):
        tests = qa.get(name.removeprefix("qa_"))
        row[f"{name}_count"] = _int(tests.get("count")) if tests else None
        row[name] = orjson.dumps(tests.get("ids")).decode() if tests else None
    row |= _qa_evidence(qa)
    for dimension in DIMENSION_IDS:
        row[f"score_{dimension}"] = _int(scores.get(dimension))
    for name in _METRIC_COLUMNS:
        row[f"metric_{name}"] = _int(metrics.get(name))
    return row


def _failure(status: str, outcome: dict[str, Any]) -> dict[str, Any]:
    if status == FAILED:
        return {"failure_stage": outcome.get("stage"), "failure_code": outcome.get("error")}
    if status == REJECTED:
        return {"failure_stage": None, "failure_code": (outcome.get("reason") or {}).get("code")}
    return {"failure_stage": None, "failure_code": None}


def _state(state: dict[str, Any] | None) -> dict[str, Any]:
    """The export's state columns (prtrace.dataset.rows.state_columns) from the outcome's
    view of the trace-to-state check; null where it did not run."""
    state = state or {}
    first = state.get("first_mismatch") or {}
    return {
        "state_check": state.get("status"),
        "state_first_mismatch": first.get("path"),
        "state_unexplained_bytes": _int(state.get("unexplained_bytes")),
    }


def unusable_reasons(outcome: dict[str, Any], dirty: Any) -> list[UnusableReason]:
    """prtrace.dataset.rows.unusable_reasons, in its order, from the recorded outcome: all
    but `no_patch`, which needs the snapshots' diff (Record does not compute it)."""
    qa = outcome.get("qa")
    reasons: list[UnusableReason] = []
    if qa is None or outcome.get("qa_skipped") is not None:  # no QA report was stored
        reasons.append("no_qa")
    else:
        if qa.get("verdict") == "error":
            reasons.append("qa_error")
        if not _int((qa.get("target_tests") or {}).get("count")):
            reasons.append("no_target_tests")
        if any(
            isinstance(f, dict) and f.get("code") in TAMPER_FLAGS for f in qa.get("flags") or []
        ):
            reasons.append("tamper_flags")
    if (outcome.get("state_check") or {}).get("status") == "state_mismatch":
        reasons.append("state_mismatch")
    if not isinstance(dirty, bool):
        reasons.append("base_unrecorded")
    elif dirty:
        reasons.append("base_dirty")
    return reasons


def _codes(flags: list[dict[str, Any]]) -> str:
    return orjson.dumps(sorted({str(flag.get("code")) for flag in flags})).decode()


def _qa_evidence(qa: dict[str, Any]) -> dict[str, Any]:
    """The verdict's evidence as the outcome recorded it (prtrace.pipeline.outcome.qa_summary): the
    flags' codes come from its bounded list (`qa_flag_count` says how many there were)."""
    recorded = "flags" in qa  # absent from outcomes recorded before the report had flags
    flags = [f for f in qa.get("flags") or [] if isinstance(f, dict)]
    return {
        "qa_target_source": qa.get("target_source"),
        "qa_resolution": qa.get("resolution"),
        "qa_verdict_reason": qa.get("verdict_reason"),
        "qa_flags": _codes(flags) if recorded else None,
        "qa_blocking_flags": _codes([f for f in flags if f.get("blocking")]) if recorded else None,
        "qa_tamper_flags": _codes([f for f in flags if f.get("code") in TAMPER_FLAGS])
        if recorded
        else None,
        "qa_flag_count": _int(qa.get("flag_count")),
    }


def trace_parquet(rows: list[dict[str, Any]]) -> bytes:
    return write_table(COLUMNS, rows)


class TraceTableWriter:
    def __init__(self, objects: ObjectWriter) -> None:
        self._objects = objects

    def write(self, trace: TraceRecord) -> str | None:
        """Write an ended trace's row, and a complete one's events (prtrace.dataset.event_table),
        each once (a retry finds them stored); returns the row's key, or None for a trace the
        pipeline has not ended (the table holds ended traces only)."""
        if trace.status not in TERMINAL or not trace.outcome:
            return None
        recorded_at = str(trace.outcome.get("recorded_at"))
        key = parquet_key(trace.tenant, trace.trace_id, recorded_at)
        body = trace_parquet([trace_row(trace)])
        self._objects.put_if_absent(key, body, sha256_hex(body), PARQUET_MEDIA_TYPE)
        if trace.status == COMPLETE:
            date = recorded_date(recorded_at)
            write_events(self._objects, trace.tenant, trace.trace_id, date)
        return key
