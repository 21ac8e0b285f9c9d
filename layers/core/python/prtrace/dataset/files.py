"""Dataset export files: SWE-bench-style instances (JSONL), events (JSONL) and Parquet
tables, with a manifest of counts and SHA-256s. The same code writes `prtrace export`'s
files on a client and the export job's on the service, so both give the same bytes.

Writing is deterministic: traces in id order, events in seq order, keys sorted, fixed
Parquet writer options, and nothing about the run itself (no clock, no host) in any file.
pyarrow is needed for Parquet only (`pip install 'prtrace[export]'`; the export job's image
has it).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from prtrace.dataset.rows import (
    EXPORT_VERSION,
    ExportFilter,
    TraceBundle,
    event_records,
    event_rows,
    export_json,
    jsonl,
    sorted_bundles,
    swebench_instance,
    trace_row,
)
from prtrace.judge.rubric import DIMENSION_IDS

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS: Final = ("swebench", "events", "parquet")
INSTANCES_FILE: Final = "instances.jsonl"
EVENTS_FILE: Final = "events.jsonl"
EVENTS_PARQUET: Final = "events.parquet"
TRACES_PARQUET: Final = "traces.parquet"
MANIFEST_FILE: Final = "manifest.json"
# Fixed so the same rows give the same file (the writer's version is in the manifest).
PARQUET_OPTIONS: Final[dict[str, Any]] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": 65_536,
}


class ExportError(Exception):
    """The export cannot be written as asked (e.g. Parquet without pyarrow)."""


@dataclass(frozen=True)
class Skipped:
    """A trace the filter selected whose results could not be read, and why."""

    trace_id: str
    reason: str


@dataclass(frozen=True)
class Flagged:
    """A trace the filter selected but left out: its QA report has tamper flags (their
    codes); `include_flagged` takes it."""

    trace_id: str
    flags: tuple[str, ...]


# ---- writing --------------------------------------------------------------------------


def write_export(
    bundles: Sequence[TraceBundle],
    out: Path,
    *,
    formats: Iterable[str] = FORMATS,
    chosen: ExportFilter | None = None,
    skipped: Sequence[Skipped] = (),
    flagged: Sequence[Flagged] = (),
) -> dict[str, Any]:
    """Write the files of `formats` and manifest.json into `out` (a new or empty directory);
    returns the manifest.

    All or nothing: what is needed (the formats known, pyarrow for Parquet, `out` free) is
    checked before anything is written; the files are written beside `out` and moved in
    only when all are, manifest.json last, so a directory with a manifest is complete and a
    failed export leaves `out` as it was."""
    wanted = check_formats(formats)
    check_destination(out)
    bundles = sorted_bundles(bundles)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        manifest = _write_files(bundles, staging, wanted, chosen, skipped, flagged)
        out.mkdir(exist_ok=True)
        for name in sorted(manifest["files"]):
            (staging / name).replace(out / name)
        (staging / MANIFEST_FILE).replace(out / MANIFEST_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def check_formats(formats: Iterable[str]) -> list[str]:
    """The formats asked for, sorted, once each; ExportError for an unknown one, or for
    Parquet without pyarrow: found before any trace is read or any file written."""
    wanted = sorted(set(formats))
    unknown = set(wanted) - set(FORMATS)
    if unknown:
        raise ExportError(f"unknown format(s) {sorted(unknown)}; choose from {list(FORMATS)}")
    if "parquet" in wanted:
        _pyarrow()
    return wanted


def check_destination(out: Path) -> None:
    """`out` must be new or an empty directory: an export never overwrites another."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file, not a directory: choose a new or empty directory")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError(
            f"{out} is not empty (an earlier export?): choose a new or empty directory, "
            "so nothing stored there is overwritten"
        )


