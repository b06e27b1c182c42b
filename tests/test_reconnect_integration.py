"""Reconnects in real time against FakeStreamServer: the gaps the server saw between attempts.

Waits are scaled down (tenths of a second) so the file runs in a few seconds; the rules are
the same as with X's defaults, which tests/test_reconnect.py checks in virtual time.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import pytest
from reactivex import operators as ops

from rxtweet import StreamRequest
from rxtweet.events import Closed, Reconnecting, RequestFailed, StreamEvent
from rxtweet.reconnect import ReconnectPolicy, RetriesExhausted, reconnecting
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.transport import lines

pytestmark = pytest.mark.integration

MESSAGES = [{"data": {"id": str(i), "text": f"tweet {i}"}} for i in range(1, 50)]
SCALED = ReconnectPolicy(
    network_wait_step=0.1, http_wait_start=0.1, http_wait_max=1.0, rate_limit_wait_start=0.3
)
TOLERANCE = 0.25  # connection set-up on a loaded 2-core machine


def reconnecting_lines(server: FakeStreamServer, policy: ReconnectPolicy, events: list[Any]) -> Any:
    request = StreamRequest("GET", f"{server.url}/2/tweets/sample/stream")
    return lines(request, stall_timeout=5).pipe(reconnecting(policy, on_event=events.append))


def gaps(server: FakeStreamServer) -> list[float]:
    starts = [r.started_at for r in server.stream_requests]
    return [b - a for a, b in itertools.pairwise(starts)]


def test_scripted_sequence_waits_as_the_policy_says(capsys: pytest.CaptureFixture[str]) -> None:
    events: list[StreamEvent] = []
    with FakeStreamServer(messages=MESSAGES) as server:
        # 4-5 s ahead: the 9th attempt comes ~1.7 s in (later on a loaded machine), and its
        # wait must stay above the 0.6 s doubling. +4 left as little as 0.6 s when the
        # second was nearly over at this line and the attempts ran late.
        reset = int(time.time()) + 5
        server.script(
            Attempt(status=503),
            Attempt(status=503),
            Attempt(status=503),
            *[Attempt(messages=0, ending="close")] * 4,
            Attempt(status=429),
            Attempt(
                status=429,
                headers={
                    "x-rate-limit-remaining": "0",
                    "x-rate-limit-reset": str(reset),
                },
            ),
            Attempt(messages=3, ending="hold"),
        )
        got = reconnecting_lines(server, SCALED, events).pipe(ops.take(3), ops.to_list()).run()
        recorded = server.stream_requests
        observed = gaps(server)
    assert [line[:20] for line in got] == [
        b'{"data":{"id":"1","t',
        b'{"data":{"id":"2","t',
        b'{"data":{"id":"3","t',
    ]
    assert len(recorded) == 10
    causes = ["503", "503", "503", "close", "close", "close", "close", "429", "429 remaining=0"]
    expected = [0.1, 0.2, 0.4, 0.0, 0.1, 0.2, 0.3, 0.3]
    for cause, want, seen in zip(causes, expected, observed, strict=False):
        assert want - 0.02 <= seen <= want + TOLERANCE, (cause, want, seen)
    # The last 429 said remaining=0: the wait lasts until the reset (whole epoch seconds),
    # longer than the 0.6 s the doubling alone would give.
    scheduled = [e for e in events if isinstance(e, Reconnecting)]
    assert [round(e.delay, 2) for e in scheduled[:8]] == expected
    assert scheduled[8].delay > 0.6
    assert scheduled[8].delay - 0.02 <= observed[8] <= scheduled[8].delay + TOLERANCE
    assert time.time() >= reset
    assert sum(isinstance(e, RequestFailed) for e in events) == 5
    assert sum(isinstance(e, Closed) for e in events) == 4
    with capsys.disabled():
        print("\n  attempt  cause             policy wait   observed gap")
        for i, (cause, seen) in enumerate(zip(causes, observed, strict=False), start=1):
            print(f"  {i:>7}  {cause:<16}  {scheduled[i - 1].delay:>10.3f} s  {seen:>10.3f} s")


def test_a_server_that_accepts_and_closes_is_not_hammered() -> None:
    # tweepy reconnects in a tight loop here (over 1,000 connections in 3 s).
    with FakeStreamServer(messages=[], default=Attempt(messages=0, ending="close")) as server:
        subscription = reconnecting_lines(server, ReconnectPolicy(), []).subscribe(
            on_error=lambda e: None
        )
        time.sleep(2.0)
        subscription.dispose()
        count = len(server.stream_requests)
    # Waits 0, 0.25, 0.5, 0.75 ... : attempts at 0, 0, 0.25, 0.75, 1.5 (+0.75 at 2.25).
    assert 4 <= count <= 6


def test_fatal_status_is_one_attempt_only() -> None:
    with FakeStreamServer(messages=MESSAGES) as server:
        server.script(Attempt(status=401))
        errors: list[BaseException] = []
        done = threading.Event()
        reconnecting_lines(server, SCALED, []).subscribe(
            on_error=lambda e: (errors.append(e), done.set())
        )
        assert done.wait(5)
        time.sleep(0.3)
        assert len(server.stream_requests) == 1
    assert errors and getattr(errors[0], "status_code", None) == 401


def test_max_retries_bounds_the_attempts() -> None:
    with FakeStreamServer(messages=MESSAGES, default=Attempt(status=503)) as server:
        policy = ReconnectPolicy(http_wait_start=0.05, max_retries=2)
        errors: list[BaseException] = []
        done = threading.Event()
        reconnecting_lines(server, policy, []).subscribe(
            on_error=lambda e: (errors.append(e), done.set())
        )
        assert done.wait(5)
        assert len(server.stream_requests) == 3
    assert isinstance(errors[0], RetriesExhausted)
    assert "503" in str(errors[0].__cause__)


def test_cut_and_stall_reconnect_and_every_message_arrives_once() -> None:
    with FakeStreamServer(messages=MESSAGES[:12]) as server:
        server.script(
            Attempt(messages=3, ending="cut", chunking="byte"),
            Attempt(messages=3, ending="stall"),
            Attempt(status=503),
            Attempt(messages=3, ending="cut", gzip=True),
            Attempt(ending="close"),
        )
        request = StreamRequest("GET", f"{server.url}/2/tweets/sample/stream")
        got = (
            lines(request, stall_timeout=0.3)
            .pipe(reconnecting(SCALED), ops.filter(bool), ops.take(12), ops.to_list())
            .run()
        )
    ids = [int(line.split(b'"id":"')[1].split(b'"')[0]) for line in got]
    assert ids == list(range(1, 13))


def test_dispose_during_a_wait_cancels_the_reconnect() -> None:
    with FakeStreamServer(messages=MESSAGES, default=Attempt(status=503)) as server:
        policy = ReconnectPolicy(http_wait_start=30.0)
        subscription = reconnecting_lines(server, policy, []).subscribe(on_error=lambda e: None)
        server.wait_for_requests(1)
        time.sleep(0.2)
        subscription.dispose()
        time.sleep(0.2)
        assert len(server.stream_requests) == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("rxtweet-reader")]
