"""Issue 10 items 1, 3, 9 and issue 11 item 7 (reconnect waits' threads), on real sockets.

* Only a connection that delivered data restarts the backoff: a ``200 text/html`` page or
  an ``operational-disconnect`` message followed by a close, again and again, is backed off
  (before: ~1,300 connections in 2 s against a raw loopback server).
* A 429 ``usage-capped`` answer ends the stream with ``UsageCapExceeded`` naming the cap.
* ``{"errors": "boom"}`` is a malformed message, never a string in ``.errors``.
* A stream waiting to reconnect shows in ``live_threads()``; after dispose it is gone.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from support import RawServer, answer, wait_until

from rxtweet import StreamingClient, StreamRequest
from rxtweet.connection import Connection
from rxtweet.errors import (
    HTTPException,
    TooManyRequests,
    UsageCapExceeded,
    exception_for_status,
)
from rxtweet.events import (
    Errored,
    MalformedMessage,
    Reconnecting,
    RequestFailed,
    StreamEvent,
)
from rxtweet.models import StreamResponse
from rxtweet.parse import REASON_CONVERT, ParseStats, is_v2_data, parse_v2, to_stream_response
from rxtweet.reconnect import DataSignal, ReconnectPolicy, reconnecting
from rxtweet.scheduling import WaitScheduler, live_threads
from rxtweet.testing import Attempt, FakeStreamServer

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe

HTML_PAGE = b"<html>\r\n<body>\r\nPlease log in to use this network.\r\n</body></html>\r\n"
OPERATIONAL_DISCONNECT = (
    b'{"errors":[{"title":"operational-disconnect","disconnect_type":'
    b'"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream '
    b'for operational reasons.","type":"https://api.twitter.com/2/problems/'
    b'operational-disconnect"}]}\r\n'
)
TWEET = b'{"data":{"id":"1","text":"hello","edit_history_tweet_ids":["1"]}}\r\n'
USAGE_CAPPED = {
    "title": "UsageCapExceeded",
    "detail": "Usage cap exceeded: Monthly product cap",
    "type": "https://api.twitter.com/2/problems/usage-capped",
    "period": "Monthly",
    "scope": "Product",
}


@contextlib.contextmanager
def answering(content_type: bytes, body: bytes) -> Iterator[RawServer]:
    """A server that answers every connection with a ``200`` and ``body``, then closes it."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nConnection: close\r\n\r\n"
    server = RawServer(answer(head + body))
    try:
        yield server
    finally:
        assert not server.close(), "a server thread outlived its test"


def stream_request(server: RawServer) -> StreamRequest:
    return StreamRequest("GET", f"{server.url}/2/tweets/search/stream")


def run_for(
    connection: Connection[StreamResponse], seconds: float
) -> tuple[list[StreamEvent], list[Any]]:
    """Subscribe to ``connection.items`` for ``seconds``; the events and the errors seen."""
    events: list[StreamEvent] = []
    errors: list[Any] = []
    subscription = connection.items.subscribe(
        lambda item: events.append(item) if isinstance(item, StreamEvent) else None,
        errors.append,
    )
    try:
        threading.Event().wait(seconds)
    finally:
        subscription.dispose()
    return events, errors


@pytest.fixture
def quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Hundreds of WARNING lines before the fix; keep them out of the report.
    caplog.set_level(logging.CRITICAL, logger="rxtweet")


# --- item 1: only data restarts the backoff --------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "is_data"),
    [
        (b"text/html", HTML_PAGE, None),
        (b"text/html", HTML_PAGE, is_v2_data),
        (b"application/json", OPERATIONAL_DISCONNECT, is_v2_data),
        (b"application/json", b"\r\n\r\n\r\n", is_v2_data),  # keep-alives only
    ],
    ids=["html-page", "html-page-v2", "operational-disconnect", "keep-alives"],
)
@pytest.mark.usefixtures("quiet_logs")
def test_200_then_close_without_data_is_backed_off(
    content_type: bytes, body: bytes, is_data: Callable[[StreamResponse], bool] | None
) -> None:
    # Before: every line reset the backoff, every reconnect was immediate: ~650 connections
    # in 1 s. After: 0, 0.25, 0.5 s ... as after a close without anything.
    with answering(content_type, body) as server:
        connection = Connection(
            stream_request(server), to_stream_response, stall_timeout=5, is_data=is_data
        )
        events, errors = run_for(connection, 0.6)
        connections = server.connections

    assert errors == []
    assert 2 <= connections <= 5, connections
    delays = [e.delay for e in events if isinstance(e, Reconnecting)]
    assert delays[:3] == [0.0, 0.25, 0.5]


