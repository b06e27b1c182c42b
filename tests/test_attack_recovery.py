"""Hostile review of "Nothing lost" (issue 14): a lying server, a careless user, a slow
consumer. Each test here is a break that was found (and fixed), or a claim that was
attacked and held.

Real servers on 127.0.0.1 (FakeStreamServer, in timeline mode with ``clock=server.now``
where time matters, or tests/support.py's RawServer for bytes no honest server sends).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from support import RawServer, reader_threads, wait_until

from rxtweet import (
    Backfilling,
    DataLost,
    Disconnected,
    Errored,
    ReconnectPolicy,
    Recovered,
    Recovering,
    RecoveryUnavailable,
    StreamEvent,
    StreamingClient,
    StreamRequest,
)
from rxtweet.recovery.dedup import DedupWindow
from rxtweet.recovery.gap import FULL_REACH, plan_gap
from rxtweet.recovery.tracker import RecoveryTracker, created_for, iso_time
from rxtweet.testing import Attempt, FakeStreamServer, Timeline, generate_v2_messages
from rxtweet.testing.timeline import snowflake_id
from rxtweet.v2.convert import to_stream_response
from rxtweet.v2.identity import identity_for

FAST = ReconnectPolicy(network_wait_step=0.01, network_wait_max=0.05, http_wait_start=0.05)
SNOWFLAKE_EPOCH_MS = 1288834974657


def tweet(tweet_id: object, text: str = "x") -> dict[str, Any]:
    return {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [str(tweet_id)]}}


def snowflake_at(epoch: float, seq: int = 0) -> str:
    return str(snowflake_id(int(epoch * 1000), seq))


class Seen:
    """What a subscriber saw: tweet ids, events, and how the stream ended."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.events: list[StreamEvent] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def tweet(self, item: Any) -> None:
        with self.lock:  # the raw id: Tweet.id would raise on a lying one
            self.ids.append(str(item.data.get("id")))

    def of(self, kind: type) -> list[Any]:
        return [e for e in list(self.events) if isinstance(e, kind)]


@pytest.fixture
def running() -> Iterator[list[Any]]:
    subscriptions: list[Any] = []
    yield subscriptions
    for subscription in subscriptions:
        subscription.dispose()


def start(stream: Any, subscriptions: list[Any]) -> Seen:
    seen = Seen()
    with stream.hold():
        subscriptions.append(stream.tweets.subscribe(seen.tweet, seen.errors.append))
        subscriptions.append(stream.events.subscribe(seen.events.append))
    return seen


# --- a server that lies about ids ------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    [
        "9" * 400,  # a number too large for a float: (id >> 22) / 1000.0 overflowed
        ["1528053368912060423"],  # not a scalar: unhashable for the de-duplication set
        {"id": "1"},
        "-5",
        "not-a-number",
        1.5,
        None,
    ],
    ids=["huge", "list", "dict", "negative", "text", "float", "null"],
)
def test_a_lying_tweet_id_neither_kills_the_stream_nor_hides_the_next_tweets(
    running: list[Any], bad_id: object
) -> None:
    good = [tweet(str(1528053368912060423 + i)) for i in range(3)]
    messages = [good[0], tweet(bad_id), good[1], tweet(bad_id), good[2]]
    with FakeStreamServer(messages=messages, fields="all", keepalive_interval=0.05) as server:
        client = StreamingClient("t0ken", base_url=server.url, reconnect=FAST)
        stream = client.sample_stream(recovery="backfill")
        seen = start(stream, running)
        wanted = {str(g["data"]["id"]) for g in good}
        assert wait_until(lambda: wanted <= set(seen.ids) or seen.errors), seen.ids
        assert not seen.errors
        assert not seen.of(Errored)


def test_created_for_tweets_never_raises_on_a_lying_id() -> None:
    from rxtweet.v2.models import StreamResponse, Tweet

    created = created_for("tweets")
    assert created is not None
    for bad in ("9" * 400, 10**400, "1" * 5000, [1], {"id": 1}, True, 1.5):
        # Built by hand: to_stream_response already refuses the non-numeric ones.
        response = StreamResponse(Tweet({"id": bad, "text": "x"}), {}, [], [])
        assert created(response) is None


@pytest.mark.parametrize("bad", [[1], {"id": 1}, True, 1.5, "-5", "not-a-number", ""])
def test_a_lying_id_makes_the_message_malformed_not_the_hook_fail(bad: object) -> None:
    """``tweet.id`` used to raise ValueError in the subscriber's hands; now the message is
    refused at parse time (a logged, counted MalformedMessage)."""
    with pytest.raises(TypeError, match=r"data\.id"):
        to_stream_response(tweet(bad))


