"""Hostile review of the metrics (issue 16, sections 2-3) and NATS JetStream (issue 18) code.

Each test is a way a hostile server, a careless user or a slow consumer broke (or tried to
break) the code: a raising tap, lying tweet ids, a flood between two scrapes, junk HTTP
against the exporter, a refusing or missing NATS server, odd names, credentials in URLs.
Real servers on 127.0.0.1 (the exporter's HTTP server, ``nats-server -js``), virtual time
for the periodic snapshots.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import tracemalloc
import urllib.request
from types import SimpleNamespace
from typing import Any

import pytest
import reactivex
from nats_servers import NatsServer, nats_server, wait_for
from reactivex.testing import ReactiveTest, TestScheduler

from rxtweet import Parsed, StreamingClient
from rxtweet.events import Connected
from rxtweet.metrics import (
    LAG_EXACT,
    MAX_LAG_SAMPLES,
    SNOWFLAKE_EPOCH_MS,
    StreamMetrics,
    metrics_of,
)
from rxtweet.operators.share import SharedConnection
from rxtweet.parse import ParseStats
from rxtweet.testing import FakeStreamServer
from rxtweet.v1.convert import to_v1_message
from rxtweet.v2.convert import to_stream_response

__all__ = ["nats_server"]  # the fixture, imported for pytest

on_next = ReactiveTest.on_next

T0 = 1_700_000_000.0


def snowflake(created: float) -> str:
    return str((round(created * 1000) - SNOWFLAKE_EPOCH_MS) << 22)


def v1_status(tweet_id: int) -> Parsed[Any]:
    doc = {
        "id": tweet_id,
        "id_str": str(tweet_id),
        "text": "x",
        "user": {"id": 1, "id_str": "1", "screen_name": "a"},
        "in_reply_to_status_id": None,
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
    }
    return Parsed(to_v1_message(doc), b"{}")


def v2(tweet_id: str) -> Parsed[Any]:
    doc = {"data": {"id": tweet_id, "text": "hi"}}
    return Parsed(to_stream_response(doc), b'{"data":{"id":"%s"}}' % tweet_id.encode())


class FakeStream:
    """What metrics_of and the collector need of a stream."""

    def __init__(self, source: reactivex.Observable[Any]) -> None:
        self._shared: SharedConnection[Any] = SharedConnection(source)
        self.items = self._shared.observable
        self.stats = ParseStats()
        self.connection = SimpleNamespace(partitions=())

    @property
    def connected(self) -> bool:
        return self._shared.connected


# -- the passive tap ---------------------------------------------------------------------------


def test_a_raising_tap_neither_ends_the_stream_nor_hides_items_from_subscribers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shared: SharedConnection[int] = SharedConnection(reactivex.of(1, 2, 3))

    def broken(item: int) -> None:
        raise RuntimeError(f"tap bug at {item}")

    tap = shared.tap(broken)
    got: list[int] = []
    ended: list[str] = []
    with caplog.at_level(logging.ERROR):
        shared.observable.subscribe(
            got.append, lambda e: ended.append(f"error {e}"), lambda: ended.append("done")
        )
    tap.dispose()
    assert got == [1, 2, 3]
    assert ended == ["done"]
    assert "tap bug" in caplog.text  # told, not swallowed silently


# -- lag from lying ids --------------------------------------------------------------------------


def test_lying_tweet_ids_neither_crash_the_stream_nor_pollute_the_lag() -> None:
    scheduler = TestScheduler()
    huge = "9" * 400  # parses as an int; its Snowflake time does not fit a float
    future = snowflake(T0 + 86_400 * 365)  # "created" a year from now
    negative = "-4194304000"
    source = scheduler.create_hot_observable(
        on_next(60, Connected()),
        on_next(110, v2(snowflake(T0 + 110 - 2))),  # a true lag of 2 s
        on_next(120, v2(huge)),
        on_next(130, v2(future)),
        on_next(140, v1_status(int(negative))),
        on_next(150, v1_status(int(huge))),
        on_next(160, v2(snowflake(T0 + 160 - 4))),  # a true lag of 4 s
    )
    stream = FakeStream(source)
    out: list[StreamMetrics] = []
    got: list[Any] = []
    errors: list[Exception] = []
    metrics = metrics_of(stream, 100, scheduler=scheduler, clock=lambda: T0 + scheduler.clock)
    scheduler.schedule_absolute(0, lambda *_: metrics.subscribe(out.append))
    scheduler.schedule_absolute(50, lambda *_: stream.items.subscribe(got.append, errors.append))
    scheduler.advance_to(200)
    assert errors == [] and len(got) == 7  # the stream went on
    second = out[1]
    assert second.tweets == 6  # every tweet counted ...
    assert (second.lag_count, second.lag_p50, second.lag_max) == (2, 2.0, 4.0)  # ... lag: true ones
    assert second.lag_sum == pytest.approx(6.0)


def test_lag_samples_stay_bounded_when_nobody_collects_for_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A scrape that does not come for an hour (Prometheus down) must not keep every sample.
    # A stride of 8 (the library's is 64): the flood then passes MAX_LAG_SAMPLES sooner.
    from rxtweet.metrics import stream as metrics_stream

    monkeypatch.setattr(metrics_stream, "LAG_STRIDE", 8)
    monkeypatch.setattr(metrics_stream, "_LAG_MASK", 7)
    stride = 8
    scheduler = TestScheduler()
    tweet = v2(snowflake(T0 - 1))
    flood = 200_000  # past LAG_EXACT one in 8 is measured: ~1.6 x MAX_LAG_SAMPLES
    stream = FakeStream(reactivex.from_iterable(tweet for _ in range(flood)))
    out: list[StreamMetrics] = []
    metrics = metrics_of(stream, 100, scheduler=scheduler, clock=lambda: T0)
    metrics.subscribe(out.append)
    tracemalloc.start()
    try:
        stream.items.subscribe(lambda _: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_500_000, f"{peak} bytes held for {flood} lag samples"
    scheduler.advance_to(100)
    (snapshot,) = out
    # Exact where exactness is cheap: count, sum, max; the quantiles from a sample.
    measured = 0
    for n in range(1, flood + 1):  # every tweet up to LAG_EXACT, then one in `stride`
        if measured < LAG_EXACT or n % stride == 0:
            measured += 1
    assert measured > MAX_LAG_SAMPLES  # the reservoir is exercised
    assert snapshot.tweets == flood
    assert snapshot.lag_count == measured
    assert snapshot.lag_sum == pytest.approx(measured * 1.0)
    assert snapshot.lag_max == snapshot.lag_p50 == snapshot.lag_p99 == pytest.approx(1.0)


# -- the Prometheus exporter -------------------------------------------------------------------


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2.0) as response:
        return str(response.read().decode())


def test_the_exporter_survives_junk_requests_and_slow_clients() -> None:
    from rxtweet.metrics import serve_prometheus

    stream = FakeStream(reactivex.never())
    with serve_prometheus(stream, port=0, name="s") as server:
        assert server.addr == "127.0.0.1"  # only this machine, by default
        idle = socket.create_connection((server.addr, server.port))  # says nothing, stays
        half = socket.create_connection((server.addr, server.port))
        half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never ends its headers
        for junk in (
            b"\x00\xff\r\n\r\n",
            b"BREW /../../etc/passwd HTTP/1.1\r\n\r\n",
            b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nX: " + b"b" * 200_000 + b"\r\n\r\n",
            b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nabc",
        ):
            with socket.create_connection((server.addr, server.port), timeout=2.0) as sock:
                try:
                    sock.sendall(junk)
                    sock.shutdown(socket.SHUT_WR)
                    sock.recv(100)
                except OSError:
                    pass  # reset by the server: fine, as long as it serves the next one
        started = time.monotonic()
        assert "rxtweet_messages_total" in scrape(server.url)
        assert time.monotonic() - started < 1.0
        idle.close()
        half.close()


def test_a_taken_port_fails_clearly_and_leaves_no_tap_behind() -> None:
    from rxtweet.metrics import serve_prometheus

    stream = FakeStream(reactivex.never())
    with serve_prometheus(stream, port=0, name="first") as server:
        with pytest.raises(OSError, match="in use"):
            serve_prometheus(stream, port=server.port, name="second")
        assert len(stream._shared._taps) == 1  # the failed one's tap is gone


def test_stream_labels_never_carry_credentials_or_queries_and_odd_names_are_escaped() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from rxtweet.metrics import StreamCollector
    from rxtweet.metrics.prometheus import stream_name

    def stream_at(url: str) -> Any:
        fake = FakeStream(reactivex.never())
        fake.connection = SimpleNamespace(partitions=(), request=SimpleNamespace(url=url))
        return fake

    assert stream_name(stream_at("https://u:hunter2@api.x.com")) == "/"
    assert (
        stream_name(stream_at("https://api.x.com/2/tweets/search/stream?token=hunter2"))
        == "/2/tweets/search/stream"
    )
    assert stream_name(stream_at("http://u:hunter2@127.0.0.1:9/2/tweets/sample/stream")) == (
        "/2/tweets/sample/stream"
    )
    from prometheus_client import CollectorRegistry, generate_latest

    odd = 'a"b\\c\nd \udcff\u00e9'
    registry = CollectorRegistry(auto_describe=False)
    collector = StreamCollector(FakeStream(reactivex.never()), name=odd)
    registry.register(collector)
    text = generate_latest(registry).decode()
    collector.close()
    names = {
        sample.labels["stream"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert len(names) == 1 and "hunter2" not in text
    (name,) = names
    assert name.startswith('a"b\\c\nd ') and name.endswith("\u00e9")  # round-trips, readable


# -- NATS JetStream ------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_credentials_in_the_servers_url_never_reach_errors_logs_or_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rxtweet.nats import consume, publish

    url = f"nats://ingest:hunter2@127.0.0.1:{closed_port()}"
    publisher = publish(url, connect_timeout=0.4)
    workers = consume(url, durable="w", connect_timeout=0.4)
    errors: list[Exception] = []
    done = threading.Event()
    client = StreamingClient("t0ken", base_url=f"http://127.0.0.1:{closed_port()}")
    with caplog.at_level(logging.DEBUG):
        subscription = publisher.publish(client.sample_stream()).subscribe(
            on_error=lambda e: (errors.append(e), done.set())
        )
        assert done.wait(2.5)
        subscription.dispose()
        done.clear()
        worker = workers.subscribe(on_error=lambda e: (errors.append(e), done.set()))
        assert done.wait(2.5)
        worker.dispose()
    assert [type(e) for e in errors] == [ConnectionError, ConnectionError]
    told = " ".join([*map(str, errors), *map(repr, errors), repr(publisher), repr(workers)])
    told += caplog.text
    assert "127.0.0.1" in told and "hunter2" not in told


@pytest.mark.parametrize("bad", ["a b", "a.b", "x*", "x>", "", "a/b", "a\tb"])
def test_stream_and_durable_names_nats_cannot_take_are_refused_at_once(bad: str) -> None:
    from rxtweet.nats import consume, publish

    with pytest.raises(ValueError, match="name"):
        publish("nats://127.0.0.1:4222", stream_name=bad)
    with pytest.raises(ValueError, match="name"):
        consume("nats://127.0.0.1:4222", stream_name=bad, durable="w")
    with pytest.raises(ValueError, match="name"):
        consume("nats://127.0.0.1:4222", durable=bad)


def store_tweets(server: NatsServer, count: int, **options: Any) -> Any:
    from rxtweet.nats import publish

    lines = [{"data": {"id": snowflake(T0 + i), "text": "t"}} for i in range(count)]
    with FakeStreamServer(lines, keepalive_interval=0.05, match_rules=False) as fake:
        publisher = publish(server.url, **options)
        client = StreamingClient("t0ken", base_url=fake.url)
        subscription = publisher.publish(client.sample_stream()).subscribe(lambda _: None)
        assert wait_for(lambda: publisher.stats.acked == count, timeout=2.0)
        subscription.dispose()
    return publisher


def test_dead_letters_are_counted_by_the_durables_own_max_deliver(
    nats_server: NatsServer,
) -> None:
    # A durable made elsewhere (the nats CLI ...) with max_deliver=2 and a setting JetStream
    # cannot update, joined by a worker that asks for 5: it is shared as it is, the server
    # stops redelivering after 2 deliveries, so the 2nd failure is the dead letter.
    import asyncio

    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    from rxtweet.nats import consume

    store_tweets(nats_server, 1)

    async def make_durable() -> None:
        client = await nats.connect(nats_server.url)
        await client.jetstream().add_consumer(
            "RXTWEET",
            ConsumerConfig(
                durable_name="w",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.LAST,
                max_deliver=2,
                ack_wait=5.0,
            ),
        )
        await client.close()

    asyncio.run(make_durable())
    calls: list[int] = []

    def poison(_: Any) -> None:
        calls.append(1)
        raise ValueError("poison")

    workers = consume(
        nats_server.url, durable="w", max_deliver=5, nak_delay=0.05, fetch_timeout=0.1
    )
    subscription = workers.subscribe(poison)
    try:
        assert wait_for(lambda: workers.stats.dead_lettered == 1, timeout=2.0), (
            workers.stats.snapshot()
        )
        assert (len(calls), workers.stats.nacked) == (2, 1)
    finally:
        subscription.dispose()
