"""Hostile review of commit 0c17e20: when every subscriber of a connection's share only
selects from messages, the parser (``rxtweet.parse.batch_parser``) gives each its
``pick(value)`` itself, without the ``Parsed`` and without the share's ``on_next``
(``operators.share.ValueCalls``).

The reference is the share's own way: the same run with ``multicast_of`` (parse and connection)
patched to ``lambda emit: None`` (the parser then always calls ``emit(Parsed(...))``). Every
end-to-end case runs over a real server on 127.0.0.1 (:class:`support.RawServer`): its first
read holds one message alone (the connection's first data goes through the data check),
then, once the connection has parsed it, the other lines come as whole chunks, so that the
real transport hands the parser reads of many messages, on which the value path runs. The
number of ``Parsed`` made tells which way each message went.

Attacked: subscribers joining and leaving from inside an ``on_next`` and from another thread
in the middle of a read (``hold()``, taps, ``items``, ``events``, metrics), subscribers and
picks that raise, picks that return ``None`` or falsy values, schedulers and operators
downstream, the hook face on the same connection, recovery modes, de-duplication and
partitions (where the value path must not run), metrics' counts, and what is kept alive.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import delivery_harness
import orjson
import pytest
from delivery_harness import (
    ONCE,
    Churned,
    Feed,
    Hooks,
    PushedReads,
    Subscribe,
    assert_churned_runs,
    churner,
    full,
    switching_often,
    tweet,
)
from reactivex import abc
from reactivex import operators as ops
from reactivex.scheduler import EventLoopScheduler, ThreadPoolScheduler
from reactivex.testing import TestScheduler
from support import reader_threads, wait_until

from rxtweet import connection as connection_module
from rxtweet import parse as parse_module
from rxtweet.connection import Connection
from rxtweet.http import StreamRequest
from rxtweet.metrics import SNOWFLAKE_EPOCH_MS, StreamMetrics, metrics_of
from rxtweet.parse import Parsed
from rxtweet.partitions import MergedConnection
from rxtweet.recovery.dedup import Deduplicated
from rxtweet.v2.convert import to_stream_response
from rxtweet.v2.identity import identity_for
from rxtweet.v2.stream import TweetStream


def mixed(last: int) -> list[bytes]:
    """Tweets 2..last (every 4th with includes and rules), with a keep-alive, a malformed
    line and an errors-only message among them (a hostile server's odd lines)."""
    out: list[bytes] = []
    for n in range(2, last + 1):
        out.append(full(n) if n % 4 == 0 else tweet(n))
        if n == 6:
            out += [b"", b'{"data":{"id":"66","text":"cut', b'{"errors":[{"title":"x"}]}']
    return out


def halves(lines: list[bytes]) -> list[list[bytes]]:
    return [lines[: len(lines) // 2], lines[len(lines) // 2 :]]


# --- a real server that sends whole reads ---------------------------------------------------


@contextlib.contextmanager
def counting_parsed() -> Iterator[list[int]]:
    """Count the ``Parsed`` the parser makes (read when a connection subscribes)."""
    made: list[int] = []
    real = parse_module._new_tuple

    def counting(cls: Any, items: Any) -> Any:
        if cls is Parsed:
            made.append(1)
        return real(cls, items)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse_module, "_new_tuple", counting)
        yield made


def both(scenario: Callable[[], Any]) -> tuple[Any, Any, int, int]:
    """``scenario()`` with the value path, and with the share's own way: the two results and
    how many ``Parsed`` each made."""
    with counting_parsed() as made_fused:
        fused = scenario()
    with counting_parsed() as made_plain, pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse_module, "multicast_of", lambda emit: None)
        patch.setattr(connection_module, "multicast_of", lambda emit: None)
        plain = scenario()
    return fused, plain, len(made_fused), len(made_plain)


def show(item: Any) -> Any:
    """A comparable form of anything a substream gives."""
    if type(item) is int:
        return item
    if type(item) is Parsed:
        return ("P", show(item.value), item.raw)
    data = getattr(item, "data", None)
    if data is not None and hasattr(data, "id"):
        return ("R", data.id, repr(item))
    if hasattr(item, "id") and hasattr(item, "text"):
        return item.id
    return repr(item)


class Log(delivery_harness.Log):
    """The harness's log of named subscribers, in this file's :func:`show` form."""

    show = staticmethod(show)


def tid(item: Any) -> int:
    return int(item.id)


# --- subscribers joining and leaving inside on_next ------------------------------------------


def test_joins_and_leaves_from_inside_on_next_give_what_the_share_gives(serve: Any) -> None:
    def scenario() -> dict[str, list[Any]]:
        server, connection = serve(Feed(halves(mixed(40))))
        stream = TweetStream(connection)
        log = Log()
        taps: list[Any] = []
        log.got["tap"] = taps

        def killer(response: Any) -> None:
            if response.data is not None and response.data.id == 7:
                log.subs["before_victim"].dispose()
                log.subs["victim"].dispose()

        def spawner(item: Any) -> None:
            n = tid(item)
            if n == 9:
                log.sub("late_tweets", stream.tweets)
                log.sub("late_items", stream.items)
            elif n == 15:
                log.subs["late_items"].dispose()
            elif n == 20:
                log.sub("late_includes", stream.includes)
                log.subs["tap"] = stream.connection.items.tap(  # type: ignore[attr-defined]
                    lambda item: taps.append(show(item))
                )
            elif n == 25:
                log.subs["tap"].dispose()
                log.sub("late_rules", stream.matching_rules)

        def self_disposing(item: Any) -> None:
            if tid(item) == 5:
                log.subs["self"].dispose()

        with stream.hold():
            log.sub("witness", stream.tweets, witness=True)
            log.sub("before_victim", stream.tweets)
            log.sub("self", stream.tweets, self_disposing)
            log.sub("killer", stream.responses, killer)
            log.sub("victim", stream.includes)
            log.sub("spawner", stream.tweets, spawner)
        got = log.wait()
        assert server.connections == 1
        return got

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain
    ids = list(range(1, 41))
    assert [x for x in fused["witness"] if type(x) is int] == ids
    assert fused["self"] == [1, 2, 3, 4, 5]
    assert fused["before_victim"] == [1, 2, 3, 4, 5, 6, 7]  # before the killer: got 7
    assert len(fused["victim"]) == 1  # includes of 4 only: 8 came after its disposal
    assert [x for x in fused["late_tweets"] if type(x) is int] == list(range(10, 41))
    parsed = [x[1][1] for x in fused["late_items"] if x[0] == "P" and x[1][0] == "R"]
    assert parsed == [10, 11, 12, 13, 14]
    assert [x[1][1] for x in fused["tap"] if x[0] == "P"] == [21, 22, 23, 24, 25]
    assert len(fused["late_rules"]) == 4 + 1  # the rules of 28, 32, 36 and 40, the end
    # The value path served 2..9, 16..20 and 26..40 (messages only: keep-alive and the
    # malformed line make none); the share's way made a Parsed for each of the 41 messages.
    assert made_plain == 41
    assert made_fused == 1 + 6 + 5  # 1 (first read), 10..15 (items), 21..25 (tap)


# --- from another thread, while a read is being delivered -------------------------------------


def test_joins_and_leaves_from_another_thread_in_the_middle_of_a_read(serve: Any) -> None:
    # Reads: [1], [2..14], [15..25], [26..30]. The first subscriber blocks in its on_next of
    # tweet 10 (in the middle of a read): the test's thread disposes later subscribers,
    # subscribes new ones (inside hold() and not), attaches a tap, events and metrics (a read
    # tap: the next read is counted, and made the share's way), lets the next read come, at
    # tweet 20 (blocked again) removes the plain ones, and the metrics after that read; the
    # last read is the value's again.
    lines = mixed(30)
    groups = [lines[:16], lines[16:27], lines[27:]]
    assert [orjson.loads(g[0])["data"]["id"] for g in groups] == ["2", "15", "26"]

    def scenario() -> dict[str, list[Any]]:
        inside = {10: threading.Event(), 20: threading.Event()}
        release = {10: threading.Event(), 20: threading.Event()}
        metrics_gone = threading.Event()
        server, connection = serve(Feed(groups, gates={1: release[10], 2: metrics_gone}))
        stream = TweetStream(connection)
        log = Log()
        taps: list[Any] = log.got.setdefault("tap", [])

        def blocker(item: Any) -> None:
            n = tid(item)
            if n in inside:
                inside[n].set()
                assert release[n].wait(2.0)

        with stream.hold():
            log.sub("witness", stream.tweets, blocker, witness=True)
            log.sub("leaver", stream.tweets)
            log.sub("leaver_includes", stream.includes)
            log.sub("stayer", stream.select(lambda r: r.data and r.data.text))
        assert inside[10].wait(2.0)
        log.subs["leaver"].dispose()
        log.subs["leaver_includes"].dispose()
        with stream.hold():
            log.sub("held_tweets", stream.tweets)
            log.sub("held_items", stream.items)
        log.sub("events", stream.events)
        log.subs["tap"] = stream.connection.items.tap(  # type: ignore[attr-defined]
            lambda item: taps.append(show(item))
        )
        snapshots: list[StreamMetrics] = []
        scheduler = TestScheduler()
        metrics = stream.metrics(10.0, scheduler=scheduler, clock=lambda: 0.0).subscribe(
            snapshots.append
        )
        release[10].set()
        assert inside[20].wait(2.0)
        for name in ("held_items", "events", "tap"):
            log.subs[name].dispose()
        log.sub("late", stream.tweets)
        release[20].set()
        assert wait_until(lambda: connection.stats.messages == 26, 2.0)  # 15..25 delivered
        scheduler.advance_by(10.0)
        metrics.dispose()
        metrics_gone.set()
        got = log.wait()
        got["metrics"] = [(m.messages, m.tweets, m.keep_alives, m.malformed) for m in snapshots]
        assert server.connections == 1
        return got

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain
    assert [x for x in fused["witness"] if type(x) is int] == list(range(1, 31))
    assert fused["stayer"][:30] == [repr(f"t{n}" if n % 4 else f"f{n}") for n in range(1, 31)]
    assert fused["leaver"] == list(range(1, 10))  # 10 was being delivered: it came after
    assert len(fused["leaver_includes"]) == 2  # includes of 4 and 8
    assert [x for x in fused["held_tweets"] if type(x) is int] == list(range(11, 31))
    parsed = [x[1][1] for x in fused["held_items"] if x[0] == "P" and x[1][0] == "R"]
    assert parsed == list(range(11, 20))  # disposed while 20 was being delivered
    # A tap has no guard: an item already being delivered may reach it once (documented).
    assert [x[1][1] for x in fused["tap"] if x[0] == "P"] == list(range(11, 21))
    assert fused["late"][:10] == list(range(21, 31))
    assert fused["metrics"] == [(11, 11, 0, 0)]  # the read of 15..25, counted whole
    assert made_plain == 31
    # 1 (first read), 11..14 (items), 15..25 (a read of the metrics); the rest from values.
    assert made_fused == 1 + 4 + 11


# --- errors: a subscriber that raises, a pick that raises, picks that return None ----------


def _ending_scenario(serve: Any, build: Callable[[TweetStream, Log], None]) -> Callable[[], Any]:
    def scenario() -> Any:
        server, connection = serve(Feed(halves(mixed(30))))
        stream = TweetStream(connection)
        log = Log()
        with stream.hold():
            build(stream, log)
        got = log.wait()
        assert wait_until(lambda: not stream.connected, 2.0)
        time.sleep(0.05)  # a reconnect, were there one, would have begun
        return got, server.connections, connection.stats.messages

    return scenario


def test_a_subscriber_that_raises_ends_the_stream_as_before(serve: Any) -> None:
    def build(stream: TweetStream, log: Log) -> None:
        def raising(item: Any) -> None:
            if tid(item) == 12:
                raise KeyError("subscriber bug")

        log.sub("before", stream.tweets, witness=True)
        log.sub("raiser", stream.tweets, raising)
        log.sub("after", stream.tweets)
        log.sub("includes", stream.includes)

    fused, plain, made_fused, made_plain = both(_ending_scenario(serve, build))
    assert fused == plain
    got, connections, messages = fused
    assert connections == 1  # no reconnect: the subscriber's bug ended the stream
    assert messages == 13  # 1..12 and the errors-only message: 12 counted, nothing after
    error = ("error", "KeyError", "'subscriber bug'")
    assert got["before"] == [*range(1, 13), error]
    assert got["raiser"] == [*range(1, 13), error]  # its on_next recorded 12, then raised
    assert got["after"] == [*range(1, 12), error]  # nothing of 12, nothing after
    assert got["includes"][-1] == error and len(got["includes"]) == 2 + 1  # 4, 8 (not 12)
    assert made_plain == 13 and made_fused == 1  # every message until 12 and no further


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_pick_that_raises_and_picks_that_return_none_or_falsy(serve: Any, where: str) -> None:
    def pick(response: Any) -> Any:
        n = tid(response.data) if response.data is not None else -1
        if n == 9:
            raise ValueError("pick bug")
        if n % 3 == 0:
            return None  # skipped
        return {1: 0, 2: "", 4: False, 5: []}.get(n, n)  # falsy values are delivered

    def build(stream: TweetStream, log: Log) -> None:
        if where == "first":
            log.sub("picked", stream.select(pick))
        log.sub("witness", stream.tweets, witness=True)
        log.sub("none", stream.select(lambda r: None))
        if where == "last":
            log.sub("picked", stream.select(pick))

    fused, plain, made_fused, made_plain = both(_ending_scenario(serve, build))
    assert fused == plain
    got, connections, _ = fused
    error = ("error", "ValueError", "pick bug")
    assert connections == 1
    assert got["picked"] == [0, "''", "False", "[]", -1, 7, 8, error]  # -1: no data
    # The witness got 9 only when it comes before the failing pick.
    assert got["witness"] == [*range(1, 9 if where == "first" else 10), error]
    assert got["none"] == [error]
    assert made_plain == 10 and made_fused == 1


# --- schedulers and operators downstream, the hook face on the same connection -------------


def test_schedulers_take_and_share_downstream(serve: Any) -> None:
    def scenario() -> dict[str, list[Any]]:
        server, connection = serve(Feed(halves(mixed(40))))
        stream = TweetStream(connection)
        log = Log()
        loop = EventLoopScheduler()
        pool = ThreadPoolScheduler(1)
        try:
            ids = stream.tweets.pipe(ops.map(tid), ops.share())
            with stream.hold():
                log.sub("witness", stream.tweets, witness=True)
                log.sub("observed_on", stream.tweets.pipe(ops.map(tid), ops.observe_on(loop)))
                log.sub("take", stream.tweets.pipe(ops.map(tid), ops.take(5)))
                log.sub("take_includes", stream.includes.pipe(ops.take(2)))
                log.sub("share_a", ids)
                log.sub(
                    "bounded",
                    stream.tweets.pipe(
                        ops.map(tid), stream.observe_on_bounded(loop, capacity=10_000)
                    ),
                )

                def share_b_leaves(n: int) -> None:
                    if n == 12:
                        log.subs["share_b"].dispose()

                log.sub("share_b", ids, share_b_leaves)
                log.sub("subscribed_on", stream.tweets.pipe(ops.subscribe_on(pool), ops.map(tid)))
                # subscribe_on joins from the pool's thread: wait for it, inside the hold.
                assert wait_until(lambda: connection._shared.subscribers == 7, 2.0)
            got = log.wait()
            for name in ("observed_on", "bounded"):  # their ends, on the loop's thread
                assert wait_until(lambda: type(got[name][-1]) is tuple, 2.0)  # noqa: B023
        finally:
            loop.dispose()
            pool.executor.shutdown(wait=True)
        assert server.connections == 1
        return got

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain
    end = fused["witness"][-1]
    everything = [*range(1, 41), end]
    assert fused["observed_on"] == fused["share_a"] == fused["subscribed_on"] == everything
    assert fused["bounded"] == everything
    assert fused["take"] == [1, 2, 3, 4, 5, "completed"]
    assert len(fused["take_includes"]) == 3 and fused["take_includes"][-1] == "completed"
    assert fused["share_b"] == list(range(1, 13))
    assert made_plain == 41 and made_fused == 1


def test_the_hook_face_and_stream_tweets_on_one_connection(serve: Any) -> None:
    def scenario() -> Any:
        server, connection = serve(Feed(halves(mixed(30))))
        stream = TweetStream(connection)
        log = Log()
        client = Hooks(connection, leave_at=17)
        with stream.hold():
            log.sub("witness", stream.tweets, witness=True)
            thread = client.sample(threaded=True)
            # The hook face subscribes from its thread (inside hold() of its own, if twice).
            assert wait_until(lambda: connection._shared.subscribers >= 2, 2.0)
            log.sub("includes", stream.includes)
        got = log.wait()
        assert client.disconnected.wait(2.0)
        assert thread is not None
        thread.join(2.0)
        got["hooks"] = client.tweets
        assert server.connections == 1
        return got

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain
    assert fused["hooks"] == list(range(1, 18))
    assert [x for x in fused["witness"] if type(x) is int] == list(range(1, 31))
    # The hook face took whole items (the share's way) until it left at 17 (as of 0c17e20:
    # 1..17 and the errors-only message); from 18 on the value path served the stream.
    assert made_plain == 31 and made_fused <= 18


# --- where the value path must not run: recovery, de-duplication, partitions ---------------


@pytest.mark.parametrize("mode", ["backfill", "full"])
def test_recovery_modes_keep_the_share_way(serve: Any, mode: str) -> None:
    def scenario() -> dict[str, list[Any]]:
        server, connection = serve(Feed(halves(mixed(30))), recovery=mode)
        stream = TweetStream(connection)
        log = Log()
        with stream.hold():
            log.sub("witness", stream.tweets, witness=True)
            log.sub("includes", stream.includes)
        got = log.wait()
        assert server.connections == 1
        return got

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain
    assert [x for x in fused["witness"] if type(x) is int] == list(range(1, 31))
    # The recovery's on_next (the tracker, the recovered marks) sees every message: the
    # parser's emit is not the share's, so every message was made whole.
    assert made_fused == made_plain == 31


@pytest.mark.parametrize("replicas", [False, True])
def test_partitions_and_deduplication_keep_the_share_way(serve: Any, replicas: bool) -> None:
    # Two connections merged (two partitions, or two replicas of one, de-duplicated): the
    # partition connections' only subscriber is the merge (a plain observer), so the value
    # path never runs there, whatever the merged stream's subscribers are.
    def scenario() -> Any:
        lines = mixed(30)
        first, second = (
            serve(Feed(halves(lines))),
            serve(
                Feed(halves(lines), first=1)
                if replicas
                else Feed([[tweet(n) for n in range(102, 131)]], first=101)
            ),
        )
        keyed: Any = (
            {(1, 0): first[1], (1, 1): second[1]} if replicas else {1: first[1], 2: second[1]}
        )
        merged: Any = MergedConnection(keyed)
        source = Deduplicated(merged, identity_for("tweets")) if replicas else merged
        stream = TweetStream(source)
        log = Log()
        with stream.hold():
            log.sub("witness", stream.tweets, witness=True)
            log.sub("ids", stream.tweets.pipe(ops.map(tid)))
        got = log.wait()
        return sorted(x for x in got["ids"] if type(x) is int), got["ids"][-1]

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain
    expected = list(range(1, 31)) if replicas else [*range(1, 31), *range(101, 131)]
    assert fused[0] == expected  # each tweet once
    assert made_fused == made_plain == (31 + 31 if replicas else 31 + 30)


# --- metrics: the same counts with and without the value path ------------------------------

NOW = 1_700_000_000.0


def aged(age_ms: int, n: int) -> bytes:
    snowflake = ((round(NOW * 1000) - age_ms - SNOWFLAKE_EPOCH_MS) << 22) | n
    return orjson.dumps({"data": {"id": str(snowflake), "text": f"t{n}"}})


def test_metrics_count_the_same_with_and_without_the_value_path() -> None:
    # One metrics subscription throughout, one subscribed from inside a tweets on_next in
    # the middle of a read and disposed in the middle of a later one; a snapshot after each
    # read. Reads mix tweets of several ages, keep-alives, malformed lines, no-data messages.
    reads = [
        [aged(1000, 0)],
        [aged(2000, n) for n in range(1, 9)],
        [aged(500, 9), b"", aged(4000, 10), b"{", b'{"errors":[{"title":"x"}]}', aged(3, 11)],
        [aged(n * 100, n) for n in range(12, 30)],
        [aged(7000, 30), b"  ", aged(10, 31)],
        [aged(n * 10, n) for n in range(32, 50)],
    ]

    def scenario(always: bool) -> Any:
        transport = PushedReads()
        scheduler = TestScheduler()
        connection: Connection[Any] = Connection(
            StreamRequest("GET", "http://127.0.0.1:9/2/tweets/sample/stream"),
            to_stream_response,
            transport=transport,
            scheduler=scheduler,
            policy=ONCE,
        )
        stream = TweetStream(connection)
        throughout: list[StreamMetrics] = []
        middle: list[StreamMetrics] = []
        boxes: dict[str, abc.DisposableBase] = {}
        texts: list[str] = []

        def on_tweet(tweet: Any) -> None:
            texts.append(tweet.text)
            if tweet.text == "t5":
                boxes["middle"] = metrics_of(
                    stream, 10.0, scheduler=scheduler, clock=lambda: NOW
                ).subscribe(middle.append)
            elif tweet.text == "t20":
                boxes["middle"].dispose()

        if always:
            boxes["throughout"] = metrics_of(
                stream, 10.0, scheduler=scheduler, clock=lambda: NOW
            ).subscribe(throughout.append)
        subscription = stream.tweets.subscribe(on_tweet)
        assert transport.observer is not None
        for read in reads:
            transport.observer.on_next(read)
            scheduler.advance_by(10.0)
        subscription.dispose()
        if always:
            boxes["throughout"].dispose()

        def figures(m: StreamMetrics) -> tuple[Any, ...]:
            return (m.messages, m.tweets, m.bytes, m.keep_alives, m.malformed, m.lag_count)

        lags = [(m.lag_sum, m.lag_p50, m.lag_p99, m.lag_max) for m in throughout + middle]
        return texts, [figures(m) for m in throughout], [figures(m) for m in middle], lags

    for always in (True, False):
        fused, plain, made_fused, made_plain = both(lambda: scenario(always))  # noqa: B023
        assert fused == plain
        assert fused[0] == [f"t{n}" for n in range(50)]
        assert sum(m[1] for m in fused[2]) > 0  # the middle one counted some tweets
        if always:
            assert made_fused == made_plain  # a read tap on every read: the share's way
        else:
            assert made_fused < made_plain  # the value path ran before and after it


# --- churn from another thread over a real server ----------------------------------------


def test_churn_from_another_thread_while_reads_are_delivered(serve: Any) -> None:
    # 3000 tweets in 60 whole reads; two selecting keepers stay throughout while another
    # thread keeps subscribing and disposing every kind of subscriber (tweets, items,
    # events, includes, taps, metrics, hold()), so that the parser switches between the value
    # path and the share's way in the middle of reads. The keepers get every tweet in order;
    # a churned subscriber gets a run of consecutive tweets, and after its dispose() returned
    # at most the one whose delivery to it had begun (its guard was already passed).
    total = 3000
    groups = [[tweet(n) for n in range(start, start + 50)] for start in range(2, total, 50)]
    groups[-1] = [tweet(n) for n in range(2952, total + 1)]
    server, connection = serve(Feed(groups, pause=0.003))
    stream = TweetStream(connection)
    keeper: list[int] = []
    texts: list[Any] = []
    done = threading.Event()
    churned: Churned = []
    # At the stream's end: the churn thread may open a fresh connection after it, before it
    # sees `done` (a subscription after the end does that), which is not a reconnect.
    connections: list[int] = []

    def number(item: Any) -> int | None:
        if type(item) is Parsed and item.value.data is not None:
            return tid(item.value.data)
        return tid(item) if hasattr(item, "text") else None

    def ignore(_: Exception) -> None:
        pass

    scheduler = TestScheduler()
    kinds: dict[str, Subscribe] = {
        "tweets": lambda f: stream.tweets.subscribe(f, ignore),
        "items": lambda f: stream.items.subscribe(f, ignore),
        "events": lambda f: stream.events.subscribe(f, ignore),
        "includes": lambda f: stream.includes.subscribe(f, ignore),
        "tap": lambda f: stream.connection.items.tap(f),  # type: ignore[attr-defined]
        "metrics": lambda f: stream.metrics(1.0, scheduler=scheduler).subscribe(f, ignore),
    }
    thread = churner(kinds, number, done, churned, hold=stream.hold)
    try:
        # The churn thread runs in the middle of reads too.
        with switching_often():
            with counting_parsed() as made, stream.hold():
                stream.tweets.subscribe(lambda t: keeper.append(tid(t)), ignore)
                stream.select(lambda r: r.data and r.data.text).subscribe(
                    texts.append, lambda _: (connections.append(server.connections), done.set())
                )
                thread.start()
            assert done.wait(5.0)
    finally:
        done.set()
        thread.join(2.0)
    assert connections == [1]
    assert keeper == list(range(1, total + 1))
    assert texts == [f"t{n}" for n in range(1, total + 1)]
    overlapping = assert_churned_runs(churned)
    # Some churned subscriber joined or left in the middle of a read (a group of 50).
    assert any((got[0] - 2) % 50 or len(got) % 50 for _, got in overlapping)
    assert 0 < len(made) < total  # both ways ran


# --- nothing kept alive longer -------------------------------------------------------------


class Picker:
    """A pick (a callable object) that records what it saw."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def __call__(self, response: Any) -> Any:
        if response.data is None:
            return None
        self.seen.append(tid(response.data))
        return response.data


class Leaver:
    """A subscriber object that disposes its own subscription at tweet ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.got: list[int] = []
        self.subscription: abc.DisposableBase | None = None

    def on_next(self, tweet: Any) -> None:
        self.got.append(tid(tweet))
        if tid(tweet) == self.at and self.subscription is not None:
            self.subscription.dispose()


def test_a_subscriber_and_its_pick_are_freed_once_disposed_while_the_stream_goes_on(
    serve: Any,
) -> None:
    def scenario() -> Any:
        disposed = threading.Event()
        server, connection = serve(Feed(halves(mixed(30)), gates={1: disposed}))
        stream = TweetStream(connection)
        log = Log()
        refs: dict[str, weakref.ref[Any]] = {}
        alive_at_20: dict[str, bool] = {}

        def check(tweet: Any) -> None:
            if tid(tweet) == 20:  # on the reader thread, in the middle of a read
                gc.collect()
                alive_at_20.update({name: ref() is not None for name, ref in refs.items()})

        def make_leavers() -> None:  # no reference left in this frame
            leaver, picker = Leaver(at=5), Picker()
            leaver.subscription = stream.select(picker).subscribe(leaver.on_next)
            refs["leaver"], refs["picker"] = weakref.ref(leaver), weakref.ref(picker)
            outside = Leaver(at=0)
            subscription = stream.tweets.subscribe(outside.on_next)
            refs["outside"] = weakref.ref(outside)
            log.subs["outside"] = subscription

        with stream.hold():
            log.sub("witness", stream.tweets, check, witness=True)
            make_leavers()
        assert wait_until(lambda: connection.stats.messages >= 8, 2.0)
        log.subs.pop("outside").dispose()  # from the test's thread, between two reads
        disposed.set()
        got = log.wait()
        assert server.connections == 1
        return alive_at_20, [x for x in got["witness"] if type(x) is int]

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain
    assert fused[0] == {"leaver": False, "picker": False, "outside": False}
    assert fused[1] == list(range(1, 31))
    assert made_fused < made_plain


def test_nothing_of_a_finished_stream_is_kept(serve: Any) -> None:
    def scenario() -> list[bool]:
        feed = Feed(halves(mixed(20)))
        _, connection = serve(feed)
        stream = TweetStream(connection)
        picker, leaver = Picker(), Leaver(at=-1)
        done = threading.Event()
        with stream.hold():
            stream.select(picker).subscribe(leaver.on_next, lambda _: done.set())
        assert done.wait(2.0)
        assert wait_until(lambda: not reader_threads(), 2.0)
        refs = [weakref.ref(x) for x in (stream, picker, leaver, connection)]
        feed.connection = None
        del stream, picker, leaver, connection, feed
        gc.collect()
        return [ref() is None for ref in refs]

    fused, plain, made_fused, made_plain = both(scenario)
    assert fused == plain == [True, True, True, True]
    assert made_fused < made_plain