def test_an_id_from_2090_does_not_shrink_the_next_backfill() -> None:
    # One tweet whose Snowflake says 2090 made every later gap look like 0 s: a 4-minute
    # gap was asked back with backfill_minutes=1 and 3 minutes were lost, silently.
    now = [1_800_000_000.0]
    events: list[StreamEvent] = []
    tracker = RecoveryTracker("backfill", clock=lambda: now[0], emit=events.append)
    request = StreamRequest("GET", "http://127.0.0.1:9/2/tweets/sample/stream")
    tracker.request_for(request)
    created = created_for("tweets")
    assert created is not None
    tracker.on_data(created(to_stream_response(tweet(snowflake_at(now[0] - 1)))))
    tracker.on_data(created(to_stream_response(tweet(snowflake_at(3_800_000_000.0)))))
    now[0] += 240.0
    again = tracker.request_for(request)
    assert (again.params or {})["backfill_minutes"] == "5"
    [backfilling] = [e for e in events if isinstance(e, Backfilling)]
    assert backfilling.gap_seconds >= 240.0


# --- recovery refused ------------------------------------------------------------------------


def test_the_users_own_backfill_refused_is_reported_once_and_the_stream_goes_on(
    running: list[Any],
) -> None:
    # recovery="backfill" with the user's own backfill_minutes=2 and no Enterprise access:
    # the first attempt was refused, turned recovery off, and then asked the same again
    # (the user's backfill_minutes): a second 400, fatal.
    timeline = Timeline(rate=10.0, time_scale=60.0, backfill_allowed=False)
    with FakeStreamServer(
        messages=generate_v2_messages(seed=1),
        timeline=timeline,
        keepalive_interval=0.05,
        match_rules=False,
    ) as server:
        client = StreamingClient("t0ken", base_url=server.url, clock=server.now, reconnect=FAST)
        stream = client.sample_stream(recovery="backfill", backfill_minutes=2)
        seen = start(stream, running)
        assert wait_until(lambda: len(seen.ids) > 10 or seen.errors, timeout=3.0)
        assert not seen.errors
        server.cut(endpoint="sample")
        before = len(seen.ids)
        assert wait_until(lambda: len(seen.ids) > before + 10 or seen.errors, timeout=3.0)
        assert not seen.errors
        assert len(seen.of(RecoveryUnavailable)) == 1
        assert len([r for r in server.stream_requests if r.status == 400]) == 1


def test_a_refused_plan_with_user_backfill_and_no_item_yet_does_not_ask_again() -> None:
    now = [1_800_000_000.0]
    events: list[StreamEvent] = []
    tracker = RecoveryTracker("backfill", clock=lambda: now[0], emit=events.append)
    request = StreamRequest("GET", "http://127.0.0.1:9/s", params={"backfill_minutes": "3"})
    from rxtweet.errors import BadRequest

    first = tracker.request_for(request)
    error = BadRequest(400, reason="Bad Request")
    assert tracker.refused(error, first)
    second = tracker.request_for(request)
    assert "backfill_minutes" not in (second.params or {})


# --- gaps longer than X's reach --------------------------------------------------------------


def test_a_window_older_than_24_hours_when_it_opens_starts_inside_them() -> None:
    # The plan starts a >24 h gap's window exactly 24 h before it was made: a moment later
    # (and floored to the second by iso_time) that is more than 24 h ago, and X refuses it
    # (400), which turned recovery off for good as "no Enterprise access". A window that
    # waited for a free slot is older still.
    import reactivex

    from rxtweet.recovery.windows import RecoveryWindows
    from rxtweet.testing.timeline import parse_timestamp

    now = [1_800_000_000.0]
    asked: list[tuple[float, float]] = []
    events: list[Any] = []

    class Window:
        request = StreamRequest("GET", "http://127.0.0.1:9/s")
        items = reactivex.never()

    def connect(start: float, end: float) -> Any:
        asked.append((start, end))
        return Window()

    windows = RecoveryWindows(connect, events.append, None, clock=lambda: now[0])
    plan = plan_gap(since=now[0] - 30 * 3600.0, now=now[0], mode="full")
    assert plan.window is not None and plan.lost is not None
    now[0] += 2.0  # the attempt connected; the window opens a moment later
    windows.open(*plan.window)
    [(start, _)] = asked
    x_receives = now[0] + 10.0
    assert parse_timestamp(iso_time(start)) >= x_receives - FULL_REACH
    # What is given up is reported: from the plan's loss to the window, nothing silent.
    [lost] = [e for e in events if isinstance(e, DataLost)]
    assert lost.since.timestamp() <= plan.lost[1] + 1e-3
    assert lost.until.timestamp() == pytest.approx(start)
    windows.dispose()


