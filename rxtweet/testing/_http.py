"""The fake server's own HTTP/1.1 plumbing: request parsing, chunk framing, the response body.

Deliberately separate from the client's code (:mod:`rxtweet.framing`, :mod:`rxtweet.transport`):
a test server that shared the client's chunk parser or framing would agree with the client's
bugs instead of catching them. So this module has its own request reader, its own chunked
request-body parser (:func:`read_chunked_body`) and its own chunk writer (:class:`_Body`).
"""

from __future__ import annotations

import contextlib
import http
import random
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from .values import Attempt

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_BATCH_BYTES = 64 * 1024
_BATCH_SECONDS = 0.005
_CRLF = b"\r\n"


class _ClientGone(Exception):
    """The client closed the connection (or the server is stopping)."""


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    path: str
    query: dict[str, list[str]]
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


class _Conn:
    __slots__ = ("number", "rbuf", "sock")

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.rbuf = bytearray()

    def recv_more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise _ClientGone
        self.rbuf += data

    def read_line(self, limit: int = 8192) -> bytes:
        while (idx := self.rbuf.find(_CRLF)) < 0:
            if len(self.rbuf) > limit:
                raise _BadRequest(400, "line too long")
            self.recv_more()
        line = bytes(self.rbuf[:idx])
        del self.rbuf[: idx + 2]
        return line

    def read_exact(self, n: int) -> bytes:
        while len(self.rbuf) < n:
            self.recv_more()
        data = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return data


