"""Lifecycle events of a stream: what happened to the connection, as values.

A stream's ``.events`` Observable emits these in order. Each maps onto one tweepy hook, so
the tweepy-compatible face is a thin subscriber that dispatches on the event's type:

==========================  ================================  ====================================
event                       tweepy hook                       when
==========================  ================================  ====================================
:class:`Connected`          ``on_connect()``                  a connection answered 200
:class:`KeepAlive`          ``on_keep_alive()``               an empty line (``\\r\\n``) arrived
:class:`Closed`             ``on_closed(response)``           the server ended the stream cleanly
:class:`ConnectionFailed`   ``on_connection_error()``         the network failed (incl. stalls)
:class:`RequestFailed`      ``on_request_error(status)``      the server answered non-200
:class:`Reconnecting`       ``on_event(event)`` (logged)      a reconnect is scheduled
:class:`MalformedMessage`   ``on_event(event)`` (logged)      a line could not be parsed
:class:`UnknownMessage`     ``on_event(event)`` (logged)      v1.1: a message of no known type
:class:`Overflowed`         ``on_event(event)`` (logged)      a bounded hand-off dropped items
:class:`Backfilling`        ``on_event(event)`` (logged)      a reconnect asks for the gap back
:class:`Recovering`         ``on_event(event)`` (logged)      a recovery window connection opens
:class:`Recovered`          ``on_event(event)`` (logged)      a recovery window is done
:class:`DataLost`           ``on_event(event)`` (logged)      a gap nothing can recover
:class:`RecoveryUnavailable` ``on_event(event)`` (logged)     X refused a recovery request (400)
:class:`Errored`            ``on_exception(exception)``       terminal: the stream failed
:class:`Disconnected`       ``on_disconnect()``               terminal: always last, exactly once
==========================  ================================  ====================================

A stream's ``on_error`` corresponds to :class:`Errored` and its ``on_completed`` to
:class:`Disconnected` (which also follows :class:`Errored`).

On a partitioned stream (one connection per partition, merged: :mod:`rxtweet.partitions`)
every event but the last carries ``event.partition``; each failing partition reports its own
:class:`Errored`, and :class:`Disconnected` (``partition=None``) comes once, after every
partition has ended.

With ``redundancy=2`` (two connections per stream or partition, merged and de-duplicated:
:mod:`rxtweet.recovery`) ``event.replica`` (1 or 2) tells the connections apart; it is
``None`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .http import RateLimit

__all__ = [
    "Backfilling",
    "Closed",
    "Connected",
    "ConnectionFailed",
    "DataLost",
    "Disconnected",
    "Errored",
    "KeepAlive",
    "MalformedMessage",
    "Overflowed",
    "Reconnecting",
    "Recovered",
    "Recovering",
    "RecoveryUnavailable",
    "RequestFailed",
    "StreamEvent",
    "UnknownMessage",
]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Base class of every lifecycle event.

    ``partition`` is the partition whose connection the event concerns on a partitioned
    stream (``firehose_stream(partitions=...)`` and the like: one connection per partition,
    merged into one stream), and ``None`` on an unpartitioned stream and for the merged
    stream's one final :class:`Disconnected`. ``replica`` is which of the redundant
    connections (``redundancy=2``: 1 or 2) it concerns, ``None`` without redundancy. Both
    are keyword-only, so every event's positional fields keep their order.
    """

    partition: int | None = field(default=None, kw_only=True)
    replica: int | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class Connected(StreamEvent):
    """A connection attempt was answered with HTTP 200 and the body is about to be read."""

    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    rate_limit: RateLimit | None = None
    response: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class KeepAlive(StreamEvent):
    """An empty line arrived: the server's heartbeat."""


@dataclass(frozen=True, slots=True)
class Closed(StreamEvent):
    """The server ended the response cleanly (the terminating chunk arrived)."""

    response: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ConnectionFailed(StreamEvent):
    """The network failed (refused, reset, TLS, cut mid-body, stall)."""

    exception: BaseException


