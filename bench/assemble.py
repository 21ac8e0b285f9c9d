"""Assemble benchmark: time and peak memory of the Assemble step for traces of 1,000,
10,000 and 100,000 events (2,000 events per chunk, one stdout artifact per command).

Each trace is stored beforehand in a directory bucket (chunk bodies, artifacts) plus its
DynamoDB-shaped records, then assembled in a fresh Python process that only loads the
records and runs `AssembleService.assemble`; the document goes to a temporary file and
then into the directory bucket, as it would go to S3. Memory is that process's peak RSS
(VmHWM, interpreter and imports included) and its growth during assembling (peak
after minus peak before). Target: 100,000 events in < 10 s with < 256 MB peak.
`run()` returns flat keys with units in their names; `python -m bench.assemble` prints them.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bench.memory import peak_rss_mb
from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.adapters.memory import MemoryTraceStore
from prtrace.assemble.service import Assembled, AssembleService
from prtrace.records import ChunkRecord, TraceRecord
from prtrace.schema import MAX_EVENTS_PER_CHUNK
from tests.assemble_support import KEY_RING, TENANT, TRACE_ID, session, stdout_of, store_trace

SIZES = (1_000, 10_000, 100_000)
TARGET_100K_S = 10.0
TARGET_100K_PEAK_MB = 256.0
ROOT = Path(__file__).resolve().parents[1]


def label(events: int) -> str:
    return f"{events // 1000}k" if events % 1000 == 0 else str(events)


def _chunks(events: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, events, MAX_EVENTS_PER_CHUNK):
        yield session(start, min(MAX_EVENTS_PER_CHUNK, events - start))


def prepare(root: Path, events: int) -> None:
    """Store a trace of `events` events under `root` (bucket/ and records.json)."""
    traces = MemoryTraceStore()
    commands = (seq for seq in range(events) if seq % 5 == 1)  # the factories' cmd_run slots
    store_trace(
        traces,
        DirectoryArtifactStore(root / "bucket"),
        _chunks(events),
        artifacts=(stdout_of(seq) for seq in commands),
    )
    records = {
        "trace": dataclasses.asdict(traces.traces[(TENANT, TRACE_ID)]),
        "chunks": [dataclasses.asdict(chunk) for chunk in traces.chunks.values()],
    }
    (root / "records.json").write_bytes(orjson.dumps(records))


def worker(root: Path) -> dict[str, Any]:
    """Runs in the fresh process: load the records, assemble once, report."""
    records = orjson.loads((root / "records.json").read_bytes())
    traces = MemoryTraceStore()
    trace = TraceRecord(**records["trace"])
    traces.traces[(trace.tenant, trace.trace_id)] = trace
    for chunk in records["chunks"]:
        record = ChunkRecord(**chunk | {"event_ids": tuple(chunk["event_ids"])})
        traces.chunks[(record.tenant, record.trace_id, record.chunk_seq)] = record
    del records
    blobs = DirectoryArtifactStore(root / "bucket")
    service = AssembleService(traces, blobs, lambda: KEY_RING, spool_dir=str(root))
    before = peak_rss_mb()
    start = time.perf_counter()
    outcome = service.assemble(TENANT, TRACE_ID)
    elapsed = time.perf_counter() - start
    if not isinstance(outcome, Assembled):
        raise SystemExit(f"benchmark trace was rejected: {outcome.reason}")
    return {
        "seconds": elapsed,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
        "events": outcome.event_count,
        "document_bytes": outcome.document_bytes,
    }


def measure(events: int, scratch: Path) -> dict[str, float]:
    root = scratch / f"trace-{events}"
    prepare(root, events)
    answer = subprocess.run(  # noqa: S603 - this interpreter running this module
        [sys.executable, "-m", "bench.assemble", "--worker", str(root)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    figures = orjson.loads(answer.stdout.splitlines()[-1])
    if figures["events"] != events:
        raise AssertionError(f"assembled {figures['events']} events, not {events}")
    name = f"assemble_{label(events)}"
    return {
        f"{name}_events_s": round(figures["seconds"], 3),
        f"{name}_events_per_s": round(events / figures["seconds"]),
        f"{name}_peak_rss_mb": round(figures["peak_rss_mb"], 1),
        f"{name}_rss_growth_mb": round(figures["peak_rss_mb"] - figures["rss_before_mb"], 1),
        f"{name}_document_mb": round(figures["document_bytes"] / 1024**2, 1),
    }


def run(sizes: Sequence[int] = SIZES) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="prtrace-bench-assemble-") as scratch:
        for events in sizes:
            results |= measure(events, Path(scratch))
    if 100_000 in sizes:
        results["assemble_100k_target_s"] = TARGET_100K_S
        results["assemble_100k_target_peak_mb"] = TARGET_100K_PEAK_MB
    return results


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.stdout.write(orjson.dumps(worker(Path(sys.argv[2]))).decode() + "\n")
        return
    results = run()
    table = Table("assemble (fresh process per trace)", "value")
    for key, value in results.items():
        table.add_row(key, f"{value:,}")
    Console().print(table)


if __name__ == "__main__":
    main()
