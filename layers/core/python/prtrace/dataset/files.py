"""Dataset export files: SWE-bench-style instances, typed event rows and trajectories
(JSON Lines), the artifacts the trajectories cite, Parquet tables, a dataset card, and a
manifest of counts and SHA-256s. The same code writes `prtrace export`'s files on a client
and the export job's on the service, so both give the same bytes.

Writing is deterministic: traces in id order, events in seq order, keys sorted, fixed
Parquet writer options, and nothing about the run itself (no clock, no host) in any file.
It streams: each trace is read, written to every file and dropped before the next, and a
large trace's events are read one at a time from its document's bytes
(prtrace.dataset.document_stream) and written as they are read, its trajectory line too,
so memory follows the largest document, not the export or its events as models. pyarrow
is needed for Parquet only (`pip install 'prtrace[export]'`; the export job's image has it).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final

from prtrace.dataset.card import dataset_card
from prtrace.dataset.harness import swebench_test_lists
from prtrace.dataset.rows import (
    EVENT_COLUMN_TYPES,
    EXPORT_VERSION,
    ExportFilter,
    TraceBundle,
    event_row,
    export_json,
    parse_ts,
    sorted_bundles,
    swebench_instance,
    trace_row,
)
from prtrace.dataset.trajectory import TrajectoryLine
from prtrace.integrity import file_sha256
from prtrace.judge.rubric import DIMENSION_IDS

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS: Final = ("swebench", "events", "parquet", "trajectories")
INSTANCES_FILE: Final = "instances.jsonl"
EVENTS_FILE: Final = "events.jsonl"
EVENTS_PARQUET: Final = "events.parquet"
TRACES_PARQUET: Final = "traces.parquet"
TRAJECTORIES_FILE: Final = "trajectories.jsonl"
ARTIFACTS_FILE: Final = "artifacts.jsonl"
CARD_FILE: Final = "README.md"
MANIFEST_FILE: Final = "manifest.json"
ROW_GROUP_ROWS: Final = 16_384  # rows held before a Parquet row group is written
BATCH_ROWS: Final = 1_024  # rows held as dicts before they are made Arrow columns
# A trajectory's steps and messages are held in memory up to this size each, then on disk.
SPOOL_MEMORY_BYTES: Final = 1 << 20
# Fixed so the same rows give the same file (the writer's version is in the manifest).
PARQUET_OPTIONS: Final[dict[str, Any]] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": ROW_GROUP_ROWS,
}
# (trace id, sha256) -> the artifact's bytes, None when it cannot be read.
ArtifactReader = Callable[[str, str], bytes | None]


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


@dataclass(frozen=True)
class Unusable:
    """A trace the filter selected but left out: its instance is not usable as it is (the
    reasons, prtrace.dataset.rows.UnusableReason); `include_unusable` takes it."""

    trace_id: str
    reasons: tuple[str, ...]


# ---- writing --------------------------------------------------------------------------


def write_export(
    bundles: Iterable[TraceBundle],
    out: Path,
    *,
    formats: Iterable[str] = FORMATS,
    chosen: ExportFilter | None = None,
    skipped: Sequence[Skipped] = (),
    flagged: Sequence[Flagged] = (),
    unusable: Sequence[Unusable] = (),
    read_artifact: ArtifactReader | None = None,
    string_test_lists: bool = False,
) -> dict[str, Any]:
    """Write the files of `formats`, the dataset card and manifest.json into `out` (a new
    or empty directory); returns the manifest.

    `bundles` may be lazy (prtrace.dataset.collect's selection, in trace id order); a list
    is sorted here. `skipped`, `flagged` and `unusable` are read once the bundles are
    consumed, so a lazy selection can fill them as it reads. `read_artifact` gives the
    trajectories their observations (without it, those stored as artifacts are missing).
    `string_test_lists` writes FAIL_TO_PASS/PASS_TO_PASS as JSON strings, as SWE-bench's
    published rows hold them.

    All or nothing: what is needed (the formats known, pyarrow for Parquet, `out` free) is
    checked before anything is written; the files are written beside `out` and moved in
    only when all are, manifest.json last, so a directory with a manifest is complete and a
    failed export leaves `out` as it was."""
    wanted = check_formats(formats)
    if isinstance(bundles, list | tuple):
        bundles = sorted_bundles(bundles)
    with staged_export(out) as staging:
        writer = _ExportWriter(staging, wanted, read_artifact, string_test_lists)
        try:
            for bundle in bundles:
                writer.add(bundle)
                del bundle  # dropped before the next is read: memory follows one trace
        finally:
            files = writer.close()
        manifest = _manifest(writer, files, wanted, chosen, skipped, flagged, unusable)
        card = dataset_card(manifest).encode()
        (staging / CARD_FILE).write_bytes(card)
        manifest["files"][CARD_FILE] = _entry(card, rows=0)
        (staging / MANIFEST_FILE).write_bytes(export_json(manifest) + b"\n")
    return manifest


@contextmanager
def staged_export(out: Path) -> Iterator[Path]:
    """A scratch directory beside `out` (which must be new or empty) for an export's files:
    when the block ends without error they are moved into `out`, manifest.json last, so a
    directory with a manifest is complete; either way the scratch directory is removed, so
    a failed export (written here or downloaded) leaves `out` as it was."""
    check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield staging
        out.mkdir(exist_ok=True)
        for path in sorted(staging.iterdir(), key=lambda p: (p.name == MANIFEST_FILE, p.name)):
            path.replace(out / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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


class _JsonLines:
    """A JSON Lines file written a record at a time, hashed as it is written."""

    def __init__(self, path: Path) -> None:
        self._file: BinaryIO = path.open("wb")
        self._sha256 = hashlib.sha256()
        self.rows = 0
        self.bytes = 0

    def write(self, record: dict[str, Any]) -> None:
        data = export_json(record) + b"\n"
        self._file.write(data)
        self._sha256.update(data)
        self.rows += 1
        self.bytes += len(data)

    def write_line(self, pieces: Iterable[bytes]) -> None:
        """One record as the pieces of its JSON (a long one is never whole)."""
        for data in itertools.chain(pieces, [b"\n"]):
            self._file.write(data)
            self._sha256.update(data)
            self.bytes += len(data)
        self.rows += 1

    def close(self) -> dict[str, Any]:
        self._file.close()
        return {"bytes": self.bytes, "rows": self.rows, "sha256": self._sha256.hexdigest()}


class _ParquetRows:
    """A Parquet file written a row group at a time. The rows of the group being filled
    are held as Arrow record batches of BATCH_ROWS (compact columns), not as dicts."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        pa = _pyarrow()
        options = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}
        self._path, self._schema = path, schema
        pool = pa.system_memory_pool()  # see _batch
        self._writer = pa.parquet.ParquetWriter(str(path), schema, memory_pool=pool, **options)
        self._pending: list[dict[str, Any]] = []
        self._batches: list[Any] = []  # pyarrow.RecordBatch
        self._batched = 0  # rows in self._batches
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        self.rows += 1
        if self._batched + len(self._pending) >= ROW_GROUP_ROWS:
            self._flush()
        elif len(self._pending) >= BATCH_ROWS:
            self._batch()

    def _batch(self) -> None:
        """The pending rows as a record batch (as `RecordBatch.from_pylist` makes it). In
        the system allocator: Arrow's default pool (mimalloc) keeps what short-lived
        buffers freed, tens of MB over a large export."""
        if self._pending:
            pa, rows = _pyarrow(), self._pending
            pool = pa.system_memory_pool()
            columns = [
                pa.array([row.get(field.name) for row in rows], field.type, memory_pool=pool)
                for field in self._schema
            ]
            self._batches.append(pa.RecordBatch.from_arrays(columns, schema=self._schema))
            self._batched += len(rows)
            self._pending = []

    def _flush(self) -> None:
        self._batch()
        if self._batches:
            # One chunk per column, as one conversion of all the rows would give: the same
            # file bytes.
            pa = _pyarrow()
            table = pa.Table.from_batches(self._batches, schema=self._schema)
            table = table.combine_chunks(memory_pool=pa.system_memory_pool())
            self._batches, self._batched = [], 0
            self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            # The column encoders use the default pool: give back what they freed.
            pa.default_memory_pool().release_unused()

    def close(self) -> dict[str, Any]:
        try:
            self._flush()
        finally:
            self._writer.close()
        digest, size = file_sha256(self._path)
        return {"bytes": size, "rows": self.rows, "sha256": digest}