# --- identity of events that have no id ------------------------------------------------------


def test_distinct_unknown_compliance_events_are_not_taken_for_duplicates() -> None:
    from rxtweet.v2.compliance import to_compliance_response

    key = identity_for("compliance")
    a = to_compliance_response(
        {"data": {"user_renamed": {"user": {"screen_name": "a"}, "event_at": "2026-01-01"}}}
    )
    b = to_compliance_response(
        {"data": {"user_renamed": {"user": {"screen_name": "b"}, "event_at": "2026-01-01"}}}
    )
    assert key(a) != key(b)
    again = to_compliance_response(
        {"data": {"user_renamed": {"event_at": "2026-01-01", "user": {"screen_name": "a"}}}}
    )
    assert key(a) == key(again)


def test_label_events_without_tweet_or_time_always_pass() -> None:
    from rxtweet.v2.labels import to_label_response

    key = identity_for("labels")
    a = to_label_response({"data": {"public_tweet_notice": {"application": "x"}}})
    b = to_label_response({"data": {"public_tweet_notice": {"application": "y"}}})
    assert key(a) != key(b) or key(a) is None


# --- the de-duplication window under a flood -------------------------------------------------


def test_the_dedup_window_holds_its_bounds_under_an_adversarial_flood() -> None:
    import random

    rng = random.Random(7)
    now = [0.0]
    window = DedupWindow(window=10.0, max_items=500, clock=lambda: now[0])
    recorded: dict[int, tuple[float, int]] = {}  # key -> (time, number) when recorded
    count = 0
    for step in range(20_000):
        now[0] += rng.choice((0.0, 0.0, 0.001, 0.01, 0.3, 2.0))
        key = rng.randrange(3000) if rng.random() < 0.5 else step + 10_000
        duplicate = window.seen(key)
        assert len(window) <= 500
        if key in recorded:
            when, number = recorded[key]
            if now[0] - when <= 10.0 and count - number < 500:
                assert duplicate, (step, key)  # kept for the whole window, count allowing
            if now[0] - when > 10.0 + 10.0 / 64 + 1e-9:
                assert not duplicate, (step, key)  # forgotten once the window passed
        if not duplicate:
            recorded[key] = (now[0], count)
            count += 1


# --- many partitions, two replicas, recovery: disposal and the end ---------------------------


def firehose_server(rate: float = 50.0, **timeline: Any) -> FakeStreamServer:
    return FakeStreamServer(
        messages=generate_v2_messages(seed=5),
        timeline=Timeline(rate=rate, time_scale=60.0, **timeline),
        keepalive_interval=0.05,
        match_rules=False,
    )


def test_40_connections_disposed_from_on_next_end_within_half_a_second() -> None:
    with firehose_server() as server:
        client = StreamingClient("t0ken", base_url=server.url, clock=server.now, reconnect=FAST)
        stream = client.firehose_stream(partitions="all", recovery="full", redundancy=2)
        seen = Seen()
        holder: list[Any] = []
        disposed = threading.Event()
        armed = threading.Event()
        took: list[float] = []

        def on_tweet(item: Any) -> None:
            seen.tweet(item)
            if armed.is_set() and not disposed.is_set():
                began = time.monotonic()
                for subscription in holder:
                    subscription.dispose()  # on a reader thread, inside the turns lock
                took.append(time.monotonic() - began)
                disposed.set()

        with stream.hold():
            holder.append(stream.tweets.subscribe(on_tweet))
            holder.append(stream.events.subscribe(seen.events.append))
        assert wait_until(lambda: len(server.open_streams("firehose")) == 40, timeout=5.0)
        assert len(reader_threads()) >= 40
        armed.set()
        assert disposed.wait(5.0)
        assert took[0] < 0.5
        assert wait_until(lambda: not reader_threads(), timeout=0.5), reader_threads()
        assert len(seen.ids) == len(set(seen.ids))
        assert not seen.errors


def test_20_connections_end_with_one_disconnected_when_the_server_goes_away() -> None:
    server = firehose_server()
    server.start()
    try:
        client = StreamingClient(
            "t0ken",
            base_url=server.url,
            clock=server.now,
            reconnect=ReconnectPolicy(max_retries=0),
        )
        stream = client.firehose_stream(partitions=range(1, 11), recovery="backfill", redundancy=2)
        seen = Seen()
        done = threading.Event()
        with stream.hold():
            stream.tweets.subscribe(seen.tweet, lambda e: done.set(), done.set)
            stream.events.subscribe(seen.events.append)
        assert wait_until(lambda: len(server.open_streams("firehose")) == 20, timeout=5.0)
        assert wait_until(lambda: len(seen.ids) > 100)
    finally:
        server.stop()
    assert done.wait(3.0)
    assert wait_until(lambda: len(seen.of(Disconnected)) >= 1, timeout=1.0)
    time.sleep(0.05)
    assert len(seen.of(Disconnected)) == 1
    assert seen.of(Disconnected)[0].partition is None
    assert len(seen.ids) == len(set(seen.ids))
    assert wait_until(lambda: not reader_threads(), timeout=0.5)