@dataclass(frozen=True, slots=True)
class RequestFailed(StreamEvent):
    """The server answered with a status other than 200."""

    status_code: int
    body: Any = None
    exception: BaseException | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Reconnecting(StreamEvent):
    """A reconnect is scheduled: attempt number ``attempt`` after ``delay`` seconds."""

    attempt: int
    delay: float
    cause: BaseException | None = None


@dataclass(frozen=True, slots=True)
class MalformedMessage(StreamEvent):
    """A line could not be turned into a message; it was dropped and counted."""

    raw: bytes
    reason: str

    def __repr__(self) -> str:
        preview = self.raw[:60]
        more = "..." if len(self.raw) > 60 else ""
        where = "" if self.partition is None else f", partition={self.partition}"
        return f"MalformedMessage(reason={self.reason!r}, raw={preview!r}{more}{where})"


@dataclass(frozen=True, slots=True)
class UnknownMessage(StreamEvent):
    """A JSON object of no known v1.1 message type arrived (logged, never fatal).

    ``raw`` is the line; ``keys`` its top-level keys (e.g. ``("friends",)`` from a user
    stream). It is also in ``V1Stream.messages`` as an :class:`~rxtweet.v1.UnknownNotice`.
    """

    raw: bytes
    keys: tuple[str, ...]

    def __repr__(self) -> str:
        where = "" if self.partition is None else f", partition={self.partition}"
        return f"UnknownMessage(keys={self.keys!r}, raw=<{len(self.raw)} bytes>{where})"


@dataclass(frozen=True, slots=True)
class Overflowed(StreamEvent):
    """A bounded hand-off (:mod:`rxtweet.handoff`) dropped items for a slow consumer.

    ``dropped`` is how many this report covers, ``total`` all dropped so far by that
    hand-off, ``name`` which one it is. Reported at most once per second per hand-off.
    """

    dropped: int
    total: int
    name: str = "hand-off"


@dataclass(frozen=True, slots=True)
class Backfilling(StreamEvent):
    """A reconnect asks X for the gap back: ``backfill_minutes=minutes`` on the new request,
    for a gap of ``gap_seconds`` since the last item received (``recovery=`` on)."""

    minutes: int
    gap_seconds: float


@dataclass(frozen=True, slots=True)
class Recovering(StreamEvent):
    """A recovery connection opens beside the live one, for the items created from
    ``start_time`` to ``end_time`` (``recovery="full"``, a gap over 5 minutes)."""

    start_time: datetime
    end_time: datetime


@dataclass(frozen=True, slots=True)
class Recovered(StreamEvent):
    """The recovery window ``start_time``..``end_time`` is done: ``items`` arrived through
    it (duplicates included; the stream drops those)."""

    start_time: datetime
    end_time: datetime
    items: int


@dataclass(frozen=True, slots=True)
class DataLost(StreamEvent):
    """Items created from ``since`` to ``until`` (``seconds`` long) could not be recovered:
    the gap was longer than the recovery mode reaches (``"backfill"``: 5 minutes;
    ``"full"``: 24 hours), or a recovery window failed for good."""

    since: datetime
    until: datetime
    seconds: float


@dataclass(frozen=True, slots=True)
class RecoveryUnavailable(StreamEvent):
    """X refused a recovery request (``status_code``, 400 without Enterprise access):
    reported once; the stream goes on without recovery. ``reason`` says what was refused
    and X's own words."""

    reason: str
    status_code: int | None = None


@dataclass(frozen=True, slots=True)
class Errored(StreamEvent):
    """Terminal: the stream ended with ``exception`` (retries exhausted, fatal status, bug)."""

    exception: BaseException


@dataclass(frozen=True, slots=True)
class Disconnected(StreamEvent):
    """Terminal: the stream is over. Always the last event, exactly once."""
