"""`make demo`: the example trace through the operators' stack on the local cloud.

Starts the local cloud (moto with the synthesized CDK stack deployed into it, Lambda
workers, the HTTP API gateway), creates a token with the `prtrace` admin command, then
over HTTP only: creates the example trace, uploads its artifacts and workspace snapshots
to S3 through presigned URLs, streams its chunks, shows a replay and a tampering attempt,
finalizes, prints the status and counts, and verifies the stored chunks' MACs and the
event chain with the key from Secrets Manager. Shuts everything down at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import orjson
from rich.console import Console
from rich.table import Table

from examples.submit import Send, submit_trace
from examples.submit_example import http_sender
from infra_cdk.local.cloud import LocalCloud

EXAMPLE = Path(__file__).parent / "sample-trace-chunks"
console = Console()


def main() -> int:
    cloud = LocalCloud(aws_port=0, api_port=0)
    console.rule("prtrace demo: ingestion on the local cloud")
    with console.status("starting the local cloud (synth, deploy, warm-up)…"):
        info = cloud.start()
    try:
        return run(info.endpoint, info.aws_endpoint, info.stack.outputs, info.startup_s)
    finally:
        cloud.stop()


def run(endpoint: str, aws_endpoint: str, outputs: dict[str, str], startup_s: float) -> int:
    console.print(f"local cloud ready in {startup_s:.1f} s: API {endpoint}, AWS {aws_endpoint}")
    console.print(
        f"stack outputs: bucket {outputs['DataBucketName']}, "
        f"traces table {outputs['TracesTableName']}"
    )
    token = subprocess.run(  # noqa: S603 - the real admin command, against the deployed tokens table
        [sys.executable, "-m", "prtrace_cli.main", "tokens", "create", "--tenant", "demo",
         "--scopes", "ingest,read", "--description", "make demo",
         "--table", outputs["TokensTableName"]],
        check=True, capture_output=True, text=True, env=os.environ.copy(),
    ).stdout.strip()  # fmt: skip
    console.print(f"token created with `prtrace tokens create`: {token[:21]}…(secret hidden)")
    send, client = http_sender(endpoint, token)
    with client:
        return _submit_and_check(send, outputs)


def _submit_and_check(send: Send, outputs: dict[str, str]) -> int:
    result = submit_trace(send, EXAMPLE)
    trace_id = result.trace_id
    console.print(f"created trace [bold]{trace_id}[/bold]")
    for artifact in result.artifacts:
        console.print(
            f"  artifact {artifact['name']}: {artifact['status']} → "
            f"{artifact['blob_ref']['uri'][:30]}…"
        )
    table = Table("chunk", "events", "sha256")
    for receipt in result.receipts:
        table.add_row(
            str(receipt["chunk_seq"]),
            f"{receipt['first_event_seq']}-{receipt['last_event_seq']}",
            receipt["sha256"][:16] + "…",
        )
    console.print(table)

    chunk1 = (EXAMPLE / "chunk-001.json").read_bytes()
    status, headers, _ = send("PUT", f"/v1/traces/{trace_id}/chunks/1", chunk1, {})
    console.print(
        f"replayed chunk 1 → HTTP {status} (replayed: "
        f"{headers.get('idempotent-replayed', 'false')})"
    )
    tampered = chunk1.replace(b"Append the open interval", b"Rewrite the whole function")
    status, _, body = send("PUT", f"/v1/traces/{trace_id}/chunks/1", tampered, {})
    console.print(f"tampered chunk 1 → HTTP {status} {orjson.loads(body)['type']}")

    status, _, body = send("GET", f"/v1/traces/{trace_id}", None, {})
    trace = orjson.loads(body)
    console.print(
        f"trace status [bold]{trace['status']}[/bold]: "
        f"{trace['chunks_received']} chunks, {trace['events_received']} events, "
        f"manifest {trace['finalize']['manifest_sha256'][:16]}…"
    )
    head = verify_stored_trace(outputs, "demo", trace_id)
    console.print(f"verified every chunk MAC and the event chain: head {head[:16]}…")
    console.rule("done")
    return 0


def verify_stored_trace(outputs: dict[str, str], tenant: str, trace_id: str) -> str:
    """Re-read what was stored and check it with the server key, as the pipeline will."""
    from prtrace.adapters.dynamodb import DynamoTraceStore
    from prtrace.adapters.keys import load_key_ring
    from prtrace.canonical import canonical_json
    from prtrace.integrity import compute_chain, sha256_hex, verify_chunk_mac

    ring = load_key_ring(secret_name=outputs["IntegrityKeySecretArn"])
    store = DynamoTraceStore(boto3.client("dynamodb"), outputs["TracesTableName"])
    s3 = boto3.client("s3")
    canonical_events: list[bytes] = []
    for chunk in store.list_chunks(tenant, trace_id, with_event_ids=False):
        body = s3.get_object(Bucket=outputs["DataBucketName"], Key=chunk.body_key)["Body"].read()
        if sha256_hex(body) != chunk.sha256 or not verify_chunk_mac(
            ring.get(chunk.key_id),
            chunk.mac,
            tenant=tenant,
            trace_id=trace_id,
            chunk_seq=chunk.chunk_seq,
            chunk_sha256=chunk.sha256,
        ):
            raise SystemExit(f"chunk {chunk.chunk_seq} failed verification")
        canonical_events += [canonical_json(e) for e in orjson.loads(body)["events"]]
    return compute_chain(ring.current, trace_id, canonical_events)[-1]


if __name__ == "__main__":
    sys.exit(main())
