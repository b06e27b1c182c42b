"""Issue 16's read-at-a-time metrics (``Connection.tap_reads`` + ``_Recorder.on_read``),
attacked as a hostile server, a careless user and a slow consumer would.

A v2 tweet stream over one :class:`~rxtweet.connection.Connection` is counted a read at a
time; every other stream an item at a time. The per-item path is the reference: a stream
object whose items are the same shared items but whose ``connection`` has no ``tap_reads``
(:class:`PerItem`) is counted item by item, on the same run, at the same moments, so the two
recorders must report the same figures (except ``bytes``, documented to include every line
of a read that has a message).

Counting logic runs over :class:`ManualBatches` (a transport whose reads the test pushes on
its own thread) with ``TestScheduler`` snapshots and a fixed clock, so every figure is exact;
timing, threads and IO run over real local servers (``RawServer``, ``FakeStreamServer``).
"""

from __future__ import annotations

import gc
import logging
import operator
import random
import socket
import threading
import time
import tracemalloc
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler
from support import RawServer, chunk, wait_until

from rxtweet import StreamingClient
from rxtweet.connection import Connection
from rxtweet.errors import StallError, StreamConnectionError, TwitterServerError
from rxtweet.events import KeepAlive
from rxtweet.http import StreamRequest
from rxtweet.metrics import SNOWFLAKE_EPOCH_MS, StreamMetrics, metrics_of
from rxtweet.metrics.stream import LAG_EXACT, LAG_STRIDE, lag_of
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.scheduling import WAIT_THREAD_PREFIX as WAIT
from rxtweet.testing import Attempt, FakeStreamServer, Timeline, generate_v2_messages
from rxtweet.v2.convert import to_stream_response
from rxtweet.v2.stream import TweetStream

#: The fixed clock of the counting tests (Unix seconds, a whole millisecond).
NOW = 1_700_000_000.0
NOW_MS = round(NOW * 1000)

#: Reconnects at once (in virtual time, a few ticks), forever.
POLICY = ReconnectPolicy(network_wait_step=0.01, network_wait_max=0.02, http_wait_start=0.05)


# --- a transport whose reads the test pushes ------------------------------------------------


class _Head:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012 - read only


