"""The boto3 adapters' conditional writes under moto: a retry or a racing writer can never
overwrite or lose a stored item, and a refused write leaves no trace of itself."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTokenStore, DynamoTraceStore
from prtrace.adapters.s3 import S3BlobStore
from prtrace.adapters.wiring import BOTO_CONFIG, S3_CONFIG
from prtrace.ports import AlreadyExists, ConditionFailed, Contention, NeighbourChanged
from prtrace.records import FINALIZING, OPEN, ChunkRecord, TraceRecord
from prtrace.tokens import TokenRecord, issue_token

NAMES = ResourceNames()
T0 = "2026-11-25T09:00:00.000Z"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        provision(NAMES)
        yield


@pytest.fixture
def db(aws: None) -> Any:
    return boto3.client("dynamodb", config=BOTO_CONFIG)


@pytest.fixture
def traces(db: Any) -> DynamoTraceStore:
    return DynamoTraceStore(db, NAMES.traces_table)


@pytest.fixture
def tokens(db: Any) -> DynamoTokenStore:
    return DynamoTokenStore(db, NAMES.tokens_table)


def trace(
    trace_id: str = "tr_01JD0000000000000000000001",
    tenant: str = "acme",
    title: str = "first",
    created_at: str = T0,
) -> TraceRecord:
    return TraceRecord(
        tenant=tenant,
        trace_id=trace_id,
        status=OPEN,
        metadata={"task": {"title": title}, "labels": ["a", "b"], "n": 3},
        created_at=created_at,
        updated_at=created_at,
    )


def chunk(
    trace_id: str, seq: int, *, tenant: str = "acme", first: int = 0, count: int = 3, tag: str = "a"
) -> ChunkRecord:
    return ChunkRecord(
        tenant=tenant,
        trace_id=trace_id,
        chunk_seq=seq,
        first_event_seq=first,
        last_event_seq=first + count - 1,
        sha256=hashlib.sha256(tag.encode()).hexdigest(),
        mac=f"mac-{tag}",
        key_id="k1",
        body_key=f"tenants/{tenant}/traces/{trace_id}/chunks/{seq:06d}-{tag}.json",
        size_bytes=100 + count,
        stored_at=f"2026-11-25T09:00:0{seq % 10}.000Z",
        event_ids=tuple(f"ev-{tag}-{i}" for i in range(first, first + count)),
    )


def raw_items(db: Any) -> list[dict[str, Any]]:
    return sorted(
        db.scan(TableName=NAMES.traces_table, ConsistentRead=True)["Items"],
        key=lambda i: (i["pk"]["S"], i["sk"]["S"]),
    )


# ---- traces ---------------------------------------------------------------------------


def test_created_trace_reads_back_as_stored(traces):
    traces.create_trace(trace())
    assert traces.get_trace("acme", trace().trace_id) == trace()
    assert traces.get_trace("globex", trace().trace_id) is None


def test_create_trace_twice_raises_and_keeps_the_stored_item(traces, db):
    traces.create_trace(trace(title="first"))
    before = raw_items(db)
    with pytest.raises(AlreadyExists):
        traces.create_trace(trace(title="second", created_at="2026-11-25T10:00:00.000Z"))
    assert raw_items(db) == before
    assert traces.get_trace("acme", trace().trace_id).metadata["task"]["title"] == "first"


def test_same_trace_id_in_two_tenants_are_two_traces(traces):
    traces.create_trace(trace(tenant="acme", title="a"))
    traces.create_trace(trace(tenant="globex", title="g"))
    assert traces.get_trace("acme", trace().trace_id).metadata["task"]["title"] == "a"
    assert traces.get_trace("globex", trace().trace_id).metadata["task"]["title"] == "g"


def test_commit_chunk_stores_it_and_counts_it_on_the_trace(traces):
    traces.create_trace(trace())
    tid = trace().trace_id
    traces.commit_chunk(chunk(tid, 0, first=0, count=3, tag="a"))
    traces.commit_chunk(chunk(tid, 1, first=3, count=4, tag="b"))
    stored = traces.get_trace("acme", tid)
    assert (stored.chunk_count, stored.event_count) == (2, 7)
    assert stored.updated_at == chunk(tid, 1).stored_at
    assert traces.get_chunk("acme", tid, 1) == chunk(tid, 1, first=3, count=4, tag="b")
    assert traces.get_chunk("acme", tid, 0) == chunk(tid, 0, first=0, count=3, tag="a")
    assert traces.get_chunk("acme", tid, 2) is None


def test_commit_chunk_that_an_adjacent_chunk_does_not_continue_writes_nothing(traces, db):
    traces.create_trace(trace())
    tid = trace().trace_id
    traces.commit_chunk(chunk(tid, 0, first=0, count=3))
    traces.commit_chunk(chunk(tid, 2, first=8, count=2))
    before = raw_items(db)
    with pytest.raises(NeighbourChanged):  # chunk 0 ends at 2: chunk 1 must start at 3
        traces.commit_chunk(chunk(tid, 1, first=4, count=4))
    with pytest.raises(NeighbourChanged):  # chunk 2 starts at 8: chunk 1 must end at 7
        traces.commit_chunk(chunk(tid, 1, first=3, count=4))
    assert raw_items(db) == before
    traces.commit_chunk(chunk(tid, 1, first=3, count=5))
    assert traces.get_trace("acme", tid).chunk_count == 3


def test_commit_chunk_retries_transaction_conflicts_then_gives_up(traces, monkeypatch):
    traces.create_trace(trace())
    tid = trace().trace_id
    real = traces._db.transact_write_items
    calls = {"n": 0}
    conflict = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
            "CancellationReasons": [
                {"Code": "None"},
                {"Code": "TransactionConflict"},
                {"Code": "None"},
            ],
        },
        "TransactWriteItems",
    )

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise conflict
        return real(**kwargs)

    monkeypatch.setattr(traces._db, "transact_write_items", flaky)
    traces.commit_chunk(chunk(tid, 0, count=3))
    assert calls["n"] == 3
    assert traces.get_trace("acme", tid).chunk_count == 1

    def always(**kwargs):
        raise conflict

    monkeypatch.setattr(traces._db, "transact_write_items", always)
    with pytest.raises(Contention):
        traces.commit_chunk(chunk(tid, 1, first=3, count=1))


def test_commit_chunk_for_a_stored_seq_raises_and_keeps_the_first(traces, db):
    traces.create_trace(trace())
    tid = trace().trace_id
    first = chunk(tid, 0, count=3, tag="first")
    traces.commit_chunk(first)
    before = raw_items(db)
    with pytest.raises(AlreadyExists):
        traces.commit_chunk(chunk(tid, 0, count=5, tag="second"))
    assert raw_items(db) == before  # neither the chunk nor the trace's counters moved
    assert traces.get_chunk("acme", tid, 0) == first
    assert traces.get_trace("acme", tid).chunk_count == 1


def test_commit_chunk_after_finalizing_raises_and_writes_nothing(traces, db):
    traces.create_trace(trace())
    tid = trace().trace_id
    traces.commit_chunk(chunk(tid, 0, count=3))
    traces.mark_finalizing("acme", tid, {"execution": "x"}, "2026-11-25T09:30:00.000Z", 1, 3)
    before = raw_items(db)
    with pytest.raises(ConditionFailed):
        traces.commit_chunk(chunk(tid, 1, first=3, count=2, tag="late"))
    assert raw_items(db) == before
    assert traces.get_chunk("acme", tid, 1) is None
    stored = traces.get_trace("acme", tid)
    assert (stored.status, stored.chunk_count, stored.event_count) == (FINALIZING, 1, 3)
    assert stored.updated_at == "2026-11-25T09:30:00.000Z"


def test_commit_chunk_for_a_missing_trace_raises_and_writes_nothing(traces, db):
    with pytest.raises(ConditionFailed):
        traces.commit_chunk(chunk("tr_01JD0000000000000000000404", 0))
    assert raw_items(db) == []


def test_commit_chunk_cannot_reach_into_another_tenants_trace(traces, db):
    traces.create_trace(trace(tenant="acme"))
    before = raw_items(db)
    with pytest.raises(ConditionFailed):
        traces.commit_chunk(chunk(trace().trace_id, 0, tenant="globex"))
    assert raw_items(db) == before


def test_mark_finalizing_moves_open_to_finalizing_once(traces):
    traces.create_trace(trace())
    tid = trace().trace_id
    updated = traces.mark_finalizing(
        "acme", tid, {"execution": "e1", "n": 2}, "2026-11-25T09:30Z", 0, 0
    )
    assert updated.status == FINALIZING
    assert updated.finalize == {"execution": "e1", "n": 2}
    assert traces.get_trace("acme", tid) == updated
    with pytest.raises(ConditionFailed):
        traces.mark_finalizing("acme", tid, {"execution": "e2"}, "2026-11-25T09:45Z", 0, 0)
    assert traces.get_trace("acme", tid) == updated


def test_mark_finalizing_refuses_when_the_counts_moved(traces, db):
    traces.create_trace(trace())
    tid = trace().trace_id
    traces.commit_chunk(chunk(tid, 0, count=3))
    before = raw_items(db)
    with pytest.raises(ConditionFailed):  # the caller checked an empty trace
        traces.mark_finalizing("acme", tid, {"n": 0}, T0, 0, 0)
    assert raw_items(db) == before


def test_mark_finalizing_a_missing_trace_raises_and_creates_nothing(traces, db):
    with pytest.raises(ConditionFailed):
        traces.mark_finalizing("acme", "tr_01JD0000000000000000000404", {}, T0, 0, 0)
    assert raw_items(db) == []


def _ids(n: int, tenant_tag: str = "A") -> list[str]:
    # ULIDs sort by creation time; the suffix makes each id distinct.
    return [f"tr_01JD{i:04d}0000000000000000{tenant_tag}{i % 10}" for i in range(n)]


def walk(traces: DynamoTraceStore, tenant: str, limit: int) -> list[list[str]]:
    pages, after = [], None
    for _ in range(50):
        page = traces.list_traces(tenant, limit, after)
        assert len(page.items) <= limit
        assert all(t.tenant == tenant for t in page.items)
        pages.append([t.trace_id for t in page.items])
        if page.next_token is None:
            return pages
        assert page.next_token == page.items[-1].trace_id
        after = page.next_token
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(("count", "limit"), [(7, 3), (6, 3), (5, 10), (1, 1)])
def test_list_traces_pages_newest_first_through_one_tenant_only(traces, count, limit):
    acme, globex = _ids(count, "A"), _ids(count + 2, "G")
    # Interleave writes across tenants, and add chunks whose keys share the tenant prefix.
    for a, g in zip(acme, globex, strict=False):
        traces.create_trace(trace(a, "acme"))
        traces.create_trace(trace(g, "globex"))
        traces.commit_chunk(chunk(a, 0, tenant="acme"))
    for g in globex[len(acme) :]:
        traces.create_trace(trace(g, "globex"))
    traces.create_trace(trace("tr_01JD9999000000000000000000", "acme-2"))

    pages = walk(traces, "acme", limit)
    seen = [t for page in pages for t in page]
    assert seen == sorted(acme, reverse=True)  # every trace once, newest first
    assert all(pages[:-1])
    assert len(pages[0]) == min(limit, count)
    assert [t for page in walk(traces, "globex", limit) for t in page] == sorted(
        globex, reverse=True
    )


def test_list_traces_cursor_from_another_tenant_never_crosses_over(traces):
    for a in _ids(4, "A"):
        traces.create_trace(trace(a, "acme"))
    globex = _ids(4, "G")
    for g in globex:
        traces.create_trace(trace(g, "globex"))
    page = traces.list_traces("acme", 10, after=globex[-1])
    assert page.items
    assert all(t.tenant == "acme" for t in page.items)
    assert traces.list_traces("nobody", 10, None).items == []


def test_list_traces_items_carry_the_stored_fields(traces):
    traces.create_trace(trace())
    traces.commit_chunk(chunk(trace().trace_id, 0, count=4))
    (listed,) = traces.list_traces("acme", 5, None).items
    assert listed == traces.get_trace("acme", trace().trace_id)
    assert (listed.chunk_count, listed.event_count) == (1, 4)


def test_list_chunks_in_seq_order_with_and_without_event_ids(traces):
    traces.create_trace(trace())
    tid = trace().trace_id
    stored = [chunk(tid, s, first=s * 3, count=3, tag=f"c{s}") for s in (2, 0, 11, 1)]
    for c in stored:
        traces.commit_chunk(c)
    other = trace("tr_01JD0000000000000000000002")
    traces.create_trace(other)
    traces.commit_chunk(chunk(other.trace_id, 0, tag="other"))
    traces.create_trace(trace(tid, "globex"))
    traces.commit_chunk(chunk(tid, 5, tenant="globex", tag="globex"))

    with_ids = list(traces.list_chunks("acme", tid, with_event_ids=True))
    expected = sorted(stored, key=lambda c: c.chunk_seq)
    assert with_ids == expected
    assert with_ids[2].event_ids == ("ev-c2-6", "ev-c2-7", "ev-c2-8")

    without = list(traces.list_chunks("acme", tid, with_event_ids=False))
    assert [c.event_ids for c in without] == [(), (), (), ()]
    assert [c.chunk_seq for c in without] == [0, 1, 2, 11]
    for got, want in zip(without, expected, strict=True):
        assert (
            got.sha256,
            got.mac,
            got.body_key,
            got.size_bytes,
            got.first_event_seq,
            got.last_event_seq,
            got.stored_at,
            got.key_id,
        ) == (
            want.sha256,
            want.mac,
            want.body_key,
            want.size_bytes,
            want.first_event_seq,
            want.last_event_seq,
            want.stored_at,
            want.key_id,
        )
    assert list(traces.list_chunks("acme", "tr_01JD0000000000000000000404", True)) == []


def test_ping_reaches_the_table_and_fails_for_a_missing_one(traces, db):
    traces.ping()
    with pytest.raises(db.exceptions.ResourceNotFoundException):
        DynamoTraceStore(db, "no-such-table").ping()


# ---- tokens ---------------------------------------------------------------------------


def token(
    tenant: str = "acme", scopes: tuple[str, ...] = ("ingest", "read"), **kwargs: Any
) -> TokenRecord:
    return issue_token(tenant, list(scopes), now=T0, **kwargs)[1]


def test_token_reads_back_as_stored(tokens):
    record = token(expires_at="2027-01-01T00:00:00Z", description="ci bot")
    tokens.put_token(record)
    assert tokens.get_token(record.token_id) == record
    assert tokens.get_token("0" * 16) is None


def test_put_token_twice_raises_and_keeps_the_first(tokens, db):
    record = token("acme")
    tokens.put_token(record)
    impostor = TokenRecord(
        token_id=record.token_id,
        tenant="evil",
        scopes=("admin",),
        secret_sha256="0" * 64,
        created_at=T0,
    )
    with pytest.raises(AlreadyExists):
        tokens.put_token(impostor)
    assert tokens.get_token(record.token_id) == record


def test_revoke_unknown_token_raises_and_creates_nothing(tokens, db):
    with pytest.raises(ConditionFailed):
        tokens.revoke_token("0123456789abcdef", T0)
    assert db.scan(TableName=NAMES.tokens_table)["Items"] == []


def test_revoke_keeps_the_first_revocation_time(tokens):
    record = token()
    tokens.put_token(record)
    first = tokens.revoke_token(record.token_id, "2026-11-25T10:00:00.000Z")
    second = tokens.revoke_token(record.token_id, "2026-11-26T10:00:00.000Z")
    assert first.revoked_at == second.revoked_at == "2026-11-25T10:00:00.000Z"
    assert tokens.get_token(record.token_id).revoked_at == "2026-11-25T10:00:00.000Z"
    assert second.secret_sha256 == record.secret_sha256
    assert second.tenant == record.tenant


def test_list_tokens_filters_by_tenant(tokens):
    records = [token("acme"), token("globex"), token("acme", ("admin",))]
    for r in records:
        tokens.put_token(r)
    assert {t.token_id for t in tokens.list_tokens("acme")} == {
        records[0].token_id,
        records[2].token_id,
    }
    assert {t.token_id for t in tokens.list_tokens(None)} == {r.token_id for r in records}
    assert tokens.list_tokens("initech") == []


# ---- S3 -------------------------------------------------------------------------------


@pytest.fixture
def s3(aws: None) -> Any:
    return boto3.client("s3", config=S3_CONFIG)


def _b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_put_if_absent_never_overwrites(s3):
    blobs = S3BlobStore(s3, NAMES.bucket)
    key = "tenants/acme/traces/tr_1/artifacts/x"
    first, second = b"first body", b"other body"
    assert blobs.put_if_absent(key, first, hashlib.sha256(first).hexdigest(), "text/plain")
    stored = s3.head_object(Bucket=NAMES.bucket, Key=key)
    assert (
        blobs.put_if_absent(key, second, hashlib.sha256(second).hexdigest(), "application/json")
        is False
    )
    obj = s3.get_object(Bucket=NAMES.bucket, Key=key)
    assert obj["Body"].read() == first
    assert obj["ContentType"] == "text/plain"
    assert obj["ETag"] == stored["ETag"]
    assert blobs.head(key) == len(first)
    assert blobs.head("tenants/acme/traces/tr_1/artifacts/missing") is None


def test_put_if_absent_in_flight_conflict_is_contention_not_success(s3, monkeypatch):
    """S3 answers 409 while another conditional write to the key is still in flight; that
    write may yet fail, so the object must not be taken as stored."""

    def conflict(**kwargs):
        raise ClientError(
            {"Error": {"Code": "ConditionalRequestConflict", "Message": "busy"}}, "PutObject"
        )

    monkeypatch.setattr(s3, "put_object", conflict)
    with pytest.raises(Contention):
        S3BlobStore(s3, NAMES.bucket).put_if_absent(
            "k", b"x", hashlib.sha256(b"x").hexdigest(), "text/plain"
        )


def test_put_if_absent_sends_the_checksum_and_the_no_overwrite_condition(s3):
    """What the adapter guarantees on the wire. S3 itself rejects a body whose SHA-256
    differs from x-amz-checksum-sha256; moto 5.2.5 does not check it (see below)."""
    sent: list[dict[str, str]] = []
    s3.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: sent.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        ),
    )
    blobs = S3BlobStore(s3, NAMES.bucket)
    body = b'{"events": []}'
    assert blobs.put_if_absent("k", body, hashlib.sha256(body).hexdigest(), "application/json")
    (headers,) = sent
    assert headers["x-amz-checksum-sha256"] == _b64(body)
    assert headers["If-None-Match"] == "*"


def test_moto_does_not_verify_the_checksum_of_a_put(s3):
    """Pins a moto limitation so that an upgrade which starts verifying is noticed: moto
    5.2.5 stores a body whose SHA-256 differs from the x-amz-checksum-sha256 sent with it
    (real S3 answers 400 BadDigest). The adapter's integrity therefore rests on S3 here."""
    blobs = S3BlobStore(s3, NAMES.bucket)
    stored = blobs.put_if_absent(
        "k", b"actual", hashlib.sha256(b"claimed").hexdigest(), "text/plain"
    )
    assert stored is True
    assert s3.get_object(Bucket=NAMES.bucket, Key="k")["Body"].read() == b"actual"
