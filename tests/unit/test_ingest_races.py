"""Races the conditional writes must settle: two writers of one chunk seq, a chunk landing
while the trace is finalized, two finalizers. Simulated deterministically by letting a
competitor write between the service's read and its conditional commit."""

from __future__ import annotations

import orjson
import pytest

from prtrace.adapters.memory import MemoryBlobStore, MemoryTraceStore
from prtrace.assemble.service import AssembleService, Rejected
from prtrace.errors import (
    ChunkConflict,
    IncompleteTrace,
    SeqDiscontinuity,
    TraceNotOpen,
)
from prtrace.ingest.service import IngestService
from prtrace.integrity import KeyRing
from prtrace.schema import TraceMetadata
from tests.assemble_support import IngestBlobs
from tests.factories import chunk_body, event, trace_metadata

RING = KeyRing(current_id="k1", keys={"k1": b"s" * 32})


class RacingStore(MemoryTraceStore):
    """Runs `competitor` right before the next commit or finalize, once."""

    def __init__(self) -> None:
        super().__init__()
        self.competitor = None

    def _race(self) -> None:
        competitor, self.competitor = self.competitor, None
        if competitor:
            competitor()

    def commit_chunk(self, chunk):  # type: ignore[no-untyped-def]
        self._race()
        super().commit_chunk(chunk)

    def mark_finalizing(self, *args):  # type: ignore[no-untyped-def]
        self._race()
        return super().mark_finalizing(*args)


@pytest.fixture
def setup():
    store = RacingStore()
    blobs = MemoryBlobStore()
    service = IngestService(store, blobs, lambda: RING)
    trace = service.create_trace("acme", TraceMetadata.model_validate(trace_metadata()))
    return store, blobs, service, trace.trace_id


def test_same_chunk_written_concurrently_is_one_chunk(setup):
    store, _, service, trace_id = setup
    store.competitor = lambda: service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
    outcome = service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
    assert outcome.replayed
    assert store.get_trace("acme", trace_id).chunk_count == 1


def test_different_chunk_written_concurrently_loses_with_409(setup):
    store, _, service, trace_id = setup
    store.competitor = lambda: service.put_chunk("acme", trace_id, 0, chunk_body(0, 4))
    with pytest.raises(ChunkConflict) as caught:
        service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
    winner = store.get_chunk("acme", trace_id, 0)
    assert caught.value.stored_sha256 == winner.sha256
    assert winner.event_count == 4


def test_chunk_racing_finalize_is_refused_and_nothing_counts(setup):
    store, _, service, trace_id = setup
    service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
    store.competitor = lambda: service.finalize("acme", trace_id, 1)
    with pytest.raises(TraceNotOpen):
        service.put_chunk("acme", trace_id, 1, chunk_body(3, 3))
    trace = store.get_trace("acme", trace_id)
    assert (trace.status, trace.chunk_count, trace.event_count) == ("finalizing", 1, 3)
    assert store.get_chunk("acme", trace_id, 1) is None


def test_two_finalizers_agree(setup):
    store, _, service, trace_id = setup
    service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
    store.competitor = lambda: service.finalize("acme", trace_id, 1)
    assert service.finalize("acme", trace_id, 1).status == "finalizing"


def test_duplicates_that_raced_past_chunk_checks_end_rejected_not_stuck_open(tmp_path):
    store = RacingStore()
    blobs = IngestBlobs(tmp_path / "bucket")
    service = IngestService(store, blobs, lambda: RING)
    trace_id = service.create_trace("acme", TraceMetadata.model_validate(trace_metadata())).trace_id
    notes = [event(seq, "rationale_note") for seq in range(4)]  # no artifacts to upload
    notes[2]["event_id"] = notes[3]["event_id"] = "dup"
    service.put_chunk("acme", trace_id, 0, orjson.dumps({"events": notes[:2]}))
    chunk1 = orjson.dumps({"events": [notes[2]]})
    chunk2 = orjson.dumps({"events": [notes[3]]})
    # Each PUT checks the trace before the other is stored, so both are accepted...
    store.competitor = lambda: service.put_chunk("acme", trace_id, 1, chunk1)
    service.put_chunk("acme", trace_id, 2, chunk2)
    assert store.get_trace("acme", trace_id).chunk_count == 3
    # ...and no later request can change stored chunks: finalize takes the trace, and the
    # pipeline's Assemble step rejects it, naming the chunk and the event.
    assert service.finalize("acme", trace_id, 3).status == "finalizing"
    outcome = AssembleService(store, blobs, lambda: RING).assemble("acme", trace_id)
    assert isinstance(outcome, Rejected)
    assert outcome.reason.code == "duplicate_event_id"
    assert (outcome.reason.chunk_seq, outcome.reason.event_id) == (2, "dup")


def test_finalize_rechecks_when_a_chunk_lands_meanwhile(setup):
    store, _, service, trace_id = setup
    service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
    store.competitor = lambda: service.put_chunk("acme", trace_id, 1, chunk_body(3, 3))
    # The manifest must cover exactly what is stored: the late chunk 1 is beyond N=1.
    with pytest.raises(IncompleteTrace) as caught:
        service.finalize("acme", trace_id, 1)
    assert caught.value.unexpected_chunks == [1]
    assert store.get_trace("acme", trace_id).status == "open"


def test_adjacent_chunk_racing_in_is_caught_at_commit(setup):
    store, _, service, trace_id = setup
    service.put_chunk("acme", trace_id, 0, chunk_body(0, 3))
    # Chunk 2 (events 6..) is checked while chunk 1 is absent; chunk 1 then lands ending at 4.
    store.competitor = lambda: service.put_chunk("acme", trace_id, 1, chunk_body(3, 2))
    with pytest.raises(SeqDiscontinuity) as caught:
        service.put_chunk("acme", trace_id, 2, chunk_body(6, 2))
    assert caught.value.expected_seq == 5
    assert store.get_chunk("acme", trace_id, 2) is None
