"""``ReconnectPolicy``, its ``Backoff`` state machine and the ``reconnecting`` operator.

Timing tests run in virtual time: ``TestScheduler.start`` subscribes at 200 and passes itself
as the subscribe scheduler, so every wait of the policy is virtual.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import threading
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

from rxtweet.errors import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    StallError,
    StreamConnectionError,
    TooManyRequests,
    TwitterServerError,
    Unauthorized,
)
from rxtweet.events import Closed, ConnectionFailed, Reconnecting, RequestFailed, StreamEvent
from rxtweet.reconnect import (
    RATE_LIMIT_RESET_WAIT_MAX,
    RATE_LIMIT_WAIT_MAX,
    Backoff,
    ReconnectPolicy,
    RetriesExhausted,
    reconnecting,
)

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe

NETWORK = StreamConnectionError("connection reset")
SERVER_503 = TwitterServerError(503, reason="Service Unavailable")


def too_many(status: int = 429, *, remaining: int | None = None, reset: int | None = None) -> Any:
    headers = {"x-rate-limit-limit": "50"}
    if remaining is not None:
        headers["x-rate-limit-remaining"] = str(remaining)
    if reset is not None:
        headers["x-rate-limit-reset"] = str(reset)
    return TooManyRequests(status, headers=headers, body=b'{"title":"TooManyConnections"}')


class Connections:
    """A cold source of scripted connections; the last script repeats.

    Records the virtual time of each subscription (= connection attempt).
    """

    def __init__(self, scheduler: TestScheduler, *scripts: list[Recorded[bytes]]) -> None:
        self.scheduler = scheduler
        self.scripts = scripts
        self.times: list[float] = []

    def __call__(self) -> Observable[bytes]:
        def factory(_: Any) -> Observable[bytes]:
            index = min(len(self.times), len(self.scripts) - 1)
            self.times.append(self.scheduler.clock)
            return self.scheduler.create_cold_observable(self.scripts[index])

        return reactivex.defer(factory)

    @property
    def waits(self) -> list[float]:
        """Time between consecutive connection attempts."""
        return [round(b - a, 6) for a, b in zip(self.times, self.times[1:], strict=False)]


def fail(exception: Exception, at: float = 0) -> list[Recorded[bytes]]:
    return [on_error(at, exception)]  # type: ignore[arg-type]


def run(
    scheduler: TestScheduler,
    source: Observable[bytes],
    policy: ReconnectPolicy | None = None,
    *,
    disposed: float = 100_000,
    events: list[StreamEvent] | None = None,
) -> Any:
    operator = reconnecting(
        policy or ReconnectPolicy(),
        on_event=events.append if events is not None else None,
        clock=lambda: scheduler.clock,
    )
    return scheduler.start(lambda: source.pipe(operator), disposed=disposed)


# --- the policy object -------------------------------------------------------------------


def test_defaults_follow_x_guidance() -> None:
    policy = ReconnectPolicy()
    assert policy.network_wait_step == 0.25
    assert policy.network_wait_max == 16.0
    assert policy.http_wait_start == 5.0
    assert policy.http_wait_max == 320.0
    assert policy.rate_limit_wait_start == 60.0
    assert policy.max_retries == math.inf
    assert policy.fatal_statuses == frozenset({400, 401, 403, 404, 406, 409, 413, 416, 422})


def test_policy_is_frozen_and_keyword_only() -> None:
    policy = ReconnectPolicy(max_retries=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_retries = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        ReconnectPolicy(0.5)  # type: ignore[call-arg]


def test_fatal_statuses_accepts_any_iterable() -> None:
    policy = ReconnectPolicy(fatal_statuses=[401, 403])  # type: ignore[arg-type]
    assert policy.fatal_statuses == frozenset({401, 403})
    assert isinstance(policy.fatal_statuses, frozenset)
    assert ReconnectPolicy(fatal_statuses=frozenset()).fatal_statuses == frozenset()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"network_wait_step": 0}, "network_wait_step"),
        ({"network_wait_step": -1}, "network_wait_step"),
        ({"network_wait_step": math.nan}, "network_wait_step"),
        ({"network_wait_max": math.inf}, "network_wait_max"),
        ({"network_wait_step": 2.0, "network_wait_max": 1.0}, "network_wait_max"),
        ({"http_wait_start": 0}, "http_wait_start"),
        ({"http_wait_start": "5"}, "http_wait_start"),
        ({"http_wait_start": True}, "http_wait_start"),
        ({"http_wait_max": 1.0}, "http_wait_max"),
        ({"rate_limit_wait_start": -60}, "rate_limit_wait_start"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": math.nan}, "max_retries"),
        ({"max_retries": "3"}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"fatal_statuses": {200}}, "200"),
        ({"fatal_statuses": {1000}}, "1000"),
        ({"fatal_statuses": {"401"}}, "401"),
        ({"fatal_statuses": 401}, "fatal_statuses"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReconnectPolicy(**kwargs)


def test_whole_float_max_retries_is_accepted() -> None:
    assert ReconnectPolicy(max_retries=3.0).max_retries == 3.0
    assert ReconnectPolicy(max_retries=0).max_retries == 0


def test_classification() -> None:
    policy = ReconnectPolicy()
    assert policy.is_retryable(None)  # clean close
    assert policy.is_retryable(NETWORK)
    assert policy.is_retryable(StallError(90))
    assert policy.is_retryable(SERVER_503)
    assert policy.is_retryable(too_many())
    assert policy.is_retryable(HTTPException(418))
    assert not policy.is_retryable(Unauthorized(401))
    assert policy.is_fatal(Unauthorized(401))
    assert not policy.is_fatal(SERVER_503)
    assert not policy.is_retryable(ValueError("user bug"))
    assert not policy.is_fatal(ValueError("user bug"))
    assert not policy.is_retryable(KeyboardInterrupt())


# --- the state machine --------------------------------------------------------------------


def delays(backoff: Backoff, cause: BaseException | None, n: int) -> list[float | None]:
    return [backoff.next_delay(cause) for _ in range(n)]


def test_network_errors_back_off_linearly_up_to_the_max() -> None:
    backoff = ReconnectPolicy().new_backoff()
    got = delays(backoff, NETWORK, 68)
    assert got[:5] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert got[64] == 16.0
    assert got[65:] == [16.0, 16.0, 16.0]
    assert backoff.retries == 68


def test_stalls_are_network_errors() -> None:
    assert delays(ReconnectPolicy().new_backoff(), StallError(90), 3) == [0.0, 0.25, 0.5]


def test_http_errors_double_up_to_the_max() -> None:
    got = delays(ReconnectPolicy().new_backoff(), SERVER_503, 9)
    assert got == [5, 10, 20, 40, 80, 160, 320, 320, 320]


def test_http_doubling_does_not_overflow_after_a_long_outage() -> None:
    backoff = ReconnectPolicy().new_backoff()
    assert delays(backoff, SERVER_503, 5000)[-1] == 320.0


@pytest.mark.parametrize("status", [420, 429])
def test_rate_limits_start_at_a_minute_and_double(status: int) -> None:
    got = delays(ReconnectPolicy().new_backoff(), too_many(status), 7)
    assert got == [60, 120, 240, 480, 960, 960, 960]
    assert RATE_LIMIT_WAIT_MAX == 960


def test_rate_limit_cap_never_undercuts_a_larger_start() -> None:
    backoff = ReconnectPolicy(rate_limit_wait_start=2000).new_backoff()
    assert delays(backoff, too_many(), 2) == [2000, 2000]


def test_exhausted_rate_limit_waits_until_reset() -> None:
    now = 1_700_000_000.0
    backoff = ReconnectPolicy().new_backoff(clock=lambda: now)
    assert backoff.next_delay(too_many(remaining=0, reset=int(now) + 700)) == 700
    # A reset sooner than the doubled wait does not shorten it.
    assert backoff.next_delay(too_many(remaining=0, reset=int(now) + 5)) == 120
    # With requests remaining the reset time is irrelevant.
    assert backoff.next_delay(too_many(remaining=3, reset=int(now) + 900)) == 240


def test_reset_wait_is_bounded() -> None:
    now = 1_700_000_000.0
    backoff = ReconnectPolicy().new_backoff(clock=lambda: now)
    far = too_many(remaining=0, reset=int(now) + 10 * 86_400)
    assert backoff.next_delay(far) == RATE_LIMIT_RESET_WAIT_MAX


def test_any_http_error_with_an_exhausted_window_waits_for_reset() -> None:
    now = 1_000.0
    backoff = ReconnectPolicy().new_backoff(clock=lambda: now)
    error = TwitterServerError(
        503, headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1300"}
    )
    assert backoff.next_delay(error) == 300


def test_each_cause_has_its_own_counter_but_retries_count_all() -> None:
    backoff = ReconnectPolicy().new_backoff()
    assert backoff.next_delay(NETWORK) == 0
    assert backoff.next_delay(SERVER_503) == 5
    assert backoff.next_delay(NETWORK) == 0.25
    assert backoff.next_delay(too_many()) == 60
    assert backoff.next_delay(SERVER_503) == 10
    assert backoff.retries == 5


def test_clean_closes_share_the_linear_counter() -> None:
    backoff = ReconnectPolicy().new_backoff()
    assert delays(backoff, None, 3) == [0, 0.25, 0.5]
    assert backoff.next_delay(NETWORK) == 0.75


def test_reset_starts_every_counter_again() -> None:
    backoff = ReconnectPolicy(max_retries=3).new_backoff()
    delays(backoff, SERVER_503, 2)
    backoff.next_delay(NETWORK)
    backoff.reset()
    assert backoff.retries == 0
    assert backoff.next_delay(SERVER_503) == 5
    assert backoff.next_delay(NETWORK) == 0
    assert backoff.next_delay(too_many()) == 60


def test_fatal_and_foreign_causes_give_up_without_counting() -> None:
    backoff = ReconnectPolicy().new_backoff()
    for cause in (Unauthorized(401), BadRequest(400), ValueError("bug"), RuntimeError("bug")):
        assert backoff.next_delay(cause) is None
    assert backoff.retries == 0


def test_max_retries_counts_every_cause() -> None:
    backoff = ReconnectPolicy(max_retries=3).new_backoff()
    assert backoff.next_delay(NETWORK) is not None
    assert backoff.next_delay(SERVER_503) is not None
    assert backoff.next_delay(None) is not None
    assert backoff.next_delay(NETWORK) is None
    assert backoff.retries == 3


# --- the operator: timing -----------------------------------------------------------------


def test_http_errors_reconnect_after_5_10_20_seconds() -> None:
    scheduler = TestScheduler()
    conns = Connections(
        scheduler,
        fail(SERVER_503),
        fail(SERVER_503),
        fail(SERVER_503),
        [on_next(1, b'{"data":1}')],
    )

    results = run(scheduler, conns(), disposed=300)

    assert conns.times == [200, 205, 215, 235]
    assert results.messages == [on_next(236, b'{"data":1}')]


def test_http_error_subscriptions_on_one_cold_observable() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(0, SERVER_503))

    run(scheduler, xs, disposed=700)

    assert xs.subscriptions == [
        subscribe(200, 200),
        subscribe(205, 205),
        subscribe(215, 215),
        subscribe(235, 235),
        subscribe(275, 275),
        subscribe(355, 355),
        subscribe(515, 515),
    ]


def test_http_waits_cap_at_320_seconds() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(HTTPException(500)))
    run(scheduler, conns(), disposed=200 + 5 + 10 + 20 + 40 + 80 + 160 + 320 * 3 + 1)
    assert conns.waits == [5, 10, 20, 40, 80, 160, 320, 320, 320]


@pytest.mark.parametrize("error", [NETWORK, StallError(20)])
def test_network_errors_reconnect_at_once_then_linearly_up_to_16_s(error: Exception) -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(error))

    run(scheduler, conns(), disposed=200 + 520 + 16 * 3 + 0.5)

    assert conns.waits[:5] == [0, 0.25, 0.5, 0.75, 1.0]
    assert conns.waits[64:] == [16, 16, 16, 16]
    assert max(conns.waits) == 16


@pytest.mark.parametrize("status", [429, 420])
def test_rate_limited_waits_60_then_120(status: int) -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(too_many(status)))
    run(scheduler, conns(), disposed=200 + 60 + 120 + 240 + 1)
    assert conns.waits == [60, 120, 240]


def test_rate_limited_with_nothing_remaining_waits_until_reset() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(too_many(remaining=0, reset=900)), [on_next(1, b"ok")])
    results = run(scheduler, conns())
    assert conns.times == [200, 900]
    assert results.messages == [on_next(901, b"ok")]


def test_rate_limited_with_an_early_reset_still_waits_a_minute() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(too_many(remaining=0, reset=210)), [])
    run(scheduler, conns())
    assert conns.times == [200, 260]


@pytest.mark.parametrize(
    "error",
    [
        BadRequest(400),
        Unauthorized(401),
        Forbidden(403),
        NotFound(404),
        HTTPException(406),
        HTTPException(409),
        HTTPException(413),
        HTTPException(416),
        HTTPException(422),
    ],
)
def test_fatal_status_ends_the_stream_after_one_attempt(error: HTTPException) -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(3, error))
    events: list[StreamEvent] = []

    results = run(scheduler, xs, events=events)

    assert xs.subscriptions == [subscribe(200, 203)]
    assert results.messages == [on_error(203, error)]
    assert results.messages[0].value.exception is error
    assert events == [RequestFailed(error.status_code, error.body, error)]


def test_custom_fatal_statuses() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(Unauthorized(401)), fail(SERVER_503))
    policy = ReconnectPolicy(fatal_statuses=frozenset({503}))

    results = run(scheduler, conns(), policy)

    assert conns.times == [200, 205]
    assert results.messages == [on_error(205, SERVER_503)]


def test_clean_close_after_data_reconnects_at_once() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, b"a"), on_completed(20))

    results = run(scheduler, xs, disposed=265)

    assert xs.subscriptions == [
        subscribe(200, 220),
        subscribe(220, 240),
        subscribe(240, 260),
        subscribe(260, 265),
    ]
    assert results.messages == [on_next(t, b"a") for t in (210, 230, 250)]


def test_clean_close_after_a_keep_alive_counts_as_data() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, [on_next(10, b""), on_completed(20)])
    run(scheduler, conns(), disposed=310)
    assert conns.waits == [20] * 5


def test_clean_close_without_data_backs_off_linearly() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, [on_completed(0)])

    run(scheduler, conns(), disposed=200 + 520 + 16 * 2 + 0.5)

    assert conns.waits[:5] == [0, 0.25, 0.5, 0.75, 1.0]
    assert conns.waits[-2:] == [16, 16]
    assert len(conns.times) == 68  # not thousands


def test_counters_reset_when_a_connection_delivers_its_first_line() -> None:
    scheduler = TestScheduler()
    conns = Connections(
        scheduler,
        fail(SERVER_503),
        fail(SERVER_503),
        [on_next(1, b"x"), on_error(3, SERVER_503)],
        fail(SERVER_503),
        fail(SERVER_503),
        [],
    )

    run(scheduler, conns())

    assert conns.waits == [5, 10, 3 + 5, 10, 20]


def test_a_200_without_any_line_does_not_reset() -> None:
    scheduler = TestScheduler()
    # Connects, then the network fails before anything arrives: keeps backing off.
    conns = Connections(scheduler, fail(NETWORK, at=1))
    run(scheduler, conns(), disposed=200 + 1 + 0 + 1.25 + 1.5 + 1.75 + 0.1)
    assert conns.waits == [1, 1.25, 1.5, 1.75]


# --- the operator: giving up ---------------------------------------------------------------


def test_max_retries_2_makes_3_attempts_then_gives_up() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(NETWORK), fail(SERVER_503), fail(SERVER_503))

    results = run(scheduler, conns(), ReconnectPolicy(max_retries=2))

    assert conns.times == [200, 200, 205]
    [message] = results.messages
    assert message.time == 205
    error = message.value.exception
    assert isinstance(error, RetriesExhausted)
    assert error.retries == 2
    assert error.cause is SERVER_503
    assert error.__cause__ is SERVER_503
    assert "2 retries" in str(error)
    assert "TwitterServerError" in str(error)


def test_max_retries_0_never_retries() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(NETWORK))
    results = run(scheduler, conns(), ReconnectPolicy(max_retries=0))
    assert conns.times == [200]
    assert isinstance(results.messages[0].value.exception, RetriesExhausted)


def test_max_retries_counts_consecutive_failures_only() -> None:
    scheduler = TestScheduler()
    conns = Connections(
        scheduler,
        fail(NETWORK),
        [on_next(1, b"x"), on_error(2, NETWORK)],
        fail(NETWORK),
        fail(NETWORK),
    )
    results = run(scheduler, conns(), ReconnectPolicy(max_retries=2))
    assert len(conns.times) == 4
    assert isinstance(results.messages[-1].value.exception, RetriesExhausted)


def test_exhausted_by_clean_closes() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, [on_completed(0)])
    results = run(scheduler, conns(), ReconnectPolicy(max_retries=2))
    error = results.messages[-1].value.exception
    assert isinstance(error, RetriesExhausted)
    assert error.cause is None
    assert "closed the stream" in str(error)
    assert len(conns.times) == 3


@pytest.mark.parametrize(
    "error", [ValueError("bad value"), RuntimeError("user bug"), KeyError("k")]
)
def test_other_exceptions_end_the_stream_without_a_retry(error: Exception) -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(1, b"x"), on_error(2, error))
    events: list[StreamEvent] = []

    results = run(scheduler, xs, events=events)

    assert xs.subscriptions == [subscribe(200, 202)]
    assert results.messages == [on_next(201, b"x"), on_error(202, error)]
    assert events == []


def test_an_exception_raised_by_the_observer_is_not_retried() -> None:
    # A synchronous source: reactivex routes the observer's exception back as on_error.
    count = 0

    def factory(_: Any) -> Observable[bytes]:
        nonlocal count
        count += 1
        return reactivex.from_iterable([b"a", b"b"])

    bug = RuntimeError("bug in on_next")
    errors: list[Exception] = []

    def on_next_(line: bytes) -> None:
        raise bug

    reactivex.defer(factory).pipe(reconnecting(ReconnectPolicy())).subscribe(
        on_next_, errors.append
    )

    assert count == 1
    assert errors == [bug]


def test_an_exception_raised_by_the_observer_on_a_reader_thread_is_not_retried() -> None:
    # Like the transport: a reader thread catches what on_next raised and reports it.
    count = 0
    done = threading.Event()
    errors: list[Exception] = []
    bug = RuntimeError("bug in on_next")

    def factory(_: Any) -> Observable[bytes]:
        nonlocal count
        count += 1

        def subscribe_(
            observer: abc.ObserverBase[bytes], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def read() -> None:
                try:
                    observer.on_next(b"line")
                    observer.on_completed()
                except Exception as exc:
                    observer.on_error(exc)

            threading.Thread(target=read, daemon=True).start()
            return Disposable()

        return Observable(subscribe_)

    def on_next_(line: bytes) -> None:
        raise bug

    def on_error_(exc: Exception) -> None:
        errors.append(exc)
        done.set()

    reactivex.defer(factory).pipe(reconnecting(ReconnectPolicy())).subscribe(on_next_, on_error_)

    assert done.wait(2.0)
    assert errors == [bug]
    assert count == 1


def test_on_event_raising_ends_the_stream_with_its_exception() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(NETWORK))
    bug = RuntimeError("bug in a hook")

    def on_event(event: StreamEvent) -> None:
        if isinstance(event, Reconnecting) and event.attempt == 2:
            raise bug

    results = scheduler.start(
        lambda: conns().pipe(reconnecting(ReconnectPolicy(), on_event=on_event))
    )

    assert conns.times == [200, 200]
    assert results.messages == [on_error(200, bug)]


# --- the operator: disposal, scheduler, events, logging ------------------------------------


class RecordingScheduler(TestScheduler):
    """Records, for each scheduled action, when it was due and when it was cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled: dict[float, float] = {}

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> Any:
        item = super().schedule_absolute(duetime, action, state)
        due = self.to_seconds(duetime) if not isinstance(duetime, float) else duetime

        def cancel() -> None:
            self.cancelled.setdefault(due, self.clock)
            item.dispose()

        return Disposable(cancel)


