"""Where lines become messages: one logical stream, reconnected, parsed and shared.

A :class:`Connection` puts the pieces together around one :class:`~rxtweet.http.StreamRequest`::

    transport.batches ─> reconnecting(policy) ─> parse_lines(convert) ─> share_connection
    (a read's lines)      (batches, retried)      (Parsed | events)        (one socket)

Inside, the lines travel a read at a time (:class:`~rxtweet.transport_base.BatchTransport`;
a transport with only ``lines`` has each line wrapped as a batch of one): the reconnect
operator and the parser's loop are paid once per read, not once per line. That is an
implementation of the same operators, not another shape: :attr:`Connection.lines` is the
cold Observable of raw lines, and ``lines.pipe(parse_lines(convert))`` gives the same items
as :attr:`Connection.items` (``tests/test_batches.py`` checks both on the same input).

The transport is a seam (:class:`~rxtweet.transport_base.Transport`): by default
:class:`~rxtweet.transport.RequestsTransport`; a test (or an httpx or aiohttp transport)
passes its own, and nothing else changes.

and interleaves the lifecycle events (connected, keep-alive, reconnecting, malformed
message …) with the parsed messages in one ordered stream, :attr:`Connection.items`, which
the v1.1 and v2 streams split into their substreams. Everything on it is emitted by one thread
at a time, in the order it happened.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar, Unpack

import reactivex
import requests
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable

from .events import Closed, Connected, Disconnected, Errored, StreamEvent
from .http import RateLimit, StreamRequest
from .operators.forward import subscribe_forward, subscribe_unguarded
from .operators.share import SharedConnection, SharedSource, _Tap, multicast_of
from .parse import Parsed, ParseStats, ReadTally, batch_parser
from .reconnect import DataSignal, ReconnectPolicy, reconnecting
from .recovery.gap import RecoveryMode
from .substreams import select_events, select_messages
from .transport import RequestsTransport
from .transport_base import ResponseHead, Transport, TransportOptions, TransportOptionsKw

if TYPE_CHECKING:
    from .recovery.tracker import RecoveryTracker
    from .recovery.windows import RecoveryWindows

__all__ = [
    "BatchOperator",
    "Connection",
    "Item",
    "LineOperator",
    "Read",
    "select_events",
    "select_messages",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: What :attr:`Connection.items` carries: a parsed message (with its raw line) or an event.
Item = Parsed[_T] | StreamEvent

#: An operator on one connection's lines (framing such as v1.1's ``delimited=length``).
LineOperator = Callable[[Observable[bytes]], Observable[bytes]]

#: An operator on one connection's batches of lines (a read's lines, in order; see
#: :class:`~rxtweet.transport_base.BatchTransport`), e.g. v1.1's fatal-disconnect check.
BatchOperator = Callable[[Observable[list[bytes]]], Observable[list[bytes]]]


def _one_line_batches(source: Observable[bytes]) -> Observable[list[bytes]]:
    """Each line as a batch of one (a transport without ``batches``, or a line frame)."""

    def subscribe(
        observer: abc.ObserverBase[list[bytes]], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        emit = observer.on_next
        return source.subscribe(
            lambda line: emit([line]), observer.on_error, observer.on_completed, scheduler=scheduler
        )

    return Observable(subscribe)


def _flatten(source: Observable[list[bytes]]) -> Observable[bytes]:
    """The lines of each batch, in order (the guard downstream drops any after a disposal)."""

    def subscribe(
        observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        emit = observer.on_next

        def on_next(batch: list[bytes]) -> None:
            for line in batch:
                emit(line)

        return source.subscribe(
            on_next, observer.on_error, observer.on_completed, scheduler=scheduler
        )

    return Observable(subscribe)


class _Serialized(abc.ObserverBase[_T]):
    """An observer whose calls, from any thread, take turns (a reentrant lock)."""

    def __init__(self, observer: abc.ObserverBase[_T]) -> None:
        self._observer = observer
        self._lock = threading.RLock()

    def on_next(self, value: _T) -> None:
        with self._lock:
            self._observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        with self._lock:
            self._observer.on_error(error)

    def on_completed(self) -> None:
        with self._lock:
            self._observer.on_completed()


class Read(NamedTuple):
    """One read of a connection, as :meth:`Connection.tap_reads` tells it."""

    #: The read's lines that were delivered (keep-alives and malformed lines included),
    #: without line ends: all of them, unless a disposal or a subscriber's exception
    #: stopped the read part-way.
    lines: list[bytes]
    #: Lines converted to messages (the rest are keep-alives and malformed lines).
    messages: int
    #: Of the messages, those whose ``data_of(value)`` is ``None`` (each also given to
    #: ``on_item``); 0 without a ``data_of``.
    without_data: int
    #: The positions in :attr:`lines` of the lines that are no message with data.
    skipped: list[int]
    #: When the read was taken (the tap's ``clock``, before its items were delivered), or
    #: ``None`` for a tap without one.
    received: float | None


class _ReadTap:
    """One :meth:`Connection.tap_reads` registration: its callbacks, each guarded like a
    share's passive tap (an exception is logged and goes no further)."""

    __slots__ = ("clock", "event", "item", "read")

    def __init__(
        self,
        on_read: Callable[[Read], None],
        on_item: Callable[[Any], None],
        on_event: Callable[[Any], None],
        clock: Callable[[], float] | None,
    ) -> None:
        self.read: _Tap[Read] = _Tap(on_read)
        self.item: _Tap[Any] = _Tap(on_item)
        self.event: _Tap[Any] = _Tap(on_event)
        self.clock = clock


