"""The durable outbox and its flusher: events survive restarts, chunks are cut once and
resent byte-identical, and delivery after any crash or lost answer leaves the complete
trace stored exactly once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from prtrace.storage_keys import artifact_key
from prtrace_client import (
    Flusher,
    InvalidEvent,
    Outbox,
    PrtraceClient,
    SessionClosed,
    TransportError,
    ValidationFailed,
)
from tests.client.conftest import Sleeps, make_client, recorded
from tests.client.fake_api import TENANT, FakeApi, Fault
from tests.factories import trace_metadata


class Crash(BaseException):
    """Stands for the process dying at that point (not an Exception: nothing catches it)."""


def stored_events(api: FakeApi, trace_id: str) -> list[dict[str, Any]]:
    """The events the server holds for a trace, in chunk order (read from its stores)."""
    events: list[dict[str, Any]] = []
    for chunk in api.traces.list_chunks(TENANT, trace_id, with_event_ids=False):
        events += orjson.loads(api.blobs.objects[chunk.body_key])["events"]
    return events


def assert_stored_once(api: FakeApi, trace_id: str, count: int) -> None:
    events = stored_events(api, trace_id)
    assert [e["seq"] for e in events] == list(range(count))  # in order, no gap, no duplicate
    assert len({e["event_id"] for e in events}) == count
    view = api.service.get_trace(TENANT, trace_id)
    assert view.event_count == count
    assert view.status == "finalizing"
    assert len(api.service.list_traces(TENANT, 100, None).items) == 1


def fill(outbox: Outbox, count: int, start: int = 0) -> str:
    session = outbox.start_trace(trace_metadata())
    outbox.append_many(session, [recorded(i) for i in range(start, start + count)])
    return session


def test_append_assigns_contiguous_seqs_that_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox.open(path) as outbox:
        session = outbox.start_trace(trace_metadata())
        assert [outbox.append(session, recorded(i)) for i in range(3)] == [0, 1, 2]
    with Outbox.open(path) as reopened:
        assert reopened.append(session, recorded(3)) == 3
        state = reopened.state(session)
        assert (state.events, state.unsealed_events, state.trace_id) == (4, 4, None)
        assert state.title == "merge() drops the last interval"


def test_invalid_event_is_refused_with_its_pointer_and_stores_nothing(outbox: Outbox) -> None:
    session = outbox.start_trace(trace_metadata())
    bad = recorded(1)
    bad["payload"]["exit_code"] = "one"
    with pytest.raises(InvalidEvent, match=r"/cmd_run/payload/exit_code"):
        outbox.append(session, bad)
    with pytest.raises(InvalidEvent):  # all or nothing
        outbox.append_many(session, [recorded(0), bad])
    assert outbox.append(session, recorded(0)) == 0


def test_defaults_fill_event_id_and_ts(outbox: Outbox) -> None:
    session = outbox.start_trace(trace_metadata())
    outbox.append(session, {"type": "rationale_note", "payload": {"kind": "plan", "text": "x"}})
    outbox.seal(session, force=True)
    event = orjson.loads(outbox.chunk(session, 0).body)["events"][0]
    assert event["event_id"] == "e-0000000"
    assert event["seq"] == 0
    assert event["ts"].endswith("Z")


def test_seal_by_count_bytes_and_age(outbox: Outbox) -> None:
    session = fill(outbox, 25)
    assert outbox.seal(session, max_events=10, max_age_s=60) == [0, 1]  # 5 young ones wait
    assert outbox.state(session).unsealed_events == 5
    assert outbox.seal(session, max_events=10, max_age_s=0) == [2]  # now old enough
    chunks = [outbox.chunk(session, seq) for seq in range(3)]
    assert [(c.first_seq, c.last_seq) for c in chunks] == [(0, 9), (10, 19), (20, 24)]
    other = fill(outbox, 20)
    sizes = [len(outbox.chunk(other, s).body) for s in outbox.seal(other, max_bytes=2000,
                                                                   force=True)]  # fmt: skip
    assert len(sizes) > 2
    assert all(size <= 2000 + 20 for size in sizes)


def test_sealed_chunks_never_change(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox.open(path) as outbox:
        session = fill(outbox, 30)
        outbox.seal(session, max_events=10, force=True)
        before = [outbox.chunk(session, seq) for seq in range(3)]
    with Outbox.open(path) as reopened:
        reopened.append_many(session, [recorded(i) for i in range(30, 35)])
        reopened.seal(session, max_events=10, force=True)
        assert [reopened.chunk(session, seq) for seq in range(3)] == before
        assert (reopened.chunk(session, 3).first_seq, reopened.chunk(session, 3).last_seq) == (
            30,
            34,
        )


def test_push_delivers_artifacts_chunks_and_finalize(
    api: FakeApi, client: PrtraceClient, outbox: Outbox, tmp_path: Path
) -> None:
    session = fill(outbox, 2_345)
    base, final = tmp_path / "base.tar", tmp_path / "final.tar"
    base.write_bytes(b"base" * 100)
    final.write_bytes(b"final" * 100)
    snapshots = {
        "base": outbox.add_artifact(session, base, "application/x-tar"),
        "final": outbox.add_artifact(session, final, "application/x-tar"),
    }
    base.unlink()  # copied into the outbox: the upload no longer needs the original
    ref = outbox.add_artifact_bytes(session, b"stdout", "text/plain")
    outbox.request_finalize(session, snapshots=snapshots)
    with pytest.raises(SessionClosed):
        outbox.append(session, recorded(0))
    report = Flusher(outbox, client).push()
    trace_id = outbox.trace_id(session)
    assert trace_id is not None
    assert report.traces_created == [trace_id]
    assert (report.artifacts_uploaded, report.chunks_sent, report.events_sent) == (3, 3, 2_345)
    assert report.finalized[trace_id]["finalize"]["snapshots"] == snapshots
    assert api.blobs.objects[artifact_key(TENANT, trace_id, ref["sha256"])] == b"stdout"
    assert_stored_once(api, trace_id, 2_345)
    assert outbox.state(session).delivered
    assert outbox.sessions(pending_only=True) == []
    assert Flusher(outbox, client).push().chunks_sent == 0  # nothing left to send


def test_push_reports_its_progress(client: PrtraceClient, outbox: Outbox) -> None:
    session = fill(outbox, 2_345)
    outbox.add_artifact_bytes(session, b"stdout", "text/plain")
    outbox.request_finalize(session)
    seen: list[tuple[str, int, int]] = []
    Flusher(outbox, client, on_progress=lambda *step: seen.append(step)).push()
    assert seen == [
        ("artifacts", 0, 1),
        ("artifacts", 1, 1),
        ("chunks", 0, 3),
        ("chunks", 1, 3),
        ("chunks", 2, 3),
        ("chunks", 3, 3),
    ]


def test_killed_between_chunks_resumes_without_gaps_or_duplicates(
    api: FakeApi, sleeps: Sleeps, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.db"
    client = make_client(api, sleeps, attempts=2)
    with Outbox.open(path) as outbox:
        session = fill(outbox, 3_500)
        outbox.request_finalize(session)
        api.add_fault(Fault("PUT", r".*/chunks/2", drop_before=True, times=2))
        with pytest.raises(TransportError):
            Flusher(outbox, client, max_events=1_000).push()
        assert outbox.state(session).unacked_chunks == 1  # 0, 1 and 3 are acknowledged
    with Outbox.open(path) as reopened:  # the next process: `prtrace push`
        report = Flusher(reopened, client, max_events=500).push()  # other thresholds now
        assert report.chunks_sent == 1
        trace_id = reopened.trace_id(session)
    assert trace_id is not None
    puts = [p for m, p, _ in api.served if m == "PUT"]
    # Chunk 3 was in flight beside chunk 2 and stored: acknowledged, it is not sent again.
    assert sorted(p.rsplit("/", 1)[1] for p in puts) == ["0", "1", "2", "3"]  # nothing resent
    assert_stored_once(api, trace_id, 3_500)


def test_crash_after_send_before_ack_resends_the_identical_chunk(
    api: FakeApi, client: PrtraceClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.db"
    with Outbox.open(path) as outbox:
        session = fill(outbox, 1_500)
        outbox.request_finalize(session)
        real_ack = Outbox.ack_chunk

        def crash_on_second(self: Outbox, s: str, seq: int, receipt: Any) -> None:
            if seq == 1:
                raise Crash
            real_ack(self, s, seq, receipt)

        monkeypatch.setattr(Outbox, "ack_chunk", crash_on_second)
        with pytest.raises(Crash):
            Flusher(outbox, client).push()
        monkeypatch.setattr(Outbox, "ack_chunk", real_ack)
    with Outbox.open(path) as reopened:
        Flusher(reopened, client).push()
        trace_id = reopened.trace_id(session)
    assert trace_id is not None
    sent = [r.content for r in api.requests if r.method == "PUT" and r.url.path.endswith("/1")]
    assert len(sent) == 2
    assert sent[0] == sent[1]  # byte-identical: the server answered with its receipt
    assert_stored_once(api, trace_id, 1_500)


def test_crash_after_create_before_recording_the_id_reuses_the_trace(
    api: FakeApi, client: PrtraceClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "outbox.db"
    with Outbox.open(path) as outbox:
        session = fill(outbox, 10)
        outbox.request_finalize(session)

        def crash(*_: object) -> None:
            raise Crash

        monkeypatch.setattr(Outbox, "set_trace_id", crash)
        with pytest.raises(Crash):
            Flusher(outbox, client).push()
        monkeypatch.undo()
    with Outbox.open(path) as reopened:
        Flusher(reopened, client).push()
        trace_id = reopened.trace_id(session)
    assert trace_id is not None
    assert_stored_once(api, trace_id, 10)  # one trace: the create was replayed by its key


def test_lost_chunk_answer_is_retried_without_duplicating(
    api: FakeApi, client: PrtraceClient, outbox: Outbox
) -> None:
    session = fill(outbox, 2_000)
    outbox.request_finalize(session)
    api.add_fault(Fault("PUT", r".*/chunks/0", drop_after=True))
    api.add_fault(Fault("POST", r".*/finalize", drop_after=True))
    Flusher(outbox, client).push()
    trace_id = outbox.trace_id(session)
    assert trace_id is not None
    assert [s[2] for s in api.served if s[0] == "PUT"] == [201, 201, 201]
    assert_stored_once(api, trace_id, 2_000)


def test_background_flusher_delivers_while_events_are_appended(
    api: FakeApi, client: PrtraceClient, outbox: Outbox
) -> None:
    session = outbox.start_trace(trace_metadata())
    flusher = Flusher(outbox, client, max_events=50, max_age_s=0.05, interval_s=0.01)
    flusher.start()

    def record(start: int) -> None:
        for i in range(start, start + 200):
            outbox.append(session, recorded(i))

    writers = [threading.Thread(target=record, args=(n * 200,)) for n in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    outbox.request_finalize(session)
    flusher.stop()
    trace_id = outbox.trace_id(session)
    assert trace_id is not None
    assert flusher.last_error is None
    assert outbox.state(session).chunks > 2  # cut by the running thread, not only at stop
    assert_stored_once(api, trace_id, 600)


def test_finalize_request_is_fixed_once_made(outbox: Outbox) -> None:
    session = fill(outbox, 1)
    outbox.request_finalize(session, extra={"note": 1})
    outbox.request_finalize(session, extra={"note": 1})  # the same again: fine
    with pytest.raises(SessionClosed):
        outbox.request_finalize(session)
    empty = outbox.start_trace(trace_metadata())
    with pytest.raises(Exception, match="has no events"):
        outbox.request_finalize(empty)


def test_finalize_extra_fields_reach_the_api(
    api: FakeApi, client: PrtraceClient, outbox: Outbox
) -> None:
    session = fill(outbox, 5)
    outbox.request_finalize(session, extra={"redactions": 3})
    report = Flusher(outbox, client).push()
    (view,) = report.finalized.values()
    assert view["finalize"]["redactions"] == 3
    refused = fill(outbox, 5)
    outbox.request_finalize(refused, extra={"redactions": -1})
    with pytest.raises(ValidationFailed, match=r"at /redactions: "):
        Flusher(outbox, client).push(refused)
    state = outbox.state(refused)
    assert (state.unacked_chunks, state.finalized) == (0, None)  # chunks delivered; retryable


def test_finalized_sessions_release_chunk_bytes_and_blob_copies(
    client: PrtraceClient, outbox: Outbox, tmp_path: Path
) -> None:
    kept = tmp_path / "kept.txt"
    kept.write_bytes(b"the user's own file")
    done, waiting = fill(outbox, 1_200), fill(outbox, 3)
    shared = outbox.add_artifact_bytes(done, b"output both sessions captured", "text/plain")
    outbox.add_artifact_bytes(waiting, b"output both sessions captured", "text/plain")
    alone = outbox.add_artifact_bytes(done, b"only the first session's", "text/plain")
    outbox.add_artifact(done, kept, "text/plain", copy=False)
    outbox.request_finalize(done)
    Flusher(outbox, client).push(done)
    assert outbox.chunk(done, 0).body == b""
    assert outbox.state(done).delivered
    assert not (outbox.blob_dir / alone["sha256"]).exists()
    assert (outbox.blob_dir / shared["sha256"]).exists()  # the other session still needs it
    assert kept.read_bytes() == b"the user's own file"
    assert outbox.seal(waiting, force=True) == [0]
    assert outbox.chunk(waiting, 0).body.startswith(b'{"events":[')  # undelivered: kept


@pytest.mark.parametrize("in_flight", [1, 3])
def test_chunks_go_out_up_to_in_flight_at_once_and_are_acknowledged_in_order(
    api: FakeApi, client: PrtraceClient, outbox: Outbox, monkeypatch: pytest.MonkeyPatch,
    in_flight: int,
) -> None:  # fmt: skip
    session = fill(outbox, 8_000)
    outbox.request_finalize(session)
    lock, outstanding, most = threading.Lock(), [0], [0]
    real_put = client.put_chunk

    def put_chunk(trace_id: str, chunk_seq: int, body: bytes) -> dict[str, Any]:
        with lock:
            outstanding[0] += 1
            most[0] = max(most[0], outstanding[0])
        try:
            threading.Event().wait(0.02)  # a round trip: long enough for PUTs to overlap
            return real_put(trace_id, chunk_seq, body)
        finally:
            with lock:
                outstanding[0] -= 1

    monkeypatch.setattr(client, "put_chunk", put_chunk)
    acked: list[int] = []
    real_ack = Outbox.ack_chunk

    def ack_chunk(self: Outbox, s: str, seq: int, receipt: Any) -> None:
        acked.append(seq)
        real_ack(self, s, seq, receipt)

    monkeypatch.setattr(Outbox, "ack_chunk", ack_chunk)
    report = Flusher(outbox, client, in_flight=in_flight).push()
    assert report.chunks_sent == 8
    assert most[0] == in_flight
    assert acked == list(range(8))
    trace_id = outbox.trace_id(session)
    assert trace_id is not None
    assert_stored_once(api, trace_id, 8_000)
