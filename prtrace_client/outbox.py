"""The durable outbox: a local SQLite journal (WAL) that holds everything a recording
produces until the server has acknowledged it, so nothing is lost when the network, the
laptop or the server fails.

The rules that make delivery exactly-once (from the server's point of view):
  * `append` commits the event, with its event seq, before any network call.
  * Sealing groups unsealed events into the next chunk seq and stores the chunk's bytes
    (canonical JSON, as the server stores them) and SHA-256 in the same transaction,
    BEFORE the chunk is sent. A chunk never changes after sealing: a resend after a crash
    or a lost answer sends the byte-identical chunk, which the server answers with the
    stored receipt (PUT is idempotent by content).
  * A chunk is marked acknowledged only after the server's receipt, which must carry the
    same SHA-256. Unacknowledged chunks are sent in chunk seq order, so the server sees no
    gaps; sealed chunks are never re-cut, so it sees no duplicates.
  * The trace is created with an Idempotency-Key stored with the session, artifacts are
    content-addressed, and finalize uses a per-session key: each is safe to repeat.

Use (one journal file per user or per workspace; several processes may share it):

    outbox = Outbox.open(default_outbox_path())
    session = outbox.start_trace(metadata)                 # local id, works offline
    ref = outbox.add_artifact(session, Path("out.txt"), "text/plain")   # BlobRef dict
    outbox.append(session, {"type": "cmd_run", "payload": {..., "stdout_ref": ref}})
    outbox.request_finalize(session, snapshots={"base": ref1, "final": ref2})
    Flusher(outbox, PrtraceClient()).push()                # or .start() / .stop() live
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import sqlite3
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import TypeAdapter, ValidationError
from ulid import ULID

from prtrace.canonical import canonical_json
from prtrace.clock import utc_now
from prtrace.integrity import file_sha256
from prtrace.schema import MAX_EVENTS_PER_CHUNK, Event, artifact_uri
from prtrace_client.client import PrtraceClient
from prtrace_client.errors import PrtraceError

log = logging.getLogger("prtrace_client.outbox")

OUTBOX_ENV: Final = "PRTRACE_OUTBOX"
MAX_CHUNK_BYTES: Final = 3 * 1024 * 1024  # under the API's 4 MiB chunk body limit
_EVENT: TypeAdapter[Any] = TypeAdapter(Event)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    local_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    metadata BLOB NOT NULL,
    create_key TEXT NOT NULL,
    endpoint TEXT,
    trace_id TEXT,
    next_event_seq INTEGER NOT NULL DEFAULT 0,
    next_chunk_seq INTEGER NOT NULL DEFAULT 0,
    finalize_body BLOB,
    finalized BLOB
);
CREATE TABLE IF NOT EXISTS events (
    local_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    appended_at REAL NOT NULL,
    PRIMARY KEY (local_id, seq)  -- only unsealed events: sealing moves them into a chunk
);
CREATE TABLE IF NOT EXISTS chunks (
    local_id TEXT NOT NULL,
    chunk_seq INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    sealed_at REAL NOT NULL,
    acked_at REAL,
    receipt BLOB,
    PRIMARY KEY (local_id, chunk_seq)
);
CREATE TABLE IF NOT EXISTS artifacts (
    local_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    path TEXT NOT NULL,
    uploaded_at REAL,
    PRIMARY KEY (local_id, sha256)
);
"""


class InvalidEvent(PrtraceError):
    """An appended event does not match trace schema v1; nothing was stored."""


class SessionClosed(PrtraceError):
    """The session was finalized (or finalize was requested): it takes no more events."""


class UnknownSession(PrtraceError):
    pass