@pytest.mark.usefixtures("quiet_logs")
def test_a_connection_that_delivered_a_tweet_reconnects_at_once() -> None:
    # A real message (then the system message and the close) still means "reconnect now".
    with answering(b"application/json", TWEET + OPERATIONAL_DISCONNECT) as server:
        connection = Connection(
            stream_request(server), to_stream_response, stall_timeout=5, is_data=is_v2_data
        )
        events, errors = run_for(connection, 0.3)
        connections = server.connections

    assert errors == []
    assert connections > 10
    delays = [e.delay for e in events if isinstance(e, Reconnecting)]
    assert delays and set(delays) == {0.0}


def test_is_v2_data_tells_data_from_system_messages() -> None:
    assert is_v2_data(to_stream_response({"data": {"id": "1", "text": "t"}}))
    assert is_v2_data(to_stream_response({"data": {"delete": {"tweet": {"id": "1"}}}}))
    assert not is_v2_data(to_stream_response({"errors": [{"title": "operational-disconnect"}]}))
    assert not is_v2_data(to_stream_response({}))


def test_data_signal_not_lines_resets_the_backoff_in_virtual_time() -> None:
    # reconnecting(data=...) ignores lines; only signal.set() restarts the counters.
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, b"junk"), on_completed(20))
    signal = DataSignal()
    policy = ReconnectPolicy(network_wait_step=100.0, network_wait_max=1000.0)
    delays: list[float] = []

    def on_event(event: StreamEvent) -> None:
        if isinstance(event, Reconnecting):
            delays.append(event.delay)

    def on_line(line: bytes) -> None:
        if len(delays) == 3:  # a line of the 4th connection is data
            signal.set()

    scheduler.start(
        lambda: xs.pipe(
            reconnecting(policy, on_event=on_event, data=signal), ops.do_action(on_line)
        ),
        disposed=1000,
    )

    assert delays[:5] == [0.0, 100.0, 200.0, 0.0, 100.0]
    assert xs.subscriptions[:4] == [
        subscribe(200, 220),
        subscribe(220, 240),
        subscribe(340, 360),
        subscribe(560, 580),
    ]


def test_without_a_data_signal_any_line_still_resets() -> None:
    # The raw-lines operator (Connection.lines) keeps judging by lines: it cannot parse.
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, b""), on_completed(20))
    delays: list[float] = []
    scheduler.start(
        lambda: xs.pipe(
            reconnecting(
                ReconnectPolicy(),
                on_event=lambda e: delays.append(e.delay) if isinstance(e, Reconnecting) else None,
            )
        ),
        disposed=300,
    )
    assert delays[:4] == [0.0, 0.0, 0.0, 0.0]


# --- item 3: a used-up usage cap is not retried -----------------------------------------


def test_usage_capped_429_ends_the_stream_with_usage_cap_exceeded() -> None:
    with FakeStreamServer(bearer_token="t") as server:
        # Before the fix: retried after the (scaled) rate-limit wait, then RetriesExhausted.
        server.script(*[Attempt(status=429, body=USAGE_CAPPED)] * 2)
        policy = ReconnectPolicy(rate_limit_wait_start=0.05, max_retries=1)
        client = StreamingClient("t", base_url=server.url, reconnect=policy)
        events = client.sample_stream().events.pipe(ops.to_list()).run()
        attempts = len(server.stream_requests)

    assert attempts == 1
    assert not any(isinstance(e, Reconnecting) for e in events)
    assert any(isinstance(e, RequestFailed) and e.status_code == 429 for e in events)
    errored = [e for e in events if isinstance(e, Errored)]
    assert len(errored) == 1
    error = errored[0].exception
    assert type(error) is UsageCapExceeded
    assert isinstance(error, TooManyRequests)
    assert (error.period, error.scope) == ("Monthly", "Product")
    assert "usage cap exceeded (Monthly, Product)" in str(error)
    assert "retrying cannot help" in str(error)


def test_plain_429_is_still_retried() -> None:
    with FakeStreamServer(
        bearer_token="t", messages=[{"data": {"id": "1", "text": "x"}}]
    ) as server:
        server.script(Attempt(status=429), Attempt(messages=1, ending="hold"))
        client = StreamingClient(
            "t", base_url=server.url, reconnect=ReconnectPolicy(rate_limit_wait_start=0.05)
        )
        tweets = client.sample_stream().tweets.pipe(ops.take(1), ops.to_list()).run()
    assert [t.id for t in tweets] == [1]


def test_exception_for_status_picks_usage_cap_by_problem_type() -> None:
    capped = "https://api.twitter.com/2/problems/usage-capped"
    assert exception_for_status(429, problem_type=capped) is UsageCapExceeded
    assert exception_for_status(429, problem_type="about:blank") is TooManyRequests
    assert exception_for_status(429) is TooManyRequests
    assert exception_for_status(400, problem_type=capped) is not UsageCapExceeded
    policy = ReconnectPolicy(fatal_statuses=frozenset())
    error = UsageCapExceeded(429, body=USAGE_CAPPED)
    assert policy.is_fatal(error)
    assert not policy.is_retryable(error)
    assert policy.new_backoff().next_delay(error) is None
    assert not policy.is_fatal(TooManyRequests(429))
    daily = UsageCapExceeded(429, body={"type": capped, "period": "Daily"})
    assert "usage cap exceeded (Daily)" in str(daily) and daily.scope is None
    assert isinstance(HTTPException(429), HTTPException)