def _reason(status: int) -> str:
    if status == 420:
        return "Enhance Your Calm"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _frame(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _rate_limit_headers(remaining: int) -> dict[str, str]:
    return {
        "x-rate-limit-limit": "50",
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(int(time.time()) + 900),
    }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _query_bool(query: Mapping[str, list[str]], name: str) -> bool:
    values = query.get(name)
    return values is not None and values[-1].strip().lower() in ("true", "1", "")


class _Body:
    """Writes the body of one 200 stream response: gzip, chunk framing, sent-accounting."""

    def __init__(
        self,
        sock: socket.socket,
        attempt: Attempt,
        on_sent: Callable[[int], None],
        stopping: threading.Event,
    ) -> None:
        self._sock = sock
        self._chunking = attempt.chunking
        self._rng = random.Random(attempt.seed)
        self._zip = zlib.compressobj(6, zlib.DEFLATED, 31) if attempt.gzip else None
        self._pieces: list[bytes] = []
        self._pending = 0
        self._produced = 0  # body bytes (after gzip, before chunk framing) produced
        self._written = 0  # ... and written to the socket
        self._marks: deque[tuple[int, bytes]] = deque()  # (end offset, message) not yet sent
        self._on_sent = on_sent
        self._stopping = stopping
        self._next_size = self._draw()
        self.last_write = time.monotonic()
        self._last_pump = self.last_write

    def _draw(self) -> int:
        r = self._rng.random()
        if r < 0.3:
            return self._rng.randint(1, 8)
        if r < 0.8:
            return self._rng.randint(9, 512)
        return self._rng.randint(513, 4096)

    def _encode(self, data: bytes) -> bytes:
        if self._zip is None:
            return data
        return self._zip.compress(data) + self._zip.flush(zlib.Z_SYNC_FLUSH)

    def _append(self, data: bytes) -> None:
        if data:
            self._pieces.append(data)
            self._pending += len(data)
            self._produced += len(data)

    def add(self, message: bytes, wire: bytes | None = None) -> None:
        """Queue ``wire`` (default: ``message``); ``message`` is what a re-queue puts back."""
        self._append(self._encode((message if wire is None else wire) + _CRLF))
        self._marks.append((self._produced, message))

    def maybe_pump(self) -> None:
        """Send what is ready without forcing out a partial random chunk."""
        if self._stopping.is_set():
            raise _ClientGone
        if self._chunking != "line":
            self.pump(final=False)
        elif self._pending >= _BATCH_BYTES or time.monotonic() - self._last_pump >= _BATCH_SECONDS:
            self.pump()

    def pump(self, *, final: bool = True) -> None:
        """Frame and send the pending bytes (all of them when ``final``)."""
        self._last_pump = time.monotonic()
        if not self._pieces:
            return
        if self._chunking == "line":
            # One chunk per message; back-to-back chunks share one sendall (same framing).
            wire = b"".join(_frame(p) for p in self._pieces)
            size = self._pending
            self._pieces.clear()
            self._pending = 0
            self._send(wire, size)
            return
        data = b"".join(self._pieces)
        self._pieces.clear()
        self._pending = 0
        pos = 0
        if self._chunking == "byte":
            for pos in range(len(data)):
                self._send(_frame(data[pos : pos + 1]), 1)
            return
        while len(data) - pos >= self._next_size:
            end = pos + self._next_size
            self._send(_frame(data[pos:end]), end - pos)
            pos = end
            self._next_size = self._draw()
        if pos < len(data):
            rest = data[pos:]
            if final:
                self._send(_frame(rest), len(rest))
            else:
                self._pieces.append(rest)
                self._pending = len(rest)

    def _send(self, wire: bytes, body_bytes: int) -> None:
        # Counted before the write: a client can read a message (and a test look at the
        # server's counts) before sendall returns here. A failed write takes the count back
        # and leaves the messages queued (unsent() re-queues them).
        written = self._written + body_bytes
        done = 0
        for end, _ in self._marks:
            if end > written:
                break
            done += 1
        if done:
            self._on_sent(done)
        try:
            self._sock.sendall(wire)
        except BaseException:
            if done:
                self._on_sent(-done)
            raise
        self._written = written
        self.last_write = time.monotonic()
        for _ in range(done):
            self._marks.popleft()

    def keepalive(self) -> None:
        self.pump()
        data = self._encode(_CRLF)
        self._produced += len(data)
        self._send(_frame(data), len(data))

    def finish(self) -> None:
        """The clean end: gzip trailer and the terminating chunk."""
        if self._zip is not None:
            self._append(self._zip.flush(zlib.Z_FINISH))
        self.pump()
        self._sock.sendall(b"0\r\n\r\n")

    def cut(self, message: bytes | None) -> None:
        """Send the first half of ``message`` (the caller then closes the socket)."""
        self.pump()
        if message is not None:
            part = (message + _CRLF)[: max(1, len(message) // 2)]
            self._append(self._encode(part))
            self.pump()

    def unsent(self) -> list[bytes]:
        """Messages added but not completely written (to be re-queued)."""
        items = [message for _, message in self._marks]
        self._marks.clear()
        return items


def read_request(conn: _Conn) -> _Request | None:
    """Read one request (head and body) from ``conn``; ``None`` when the client left first.

    Raises:
        _BadRequest: the request is malformed or too large (its status says which).
        _ClientGone: the client left in the middle of the request.
    """
    # Request head (tolerating stray CRLFs before the request line).
    while True:
        while conn.rbuf[:2] == _CRLF:
            del conn.rbuf[:2]
        idx = conn.rbuf.find(b"\r\n\r\n")
        if idx > _MAX_HEAD or (idx < 0 and len(conn.rbuf) > _MAX_HEAD):
            raise _BadRequest(431, "request header too large")
        if idx >= 0:
            break
        if len(conn.rbuf) > _MAX_HEAD:
            raise _BadRequest(431, "request header too large")
        try:
            conn.recv_more()
        except _ClientGone:
            return None
    head = bytes(conn.rbuf[:idx]).decode("latin-1")
    del conn.rbuf[: idx + 4]
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    if not (target.startswith("/") or target.startswith("http://")):
        raise _BadRequest(400, "malformed request target")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or line[0] in " \t":
            raise _BadRequest(400, "malformed header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    split = urlsplit(target)
    request = _Request(
        method=method.upper(),
        target=target,
        version=version,
        headers=headers,
        path=split.path or "/",
        query=parse_qs(split.query, keep_blank_values=True),
    )
    if headers.get("expect", "").lower() == "100-continue":
        conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        request.body = read_chunked_body(conn)
    elif "content-length" in headers:
        raw = headers["content-length"]
        if not raw.isdigit():
            raise _BadRequest(400, "invalid Content-Length")
        length = int(raw)
        if length > _MAX_BODY:
            raise _BadRequest(413, "request body too large")
        request.body = conn.read_exact(length)
    return request


def read_chunked_body(conn: _Conn) -> bytes:
    """Read a ``Transfer-Encoding: chunked`` request body (the server's own chunk parser).

    Raises:
        _BadRequest: invalid chunk size or framing, or a body over the size limit.
    """
    body = bytearray()
    while True:
        size_text = conn.read_line().split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _BadRequest(400, "invalid chunk size") from None
        if size == 0:
            while conn.read_line():  # trailers
                pass
            return bytes(body)
        if len(body) + size > _MAX_BODY:
            raise _BadRequest(413, "request body too large")
        body += conn.read_exact(size)
        if conn.read_exact(2) != _CRLF:
            raise _BadRequest(400, "invalid chunk framing")


def _drain_and_close(sock: socket.socket) -> None:
    """Half-close, then read what the client still sends, so the answer is not lost to an RST.

    (Closing a socket with unread received data makes the kernel send RST, and the client may
    then discard the error response it has not read yet.)
    """
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.2)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and sock.recv(65536):
            pass


def _merge(headers: dict[str, str], extra: Mapping[str, str] | None) -> None:
    """Add ``extra`` to ``headers``, replacing same-named entries (case-insensitively)."""
    for name, value in (extra or {}).items():
        for existing in [k for k in headers if k.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
