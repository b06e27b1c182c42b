"""rxtweet.nats against a real ``nats-server -js`` (the pip-installed binary, on loopback).

Publishing: raw lines stored unchanged with ``Nats-Msg-Id`` = the tweet id; redundant
connections and a second ingester store each tweet once; a server restart mid-publish loses
nothing and holds the reader back meanwhile. Consuming: the same models as a live stream; a
raising handler is redelivered, then dead-lettered after ``max_deliver``; disposal is quick.
The worker-process and cluster scenarios are in ``test_nats_workers.py``.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest
from nats_servers import NatsServer, nats_server, stream_messages, tweet_id, wait_for

from rxtweet import Parsed, StreamingClient, StreamResponse
from rxtweet.nats import consume, publish
from rxtweet.nats.messages import StreamSource, endpoint_of, message_id_for, parser_for, subject_for
from rxtweet.testing import FakeStreamServer, Timeline
from rxtweet.testing.generate import generate_v2_messages
from rxtweet.v2.endpoints import ENDPOINTS

__all__ = ["nats_server"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration

CHECK_READER_THREADS = False


def messages(count: int, seed: int = 1) -> list[dict[str, Any]]:
    return list(itertools.islice(generate_v2_messages(seed=seed), count))


def ingest(fake: FakeStreamServer, server: NatsServer, **options: Any) -> tuple[Any, list[bytes]]:
    """Start publishing the fake server's sample stream; returns (publisher, raw lines seen)."""
    client = StreamingClient("t0ken", base_url=fake.url)
    publisher = publish(server.url, **options)
    seen: list[bytes] = []

    def on_item(item: Any) -> None:
        if type(item) is Parsed:
            seen.append(item.raw)

    subscription = publisher.publish(client.sample_stream()).subscribe(on_item)
    publisher.subscription = subscription  # type: ignore[attr-defined]
    return publisher, seen


# -- engine-neutral pieces --------------------------------------------------------------------


def test_ids_subjects_and_parsers_follow_the_stream_kind() -> None:
    parse = parser_for("tweets")
    parsed = parse(b'{"data": {"id": "1745", "text": "hi"}}')
    assert type(parsed) is Parsed and isinstance(parsed.value, StreamResponse)
    assert message_id_for("tweets")(parsed.value) == "1745"
    compliance = parser_for("compliance")(
        b'{"data": {"delete": {"tweet": {"id": "5", "author_id": "6"}, '
        b'"event_at": "2024-01-01T00:00:00.000Z"}}}'
    )
    assert type(compliance) is Parsed
    key = message_id_for("compliance")(compliance.value)
    assert key is not None and key.startswith("k:") and len(key) == 34
    assert message_id_for("compliance")(compliance.value) == key  # stable
    firehose = StreamSource(ENDPOINTS["firehose"], "tweets", (1, 2, 3))
    assert subject_for("x.{stream}.{partition}", firehose) == "x.firehose.1-3"
    with pytest.raises(ValueError, match="only"):
        subject_for("x.{nope}", firehose)
    client = StreamingClient("t0ken", base_url="http://127.0.0.1:9")
    source = endpoint_of(client.firehose_stream(partitions=[4]))
    assert (source.name, source.kind, source.partitions) == ("firehose", "tweets", (4,))
    assert endpoint_of(client.compliance_stream("tweets", partitions=1)).kind == "compliance"


