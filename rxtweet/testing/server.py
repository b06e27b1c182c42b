"""A real local HTTP server that imitates X's streaming endpoints, for tests and demos.

:class:`FakeStreamServer` listens on ``127.0.0.1`` (an ephemeral port) and speaks plain
HTTP/1.1 over real sockets, so a client under test runs its whole stack — connection pool,
chunked decoding, gzip, timeouts, reconnects — against it. What each *connection attempt*
receives is scripted with :class:`Attempt` values; every request is recorded as a
:class:`RecordedRequest`.

By default it answers as X does (see :class:`FakeStreamServer`): Tweet streams send only
the default fields plus what ``tweet.fields``/``expansions``/``*.fields`` ask for, and the
filtered stream sends only messages matching the rules added through the rules endpoint
(``matching_rules`` filled with their ids and tags) and answers 409 while there is none.
``fields="all"`` and ``match_rules=False`` send messages as given.

Example::

    import requests
    from rxtweet.testing import Attempt, FakeStreamServer

    tweets = [{"data": {"id": "1", "text": "hello"}}, {"data": {"id": "2", "text": "world"}}]
    with FakeStreamServer(messages=tweets, bearer_token="secret") as server:
        server.script(
            Attempt(status=503),                     # 1st attempt: overloaded
            Attempt(messages=1, ending="cut"),        # 2nd: one tweet, then a broken line
            Attempt(ending="close"),                  # 3rd: the rest, then a clean end
        )
        ...  # point the client at server.url + "/2/tweets/search/stream"
        [first, second, third] = server.wait_for_requests(3)
        assert server.sent == 2                       # each tweet was delivered exactly once

Wire format of a 200 stream response (what X sends, as far as it is documented):

* ``HTTP/1.1 200 OK``, ``transfer-encoding: chunked``, ``content-type: application/json``;
* every message is its bytes followed by ``\\r\\n``; a keep-alive is a bare ``\\r\\n`` in a chunk
  of its own, sent when nothing else was written for the keep-alive interval;
* chunk boundaries follow :attr:`Attempt.chunking`; with :attr:`Attempt.gzip` the body is one
  gzip stream, ``Z_SYNC_FLUSH``-ed after every message and keep-alive, and chunking applies to
  the compressed bytes.

What a client sees for each :attr:`Attempt.ending`:

* ``"close"``: the terminating ``0\\r\\n\\r\\n`` chunk (and the gzip trailer). The response is
  complete; the TCP connection stays open for the next request unless the client sent
  ``Connection: close``.
* ``"cut"``: complete chunks carrying the first half of the next message (no ``\\r\\n``), then
  a plain ``close()`` of the socket (FIN, no terminating chunk). ``requests``/``urllib3``
  report it as ``ChunkedEncodingError`` / ``ProtocolError`` (``InvalidChunkLength ... 0 bytes
  read``) after handing over the partial bytes. The cut message is *not* consumed: the next
  connection sends it whole, so a correct client sees every message exactly once.
* ``"stall"``: nothing more — no bytes, no keep-alives — while the socket stays open.
* ``"hold"``: keep-alives every keep-alive interval; messages added later with
  :meth:`FakeStreamServer.feed` (or re-queued by a cut) are delivered as they appear, as
  long as the attempt's ``messages`` budget is not used up.

Messages form one cursor shared by all connections. A message counts as sent
(:attr:`FakeStreamServer.sent`) once all its bytes were written to the socket. A message that
could not be written completely (the client went away, or the server stopped) is put back at
the front of the cursor.
"""

from __future__ import annotations

import contextlib
import email.utils
import hmac
import http
import itertools
import logging
import math
import os
import random
import re
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qs, urlsplit

import orjson

from rxtweet.http import redact_headers

__all__ = [
    "Attempt",
    "Chunking",
    "Ending",
    "FakeStreamServer",
    "FieldsMode",
    "MessageSource",
    "RecordedRequest",
    "default_error_body",
]

logger = logging.getLogger("rxtweet.testing")

Ending: TypeAlias = Literal["close", "cut", "stall", "hold"]
Chunking: TypeAlias = Literal["line", "random", "byte"]

#: What ``FakeStreamServer(messages=...)`` accepts: a ``str`` or path-like is a JSONL file;
#: anything else is an iterable whose items are ``dict`` (and other JSON values: serialised
#: compactly), ``str`` (UTF-8) or ``bytes`` (sent verbatim).
MessageSource: TypeAlias = "str | os.PathLike[str] | Iterable[Any]"

_ENDINGS = frozenset({"close", "cut", "stall", "hold"})
_CHUNKINGS = frozenset({"line", "random", "byte"})

PROBLEMS = "https://api.twitter.com/2/problems/"

#: v2 streaming paths the server answers with a scripted :class:`Attempt` (GET only).
V2_STREAM_PATHS = frozenset(
    {
        "/2/tweets/sample/stream",
        "/2/tweets/search/stream",
        "/2/tweets/sample10/stream",
        "/2/tweets/firehose/stream",
        "/2/tweets/firehose/stream/lang/en",
        "/2/tweets/firehose/stream/lang/ja",
        "/2/tweets/firehose/stream/lang/ko",
        "/2/tweets/firehose/stream/lang/pt",
        "/2/tweets/compliance/stream",
        "/2/users/compliance/stream",
        "/2/likes/compliance/stream",
        "/2/likes/firehose/stream",
        "/2/likes/sample10/stream",
        "/2/tweets/label/stream",
    }
)
#: v1.1 streaming paths (GET or POST with a form body).
V1_STREAM_PATHS = frozenset(
    {"/1.1/statuses/filter.json", "/1.1/statuses/sample.json", "/1.1/statuses/firehose.json"}
)
FILTERED_STREAM_PATH = "/2/tweets/search/stream"
RULES_PATH = "/2/tweets/search/stream/rules"

#: Longest rule value accepted by the rules endpoint (Essential/Elevated tiers).
MAX_RULE_LENGTH = 512

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_HOLD_POLL = 0.02  # how often a held connection with budget left looks for new messages
_BATCH_BYTES = 64 * 1024
_BATCH_SECONDS = 0.005
_RULE_ID_BASE = 1_745_000_000_000_000_100
_CRLF = b"\r\n"

_PROBLEM_JSON = "application/problem+json"
_JSON = "application/json"


