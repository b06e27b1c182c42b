"""Issue 17's batches (a read's lines at a time) give what the line-at-a-time path gives.

Commit 652e866 moved the hot path to batches: ``RequestsTransport.batches`` hands over one
list of lines per socket read, :class:`~rxtweet.connection.Connection` reconnects and parses
a batch in one loop (stopping at the next line when disposed inside it), and v1.1's
fatal-disconnect guard works on batches. These tests attack that change as a hostile
server, a careless user and a slow consumer would:

* identity (hypothesis): for arbitrary lines cut into arbitrary batches, ``Connection.items``
  is ``lines.pipe(parse_lines(convert, keep_raw=True))`` (items, raw bytes, ParseStats),
  ``Connection.lines`` is the input, and a transport with only ``lines`` gives the same
  whole stream (events included), for v2 and for the v1.1 client's stream;
* over a real local server: ``batches`` flattened is ``lines`` (chunks cut mid-line, tiny
  reads, many lines per read, gzip, a line over ``max_line``);
* disposal inside a batch (from ``on_next``, from another thread while the reader is
  blocked in ``on_next``, through ``take``, through the tweepy face's ``disconnect()``): no
  item after it, the reader ends and the server sees the close at once (a zero window);
* a subscriber's exception mid-batch, v1.1 fatal disconnects mid-batch, cuts and
  reconnects mid-batch, several substreams under ``hold()``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler
from support import RawServer, chunk, get, reader_threads, wait_until
from urllib3.connection import HTTPConnection

import rxtweet
from rxtweet.connection import Connection
from rxtweet.errors import FatalDisconnect, StreamConnectionError, mark_downstream
from rxtweet.events import (
    Connected,
    ConnectionFailed,
    Disconnected,
    Errored,
    KeepAlive,
    MalformedMessage,
    Reconnecting,
)
from rxtweet.http import StreamRequest
from rxtweet.parse import Parsed, ParseStats, parse_lines
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.testing import Attempt, Chunking, FakeStreamServer
from rxtweet.transport import CancellableAdapter, RequestsTransport
from rxtweet.transport_base import TransportOptions
from rxtweet.v1 import Stream
from rxtweet.v1.convert import to_v1_message
from rxtweet.v2.convert import to_stream_response

V2_URL = "https://api.x.com/2/tweets/sample/stream"
KEYS = ("consumer-key", "consumer-secret", "access-token", "access-secret")

#: Reconnects at once, and (without data) gives up after a few attempts.
FAST = ReconnectPolicy(network_wait_step=0.01, network_wait_max=0.02, max_retries=3)


class _Head:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012 - read only


# --- a scripted transport: each attempt's batches, then its end ------------------------------

#: One attempt: its batches, then ``None`` (a clean close) or the exception it fails with.
AttemptScript = tuple[list[list[bytes]], Exception | None]


class EndOfScript(Exception):
    """What an attempt beyond the script fails with: no connection failure, so it ends the
    stream (never retried)."""


class ScriptedLines:
    """A transport with only ``lines`` (each line its own batch inside the connection):
    attempt ``n`` sends the lines of ``attempts[n]``, then ends; one more attempt fails
    with :class:`EndOfScript`.

    Synchronous (everything happens inside ``subscribe``) unless ``threaded``: then a
    thread of its own delivers them once :attr:`go` is set, and stops between batches once
    disposed, as the real reader does (the consumer honours a disposal inside a batch).
    """

    def __init__(self, attempts: list[AttemptScript], *, threaded: bool = False) -> None:
        self.attempts = attempts
        self.threaded = threaded
        self.subscriptions = 0
        self.go = threading.Event()
        self.threads: list[threading.Thread] = []

    def _script(self) -> AttemptScript | None:
        n = self.subscriptions
        self.subscriptions += 1
        return self.attempts[n] if n < len(self.attempts) else None

    def _observable(self, batched: bool, on_response: Any) -> Observable[Any]:
        def subscribe(
            observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            script = self._script()
            if script is None:
                observer.on_error(EndOfScript())
                return Disposable()
            batches, end = script
            cancelled = threading.Event()

            def run() -> None:
                try:
                    deliver()
                except Exception as error:  # as the real reader: the observer's, reported
                    mark_downstream(error)
                    if not cancelled.is_set():
                        observer.on_error(error)

            def deliver() -> None:
                if self.threaded:
                    self.go.wait(5)
                if on_response is not None:
                    on_response(_Head())
                for batch in batches:
                    if cancelled.is_set():
                        return
                    if batched:
                        observer.on_next(list(batch))
                    else:
                        for line in batch:
                            if cancelled.is_set():
                                return
                            observer.on_next(line)
                if cancelled.is_set():
                    return
                if end is None:
                    observer.on_completed()
                else:
                    observer.on_error(end)

            if self.threaded:
                thread = threading.Thread(target=run, name="test-scripted-transport")
                self.threads.append(thread)
                thread.start()
            else:
                run()
            return Disposable(cancelled.set)

        return reactivex.create(subscribe)

    def lines(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Any = None,
        **_: Any,
    ) -> Observable[bytes]:
        return self._observable(False, on_response)


class ScriptedBatches(ScriptedLines):
    """:class:`ScriptedLines` that is a BatchTransport too (``batches``: one list per read)."""

    def batches(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Any = None,
        **_: Any,
    ) -> Observable[list[bytes]]:
        return self._observable(True, on_response)


# --- what the lines give, item by item -------------------------------------------------------


def comparable(items: list[Any]) -> list[Any]:
    """Items as values that compare by content (events by type and what they carry)."""
    out: list[Any] = []
    for item in items:
        if type(item) is Parsed:
            out.append(("parsed", type(item.value).__name__, item.value, item.raw))
        elif type(item) is MalformedMessage:
            out.append(("malformed", item.raw, item.reason))
        elif type(item) is Errored:
            out.append(("Errored", type(item.exception).__name__))
        else:
            out.append((type(item).__name__,))
    return out


PARSE_ITEMS = (Parsed, KeepAlive, MalformedMessage)


def only_parsed(items: list[Any]) -> list[Any]:
    """What the parser made (messages, keep-alives, malformed lines), without the events of
    the connection's life."""
    return [item for item in items if type(item) in PARSE_ITEMS]