def test_importing_rxtweet_needs_no_nats_py() -> None:
    code = (
        "import sys; sys.modules['nats'] = None\n"
        "import rxtweet, rxtweet.nats\n"
        "try:\n"
        "    rxtweet.nats.publish('nats://127.0.0.1:4222')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert "pip install rxtweet[nats]" in result.stdout


# -- publishing -------------------------------------------------------------------------------


def test_each_line_is_stored_unchanged_with_its_tweet_id(nats_server: NatsServer) -> None:
    with FakeStreamServer(messages(300), keepalive_interval=0.05, match_rules=False) as fake:
        publisher, seen = ingest(fake, nats_server)
        assert wait_for(lambda: publisher.stats.acked == 300)
        publisher.subscription.dispose()
    stored = stream_messages(nats_server.url, "RXTWEET")
    assert [payload for payload, _ in stored] == seen
    assert [msg_id for _, msg_id in stored] == [tweet_id(raw) for raw in seen]
    assert publisher.stats.snapshot() == {
        "published": 300,
        "duplicates": 0,
        "retried": 0,
        "handed": 300,
        "pending": 0,
        "unconfirmed": 0,
    }


def test_redundant_connections_and_a_second_ingester_store_each_tweet_once(
    nats_server: NatsServer,
) -> None:
    with FakeStreamServer(
        messages=generate_v2_messages(seed=2),
        timeline=Timeline(rate=300.0, max_connections=3),
        keepalive_interval=0.05,
        match_rules=False,
    ) as fake:
        client = StreamingClient("t0ken", base_url=fake.url, clock=fake.now)
        first, second = publish(nats_server.url), publish(nats_server.url)
        seen: list[list[str]] = [[], []]
        subscriptions = [
            publisher.publish(stream).subscribe(
                lambda item, ids=ids: (
                    ids.append(tweet_id(item.raw)) if type(item) is Parsed else None
                )
            )
            for publisher, stream, ids in (
                (first, client.sample_stream(redundancy=2), seen[0]),
                (second, client.sample_stream(), seen[1]),
            )
        ]
        assert wait_for(lambda: len(fake.open_streams("sample")) == 3)
        assert wait_for(lambda: len(set(seen[0]) & set(seen[1])) >= 100)
        for subscription in subscriptions:
            subscription.dispose()
    stored = [msg_id for _, msg_id in stream_messages(nats_server.url, "RXTWEET")]
    assert len(stored) == len(set(stored))  # each tweet once
    # A message is stored before it is passed on, so a disposal that lands between the two
    # leaves one stored message unseen: at most one per publisher (each has one delivering
    # thread at a time).
    unseen = set(stored) - (set(seen[0]) | set(seen[1]))
    assert set(seen[0]) | set(seen[1]) <= set(stored) and len(unseen) <= 2
    both = len(seen[0]) + len(seen[1])
    acked = first.stats.acked + second.stats.acked  # every ack, a duplicate's too
    assert both <= acked <= both + 2
    assert first.stats.duplicates + second.stats.duplicates == acked - len(stored) > 0


def test_a_nats_restart_mid_publish_loses_nothing_and_holds_the_reader_back(
    nats_server: NatsServer,
) -> None:
    total = 3000
    with FakeStreamServer(messages(total), keepalive_interval=0.05, match_rules=False) as fake:
        publisher, seen = ingest(fake, nats_server, max_pending=32, ack_timeout=0.5)
        assert wait_for(lambda: publisher.stats.acked >= 300)
        nats_server.stop()
        time.sleep(1.0)  # twice ack_timeout: what was in flight times out, to be sent again
        # Held back: at most max_pending un-acked and max_pending waiting (plus one blocked).
        assert 0 < publisher.stats.pending <= 2 * 32 + 1
        assert len(seen) < total
        nats_server.start()
        assert wait_for(lambda: publisher.stats.acked >= total, timeout=15.0)
        publisher.subscription.dispose()
    stored = [msg_id for _, msg_id in stream_messages(nats_server.url, "RXTWEET")]
    assert Counter(stored) == Counter(tweet_id(raw) for raw in seen)  # all, each once
    assert len(stored) == total
    # Whether anything was in flight (so re-sent, counted in retried) when the server
    # went away is timing: what must hold is above, each message stored once, and that
    # none was given up.
    assert publisher.stats.unconfirmed == 0


# -- consuming --------------------------------------------------------------------------------


def test_a_raising_handler_is_redelivered_then_dead_lettered(nats_server: NatsServer) -> None:
    with FakeStreamServer(messages(5), keepalive_interval=0.05, match_rules=False) as fake:
        publisher, seen = ingest(fake, nats_server)
        assert wait_for(lambda: publisher.stats.acked == 5)
        publisher.subscription.dispose()
    poison = tweet_id(seen[2])
    calls: list[str] = []

    def handle(parsed: Parsed[Any]) -> None:
        assert isinstance(parsed.value, StreamResponse)
        calls.append(parsed.value.data.data["id"])
        if calls[-1] == poison:
            raise ValueError("cannot handle this one")

    workers = consume(
        nats_server.url, durable="workers", max_deliver=3, nak_delay=0.05, ack_wait=1.0
    )
    subscription = workers.subscribe(handle)
    try:
        assert wait_for(lambda: workers.stats.dead_lettered == 1)
        time.sleep(0.3)  # nothing more comes: terminated, not redelivered
    finally:
        subscription.dispose()
    assert Counter(calls)[poison] == 3
    assert sorted(calls) == sorted([*(tweet_id(raw) for raw in seen), poison, poison])
    assert workers.stats.snapshot() == {
        "delivered": 7,
        "acked": 4,
        "nacked": 2,
        "dead_lettered": 1,
        "malformed": 0,
    }


def test_dispose_closes_the_consumer_within_a_second(nats_server: NatsServer) -> None:
    with FakeStreamServer(messages(1), keepalive_interval=0.05, match_rules=False) as fake:
        publisher, _ = ingest(fake, nats_server)
        assert wait_for(lambda: publisher.stats.acked == 1)
        publisher.subscription.dispose()
    got = threading.Event()
    subscription = consume(nats_server.url, durable="w").subscribe(lambda _: got.set())
    assert got.wait(5.0)
    started = time.monotonic()
    subscription.dispose()
    assert time.monotonic() - started < 1.0
    assert wait_for(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("rxtweet-nats")], 1.0
    )


