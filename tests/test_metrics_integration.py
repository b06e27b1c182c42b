"""stream metrics and the Prometheus exporter against a scripted FakeStreamServer run."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

import orjson
import pytest
from support import wait_until

from rxtweet import StreamingClient
from rxtweet.metrics import SNOWFLAKE_EPOCH_MS, StreamMetrics, metrics_of, serve_prometheus
from rxtweet.testing import Attempt, FakeStreamServer

parser = pytest.importorskip("prometheus_client.parser", reason="needs the 'metrics' extra")

pytestmark = pytest.mark.integration

#: The lags of the ten tweets (seconds between their Snowflake time and the run's start).
LAGS = [float(k) for k in range(1, 11)]

#: A Snowflake id carries whole milliseconds, so a tweet's measured lag can exceed its
#: nominal one by the rounding in ``tweet_id`` (up to half a millisecond).
ID_ROUNDING = 0.001


def tweet_id(created: float) -> str:
    return str((round(created * 1000) - SNOWFLAKE_EPOCH_MS) << 22)


def messages(start: float) -> list[dict[str, Any]]:
    return [{"data": {"id": tweet_id(start - lag), "text": f"t{lag}"}} for lag in LAGS]


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=2) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_of_a_run_with_a_cut_known_counts_and_lag() -> None:
    start = time.time()
    sent = messages(start)
    with FakeStreamServer(messages=sent, keepalive_interval=None, fields="all") as server:
        server.script(Attempt(messages=4, ending="cut"))  # then the default: the rest, hold
        stream = StreamingClient("token", base_url=server.url).sample_stream()
        snaps: list[StreamMetrics] = []
        metrics = metrics_of(stream, 0.05).subscribe(snaps.append)
        assert wait_until(lambda: len(snaps) >= 2)
        assert server.requests == [] and not stream.connected  # metrics opened nothing
        tweets: list[Any] = []
        consumer = stream.tweets.subscribe(tweets.append)
        assert wait_until(lambda: len(tweets) == 10)
        received = time.time()
        seen = len(snaps)
        # A read is counted after its tweets were delivered (on the reader's thread): the
        # next snapshot may still miss the last read; a later one has it.
        assert wait_until(lambda: len(snaps) > seen and sum(s.tweets for s in snaps) >= 10)
        consumer.dispose()
        metrics.dispose()

    assert sum(s.messages for s in snaps) == 10
    assert sum(s.tweets for s in snaps) == 10
    # The server sends each message as compact JSON: the bytes are those lines'.
    assert sum(s.bytes for s in snaps) == sum(len(orjson.dumps(m)) for m in sent)
    assert sum(s.reconnects for s in snaps) == 1
    causes = [dict(s.reconnect_causes) for s in snaps if s.reconnects]
    assert causes == [{"network": 1}]
    # Every tweet arrived between `start` and `received`: its lag is its known age plus
    # at most that span (less at most 1 ms: the id's millisecond rounding).
    slack = received - start + ID_ROUNDING
    with_tweets = [s for s in snaps if s.lag_count]
    assert sum(s.lag_count for s in with_tweets) == 10
    total = sum(s.lag_sum for s in with_tweets)
    assert sum(LAGS) - 0.01 <= total <= sum(LAGS) + 10 * slack
    assert 10.0 - 0.001 <= max(s.lag_max or 0 for s in with_tweets) <= 10.0 + slack
    # A snapshot's state is the one at its end: the interval of the cut has tweets and may
    # end before the reconnection (a slow machine). After the last tweet: connected.
    assert all(s.partitions[None].state in ("connected", "reconnecting") for s in snaps if s.tweets)
    assert snaps[seen].partitions[None].state == "connected"


def test_prometheus_scrape_over_http() -> None:
    start = time.time()
    with FakeStreamServer(
        messages=messages(start), keepalive_interval=0.05, fields="all"
    ) as server:
        server.script(Attempt(messages=4, ending="cut"))
        stream = StreamingClient("token", base_url=server.url).sample_stream()
        with serve_prometheus(stream, port=0) as exporter:
            assert exporter.url.startswith("http://127.0.0.1:")
            before = scrape(exporter.url)
            assert server.requests == []  # serving opened no connection
            label = (("stream", "/2/tweets/sample/stream"),)
            assert before[("rxtweet_messages_total", (("partition", ""), *label))] == 0
            tweets: list[Any] = []
            consumer = stream.tweets.subscribe(tweets.append)
            assert wait_until(lambda: len(tweets) == 10)
            received = time.time()
            after = scrape(exporter.url)
            consumer.dispose()
            ended = scrape(exporter.url)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(exporter.url, timeout=0.5)

    assert after[("rxtweet_messages_total", (("partition", ""), *label))] == 10
    assert after[("rxtweet_tweets_total", label)] == 10
    assert after[("rxtweet_reconnects_total", (("cause", "network"), *label))] == 1
    assert after[("rxtweet_lag_seconds_count", label)] == 10
    slack = received - start + ID_ROUNDING
    assert after[("rxtweet_lag_seconds", (("quantile", "1"), *label))] == pytest.approx(
        10.0, abs=slack
    )
    assert after[("rxtweet_lag_seconds", (("quantile", "0.5"), *label))] == pytest.approx(
        5.0, abs=slack
    )
    state = "rxtweet_connection_state"
    assert after[(state, (("partition", ""), ("state", "connected"), *label))] == 1
    assert after[(state, (("partition", ""), ("state", "reconnecting"), *label))] == 0
    assert ended[(state, (("partition", ""), ("state", "disconnected"), *label))] == 1
    # Counters never go back; no tweet since the previous scrape: NaN quantiles.
    assert ended[("rxtweet_tweets_total", label)] == 10
    assert (
        ended[("rxtweet_lag_seconds", (("quantile", "0.5"), *label))]
        != ended[("rxtweet_lag_seconds", (("quantile", "0.5"), *label))]
    )
