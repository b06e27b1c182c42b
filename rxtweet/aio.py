"""asyncio: ``async for`` over any Observable of rxtweet (a substream, a pipeline).

::

    stream = client.sample_stream()
    async for tweet in rxtweet.aio.iterate(stream.tweets):
        print(tweet.text)
        if done:
            break  # the connection closes now

:func:`iterate` is a bounded, lazily subscribed, disposing bridge from an Observable, whose
items come on a reader thread, to an asyncio consumer:

* **Lazy**: nothing subscribes (nothing connects) before the first ``__anext__``.
* **Disposed** on ``break`` (the iterator is dropped), on :meth:`~AsyncIterate.aclose`, on
  cancellation of the task waiting in ``__anext__``, and on garbage collection: the
  subscription is disposed at once, so the connection closes within a read timeout slice
  (well under 0.5 s), and a reader thread waiting for room (``"block"``) is released.
* **Threads**: items are queued in a :class:`~rxtweet.handoff.Handoff` by the producing
  thread; the loop is woken with ``loop.call_soon_threadsafe`` only when the queue goes
  from empty to non-empty (a burst of items costs one wake-up). The producing thread
  touches no other loop object; every future, callback and ``on_overflow`` call is on the
  loop's thread.
* **Bounded** (``maxsize`` items) with an overflow policy (:mod:`rxtweet.handoff`):
  ``"block"`` (default) makes the producer wait, so a slow consumer slows the reader and
  TCP pushes back on the server; ``"drop_oldest"`` / ``"drop_newest"`` / ``"latest"`` keep
  the stream moving and count what they drop (:attr:`AsyncIterate.dropped`, a WARNING at
  most once per second, and ``on_overflow(Overflowed(dropped, total))`` on the loop thread
  at most once per second and once more at the end); ``"error"`` ends the iteration with
  :class:`~rxtweet.errors.Overflow` after the items already queued (the source is disposed
  when the item is refused: the connection does not wait for a slow consumer to get there).
* **Abandoned**: if the loop closes while the iterator is still referenced (``asyncio.run``
  returned mid-iteration), the source is disposed at its next item, and a producer waiting
  for room in ``"block"`` is released within 0.1 s: no reader is left reading for nobody.
* **One consumer**: ``__anext__`` from a second task while one waits in it raises
  ``RuntimeError`` (as an async generator does) instead of leaving the first one waiting.
* **Termination**: the source's ``on_error`` is raised from ``__anext__`` (the same
  exception object), after every queued item; ``on_completed`` ends the loop.

Subscribing happens on a short-lived thread of its own (``rxtweet-aio-subscribe``), never
on the loop: a source that emits synchronously while being subscribed (``reactivex.of``,
a replay) then blocks that thread, not the loop, when the queue is full.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

from reactivex import Observable, abc

from .errors import Overflow
from .events import Overflowed
from .handoff import EMPTY, Handoff, OverflowPolicy, check_overflow

__all__ = ["DEFAULT_MAXSIZE", "AsyncIterate", "iterate", "iterate_substream"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: How many items :func:`iterate` lets wait by default.
DEFAULT_MAXSIZE: Final = 10_000

#: The least interval between two ``on_overflow`` reports of one iteration, in seconds.
OVERFLOW_REPORT_INTERVAL: Final = 1.0


class _LoopClosed(Exception):
    """The consumer's loop closed while a ``"block"`` producer waited for room."""