def test_a_consumer_with_no_server_fails_with_connection_error() -> None:
    errors: list[Exception] = []
    done = threading.Event()
    consume("nats://127.0.0.1:9", durable="w", connect_timeout=0.5).subscribe(
        on_error=lambda e: (errors.append(e), done.set())
    )
    assert done.wait(3.0)
    assert isinstance(errors[0], ConnectionError)
    assert "127.0.0.1:9" in str(errors[0])


# -- the command line -------------------------------------------------------------------------


def test_the_cli_publishes_with_to_and_consume_writes_the_lines(
    nats_server: NatsServer, tmp_path: Any
) -> None:
    import argparse
    import io

    from rxtweet.cli import consume as consume_cli
    from rxtweet.cli.common import Redactor
    from rxtweet.cli.console import Console
    from rxtweet.cli.nats_server import find_nats_server

    assert find_nats_server() == str(nats_server.command()[0])
    with FakeStreamServer(messages(40), keepalive_interval=0.05, match_rules=False) as fake:
        stream = StreamingClient("t0ken", base_url=fake.url).sample_stream()
        opened = argparse.Namespace(stream=stream)
        to = argparse.ArgumentParser()
        consume_cli.add_to_argument(to)
        args = to.parse_args(["--to", nats_server.url])
        args.limit, args.quiet = 40, False
        err = io.StringIO()
        assert consume_cli.publish_opened(opened, args, Console(err)) == 0
    assert "40 messages stored in RXTWEET" in err.getvalue()
    parser = argparse.ArgumentParser()
    consume_cli.COMMAND.add_arguments(parser, {})
    out = tmp_path / "out.jsonl"
    args = parser.parse_args(
        [nats_server.url, "--durable", "cli", "-o", str(out), "--limit", "40", "-q"]
    )
    assert consume_cli.run_consume(args, Redactor(), Console(io.StringIO())) == 0
    lines = out.read_bytes().splitlines()
    assert [tweet_id(line) for line in lines] == [
        msg_id for _, msg_id in stream_messages(nats_server.url, "RXTWEET")
    ]


def test_the_publish_counts_reach_the_metrics_stream_and_prometheus(
    nats_server: NatsServer,
) -> None:
    import prometheus_client
    from prometheus_client.parser import text_string_to_metric_families

    from rxtweet.metrics import StreamCollector

    with FakeStreamServer(messages(200), keepalive_interval=0.05, match_rules=False) as fake:
        stream = StreamingClient("t0ken", base_url=fake.url).sample_stream()
        snapshots: list[Any] = []
        watching = stream.metrics(0.05).subscribe(snapshots.append)
        collector = StreamCollector(stream, name="sample")
        registry = prometheus_client.CollectorRegistry()
        registry.register(collector)
        publisher = publish(nats_server.url)
        subscription = publisher.publish(stream).subscribe(lambda _: None)
        try:
            assert wait_for(lambda: publisher.stats.acked == 200)
            assert wait_for(lambda: sum(s.published for s in snapshots) == 200)
            text = prometheus_client.generate_latest(registry).decode()
        finally:
            subscription.dispose()
            watching.dispose()
            collector.close()
    assert sum(s.publish_duplicates for s in snapshots) == 0
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples.get("rxtweet_nats_published_total") == 200
