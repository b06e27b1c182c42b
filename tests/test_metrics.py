"""metrics_of (stream.metrics): exact figures in virtual time, and the passive tap under it."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
import reactivex
from reactivex.testing import ReactiveTest, TestScheduler

from rxtweet.errors import StallError, TwitterServerError
from rxtweet.events import (
    Connected,
    Disconnected,
    Errored,
    KeepAlive,
    MalformedMessage,
    Overflowed,
    Reconnecting,
)
from rxtweet.metrics import SNOWFLAKE_EPOCH_MS, StreamMetrics, cause_label, metrics_of
from rxtweet.operators.share import SharedConnection
from rxtweet.parse import Parsed, ParseStats
from rxtweet.v1.convert import to_v1_message
from rxtweet.v2.convert import to_stream_response

on_next = ReactiveTest.on_next

#: The virtual clock's origin (Unix seconds): lags are computed against it.
T0 = 1_700_000_000.0


def tweet_id(created: float, sequence: int = 0) -> str:
    """A Snowflake id whose timestamp is ``created`` (Unix seconds, ms precision)."""
    return str(((round(created * 1000) - SNOWFLAKE_EPOCH_MS) << 22) | sequence)


def v2_tweet(created: float) -> Parsed[Any]:
    raw = b'{"data":{"id":"%s","text":"hi"}}' % tweet_id(created).encode()
    return Parsed(to_stream_response({"data": {"id": tweet_id(created), "text": "hi"}}), raw)


def v1(doc: dict[str, Any], raw: bytes = b"{}") -> Parsed[Any]:
    return Parsed(to_v1_message(doc), raw)


class FakeStream:
    """What metrics_of needs of a stream: shared items, stats, connection, connected."""

    def __init__(self, source: reactivex.Observable[Any], stats: Any = None) -> None:
        self._shared: SharedConnection[Any] = SharedConnection(source)
        self.items = self._shared.observable
        self.stats = stats if stats is not None else ParseStats()
        self.connection = SimpleNamespace(partitions=())

    @property
    def connected(self) -> bool:
        return self._shared.connected


def run(
    scheduler: TestScheduler,
    stream: Any,
    *,
    interval: float = 100,
    subscribe_at: float = 50,
    metrics_at: float = 0,
    until: float = 1000,
) -> list[StreamMetrics]:
    """Subscribe metrics at ``metrics_at`` and a consumer at ``subscribe_at``; run to
    ``until``; the snapshots."""
    out: list[StreamMetrics] = []
    metrics = metrics_of(stream, interval, scheduler=scheduler, clock=lambda: T0 + scheduler.clock)
    scheduler.schedule_absolute(metrics_at, lambda *_: metrics.subscribe(out.append))
    scheduler.schedule_absolute(subscribe_at, lambda *_: stream.items.subscribe(lambda _: None))
    scheduler.advance_to(until)
    return out


def test_counts_rates_and_lag_per_interval_exactly() -> None:
    scheduler = TestScheduler()
    # Tweets created 2, 4 and 6 s before they arrive at t=110, 120, 130; one at t=250 made
    # 0.5 s before.
    source = scheduler.create_hot_observable(
        on_next(60, Connected()),
        on_next(110, v2_tweet(T0 + 110 - 2)),
        on_next(120, v2_tweet(T0 + 120 - 4)),
        on_next(130, v2_tweet(T0 + 130 - 6)),
        on_next(140, KeepAlive()),
        on_next(150, Parsed(to_stream_response({"errors": [{"title": "x"}]}), b"12345")),
        on_next(160, MalformedMessage(b"{", "truncated JSON")),
        on_next(210, Reconnecting(1, 0.0, StallError(20))),
        on_next(220, Reconnecting(2, 1.0, TwitterServerError(503))),
        on_next(230, Overflowed(7, 7)),
        on_next(240, Connected()),
        on_next(250, v2_tweet(T0 + 250 - 0.5)),
    )
    snaps = run(scheduler, FakeStream(source), until=450)

    assert [s.time - T0 for s in snaps] == [100, 200, 300, 400]
    assert [s.interval for s in snaps] == [100, 100, 100, 100]
    first, second, third, fourth = snaps
    assert (first.messages, first.tweets, first.keep_alives) == (0, 0, 0)
    assert first.partitions[None].state == "connected"

    assert (second.messages, second.tweets, second.keep_alives, second.malformed) == (4, 3, 1, 1)
    assert second.bytes == 3 * len(v2_tweet(T0).raw) + 5
    assert second.messages_per_second == pytest.approx(0.04)
    assert second.tweets_per_second == pytest.approx(0.03)
    assert (second.lag_p50, second.lag_p99, second.lag_max) == pytest.approx((4.0, 6.0, 6.0))
    assert (second.lag_count, second.lag_sum) == (3, pytest.approx(12.0))
    assert second.reconnects == 0

    assert third.reconnects == 2
    assert dict(third.reconnect_causes) == {"stall": 1, "http_503": 1}
    assert third.overflow_drops == 7
    assert (third.tweets, third.lag_p50, third.lag_max) == (1, pytest.approx(0.5), 0.5)
    assert third.partitions[None] == third.partitions[None].__class__("connected", 1, 2)

    assert (fourth.messages, fourth.lag_p50, fourth.lag_count) == (0, None, 0)


def test_subscribing_opens_no_connection_and_sees_only_the_consumers_items() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(110, v2_tweet(T0)),
        on_next(260, Connected()),
        on_next(310, v2_tweet(T0)),
        on_next(320, v2_tweet(T0)),
    )
    stream = FakeStream(source)
    snaps: list[StreamMetrics] = []
    metrics_of(stream, 100, scheduler=scheduler, clock=lambda: T0 + scheduler.clock).subscribe(
        snaps.append
    )
    scheduler.advance_to(250)
    assert source.subscriptions == []  # the metrics alone subscribed to nothing
    assert not stream.connected
    consumer = stream.items.subscribe(lambda _: None)
    scheduler.advance_to(350)
    assert len(source.subscriptions) == 1
    consumer.dispose()  # the tap does not keep the connection open
    assert not stream.connected
    scheduler.advance_to(450)
    # The tweet at 110 came while nobody was subscribed: the stream did not receive it.
    assert [s.messages for s in snaps] == [0, 0, 0, 2]
    assert [s.partitions[None].state for s in snaps] == [
        "disconnected",
        "disconnected",
        "connected",
        "disconnected",
    ]


def test_v1_notices_limit_disconnect_and_falling_behind() -> None:
    scheduler = TestScheduler()
    status = {
        "id": int(tweet_id(T0 + 105 - 3)),
        "id_str": tweet_id(T0 + 105 - 3),
        "text": "x",
        "user": {"id": 1, "id_str": "1", "screen_name": "a"},
        "in_reply_to_status_id": None,
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
    }
    source = scheduler.create_hot_observable(
        on_next(105, v1(status)),
        on_next(110, v1({"limit": {"track": 12}})),
        on_next(120, v1({"limit": {"track": 40}})),
        on_next(
            130, v1({"warning": {"code": "FALLING_BEHIND", "message": "m", "percent_full": 60}})
        ),
        on_next(140, v1({"disconnect": {"code": 4, "stream_name": "s", "reason": "stall"}})),
        on_next(
            150,
            Parsed(to_stream_response({"errors": [{"title": "operational-disconnect"}]}), b"{}"),
        ),
    )
    (_, snap, *_) = run(scheduler, FakeStream(source), until=250)
    assert (snap.messages, snap.tweets) == (6, 1)
    assert (snap.limit_notices, snap.limit_track) == (2, 40)
    assert (snap.falling_behind, snap.percent_full) == (1, 60)
    assert snap.operational_disconnects == 2
    assert snap.lag_max == pytest.approx(3.0)


def test_partition_states_and_counts_on_a_partitioned_stream() -> None:
    scheduler = TestScheduler()
    part1, part2 = ParseStats(), ParseStats()
    stats = SimpleNamespace(parts=(part1, part2), duplicates=0)
    source = scheduler.create_hot_observable(
        on_next(60, Connected(partition=1)),
        on_next(60, Connected(partition=2)),
        on_next(120, Reconnecting(1, 1.0, ConnectionResetError(), partition=2)),
        on_next(130, Errored(RuntimeError("x"), partition=1)),
    )
    stream = FakeStream(source, stats)
    stream.connection = SimpleNamespace(partitions=(1, 2))
    # The partitions' parse counters move as their connections parse.
    scheduler.schedule_absolute(150, lambda *_: setattr(part1, "messages", 5))
    scheduler.schedule_absolute(150, lambda *_: setattr(part2, "messages", 2))
    scheduler.schedule_absolute(160, lambda *_: setattr(stats, "duplicates", 3))
    first, second = run(scheduler, stream, until=250)
    assert {p: m.state for p, m in first.partitions.items()} == {1: "connected", 2: "connected"}
    assert {p: m.state for p, m in second.partitions.items()} == {
        1: "errored",
        2: "reconnecting",
    }
    assert {p: m.messages for p, m in second.partitions.items()} == {1: 5, 2: 2}
    assert second.partitions[2].reconnects == 1
    assert dict(second.reconnect_causes) == {"network": 1}
    assert (first.duplicates, second.duplicates) == (0, 3)
    assert first.connected == 2 and second.connected == 0


def test_disconnected_ends_the_state_and_a_new_connection_is_seen() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(10, Connected()),
        on_next(20, v2_tweet(T0)),
        on_next(30, Disconnected()),
        ReactiveTest.on_completed(40),
    )
    stream = FakeStream(source)
    snaps: list[StreamMetrics] = []
    metrics_of(stream, 100, scheduler=scheduler, clock=lambda: T0 + scheduler.clock).subscribe(
        snaps.append
    )
    scheduler.schedule_absolute(50, lambda *_: stream.items.subscribe(lambda _: None))
    scheduler.schedule_absolute(250, lambda *_: stream.items.subscribe(lambda _: None))
    scheduler.advance_to(350)
    assert [s.messages for s in snaps] == [1, 0, 1]
    assert [s.partitions[None].state for s in snaps] == ["disconnected"] * 3
    assert len(source.subscriptions) == 2


def test_dispose_detaches_the_tap_and_stops_the_snapshots() -> None:
    scheduler = TestScheduler()
    seen: list[Any] = []
    source = scheduler.create_hot_observable(on_next(110, v2_tweet(T0)), on_next(210, KeepAlive()))
    stream = FakeStream(source)
    stream._shared.tap(seen.append)  # another tap stays attached
    snaps: list[StreamMetrics] = []
    sub = metrics_of(
        stream, 100, scheduler=scheduler, clock=lambda: T0 + scheduler.clock
    ).subscribe(snaps.append)
    stream.items.subscribe(lambda _: None)
    scheduler.advance_to(150)
    sub.dispose()
    scheduler.advance_to(400)
    assert [s.tweets for s in snaps] == [0]
    assert len(seen) == 2  # the other tap was not disturbed
    assert stream._shared.subscribers == 1


def test_interval_must_be_positive_and_the_stream_tappable() -> None:
    with pytest.raises(ValueError, match="interval"):
        metrics_of(SimpleNamespace(), 0)
    with pytest.raises(TypeError, match="passively"):
        metrics_of(SimpleNamespace(items=reactivex.of(1)), 1.0).subscribe()


def test_cause_labels() -> None:
    assert cause_label(TwitterServerError(503)) == "http_503"
    assert cause_label(StallError(20)) == "stall"
    assert cause_label(ConnectionResetError()) == "network"
    assert cause_label(None) == "closed"
    assert cause_label(KeyError("k")) == "KeyError"


# --- the passive tap ------------------------------------------------------------------------


def test_tap_sees_every_share_and_is_not_a_subscriber() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"))
    shared: SharedConnection[str] = SharedConnection(xs)
    seen: list[str] = []
    tap = shared.observable.tap(seen.append)
    scheduler.advance_to(100)
    assert xs.subscriptions == [] and shared.subscribers == 0
    first = shared.observable.subscribe(lambda _: None)
    scheduler.advance_to(150)
    first.dispose()
    assert not shared.connected
    shared.observable.subscribe(lambda _: None)  # a fresh connection: tapped too
    scheduler.advance_to(200)
    assert seen == ["a", "b", "a", "b"]
    tap.dispose()
    tap.dispose()  # idempotent
    shared.observable.subscribe(lambda _: None)
    scheduler.advance_to(300)
    assert seen == ["a", "b", "a", "b"]


def test_tap_attached_mid_share_sees_the_rest() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(110, 1), on_next(130, 2))
    shared: SharedConnection[int] = SharedConnection(xs)
    shared.observable.subscribe(lambda _: None)
    seen: list[int] = []
    scheduler.schedule_absolute(120, lambda *_: shared.tap(seen.append))
    scheduler.advance_to(200)
    assert seen == [2]


def test_importing_rxtweet_metrics_works_without_prometheus_client() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import rxtweet, rxtweet.metrics\n"
        "from rxtweet.metrics import metrics_of, StreamMetrics\n"
        "try:\n"
        "    rxtweet.metrics.serve_prometheus(object(), port=0)\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert "ImportError:" in result.stdout
    assert "pip install rxtweet[metrics]" in result.stdout


def test_a_busy_interval_measures_every_tweet_up_to_lag_exact_then_one_in_lag_stride() -> None:
    """The lag of each tweet is most of what metrics cost a message: past LAG_EXACT tweets
    in an interval only one in LAG_STRIDE is measured (the counts stay exact)."""
    import reactivex
    from reactivex.testing import TestScheduler

    from rxtweet.metrics import LAG_EXACT, LAG_STRIDE, metrics_of
    from rxtweet.parse import Parsed
    from rxtweet.v2.convert import to_stream_response

    now = 1_800_000_000.0
    tweet_id = str(int((now - 2.0) * 1000 - 1288834974657) << 22)
    item = Parsed(to_stream_response({"data": {"id": tweet_id, "text": "x"}}), b"x")
    total = LAG_EXACT + 10 * LAG_STRIDE

    from rxtweet.operators.share import SharedConnection

    class Stream:
        stats = None
        connection = None
        connected = True

        def __init__(self) -> None:
            self.items = SharedConnection(reactivex.from_iterable([item] * total)).observable

    stream = Stream()
    scheduler = TestScheduler()
    out: list[Any] = []
    metrics_of(stream, 10, scheduler=scheduler, clock=lambda: now).subscribe(out.append)
    stream.items.subscribe(lambda _: None)
    scheduler.advance_to(10)
    (snapshot,) = out
    assert snapshot.tweets == total
    assert snapshot.lag_count == LAG_EXACT + 10
    assert snapshot.lag_p50 == pytest.approx(2.0)
