"""The pipeline on the local cloud: the demo's example trace from finalize to `complete`
(assemble and verify → QA task under the local sandbox, tests before and after the fix →
offline judge → record), timed as a client sees it by polling the trace every 50 ms."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from examples.snapshots import TRACE_DIR
from local_cloud.cloud import LocalCloud
from tests.e2e.pipeline_support import TraceClient

ROUNDS = 5
POLL_S = 0.05


def _finalize_to_end(client: TraceClient) -> tuple[float, dict[str, float]]:
    trace_id = client.upload(TRACE_DIR)
    started = time.perf_counter()
    answer = client.finalize(trace_id, TRACE_DIR)
    if answer.status_code != 202:
        raise RuntimeError(f"finalize answered {answer.status_code}: {answer.text}")
    view, entered = client.wait(trace_id, timeout_s=300, poll_s=POLL_S, since=started)
    if view["status"] != "complete":
        raise RuntimeError(f"trace {trace_id} ended {view['status']}")
    return entered["complete"], entered


def run() -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as state,
        LocalCloud(aws_port=0, api_port=0, state_dir=Path(state)) as info,
    ):
        client = TraceClient(info.endpoint, info.token, "dev")
        _finalize_to_end(client)  # warm every function's worker once
        totals, testing, judging = [], [], []
        for _ in range(ROUNDS):
            total, entered = _finalize_to_end(client)
            totals.append(total)
            testing.append(entered.get("judging", total) - entered.get("testing", total))
            judging.append(total - entered.get("judging", total))
    return {
        "pipeline_rounds": ROUNDS,
        "pipeline_finalize_to_complete_p50_s": round(statistics.median(totals), 2),
        "pipeline_finalize_to_complete_max_s": round(max(totals), 2),
        "pipeline_qa_stage_p50_s": round(statistics.median(testing), 2),
        "pipeline_judge_and_record_p50_s": round(statistics.median(judging), 2),
    }
