"""Issue 10 review: a hostile server against the hardened network path (transport, framing).

Each test runs a raw-socket server on 127.0.0.1 (``support.RawServer``) that misbehaves on
purpose. Attacks that broke the code carry a comment saying what happened before the fix;
the others pin down that an attack held (the transport's promises: typed errors, bounded
time, no leak).
"""

from __future__ import annotations

import functools
import gzip
import os
import random
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from support import Handler, RawServer, answer, chunk, collect, get, raw_servers, wait_until

from rxtweet import StallError, StreamConnectionError
from rxtweet.errors import HTTPException
from rxtweet.framing import ChunkedDecoder, ChunkedEncodingError
from rxtweet.http import InvalidRequest
from rxtweet.reconnect import ReconnectPolicy, reconnecting
from rxtweet.scheduling import live_threads
from rxtweet.transport import lines

pytestmark = pytest.mark.integration

CHUNKED_200 = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
TWEET = b'{"data":{"id":"1","text":"hi"}}'

# This module's streams end within 3 s (support.collect waits up to 5 s by default).
collect = functools.partial(collect, timeout=3.0)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    with raw_servers() as start:
        yield start
    assert wait_until(lambda: not live_threads()), live_threads()


# --- redirects --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location", [b"file:///etc/passwd", b"gopher://127.0.0.1/x", b"http://[::1/broken"]
)
def test_a_redirect_to_a_url_that_cannot_be_followed_is_a_connection_error(
    serve: Callable[[Handler], RawServer], location: bytes
) -> None:
    # Before: InvalidRequest ("the request cannot be sent"), which blames the caller's request
    # and ends the stream for good; it is the server's answer, retried like any bad answer.
    server = serve(
        answer(b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % location)
    )
    items, error = collect(lines(get(f"{server.url}/s"), stall_timeout=1))
    assert items == []
    assert isinstance(error, StreamConnectionError), repr(error)
    assert not isinstance(error, InvalidRequest)
    assert "redirect" in str(error)


@pytest.mark.parametrize("header", ["X-Api-Key", "Proxy-Authorization", "Authorization", "Cookie"])
def test_secret_headers_never_follow_a_redirect_to_another_origin(
    serve: Callable[[Handler], RawServer], header: str
) -> None:
    # Before: requests drops Authorization and Cookie on a redirect to another origin, but
    # X-Api-Key (a header rxtweet itself counts as a credential) went along.
    other = serve(answer(CHUNKED_200 + chunk(TWEET + b"\r\n") + b"0\r\n\r\n"))
    location = f"{other.url}/elsewhere".encode()
    server = serve(
        answer(b"HTTP/1.1 307 Moved\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % location)
    )
    items, error = collect(lines(get(f"{server.url}/s", **{header: "s3cret-value"})))
    assert error is None
    assert items == [TWEET]
    assert len(other.heads) == 1
    assert b"s3cret" not in other.heads[0]
    assert b"s3cret" in server.heads[0]


def test_secret_headers_do_follow_a_redirect_on_the_same_origin(
    serve: Callable[[Handler], RawServer],
) -> None:
    def handler(conn: socket.socket, head: bytes) -> None:
        if head.startswith(b"GET /s "):
            conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: /t\r\nContent-Length: 0\r\n\r\n")
        else:
            conn.sendall(CHUNKED_200 + chunk(TWEET + b"\r\n") + b"0\r\n\r\n")

    server = serve(handler)
    items, error = collect(lines(get(f"{server.url}/s", **{"X-Api-Key": "k"})))
    assert (items, error) == ([TWEET], None)
    assert all(b"X-Api-Key: k" in head for head in server.heads)


# --- gzip -------------------------------------------------------------------------------------

GZIP_200 = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_body_that_ends_inside_a_gzip_member_is_a_cut_connection(
    serve: Callable[[Handler], RawServer],
) -> None:
    # Before: the chunked body ended cleanly with the gzip trailer (CRC and size) missing,
    # and the stream completed as though the server had closed it normally: a body cut
    # before its end is a StreamConnectionError (the docs' promise).
    member = gzip.compress(b"".join(TWEET + b"\r\n" for _ in range(20)))
    server = serve(answer(GZIP_200 + chunk(member[:-8]) + b"0\r\n\r\n"))
    items, error = collect(lines(get(f"{server.url}/s"), stall_timeout=1))
    assert items == [TWEET] * 20  # what did arrive is delivered
    assert isinstance(error, StreamConnectionError), repr(error)
    assert "gzip" in str(error)


@pytest.mark.parametrize("members", [1, 3000])
def test_whole_gzip_members_end_cleanly(
    serve: Callable[[Handler], RawServer], members: int
) -> None:
    member = gzip.compress(TWEET + b"\r\n")
    empty = gzip.compress(b"")
    server = serve(answer(GZIP_200 + chunk((member + empty) * members) + b"0\r\n\r\n"))
    items, error = collect(lines(get(f"{server.url}/s"), stall_timeout=1))
    assert error is None
    assert items == [TWEET] * members


# --- what a stall says ----------------------------------------------------------------------


def test_a_stalled_body_and_a_missing_head_say_different_things(
    serve: Callable[[Handler], RawServer],
) -> None:
    def head_then_trickle(conn: socket.socket, _: bytes) -> None:
        conn.sendall(CHUNKED_200 + chunk(TWEET + b"\r\n"))
        while not body.stop.wait(0.05):
            conn.sendall(b"1\r\nx\r\n")  # bytes, never a line

    def trickled_head(conn: socket.socket, _: bytes) -> None:
        for byte in b"HTTP/1.1 200 OK\r\n" * 100:
            conn.sendall(bytes([byte]))
            if head.stop.wait(0.05):
                return

    body = serve(head_then_trickle)
    head = serve(trickled_head)
    _, body_stall = collect(lines(get(f"{body.url}/s"), stall_timeout=0.4))
    _, head_stall = collect(lines(get(f"{head.url}/s"), stall_timeout=5, header_timeout=0.4))
    assert isinstance(body_stall, StallError)
    assert str(body_stall) == (
        "no complete line (message or keep-alive) for 0.4 s: the stream stalled"
    )
    assert isinstance(head_stall, StallError)
    assert head_stall.stall_timeout == 0.4
    assert "no complete response headers within 0.4 s" in str(head_stall)
    assert "keep-alive" not in str(head_stall)
    assert StallError(90).stall_timeout == 90
    assert str(StallError(20, message="custom")) == "custom"


# --- errors: X's per-rule details -------------------------------------------------------------


def test_per_rule_details_are_kept_in_the_message() -> None:
    body = {
        "errors": [
            {
                "value": "from:",
                "details": ["Rules must contain a non-stopword.", 7, "Unexpected end of rule."],
                "title": "UnprocessableEntity",
                "type": "https://api.twitter.com/2/problems/invalid-rules",
            }
        ],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
    }
    error = HTTPException(400, reason="Bad Request", body=body)
    assert error.api_messages == [
        "Rules must contain a non-stopword.",
        "Unexpected end of rule.",
    ]
    assert "Rules must contain a non-stopword." in str(error)
    assert "Unexpected end of rule." in str(error)
    # Not a list: ignored rather than spelled out letter by letter.
    assert HTTPException(400, body={"errors": [{"details": "boom"}]}).api_messages == []


# --- disposal races: no thread, no fd left ------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_disposal_racing_the_header_deadline_and_reconnect_waits_leaves_nothing(
    serve: Callable[[Handler], RawServer],
) -> None:
    # 200 subscribe/dispose cycles landing anywhere: in connect, in a trickled head (with a
    # header deadline about to fire), in the body, in a reconnect wait after a 503.
    rng = random.Random(10)

    def handler(conn: socket.socket, head: bytes) -> None:
        if head.startswith(b"GET /busy "):
            conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")
            return
        for piece in (b"HTTP/1.1 200 OK\r\n", b"Transfer-Encoding: chunked\r\n\r\n"):
            if server.stop.wait(rng.random() * 0.01):
                return
            conn.sendall(piece)
        while not server.stop.wait(0.005):
            conn.sendall(chunk(b"\r\n"))

    server = serve(handler)
    policy = ReconnectPolicy(max_retries=1000)
    before = _open_fds()
    for cycle in range(200):
        path = "/busy" if cycle % 4 == 0 else "/s"
        source = lines(
            get(f"{server.url}{path}"), stall_timeout=1, header_timeout=rng.choice([0.003, 0.01, 1])
        )
        subscription = source.pipe(reconnecting(policy)).subscribe(
            on_next=lambda _: None, on_error=lambda _: None
        )
        time.sleep(rng.random() * 0.006)
        subscription.dispose()
    assert wait_until(lambda: not live_threads()), live_threads()
    assert wait_until(lambda: _open_fds() <= before), (before, _open_fds())