def expected(lines: list[bytes], convert: Callable[[dict[str, Any]], Any]) -> tuple[list[Any], Any]:
    """``lines.pipe(parse_lines(convert, keep_raw=True))`` (the Connection's defaults)."""
    stats = ParseStats()
    got: list[Any] = []
    reactivex.from_iterable(lines).pipe(
        parse_lines(convert, stats, keep_raw=True, exact_ints=False)
    ).subscribe(got.append)
    return got, stats.snapshot()


def run_items(observable: Observable[Any], scheduler: TestScheduler) -> tuple[list[Any], Any]:
    """Subscribe until the end (virtual time for the reconnect waits): items and error."""
    got: list[Any] = []
    end: list[Any] = []
    observable.subscribe(got.append, end.append, lambda: end.append("completed"))
    scheduler.advance_by(10_000.0)
    assert end, "the stream did not end"
    return got, end[0]


def flat(attempts: list[AttemptScript]) -> list[bytes]:
    return [line for batches, _ in attempts for batch in batches for line in batch]


# --- hypothesis: arbitrary lines, arbitrary batches, arbitrary ends --------------------------

V2_LINES = [
    b"",
    b"  ",
    b"\t",
    b"\r",
    b'{"data":{"id":"1","text":"a","edit_history_tweet_ids":["1"]}}',
    b'{"data":{"id":"2","text":"b"},"matching_rules":[{"id":3,"tag":null}]}',
    b'{"data":{"id":"4","text":"c","author_id":"9"},"includes":{"users":[{"id":"9","name":"n",'
    b'"username":"u"}]}}',
    b'{"data":{"id":"5","text":"big","n":123456789012345678901234567890}}',
    b'{"data":{"id":"6","text":"neg","n":-92233720368547758080}}',
    b'  {"data":{"id":"7","text":"padded"}}  ',
    b'{"data":{"id":"8","text":"\\ud83d truncated emoji"}}',
    b'{"errors":[{"title":"operational-disconnect","detail":"x"}]}',
    b'{"data":"not an object"}',
    b'{"data":{"id":5.5,"text":"bad id"}}',
    b'{"errors":"boom"}',
    b'{"includes":[]}',
    b"[1,2]",
    b"null",
    b'"a string"',
    b"42",
    b"{not json",
    b'{"data":{"id":"9","text":"cut',
    b'{"a":1}{"b":2}',
    b"NaN",
    b"\xff\xfe not utf-8",
    b'{"data":{"id":"10","text":"caf\xc3',
]

V1_STATUS = (
    b'{"id":%d,"id_str":"%d","text":"s","user":{"id":7,"screen_name":"u"},'
    b'"in_reply_to_status_id":null}'
)
V1_LINES = [
    b"",
    b" ",
    V1_STATUS % (1, 1),
    V1_STATUS % (2, 2),
    b'{"delete":{"status":{"id":3,"id_str":"3","user_id":7,"user_id_str":"7"}}}',
    b'{"limit":{"track":12,"timestamp_ms":"1"}}',
    b'{"limit":{"track":"many"}}',
    b'{"warning":{"code":"FALLING_BEHIND","message":"m","percent_full":60}}',
    b'{"disconnect":{"code":1,"stream_name":"s","reason":"shutdown"}}',
    b'{"disconnect":{"code":12,"stream_name":"s","reason":"load"}}',
    b'{"disconnect":"not an object"}',
    b'{"friends":[1,2]}',
    b'{"id":12345678901234567890123,"user":{},"text":"x"}',
    b"[1]",
    b"{bad",
]
#: The codes v1.1 ends on (Stream.fatal_disconnect_codes): placed by the tests, one per stream.
V1_SHUTDOWN = b'{"disconnect":{"code":1,"stream_name":"s","reason":"shutdown"}}'
V1_FATAL = [
    b'{"disconnect":{"code":2,"stream_name":"s","reason":"duplicate stream"}}',
    b'{"disconnect":{"code":6,"stream_name":"s","reason":"token revoked"}}',
    b'{"disconnect":{"code":7,"stream_name":"s","reason":"admin logout"}}',
]


def any_line(known: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(known),
        st.binary(max_size=10).filter(lambda b: b"\n" not in b),
        st.dictionaries(
            st.sampled_from(["data", "errors", "includes", "id", "text", "user", "x"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=4)),
            max_size=3,
        ).map(lambda doc: json.dumps(doc).encode()),
    )


def batched(lines: list[bytes], cuts: list[int]) -> list[list[bytes]]:
    """``lines`` cut into non-empty batches after the given positions."""
    points = sorted({cut % (len(lines) + 1) for cut in cuts} | {0, len(lines)})
    return [lines[a:b] for a, b in itertools.pairwise(points) if b > a]


@st.composite
def scripts(draw: st.DrawFn, known: list[bytes]) -> list[AttemptScript]:
    """1-3 attempts, each some lines in some batches, ended by a clean close or a cut."""
    attempts: list[AttemptScript] = []
    for _ in range(draw(st.integers(1, 3))):
        lines = draw(st.lists(any_line(known), max_size=14))
        cuts = draw(st.lists(st.integers(0, 20), max_size=6))
        end = draw(st.sampled_from([None, "cut"]))
        error = StreamConnectionError("cut") if end == "cut" else None
        attempts.append((batched(lines, cuts), error))
    return attempts


def v2_connection(transport: Any, scheduler: TestScheduler) -> Connection[Any]:
    return Connection(
        StreamRequest("GET", V2_URL), to_stream_response, transport=transport, scheduler=scheduler
    )


