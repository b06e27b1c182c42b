"""Issue 10, transport part: deadlines, bounded inflate and redirects, secrets in errors.

Every fault here is on the wire, so each test runs a raw-socket server on 127.0.0.1
(``support.RawServer``) that misbehaves exactly as described (a trickle, an endless 100
Continue, a gzip flood...).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import orjson
import pytest
from support import (
    Handler,
    RawServer,
    answer,
    chunk,
    collect,
    get,
    raw_servers,
    reader_threads,
    wait_until,
)

from rxtweet import StallError, StreamConnectionError, StreamRequest, Unauthorized
from rxtweet import transport as transport_module
from rxtweet.framing import LineSplitter
from rxtweet.http import InvalidRequest
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.transport import INFLATE_STEP, lines

pytestmark = pytest.mark.integration

CHUNKED_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)
TWEETS = [orjson.dumps({"data": {"id": str(i), "text": f"tweet {i}"}}) for i in range(12)]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    with raw_servers() as start:
        yield start
    assert wait_until(lambda: not reader_threads()), "a reader thread outlived its test"


def trickle(conn: socket.socket, server: RawServer, data: bytes, every: float) -> None:
    """Send ``data`` one byte at a time, over and over, until the client goes away."""
    while not server.stop.is_set():
        for byte in data:
            conn.sendall(bytes([byte]))
            if server.stop.wait(every):
                return


# --- item 2: stall_timeout is a deadline for a complete line --------------------------------


@pytest.mark.parametrize("framing", ["chunked", "close-delimited"])
def test_a_body_trickling_without_a_line_is_a_stall(
    serve: Callable[..., RawServer], framing: str
) -> None:
    # Before: stall_timeout was a per-read timeout; a byte every 0.1 s reset it forever.
    def handler(conn: socket.socket, _: bytes) -> None:
        if framing == "chunked":
            conn.sendall(CHUNKED_200 + chunk(TWEETS[0] + b"\r\n"))
            trickle(conn, server, b"1\r\nx\r\n", 0.05)
        else:  # no Content-Length, no chunking: urllib3's read path
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + TWEETS[0] + b"\r\n")
            trickle(conn, server, b"x", 0.1)

    server = serve(handler)
    started = time.monotonic()
    items, error = collect(lines(get(f"{server.url}/s"), stall_timeout=0.6))
    elapsed = time.monotonic() - started
    assert items == [TWEETS[0]]
    assert isinstance(error, StallError)
    assert error.stall_timeout == 0.6
    assert 0.5 <= elapsed < 2.0


def test_keep_alives_still_hold_the_deadline_off(serve: Callable[..., RawServer]) -> None:
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200)
        while not server.stop.wait(0.1):
            conn.sendall(chunk(b"\r\n"))

    server = serve(handler)
    items: list[bytes] = []
    subscription = lines(get(f"{server.url}/s"), stall_timeout=0.4).subscribe(
        on_next=items.append, on_error=items.append
    )
    time.sleep(1.2)  # three deadlines' worth of keep-alives
    subscription.dispose()
    assert len(items) >= 5
    assert all(item == b"" for item in items)


def test_a_slow_subscriber_is_not_taken_for_a_stall(serve: Callable[..., RawServer]) -> None:
    # The deadline waits for the network, not for on_next: lines that are already in while
    # the subscriber works must not count as silence.
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200 + b"".join(chunk(t + b"\r\n") for t in TWEETS[:4]))
        conn.sendall(b"0\r\n\r\n")

    server = serve(handler)
    got: list[bytes] = []

    def slow(line: bytes) -> None:
        time.sleep(0.15)
        got.append(line)

    done = threading.Event()
    errors: list[BaseException] = []
    lines(get(f"{server.url}/s"), stall_timeout=0.2).subscribe(
        on_next=slow, on_error=lambda e: (errors.append(e), done.set()), on_completed=done.set
    )
    assert done.wait(5)
    assert errors == []
    assert got == TWEETS[:4]


@pytest.mark.parametrize("what", ["status-line", "headers", "endless-100-continue", "error-body"])
def test_the_response_head_has_a_deadline(serve: Callable[..., RawServer], what: str) -> None:
    # Before: each byte reset the per-read timeout, so none of these ever ended.
    def handler(conn: socket.socket, _: bytes) -> None:
        if what == "status-line":
            trickle(conn, server, b"HTTP/1.1 200 OK\r\n", 0.05)
        elif what == "headers":
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            trickle(conn, server, b"X-Padding: yes\r\n", 0.05)
        elif what == "endless-100-continue":
            while not server.stop.wait(0.05):
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n")
            trickle(conn, server, b"{", 0.05)

    server = serve(handler)
    started = time.monotonic()
    # Default header deadline: connect_timeout + stall_timeout = 0.8 s.
    items, error = collect(lines(get(f"{server.url}/s"), stall_timeout=0.5, connect_timeout=0.3))
    elapsed = time.monotonic() - started
    assert items == []
    assert isinstance(error, StallError), repr(error)
    assert error.stall_timeout == pytest.approx(0.8)
    assert 0.7 <= elapsed < 2.5


def test_header_timeout_can_be_set(serve: Callable[..., RawServer]) -> None:
    server = serve(lambda conn, _: trickle(conn, server, b"HTTP/1.1 200 OK\r\n", 0.05))
    started = time.monotonic()
    _, error = collect(lines(get(f"{server.url}/s"), stall_timeout=5, header_timeout=0.4))
    assert isinstance(error, StallError)
    assert time.monotonic() - started < 2
    with pytest.raises(ValueError, match="header_timeout"):
        lines(get(server.url), header_timeout=0)


# --- item 4: gzip over chunked inflates in bounded steps ----------------------------------


def test_a_gzip_flood_of_keep_alives_is_inflated_in_bounded_steps(
    serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: one read of compressed keep-alives was inflated whole (2 MiB here, 64 MiB in
    # the issue) and split into a list of millions of lines at once.
    flood = 2 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = compressor.compress(b"\n" * flood) + compressor.flush()
    assert len(body) < 64 * 1024  # arrives in a single read

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n"))
        conn.sendall(chunk(body) + b"0\r\n\r\n")

    largest: list[int] = [0]

    class Measuring(LineSplitter):
        def feed(self, data: bytes) -> list[bytes]:
            largest[0] = max(largest[0], len(data))
            return super().feed(data)

    monkeypatch.setattr(transport_module, "LineSplitter", Measuring)
    server = serve(handler)
    count = [0]
    done = threading.Event()

    def on_next(_: bytes) -> None:
        count[0] += 1

    lines(get(f"{server.url}/s")).subscribe(
        on_next=on_next, on_error=lambda e: done.set(), on_completed=done.set
    )
    assert done.wait(10)
    assert count[0] == flood  # every keep-alive is delivered...
    assert 0 < largest[0] <= INFLATE_STEP  # ...but never more than a step in memory at once


# --- item 6: multi-member gzip -------------------------------------------------------------


@pytest.mark.parametrize("split", ["member-per-chunk", "members-across-chunks"])
def test_gzip_sent_as_several_members_loses_nothing(
    serve: Callable[..., RawServer], split: str
) -> None:
    # Before: the inflater stopped at the end of the first member; 3 of 12 were delivered.
    members = [
        zlib.compress(b"".join(t + b"\r\n" for t in TWEETS[i : i + 3]), wbits=31)
        for i in range(0, 12, 3)
    ]
    wire = b"".join(members)
    if split == "member-per-chunk":
        chunks = [chunk(m) for m in members]
    else:
        chunks = [chunk(wire[i : i + 37]) for i in range(0, len(wire), 37)]

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n"))
        for piece in chunks:
            conn.sendall(piece)
            time.sleep(0.002)
        conn.sendall(b"0\r\n\r\n")

    server = serve(handler)
    items, error = collect(lines(get(f"{server.url}/s"), stall_timeout=2))
    assert error is None
    assert items == TWEETS


def test_zero_padding_after_a_complete_gzip_member_is_ignored(
    serve: Callable[..., RawServer],
) -> None:
    member = zlib.compress(TWEETS[0] + b"\r\n", wbits=31)

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n"))
        conn.sendall(chunk(member) + chunk(b"\x00" * 16) + chunk(b"\x00" * 4) + b"0\r\n\r\n")

    server = serve(handler)
    items, error = collect(lines(get(f"{server.url}/s"), stall_timeout=2))
    assert error is None
    assert items == [TWEETS[0]]


@pytest.mark.parametrize("junk", ["right-after-the-member", "after-zero-padding"])
def test_junk_after_a_gzip_member_ends_the_connection_at_once(
    serve: Callable[..., RawServer], junk: str
) -> None:
    # Before: everything after the junk was discarded (one WARNING) until a stall, while the
    # server went on sending: a stream that looked alive and delivered nothing.
    member = zlib.compress(TWEETS[0] + b"\r\n", wbits=31)
    more = zlib.compress(TWEETS[1] + b"\r\n", wbits=31)
    after = chunk(b"junk!") if junk == "right-after-the-member" else chunk(b"\0\0") + chunk(b"x")

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200.replace(b"\r\n\r\n", b"\r\nContent-Encoding: gzip\r\n\r\n"))
        conn.sendall(chunk(member) + after)
        for _ in range(40):  # the server goes on for 2 s
            time.sleep(0.05)
            conn.sendall(chunk(more))

    server = serve(handler)
    started = time.monotonic()
    items, error = collect(lines(get(f"{server.url}/s"), stall_timeout=5))
    assert isinstance(error, StreamConnectionError) and "gzip" in str(error)
    assert time.monotonic() - started < 1.5
    assert items == [TWEETS[0]]


# --- item 5: a redirect's body is never read ----------------------------------------------


def test_a_redirect_with_an_endless_body_is_not_read(serve: Callable[..., RawServer]) -> None:
    # Before: requests read the 302's whole body (all 64 MiB here) before following it.
    sent = [0]

    def handler(conn: socket.socket, head: bytes) -> None:
        if head.startswith(b"GET /final"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + TWEETS[0] + b"\r\n")
            return
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /final\r\nConnection: close\r\n\r\n")
        block = b"x" * 65536
        for _ in range(1024):
            conn.sendall(block)
            sent[0] += len(block)

    server = serve(handler)
    items, error = collect(lines(get(f"{server.url}/s")))
    assert error is None
    assert items == [TWEETS[0]]
    assert sent[0] < 16 * 1024 * 1024


def test_credentials_never_follow_a_redirect_to_another_origin(
    serve: Callable[..., RawServer],
) -> None:
    other = serve(answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + TWEETS[0] + b"\r\n"))
    # localhost and 127.0.0.1 are different origins even on the same machine.
    target = f"http://localhost:{other.port}/final"
    first = serve(
        answer(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode())
    )
    request = get(f"{first.url}/s", Authorization="Bearer follow-me-not-0123456789")
    items, error = collect(lines(request))
    assert error is None
    assert items == [TWEETS[0]]
    assert b"follow-me-not" in first.heads[0]
    assert other.heads and b"follow-me-not" not in other.heads[0]


# --- item 9: dropped lines are reported ------------------------------------------------------


def test_on_line_dropped_gets_the_size_of_each_dropped_line(
    serve: Callable[..., RawServer],
) -> None:
    long_line = b'{"data":{"id":"9","text":"' + b"y" * 200 + b'"}}'

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200 + chunk(TWEETS[0] + b"\r\n") + chunk(long_line + b"\r\n"))
        conn.sendall(chunk(long_line[:100]) + chunk(long_line[100:] + b"\r\n"))
        conn.sendall(chunk(TWEETS[1] + b"\r\n") + b"0\r\n\r\n")

    server = serve(handler)
    dropped: list[int] = []
    items, error = collect(
        lines(get(f"{server.url}/s"), max_line=100, on_line_dropped=dropped.append)
    )
    assert error is None
    assert items == [TWEETS[0], TWEETS[1]]
    assert len(dropped) == 2
    assert all(size >= len(long_line) for size in dropped)


def test_an_exception_from_on_line_dropped_ends_the_stream_with_it(
    serve: Callable[..., RawServer],
) -> None:
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200 + chunk(b"z" * 300 + b"\r\n"))
        server.stop.wait(5)

    class Boom(OSError):  # an OSError: must still not pass for a network failure
        pass

    def explode(size: int) -> None:
        raise Boom(size)

    server = serve(handler)
    _, error = collect(lines(get(f"{server.url}/s"), max_line=100, on_line_dropped=explode))
    assert isinstance(error, Boom)


# --- item 10: a credential never leaves through a dependency's exception --------------------


SECRET = "AAAA-secret-bearer-0123456789abcdef"


def _texts_of(exc: BaseException) -> list[str]:
    texts = []
    seen: BaseException | None = exc
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return texts


@pytest.mark.parametrize(
    "token", [SECRET + "\r", SECRET + "\r\n", SECRET[:10] + "\n" + SECRET[10:], SECRET + "\u2019"]
)
def test_a_bad_token_is_never_quoted(
    serve: Callable[..., RawServer], caplog: pytest.LogCaptureFixture, token: str
) -> None:
    # Before: requests' InvalidHeader (or http.client's ValueError) quoted the whole value.
    caplog.set_level(logging.DEBUG)
    server = serve(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    items, error = collect(lines(get(f"{server.url}/s", Authorization=f"Bearer {token}")))
    assert items == []
    assert isinstance(error, InvalidRequest)
    assert isinstance(error, ValueError)
    assert "'Authorization'" in str(error)
    assert error.__cause__ is None and error.__context__ is None
    for text in [*_texts_of(error), caplog.text]:
        assert SECRET not in text
        assert SECRET[10:] not in text


# --- item 11: userinfo in a URL is never shown ----------------------------------------------


def test_userinfo_in_the_url_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    password = "pa55-w0rd-never-shown"
    with FakeStreamServer(messages=TWEETS) as server:
        server.script(Attempt(status=401), Attempt(messages=1, ending="cut"))
        url = server.url.replace("://", f"://alice:{password}@") + "/2/tweets/sample/stream"
        request = StreamRequest("GET", url)
        _, unauthorized = collect(lines(request, stall_timeout=2))
        _, cut = collect(lines(request, stall_timeout=2))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused_request = StreamRequest("GET", f"http://alice:{password}@127.0.0.1:{port}/s")
    _, refused = collect(lines(refused_request, connect_timeout=1))
    assert isinstance(unauthorized, Unauthorized)
    assert isinstance(cut, StreamConnectionError)
    assert isinstance(refused, StreamConnectionError)
    texts = [caplog.text, repr(request), repr(refused_request)]
    for error in (unauthorized, cut, refused):
        texts += _texts_of(error)
        texts.append(getattr(error, "request_line", "") or "")
    for text in texts:
        assert password not in text
    assert "<redacted>@" in repr(request)
    assert "<redacted>@" in str(unauthorized)