class _ExportWriter:
    """Every file of one export open at once; each trace goes to all of them in turn."""

    def __init__(
        self,
        root: Path,
        wanted: list[str],
        read_artifact: ArtifactReader | None,
        string_test_lists: bool,
    ) -> None:
        self._root = root
        self._read_artifact = read_artifact
        self._string_test_lists = string_test_lists
        self._files: dict[str, _JsonLines | _ParquetRows] = {}
        self.trace_ids: list[str] = []
        self.event_count = 0
        self.flagged_count = 0
        self.usable_count = 0
        self.splits: Counter[str] = Counter()
        self.repositories: set[str] = set()
        self._artifacts_written: set[str] = set()
        self.test_lists = "json-strings" if string_test_lists else "lists"
        opened: list[tuple[str, Callable[[], _JsonLines | _ParquetRows]]] = []
        if "swebench" in wanted:
            opened.append((INSTANCES_FILE, lambda: _JsonLines(root / INSTANCES_FILE)))
        if "events" in wanted:
            opened.append((EVENTS_FILE, lambda: _JsonLines(root / EVENTS_FILE)))
        if "parquet" in wanted:
            opened += [
                (EVENTS_PARQUET, lambda: _ParquetRows(root / EVENTS_PARQUET, events_schema())),
                (TRACES_PARQUET, lambda: _ParquetRows(root / TRACES_PARQUET, traces_schema())),
            ]
        if "trajectories" in wanted:
            opened += [
                (TRAJECTORIES_FILE, lambda: _JsonLines(root / TRAJECTORIES_FILE)),
                (ARTIFACTS_FILE, lambda: _JsonLines(root / ARTIFACTS_FILE)),
            ]
        for name, open_file in opened:
            self._files[name] = open_file()
        self.parquet_writer = _parquet_writer() if "parquet" in wanted else None

    def add(self, bundle: TraceBundle) -> None:
        files = self._files
        instance = swebench_instance(bundle)
        self.trace_ids.append(bundle.trace_id)
        self.event_count += bundle.event_count
        self.flagged_count += bool(bundle.qa_report and bundle.qa_report.tamper_flags)
        self.usable_count += bool(instance["usable"])
        self.splits[str(instance["split"])] += 1
        self.repositories.add(str(instance["repo"]))
        if INSTANCES_FILE in files:
            lists = swebench_test_lists(instance) if self._string_test_lists else {}
            row = instance | lists
            files[INSTANCES_FILE].write(row)
        if TRACES_PARQUET in files:
            files[TRACES_PARQUET].write(trace_row(bundle))
        self._add_events(bundle)

    def _add_events(self, bundle: TraceBundle) -> None:
        """The trace's event rows and trajectory, in one pass over its events (one event
        held at a time when the document streams)."""
        files = self._files
        events_jsonl, events_parquet = files.get(EVENTS_FILE), files.get(EVENTS_PARQUET)
        line = self._trajectory_line(bundle) if TRAJECTORIES_FILE in files else None
        if not (events_jsonl or events_parquet or line):
            return
        try:
            for event in bundle.events():
                if events_jsonl or events_parquet:
                    row = event_row(bundle.trace_id, event)
                    if events_jsonl:
                        events_jsonl.write(row)
                    if events_parquet:
                        events_parquet.write(row | {"time": parse_ts(row["ts"])})
                if line:
                    line.add(event)
            if line:
                self._write_trajectory(line)
        finally:
            if line:
                line.close()

    def _trajectory_line(self, bundle: TraceBundle) -> TrajectoryLine:
        trace_id, reader = bundle.trace_id, self._read_artifact

        def read(sha256: str) -> bytes | None:
            return None if reader is None else reader(trace_id, sha256)

        def spool() -> IO[bytes]:
            return tempfile.SpooledTemporaryFile(SPOOL_MEMORY_BYTES, dir=str(self._root))

        return TrajectoryLine(bundle, read, spool=spool)

    def _write_trajectory(self, line: TrajectoryLine) -> None:
        files = self._files
        trajectories = files[TRAJECTORIES_FILE]
        assert isinstance(trajectories, _JsonLines)
        trajectories.write_line(line.pieces())
        for sha256, data in line.artifacts().items():
            if sha256 in self._artifacts_written:
                continue  # content-addressed: one row per content, whichever trace cites it
            self._artifacts_written.add(sha256)
            files[ARTIFACTS_FILE].write(_artifact_row(sha256, data))

    def close(self) -> dict[str, dict[str, Any]]:
        return {name: file.close() for name, file in sorted(self._files.items())}


