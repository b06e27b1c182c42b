"""Timeline mode of :class:`~rxtweet.testing.FakeStreamServer`: a server clock, published messages.

In the default (cursor) mode the server hands each message to exactly one connection. X does
not work that way: it *publishes* Posts whether anyone is connected or not, a connection gets
what is published while it is open, and the means to get back what was missed —
``backfill_minutes``, ``start_time``/``end_time`` recovery, a redundant second connection —
all send duplicates. ``FakeStreamServer(timeline=Timeline(...))`` imitates that, so recovery
and de-duplication can be tested against a real server:

* **The clock.** :meth:`FakeStreamServer.now` is the server time in epoch seconds:
  ``start + (monotonic seconds since server.start()) * time_scale``. With
  ``time_scale=600`` one real second is ten server minutes, so a 7-minute gap takes 0.7 s.
  Give the client ``clock=server.now`` so that it measures gaps in server time. Everything
  X states in minutes (``backfill_minutes``, ``start_time``/``end_time``, retention) is in
  server time; everything about the connection itself (keep-alive interval,
  :attr:`Attempt.delay`, :attr:`Attempt.duration`) is in real seconds.
* **Publishing.** Each message source is one timeline: its k-th message (k = 0, 1, ...) is
  published at ``start + k / rate`` server seconds. The Tweet streams without a source of
  their own (sample, filtered, sample10, firehose, language firehoses; and the v1.1 streams)
  are views of ONE timeline, that of ``messages``; a partitioned endpoint's partition p holds
  the messages with ``k % N + 1 == p``. When a source runs dry the timeline stops; messages
  fed later are published from the moment the server next finds them, one per ``1 / rate``.
* **Ids.** On a Tweet timeline, a message ``{"data": {"id": ...}}`` gets the Snowflake id of
  its publish time, ``((ms - 1288834974657) << 22) | (k & 0x3FFFFF)`` (:func:`snowflake_id`),
  so ids are unique, increase with k, and :func:`snowflake_time` gives the publish time back;
  the old id is replaced in ``edit_history_tweet_ids`` and ``data.created_at`` (if present)
  becomes the publish time. Other streams' messages are published verbatim; their publish
  time is :attr:`PublishedMessage.time` (:meth:`FakeStreamServer.timeline_messages`).
* **Retention.** A timeline keeps the messages of the last ``retention`` server seconds (24 h,
  X's recovery limit), at most ``max_retained`` of them (default 100 000): memory is bounded
  on a long run. A connection that falls behind the oldest retained message is disconnected,
  as X disconnects a client whose buffer filled (FIN without the terminating chunk).

What a stream request gets (``endpoint``/``partition`` as in cursor mode):

* no recovery parameter: a **live** connection — the messages published after it connected,
  as they are published, with keep-alives after ``keepalive_interval`` real seconds of silence;
* ``backfill_minutes=N`` (1-5): first every message of its endpoint/partition published in
  ``[now - N*60, now]``, in order, including the ones this client already had (the server
  does not know), then live. ``Timeline(backfill_allowed=False)`` answers 400
  ``invalid-request`` naming ``backfill_minutes`` instead (no Enterprise access);
* ``start_time``/``end_time`` (``YYYY-MM-DDTHH:MM:SSZ``): a **window** (recovery)
  connection — the messages published in ``[start_time, end_time)`` (X: start inclusive, end
  exclusive), as fast as the client reads; if ``end_time`` is in the future, live messages
  until server time reaches it; then a clean end (terminating chunk). ``end_time`` defaults
  to the server time of the request, ``start_time`` to 24 hours before. 400 when start is not
  before end, start is more than 24 h ago, ``backfill_minutes`` is also given, or
  ``Timeline(recovery_allowed=False)``.

Live (and backfill) connections per (endpoint, partition) are limited to ``max_connections``
(X: 2, the redundant connection); window connections to ``max_recoveries`` (X: 2 recovery
jobs). One more gets 429 with X's ``TooManyConnections`` problem and rate-limit headers, and
no scripted :class:`Attempt` is used up. A connection whose client has gone (FIN or RST
received) no longer counts, even before the server thread noticed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

import orjson

from ..snowflake import SNOWFLAKE_EPOCH_MS, snowflake_time
from ._http import _Body
from .cursor import _Cursor
from .endpoints import ServedEndpoint
from .shaping import _Shaper
from .values import Attempt

__all__ = [
    "TWITTER_EPOCH_MS",
    "PublishedMessage",
    "StreamKind",
    "Timeline",
    "snowflake_id",
    "snowflake_time",
]

logger = logging.getLogger(__name__)

#: Snowflake epoch: ``(id >> 22) + TWITTER_EPOCH_MS`` is a Tweet id's creation time in ms.
TWITTER_EPOCH_MS = SNOWFLAKE_EPOCH_MS
_SEQ_MASK = 0x3FFFFF
#: X's recovery reaches back at most 24 hours.
RECOVERY_LIMIT = 86_400.0

#: What a stream connection is in timeline mode.
StreamKind: TypeAlias = Literal["live", "backfill", "window"]


def snowflake_id(ms: int, seq: int) -> int:
    """The Snowflake id of a message published at epoch millisecond ``ms``, sequence ``seq``.

    ``((ms - 1288834974657) << 22) | (seq & 0x3FFFFF)``.

    Raises:
        ValueError: ``ms`` is before the Snowflake epoch (2010-11-04).
    """
    if ms < TWITTER_EPOCH_MS:
        raise ValueError(f"{ms} ms is before the Snowflake epoch")
    return ((ms - TWITTER_EPOCH_MS) << 22) | (seq & _SEQ_MASK)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """The configuration of timeline mode: ``FakeStreamServer(timeline=Timeline(...))``.

    See :mod:`rxtweet.testing.timeline` for what the server does with it.

    Attributes:
        rate: messages published per SERVER second on each timeline (all partitions
            together; a partition of N gets ``rate / N``).
        time_scale: server seconds per real second (``600``: a real second is 10 minutes).
        start: the server time (epoch seconds) when the server starts; ``None``:
            ``time.time()`` at :meth:`FakeStreamServer.start`. Must be after 2010-11-04
            (Snowflake ids encode it).
        retention: server seconds of messages each timeline keeps for backfill and windows.
        max_retained: at most this many messages kept per timeline (memory bound).
        max_connections: live/backfill connections allowed at once per (endpoint,
            partition); one more gets 429 (X: 2).
        max_recoveries: ``start_time``/``end_time`` connections allowed at once per
            (endpoint, partition); one more gets 429 (X: 2).
        backfill_allowed: ``False``: a request with ``backfill_minutes`` > 0 gets 400
            ``invalid-request`` naming the parameter, as X answers without Enterprise access.
        recovery_allowed: ``False``: the same for ``start_time``/``end_time``.
    """

    rate: float = 10.0
    time_scale: float = 1.0
    start: float | None = None
    retention: float = RECOVERY_LIMIT
    max_retained: int = 100_000
    max_connections: int = 2
    max_recoveries: int = 2
    backfill_allowed: bool = True
    recovery_allowed: bool = True

    def __post_init__(self) -> None:
        for name in ("rate", "time_scale", "retention"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, not {value!r}")
        if self.start is not None and not self.start * 1000 >= TWITTER_EPOCH_MS:
            raise ValueError("start must be an epoch time after 2010-11-04 (Snowflake epoch)")
        for name in ("max_retained", "max_connections", "max_recoveries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")


@dataclass(frozen=True, slots=True)
class PublishedMessage:
    """One message of a timeline.

    Attributes:
        seq: its position k in its source (0, 1, ...); its partition on an endpoint of N
            partitions is ``seq % N + 1``.
        time: its publish time (server epoch seconds).
        id: the Tweet id (``data.id``; rewritten to a Snowflake on a Tweet timeline), a like's
            ``data.id``, an activity event's ``data.event_uuid``; otherwise the message line
            itself, as text (compliance and label events have no id of their own).
        line: the message as published (the bytes every connection is sent, before field
            trimming and rule matching).
    """

    seq: int
    time: float
    id: str
    line: bytes


def _iso_ms(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def parse_timestamp(raw: str) -> float:
    """``YYYY-MM-DDTHH:MM:SSZ`` (as checked by ``check_stream_query``) to epoch seconds."""
    text = raw.strip()
    return datetime.fromisoformat(text[:-1] + "+00:00").timestamp()


def _identity(doc: Any, line: bytes) -> str:
    data = doc.get("data") if isinstance(doc, dict) else None
    if isinstance(data, dict):
        for key in ("id", "event_uuid"):
            value = data.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)
    return line.decode("utf-8", "replace")


def _publish(line: bytes, seq: int, time: float, *, tweets: bool) -> PublishedMessage:
    """The message as published: on a Tweet timeline, with the Snowflake id of ``time``."""
    doc: Any = None
    if line[:1] == b"{":
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            doc = None
    data = doc.get("data") if isinstance(doc, dict) else None
    if tweets and isinstance(data, dict) and "id" in data:
        old = data["id"]
        new = str(snowflake_id(int(time * 1000), seq))
        data = dict(data, id=new)
        history = data.get("edit_history_tweet_ids")
        if isinstance(history, list):
            data["edit_history_tweet_ids"] = [new if h == old else h for h in history] or [new]
        if "created_at" in data:
            data["created_at"] = _iso_ms(time)
        doc = dict(doc, data=data)
        return PublishedMessage(seq, time, new, orjson.dumps(doc))
    return PublishedMessage(seq, time, _identity(doc, line), line)


class _SourceTimeline:
    """The published messages of one source, materialised lazily up to the current time.

    Thread-safe (its own lock). The k-th message is published at the scheduled time
    ``base_time + (k - base_seq) / rate``; the schedule restarts at the current time after
    the source was found dry, so that messages fed later are not published in the past.
    """

    def __init__(
        self, cursor: _Cursor, config: Timeline, start: float, *, tweets: bool, name: str
    ) -> None:
        self._cursor = cursor
        self._rate = config.rate
        self._retention = config.retention
        self._cap = config.max_retained
        self._tweets = tweets
        self.name = name
        self._lock = threading.Lock()
        self._entries: list[PublishedMessage] = []
        self._times: list[float] = []  # parallel to _entries, for bisect
        self._lo = 0  # entries[:_lo] are dropped (compacted away now and then)
        self._base_seq = 0  # seq of entries[0]
        self._next_seq = 0
        self._sched_seq = 0
        self._sched_time = start
        self._dry = False
        self.dropped = 0

    def _scheduled(self, seq: int) -> float:
        return self._sched_time + (seq - self._sched_seq) / self._rate

    def advance(self, now: float) -> None:
        """Publish every message scheduled at or before ``now``; drop what retention drops."""
        with self._lock:
            if self._dry:
                # Found dry before: look again (feed() may have added), schedule from now.
                self._sched_seq, self._sched_time = self._next_seq, now
            first = self._scheduled(self._next_seq)
            if first > now:
                return
            due = math.floor((now - first) * self._rate + 1e-9) + 1
            oldest = now - self._retention
            for i in range(due):
                seq = self._next_seq
                line = self._cursor.take()
                if line is None:
                    self._dry = True
                    break
                self._dry = False
                self._next_seq += 1
                when = self._scheduled(seq)
                if due - i > self._cap or when < oldest:
                    # Published and already out of retention, and so is everything before
                    # it: the retained entries stay contiguous from _base_seq.
                    self.dropped += 1 + len(self._entries) - self._lo
                    self._entries.clear()
                    self._times.clear()
                    self._lo = 0
                    self._base_seq = self._next_seq
                    continue
                self._entries.append(_publish(line, seq, when, tweets=self._tweets))
                self._times.append(when)
            self._trim(oldest)

    def _trim(self, oldest: float) -> None:
        live = len(self._entries) - self._lo
        drop = max(0, live - self._cap)
        while self._lo + drop < len(self._entries) and self._times[self._lo + drop] < oldest:
            drop += 1
        if drop:
            self._lo += drop
            self.dropped += drop
        if self._lo > 4096 and self._lo * 2 > len(self._entries):
            del self._entries[: self._lo]
            del self._times[: self._lo]
            self._base_seq += self._lo
            self._lo = 0

    @property
    def end(self) -> int:
        """The seq the next published message will have (= how many were published)."""
        with self._lock:
            return self._next_seq

    def first_retained(self) -> int:
        with self._lock:
            return self._base_seq + self._lo

    def seq_at(self, when: float) -> int:
        """The seq of the first published message with time >= ``when`` (else :attr:`end`)."""
        with self._lock:
            i = bisect_left(self._times, when, self._lo)
            return self._base_seq + i if i < len(self._entries) else self._next_seq

    def seq_after(self, when: float) -> int:
        """The seq of the first published message with time > ``when`` (else :attr:`end`)."""
        with self._lock:
            i = bisect_right(self._times, when, self._lo)
            return self._base_seq + i if i < len(self._entries) else self._next_seq

    def read(self, seq: int, limit: int) -> tuple[list[PublishedMessage], bool]:
        """Up to ``limit`` published messages from ``seq`` on, and whether ``seq`` was lost."""
        with self._lock:
            i = seq - self._base_seq
            if i < self._lo and seq < self._next_seq:
                return [], True
            i = max(i, self._lo)
            return self._entries[i : i + limit], False

    def next_time(self) -> float | None:
        """When the next message is scheduled (``None``: the source is dry)."""
        with self._lock:
            return None if self._dry else self._scheduled(self._next_seq)

    def snapshot(self) -> list[PublishedMessage]:
        with self._lock:
            return self._entries[self._lo :]


@dataclass(slots=True)
class _Plan:
    """What one timeline stream request is to be sent."""

    kind: StreamKind
    now: float  # server time of the request
    replay_from: float | None = None  # backfill / window start (server time)
    until: float | None = None  # window end, exclusive


def plan_request(
    config: Timeline, query: Mapping[str, list[str]], now: float
) -> _Plan | tuple[str, dict[str, list[str]]]:
    """The plan for a (checked) stream query, or X's 400 ``(message, parameters)``."""
    backfill = query.get("backfill_minutes")
    minutes = int(backfill[-1].strip()) if backfill else 0
    start_values = query.get("start_time")
    end_values = query.get("end_time")
    start_raw = start_values[-1] if start_values else None
    end_raw = end_values[-1] if end_values else None
    if start_raw is None and end_raw is None:
        if minutes and not config.backfill_allowed:
            return (
                "The `backfill_minutes` query parameter is not available for your account "
                "(Enterprise access required)",
                {"backfill_minutes": list(backfill or ())},
            )
        if minutes:
            return _Plan("backfill", now, replay_from=now - minutes * 60.0)
        return _Plan("live", now)
    if backfill:
        return (
            "The `backfill_minutes` query parameter can not be used with `start_time` or "
            "`end_time`",
            {"backfill_minutes": list(backfill)},
        )
    if not config.recovery_allowed:
        name = "start_time" if start_raw is not None else "end_time"
        return (
            f"The `{name}` query parameter is not available for your account "
            "(Enterprise access required)",
            {name: list(query[name])},
        )
    until = parse_timestamp(end_raw) if end_raw is not None else now
    start = parse_timestamp(start_raw) if start_raw is not None else now - RECOVERY_LIMIT
    if start_raw is not None and start < now - RECOVERY_LIMIT:
        return (
            f"Invalid 'start_time':'{start_raw}'. 'start_time' must be on or after "
            f"{_iso_ms(now - RECOVERY_LIMIT)[:19]}Z",
            {"start_time": list(query["start_time"])},
        )
    if start >= until:
        name, raw = ("start_time", start_raw) if start_raw is not None else ("end_time", end_raw)
        return (
            f"Invalid '{name}':'{raw}'. 'start_time' must be before 'end_time'",
            {name: list(query[name])},
        )
    return _Plan("window", now, replay_from=start, until=until)


