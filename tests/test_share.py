"""share_connection: one upstream subscription, ref-counted, fresh after the end."""

from __future__ import annotations

import pytest
import reactivex
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxtweet.operators.share import share_connection

on_next, on_completed, on_error = (
    ReactiveTest.on_next,
    ReactiveTest.on_completed,
    ReactiveTest.on_error,
)
subscribe = ReactiveTest.subscribe


def test_many_subscribers_one_upstream_subscription() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, 1), on_next(20, 2), on_completed(30))
    shared = share_connection(xs)
    a = scheduler.create_observer()
    b = scheduler.create_observer()
    scheduler.schedule_absolute(100, lambda *_: shared.observable.subscribe(a))
    scheduler.schedule_absolute(115, lambda *_: shared.observable.subscribe(b))
    scheduler.start()
    assert xs.subscriptions == [subscribe(100, 130)]
    assert a.messages == [on_next(110, 1), on_next(120, 2), on_completed(130)]
    assert b.messages == [on_next(120, 2), on_completed(130)]


def test_last_dispose_closes_upstream_and_next_subscriber_reconnects() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(50, "b"))
    shared = share_connection(xs)
    subs = {}
    scheduler.schedule_absolute(100, lambda *_: subs.setdefault(1, shared.observable.subscribe()))
    scheduler.schedule_absolute(105, lambda *_: subs.setdefault(2, shared.observable.subscribe()))
    scheduler.schedule_absolute(120, lambda *_: subs[1].dispose())
    scheduler.schedule_absolute(130, lambda *_: subs[2].dispose())
    late = scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: shared.observable.subscribe(late))
    scheduler.start()
    assert xs.subscriptions == [subscribe(100, 130), Subscription(200)]
    assert late.messages == [on_next(210, "a"), on_next(250, "b")]


def test_after_completion_a_new_subscriber_gets_a_fresh_connection() -> None:
    # RxPY's share() would replay only the completion here.
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, 1), on_completed(20))
    shared = share_connection(xs)
    first = scheduler.create_observer()
    second = scheduler.create_observer()
    scheduler.schedule_absolute(100, lambda *_: shared.observable.subscribe(first))
    scheduler.schedule_absolute(300, lambda *_: shared.observable.subscribe(second))
    scheduler.start()
    assert xs.subscriptions == [subscribe(100, 120), subscribe(300, 320)]
    assert second.messages == [on_next(310, 1), on_completed(320)]


def test_after_an_error_a_new_subscriber_gets_a_fresh_connection() -> None:
    scheduler = TestScheduler()
    boom = ValueError("boom")
    xs = scheduler.create_cold_observable(on_next(10, 1), on_error(20, boom))
    shared = share_connection(xs)
    first = scheduler.create_observer()
    second = scheduler.create_observer()
    scheduler.schedule_absolute(100, lambda *_: shared.observable.subscribe(first))
    scheduler.schedule_absolute(300, lambda *_: shared.observable.subscribe(second))
    scheduler.start()
    assert first.messages == [on_next(110, 1), on_error(120, boom)]
    assert second.messages == [on_next(310, 1), on_error(320, boom)]
    assert shared.subscribers == 0 and not shared.connected


def test_hold_attaches_everyone_before_connecting() -> None:
    source = reactivex.of(1, 2, 3)  # synchronous: a late subscriber would miss everything
    shared = share_connection(source)
    a: list[int] = []
    b: list[int] = []
    with shared.hold():
        shared.observable.subscribe(a.append)
        shared.observable.subscribe(b.append)
        assert not shared.connected
    assert a == b == [1, 2, 3]

    # Without hold, the second subscriber attaches after the synchronous source finished,
    # and so starts a connection of its own.
    subscriptions = 0

    def counting(observer, scheduler=None):  # type: ignore[no-untyped-def]
        nonlocal subscriptions
        subscriptions += 1
        return source.subscribe(observer)

    unheld = share_connection(reactivex.create(counting))
    unheld.observable.subscribe()
    unheld.observable.subscribe()
    assert subscriptions == 2


def test_a_subscriber_resubscribing_from_its_completion_handler_gets_a_fresh_run() -> None:
    shared = share_connection(reactivex.of(1, 2))
    got: list[int] = []
    shared.observable.subscribe(
        got.append, on_completed=lambda: shared.observable.subscribe(got.append)
    )
    assert got == [1, 2, 1, 2]


def test_a_subscriber_without_an_error_handler_does_not_hide_the_error_from_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    boom = ValueError("boom")
    shared = share_connection(reactivex.throw(boom))
    seen: list[Exception] = []
    with shared.hold():
        shared.observable.subscribe()  # no on_error: reactivex would re-raise
        shared.observable.subscribe(on_error=seen.append)
    assert seen == [boom]
    assert "no error handler" in caplog.text
