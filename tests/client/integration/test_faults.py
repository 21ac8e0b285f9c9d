"""Fault tests over real HTTP: the SDK and the outbox against the local cloud through a
fault-injecting proxy. Every case ends with the complete trace stored exactly once, read
back from the deployed bucket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from local_cloud.cloud import LocalCloudInfo
from prtrace.storage_keys import trace_prefix
from prtrace_client import Flusher, Outbox, PrtraceClient, RetryPolicy
from prtrace_client.config import ClientConfig
from tests.client.conftest import recorded
from tests.client.integration.conftest import Tenant
from tests.client.integration.proxy import FaultProxy, Rule
from tests.factories import trace_metadata
from tests.local_cloud import aws

CHUNK_PUT = r"/v1/traces/tr_\w+/chunks/\d+"
PATIENT = RetryPolicy(attempts=60, base_s=0.05, cap_s=0.5, max_retry_after_s=5, deadline_s=120)
PRTRACE = str(Path(sys.executable).with_name("prtrace"))


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(seconds)


def client_for(endpoint: str, tenant: Tenant, sleeps: Sleeps | None = None) -> PrtraceClient:
    return PrtraceClient(
        config=ClientConfig(endpoint, tenant.token, "test"),
        retry=PATIENT,
        sleep=Sleeps() if sleeps is None else sleeps,
        timeout_s=30,
    )


def record(outbox: Outbox, count: int) -> str:
    session = outbox.start_trace(trace_metadata("merge() drops the last interval"))
    outbox.append_many(session, [recorded(i) for i in range(count)])
    outbox.request_finalize(session)
    return session


def assert_stored_exactly_once(cloud: LocalCloudInfo, tenant: Tenant, count: int) -> str:
    """One trace in the tenant, finalized with `count` events, and the deployed bucket
    holds each chunk seq once with events 0..count-1 in order, each event id once."""
    api = PrtraceClient(config=ClientConfig(cloud.endpoint, tenant.token, "test"))
    listed = api.list_traces(limit=10)["items"]
    assert len(listed) == 1, [t["trace_id"] for t in listed]
    trace_id = str(listed[0]["trace_id"])
    view = api.get_trace(trace_id)
    api.close()
    assert view["status"] != "open"  # finalize succeeded (the pipeline may have moved on)
    assert view["events_received"] == count
    assert view["finalize"]["event_count"] == count
    assert view["finalize"]["expected_chunks"] == view["chunks_received"]
    s3 = aws(cloud, "s3")
    bucket = cloud.stack.outputs["DataBucketName"]
    prefix = f"{trace_prefix(tenant.name, trace_id)}/chunks/"
    keys = sorted(
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    )
    seqs = [int(k.removeprefix(prefix).split("-")[0]) for k in keys]
    assert seqs == list(range(view["chunks_received"]))  # one object per chunk seq
    events: list[dict[str, Any]] = []
    for key in keys:
        events += orjson.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["events"]
    assert [e["seq"] for e in events] == list(range(count))
    assert len({e["event_id"] for e in events}) == count
    return trace_id


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_server_down_at_first_then_up(
    cloud: LocalCloudInfo, tenant: Tenant, tmp_path: Path
) -> None:
    port = free_port()
    started: list[FaultProxy] = []

    def come_up() -> None:
        proxy = FaultProxy(cloud.endpoint, port)
        proxy.start()
        started.append(proxy)

    timer = threading.Timer(2.0, come_up)
    timer.start()
    sleeps = Sleeps()
    begun = time.monotonic()
    try:
        with Outbox.open(tmp_path / "outbox.db") as outbox:
            session = record(outbox, 2_500)
            with client_for(f"http://127.0.0.1:{port}", tenant, sleeps) as client:
                Flusher(outbox, client).push()
            assert outbox.state(session).delivered
    finally:
        timer.join()
        for proxy in started:
            proxy.stop()
    assert time.monotonic() - begun >= 2.0
    assert len(sleeps) >= 3  # it retried while nothing listened
    assert_stored_exactly_once(cloud, tenant, 2_500)


def test_acknowledged_but_answer_lost_is_not_duplicated(
    cloud: LocalCloudInfo, tenant: Tenant, proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.add(Rule("POST", r"/v1/traces", "lose_answer", times=1))
    proxy.add(Rule("PUT", r"/v1/traces/tr_\w+/chunks/1", "lose_answer", times=1))
    proxy.add(Rule("POST", r"/v1/traces/tr_\w+/finalize", "lose_answer", times=1))
    with Outbox.open(tmp_path / "outbox.db") as outbox, client_for(proxy.url, tenant) as client:
        record(outbox, 3_000)
        Flusher(outbox, client).push()
    assert proxy.count("POST", r"/v1/traces", "lose_answer") == 1
    assert proxy.count("POST", r"/v1/traces") == 2  # the create was replayed by its key
    chunk1 = [e for e in proxy.log if e.method == "PUT" and e.path.endswith("/chunks/1")]
    assert [e.upstream_status for e in chunk1] == [201, 201]  # stored, then the receipt again
    assert proxy.count("POST", r"/v1/traces/tr_\w+/finalize") == 2
    assert_stored_exactly_once(cloud, tenant, 3_000)


def test_429_storm_with_retry_after(
    cloud: LocalCloudInfo, tenant: Tenant, proxy: FaultProxy, tmp_path: Path
) -> None:
    storm = proxy.add(Rule("*", r"/v1/.*", "status", times=8, status=429,
                           headers={"Retry-After": "1"}))  # fmt: skip
    sleeps = Sleeps()
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        record(outbox, 2_200)
        with client_for(proxy.url, tenant, sleeps) as client:
            Flusher(outbox, client).push()
    assert storm.times == 0
    assert sleeps.count(1.0) == 8  # each 429 waited exactly what Retry-After asked
    assert_stored_exactly_once(cloud, tenant, 2_200)


def test_client_killed_between_chunks_then_push_resumes(
    cloud: LocalCloudInfo, tenant: Tenant, proxy: FaultProxy, tmp_path: Path,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    events = tmp_path / "session.jsonl"
    events.write_bytes(b"".join(orjson.dumps(recorded(i)) + b"\n" for i in range(8_000)))
    (tmp_path / "trace.json").write_bytes(orjson.dumps(trace_metadata()))
    proxy.add(Rule("PUT", CHUNK_PUT, "forward", delay_s=0.5))  # slow chunks: time to kill
    env = os.environ | cli_env
    child = subprocess.Popen(
        [PRTRACE, "submit", str(events)], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    # Chunks go out several at a time; a 6th PUT starts only once chunks 0 and 1 answered,
    # and chunk 0 is acknowledged before chunk 1's answer is read.
    while proxy.count("PUT", CHUNK_PUT) < 6 and time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    with Outbox.open(Path(cli_env["PRTRACE_OUTBOX"])) as journal:
        (session,) = journal.sessions()
        unacked = journal.state(session.local_id).unacked_chunks
    assert 0 < unacked < 8  # killed part-way

    proxy.rules.clear()
    pushed = subprocess.run(
        [PRTRACE, "push", "--json"], env=env, capture_output=True, timeout=300, check=False
    )
    assert pushed.returncode == 0, pushed.stderr.decode()
    report = orjson.loads(pushed.stdout)["sessions"]
    assert len(report) == 1
    assert report[0]["delivered"] is True
    # Resumed where it stopped: exactly the chunks without a receipt are sent again.
    assert report[0]["chunks_sent"] == unacked
    trace_id = assert_stored_exactly_once(cloud, tenant, 8_000)
    assert report[0]["trace_id"] == trace_id
    again = subprocess.run(
        [PRTRACE, "push", "--json"], env=env, capture_output=True, timeout=60, check=False
    )
    assert orjson.loads(again.stdout) == {"sessions": []}
