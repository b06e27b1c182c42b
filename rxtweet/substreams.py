"""One holder of a stream's substreams, which every stream type builds on.

A :class:`~rxtweet.connection.Connection` emits one ordered stream of items (each parsed
message as ``Parsed(value, raw)`` and each lifecycle event). A stream type splits it into
typed substreams with :meth:`Substreams.select` (pick a value out of each message) and
:meth:`Substreams.of_type` (the messages of one class); :class:`Substreams` already provides
``items``, ``lines``, ``events``, ``stats``, :meth:`~Substreams.hold`, ``connected`` and the
repr. A new stream type is a short declaration::

    class LikeStream(Substreams[LikeMessage]):
        def __init__(self, connection: Connection[LikeMessage]) -> None:
            super().__init__(connection)
            self.likes = self.select(lambda message: message.like)

Substreams never subscribe by themselves: each is an ``Observable`` over the shared
connection (subscribing to any number of them opens exactly one connection).

A slow consumer goes behind :meth:`Substreams.observe_on_bounded` (``stream.tweets.pipe(
stream.observe_on_bounded(pool, capacity=10_000, overflow="drop_oldest"))``): the operator
:func:`rxtweet.operators.observe_on_bounded`, with its drops also counted in
``stream.stats.overflowed`` and reported as :class:`~rxtweet.events.Overflowed` events on
``stream.events``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Protocol, Self, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .errors import BlockedInsideHold
from .events import Disconnected, Overflowed, StreamEvent
from .handoff import Handoff, OverflowPolicy
from .operators.observe_on_bounded import bounded_operator
from .operators.pass_through import pass_through
from .operators.share import Delivery, guarded_call, same
from .parse import Parsed
from .partitions import span

if TYPE_CHECKING:
    from .aio import AsyncIterate
    from .connection import Item
    from .http import StreamRequest
    from .metrics import StreamMetrics
    from .parse import ParseStats

__all__ = [
    "ItemOperator",
    "ItemSource",
    "OverflowReports",
    "Substreams",
    "select_events",
    "select_messages",
    "select_other_items",
]

log = logging.getLogger(__name__)

_M = TypeVar("_M")
_T = TypeVar("_T")


class ItemSource(Protocol[_M]):
    """What :class:`Substreams` needs of its source: one
    :class:`~rxtweet.connection.Connection`, or a
    :class:`~rxtweet.partitions.MergedConnection` of several partition connections.

    ``items`` is shared (one connection however many subscribe; ends with ``Disconnected``),
    ``lines`` cold, ``stats`` the parse counters, ``request`` the (first) request,
    ``connected`` whether it is open now, ``hold()`` delays connecting to the block's end.
    """

    @property
    def items(self) -> Observable[Item[_M]]: ...

    @property
    def lines(self) -> Observable[bytes]: ...

    @property
    def stats(self) -> ParseStats: ...

    @property
    def request(self) -> StreamRequest: ...

    @property
    def connected(self) -> bool: ...

    def hold(self) -> AbstractContextManager[None]: ...


#: An operator from items to items (e.g. v1.1 turning unknown messages into events).
ItemOperator = Callable[[Observable[Any]], Observable[Any]]


def select_messages(
    pick: Callable[[Any], Any],
) -> Callable[[Observable[Item[Any]]], Observable[Any]]:
    """``pick(message)`` of each parsed message, skipping ``None``: filter and map in one hop.

    .. marble::
        :alt: select_messages

        items:   --P(a)--Connected--P(b)--KeepAlive--P(c)--|
        [          select_messages(pick)                 ]     (pick(b) is None)
        result:  --pick(a)---------------------------pick(c)--|

    On a shared stream's items (a :class:`~rxtweet.operators.share.SharedObservable`) the
    operator is fused into the share (:meth:`~rxtweet.operators.share.SharedObservable.fused`):
    no hop of its own. Same observer, same results.

    >>> import reactivex
    >>> from reactivex import operators as ops
    >>> from rxtweet.events import KeepAlive
    >>> items = reactivex.of(Parsed(1, b"1"), KeepAlive(), Parsed(2, b"2"), Parsed(3, b"3"))
    >>> odd = select_messages(lambda n: n if n % 2 else None)
    >>> items.pipe(odd, ops.to_list()).run()
    [1, 3]
    """

    def wrap(observer: abc.ObserverBase[Any]) -> abc.ObserverBase[Any]:
        return _SelectedMessages(observer, pick)

    return _fused_operator(wrap)


class _SelectedMessages(abc.ObserverBase[Any]):
    """The observer of :func:`select_messages`: ``pick(item.value)`` of each ``Parsed``.

    A subscriber's own guard (the ``AutoDetachObserver`` that ``Observable.subscribe`` wraps
    every subscriber in) is run inline: its ``on_next`` is "nothing once stopped, else the
    subscriber's function", so the function is called here after the same test, without one
    Python call per message for the guard. Any other observer gets ``on_next``.
    """

    __slots__ = ("_emit", "_guard", "_observer", "_pick")

    def __init__(self, observer: abc.ObserverBase[Any], pick: Callable[[Any], Any]) -> None:
        self._observer = observer
        self._pick = pick
        self._guard, self._emit = guarded_call(observer)

    @property
    def selection(self) -> Delivery:
        """For the share (:class:`~rxtweet.operators.share.Selecting`): what this observer
        passes on, so that the share can select without calling :meth:`on_next`."""
        return (Parsed, _of_value(self._pick), self._guard, self._emit)

    @property
    def value_pick(self) -> Callable[[Any], Any]:
        """For the share (:class:`~rxtweet.operators.share.Selecting`): ``pick`` of a
        message's value, so that the parser may deliver it without making the ``Parsed``."""
        return self._pick

    def on_next(self, item: Any) -> None:
        if type(item) is Parsed:
            value = self._pick(item.value)
            if value is not None:
                guard = self._guard
                if guard is None or not guard.is_stopped:
                    self._emit(value)

    def on_error(self, error: Exception) -> None:
        self._observer.on_error(error)

    def on_completed(self) -> None:
        self._observer.on_completed()