class ManualBatches:
    """A BatchTransport: each attempt answers at once (``on_response``), then delivers what
    :meth:`push` gives it, on the pushing thread, until :meth:`end`."""

    def __init__(self) -> None:
        self.observers: list[abc.ObserverBase[list[bytes]]] = []
        self.attempts = 0

    def batches(
        self, request: StreamRequest, options: Any, *, on_response: Any = None, **_: Any
    ) -> Observable[list[bytes]]:
        def subscribe(
            observer: abc.ObserverBase[list[bytes]], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self.attempts += 1
            self.observers.append(observer)
            if on_response is not None:
                on_response(_Head())

            def dispose() -> None:
                if observer in self.observers:
                    self.observers.remove(observer)

            return Disposable(dispose)

        return Observable(subscribe)

    def lines(self, *_: Any, **__: Any) -> Observable[bytes]:
        raise AssertionError("a BatchTransport's lines are never asked for")

    def push(self, *reads: list[bytes]) -> None:
        for read in reads:
            self.observers[-1].on_next(read)

    def end(self, error: Exception | None = None) -> None:
        observer = self.observers.pop()
        if error is None:
            observer.on_completed()
        else:
            observer.on_error(error)


def manual_stream(scheduler: TestScheduler) -> tuple[TweetStream, Connection[Any], ManualBatches]:
    transport = ManualBatches()
    connection: Connection[Any] = Connection(
        StreamRequest("GET", "http://127.0.0.1:9/2/tweets/sample/stream"),
        to_stream_response,
        transport=transport,
        scheduler=scheduler,
        policy=POLICY,
    )
    return TweetStream(connection), connection, transport


class PerItem:
    """``stream`` as metrics_of sees a stream it cannot tap a read at a time: the same shared
    items (so the same moments), no ``tap_reads``."""

    def __init__(self, stream: Any) -> None:
        self.items = stream.items
        self.stats = stream.stats
        self.connection = SimpleNamespace(partitions=())
        self._stream = stream

    @property
    def connected(self) -> bool:
        return bool(self._stream.connected)


class Pair:
    """One metrics subscription a read at a time and one item by item, on one stream;
    :meth:`snap` takes a snapshot of each (advancing the virtual scheduler one interval)."""

    INTERVAL = 10.0

    def __init__(
        self, stream: Any, scheduler: TestScheduler, clock: Callable[[], float] = lambda: NOW
    ) -> None:
        self.scheduler = scheduler
        self.reads: list[StreamMetrics] = []
        self.items: list[StreamMetrics] = []
        self.subscriptions = [
            metrics_of(stream, self.INTERVAL, scheduler=scheduler, clock=clock).subscribe(
                self.reads.append
            ),
            metrics_of(PerItem(stream), self.INTERVAL, scheduler=scheduler, clock=clock).subscribe(
                self.items.append
            ),
        ]

    def snap(self) -> tuple[StreamMetrics, StreamMetrics]:
        before = len(self.reads)
        self.scheduler.advance_by(self.INTERVAL)
        assert len(self.reads) == len(self.items) == before + 1
        return self.reads[-1], self.items[-1]

    def dispose(self) -> None:
        for subscription in self.subscriptions:
            subscription.dispose()


def figures(m: StreamMetrics, *, with_bytes: bool = True) -> dict[str, Any]:
    """Everything a snapshot counts (the lag quantiles included), comparable with ``==``."""
    out = {
        "messages": m.messages,
        "tweets": m.tweets,
        "keep_alives": m.keep_alives,
        "malformed": m.malformed,
        "operational_disconnects": m.operational_disconnects,
        "reconnects": m.reconnects,
        "causes": dict(m.reconnect_causes),
        "states": {k: (p.state, p.messages, p.reconnects) for k, p in m.partitions.items()},
        "lag_count": m.lag_count,
        "lag_sum": m.lag_sum,
        "lag_p50": m.lag_p50,
        "lag_p99": m.lag_p99,
        "lag_max": m.lag_max,
    }
    if with_bytes:
        out["bytes"] = m.bytes
    return out


# --- lines ----------------------------------------------------------------------------------


def snowflake(created_ms: int, sequence: int = 0) -> str:
    return str(((created_ms - SNOWFLAKE_EPOCH_MS) << 22) | sequence)


def tweet(age_ms: int, text: str = "hi", sequence: int = 0) -> bytes:
    """A tweet line created ``age_ms`` before :data:`NOW`."""
    return orjson.dumps({"data": {"id": snowflake(NOW_MS - age_ms, sequence), "text": text}})


def tweet_with_id(tweet_id: Any) -> bytes:
    return orjson.dumps({"data": {"id": tweet_id, "text": "odd id"}})


KEEP_ALIVE = b""
WHITESPACE = b" \t  "
OPERATIONAL = orjson.dumps(
    {
        "errors": [
            {
                "title": "operational-disconnect",
                "disconnect_type": "UpstreamOperationalDisconnect",
                "detail": "This stream has been disconnected upstream for operational reasons.",
                "type": "https://api.twitter.com/2/problems/operational-disconnect",
            }
        ]
    }
)
#: Same meaning, told by the ``type`` only.
OPERATIONAL_BY_TYPE = orjson.dumps(
    {"errors": [{"type": "https://api.twitter.com/2/problems/operational-disconnect"}]}
)
OTHER_ERROR = orjson.dumps({"errors": [{"title": "ConnectionException", "detail": "x"}]})
DATA_AND_ERRORS = orjson.dumps(
    {
        "data": {"id": snowflake(NOW_MS - 2500), "text": "partial"},
        "errors": [{"title": "operational-disconnect"}],
    }
)
RULES_ONLY = orjson.dumps({"matching_rules": [{"id": "1", "tag": "t"}]})
MALFORMED = [
    b"{",  # truncated
    b"[1, 2]",  # not an object
    b"\xff\xfe{}",  # not UTF-8
    b'{"a":1}{"b":2}',  # two glued
]
#: JSON objects that ``to_stream_response`` refuses: malformed too (``REASON_CONVERT``).
CONVERT_FAILURES = [
    b'{"data": []}',
    tweet_with_id("abc"),
    tweet_with_id(1.5),
    b'{"data":{"id":1180591620717411303424,"text":"beyond 64 bits: a float"}}',
]
#: A tweet with a Snowflake id (3 s old) that convert refuses (``includes`` not an object).
REFUSED_WITH_SNOWFLAKE = b'{"data":{"id":"%s","text":"x"},"includes":[]}' % (
    snowflake(NOW_MS - 3000).encode()
)
#: Tweets (converted) whose id is no Snowflake id: no lag.
NOT_SNOWFLAKES = [
    tweet_with_id("0"),
    tweet_with_id("99999999999999999999999"),
    tweet_with_id(str(2**63)),
    tweet_with_id(None),
    tweet_with_id(snowflake(NOW_MS + 3_600_000)),  # "created" an hour from now
    orjson.dumps({"data": {"text": "no id"}}),
]
HUGE = tweet(7000, text="x" * 300_000)


def run_reads(
    reads: list[list[bytes]], *, clock: Callable[[], float] = lambda: NOW
) -> tuple[StreamMetrics, StreamMetrics, Connection[Any]]:
    """Push ``reads`` through a read-tapped stream with one consumer; one snapshot each way."""
    scheduler = TestScheduler()
    stream, connection, transport = manual_stream(scheduler)
    pair = Pair(stream, scheduler, clock)
    consumer = stream.items.subscribe(lambda _: None)
    assert len(connection._read_taps) == 1  # the stream itself is counted a read at a time
    transport.push(*(list(read) for read in reads))
    by_read, by_item = pair.snap()
    consumer.dispose()
    pair.dispose()
    return by_read, by_item, connection


def hand_count(reads: list[list[bytes]]) -> dict[str, int]:
    """What the lines are, counted independently of rxtweet's parser."""
    messages = tweets = keep_alives = malformed = disconnects = message_bytes = 0
    for line in (line for read in reads for line in read):
        if not line.strip():
            keep_alives += 1
            continue
        try:
            doc = orjson.loads(line)
            if not isinstance(doc, dict):
                raise TypeError(doc)
            data = doc.get("data")
            if data is not None and not isinstance(data, dict):
                raise TypeError(data)
        except (ValueError, TypeError):
            malformed += 1
            continue
        messages += 1
        message_bytes += len(line)
        if data is not None:
            tweets += 1
        elif any(
            e.get("title") == "operational-disconnect"
            or str(e.get("type", "")).endswith("/operational-disconnect")
            for e in doc.get("errors", ())
        ):
            disconnects += 1
    return {
        "messages": messages,
        "tweets": tweets,
        "keep_alives": keep_alives,
        "malformed": malformed,
        "operational_disconnects": disconnects,
        "message_bytes": message_bytes,
    }


# --- 1. the counts of mixed reads equal the per-item ones -----------------------------------

MIXED_READS: list[list[bytes]] = [
    [tweet(1000), KEEP_ALIVE, tweet(2000), MALFORMED[0], OPERATIONAL, WHITESPACE, tweet(3000)],
    [OPERATIONAL_BY_TYPE],  # a read of one system message: no tweet
    [tweet(4000), *MALFORMED[1:], KEEP_ALIVE, KEEP_ALIVE, OTHER_ERROR],
    [DATA_AND_ERRORS, RULES_ONLY, *NOT_SNOWFLAKES, tweet(500)],
    [HUGE],
    [WHITESPACE, tweet(9000, sequence=7), WHITESPACE],
]


def test_mixed_reads_count_as_item_by_item_and_as_by_hand() -> None:
    by_read, by_item, _ = run_reads(MIXED_READS)
    assert figures(by_read, with_bytes=False) == figures(by_item, with_bytes=False)
    hand = hand_count(MIXED_READS)
    assert (by_read.messages, by_read.tweets, by_read.keep_alives) == (
        hand["messages"],
        hand["tweets"],
        hand["keep_alives"],
    )
    assert (by_read.malformed, by_read.operational_disconnects) == (
        hand["malformed"],
        hand["operational_disconnects"],
    )
    # Lags: the tweets with a Snowflake id created in the past (1, 2, 3, 4, 2.5, 0.5, 7,
    # 9 s ago) and the odd ids that still are positive 63-bit integers ("0" is not; the one
    # an hour ahead is refused).
    odd = [lag_of(i, NOW) for i in ("0", "99999999999999999999999", str(2**63))]
    assert odd == [None, None, None]
    assert by_read.lag_count == 8
    assert by_read.lag_max == pytest.approx(9.0)
    assert by_read.lag_sum == pytest.approx(1 + 2 + 3 + 4 + 2.5 + 0.5 + 7 + 9)
    # Bytes: item by item, the messages' lines; a read at a time, every line of a read that
    # has a message (documented: malformed and whitespace lines included).
    assert by_item.bytes == hand["message_bytes"]
    assert by_read.bytes == sum(len(line) for read in MIXED_READS for line in read)


def test_reconnects_causes_and_states_as_item_by_item() -> None:
    scheduler = TestScheduler()
    stream, connection, transport = manual_stream(scheduler)
    pair = Pair(stream, scheduler)
    consumer = stream.items.subscribe(lambda _: None)
    transport.push([tweet(100), OPERATIONAL])
    transport.end(StreamConnectionError("cut"))
    scheduler.advance_by(1.0)  # the reconnect wait
    transport.push([tweet(200), KEEP_ALIVE])
    transport.end(StallError(20))
    scheduler.advance_by(1.0)
    transport.end(TwitterServerError(503))
    scheduler.advance_by(1.0)
    transport.push([tweet(300)])
    assert transport.attempts == 4
    first_read, first_item = pair.snap()
    assert figures(first_read) == figures(first_item)
    assert first_read.reconnects == 3
    assert dict(first_read.reconnect_causes) == {"network": 1, "stall": 1, "http_503": 1}
    assert first_read.partitions[None].state == "connected"
    assert (first_read.tweets, first_read.operational_disconnects) == (3, 1)
    consumer.dispose()
    second_read, second_item = pair.snap()
    assert figures(second_read) == figures(second_item)
    assert second_read.partitions[None].state == "disconnected"
    pair.dispose()
    assert not connection._read_taps


def test_lines_that_convert_refuses_count_as_malformed() -> None:
    by_read, by_item, _ = run_reads([[tweet(1000), *CONVERT_FAILURES, KEEP_ALIVE]])
    assert by_item.malformed == len(CONVERT_FAILURES)
    assert by_read.malformed == by_item.malformed


@pytest.mark.parametrize(
    "refused", [REFUSED_WITH_SNOWFLAKE, tweet_with_id(1.5)], ids=["includes-a-list", "id-1.5"]
)
def test_a_line_the_parser_refused_gets_no_lag(refused: bytes) -> None:
    by_read, by_item, _ = run_reads([[tweet(1000), refused]])
    assert (by_item.tweets, by_item.malformed, by_item.lag_count) == (1, 1, 1)
    assert (by_read.tweets, by_read.lag_count, by_read.lag_max) == (1, 1, 1.0)


def test_bytes_do_not_depend_on_how_lines_are_grouped_into_reads() -> None:
    lines = [tweet(100), WHITESPACE, MALFORMED[0], tweet(200)]
    together, _, _ = run_reads([lines])
    apart, _, _ = run_reads([lines[:1], lines[1:3], lines[3:]])
    assert figures(together) == figures(apart)


def test_a_tweet_only_the_fallback_decoder_accepts_has_its_lag() -> None:
    lone = b'{"data":{"id":"%s","text":"cut emoji \\ud83d"}}' % snowflake(NOW_MS - 4000).encode()
    by_read, by_item, _ = run_reads([[tweet(1000), lone]])
    assert by_item.tweets == by_read.tweets == 2
    assert by_item.lag_count == 2
    assert figures(by_read) == figures(by_item)


# --- 5. lag: exact phase, stride, straddle, intervals, clock --------------------------------


def stride_expected(lags: list[float], before: int) -> tuple[int, float]:
    """Hand count of the lags measured in one interval of tweets whose lags are ``lags``
    (all Snowflake ids), ``before`` tweets having come in earlier intervals."""
    measured = [
        lag
        for n, lag in enumerate(lags, start=before + 1)
        if n - before <= LAG_EXACT or n % LAG_STRIDE == 0
    ]
    return len(measured), sum(measured)


def split(lines: list[bytes], rng: random.Random, most: int) -> list[list[bytes]]:
    reads: list[list[bytes]] = []
    while len(lines) > sum(map(len, reads)):
        start = sum(map(len, reads))
        reads.append(lines[start : start + rng.randint(1, most)])
    return reads


@pytest.mark.parametrize("seed", range(6))
def test_lag_exact_phase_then_stride_across_reads_and_intervals(seed: int) -> None:
    rng = random.Random(seed)
    scheduler = TestScheduler()
    now = [NOW]
    stream, _, transport = manual_stream(scheduler)
    pair = Pair(stream, scheduler, lambda: now[0])
    consumer = stream.items.subscribe(lambda _: None)
    before = 0
    for interval, size in enumerate((LAG_EXACT + 700, 37, LAG_EXACT * 2 + 5)):
        # Each tweet a distinct age (ms), so the lag sum says which tweets were measured.
        ages = [rng.randint(1, 60_000) for _ in range(size)]
        lines = [tweet(age, sequence=n % 4096) for n, age in enumerate(ages)]
        # Reads of every size: many straddle LAG_EXACT and the stride's multiples; the
        # first interval has one read covering LAG_EXACT exactly at its end.
        reads = split(lines, rng, most=rng.choice((3, 64, 700)))
        if interval == 0:
            reads = [
                lines[: LAG_EXACT - 5],
                lines[LAG_EXACT - 5 : LAG_EXACT],
                *split(lines[LAG_EXACT:], rng, 90),
            ]
        now[0] = NOW + interval  # the clock injected: lags against it
        transport.push(*reads)
        by_read, by_item = pair.snap()
        assert figures(by_read) == figures(by_item)
        count, total = stride_expected([now[0] - NOW + age / 1000 for age in ages], before)
        assert by_read.lag_count == count
        assert by_read.lag_sum == pytest.approx(total)
        assert by_read.tweets == size
        before += size
    consumer.dispose()
    pair.dispose()


def test_the_clock_injected_is_the_one_read_for_every_lag() -> None:
    calls = [0]

    def clock() -> float:
        calls[0] += 1
        return NOW + 100.0

    by_read, by_item, _ = run_reads([[tweet(1000), tweet(3000)], [tweet(5000)]], clock=clock)
    assert by_read.lag_p50 == pytest.approx(103.0)
    assert by_read.lag_max == pytest.approx(105.0)
    assert figures(by_read) == figures(by_item)
    assert calls[0] > 0


NON_TWEET_LINES = {
    "keep-alives": [KEEP_ALIVE] * 24,
    "system messages": [OPERATIONAL] * 24,
    "ids that are no Snowflake": [tweet_with_id("abc")] * 24,
    "malformed lines": [MALFORMED[0]] * 24,
}


@pytest.mark.parametrize(
    ("phase", "filler"),
    [
        *(("straddling LAG_EXACT", name) for name in NON_TWEET_LINES),
        # Tweets without a Snowflake id count in the stride's numbering: no shift there.
        *(("striding", name) for name in NON_TWEET_LINES if "Snowflake" not in name),
    ],
)
def test_lines_that_are_no_tweet_do_not_shift_the_lag_sample(phase: str, filler: str) -> None:
    lines = NON_TWEET_LINES[filler]
    if phase == "striding":
        # LAG_EXACT tweets measured; then tweet number LAG_EXACT + 1 is no multiple of
        # LAG_STRIDE, behind LAG_STRIDE - 1 other lines (where a stride pick falls).
        first = [tweet(1000 + n) for n in range(LAG_EXACT)]
        second = [*([lines[0]] * (LAG_STRIDE - 1)), tweet(50)]
    else:
        # 1000 tweets measured; the next read begins with 24 lines that are no tweet:
        # the next 24 tweets are the interval's exact ones, then one in LAG_STRIDE.
        first = [tweet(1000 + n) for n in range(1000)]
        second = [*lines, *(tweet(2000 + n) for n in range(100))]
    by_read, by_item, _ = run_reads([first, second])
    assert by_read.lag_count == by_item.lag_count
    assert figures(by_read, with_bytes=False) == figures(by_item, with_bytes=False)


class Refused(Exception):
    """A subscriber's failure."""


@pytest.mark.parametrize("how", ["a disposal", "a subscriber that raises"])
def test_a_read_cut_short_counts_only_what_was_delivered(how: str) -> None:
    scheduler = TestScheduler()
    stream, connection, transport = manual_stream(scheduler)
    pair = Pair(stream, scheduler)
    got: list[Any] = []
    lines = [tweet(1000 + n) for n in range(10)]
    if how == "a disposal":
        stream.tweets.pipe(ops.take(3)).subscribe(got.append)  # the last subscriber leaves
        transport.push(lines)
    else:

        def fussy(tweet: Any) -> None:
            got.append(tweet)
            if len(got) == 3:
                raise Refused

        stream.tweets.subscribe(fussy, lambda _: None)
        with pytest.raises(Refused):  # the scripted reader lets it through
            transport.push(lines)
    assert len(got) == 3
    by_read, by_item = pair.snap()
    assert (by_item.tweets, by_item.lag_count) == (3, 3)
    assert by_read.tweets == 3
    assert by_read.lag_count <= by_read.tweets
    assert figures(by_read) == figures(by_item)
    pair.dispose()
    assert not connection._read_taps


# --- a slow consumer behind a real socket ----------------------------------------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def live_tweet() -> bytes:
    """A tweet created now (whole milliseconds)."""
    return orjson.dumps({"data": {"id": snowflake(round(time.time() * 1000)), "text": "now"}})


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket, bytes], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Callable[[socket.socket, bytes], None]) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        assert server.close() == []