def test_disposal_during_a_wait_cancels_it() -> None:
    scheduler = RecordingScheduler()
    conns = Connections(scheduler, fail(SERVER_503))

    results = run(scheduler, conns(), disposed=203)

    assert conns.times == [200]  # nothing at 205
    assert results.messages == []
    assert scheduler.cancelled[205.0] == 203  # the wait was cancelled at once


def test_disposal_while_connected_disposes_the_connection() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(1, b"a"), on_next(50, b"b"))
    run(scheduler, xs, disposed=230)
    assert xs.subscriptions == [subscribe(200, 230)]


def test_waits_run_on_the_given_scheduler() -> None:
    waits = TestScheduler()
    count = 0

    def factory(_: Any) -> Observable[bytes]:
        nonlocal count
        count += 1
        return reactivex.throw(NETWORK)

    subscription = (
        reactivex.defer(factory)
        .pipe(reconnecting(ReconnectPolicy(), scheduler=waits))
        .subscribe(on_error=lambda e: None)
    )
    assert count == 2  # the first reconnect is immediate; the next waits 0.25 s
    waits.advance_by(0.24)
    assert count == 2
    waits.advance_by(0.01)
    assert count == 3
    subscription.dispose()
    waits.advance_by(100)
    assert count == 3


def test_default_scheduler_waits_in_real_time() -> None:
    done = threading.Event()
    errors: list[Exception] = []
    count = 0

    def factory(_: Any) -> Observable[bytes]:
        nonlocal count
        count += 1
        return reactivex.throw(NETWORK)

    def on_error_(exc: Exception) -> None:
        errors.append(exc)
        done.set()

    policy = ReconnectPolicy(network_wait_step=0.005, max_retries=3)
    reactivex.defer(factory).pipe(reconnecting(policy)).subscribe(on_error=on_error_)

    assert done.wait(2.0)
    assert count == 4
    assert isinstance(errors[0], RetriesExhausted)


