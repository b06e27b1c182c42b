"""A hostile server's whole reads, for the tests of the parser's deliveries: a
:class:`RawServer` handler that sends a v2 stream's lines a read at a time (:class:`Feed`),
the ``serve`` fixture that puts a :class:`~rxtweet.connection.Connection` on it, a
:class:`Log` of named subscribers, the hook face on such a connection (:class:`Hooks`),
and subscribers that come and go on another thread (:func:`churner`).
Used by ``test_attack_value_delivery.py`` and ``test_attack_tweet_projection.py``.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from support import RawServer, chunk, reader_threads, wait_until

from rxtweet import StreamingClient
from rxtweet.connection import Connection
from rxtweet.http import StreamRequest
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.v2.convert import to_stream_response

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
ONCE = ReconnectPolicy(max_retries=0)  # the server's end of the body ends the stream


def tweet(n: int) -> bytes:
    return b'{"data":{"id":"%d","text":"t%d"}}' % (n, n)


def full(n: int) -> bytes:
    return (
        b'{"data":{"id":"%d","text":"f%d","author_id":"9"},'
        b'"includes":{"users":[{"id":"9","name":"n","username":"u"}]},'
        b'"matching_rules":[{"id":"5","tag":"x"}]}' % (n, n)
    )


class Feed:
    """A :class:`RawServer` handler: ``first`` (a tweet's number, or a line) alone, then
    (once ``connection`` has parsed it) each group of lines as one chunk (one read, as a
    rule), each group after its gate (if any), then the body's end."""

    def __init__(
        self,
        groups: list[list[bytes]],
        *,
        first: int | bytes = 1,
        pause: float = 0.0,
        gates: dict[int, threading.Event] | None = None,
    ) -> None:
        self.groups = groups
        self.first = tweet(first) if isinstance(first, int) else first
        self.pause = pause
        self.gates = gates or {}
        self.connection: Connection[Any] | None = None

    def __call__(self, conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD + chunk(self.first + b"\r\n"))
        assert wait_until(lambda: self.connection is not None, 2.0)
        wait_until(lambda: self.connection.stats.messages >= 1, 2.0)  # type: ignore[union-attr]
        for index, group in enumerate(self.groups):
            gate = self.gates.get(index)
            if gate is not None:
                gate.wait(2.0)
            conn.sendall(chunk(b"".join(line + b"\r\n" for line in group)))
            if self.pause:
                time.sleep(self.pause)
        conn.sendall(b"0\r\n\r\n")


Serve = Callable[..., tuple[RawServer, Connection[Any]]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[RawServer] = []

    def start(feed: Feed, **kw: Any) -> tuple[RawServer, Connection[Any]]:
        server = RawServer(feed)
        servers.append(server)
        kw.setdefault("policy", ONCE)
        convert = kw.pop("convert", to_stream_response)
        connection: Connection[Any] = Connection(
            StreamRequest("GET", f"{server.url}/2/tweets/sample/stream"), convert, **kw
        )
        feed.connection = connection
        return server, connection

    try:
        yield start
    finally:
        for server in servers:
            server.close()
    assert wait_until(lambda: not reader_threads(), 2.0), "a reader thread outlived its test"


class Log:
    """Named records, each subscriber's items and end; ``ended`` is set by the witness's."""

    #: A comparable form of an item (each test file says which).
    show: Callable[[Any], Any] = staticmethod(repr)

    def __init__(self) -> None:
        self.got: dict[str, list[Any]] = {}
        self.subs: dict[str, abc.DisposableBase] = {}
        self.ended = threading.Event()

    def sub(
        self,
        name: str,
        source: Observable[Any],
        on_item: Callable[[Any], None] | None = None,
        *,
        witness: bool = False,
    ) -> None:
        got = self.got.setdefault(name, [])

        def on_next(item: Any) -> None:
            got.append(self.show(item))
            if on_item is not None:
                on_item(item)

        def on_error(error: Exception) -> None:
            got.append(("error", type(error).__name__, str(error)[:80]))
            if witness:
                self.ended.set()

        def on_completed() -> None:
            got.append("completed")
            if witness:
                self.ended.set()

        self.subs[name] = source.subscribe(on_next, on_error, on_completed)

    def ids(self, name: str) -> list[int]:
        """The tweet numbers among ``name``'s records (``show`` gives an int, or a tuple
        led by one)."""
        return [
            x if type(x) is int else x[0]
            for x in self.got[name]
            if type(x) is int or (type(x) is tuple and x and type(x[0]) is int)
        ]

    def wait(self) -> dict[str, list[Any]]:
        assert self.ended.wait(3.0), "the witness never ended"
        return self.got


class Hooks(StreamingClient):
    """The hook face on a test's connection: records each tweet; leaves at ``leave_at``."""

    def __init__(self, connection: Connection[Any], leave_at: int) -> None:
        super().__init__("token-of-the-hook-face", daemon=True)
        self.connection = connection
        self.leave_at = leave_at
        self.tweets: list[int] = []
        self.disconnected = threading.Event()

    def _tweet_source(self, *_: Any) -> Any:
        return self.connection

    def on_tweet(self, tweet: Any) -> None:
        self.tweets.append(int(tweet.id))
        if tweet.id == self.leave_at:
            self.disconnect()

    def on_disconnect(self) -> None:
        self.disconnected.set()


# --- subscribers that come and go on another thread ----------------------------------------

#: One kind of churned subscriber: subscribes ``record`` to the stream, returns the disposable.
Subscribe = Callable[[Callable[[Any], None]], abc.DisposableBase]
#: What a churned subscriber got: its kind, the tweet numbers it recorded, and how many of
#: them it had when its dispose() returned.
Churned = list[tuple[str, list[int], int]]


def churner(
    kinds: dict[str, Subscribe],
    number: Callable[[Any], int | None],
    done: threading.Event,
    churned: Churned,
    *,
    hold: Callable[[], Any] | None = None,
    name: str = "test-churn",
) -> threading.Thread:
    """A thread (not started) that, until ``done`` is set, subscribes each of ``kinds`` in
    turn, keeps it a moment (0-1 ms), disposes it and records in ``churned`` what it got
    (``number(item)`` of each item, ``None`` skipped); every 7th inside ``hold()``."""

    def churn() -> None:
        turn = 0
        while not done.is_set():
            kind = list(kinds)[turn % len(kinds)]
            turn += 1
            got: list[int] = []

            def record(item: Any, got: list[int] = got) -> None:
                n = number(item)
                if n is not None:
                    got.append(n)

            if hold is not None and turn % 7 == 0:
                with hold():
                    subscription = kinds[kind](record)
            else:
                subscription = kinds[kind](record)
            time.sleep(0.0005 * (turn % 3))
            subscription.dispose()
            churned.append((kind, got, len(got)))
            time.sleep(0.001)  # the keepers alone for a moment

    return threading.Thread(target=churn, name=name)


@contextlib.contextmanager
def switching_often() -> Iterator[None]:
    """Threads switch every 10 µs meanwhile, so another thread runs in the middle of reads."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def assert_churned_runs(churned: Churned) -> list[tuple[str, list[int]]]:
    """Each churned subscriber got a run of consecutive tweets and, after its dispose()
    returned, at most the one whose delivery to it had begun; enough of them overlapped the
    stream. Returns those that got something."""
    overlapping = [(kind, got) for kind, got, _ in churned if got]
    assert len(overlapping) > 5, "the churn did not overlap the stream"
    for kind, got, at_dispose in churned:
        if got:
            assert got == list(range(got[0], got[0] + len(got))), kind
        assert len(got) - at_dispose <= 1, kind
    return overlapping


class _Head:
    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012 - read only


class PushedReads:
    """A batch transport whose reads the test pushes, exactly as given: ``observer`` is the
    connection's observer of the current attempt, set when it subscribes."""

    def __init__(self) -> None:
        self.observer: abc.ObserverBase[list[bytes]] | None = None

    def batches(self, *_: Any, on_response: Any = None, **__: Any) -> Observable[list[bytes]]:
        def subscribe(observer: Any, _: Any = None) -> abc.DisposableBase:
            self.observer = observer
            if on_response is not None:
                on_response(_Head())
            return Disposable()

        return Observable(subscribe)

    def lines(self, *_: Any, **__: Any) -> Observable[bytes]:
        raise AssertionError("a batch transport's lines are never asked for")
