"""``metrics_of(stream, interval)``: a periodic snapshot of a stream's rate, health and lag.

:func:`metrics_of` observes a stream *passively*: it taps the stream's shared items
(:meth:`rxtweet.operators.share.SharedConnection.tap`; a v2 tweet stream over one
connection a read at a time, :meth:`rxtweet.connection.Connection.tap_reads`, where a
message costs a few instructions and one in :data:`LAG_STRIDE` is read again for its lag),
so subscribing to it opens no connection and keeps none open; it sees what the stream's own
subscribers receive, while they are subscribed. Every ``interval`` seconds it emits one
:class:`StreamMetrics`: what happened in that interval (counts and per-second rates), the
connection state of each partition, and the **lag** of the tweets received: receive time
minus creation time, where the creation time is the tweet id's Snowflake timestamp
(:func:`snowflake_time`), so lag needs no ``created_at`` field.

Where each figure comes from:

==========================  ================================================================
figure                      source
==========================  ================================================================
messages, bytes             each ``Parsed`` item (``len(raw)``: the line without ``\\r\\n``); on
                            a v2 tweet stream over one connection, each read's counts and
                            the bytes of all its lines (malformed ones included)
tweets, lag                 v2 ``StreamResponse`` with ``data``; v1.1 ``Status``
keep_alives, malformed      ``KeepAlive`` / ``MalformedMessage`` events
reconnects, their causes    ``Reconnecting`` events (``cause``, see :func:`cause_label`)
states                      ``Connected``/``Reconnecting``/``Errored``/``Disconnected`` (per
                            ``event.partition``)
overflow_drops              ``Overflowed`` events (their ``dropped``)
duplicates                  ``stream.stats.duplicates`` (0 when the stats have none)
limit_notices, limit_track  v1.1 ``{"limit": {"track": N}}`` (N: X's running total)
operational_disconnects     v2 ``errors`` titled ``operational-disconnect``; v1.1
                            ``{"disconnect": ...}``
falling_behind              v1.1 ``{"warning": {"code": "FALLING_BEHIND", ...}}``
==========================  ================================================================
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Final

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from ..connection import Read
from ..errors import HTTPException, StallError, StreamConnectionError
from ..events import (
    Connected,
    ConnectionFailed,
    Disconnected,
    Errored,
    KeepAlive,
    MalformedMessage,
    Overflowed,
    Reconnecting,
    RequestFailed,
)
from ..parse import Parsed, decode
from ..scheduling import WaitScheduler
from ..snowflake import SNOWFLAKE_EPOCH_MS, snowflake_ms, snowflake_time
from ..v1.models import DisconnectNotice, LimitNotice, StallWarning, Status
from ..v2.convert import to_stream_response
from ..v2.models import StreamResponse

__all__ = [
    "SNOWFLAKE_EPOCH_MS",
    "PartitionMetrics",
    "StreamMetrics",
    "cause_label",
    "lag_of",
    "metrics_of",
    "percentile",
    "snowflake_time",
]

log = logging.getLogger(__name__)


#: A connection's state, as :attr:`PartitionMetrics.state` tells it.
CONNECTED: Final = "connected"
RECONNECTING: Final = "reconnecting"
ERRORED: Final = "errored"
DISCONNECTED: Final = "disconnected"
#: Every state, in the order the Prometheus exporter lists them.
STATES: Final = (CONNECTED, RECONNECTING, ERRORED, DISCONNECTED)


#: Lag samples kept per interval for the quantiles; beyond it a uniform random sample of
#: this many (a reservoir) is kept, so memory is bounded however long no snapshot is taken
#: (a Prometheus server that stops scraping). ``lag_count``, ``lag_sum``, ``lag_max`` stay
#: exact.
MAX_LAG_SAMPLES: Final = 16_384
#: Tweets per interval whose lag is measured one by one; beyond them one tweet in
#: :data:`LAG_STRIDE` is (reading the id, the clock and the Snowflake time is most of what
#: metrics cost a tweet: at firehose rates a systematic sample gives the same quantiles).
LAG_EXACT: Final = 1024
#: See :data:`LAG_EXACT` (a power of two). 64: a firehose partition at 400,000 tweets/s
#: still gives ~6,000 samples a second, under :data:`MAX_LAG_SAMPLES`, so the reservoir (a
#: random draw per sample) stays out of the way, and the lag costs a tweet ~1/64 of its
#: computation (issue 16's budget: an active ``metrics()`` under 5% of throughput).
LAG_STRIDE: Final = 64
_LAG_MASK: Final = LAG_STRIDE - 1
#: A tweet "created" further ahead of the receive time than this (seconds) has a lying id
#: (clock skew is far smaller): it gets no lag, instead of a huge negative one.
MAX_FUTURE_LAG: Final = 60.0
#: Snowflake ids are positive 63-bit integers; anything else is not one.
_MAX_SNOWFLAKE: Final = 2**63 - 1


def lag_of(tweet_id: object, now: float) -> float | None:
    """The lag in seconds (``now`` minus the Snowflake creation time) of a tweet received
    at Unix time ``now``, or ``None`` when ``tweet_id`` is not a Snowflake id (not an
    integer, not a positive 63-bit one, or "created" more than :data:`MAX_FUTURE_LAG` s in
    the future). Never raises because of ``tweet_id``.

    >>> lag_of("1445078208190291968", 1633368469.744)
    2.0
    >>> lag_of("9" * 400, 1633368469.744) is None, lag_of("nope", 0.0) is None
    (True, True)
    """
    try:
        number = int(tweet_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    if not 0 < number <= _MAX_SNOWFLAKE:
        return None
    lag = now - snowflake_ms(number) / 1000
    return lag if lag >= -MAX_FUTURE_LAG else None


class _Lags:
    """One interval's lag samples: exact count, sum and max; at most
    :data:`MAX_LAG_SAMPLES` values for the quantiles (reservoir sampling beyond)."""

    __slots__ = ("count", "samples", "top", "total")

    # Seeded: the same run gives the same figures (only the reservoir draws from it).
    _random = random.Random(16)

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.count = 0
        self.total = 0.0
        self.top = -math.inf

    def add(self, lag: float) -> None:
        self.count += 1
        self.total += lag
        if lag > self.top:
            self.top = lag
        samples = self.samples
        if len(samples) < MAX_LAG_SAMPLES:
            samples.append(lag)
        else:
            slot = self._random.randrange(self.count)
            if slot < MAX_LAG_SAMPLES:
                samples[slot] = lag


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of a non-empty *sorted* list: the
    smallest value with at least ``q`` of the values at or below it.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)
    """
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def cause_label(cause: BaseException | None) -> str:
    """A short, low-cardinality name for a reconnect's cause (a Prometheus label value).

    ``"http_503"`` for an HTTP status, ``"stall"`` for a stall, ``"network"`` for another
    network failure (refused, reset, a body cut short), ``"closed"`` for a clean end of the
    response (no cause), else the exception's class name.

    >>> from rxtweet.errors import StallError
    >>> cause_label(StallError(20)), cause_label(None), cause_label(ValueError("x"))
    ('stall', 'closed', 'ValueError')
    """
    if cause is None:
        return "closed"
    if isinstance(cause, HTTPException):
        return f"http_{cause.status_code}"
    if isinstance(cause, StallError):
        return "stall"
    if isinstance(cause, (StreamConnectionError, OSError)):
        return "network"
    status = getattr(cause, "status_code", None)
    if isinstance(status, int):
        return f"http_{status}"
    return type(cause).__name__


