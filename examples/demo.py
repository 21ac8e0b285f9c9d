"""`make demo`: the example trace through the operators' stack on the local cloud.

Starts the local cloud (moto with the synthesized CDK stack deployed into it, Lambda
workers, Step Functions executing for real, the QA task run under the local sandbox, the
HTTP API gateway), creates a token with the `prtrace` admin command, then over HTTP only:
submits the example trace with the client SDK (`submit_directory`: it creates the trace,
uploads its artifacts and workspace snapshots to S3 through presigned URLs, streams its
chunks and finalizes), shows a replay and a tampering attempt, and follows the pipeline
(assemble and verify → QA before and after the fix → judge → record) to its end with the
SDK's `wait`. Prints the QA verdict, the six judge scores with their rationales and the
metrics, whether the recorded edits reproduce the final snapshot, then downloads the trace's
signed bundle (`prtrace download`) and verifies it offline with only the published public
key (`prtrace verify`), before and after changing one byte of one chunk; then shuts
everything down. With OPENAI_API_KEY set, the key goes into the local
cloud's secret and the OpenAI judge scores the trace; without it, the offline judge does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra_cdk.config import StackConfig
from infra_cdk.viewer_site import VIEWER_PATH
from local_cloud.assembly import LOCAL_REGION
from local_cloud.cloud import LocalCloud, local_environment
from local_cloud.emulator import emulator_client
from prtrace_client import TERMINAL_STATUSES, ApiError, ChunkConflict, PrtraceClient
from prtrace_client.submit import submit_directory

EXAMPLE = Path(__file__).parent / "sample-trace-chunks"
console = Console()


def main() -> int:
    cloud = LocalCloud(aws_port=0, api_port=0)
    console.rule("prtrace demo: a bug-fixing trace through the pipeline on the local cloud")
    with console.status("starting the local cloud (synth, deploy, warm-up)…"):
        info = cloud.start()
    try:
        return run(info.endpoint, info.aws_endpoint, info.stack.outputs, info.startup_s)
    finally:
        cloud.stop()


def use_openai_key_if_given(aws_endpoint: str) -> None:
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        console.print("judge: offline (set OPENAI_API_KEY to have the OpenAI judge score it)")
        return
    emulator_client("secretsmanager", aws_endpoint, LOCAL_REGION).create_secret(
        Name=StackConfig().openai_secret_name, SecretString=orjson.dumps({"api_key": key}).decode()
    )
    console.print("judge: OpenAI (OPENAI_API_KEY stored in the local cloud's secret)")


def run(endpoint: str, aws_endpoint: str, outputs: dict[str, str], startup_s: float) -> int:
    console.print(f"local cloud ready in {startup_s:.1f} s: API {endpoint}, AWS {aws_endpoint}")
    console.print(
        f"stack outputs: bucket {outputs['DataBucketName']}, "
        f"traces table {outputs['TracesTableName']}"
    )
    use_openai_key_if_given(aws_endpoint)
    token = subprocess.run(  # noqa: S603 - the real admin command, against the deployed tokens table
        [sys.executable, "-m", "prtrace_cli.main", "tokens", "create", "--tenant", "demo",
         "--scopes", "ingest,read", "--description", "make demo",
         "--table", outputs["TokensTableName"]],
        # The admin command reaches the local cloud as a user's shell would: through the
        # AWS variables naming it (the local cloud sets none in this process).
        check=True, capture_output=True, text=True,
        env=os.environ | local_environment(aws_endpoint, LOCAL_REGION),
    ).stdout.strip()  # fmt: skip
    console.print(f"token created with `prtrace tokens create`: {token[:21]}…(secret hidden)")
    with PrtraceClient(endpoint, token, user_agent="prtrace-demo") as client:
        trace_id = _submit_and_check(client)
    if trace_id is None:
        return 1
    return verify_offline(endpoint, token, trace_id, outputs)


def _submit_and_check(client: PrtraceClient) -> str | None:
    with console.status("submitting the example trace…") as spinner:
        result = submit_directory(client, EXAMPLE, progress=lambda step: spinner.update(step))
    trace_id = result.trace_id
    console.print(f"created trace [bold]{trace_id}[/bold]")
    for artifact in result.artifacts:
        # uploaded: the API answered upload_required (else the bytes were present)
        status = "upload_required" if artifact["uploaded"] else "present"
        console.print(
            f"  artifact {artifact['name']}: {status} → {artifact['blob_ref']['uri'][:30]}…"
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
    receipt = client.put_chunk(trace_id, 1, chunk1)
    replayed = str(receipt.pop("replayed", False)).lower()
    same = "the same" if receipt == result.receipts[1] else "[red]another[/red]"
    console.print(
        f"replayed chunk 1 → {same} receipt (replayed: {replayed}, "
        f"sha256 {receipt['sha256'][:16]}…)"
    )
    tampered = chunk1.replace(b"Append the open interval", b"Rewrite the whole function")
    try:
        client.put_chunk(trace_id, 1, tampered)
    except ChunkConflict as conflict:
        refusal = conflict.__cause__  # the API's answer: an ApiError with its problem
        assert isinstance(refusal, ApiError)  # how the SDK raises ChunkConflict
        console.print(f"tampered chunk 1 → HTTP {refusal.status} {refusal.problem['type']}")
    else:
        console.print("[red]the tampered chunk 1 was accepted[/red]")
        return None

    trace = follow_pipeline(client, trace_id)
    if trace["status"] != "complete":
        console.print(f"[red]trace ended {trace['status']}[/red]: {trace.get('outcome')}")
        return None
    show_outcome(trace)
    return trace_id


def prtrace(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the real CLI, as a user runs it
        [sys.executable, "-m", "prtrace_cli.main", *args],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


def verify_offline(endpoint: str, token: str, trace_id: str, outputs: dict[str, str]) -> int:
    """Download the signed bundle, then verify it with the public key alone: as received,
    and with one byte of one chunk changed."""
    import tempfile

    import httpx

    console.rule("offline verification: the signed bundle and only the public key")
    with tempfile.TemporaryDirectory(prefix="prtrace-demo-") as scratch:
        work = Path(scratch)
        keys_url = outputs["ManifestPublicKeysUrl"]
        keys = httpx.get(keys_url, timeout=30)  # public: no token
        keys.raise_for_status()
        (work / "keys.json").write_bytes(keys.content)
        kids = [k["kid"] for k in keys.json()["keys"]]
        console.print(f"public keys from {keys_url} (stack output): {', '.join(kids)}")
        env = os.environ | {"PRTRACE_ENDPOINT": endpoint, "PRTRACE_TOKEN": token}
        bundle = work / "bundle"
        done = prtrace("download", trace_id, "--out", str(bundle), env=env)
        if done.returncode != 0:
            console.print(f"[red]prtrace download failed[/red]: {done.stderr.strip()}")
            return 1
        console.print(f"prtrace download: {done.stdout.strip()}")
        # Offline from here on: no endpoint, no token, only the bundle and the key file.
        offline = {k: v for k, v in os.environ.items() if not k.startswith("PRTRACE_")}
        verified = prtrace("verify", str(bundle), "--key", str(work / "keys.json"), env=offline)
        last = verified.stdout.strip().splitlines()[-1]
        console.print(f"prtrace verify → exit {verified.returncode}: {last}")
        if verified.returncode != 0:
            console.print(verified.stdout)
            return 1
        chunk = bundle / "chunks" / "000001.json"
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0x01
        chunk.write_bytes(bytes(data))
        console.print("changed one byte of chunks/000001.json")
        tampered = prtrace("verify", str(bundle), "--key", str(work / "keys.json"), env=offline)
        failures = [line for line in tampered.stdout.splitlines() if line.startswith("FAIL")]
        console.print(f"prtrace verify → exit {tampered.returncode}")
        for line in failures:
            console.print(f"  {line}", markup=False, soft_wrap=True)
        if tampered.returncode != 1 or not failures:
            console.print("[red]the tampered bundle was not refused[/red]")
            return 1
    console.print(f"trace viewer: [bold]{viewer_url(endpoint, trace_id)}[/bold]")
    console.print(
        "  (log in with a token that has the read scope; the demo's cloud stops now, "
        "`make local` keeps one running)"
    )
    console.rule("done")
    return 0


def viewer_url(endpoint: str, trace_id: str) -> str:
    """The trace viewer's page for one trace (the gateway serves it beside the API)."""
    return f"{endpoint.rstrip('/')}{VIEWER_PATH}#/traces/{trace_id}"


