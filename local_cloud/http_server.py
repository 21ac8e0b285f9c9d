"""The local gateway's HTTP/1.1 server: h11 parses and frames the protocol, one thread serves
each connection, and every limit a hostile or slow client could abuse is enforced.

- The listen backlog is 1024 and up to 256 connections are served at once (more wait in
  the backlog, they are not reset).
- A request's head (request line and headers) must arrive within `read_timeout_s` of its
  first byte and its body must never stall longer than that; an idle keep-alive connection
  is closed after `idle_timeout_s`. A stalled half request is answered 408 and closed. An
  answer must be taken within 30 s.
- Request bodies are read as framed (Content-Length or chunked); an invalid or negative
  Content-Length, or both framings at once, is a 400.
- Whenever the server answers before it has read the whole request (400, 405, 408, 413,
  414, 431, 501), it says `Connection: close`, stops writing, discards what the client
  still sends for a moment and closes: unread body bytes are never parsed as a request.
- Every error the server itself produces is RFC 9457 `application/problem+json`.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11
import orjson

log = logging.getLogger("prtrace.local.gateway")

PROBLEM_CONTENT_TYPE = "application/problem+json"
# Methods an API Gateway HTTP API routes; anything else (TRACE, CONNECT, ...) is a 405.
ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_HOP_BY_HOP = frozenset(
    {"connection", "content-length", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"([\x21-\x7e\x80-\xff]([\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")
_WRITE_TIMEOUT_S = 30.0
_LINGER_S = 2.0  # how long unread request bytes are discarded before a closing socket closes


@dataclass(frozen=True)
class HttpLimits:
    """API Gateway's own quotas: 10 MB payloads, 10 KiB of request line and headers."""

    max_body_bytes: int = 10 * 1024 * 1024
    max_target_bytes: int = 8 * 1024
    max_head_bytes: int = 10 * 1024
    read_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str  # path and query, as sent
    headers: list[tuple[str, str]]  # names lower-cased, in order, repeats kept
    body: bytes


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False  # close the connection once answered


Handler = Callable[[HttpRequest], HttpReply]


def problem(status: int, slug: str, detail: str, **extensions: Any) -> HttpReply:
    """An RFC 9457 problem in the API's shape (`type` urn:prtrace:problem:<slug>)."""
    body: dict[str, Any] = {
        "type": f"urn:prtrace:problem:{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    body.update(extensions)
    headers = [("content-type", PROBLEM_CONTENT_TYPE)]
    if status == 503:
        headers.append(("retry-after", "1"))
    return HttpReply(status, headers, orjson.dumps(body))


class HttpServer:
    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: HttpLimits | None = None,
        backlog: int = 1024,
        max_connections: int = 256,
    ) -> None:
        self._handler = handler
        self.limits = limits or HttpLimits()
        self._listener = socket.create_server((host, port), backlog=backlog)
        self._listener.setblocking(False)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="gateway", daemon=True)

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self._listener.close()
        with self._open_lock:
            for sock in self._open:
                _quietly(sock.shutdown, socket.SHUT_RDWR)

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                # A full house leaves new connections queued in the backlog.
                if not self._slots.acquire(timeout=0.1):
                    continue
                if not selector.select(timeout=0.1):
                    self._slots.release()
                    continue
                try:
                    sock, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    self._slots.release()
                    continue
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with self._open_lock:
                    self._open.add(sock)
                threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            _Connection(sock, self._handler, self.limits).serve()
        except Exception:
            log.exception("connection failed")
        finally:
            with self._open_lock:
                self._open.discard(sock)
            _quietly(sock.close)
            self._slots.release()


class _TimedOut(Exception):
    pass


class _PeerGone(Exception):
    pass


