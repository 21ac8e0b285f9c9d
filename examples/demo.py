"""`make demo`: the ingestion flow for real, on the local AWS emulator.

Starts moto's server, provisions the tables, bucket and integrity key, creates a token with
the `prtrace` admin command, then drives the real authorizer and API Lambda handlers with
API Gateway v2 events: create the example trace, upload its artifacts to S3 through
presigned URLs, stream its chunks, show a replay and a tampering attempt, finalize, and
verify the stored chunks' MACs and the event chain with the key from Secrets Manager.
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

from examples.submit import submit_trace
from infra_cdk.local.emulator import local_emulator
from infra_cdk.local.gateway import InProcessGateway
from infra_cdk.local.resources import ResourceNames, provision

EXAMPLE = Path(__file__).parent / "sample-trace-chunks"
console = Console()


def main() -> int:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    names = ResourceNames()
    with local_emulator() as endpoint:
        console.rule("prtrace demo: ingestion on the local cloud")
        console.print(f"AWS emulator (moto) at [bold]{endpoint}[/bold]")
        provision(names)
        os.environ.update(names.environment())
        console.print(
            f"provisioned tables {names.traces_table}, {names.tokens_table}, "
            f"{names.idempotency_table}; bucket {names.bucket}; key secret "
            f"{names.key_secret_name}"
        )

        token = subprocess.run(  # the real admin command, against the emulator
            [
                sys.executable,
                "-m",
                "prtrace_cli.main",
                "tokens",
                "create",
                "--tenant",
                "demo",
                "--scopes",
                "ingest,read",
                "--description",
                "make demo",
            ],
            check=True,
            capture_output=True,
            text=True,
            env=os.environ.copy(),
        ).stdout.strip()
        console.print(f"token created with `prtrace tokens create`: {token[:21]}…(secret hidden)")

        from functions.api.handler import lambda_handler as api
        from functions.authorizer.handler import lambda_handler as authorizer

        gateway = InProcessGateway(api, authorizer)

        def send(
            method: str, path: str, body: bytes | None, headers: dict[str, str]
        ) -> tuple[int, dict[str, str], bytes]:
            sent = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                **headers,
            }
            r = gateway.request(method, f"https://api.local{path}", sent, body)
            return r.status, r.headers, r.body

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
        head = verify_stored_trace(names, "demo", trace_id)
        console.print(f"verified every chunk MAC and the event chain: head {head[:16]}…")
        console.rule("done")
    return 0


def verify_stored_trace(names: ResourceNames, tenant: str, trace_id: str) -> str:
    """Re-read what was stored and check it with the server key, as the pipeline will."""
    from prtrace.adapters.dynamodb import DynamoTraceStore
    from prtrace.adapters.keys import load_key_ring
    from prtrace.canonical import canonical_json
    from prtrace.integrity import compute_chain, sha256_hex, verify_chunk_mac

    ring = load_key_ring(secret_name=names.key_secret_name)
    store = DynamoTraceStore(boto3.client("dynamodb"), names.traces_table)
    s3 = boto3.client("s3")
    canonical_events: list[bytes] = []
    for chunk in store.list_chunks(tenant, trace_id, with_event_ids=False):
        body = s3.get_object(Bucket=names.bucket, Key=chunk.body_key)["Body"].read()
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