class _Bridge(Generic[_T]):
    """The state shared by the producing thread and the loop.

    The observer's callbacks reference this object, not the :class:`AsyncIterate` that
    owns it, so a dropped iterator is garbage-collected (and disposes) even while the
    reader thread holds the observer.
    """

    __slots__ = (
        "disposed",
        "ended",
        "handoff",
        "lock",
        "loop",
        "on_overflow",
        "reported",
        "reported_at",
        "subscription",
        "waiter",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        handoff: Handoff[_T],
        on_overflow: Callable[[Overflowed], object] | None,
    ) -> None:
        self.loop = loop
        self.handoff = handoff
        self.on_overflow = on_overflow
        self.lock = threading.Lock()  # guards subscription/disposed (subscribe thread vs loop)
        self.subscription: abc.DisposableBase | None = None
        self.disposed = False
        self.ended = False  # producer side: no more items are taken (error policy hit)
        self.waiter: asyncio.Future[None] | None = None  # loop thread only
        self.reported = 0  # drops reported through on_overflow (loop thread only)
        self.reported_at = -OVERFLOW_REPORT_INTERVAL  # producer thread only

    # --- producer thread ---------------------------------------------------------------------

    def wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.wake_on_loop)
        except RuntimeError:  # the loop is closed: nobody is left to consume
            self.dispose()

    def on_next(self, item: _T) -> None:
        if self.ended:
            return
        if self.loop.is_closed():  # nobody is left to consume: stop reading
            self.dispose()
            return
        try:
            if self.handoff.put(item):
                self.wake()
        except Overflow as exc:
            self.ended = True
            self.handoff.finish(exc)
            # The consumer sees the error after the queued items, but nothing it will see
            # needs the source any more: the connection closes now, not when a slow
            # consumer gets there.
            self.dispose_source()
            # The queue is full, so the consumer is awake or will be.
            self.wake()
        except _LoopClosed:  # "block" waited for a consumer whose loop has closed
            self.dispose()

    def stuck(self) -> Exception | None:
        """``Handoff``'s ``stuck``: a producer must not wait for a closed loop."""
        return _LoopClosed() if self.loop.is_closed() else None

    def on_error(self, error: Exception) -> None:
        if self.handoff.finish(error):
            self.wake()

    def on_completed(self) -> None:
        if self.handoff.finish(None):
            self.wake()

    def on_drop(self, total: int) -> None:
        now = time.monotonic()
        if now - self.reported_at >= OVERFLOW_REPORT_INTERVAL:
            self.reported_at = now
            try:
                self.loop.call_soon_threadsafe(self.report_overflow)
            except RuntimeError:
                self.dispose()

    # --- loop thread ---------------------------------------------------------------------------

    def wake_on_loop(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def report_overflow(self) -> None:
        total = self.handoff.dropped
        if self.on_overflow is None or total == self.reported:
            return
        event = Overflowed(total - self.reported, total, name=self.handoff.name)
        self.reported = total
        try:
            self.on_overflow(event)
        except Exception:
            log.exception("aio.iterate: on_overflow raised")

    # --- any thread ----------------------------------------------------------------------------

    def dispose(self) -> None:
        """Stop: refuse and discard items, release a blocked producer, dispose the source."""
        self.handoff.close()
        self.dispose_source()

    def dispose_source(self) -> None:
        """Dispose the source (now, or as soon as its subscribe returns); the queue stays."""
        with self.lock:
            self.disposed = True
            subscription, self.subscription = self.subscription, None
        if subscription is not None:
            subscription.dispose()

    def subscribe(self, source: Observable[_T]) -> None:
        """Run on the subscribe thread."""
        try:
            subscription = source.subscribe(self.on_next, self.on_error, self.on_completed)
        except Exception as exc:  # noqa: BLE001 - a failing subscribe ends the iteration with it
            self.on_error(exc)
            return
        with self.lock:
            if not self.disposed:
                self.subscription = subscription
                return
        subscription.dispose()  # disposed while subscribing


class AsyncIterate(Generic[_T]):
    """The async iterator :func:`iterate` returns (see the module docstring).

    Use it once, from one task on one loop (the loop of the first ``__anext__``).

    Attributes:
        maxsize: the bound; ``overflow``: the policy.
    """

    def __init__(
        self,
        source: Observable[_T],
        maxsize: int,
        overflow: OverflowPolicy,
        on_overflow: Callable[[Overflowed], object] | None,
        name: str,
    ) -> None:
        self.maxsize, self.overflow = check_overflow(maxsize, overflow)
        self._source = source
        self._on_overflow = on_overflow
        self._name = name
        self._bridge: _Bridge[_T] | None = None
        self._handoff: Handoff[_T] | None = None
        self._finished = False

    def __repr__(self) -> str:
        state = "finished" if self._finished else ("running" if self._bridge else "new")
        return (
            f"<AsyncIterate {state} {self.overflow} maxsize={self.maxsize} dropped={self.dropped}>"
        )

    @property
    def dropped(self) -> int:
        """Items dropped by the overflow policy so far."""
        return self._handoff.dropped if self._handoff is not None else 0

    @property
    def total(self) -> int:
        """Items the source emitted so far (delivered, waiting or dropped)."""
        return self._handoff.total if self._handoff is not None else 0

    @property
    def queued(self) -> int:
        """Items waiting now (at most ``maxsize``)."""
        return len(self._handoff) if self._handoff is not None else 0

    def __aiter__(self) -> AsyncIterate[_T]:
        return self

    def _start(self) -> _Bridge[_T]:
        loop = asyncio.get_running_loop()
        bridge: _Bridge[_T] | None = None

        def on_drop(total: int) -> None:
            if bridge is not None:
                bridge.on_drop(total)

        def stuck() -> Exception | None:
            return bridge.stuck() if bridge is not None else None

        handoff: Handoff[_T] = Handoff(
            self.maxsize,
            self.overflow,
            on_overflow=on_drop if self._on_overflow is not None else None,
            name=self._name,
            stuck=stuck,
        )
        bridge = _Bridge(loop, handoff, self._on_overflow)
        self._handoff = handoff
        self._bridge = bridge
        threading.Thread(
            target=bridge.subscribe,
            args=(self._source,),
            name="rxtweet-aio-subscribe",
            daemon=True,
        ).start()
        return bridge

    async def __anext__(self) -> _T:
        if self._finished:
            raise StopAsyncIteration
        bridge = self._bridge or self._start()
        handoff = bridge.handoff
        while True:
            if self._finished:  # close() while waiting
                raise StopAsyncIteration
            item = handoff.pop()
            if item is not EMPTY:
                return item  # type: ignore[return-value]
            terminal = handoff.terminal
            if terminal is not None:
                # Nothing queued and the source has ended: every item was delivered.
                self._finish()
                if terminal.error is not None:
                    raise terminal.error
                raise StopAsyncIteration
            if bridge.waiter is not None:
                # A second task would take the first one's wake-up: the first would wait
                # forever. Async generators refuse this too.
                raise RuntimeError(f"{self!r}: anext() while another task is waiting in it")
            waiter: asyncio.Future[None] = bridge.loop.create_future()
            bridge.waiter = waiter
            try:
                await waiter
            except BaseException:  # cancelled: the consuming task is going away
                self._finish()
                raise
            finally:
                bridge.waiter = None

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        bridge = self._bridge
        if bridge is not None:
            bridge.dispose()
            bridge.report_overflow()  # the drops since the last report

    async def aclose(self) -> None:
        """Dispose now (the connection closes); a later ``__anext__`` ends the loop."""
        self.close()

    def close(self) -> None:
        """:meth:`aclose` without awaiting, from the loop's thread; a task waiting in
        ``__anext__`` then ends its loop (``StopAsyncIteration``)."""
        bridge = self._bridge
        if bridge is None:
            self._finished = True
            return
        self._finish()
        bridge.wake_on_loop()

    def __del__(self) -> None:
        # break out of `async for` drops the iterator: dispose then (refcounting makes it
        # immediate on CPython). Only thread-safe calls here: __del__ may run on any thread.
        bridge = getattr(self, "_bridge", None)
        if bridge is not None and not getattr(self, "_finished", True):
            self._finished = True
            bridge.dispose()


def iterate(
    observable: Observable[_T],
    *,
    maxsize: int = DEFAULT_MAXSIZE,
    overflow: OverflowPolicy = "block",
    on_overflow: Callable[[Overflowed], object] | None = None,
    name: str = "aio.iterate",
) -> AsyncIterate[_T]:
    """An async iterator over ``observable``'s items (see the module docstring).

    Args:
        observable: any Observable: a substream (``stream.tweets``), ``stream.items``, a
            pipeline. Subscribed on the first ``__anext__``, once.
        maxsize: the most items waiting for the consumer (positive).
        overflow: ``"block"``, ``"drop_oldest"``, ``"drop_newest"``, ``"latest"`` or
            ``"error"`` (see :mod:`rxtweet.handoff`).
        on_overflow: called on the loop's thread with an
            :class:`~rxtweet.events.Overflowed` (drops since the last report, total) at most
            once per second while items are dropped, and once more when the iteration ends
            with drops not yet reported.
        name: how the overflow WARNING and :class:`~rxtweet.errors.Overflow` name it.

    Raises:
        ValueError: a bad ``maxsize`` or ``overflow`` (now, not at the first ``__anext__``).

    >>> import asyncio, reactivex
    >>> async def main():
    ...     return [n async for n in iterate(reactivex.of(1, 2, 3), maxsize=1)]
    >>> asyncio.run(main())
    [1, 2, 3]
    """
    return AsyncIterate(observable, maxsize, overflow, on_overflow, name)


def iterate_substream(
    stream: Any,
    name: str = "items",
    *,
    maxsize: int = DEFAULT_MAXSIZE,
    overflow: OverflowPolicy = "block",
    on_overflow: Callable[[Overflowed], object] | None = None,
) -> AsyncIterate[Any]:
    """:func:`iterate` over the substream ``name`` of a stream object (``"tweets"``,
    ``"events"``, ``"items"`` …): what ``stream.aiter(name)`` does.

    Raises:
        AttributeError: ``stream`` has no Observable named ``name`` (now, not when iterated).
    """
    source = getattr(stream, name, None)
    if not isinstance(source, Observable):
        raise AttributeError(f"{type(stream).__name__} has no substream {name!r}")
    return iterate(
        source, maxsize=maxsize, overflow=overflow, on_overflow=on_overflow, name=f"aiter({name})"
    )