def test_a_slow_consumer_holding_the_turn_is_disposed_from_another_thread_at_once() -> None:
    with firehose_server() as server:
        client = StreamingClient("t0ken", base_url=server.url, clock=server.now, reconnect=FAST)
        stream = client.firehose_stream(partitions=range(1, 11), recovery="backfill", redundancy=2)
        blocked = threading.Event()
        release = threading.Event()

        def on_tweet(item: Any) -> None:
            if not blocked.is_set():
                blocked.set()
                release.wait(5.0)  # a slow consumer: every other reader waits for the turn

        began = time.monotonic()
        subscription = stream.tweets.subscribe(on_tweet)
        try:
            # Subscribing the other 19 connections waited for the merge's lock, which the
            # slow consumer held: subscribe() returned only when the consumer did.
            assert time.monotonic() - began < 0.5
            assert blocked.wait(5.0)
            began = time.monotonic()
            disposer = threading.Thread(target=subscription.dispose)
            disposer.start()
            disposer.join(0.5)
            assert not disposer.is_alive(), "dispose waited for the slow consumer"
            assert time.monotonic() - began < 0.5
        finally:
            release.set()
        # Once the consumer returns, every reader is gone.
        assert wait_until(lambda: not reader_threads(), timeout=1.0), reader_threads()


# --- credentials never in a refusal ----------------------------------------------------------

TOKEN = "AAAA%2Fs3cr3t+tok=="


def echoing_server(conn: Any, head: bytes) -> None:
    """Streams two tweets and cuts; answers a backfill with a 400 whose text echoes the
    request, Authorization header included (a proxy or an X bug could)."""
    if b"backfill_minutes" in head:
        auth = [line for line in head.split(b"\r\n") if line.lower().startswith(b"authorization")]
        body = orjson.dumps(
            {
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request",
                "errors": [
                    {
                        "message": f"backfill_minutes refused for {auth[0].decode()}",
                        "parameters": {"backfill_minutes": ["2"]},
                    }
                ],
            }
        )
        conn.sendall(
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )
        return
    lines = b"".join(
        orjson.dumps(tweet(snowflake_at(time.time() - 1, i))) + b"\r\n" for i in range(2)
    )
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n"
        + lines
    )
    time.sleep(0.05)  # then a cut: the body ends early


def test_a_refusal_that_echoes_the_token_does_not_leak_it(
    running: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    with RawServer(echoing_server) as server:
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST)
        stream = client.sample_stream(recovery="backfill")
        seen = start(stream, running)
        assert wait_until(lambda: seen.of(RecoveryUnavailable), timeout=3.0)
        [refused] = seen.of(RecoveryUnavailable)
        assert "backfill_minutes refused" in refused.reason  # X's words are kept
        for text in (refused.reason, repr(refused), caplog.text):
            assert TOKEN not in text
            assert "s3cr3t" not in text


# --- recovery windows refused, queued, disposed ----------------------------------------------


def timeline_server(**timeline: Any) -> FakeStreamServer:
    return FakeStreamServer(
        messages=generate_v2_messages(seed=1),
        timeline=Timeline(**timeline),
        keepalive_interval=0.05,
        match_rules=False,
    )


def test_a_refused_window_is_one_refusal_an_honest_loss_and_the_stream_goes_on(
    running: list[Any],
) -> None:
    with timeline_server(rate=2.0, time_scale=600.0, recovery_allowed=False) as server:
        policy = ReconnectPolicy(network_wait_step=0.01, http_wait_start=0.7, http_wait_max=0.7)
        client = StreamingClient("t0ken", base_url=server.url, clock=server.now, reconnect=policy)
        stream = client.sample_stream(recovery="full")
        seen = start(stream, running)
        assert wait_until(lambda: len(seen.ids) > 10)
        server.script(Attempt(status=503), endpoint="sample")
        server.cut(endpoint="sample")
        assert wait_until(lambda: seen.of(RecoveryUnavailable), timeout=5.0)
        before = len(seen.ids)
        assert wait_until(lambda: len(seen.ids) > before + 5, timeout=3.0)
        [refused] = seen.of(RecoveryUnavailable)
        assert refused.status_code == 400
        [lost] = seen.of(DataLost)
        [recovering] = seen.of(Recovering)
        assert lost.since <= recovering.start_time and lost.until >= recovering.end_time
        assert not seen.of(Recovered)
        windows = [r for r in server.stream_requests if "start_time" in r.query]
        assert len(windows) == 1  # refused once, never asked again
        assert not seen.errors
        assert len(seen.ids) == len(set(seen.ids))