@settings(max_examples=150, deadline=None)
@given(attempts=scripts(V2_LINES))
def test_v2_items_are_parse_lines_of_the_lines(attempts: list[AttemptScript]) -> None:
    scheduler = TestScheduler()
    connection = v2_connection(ScriptedBatches(attempts), scheduler)
    items, end = run_items(connection.items, scheduler)
    want, want_stats = expected(flat(attempts), to_stream_response)
    assert comparable(only_parsed(items)) == comparable(want)
    assert connection.stats.snapshot() == want_stats
    assert isinstance(end, EndOfScript)
    assert comparable(items[-2:]) == [("Errored", "EndOfScript"), ("Disconnected",)]

    # Connection.lines: the input, in order, across the reconnects.
    scheduler = TestScheduler()
    lines, end = run_items(v2_connection(ScriptedBatches(attempts), scheduler).lines, scheduler)
    assert lines == flat(attempts)
    assert isinstance(end, EndOfScript)


@settings(max_examples=100, deadline=None)
@given(attempts=scripts(V2_LINES))
def test_a_transport_with_only_lines_gives_the_same_stream(attempts: list[AttemptScript]) -> None:
    # The whole stream, events and their places included: batches change nothing visible.
    runs = []
    for transport in (ScriptedBatches(attempts), ScriptedLines(attempts)):
        scheduler = TestScheduler()
        connection = v2_connection(transport, scheduler)
        items, end = run_items(connection.items, scheduler)
        runs.append((comparable(items), repr(end), connection.stats.snapshot()))
    assert runs[0] == runs[1]


def v1_stream(transport: Any, scheduler: TestScheduler) -> Any:
    client = Stream(*KEYS, transport=transport, scheduler=scheduler)
    return client.sample_stream()


@settings(max_examples=100, deadline=None)
@given(
    attempts=scripts(V1_LINES), fatal=st.none() | st.tuples(st.integers(0, 50), st.integers(0, 2))
)
def test_v1_items_are_parse_lines_of_the_lines(
    attempts: list[AttemptScript], fatal: tuple[int, int] | None
) -> None:
    # v1.1 adds its fatal-disconnect guard on batches: a fatal disconnect placed anywhere
    # (start, middle or end of a batch) is delivered, and nothing after it.
    if fatal is not None:
        where, which = fatal
        batches, end = attempts[0]
        lines = [line for batch in batches for line in batch]
        at = where % (len(lines) + 1)
        lines.insert(at, V1_FATAL[which])
        cut = [c for c in range(len(lines)) if c % 3 == where % 3]
        attempts = [(batched(lines, cut), end), *attempts[1:]]
    scheduler = TestScheduler()
    transport = ScriptedBatches(attempts)
    stream = v1_stream(transport, scheduler)
    items, end_ = run_items(stream.items, scheduler)
    made = flat(attempts)
    if fatal is not None:
        made = made[: made.index(V1_FATAL[fatal[1]]) + 1]
        assert transport.subscriptions == 1
        assert isinstance(end_, FatalDisconnect)
    else:
        assert isinstance(end_, EndOfScript)
    want, want_stats = expected(made, to_v1_message)
    assert comparable(only_parsed(items)) == comparable(want)
    assert stream.stats.snapshot() == want_stats

    # The same through a transport with only lines (one line per batch).
    scheduler = TestScheduler()
    items_lines, end_lines = run_items(
        v1_stream(ScriptedLines(attempts), scheduler).items, scheduler
    )
    assert comparable(items_lines) == comparable(items)
    assert repr(end_lines) == repr(end_)


# --- over a real server: batches flattened are the lines -------------------------------------

RAW_LINES = [
    b"",
    b'{"data":{"id":"1","text":"a"}}',
    b'{"data":{"id":"2","text":"caf\xc3\xa9 \xf0\x9f\x90\x8d"}}',
    b"x" * 300,
    b"  ",
    b"{not json",
]


def respond(pieces: list[bytes], *, framing: str = "chunked", encoding: str | None = None) -> Any:
    """A handler sending ``pieces`` (the body's bytes, after any encoding) each as one HTTP
    chunk (``framing="chunked"``), or as raw writes of a body ended by the close
    (``"close"``) or of a ``Content-Length`` (``"length"``, the connection closed after
    it), with a short pause between them so that most land in reads of their own."""
    body_size = sum(len(piece) for piece in pieces)

    def handler(conn: Any, _: bytes) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        if encoding:
            head += b"Content-Encoding: %s\r\n" % encoding.encode()
        if framing == "chunked":
            head += b"Transfer-Encoding: chunked\r\n\r\n"
        elif framing == "length":
            head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % body_size
        else:
            head += b"Connection: close\r\n\r\n"
        conn.sendall(head)
        for piece in pieces:
            if piece:
                conn.sendall(chunk(piece) if framing == "chunked" else piece)
                time.sleep(0.001)
        if framing == "chunked":
            conn.sendall(b"0\r\n\r\n")

    return handler


def split_lines(body: bytes) -> list[bytes]:
    """The complete lines of ``body``, without ``\\n`` and one trailing ``\\r`` (an
    independent statement of what the transport must give)."""
    lines = body.split(b"\n")[:-1]
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


def read_both(
    url: str, options: TransportOptions
) -> tuple[list[list[bytes]], list[bytes], BaseException | None, BaseException | None]:
    transport = RequestsTransport()
    batches, batches_end = collect(transport.batches(get(url), options))
    lines, lines_end = collect(transport.lines(get(url), options))
    return batches, lines, batches_end, lines_end


def collect(observable: Observable[Any], timeout: float = 3.0) -> tuple[list[Any], Any]:
    """Everything ``observable`` sends until it ends, and its error (``None``: completed)."""
    items: list[Any] = []
    ends: list[Any] = []
    done = threading.Event()

    def on_error(error: Exception) -> None:
        ends.append(error)
        done.set()

    def on_completed() -> None:
        ends.append(None)
        done.set()

    subscription = observable.subscribe(items.append, on_error, on_completed)
    assert done.wait(timeout), "the stream neither completed nor failed"
    subscription.dispose()
    return items, ends[0]


