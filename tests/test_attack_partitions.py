"""Hostile review of the partitioned streams and the v2 event converters (R-13).

Real sockets (FakeStreamServer on 127.0.0.1) for the merge; direct calls for the converters.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from support import wait_until

from rxtweet import Disconnected, Errored, ReconnectPolicy, StreamingClient
from rxtweet.errors import InvalidStreamParameter, Unauthorized
from rxtweet.events import StreamEvent
from rxtweet.partitions import partition_numbers
from rxtweet.testing import Attempt, FakeStreamServer, live_threads
from rxtweet.v2.compliance import to_compliance_response
from rxtweet.v2.endpoints import ENDPOINTS


def tweet_doc(n: int) -> dict[str, Any]:
    return {"data": {"id": str(n), "text": f"tweet {n}", "edit_history_tweet_ids": [str(n)]}}


def no_new_threads(before: set[threading.Thread], timeout: float = 1.0) -> bool:
    return wait_until(lambda: not (set(live_threads()) - before), timeout)


@pytest.mark.parametrize(
    "partitions", [0, 21, -1, True, "1", [1, 1.0], [True], "ALLL", None, [], 1.0]
)
def test_bad_partitions_are_refused_naming_the_range(partitions: Any) -> None:
    with pytest.raises(InvalidStreamParameter) as caught:
        partition_numbers(partitions, endpoint=ENDPOINTS["firehose"])
    assert caught.value.parameter == "partitions"


def test_good_partition_forms_normalise() -> None:
    firehose = ENDPOINTS["firehose"]
    assert partition_numbers([1, 1], endpoint=firehose) == (1,)
    assert partition_numbers("ALL", endpoint=firehose) == tuple(range(1, 21))
    assert partition_numbers((p for p in range(1, 21)), endpoint=firehose) == tuple(range(1, 21))


def test_every_partition_refused_401_at_once_ends_once_and_leaves_no_thread() -> None:
    with FakeStreamServer([], bearer_token="right") as server:
        before = set(live_threads())
        client = StreamingClient("wrong", base_url=server.url)
        stream = client.firehose_stream(partitions="all")
        events: list[StreamEvent] = []
        ended: list[BaseException] = []
        completed: list[bool] = []
        stream.items.subscribe(
            lambda item: events.append(item) if isinstance(item, StreamEvent) else None,
            ended.append,
            lambda: completed.append(True),
        )
        assert wait_until(lambda: bool(ended or completed), 3)
        time.sleep(0.1)
        assert len(ended) == 1 and not completed
        assert isinstance(ended[0], Unauthorized)
        assert [e for e in events if isinstance(e, Disconnected)] == [Disconnected()]
        assert sorted(e.partition for e in events if isinstance(e, Errored)) == list(range(1, 21))
        assert no_new_threads(before)


def test_dispose_during_start_up_of_twenty_partitions_leaves_no_thread() -> None:
    with FakeStreamServer([tweet_doc(n) for n in range(200)], keepalive_interval=0.05) as server:
        before = set(live_threads())
        client = StreamingClient("t0ken", base_url=server.url)
        for _ in range(3):
            stream = client.firehose_stream(partitions="all")
            subscription = stream.items.subscribe(lambda _item: None)
            subscription.dispose()
            assert not stream.connected
        assert no_new_threads(before)


def test_dispose_from_inside_the_first_event_during_start_up() -> None:
    with FakeStreamServer([tweet_doc(n) for n in range(200)], keepalive_interval=0.05) as server:
        before = set(live_threads())
        client = StreamingClient("t0ken", base_url=server.url)
        stream = client.firehose_stream(partitions="all")
        holder: list[Any] = []
        seen = threading.Event()

        def on_item(_item: Any) -> None:
            seen.set()
            if holder:
                holder[0].dispose()

        holder.append(stream.items.subscribe(on_item))
        holder[0].dispose()
        assert no_new_threads(before)
        assert not stream.connected


def test_dispose_racing_a_partitions_reconnect_wait() -> None:
    with FakeStreamServer([tweet_doc(n) for n in range(400)], keepalive_interval=0.05) as server:
        for partition in range(1, 21):
            server.script(Attempt(messages=1, ending="cut"), partition=partition)
            server.script(Attempt(status=503), partition=partition)
        before = set(live_threads())
        client = StreamingClient(
            "t0ken",
            base_url=server.url,
            reconnect=ReconnectPolicy(network_wait_step=0.2, http_wait_start=0.5),
        )
        stream = client.firehose_stream(partitions="all")
        events: list[StreamEvent] = []
        lock = threading.Lock()

        def on_item(item: Any) -> None:
            if isinstance(item, StreamEvent):
                with lock:
                    events.append(item)

        subscription = stream.items.subscribe(on_item)
        assert wait_until(
            lambda: sum(type(e).__name__ == "Reconnecting" for e in list(events)) >= 20, 3
        )
        started = time.monotonic()
        subscription.dispose()
        assert no_new_threads(before, 1.0)
        assert time.monotonic() - started < 1.0
        time.sleep(0.3)
        assert not stream.connected
        assert sum(isinstance(e, Disconnected) for e in events) <= 1


def test_a_subscriber_raising_on_one_partition_thread_ends_once_and_cleans_up() -> None:
    with FakeStreamServer([tweet_doc(n) for n in range(400)], keepalive_interval=0.05) as server:
        before = set(live_threads())
        client = StreamingClient("t0ken", base_url=server.url)
        stream = client.firehose_stream(partitions="all")
        ended: list[BaseException] = []
        disconnects: list[Disconnected] = []
        per_partition: dict[int, list[int]] = {}

        def on_item(item: Any) -> None:
            if isinstance(item, Disconnected):
                disconnects.append(item)
                return
            if isinstance(item, StreamEvent):
                return
            n = int(item.value.data.id)
            per_partition.setdefault(n % 20, []).append(n)
            if n == 37:
                raise RuntimeError("subscriber bug")

        stream.items.subscribe(on_item, ended.append)
        assert wait_until(lambda: bool(ended), 3)
        assert no_new_threads(before)
        time.sleep(0.1)
        assert len(ended) == 1 and str(ended[0]) == "subscriber bug"
        assert disconnects == [Disconnected()]
        assert all(part == sorted(part) for part in per_partition.values())


@pytest.mark.parametrize("ids", [[[{}]], [{}], [None], [[1]]])
def test_nested_junk_in_edit_tweet_ids_is_a_value_error_when_read(ids: Any) -> None:
    # Module contract: a malformed value raises ValueError where it is read (never TypeError).
    try:
        response = to_compliance_response({"data": {"tweet_edit": {"edit_tweet_ids": ids}}})
    except ValueError:
        return  # refused by the converter: malformed, counted
    with pytest.raises(ValueError, match="not an id"):
        _ = response.event.edit_tweet_ids  # type: ignore[union-attr]


def test_malformed_compliance_messages_are_counted_and_the_stream_goes_on() -> None:
    junk: list[Any] = [
        {"data": {"delete": {"tweet": {"id": [1]}, "event_at": 5}}},
        {"data": {"user_suspend": "x"}},
        {"data": {"tweet_edit": {"edit_tweet_ids": "12"}}},
        {"data": []},
        [1, 2],
    ]
    good = {"data": {"delete": {"tweet": {"id": str(10**30), "author_id": "2"}}}}
    with FakeStreamServer(endpoint_messages={"compliance_tweets": [*junk, good]}) as server:
        client = StreamingClient("t0ken", base_url=server.url)
        stream = client.compliance_stream("tweets", partitions="all")
        got: list[Any] = []
        ended: list[BaseException] = []
        subscription = stream.items.subscribe(got.append, ended.append)
        assert wait_until(
            lambda: (
                stream.stats.malformed == len(junk)
                and any(getattr(i, "value", None) is not None for i in got)
            ),
            3,
        ), stream.stats.snapshot()
        assert not ended
        values = [i.value for i in got if getattr(i, "value", None) is not None]
        assert values[-1].event.tweet_id == 10**30
        subscription.dispose()