_CutEnding: TypeAlias = Literal["cut", "close", "reset", "stall"]


@dataclass(eq=False)
class _OpenStream:
    """A stream response in progress, as :meth:`FakeStreamServer.cut` and the limits see it."""

    index: int  # of its RecordedRequest
    connection: int
    endpoint: str | None
    partition: int | None
    kind: StreamKind
    sock: Any  # socket.socket, probed for a client that has gone
    cut_request: _CutEnding | None = None
    cut_seq: int = 0  # bumped by every cut request, so a repeated request is seen
    applied: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request_cut(self, ending: _CutEnding) -> None:
        """Ask the connection's thread to end (or stall) the response with ``ending``."""
        with self.lock:
            self.applied.clear()
            self.cut_request = ending
            self.cut_seq += 1

    def pending(self, seen: int) -> tuple[_CutEnding, int] | None:
        """The cut requested since request number ``seen``, if any."""
        with self.lock:
            if self.cut_seq == seen or self.cut_request is None:
                return None
            return self.cut_request, self.cut_seq

    def settle(self, seen: int) -> bool:
        """Mark the ending asked by request ``seen`` as applied, unless a newer one came."""
        with self.lock:
            if self.cut_seq != seen:
                return False
            self.applied.set()
            return True


def _partition_filter(
    served: ServedEndpoint | None, partition: int | None
) -> Callable[[int], bool]:
    if served is None or served.partitions is None or partition is None:
        return lambda seq: True
    n = served.partitions
    return lambda seq: seq % n + 1 == partition


