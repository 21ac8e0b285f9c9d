"""`make bench`: the ingest path of one 1,000-event chunk on one core.

Measured stages, each on the same bytes:
  ceiling        orjson.loads of the body (nothing can be faster than parsing it)
  prepare        parse + strict validation + canonicalization + in-chunk seq/dedupe + digest
  ingest         prepare + chunk MAC + event chain over the chunk's events
  service        IngestService.put_chunk with in-memory stores (adds neighbour and
                 trace-wide duplicate checks and the conditional commit)
Prints a table and writes the same figures to bench-results.json (flat keys, units in names).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from bench import (
    assemble,
    chunk_put_cost,
    client_overhead,
    client_upload,
    e2e_local,
    export_job,
    export_memory,
    judge,
    judge_calibration,
    pipeline,
    qa,
    qa_corpus,
    query,
)
from bench.memory import peak_rss_mb
from prtrace.adapters.memory import MemoryBlobStore, MemoryTraceStore
from prtrace.heap import settle_after_init
from prtrace.ingest.chunks import prepare_chunk
from prtrace.ingest.service import IngestService
from prtrace.integrity import EventChain, KeyRing
from prtrace.schema import TraceMetadata
from tests.factories import chunk_body, trace_metadata

EVENTS = 1_000
ROUNDS = 40
KEY = KeyRing(current_id="bench", keys={"bench": b"k" * 32})
RESULTS = Path("bench-results.json")


def timed(fn: Callable[[], object], rounds: int = ROUNDS) -> list[float]:
    for _ in range(3):  # warm caches and pydantic's validators
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})  # one core
    try:
        results = run()
    finally:
        os.sched_setaffinity(0, cores)
    console = Console()
    results |= _section(console, "chunk PUT cost at chunk 1, 100 and 1,000", chunk_put_cost.run)
    results |= _section(console, "assemble (1k, 10k and 100k events)", assemble.run)
    results |= _section(console, "end-to-end through the local cloud", e2e_local.run)
    results |= _section(console, "pipeline: the demo trace, finalize to complete", pipeline.run)
    results |= _section(console, "client upload (100,000 events, SDK + outbox)", client_upload.run)
    overhead = client_overhead.run()
    table = Table(
        "client overhead per recorded command", "p50 ms", "p99 ms", "over bare p50", "over bare p99"
    )
    for row in client_overhead.side_by_side(overhead):
        table.add_row(*row)
    console.print(table)
    results |= overhead
    results |= _section(console, "QA sandbox", qa.run)
    results |= _section(
        console, "QA on real projects (tests/qa_corpus) vs bare pytest", qa_corpus.run
    )
    results |= _section(console, "judge (100,000-event trace)", judge.run)
    results |= _section(
        console,
        "offline judge on the calibration set (tests/judge_calibration)",
        judge_calibration.run,
    )
    results |= _section(console, "prtrace query: DuckDB over 1,000 traces' Parquet", query.run)
    results |= _section(console, "export job: 1,000 traces, all formats", export_job.run)
    results |= _section(
        console,
        "dataset export, memory: 1,000 traces; one 100,000-event trace (all formats)",
        export_memory.run,
    )
    RESULTS.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    console.print(f"wrote {RESULTS}")


def _section(
    console: Console, title: str, measure: Callable[[], dict[str, float]]
) -> dict[str, float]:
    figures = measure()
    table = Table(title, "value")
    for name, value in figures.items():
        table.add_row(name, f"{value:,}")
    console.print(table)
    return figures


def run() -> dict[str, float]:
    raw = chunk_body(0, EVENTS)
    settle_after_init()  # the heap as the API function's init leaves it (prtrace.heap)

    def ingest() -> None:
        chunk = prepare_chunk(raw, 0)
        chunk.mac(KEY.current, tenant="bench", trace_id="tr_bench")
        chain = EventChain(KEY.current, "tr_bench")
        for event in chunk.canonical_events:
            chain.append(event)

    store = MemoryTraceStore()
    service = IngestService(store, MemoryBlobStore(), lambda: KEY)
    metadata = TraceMetadata.model_validate(trace_metadata())

    def via_service() -> None:
        trace = service.create_trace("bench", metadata)
        service.put_chunk("bench", trace.trace_id, 0, raw)

    stages = {
        "orjson_loads_ceiling": timed(lambda: orjson.loads(raw)),
        "prepare_chunk": timed(lambda: prepare_chunk(raw, 0)),
        "ingest_chunk": timed(ingest),
        "ingest_service_put_chunk": timed(via_service),
    }
    results: dict[str, float] = {"chunk_event_count": EVENTS, "chunk_body_bytes": len(raw)}
    table = Table("stage (1,000-event chunk, one core)", "events/s (median)", "p50 ms", "p99 ms")
    for name, samples in stages.items():
        p50 = statistics.median(samples)
        p99 = sorted(samples)[min(len(samples) - 1, int(len(samples) * 0.99))]
        results[f"{name}_events_per_s"] = round(EVENTS / p50)
        results[f"{name}_p50_ms"] = round(p50 * 1000, 3)
        results[f"{name}_p99_ms"] = round(p99 * 1000, 3)
        table.add_row(name, f"{EVENTS / p50:,.0f}", f"{p50 * 1000:.2f}", f"{p99 * 1000:.2f}")
    results["ingest_chunk_target_events_per_s"] = 60_000
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    console = Console()
    console.print(table)
    console.print(f"target ingest_chunk ≥ 60,000 events/s; peak RSS {results['peak_rss_mb']} MB")
    return results


if __name__ == "__main__":
    main()
