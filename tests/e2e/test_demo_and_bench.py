"""The README's demo and the benchmark harness run for real (the bench with few rounds:
its figures are reported by `make bench`, never asserted as timings here)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson

from bench import (
    assemble,
    chunk_put_cost,
    client_overhead,
    client_upload,
    e2e_local,
    export_job,
    export_memory,
    judge,
    pipeline,
    qa,
    qa_corpus,
    query,
)
from bench import run as bench
from prtrace.judge.result import OFFLINE_JUDGE
from prtrace.judge.rubric import DIMENSION_IDS

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_the_example_through_the_pipeline_on_the_local_cloud():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRTRACE_")}
    env.pop("OPENAI_API_KEY", None)
    env["COLUMNS"] = "200"  # one line per message, whatever the terminal
    done = subprocess.run(
        [sys.executable, "-m", "examples.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "local cloud ready in" in out
    assert "judge: offline" in out
    assert "created trace tr_" in out
    assert "artifact workspace-base.tar.gz: upload_required" in out
    assert "replayed chunk 1 → the same receipt (replayed: true, sha256 " in out
    assert "tampered chunk 1 → HTTP 409 urn:prtrace:problem:chunk-conflict" in out
    statuses = re.findall(r"status (\w+)$", out, re.MULTILINE)
    assert statuses[-1] == "complete", out[-3000:]
    assert set(statuses) <= {"finalizing", "assembling", "testing", "judging", "complete"}
    assert "assembled and verified: 3 chunks, 11 events" in out
    assert "QA verdict: resolved" in out
    assert "FAIL_TO_PASS (1): tests/test_ranges.py::test_merge_keeps_last_interval" in out
    assert f"judge: {OFFLINE_JUDGE} (ok)" in out
    for dimension in DIMENSION_IDS:
        assert re.search(rf"{dimension}\s+│ \d\s+│ \S", out), dimension
    assert "time_to_green_ms" in out
    # The recorded edit reproduces the final snapshot; the manifest is signed with KMS.
    assert "trace-to-state check: match (1 recorded edits applied" in out
    assert "manifest signed: ES256 key " in out
    # The downloaded bundle verifies with the published key alone, then one changed byte
    # of one chunk is named.
    assert re.search(r"prtrace download: tr_\S+ → \S+: 3 chunks, \d+ artifacts", out), out
    assert re.search(r"prtrace verify → exit 0: verified: \S+bundle", out), out
    assert "prtrace verify → exit 1" in out
    assert re.search(
        r"FAIL  chunks/000001\.json: SHA-256 [0-9a-f]{64} is not the manifest's [0-9a-f]{64} "
        r"\(chunk 1, events \d+\.\.\d+\): the chunk was changed",
        out,
    ), out
    trace_id = re.search(r"created trace (tr_\w+)", out)
    assert trace_id is not None
    assert re.search(
        rf"trace viewer: http://localhost:\d+/viewer/#/traces/{trace_id[1]}$", out, re.M
    )
    assert "prt_" not in done.stderr  # the token secret is never echoed


def test_bench_writes_flat_results(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "ROUNDS", 2)
    monkeypatch.setattr(e2e_local, "CHUNKS_PER_CLIENT", 2)
    monkeypatch.setattr(qa, "ROUNDS", 1)
    monkeypatch.setattr(client_overhead, "ROUNDS", 2)
    monkeypatch.setattr(client_overhead, "SLOW_ROUNDS", 2)
    monkeypatch.setattr(client_overhead, "PYTEST_ROUNDS", 1)
    monkeypatch.setattr(client_overhead, "SHELL_ROUNDS", 1)
    monkeypatch.setattr(client_overhead, "SHELL_BATCH", 2)
    monkeypatch.setattr(judge, "EVENTS", 2_000)
    monkeypatch.setattr(assemble, "run", functools.partial(assemble.run, (1_000,)))
    monkeypatch.setattr(pipeline, "ROUNDS", 1)
    monkeypatch.setattr(query, "TRACES", 20)
    monkeypatch.setattr(export_job, "TRACES", 100)
    monkeypatch.setattr(export_memory, "CASES", {"traces": (20, 44), "long_trace": (1, 3_000)})
    monkeypatch.setattr(query, "ROUNDS", 1)
    monkeypatch.setattr(client_upload, "EVENTS", 5_000)
    monkeypatch.setattr(chunk_put_cost, "CHUNKS", 100)
    monkeypatch.setattr(chunk_put_cost, "POSITIONS", (1, 50, 100))
    # One small corpus project (the whole corpus is tests/sandbox/test_qa_corpus.py's).
    monkeypatch.setattr(qa_corpus, "run", functools.partial(qa_corpus.run, ["itsdangerous"]))
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "bench-results.json")
    bench.main()
    results = orjson.loads((tmp_path / "bench-results.json").read_bytes())
    assert results["chunk_event_count"] == 1000
    for stage in (
        "orjson_loads_ceiling",
        "prepare_chunk",
        "ingest_chunk",
        "ingest_service_put_chunk",
    ):
        assert results[f"{stage}_events_per_s"] > 0
    assert all(isinstance(v, int | float) for v in results.values())
    assert results["e2e_local_events"] == 4 * 2 * 1000
    assert results["e2e_local_events_per_s"] > 0
    assert results["e2e_local_chunk_p99_ms"] >= results["e2e_local_chunk_p50_ms"] > 0
    assert results["qa_example_total_bwrap_s"] > 0
    assert results["chunk_put_memory_at_100_ms"] > 0
    assert results["chunk_put_moto_100_over_1"] > 0
    assert results["qa_corpus_itsdangerous_bare_pytest_s"] > 0
    engines = ["bwrap"] + (["docker"] if "qa_sandbox_start_docker_ms" in results else [])
    for backend in engines:
        assert results[f"qa_corpus_itsdangerous_{backend}_cold_s"] > 0
        assert results[f"qa_corpus_itsdangerous_{backend}_ratio"] > 0
    assert results["judge_prompt_100k_events_s"] > 0
    assert results["judge_offline_calibration_kendall_tau_b"] >= 0.8
    assert results["pipeline_finalize_to_complete_p50_s"] > 0
    assert results["query_traces"] == 20
    assert results["export_long_trace_events"] == 3_000
    assert results["export_job_traces"] == 100
    assert results["export_traces_peak_rss_mb"] >= results["export_traces_peak_rss_before_mb"] > 0
    assert results["query_duckdb_p50_ms"] > 0
    assert any(k.startswith("assemble_1k") for k in results), sorted(results)
    assert results["client_prtrace_run_true_p50_ms"] > results["client_direct_true_p50_ms"] > 0
    # 3 runs of `true` on the direct path and 3 on the fast path, 3 edits each with a run,
    # 2 pytest runs (each measurement warms up once), 2 typed `true` and the typed echo of
    # the timing in the integrated bash
    assert results["client_events_journaled"] == 3 + 3 + 3 * 2 + 2 + 3
    assert results["client_bash_typed_true_recorded_p50_ms"] > 0
