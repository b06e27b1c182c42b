"""``rxtweet.operators.retry_when``: RxJS semantics, disposal, stack depth, thread safety."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.testing import ReactiveTest, TestScheduler

from rxtweet.operators import retry_when

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


class Boom(Exception):
    pass


def test_source_completing_completes_without_calling_the_handler() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, 1), on_next(15, 2), on_completed(20))
    calls: list[Any] = []

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        calls.append(errors)
        return errors

    results = scheduler.start(lambda: xs.pipe(retry_when(handler)))

    assert results.messages == [on_next(210, 1), on_next(215, 2), on_completed(220)]
    assert xs.subscriptions == [subscribe(200, 220)]
    assert calls == []


def test_each_notifier_item_resubscribes() -> None:
    scheduler = TestScheduler()
    ex = Boom("x")
    xs = scheduler.create_cold_observable(on_next(5, "a"), on_error(20, ex))

    results = scheduler.start(
        lambda: xs.pipe(retry_when(lambda errors: errors.pipe(ops.delay(10.0)))), disposed=300
    )

    assert results.messages == [
        on_next(205, "a"),
        on_next(235, "a"),
        on_next(265, "a"),
        on_next(295, "a"),
    ]
    assert xs.subscriptions == [
        subscribe(200, 220),
        subscribe(230, 250),
        subscribe(260, 280),
        subscribe(290, 300),
    ]


def test_handler_sees_the_source_errors() -> None:
    scheduler = TestScheduler()
    ex = Boom("x")
    xs = scheduler.create_cold_observable(on_error(20, ex))
    seen: list[Exception] = []

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        return errors.pipe(ops.do_action(seen.append), ops.delay(5.0))

    scheduler.start(lambda: xs.pipe(retry_when(handler)), disposed=275)

    assert seen == [ex, ex, ex]  # at 220, 245 and 270


def test_handler_is_called_once_per_subscription_at_the_first_error() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, 1), on_error(20, Boom()))
    calls: list[float] = []

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        calls.append(scheduler.clock)
        return errors.pipe(ops.delay(10.0))

    scheduler.start(lambda: xs.pipe(retry_when(handler)), disposed=300)

    assert calls == [220.0]  # lazily (RxJS 7), and only once


def test_notifier_completing_completes_the_result() -> None:
    scheduler = TestScheduler()
    first, second = Boom("first"), Boom("second")
    attempts = iter(
        [
            scheduler.create_cold_observable(on_next(5, 1), on_error(20, first)),
            scheduler.create_cold_observable(on_next(5, 2), on_error(20, second)),
        ]
    )
    source = reactivex.defer(lambda _: next(attempts))

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        return errors.pipe(
            ops.take_while(lambda e: e is first),
            ops.flat_map(lambda _: reactivex.timer(10.0)),
        )

    results = scheduler.start(lambda: source.pipe(retry_when(handler)))

    assert results.messages == [on_next(205, 1), on_next(235, 2), on_completed(250)]


def test_notifier_completing_right_after_an_item_still_resubscribes_first() -> None:
    # take(2) emits its second item (a resubscription) and completes in the same call. As in
    # RxJS, the resubscription happens before the completion, which then ends it at once
    # (the cold source here emits nothing synchronously). Before the fix, the completion
    # came first and the third subscription never happened.
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(20, Boom()))

    results = scheduler.start(lambda: xs.pipe(retry_when(lambda errors: errors.pipe(ops.take(2)))))

    assert results.messages == [on_completed(240)]
    assert xs.subscriptions == [subscribe(200, 220), subscribe(220, 240), subscribe(240, 240)]


def _emits_then_fails(make: Callable[[int], Observable[int]]) -> tuple[Observable[int], list[int]]:
    """A source whose n-th subscription emits n, then fails; and the list of those n."""
    subscriptions: list[int] = []

    def factory(_: Any) -> Observable[int]:
        subscriptions.append(len(subscriptions) + 1)
        return make(subscriptions[-1])

    return reactivex.defer(factory), subscriptions


def _synchronous(n: int) -> Observable[int]:
    def subscribe_(observer: abc.ObserverBase[int], _: abc.SchedulerBase | None = None) -> Any:
        observer.on_next(n)
        observer.on_error(Boom(n))
        return Disposable()

    return Observable(subscribe_)


def _trampolined(n: int) -> Observable[int]:
    # reactivex runs `of` and `concat` on the trampoline: the value is not delivered inside
    # subscribe when a trampoline is already running on the thread.
    return reactivex.concat(reactivex.of(n), reactivex.throw(Boom(n)))


@pytest.mark.parametrize("make", [_synchronous, _trampolined], ids=["synchronous", "trampolined"])
@pytest.mark.parametrize("retries", [1, 2, 3])
def test_take_n_retries_n_times_as_in_rxjs(
    make: Callable[[int], Observable[int]], retries: int
) -> None:
    # Issue 10 item 18: take(2) gave [1, 2] then completion; RxJS and RxJava give [1, 2, 3].
    source, subscriptions = _emits_then_fails(make)
    got: list[Any] = []

    source.pipe(retry_when(lambda errors: errors.pipe(ops.take(retries)))).subscribe(
        got.append, got.append, lambda: got.append("completed")
    )

    assert got == [*range(1, retries + 2), "completed"]
    assert subscriptions == list(range(1, retries + 2))


def test_docstring_example_take_3_retries_three_times() -> None:
    source, subscriptions = _emits_then_fails(_trampolined)
    got: list[Any] = []

    source.pipe(retry_when(lambda errors: errors.pipe(ops.take(3))), ops.to_list()).subscribe(
        got.append, got.append
    )

    assert got == [[1, 2, 3, 4]]
    assert len(subscriptions) == 4


def test_notifier_erroring_right_after_an_item_still_resubscribes_first() -> None:
    source, subscriptions = _emits_then_fails(_trampolined)
    fatal = Boom("notifier")
    got: list[Any] = []

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        return errors.pipe(ops.take(2), ops.concat(reactivex.throw(fatal)))

    source.pipe(retry_when(handler)).subscribe(
        got.append, got.append, lambda: got.append("completed")
    )

    assert got == [1, 2, 3, fatal]
    assert subscriptions == [1, 2, 3]


def test_notifier_completing_later_on_a_timer_thread_completes_at_once() -> None:
    # Not in a synchronous chain: the completion is not held back (no live attempt waits).
    done = threading.Event()
    got: list[Any] = []
    source, subscriptions = _emits_then_fails(_synchronous)

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        return errors.pipe(ops.delay(0.01, scheduler=TimeoutScheduler.singleton()), ops.take(2))

    source.pipe(retry_when(handler)).subscribe(
        got.append, got.append, lambda: (got.append("completed"), done.set())
    )

    assert done.wait(2.0)
    assert got == [1, 2, 3, "completed"]
    assert subscriptions == [1, 2, 3]


def test_notifier_completing_while_waiting_cancels_the_wait() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(20, Boom()))
    notifier = scheduler.create_cold_observable(on_next(100, "go"))
    stop = scheduler.create_cold_observable(on_completed(10))

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        return notifier.pipe(
            ops.take_until(stop.pipe(ops.ignore_elements(), ops.concat(reactivex.of(0))))
        )

    results = scheduler.start(lambda: xs.pipe(retry_when(handler)))

    assert results.messages == [on_completed(230)]
    assert xs.subscriptions == [subscribe(200, 220)]
    assert notifier.subscriptions == [subscribe(220, 230)]


def test_notifier_erroring_errors_the_result() -> None:
    scheduler = TestScheduler()
    first, second = Boom("first"), Boom("second")
    attempts = iter(
        [
            scheduler.create_cold_observable(on_error(20, first)),
            scheduler.create_cold_observable(on_next(5, "b"), on_error(20, second)),
        ]
    )
    source = reactivex.defer(lambda _: next(attempts))

    def retry_or_fail(error: Exception) -> Observable[Any]:
        return reactivex.timer(10.0) if error is first else reactivex.throw(error)

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        return errors.pipe(ops.flat_map(retry_or_fail))

    results = scheduler.start(lambda: source.pipe(retry_when(handler)))

    assert results.messages == [on_next(235, "b"), on_error(250, second)]


def test_notifier_error_of_its_own() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(20, Boom()))
    nope = RuntimeError("nope")

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        return errors.pipe(ops.flat_map(lambda _: reactivex.throw(nope)))

    results = scheduler.start(lambda: xs.pipe(retry_when(handler)))

    assert results.messages == [on_error(220, nope)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_handler_raising_errors_the_result() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, 1), on_error(20, Boom()))
    broken = RuntimeError("handler bug")

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        raise broken

    results = scheduler.start(lambda: xs.pipe(retry_when(handler)))

    assert results.messages == [on_next(210, 1), on_error(220, broken)]
    assert xs.subscriptions == [subscribe(200, 220)]


def test_disposal_during_a_wait_cancels_the_notifier_at_once() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(20, Boom()))
    notifier = scheduler.create_cold_observable(on_next(100, "go"))

    results = scheduler.start(lambda: xs.pipe(retry_when(lambda _: notifier)), disposed=250)

    assert results.messages == []
    assert xs.subscriptions == [subscribe(200, 220)]  # nothing at 320
    assert notifier.subscriptions == [subscribe(220, 250)]


def test_disposal_while_subscribed_disposes_the_source() -> None:
    scheduler = TestScheduler()
    attempts = iter(
        [
            scheduler.create_cold_observable(on_error(20, Boom())),
            scheduler.create_cold_observable(on_next(10, "x")),  # never ends
        ]
    )
    second: list[Any] = []

    def factory(_: Any) -> Observable[str]:
        xs = next(attempts)
        second.append(xs)
        return xs

    results = scheduler.start(
        lambda: reactivex.defer(factory).pipe(
            retry_when(lambda errors: errors.pipe(ops.delay(10.0)))
        ),
        disposed=500,
    )

    assert results.messages == [on_next(240, "x")]
    assert second[1].subscriptions == [subscribe(230, 500)]


class _RawSource:
    """A source that hands out its raw callbacks: nothing filters late calls."""

    def __init__(self) -> None:
        self.callbacks: list[tuple[Callable[..., None], ...]] = []
        self.disposed: list[int] = []

    def subscribe(
        self,
        on_next: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_completed: Callable[[], None],
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        index = len(self.callbacks)
        self.callbacks.append((on_next, on_error, on_completed))
        return Disposable(lambda: self.disposed.append(index))


def test_callbacks_of_a_previous_attempt_are_dropped() -> None:
    raw = _RawSource()
    got: list[Any] = []
    source = cast(Observable[Any], raw)
    source.pipe = Observable.pipe.__get__(source)  # type: ignore[method-assign]

    retry_when(lambda errors: errors)(source).subscribe(
        got.append, lambda e: got.append(("error", e)), lambda: got.append("completed")
    )
    old_next, old_error, old_completed = raw.callbacks[0]
    old_error(Boom("first"))
    assert len(raw.callbacks) == 2
    assert raw.disposed == [0]

    old_next("stale")
    old_error(Boom("stale"))
    old_completed()
    raw.callbacks[1][0]("fresh")

    assert got == ["fresh"]
    assert len(raw.callbacks) == 2


def test_nothing_is_resubscribed_after_dispose() -> None:
    count = 0

    def factory(_: Any) -> Observable[int]:
        nonlocal count
        count += 1
        return reactivex.concat(reactivex.of(count), reactivex.throw(Boom()))

    got: list[Any] = []
    reactivex.defer(factory).pipe(retry_when(lambda errors: errors), ops.take(3)).subscribe(
        got.append, lambda e: got.append(e), lambda: got.append("completed")
    )

    assert got == [1, 2, 3, "completed"]
    assert count == 3


def test_twenty_thousand_synchronous_failures_run_at_constant_depth() -> None:
    count = 0
    depths: dict[int, int] = {}

    def factory(_: Any) -> Observable[Any]:
        nonlocal count
        count += 1
        if count in (2, 20_000):
            depths[count] = len(inspect.stack(0))
        return reactivex.throw(Boom(count))

    got: list[Any] = []
    reactivex.defer(factory).pipe(
        retry_when(lambda errors: errors.pipe(ops.take(20_000)))
    ).subscribe(got.append, lambda e: got.append(e), lambda: got.append("completed"))

    assert got == ["completed"]
    assert count == 20_001  # take(20_000): 20,000 retries
    assert depths[2] == depths[20_000]


def test_errors_and_timers_on_different_threads() -> None:
    """Readers fail on their own threads while the notifier's timer fires on another."""
    attempts = 40
    lines = 25
    lock = threading.Lock()
    active = 0
    overlap = False
    got: list[tuple[int, int]] = []
    done = threading.Event()
    attempt = 0

    def factory(_: Any) -> Observable[tuple[int, int]]:
        nonlocal attempt
        attempt += 1
        n = attempt

        def subscribe_(
            observer: abc.ObserverBase[tuple[int, int]], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def read() -> None:
                for i in range(lines):
                    observer.on_next((n, i))
                observer.on_error(Boom(n))

            threading.Thread(target=read, daemon=True).start()
            return Disposable()

        return Observable(subscribe_)

    def record(item: tuple[int, int]) -> None:
        nonlocal active, overlap
        with lock:
            active += 1
            overlap = overlap or active > 1
        got.append(item)
        with lock:
            active -= 1

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        return errors.pipe(
            ops.take(attempts - 1), ops.delay(0.001, scheduler=TimeoutScheduler.singleton())
        )

    reactivex.defer(factory).pipe(retry_when(handler)).subscribe(
        record, lambda e: done.set(), lambda: done.set()
    )
    assert done.wait(5.0)
    time.sleep(0.02)  # anything late would show up now

    assert not overlap
    assert got == [(n, i) for n in range(1, attempts + 1) for i in range(lines)][: len(got)]
    assert len(got) >= (attempts - 1) * lines


def test_dispose_from_another_thread_stops_the_retries() -> None:
    count = 0
    stop = threading.Event()

    def factory(_: Any) -> Observable[Any]:
        nonlocal count
        count += 1
        return reactivex.throw(Boom())

    subscription = (
        reactivex.defer(factory)
        .pipe(
            retry_when(
                lambda errors: errors.pipe(ops.delay(0.002, scheduler=TimeoutScheduler.singleton()))
            )
        )
        .subscribe(on_error=lambda e: stop.set(), on_completed=stop.set)
    )
    time.sleep(0.03)
    subscription.dispose()
    after = count
    time.sleep(0.03)

    assert after >= 2
    assert count == after
    assert not stop.is_set()


@pytest.mark.parametrize("fail_with", [Boom("sync"), ValueError("plain")])
def test_retry_when_retries_every_error_kind(fail_with: Exception) -> None:
    # retry_when itself does not classify: that is the policy's job (handler).
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_error(10, fail_with))

    scheduler.start(
        lambda: xs.pipe(retry_when(lambda errors: errors.pipe(ops.delay(5.0)))), disposed=240
    )

    assert [s.subscribe for s in xs.subscriptions] == [200, 215, 230]


@pytest.mark.parametrize("errors_before", [1, 2])
def test_a_notifier_that_emits_under_its_own_lock_does_not_deadlock_the_gate(
    errors_before: int,
) -> None:
    # Found under load (reactivex's delay, take): the source's thread delivered an error to
    # the notifier while holding the gate, and the notifier's lock was held by its timer
    # thread, which was calling back into the gate. The error now goes out after the gate.
    # errors_before=1: the first error (deliver); 2: a later one (handle_error).
    lock = threading.Lock()
    notifier_waits = threading.Event()
    observers: list[abc.ObserverBase[Any]] = []
    timed_out: list[str] = []
    attempts = [0]

    def source_subscribe(observer: abc.ObserverBase[int], scheduler: Any = None) -> Disposable:
        attempts[0] += 1
        if attempts[0] <= errors_before:
            observer.on_error(RuntimeError(f"cut {attempts[0]}"))
        else:
            observer.on_next(attempts[0])
            observer.on_completed()
        return Disposable()

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        def subscribe(observer: abc.ObserverBase[Any], scheduler: Any = None) -> Any:
            observers.append(observer)

            def on_error_item(error: Exception) -> None:
                if str(error) == "cut 1" and errors_before == 2:
                    observer.on_next(None)  # retry at once, synchronously
                    return
                notifier_waits.set()
                # Like reactivex's delay: needs the lock its timer thread holds.
                if not lock.acquire(timeout=3):
                    timed_out.append("source thread")
                    return
                lock.release()

            return errors.subscribe(on_error_item)

        return Observable(subscribe)

    def timer_thread() -> None:
        with lock:
            assert notifier_waits.wait(3)
            observers[0].on_next(None)  # the retry, under the notifier's own lock

    timer = threading.Thread(target=timer_thread, daemon=True)
    timer.start()
    got: list[int] = []
    done = threading.Event()
    source: Observable[int] = Observable(source_subscribe)
    runner = threading.Thread(
        target=lambda: source.pipe(retry_when(handler)).subscribe(
            got.append, lambda e: done.set(), done.set
        ),
        daemon=True,
    )
    runner.start()
    assert done.wait(5), "deadlocked"
    timer.join(3)
    runner.join(3)
    assert not timed_out
    assert got == [errors_before + 1]
