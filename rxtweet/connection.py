"""Where lines become messages: one logical stream, reconnected, parsed and shared.

A :class:`Connection` puts the pieces together around one :class:`~rxtweet.http.StreamRequest`::

    transport.lines ─> reconnecting(policy) ─> parse_lines(convert) ─> share_connection
         (bytes)          (bytes, retried)       (Parsed | events)        (one socket)

and interleaves the lifecycle events (connected, keep-alive, reconnecting, malformed
message …) with the parsed messages in one ordered stream, :attr:`Connection.items`, which
the v1.1 and v2 streams split into their substreams. Everything on it is emitted by one thread
at a time, in the order it happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import requests
from reactivex import Observable, abc

from .events import Closed, Connected, Disconnected, Errored, StreamEvent
from .http import RateLimit, StreamRequest
from .operators.share import BlockedInsideHold, SharedConnection
from .parse import Parsed, ParseStats, parse_lines
from .reconnect import DataSignal, ReconnectPolicy, reconnecting
from .transport import DEFAULT_CHUNK_SIZE, lines

__all__ = ["Connection", "Item", "LineOperator", "select_events", "select_messages"]

log = logging.getLogger("rxtweet.connection")

_T = TypeVar("_T")

#: What :attr:`Connection.items` carries: a parsed message (with its raw line) or an event.
Item = Parsed[_T] | StreamEvent

#: An operator on one connection's lines (framing such as v1.1's ``delimited=length``).
LineOperator = Callable[[Observable[bytes]], Observable[bytes]]

#: The transport's default ``max_line`` (:func:`rxtweet.transport.lines`).
DEFAULT_MAX_LINE = 64 * 1024 * 1024


class Connection(Generic[_T]):
    """A reconnecting, parsed, shared stream over one request.

    Args:
        request: the HTTP request to (re)open.
        convert: turns one decoded JSON object into a message (e.g. a ``StreamResponse``).
        policy: when and how soon to reconnect.
        session: the ``requests.Session`` each connection uses (default: a fresh one each).
        stall_timeout, chunk_size: passed to :func:`rxtweet.transport.lines`.
        scheduler: where reconnect waits run (default
            :class:`~rxtweet.scheduling.WaitScheduler`, threads named ``rxtweet-wait-N``);
            tests pass a virtual-time scheduler.
        frame: an operator applied to each connection's lines before reconnecting and
            parsing (it is subscribed afresh per connection, so its state is too).
        exact_ints: parse integers beyond 64 bits exactly (see :func:`rxtweet.parse.decode`).
            Off by default: X sends ids as strings (v2) or 64-bit numbers (v1.1), and the
            check costs about a third of ``orjson.loads`` per message.
        is_data: whether a parsed message is real data, which proves the connection works
            and so restarts the reconnect backoff (see
            :class:`~rxtweet.reconnect.ReconnectPolicy`); e.g. :func:`rxtweet.parse.is_v2_data`,
            false for a system message such as an ``operational-disconnect``. ``None``: every
            parsed message counts. Keep-alives and malformed lines never count. Called on
            the reader thread, only until the connection's first data.
        max_line: passed to :func:`rxtweet.transport.lines` (default 64 MiB, as there). A
            longer line is dropped there and counted in :attr:`stats` (``too_long``), with
            no event.
    """

    def __init__(
        self,
        request: StreamRequest,
        convert: Callable[[dict[str, Any]], _T],
        *,
        policy: ReconnectPolicy | None = None,
        session: requests.Session | None = None,
        stall_timeout: float = 90.0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        scheduler: abc.SchedulerBase | None = None,
        frame: LineOperator | None = None,
        exact_ints: bool = False,
        is_data: Callable[[_T], bool] | None = None,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        self.request = request
        self.policy = policy or ReconnectPolicy()
        self.stats = ParseStats()
        self._convert = convert
        self._session = session
        self._stall_timeout = stall_timeout
        self._chunk_size = chunk_size
        self._scheduler = scheduler
        self._frame = frame
        self._exact_ints = exact_ints
        self._is_data = is_data
        self._max_line = max_line
        self._shared: SharedConnection[Item[_T]] = SharedConnection(Observable(self._subscribe))

    def __repr__(self) -> str:
        return f"<Connection {self.request!r}>"

    @property
    def lines(self) -> Observable[bytes]:
        """Cold: each subscription opens its own connection, reconnected by the policy."""
        return self._raw_lines().pipe(reconnecting(self.policy, scheduler=self._scheduler))

    @property
    def items(self) -> Observable[Item[_T]]:
        """Parsed messages and lifecycle events, in order, over one shared connection.

        The first subscriber opens the connection, the last one to dispose closes it; after
        the stream has ended the next subscriber opens a fresh one. Ends with
        :class:`~rxtweet.events.Disconnected` (after :class:`~rxtweet.events.Errored` and
        before ``on_error`` when it fails).
        """
        return self._shared.observable

    @property
    def connected(self) -> bool:
        """Whether the shared connection is open (or being reopened) now."""
        return self._shared.connected

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Subscribe several substreams inside the block; the connection opens at its end."""
        with self._shared.hold():
            yield

    def _raw_lines(
        self, on_response: Callable[[requests.Response], None] | None = None
    ) -> Observable[bytes]:
        source = lines(
            self.request,
            session=self._session,
            stall_timeout=self._stall_timeout,
            chunk_size=self._chunk_size,
            max_line=self._max_line,
            on_response=on_response,
            on_line_dropped=self.stats._count_too_long,
        )
        return source if self._frame is None else source.pipe(self._frame)

    def _subscribe(
        self, observer: abc.ObserverBase[Item[_T]], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        emit = observer.on_next
        last_response: list[requests.Response | None] = [None]
        lock = threading.Lock()
        finished = [False]

        def on_response(response: requests.Response) -> None:
            last_response[0] = response
            headers = dict(response.headers)
            emit(
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
            emit(event)

        def finish() -> bool:
            with lock:
                if finished[0]:
                    return False
                finished[0] = True
                return True

        def on_error(error: Exception) -> None:
            if not finish():
                return
            log.debug("stream %s ended: %r", self.request, error)
            try:
                emit(Errored(error))
                emit(Disconnected())
            finally:
                observer.on_error(error)

        def on_completed() -> None:
            if not finish():
                return
            try:
                emit(Disconnected())
            finally:
                observer.on_completed()

        # Only data restarts the backoff: judged here, after parsing, once per connection.
        data = DataSignal()
        is_data = self._is_data

        def on_next(item: Item[_T]) -> None:
            if data.waiting and type(item) is Parsed and (is_data is None or is_data(item.value)):
                data.set()
            emit(item)

        source = self._raw_lines(on_response).pipe(
            reconnecting(self.policy, scheduler=self._scheduler, on_event=on_event, data=data),
            parse_lines(self._convert, self.stats, keep_raw=True, exact_ints=self._exact_ints),
        )
        return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)


# --- splitting items into substreams ------------------------------------------------------


def select_messages(
    pick: Callable[[Any], Any],
) -> Callable[[Observable[Item[Any]]], Observable[Any]]:
    """``pick(message)`` of each parsed message, skipping ``None``: filter and map in one hop.

    ::

        items:   --P(a)--Connected--P(b)--KeepAlive--P(c)--|
        select_messages(pick)   (pick(b) is None)
        result:  --pick(a)---------------------------pick(c)--|
    """

    def operator(source: Observable[Item[Any]]) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            emit = observer.on_next

            def on_next(item: Any) -> None:
                if type(item) is Parsed:
                    value = pick(item.value)
                    if value is not None:
                        emit(value)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def select_events() -> Callable[[Observable[Item[Any]]], Observable[StreamEvent]]:
    """The events of the stream, completing after ``Disconnected``.

    It never errors for the stream's own failure (that is told by ``Errored``), with one
    exception: a subscription made in a way that cannot work, such as a blocking ``.run()``
    inside ``hold()`` (:class:`~rxtweet.operators.share.BlockedInsideHold`), fails with that
    error instead of completing empty.

    ::

        items:   --Connected--P(a)--Reconnecting--Errored--Disconnected--X
        select_events()
        result:  --Connected--------Reconnecting--Errored--Disconnected|
    """

    def operator(source: Observable[Item[Any]]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(item: Any) -> None:
                if type(item) is not Parsed:
                    observer.on_next(item)
                    if type(item) is Disconnected:
                        observer.on_completed()

            def on_error(error: Exception) -> None:
                if isinstance(error, BlockedInsideHold):
                    observer.on_error(error)
                else:
                    observer.on_completed()

            return source.subscribe(on_next, on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator
