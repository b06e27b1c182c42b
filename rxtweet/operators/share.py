"""``share_connection``: one upstream subscription for many subscribers, fresh after it ends.

RxPY's ``share()`` is ``publish()`` + ``ref_count()`` over one Subject that never resets: once
the source has completed or failed, a new subscriber gets only that terminal notification.
For a stream connection the useful behaviour is RxJS 7's ``share()``: the first subscriber
opens the connection, the last one to leave closes it, and after the source ends (or
everyone left) the next subscriber opens a fresh one.

A *passive tap* (:meth:`SharedConnection.tap`, also on the shared observable itself:
``connection.items.tap(on_item)``) sees every item of every connection while it is attached,
without being a subscriber: it neither opens a connection nor keeps one open. Metrics
(:mod:`rxtweet.metrics`) observe a stream this way.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any, Final, Generic, Protocol, TypeVar, cast

import reactivex.run
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable
from reactivex.observer.autodetachobserver import AutoDetachObserver

from ..errors import BlockedInsideHold
from .forward import ForwardingObserver, subscribe_forward

__all__ = [
    "BlockedInsideHold",
    "SharedConnection",
    "SharedObservable",
    "SharedSource",
    "share_connection",
]

_T = TypeVar("_T")
_V = TypeVar("_V")

log = logging.getLogger(__name__)

#: The code of reactivex's calls that subscribe and then wait on the calling thread for the
#: end: ``Observable.run()`` (``reactivex.run.run``) and ``await observable``.
_BLOCKING_CODE: Final[frozenset[CodeType]] = frozenset(
    {reactivex.run.run.__code__, Observable.__await__.__code__}
)
#: How far up the stack a blocking call is looked for (operators add a few frames each).
_BLOCKING_DEPTH: Final = 64


def _blocking_call_on_stack(since: FrameType | None = None) -> bool:
    """Whether this thread is inside one of :data:`_BLOCKING_CODE`'s calls made after (in a
    frame newer than) ``since``: a blocking call that was already running when ``since``
    began (the ``with hold()`` of code called from inside a ``.run()``) is not one."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(_BLOCKING_DEPTH):
        if frame is None or frame is since:
            return False
        if frame.f_code in _BLOCKING_CODE:
            return True
        frame = frame.f_back
    return False


_ENTER_CODE: Final = contextlib._GeneratorContextManager.__enter__.__code__


def _with_statement_frame() -> FrameType | None:
    """The frame of the ``with`` statement that is entering :meth:`SharedConnection.hold`
    (from inside it), past the context managers that wrap it (``Connection.hold``, a
    stream's ``hold``): theirs are generator frames, off the stack while the block runs."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and (
        frame.f_code.co_flags & inspect.CO_GENERATOR or frame.f_code is _ENTER_CODE
    ):
        frame = frame.f_back
    return frame


class SharedObservable(Observable[_T]):
    """The observable of a :class:`SharedConnection`: an ``Observable`` that also offers
    :meth:`tap` (so code holding only ``stream.items`` can observe it passively)."""

    def __init__(self, shared: SharedConnection[_T]) -> None:
        super().__init__(shared._subscribe)
        self._shared = shared

    def tap(self, on_next: Callable[[_T], None]) -> abc.DisposableBase:
        """:meth:`SharedConnection.tap` of the connection this observable shares."""
        return self._shared.tap(on_next)

    def fused(self, wrap: Callable[[abc.ObserverBase[_V]], abc.ObserverBase[_T]]) -> Observable[_V]:
        """:meth:`SharedConnection.fused` of the connection this observable shares."""
        return self._shared.fused(wrap)


class SharedConnection(Generic[_T]):
    """Reference-counted sharing of one subscription to ``source``.

    .. marble::
        :alt: share_connection

        source:     --a--b--c--d--|
        share:      ^ first subscriber connects
        sub 1:      --a--b--c--d--|
        sub 2:            --c--d--|          (late subscribers miss earlier items)
        sub 3 (after the end):      ^ opens a fresh subscription to source

    Use :meth:`hold` to attach several subscribers before the subscription opens, so that
    none misses an item. A blocking wait (``.run()``, ``await``) on this thread inside the
    block would never end: the subscription fails at once with :class:`BlockedInsideHold`.

    :meth:`fused` subscribes through an operator's observer placed in the share's own list
    (one hop less per item). With ``guarded=True`` the source is trusted to guard itself (no
    item after its end, each of its subscriptions set up with ``Observable.subscribe``
    inside), and is subscribed without reactivex's per-item guard around the share: one
    call less per item (:class:`~rxtweet.connection.Connection` is such a source).
    """

    def __init__(self, source: Observable[_T], *, guarded: bool = False) -> None:
        self._source = source
        self._guarded = guarded
        self._lock = threading.Lock()
        self._subject: _Multicast[_T] | None = None
        self._connection: SingleAssignmentDisposable | None = None
        self._count = 0
        self._holds = 0
        # The threads inside hold() now (with their depth): only they can deadlock on it.
        self._holders: dict[int, int] = {}
        # Per such thread, the frame of its outermost hold() (the with statement's).
        self._hold_frames: dict[int, FrameType] = {}
        # Passive taps: added to every share's observers, never counted (see tap()).
        self._taps: tuple[_Tap[_T], ...] = ()

    @property
    def observable(self) -> SharedObservable[_T]:
        """The shared observable: subscribe to it any number of times (it also has
        :meth:`~SharedObservable.tap`)."""
        return SharedObservable(self)

    def tap(self, on_next: Callable[[_T], None]) -> abc.DisposableBase:
        """Call ``on_next(item)`` for every item of the shared subscription, now and after
        any reconnection, until the returned disposable is disposed.

        A tap is not a subscriber: it never opens the upstream subscription, does not keep
        it open (the last real subscriber's leaving still closes it), and is not counted in
        :attr:`subscribers`. It sees no ``on_error``/``on_completed`` (a stream's own end is
        an item: ``Disconnected``). ``on_next`` runs on the thread that delivers the item,
        one call at a time as the upstream delivers them (a tap attached before a share
        begins sees each of its items before that share's subscribers do); it must be
        quick; an exception it raises is logged and dropped (it neither ends the
        upstream nor keeps the item from the subscribers). Disposing is idempotent and thread-safe;
        an item already being delivered may still reach ``on_next`` once.

        >>> shared = SharedConnection(reactivex.of(1, 2))
        >>> seen = []
        >>> tap = shared.tap(seen.append)
        >>> seen, shared.connected   # attaching opened nothing
        ([], False)
        >>> shared.observable.subscribe(lambda n: None) and seen
        [1, 2]
        >>> tap.dispose()
        """
        tap = _Tap(on_next)
        with self._lock:
            self._taps = (*self._taps, tap)
            subject = self._subject
            if subject is not None:
                subject.add(cast("abc.ObserverBase[_T]", tap))

        def dispose() -> None:
            with self._lock:
                self._taps = tuple(t for t in self._taps if t is not tap)
                subject = self._subject
            if subject is not None:
                subject.remove(cast("abc.ObserverBase[_T]", tap))

        return Disposable(dispose)

    def fused(self, wrap: Callable[[abc.ObserverBase[_V]], abc.ObserverBase[_T]]) -> Observable[_V]:
        """An Observable whose subscribers join this share through ``wrap(observer)``: an
        operator fused into the share, one hop less per item than
        ``observable.pipe(operator)`` (``wrap``'s observer sits in the share's own list and
        gets its items, errors and completion; it must pass on only what ``observer``
        should see).

        >>> class Doubled:
        ...     def __init__(self, observer): self.observer = observer
        ...     def on_next(self, n): self.observer.on_next(2 * n)
        ...     def on_error(self, error): self.observer.on_error(error)
        ...     def on_completed(self): self.observer.on_completed()
        >>> shared = SharedConnection(reactivex.of(1, 2))
        >>> shared.fused(Doubled).subscribe(print) and None
        2
        4
        """

        def subscribe(
            observer: abc.ObserverBase[_V], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return self._subscribe(wrap(observer), scheduler)

        return Observable(subscribe)

    @property
    def connected(self) -> bool:
        """Whether the upstream subscription is open now."""
        with self._lock:
            return self._connection is not None

    @property
    def subscribers(self) -> int:
        """How many subscribers share the current subscription."""
        with self._lock:
            return self._count

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Delay connecting until the block ends; subscribers made inside it all see item one.

        >>> shared = SharedConnection(reactivex.of(1, 2))
        >>> with shared.hold():
        ...     first = shared.observable.subscribe(lambda n: print("first", n))
        ...     second = shared.observable.subscribe(lambda n: print("second", n))
        first 1
        second 1
        first 2
        second 2
        """
        me = threading.get_ident()
        with self._lock:
            self._holds += 1
            self._holders[me] = self._holders.get(me, 0) + 1
            if me not in self._hold_frames:
                frame = _with_statement_frame()
                if frame is not None:
                    self._hold_frames[me] = frame
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                depth = self._holders.pop(me) - 1
                if depth:
                    self._holders[me] = depth
                else:
                    self._hold_frames.pop(me, None)
                subject = self._claim_connection()
            if subject is not None:
                self._connect(subject)

    def _subscribe(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # Read without the lock: only this thread adds or removes its own entry. Only a
        # blocking call made inside the hold (after its with statement) can never end.
        me = threading.get_ident()
        if me in self._holders and _blocking_call_on_stack(self._hold_frames.get(me)):
            error = BlockedInsideHold(
                "a blocking wait (.run(), await) inside 'with stream.hold():' would never "
                "end: the connection opens when the block ends. Subscribe inside the block, "
                "and call .run() (or await) after it."
            )
            # Logged too: an operator downstream may turn the error into a completion
            # (a stream's events end quietly), and the user must still learn why.
            log.error("%s", error)
            raise error
        with self._lock:
            if self._subject is None:
                self._subject = _Multicast()
                for tap in self._taps:
                    self._subject.add(cast("abc.ObserverBase[_T]", tap))
            subject = self._subject
            self._count += 1
            subject.add(observer)
            to_connect = self._claim_connection()
        if to_connect is not None:
            self._connect(to_connect)

        def dispose() -> None:
            subject.remove(observer)
            with self._lock:
                if subject is not self._subject:
                    return  # that share already ended; a newer one is not ours to count
                self._count -= 1
                if self._count > 0:
                    return
                connection = self._connection
                self._connection = None
                self._subject = None
            if connection is not None:
                connection.dispose()

        return Disposable(dispose)

    def _claim_connection(self) -> _Multicast[_T] | None:
        """Under the lock: reserve the right to connect, if a connection is due now."""
        if self._subject is None or self._connection is not None or self._holds or not self._count:
            return None
        self._connection = SingleAssignmentDisposable()
        return self._subject

    def _connect(self, subject: _Multicast[_T]) -> None:
        with self._lock:
            connection = self._connection if subject is self._subject else None
        if connection is None:
            return

        def reset() -> None:
            # Before the terminal notification reaches subscribers, so that one of them
            # resubscribing from its handler gets a fresh connection, not this dead one.
            with self._lock:
                if self._subject is subject:
                    self._subject = None
                    self._connection = None
                    self._count = 0

        def on_error(error: Exception) -> None:
            reset()
            subject.on_error(error)

        def on_completed() -> None:
            reset()
            subject.on_completed()

        if not self._guarded:
            connection.disposable = self._source.subscribe(subject.on_next, on_error, on_completed)
            return
        try:
            connection.disposable = subscribe_forward(
                self._source, ForwardingObserver(subject.on_next, on_error, on_completed)
            )
        except Exception as error:  # noqa: BLE001 - as Observable.subscribe: the error
            on_error(error)


class _Tap(Generic[_T]):
    """A passive observer of a share: items only (see :meth:`SharedConnection.tap`).

    An exception from the tap's function is logged (the first with its traceback, the
    rest at DEBUG) and goes no further: a passive observer must not end the stream or keep
    the item from the subscribers after it."""

    __slots__ = ("_failed", "_function")

    def __init__(self, on_next: Callable[[_T], None]) -> None:
        self._function = on_next
        self._failed = False

    def on_next(self, value: _T) -> None:
        try:
            self._function(value)
        except Exception:
            if self._failed:
                log.debug("a passive tap of a shared stream raised again", exc_info=True)
            else:
                self._failed = True
                log.exception("a passive tap of a shared stream raised (the stream goes on)")

    def on_error(self, error: Exception) -> None:
        pass

    def on_completed(self) -> None:
        pass


class _Multicast(Generic[_T]):
    """The subscribers of one shared subscription: what a reactivex ``Subject`` did here,
    for less per item.

    The observers are an immutable tuple, replaced whole when one is added or removed, so
    :meth:`on_next` is one loop without a lock (a ``Subject`` takes its lock twice and copies
    its observer list for every item). Like a ``Subject`` it does not serialise concurrent
    ``on_next`` calls; the upstream (one reader thread at a time) makes none.

    Unlike a ``Subject`` it does not replay the end to an observer added after it: it need
    not, as :class:`SharedConnection` drops a share (``reset``, under its lock) before
    notifying its end, and only adds observers to the current share, under the same lock.

    A subscriber's failing ``on_error``/``on_completed`` is logged and the others are still
    told: a subscriber without an error handler re-raises the error (reactivex's default),
    which would otherwise end the loop and leave later subscribers never told. ``on_next``
    is not guarded: an exception there is the subscriber's bug, and it goes back up to end
    the stream.
    """

    __slots__ = ("_calls", "_ignores", "_lock", "_observers", "_value_picks", "value_calls")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observers: tuple[abc.ObserverBase[_T], ...] = ()
        # Per observer: what it selects, if it is a Selecting one (else None, None), its own
        # guard, run inline, and what to call (see guarded_call).
        self._calls: tuple[Delivery, ...] = ()
        # Per observer: its Selecting.value_pick, or None; the kind of items it ignores, or None.
        self._value_picks: tuple[Callable[[Any], Any] | None, ...] = ()
        self._ignores: tuple[type | None, ...] = ()
        #: What every observer can be given from a wrapped item's value alone, for a
        #: producer that may skip making the wrapper (see :data:`ValueCalls`); replaced
        #: whole, like ``_calls``, so a reader needs no lock.
        self.value_calls: ValueCalls | None = None

    def add(self, observer: abc.ObserverBase[_T]) -> None:
        delivery = _delivery(observer)  # once, when it joins (it never raises)
        value_pick, ignores = _value_pick(observer, delivery), _ignores(observer, delivery)
        with self._lock:
            self._set(
                (*self._observers, observer),
                (*self._calls, delivery),
                (*self._value_picks, value_pick),
                (*self._ignores, ignores),
            )

    def remove(self, observer: abc.ObserverBase[_T]) -> None:
        with self._lock:
            kept = [
                entry
                for entry in zip(
                    self._observers, self._calls, self._value_picks, self._ignores, strict=True
                )
                if entry[0] is not observer
            ]
            self._set(
                tuple(entry[0] for entry in kept),
                tuple(entry[1] for entry in kept),
                tuple(entry[2] for entry in kept),
                tuple(entry[3] for entry in kept),
            )

    def _set(
        self,
        observers: tuple[abc.ObserverBase[_T], ...],
        calls: tuple[Delivery, ...],
        value_picks: tuple[Callable[[Any], Any] | None, ...],
        ignores: tuple[type | None, ...],
    ) -> None:
        # Under the lock. value_calls first: a reader that sees the new observers' calls
        # must not use an older value_calls that misses one of them (and vice versa only
        # delays the wrapper-free way by an item).
        self.value_calls = None
        self._observers, self._calls = observers, calls
        self._value_picks, self._ignores = value_picks, ignores
        # The observers that take items of the selectors' kind: all but those that ignore
        # that kind; each must select it and have a value_pick.
        takers = [
            (call, pick)
            for call, pick, ignored in zip(calls, value_picks, ignores, strict=True)
            if ignored is None
        ]
        kind = takers[0][0][0] if takers else None
        if (
            kind is not None
            and all(call[0] is kind and pick is not None for call, pick in takers)
            and all(ignored in (None, kind) for ignored in ignores)
        ):
            self.value_calls = (
                kind,
                tuple(
                    (None if pick is same else pick, guard, emit)
                    for (_, _, guard, emit), pick in takers
                ),
            )

    def on_next(self, value: _T) -> None:
        for kind, pick, guard, emit in self._calls:
            if kind is None:
                if guard is None or not guard.is_stopped:
                    emit(value)
            elif type(value) is kind:
                picked = pick(value)  # type: ignore[misc]
                if picked is not None and (guard is None or not guard.is_stopped):
                    emit(picked)

    def on_error(self, error: Exception) -> None:
        for observer in self._end():
            try:
                observer.on_error(error)
            except Exception:  # logged; the other subscribers must still be told
                log.exception("a subscriber of a shared stream has no error handler")

    def on_completed(self) -> None:
        for observer in self._end():
            try:
                observer.on_completed()
            except Exception:
                log.exception("a subscriber's on_completed raised")

    def _end(self) -> tuple[abc.ObserverBase[_T], ...]:
        """The observers to notify of the end (the upstream ends once: it is a subscription)."""
        with self._lock:
            observers = self._observers
            self._set((), (), (), ())  # nothing reaches an observer after the end
            return observers


#: How :class:`_Multicast` delivers to one observer: ``(kind, pick, guard, emit)``.
Delivery = tuple[
    type | None, Callable[[Any], Any] | None, AutoDetachObserver[Any] | None, Callable[[Any], None]
]


#: What :class:`_Multicast` can deliver from the value of a wrapped item alone:
#: ``(kind, ((value_pick, guard, emit), ...))`` when every observer is a :class:`Selecting`
#: one of that one ``kind`` with a ``value_pick``, or ignores that kind (``ignores``). A
#: producer that would wrap ``value`` in ``kind`` (the parser, making ``Parsed(value,
#: raw)``) may then deliver ``value_pick(value)`` (``value`` itself where ``value_pick`` is
#: ``None``: :func:`same`) to each as the share would deliver ``pick(kind(value, ...))``,
#: and never make the wrapper.
ValueCalls = tuple[
    type,
    tuple[
        tuple[Callable[[Any], Any] | None, AutoDetachObserver[Any] | None, Callable[[Any], None]],
        ...,
    ],
]


def same(value: _V) -> _V:
    """The ``value_pick`` that selects the value itself (the share's producer gives the value
    without calling it)."""
    return value


def multicast_of(on_next: Callable[[Any], None]) -> _Multicast[Any] | None:
    """The share whose ``on_next`` this is (as a producer was given it), or ``None``: for a
    producer that delivers to the share's observers itself (see :data:`ValueCalls`)."""
    owner = getattr(on_next, "__self__", None)
    if type(owner) is _Multicast and getattr(on_next, "__func__", None) is _Multicast.on_next:
        return owner
    return None


class Selecting(Protocol):
    """An observer that only passes on ``pick(item)`` of the items of one exact type (not
    ``None``), such as :func:`~rxtweet.substreams.select_messages`' own. It tells the share so
    in ``selection``: ``(kind, pick, guard, emit)``, with ``guard`` and ``emit`` those of
    :func:`guarded_call` for its own observer. The share then does the selecting itself,
    without a call of the observer's ``on_next`` per item: the same items, the same order,
    on the same thread, and an exception raised by ``pick`` ends the stream as one raised
    by ``on_next`` would. ``selection`` is read when the observer joins the share.

    It may also have ``value_pick``, a callable such that ``pick(item)`` is
    ``value_pick(item.value)`` for every item of ``kind``: a producer that makes such items
    (the parser's ``Parsed(value, raw)``) may then give this observer ``value_pick(value)``
    without making the item (:data:`ValueCalls`). A plain observer (no ``selection``) may
    say in ``ignores`` the type of items it does nothing with.
    """

    @property
    def selection(self) -> Delivery: ...


def _value_pick(observer: abc.ObserverBase[Any], delivery: Delivery) -> Callable[[Any], Any] | None:
    """A :class:`Selecting` observer's optional ``value_pick``: a callable such that, for
    every item of its ``kind``, ``pick(item)`` is ``value_pick(item.value)``; else None."""
    if delivery[0] is None:
        return None
    try:
        pick = observer.value_pick  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - none, or an odd one: the wrapper is always made
        return None
    return pick if callable(pick) else None


def _ignores(observer: abc.ObserverBase[Any], delivery: Delivery) -> type | None:
    """A plain observer's optional ``ignores``: the type of the items its ``on_next`` does
    nothing with (so a producer need not make them for it); else None."""
    if delivery[0] is not None:
        return None
    try:
        ignored = observer.ignores  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - none, or an odd one: it takes everything
        return None
    return ignored if isinstance(ignored, type) else None


def _delivery(observer: abc.ObserverBase[Any]) -> Delivery:
    try:
        selection = observer.selection  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - none, or an odd one: the plain way, never a failed join
        selection = None
    if type(selection) is tuple and len(selection) == 4 and isinstance(selection[0], type):
        return selection
    return (None, None, *guarded_call(observer))


def guarded_call(
    observer: abc.ObserverBase[_T],
) -> tuple[AutoDetachObserver[_T] | None, Callable[[_T], None]]:
    """``(guard, emit)`` for delivering items to ``observer``: deliver with
    ``if guard is None or not guard.is_stopped: emit(value)``.

    ``Observable.subscribe`` wraps every subscriber in reactivex's ``AutoDetachObserver``,
    whose ``on_next`` is ``if not self.is_stopped: self._on_next(value)`` (reactivex 6.1).
    For such an observer (as this code knows it) ``guard`` is the observer and ``emit`` its
    ``_on_next``: the caller runs the guard's test itself, one Python call less per item,
    the same behaviour. For any other observer ``(None, observer.on_next)``.
    """
    if (
        type(observer) is AutoDetachObserver
        and type(getattr(observer, "is_stopped", None)) is bool
        and callable(getattr(observer, "_on_next", None))
    ):
        return observer, observer._on_next
    return None, observer.on_next


def share_connection(source: Observable[_T]) -> SharedConnection[_T]:
    """Wrap ``source`` in a :class:`SharedConnection` (see there)."""
    return SharedConnection(source)


class SharedSource(Generic[_T]):
    """What a stream source (:class:`~rxtweet.connection.Connection`,
    :class:`~rxtweet.partitions.MergedConnection`,
    :class:`~rxtweet.recovery.dedup.Deduplicated`) gets from its :class:`SharedConnection`
    ``_shared``: whether it is open, and :meth:`hold`."""

    _shared: SharedConnection[_T]

    @property
    def connected(self) -> bool:
        """Whether the shared subscription is open (or being reopened) now."""
        return self._shared.connected

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Subscribe several substreams inside the block; the source opens at its end."""
        with self._shared.hold():
            yield
