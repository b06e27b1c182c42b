"""``observe_on_bounded``: ``observe_on`` with a bound and an overflow policy.

RxPY's ``observe_on`` queues without bound (memory grows while the consumer is slower than
the stream) and schedules one action per item, taking each from the head of a list: about
40 us per item, more as the backlog grows. This operator hands items over through a
:class:`~rxtweet.handoff.Handoff` of at most ``capacity`` items, drained by *one* task on the
scheduler per backlog, at O(1) per item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import TrampolineScheduler, VirtualTimeScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

from ..handoff import EMPTY, Handoff, OverflowPolicy, Terminal, check_overflow

__all__ = ["observe_on_bounded"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Told of each hand-off a subscription creates; returns what to call when it has ended
#: (used by a stream object to count and report its drops: :mod:`rxtweet.substreams`).
Watch = Callable[[Handoff[Any]], Callable[[], None]]


def observe_on_bounded(
    scheduler: abc.SchedulerBase,
    *,
    capacity: int,
    overflow: OverflowPolicy = "block",
    on_overflow: Callable[[int], None] | None = None,
    name: str = "observe_on_bounded",
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Delivers the source's notifications on ``scheduler``, at most ``capacity`` waiting.

    The producer (the source's thread: a stream's reader) queues each item and returns;
    one task on ``scheduler`` delivers the queue to the observer, item after item, until it
    is empty, and a new task is scheduled only when an item arrives after that. When
    ``capacity`` items wait, ``overflow`` decides (:mod:`rxtweet.handoff`):

    * ``"block"`` (default): the producer waits for room. Nothing is lost; a stream's reader
      stops reading, the socket buffers fill and TCP slows the server down (X may then
      disconnect a client that stays behind). ``scheduler`` must run the task on another
      thread than the producer's (a ``ThreadPoolScheduler``, an ``EventLoopScheduler``,
      ``NewThreadScheduler``, an asyncio loop's): a trampoline (``CurrentThreadScheduler``,
      ``TrampolineScheduler``) is refused, and in virtual time (``TestScheduler``) a full
      queue fails the subscription with a ``RuntimeError`` instead of waiting for the
      thread that would have to make room.
    * ``"drop_oldest"``: the oldest waiting item is dropped (the consumer sees the newest).
    * ``"drop_newest"``: the arriving item is dropped (the consumer sees a contiguous run).
    * ``"latest"``: only the newest item waits (``capacity`` is 1).
    * ``"error"``: :class:`~rxtweet.errors.Overflow`: the source is disposed, and the
      observer gets the error after the items already queued.

    .. marble::
        :alt: observe_on_bounded

        source     --a-b-c-d-e-----f--|
        consumer     [a.........][d...][e...][f..]|     (busy delivering a)
        [ observe_on_bounded(s, capacity=2, overflow="drop_oldest") ]
        result     --a----------d----e----f--|          (b, c dropped: dropped=2)

    Drops are counted: ``on_overflow(dropped_total)`` is called on the producer thread at
    each drop, and a WARNING (logger ``rxtweet.handoff``) with the count is logged at most
    once per second while drops go on, and once more at the end for those not logged yet.
    On a stream object, ``stream.observe_on_bounded(...)`` is this operator with the drops
    also counted in ``stream.stats.overflowed`` and reported as
    :class:`~rxtweet.events.Overflowed` events on ``stream.events``.

    Order and threads: the observer gets the source's items in order, is never entered by
    two threads at once, and runs on ``scheduler`` (on a thread pool, not always the same
    thread). ``on_error`` and ``on_completed`` are never dropped nor bounded: they come
    after every queued item (the queued items are valid data, and the bound keeps the delay
    short; there is no "drop the queue on error" mode: dispose to drop it). If the observer's
    ``on_next`` raises, the subscription ends: the queue is discarded, the source disposed
    (a stream's connection closes when nothing else uses it), and ``on_error`` gets the
    exception (RxPY's ``observe_on`` swallows it on a pool). An exception raised by
    ``on_overflow`` ends it the same way, after the queued items.

    An ``AsyncIOScheduler`` (thread-safe or not) is driven with
    ``loop.call_soon_threadsafe``, so a reader thread wakes the loop. If the scheduler
    refuses the drain task (disposed, its loop closed), the observer gets that error at once
    and the source is disposed.

    Disposal (any thread) discards the queue, disposes the source, cancels the drain task if
    it has not started, wakes a producer waiting for room (``"block"``), and stops the drain
    after the item it may be delivering at that moment.

    Example::

        pool = ThreadPoolScheduler(2)
        stream.tweets.pipe(
            observe_on_bounded(pool, capacity=10_000, overflow="drop_oldest"),
        ).subscribe(slow_consumer)

    >>> import reactivex
    >>> from reactivex import operators as ops
    >>> from reactivex.scheduler import EventLoopScheduler
    >>> with EventLoopScheduler() as loop:
    ...     reactivex.of(1, 2, 3).pipe(observe_on_bounded(loop, capacity=10), ops.to_list()).run()
    [1, 2, 3]

    Args:
        scheduler: where the observer is called.
        capacity: the most items waiting (positive; 1 for ``"latest"``).
        overflow: the policy when ``capacity`` items wait.
        on_overflow: called with the subscription's total dropped at each drop.
        name: names this hand-off in the WARNING, in :class:`~rxtweet.errors.Overflow` and
            in :class:`~rxtweet.events.Overflowed` events.

    Returns:
        An operator (for ``.pipe(...)``); each subscription has its own queue and counts.

    Raises:
        ValueError: at once, for a bad ``capacity`` or ``overflow``, or ``"block"`` with a
            trampoline (``CurrentThreadScheduler``: it would wait for itself forever).
    """
    return bounded_operator(
        scheduler, capacity=capacity, overflow=overflow, on_overflow=on_overflow, name=name
    )


