"""Many partitions, one stream: partition validation and the merge of partition connections.

The merge's contract (rxtweet.partitions.MergedConnection): each partition's order kept,
events tagged with their partition, each failing partition's Errored while the others go on,
ONE Disconnected after every partition ended, then on_error with the first failure; dispose
closes every partition at once. Checked in virtual time (MockTransport + TestScheduler) where
the order of things matters, and over real sockets (FakeStreamServer) where the wire does.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler
from support import reader_threads, wait_until

from rxtweet import (
    Connected,
    Disconnected,
    Errored,
    Forbidden,
    InvalidStreamParameter,
    KeepAlive,
    MergedConnection,
    Reconnecting,
    ReconnectPolicy,
    StreamingClient,
    StreamRequest,
    Unauthorized,
)
from rxtweet.events import StreamEvent
from rxtweet.partitions import partition_numbers, span
from rxtweet.testing import Attempt, FakeStreamServer, MockTransport
from rxtweet.v2.endpoints import ENDPOINTS

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error


def tweet(n: int) -> bytes:
    return b'{"data":{"id":"%d","text":"tweet %d","edit_history_tweet_ids":["%d"]}}' % (n, n, n)


def tweet_doc(n: int) -> dict[str, Any]:
    return {"data": {"id": str(n), "text": f"tweet {n}", "edit_history_tweet_ids": [str(n)]}}


def partition_of(request: StreamRequest) -> int:
    assert request.params is not None
    return int(request.params["partition"])


# --- which partitions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partitions", "name", "expected"),
    [
        (3, "firehose", (3,)),
        ([7, 1, 7], "firehose", (1, 7)),
        (range(1, 21), "firehose", tuple(range(1, 21))),
        ("all", "firehose", tuple(range(1, 21))),
        (" ALL ", "sample10", (1, 2)),
        ("all", "firehose_en", tuple(range(1, 9))),
        ((p for p in (2, 4)), "compliance_users", (2, 4)),
        (None, "labels", ()),
    ],
)
def test_partition_numbers_takes_an_int_ints_or_all(
    partitions: Any, name: str, expected: tuple[int, ...]
) -> None:
    assert partition_numbers(partitions, endpoint=ENDPOINTS[name]) == expected


@pytest.mark.parametrize(
    ("partitions", "name", "says"),
    [
        (21, "firehose", "1-20"),
        (0, "firehose", "1-20"),
        ([1, 9], "firehose_en", "1-8"),
        (3, "sample10", "1-2"),
        (5, "compliance_tweets", "1-4"),
        (3, "likes_sample10", "1-2"),
        (True, "firehose", "1-20"),  # a bool is an int to Python, not a partition
        ("3", "firehose", "1-20"),
        ([], "firehose", "1-20"),
        (1.0, "firehose", "1-20"),
        (None, "firehose", "needs partitions"),
        (None, "compliance_tweets", "1-4"),
        (1, "labels", "not partitioned"),
        (1, "compliance_likes", "not partitioned"),
    ],
)
def test_partition_numbers_refuses_what_x_would_naming_the_range(
    partitions: Any, name: str, says: str
) -> None:
    with pytest.raises(InvalidStreamParameter, match=says) as info:
        partition_numbers(partitions, endpoint=ENDPOINTS[name])
    assert isinstance(info.value, ValueError)
    assert info.value.parameter == "partitions"


def test_a_bad_partition_is_refused_before_anything_is_built_or_connected() -> None:
    transport = MockTransport(lambda request: pytest.fail("connected"))
    client = StreamingClient("t0ken", transport=transport)
    with pytest.raises(ValueError, match="1-20"):
        client.firehose_stream(partitions=[1, 21])
    with pytest.raises(ValueError, match="1-8"):
        client.firehose_stream(partitions=9, lang="en")
    with pytest.raises(ValueError, match="1-4"):
        client.compliance_stream("tweets")  # required, and missing
    with pytest.raises(TypeError):
        client.sample10_stream()  # type: ignore[call-arg]  # partitions is required
    assert transport.requests == []


def test_span_writes_partition_lists_short() -> None:
    assert span([1, 2, 3, 7, 9, 10]) == "1-3,7,9-10"
    assert span([5]) == "5"


# --- the merge, in virtual time ----------------------------------------------------------


def virtual_client(scheduler: TestScheduler, answers: dict[int, Any]) -> StreamingClient:
    transport = MockTransport(lambda request: answers[partition_of(request)])
    return StreamingClient(
        "t0ken",
        transport=transport,
        scheduler=scheduler,
        reconnect=ReconnectPolicy(network_wait_step=1.0),
    )


def test_a_failing_partition_reports_itself_and_the_others_go_on_then_one_disconnected() -> None:
    scheduler = TestScheduler()
    refusal = Forbidden(403, body={"title": "Forbidden", "detail": "partition 2 is not yours"})
    revoked = Unauthorized(401, body={"title": "Unauthorized"})
    answers = {
        1: scheduler.create_cold_observable(
            on_next(10.0, tweet(1)),
            on_next(30.0, tweet(3)),  # after partition 2 failed
            on_next(35.0, b""),
            on_error(40.0, revoked),
        ),
        2: scheduler.create_cold_observable(on_next(15.0, tweet(2)), on_error(25.0, refusal)),
    }
    stream = virtual_client(scheduler, answers).sample10_stream(partitions="all")
    seen: list[tuple[float, Any]] = []
    ended: list[BaseException] = []
    stream.items.subscribe(
        lambda item: seen.append((scheduler.clock, item)),
        ended.append,
        scheduler=scheduler,
    )
    scheduler.start()

    def describe(item: Any) -> Any:
        if isinstance(item, StreamEvent):
            return type(item).__name__, item.partition
        return "tweet", item.value.data.id

    assert [(clock, describe(item)) for clock, item in seen] == [
        (0.0, ("Connected", 1)),
        (0.0, ("Connected", 2)),
        (10.0, ("tweet", 1)),
        (15.0, ("tweet", 2)),
        (25.0, ("RequestFailed", 2)),
        (25.0, ("Errored", 2)),
        (30.0, ("tweet", 3)),
        (35.0, ("KeepAlive", 1)),
        (40.0, ("RequestFailed", 1)),
        (40.0, ("Errored", 1)),
        (40.0, ("Disconnected", None)),
    ]
    errored = [item for _, item in seen if isinstance(item, Errored)]
    assert [type(e.exception) for e in errored] == [Forbidden, Unauthorized]
    assert ended == [refusal]  # the first partition to fail
    assert seen[-1][1] == Disconnected()


def test_events_selects_the_tagged_events_and_completes_once() -> None:
    scheduler = TestScheduler()
    answers = {
        p: scheduler.create_cold_observable(
            on_next(5.0 * p, b""), on_error(50.0, Unauthorized(401))
        )
        for p in (1, 2, 3)
    }
    stream = virtual_client(scheduler, answers).firehose_stream(partitions=[1, 2, 3], lang="en")
    events: list[StreamEvent] = []
    completed: list[bool] = []
    stream.events.subscribe(events.append, on_completed=lambda: completed.append(True))
    scheduler.start()
    assert [e for e in events if isinstance(e, KeepAlive)] == [
        KeepAlive(partition=1),
        KeepAlive(partition=2),
        KeepAlive(partition=3),
    ]
    assert sorted(e.partition for e in events if isinstance(e, Connected)) == [1, 2, 3]
    assert [e for e in events if isinstance(e, Disconnected)] == [Disconnected()]
    assert events[-1] == Disconnected() and completed == [True]


def test_each_partition_is_its_own_request_with_the_same_query() -> None:
    scheduler = TestScheduler()
    answers = {p: scheduler.create_cold_observable() for p in range(1, 21)}
    client = virtual_client(scheduler, answers)
    stream = client.likes_stream(
        "firehose", partitions="all", expansions=["liked_tweet_id"], backfill_minutes=2
    )
    connection = stream.connection
    assert isinstance(connection, MergedConnection)
    assert connection.partitions == tuple(range(1, 21))
    assert [r.params for r in connection.requests] == [
        {"expansions": "liked_tweet_id", "backfill_minutes": "2", "partition": str(p)}
        for p in range(1, 21)
    ]
    assert all(r.url == "https://api.x.com/2/likes/firehose/stream" for r in connection.requests)
    assert "partitions=1-20" in repr(stream)


def test_an_unpartitioned_stream_is_one_plain_connection_with_untagged_events() -> None:
    scheduler = TestScheduler()
    transport = MockTransport(
        lambda request: scheduler.create_cold_observable(on_error(5.0, Unauthorized(401)))
    )
    client = StreamingClient("t0ken", transport=transport, scheduler=scheduler)
    stream = client.label_stream()
    assert not isinstance(stream.connection, MergedConnection)
    events: list[StreamEvent] = []
    stream.events.subscribe(events.append)
    scheduler.start()
    assert [type(e).__name__ for e in events] == [
        "Connected",
        "RequestFailed",
        "Errored",
        "Disconnected",
    ]
    assert all(e.partition is None for e in events)
    assert transport.requests[0].params is None


# --- the merge, over real sockets --------------------------------------------------------


def test_a_subscriber_that_raises_ends_the_whole_merge() -> None:
    with FakeStreamServer([tweet_doc(n) for n in range(40)], keepalive_interval=0.05) as server:
        before = set(reader_threads())
        client = StreamingClient("t0ken", base_url=server.url)
        stream = client.firehose_stream(partitions=[1, 2, 3, 4])
        bug = RuntimeError("the subscriber's bug")
        got: list[int] = []
        ended: list[BaseException] = []
        events: list[StreamEvent] = []

        def on_tweet(t: Any) -> None:
            got.append(t.id)
            raise bug

        with stream.hold():
            stream.tweets.subscribe(on_tweet, ended.append)
            stream.events.subscribe(events.append)
        assert wait_until(lambda: bool(ended), 3)
        assert ended == [bug]
        # The other partitions (which never failed themselves) are closed too.
        assert wait_until(lambda: not (set(reader_threads()) - before), 1)
        assert len(got) == 1 and not stream.connected
        assert [e for e in events if isinstance(e, Disconnected)] == [Disconnected()]
        assert [e.exception for e in events if isinstance(e, Errored)] == [bug]


def test_twenty_partitions_give_the_whole_set_exactly_once_through_cuts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    total = 1000
    with FakeStreamServer([tweet_doc(n) for n in range(total)], keepalive_interval=0.5) as server:
        for partition in (2, 5, 9, 17):
            server.script(Attempt(messages=3, ending="cut"), partition=partition)
        server.script(Attempt(messages=5, ending="close"), partition=11)
        client = StreamingClient(
            "t0ken", base_url=server.url, reconnect=ReconnectPolicy(network_wait_step=0.01)
        )
        stream = client.firehose_stream(partitions="all")
        ids: list[int] = []
        reconnected: set[int] = set()
        done = threading.Event()

        def on_tweet(t: Any) -> None:
            ids.append(int(t.id))
            if len(ids) == total:
                done.set()

        def on_event(event: StreamEvent) -> None:
            if isinstance(event, Reconnecting):
                reconnected.add(event.partition)

        with stream.hold():
            subscriptions = [stream.tweets.subscribe(on_tweet), stream.events.subscribe(on_event)]
        try:
            assert done.wait(10), f"{len(ids)} of {total}"
            assert sorted(ids) == list(range(total))  # each message once, none missing
            assert reconnected >= {2, 5, 9, 11, 17}
            # messages is counted per read after its items were delivered (ParseStats), on
            # the reader's thread: the last read may still be in its count when done is set.
            assert wait_until(lambda: stream.stats.messages >= total, 1.0)
            assert stream.stats.messages == total
            assert sum(server.sent_by_partition.values()) == total
        finally:
            for subscription in subscriptions:
                subscription.dispose()
        # 20 connections on one client's session: none dropped from its pool with a warning.
        assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
        # Within a partition, the server's order is kept.
        per_partition: dict[int, list[int]] = {}
        for n in ids:
            per_partition.setdefault(n % 20, []).append(n)
        assert all(part == sorted(part) for part in per_partition.values())


def test_dispose_closes_every_partition_within_half_a_second() -> None:
    with FakeStreamServer([tweet_doc(n) for n in range(40)], keepalive_interval=0.05) as server:
        before = set(reader_threads())
        client = StreamingClient("t0ken", base_url=server.url)
        stream = client.firehose_stream(partitions="all")
        got: list[Any] = []
        subscription = stream.tweets.subscribe(got.append)
        assert wait_until(lambda: len(got) == 40, 3)
        assert len(set(reader_threads()) - before) == 20
        started = time.monotonic()
        subscription.dispose()
        assert wait_until(lambda: not (set(reader_threads()) - before), 0.5)
        assert time.monotonic() - started < 0.5
        assert not stream.connected


def test_substreams_subscribed_in_hold_all_see_the_first_message_of_every_partition() -> None:
    with FakeStreamServer([tweet_doc(n) for n in range(4)], keepalive_interval=0.05) as server:
        client = StreamingClient("t0ken", base_url=server.url)
        stream = client.sample10_stream(partitions=[1, 2])
        tweets: list[int] = []
        responses: list[Any] = []
        with stream.hold():
            first = stream.tweets.subscribe(lambda t: tweets.append(t.id))
            second = stream.responses.subscribe(responses.append)
        try:
            assert wait_until(lambda: len(tweets) == 4 and len(responses) == 4, 3)
            assert sorted(tweets) == [0, 1, 2, 3]
            assert len(server.requests) == 2  # one connection per partition, shared
            # Counted per read after its items were delivered, on each reader's thread.
            assert wait_until(lambda: stream.stats.messages >= 4, 1.0)
            assert stream.stats.snapshot()["messages"] == 4
            assert [part.messages for part in stream.stats.parts] == [2, 2]
        finally:
            first.dispose()
            second.dispose()


def test_lines_merges_every_partitions_raw_lines() -> None:
    with FakeStreamServer([tweet_doc(n) for n in range(6)], keepalive_interval=0.05) as server:
        client = StreamingClient("t0ken", base_url=server.url)
        stream = client.sample10_stream(partitions="all")
        lines: list[bytes] = []
        subscription = stream.lines.subscribe(lambda line: line and lines.append(line))
        try:
            assert wait_until(lambda: len(lines) == 6, 3)
            assert sorted(lines) == sorted(tweet(n) for n in range(6))
        finally:
            subscription.dispose()