def default_outbox_path() -> Path:
    """$PRTRACE_OUTBOX, else ~/.local/share/prtrace/outbox.db (XDG_DATA_HOME respected)."""
    if os.environ.get(OUTBOX_ENV):
        return Path(os.environ[OUTBOX_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "prtrace" / "outbox.db"


@dataclass(frozen=True)
class SessionState:
    """What the outbox holds for one session (for `prtrace push`/status displays)."""

    local_id: str
    title: str
    trace_id: str | None
    events: int  # appended so far
    unsealed_events: int  # not yet cut into a chunk
    chunks: int  # sealed
    unacked_chunks: int
    pending_artifacts: int
    finalize_requested: bool
    finalized: dict[str, Any] | None  # the API's answer to finalize, once received
    delivered_events: int = 0  # in chunks the server has acknowledged

    @property
    def delivered(self) -> bool:
        """Everything is on the server and finalize (if requested) was accepted."""
        return (
            self.unsealed_events == 0
            and self.unacked_chunks == 0
            and self.pending_artifacts == 0
            and (not self.finalize_requested or self.finalized is not None)
        )


@dataclass(frozen=True)
class Chunk:
    local_id: str
    chunk_seq: int
    first_seq: int
    last_seq: int
    body: bytes  # exactly what is PUT, every time
    sha256: str


@dataclass(frozen=True)
class PendingArtifact:
    sha256: str
    size: int
    media_type: str
    path: Path


class Outbox:
    """The journal. Thread-safe; several processes may open the same file (SQLite locks)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._lock = threading.RLock()
        self.path = path
        self.blob_dir = path.with_name(path.name + ".blobs")

    @classmethod
    def open(cls, path: Path | str) -> Outbox:
        """Open (creating if needed) the journal at `path`, in WAL mode with full fsync."""
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a commit survives a power cut, not only a crash
        db.execute("PRAGMA busy_timeout=30000")
        db.executescript(_SCHEMA)
        return cls(db, path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: other writers (threads or processes) wait."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---- recording --------------------------------------------------------------------

    def start_trace(self, metadata: Mapping[str, Any], *, local_id: str | None = None) -> str:
        """Open a session for a new trace (TraceMetadata as a dict) and return its local
        id ("ls_…"). The server-side trace is created by the flusher, so this works
        offline; `trace_id(local_id)` tells the server's id once known.

        With `local_id` (a name you derive from the content, say) starting again returns
        the existing session of that id instead of opening a second one."""
        local_id = local_id or f"ls_{ULID()}"
        encoded = orjson.dumps(dict(metadata))
        with self._write() as db:
            row = db.execute(
                "SELECT metadata FROM sessions WHERE local_id = ?", (local_id,)
            ).fetchone()
            if row is not None:
                if orjson.loads(row[0]) != dict(metadata):
                    raise SessionClosed(f"session {local_id} exists with other metadata")
                return local_id
            db.execute(
                "INSERT INTO sessions (local_id, created_at, metadata, create_key) "
                "VALUES (?, ?, ?, ?)",
                (local_id, utc_now(), encoded, f"create-{local_id}"),
            )
        return local_id

    def append(self, session: str, event: Mapping[str, Any]) -> int:
        """Validate and durably store one event; returns its event seq.

        `event` is {"type": ..., "payload": {...}} and optionally "ts" (default: now) and
        "event_id" (default: "e-<seq>"); "seq" is assigned here. Raises InvalidEvent (with
        the JSON pointer of each bad field) or SessionClosed; nothing is stored then.
        """
        return self.append_many(session, [event])[0]

    def append_many(self, session: str, events: Iterable[Mapping[str, Any]]) -> list[int]:
        """`append` for many events in one transaction (all stored, or none)."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT next_event_seq, finalize_body FROM sessions WHERE local_id = ?",
                (session,),
            ).fetchone()
            if row is None:
                raise UnknownSession(f"no session {session} in the outbox {self.path}")
            if row[1] is not None:
                raise SessionClosed(f"session {session} was stopped; it takes no more events")
            seq = start = int(row[0])
            rows = []
            for event in events:
                rows.append((session, seq, _canonical_event(event, seq), now))
                seq += 1
            db.executemany(
                "INSERT INTO events (local_id, seq, body, appended_at) VALUES (?, ?, ?, ?)", rows
            )
            db.execute("UPDATE sessions SET next_event_seq = ? WHERE local_id = ?", (seq, session))
        return list(range(start, seq))

    def add_artifact(
        self,
        session: str,
        path: Path,
        media_type: str = "application/octet-stream",
        *,
        copy: bool = True,
    ) -> dict[str, Any]:
        """Record a file to upload as an artifact of the session's trace and return the
        BlobRef dict events use ({uri, sha256, size, media_type}).

        With `copy` (the default) the bytes are copied into the outbox's blob directory
        while hashing, so the upload survives the file changing or being deleted; pass
        copy=False for large files that stay put (e.g. workspace snapshots you keep)."""
        if copy:
            stored, sha256, size = self._store_blob(path)
        else:
            stored = path.resolve()
            sha256, size = file_sha256(path)
        self._record_artifact(session, sha256, size, media_type, stored)
        return _blob_ref(sha256, size, media_type)

    def add_artifact_bytes(
        self, session: str, content: bytes, media_type: str = "application/octet-stream"
    ) -> dict[str, Any]:
        """`add_artifact` for bytes in memory (e.g. captured command output)."""
        sha256 = hashlib.sha256(content).hexdigest()
        target = self.blob_dir / sha256
        if not target.exists():
            self.blob_dir.mkdir(parents=True, exist_ok=True)
            _atomic_write(target, content)
        self._record_artifact(session, sha256, len(content), media_type, target)
        return _blob_ref(sha256, len(content), media_type)

    def request_finalize(
        self,
        session: str,
        snapshots: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Close the session: no more events; the flusher seals the rest, delivers it and
        finalizes with `snapshots` ({"base": BlobRef, "final": BlobRef}, artifacts added
        with add_artifact) and any `extra` FinalizeRequest fields. Repeating it with the
        same arguments is harmless; other arguments after a request raise SessionClosed."""
        body: dict[str, Any] = {}
        if snapshots is not None:
            body["snapshots"] = dict(snapshots)
        body.update(extra or {})
        encoded = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        with self._write() as db:
            row = self._session_row(db, session, "next_event_seq, finalize_body")
            if row[1] is not None:
                if bytes(row[1]) != encoded:
                    raise SessionClosed(f"session {session} was already stopped differently")
                return
            if int(row[0]) == 0:
                raise PrtraceError(
                    f"session {session} has no events; a trace needs at least one to finalize"
                )
            db.execute(
                "UPDATE sessions SET finalize_body = ? WHERE local_id = ?", (encoded, session)
            )

    # ---- reading ----------------------------------------------------------------------

    def trace_id(self, session: str) -> str | None:
        """The server's trace id, once the flusher has created the trace."""
        with self._lock:
            row = self._session_row(self._db, session, "trace_id")
        return None if row[0] is None else str(row[0])

    def sessions(self, *, pending_only: bool = False) -> list[SessionState]:
        """Every session, oldest first (only those with something left to deliver)."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT local_id FROM sessions ORDER BY 1")]
        states = [self.state(i) for i in ids]
        return [s for s in states if not s.delivered] if pending_only else states

    def state(self, session: str) -> SessionState:
        with self._lock:
            db = self._db
            row = self._session_row(
                db, session, "metadata, trace_id, next_event_seq, finalize_body, finalized"
            )
            unsealed, = db.execute(
                "SELECT count(*) FROM events WHERE local_id = ?", (session,)
            ).fetchone()  # fmt: skip
            chunks, unacked, acked_events = db.execute(
                "SELECT count(*), count(*) - count(acked_at), "
                "coalesce(sum(CASE WHEN acked_at IS NOT NULL THEN last_seq - first_seq + 1 END),"
                " 0) FROM chunks WHERE local_id = ?",
                (session,),
            ).fetchone()
            artifacts, = db.execute(
                "SELECT count(*) FROM artifacts WHERE local_id = ? AND uploaded_at IS NULL",
                (session,),
            ).fetchone()  # fmt: skip
        metadata = orjson.loads(row[0])
        return SessionState(
            local_id=session,
            title=str(metadata.get("task", {}).get("title", "")),
            trace_id=row[1],
            events=int(row[2]),
            unsealed_events=int(unsealed),
            chunks=int(chunks),
            unacked_chunks=int(unacked),
            pending_artifacts=int(artifacts),
            finalize_requested=row[3] is not None,
            finalized=None if row[4] is None else orjson.loads(row[4]),
            delivered_events=int(acked_events),
        )

    def chunk(self, session: str, chunk_seq: int) -> Chunk:
        """A sealed chunk, exactly as it is (re)sent (empty once the trace is finalized)."""
        with self._lock:
            row = self._db.execute(
                "SELECT first_seq, last_seq, body, sha256 FROM chunks "
                "WHERE local_id = ? AND chunk_seq = ?",
                (session, chunk_seq),
            ).fetchone()
        if row is None:
            raise KeyError(f"{session} has no sealed chunk {chunk_seq}")
        return Chunk(session, chunk_seq, row[0], row[1], bytes(row[2]), row[3])

    # ---- delivery (used by Flusher) ---------------------------------------------------

    def seal(
        self,
        session: str,
        *,
        max_events: int = 1_000,
        max_bytes: int = 1024 * 1024,
        max_age_s: float | None = 2.0,
        force: bool = False,
    ) -> list[int]:
        """Cut unsealed events into chunks and return the new chunk seqs. Full chunks
        (max_events or max_bytes) are always cut; the remainder only when `force`, when
        finalize was requested, or when its oldest event is older than `max_age_s`."""
        max_events = max(1, min(max_events, MAX_EVENTS_PER_CHUNK))
        max_bytes = max(1, min(max_bytes, MAX_CHUNK_BYTES))
        sealed: list[int] = []
        now = time.time()
        with self._write() as db:
            row = self._session_row(db, session, "next_chunk_seq, finalize_body")
            chunk_seq = int(row[0])
            force = force or row[1] is not None
            pending = db.execute(
                "SELECT seq, body, appended_at FROM events WHERE local_id = ? ORDER BY seq",
                (session,),
            )
            batch: list[tuple[int, bytes, float]] = []
            size = 0
            cuts: list[list[tuple[int, bytes, float]]] = []
            for seq, body, appended_at in pending:
                body = bytes(body)
                if batch and (len(batch) >= max_events or size + len(body) + 1 > max_bytes):
                    cuts.append(batch)
                    batch, size = [], 0
                batch.append((seq, body, appended_at))
                size += len(body) + 1
            if batch:
                full = len(batch) >= max_events or size >= max_bytes
                old = max_age_s is not None and now - batch[0][2] >= max_age_s
                if force or full or old:
                    cuts.append(batch)
            for cut in cuts:
                body = b'{"events":[' + b",".join(b for _, b, _ in cut) + b"]}"
                db.execute(
                    "INSERT INTO chunks (local_id, chunk_seq, first_seq, last_seq, body, sha256,"
                    " sealed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (session, chunk_seq, cut[0][0], cut[-1][0], body,
                     hashlib.sha256(body).hexdigest(), now),
                )  # fmt: skip
                # The chunk now holds these bytes: the journal rows are no longer needed.
                db.execute(
                    "DELETE FROM events WHERE local_id = ? AND seq BETWEEN ? AND ?",
                    (session, cut[0][0], cut[-1][0]),
                )
                sealed.append(chunk_seq)
                chunk_seq += 1
            db.execute(
                "UPDATE sessions SET next_chunk_seq = ? WHERE local_id = ?", (chunk_seq, session)
            )
        return sealed

    def unacked_chunks(self, session: str) -> list[Chunk]:
        """Sealed chunks without a receipt, in chunk seq order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT chunk_seq, first_seq, last_seq, body, sha256 FROM chunks "
                "WHERE local_id = ? AND acked_at IS NULL ORDER BY chunk_seq",
                (session,),
            ).fetchall()
        return [Chunk(session, r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def ack_chunk(self, session: str, chunk_seq: int, receipt: Mapping[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE chunks SET acked_at = ?, receipt = ? "
                "WHERE local_id = ? AND chunk_seq = ? AND acked_at IS NULL",
                (time.time(), orjson.dumps(dict(receipt)), session, chunk_seq),
            )

    def pending_artifacts(self, session: str) -> list[PendingArtifact]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256, size, media_type, path FROM artifacts "
                "WHERE local_id = ? AND uploaded_at IS NULL ORDER BY rowid",
                (session,),
            ).fetchall()
        return [PendingArtifact(r[0], r[1], r[2], Path(r[3])) for r in rows]

    def ack_artifact(self, session: str, sha256: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE artifacts SET uploaded_at = ? WHERE local_id = ? AND sha256 = ?",
                (time.time(), session, sha256),
            )

    def creation(self, session: str) -> tuple[dict[str, Any], str, str | None]:
        """(metadata, the create Idempotency-Key, the endpoint it was created at)."""
        with self._lock:
            row = self._session_row(self._db, session, "metadata, create_key, endpoint")
        return orjson.loads(row[0]), str(row[1]), row[2]

    def set_trace_id(self, session: str, trace_id: str, endpoint: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE sessions SET trace_id = ?, endpoint = ? "
                "WHERE local_id = ? AND trace_id IS NULL",
                (trace_id, endpoint, session),
            )

    def finalize_request(self, session: str) -> tuple[int, dict[str, Any]] | None:
        """(expected_chunks, extra body) when finalize was requested and everything is
        sealed; None otherwise."""
        with self._lock:
            row = self._session_row(self._db, session, "next_chunk_seq, finalize_body")
            unsealed, = self._db.execute(
                "SELECT count(*) FROM events WHERE local_id = ?", (session,)
            ).fetchone()  # fmt: skip
        if row[1] is None or unsealed:
            return None
        return int(row[0]), orjson.loads(row[1])

    def set_finalized(self, session: str, view: Mapping[str, Any]) -> None:
        """Record the API's finalize answer, then release what only delivery needed: the
        chunk bytes (the receipts stay) and blob copies no undelivered artifact uses.
        Files added with copy=False are never touched."""
        with self._write() as db:
            db.execute(
                "UPDATE sessions SET finalized = ? WHERE local_id = ?",
                (orjson.dumps(dict(view)), session),
            )
            db.execute("UPDATE chunks SET body = x'' WHERE local_id = ?", (session,))
            paths = [
                Path(row[0])
                for row in db.execute(
                    "SELECT path FROM artifacts WHERE local_id = ? AND path NOT IN "
                    "(SELECT path FROM artifacts WHERE uploaded_at IS NULL)",
                    (session,),
                )
            ]
        for path in paths:
            if path.parent == self.blob_dir:
                path.unlink(missing_ok=True)

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database file (keeps the WAL from growing)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ---- helpers ----------------------------------------------------------------------

    @staticmethod
    def _session_row(db: sqlite3.Connection, session: str, columns: str) -> tuple[Any, ...]:
        row = db.execute(
            f"SELECT {columns} FROM sessions WHERE local_id = ?",  # noqa: S608 - fixed columns
            (session,),
        ).fetchone()
        if row is None:
            raise UnknownSession(f"no session {session} in this outbox")
        return tuple(row)

    def _record_artifact(
        self, session: str, sha256: str, size: int, media_type: str, path: Path
    ) -> None:
        with self._write() as db:
            self._session_row(db, session, "local_id")
            db.execute(
                "INSERT OR IGNORE INTO artifacts (local_id, sha256, size, media_type, path) "
                "VALUES (?, ?, ?, ?, ?)",
                (session, sha256, size, media_type, str(path)),
            )

    def _store_blob(self, source: Path) -> tuple[Path, str, int]:
        """Copy into the blob directory while hashing (one read), named by the digest."""
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, temporary = tempfile.mkstemp(dir=self.blob_dir, prefix=".incoming-")
        try:
            with source.open("rb") as reader, os.fdopen(fd, "wb") as writer:
                while block := reader.read(1024 * 1024):
                    digest.update(block)
                    writer.write(block)
                    size += len(block)
                writer.flush()
                os.fsync(writer.fileno())
            target = self.blob_dir / digest.hexdigest()
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target, digest.hexdigest(), size


def _canonical_event(event: Mapping[str, Any], seq: int) -> bytes:
    document = dict(event)
    document["seq"] = seq
    document.setdefault("event_id", f"e-{seq:07d}")
    document.setdefault("ts", utc_now())
    try:
        model = _EVENT.validate_python(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"/{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise InvalidEvent(f"event {seq} does not match trace schema v1: {problems}") from None
    return canonical_json(model.model_dump(mode="json", exclude_none=True))


def _blob_ref(sha256: str, size: int, media_type: str) -> dict[str, Any]:
    return {
        "uri": artifact_uri(sha256),
        "sha256": sha256,
        "size": size,
        "media_type": media_type,
    }


def _atomic_write(target: Path, content: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    with os.fdopen(fd, "wb") as writer:
        writer.write(content)
        writer.flush()
        os.fsync(writer.fileno())
    os.replace(temporary, target)


# ---- the flusher ----------------------------------------------------------------------


@dataclass
class FlushReport:
    """What one flush delivered."""

    traces_created: list[str] = field(default_factory=list)
    artifacts_uploaded: int = 0
    chunks_sent: int = 0
    events_sent: int = 0
    finalized: dict[str, dict[str, Any]] = field(default_factory=dict)  # trace id -> view

    def merge(self, other: FlushReport) -> None:
        self.traces_created += other.traces_created
        self.artifacts_uploaded += other.artifacts_uploaded
        self.chunks_sent += other.chunks_sent
        self.events_sent += other.events_sent
        self.finalized |= other.finalized


class Flusher:
    """Delivers what the outbox holds: creates traces, uploads artifacts, seals and sends
    chunks in order, records receipts, finalizes. `flush()` once, `push()` everything now,
    or `start()` a background thread for live recording and `stop()` it."""

    def __init__(
        self,
        outbox: Outbox,
        client: PrtraceClient,
        *,
        max_events: int = 1_000,
        max_bytes: int = 1024 * 1024,
        max_age_s: float = 2.0,
        interval_s: float = 0.5,
        in_flight: int = 4,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.client = client
        # Called as ("artifacts" | "chunks", done, total) while a pass delivers (displays).
        self.on_progress = on_progress
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.interval_s = interval_s
        # Chunk PUTs outstanding at once: each is its own idempotent request and the server
        # accepts a trace's chunks in any order, so a slow round trip is not paid per chunk.
        self.in_flight = max(1, in_flight)
        self.last_error: BaseException | None = None
        self.last_delivery: float | None = None  # time.time() of the last clean pass
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: str | None = None

    def flush(self, session: str | None = None, *, force: bool = False) -> FlushReport:
        """One delivery pass over `session` (default: every session with pending work).
        Without `force`, a partly filled chunk waits until it is `max_age_s` old."""
        report = FlushReport()
        if session is not None:
            targets = [session]
        else:
            targets = [s.local_id for s in self.outbox.sessions(pending_only=True)]
        for local_id in targets:
            report.merge(self._deliver(local_id, force))
        return report

    def push(self, session: str | None = None) -> FlushReport:
        """Deliver everything pending now (partial chunks included) and finalize what was
        stopped: what `prtrace push` runs after a crash, a reboot or an outage."""
        report = self.flush(session, force=True)
        self.outbox.checkpoint()
        return report

    def start(self, session: str | None = None) -> None:
        """Flush `session` (default: every session) every `interval_s` in a daemon thread
        until `stop()`. Delivery errors are kept in `last_error` and retried on the next
        tick (the data stays in the outbox)."""
        if self._thread is not None:
            return
        self._session = session
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prtrace-flusher", daemon=True)
        self._thread.start()

    def stop(
        self, *, final_push: bool = True, timeout_s: float | None = None
    ) -> FlushReport | None:
        """Stop the thread; with `final_push`, deliver everything pending (errors raise,
        and what was not delivered stays in the outbox for `prtrace push`). With
        `timeout_s`, stop waiting for a pass still retrying after that long: it is a
        daemon thread, and whatever it had not acknowledged is resent by the next flush."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout_s)
            self._thread = None
        return self.push(self._session) if final_push else None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.flush(self._session)
                self.last_error = None
                self.last_delivery = time.time()
            except Exception as exc:  # keep recording; the next tick retries
                self.last_error = exc
                log.warning("background flush failed (will retry): %s", exc)

    def _deliver(self, session: str, force: bool) -> FlushReport:
        report = FlushReport()
        trace_id = self._ensure_trace(session, report)
        pending = self.outbox.pending_artifacts(session)
        for done, artifact in enumerate(pending):
            self._progress("artifacts", done, len(pending))
            if not artifact.path.exists():
                raise PrtraceError(
                    f"artifact {artifact.sha256} of session {session} is missing from "
                    f"{artifact.path}; it was added with copy=False and then removed"
                )
            upload = self.client.upload_artifact(
                trace_id, artifact.path, artifact.media_type, sha256=artifact.sha256,
                idempotency_key=f"artifact-{session}-{artifact.sha256}",
            )  # fmt: skip
            self.outbox.ack_artifact(session, artifact.sha256)
            report.artifacts_uploaded += int(upload.uploaded)
        if pending:
            self._progress("artifacts", len(pending), len(pending))
        self.outbox.seal(
            session,
            max_events=self.max_events,
            max_bytes=self.max_bytes,
            max_age_s=self.max_age_s,
            force=force,
        )
        unacked = self.outbox.unacked_chunks(session)
        if unacked:
            self._progress("chunks", 0, len(unacked))
        for chunk, receipt in self._put_chunks(trace_id, unacked):
            if receipt.get("sha256") != chunk.sha256:
                raise PrtraceError(
                    f"trace {trace_id} chunk {chunk.chunk_seq}: the server stored sha256 "
                    f"{receipt.get('sha256')}, the outbox sent {chunk.sha256}; client and "
                    "server disagree on canonical JSON (upgrade the client)"
                )
            self.outbox.ack_chunk(session, chunk.chunk_seq, receipt)
            report.chunks_sent += 1
            report.events_sent += chunk.last_seq - chunk.first_seq + 1
            self._progress("chunks", report.chunks_sent, len(unacked))
        state = self.outbox.state(session)
        wanted = self.outbox.finalize_request(session)
        if wanted is not None and state.finalized is None:
            expected, extra = wanted
            snapshots = extra.pop("snapshots", None)
            view = self.client.finalize(
                trace_id, expected, snapshots=snapshots, extra=extra,
                idempotency_key=f"finalize-{session}",
            )  # fmt: skip
            self.outbox.set_finalized(session, view)
            report.finalized[trace_id] = view
        return report

    def _progress(self, kind: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(kind, done, total)

    def _put_chunks(
        self, trace_id: str, chunks: list[Chunk]
    ) -> Iterator[tuple[Chunk, dict[str, Any]]]:
        """PUT `chunks` with up to `in_flight` outstanding; yield each stored one with its
        receipt, in chunk order. After a failure no new PUT starts; those already sent
        finish (and are yielded, so acknowledged), then the first failure is raised: the
        next flush sends only what has no receipt."""

        def put(chunk: Chunk) -> dict[str, Any]:
            return self.client.put_chunk(trace_id, chunk.chunk_seq, chunk.body)

        if self.in_flight == 1 or len(chunks) < 2:
            for chunk in chunks:
                yield chunk, put(chunk)
            return
        waiting = iter(chunks)
        failure: Exception | None = None
        with ThreadPoolExecutor(self.in_flight, thread_name_prefix="prtrace-put") as pool:
            sent = deque(
                (c, pool.submit(put, c)) for c in itertools.islice(waiting, self.in_flight)
            )
            while sent:
                chunk, receipt = sent.popleft()
                try:
                    answer = receipt.result()
                except Exception as exc:
                    failure = failure or exc
                    continue
                following = next(waiting, None) if failure is None else None
                if following is not None:
                    sent.append((following, pool.submit(put, following)))
                yield chunk, answer
        if failure is not None:
            raise failure

    def _ensure_trace(self, session: str, report: FlushReport) -> str:
        metadata, key, endpoint = self.outbox.creation(session)
        known = self.outbox.trace_id(session)
        if known is not None:
            if endpoint and endpoint != self.client.endpoint:
                raise PrtraceError(
                    f"session {session} belongs to trace {known} at {endpoint}, not "
                    f"{self.client.endpoint}; push it with --endpoint {endpoint}"
                )
            return known
        view = self.client.create_trace(metadata, idempotency_key=key)
        trace_id = str(view["trace_id"])
        self.outbox.set_trace_id(session, trace_id, self.client.endpoint)
        report.traces_created.append(trace_id)
        return trace_id