def client_stream(url: str) -> Any:
    return StreamingClient("t0ken", base_url=url, reconnect=POLICY).sample_stream()


def test_a_slow_consumer_does_not_inflate_the_lag(
    serve: Callable[[Callable[[socket.socket, bytes], None]], RawServer],
) -> None:
    # One chunk: a tweet created now, then 30 keep-alives the consumer takes 10 ms each.
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD)
        conn.sendall(chunk(live_tweet() + b"\r\n" + b"\r\n" * 30))
        server.stop.wait(3)

    server = serve(handler)
    stream = client_stream(server.url)
    scheduler = TestScheduler()
    pair = Pair(stream, scheduler, time.time)
    seen: list[Any] = []

    def slow(item: Any) -> None:
        seen.append(item)
        time.sleep(0.01)

    ended, untap = sentinel(connections_of(stream)[0])
    consumer = stream.items.subscribe(slow)
    # Connected, the tweet, 30 keep-alives (one read, unless loopback split the chunk).
    assert wait_until(lambda: sum(len(r.lines) for r in ended) == 31)
    assert len(seen) == 32
    consumer.dispose()
    untap.dispose()
    by_read, by_item = pair.snap()
    pair.dispose()
    assert (by_read.tweets, by_item.tweets, by_read.keep_alives) == (1, 1, 30)
    assert by_item.lag_max is not None and by_item.lag_max < 0.1  # seen when it arrived
    assert by_read.lag_max is not None and by_read.lag_max < 0.1


