"""End-to-end ingestion through the local cloud's HTTP API: 4 concurrent clients, each
streaming 1,000-event chunks into its own trace over real sockets (gateway → authorizer →
API Lambda worker → moto's DynamoDB and S3), from a process of their own. Measures what a
client sees."""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import orjson

from local_cloud.cloud import LocalCloud
from tests.factories import chunk_body, trace_metadata

CLIENTS = 4
CHUNKS_PER_CLIENT = 25  # 100 latencies: p99 is not just the slowest one
EVENTS_PER_CHUNK = 1_000


def _client_run(
    endpoint: str, token: str, bodies: list[bytes], latencies: list[float], errors: list[str]
) -> None:
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    with httpx.Client(base_url=endpoint, headers=headers, timeout=60) as client:
        created = client.post("/v1/traces", content=orjson.dumps(trace_metadata()))
        trace_id = created.json()["trace_id"]
        for seq, body in enumerate(bodies):
            started = time.perf_counter()
            answer = client.put(f"/v1/traces/{trace_id}/chunks/{seq}", content=body)
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 201:
                errors.append(f"{answer.status_code} {answer.text[:200]}")


def _clients(
    endpoint: str, token: str, chunks_per_client: int
) -> tuple[float, list[float], list[str]]:
    """CLIENTS concurrent clients (threads of one process, not the local cloud's): the
    elapsed time of the measured round, its chunk latencies, and any refusals."""
    bodies = [
        chunk_body(seq * EVENTS_PER_CHUNK, EVENTS_PER_CHUNK) for seq in range(chunks_per_client)
    ]

    def round_of_clients(latencies: list[float], errors: list[str]) -> float:
        threads = [
            threading.Thread(target=_client_run, args=(endpoint, token, bodies, latencies, errors))
            for _ in range(CLIENTS)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - started

    errors: list[str] = []
    round_of_clients([], errors)  # warm one worker per client slot: cold starts are not measured
    latencies: list[float] = []
    return round_of_clients(latencies, errors), latencies, errors


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as state:
        cloud = LocalCloud(aws_port=0, api_port=0, state_dir=Path(state))
        info = cloud.start()
        try:
            # Clients run in their own process: in this one they would share the local
            # cloud's interpreter lock with the emulator and the gateway.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                # Sizes go as arguments: the child imports this module afresh.
                elapsed, latencies, errors = pool.submit(
                    _clients, info.endpoint, info.token, CHUNKS_PER_CLIENT
                ).result()
        finally:
            cloud.stop()
    if errors:
        raise RuntimeError(f"{len(errors)} chunk PUTs failed, first: {errors[0]}")
    ordered = sorted(latencies)
    events = CLIENTS * CHUNKS_PER_CLIENT * EVENTS_PER_CHUNK
    return {
        "e2e_local_startup_s": round(info.startup_s, 2),
        "e2e_local_clients": CLIENTS,
        "e2e_local_events": events,
        "e2e_local_events_per_s": round(events / elapsed),
        "e2e_local_chunk_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "e2e_local_chunk_p99_ms": round(
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1
        ),
    }