def bounded_operator(
    scheduler: abc.SchedulerBase,
    *,
    capacity: int,
    overflow: OverflowPolicy,
    on_overflow: Callable[[int], None] | None,
    name: str,
    on_report: Callable[[int, int], None] | None = None,
    watch: Watch | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """:func:`observe_on_bounded`, plus what a stream object wires in: ``on_report`` (see
    :class:`~rxtweet.handoff.Handoff`) and ``watch`` (told of each subscription's hand-off;
    what it returns is called once the subscription has ended, after its last report)."""
    capacity, overflow = check_overflow(capacity, overflow)
    # A trampoline (CurrentThreadScheduler is one) runs the drain on the producer's own
    # thread, queued behind the producer when it is itself trampolined: a producer waiting
    # for room would wait for itself forever.
    if overflow == "block" and isinstance(scheduler, TrampolineScheduler):
        raise ValueError(
            f"{name}: overflow='block' needs a scheduler that drains on another thread than "
            f"the producer's; a {type(scheduler).__name__} would wait for itself forever"
        )
    stuck: Callable[[], Exception | None] | None = None
    if overflow == "block" and isinstance(scheduler, VirtualTimeScheduler):
        # In virtual time the producer runs on the thread that advances the clock, which
        # is the only one that can run the drain: instead of waiting forever, fail.
        message = (
            f"{name}: overflow='block' cannot wait on a {type(scheduler).__name__}: the "
            "producer would wait for the thread it runs on (the one advancing virtual "
            "time); use a larger capacity or a drop policy in virtual time"
        )

        def stuck() -> Exception | None:
            return RuntimeError(message)

    schedule = _scheduling(scheduler)

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            handoff: Handoff[_T] = Handoff(
                capacity,
                overflow,
                on_overflow=on_overflow,
                on_report=on_report,
                name=name,
                stuck=stuck,
            )
            upstream = SingleAssignmentDisposable()
            task = SerialDisposable()  # the drain task scheduled last
            unwatch = watch(handoff) if watch is not None else None
            ended = threading.Lock()  # taken once: by the first end (the last report)
            offer, poll, deliver = handoff.offer, handoff.poll, observer.on_next

            def release() -> None:
                if ended.acquire(blocking=False):
                    try:
                        handoff.report()  # the drops since the last report
                    finally:
                        if unwatch is not None:
                            unwatch()

            def drain(_: abc.SchedulerBase, __: Any = None) -> None:
                # One task per backlog: it runs until the queue is empty, and `poll`
                # parking the consumer atomically makes the next `offer` schedule the next
                # task, so two never run at once.
                while True:
                    item = poll()
                    if item is EMPTY:
                        return
                    if type(item) is Terminal and item is handoff.terminal:
                        upstream.dispose()
                        release()
                        if item.error is None:
                            observer.on_completed()
                        else:
                            observer.on_error(item.error)
                        return
                    try:
                        deliver(item)  # type: ignore[arg-type]
                    except Exception as exc:  # noqa: BLE001 - the observer failed: end here
                        handoff.close()
                        upstream.dispose()
                        release()
                        observer.on_error(exc)
                        return

            def start() -> None:
                # Called only when the consumer is parked: no drain runs now.
                try:
                    task.disposable = schedule(drain)
                except Exception as exc:  # noqa: BLE001 - a disposed scheduler, a closed loop
                    # No drain can ever run: end now rather than leave the queue to fill
                    # (and a "block" producer to wait forever). No drain runs, none will
                    # (closed): the observer is entered by nobody else.
                    handoff.close()
                    upstream.dispose()
                    release()
                    observer.on_error(exc)

            def end(error: Exception | None) -> None:
                wake = handoff.end(error)
                # No drop can follow: report the last ones now, on the producer's thread
                # (a stream's reader), so that they are told before the stream moves on.
                handoff.report()
                if wake:
                    start()

            def on_next(value: _T) -> None:
                try:
                    wake = offer(value)
                except Exception as exc:  # noqa: BLE001 - Overflow, or on_overflow raised
                    upstream.dispose()
                    end(exc)
                    return
                if wake:
                    start()

            def dispose() -> None:
                handoff.close()
                upstream.dispose()
                task.dispose()
                release()

            upstream.disposable = source.subscribe(
                on_next, end, lambda: end(None), scheduler=subscribe_scheduler
            )
            return Disposable(dispose)

        return Observable(subscribe)

    return operator


def _scheduling(
    scheduler: abc.SchedulerBase,
) -> Callable[[abc.ScheduledAction[Any]], abc.DisposableBase]:
    """How to schedule a drain on ``scheduler`` from the producer's thread.

    An ``AsyncIOScheduler`` calls ``loop.call_soon``, which from another thread (a reader)
    neither wakes the loop (the drain waits for some unrelated wake-up) nor is allowed in
    debug mode; its thread-safe subclass makes disposal wait for the loop. Both are
    scheduled here with ``loop.call_soon_threadsafe``; the handle is never cancelled from
    the producer's thread: a drain that runs after disposal finds the queue closed and
    returns at once.
    """
    if isinstance(scheduler, AsyncIOScheduler):
        loop = scheduler._loop

        def schedule(action: abc.ScheduledAction[Any]) -> abc.DisposableBase:
            loop.call_soon_threadsafe(action, scheduler, None)
            return Disposable()

        return schedule
    return scheduler.schedule
