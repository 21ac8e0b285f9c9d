"""Query at scale, locally: 1,000 generated complete traces written to the Parquet traces
table by the Record step's writer (prtrace.dataset.trace_table) into the local cloud's S3 emulator
(moto's server, as the local cloud runs it), then `prtrace query`'s two steps timed:

  sync         list the tenant's prefix and download every file (cold cache)
  query        DuckDB: an aggregate over all 1,000 files (verdict counts, mean scores)
  query_warm   the same command again: the sync finds every file cached, then the query
`run()` returns flat keys with units in their names; `python -m bench.query` prints them.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

from local_cloud.emulator import emulator_client, moto_server
from prtrace.adapters.s3 import S3BlobStore
from prtrace.dataset.trace_table import TraceTableWriter
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace.records import COMPLETE, TraceRecord
from prtrace_cli.query import run_query, sync_table

TRACES = 1_000
ROUNDS = 5
TENANT = "bench"
BUCKET = "prtrace-bench-query"
SQL = (
    "SELECT qa_verdict, count(*) AS traces, avg(judge_overall) AS overall, "
    "avg(metric_duration_ms) AS duration_ms, count(DISTINCT date) AS days "
    "FROM traces GROUP BY qa_verdict ORDER BY qa_verdict"
)


def generated(n: int) -> TraceRecord:
    verdict = ("resolved", "unresolved", "error")[n % 3]
    day = 1 + n % 28
    scores = [
        {"dimension": d, "score": (n + i) % 6, "rationale": "r", "cited_event_ids": []}
        for i, d in enumerate(DIMENSION_IDS)
    ]
    return TraceRecord(
        tenant=TENANT,
        trace_id=f"tr_{n:026d}",
        status=COMPLETE,
        metadata={
            "repository": {
                "url": f"https://git.example.com/acme/r{n % 50}.git",
                "base_commit": "a" * 40,
            },
            "task": {"title": f"bug {n}"},
            "author": {"id": f"dev-{n % 20}", "kind": "human" if n % 2 else "agent"},
            "client": {"name": "bench", "version": "1"},
        },
        created_at=f"2026-11-{day:02d}T09:00:00.000Z",
        updated_at=f"2026-11-{day:02d}T09:10:00.000Z",
        outcome={
            "qa": {
                "verdict": verdict,
                "backend": "bwrap",
                "duration_ms": 2000 + n,
                "fail_to_pass": {"count": 1, "ids": [f"tests/test_{n}.py::t"], "truncated": False},
                "pass_to_pass": {"count": 0, "ids": [], "truncated": False},
                "pass_to_fail": {"count": 0, "ids": [], "truncated": False},
                "fail_to_fail": {"count": 0, "ids": [], "truncated": False},
            },
            "qa_skipped": None,
            "judge": {
                "status": "ok",
                "judge": "offline-heuristic v1",
                "overall": (n % 21) / 4,
                "needs_human_review": False,
                "scores": scores,
            },
            "metrics": {"duration_ms": 60_000 + n, "commands": n % 9, "lines_added": n % 40},
            "chain": {"key_id": "k1", "head": f"{n:064x}", "length": 40},
            "event_count": 40,
            "chunk_count": 2,
            "recorded_at": f"2026-11-{day:02d}T09:10:00.000Z",
        },
    )


def run(traces: int | None = None) -> dict[str, float]:
    traces = TRACES if traces is None else traces
    with moto_server() as endpoint:
        s3 = emulator_client("s3", endpoint, "us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        writer = TraceTableWriter(S3BlobStore(s3, BUCKET))
        started = time.perf_counter()
        for n in range(traces):
            writer.write(generated(n))
        write_s = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as cache_dir:
            cache = Path(cache_dir)
            started = time.perf_counter()
            synced = sync_table(s3, BUCKET, TENANT, cache)
            sync_s = time.perf_counter() - started
            assert synced.files == synced.downloaded == traces, synced
            samples, warm = [], []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                _, rows = run_query(cache, TENANT, SQL)
                samples.append(time.perf_counter() - started)
                assert sum(r[1] for r in rows) == traces, rows
                started = time.perf_counter()
                again = sync_table(s3, BUCKET, TENANT, cache)
                run_query(cache, TENANT, SQL)
                warm.append(time.perf_counter() - started)
                assert again.downloaded == 0
    return {
        "query_traces": traces,
        "query_table_bytes": synced.bytes_downloaded,
        "query_write_rows_s": round(write_s, 3),
        "query_sync_cold_s": round(sync_s, 3),
        "query_duckdb_p50_ms": round(statistics.median(samples) * 1000, 1),
        "query_command_warm_p50_ms": round(statistics.median(warm) * 1000, 1),
    }


if __name__ == "__main__":
    Console().print(run())