# --- item 9: errors must be a list of objects; too-long lines are counted -----------------


@pytest.mark.parametrize(
    "line",
    [b'{"errors":"boom"}', b'{"errors":["boom"]}', b'{"errors":{"title":"x"}}', b'{"errors":1}'],
)
def test_errors_that_are_not_a_list_of_objects_are_malformed(line: bytes) -> None:
    stats = ParseStats()
    got = reactivex.of(line, TWEET.strip()).pipe(parse_v2(stats), ops.to_list()).run()
    assert isinstance(got[0], MalformedMessage) and got[0].reason == REASON_CONVERT
    assert isinstance(got[1], StreamResponse) and got[1].data is not None
    assert stats.malformed == 1 and stats.messages == 1


def test_errors_as_a_list_of_objects_pass() -> None:
    response = to_stream_response({"errors": [{"title": "operational-disconnect"}]})
    assert response.errors == [{"title": "operational-disconnect"}]


# --- issue 11 item 7: reconnect waits run on named threads -------------------------------


def test_a_stream_waiting_to_reconnect_is_in_live_threads_until_disposed() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed below: connections are refused
    request = StreamRequest("GET", f"http://127.0.0.1:{port}/2/tweets/sample/stream")
    connection = Connection(
        request,
        to_stream_response,
        policy=ReconnectPolicy(network_wait_step=30.0, network_wait_max=30.0),
    )
    before = {t.name for t in live_threads()}
    subscription = connection.items.subscribe(lambda _: None, lambda _: None)
    try:
        # refused, at once again, refused, then a 30 s wait on a timer thread
        assert wait_until(
            lambda: any(t.name.startswith("rxtweet-wait-") for t in live_threads()), 2.0
        ), live_threads()
    finally:
        subscription.dispose()
    assert wait_until(lambda: {t.name for t in live_threads()} <= before, 1.0), live_threads()


def test_wait_scheduler_names_its_threads_and_cancels() -> None:
    names: list[str] = []
    ran = threading.Event()

    def action(_s: Any, _st: Any) -> None:
        names.append(threading.current_thread().name)
        ran.set()

    scheduler = WaitScheduler.singleton()
    assert WaitScheduler() is scheduler
    scheduler.schedule_relative(0.01, action)
    assert ran.wait(2.0)
    assert names[0].startswith("rxtweet-wait-")
    cancelled = scheduler.schedule_relative(30.0, action)
    assert any(t.name.startswith("rxtweet-wait-") for t in live_threads())
    cancelled.dispose()
    assert wait_until(
        lambda: not any(t.name.startswith("rxtweet-wait-") for t in live_threads()), 1.0
    )
    assert len(names) == 1
    assert all(t.name.startswith("rxtweet-") for t in live_threads())


def test_an_action_that_raises_on_a_wait_thread_is_logged_not_left_to_the_thread(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A subscriber raising on the Errored event delivered by a reconnect wait's thread
    # (the stream is ending) went to threading.excepthook: a bare traceback on stderr.
    unhandled: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: unhandled.append(args.exc_value))
    done = threading.Event()

    def action(_scheduler: Any, _state: Any) -> None:
        done.set()
        raise RuntimeError("the subscriber's bug")

    with caplog.at_level(logging.ERROR, logger="rxtweet.scheduling"):
        WaitScheduler.singleton().schedule(action)
        assert done.wait(2.0)
        assert wait_until(
            lambda: not any(t.name.startswith("rxtweet-wait-") for t in live_threads()), 2.0
        )
    assert unhandled == []
    [record] = [r for r in caplog.records if r.name == "rxtweet.scheduling"]
    assert "a scheduled action raised" in record.getMessage()
    assert record.exc_info is not None and "the subscriber's bug" in str(record.exc_info[1])


def test_a_line_over_max_line_is_counted_in_stats() -> None:
    # Before: logged by the transport but counted nowhere in stream.stats.
    long_line = b'{"data":{"id":"2","text":"' + b"x" * 5000 + b'"}}\r\n'
    with answering(b"application/json", TWEET + long_line + TWEET + b"\r\n") as server:
        connection = Connection(
            stream_request(server), to_stream_response, stall_timeout=5, max_line=1024
        )
        messages = connection.items.pipe(
            ops.filter(lambda item: not isinstance(item, StreamEvent)), ops.take(2), ops.to_list()
        ).run()

    assert len(messages) == 2
    assert connection.stats.too_long == 1
    assert connection.stats.malformed == 0
    assert connection.stats.snapshot()["too_long"] == 1
    assert "too_long=1" in repr(connection.stats)