# --- 2. several observers at once, churn mid-read, no leftovers ------------------------------


def sentinel(connection: Connection[Any]) -> tuple[list[Any], abc.DisposableBase]:
    """A read tap registered after the others: the taps run in order, so once it has a read,
    every tap before it has it too. Its reads, and its disposable."""
    reads: list[Any] = []
    return reads, connection.tap_reads(reads.append, lambda _: None, lambda _: None)


def connections_of(stream: Any) -> list[Connection[Any]]:
    source = stream.connection
    source = getattr(source, "source", source)  # under a de-duplication
    keyed = getattr(source, "keyed", None)  # a merge of partitions or replicas
    return list(keyed.values()) if keyed is not None else [source]


def test_two_metrics_and_prometheus_on_one_stream_agree_and_leave_nothing() -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    from rxtweet.metrics import serve_prometheus

    start = time.time()
    sent = [
        {"data": {"id": snowflake(round(start * 1000) - 1000 * (n % 7 + 1), n), "text": f"t{n}"}}
        for n in range(600)
    ]
    clock = lambda: start + 10.0  # noqa: E731 - one fixed time: the three lags agree
    with FakeStreamServer(messages=sent, keepalive_interval=None, fields="all") as server:
        server.script(Attempt(messages=250, ending="cut", chunking="random", seed=5))
        stream = StreamingClient("t0ken", base_url=server.url, reconnect=POLICY).sample_stream()
        scheduler = TestScheduler()
        snaps: list[list[StreamMetrics]] = [[], []]
        subscriptions = [
            metrics_of(stream, 1.0, scheduler=scheduler, clock=clock).subscribe(snaps[0].append),
            stream.metrics(1.0, scheduler=scheduler, clock=clock).subscribe(snaps[1].append),
        ]
        with serve_prometheus(stream, port=0, clock=clock) as exporter:
            (connection,) = connections_of(stream)
            assert len(connection._read_taps) == 3
            ended, untap = sentinel(connection)
            tweets: list[Any] = []
            consumer = stream.tweets.subscribe(tweets.append)
            assert wait_until(lambda: sum(r.messages for r in ended) == 600)
            assert len(tweets) == 600
            untap.dispose()
            scheduler.advance_by(1.0)
            with urllib.request.urlopen(exporter.url, timeout=2) as response:
                text = response.read().decode()
            consumer.dispose()
        for subscription in subscriptions:
            subscription.dispose()
    assert not connection._read_taps
    assert not [t for t in threading.enumerate() if t.name == "rxtweet-metrics-http"]
    first, second = snaps[0][-1], snaps[1][-1]
    assert figures(first) == figures(second)
    assert (first.messages, first.tweets, first.reconnects) == (600, 600, 1)
    assert first.bytes == sum(len(orjson.dumps(m)) for m in sent)
    assert first.lag_count == 600  # all under LAG_EXACT: each measured
    scraped = {
        sample.name: sample.value
        for family in parser.text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels.get("quantile")
        and "cause" not in sample.labels
        and "state" not in sample.labels
    }
    assert scraped["rxtweet_messages_total"] == first.messages
    assert scraped["rxtweet_tweets_total"] == first.tweets
    assert scraped["rxtweet_bytes_total"] == first.bytes
    assert scraped["rxtweet_lag_seconds_count"] == first.lag_count
    assert scraped["rxtweet_lag_seconds_sum"] == pytest.approx(first.lag_sum)


