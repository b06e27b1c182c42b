"""The values a :class:`~rxtweet.testing.FakeStreamServer` is scripted and inspected with.

:class:`Attempt` says what one connection attempt to a stream path receives;
:class:`RecordedRequest` is one request the server received and how it answered. Both are
frozen, so a test can keep them and compare them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qs

import orjson

from rxtweet.http import redact_headers

__all__ = ["Attempt", "Chunking", "Ending", "FieldsMode", "MessageSource", "RecordedRequest"]

Ending: TypeAlias = Literal["close", "cut", "reset", "stall", "hold"]
Chunking: TypeAlias = Literal["line", "random", "byte"]

#: What ``FakeStreamServer(messages=...)`` accepts: a ``str`` or path-like is a JSONL file;
#: anything else is an iterable whose items are ``dict`` (and other JSON values: serialised
#: compactly), ``str`` (UTF-8) or ``bytes`` (sent verbatim).
MessageSource: TypeAlias = "str | os.PathLike[str] | Iterable[Any]"

_ENDINGS = frozenset({"close", "cut", "reset", "stall", "hold"})
_CHUNKINGS = frozenset({"line", "random", "byte"})

FieldsMode: TypeAlias = Literal["requested", "all"]
_FIELDS_MODES = frozenset({"requested", "all"})


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
            (``None``: until the source is exhausted; in timeline mode: no limit).
        duration: real seconds after the response head after which no more messages are
            sent and ``ending`` applies (``None``: no time limit). Whichever of ``messages``
            and ``duration`` comes first ends the messages.
        ending: what follows the messages: ``"close"`` (terminating chunk), ``"cut"`` (half
            of the next message, then an abrupt close; that message stays in the cursor),
            ``"reset"`` (a TCP RST: ``SO_LINGER`` 0, then close; unsent messages stay in the
            cursor), ``"stall"`` (silence, socket open) or ``"hold"`` (keep-alives until the
            client leaves). Applied also when the source runs dry before ``messages`` were
            sent (cursor mode; in timeline mode a dry source just means waiting).
        chunking: HTTP chunk boundaries: ``"line"`` (one chunk per message), ``"random"``
            (random sizes from ``seed``, independent of message boundaries) or ``"byte"``
            (one byte per chunk, so multi-byte UTF-8 characters are split).
        gzip: send ``content-encoding: gzip``; one gzip stream, sync-flushed per message.
        keepalive_interval: seconds of silence before a keep-alive (``None``: the server's).
        rate: messages per second (``None``: as fast as the client reads): each message is
            taken 1/rate seconds after the one before, so a late one (a busy machine) delays
            the rest instead of being followed by a burst. Ignored in timeline mode, where
            the timeline paces live messages.
        delay: seconds to wait before sending the response headers.
        seed: seeds the random chunk sizes.
    """

    status: int = 200
    body: Mapping[str, Any] | bytes | str | None = None
    headers: Mapping[str, str] | None = None
    messages: int | None = None
    duration: float | None = None
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
        if self.duration is not None and not self.duration >= 0:
            raise ValueError("duration must be >= 0 or None")
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
    connection. ``endpoint`` is the name of the v2 stream requested (``"firehose"``,
    ``"compliance_users"`` ...; ``None`` for other paths) and ``partition`` the partition a
    valid request to a partitioned stream asked for (else ``None``).

    Timeline mode (``FakeStreamServer(timeline=...)``) also fills, for stream requests:
    ``server_time``, the server time (epoch seconds) the request arrived; ``kind``, what it
    is (``"live"``, ``"backfill"`` or ``"window"``; ``None`` before it is known or in cursor
    mode); ``sent``, how many messages were completely written on it so far.
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
    endpoint: str | None = None
    partition: int | None = None
    sent: int = 0
    server_time: float | None = None
    kind: str | None = None

    def __repr__(self) -> str:
        where = "" if self.partition is None else f" partition={self.partition}"
        if self.kind is not None:
            where += f" kind={self.kind} sent={self.sent}"
        return (
            f"RecordedRequest({self.method} {self.path} query={self.query!r} "
            f"headers={redact_headers(self.headers)!r} body=<{len(self.body)} bytes> "
            f"status={self.status} connection={self.connection}{where} "
            f"attempt={self.attempt!r})"
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