def test_events_are_emitted_in_order() -> None:
    scheduler = TestScheduler()
    rate_limited = too_many()
    conns = Connections(
        scheduler,
        fail(NETWORK),
        fail(NETWORK),
        [on_next(1, b"x"), on_completed(2)],
        fail(rate_limited),
        fail(Unauthorized(401)),
    )
    events: list[StreamEvent] = []

    results = run(scheduler, conns(), events=events)

    unauthorized = results.messages[-1].value.exception
    assert events == [
        ConnectionFailed(NETWORK),
        Reconnecting(1, 0.0, NETWORK),
        ConnectionFailed(NETWORK),
        Reconnecting(2, 0.25, NETWORK),
        Closed(),
        Reconnecting(1, 0.0, None),
        RequestFailed(429, rate_limited.body, rate_limited),
        Reconnecting(2, 60.0, rate_limited),
        RequestFailed(401, unauthorized.body, unauthorized),
    ]
    assert conns.times == [200, 200, 200.25, 202.25, 262.25]


def test_reconnects_are_logged_with_cause_and_delay(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(SERVER_503), [on_next(1, b"x"), on_completed(2)], [])
    with caplog.at_level(logging.INFO, logger="rxtweet.reconnect"):
        run(scheduler, conns(), disposed=300)

    records = [r for r in caplog.records if r.name == "rxtweet.reconnect"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]
    assert "5.00 s" in records[0].getMessage()
    assert "TwitterServerError" in records[0].getMessage()
    assert "503" in records[0].getMessage()
    assert "closed" in records[1].getMessage()


