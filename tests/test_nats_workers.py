"""Ingest once, process on many processes: FakeStreamServer -> publish -> JetStream ->
worker processes sharing one durable consumer, against real ``nats-server`` processes.

Every tweet exactly once with three healthy workers; a SIGKILLed worker's un-acked
messages go to the others (nothing lost); a 3-node cluster with an R3 stream loses nothing
when a node is killed mid-publish. The slowest tests of the nats set (worker processes
start in about a second), still a few seconds each.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from nats_servers import (
    NatsServer,
    nats_cluster,
    nats_server,
    read_ids,
    run_worker,
    stream_messages,
    tweet_id,
    wait_for,
)

from rxtweet import Parsed, StreamingClient
from rxtweet.nats import publish
from rxtweet.testing import FakeStreamServer
from rxtweet.testing.generate import generate_v2_messages

__all__ = ["nats_cluster", "nats_server"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.integration

CHECK_READER_THREADS = False

_SPAWN = multiprocessing.get_context("spawn")


def publish_all(servers: list[str], count: int, **options: Any) -> list[str]:
    """Publish ``count`` generated tweets through a FakeStreamServer; their ids."""
    lines = list(itertools.islice(generate_v2_messages(seed=3), count))
    seen: list[str] = []
    with FakeStreamServer(lines, keepalive_interval=0.05, match_rules=False) as fake:
        publisher = publish(servers, **options)
        stream = StreamingClient("t0ken", base_url=fake.url).sample_stream()
        subscription = publisher.publish(stream).subscribe(
            lambda item: seen.append(tweet_id(item.raw)) if type(item) is Parsed else None
        )
        assert wait_for(lambda: publisher.stats.acked == count, timeout=15.0)
        subscription.dispose()
    return seen


class Workers:
    """Worker processes on one durable, each writing the ids it handled to its file."""

    def __init__(self, tmp: Path, servers: list[str], n: int, job: float, ack_wait: float):
        # One stop event each: setting an Event a SIGKILLed process was waiting on hangs.
        self.stops = [_SPAWN.Event() for _ in range(n)]
        self.files = [tmp / f"worker{i}.ids" for i in range(n)]
        readies = [_SPAWN.Event() for _ in range(n)]
        self.processes = [
            _SPAWN.Process(
                target=run_worker,
                args=(servers, "RXTWEET", "workers", str(f), job, ack_wait, stop, ready),
                daemon=True,
            )
            for f, stop, ready in zip(self.files, self.stops, readies, strict=True)
        ]
        for process in self.processes:
            process.start()
        for ready in readies:
            assert ready.wait(20.0)

    def ids(self) -> list[str]:
        return read_ids(self.files)

    def close(self) -> None:
        for process, stop in zip(self.processes, self.stops, strict=True):
            if process.exitcode is None:
                stop.set()
        for process in self.processes:
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join(5.0)


def test_three_workers_process_every_tweet_exactly_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    expected = publish_all([nats_server.url], 600)
    workers = Workers(tmp_path, [nats_server.url], 3, job=0.001, ack_wait=2.0)
    try:
        assert wait_for(lambda: len(workers.ids()) >= 600, timeout=20.0)
    finally:
        workers.close()
    ids = workers.ids()
    assert Counter(ids) == Counter(expected)  # every tweet, each exactly once
    assert all(path.exists() and path.read_text() for path in workers.files)  # all shared


def test_a_killed_worker_leaves_its_messages_to_the_others(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    expected = publish_all([nats_server.url], 300)
    workers = Workers(tmp_path, [nats_server.url], 3, job=0.005, ack_wait=1.0)
    try:
        victim = workers.processes[0]
        assert wait_for(lambda: len(read_ids(workers.files[:1])) >= 10)
        victim.kill()  # SIGKILL, mid-batch: up to a batch fetched and not acked
        victim.join(5.0)
        assert wait_for(lambda: set(workers.ids()) >= set(expected), timeout=20.0)
    finally:
        workers.close()
    ids = workers.ids()
    assert set(ids) == set(expected)  # nothing lost
    repeated = sum(count - 1 for count in Counter(ids).values())
    # At-least-once: only what the victim handled but whose ack had not gone out (its acks
    # are sent asynchronously), at most its batch of 10.
    assert repeated <= 10


def test_a_cluster_node_killed_mid_run_loses_nothing(nats_cluster: list[NatsServer]) -> None:
    servers = [node.url for node in nats_cluster]
    total = 2000
    lines = list(itertools.islice(generate_v2_messages(seed=4), total))
    seen: list[str] = []
    with FakeStreamServer(lines, keepalive_interval=0.05, match_rules=False) as fake:
        publisher = publish(servers, replicas=3, max_pending=64, ack_timeout=1.0)
        stream = StreamingClient("t0ken", base_url=fake.url).sample_stream()
        subscription = publisher.publish(stream).subscribe(
            lambda item: seen.append(tweet_id(item.raw)) if type(item) is Parsed else None
        )
        try:
            assert wait_for(lambda: publisher.stats.acked >= 300, timeout=15.0)
            nats_cluster[0].kill()
            assert wait_for(lambda: publisher.stats.acked >= total, timeout=20.0)
        finally:
            subscription.dispose()
    stored = [msg_id for _, msg_id in stream_messages(servers[1:], "RXTWEET")]
    assert Counter(stored) == Counter(seen)
    assert len(stored) == total