@dataclass(frozen=True, slots=True)
class PartitionMetrics:
    """One partition's share of a :class:`StreamMetrics` interval (partition ``None``: the
    stream's one connection when it is not partitioned).

    ``state`` is the connection's state at the end of the interval: ``"connected"``,
    ``"reconnecting"`` (between a failure and the next ``Connected``), ``"errored"``
    (ended with an error) or ``"disconnected"`` (not open: before the first connection,
    or after the end). ``messages`` and ``reconnects`` count the interval.
    """

    state: str
    messages: int = 0
    reconnects: int = 0


def _empty() -> Mapping[Any, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StreamMetrics:
    """What one stream did during one interval (the counts are for the interval only).

    Attributes:
        time: the clock's time (Unix seconds) at the end of the interval.
        interval: the seconds it covers (measured on the clock).
        messages: parsed messages (tweets, system messages, notices), not keep-alives.
        tweets: the messages that carry a tweet (v2 ``data``; v1.1 statuses).
        bytes: bytes of those messages (each line without its ``\\r\\n``).
        keep_alives: keep-alive lines.
        malformed: lines that could not be parsed (dropped).
        reconnects: reconnects scheduled; ``reconnect_causes`` counts them by
            :func:`cause_label`.
        duplicates: duplicates dropped (a de-duplicating stream's ``stats.duplicates``).
        published, publish_duplicates, publish_retried: when the stream is published to
            NATS JetStream (:mod:`rxtweet.nats`, ``stream.publish_stats``): messages the
            server stored, acked as duplicates (its ``Nats-Msg-Id`` window), and sent again.
        overflow_drops: items dropped by bounded hand-offs (``Overflowed`` events).
        limit_notices: v1.1 ``limit`` notices; ``limit_track`` the latest running total of
            undelivered statuses X reported in one (``None`` when none came yet).
        operational_disconnects: X's disconnect notices (v2 ``operational-disconnect``
            errors, v1.1 ``disconnect`` messages).
        falling_behind: v1.1 ``FALLING_BEHIND`` warnings; ``percent_full`` the latest
            one's queue fill (``None`` when none came yet).
        lag_p50, lag_p99, lag_max: quantiles (nearest rank) of the tweets' lag in seconds
            (receive time minus Snowflake creation time; ``None`` without tweets). The
            first :data:`LAG_EXACT` tweets of an interval are measured, then one in
            :data:`LAG_STRIDE`; over :data:`MAX_LAG_SAMPLES` measured, p50 and p99 come
            from a uniform sample of that many. Tweets whose id is not a Snowflake id
            (see :func:`lag_of`) have no lag.
        lag_sum, lag_count, lag_max: over the measured tweets.
        partitions: :class:`PartitionMetrics` by partition number (``None`` for an
            unpartitioned stream).
    """

    time: float
    interval: float
    messages: int = 0
    tweets: int = 0
    bytes: int = 0
    keep_alives: int = 0
    malformed: int = 0
    reconnects: int = 0
    reconnect_causes: Mapping[str, int] = field(default_factory=_empty)
    duplicates: int = 0
    published: int = 0
    publish_duplicates: int = 0
    publish_retried: int = 0
    overflow_drops: int = 0
    limit_notices: int = 0
    limit_track: int | None = None
    operational_disconnects: int = 0
    falling_behind: int = 0
    percent_full: int | None = None
    lag_p50: float | None = None
    lag_p99: float | None = None
    lag_max: float | None = None
    lag_sum: float = 0.0
    lag_count: int = 0
    partitions: Mapping[int | None, PartitionMetrics] = field(default_factory=_empty)

    def _rate(self, count: int) -> float:
        return count / self.interval if self.interval > 0 else 0.0

    @property
    def messages_per_second(self) -> float:
        """:attr:`messages` over :attr:`interval`."""
        return self._rate(self.messages)

    @property
    def tweets_per_second(self) -> float:
        """:attr:`tweets` over :attr:`interval`."""
        return self._rate(self.tweets)

    @property
    def bytes_per_second(self) -> float:
        """:attr:`bytes` over :attr:`interval`."""
        return self._rate(self.bytes)

    @property
    def connected(self) -> int:
        """How many partitions (or the one connection) are connected at the end."""
        return sum(1 for p in self.partitions.values() if p.state == CONNECTED)


# --- the recorder -----------------------------------------------------------------------------

#: A v2 message's data (``None`` for a system message): what a tweet stream's connection
#: counts for :meth:`_Recorder.on_read` (see Connection.tap_reads).
_DATA_OF: Final = attrgetter("data")

# What a message type is to the metrics, decided once per type.
_OTHER, _V2, _V1_STATUS, _LIMIT, _DISCONNECT, _WARNING = range(6)


def _kind_of(cls: type) -> int:
    if issubclass(cls, StreamResponse):
        return _V2
    if issubclass(cls, Status):
        return _V1_STATUS
    if issubclass(cls, LimitNotice):
        return _LIMIT
    if issubclass(cls, DisconnectNotice):
        return _DISCONNECT
    if issubclass(cls, StallWarning):
        return _WARNING
    # Other v2 stream messages (compliance ...) may carry X's errors too.
    if hasattr(cls, "_fields") and "errors" in getattr(cls, "_fields", ()):
        return _V2
    return _OTHER


def _is_operational_disconnect(errors: Any) -> bool:
    for error in errors or ():
        if isinstance(error, dict):
            title = error.get("title")
            kind = error.get("type")
            if title == "operational-disconnect" or (
                isinstance(kind, str) and kind.endswith("/operational-disconnect")
            ):
                return True
    return False


def _partition_stats(stats: Any, connection: Any) -> tuple[Any, ...]:
    """Each partition's parse counters: ``stats.parts`` (a merged stream's), else those of
    the source a wrapper (a de-duplicating one) stands on."""
    for holder in (stats, getattr(getattr(connection, "source", None), "stats", None)):
        parts = getattr(holder, "parts", None)
        if parts:
            return tuple(parts)
    return ()


class _Recorder:
    """Counts what the tap sees (on the delivering thread) for :meth:`snapshot` (on the
    timer's thread). A message takes no lock (its counters are cumulative, written by one
    thread; a snapshot reports their growth); an event and a snapshot take :attr:`_lock`.
    Under a rare race a tweet's lag sample may land after the snapshot that counted it
    and be lost (its count never is)."""

    def __init__(self, stream: Any, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[type, int] = {}
        self._stats = getattr(stream, "stats", None)
        connection = getattr(stream, "connection", None)
        numbers = tuple(getattr(connection, "partitions", None) or ())
        parts = _partition_stats(self._stats, connection)
        # Per-partition message counts come from each partition's parse counters: the
        # merged stream's messages do not say which partition they came from.
        self._parts: dict[int, Any] = dict(zip(numbers, parts, strict=False))
        self._stream = stream
        opened = bool(getattr(stream, "connected", False))
        initial = CONNECTED if opened else DISCONNECTED
        self._states: dict[int | None, str] = (
            {n: initial for n in numbers} if numbers else {None: initial}
        )
        self._part_reconnects: dict[int | None, int] = {}
        self._part_seen = {n: part.messages for n, part in self._parts.items()}
        self._duplicates_seen = self._duplicates()
        self._published_seen = self._published()
        self._since = clock()
        # The messages' counters are cumulative (written by the delivering thread only, so
        # they need no lock); a snapshot reports their growth since the previous one.
        self.messages = self.tweets = self.bytes = 0
        self.limits = self.disconnects = self.warnings = 0
        self._seen = (0, 0, 0, 0, 0, 0)
        self.lags = _Lags()
        self.limit_track: int | None = None
        self.percent_full: int | None = None
        self._reset()

    def _reset(self) -> None:
        """The events' counters (under the lock), per interval."""
        self.keep_alives = self.malformed = self.reconnects = self.overflow = 0
        self.causes: dict[str, int] = {}
        self._part_reconnects = {}

    def _duplicates(self) -> int:
        value = getattr(self._stats, "duplicates", 0)
        return value if isinstance(value, int) else 0

    def _published(self) -> tuple[int, int, int]:
        """The NATS publisher's running counts, if the stream is published (it gets
        ``publish_stats`` when :meth:`~rxtweet.nats.jetstream.JetStreamPublisher.publish`
        takes it, which may be after the metrics began)."""
        stats = getattr(self._stream, "publish_stats", None)
        counts = tuple(getattr(stats, name, 0) for name in ("published", "duplicates", "retried"))
        return counts if all(isinstance(c, int) for c in counts) else (0, 0, 0)  # type: ignore[return-value]

    def on_read(self, read: Read) -> None:
        """A read of a v2 tweet stream's connection (see
        :meth:`~rxtweet.connection.Connection.tap_reads`): its messages counted from the
        read's counts and lines, with no Python code per message; the lags of a sample of
        its tweets."""
        self.bytes += sum(map(len, read.lines))
        messages = read.messages
        if not messages:
            return
        tweets = messages - read.without_data
        before = self.tweets
        self.messages += messages
        self.tweets = before + tweets
        if tweets:
            self._sample_lags(read, before)

    def on_read_item(self, item: Any) -> None:
        """A read's item that is not a message with data (its bytes and message count are
        the read's): a keep-alive, a malformed line, a system message."""
        if type(item) is Parsed:
            if _is_operational_disconnect(getattr(item.value, "errors", None)):
                self.disconnects += 1
            return
        with self._lock:
            self._event(item)

    def _sample_lags(self, read: Read, before: int) -> None:
        """The lags of a read's tweets (``before`` tweets were counted before them): every
        tweet while the interval has fewer than :data:`LAG_EXACT` measured, then the tweets
        whose running number is a multiple of :data:`LAG_STRIDE`, as the item-by-item path
        picks them. The id is read again from the sampled lines (the read's messages are
        not kept; the parser said which lines are tweets), and the receive time is the
        read's (taken before its items were delivered)."""
        lines = read.lines
        positions: Sequence[int] = range(len(lines))
        if read.skipped:
            skipped = set(read.skipped)
            positions = [i for i in positions if i not in skipped]
        exact = LAG_EXACT - self.lags.count
        if exact <= 0:
            picks = positions[-(before + 1) % LAG_STRIDE :: LAG_STRIDE]
        elif exact >= len(positions):
            picks = positions
        else:
            start = exact + -(before + exact + 1) % LAG_STRIDE
            picks = [*positions[:exact], *positions[start::LAG_STRIDE]]
        if not picks:
            return
        now = read.received if read.received is not None else self._clock()
        add = self.lags.add
        for index in picks:
            doc = decode(lines[index], exact_ints=False)  # orjson, or the fallback's
            try:
                tweet_id = doc["data"]["id"]  # type: ignore[index]
            except (KeyError, TypeError):
                continue  # no id: no lag for it
            lag = lag_of(tweet_id, now)
            if lag is not None:
                add(lag)

    def on_next(self, item: Any) -> None:
        """One item (from a tap that sees items one at a time, or an event of a read tap)."""
        if type(item) is Parsed:
            self.messages += 1
            self.bytes += len(item.raw)
            value = item.value
            cls = type(value)
            # v2, the common case, skips the kind look-up.
            kind = _V2 if cls is StreamResponse else self._kinds.get(cls)
            if kind is None:
                kind = self._kinds[cls] = _kind_of(cls)
            if kind == _V2:
                data = value.data
                if data is None:
                    if _is_operational_disconnect(value.errors):
                        self.disconnects += 1
                    return
                # Past the interval's LAG_EXACT a tweet costs three counters and a test.
                tweets = self.tweets = self.tweets + 1
                if tweets & _LAG_MASK and self.lags.count >= LAG_EXACT:
                    return
                try:
                    tweet_id = data.data["id"]
                except (AttributeError, KeyError, TypeError):
                    return  # no id: no lag for it
                lag = lag_of(tweet_id, self._clock())
                if lag is not None:
                    self.lags.add(lag)
            elif kind == _V1_STATUS:
                self._tweet(value.data)
            elif kind == _LIMIT:
                self.limits += 1
                self.limit_track = value.track
            elif kind == _DISCONNECT:
                self.disconnects += 1
            elif kind == _WARNING:
                self.warnings += 1
                self.percent_full = value.percent_full
        else:
            with self._lock:
                self._event(item)

    def _tweet(self, doc: Any) -> None:
        self.tweets += 1
        if self.lags.count >= LAG_EXACT and self.tweets & _LAG_MASK:
            return  # a busy interval: one tweet in LAG_STRIDE is measured
        raw_id = doc.get("id") if isinstance(doc, dict) else None
        if raw_id is None:
            return
        lag = lag_of(raw_id, self._clock())
        if lag is not None:
            self.lags.add(lag)

    def _event(self, event: Any) -> None:
        kind = type(event)
        if kind is KeepAlive:
            self.keep_alives += 1
            return
        partition = getattr(event, "partition", None)
        states = self._states
        if kind is Connected:
            states[partition] = CONNECTED
        elif kind is Reconnecting:
            self.reconnects += 1
            label = cause_label(event.cause)
            self.causes[label] = self.causes.get(label, 0) + 1
            states[partition] = RECONNECTING
            self._part_reconnects[partition] = self._part_reconnects.get(partition, 0) + 1
        elif kind is ConnectionFailed or kind is RequestFailed:
            if states.get(partition) == CONNECTED:
                states[partition] = RECONNECTING
        elif kind is MalformedMessage:
            self.malformed += 1
        elif kind is Overflowed:
            self.overflow += event.dropped
        elif kind is Errored:
            states[partition] = ERRORED
        elif kind is Disconnected:
            for key, state in states.items():
                if (partition is None or key == partition) and state != ERRORED:
                    states[key] = DISCONNECTED

    def snapshot(self) -> StreamMetrics:
        """The interval since the last snapshot (or since the tap was attached)."""
        now = self._clock()
        duplicates = self._duplicates()
        published = self._published()
        stored, acked_again, sent_again = (
            count - before for count, before in zip(published, self._published_seen, strict=True)
        )
        part_messages = {}
        for number, part in self._parts.items():
            count = part.messages
            part_messages[number] = count - self._part_seen[number]
            self._part_seen[number] = count
        opened = bool(getattr(self._stream, "connected", False))
        # Swapped first: a lag appended to the old list after this line (a rare race with
        # the delivering thread) is lost; the counts never are.
        lags, self.lags = self.lags, _Lags()
        counts = (
            self.messages,
            self.tweets,
            self.bytes,
            self.limits,
            self.disconnects,
            self.warnings,
        )
        messages, tweets, size, limits, disconnects, warnings = (
            count - before for count, before in zip(counts, self._seen, strict=True)
        )
        self._seen = counts
        ordered = sorted(lags.samples)
        with self._lock:
            if not opened:
                # The last subscriber left: the connection closed without an event.
                for key, state in self._states.items():
                    if state != ERRORED:
                        self._states[key] = DISCONNECTED
            partitions = {
                key: PartitionMetrics(
                    state,
                    messages if key is None else part_messages.get(key, 0),
                    self._part_reconnects.get(key, 0),
                )
                for key, state in self._states.items()
            }
            metrics = StreamMetrics(
                time=now,
                interval=now - self._since,
                messages=messages,
                tweets=tweets,
                bytes=size,
                keep_alives=self.keep_alives,
                malformed=self.malformed,
                reconnects=self.reconnects,
                reconnect_causes=MappingProxyType(dict(self.causes)),
                duplicates=duplicates - self._duplicates_seen,
                published=stored,
                publish_duplicates=acked_again,
                publish_retried=sent_again,
                overflow_drops=self.overflow,
                limit_notices=limits,
                limit_track=self.limit_track,
                operational_disconnects=disconnects,
                falling_behind=warnings,
                percent_full=self.percent_full,
                lag_p50=percentile(ordered, 0.5) if ordered else None,
                lag_p99=percentile(ordered, 0.99) if ordered else None,
                lag_max=lags.top if lags.count else None,
                lag_sum=lags.total,
                lag_count=lags.count,
                partitions=MappingProxyType(partitions),
            )
            self._reset()
        self._since = now
        self._duplicates_seen = duplicates
        self._published_seen = published
        return metrics


# --- the operator -----------------------------------------------------------------------------


def tap_of(stream: Any, recorder: _Recorder) -> abc.DisposableBase:
    """Tap ``stream``'s items passively for ``recorder``: a v2 tweet stream over one
    :class:`~rxtweet.connection.Connection` a read at a time
    (:meth:`~rxtweet.connection.Connection.tap_reads`: a message costs nothing each), any
    other an item at a time (``stream.items.tap``, else its connection's). Dispose the
    result to stop.

    Raises:
        TypeError: the stream's items cannot be tapped (they are not a shared connection's).
    """
    connection = getattr(stream, "connection", None)
    items = getattr(stream, "items", None)
    tap_reads = getattr(connection, "tap_reads", None)
    shared = getattr(items, "_shared", None)
    own = shared is not None and shared is getattr(connection, "_shared", None)
    if callable(tap_reads) and own and getattr(connection, "_convert", None) is to_stream_response:
        return tap_reads(  # type: ignore[no-any-return]
            recorder.on_read,
            recorder.on_read_item,
            recorder.on_next,
            data_of=_DATA_OF,
            clock=recorder._clock,
        )
    for holder in (items, connection):
        tap = getattr(holder, "tap", None)
        if tap is None and holder is not None:
            tap = getattr(getattr(holder, "items", None), "tap", None)
        if callable(tap):
            return tap(recorder.on_next)  # type: ignore[no-any-return]
    raise TypeError(
        f"cannot observe {type(stream).__name__} passively: its items are not a shared "
        "connection's (rxtweet.operators.share.SharedConnection)"
    )


def metrics_of(
    stream: Any,
    interval: float = 1.0,
    *,
    scheduler: abc.SchedulerBase | None = None,
    clock: Callable[[], float] = time.time,
) -> Observable[StreamMetrics]:
    """A :class:`StreamMetrics` of ``stream`` every ``interval`` seconds.

    Cold: each subscription taps the stream afresh and its first snapshot covers the time
    since it subscribed. Passive: subscribing opens no connection and keeps none open; it
    observes the stream's own subscribers' connection, across its reconnects and later
    connections, and reports zero counts (state ``"disconnected"``) while there is none.
    It never completes by itself (a stream can be subscribed again); dispose it to stop.

    Args:
        stream: a stream object (``TweetStream``, ``V1Stream``, ``LikeStream`` …: anything
            whose ``items`` is a shared connection's, with ``stats`` and ``connection``).
        interval: seconds between snapshots (> 0).
        scheduler: where the periodic snapshots run (default: a
            :class:`~rxtweet.scheduling.WaitScheduler`, a timer thread ``rxtweet-wait-N``
            per tick; tests pass a ``TestScheduler``). The subscribe call's scheduler is
            used when this is ``None`` and one is given there.
        clock: Unix time in seconds: receive times (lag) and interval lengths. Tests pass a
            virtual one.

    Threads: items are counted on the thread that delivers them (the reader thread), under
    a lock; snapshots are built and emitted on the scheduler's thread, one at a time.
    An observer that raises in ``on_next`` stops the snapshots (the error is logged by the
    scheduler); the stream itself is not affected.

    Raises:
        ValueError: ``interval`` is not > 0.
        TypeError: (on subscribe) the stream's items cannot be tapped.
    """
    if not interval > 0:
        raise ValueError(f"interval must be > 0 seconds, not {interval!r}")

    def subscribe(
        observer: abc.ObserverBase[StreamMetrics], subscribe_scheduler: abc.SchedulerBase | None
    ) -> abc.DisposableBase:
        recorder = _Recorder(stream, clock)
        where = scheduler or subscribe_scheduler or WaitScheduler()
        if not isinstance(where, abc.PeriodicSchedulerBase):
            raise TypeError(f"metrics_of needs a periodic scheduler, not {where!r}")
        stopped = [False]

        def tick(state: Any = None) -> None:
            if not stopped[0]:
                observer.on_next(recorder.snapshot())

        untap = tap_of(stream, recorder)
        timer = where.schedule_periodic(interval, tick)

        def stop() -> None:
            stopped[0] = True

        return CompositeDisposable(Disposable(stop), untap, timer)

    return Observable(subscribe)