def _now(tap: _ReadTap) -> float | None:
    """The tap's clock now; ``None`` without one, or when it raises (a passive tap must
    not end the stream: the tap is then left to read its clock itself)."""
    if tap.clock is None:
        return None
    try:
        return tap.clock()
    except Exception:
        log.debug("a read tap's clock raised", exc_info=True)
        return None


def _others(taps: tuple[_ReadTap, ...]) -> Callable[[Any], None]:
    """The ``on_other`` of a read's tally: each tap's ``on_item``."""
    if len(taps) == 1:
        return taps[0].item.on_next

    def on_other(item: Any) -> None:
        for tap in taps:
            tap.item.on_next(item)

    return on_other


class _Hold(Protocol):
    def hold(self, since: float) -> Callable[[], None]: ...


class RecoverySink(Protocol):
    """What recovery tells the de-duplication above it (a
    :class:`~rxtweet.recovery.dedup.Deduplicated`): that the next item emitted on this
    thread came through a recovery, and which keys to keep while a window replays."""

    def mark_recovered(self) -> None: ...

    @property
    def window(self) -> _Hold: ...


class Connection(SharedSource[Any], Generic[_T]):
    """A reconnecting, parsed, shared stream over one request.

    Args:
        request: the HTTP request to (re)open.
        convert: turns one decoded JSON object into a message (e.g. a ``StreamResponse``).
        transport: performs each connection (a :class:`~rxtweet.transport_base.Transport`);
            default :class:`~rxtweet.transport.RequestsTransport` over ``session``.
        options: how the transport reads (:class:`~rxtweet.transport_base.TransportOptions`:
            ``stall_timeout``, ``connect_timeout``, ``header_timeout``, ``chunk_size``,
            ``max_line``); the defaults when ``None``.
        **overrides: single fields of ``options`` (``stall_timeout=21.0``), which win over it.
        policy: when and how soon to reconnect.
        session: the ``requests.Session`` each connection of the default transport uses
            (default: a fresh one each); ignored when ``transport`` is given.
        scheduler: where reconnect waits run (default
            :class:`~rxtweet.scheduling.WaitScheduler`, threads named ``rxtweet-wait-N``);
            tests pass a virtual-time scheduler.
        frame: an operator applied to each connection's lines before reconnecting and
            parsing (it is subscribed afresh per connection, so its state is too). With a
            frame the lines travel one per batch (a line operator sees every line).
        batch_frame: an operator applied to each connection's batches of lines (after
            ``frame``), likewise subscribed afresh per connection.
        exact_ints: parse integers beyond 64 bits exactly (see :func:`rxtweet.parse.decode`).
            Off by default: X sends ids as strings (v2) or 64-bit numbers (v1.1), and the
            check costs about a third of ``orjson.loads`` per message.
        is_data: whether a parsed message is real data, which proves the connection works
            and so restarts the reconnect backoff (see
            :class:`~rxtweet.reconnect.ReconnectPolicy`); e.g.
            :func:`rxtweet.v2.convert.is_v2_data`,
            false for a system message such as an ``operational-disconnect``. ``None``: every
            parsed message counts. Keep-alives and malformed lines never count. Called on
            the reader thread, only until the connection's first data.
        recovery: ``None`` (default), ``"backfill"`` or ``"full"``: what each reconnect asks
            for to get the gap since the last data item back (:mod:`rxtweet.recovery`);
            the announcing events (:class:`~rxtweet.events.Backfilling`,
            :class:`~rxtweet.events.DataLost`, ...) are on :attr:`items`. A 400 answer to
            such a request is reported once (:class:`~rxtweet.events.RecoveryUnavailable`)
            and the attempt is made again without it.
        clock: epoch seconds now, for the gap (``time.time``; tests pass a fake server's).
        created_of: a message's creation time (epoch seconds) or ``None``; with it, the
            items a backfill re-sends (created before the reconnect) are reported to
            :attr:`recovery_sink` as recovered.

    :attr:`recovery_sink` (set by the stream that de-duplicates this connection's items) is
    told which items came through a recovery and keeps the keys a recovery window needs.

    A line longer than ``options.max_line`` (default 64 MiB) is dropped by the transport and
    counted in :attr:`stats` (``too_long``), with no event.
    """

    def __init__(
        self,
        request: StreamRequest,
        convert: Callable[[dict[str, Any]], _T],
        *,
        transport: Transport | None = None,
        options: TransportOptions | None = None,
        policy: ReconnectPolicy | None = None,
        session: requests.Session | None = None,
        scheduler: abc.SchedulerBase | None = None,
        frame: LineOperator | None = None,
        batch_frame: BatchOperator | None = None,
        exact_ints: bool = False,
        is_data: Callable[[_T], bool] | None = None,
        recovery: RecoveryMode | None = None,
        clock: Callable[[], float] = time.time,
        created_of: Callable[[_T], float | None] | None = None,
        **overrides: Unpack[TransportOptionsKw],
    ) -> None:
        from .recovery.gap import check_mode

        options = options if options is not None else TransportOptions()
        self.request = request
        self.options = replace(options, **overrides) if overrides else options
        self.transport: Transport = (
            transport if transport is not None else RequestsTransport(session)
        )
        self.policy = policy or ReconnectPolicy()
        self.stats = ParseStats()
        self._convert = convert
        self._scheduler = scheduler
        self._frame = frame
        self._batch_frame = batch_frame
        self._exact_ints = exact_ints
        self._is_data = is_data
        self.recovery: RecoveryMode | None = check_mode(recovery)
        self.clock = clock
        self._created_of = created_of
        self.recovery_sink: RecoverySink | None = None
        self._read_taps: tuple[_ReadTap, ...] = ()
        self._data_of: Callable[[Any], Any] | None = None
        self._taps_lock = threading.Lock()
        self._shared: SharedConnection[Item[_T]] = SharedConnection(
            Observable(self._subscribe), guarded=True
        )

    def __repr__(self) -> str:
        return f"<Connection {self.request!r}>"

    @property
    def lines(self) -> Observable[bytes]:
        """Cold: each subscription opens its own connection, reconnected by the policy."""
        return _flatten(
            self._raw_batches().pipe(reconnecting(self.policy, scheduler=self._scheduler))
        )

    @property
    def items(self) -> Observable[Item[_T]]:
        """Parsed messages and lifecycle events, in order, over one shared connection.

        The first subscriber opens the connection, the last one to dispose closes it; after
        the stream has ended the next subscriber opens a fresh one. Ends with
        :class:`~rxtweet.events.Disconnected` (after :class:`~rxtweet.events.Errored` and
        before ``on_error`` when it fails).
        """
        return self._shared.observable

    def tap_reads(
        self,
        on_read: Callable[[Read], None],
        on_item: Callable[[Item[_T]], None],
        on_event: Callable[[Item[_T]], None],
        *,
        data_of: Callable[[Any], Any] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> abc.DisposableBase:
        """Observe the reads of every subscription of :attr:`items` passively, until the
        returned disposable is disposed: ``on_read(read)`` after each read's items were
        delivered (a :class:`Read`: its lines and counts, none of its items),
        ``on_item(item)`` with each of a read's items that is not a message with data (a
        keep-alive, a malformed line, a message whose ``data_of(value)`` is ``None``), and
        ``on_event(item)`` with every item that is not a read's (a lifecycle event, a
        recovery window's item).

        Passive, like :meth:`~rxtweet.operators.share.SharedConnection.tap` (it opens no
        connection, keeps none open; an exception a callback raises is logged and dropped),
        but the messages of a read cost it nothing each: metrics
        (:func:`rxtweet.metrics.metrics_of`) count them from the read's counts and lines.
        ``data_of`` is a fast callable (``operator.attrgetter("data")``); one per
        connection (``ValueError`` for another). ``clock``, when given, is read once per
        read before its items are delivered (:attr:`Read.received`: a slow subscriber does
        not make a read look later). All callbacks run on the delivering thread;
        disposing is idempotent and thread-safe (a read already being delivered may still
        reach them once).
        """
        tap = _ReadTap(on_read, on_item, on_event, clock)
        with self._taps_lock:
            if data_of is not None:
                if self._data_of is not None and self._data_of is not data_of:
                    raise ValueError("a connection's read taps share one data_of")
                self._data_of = data_of
            self._read_taps = (*self._read_taps, tap)

        def dispose() -> None:
            with self._taps_lock:
                self._read_taps = tuple(t for t in self._read_taps if t is not tap)

        return Disposable(dispose)

    def _raw_batches(
        self,
        on_response: Callable[[ResponseHead], None] | None = None,
        tracker: RecoveryTracker | None = None,
    ) -> Observable[list[bytes]]:
        """One attempt's lines, a read at a time, framed (a cold Observable per attempt)."""
        transport = self.transport
        batches = getattr(transport, "batches", None) if self._frame is None else None

        # Deferred: the transport is asked per subscription (per attempt), never when a stream
        # is built, and an exception raised by a transport's ``lines`` becomes that attempt's
        # error, so it reaches Errored/on_exception instead of escaping the subscribe call.
        def start(_: abc.SchedulerBase | None) -> Observable[list[bytes]]:
            request = self.request if tracker is None else tracker.request_for(self.request)
            dropped = self.stats._count_too_long
            source: Observable[list[bytes]]
            if batches is not None:
                source = batches(
                    request, self.options, on_response=on_response, on_line_dropped=dropped
                )
            else:
                lines = transport.lines(
                    request, self.options, on_response=on_response, on_line_dropped=dropped
                )
                if self._frame is not None:
                    lines = lines.pipe(self._frame)
                source = _one_line_batches(lines)
            if tracker is not None:
                # X refusing a recovery request (400) is not the stream's failure: the
                # tracker turns recovery off and the same attempt is made without it.
                def refused(
                    error: Exception, _: Observable[list[bytes]]
                ) -> Observable[list[bytes]]:
                    if tracker.refused(error, request):
                        return reactivex.defer(start)
                    return reactivex.throw(error)

                source = source.pipe(ops.catch(refused))
            return source if self._batch_frame is None else source.pipe(self._batch_frame)

        # reactivex.defer(start), one hop less per batch: the attempt's source is subscribed
        # with the observer this Observable was given (already reactivex's guard).
        def subscribe(
            observer: abc.ObserverBase[list[bytes]], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            try:
                source = start(scheduler)
            except Exception as error:  # noqa: BLE001 - as defer: the attempt's error
                return reactivex.throw(error).subscribe(observer, scheduler=scheduler)
            return subscribe_forward(source, observer, scheduler)

        return Observable(subscribe)

    def _window(self, start: float, end: float) -> Connection[_T]:
        """A recovery connection for the items created from ``start`` to ``end``."""
        from .recovery.tracker import iso_time, with_params

        request = with_params(
            self.request,
            backfill_minutes=None,
            start_time=iso_time(start),
            end_time=iso_time(end + 1.0),  # X's times are whole seconds: round up
        )
        return Connection(
            request,
            self._convert,
            transport=self.transport,
            options=replace(self.options, turns=None),
            policy=self.policy,
            scheduler=self._scheduler,
            frame=self._frame,
            batch_frame=self._batch_frame,
            exact_ints=self._exact_ints,
            is_data=self._is_data,
        )

    def _subscribe(
        self, observer: abc.ObserverBase[Item[_T]], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        windows: RecoveryWindows | None = None
        tracker: RecoveryTracker | None = None
        if self.recovery == "full":
            # The live reader, the wait threads and the windows' readers all emit: one lock.
            observer = _Serialized(observer)
        emit = observer.on_next
        last_response: list[ResponseHead | None] = [None]
        lock = threading.Lock()
        finished = [False]

        def emit_event(event: Item[_T]) -> None:
            # An item that is not a read's (a lifecycle event, a recovery window's item):
            # delivered, then shown to each read tap's on_event.
            emit(event)
            for tap in self._read_taps:
                tap.event.on_next(event)

        def on_response(response: ResponseHead) -> None:
            last_response[0] = response
            if tracker is not None:
                tracker.on_connected()
            headers = dict(response.headers)
            emit_event(
                Connected(
                    status_code=response.status_code,
                    headers=headers,
                    rate_limit=RateLimit.from_headers(headers),
                    response=response,
                )
            )

        def on_event(event: StreamEvent) -> None:
            if isinstance(event, Closed) and event.response is None:
                event = Closed(response=last_response[0])
            emit_event(event)

        def finish() -> bool:
            with lock:
                if finished[0]:
                    return False
                finished[0] = True
            if windows is not None:
                windows.dispose()  # nothing of theirs after the end
            return True

        def on_error(error: Exception) -> None:
            if not finish():
                return
            log.debug("stream %s ended: %r", self.request, error)
            try:
                emit_event(Errored(error))
                emit_event(Disconnected())
            finally:
                observer.on_error(error)

        def on_completed() -> None:
            if not finish():
                return
            try:
                emit_event(Disconnected())
            finally:
                observer.on_completed()

        # Only data restarts the backoff: judged here, after parsing, once per connection.
        data = DataSignal()
        is_data = self._is_data

        def plain_on_next(item: Item[_T]) -> None:
            if data.waiting and type(item) is Parsed and (is_data is None or is_data(item.value)):
                data.set()
            emit(item)

        on_next: Callable[[Item[_T]], None] = plain_on_next
        if self.recovery is not None:
            tracker, windows, on_next = self._recovering(emit, emit_event, data)
        source = self._raw_batches(on_response, tracker).pipe(
            reconnecting(self.policy, scheduler=self._scheduler, on_event=on_event, data=data)
        )
        # ``source.pipe(parse_lines(...)).subscribe(on_next, ...)``, a read at a time: the
        # parser's loop hands its items to `on_next` itself, and checks `stopped` between
        # them (a disposal inside a batch stops it at the next line, as reactivex's guard
        # stops items after a disposal). Once the connection has had its data, items go
        # straight to `emit`.
        parse = batch_parser(self._convert, self.stats, keep_raw=True, exact_ints=self._exact_ints)
        stopped = [False]
        plain = on_next is plain_on_next
        # emit's share, found once (the parser would look for it on every read); on_next
        # (plain_on_next or recovery's) is no share's.
        emit_share = multicast_of(emit)

        def on_batch(batch: list[bytes]) -> None:
            if data.waiting or not plain:
                target, share = on_next, None
            else:
                target, share = emit, emit_share
            taps = self._read_taps
            if not taps:
                parse(batch, target, stopped, None, share)
                return
            received = [_now(tap) for tap in taps]
            tally = ReadTally(self._data_of, _others(taps))
            try:
                parse(batch, target, stopped, tally)
            finally:
                lines = batch if tally.parsed == len(batch) else batch[: tally.parsed]
                for tap, when in zip(taps, received, strict=True):
                    tap.read.on_next(
                        Read(lines, tally.converted, tally.without_data, tally.skipped, when)
                    )

        # No reactivex guard around on_batch (one Python call less per read): the share
        # subscribes this Observable as guarded, and the reconnect operator is the guard.
        # It passes nothing after its own end, and on_error/on_completed pass once (finish).
        subscription = subscribe_unguarded(source, on_batch, on_error, on_completed, scheduler)

        def stop() -> None:
            stopped[0] = True

        if windows is None:
            return CompositeDisposable(Disposable(stop), subscription)
        return CompositeDisposable(Disposable(stop), subscription, Disposable(windows.dispose))

    def _recovering(
        self,
        emit: Callable[[Item[_T]], None],
        emit_event: Callable[[Item[_T]], None],
        data: DataSignal,
    ) -> tuple[RecoveryTracker, RecoveryWindows | None, Callable[[Item[_T]], None]]:
        """The tracker (and, for ``"full"``, the windows) of one subscription, and the
        ``on_next`` that tells them about data and backfilled items. The tracker's events
        and the windows' items go out through ``emit_event`` (they are no read's)."""
        from .recovery.tracker import RecoveryTracker
        from .recovery.windows import RecoveryWindows

        assert self.recovery is not None
        tracker = RecoveryTracker(self.recovery, clock=self.clock, emit=emit_event)
        windows: RecoveryWindows | None = None
        if self.recovery == "full":
            windows = RecoveryWindows(
                self._window,
                emit_event,
                self.recovery_sink,
                refused=tracker.refused,
                clock=self.clock,
            )
            tracker.open_window = windows.open
        is_data = self._is_data
        created_of = self._created_of
        sink = self.recovery_sink

        def on_next(item: Item[_T]) -> None:
            if type(item) is Parsed and (is_data is None or is_data(item.value)):
                created = created_of(item.value) if created_of is not None else None
                tracker.on_data(created)
                since = tracker.replaying_since
                if since is not None:
                    if created is not None and created < since:
                        if sink is not None:
                            sink.mark_recovered()
                    else:
                        tracker.replaying_since = None  # the backfill is over: live now
                if data.waiting:
                    data.set()
            emit(item)

        return tracker, windows, on_next