# --- chunk sizes that lie -------------------------------------------------------------------


@pytest.mark.parametrize("size", [b"0x9", b"0_9", b" 9", b"+9", b"-9", b"", b"9 9", b"g"])
def test_a_chunk_size_that_is_not_bare_hex_is_a_framing_error(size: bytes) -> None:
    # Before: int(size, 16) took "0x9", "0_9" and " 9" for 9.
    with pytest.raises(ChunkedEncodingError, match="bad chunk size"):
        ChunkedDecoder().feed(size + b"\r\n" + TWEET[:9] + b"\r\n0\r\n\r\n")


@pytest.mark.parametrize("size", [b"9", b"09", b"9;name=value", b"9 ;ext", b"9\t;x"])
def test_a_chunk_size_with_extensions_still_decodes(size: bytes) -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(size + b"\r\n" + TWEET[:9] + b"\r\n0\r\n\r\n") == TWEET[:9]
    assert decoder.done


def test_lies_in_the_head_and_the_chunking_end_in_a_typed_error_at_once(
    serve: Callable[[Handler], RawServer],
) -> None:
    heads = {
        "/big-header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
        "/many-headers": b"HTTP/1.1 200 OK\r\n"
        + b"".join(b"X-%d: y\r\n" % i for i in range(5000))
        + b"\r\n",
        "/hex-prefix": CHUNKED_200 + b"0x9\r\n" + TWEET[:9] + b"\r\n0\r\n\r\n",
        "/longer-than-sent": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + TWEET + b"\r\n",
        "/huge-chunk": CHUNKED_200 + b"F" * 1000 + b"\r\n" + TWEET + b"\r\n",
    }

    def handler(conn: socket.socket, head: bytes) -> None:
        conn.sendall(heads[head.split()[1].decode()])

    server = serve(handler)
    for path in heads:
        started = time.monotonic()
        _, error = collect(lines(get(f"{server.url}{path}"), stall_timeout=2))
        assert isinstance(error, StreamConnectionError), (path, error)
        assert not isinstance(error, StallError), (path, error)
        assert time.monotonic() - started < 1, path