class _Connection:
    def __init__(self, sock: socket.socket, handler: Handler, limits: HttpLimits) -> None:
        self._sock = sock
        self._handler = handler
        self._limits = limits
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_head_bytes)

    def serve(self) -> None:
        while True:
            try:
                request = self._read_head()
            except _PeerGone:
                return
            except _TimedOut:
                if self._h11.trailing_data[0]:
                    self._answer_and_close(
                        problem(408, "request-timeout", "the request head did not arrive in time")
                    )
                return
            except h11.RemoteProtocolError as error:
                self._answer_and_close(self._protocol_problem(error))
                return
            if request is None:
                return
            method = request.method.decode("ascii", "replace")
            early = self._refusal(request)
            if early is not None:
                self._answer_and_close(early, method)
                return
            try:
                body = self._read_body()
            except _PeerGone:
                return
            except _TimedOut:
                self._answer_and_close(
                    problem(408, "request-timeout", "the request body stalled"), method
                )
                return
            except h11.RemoteProtocolError as error:
                self._answer_and_close(self._protocol_problem(error), method)
                return
            except _BodyTooLarge:
                self._answer_and_close(self._too_large(), method)
                return
            reply = self._call(_request(request, body))
            try:
                self._send(reply, method)
            except _PeerGone:
                return
            if reply.close or self._h11.our_state is not h11.DONE:
                return
            self._h11.start_next_cycle()

    # -- reading ----------------------------------------------------------------------

    def _read_head(self) -> h11.Request | None:
        idle_until = time.monotonic() + self._limits.idle_timeout_s
        head_until: float | None = None
        while True:
            event = self._h11.next_event()
            if isinstance(event, h11.Request):
                return event
            if isinstance(event, h11.ConnectionClosed):
                return None
            if event is not h11.NEED_DATA:
                raise h11.RemoteProtocolError(f"unexpected {event!r}", error_status_hint=400)
            if head_until is None and self._h11.trailing_data[0]:
                # The first bytes of a request: its head is due within the read timeout.
                head_until = time.monotonic() + self._limits.read_timeout_s
            self._receive(head_until if head_until is not None else idle_until)

    def _read_body(self) -> bytes:
        if self._h11.client_is_waiting_for_100_continue:
            self._write(self._h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks: list[bytes] = []
        size = 0
        while True:
            event = self._h11.next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self._limits.max_body_bytes:
                    raise _BodyTooLarge
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            elif event is h11.NEED_DATA:
                self._receive(time.monotonic() + self._limits.read_timeout_s)
            else:
                raise h11.RemoteProtocolError(f"unexpected {event!r}", error_status_hint=400)

    def _receive(self, until: float) -> None:
        remaining = until - time.monotonic()
        if remaining <= 0:
            raise _TimedOut
        self._sock.settimeout(remaining)
        try:
            data = self._sock.recv(65536)
        except TimeoutError as error:
            raise _TimedOut from error
        except OSError as error:
            raise _PeerGone from error
        self._h11.receive_data(data)

    # -- deciding -----------------------------------------------------------------------

    def _refusal(self, request: h11.Request) -> HttpReply | None:
        """An answer before the body is read, or None to read it and call the handler."""
        method = request.method.decode("ascii", "replace")
        names = {name for name, _ in request.headers}
        if b"transfer-encoding" in names and b"content-length" in names:
            return problem(400, "bad-request", "both Transfer-Encoding and Content-Length sent")
        if method not in ALLOWED_METHODS:
            reply = problem(405, "method-not-allowed", f"{method} is not served by this API")
            return HttpReply(
                405, [*reply.headers, ("allow", ", ".join(ALLOWED_METHODS))], reply.body
            )
        if len(request.target) > self._limits.max_target_bytes:
            return problem(
                414,
                "uri-too-long",
                f"the request target is over {self._limits.max_target_bytes} bytes",
            )
        head = (
            len(request.method)
            + len(request.target)
            + sum(len(n) + len(v) + 4 for n, v in request.headers)
        )
        if head > self._limits.max_head_bytes:
            return self._headers_too_large()
        if not request.target.startswith(b"/"):
            return problem(400, "bad-request", "the request target must be a path")
        for name, value in request.headers:
            if name == b"content-length" and int(value) > self._limits.max_body_bytes:
                return self._too_large()
        return None

    def _protocol_problem(self, error: h11.RemoteProtocolError) -> HttpReply:
        if error.error_status_hint == 431:
            # The buffer overflowed before the head ended: before the request line did, 414.
            if b"\n" not in self._h11.trailing_data[0]:
                return problem(
                    414,
                    "uri-too-long",
                    f"the request line is over {self._limits.max_head_bytes} bytes",
                )
            return self._headers_too_large()
        if error.error_status_hint == 501:
            return problem(501, "not-implemented", str(error))
        return problem(400, "bad-request", f"malformed HTTP request: {error}")

    def _headers_too_large(self) -> HttpReply:
        return problem(
            431,
            "request-header-fields-too-large",
            f"the request line and headers are over {self._limits.max_head_bytes} bytes",
        )

    def _too_large(self) -> HttpReply:
        limit = self._limits.max_body_bytes
        return problem(
            413,
            "payload-too-large",
            f"request bodies are limited to {limit} bytes",
            limit_bytes=limit,
        )

    def _call(self, request: HttpRequest) -> HttpReply:
        try:
            return self._handler(request)
        except Exception:
            log.exception("%s %s failed", request.method, request.target)
            return problem(500, "internal-error", "the local gateway failed; see its log")

    # -- writing ------------------------------------------------------------------------

    def _send(self, reply: HttpReply, method: str) -> None:
        if not 200 <= reply.status <= 599:
            log.warning("status %s is not an HTTP final status", reply.status)
            reply = problem(500, "upstream-failure", f"invalid status {reply.status}")
        no_body = reply.status in {204, 304}
        headers: list[tuple[bytes, bytes]] = []
        for name, value in reply.headers:
            raw_name, raw_value = _field(name), _field(value).strip()
            if raw_name.lower().decode("latin-1") in _HOP_BY_HOP:
                continue
            if not (_TOKEN.fullmatch(raw_name) and _FIELD_VALUE.fullmatch(raw_value)):
                log.warning("dropped an invalid response header %r", name)
                continue
            headers.append((raw_name, raw_value))
        if not no_body:
            headers.append((b"content-length", str(len(reply.body)).encode()))
        headers.append((b"date", email.utils.formatdate(usegmt=True).encode()))
        if reply.close:
            headers.append((b"connection", b"close"))
        phrase = _phrase(reply.status)
        response = h11.Response(status_code=reply.status, headers=headers, reason=phrase)
        out = self._h11.send(response) or b""
        if reply.body and not no_body and method != "HEAD":
            out += self._h11.send(h11.Data(data=reply.body)) or b""
        out += self._h11.send(h11.EndOfMessage()) or b""
        self._write(out)

    def _write(self, data: bytes | None) -> None:
        # sendall's timeout bounds the whole answer; a client that never reads is dropped.
        self._sock.settimeout(max(self._limits.read_timeout_s, _WRITE_TIMEOUT_S))
        try:
            self._sock.sendall(data or b"")
        except OSError as error:
            raise _PeerGone from error

    def _answer_and_close(self, reply: HttpReply, method: str = "") -> None:
        """Answer a request that was not (fully) read, then close without reading it."""
        if self._h11.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
            closing = HttpReply(reply.status, reply.headers, reply.body, close=True)
            try:
                self._send(closing, method)
            except (_PeerGone, h11.LocalProtocolError):
                return
        # Close gracefully: stop writing, discard what the client still sends for a moment
        # (closing with unread data would reset the connection and lose the answer).
        _quietly(self._sock.shutdown, socket.SHUT_WR)
        until = time.monotonic() + min(_LINGER_S, self._limits.read_timeout_s)
        discarded = 0
        while discarded <= 2 * self._limits.max_body_bytes:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            self._sock.settimeout(remaining)
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            discarded += len(data)


class _BodyTooLarge(Exception):
    pass


def _request(request: h11.Request, body: bytes) -> HttpRequest:
    return HttpRequest(
        method=request.method.decode("ascii"),
        target=request.target.decode("latin-1"),
        headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers],
        body=body,
    )


def _field(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()


def _phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def _quietly(action: Callable[..., object], *args: object) -> None:
    with contextlib.suppress(OSError):
        action(*args)