@settings(max_examples=30, deadline=None)
@given(
    lines=st.lists(st.sampled_from(RAW_LINES), min_size=1, max_size=30),
    crlf=st.booleans(),
    tail=st.sampled_from([b"", b'{"data":{"id":"3"']),
    points=st.lists(st.integers(0, 10_000), max_size=5),
    chunk_size=st.sampled_from([1, 7, 64, 65536]),
    encoding=st.sampled_from([None, "gzip"]),
    framing=st.sampled_from(["chunked", "close"]),
)
def test_batches_flattened_are_the_lines_over_a_real_socket(
    lines: list[bytes],
    crlf: bool,
    tail: bytes,
    points: list[int],
    chunk_size: int,
    encoding: str | None,
    framing: str,
) -> None:
    # Chunks and reads cut anywhere (mid-line, mid-CRLF, mid-UTF-8 character, mid-gzip
    # block), a read of a few bytes or of everything: the same lines, whatever the framing.
    end = b"\r\n" if crlf else b"\n"
    body = b"".join(line + end for line in lines) + tail
    data = gzip.compress(body) if encoding else body
    with RawServer(respond(cut(data, points), framing=framing, encoding=encoding)) as server:
        options = TransportOptions(chunk_size=chunk_size, stall_timeout=2.0)
        batches, flat_lines, batches_end, lines_end = read_both(server.url, options)
    assert all(type(batch) is list and batch for batch in batches)  # one non-empty list a read
    assert [line for batch in batches for line in batch] == flat_lines == split_lines(body)
    assert batches_end is None and lines_end is None


def test_many_lines_per_read_keep_each_batch_whole_and_fresh() -> None:
    # 2,000 small lines in one write: a few reads, hundreds of lines each; the lists handed
    # over are the transport's no more (kept by the test, they stay intact).
    lines = [b'{"data":{"id":"%d","text":"t"}}' % i for i in range(2000)]
    body = b"".join(line + b"\r\n" for line in lines)
    with RawServer(respond([body])) as server:
        batches, flat_lines, _, _ = read_both(server.url, TransportOptions(stall_timeout=2.0))
    assert [line for batch in batches for line in batch] == flat_lines == lines
    assert len(batches) < 100 and max(len(batch) for batch in batches) > 50
    assert len({id(batch) for batch in batches}) == len(batches)


def test_a_line_over_max_line_is_dropped_alike_inside_a_batch() -> None:
    lines = [b"a" * 10, b"b" * 100, b"c" * 10, b"d" * 64, b"e" * 65]
    body = b"".join(line + b"\r\n" for line in lines)
    dropped: dict[str, list[int]] = {"batches": [], "lines": []}
    with RawServer(respond([body[:50], body[50:]])) as server:
        transport = RequestsTransport()
        options = TransportOptions(max_line=64, stall_timeout=2.0)
        batches, _ = collect(
            transport.batches(get(server.url), options, on_line_dropped=dropped["batches"].append)
        )
        flat_lines, _ = collect(
            transport.lines(get(server.url), options, on_line_dropped=dropped["lines"].append)
        )
    assert [line for batch in batches for line in batch] == flat_lines
    assert flat_lines == [b"a" * 10, b"c" * 10, b"d" * 64]
    assert len(dropped["batches"]) == len(dropped["lines"]) == 2


