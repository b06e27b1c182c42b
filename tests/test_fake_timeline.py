"""Timeline mode of rxtweet.testing.FakeStreamServer, over real HTTP (requests, stream=True).

Each test runs a real server on 127.0.0.1 with a large time scale, so server minutes pass
in fractions of a real second. The server's own clock (``server.now``) and timeline
(``server.published``) are the reference every received message is checked against.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import requests
from support import wait_until

from rxtweet.testing import (
    Attempt,
    FakeStreamServer,
    Timeline,
    generate_compliance_messages,
    generate_v2_messages,
    snowflake_id,
    snowflake_time,
)

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0  # a whole second: windows of whole seconds fall on message times
SAMPLE = "/2/tweets/sample/stream"
FIREHOSE = "/2/tweets/firehose/stream"
PROBLEMS = "https://api.twitter.com/2/problems/"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rxtweet-fake-server")]


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    yield
    assert server_threads() == [], "a FakeStreamServer thread outlived its test"


class Reader:
    """Reads one stream response on a thread of its own, collecting its non-empty lines."""

    def __init__(self, url: str, **params: Any) -> None:
        self.url = url
        self.params = params
        self.lines: list[bytes] = []
        self.times: list[float] = []  # monotonic arrival time of each line
        self.status = 0
        self.error: BaseException | None = None
        self.clean_end = False
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with requests.get(self.url, params=self.params, stream=True, timeout=(2, 3)) as r:
                self.status = r.status_code
                for line in r.iter_lines():
                    if line:
                        self.times.append(time.monotonic())
                        self.lines.append(line)
                self.clean_end = True
        except BaseException as exc:  # recorded for the test to look at
            self.error = exc
        finally:
            self.done.set()

    @property
    def ids(self) -> list[str]:
        return [orjson.loads(line)["data"]["id"] for line in list(self.lines)]

    def wait_lines(self, n: int, timeout: float = 2.0) -> list[str]:
        assert wait_until(lambda: len(self.lines) >= n or self.done.is_set(), timeout)
        return self.ids

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive()


def tweets(n: int | None = None, seed: int = 7) -> Any:
    source = generate_v2_messages(seed=seed)
    return source if n is None else itertools.islice(source, n)


def test_clock_scales_real_time_and_needs_timeline_mode() -> None:
    with FakeStreamServer(timeline=Timeline(time_scale=600.0, start=T0)) as server:
        real0, first = time.monotonic(), server.now()
        time.sleep(0.1)
        second, real1 = server.now(), time.monotonic()
        assert T0 <= first < T0 + 600.0 * (time.monotonic() - real0) + 1e-6
        # 1 real second = 600 server seconds (10 minutes)
        assert 600.0 * 0.1 <= second - first <= 600.0 * (real1 - real0) + 1e-6
    with FakeStreamServer() as plain, pytest.raises(RuntimeError, match="timeline"):
        plain.now()
    with pytest.raises(ValueError, match="time_scale"):
        Timeline(time_scale=0)
    with pytest.raises(ValueError, match="Snowflake"):
        Timeline(start=1_000_000_000.0)


def test_messages_are_published_while_nobody_is_connected_with_snowflake_ids() -> None:
    # rate 10/server s, 100x: 1000 messages per real second; 40 messages in 40 ms.
    timeline = Timeline(rate=10.0, time_scale=100.0, start=T0)
    with FakeStreamServer(messages=tweets(40), timeline=timeline) as server:
        assert wait_until(lambda: len(server.published()) == 40, 2.0)
        published = server.timeline_messages()
        assert [m.seq for m in published] == list(range(40))
        for message in published:
            assert message.time == pytest.approx(T0 + message.seq / 10.0)
            doc = orjson.loads(message.line)
            tweet_id = doc["data"]["id"]
            assert (
                tweet_id == message.id == str(snowflake_id(int(message.time * 1000), message.seq))
            )
            assert snowflake_time(tweet_id) == pytest.approx(message.time, abs=1e-3)
            assert doc["data"]["edit_history_tweet_ids"] == [tweet_id]
            created = datetime.fromisoformat(doc["data"]["created_at"].replace("Z", "+00:00"))
            assert created.timestamp() == pytest.approx(message.time, abs=1e-3)
        ids = [int(m.id) for m in published]
        assert ids == sorted(set(ids))
        # Nobody connected, nothing sent; the source is dry, so the timeline stopped.
        assert server.sent == 0
        time.sleep(0.05)
        assert len(server.published()) == 40


def test_a_live_connection_gets_what_is_published_after_it_connected() -> None:
    timeline = Timeline(rate=20.0, time_scale=10.0, start=T0)  # 200 messages per real second
    with FakeStreamServer(messages=tweets(), timeline=timeline, keepalive_interval=0.2) as server:
        time.sleep(0.05)  # about ten messages published before anyone connects
        reader = Reader(server.url + SAMPLE)
        got = reader.wait_lines(21)
        [request] = server.wait_for_requests(1)
        assert request.kind == "live" and request.server_time is not None
        published = server.timeline_messages()
        after = [m.id for m in published if m.time > request.server_time]
        before = [m.id for m in published if m.time <= request.server_time]
        assert len(before) >= 5
        assert got[:20] == after[:20]  # in order, from the first published after it connected
        # Paced by the clock: no message reaches the client before its publish time.
        real, now = time.monotonic(), server.now()
        publish_time = {m.id: m.time for m in published}
        for arrived, tweet_id in zip(reader.times, got, strict=False):
            assert arrived >= real - (now - publish_time[tweet_id]) / 10.0 - 0.002
        assert published[-1].time <= server.now()


def test_backfill_replays_the_last_minutes_with_duplicates_then_goes_live() -> None:
    # 1 real second = 10 server minutes; one message per server second (600/real s).
    timeline = Timeline(rate=1.0, time_scale=600.0, start=T0)
    with FakeStreamServer(messages=tweets(), timeline=timeline, keepalive_interval=0.2) as server:
        time.sleep(0.2)  # two server minutes of messages nobody read
        first = Reader(server.url + SAMPLE)
        first.wait_lines(30)
        assert server.cut(endpoint="sample", ending="reset") == 1
        first.join()
        assert first.error is not None  # reset: the client sees a broken stream
        time.sleep(0.03)  # a gap of about 18 server seconds
        second = Reader(server.url + SAMPLE, backfill_minutes=1)
        second.wait_lines(150)
        _, b_request = server.wait_for_requests(2)
        assert b_request.kind == "backfill" and b_request.query["backfill_minutes"] == ["1"]
        assert b_request.server_time is not None
        published = server.timeline_messages()
        window = [m.id for m in published if m.time >= b_request.server_time - 60.0]
        got = second.ids
        assert got[:150] == window[:150]  # the last minute, in order, then live without a gap
        a_ids = set(first.ids)
        duplicates = a_ids & set(got)
        assert duplicates  # what the first connection already had is sent again
        assert len(duplicates) < len(a_ids) or len(a_ids) <= 60
        # Nothing lost: everything from the first connection's first message on is in A or B.
        position = {m.id: i for i, m in enumerate(published)}
        span = [m.id for m in published[position[first.ids[0]] : position[got[149]] + 1]]
        assert set(span) <= a_ids | set(got)
        assert b_request.sent >= 150


def test_backfill_refused_without_enterprise_access() -> None:
    timeline = Timeline(rate=5.0, time_scale=10.0, start=T0, backfill_allowed=False)
    with FakeStreamServer(messages=tweets(), timeline=timeline) as server:
        server.script(Attempt(status=503))  # not consumed by the refused request
        response = requests.get(server.url + SAMPLE, params={"backfill_minutes": "2"}, timeout=2)
        assert response.status_code == 400
        problem = response.json()
        assert problem["type"] == PROBLEMS + "invalid-request"
        assert problem["errors"][0]["parameters"] == {"backfill_minutes": ["2"]}
        assert "backfill_minutes" in problem["errors"][0]["message"]
        assert server.scripted == (Attempt(status=503),)
        # backfill_minutes=0 asks for nothing: served (here with the scripted 503).
        response = requests.get(server.url + SAMPLE, params={"backfill_minutes": "0"}, timeout=2)
        assert response.status_code == 503


def test_start_and_end_time_stream_the_window_then_close_cleanly() -> None:
    timeline = Timeline(rate=1.0, time_scale=600.0, start=T0)
    with FakeStreamServer(messages=tweets(), timeline=timeline) as server:
        assert wait_until(lambda: server.now() > T0 + 90, 2.0)
        reader = Reader(server.url + SAMPLE, start_time=iso(T0 + 30), end_time=iso(T0 + 60))
        assert reader.done.wait(2.0)
        assert reader.clean_end and reader.status == 200, reader.error
        published = server.timeline_messages()
        expected = [m.id for m in published if T0 + 30 <= m.time < T0 + 60]
        assert len(expected) == 30
        assert reader.ids == expected  # start inclusive, end exclusive, in order
        [request] = server.wait_for_requests(1)
        assert request.kind == "window" and request.sent == 30

        # An end_time in the future: the window, then live until the server clock reaches it.
        now = server.now()
        end = float(int(now) + 30)
        future = Reader(server.url + SAMPLE, start_time=iso(now - 20), end_time=iso(end))
        assert future.done.wait(2.0)
        assert future.clean_end, future.error
        assert server.now() >= end
        expected = [m.id for m in server.timeline_messages() if int(now - 20) <= m.time < end]
        assert future.ids == expected


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"start_time": "2023-11-14 22:13:20"}, "start_time"),
        ({"start_time": iso(T0 + 60), "end_time": iso(T0 + 30)}, "start_time"),
        ({"start_time": iso(T0 - 90_000), "end_time": iso(T0 + 30)}, "start_time"),
        ({"start_time": iso(T0), "backfill_minutes": "2"}, "backfill_minutes"),
    ],
)
def test_bad_windows_get_xs_400(params: dict[str, str], parameter: str) -> None:
    timeline = Timeline(rate=1.0, time_scale=600.0, start=T0)
    with FakeStreamServer(messages=tweets(), timeline=timeline) as server:
        response = requests.get(server.url + SAMPLE, params=params, timeout=2)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["title"] == "Invalid Request"
        assert problem["type"] == PROBLEMS + "invalid-request"
        assert parameter in problem["errors"][0]["parameters"]


def test_two_redundant_connections_both_get_everything_and_a_third_gets_429() -> None:
    timeline = Timeline(rate=20.0, time_scale=10.0, start=T0)
    with FakeStreamServer(messages=tweets(), timeline=timeline, keepalive_interval=0.2) as server:
        a = Reader(server.url + FIREHOSE, partition="3")
        b = Reader(server.url + FIREHOSE, partition="3")
        server.wait_for_requests(2)
        assert wait_until(lambda: len(server.open_streams("firehose", 3)) == 2)
        third = requests.get(server.url + FIREHOSE, params={"partition": "3"}, timeout=2)
        assert third.status_code == 429
        assert third.json() == {
            "title": "ConnectionException",
            "detail": "This stream is currently at the maximum allowed connection limit.",
            "connection_issue": "TooManyConnections",
            "type": PROBLEMS + "streaming-connection",
        }
        assert third.headers["x-rate-limit-limit"] == "50"
        # Another partition is another stream: its own two connections.
        other = requests.get(
            server.url + FIREHOSE, params={"partition": "4"}, stream=True, timeout=2
        )
        assert other.status_code == 200
        other.close()
        a.wait_lines(10)
        b.wait_lines(10)
        # Each partition-3 connection gets every partition-3 message published while both
        # were open, in the same order.
        a_ids, b_ids = a.ids, b.ids
        common = [i for i in a_ids if i in set(b_ids)]
        assert len(common) >= 8
        start = a_ids.index(common[0])
        assert a_ids[start : start + len(common)] == common
        partition3 = [m.id for m in server.timeline_messages("firehose", 3)]
        assert all(m.seq % 20 + 1 == 3 for m in server.timeline_messages("firehose", 3))
        pos = partition3.index(common[0])
        assert partition3[pos : pos + len(common)] == common
        # Once one is cut, a new connection is accepted again.
        connection = server.open_streams("firehose", 3)[0].connection
        assert server.cut("firehose", 3, connection=connection) == 1
        again = Reader(server.url + FIREHOSE, partition="3")
        again.wait_lines(1)
        assert again.status == 200


def test_scripted_attempts_cut_a_connection_while_the_timeline_goes_on() -> None:
    timeline = Timeline(rate=20.0, time_scale=10.0, start=T0)
    with FakeStreamServer(messages=tweets(), timeline=timeline, keepalive_interval=0.2) as server:
        server.script(
            Attempt(messages=5, ending="cut"),
            Attempt(duration=0.1, ending="close"),
            endpoint="sample",
        )
        first = Reader(server.url + SAMPLE)
        first.join()
        assert len(first.lines) == 5
        assert isinstance(first.error, requests.exceptions.ChunkedEncodingError)
        published_then = len(server.published())
        second = Reader(server.url + SAMPLE)
        second.join()
        assert second.clean_end, second.error
        assert len(server.published()) > published_then  # the timeline went on meanwhile
        one, two = server.wait_for_requests(2)
        assert one.sent == 5 and two.sent == len(second.lines) > 5
        assert wait_until(lambda: server.requests[1].ended_at is not None)
        two = server.requests[1]
        assert two.ended_at is not None
        assert 0.09 <= two.ended_at - two.started_at < 1.0


@pytest.mark.parametrize("ending", ["close", "stall"])
def test_cut_ends_or_stalls_an_open_connection_now(ending: Any) -> None:
    timeline = Timeline(rate=20.0, time_scale=10.0, start=T0)
    with FakeStreamServer(messages=tweets(), timeline=timeline, keepalive_interval=0.05) as server:
        reader = Reader(server.url + SAMPLE)
        reader.wait_lines(3)
        assert server.cut(ending=ending) == 1
        count = len(reader.lines)
        if ending == "close":
            reader.join()
            assert reader.clean_end
        else:
            time.sleep(0.2)  # silence: not even keep-alives; the socket stays open
            assert len(reader.lines) == count and not reader.done.is_set()
            assert server.cut(ending="reset") == 1  # a stalled connection can still be reset
            reader.join()
            assert reader.error is not None
        assert server.cut() == 0  # nothing open any more


def test_non_tweet_streams_keep_their_messages_and_get_publish_times() -> None:
    timeline = Timeline(rate=10.0, time_scale=100.0, start=T0)
    source = list(itertools.islice(generate_compliance_messages("tweets"), 12))
    with FakeStreamServer(
        endpoint_messages={"compliance_tweets": source}, timeline=timeline
    ) as server:
        assert wait_until(lambda: len(server.published("compliance_tweets")) == 12)
        partition2 = server.timeline_messages("compliance_tweets", 2)
        assert [m.seq for m in partition2] == [1, 5, 9]
        assert [orjson.loads(m.line) for m in partition2] == [source[1], source[5], source[9]]
        assert [m.time for m in partition2] == pytest.approx([T0 + 0.1, T0 + 0.5, T0 + 0.9])


def test_retention_bounds_the_timeline() -> None:
    timeline = Timeline(rate=100.0, time_scale=100.0, start=T0, max_retained=50)
    with FakeStreamServer(messages=tweets(), timeline=timeline) as server:
        time.sleep(0.05)  # about 500 messages published
        published = server.timeline_messages()
        assert len(published) == 50
        assert published[-1].seq >= 400
        assert [m.seq for m in published] == list(range(published[0].seq, published[-1].seq + 1))


def test_cursor_mode_attempt_duration_and_reset() -> None:
    messages = [{"data": {"id": str(i), "text": "x"}} for i in range(5)]
    with FakeStreamServer(messages=messages, fields="all", keepalive_interval=0.05) as server:
        server.script(
            Attempt(rate=20.0, duration=0.12, ending="close"), Attempt(messages=1, ending="reset")
        )
        first = Reader(server.url + SAMPLE)
        first.join()
        assert first.clean_end and 1 <= len(first.lines) < 5
        second = Reader(server.url + SAMPLE)
        second.join()
        assert second.error is not None and len(second.lines) <= 1
        third = Reader(server.url + SAMPLE)
        third.wait_lines(5 - len(first.lines) - 1)
        # Exactly once across the three connections (the cursor mode is unchanged).
        assert first.ids + second.ids + third.ids == [str(i) for i in range(5)]