# --------------------------------------------------------------------------- value types


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """What ONE connection attempt to a stream path receives.

    Attributes:
        status: the HTTP status. Anything but 200 is answered with ``body`` (default: X's
            problem document for that status) and ``Content-Length`` framing.
        body: the body of a non-200 answer: a mapping (sent as compact JSON), ``str`` or
            ``bytes`` (verbatim). With ``status=200`` a body replaces the stream: it is sent
            as a complete, non-streaming response (e.g. a captive-portal page).
        headers: extra response headers; they override defaults of the same name.
        messages: how many messages from the shared cursor this connection sends
            (``None``: until the source is exhausted).
        ending: what follows the messages: ``"close"`` (terminating chunk), ``"cut"`` (half
            of the next message, then an abrupt close; that message stays in the cursor),
            ``"stall"`` (silence, socket open) or ``"hold"`` (keep-alives until the client
            leaves). Applied also when the source runs dry before ``messages`` were sent.
        chunking: HTTP chunk boundaries: ``"line"`` (one chunk per message), ``"random"``
            (random sizes from ``seed``, independent of message boundaries) or ``"byte"``
            (one byte per chunk, so multi-byte UTF-8 characters are split).
        gzip: send ``content-encoding: gzip``; one gzip stream, sync-flushed per message.
        keepalive_interval: seconds of silence before a keep-alive (``None``: the server's).
        rate: messages per second (``None``: as fast as the client reads).
        delay: seconds to wait before sending the response headers.
        seed: seeds the random chunk sizes.
    """

    status: int = 200
    body: Mapping[str, Any] | bytes | str | None = None
    headers: Mapping[str, str] | None = None
    messages: int | None = None
    ending: Ending = "hold"
    chunking: Chunking = "line"
    gzip: bool = False
    keepalive_interval: float | None = None
    rate: float | None = None
    delay: float = 0.0
    seed: int = 0

    def __repr__(self) -> str:
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"Attempt({', '.join(changed)})"

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 999 or self.status in (101, 204, 304):
            raise ValueError(f"unsupported status {self.status}")
        if self.ending not in _ENDINGS:
            raise ValueError(f"ending must be one of {sorted(_ENDINGS)}, not {self.ending!r}")
        if self.chunking not in _CHUNKINGS:
            raise ValueError(f"chunking must be one of {sorted(_CHUNKINGS)}, not {self.chunking!r}")
        if self.messages is not None and self.messages < 0:
            raise ValueError("messages must be >= 0 or None")
        if self.keepalive_interval is not None and not self.keepalive_interval > 0:
            raise ValueError("keepalive_interval must be > 0 or None")
        if self.rate is not None and not self.rate > 0:
            raise ValueError("rate must be > 0 or None")
        if not self.delay >= 0:
            raise ValueError("delay must be >= 0")
        for name, value in (self.headers or {}).items():
            text = f"{name}{value}"
            if "\r" in text or "\n" in text or ":" in name or not name.strip():
                raise ValueError(f"invalid header {name!r}")
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                raise ValueError(f"header {name!r} is not latin-1") from None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One HTTP request the server received, and how it answered.

    ``headers`` has lower-case names (duplicates joined with ``", "``) and keeps credential
    values so tests can check them; ``repr()`` redacts them. ``started_at``/``ended_at`` are
    ``time.monotonic()`` values: when the request was fully received, and when the server was
    done with its response (complete, cut, or the client went away). ``status`` is 0 while
    undecided; ``attempt`` is the :class:`Attempt` a stream request consumed (``None`` for
    other requests and for stream requests refused before the script, e.g. by auth).
    ``connection`` numbers the TCP connection (1, 2, ...): equal values mean a reused
    connection.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    started_at: float
    ended_at: float | None = None
    status: int = 0
    attempt: Attempt | None = None
    connection: int = 0

    def __repr__(self) -> str:
        return (
            f"RecordedRequest({self.method} {self.path} query={self.query!r} "
            f"headers={redact_headers(self.headers)!r} body=<{len(self.body)} bytes> "
            f"status={self.status} connection={self.connection} attempt={self.attempt!r})"
        )

    def header(self, name: str, default: str | None = None) -> str | None:
        """The value of header ``name`` (case-insensitive)."""
        return self.headers.get(name.lower(), default)

    @property
    def form(self) -> dict[str, list[str]]:
        """The body parsed as ``application/x-www-form-urlencoded`` (v1.1 POSTs)."""
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body)


# --------------------------------------------------------------------------- message cursor