@pytest.mark.parametrize("chunking", ["random", "byte"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_fake_stream_server_batches_are_its_lines(chunking: Chunking, gzipped: bool) -> None:
    # The project's own fake X: random chunk sizes or a byte per chunk, gzip sync-flushed per
    # message. Each attempt takes the next 40 messages of the shared cursor.
    messages = [b'{"data":{"id":"%d","text":"%s"}}' % (i, b"t" * (i % 50)) for i in range(80)]
    with FakeStreamServer(messages, bearer_token="t0ken", fields="all") as server:
        attempt = Attempt(messages=40, ending="close", chunking=chunking, gzip=gzipped, seed=3)
        server.script(attempt, attempt)
        request = StreamRequest(
            "GET", server.url + "/2/tweets/sample/stream", headers={"Authorization": "Bearer t0ken"}
        )
        transport = RequestsTransport()
        options = TransportOptions(stall_timeout=2.0)
        batches, batches_end = collect(transport.batches(request, options))
        flat_lines, lines_end = collect(transport.lines(request, options))
    assert batches_end is None and lines_end is None
    got = [line for batch in batches for line in batch]
    assert [line for line in got if line] == messages[:40]
    assert [line for line in flat_lines if line] == messages[40:]


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_content_length_body_ends_cleanly_with_all_its_lines(gzipped: bool) -> None:
    lines = [b'{"data":{"id":"%d","text":"a"}}' % i for i in range(50)]
    body = b"".join(line + b"\n" for line in lines)
    data = gzip.compress(body) if gzipped else body
    encoding = "gzip" if gzipped else None
    with RawServer(respond([data], framing="length", encoding=encoding)) as server:
        options = TransportOptions(chunk_size=512, stall_timeout=2.0)  # tweepy's chunk_size
        batches, flat_lines, batches_end, lines_end = read_both(server.url, options)
    assert [line for batch in batches for line in batch] == flat_lines == lines
    assert batches_end is None and lines_end is None


# --- disposal inside a batch, over a real server --------------------------------------------

CHUNKED_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def tweet(n: int, pad: int = 0) -> bytes:
    return b'{"data":{"id":"%d","text":"t%s"}}' % (n, b"x" * pad)


class Flood:
    """A handler that writes ~1 KB tweets, 64 per chunk, as fast as the socket takes them,
    until a write fails: the server of a slow consumer. :attr:`ended` is when its write
    failed (the client's close seen), :attr:`sent` the tweets written so far."""

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause  # between the head and the body
        self.sent = 0
        self.ended: float | None = None
        self.error: OSError | None = None

    def __call__(self, conn: Any, _: bytes) -> None:
        try:
            conn.sendall(CHUNKED_200)
            time.sleep(self.pause)
            while True:
                body = b"".join(tweet(self.sent + i, 1000) + b"\r\n" for i in range(64))
                conn.sendall(chunk(body))
                self.sent += 64
        except OSError as error:
            self.error = error
        self.ended = time.monotonic()

    def wait_blocked(self) -> None:
        """Until the socket is full (nothing written for 50 ms): a zero window."""
        assert wait_until(lambda: self.sent > 0, 2.0)
        last = -1
        while self.sent != last:
            last = self.sent
            time.sleep(0.05)


class _SmallWindowAdapter(CancellableAdapter):
    """Client sockets with a small receive buffer (no autotuning): one read of the reader
    (64 KiB) can take all that is unread, as on a slow link; the case where reading once
    more after a disposal drained the socket."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        options = [*HTTPConnection.default_socket_options]
        kwargs["socket_options"] = [*options, (socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)]
        super().init_poolmanager(*args, **kwargs)


def small_window_transport() -> RequestsTransport:
    session = requests.Session()
    session.mount("http://", _SmallWindowAdapter())
    return RequestsTransport(session)


@pytest.fixture
def no_reader_left() -> Iterator[None]:
    yield
    assert wait_until(lambda: not reader_threads(), 2.0), reader_threads()


def v2_over(url: str, transport: Any = None, **kwargs: Any) -> Connection[Any]:
    return Connection(
        StreamRequest("GET", url + "/2/tweets/sample/stream"),
        to_stream_response,
        transport=transport,
        stall_timeout=2.0,
        **kwargs,
    )


def ids(items: list[Any]) -> list[int]:
    return [int(item.value.data.id) for item in items if type(item) is Parsed]


def transport_for(window: str) -> RequestsTransport | None:
    return small_window_transport() if window == "small" else None


@pytest.mark.usefixtures("no_reader_left")
@pytest.mark.parametrize("window", ["small", "default"])
def test_dispose_from_on_next_inside_a_batch_stops_there_and_resets_the_server(
    window: str,
) -> None:
    flood = Flood()
    with RawServer(flood) as server:
        connection = v2_over(server.url, transport_for(window), policy=FAST)
        got: list[Any] = []
        box: list[Any] = []
        disposed_at: list[float] = []

        def on_next(item: Any) -> None:
            got.append(item)
            if ids(got) == [0, 1, 2, 3, 4]:  # the 5th of a 64-line chunk
                box[0].dispose()
                disposed_at.append(time.monotonic())

        box.append(connection.items.subscribe(on_next, got.append))
        assert wait_until(lambda: flood.ended is not None, 2.0), "the server never saw the close"
        time.sleep(0.05)
    assert ids(got) == [0, 1, 2, 3, 4]
    assert [type(item) for item in got] == [Connected] + [Parsed] * 5
    assert flood.ended is not None and flood.ended - disposed_at[0] < 1.0
    assert wait_until(lambda: not reader_threads(), 2.0)
    assert connection.stats.messages == 5  # the rest of the batch was never parsed


@pytest.mark.usefixtures("no_reader_left")
@pytest.mark.parametrize("window", ["small", "default"])
@pytest.mark.parametrize("face", ["items", "tweets"])
def test_dispose_from_another_thread_while_the_reader_is_blocked_mid_batch(
    face: str, window: str
) -> None:
    # A slow consumer: the reader is stuck inside on_next (5th line of a read) while the
    # server fills the socket (a zero window). Disposed from another thread, then let go:
    # nothing more is delivered, nothing more is read, and the close resets the server's
    # write at once (a drained socket would close with a FIN it never sees: sendall hangs).
    flood = Flood()
    with RawServer(flood) as server:
        connection = v2_over(server.url, transport_for(window), policy=FAST)
        stream = rxtweet.TweetStream(connection)
        inside = threading.Event()
        release = threading.Event()
        got: list[Any] = []

        stop_at = 6 if face == "items" else 5  # items: Connected first

        def on_next(value: Any) -> None:
            got.append(value)
            if len(got) == stop_at:
                inside.set()
                release.wait(3)

        subscription = getattr(stream, face).subscribe(on_next, got.append)
        assert inside.wait(2)
        flood.wait_blocked()
        assert flood.ended is None  # the server is stuck writing
        subscription.dispose()
        released = time.monotonic()
        release.set()
        assert wait_until(lambda: flood.ended is not None, 2.0), "the server never saw the close"
        assert flood.ended is not None and flood.ended - released < 1.0
        time.sleep(0.05)
    values = [item for item in got if type(item) is Parsed] if face == "items" else got
    assert len(values) == 5
    assert [int((v.value.data if face == "items" else v).id) for v in values] == [0, 1, 2, 3, 4]


@pytest.mark.usefixtures("no_reader_left")
@pytest.mark.parametrize("window", ["small", "default"])
def test_take_inside_a_batch_on_lines_and_on_a_substream(window: str) -> None:
    flood = Flood()
    with RawServer(flood) as server:
        connection = v2_over(server.url, transport_for(window), policy=FAST)
        lines, end = collect(connection.lines.pipe(ops.take(3)))
        assert end is None and lines == [tweet(n, 1000) for n in range(3)]
        assert wait_until(lambda: flood.ended is not None, 2.0)
    flood = Flood()
    with RawServer(flood) as server:
        stream = rxtweet.TweetStream(v2_over(server.url, transport_for(window), policy=FAST))
        tweets, end = collect(stream.tweets.pipe(ops.take(7)))
        assert end is None and [int(t.id) for t in tweets] == list(range(7))
        assert wait_until(lambda: flood.ended is not None, 2.0)
        # Counted per batch, when the parser leaves it: read once the reader has ended.
        assert wait_until(lambda: not reader_threads(), 2.0)
        assert stream.stats.messages == 7


# --- a subscriber's exception mid-batch ------------------------------------------------------


class LinesOnly:
    """The same transport without ``batches``: the connection's line-at-a-time path."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def lines(self, *args: Any, **kwargs: Any) -> Observable[bytes]:
        lines: Observable[bytes] = self._transport.lines(*args, **kwargs)
        return lines


def serve_lines(*bodies: bytes, hold: bool = True) -> Callable[[Any, bytes], None]:
    """A handler writing ``bodies[n]`` (one chunk, usually one read) to connection ``n``
    (the last one repeats), then holding the connection open (or ending it cleanly)."""
    count = [0]

    def handler(conn: Any, _: bytes) -> None:
        body = bodies[min(count[0], len(bodies) - 1)]
        count[0] += 1
        conn.sendall(CHUNKED_200 + chunk(body))
        if not hold:
            conn.sendall(b"0\r\n\r\n")
            return
        conn.settimeout(3)
        while conn.recv(65536):  # until the client closes
            pass

    return handler


class Boom(Exception):
    pass


@pytest.mark.usefixtures("no_reader_left")
def test_a_subscriber_raising_mid_batch_ends_the_stream_as_the_line_path_does() -> None:
    body = b"".join(tweet(n) + b"\r\n" for n in range(50))
    runs = []
    for batched_ in (True, False):
        with RawServer(serve_lines(body)) as server:
            transport = RequestsTransport() if batched_ else LinesOnly(RequestsTransport())
            connection = v2_over(server.url, transport, policy=FAST)
            got: list[Any] = []
            errors: list[Exception] = []
            done = threading.Event()

            def on_next(item: Any, got: list[Any] = got) -> None:
                got.append(item)
                if ids(got) == [0, 1, 2, 3, 4] and type(item) is Parsed:
                    raise Boom("the 5th")

            def on_error(
                error: Exception, errors: list[Exception] = errors, done: Any = done
            ) -> None:
                errors.append(error)
                done.set()

            connection.items.subscribe(on_next, on_error)
            assert done.wait(2)
            time.sleep(0.05)  # nothing more comes
            assert wait_until(lambda: not reader_threads(), 2.0)
            assert server.connections == 1  # never retried: the subscriber's own error
        runs.append((comparable(got), [type(e) for e in errors], connection.stats.snapshot()))
    assert runs[0] == runs[1]
    items, errors_, _ = runs[0]
    assert [item[0] for item in items] == ["Connected"] + ["parsed"] * 5 + [
        "Errored",
        "Disconnected",
    ]
    assert items[-2] == ("Errored", "Boom") and errors_ == [Boom]


def test_a_hook_raising_mid_batch_is_reported_and_the_run_ends() -> None:
    # The tweepy face: on_tweet raises on the 3rd tweet of a read; on_exception gets it, the
    # hooks see nothing after, on_disconnect comes last.
    calls: list[Any] = []

    class Client(rxtweet.StreamingClient):
        def on_tweet(self, tweet: Any) -> None:
            calls.append(("tweet", int(tweet.id)))
            if int(tweet.id) == 2:
                raise Boom("on_tweet")

        def on_exception(self, exception: Exception) -> None:
            calls.append(("exception", type(exception).__name__))

        def on_disconnect(self) -> None:
            calls.append(("disconnect",))

    body = b"".join(tweet(n) + b"\r\n" for n in range(20))
    with RawServer(serve_lines(body)) as server:
        client = Client("t0ken", base_url=server.url, reconnect=FAST, stall_timeout=2.0)
        client.sample(threaded=True)
        assert client.join(2)
    assert calls == [
        ("tweet", 0),
        ("tweet", 1),
        ("tweet", 2),
        ("exception", "Boom"),
        ("disconnect",),
    ]
    assert wait_until(lambda: not reader_threads(), 2.0)


# --- v1.1: disconnect messages inside a batch ------------------------------------------------


def statuses(*numbers: int) -> list[bytes]:
    return [V1_STATUS % (n, n) for n in numbers]


def v1_kinds(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if type(item) is Parsed:
            value = item.value
            code = getattr(value, "code", None)
            out.append(code if code is not None else int(value.id))
        elif type(item) is Errored:
            out.append(type(item.exception).__name__)
        else:
            out.append(type(item).__name__)
    return out


@pytest.mark.usefixtures("no_reader_left")
@pytest.mark.parametrize("delimited", [None, "length"])
@pytest.mark.parametrize("which", range(3))
def test_v1_fatal_disconnect_mid_batch_ends_the_stream_there(
    which: int, delimited: str | None
) -> None:
    # Statuses, a fatal disconnect, statuses: one write, one read. Delivered up to and
    # including the disconnect message; FatalDisconnect ends it; no reconnect.
    lines = [*statuses(1, 2, 3), V1_FATAL[which], *statuses(4, 5)]
    if delimited:
        body = b"".join(b"%d\r\n%s\r\n" % (len(line) + 2, line) for line in lines)
    else:
        body = b"".join(line + b"\r\n" for line in lines)
    with RawServer(serve_lines(body)) as server:
        client = Stream(*KEYS, base_url=server.url, reconnect=FAST, stall_timeout=2.0)
        stream = client.sample_stream(delimited=delimited)
        items, end = collect(stream.items)
        assert server.connections == 1
        assert wait_until(lambda: not reader_threads(), 2.0)
    assert isinstance(end, FatalDisconnect)
    code = (2, 6, 7)[which]
    assert v1_kinds(items) == ["Connected", 1, 2, 3, code, "FatalDisconnect", "Disconnected"]
    assert stream.stats.messages == 4


@pytest.mark.usefixtures("no_reader_left")
def test_v1_non_fatal_disconnect_mid_batch_passes_everything_and_reconnects() -> None:
    first = [*statuses(1, 2), V1_SHUTDOWN, *statuses(3)]
    second = statuses(4, 5)
    bodies = [b"".join(line + b"\r\n" for line in lines) for lines in (first, second)]
    holding = serve_lines(bodies[1])

    def handler(conn: Any, head: bytes) -> None:
        if server.connections == 1:  # X closes after a disconnect message
            conn.sendall(CHUNKED_200 + chunk(bodies[0]) + b"0\r\n\r\n")
        else:
            holding(conn, head)

    with RawServer(handler) as server:
        client = Stream(*KEYS, base_url=server.url, reconnect=FAST, stall_timeout=2.0)
        stream = client.sample_stream()

        def last(item: Any) -> bool:
            return type(item) is Parsed and getattr(item.value, "id", None) == 5

        items, end = collect(stream.items.pipe(ops.take_while(lambda i: not last(i), True)))
        assert end is None
    assert v1_kinds(items) == ["Connected", 1, 2, 1, 3, "Closed", "Reconnecting", "Connected", 4, 5]
    assert server.connections == 2


def test_v1_fatal_disconnect_after_a_disposal_in_the_same_batch_is_not_acted_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The subscriber leaves at status 2; a fatal disconnect comes later in the same read.
    # Line by line, the guard never sees it. The batch guard scans the whole batch first,
    # so it logs "X sent disconnect code 2 ... Not reconnecting" (ERROR) for a message
    # nobody received, and sends FatalDisconnect into the disposed chain.
    caplog.set_level(logging.INFO)
    lines = [*statuses(1, 2, 3), V1_FATAL[0], *statuses(4)]
    runs = []
    for transport in (ScriptedBatches, ScriptedLines):
        caplog.clear()
        scripted = transport([([lines], None)], threaded=True)
        stream = Stream(*KEYS, transport=scripted).sample_stream()
        got: list[Any] = []
        box: list[Any] = []
        left = threading.Event()

        def on_next(
            item: Any, got: list[Any] = got, box: list[Any] = box, left: Any = left
        ) -> None:
            got.append(item)
            if type(item) is Parsed and item.value.id == 2:
                box[0].dispose()
                left.set()

        box.append(stream.items.subscribe(on_next))
        scripted.go.set()
        assert left.wait(2)
        for thread in scripted.threads:
            thread.join(2)
        runs.append(
            (
                v1_kinds(got),
                [r.getMessage() for r in caplog.records if "disconnect code" in r.getMessage()],
            )
        )
    assert runs[0][0] == runs[1][0] == ["Connected", 1, 2]
    assert runs[0][1] == runs[1][1] == []


# --- cuts mid-batch and reconnects -----------------------------------------------------------


@pytest.mark.usefixtures("no_reader_left")
@pytest.mark.parametrize("ending", ["cut", "reset"])
def test_a_cut_mid_batch_delivers_the_complete_lines_then_the_next_connection(ending: str) -> None:
    # Connection 1: three lines and half of a fourth in one read, then the connection dies
    # (no last chunk; or a RST). Exactly the three, then connection 2's lines.
    first = b"".join(tweet(n) + b"\r\n" for n in range(3)) + tweet(3)[:15]
    second = b"".join(tweet(n) + b"\r\n" for n in range(10, 13))
    holding = serve_lines(second)

    def handler(conn: Any, head: bytes) -> None:
        if server.connections > 1:
            holding(conn, head)
            return
        conn.sendall(CHUNKED_200 + chunk(first))
        if ending == "reset":
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )

    with RawServer(handler) as server:
        stream = rxtweet.TweetStream(v2_over(server.url, policy=FAST))
        with stream.hold():
            tweets = Taker(stream.tweets, 6)
            events = Taker(stream.events, 4)
        got = tweets.wait()
        kinds = [type(event) for event in events.wait()]
    assert [int(t.id) for t in got] == [0, 1, 2, 10, 11, 12]
    assert kinds == [Connected, ConnectionFailed, Reconnecting, Connected]
    assert server.connections == 2


def text_of(response: Any) -> str:
    return str(response.data.text)


class Taker:
    """The first ``count`` values of ``observable`` (subscribed now); :meth:`wait` returns
    them once they are in (and disposes)."""

    def __init__(self, observable: Observable[Any], count: int) -> None:
        self.got: list[Any] = []
        self.done = threading.Event()
        self.subscription = observable.pipe(ops.take(count)).subscribe(
            self.got.append, lambda _: self.done.set(), self.done.set
        )

    def wait(self) -> list[Any]:
        assert self.done.wait(3), self.got
        self.subscription.dispose()
        return self.got


# --- several subscribers, resubscription, the tweepy face ------------------------------------


@pytest.mark.usefixtures("no_reader_left")
def test_substreams_under_hold_see_each_batch_and_one_leaving_mid_batch_costs_others_nothing() -> (
    None
):
    body = b"".join(tweet(n) + b"\r\n" for n in range(40))
    with RawServer(serve_lines(body, hold=False)) as server:
        stream = rxtweet.TweetStream(v2_over(server.url, policy=ReconnectPolicy(max_retries=0)))
        leaver: list[Any] = []
        box: list[Any] = []

        def leave_at_3(tweet_: Any) -> None:
            leaver.append(int(tweet_.id))
            if len(leaver) == 3:
                box[0].dispose()

        with stream.hold():
            box.append(stream.tweets.subscribe(leave_at_3))
            items = Taker(stream.items, 1000)
            tweets = Taker(stream.tweets, 1000)
            texts = Taker(stream.responses.pipe(ops.map(text_of)), 1000)
            events = Taker(stream.events, 1000)
        got_items = items.wait()
        assert tweets.done.wait(2) and texts.done.wait(2) and events.done.wait(2)
    assert leaver == [0, 1, 2]
    assert ids(got_items) == list(range(40)) == [int(t.id) for t in tweets.got]
    assert len(texts.got) == 40
    assert [type(e) for e in events.got][-2:] == [Errored, Disconnected]
    assert stream.stats.messages == 40


@pytest.mark.usefixtures("no_reader_left")
def test_resubscribing_from_on_next_mid_batch_gets_a_fresh_connection_and_nothing_old() -> None:
    body = b"".join(tweet(n) + b"\r\n" for n in range(30))
    with RawServer(serve_lines(body)) as server:
        connection = v2_over(server.url, policy=FAST)
        first: list[Any] = []
        second: list[Any] = []
        boxes: list[Any] = []
        done = threading.Event()

        def on_second(item: Any) -> None:
            second.append(item)
            if len(ids(second)) == 30:
                done.set()

        def on_first(item: Any) -> None:
            first.append(item)
            if ids(first) == [0, 1, 2, 3]:
                boxes[0].dispose()
                boxes.append(connection.items.subscribe(on_second))

        boxes.append(connection.items.subscribe(on_first))
        assert done.wait(2), second
        time.sleep(0.05)
        boxes[1].dispose()
    assert ids(first) == [0, 1, 2, 3]
    assert type(second[0]) is Connected and ids(second) == list(range(30))
    assert server.connections == 2


@pytest.mark.usefixtures("no_reader_left")
@pytest.mark.parametrize("where", ["hook", "another thread"])
def test_streaming_client_disconnect_mid_batch(where: str) -> None:
    # The tweepy face: disconnect() from on_tweet (the reader thread) on the 4th tweet of a
    # read, or from another thread while on_tweet is stuck there over a full socket.
    calls: list[Any] = []
    inside = threading.Event()
    release = threading.Event()

    class Client(rxtweet.StreamingClient):
        def on_tweet(self, tweet_: Any) -> None:
            calls.append(int(tweet_.id))
            if len(calls) == 4:
                if where == "hook":
                    self.disconnect()
                else:
                    inside.set()
                    release.wait(3)

        def on_disconnect(self) -> None:
            calls.append("disconnect")

    flood = Flood()
    with RawServer(flood) as server:
        client = Client("t0ken", base_url=server.url, reconnect=FAST, stall_timeout=2.0)
        client.sample(threaded=True)
        if where != "hook":
            assert inside.wait(2)
            flood.wait_blocked()
            threading.Thread(target=client.disconnect).start()
            time.sleep(0.05)
            release.set()
        assert client.join(2)
        assert wait_until(lambda: flood.ended is not None, 1.0), "the server never saw the close"
    assert calls == [0, 1, 2, 3, "disconnect"]
    assert server.connections == 1


# --- hypothesis: leaving or failing anywhere inside a batch ----------------------------------


def run_until_action(transport: ScriptedLines, action: str, at: int) -> tuple[Any, ...]:
    """Subscribe to the items of a connection over ``transport`` (threaded) and, at the
    ``at``-th item, dispose (``"dispose"``), raise (``"raise"``) or let ``take`` end it
    (``"take"``); what was delivered and how it ended."""
    connection = Connection(
        StreamRequest("GET", V2_URL),
        to_stream_response,
        transport=transport,
        policy=ReconnectPolicy(network_wait_step=0.001, network_wait_max=0.001),
    )
    got: list[Any] = []
    ends: list[Any] = []
    box: list[Any] = []
    finished = threading.Event()

    def on_next(item: Any) -> None:
        got.append(item)
        if len(got) == at:
            if action == "dispose":
                box[0].dispose()
                finished.set()
            elif action == "raise":
                raise Boom(at)

    def on_end(end: Any) -> None:
        ends.append(end)
        finished.set()

    source = connection.items.pipe(ops.take(at)) if action == "take" else connection.items
    box.append(source.subscribe(on_next, on_end, lambda: on_end("completed")))
    transport.go.set()
    assert finished.wait(3)
    for thread in transport.threads:
        thread.join(3)
    assert not any(thread.is_alive() for thread in transport.threads)
    time.sleep(0.01)  # nothing more comes
    return comparable(got), [repr(end) for end in ends], connection.stats.snapshot()


@settings(max_examples=40, deadline=None)
@given(
    attempts=scripts(V2_LINES),
    action=st.sampled_from(["dispose", "raise", "take"]),
    at=st.integers(1, 30),
)
def test_leaving_or_raising_anywhere_inside_a_batch_is_what_the_line_path_does(
    attempts: list[AttemptScript], action: str, at: int
) -> None:
    # Items up to the action and nothing after it, the same end, the same counters: with a
    # read's lines in one batch or one at a time.
    batched_ = run_until_action(ScriptedBatches(attempts, threaded=True), action, at)
    single = run_until_action(ScriptedLines(attempts, threaded=True), action, at)
    assert batched_ == single
    got, ends, _ = batched_
    assert len(got) <= at or action == "raise"  # raise: then Errored and Disconnected
    if len(got) == at and action == "dispose":
        assert ends == []
    ending = len(got) >= at and got[at - 1][0] in ("Errored", "Disconnected")
    if len(got) >= at and action == "raise" and not ending:
        # (Raising inside the stream's own end changes nothing more: it is ending anyway.)
        assert got[at:] == [("Errored", "Boom"), ("Disconnected",)] and ends == [f"Boom({at})"]


@pytest.mark.parametrize("transport", [ScriptedBatches, ScriptedLines])
def test_stats_count_messages_per_read_and_the_rest_per_line(transport: type) -> None:
    # Documented (ParseStats, batch_parser): `messages` is added once a read's lines are
    # delivered (one counter update per read, not per message); keep-alives and malformed
    # lines are counted as they come. Seen from inside on_next, `messages` lags by at most
    # the read being delivered; after it, every count is exact.
    scheduler = TestScheduler()
    lines = [tweet(0), tweet(1), b"", tweet(2), b"{bad"]
    connection = v2_connection(transport([([lines], None)]), scheduler)
    seen: list[tuple[str, int, int, int]] = []

    def on_next(item: Any) -> None:
        stats = connection.stats
        seen.append((type(item).__name__, stats.messages, stats.keep_alives, stats.malformed))

    connection.items.subscribe(on_next, lambda _: None)
    scheduler.advance_by(100.0)
    in_read = [(name, keep_alives, malformed) for name, _, keep_alives, malformed in seen[1:6]]
    assert in_read == [
        ("Parsed", 0, 0),
        ("Parsed", 0, 0),
        ("KeepAlive", 1, 0),
        ("Parsed", 1, 0),
        ("MalformedMessage", 1, 1),
    ]
    one_read = transport is ScriptedBatches  # a lines-only transport: a read per line
    expected = [0, 0, 0, 0, 0] if one_read else [0, 1, 2, 2, 3]
    assert [messages for _, messages, _, _ in seen[1:6]] == expected
    assert (connection.stats.messages, connection.stats.keep_alives) == (3, 1)
    assert connection.stats.malformed == 1


@pytest.mark.usefixtures("no_reader_left")
def test_disposed_while_connected_is_held_up_the_reader_reads_no_more() -> None:
    # A subscriber slow on Connected (a tweepy on_connect that blocks; on a partitioned
    # stream, another partition's hook holding the merge): disposed from another thread.
    flood = Flood()
    with RawServer(flood) as server:
        connection = v2_over(server.url, small_window_transport(), policy=FAST)
        inside = threading.Event()
        release = threading.Event()

        def on_next(item: Any) -> None:
            if type(item) is Connected:
                inside.set()
                release.wait(3)

        subscription = connection.items.subscribe(on_next, lambda _: None)
        assert inside.wait(2)
        flood.wait_blocked()
        subscription.dispose()
        release.set()
        assert wait_until(lambda: flood.ended is not None, 1.0), "the server never saw the close"
