"""``retry_when``: resubscribe to the source when a notifier says so (RxJS semantics).

reactivex 6.1 only has ``retry(count)``. This operator lets a *handler* decide when, and
whether, to resubscribe after an error, which is what a reconnect policy needs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import CurrentThreadScheduler
from reactivex.subject import Subject

from .forward import subscribe_unguarded

_T = TypeVar("_T")

__all__ = ["retry_when"]

log = logging.getLogger(__name__)


def _ready_work_queued(trampoline: CurrentThreadScheduler) -> bool:
    """Whether this thread's trampoline holds an item that is due now.

    reactivex 6 has no public way to ask; this reads its ``Trampoline._queue`` and answers
    ``False`` (end at once, the behaviour before this check) if that ever changes. Items due
    later are not waited for: they are asynchronous work, which RxJS would not wait for.
    """
    queue: Any = getattr(trampoline.get_trampoline(), "_queue", None)
    try:
        if queue is None or len(queue) == 0:
            return False
        item = queue.peek()
        return bool(item.duetime <= item.scheduler.now)
    except Exception:  # noqa: BLE001 - internals changed: fall back to ending at once
        return False


def retry_when(
    handler: Callable[[Observable[Exception]], Observable[Any]],
    *,
    notifier_follows_errors: bool = False,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Resubscribes to the source each time a notifier derived from its errors emits.

    ``handler`` is called once per subscription, at the source's first error (as in RxJS 7),
    with an Observable of the source's errors; it returns a *notifier*. Each item the
    notifier emits resubscribes the source (disposing the current source subscription, if
    any). When the notifier completes, the result completes; when it errors (or the handler
    raises), the result errors with that exception. The source completing normally completes
    the result without consulting the handler.

    .. marble::
        :alt: retry_when

        source (1st)  --a--#
        source (2nd)          --b--#
        source (3rd)                   --c--|
        errors        -----e------e---------
        notifier      --------x------x------
        [          retry_when(handler)       ]
        result        --a--------b--------c--|

    Resubscription goes through the trampoline (``CurrentThreadScheduler``), so a source that
    fails synchronously thousands of times is retried with a constant stack depth. The
    notifier's completion and error go through it too, behind any resubscription already
    queued: a notifier that emits and completes in the same call (``errors.pipe(ops.take(n))``)
    still resubscribes for its last item before the result completes, as in RxJS and RxJava.
    So ``take(n)`` allows exactly ``n`` retries (``n + 1`` subscriptions); as in RxJS, what
    the last one delivers asynchronously (on another thread or scheduler) is cut off by the
    completion.

    The operator is thread-safe: errors may arrive on one thread (a reader) while the notifier
    emits on another (a timer). Notifications from a previous attempt are dropped, and
    nothing is resubscribed once the subscription is disposed; disposal disposes the pending
    notifier (so a pending timer is cancelled at once) and the current source subscription.

    Each item of the source takes the operator's lock, so that it never reaches the observer
    while the notifier ends the result on another thread. ``notifier_follows_errors=True``
    promises that the notifier ends (completes or errors) only in answer to an error of the
    source, on the thread that delivers it, as :func:`rxtweet.reconnect.reconnecting`'s does;
    then nothing can call the observer while the current attempt is emitting, and its items
    pass without the lock (a check of three variables instead; ~0.3 us an item). Items of an
    earlier attempt are still dropped. Each attempt is then also subscribed without
    reactivex's ``AutoDetachObserver`` (one Python call less per item): the operator keeps
    that guard's promises itself (nothing of an attempt after its ``on_error`` or
    ``on_completed``, an attempt disposed once it ended, an exception raised while
    subscribing delivered as the attempt's error).

    Examples:
        Retry after a one-second pause, each time::

            res = source.pipe(retry_when(lambda errors: errors.pipe(ops.delay(1.0))))

        Retry three times, then complete (a source that emits one value then fails gives
        its values of four subscriptions):

        >>> import reactivex
        >>> from reactivex import operators as ops
        >>> def one_then_fail(observer, scheduler=None):
        ...     observer.on_next(1)
        ...     observer.on_error(OSError("cut"))
        >>> source = reactivex.create(one_then_fail)
        >>> source.pipe(retry_when(lambda errors: errors.pipe(ops.take(3))), ops.to_list()).run()
        [1, 1, 1, 1]

    Args:
        handler: Function receiving an Observable of the source's errors and returning an
            Observable whose items trigger resubscriptions.
        notifier_follows_errors: the notifier never ends by itself, only synchronously in
            answer to an error it is given (see above): the source's items need no lock.

    Returns:
        An operator function that takes a source observable and returns an observable that
        mirrors the source, resubscribing to it as the notifier dictates.
    """

    def retry_when_(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            # The gate serialises state changes and every call into `observer`; it is
            # re-entrant because the observer may dispose us (or the source may call back)
            # on the thread that holds it. `dispose` does not take it, so disposal is never
            # held up by a slow observer on another thread.
            gate = threading.RLock()
            errors: Subject[Exception] = Subject()
            source_subscription = SerialDisposable()
            notifier_subscription = SingleAssignmentDisposable()
            attempt = 0
            stopped = False
            notifier_started = False

            def trampoline() -> CurrentThreadScheduler:
                return CurrentThreadScheduler.singleton()

            def stop() -> None:
                # A resubscription still queued on the trampoline sees `stopped` and does
                # nothing, so there is no need to cancel it.
                source_subscription.dispose()
                notifier_subscription.dispose()

            def fail(exception: Exception) -> None:
                nonlocal stopped
                with gate:
                    if stopped:
                        return
                    stopped = True
                    try:
                        observer.on_error(exception)
                    finally:
                        stop()

            def complete() -> None:
                nonlocal stopped
                with gate:
                    if stopped:
                        return
                    stopped = True
                    try:
                        observer.on_completed()
                    finally:
                        stop()

            def after_queued(action: Callable[[], None]) -> None:
                # The notifier ended. When the trampoline is idle here, any resubscription
                # it asked for has already run (with all it did synchronously): end now.
                # When it is busy, a resubscription may still be queued, and so may what
                # the resubscribed source does synchronously (reactivex runs `of`, `concat`
                # ... on the trampoline): end once no ready work is left, as RxJS, whose
                # `of` is synchronous, would. Each probe is one item: constant depth.
                tramp = trampoline()
                if tramp.schedule_required():
                    action()
                    return

                def probe(_s: abc.SchedulerBase, _st: Any) -> None:
                    if stopped:
                        return
                    if _ready_work_queued(tramp):
                        tramp.schedule(probe)
                    else:
                        action()

                tramp.schedule(probe)

            def notifier_on_error(exception: Exception) -> None:
                after_queued(lambda: fail(exception))

            def notifier_on_completed() -> None:
                after_queued(complete)

            def notifier_on_next(_: Any) -> None:
                nonlocal attempt
                with gate:
                    if stopped:
                        return
                    attempt += 1
                    current = attempt
                # Outside the gate: when the trampoline is idle on this thread (a timer
                # thread, a virtual-time scheduler) the subscription runs right here; when
                # it is busy (a synchronous retry) it is queued behind the current item.
                trampoline().schedule(lambda _s, _st: subscribe_source(current))

            def handle_error(current: int, exception: Exception) -> None:
                nonlocal notifier_started
                with gate:
                    if stopped or current != attempt:
                        return
                    if not notifier_started:
                        notifier_started = True
                        try:
                            notifier = handler(errors)
                        except Exception as ex:  # noqa: BLE001 - by design, as reactivex's catch
                            fail(ex)
                            return
                        notifier_subscription.disposable = notifier.subscribe(
                            notifier_on_next,
                            notifier_on_error,
                            notifier_on_completed,
                            scheduler=scheduler,
                        )
                        if stopped:  # the notifier terminated on subscription
                            return
                        # A notifier built with trampolined operators (`concat`, ...) may
                        # have only queued its subscription to `errors`: deliver the first
                        # error behind it, or it would be lost and nothing retried.
                        trampoline().schedule(lambda _s, _st: deliver(current, exception))
                        return
                # Outside the gate (lock order: a notifier may hold its own lock while it calls
                # notifier_on_next, which takes the gate).
                errors.on_next(exception)

            def deliver(current: int, exception: Exception) -> None:
                with gate:
                    if stopped or current != attempt:
                        return
                errors.on_next(exception)

            def subscribe_source(current: int) -> None:
                with gate:
                    if stopped or current != attempt:
                        return
                d = SingleAssignmentDisposable()
                source_subscription.disposable = d  # disposes the previous attempt
                # This attempt's own end (its on_error or on_completed came): set only where
                # there is no AutoDetachObserver to keep its later notifications out.
                ended = False

                on_next: Callable[[_T], None]
                if notifier_follows_errors:
                    # Nothing else calls `observer` while this attempt is live: the notifier
                    # acts only after this attempt's error (the source's last word), and a
                    # resubscription makes `current != attempt` before the next attempt
                    # starts. The check without the gate still drops a late item of an
                    # earlier attempt, and anything after this attempt's end or a disposal.
                    emit = observer.on_next

                    def on_next_unlocked(value: _T) -> None:
                        if ended or stopped or current != attempt:
                            return
                        emit(value)

                    on_next = on_next_unlocked
                else:

                    def on_next_gated(value: _T) -> None:
                        with gate:
                            if stopped or current != attempt:
                                return
                            observer.on_next(value)

                    on_next = on_next_gated

                def on_error(exception: Exception) -> None:
                    nonlocal ended
                    if ended:
                        # A source that breaks the contract (an error after its end, or
                        # raised while being subscribed after it ended): the attempt is over.
                        log.debug("an error after the attempt ended, dropped: %r", exception)
                        return
                    ended = True
                    try:
                        # Handle the error inside a trampoline item, so that a
                        # resubscription is queued behind this frame rather than nested in
                        # it: a source that fails synchronously unwinds before it is
                        # subscribed again and the stack depth stays constant.
                        tramp = trampoline()
                        if tramp.schedule_required():  # idle: run an item right here
                            tramp.schedule(lambda _s, _st: handle_error(current, exception))
                        else:  # already inside an item on this thread
                            handle_error(current, exception)
                    finally:
                        d.dispose()  # as reactivex's guard does once its source ended

                def on_completed() -> None:
                    nonlocal ended
                    if ended:
                        return
                    ended = True
                    try:
                        with gate:
                            if stopped or current != attempt:
                                return
                            complete()
                    finally:
                        d.dispose()

                if not notifier_follows_errors:
                    d.disposable = source.subscribe(
                        on_next, on_error, on_completed, scheduler=scheduler
                    )
                    return

                # Unguarded (see the docstring), subscribed as Observable.subscribe does it:
                # an error the source delivers while being subscribed queues the next attempt
                # behind this one, which is disposed first, even from an idle thread (a
                # connection's share connects at the end of a hold() block).
                d.disposable = subscribe_unguarded(
                    source, on_next, on_error, on_completed, scheduler
                )

            def dispose() -> None:
                nonlocal stopped
                stopped = True  # a plain store; see the note on the gate above
                stop()

            subscribe_source(0)
            return Disposable(dispose)

        return Observable(subscribe)

    return retry_when_