#: Longest real pause between looks at the clock, a cut request or an attempt's duration.
_POLL = 0.02
_BATCH = 512

#: ``idle(until, body)``: wait until monotonic ``until``, keep-alives through ``body`` (if
#: any); False when the client went away or the server is stopping.
_Idle: TypeAlias = Callable[[float, "_Body | None"], bool]
#: What :func:`run_stream` ended with: ``"done"`` (clean end sent), ``"cut"`` (FIN to
#: follow), ``"reset"`` (RST to follow) or ``"gone"`` (client left, server stopping).
Outcome: TypeAlias = Literal["done", "cut", "reset", "gone"]


def run_stream(
    *,
    timeline: _SourceTimeline,
    plan: _Plan,
    accept: Callable[[int], bool],
    body: _Body,
    shaper: _Shaper,
    attempt: Attempt,
    ctl: _OpenStream,
    clock: Callable[[], float],
    time_scale: float,
    idle: _Idle,
    unregister: Callable[[], None],
) -> Outcome:
    """Send one timeline stream response body (the head is sent); see the module docstring.

    Runs on the connection's thread. ``unregister`` is called before the last bytes of a
    response that ends (so a client reconnecting at once is not refused as one connection
    too many); ``ctl.applied`` is set once a requested cut (or the attempt's ending) is in
    effect for endings that leave the socket open (stall, hold).

    Raises:
        _ClientGone, OSError: the client went away while being written to.
    """
    timeline.advance(clock())
    if plan.kind == "live":
        pos = timeline.seq_after(plan.now)
    else:
        assert plan.replay_from is not None
        pos = timeline.seq_at(plan.replay_from)
    until = plan.until
    limit = attempt.messages
    deadline = time.monotonic() + attempt.duration if attempt.duration is not None else None
    count = 0
    ending: str | None = None
    seen = 0
    while ending is None:
        if (request := ctl.pending(seen)) is not None:
            ending, seen = request
            break
        if (limit is not None and count >= limit) or (
            deadline is not None and time.monotonic() >= deadline
        ):
            ending = attempt.ending
            break
        now = clock()
        timeline.advance(now)
        batch, lost = timeline.read(pos, _BATCH)
        if lost:
            logger.warning(
                "%s: a connection fell behind the retained timeline; disconnecting it",
                timeline.name,
            )
            ending = "lost"
            break
        finished = False
        for message in batch:
            if until is not None and message.time >= until:
                finished = True
                break
            pos = message.seq + 1
            if not accept(message.seq):
                continue
            wire = shaper.shape(message.line) if shaper.active else message.line
            if wire is None:
                continue
            body.add(message.line, wire)
            count += 1
            if limit is not None and count >= limit:
                break
        if until is not None and not finished and now >= until and pos >= timeline.end:
            finished = True
        if finished:
            ending = "window"
            break
        if batch:
            body.maybe_pump()
            continue
        # Nothing new: sleep until the next message is due (in real seconds), briefly.
        body.pump()
        due = timeline.next_time()
        pause = _POLL if due is None else max(0.0, (due - clock()) / time_scale)
        if until is not None:
            pause = min(pause, max(0.0, (until - clock()) / time_scale))
        wake = time.monotonic() + min(pause, _POLL)
        if deadline is not None:
            wake = min(wake, deadline)
        if not idle(wake, body):
            return "gone"
    body.pump()
    while True:
        if ending in ("window", "close"):
            unregister()
            body.finish()
            return "done"
        if ending in ("cut", "lost"):
            unregister()
            half = None
            if ending == "cut":
                half = _next_wire(timeline, pos, accept, shaper)
            body.cut(half)
            return "cut"
        if ending == "reset":
            unregister()
            return "reset"
        # "stall" (silence) or "hold" (keep-alives only): the socket stays open, until the
        # client leaves or cut() asks for another ending.
        while ctl.settle(seen) or ctl.pending(seen) is None:
            if not idle(time.monotonic() + _POLL, body if ending == "hold" else None):
                return "gone"
        request = ctl.pending(seen)
        assert request is not None
        ending, seen = request


def _next_wire(
    timeline: _SourceTimeline, pos: int, accept: Callable[[int], bool], shaper: _Shaper
) -> bytes | None:
    """The next message a connection at ``pos`` would send, if already published."""
    batch, _ = timeline.read(pos, _BATCH)
    for message in batch:
        if accept(message.seq):
            wire = shaper.shape(message.line) if shaper.active else message.line
            if wire is not None:
                return wire
    return None