def _artifact_row(sha256: str, data: bytes) -> dict[str, Any]:
    """One artifact, by its SHA-256: text when it is UTF-8, base64 otherwise."""
    try:
        return {"sha256": sha256, "size": len(data), "encoding": "utf-8", "content": data.decode()}
    except UnicodeDecodeError:
        content = base64.b64encode(data).decode()
        return {"sha256": sha256, "size": len(data), "encoding": "base64", "content": content}


def _entry(data: bytes, rows: int) -> dict[str, Any]:
    return {"bytes": len(data), "rows": rows, "sha256": hashlib.sha256(data).hexdigest()}


def _manifest(
    writer: _ExportWriter,
    files: dict[str, dict[str, Any]],
    wanted: list[str],
    chosen: ExportFilter | None,
    skipped: Sequence[Skipped],
    flagged: Sequence[Flagged],
    unusable: Sequence[Unusable],
) -> dict[str, Any]:
    artifacts = files.get(ARTIFACTS_FILE)
    return {
        "version": EXPORT_VERSION,
        "formats": wanted,
        "filter": (chosen or ExportFilter()).describe(),
        "test_lists": writer.test_lists,
        "trace_count": len(writer.trace_ids),
        "event_count": writer.event_count,
        "trace_ids": writer.trace_ids,
        "usable_count": writer.usable_count,
        "splits": dict(sorted(writer.splits.items())),
        "repository_count": len(writer.repositories),
        "artifact_count": artifacts["rows"] if artifacts else 0,
        "skipped": [{"trace_id": s.trace_id, "reason": s.reason} for s in skipped],
        # Left out for tamper flags; and how many of those taken have them (include_flagged).
        "flagged_left_out": [{"trace_id": f.trace_id, "flags": list(f.flags)} for f in flagged],
        "flagged_left_out_count": len(flagged),
        "flagged_count": writer.flagged_count,
        # Left out as not usable for other reasons (include_unusable takes them).
        "unusable_left_out": [
            {"trace_id": u.trace_id, "reasons": list(u.reasons)} for u in unusable
        ],
        "unusable_left_out_count": len(unusable),
        "files": files,
        "parquet": (
            None
            if writer.parquet_writer is None
            else {"writer": writer.parquet_writer, "options": PARQUET_OPTIONS}
        ),
    }


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


