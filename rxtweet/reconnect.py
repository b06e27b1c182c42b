"""When and how soon to reconnect a stream: :class:`ReconnectPolicy` and :func:`reconnecting`.

The rules follow X's guidance on handling disconnections (the v2 page "Handling
disconnections" and the v1.1 "Connecting to a streaming endpoint" page):

* reconnect immediately when an established connection drops;
* TCP/IP (network) errors: back off linearly, +250 ms per attempt, up to 16 s;
* HTTP errors: back off exponentially, starting at 5 s and doubling, up to 320 s;
* 429 (v2) / 420 (v1.1): back off exponentially, starting at 1 minute and doubling — "every
  429 extends the penalty";
* never loop on errors that retrying cannot fix (bad credentials, bad parameters, a used-up
  usage cap): "a good client never receives a 429".

:class:`Backoff` is the state machine — plain Python, no Rx — and :func:`reconnecting` the
operator that applies it to a cold Observable of lines (one subscription, one connection).
What counts as a connection that "delivered data" (and so restarts the backoff) is decided
downstream, after parsing, through a :class:`DataSignal`: a line alone proves nothing (a
captive portal answers 200 with an HTML page).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable

from .errors import (
    HTTPException,
    RetriesExhausted,
    StreamConnectionError,
    TooManyRequests,
    UsageCapExceeded,
    describe,
    raised_downstream,
)
from .events import Closed, ConnectionFailed, Reconnecting, RequestFailed, StreamEvent
from .operators.forward import ForwardingObserver, subscribe_forward
from .operators.retry_when import retry_when
from .scheduling import WaitScheduler

__all__ = [
    "DEFAULT_FATAL_STATUSES",
    "RATE_LIMIT_RESET_WAIT_MAX",
    "RATE_LIMIT_WAIT_MAX",
    "Backoff",
    "DataSignal",
    "ReconnectPolicy",
    "RetriesExhausted",
    "reconnecting",
]

log = logging.getLogger(__name__)

#: What a reconnected source carries: lines, or batches of them (the operator never looks).
_L = TypeVar("_L")

#: Cap on the doubling 420/429 wait (X states none). 960 s = 60 s doubled four times, more
#: than one whole 15-minute rate-limit window, so a wait at the cap always spans a reset.
RATE_LIMIT_WAIT_MAX = 960.0

#: Longest wait taken from an ``x-rate-limit-reset`` header. The window is 15 minutes, so a
#: reset further away than this means a skewed clock or a bogus header; waiting for it could
#: silently stall the stream for days.
RATE_LIMIT_RESET_WAIT_MAX = 3600.0

#: Statuses for which a retry cannot help; see :attr:`ReconnectPolicy.fatal_statuses`.
DEFAULT_FATAL_STATUSES = frozenset({400, 401, 403, 404, 406, 409, 413, 416, 422})

_RATE_LIMIT_STATUSES = frozenset({420, 429})


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconnectPolicy:
    """How a stream reconnects after it failed or was closed. Defaults follow X's guidance.

    Each failure of a connection is one of four kinds, each with its own wait:

    * **network error** (:class:`~rxtweet.errors.StreamConnectionError`, including a
      :class:`~rxtweet.errors.StallError`): reconnect at once, then wait
      ``network_wait_step`` more each time (0, 0.25, 0.5, …) up to ``network_wait_max``.
      X: "back off linearly. Increase the delay in reconnects by 250ms each attempt, up to
      16 seconds."
    * **HTTP error** (:class:`~rxtweet.errors.HTTPException`, a status other than 200): wait
      ``http_wait_start``, doubling each time up to ``http_wait_max``. X: "back off
      exponentially … Start with a 5 second wait, doubling each attempt, up to 320 seconds."
    * **rate limited** (420 or 429, :class:`~rxtweet.errors.TooManyRequests`): wait
      ``rate_limit_wait_start``, doubling each time. X: "Start with a 1 minute wait and double
      each attempt. Note that every HTTP 429 received increases the time you must wait until
      rate limiting will no longer be in effect." X states no cap; the doubling stops at
      :data:`RATE_LIMIT_WAIT_MAX` (960 s, over one whole 15-minute window). When the
      response's rate limit shows ``remaining == 0``, the wait lasts at least until its
      ``reset`` (at most :data:`RATE_LIMIT_RESET_WAIT_MAX` from now). That floor applies to
      any HTTP error carrying such headers: reconnecting into an exhausted window can only
      earn a 429.
    * **clean close** (the server ended the response): X: "reconnect immediately" — when
      that connection delivered data (see below). A server that keeps accepting and closing
      without delivering data — nothing at all, only keep-alives, lines that are not
      messages (a ``200 text/html`` page from a captive portal), or only system messages
      such as ``operational-disconnect`` — is backed off like network errors (one counter
      serves both), never reconnected in a tight loop.

    A status in ``fatal_statuses`` ends the stream at once with its error: retrying cannot
    fix a bad request or bad credentials, and X asks clients not to loop on them ("test with
    bad credentials: a good client never receives a 429"). A 429 whose problem type is
    ``usage-capped`` (:class:`~rxtweet.errors.UsageCapExceeded`) ends the stream too,
    whatever ``fatal_statuses`` says: the Daily or Monthly cap does not reset for hours or
    days, so no wait of the rate-limit schedule can help. Any exception that is neither a
    network nor an HTTP error (for instance one raised by user code downstream) is not a
    connection failure: it ends the stream and is never retried.

    All counters (including the one ``max_retries`` checks) restart when a connection
    delivers data: a parsed message that is not a system error (for the v2 stream, one with
    ``data``; see :func:`rxtweet.v2.convert.is_v2_data`). Being answered with 200 is not enough
    (a server can answer 200 and close at once), nor is a keep-alive or a malformed line.
    ``max_retries`` counts reconnects of every kind since then; when one more would be
    needed the stream ends with :class:`RetriesExhausted`.

    Args:
        network_wait_step: added to the wait after each network error (seconds, > 0).
        network_wait_max: longest wait after network errors (>= ``network_wait_step``).
        http_wait_start: first wait after an HTTP error (seconds, > 0).
        http_wait_max: longest wait after HTTP errors (>= ``http_wait_start``).
        rate_limit_wait_start: first wait after a 420/429 (seconds, > 0).
        max_retries: reconnects allowed in a row without data delivered: a whole number
            >= 0, or ``math.inf`` (the default) for no limit.
        fatal_statuses: HTTP statuses that end the stream without a retry.
    """

    network_wait_step: float = 0.25
    network_wait_max: float = 16.0
    http_wait_start: float = 5.0
    http_wait_max: float = 320.0
    rate_limit_wait_start: float = 60.0
    max_retries: float = math.inf
    fatal_statuses: frozenset[int] = field(default=DEFAULT_FATAL_STATUSES)

    def __post_init__(self) -> None:
        _check_seconds("network_wait_step", self.network_wait_step, positive=True)
        _check_seconds("network_wait_max", self.network_wait_max)
        if self.network_wait_max < self.network_wait_step:
            raise ValueError(
                f"network_wait_max ({self.network_wait_max!r}) must be >= "
                f"network_wait_step ({self.network_wait_step!r})"
            )
        _check_seconds("http_wait_start", self.http_wait_start, positive=True)
        _check_seconds("http_wait_max", self.http_wait_max)
        if self.http_wait_max < self.http_wait_start:
            raise ValueError(
                f"http_wait_max ({self.http_wait_max!r}) must be >= "
                f"http_wait_start ({self.http_wait_start!r})"
            )
        _check_seconds("rate_limit_wait_start", self.rate_limit_wait_start, positive=True)
        retries: Any = self.max_retries
        if (
            isinstance(retries, bool)
            or not isinstance(retries, int | float)
            or not (retries == math.inf or (retries >= 0 and float(retries).is_integer()))
        ):
            raise ValueError(
                f"max_retries must be a whole number >= 0 or math.inf, not {retries!r}"
            )
        object.__setattr__(self, "fatal_statuses", _check_statuses(self.fatal_statuses))

    def is_fatal(self, cause: BaseException | None) -> bool:
        """Whether ``cause`` is an HTTP error that retrying cannot fix.

        That is a status in :attr:`fatal_statuses`, or a used-up usage cap
        (:class:`~rxtweet.errors.UsageCapExceeded`, whatever its status).
        """
        return isinstance(cause, HTTPException) and (
            isinstance(cause, UsageCapExceeded) or cause.status_code in self.fatal_statuses
        )

    def is_retryable(self, cause: BaseException | None) -> bool:
        """Whether the policy reconnects after ``cause`` (retries permitting).

        ``cause`` is the exception a connection failed with, or ``None`` for a clean close
        by the server. Network errors, non-fatal HTTP errors (see :meth:`is_fatal`) and
        clean closes are retryable;
        anything else (user code's exceptions included) is not — and neither is an exception
        that code downstream raised, whatever its type (see
        :func:`rxtweet.errors.mark_downstream`).
        """
        if raised_downstream(cause):
            return False
        if cause is None or isinstance(cause, StreamConnectionError):
            return True
        return isinstance(cause, HTTPException) and not self.is_fatal(cause)

    def new_backoff(self, *, clock: Callable[[], float] = time.time) -> Backoff:
        """A fresh :class:`Backoff` for one stream. ``clock`` gives epoch seconds."""
        return Backoff(self, clock=clock)


class Backoff:
    """The reconnect state of one stream under a :class:`ReconnectPolicy`. Not thread-safe.

    Call :meth:`next_delay` with each failure and :meth:`reset` when a connection delivers
    data (its first message that is not a system error)::

        backoff = ReconnectPolicy().new_backoff()
        backoff.next_delay(StreamConnectionError("reset"))   # 0.0
        backoff.next_delay(StreamConnectionError("reset"))   # 0.25
        backoff.next_delay(TwitterServerError(503))          # 5.0
        backoff.next_delay(Unauthorized(401))                # None: fatal
        backoff.reset()

    Attributes:
        policy: the rules.
        retries: reconnects granted since the last :meth:`reset` (1-based number of the
            latest one).
    """

    def __init__(self, policy: ReconnectPolicy, *, clock: Callable[[], float] = time.time):
        self.policy = policy
        self.retries = 0
        self._clock = clock
        self._linear = 0  # network errors and clean closes
        self._http = 0
        self._rate_limit = 0

    def reset(self) -> None:
        """A connection delivered data: the next failure starts from scratch."""
        self.retries = 0
        self._linear = 0
        self._http = 0
        self._rate_limit = 0

    def next_delay(self, cause: BaseException | None) -> float | None:
        """Seconds to wait before reconnecting after ``cause``, or ``None`` to give up.

        ``cause`` is the exception the connection failed with, or ``None`` when the server
        closed it cleanly. ``None`` is returned when the cause is not retryable (see
        :meth:`ReconnectPolicy.is_retryable`) or ``max_retries`` is used up; otherwise the
        reconnect is counted in :attr:`retries`.
        """
        policy = self.policy
        if not policy.is_retryable(cause) or self.retries >= policy.max_retries:
            return None
        self.retries += 1
        if not isinstance(cause, HTTPException):  # network error or clean close
            delay = min(policy.network_wait_step * self._linear, policy.network_wait_max)
            self._linear += 1
            return delay
        if isinstance(cause, TooManyRequests) or cause.status_code in _RATE_LIMIT_STATUSES:
            cap = max(RATE_LIMIT_WAIT_MAX, policy.rate_limit_wait_start)
            delay = _doubled(policy.rate_limit_wait_start, self._rate_limit, cap)
            self._rate_limit += 1
        else:
            delay = _doubled(policy.http_wait_start, self._http, policy.http_wait_max)
            self._http += 1
        rate_limit = cause.rate_limit
        if rate_limit is not None and rate_limit.remaining == 0 and rate_limit.reset is not None:
            until_reset = min(rate_limit.reset - self._clock(), RATE_LIMIT_RESET_WAIT_MAX)
            delay = max(delay, until_reset)
        return delay


class DataSignal:
    """Tells :func:`reconnecting` that the current connection delivered data. Thread-safe.

    A line is not proof of a working stream (an HTML page, a keep-alive, a system message
    announcing a disconnect), and :func:`reconnecting` sees only lines, so the code that
    parses them decides: it calls :meth:`set` for a message that counts, which restarts the
    backoff (:meth:`Backoff.reset`) once per connection. Create one signal per subscription
    of the reconnecting Observable and pass it as ``reconnecting(..., data=signal)``::

        signal = DataSignal()
        messages = lines.pipe(reconnecting(policy, data=signal), parse_lines(convert))
        messages.subscribe(lambda m: (signal.set() if is_data(m) else None, ...))

    :attr:`waiting` is true while the current connection has not delivered data yet; test it
    first to keep the per-message cost at one attribute read (``if signal.waiting and ...``).
    """

    __slots__ = ("_lock", "_reset", "waiting")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset: Callable[[], None] | None = None
        self.waiting = False

    def set(self) -> None:
        """The current connection delivered data: restart the backoff (once per connection).

        Must be called while the line that carried the data is being delivered (on the
        thread that delivers it), so that it counts before that connection's failure does.
        Does nothing when the signal is not attached to a subscription.
        """
        if not self.waiting:
            return
        with self._lock:
            if not self.waiting:
                return
            self.waiting = False
            reset = self._reset
        if reset is not None:
            reset()

    def _attach(self, reset: Callable[[], None]) -> None:
        with self._lock:
            self._reset = reset
            self.waiting = False

    def _new_connection(self) -> None:
        with self._lock:
            self.waiting = True

    def __repr__(self) -> str:
        return f"<DataSignal waiting={self.waiting}>"


def reconnecting(
    policy: ReconnectPolicy,
    *,
    scheduler: abc.SchedulerBase | None = None,
    on_event: Callable[[StreamEvent], None] | None = None,
    clock: Callable[[], float] = time.time,
    data: DataSignal | None = None,
) -> Callable[[Observable[_L]], Observable[_L]]:
    """Reconnects a cold Observable of lines (or of batches of lines) according to ``policy``.

    Each subscription to the source is one connection: it emits the lines received (keep-
    alives ``b""`` included), errors with a :class:`~rxtweet.errors.HTTPException` or a
    :class:`~rxtweet.errors.StreamConnectionError`, or completes when the server ends the
    stream. The result never completes by itself: a clean close is reconnected too.

    .. marble::
        :alt: reconnecting

        connection 1  --a--b--#             (network error)
        connection 2           --c--|       (clean close after a line)
        connection 3                --#     (503)
        connection 4                   ....5 s....--d--
        [               reconnecting(policy)             ]
        result        --a--b-----c--------------------d--

    The result errors with the cause when it is not retryable — a status in
    ``policy.fatal_statuses`` after one attempt, or any exception that is neither a network
    nor an HTTP error (such as one raised by user code downstream, which reactivex routes
    back as ``on_error``) — and with :class:`RetriesExhausted` when ``max_retries`` is used
    up.

    For every failure ``on_event`` receives :class:`~rxtweet.events.ConnectionFailed`
    (network error), :class:`~rxtweet.events.RequestFailed` (HTTP error) or
    :class:`~rxtweet.events.Closed` (clean close), then, when a reconnect is scheduled,
    :class:`~rxtweet.events.Reconnecting` with ``attempt`` = the 1-based number of that
    reconnect since a connection last delivered data (the count ``max_retries`` limits).

    What "delivered data" means is up to ``data``: with a :class:`DataSignal`, the backoff
    restarts only when downstream code calls ``data.set()`` (after parsing, for a message
    that counts); without one, any line counts, keep-alives included (for raw lines, whose
    meaning this operator cannot judge).
    An exception raised by ``on_event`` ends the stream with that exception.

    Examples:
        Over the lines of :func:`rxtweet.transport.lines` (``events`` a ``Subject``)::

            lines = transport.lines(request).pipe(reconnecting(ReconnectPolicy()))
            lines = transport.lines(request).pipe(reconnecting(policy, on_event=events.on_next))

    Args:
        policy: the rules.
        scheduler: where the waits run; default: the scheduler given to ``subscribe``, or
            else :class:`rxtweet.scheduling.WaitScheduler` (timer threads named
            ``rxtweet-wait-N``). A disposal during a wait cancels it at once.
        on_event: called with each lifecycle event, on the thread where it happened.
        clock: epoch seconds, compared with ``x-rate-limit-reset``.
        data: the signal through which downstream code reports data (see above); it is
            attached to the latest subscription, so subscribe the result once per signal.

    Returns:
        An operator function from a cold Observable of lines to an Observable of lines that
        reconnects.
    """

    def reconnecting_(source: Observable[_L]) -> Observable[_L]:
        def subscribe(
            observer: abc.ObserverBase[_L], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            waits = scheduler or scheduler_ or WaitScheduler.singleton()
            backoff = policy.new_backoff(clock=clock)
            lock = threading.Lock()  # guards `backoff`: lines and failures may cross threads

            def reset() -> None:
                with lock:
                    backoff.reset()

            if data is not None:
                data._attach(reset)

            def connection(
                inner: abc.ObserverBase[_L], scheduler__: abc.SchedulerBase | None = None
            ) -> abc.DisposableBase:
                def on_completed() -> None:
                    inner.on_error(_ServerClosed())

                if data is not None:
                    # Downstream judges the data; lines pass straight through, without a
                    # hop of their own (`inner` is reactivex's guard already).
                    data._new_connection()
                    return subscribe_forward(
                        source,
                        ForwardingObserver(inner.on_next, inner.on_error, on_completed),
                        scheduler__,
                    )

                # One subscription = one connection; `delivered` belongs to it alone.
                delivered = False

                def on_next(line: _L) -> None:
                    nonlocal delivered
                    if not delivered:
                        delivered = True
                        reset()
                    inner.on_next(line)

                return source.subscribe(
                    on_next, inner.on_error, on_completed, scheduler=scheduler__
                )

            def plan(exception: Exception) -> float | Exception:
                """The wait before the next connection, or the exception to end the stream.

                Raises what ``on_event`` raised (a user error: it ends the stream too).
                """
                cause: BaseException | None = (
                    None if isinstance(exception, _ServerClosed) else exception
                )
                if raised_downstream(cause):
                    return exception  # user code's, whatever its type: not a connection event
                if isinstance(cause, StreamConnectionError):
                    _emit(on_event, ConnectionFailed(cause))
                elif isinstance(cause, HTTPException):
                    _emit(on_event, RequestFailed(cause.status_code, cause.body, cause))
                elif cause is None:
                    _emit(on_event, Closed())
                with lock:
                    delay = backoff.next_delay(cause)
                    attempt = backoff.retries
                if delay is None:
                    if not policy.is_retryable(cause):
                        if policy.is_fatal(cause):
                            log.warning("not reconnecting: %s", describe(cause, with_type=True))
                        return exception  # fatal status, or not a connection failure at all
                    log.warning(
                        "gave up after %d retries: %s", attempt, describe(cause, with_type=True)
                    )
                    return RetriesExhausted(attempt, cause)
                level = logging.INFO if cause is None else logging.WARNING
                log.log(
                    level,
                    "reconnecting in %.2f s (attempt %d) after %s",
                    delay,
                    attempt,
                    describe(cause, with_type=True),
                )
                _emit(on_event, Reconnecting(attempt, delay, cause))
                return delay

            def handler(errors: Observable[Exception]) -> Observable[Any]:
                def notifier(
                    retry: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
                ) -> abc.DisposableBase:
                    wait = SerialDisposable()

                    def on_error_item(exception: Exception) -> None:
                        try:
                            delay = plan(exception)
                        except Exception as ex:  # noqa: BLE001 - on_event's: ends the stream
                            retry.on_error(ex)
                            return
                        if isinstance(delay, Exception):
                            retry.on_error(delay)
                        elif delay <= 0:
                            retry.on_next(None)
                        else:
                            wait.disposable = waits.schedule_relative(
                                delay, lambda _s, _st: retry.on_next(None)
                            )

                    return CompositeDisposable(
                        errors.subscribe(on_error_item, retry.on_error, retry.on_completed),
                        wait,
                    )

                return Observable(notifier)

            # `observer` is reactivex's guard already: no second one around it.
            retried: Observable[_L] = Observable(connection).pipe(
                retry_when(handler, notifier_follows_errors=True)
            )
            return subscribe_forward(
                retried,
                observer,
                scheduler_,
            )

        return Observable(subscribe)

    return reconnecting_


class _ServerClosed(Exception):
    """Carries a clean server close through ``retry_when`` (which only sees errors)."""


def _emit(on_event: Callable[[StreamEvent], None] | None, event: StreamEvent) -> None:
    if on_event is not None:
        on_event(event)


def _doubled(start: float, times: int, cap: float) -> float:
    # min() on the exponent keeps 2.0 ** times from overflowing after a long outage.
    return min(start * 2.0 ** min(times, 64), cap)


def _check_seconds(name: str, value: Any, *, positive: bool = False) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 if positive else value >= 0)
    )
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, not {value!r}")


def _check_statuses(statuses: Iterable[int]) -> frozenset[int]:
    if isinstance(statuses, str | bytes) or not isinstance(statuses, Iterable):
        raise ValueError(f"fatal_statuses must be a set of HTTP status codes, not {statuses!r}")
    result = frozenset(statuses)
    for status in result:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"fatal_statuses: {status!r} is not an HTTP status code (100-599)")
        if status == 200:
            raise ValueError("fatal_statuses must not contain 200")
    return result