def _of_value(pick: Callable[[Any], Any]) -> Callable[[Parsed[Any]], Any]:
    """``pick`` of a ``Parsed`` item's ``value``. An ``operator.attrgetter`` (the hot
    ``tweets`` pick) becomes another, of the dotted names (C code, no Python call per item;
    its attribute names are read from its pickling, the one public place that tells them)."""
    if pick is same:
        return _VALUE
    if type(pick) is attrgetter:
        names = pick.__reduce__()[1]
        if all(type(name) is str for name in names):
            return attrgetter(*(f"value.{name}" for name in names))

    def picked(item: Parsed[Any]) -> Any:
        return pick(item.value)

    return picked


_VALUE: Final = attrgetter("value")


class _OtherItems(abc.ObserverBase[Any]):
    """The observer of :func:`select_other_items`: every item that is not a ``Parsed``. It
    tells the share so (``ignores``), which may then leave the messages out of its
    deliveries to it (see :data:`~rxtweet.operators.share.ValueCalls`)."""

    __slots__ = ("_observer",)

    ignores: ClassVar[type] = Parsed

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        self._observer = observer

    def on_next(self, item: Any) -> None:
        if type(item) is not Parsed:
            self._observer.on_next(item)

    def on_error(self, error: Exception) -> None:
        self._observer.on_error(error)

    def on_completed(self) -> None:
        self._observer.on_completed()


def select_other_items() -> Callable[[Observable[Item[Any]]], Observable[Any]]:
    """Every item that is not a parsed message (the events), errors and completion as they
    come: the other half of ``select_messages(same)``, for a subscriber that takes both
    (the tweepy face). Fused into a share as :func:`select_messages` is.

    >>> import reactivex
    >>> from reactivex import operators as ops
    >>> from rxtweet.events import KeepAlive
    >>> items = reactivex.of(KeepAlive(), Parsed(1, b"1"), Disconnected())
    >>> [type(e).__name__ for e in items.pipe(select_other_items(), ops.to_list()).run()]
    ['KeepAlive', 'Disconnected']
    """
    return _fused_operator(_OtherItems)


def _fused_operator(
    wrap: Callable[[abc.ObserverBase[Any]], abc.ObserverBase[Any]],
) -> Callable[[Observable[Item[Any]]], Observable[Any]]:
    """The operator that subscribes ``wrap(observer)`` to its source: fused into a share
    (:meth:`~rxtweet.operators.share.SharedObservable.fused`) where the source is one."""

    def operator(source: Observable[Item[Any]]) -> Observable[Any]:
        fused = getattr(source, "fused", None)
        if fused is not None:
            return fused(wrap)  # type: ignore[no-any-return]

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return source.subscribe(wrap(observer), scheduler=scheduler)

        return Observable(subscribe)

    return operator