def test_three_long_gaps_in_a_row_are_queued_two_at_a_time_and_all_recovered() -> None:
    # A fake live connection's tracker opens three windows at once; X allows two.
    from reactivex.subject import Subject

    from rxtweet.events import Closed
    from rxtweet.recovery.windows import RecoveryWindows

    subjects: list[Subject[Any]] = []
    events: list[Any] = []

    class Window:
        def __init__(self) -> None:
            self.request = StreamRequest("GET", "http://127.0.0.1:9/s")
            self.subject: Subject[Any] = Subject()
            self.items = self.subject
            subjects.append(self.subject)

    windows = RecoveryWindows(lambda s, e: Window(), events.append, None, clock=time.time)
    now = time.time()
    for k in range(3):
        windows.open(now - 3000 + k * 1000, now - 2500 + k * 1000)
    assert len(subjects) == 2
    subjects[0].on_next(Closed())
    assert len(subjects) == 3
    subjects[1].on_next(Closed())
    subjects[2].on_next(Closed())
    assert [type(e).__name__ for e in events].count("Recovered") == 3
    assert [type(e).__name__ for e in events].count("Recovering") == 3
    windows.dispose()


def test_a_hold_never_released_still_keeps_the_count_bound() -> None:
    now = [0.0]
    window = DedupWindow(window=1.0, max_items=1000, clock=lambda: now[0])
    window.hold(0.0)  # a window connection that never ends: never released
    for key in range(50_000):
        now[0] += 0.01
        window.seen(key)
    assert len(window) == 1000
    assert window.seen(49_999) and not window.seen(0)


def endless_window_server(conn: Any, head: bytes) -> None:
    """Live requests: tweets, then a cut; a window request: keep-alives, never an end."""
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
    if b"start_time" in head:
        while True:
            conn.sendall(b"\r\n")
            time.sleep(0.02)
    for i in range(3):
        conn.sendall(orjson.dumps(tweet(snowflake_at(time.time() - 1, i))) + b"\r\n")


def test_dispose_during_a_window_that_never_ends_closes_everything(running: list[Any]) -> None:
    # The client's clock is 10 minutes ahead after the first tweets: a long gap, a window.
    offset = [0.0]
    with RawServer(endless_window_server) as server:
        client = StreamingClient(
            "t0ken", base_url=server.url, reconnect=FAST, clock=lambda: time.time() + offset[0]
        )
        stream = client.sample_stream(recovery="full")
        seen = Seen()
        with stream.hold():
            tweets = stream.tweets.subscribe(seen.tweet)
            events = stream.events.subscribe(seen.events.append)
        assert wait_until(lambda: seen.ids)
        offset[0] = 600.0
        assert wait_until(lambda: seen.of(Recovering), timeout=3.0)
        assert wait_until(lambda: any(b"start_time" in h for h in server.heads))
        began = time.monotonic()
        tweets.dispose()
        events.dispose()
        assert time.monotonic() - began < 0.5
        assert wait_until(lambda: not reader_threads(), timeout=0.5), reader_threads()
        assert not seen.of(Recovered)  # it never ended: no claim that it did


def test_a_server_echoing_the_token_in_a_problem_does_not_leak_it_in_the_error() -> None:
    """str(BadRequest) used to carry X's text as sent, an echoed Authorization included."""
    from support import RawServer, answer

    from rxtweet.errors import BadRequest as _BadRequest
    from rxtweet.transport import RequestsTransport
    from rxtweet.transport_base import TransportOptions

    token = "S3cr3tT0ken-abcdef"
    body = (
        b'{"title":"Invalid Request","detail":"header Authorization: Bearer '
        + token.encode()
        + b' is not allowed"}'
    )
    head = (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    with RawServer(answer(head + body)) as server:
        from support import collect, get

        request = get(server.url, Authorization=f"Bearer {token}")
        _, error = collect(RequestsTransport().lines(request, TransportOptions()))
    assert isinstance(error, _BadRequest)
    shown = f"{error!s} {error!r} {error.problem} {error.detail} {error.title}"
    assert token not in shown
    assert "<redacted>" in shown
