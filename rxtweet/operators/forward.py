"""Subscribe an observer to a source without one more reactivex hop, where that is safe.

``Observable.subscribe`` wraps every observer in an ``AutoDetachObserver``: one more Python
call per item (~0.1 µs), which guards against items after the end and disposes the
subscription at the end. An Observable whose subscribe function only *forwards* its observer
to another source (``defer``, a reconnect attempt, an operator built from others) already
runs inside such a wrapper — the one made when *it* was subscribed — so wrapping the same
observer again guards nothing new: :func:`subscribe_forward` subscribes the source's core
directly instead, and each item reaches the observer one call sooner.

Use it only inside a subscribe function (reactivex's trampoline is then already running and
an exception raised here is turned into ``on_error`` by the enclosing ``subscribe``, as the
inner one would have done) and only when nothing but forwarding happens between the source
and the observer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable
from reactivex.scheduler import CurrentThreadScheduler

__all__ = ["ForwardingObserver", "subscribe_forward", "subscribe_unguarded"]

_T = TypeVar("_T")


class ForwardingObserver(abc.ObserverBase[_T]):
    """An observer made of three callables, called as they are: no guard, no state.

    ``on_next`` is stored on the instance, so a source that binds ``observer.on_next`` once
    calls the target directly.
    """

    def __init__(
        self,
        on_next: Callable[[_T], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
    ) -> None:
        self.on_next = on_next  # type: ignore[method-assign,assignment]
        self.on_error = on_error  # type: ignore[method-assign,assignment]
        self.on_completed = on_completed  # type: ignore[method-assign]

    def on_next(self, value: _T) -> None:  # pragma: no cover - shadowed per instance
        raise NotImplementedError

    def on_error(self, error: Exception) -> None:  # pragma: no cover - shadowed per instance
        raise NotImplementedError

    def on_completed(self) -> None:  # pragma: no cover - shadowed per instance
        raise NotImplementedError


def subscribe_forward(
    source: Observable[_T],
    observer: abc.ObserverBase[_T],
    scheduler: abc.SchedulerBase | None = None,
) -> abc.DisposableBase:
    """``source.subscribe(observer, scheduler=scheduler)`` without the extra wrapper.

    ``observer`` must be guarded already (the ``AutoDetachObserver`` an enclosing subscribe
    made, or a :class:`ForwardingObserver` whose callables lead to one with nothing in
    between that acts on an item). Disposal: the returned disposable ends ``source``'s
    subscription, as the wrapper's would.
    """
    subscription = source._subscribe_core(observer, scheduler)
    if isinstance(subscription, abc.DisposableBase) or hasattr(subscription, "dispose"):
        return subscription
    return Disposable(subscription)


def subscribe_unguarded(
    source: Observable[_T],
    on_next: Callable[[_T], None],
    on_error: Callable[[Exception], None],
    on_completed: Callable[[], None],
    scheduler: abc.SchedulerBase | None = None,
) -> abc.DisposableBase:
    """``source.subscribe(on_next, on_error, on_completed)`` without reactivex's guard, made
    as ``Observable.subscribe`` makes it otherwise: inside a trampoline item (so what the
    source does synchronously while it is subscribed is queued behind the subscription, from
    any thread), and an exception raised while subscribing delivered to ``on_error``.

    For a caller that keeps the guard's promises itself (nothing after a terminal
    notification, one terminal notification): the three callables are called as they are.
    The returned disposable ends ``source``'s subscription.
    """
    subscription = SingleAssignmentDisposable()

    def attach(_: abc.SchedulerBase | None = None, __: object = None) -> None:
        try:
            subscription.disposable = subscribe_forward(
                source, ForwardingObserver(on_next, on_error, on_completed), scheduler
            )
        except Exception as error:  # noqa: BLE001 - as Observable.subscribe: the error
            on_error(error)

    trampoline = CurrentThreadScheduler.singleton()
    if trampoline.schedule_required():
        trampoline.schedule(attach)
    else:
        attach()
    return subscription