def test_each_subscription_has_its_own_state() -> None:
    scheduler = TestScheduler()
    conns = Connections(scheduler, fail(SERVER_503))
    lines = conns().pipe(reconnecting(ReconnectPolicy(max_retries=1)))
    first: list[Any] = []
    second: list[Any] = []

    lines.subscribe(on_error=first.append, scheduler=scheduler)
    scheduler.advance_by(10)
    lines.subscribe(on_error=second.append, scheduler=scheduler)
    scheduler.advance_by(10)

    assert conns.times == [0, 5, 10, 15]
    assert len(first) == len(second) == 1


def test_synchronous_reconnects_run_at_constant_depth() -> None:
    # A server that sends a line and closes, answered synchronously: reconnect at once, always.
    count = 0
    depths: dict[int, int] = {}

    def factory(_: Any) -> Observable[bytes]:
        nonlocal count
        count += 1
        if count in (2, 3000):
            depths[count] = len(inspect.stack(0))
        return reactivex.of(b"line")

    got: list[Any] = []
    reactivex.defer(factory).pipe(reconnecting(ReconnectPolicy()), ops.take(3000)).subscribe(
        got.append, got.append, lambda: got.append("completed")
    )

    assert count == 3000
    assert got == [b"line"] * 3000 + ["completed"]
    assert depths[2] == depths[3000]


def test_reader_threads_and_timer_threads() -> None:
    """Connections on their own threads, waits on TimeoutScheduler: order is kept."""
    count = 0
    lock = threading.Lock()
    active = 0
    overlap = False
    got: list[bytes] = []
    done = threading.Event()

    def factory(_: Any) -> Observable[bytes]:
        nonlocal count
        count += 1
        n = count

        def subscribe_(
            observer: abc.ObserverBase[bytes], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def read() -> None:
                for i in range(3):
                    observer.on_next(b"%d.%d" % (n, i))
                observer.on_error(StreamConnectionError("reset"))

            threading.Thread(target=read, daemon=True).start()
            return Disposable()

        return Observable(subscribe_)

    def record(line: bytes) -> None:
        nonlocal active, overlap
        with lock:
            active += 1
            overlap = overlap or active > 1
        got.append(line)
        with lock:
            active -= 1

    policy = ReconnectPolicy(network_wait_step=0.001)
    reactivex.defer(factory).pipe(reconnecting(policy), ops.take(30)).subscribe(
        record, lambda e: done.set(), done.set
    )

    assert done.wait(2.0)
    assert not overlap
    assert got == [b"%d.%d" % (n, i) for n in range(1, 11) for i in range(3)]