def test_taps_and_metrics_come_and_go_from_another_thread_mid_read(
    serve: Callable[[Callable[[socket.socket, bytes], None]], RawServer],
) -> None:
    second_read = threading.Event()

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD)
        conn.sendall(chunk(b"".join(live_tweet() + b"\r\n" for _ in range(10))))
        second_read.wait(3)
        conn.sendall(chunk(b"".join(live_tweet() + b"\r\n" for _ in range(5)) + b"\r\n"))
        server.stop.wait(3)

    server = serve(handler)
    stream = client_stream(server.url)
    (connection,) = connections_of(stream)
    scheduler = TestScheduler()
    early: list[StreamMetrics] = []
    late: list[StreamMetrics] = []
    first = metrics_of(stream, 1.0, scheduler=scheduler).subscribe(early.append)
    # A metrics subscription on the default scheduler (timer threads), disposed mid-read.
    on_timer = stream.metrics(0.02).subscribe(lambda _: None)
    old_reads: list[Any] = []
    old = connection.tap_reads(old_reads.append, old_reads.append, lambda _: None)
    new_reads: list[Any] = []
    inside = threading.Event()
    release = threading.Event()
    tweets: list[Any] = []

    def consumer(tweet: Any) -> None:
        tweets.append(tweet)
        if len(tweets) == 5:  # the reader thread, in the middle of the first read
            inside.set()
            release.wait(3)

    subscription = stream.tweets.subscribe(consumer)
    assert inside.wait(3)
    # From this (another) thread, while the reader is blocked mid-read:
    old.dispose()
    on_timer.dispose()
    new = connection.tap_reads(new_reads.append, new_reads.append, lambda _: None)
    later = metrics_of(stream, 1.0, scheduler=scheduler).subscribe(late.append)
    ended, untap = sentinel(connection)
    with pytest.raises(ValueError, match="one data_of"):
        connection.tap_reads(print, print, print, data_of=operator.itemgetter(0))
    release.set()
    assert wait_until(lambda: len(tweets) == 10)
    second_read.set()
    assert wait_until(lambda: ended)  # the second read reached every tap
    assert len(tweets) == 15
    untap.dispose()
    scheduler.advance_by(1.0)
    subscription.dispose()
    # The tap disposed mid-read got that read (documented: at most once more), then nothing;
    # the one added mid-read nothing of it, then the next read whole.
    assert [r.messages for r in old_reads] == [10]
    assert [r.messages for r in new_reads if hasattr(r, "messages")] == [5]
    assert [r for r in new_reads if not hasattr(r, "messages")] == [KeepAlive()]
    assert (early[-1].tweets, early[-1].messages, early[-1].keep_alives) == (15, 15, 1)
    assert (late[-1].tweets, late[-1].messages, late[-1].keep_alives) == (5, 5, 1)
    new.dispose()
    new.dispose()  # idempotent
    later.dispose()
    assert len(connection._read_taps) == 1  # the early metrics' only
    first.dispose()
    assert not connection._read_taps
    assert wait_until(lambda: not stream.connected)
    assert wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith(WAIT)])