def select_events() -> Callable[[Observable[Item[Any]]], Observable[StreamEvent]]:
    """The events of the stream, completing after ``Disconnected``.

    It never errors for the stream's own failure (that is told by ``Errored``), with one
    exception: a subscription made in a way that cannot work, such as a blocking ``.run()``
    inside ``hold()`` (:class:`~rxtweet.errors.BlockedInsideHold`), fails with that error
    instead of completing empty.

    .. marble::
        :alt: select_events

        items:   --Connected--P(a)--Reconnecting--Errored--Disconnected--#
        [                    select_events()                            ]
        result:  --Connected--------Reconnecting--Errored--Disconnected|

    >>> import reactivex
    >>> from reactivex import operators as ops
    >>> from rxtweet.events import KeepAlive
    >>> items = reactivex.of(KeepAlive(), Parsed(1, b"1"), Disconnected())
    >>> [type(e).__name__ for e in items.pipe(select_events(), ops.to_list()).run()]
    ['KeepAlive', 'Disconnected']
    """

    def on_next_for(observer: abc.ObserverBase[StreamEvent]) -> Callable[[Any], None]:
        def on_next(item: Any) -> None:
            if type(item) is not Parsed:
                observer.on_next(item)
                if type(item) is Disconnected:
                    observer.on_completed()

        return on_next

    return pass_through(
        on_next_for, error_completes=lambda error: not isinstance(error, BlockedInsideHold)
    )


class OverflowReports:
    """The bounded hand-offs of one stream object (:meth:`Substreams.observe_on_bounded`):
    their drops counted in the stream's stats and told as :class:`~rxtweet.events.Overflowed`
    events on its ``events``.

    A hand-off reports (a WARNING and an event) at its first drop, then at most once per
    second while drops go on, and once at the end for the rest: when its subscription ends,
    or, at the latest, just before the stream's ``Disconnected``. The events are emitted
    by the ``events`` pipeline itself, before the next item that passes through it (the
    stream's keep-alives at the latest), so they never run concurrently with the stream's
    other events; a report due while the stream is quiet is made at that item.

    Threads: :meth:`watch` and the hand-offs' callbacks come from any thread (a lock guards
    the lists, copied on write so the per-item check reads them without it).
    """

    def __init__(self, stats: ParseStats) -> None:
        self._stats = stats
        self._lock = threading.Lock()
        self._handoffs: tuple[Handoff[Any], ...] = ()
        self._sinks: tuple[list[StreamEvent], ...] = ()  # one per events subscription

    def count(self, total: int) -> None:
        """``on_overflow``: one more drop."""
        self._stats._count_overflow(total)

    def reporter(self, name: str) -> Callable[[int, int], None]:
        """``on_report`` for the hand-off called ``name``: an event for every subscriber."""

        def on_report(dropped: int, total: int) -> None:
            event = Overflowed(dropped, total, name)
            with self._lock:
                for sink in self._sinks:
                    sink.append(event)

        return on_report

    def watch(self, handoff: Handoff[Any]) -> Callable[[], None]:
        """Keep ``handoff`` in view until the returned function is called."""
        with self._lock:
            self._handoffs = (*self._handoffs, handoff)

        def unwatch() -> None:
            with self._lock:
                self._handoffs = tuple(h for h in self._handoffs if h is not handoff)

        return unwatch

    def inject(self, source: Observable[Any]) -> Observable[Any]:
        """``source`` (a stream's items) with the reports' events put in before each item."""

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sink: list[StreamEvent] = []
            with self._lock:
                self._sinks = (*self._sinks, sink)
            emit = observer.on_next

            def forget() -> None:
                with self._lock:
                    self._sinks = tuple(s for s in self._sinks if s is not sink)

            def on_next(item: Any) -> None:
                handoffs = self._handoffs
                if handoffs:
                    last = type(item) is Disconnected
                    for handoff in handoffs:
                        if handoff.dropped != handoff.reported:
                            handoff.report(force=last)
                if sink:
                    with self._lock:
                        events = sink[:]
                        sink.clear()
                    for event in events:
                        emit(event)
                emit(item)

            def on_error(error: Exception) -> None:
                forget()
                observer.on_error(error)

            def on_completed() -> None:
                forget()
                observer.on_completed()

            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

            def dispose() -> None:
                forget()
                subscription.dispose()

            return Disposable(dispose)

        return Observable(subscribe)


