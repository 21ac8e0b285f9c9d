"""The dataset export job over 1,000 complete traces: what the export task runs
(prtrace.dataset.job with the store-backed source, as prtrace.adapters.wiring wires it),
against moto in-process (DynamoDB and S3), in a fresh process so its peak memory is the
job's own (plus moto's, which holds the bucket in the same process):

  seed         1,000 traces in the table, each with a 40-event assembled document in S3
  export       list, read and select them, write instances/events JSONL and both Parquet
               files, upload each and the manifest (all three formats)

`run()` returns flat keys with units in their names; `python -m bench.export_job` prints
them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TRACES = 1_000
TENANT = "bench"
EXPORT_ID = "ex_01JBENCH000000000000000000"
ROOT = Path(__file__).resolve().parents[1]


def _child(traces: int) -> dict[str, Any]:
    import os

    os.environ.update(
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto's, not a secret
        AWS_DEFAULT_REGION="us-east-1",
    )
    import boto3
    import orjson
    from moto import mock_aws

    from bench.memory import peak_rss_mb
    from local_cloud.resources import ResourceNames, provision
    from prtrace.adapters.dynamodb import DynamoTraceStore
    from prtrace.adapters.export_source import StoreTraceSource
    from prtrace.adapters.s3 import S3BlobStore
    from prtrace.dataset.exports import ExportRequest
    from prtrace.dataset.job import run_export
    from prtrace.integrity import sha256_hex
    from prtrace.media_types import JSON
    from prtrace.records import COMPLETE, TraceRecord
    from prtrace.storage_keys import document_key, export_request_key
    from tests.judge_factories import sample_document

    names = ResourceNames()
    with mock_aws():
        provision(names)
        blobs = S3BlobStore(boto3.client("s3"), names.bucket)
        store = DynamoTraceStore(boto3.client("dynamodb"), names.traces_table)
        template = sample_document()
        started = time.perf_counter()
        for n in range(traces):
            trace_id = f"tr_{n:026d}"
            document = template.model_copy(update={"trace_id": trace_id})
            body = document.model_dump_json(exclude_none=True).encode()
            blobs.put_if_absent(document_key(TENANT, trace_id), body, sha256_hex(body), JSON)
            store.create_trace(
                TraceRecord(
                    tenant=TENANT,
                    trace_id=trace_id,
                    status=COMPLETE,
                    metadata=document.metadata.model_dump(mode="json", exclude_none=True),
                    created_at=f"2026-11-{1 + n % 28:02d}T09:00:00.000Z",
                    updated_at="2026-11-30T09:00:00.000Z",
                )
            )
        seed_s = time.perf_counter() - started
        # The bench documents have no snapshots (no patch): take them though not usable.
        chosen = ExportRequest(include_unusable=True)
        request = {"export_id": EXPORT_ID, "request": chosen.model_dump(mode="json")}
        stored = orjson.dumps(request)
        blobs.put_if_absent(
            export_request_key(TENANT, EXPORT_ID), stored, "0" * 64, "application/json"
        )
        before_mb = peak_rss_mb()
        started = time.perf_counter()
        manifest = run_export(
            TENANT,
            EXPORT_ID,
            blobs=blobs,
            source=StoreTraceSource(store, blobs, TENANT),
            signer=None,
        )
        export_s = time.perf_counter() - started
        assert manifest["trace_count"] == traces, manifest["trace_count"]
    return {
        "export_job_traces": traces,
        "export_job_events": manifest["event_count"],
        "export_job_bytes": sum(f["bytes"] for f in manifest["files"].values()),
        "export_job_seed_s": round(seed_s, 2),
        "export_job_s": round(export_s, 2),
        "export_job_ms_per_trace": round(export_s * 1000 / traces, 2),
        "export_job_peak_rss_before_mb": round(before_mb, 1),
        "export_job_peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run(traces: int | None = None) -> dict[str, float]:
    done = subprocess.run(  # noqa: S603 - this module, by this interpreter
        [sys.executable, "-m", "bench.export_job", "--child", str(traces or TRACES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(int(sys.argv[2]))))
    else:
        from rich.console import Console

        Console().print(run(int(sys.argv[1]) if sys.argv[1:] else None))