# --- 3. a callback or an observer that raises ------------------------------------------------


@pytest.mark.parametrize("path", ["a read at a time", "item by item"])
def test_a_metrics_callback_that_raises_is_logged_once_and_the_stream_goes_on(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    broken = [False]

    def clock() -> float:  # fails on the delivering side only while `broken`
        if broken[0]:
            raise RuntimeError("clock gone")
        return NOW

    scheduler = TestScheduler()
    stream, connection, transport = manual_stream(scheduler)
    observed = stream if path == "a read at a time" else PerItem(stream)
    snaps: list[StreamMetrics] = []
    metrics = metrics_of(observed, 1.0, scheduler=scheduler, clock=clock).subscribe(snaps.append)
    assert len(connection._read_taps) == (path == "a read at a time")
    got: list[Any] = []
    consumer = stream.tweets.subscribe(got.append)
    broken[0] = True
    with caplog.at_level(logging.DEBUG, logger="rxtweet"):
        for n in range(50):
            transport.push([tweet(1000 + n), KEEP_ALIVE, tweet(2000 + n)])
    broken[0] = False
    assert len(got) == 100  # every tweet reached the consumer
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert "clock gone" in str(errors[0].exc_info[1])
    scheduler.advance_by(1.0)
    # What was counted before the failing lag stays exact.
    assert (snaps[-1].messages, snaps[-1].tweets, snaps[-1].lag_count) == (100, 100, 0)
    consumer.dispose()
    metrics.dispose()
    assert not connection._read_taps


def test_a_snapshot_observer_that_raises_stops_its_snapshots_not_the_stream(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hooked: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    calls = [0]

    def observer(_: StreamMetrics) -> None:
        calls[0] += 1
        raise RuntimeError("dashboard down")

    def told() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "rxtweet.scheduling"]

    caplog.set_level(logging.ERROR, logger="rxtweet.scheduling")
    with FakeStreamServer(
        messages=generate_v2_messages(seed=4), keepalive_interval=None, default=Attempt(rate=400)
    ) as server:
        stream = client_stream(server.url)
        (connection,) = connections_of(stream)
        metrics = stream.metrics(0.03).subscribe(observer)
        tweets: list[Any] = []
        consumer = stream.tweets.subscribe(tweets.append)
        try:
            # Told through logging (the wait thread's scheduler), not threading.excepthook.
            assert wait_until(lambda: told(), timeout=2)
            seen = len(tweets)
            assert wait_until(lambda: len(tweets) > seen + 20)  # the stream goes on
            time.sleep(0.1)
        finally:
            consumer.dispose()
        assert calls[0] == 1 and len(told()) == 1  # one failure, told once
        assert hooked == []
        exc_info = told()[0].exc_info
        assert exc_info is not None and "dashboard down" in str(exc_info[1])
        assert len(connection._read_taps) == 1  # until the user disposes it
        metrics.dispose()
        assert not connection._read_taps


# --- 4. streams counted item by item: recovery, redundancy, partitions -----------------------

FAST = ReconnectPolicy(network_wait_step=0.01, network_wait_max=0.05, http_wait_start=0.05)

SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "backfill": ("sample", {"recovery": "backfill"}),
    "full": ("sample", {"recovery": "full"}),
    "redundancy=2": ("sample", {"redundancy": 2}),
    "partitions": ("firehose", {"partitions": [1, 2]}),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_recovering_redundant_and_partitioned_streams_report_right(shape: str) -> None:
    endpoint, options = SHAPES[shape]
    with FakeStreamServer(
        messages=generate_v2_messages(seed=2),
        timeline=Timeline(rate=40.0, time_scale=20.0),
        keepalive_interval=0.05,
        match_rules=False,
    ) as server:
        client = StreamingClient("t0ken", base_url=server.url, clock=server.now, reconnect=FAST)
        if endpoint == "firehose":
            stream = client.firehose_stream(**options)
        else:
            stream = client.sample_stream(**options)
        scheduler = TestScheduler()
        snaps: list[StreamMetrics] = []
        metrics = stream.metrics(1.0, scheduler=scheduler, clock=server.now).subscribe(snaps.append)
        connections = connections_of(stream)
        assert not any(c._read_taps for c in connections)  # counted item by item
        ids: list[str] = []
        events: list[Any] = []
        with stream.hold():
            consumer = stream.tweets.subscribe(lambda t: ids.append(str(t.id)))
            watcher = stream.events.subscribe(events.append)
        opened = len(connections)
        assert wait_until(lambda: len(server.open_streams(endpoint)) == opened)
        assert wait_until(lambda: len(ids) > 20)
        server.cut(endpoint=endpoint, connection=server.open_streams(endpoint)[0].connection)
        assert wait_until(lambda: len(server.open_streams(endpoint)) == opened, timeout=3)
        before = len(ids)
        assert wait_until(lambda: len(ids) > before + 20)
        consumer.dispose()
        watcher.dispose()
        scheduler.advance_by(1.0)
        metrics.dispose()
    snap = snaps[-1]
    assert len(ids) == len(set(ids))
    assert snap.tweets == len(ids)  # what the subscribers got, after any de-duplication
    assert snap.duplicates == getattr(stream.stats, "duplicates", 0)
    assert snap.messages >= snap.tweets and snap.malformed == 0
    reconnects = [e for e in events if type(e).__name__ == "Reconnecting"]
    assert snap.reconnects == len(reconnects) >= 1
    assert snap.lag_count == snap.tweets  # fewer than LAG_EXACT: every one measured
    assert snap.lag_max is not None and snap.lag_max < 60.0
    if shape == "partitions":
        assert set(snap.partitions) == {1, 2}
        # A partition's count is its parser's: the message a partition was parsing when the
        # last subscriber left is counted there but delivered to no one (so not in
        # snap.messages). At most one a partition; seen once in a fresh clone.
        parsed = sum(p.messages for p in snap.partitions.values())
        assert snap.messages <= parsed <= snap.messages + len(snap.partitions)
        assert sum(p.reconnects for p in snap.partitions.values()) == snap.reconnects
    if shape == "redundancy=2":
        assert snap.duplicates > 0
    assert not any(c._read_taps for c in connections)


# --- 6. memory: nothing of a read is kept ----------------------------------------------------


class Batch(list[bytes]):
    """A read's list of lines that can be watched (``weakref``)."""

    __slots__ = ("__weakref__",)


def test_a_read_tap_keeps_nothing_of_a_read_and_memory_stays_flat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Each malformed line is a WARNING record, which pytest's capture keeps: not ours.
    caplog.set_level(logging.ERROR, logger="rxtweet.parse")
    scheduler = TestScheduler()
    stream, connection, transport = manual_stream(scheduler)
    pair = Pair(stream, scheduler)
    consumer = stream.items.subscribe(lambda _: None)
    assert len(connection._read_taps) == 1

    def read(n: int) -> Batch:
        return Batch(
            [tweet(n % 50_000 + k, text="m" * (n % 97)) for k in range(20)]
            + [KEEP_ALIVE, OPERATIONAL, MALFORMED[0]]
        )

    watched = read(0)
    gone = weakref.ref(watched)
    transport.push(watched)
    del watched
    assert gone() is None  # without a collection: no cycle holds it either

    def push(reads: range) -> None:
        for n in reads:
            transport.push(read(n))
            if n % 100 == 0:
                pair.snap()  # the interval's lag samples go with it

    gc.collect()
    tracemalloc.start()
    try:
        push(range(1, 200))
        gc.collect()
        settled, _ = tracemalloc.get_traced_memory()
        push(range(200, 900))
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - settled < 64 * 1024, f"grew {after - settled} bytes over 700 reads"
    assert sum(s.messages for s in pair.reads) == sum(s.messages for s in pair.items)
    consumer.dispose()
    pair.dispose()