def _encode(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    if isinstance(item, str):
        return item.encode("utf-8")
    return orjson.dumps(item)


def _jsonl_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\n")
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.strip():
                yield line


class _Cursor:
    """The global message cursor: re-queued messages first, then the source, then fed ones."""

    def __init__(self, source: MessageSource) -> None:
        self._lock = threading.Lock()
        self._front: deque[bytes] = deque()
        self._fed: deque[bytes] = deque()
        iterable: Iterable[Any]
        if isinstance(source, Mapping | bytes | bytearray):
            raise TypeError(
                "messages must be a list/iterable of messages or a JSONL path, "
                f"not a single {type(source).__name__}"
            )
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(f"no JSONL file at {path}")
            iterable = _jsonl_lines(path)
        else:
            iterable = source
        self._source: Iterator[Any] | None = iter(iterable)

    def take(self) -> bytes | None:
        with self._lock:
            return self._next(consume=True)

    def peek(self) -> bytes | None:
        with self._lock:
            return self._next(consume=False)

    def peek_shaped(self, shape: Callable[[bytes], bytes | None]) -> bytes | None:
        """The next message as ``shape`` makes it, dropping those it turns into ``None``."""
        with self._lock:
            while (message := self._next(consume=False)) is not None:
                wire = shape(message)
                if wire is not None:
                    return wire
                self._front.popleft()
            return None

    def _next(self, *, consume: bool) -> bytes | None:
        if not self._front:
            item = self._pull()
            if item is None:
                return None
            self._front.append(item)
        return self._front.popleft() if consume else self._front[0]

    def _pull(self) -> bytes | None:
        while self._source is not None:
            try:
                item = next(self._source)
            except StopIteration:
                self._source = None
                break
            return _encode(item)
        return self._fed.popleft() if self._fed else None

    def push_front(self, items: list[bytes]) -> None:
        if items:
            with self._lock:
                self._front.extendleft(reversed(items))

    def feed(self, items: Iterable[Any]) -> None:
        encoded = [_encode(item) for item in items]
        with self._lock:
            self._fed.extend(encoded)

    def close(self) -> None:
        with self._lock:
            source, self._source = self._source, None
        close = getattr(source, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


# --------------------------------------------------------------------------- HTTP plumbing


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


def _problem(status: int, title: str | None = None, detail: str | None = None) -> bytes:
    phrase = _reason(status)
    doc = {"title": title or phrase, "type": "about:blank", "status": status}
    doc["detail"] = detail or phrase
    return orjson.dumps(doc)


def _invalid_request(message: str, parameters: Mapping[str, Any] | None = None) -> bytes:
    return orjson.dumps(
        {
            "errors": [{"parameters": dict(parameters or {}), "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        }
    )


_TOO_MANY_CONNECTIONS = orjson.dumps(
    {
        "title": "ConnectionException",
        "detail": "This stream is currently at the maximum allowed connection limit.",
        "connection_issue": "TooManyConnections",
        "type": PROBLEMS + "streaming-connection",
    }
)
_NO_RULES = orjson.dumps(
    {
        "title": "ConnectionException",
        "detail": "You must define rules using the POST /2/tweets/search/stream/rules endpoint "
        "before connecting to filtered stream.",
        "connection_issue": "RuleConfigurationIssue",
        "type": PROBLEMS + "streaming-connection",
    }
)
_CLIENT_FORBIDDEN = orjson.dumps(
    {
        "client_id": "10000001",
        "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use "
        "keys and tokens from a Twitter developer App that is attached to a Project. You can "
        "create a project via the developer portal.",
        "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
        "title": "Client Forbidden",
        "required_enrollment": "Appropriate Level of API Access",
        "reason": "client-not-enrolled",
        "type": PROBLEMS + "client-forbidden",
    }
)
_V1_UNAUTHORIZED = orjson.dumps(
    {"errors": [{"code": 32, "message": "Could not authenticate you."}]}
)


def default_error_body(status: int, *, v1: bool = False) -> tuple[bytes, str]:
    """X's body for an error ``status``, and its content type.

    401 ``about:blank`` (v2) or code 32 (v1.1); 400 ``invalid-request``; 403
    ``client-forbidden``; 409 ``RuleConfigurationIssue``; 429 ``TooManyConnections``;
    420 the v1.1 text ``Exceeded connection limit for user``; anything else an RFC 7807
    ``about:blank`` problem with the status phrase as title and detail.
    """
    if status == 401 and v1:
        return _V1_UNAUTHORIZED, _JSON
    if status == 400:
        return _invalid_request("Invalid request"), _PROBLEM_JSON
    if status == 403:
        return _CLIENT_FORBIDDEN, _PROBLEM_JSON
    if status == 409:
        return _NO_RULES, _PROBLEM_JSON
    if status == 420:
        return b"Exceeded connection limit for user", "text/plain; charset=utf-8"
    if status == 429:
        return _TOO_MANY_CONNECTIONS, _PROBLEM_JSON
    return _problem(status), _PROBLEM_JSON


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


# --------------------------------------------------------------------------- response body


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
        self._sock.sendall(wire)
        self._written += body_bytes
        self.last_write = time.monotonic()
        done = 0
        while self._marks and self._marks[0][0] <= self._written:
            self._marks.popleft()
            done += 1
        if done:
            self._on_sent(done)

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


# --------------------------------------------------------------------------- honest answers
#
# By default the server answers what X would, for what the request asked: the filtered
# stream delivers only messages matching the rules added through the rules endpoint, with
# their real ids and tags in ``matching_rules``, and every Tweet stream trims each message to
# X's default fields plus the requested ``tweet.fields``/``expansions``/``*.fields``.

#: Tweet streams whose messages are ``{"data": Tweet, "includes": ..., ...}``: the ones the
#: field trimming applies to (compliance, likes and label streams are sent verbatim).
TWEET_STREAM_PATHS = frozenset(
    {
        "/2/tweets/sample/stream",
        "/2/tweets/search/stream",
        "/2/tweets/sample10/stream",
        "/2/tweets/firehose/stream",
        "/2/tweets/firehose/stream/lang/en",
        "/2/tweets/firehose/stream/lang/ja",
        "/2/tweets/firehose/stream/lang/ko",
        "/2/tweets/firehose/stream/lang/pt",
    }
)

FieldsMode: TypeAlias = Literal["requested", "all"]
_FIELDS_MODES = frozenset({"requested", "all"})

#: X's default fields of each object (sent whatever the request asked).
_TWEET_DEFAULT = frozenset({"id", "text", "edit_history_tweet_ids"})
_USER_DEFAULT = frozenset({"id", "name", "username"})
_MEDIA_DEFAULT = frozenset({"media_key", "type"})
_PLACE_DEFAULT = frozenset({"id", "full_name"})
_POLL_DEFAULT = frozenset({"id", "options"})
#: The Tweet field an expansion needs (X sends it with the expansion).
_EXPANSION_FIELD = {
    "author_id": "author_id",
    "in_reply_to_user_id": "in_reply_to_user_id",
    "referenced_tweets.id": "referenced_tweets",
    "referenced_tweets.id.author_id": "referenced_tweets",
    "attachments.media_keys": "attachments",
    "attachments.poll_ids": "attachments",
    "geo.place_id": "geo",
    "entities.mentions.username": "entities",
}
#: Rule operators X has that this server does not evaluate (see :class:`FakeStreamServer`).
_UNSUPPORTED_OPERATORS = frozenset(
    {
        "from",
        "to",
        "url",
        "retweets_of",
        "context",
        "entity",
        "conversation_id",
        "bio",
        "bio_name",
        "bio_location",
        "place",
        "place_country",
        "point_radius",
        "bounding_box",
        "sample",
        "followers_count",
        "tweets_count",
        "following_count",
        "listed_count",
        "url_title",
        "url_description",
        "url_contains",
        "source",
        "in_reply_to_tweet_id",
        "retweets_of_tweet_id",
        "quotes_of_tweet_id",
        "embedding",
    }
)
_HAS = frozenset({"images", "media", "links", "hashtags", "mentions"})
_IS = {"retweet": "retweeted", "reply": "replied_to", "quote": "quoted"}
_RULE_TOKEN = re.compile(r'\s*(?:(-?)"((?:[^"\\]|\\.)*)"(?:~\d+)?|(\()|(\))|(-?)([^\s()"]+))')
_WORD = re.compile(r"\w+")


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (messages may be any shape)."""
    return value if isinstance(value, dict) else {}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _unspaced(text: str) -> bool:
    """Whether ``text`` has a script written without spaces (CJK, Thai...): substring match."""
    return any(
        "\u0e00" <= ch <= "\u0e7f" or "\u2e80" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"
        for ch in text
    )


def _contains_words(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    if n == 0:
        return False
    first = needle[0]
    return any(
        haystack[i] == first and haystack[i : i + n] == needle for i in range(len(haystack) - n + 1)
    )


@dataclass(frozen=True, slots=True)
class _Tweet:
    """What a rule is matched against: one Tweet message, with everything X knows of it."""

    text: str
    words: list[str]
    lang: str
    hashtags: frozenset[str]
    mentions: frozenset[str]
    has: frozenset[str]
    kinds: frozenset[str]

    @staticmethod
    def of(doc: Mapping[str, Any]) -> _Tweet:
        data = doc["data"]
        text = data.get("text") if isinstance(data.get("text"), str) else ""
        entities = _obj(data.get("entities"))
        hashtags = {
            str(h.get("tag", "")).casefold()
            for h in entities.get("hashtags") or ()
            if isinstance(h, dict)
        }
        hashtags.update(m.casefold() for m in re.findall(r"(?<!\w)#(\w+)", text))
        mentions = {
            str(m.get("username", "")).casefold()
            for m in entities.get("mentions") or ()
            if isinstance(m, dict)
        }
        mentions.update(m.casefold() for m in re.findall(r"(?<!\w)@(\w+)", text))
        attachments = _obj(data.get("attachments"))
        media_keys = set(attachments.get("media_keys") or ())
        includes = _obj(doc.get("includes"))
        media_types = {
            m.get("type")
            for m in includes.get("media") or ()
            if isinstance(m, dict) and m.get("media_key") in media_keys
        }
        has: set[str] = set()
        if media_keys:
            has.add("media")
        if "photo" in media_types:
            has.add("images")
        if entities.get("urls") or "https://t.co/" in text or "http://" in text:
            has.add("links")
        if hashtags:
            has.add("hashtags")
        if mentions:
            has.add("mentions")
        kinds = {
            str(r.get("type")) for r in data.get("referenced_tweets") or () if isinstance(r, dict)
        }
        return _Tweet(
            text=text.casefold(),
            words=_words(text),
            lang=str(data.get("lang") or "").casefold(),
            hashtags=frozenset(hashtags),
            mentions=frozenset(mentions),
            has=frozenset(has),
            kinds=frozenset(kinds),
        )


_Test: TypeAlias = Callable[[_Tweet], bool]


class _RuleSyntaxError(ValueError):
    pass


class _RuleParser:
    """Compiles a rule value into a predicate over :class:`_Tweet`.

    Grammar (X's, restricted): ``or := and ("OR" and)*``; ``and := unary+`` (a space is AND,
    which binds tighter than OR); ``unary := "-"? atom``; ``atom := "(" or ")" | "phrase" |
    term``. ``unsupported`` collects the operators this server cannot evaluate.
    """

    def __init__(self, value: str) -> None:
        self.tokens: list[tuple[str, str, bool]] = []  # (kind, text, negated)
        self.pos = 0
        self.unsupported: list[str] = []
        at = 0
        while at < len(value):
            if value[at:].strip() == "":
                break
            match = _RULE_TOKEN.match(value, at)
            if match is None or match.end() == at:
                raise _RuleSyntaxError(f"Unexpected character (at position {at + 1})")
            neg_phrase, phrase, opening, closing, neg_term, term = match.groups()
            if phrase is not None:
                self.tokens.append(("phrase", phrase.replace('\\"', '"'), bool(neg_phrase)))
            elif opening:
                self.tokens.append(("(", "(", False))
            elif closing:
                self.tokens.append((")", ")", False))
            elif term == "OR" and not neg_term:
                self.tokens.append(("OR", "OR", False))
            else:
                self.tokens.append(("term", term, bool(neg_term)))
            at = match.end()

    def parse(self) -> tuple[_Test, bool]:
        """The predicate, and whether the rule has a positive (non-negated) clause."""
        if not self.tokens:
            raise _RuleSyntaxError(
                "Rules must contain at least one positive, non-stopword clause (at position 1)"
            )
        test, positive = self._or()
        if self.pos != len(self.tokens):
            raise _RuleSyntaxError("Unbalanced parentheses or a misplaced operator")
        return test, positive

    def _peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def _or(self) -> tuple[_Test, bool]:
        branches = [self._and()]
        while self._peek() == "OR":
            self.pos += 1
            branches.append(self._and())
        if len(branches) == 1:
            return branches[0]
        tests = [t for t, _ in branches]
        return (lambda tw: any(t(tw) for t in tests)), all(p for _, p in branches)

    def _and(self) -> tuple[_Test, bool]:
        parts: list[tuple[_Test, bool]] = []
        while self._peek() in ("term", "phrase", "("):
            parts.append(self._unary())
        if not parts:
            raise _RuleSyntaxError("Expected a clause (an empty group or a dangling OR)")
        if len(parts) == 1:
            return parts[0]
        tests = [t for t, _ in parts]
        return (lambda tw: all(t(tw) for t in tests)), any(p for _, p in parts)

    def _unary(self) -> tuple[_Test, bool]:
        kind, text, negated = self.tokens[self.pos]
        self.pos += 1
        if kind == "(":
            test, positive = self._or()
            if self._peek() != ")":
                raise _RuleSyntaxError("Unbalanced parentheses")
            self.pos += 1
            return test, positive
        if kind == "term" and text == "-":
            raise _RuleSyntaxError("Negation needs a term: no space after '-'")
        test = self._phrase(text) if kind == "phrase" else self._term(text)
        if negated:
            return (lambda tw: not test(tw)), False
        return test, True

    @staticmethod
    def _phrase(text: str) -> _Test:
        if _unspaced(text):
            needle = text.casefold()
            return lambda tw: needle in tw.text
        words = _words(text)
        return lambda tw: _contains_words(tw.words, words)

    def _term(self, text: str) -> _Test:
        operator, colon, argument = text.partition(":")
        name = operator.casefold()
        if colon and argument:
            arg = argument.casefold()
            if name == "lang":
                return lambda tw: tw.lang == arg
            if name == "has" and arg in _HAS:
                return lambda tw: arg in tw.has
            if name == "is" and arg in _IS:
                kind = _IS[arg]
                return lambda tw: kind in tw.kinds
            if name in _UNSUPPORTED_OPERATORS or name in ("has", "is"):
                self.unsupported.append(text)
                return lambda tw: False
        if text.startswith("#") and len(text) > 1:
            tag = text[1:].casefold()
            return lambda tw: tag in tw.hashtags
        if text.startswith("@") and len(text) > 1:
            user = text[1:].casefold()
            return lambda tw: user in tw.mentions
        if text.startswith(("$", "~")):
            self.unsupported.append(text)
            return lambda tw: False
        return self._phrase(text)


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    id: str
    tag: str | None
    test: _Test


def _compile_rule(value: str) -> tuple[_Test | None, list[str], list[str]]:
    """``(predicate, problems, unsupported operators)``; a predicate only without problems."""
    parser: _RuleParser | None = None
    try:
        parser = _RuleParser(value)
        test, positive = parser.parse()
    except _RuleSyntaxError as exc:
        return None, [f"{exc}"], parser.unsupported if parser else []
    if not positive:
        return None, ["Rules must contain a non-negation term (at position 1)"], []
    return test, [], parser.unsupported


def _request_set(query: Mapping[str, list[str]], name: str) -> frozenset[str]:
    return frozenset(
        part.strip() for value in query.get(name, ()) for part in value.split(",") if part.strip()
    )


def _pick(obj: Any, default: frozenset[str], asked: frozenset[str]) -> Any:
    if not isinstance(obj, dict):
        return obj
    return {k: v for k, v in obj.items() if k in default or k in asked}


class _Shaper:
    """Turns one queued message into what ONE stream request receives (``None``: nothing).

    Messages that are not a JSON object with a ``data`` object (errors, malformed lines,
    bytes) pass verbatim, so fault injection keeps working.
    """

    def __init__(
        self,
        path: str,
        query: Mapping[str, list[str]],
        *,
        fields: FieldsMode,
        match_rules: bool,
        rules: Callable[[], list[_CompiledRule]],
        on_unmatched: Callable[[], None],
    ) -> None:
        tweets = path in TWEET_STREAM_PATHS
        self.trim = fields == "requested" and tweets
        self.match = match_rules and path == FILTERED_STREAM_PATH
        self.strip_rules = self.trim and path != FILTERED_STREAM_PATH
        self.active = self.trim or self.match or self.strip_rules
        self._rules = rules
        self._on_unmatched = on_unmatched
        self.expansions = _request_set(query, "expansions")
        implied = {_EXPANSION_FIELD[e] for e in self.expansions if e in _EXPANSION_FIELD}
        self.tweet_fields = _request_set(query, "tweet.fields") | implied
        self.included_tweet_fields = _request_set(query, "tweet.fields")
        self.user_fields = _request_set(query, "user.fields")
        self.media_fields = _request_set(query, "media.fields")
        self.place_fields = _request_set(query, "place.fields")
        self.poll_fields = _request_set(query, "poll.fields")

    def shape(self, message: bytes) -> bytes | None:
        if not self.active or message[:1] != b"{":
            return message
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            return message
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
            return message
        shaped = dict(doc)  # top-level keys are replaced, nested objects never mutated
        if self.match:
            tweet = _Tweet.of(doc)
            matched = [rule for rule in self._rules() if rule.test(tweet)]
            if not matched:
                self._on_unmatched()
                return None
            shaped["matching_rules"] = [{"id": rule.id, "tag": rule.tag} for rule in matched]
        elif self.strip_rules:
            shaped.pop("matching_rules", None)
        if self.trim:
            self._trim(shaped)
        # Unchanged messages keep their exact bytes (spacing, escapes, number formats).
        return message if shaped == doc else orjson.dumps(shaped)

    def _trim(self, doc: dict[str, Any]) -> None:
        data: dict[str, Any] = doc["data"]
        includes = doc.get("includes")
        doc["data"] = _pick(data, _TWEET_DEFAULT, self.tweet_fields)
        if not isinstance(includes, dict):
            doc.pop("includes", None)
            return
        exp = self.expansions
        shaped: dict[str, Any] = {}
        tweets = [t for t in includes.get("tweets") or () if isinstance(t, dict)]
        if "referenced_tweets.id" in exp and tweets:
            extra = (
                frozenset({"author_id"}) if "referenced_tweets.id.author_id" in exp else frozenset()
            )
            asked = self.included_tweet_fields | extra
            shaped["tweets"] = [_pick(t, _TWEET_DEFAULT, asked) for t in tweets]
        user_ids: set[str] = set()
        usernames: set[str] = set()
        if "author_id" in exp:
            user_ids.add(str(data.get("author_id")))
        if "in_reply_to_user_id" in exp:
            user_ids.add(str(data.get("in_reply_to_user_id")))
        if "referenced_tweets.id.author_id" in exp:
            user_ids.update(str(t.get("author_id")) for t in tweets)
        if "entities.mentions.username" in exp:
            entities = _obj(data.get("entities"))
            for mention in entities.get("mentions") or ():
                if isinstance(mention, dict):
                    usernames.add(str(mention.get("username", "")).casefold())
        users = [
            _pick(u, _USER_DEFAULT, self.user_fields)
            for u in includes.get("users") or ()
            if isinstance(u, dict)
            and (str(u.get("id")) in user_ids or str(u.get("username", "")).casefold() in usernames)
        ]
        if users:
            shaped["users"] = users
        for key, expansion, default, asked in (
            ("media", "attachments.media_keys", _MEDIA_DEFAULT, self.media_fields),
            ("polls", "attachments.poll_ids", _POLL_DEFAULT, self.poll_fields),
            ("places", "geo.place_id", _PLACE_DEFAULT, self.place_fields),
        ):
            if expansion in exp and includes.get(key):
                shaped[key] = [_pick(o, default, asked) for o in includes[key]]
        for key, value in includes.items():
            if key not in ("tweets", "users", "media", "polls", "places"):
                shaped[key] = value  # an include this server does not know: left as it is
        if shaped:
            doc["includes"] = shaped
        else:
            doc.pop("includes", None)


# --------------------------------------------------------------------------- the server


class FakeStreamServer:
    """A local imitation of X's streaming endpoints, over real HTTP/1.1 sockets.

    Args:
        messages: the message source shared by all connections: a list or any iterable
            (possibly an infinite generator) of ``dict`` (compact JSON), ``str`` or ``bytes``
            (verbatim, so malformed lines can be sent); or a ``str``/path-like naming a JSONL
            file (each non-empty line is a message, its own line ending stripped).
            Generators are pulled lazily under a lock and must not block indefinitely.
        bearer_token: when set, every ``/2/`` request (streams, rules, unknown paths) must
            carry ``Authorization: Bearer <token>``; otherwise 401, without consuming a
            scripted :class:`Attempt`. v1.1 paths are left to ``verify_v1``.
        keepalive_interval: seconds of silence before a ``\\r\\n`` keep-alive (X: 20 s);
            ``None`` disables keep-alives. An :class:`Attempt` may override it.
        default: the :class:`Attempt` used when the script is empty (default ``Attempt()``:
            stream every message, then hold with keep-alives).
        verify_v1: called with the :class:`RecordedRequest` (``status`` 0) of every v1.1
            stream request; ``False`` answers 401 (``{"errors":[{"code":32,...}]}``). If it
            raises, the server logs the exception and answers 500.
        fields: ``"requested"`` (default, as X): every message on a Tweet stream (sample,
            filtered, sample10, firehose) is trimmed to X's default fields (``id``,
            ``text``, ``edit_history_tweet_ids``; users ``id``, ``name``, ``username``; media
            ``media_key``, ``type``; places ``id``, ``full_name``; polls ``id``, ``options``)
            plus what the request's ``tweet.fields``, ``expansions``, ``user.fields``,
            ``media.fields``, ``place.fields`` and ``poll.fields`` ask for; ``includes``
            objects are sent only for the requested expansions, and other streams than the
            filtered one drop the source's ``matching_rules``. ``"all"``: messages are sent
            as given (the old behaviour: every field, asked for or not).
        match_rules: ``True`` (default, as X): the filtered stream sends only messages that
            match at least one current rule, with ``matching_rules`` set to those rules'
            ``id`` and ``tag`` (``null`` when the rule has none). ``False``: messages are
            sent as given, ``matching_rules`` included. See "Rule matching" below.
        require_rules: answer ``GET /2/tweets/search/stream`` with X's 409
            ``RuleConfigurationIssue`` while no rule exists (``None``, the default: the same
            as ``match_rules``). A scripted :class:`Attempt` with a non-200 ``status`` or a
            ``body`` is still served as scripted; a scripted plain 200 is not consumed.
        rules: rules to start with, as ``{"value": ..., "tag": ...}`` mappings.
        host, port: where to listen (default: ``127.0.0.1`` and an ephemeral port).

    Rule matching (``match_rules=True``) evaluates a documented subset of X's rule syntax,
    case-insensitively, against the whole message (whatever fields the client asked for):
    bare keywords (a whole-word match; ``cat`` does not match ``cats``; in scripts written
    without spaces, such as Japanese or Thai, a substring match), ``"quoted phrases"``,
    ``#hashtag``, ``@mention``, ``lang:xx``, ``has:images`` (a ``photo`` in
    ``includes.media``), ``has:media``, ``has:links``, ``has:hashtags``, ``has:mentions``,
    ``is:retweet``/``is:reply``/``is:quote``, ``-`` negation, ``OR`` (a space is AND and
    binds tighter) and parentheses. Other operators X knows (``from:``, ``url:``,
    ``point_radius:``, ``sample:``, other ``has:``/``is:`` ...) are accepted by the rules
    endpoint, as X accepts them, but never match (negated: always match), and a warning is
    logged: a test depending on them fails visibly instead of passing by accident. Rules
    with unbalanced parentheses, a lone ``-``, or without a positive clause are rejected
    as X does
    (``invalid-rules`` in the answer's ``errors``). Changes apply at once, also to open
    connections (X: within about 20 s). A message matching no rule is consumed from the
    cursor and counted in :attr:`unmatched`, not sent.

    Usable as a context manager, or with :meth:`start` / :meth:`stop`. A server runs once:
    it cannot be restarted after :meth:`stop`.

    Example::

        with FakeStreamServer(messages="tests/data/sample.jsonl", keepalive_interval=0.05,
                              default=Attempt(ending="close")) as server:
            response = requests.get(server.url + "/2/tweets/sample/stream", stream=True)
            lines = [line for line in response.iter_lines() if line]
            assert server.requests[0].path == "/2/tweets/sample/stream"

    Besides streams, the server answers the rules endpoint ``/2/tweets/search/stream/rules``
    (GET with optional ``ids``; POST ``add``/``delete``, ``dry_run``, ``delete_all``) from an
    in-memory rule set, and 404/405/400 problems for anything else.
    """

    def __init__(
        self,
        messages: MessageSource = (),
        *,
        bearer_token: str | None = None,
        keepalive_interval: float | None = 20.0,
        default: Attempt | None = None,
        verify_v1: Callable[[RecordedRequest], bool] | None = None,
        fields: FieldsMode = "requested",
        match_rules: bool = True,
        require_rules: bool | None = None,
        rules: Iterable[Mapping[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if keepalive_interval is not None and not keepalive_interval > 0:
            raise ValueError("keepalive_interval must be > 0 or None")
        if default is not None and not isinstance(default, Attempt):
            raise TypeError("default must be an Attempt")
        self._cursor = _Cursor(messages)
        self._bearer = bearer_token
        self._keepalive_interval = keepalive_interval
        self._default = default if default is not None else Attempt()
        self._verify_v1 = verify_v1
        if fields not in _FIELDS_MODES:
            raise ValueError(f"fields must be one of {sorted(_FIELDS_MODES)}, not {fields!r}")
        self._fields: FieldsMode = fields
        self._match_rules = bool(match_rules)
        self._require_rules = self._match_rules if require_rules is None else require_rules
        self._host = host
        self._port = port

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._state: Literal["new", "running", "stopped"] = "new"
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._conns: dict[int, tuple[threading.Thread, socket.socket]] = {}
        self._conn_numbers = itertools.count(1)
        self._address: tuple[str, int] | None = None

        self._script: deque[Attempt] = deque()
        self._records: list[RecordedRequest] = []
        self._stream_count = 0
        self._sent = 0
        self._unmatched = 0
        self._rules: dict[str, dict[str, str]] = {}
        self._compiled: dict[str, _CompiledRule] = {}
        self._rule_ids = itertools.count(_RULE_ID_BASE)
        for rule in rules or ():
            value = str(rule["value"])
            tag = rule.get("tag")
            problems = _rule_problems(value)
            if problems:
                raise ValueError(f"invalid rule {value!r}: {'; '.join(problems)}")
            self._store_rule(value, None if tag is None else str(tag))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeStreamServer:
        """Bind, listen and start accepting connections. Returns ``self``."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"FakeStreamServer cannot start: it is {self._state}")
            self._state = "running"
        try:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.bind((self._host, self._port))
                listener.listen(128)
                listener.settimeout(0.1)
            except BaseException:
                listener.close()
                raise
        except BaseException:
            with self._lock:
                self._state = "stopped"
            self._cursor.close()
            raise
        self._listener = listener
        host, port = listener.getsockname()[:2]
        self._address = (str(host), int(port))
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"rxtweet-fake-server-{port}-accept", daemon=True
        )
        self._acceptor.start()
        logger.debug("fake stream server listening on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, shut down every open connection and join every thread.

        Idempotent; a server never started is just marked stopped. Threads still alive after
        ``timeout`` seconds are reported with ``logger.error``.
        """
        with self._lock:
            if self._state == "stopped":
                return
            was_running = self._state == "running"
            self._state = "stopped"
        self._stopping.set()
        if not was_running:
            self._cursor.close()
            return
        deadline = time.monotonic() + timeout
        listener = self._listener
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
        current = threading.current_thread()
        if self._acceptor is not None and self._acceptor is not current:
            self._acceptor.join(max(0.0, deadline - time.monotonic()))
        if listener is not None:
            listener.close()
        with self._lock:
            conns = list(self._conns.values())
            for _, sock in conns:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        stuck: list[str] = []
        for thread, _ in conns:
            if thread is current:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                stuck.append(thread.name)
        if self._acceptor is not None and self._acceptor.is_alive():
            stuck.append(self._acceptor.name)
        with self._lock:
            for _, sock in conns:
                sock.close()
            self._conns.clear()
            self._changed.notify_all()
        self._cursor.close()
        if stuck:
            logger.error("fake stream server: threads did not stop within %gs: %s", timeout, stuck)
        else:
            logger.debug("fake stream server on %s stopped", self.url)

    def __enter__(self) -> FakeStreamServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ public state

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (available once started)."""
        if self._address is None:
            raise RuntimeError("FakeStreamServer is not started")
        return f"http://{self._address[0]}:{self._address[1]}"

    @property
    def port(self) -> int:
        """The TCP port (available once started)."""
        if self._address is None:
            raise RuntimeError("FakeStreamServer is not started")
        return self._address[1]

    def script(self, *attempts: Attempt) -> None:
        """Queue per-connection-attempt behaviour (appended to the FIFO)."""
        for attempt in attempts:
            if not isinstance(attempt, Attempt):
                raise TypeError(f"expected Attempt, got {type(attempt).__name__}")
        with self._lock:
            self._script.extend(attempts)

    @property
    def scripted(self) -> tuple[Attempt, ...]:
        """The scripted attempts not consumed yet."""
        with self._lock:
            return tuple(self._script)

    def feed(self, *messages: Any) -> None:
        """Append messages to the source (after it is exhausted); held connections get them."""
        self._cursor.feed(messages)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._records)

    @property
    def stream_requests(self) -> list[RecordedRequest]:
        """The requests to stream paths (v2 and v1.1), in arrival order (a copy)."""
        with self._lock:
            return [r for r in self._records if _is_stream_path(r.path)]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` stream requests arrived; return the stream requests.

        Raises:
            TimeoutError: fewer than ``n`` arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._stream_count < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._state == "stopped":
                    raise TimeoutError(
                        f"{self._stream_count} of {n} stream requests arrived within {timeout}s"
                    )
                self._changed.wait(remaining)
            return [r for r in self._records if _is_stream_path(r.path)]

    @property
    def sent(self) -> int:
        """How many messages were completely written to a socket so far."""
        with self._lock:
            return self._sent

    @property
    def unmatched(self) -> int:
        """How many messages the filtered stream consumed without sending (no rule matched)."""
        with self._lock:
            return self._unmatched

    @property
    def rules(self) -> dict[str, dict[str, str]]:
        """The current filtered-stream rules: id -> ``{"id", "value", "tag"?}`` (a copy)."""
        with self._lock:
            return {rule_id: dict(rule) for rule_id, rule in self._rules.items()}

    def __repr__(self) -> str:
        where = self.url if self._address else "unbound"
        return f"<FakeStreamServer {where} {self._state}>"

    # ------------------------------------------------------------------ accepting

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                sock, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                logger.warning("fake stream server: accept failed: %s", exc)
                self._stopping.wait(0.05)
                continue
            sock.settimeout(None)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    break
                for number in [n for n, (t, _) in self._conns.items() if not t.is_alive()]:
                    del self._conns[number]
                number = next(self._conn_numbers)
                thread = threading.Thread(
                    target=self._serve_connection,
                    args=(sock, number),
                    name=f"rxtweet-fake-server-{self.port}-conn-{number}",
                    daemon=True,
                )
                self._conns[number] = (thread, sock)
                thread.start()
            logger.debug("connection %d from %s:%s", number, peer[0], peer[1])

    def _close_socket(self, sock: socket.socket) -> None:
        with self._lock:  # never races stop()'s shutdown of the same descriptor
            sock.close()

    def _serve_connection(self, sock: socket.socket, number: int) -> None:
        conn = _Conn(sock, number)
        try:
            while not self._stopping.is_set():
                try:
                    request = self._read_request(conn)
                except _BadRequest as exc:
                    logger.debug("connection %d: bad request: %s", number, exc.message)
                    self._send_simple(
                        conn,
                        exc.status,
                        _invalid_request(exc.message),
                        _PROBLEM_JSON,
                        keep_alive=False,
                    )
                    _drain_and_close(sock)
                    break
                if request is None or not self._handle(conn, request):
                    break
        except (_ClientGone, OSError) as exc:
            logger.debug("connection %d ended: %r", number, exc)
        except Exception:
            logger.exception("fake stream server: connection %d failed", number)
        finally:
            self._close_socket(sock)

    # ------------------------------------------------------------------ requests

    def _read_request(self, conn: _Conn) -> _Request | None:
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
            request.body = self._read_chunked_body(conn)
        elif "content-length" in headers:
            raw = headers["content-length"]
            if not raw.isdigit():
                raise _BadRequest(400, "invalid Content-Length")
            length = int(raw)
            if length > _MAX_BODY:
                raise _BadRequest(413, "request body too large")
            request.body = conn.read_exact(length)
        return request

    def _read_chunked_body(self, conn: _Conn) -> bytes:
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

    def _record(self, conn: _Conn, request: _Request) -> int:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=request.body,
            started_at=time.monotonic(),
            connection=conn.number,
        )
        with self._changed:
            self._records.append(record)
            if _is_stream_path(request.path):
                self._stream_count += 1
            self._changed.notify_all()
            return len(self._records) - 1

    def _update(self, index: int, **changes: Any) -> None:
        with self._lock:
            self._records[index] = replace(self._records[index], **changes)

    def _handle(self, conn: _Conn, request: _Request) -> bool:
        """Answer one request; return whether the connection may serve another."""
        index = self._record(conn, request)
        # Paths and query *names* only: values (and headers) may carry credentials.
        logger.debug(
            "connection %d: %s %s %s",
            conn.number,
            request.method,
            request.path,
            list(request.query),
        )
        try:
            return self._route(conn, request, index)
        finally:
            with self._lock:
                if self._records[index].ended_at is None:
                    self._records[index] = replace(self._records[index], ended_at=time.monotonic())

    def _route(self, conn: _Conn, request: _Request, index: int) -> bool:
        path = request.path
        if path.startswith("/2/") and self._bearer is not None and not self._bearer_ok(request):
            return self._answer(conn, request, index, 401)
        if path in V2_STREAM_PATHS:
            if request.method != "GET":
                return self._answer(conn, request, index, 405, allow="GET")
            with self._lock:
                scripted = self._script[0] if self._script else None
                no_rules = (
                    self._require_rules
                    and path == FILTERED_STREAM_PATH
                    and not self._rules
                    and (scripted is None or (scripted.status == 200 and scripted.body is None))
                )
            if no_rules:
                return self._answer(conn, request, index, 409)
            return self._serve_attempt(conn, request, index, v1=False)
        if path in V1_STREAM_PATHS:
            if request.method not in ("GET", "POST"):
                return self._answer(conn, request, index, 405, allow="GET, POST")
            if self._verify_v1 is not None:
                with self._lock:
                    snapshot = self._records[index]
                try:
                    verified = self._verify_v1(snapshot)
                except Exception:
                    logger.exception("fake stream server: verify_v1 raised")
                    return self._answer(conn, request, index, 500)
                if not verified:
                    return self._answer(conn, request, index, 401, v1=True)
            return self._serve_attempt(conn, request, index, v1=True)
        if path == RULES_PATH:
            if request.method == "GET":
                status, doc = self._rules_get(request)
            elif request.method == "POST":
                status, doc = self._rules_post(request)
            else:
                return self._answer(conn, request, index, 405, allow="GET, POST")
            ctype = _JSON if status < 400 else _PROBLEM_JSON
            return self._answer(conn, request, index, status, body=orjson.dumps(doc), ctype=ctype)
        return self._answer(conn, request, index, 404)

    def _bearer_ok(self, request: _Request) -> bool:
        expected = f"Bearer {self._bearer}".encode()
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(given, expected)

    def _answer(
        self,
        conn: _Conn,
        request: _Request,
        index: int,
        status: int,
        *,
        body: bytes | None = None,
        ctype: str | None = None,
        allow: str | None = None,
        v1: bool = False,
    ) -> bool:
        if body is None:
            body, ctype = default_error_body(status, v1=v1)
        headers = {"allow": allow} if allow else {}
        self._update(index, status=status)
        logger.debug("connection %d: -> %d", conn.number, status)
        return self._send_simple(
            conn, status, body, ctype or _JSON, keep_alive=request.keep_alive, extra=headers
        )

    def _send_simple(
        self,
        conn: _Conn,
        status: int,
        body: bytes,
        ctype: str,
        *,
        keep_alive: bool,
        extra: Mapping[str, str] | None = None,
    ) -> bool:
        headers = {
            "date": email.utils.formatdate(usegmt=True),
            "server": "rxtweet-fake",
            "content-type": ctype,
            "content-length": str(len(body)),
            "connection": "keep-alive" if keep_alive else "close",
        }
        _merge(headers, extra)
        conn.sock.sendall(_head(status, headers) + body)
        return keep_alive

    # ------------------------------------------------------------------ streams

    def _serve_attempt(self, conn: _Conn, request: _Request, index: int, *, v1: bool) -> bool:
        with self._lock:
            attempt = self._script.popleft() if self._script else self._default
            self._records[index] = replace(
                self._records[index], status=attempt.status, attempt=attempt
            )
        logger.debug("connection %d: %s -> %r", conn.number, request.path, attempt)
        if attempt.delay and not self._idle(conn, time.monotonic() + attempt.delay):
            return False
        if attempt.status != 200 or attempt.body is not None:
            if attempt.body is None:
                body, ctype = default_error_body(attempt.status, v1=v1)
            elif isinstance(attempt.body, Mapping):
                body, ctype = orjson.dumps(dict(attempt.body)), _JSON
            else:
                body = _encode(attempt.body)
                ctype = _JSON if body.lstrip()[:1] in (b"{", b"[") else "text/plain; charset=utf-8"
            extra: dict[str, str] = {}
            if attempt.status == 429:
                extra.update(_rate_limit_headers(remaining=48))
            _merge(extra, attempt.headers)
            return self._send_simple(
                conn, attempt.status, body, ctype, keep_alive=request.keep_alive, extra=extra
            )

        headers = {
            "date": email.utils.formatdate(usegmt=True),
            "server": "rxtweet-fake",
            "content-type": _JSON,
            "transfer-encoding": "chunked",
            "connection": "keep-alive" if request.keep_alive else "close",
        }
        if attempt.gzip:
            headers["content-encoding"] = "gzip"
        _merge(headers, attempt.headers)
        conn.sock.sendall(_head(200, headers))

        body_writer = _Body(conn.sock, attempt, self._count_sent, self._stopping)
        shaper = _Shaper(
            request.path,
            request.query,
            fields=self._fields if not v1 else "all",
            match_rules=self._match_rules and not v1,
            rules=self._current_rules,
            on_unmatched=self._count_unmatched,
        )
        try:
            outcome = self._stream(conn, body_writer, attempt, shaper)
        except BaseException:
            self._cursor.push_front(body_writer.unsent())
            raise
        self._cursor.push_front(body_writer.unsent())
        logger.debug("connection %d: stream %s", conn.number, outcome)
        if outcome == "cut":
            self._close_socket(conn.sock)
            self._update(index, ended_at=time.monotonic())
            return False
        return outcome == "done" and request.keep_alive

    def _count_sent(self, n: int) -> None:
        with self._lock:
            self._sent += n

    def _count_unmatched(self) -> None:
        with self._lock:
            self._unmatched += 1

    def _current_rules(self) -> list[_CompiledRule]:
        with self._lock:
            return list(self._compiled.values())

    def _stream(self, conn: _Conn, body: _Body, attempt: Attempt, shaper: _Shaper) -> str:
        keepalive = (
            attempt.keepalive_interval
            if attempt.keepalive_interval is not None
            else self._keepalive_interval
        )
        interval = 1.0 / attempt.rate if attempt.rate else 0.0
        limit = attempt.messages
        count = 0
        skipped = 0
        next_due = time.monotonic()
        while limit is None or count < limit:
            if interval and time.monotonic() < next_due:
                body.pump()
                if not self._idle(conn, next_due, body, keepalive):
                    return "gone"
            message = self._cursor.take()
            if message is None:
                if attempt.ending != "hold":
                    break
                # Held: wait for messages fed later (or re-queued by a cut elsewhere).
                body.pump()
                if not self._idle(conn, time.monotonic() + _HOLD_POLL, body, keepalive):
                    return "gone"
                continue
            wire = shaper.shape(message) if shaper.active else message
            if wire is None:  # matched no rule: consumed, not sent
                skipped += 1
                if self._stopping.is_set():
                    raise _ClientGone
                # An endless source that never matches must not spin unnoticed: look
                # whether the client left (and keep the connection alive) now and then.
                if skipped % 1000 == 0 and not self._idle(
                    conn, time.monotonic() + 0.001, body, keepalive
                ):
                    return "gone"
                continue
            body.add(message, wire)
            count += 1
            if interval:
                next_due = max(next_due + interval, time.monotonic())
                body.pump()
            else:
                body.maybe_pump()
        body.pump()
        if attempt.ending == "close":
            body.finish()
            return "done"
        if attempt.ending == "cut":
            body.cut(
                self._cursor.peek_shaped(shaper.shape) if shaper.active else self._cursor.peek()
            )
            return "cut"
        self._idle(conn, math.inf, body if attempt.ending == "hold" else None, keepalive)
        return "gone"

    def _idle(
        self,
        conn: _Conn,
        until: float,
        body: _Body | None = None,
        keepalive: float | None = None,
    ) -> bool:
        """Wait until ``until`` (monotonic), sending keep-alives through ``body`` when due.

        Returns False when the client went away or the server is stopping.
        """
        sock = conn.sock
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= until:
                return True
            timeout = until - now
            if body is not None and keepalive is not None:
                due = body.last_write + keepalive
                if now >= due:
                    body.keepalive()
                    continue
                timeout = min(timeout, due - now)
            sock.settimeout(None if math.isinf(timeout) else timeout)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            finally:
                sock.settimeout(None)  # sends stay blocking: a slow reader is not "gone"
            if not data:
                return False
            # A client talking during a streaming response: ignore what it says.
        return False

    # ------------------------------------------------------------------ rules

    def _store_rule(self, value: str, tag: str | None) -> dict[str, str]:
        rule = {"value": value}
        if tag is not None:
            rule["tag"] = tag
        rule["id"] = str(next(self._rule_ids))
        test, _, unsupported = _compile_rule(value)
        if unsupported:
            logger.warning(
                "fake stream server: rule %r uses operators this server does not evaluate "
                "(%s): they never match",
                value,
                ", ".join(unsupported),
            )
        self._rules[rule["id"]] = rule
        self._compiled[rule["id"]] = _CompiledRule(rule["id"], tag, test or _never)
        return rule

    def _rules_get(self, request: _Request) -> tuple[int, dict[str, Any]]:
        wanted = {
            part.strip()
            for value in request.query.get("ids", [])
            for part in value.split(",")
            if part.strip()
        }
        with self._lock:
            data = [
                dict(rule) for rule in self._rules.values() if not wanted or rule["id"] in wanted
            ]
        doc: dict[str, Any] = {}
        if data:
            doc["data"] = data
        doc["meta"] = {"sent": _now_iso(), "result_count": len(data)}
        return 200, doc

    def _rules_post(self, request: _Request) -> tuple[int, dict[str, Any]]:
        dry_run = _query_bool(request.query, "dry_run")
        if _query_bool(request.query, "delete_all"):
            with self._lock:
                count = len(self._rules)
                if not dry_run:
                    self._rules.clear()
                    self._compiled.clear()
            return 200, {
                "meta": {"sent": _now_iso(), "summary": {"deleted": count, "not_deleted": 0}}
            }
        try:
            doc = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return 400, orjson.loads(_invalid_request("Request body is not valid JSON"))
        if not isinstance(doc, dict) or ("add" in doc) == ("delete" in doc):
            params = doc if isinstance(doc, dict) else {}
            return 400, orjson.loads(_invalid_request("JSON doesn't match expected schema", params))
        if "add" in doc:
            return self._rules_add(doc["add"], dry_run)
        return self._rules_delete(doc["delete"], dry_run)

    def _rules_add(self, entries: Any, dry_run: bool) -> tuple[int, dict[str, Any]]:
        schema_ok = (
            isinstance(entries, list)
            and entries
            and all(
                isinstance(e, dict)
                and isinstance(e.get("value"), str)
                and isinstance(e.get("tag"), str | None)
                for e in entries
            )
        )
        if not schema_ok:
            return 400, orjson.loads(
                _invalid_request("JSON doesn't match expected schema", {"add": entries})
            )
        data: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        with self._lock:
            by_value = {rule["value"]: rule["id"] for rule in self._rules.values()}
            for entry in entries:
                value: str = entry["value"]
                tag: str | None = entry.get("tag")
                details = _rule_problems(value)
                if details:
                    errors.append(
                        {
                            "value": value,
                            "details": details,
                            "title": "UnprocessableEntity",
                            "type": PROBLEMS + "invalid-rules",
                        }
                    )
                elif value in by_value:
                    errors.append(
                        {
                            "value": value,
                            "id": by_value[value],
                            "title": "DuplicateRule",
                            "type": PROBLEMS + "duplicate-rules",
                        }
                    )
                else:
                    if dry_run:
                        rule = {"value": value, **({"tag": tag} if tag is not None else {})}
                        rule["id"] = str(next(self._rule_ids))
                    else:
                        rule = dict(self._store_rule(value, tag))
                    by_value[value] = rule["id"]
                    data.append(rule)
        doc: dict[str, Any] = {}
        if data:
            doc["data"] = data
        doc["meta"] = {
            "sent": _now_iso(),
            "summary": {
                "created": len(data),
                "not_created": len(errors),
                "valid": len(data),
                "invalid": len(errors),
            },
        }
        if errors:
            doc["errors"] = errors
        return 201, doc

    def _rules_delete(self, spec: Any, dry_run: bool) -> tuple[int, dict[str, Any]]:
        ids = spec.get("ids") if isinstance(spec, dict) else None
        values = spec.get("values") if isinstance(spec, dict) else None
        schema_ok = (
            isinstance(spec, dict)
            and (ids is not None or values is not None)
            and all(
                isinstance(items, list) and items and all(isinstance(i, str) for i in items)
                for items in (ids, values)
                if items is not None
            )
        )
        if not schema_ok:
            return 400, orjson.loads(
                _invalid_request("JSON doesn't match expected schema", {"delete": spec})
            )
        deleted = 0
        errors: list[dict[str, Any]] = []
        with self._lock:
            targets: list[str | None] = list(ids or [])
            by_value = {rule["value"]: rule["id"] for rule in self._rules.values()}
            targets.extend(by_value.get(v) for v in values or [])
            gone: set[str] = set()
            for rule_id in targets:
                if rule_id is not None and rule_id in self._rules and rule_id not in gone:
                    gone.add(rule_id)
                    deleted += 1
                else:
                    errors.append(
                        {
                            "errors": [{"parameters": {}, "message": "Rule does not exist"}],
                            "title": "Invalid Request",
                            "detail": "One or more parameters to your request was invalid.",
                            "type": PROBLEMS + "invalid-request",
                        }
                    )
            if not dry_run:
                for rule_id in gone:
                    del self._rules[rule_id]
                    self._compiled.pop(rule_id, None)
        doc: dict[str, Any] = {
            "meta": {
                "sent": _now_iso(),
                "summary": {"deleted": deleted, "not_deleted": len(errors)},
            }
        }
        if errors:
            doc["errors"] = errors
        return 200, doc


def _rule_problems(value: str) -> list[str]:
    if not value.strip():
        return ["Rules must contain at least one positive, non-stopword clause (at position 1)"]
    if len(value) > MAX_RULE_LENGTH:
        return [
            f"Rule length is {len(value)} characters; rules may have at most "
            f"{MAX_RULE_LENGTH} characters"
        ]
    return _compile_rule(value)[1]


def _never(_: _Tweet) -> bool:
    return False


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


def _is_stream_path(path: str) -> bool:
    return path in V2_STREAM_PATHS or path in V1_STREAM_PATHS


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
