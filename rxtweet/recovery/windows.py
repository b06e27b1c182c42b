"""``recovery="full"``: recovery connections that re-stream a window beside the live one.

When a gap is longer than ``backfill_minutes`` reaches, the live connection asks for the
last 5 minutes and :class:`RecoveryWindows` opens a second connection with
``start_time``/``end_time`` for the older part. X streams that window and closes; its items
join the live ones in the same ordered stream (de-duplicated above it), each reported to the
sink as recovered.

.. marble::
    :alt: recovery window

    live      --a--b--#  (7 minute gap)   --Backfilling--x--y--z--c--d--
    window                                --Recovering--p--q--r--|
    result    --a--b----------------------Backfilling-Recovering-p-x-q-y-r-Recovered-z-c--

Contract:

* at most ``max_open`` windows (X allows 2 recovery connections) are open at once; more
  wait their turn, in order;
* a window's network failures are retried by the usual reconnect policy (the same window
  again: its duplicates are dropped); a clean end of its body is the end of the window:
  :class:`~rxtweet.events.Recovered` with the items it carried;
* a window that fails for good (or that X refuses) is :class:`~rxtweet.events.DataLost`
  for its span; the live stream goes on;
* while a window is open the sink keeps every key seen since its start
  (``sink.window.hold``), so the items it re-sends that arrived before the cut are still
  recognised as duplicates;
* :meth:`RecoveryWindows.dispose` closes every window at once (the live stream's end or
  disposal calls it); nothing is emitted after it.

Threads: :meth:`open` runs on the thread opening the live attempt; each window's items and
events arrive on its own reader thread and are passed to ``emit``, which the connection
serializes with the live stream's.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from reactivex import abc

from ..credentials import scrub_secrets, secrets_of
from ..events import Closed, DataLost, Errored, Recovered, Recovering, StreamEvent
from ..parse import Parsed
from .gap import FULL_REACH

if TYPE_CHECKING:
    from ..connection import Connection, RecoverySink
    from ..http import StreamRequest

__all__ = ["MAX_OPEN_WINDOWS", "REACH_MARGIN", "RecoveryWindows"]

log = logging.getLogger(__name__)

#: Recovery connections open at once per live connection (X allows 2 per stream).
MAX_OPEN_WINDOWS: Final = 2
#: Seconds a window's start keeps inside X's 24 hours when it opens: the request reaches X
#: a moment later and its start is floored to the second, and a start older than 24 h is
#: refused (400), which would turn recovery off for good. What it gives up is lost.
REACH_MARGIN: Final = 60.0


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class RecoveryWindows:
    """The recovery windows of one live connection subscription.

    Args:
        connect: builds the recovery :class:`~rxtweet.connection.Connection` for a window.
        emit: the live stream's (serialized) ``on_next``.
        sink: told about recovered items and held keys; may be ``None``.
        refused: told when X answers a window with 400 (``(error, request)``), so that
            recovery can be turned off and reported once.
        max_open: windows open at once.
        clock: epoch seconds now (the live connection's); when given, a window whose start
            is, by the time it opens (it may have waited for a slot), older than X's 24
            hours less :data:`REACH_MARGIN` starts there instead, and the part given up is
            :class:`~rxtweet.events.DataLost`.
    """

    def __init__(
        self,
        connect: Callable[[float, float], Connection[Any]],
        emit: Callable[[Any], None],
        sink: RecoverySink | None,
        *,
        refused: Callable[[BaseException, StreamRequest], object] | None = None,
        max_open: int = MAX_OPEN_WINDOWS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock
        self._refused = refused
        self._connect = connect
        self._emit = emit
        self._sink = sink
        self._max_open = max_open
        self._lock = threading.Lock()
        self._waiting: deque[tuple[float, float]] = deque()
        self._open: dict[int, abc.DisposableBase | None] = {}
        self._ids = iter(range(1, 1 << 62))
        self._disposed = False

    def open(self, start: float, end: float) -> None:
        """Recover the items created from ``start`` to ``end`` (epoch seconds)."""
        with self._lock:
            if self._disposed:
                return
            if len(self._open) >= self._max_open:
                log.info("recovery window %s..%s waits for a free slot", start, end)
                self._waiting.append((start, end))
                return
            number = next(self._ids)
            self._open[number] = None
        self._start(number, start, end)

    def _start(self, number: int, start: float, end: float) -> None:
        if self._clock is not None:
            oldest = self._clock() - FULL_REACH + REACH_MARGIN
            if start < oldest:
                given_up = min(oldest, end)
                log.warning("recovery window %s..%s: X keeps 24 hours, from %s", start, end, oldest)
                self._emit(DataLost(_dt(start), _dt(given_up), given_up - start))
                start = given_up
                if start >= end:
                    with self._lock:
                        self._open.pop(number, None)
                    self._next()
                    return
        release = self._sink.window.hold(start) if self._sink is not None else None
        sink = self._sink
        emit = self._emit
        items = [0]
        done = [False]
        self._emit(Recovering(_dt(start), _dt(end)))

        def finish(event: StreamEvent | None) -> None:
            with self._lock:
                if done[0]:
                    return
                done[0] = True
                subscription = self._open.pop(number, None)
                disposed = self._disposed
            if subscription is not None:
                subscription.dispose()
            if release is not None:
                release()
            if event is not None and not disposed:
                emit(event)
            self._next()

        def on_next(item: Any) -> None:
            if done[0]:
                return
            if type(item) is Parsed:
                items[0] += 1
                if sink is not None:
                    sink.mark_recovered()
                emit(item)
            elif type(item) is Closed:
                # X closes a recovery connection when the window is done.
                finish(Recovered(_dt(start), _dt(end), items[0]))
            elif type(item) is Errored:
                # Scrubbed: X's problem text may echo the request's credentials.
                reason = scrub_secrets(repr(item.exception), secrets_of(connection.request))
                log.warning("recovery window %s..%s failed: %s", start, end, reason)
                if self._refused is not None:
                    self._refused(item.exception, connection.request)
                finish(DataLost(_dt(start), _dt(end), end - start))
            else:
                log.debug("recovery window %s..%s: %r", start, end, item)

        def on_error(error: Exception) -> None:
            finish(None)  # Errored came first (a Connection's contract)

        connection = self._connect(start, end)
        subscription = connection.items.subscribe(on_next, on_error, lambda: finish(None))
        with self._lock:
            if number in self._open and not done[0]:
                self._open[number] = subscription
                return
        subscription.dispose()  # finished (or disposed) while subscribing

    def _next(self) -> None:
        with self._lock:
            if self._disposed or not self._waiting or len(self._open) >= self._max_open:
                return
            start, end = self._waiting.popleft()
            number = next(self._ids)
            self._open[number] = None
        self._start(number, start, end)

    def dispose(self) -> None:
        """Close every open window and forget the waiting ones; idempotent."""
        with self._lock:
            self._disposed = True
            self._waiting.clear()
            subscriptions = [s for s in self._open.values() if s is not None]
            self._open.clear()
        for subscription in subscriptions:
            subscription.dispose()
