"""The transport seam: a whole client driven by ``rxtweet.testing.MockTransport`` in virtual time.

No socket and no thread: the "network" is a cold observable of a ``TestScheduler``, so
tweets arrive at virtual times and the reconnect waits take virtual seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from rxtweet import ReconnectPolicy, StreamingClient, TooManyRequests, TwitterServerError
from rxtweet.errors import StreamConnectionError
from rxtweet.events import Connected
from rxtweet.http import StreamRequest
from rxtweet.testing import MockTransport
from rxtweet.transport_base import ResponseHead, TransportOptions

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


def tweet(n: int) -> bytes:
    return b'{"data":{"id":"%d","text":"tweet %d","edit_history_tweet_ids":["%d"]}}' % (n, n, n)


def test_a_client_runs_in_virtual_time_and_waits_virtual_seconds_to_reconnect() -> None:
    scheduler = TestScheduler()
    answers: list[Any] = [
        # 1st connection: two tweets and a keep-alive, then the network fails at 40 s.
        scheduler.create_cold_observable(
            on_next(10.0, tweet(1)),
            on_next(20.0, b""),
            on_next(30.0, tweet(2)),
            on_error(40.0, StreamConnectionError("connection reset")),
        ),
        # 2nd: X is overloaded; the policy waits http_wait_start (5 virtual seconds).
        TwitterServerError(503, reason="Service Unavailable"),
        # 3rd: one more tweet 5 s after connecting, then the connection stays open.
        scheduler.create_cold_observable(on_next(5.0, tweet(3))),
    ]
    attempts: list[float] = []

    def handler(request: StreamRequest) -> Any:
        assert request.url.endswith("/2/tweets/sample/stream")
        attempts.append(scheduler.clock)
        return answers[len(attempts) - 1]

    transport = MockTransport(handler, headers={"x-rate-limit-remaining": "49"})
    client = StreamingClient(
        "t0ken",
        transport=transport,
        scheduler=scheduler,
        reconnect=ReconnectPolicy(network_wait_step=2.0, http_wait_start=5.0),
    )
    stream = client.sample_stream()
    tweets: list[tuple[float, int]] = []
    connected: list[Connected] = []
    stream.events.subscribe(lambda e: connected.append(e) if isinstance(e, Connected) else None)
    subscription = stream.tweets.subscribe(lambda t: tweets.append((scheduler.clock, t.id)))

    scheduler.advance_to(100.0)
    subscription.dispose()

    assert tweets == [(10.0, 1), (30.0, 2), (50.0, 3)]
    # A network error reconnects at once; the 503 waits 5 virtual seconds.
    assert attempts == [0.0, 40.0, 45.0]
    assert len(transport.requests) == 3
    assert [c.status_code for c in connected] == [200, 200]  # no head for the 503
    assert connected[0].headers == {"x-rate-limit-remaining": "49"}


def test_the_head_comes_before_the_lines_and_long_lines_are_dropped() -> None:
    scheduler = TestScheduler()
    lines = scheduler.create_cold_observable(
        on_next(1.0, b"short"), on_next(2.0, b"x" * 11), on_next(3.0, b"ok"), on_completed(4.0)
    )
    transport = MockTransport(lambda request: lines, status_code=200, headers={"A-Header": "v"})
    seen: list[Any] = []

    def on_response(head: ResponseHead) -> None:
        seen.append(("head", head.status_code, head.headers["a-header"]))

    source = transport.lines(
        StreamRequest("GET", "http://example.invalid/2/tweets/sample/stream"),
        TransportOptions(max_line=10),
        on_response=on_response,
        on_line_dropped=lambda size: seen.append(("dropped", size)),
    )
    source.subscribe(seen.append, seen.append, lambda: seen.append("completed"))
    scheduler.start()

    assert seen == [("head", 200, "v"), b"short", ("dropped", 11), b"ok", "completed"]


def test_an_http_exception_answer_fails_the_attempt_without_a_head() -> None:
    refusal = TooManyRequests(429, body=b'{"title":"TooManyConnections"}')
    transport = MockTransport(lambda request: refusal)
    heads: list[ResponseHead] = []
    errors: list[Exception] = []

    transport.lines(
        StreamRequest("GET", "http://example.invalid/2/tweets/sample/stream"),
        TransportOptions(),
        on_response=heads.append,
    ).subscribe(on_error=errors.append)

    assert errors == [refusal]
    assert heads == []
    assert "1 request" in repr(transport)


@pytest.mark.parametrize("subscriptions", [1, 2])
def test_each_subscription_is_a_new_attempt(subscriptions: int) -> None:
    calls: list[str] = []
    scheduler = TestScheduler()

    def handler(request: StreamRequest) -> Any:
        calls.append(request.url)
        return scheduler.create_cold_observable(on_completed(1.0))

    source = MockTransport(handler).lines(
        StreamRequest("GET", "http://example.invalid/s"), TransportOptions()
    )
    for _ in range(subscriptions):
        source.subscribe()
    assert calls == ["http://example.invalid/s"] * subscriptions