# Event columns that are never null; `exit_code` is int32 here, as it has always been.
_REQUIRED_EVENT_COLUMNS: Final = frozenset({"trace_id", "seq", "event_id", "ts", "type", "payload"})


def events_schema() -> pa.Schema:
    """The typed event rows (prtrace.dataset.rows.EVENT_COLUMN_TYPES) with `time`, the
    parsed timestamp, after `ts`."""
    pa = _pyarrow()
    types = {"string": pa.string(), "int64": pa.int64()}
    fields = []
    for name, kind in EVENT_COLUMN_TYPES.items():
        arrow = pa.list_(types[kind[0]]) if isinstance(kind, list) else types[kind]
        arrow = pa.int32() if name == "exit_code" else arrow
        fields.append(pa.field(name, arrow, nullable=name not in _REQUIRED_EVENT_COLUMNS))
        if name == "ts":
            fields.append(pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False))
    return pa.schema(fields)


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
        pa.field("trace_manifest_sha256", text),
        pa.field("trace_manifest_key_id", text),
        pa.field("base_dirty", pa.bool_()),
        pa.field("split", text, nullable=False),
        pa.field("usable", pa.bool_(), nullable=False),
        pa.field("unusable_reasons", tests, nullable=False),
    ]
    return pa.schema(fields)