class Substreams(Generic[_M]):
    """The observables of one stream over a :class:`~rxtweet.connection.Connection` (or a
    :class:`~rxtweet.partitions.MergedConnection` of partition connections: any
    :class:`ItemSource`). It holds observables; it is not one.

    All substreams but :attr:`lines` share one connection: subscribing to any number of them
    opens exactly one, which closes when the last subscription is disposed; a later
    subscription opens a fresh one. To attach several before the connection opens (so that
    none misses the first message), subscribe inside :meth:`hold`::

        with stream.hold():
            stream.tweets.subscribe(on_tweet)
            stream.events.subscribe(on_event)

    Attributes:
        connection: the :class:`~rxtweet.connection.Connection` (a
            :class:`~rxtweet.partitions.MergedConnection` on a partitioned stream).
        items: everything on the shared connection, in order: each message as
            ``Parsed(value, raw)`` (the model and the exact bytes received) and each event.
        lines: cold raw lines; each subscription opens its own (reconnecting) connection.
        events: lifecycle events (:mod:`rxtweet.events`); completes after ``Disconnected``.
        stats: parse counters (messages, keep-alives, malformed by reason, and items dropped
            by :meth:`observe_on_bounded`).
    """

    def __init__(self, connection: ItemSource[_M]) -> None:
        self.connection = connection
        self.items: Observable[Item[Any]] = connection.items
        self.lines: Observable[bytes] = connection.lines
        self.stats: ParseStats = connection.stats
        self._overflow = OverflowReports(self.stats)
        source: Observable[Any] = self.items
        for operator in self._event_operators():
            source = operator(source)
        self.events: Observable[StreamEvent] = source.pipe(self._overflow.inject, select_events())

    def select(self, pick: Callable[[_M], _T | None]) -> Observable[_T]:
        """``pick(message)`` of each message, skipping ``None`` (a substream of values)."""
        return self.items.pipe(select_messages(pick))

    def of_type(self, cls: type[_T]) -> Observable[_T]:
        """The messages whose type is exactly ``cls`` (not a subclass)."""

        def pick(message: Any) -> _T | None:
            return message if type(message) is cls else None

        return self.items.pipe(select_messages(pick))

    def metrics(self, interval: float = 1.0, **options: Any) -> Observable[StreamMetrics]:
        """A :class:`~rxtweet.metrics.StreamMetrics` every ``interval`` seconds, observed
        passively: opens no connection (see :func:`rxtweet.metrics.metrics_of`)."""
        from .metrics import metrics_of  # lazy: rxtweet.metrics imports the v1/v2 models

        return metrics_of(self, interval, **options)

    def aiter(self, name: str = "items", **options: Any) -> AsyncIterate[Any]:
        """``async for x in stream.aiter("tweets")``: :func:`rxtweet.aio.iterate` over the
        substream ``name`` (options: ``maxsize``, ``overflow``, ``on_overflow``)."""
        from . import aio

        return aio.iterate_substream(self, name, **options)

    def observe_on_bounded(
        self,
        scheduler: abc.SchedulerBase,
        *,
        capacity: int,
        overflow: OverflowPolicy = "block",
        on_overflow: Callable[[int], None] | None = None,
        name: str = "observe_on_bounded",
    ) -> Callable[[Observable[_T]], Observable[_T]]:
        """:func:`rxtweet.operators.observe_on_bounded`, with this stream's accounting: each
        drop is also counted in :attr:`stats` (``overflowed``) and reported as an
        :class:`~rxtweet.events.Overflowed` ``(dropped, total, name)`` event on
        :attr:`events` (at most once per second per subscription while drops go on, then
        once for the rest; see :class:`OverflowReports`). Use it in a pipe on any
        substream, where the slow part starts::

            pool = ThreadPoolScheduler(2)
            stream.tweets.pipe(
                ops.filter(lambda tweet: tweet.lang == "en"),
                stream.observe_on_bounded(pool, capacity=10_000, overflow="drop_oldest"),
            ).subscribe(slow_consumer)

        Same arguments, threads, ordering and disposal as the operator.
        """
        reports = self._overflow

        def on_drop(total: int) -> None:
            reports.count(total)
            if on_overflow is not None:
                on_overflow(total)

        return bounded_operator(
            scheduler,
            capacity=capacity,
            overflow=overflow,
            on_overflow=on_drop,
            name=name,
            on_report=reports.reporter(name),
            watch=reports.watch,
        )

    def _event_operators(self) -> tuple[ItemOperator, ...]:
        """Operators applied to :attr:`items` before the events are selected; override to
        turn some messages into events. Called from ``__init__`` (do not rely on attributes
        a subclass sets after ``super().__init__``)."""
        return ()

    @contextmanager
    def hold(self) -> Iterator[Self]:
        """Subscribe inside the block; the shared connection opens when it ends.

        Do not block inside it (``.run()``, waiting for an item): nothing arrives before
        the block ends.
        """
        with self.connection.hold():
            yield self

    @property
    def connected(self) -> bool:
        """Whether the shared connection is open now."""
        return self.connection.connected

    def __repr__(self) -> str:
        partitions = getattr(self.connection, "partitions", None)
        where = f" partitions={span(partitions)}" if partitions else ""
        return f"<{type(self).__name__}{where} {self.connection.request!r}>"