def follow_pipeline(client: PrtraceClient, trace_id: str, timeout_s: float = 300) -> dict[str, Any]:
    """Wait for the pipeline to end (the SDK's `wait`), printing each status as it is
    reached."""
    with console.status("pipeline running…") as spinner:
        trace = client.wait(
            trace_id, poll_s=0.25, timeout_s=timeout_s, on_update=status_printer(spinner.update)
        )
    if trace["status"] not in TERMINAL_STATUSES:
        raise SystemExit(
            f"the pipeline did not finish within {timeout_s:.0f} s (last: {trace['status']})"
        )
    return trace


def status_printer(show: Callable[[str], None]) -> Callable[[dict[str, Any]], None]:
    """A `wait` progress callback: prints each new status with the seconds since the first
    view, and shows it in the spinner."""
    started = time.monotonic()
    last = ""

    def on_update(view: dict[str, Any]) -> None:
        nonlocal last
        if view["status"] != last:
            last = view["status"]
            console.print(f"  {time.monotonic() - started:5.1f} s  status [bold]{last}[/bold]")
            show(f"pipeline: {last}…")

    return on_update


def show_outcome(trace: dict[str, Any]) -> None:
    outcome = trace["outcome"]
    chain = outcome["chain"]
    console.print(
        f"assembled and verified: {trace['chunks_received']} chunks, "
        f"{trace['events_received']} events, every chunk MAC and the event chain "
        f"(head {chain['head'][:16]}…)"
    )
    qa = outcome["qa"]
    console.print(f"QA verdict: [bold]{qa['verdict']}[/bold] ({qa['backend']} sandbox)")
    for kind in ("fail_to_pass", "pass_to_pass", "pass_to_fail", "fail_to_fail"):
        tests = qa[kind]
        console.print(f"  {kind.upper()} ({tests['count']}): {', '.join(tests['ids']) or '-'}")
    if qa.get("resolution"):
        source = qa.get("target_source")
        console.print(f"  resolution: {qa['resolution']} (target tests from {source})")
    if qa.get("verdict_reason"):
        console.print(f"  why: {escape(qa['verdict_reason'])}")
    for flag in qa.get("flags") or []:
        kind = "blocking" if flag["blocking"] else "not blocking"
        console.print(f"  flag {flag['code']} ({kind}): {escape(flag['detail'])}")

    judge = outcome["judge"]
    console.print(
        f"judge: {judge['judge']} ({judge['status']}), rubric {judge['rubric_version']}, "
        f"overall [bold]{judge['overall']}[/bold]"
    )
    scores = Table("dimension", "score", "rationale", show_lines=True)
    for score in judge["scores"]:
        scores.add_row(score["dimension"], str(score["score"]), score["rationale"])
    console.print(scores)

    state = outcome.get("state_check")
    if state is not None:
        first = state.get("first_mismatch")
        console.print(
            f"trace-to-state check: [bold]{state['status']}[/bold] ({state['edits_applied']} "
            f"recorded edits applied to the base snapshot, {state['files_checked']} files "
            "compared with the final one)"
            + (f"; first difference {first['path']}: {first['reason']}" if first else "")
        )
    provenance = outcome.get("provenance")
    if provenance is not None:
        console.print(
            f"manifest signed: {provenance['algorithm']} key {provenance['key_id']}, "
            f"manifest SHA-256 {provenance['manifest_sha256'][:16]}…"
        )

    metrics = outcome["metrics"]
    shown = Table("metric", "value")
    shown.columns[1].overflow = "fold"
    for name, value in metrics.items():
        if name != "version":
            shown.add_row(
                name, orjson.dumps(value).decode() if isinstance(value, dict) else str(value)
            )
    console.print(shown)


if __name__ == "__main__":
    sys.exit(main())
