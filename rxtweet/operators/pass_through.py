"""The one helper behind rxtweet's pass-through operators.

Most of rxtweet's operators see each value once, in order, on the thread that emits it, and
let errors and completion through untouched: line framing, parsing, picking substreams. They
differ only in what ``on_next`` does. :func:`pass_through` writes the rest once, without
reactivex's internal helpers, and adds no hop: the ``on_next`` built for a subscription is
subscribed to the source directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc

__all__ = ["pass_through"]

log = logging.getLogger(__name__)

_A = TypeVar("_A")
_B = TypeVar("_B")


def pass_through(
    on_next_for: Callable[[abc.ObserverBase[_B]], Callable[[_A], None]],
    *,
    error_completes: bool | Callable[[Exception], bool] = False,
) -> Callable[[Observable[_A]], Observable[_B]]:
    """An operator whose ``on_next`` is ``on_next_for(observer)``; errors and completion pass.

    ``on_next_for`` is called once per subscription, with the downstream observer: the
    closure it returns holds that subscription's state (a buffer, a counter) and calls
    ``observer.on_next`` as many times as it likes (zero to filter, several to split). It
    may also end the stream itself (``observer.on_completed()``); an exception it raises
    travels as reactivex routes it (back to the source's ``on_error`` handling).

    .. marble::
        :alt: pass_through

        source  --a--b--c--#
        [   pass_through(f)  ]
        result  --f(a)-f(b)--f(c)--#      (each f may emit 0..n values)

    With ``error_completes=True`` an error from the source ends the result with a completion
    instead (for a stream of events that reports its errors as events); a predicate decides
    per error (true: complete, false: pass the error on).

    >>> import reactivex
    >>> from reactivex import operators as ops
    >>> def doubled(observer):
    ...     return lambda value: observer.on_next(value * 2)
    >>> reactivex.of(1, 2, 3).pipe(pass_through(doubled), ops.to_list()).run()
    [2, 4, 6]
    """

    def operator(source: Observable[_A]) -> Observable[_B]:
        def subscribe(
            observer: abc.ObserverBase[_B], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            on_next = on_next_for(observer)
            if error_completes:
                completes = error_completes if callable(error_completes) else None

                def on_error(error: Exception) -> None:
                    if completes is None or completes(error):
                        observer.on_completed()
                    else:
                        observer.on_error(error)

                return source.subscribe(
                    on_next, on_error, observer.on_completed, scheduler=scheduler
                )
            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator
