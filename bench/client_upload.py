"""Upload of a 100,000-event trace to the local cloud through the client SDK and the
durable outbox, as `prtrace push` does it: journal the events (one transaction), then seal
1,000-event chunks and PUT them in order, one client in its own process, over real HTTP
(gateway → authorizer → API Lambda worker → moto's DynamoDB and S3), then finalize."""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from local_cloud.cloud import LocalCloud
from prtrace_client import Flusher, Outbox, PrtraceClient
from prtrace_client.config import ClientConfig
from tests.factories import event, trace_metadata

EVENTS = 100_000
CHUNK_EVENTS = 1_000
SINGLE_APPENDS = 200


def _events(count: int) -> list[dict[str, object]]:
    made = []
    for seq in range(count):
        one = event(seq)
        del one["seq"]
        made.append(one)
    return made


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as state:
        cloud = LocalCloud(aws_port=0, api_port=0, state_dir=Path(state) / "cloud")
        info = cloud.start()
        try:
            # The client runs in its own process, as it does on a developer's machine: in
            # this one it would share the local cloud's interpreter lock with the emulator.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                # Sizes go as arguments: the child imports this module afresh.
                return pool.submit(_upload, info.endpoint, info.token, state, EVENTS).result()
        finally:
            cloud.stop()


def _upload(endpoint: str, token: str, state: str, count: int) -> dict[str, float]:
    events = _events(count)
    with Outbox.open(Path(state) / "outbox.db") as outbox:
        # One event per transaction, as a recorder appends while a session runs.
        single = outbox.start_trace(trace_metadata("single appends"))
        latencies = []
        for one in events[:SINGLE_APPENDS]:
            started = time.perf_counter()
            outbox.append(single, one)
            latencies.append(time.perf_counter() - started)

        session = outbox.start_trace(trace_metadata("100,000 events"))
        started = time.perf_counter()
        outbox.append_many(session, events)
        outbox.request_finalize(session)
        journaled = time.perf_counter() - started

        client = PrtraceClient(config=ClientConfig(endpoint, token, "bench"))
        with client:
            # Warm the API worker (a cold start is not what this measures).
            client.list_traces(limit=1)
            chunk_latencies: list[float] = []
            timed_put = client.put_chunk

            def put_chunk(trace_id: str, chunk_seq: int, body: bytes) -> dict[str, Any]:
                began = time.perf_counter()
                receipt = timed_put(trace_id, chunk_seq, body)
                chunk_latencies.append(time.perf_counter() - began)
                return receipt

            client.put_chunk = put_chunk  # type: ignore[method-assign]
            started = time.perf_counter()
            report = Flusher(outbox, client, max_events=CHUNK_EVENTS).push(session)
            pushed = time.perf_counter() - started
            trace_id = outbox.trace_id(session) or ""
            view = client.get_trace(trace_id)
    outbox_bytes = sum(p.stat().st_size for p in Path(state).glob("outbox.db*"))
    if view["events_received"] != count or report.events_sent != count:
        raise RuntimeError(f"upload incomplete: {view}")
    return {
        "client_upload_events": count,
        "client_upload_chunks": report.chunks_sent,
        "client_upload_journal_s": round(journaled, 2),
        "client_upload_journal_events_per_s": round(count / journaled),
        "client_upload_single_append_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "client_upload_push_s": round(pushed, 2),
        # Flat: a PUT reads the chunks next to it, never every stored one.
        "client_upload_chunk_first10_p50_ms": round(statistics.median(chunk_latencies[:10]) * 1000),
        "client_upload_chunk_last10_p50_ms": round(statistics.median(chunk_latencies[-10:]) * 1000),
        "client_upload_events_per_s": round(count / pushed),
        "client_upload_total_s": round(journaled + pushed, 2),
        "client_upload_total_events_per_s": round(count / (journaled + pushed)),
        "client_upload_outbox_mb": round(outbox_bytes / 1024**2, 1),
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:45} {value:>12,}")