def _write_files(
    bundles: Sequence[TraceBundle],
    out: Path,
    wanted: list[str],
    chosen: ExportFilter | None,
    skipped: Sequence[Skipped],
    flagged: Sequence[Flagged],
) -> dict[str, Any]:
    files: dict[str, dict[str, Any]] = {}

    def put(name: str, data: bytes, rows: int) -> None:
        (out / name).write_bytes(data)
        files[name] = {"bytes": len(data), "rows": rows, "sha256": hashlib.sha256(data).hexdigest()}

    if "swebench" in wanted:
        instances = [swebench_instance(b) for b in bundles]
        put(INSTANCES_FILE, jsonl(instances), len(instances))
    if "events" in wanted:
        records = [r for b in bundles for r in event_records(b.document)]
        put(EVENTS_FILE, jsonl(records), len(records))
    writer = None
    if "parquet" in wanted:
        events = [row for b in bundles for row in event_rows(b.document)]
        traces = [trace_row(b) for b in bundles]
        put(EVENTS_PARQUET, parquet_bytes(events, events_schema()), len(events))
        put(TRACES_PARQUET, parquet_bytes(traces, traces_schema()), len(traces))
        writer = _parquet_writer()
    manifest = {
        "version": EXPORT_VERSION,
        "formats": wanted,
        "filter": (chosen or ExportFilter()).describe(),
        "trace_count": len(bundles),
        "event_count": sum(len(b.document.events) for b in bundles),
        "trace_ids": [b.trace_id for b in bundles],
        "skipped": [{"trace_id": s.trace_id, "reason": s.reason} for s in skipped],
        # Left out for tamper flags; and how many of those taken have them (include_flagged).
        "flagged_left_out": [{"trace_id": f.trace_id, "flags": list(f.flags)} for f in flagged],
        "flagged_left_out_count": len(flagged),
        "flagged_count": sum(1 for b in bundles if b.qa_report and b.qa_report.tamper_flags),
        "files": files,
        "parquet": None if writer is None else {"writer": writer, "options": PARQUET_OPTIONS},
    }
    (out / MANIFEST_FILE).write_bytes(export_json(manifest) + b"\n")
    return manifest


# ---- Parquet --------------------------------------------------------------------------


def _pyarrow() -> Any:
    try:
        import pyarrow as pa  # only Parquet exports need it
        import pyarrow.parquet
    except ImportError:
        raise ExportError("Parquet export needs pyarrow: pip install 'prtrace[export]'") from None
    return pa


def _parquet_writer() -> str:
    return f"pyarrow {_pyarrow().__version__}"


def events_schema() -> pa.Schema:
    pa = _pyarrow()
    return pa.schema(
        [
            pa.field("trace_id", pa.string(), nullable=False),
            pa.field("seq", pa.int64(), nullable=False),
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("ts", pa.string(), nullable=False),
            pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("type", pa.string(), nullable=False),
            pa.field("path", pa.string()),
            pa.field("exit_code", pa.int32()),
            pa.field("tests_passed", pa.int64()),
            pa.field("tests_failed", pa.int64()),
            pa.field("payload", pa.string(), nullable=False),
        ]
    )


def traces_schema() -> pa.Schema:
    pa = _pyarrow()
    text = pa.string()
    tests = pa.list_(pa.string())
    required = [
        "trace_id", "status", "created_at", "repo", "repo_url", "base_commit", "task_title",
        "task_description", "author_id", "author_kind", "client_name", "client_version",
    ]  # fmt: skip
    fields = [pa.field(name, text, nullable=False) for name in required]
    fields += [
        pa.field("event_count", pa.int64(), nullable=False),
        pa.field("chain_key_id", text, nullable=False),
        pa.field("chain_head", text, nullable=False),
        pa.field("qa_verdict", text),
        pa.field("fail_to_pass", tests, nullable=False),
        pa.field("pass_to_pass", tests, nullable=False),
        pa.field("pass_to_fail", tests, nullable=False),
        pa.field("fail_to_fail", tests, nullable=False),
        pa.field("fail_to_absent", tests, nullable=False),
        pa.field("fail_to_skipped", tests, nullable=False),
        pa.field("qa_target_tests", tests, nullable=False),
        pa.field("qa_target_source", text),
        pa.field("qa_unresolved_targets", tests, nullable=False),
        pa.field("qa_resolution", text),
        pa.field("qa_verdict_reason", text),
        pa.field("qa_flags", tests, nullable=False),
        pa.field("qa_tamper_flags", tests, nullable=False),
        pa.field("judge_status", text),
        pa.field("judge", text),
        pa.field("judge_overall", pa.float64()),
        pa.field("judge_stand_in", text),
        pa.field("judge_stand_in_overall", pa.float64()),
        *(pa.field(f"score_{dimension}", pa.int8()) for dimension in DIMENSION_IDS),
        pa.field("patch_source", text, nullable=False),
        pa.field("patch_files", tests, nullable=False),
        pa.field("metrics", text, nullable=False),
        pa.field("state_check", text),
        pa.field("state_first_mismatch", text),
        pa.field("state_unexplained_bytes", pa.int64()),
    ]
    return pa.schema(fields)


def parquet_bytes(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> bytes:
    pa = _pyarrow()
    table = pa.Table.from_pylist(list(rows), schema=schema)
    sink = pa.BufferOutputStream()
    pa.parquet.write_table(table, sink, **PARQUET_OPTIONS)
    return bytes(sink.getvalue().to_pybytes())
