"""Issue 17, attacking the cheaper per-read path (the uncommitted change after 95fc583).

What changed, and what each section attacks, as a hostile server, a careless user and a slow
consumer would:

1. the transport reads the socket itself (``recv``) once ``read1`` came back short: bytes
   still buffered after the response head, any ``chunk_size``, gzip, TLS, and the sockets
   that must fall back to ``read1``. No byte may be lost, duplicated or reordered;
2. the socket's timeout is set again only when it moves: the stall deadline must still be
   counted from the last complete line, not per read;
3. ``ChunkedDecoder.feed_lines`` skips its first pass at a chunk boundary: any split of a
   body decodes as the whole body, malformed framing still fails;
4. ``retry_when(notifier_follows_errors=True)`` subscribes each attempt without reactivex's
   guard: hostile sources, both modes compared, disposal of each attempt;
5. the connection subscribes the reconnecting source without a guard: subscriber exceptions
   and disposals, reconnects, nothing left running;
6. the parser is given (or finds) the share of its ``emit`` once, not per read: subscribers
   coming and going, one parser with two emits from two threads, no emit kept alive.

Every server is real (``support.RawServer``, a TLS server here, ``FakeStreamServer``).
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import gzip
import io
import ipaddress
import random
import socket
import ssl
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson
import pytest
import reactivex
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import TestScheduler
from support import (
    Handler,
    RawServer,
    chunk,
    collect,
    get,
    raw_servers,
    read_head,
    reader_threads,
    wait_until,
)

from rxtweet import (
    ReconnectPolicy,
    StallError,
    StreamConnectionError,
    StreamingClient,
)
from rxtweet import transport as transport_module
from rxtweet.events import KeepAlive
from rxtweet.framing import ChunkedDecoder, ChunkedEncodingError, LineSplitter
from rxtweet.operators.retry_when import retry_when
from rxtweet.operators.share import share_connection
from rxtweet.parse import Parsed, batch_parser, parse_lines
from rxtweet.substreams import select_messages
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.transport import RequestsTransport, lines
from rxtweet.transport_base import DEFAULT_CHUNK_SIZE, TransportOptions
from rxtweet.v2.convert import to_stream_response

pytestmark = pytest.mark.integration

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
GZIP_HEAD = HEAD[:-2] + b"Content-Encoding: gzip\r\n\r\n"
KEEP_ALIVE = b"2\r\n\r\n\r\n"
END = b"0\r\n\r\n"


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    with raw_servers() as start:
        yield start
    assert wait_until(lambda: not reader_threads()), "a reader thread outlived its test"


# --- 1. the socket read directly: every byte once, in order ---------------------------------


def _line(rng: random.Random, n: int) -> bytes:
    """Line ``n``: its number first (so a loss or a swap shows), then filler of some size."""
    size = rng.choice([0, 5, 40, 200, 900, 3000, 9000, 20000])
    return b"%06d:" % n + bytes(rng.choice(b"abcxyz{}\"':,0123456789") for _ in range(size))


def _body(seed: int, count: int) -> tuple[bytes, list[bytes]]:
    """A chunked body (without its last chunk) framed every way a server may, and its lines.

    X's framing (a chunk per line), keep-alives, several lines in a chunk, a line over
    several chunks with its CR and LF in different chunks, bare LF line ends.
    """
    rng = random.Random(seed)
    wire = bytearray()
    expected: list[bytes] = []
    n = 0
    while len(expected) < count:
        kind = rng.choice(["x", "x", "x", "keep-alive", "several", "spread", "lf"])
        if kind == "keep-alive":
            wire += KEEP_ALIVE
            expected.append(b"")
            continue
        n += 1
        line = _line(rng, n)
        expected.append(line)
        if kind == "x":
            wire += chunk(line + b"\r\n")
        elif kind == "lf":
            wire += chunk(line + b"\n")
        elif kind == "several":
            n += 1
            other = _line(rng, n)
            expected.append(other)
            wire += chunk(line + b"\r\n" + other + b"\r\n")
        else:  # spread: cut anywhere, the CR and the LF may land in different chunks
            data = line + b"\r\n"
            cuts = sorted(rng.sample(range(1, len(data)), k=min(3, len(data) - 1)))
            for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
                wire += chunk(data[a:b])
    return bytes(wire), expected


def _send_in_pieces(conn: socket.socket, data: bytes, seed: int, server: RawServer) -> None:
    """``data`` in pieces of random sizes, with a pause now and then (several reads)."""
    rng = random.Random(seed)
    at = 0
    while at < len(data) and not server.stop.is_set():
        size = rng.choice([1, 3, 700, 4096, 9000, 30000])
        conn.sendall(data[at : at + size])
        at += size
        if rng.random() < 0.2:
            time.sleep(0.002)


def _body_server(
    serve: Callable[[Handler], RawServer], head: bytes, wire: bytes, first: int
) -> RawServer:
    """Sends the head and ``first`` bytes of ``wire`` in ONE write (they are in the client's
    buffer when the head is parsed), then the rest in pieces, then the last chunk
    (``first=-1``: everything in one write)."""

    def handler(conn: socket.socket, _: bytes) -> None:
        if first < 0:  # the whole response, last chunk included, in one write
            conn.sendall(head + wire + END)
            return
        conn.sendall(head + wire[:first])
        _send_in_pieces(conn, wire[first:], first, server)
        conn.sendall(END)

    server = serve(handler)
    return server


def _batched(url: str, chunk_size: int) -> tuple[list[bytes], BaseException | None]:
    options = TransportOptions(stall_timeout=5.0, header_timeout=5.0, chunk_size=chunk_size)
    got, error = collect(RequestsTransport().batches(get(url), options))
    batches: list[Any] = list(got)
    assert all(isinstance(batch, list) and batch for batch in batches)
    return [line for batch in batches for line in batch], error


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 100, 8191, 8192, 8193, 65536, DEFAULT_CHUNK_SIZE])
def test_every_line_arrives_once_in_order_whatever_the_read_size(
    serve: Callable[[Handler], RawServer], chunk_size: int
) -> None:
    # Tiny reads take a smaller body (a read per byte costs a loop turn each).
    wire, expected = _body(chunk_size, 30 if chunk_size < 100 else 120)
    assert len(wire) > 20_000  # more than the socket file's 8 KiB buffer can hold
    server = _body_server(serve, HEAD, wire, first=12_000)
    url = f"{server.url}/s"
    got, error = collect(lines(get(url), chunk_size=chunk_size, stall_timeout=5, header_timeout=5))
    assert error is None
    assert got == expected
    got, error = _batched(url, chunk_size)
    assert error is None
    assert got == expected


@pytest.mark.parametrize("first", [-1, 0, 1, 8000, 8192 - len(HEAD), 8192, 100_000])
@pytest.mark.parametrize("chunk_size", [100, 8193, DEFAULT_CHUNK_SIZE])
def test_bytes_buffered_with_the_head_are_read_before_the_socket(
    serve: Callable[[Handler], RawServer], first: int, chunk_size: int
) -> None:
    # The head and `first` bytes of the body in one write: whatever the socket file buffered
    # while http.client parsed the head must come before anything recv() returns.
    wire, expected = _body(first + chunk_size, 80)
    server = _body_server(serve, HEAD, wire, first=first)
    got, error = collect(
        lines(get(f"{server.url}/s"), chunk_size=chunk_size, stall_timeout=5, header_timeout=5)
    )
    assert error is None
    assert got == expected


def _gzip_members(payload: bytes, seed: int) -> bytes:
    """``payload`` gzipped, as one member or several (a server may restart its stream)."""
    rng = random.Random(seed)
    cut = rng.randrange(len(payload))
    if seed % 2:
        return gzip.compress(payload)
    return gzip.compress(payload[:cut]) + gzip.compress(payload[cut:])


def _chunked(data: bytes, seed: int) -> bytes:
    """``data`` framed in chunks of random sizes (1 byte to 40 KB)."""
    rng = random.Random(seed)
    out = bytearray()
    at = 0
    while at < len(data):
        size = rng.choice([1, 2, 10, 500, 8192, 40_000])
        out += chunk(data[at : at + size])
        at += size
    return bytes(out)


@pytest.mark.parametrize("chunk_size", [1, 7, 8193, DEFAULT_CHUNK_SIZE])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_gzip_body_arrives_whole_whatever_the_read_size(
    serve: Callable[[Handler], RawServer], chunk_size: int, seed: int
) -> None:
    rng = random.Random(seed)
    # Incompressible-ish lines, so that the compressed body outgrows the 8 KiB buffer.
    expected = [
        b"%05d:" % i + bytes(rng.randrange(33, 127) for _ in range(rng.choice([0, 50, 3000])))
        for i in range(40 if chunk_size < 100 else 120)
    ]
    payload = b"".join(line + b"\r\n" for line in expected)
    wire = _chunked(_gzip_members(payload, seed), seed)
    assert len(wire) > 20_000
    server = _body_server(serve, GZIP_HEAD, wire, first=9000)
    got, error = collect(
        lines(get(f"{server.url}/s"), chunk_size=chunk_size, stall_timeout=5, header_timeout=5)
    )
    assert error is None
    assert got == expected


def test_chunk_size_is_bounded_by_the_options() -> None:
    for bad in (0, -1, 64 * 1024 * 1024 + 1):
        with pytest.raises(ValueError, match="chunk_size"):
            TransportOptions(chunk_size=bad)
    with pytest.raises(TypeError):
        TransportOptions(chunk_size=True)
    assert TransportOptions(chunk_size=1).chunk_size == 1
    assert TransportOptions(chunk_size=64 * 1024 * 1024).chunk_size == 64 * 1024 * 1024


class _FakeSSLTransport:
    """What urllib3's ``SSLTransport`` (TLS inside a TLS proxy tunnel) looks like to
    ``makefile``: an object with ``recv_into``, not a ``socket.socket``."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        return self._data.readinto(memoryview(buffer)[: nbytes or len(buffer)])


def test_only_a_real_socket_is_read_directly() -> None:
    # A BufferedReader over anything but SocketIO-over-a-socket must keep read1: recv on
    # an SSLTransport would skip its TLS layer, and a BytesIO has no socket at all.
    assert transport_module._socket_recv(io.BufferedReader(io.BytesIO(b"x"))) is None
    tunnel: Any = io.BufferedReader(socket.SocketIO(_FakeSSLTransport(b"abc"), "rb"))  # type: ignore[arg-type]
    assert transport_module._socket_recv(tunnel) is None
    a, b = socket.socketpair()
    with a, b:
        fp = a.makefile("rb")
        recv = transport_module._socket_recv(fp)
        assert recv is not None
        b.sendall(b"xyz")
        assert recv(10) == b"xyz"


def test_the_read1_fallback_gives_the_same_lines(
    serve: Callable[[Handler], RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a proxy's tunnel (no socket to read directly) does: read1 all along.
    monkeypatch.setattr(transport_module, "_socket_recv", lambda fp: None)
    wire, expected = _body(5, 100)
    server = _body_server(serve, HEAD, wire, first=10_000)
    got, error = collect(lines(get(f"{server.url}/s"), chunk_size=8193, stall_timeout=5))
    assert error is None
    assert got == expected


# TLS: neither RawServer nor FakeStreamServer speaks it, so here is a small one.


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (made with ``cryptography``)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.contextmanager
def _tls_server(
    directory: Path, send: Callable[[ssl.SSLSocket], None]
) -> Iterator[tuple[str, Path]]:
    """One HTTPS connection on 127.0.0.1: reads the request head, ``send(conn)``, closes.
    Yields the base URL and the certificate to verify it with."""
    cert, key = _self_signed(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def run() -> None:
        with contextlib.suppress(OSError):
            raw, _ = listener.accept()
            with context.wrap_socket(raw, server_side=True) as conn:
                if read_head(conn):
                    send(conn)
                    conn.unwrap()

    thread = threading.Thread(target=run, name="test-tls-server", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}", cert
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(3)
    assert not thread.is_alive()


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("chunk_size", [7, 8193, DEFAULT_CHUNK_SIZE])
def test_tls_lines_arrive_once_in_order(tmp_path: Path, chunk_size: int, gzipped: bool) -> None:
    # Over TLS the socket read directly is the SSLSocket: its recv decrypts (and returns
    # what a record held beyond an earlier read), as read1 did through SocketIO.
    wire, expected = _body(chunk_size + gzipped, 40 if chunk_size < 100 else 100)
    head = HEAD
    if gzipped:
        payload = b"".join(line + b"\r\n" for line in expected)
        wire, head = _chunked(gzip.compress(payload), chunk_size), GZIP_HEAD

    def send(conn: ssl.SSLSocket) -> None:
        conn.sendall(head + wire[:10_000])
        rng = random.Random(chunk_size)
        at = 10_000
        while at < len(wire):
            size = rng.choice([1, 100, 5000, 17_000])  # records of every size
            conn.sendall(wire[at : at + size])
            at += size
        conn.sendall(END)

    with _tls_server(tmp_path, send) as (url, cert):
        request = type(get(url))("GET", f"{url}/s", verify=str(cert))
        got, error = collect(
            lines(request, chunk_size=chunk_size, stall_timeout=5, header_timeout=5)
        )
    assert error is None
    assert got == expected
    assert wait_until(lambda: not reader_threads())


def test_tls_a_trickle_after_complete_lines_stalls_on_time(tmp_path: Path) -> None:
    # The SSLSocket read directly must still time out at the deadline, record by record.
    stop = threading.Event()

    def send(conn: ssl.SSLSocket) -> None:
        conn.sendall(HEAD + chunk(b"one\r\n") + chunk(b"two\r\n"))
        for byte in b"40\r\n" + b"x" * 60:  # a TLS record per byte
            conn.sendall(bytes([byte]))
            if stop.wait(0.03):
                return
        stop.wait(5)

    with _tls_server(tmp_path, send) as (url, cert):
        request = type(get(url))("GET", f"{url}/s", verify=str(cert))
        try:
            got, error, ended = _timed(lines(request, stall_timeout=STALL, header_timeout=5))
        finally:
            stop.set()
    assert isinstance(error, StallError)
    assert [line for _, line in got] == [b"one", b"two"]
    assert STALL * 0.9 <= ended - got[-1][0] < STALL * 3
    assert wait_until(lambda: not reader_threads())


# --- 2. the stall deadline, counted from the last complete line -----------------------------


def _timed(
    observable: Observable[bytes], timeout: float = 5.0
) -> tuple[list[tuple[float, bytes]], BaseException | None, float]:
    """Each line with the time it arrived, the error (``None``: completed), when it ended."""
    got: list[tuple[float, bytes]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    subscription = observable.subscribe(
        on_next=lambda line: got.append((time.monotonic(), line)),
        on_error=on_error,
        on_completed=done.set,
    )
    finished = done.wait(timeout)
    ended = time.monotonic()
    subscription.dispose()
    assert finished, "the stream neither completed nor failed"
    return got, (errors[0] if errors else None), ended


STALL = 0.4


def _stalled_after_last_line(
    serve: Callable[[Handler], RawServer],
    handler: Callable[[socket.socket, RawServer], None],
    count: int,
) -> None:
    """Runs ``handler``: ``count`` complete lines, then something that never completes one.
    The stream must end in a StallError ``STALL`` after the last complete line (bounds: not
    before, and within 3x)."""
    holder: list[RawServer] = []
    server = serve(lambda conn, _: handler(conn, holder[0]))
    holder.append(server)
    got, error, ended = _timed(
        lines(get(f"{server.url}/s"), stall_timeout=STALL, header_timeout=5.0)
    )
    assert isinstance(error, StallError), error
    assert len(got) == count
    waited = ended - got[-1][0]
    assert STALL * 0.9 <= waited < STALL * 3, waited


def _trickle(conn: socket.socket, server: RawServer, data: bytes, every: float) -> None:
    for byte in data:
        conn.sendall(bytes([byte]))
        if server.stop.wait(every):
            return
    server.stop.wait(10)


def test_a_partial_line_trickled_after_complete_lines_stalls_on_time(
    serve: Callable[[Handler], RawServer],
) -> None:
    # After a batch the socket keeps stall_timeout without a settimeout call; the bytes that
    # follow (a chunk header, then a line a byte at a time) must not extend the deadline.
    def handler(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(HEAD + chunk(b"one\r\n") + chunk(b"two\r\n"))
        _trickle(conn, server, b"40\r\n" + b"x" * 60, 0.03)

    _stalled_after_last_line(serve, handler, 2)


def test_a_partial_chunk_inside_one_read_then_a_trickle_stalls_on_time(
    serve: Callable[[Handler], RawServer],
) -> None:
    # The complete line and the start of the next in the same read: the read that yields the
    # batch already carries a partial line; what trickles after must not move the deadline.
    def handler(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(HEAD + chunk(b"one\r\n") + b"40\r\nxx")
        time.sleep(0.05)
        _trickle(conn, server, b"x" * 60, 0.03)

    _stalled_after_last_line(serve, handler, 1)


def test_a_complete_line_then_silence_stalls_on_time(serve: Callable[[Handler], RawServer]) -> None:
    def handler(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(HEAD + chunk(b"one\r\n"))
        time.sleep(0.1)
        conn.sendall(chunk(b"two\r\n"))
        server.stop.wait(10)

    _stalled_after_last_line(serve, handler, 2)


def test_a_partial_line_just_before_the_deadline_then_silence_stalls_on_time(
    serve: Callable[[Handler], RawServer],
) -> None:
    # The read that returns the partial line must set the socket's timeout to what is left
    # (~0.05 s), not leave it at the whole stall_timeout it kept since the batch: else the
    # silence after it runs a whole stall_timeout more (~0.95 s after the line, not 0.5).
    def handler(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(HEAD + chunk(b"one\r\n"))
        if server.stop.wait(0.45):
            return
        conn.sendall(b"40\r\nxxxx")
        server.stop.wait(10)

    holder: list[RawServer] = []
    server = serve(lambda conn, _: handler(conn, holder[0]))
    holder.append(server)
    got, error, ended = _timed(lines(get(f"{server.url}/s"), stall_timeout=0.5, header_timeout=5))
    assert isinstance(error, StallError)
    assert [line for _, line in got] == [b"one"]
    assert 0.45 <= ended - got[-1][0] < 0.85


def test_a_line_completed_late_gives_the_next_read_a_whole_deadline(
    serve: Callable[[Handler], RawServer],
) -> None:
    # Half a line near the deadline (the socket's timeout drops to what is left, ~0.1 s),
    # then its end: the deadline moves a whole stall_timeout on, and so must the socket's
    # timeout, or the wait for the next line (0.3 s) is taken for a stall.
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD + chunk(b"one\r\n"))
        two = chunk(b"two\r\n")
        time.sleep(0.4)
        conn.sendall(two[:4])
        time.sleep(0.05)
        conn.sendall(two[4:])
        time.sleep(0.3)
        conn.sendall(chunk(b"three\r\n") + END)

    server = serve(handler)
    got, error, _ = _timed(lines(get(f"{server.url}/s"), stall_timeout=0.5, header_timeout=5))
    assert error is None
    assert [line for _, line in got] == [b"one", b"two", b"three"]


def test_partial_and_complete_lines_alternating_never_stall_then_stall_on_time(
    serve: Callable[[Handler], RawServer],
) -> None:
    # A line completes every 0.2 s (< STALL), each in two halves: the deadline moves with each
    # complete line (the socket's timeout is set again after the half that completes none).
    def handler(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(HEAD)
        for i in range(6):
            data = chunk(b"line %d\r\n" % i)
            conn.sendall(data[:5])
            if server.stop.wait(0.1):
                return
            conn.sendall(data[5:])
            if server.stop.wait(0.1):
                return
        _trickle(conn, server, b"9\r\nhalf", 0.05)

    _stalled_after_last_line(serve, handler, 6)


def test_keep_alives_only_never_stall(serve: Callable[[Handler], RawServer]) -> None:
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD)
        for _i in range(8):  # 0.8 s: twice the deadline
            conn.sendall(KEEP_ALIVE)
            time.sleep(0.1)
        conn.sendall(END)

    server = serve(handler)
    got, error, _ = _timed(lines(get(f"{server.url}/s"), stall_timeout=STALL, header_timeout=5))
    assert error is None
    assert [line for _, line in got] == [b""] * 8


def test_a_gzip_trickle_after_complete_lines_stalls_on_time(
    serve: Callable[[Handler], RawServer],
) -> None:
    # gzip, flushed after each line (as X does): then the start of a line, flushed, one
    # chunk of one byte at a time. The inflater yields bytes, but never a complete line.
    compressor = zlib.compressobj(wbits=31)
    first = compressor.compress(b"one\r\ntwo\r\n") + compressor.flush(zlib.Z_SYNC_FLUSH)
    partial = compressor.compress(b"x" * 40) + compressor.flush(zlib.Z_SYNC_FLUSH)

    def handler(conn: socket.socket, server: RawServer) -> None:
        conn.sendall(GZIP_HEAD + chunk(first))
        for byte in partial:
            conn.sendall(chunk(bytes([byte])))
            if server.stop.wait(0.03):
                return
        server.stop.wait(10)

    _stalled_after_last_line(serve, handler, 2)


def test_a_slow_consumer_does_not_stall_a_fast_server(
    serve: Callable[[Handler], RawServer],
) -> None:
    # on_next takes longer than the deadline, repeatedly: the deadline (and the socket's
    # timeout, set once per batch now) must restart after on_next returns.
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD)
        for i in range(4):
            conn.sendall(chunk(b"line %d\r\n" % i))
            if server.stop.wait(0.05):
                return
        conn.sendall(END)

    server = serve(handler)
    got: list[bytes] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def slow(line: bytes) -> None:
        time.sleep(0.3)  # > stall_timeout
        got.append(line)

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    subscription = lines(get(f"{server.url}/s"), stall_timeout=0.2, header_timeout=5).subscribe(
        slow, on_error, done.set
    )
    assert done.wait(5)
    subscription.dispose()
    assert errors == []
    assert got == [b"line %d" % i for i in range(4)]


def test_a_disposal_during_a_trickle_ends_the_reader_at_once(
    serve: Callable[[Handler], RawServer],
) -> None:
    # The reader blocks in recv itself now: shutting the socket down must still wake it.
    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD + chunk(b"one\r\n"))
        _trickle(conn, server, b"40\r\n" + b"x" * 60, 0.05)

    server = serve(handler)
    got: list[bytes] = []
    ended: list[Any] = []
    subscription = lines(get(f"{server.url}/s"), stall_timeout=5, header_timeout=5).subscribe(
        got.append, ended.append, lambda: ended.append("completed")
    )
    assert wait_until(lambda: got == [b"one"], timeout=3)
    time.sleep(0.15)  # inside the trickle
    started = time.monotonic()
    subscription.dispose()
    assert wait_until(lambda: not reader_threads(), timeout=2)
    assert time.monotonic() - started < 1.0
    assert ended == []


# --- 3. feed_lines at a chunk boundary: any split decodes as the whole --------------------


def _reference(wire: bytes) -> tuple[list[bytes], bool] | None:
    """An independent decoder: the lines of a whole chunked body and whether it ended
    (``None``: malformed). Strict: bare hex sizes (extensions allowed), CRLF after each
    payload; lines end in LF, a CR before it dropped; a pending partial line is dropped."""
    payload = bytearray()
    pos = 0
    done = False
    while pos < len(wire):
        nl = wire.find(b"\r\n", pos)
        if nl < 0:
            break  # a size line cut: incomplete
        field = wire[pos:nl].split(b";", 1)[0].rstrip(b" \t")
        if not field or field.strip(b"0123456789abcdefABCDEF"):
            return None
        size = int(field, 16)
        pos = nl + 2
        if size == 0:
            done = True
            break
        if len(wire) - pos < size:
            payload += wire[pos:]
            break
        payload += wire[pos : pos + size]
        pos += size
        if len(wire) - pos < 2:
            # Fewer than the 2 bytes of the closing CRLF: the decoder decides once both are
            # in, so a body cut here is incomplete, whatever the one byte is.
            break
        if wire[pos : pos + 2] != b"\r\n":
            return None
        pos += 2
    parts = bytes(payload).split(b"\n")[:-1]
    return [part[:-1] if part.endswith(b"\r") else part for part in parts], done


LINE_BYTES = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))

#: A chunk whose payload is many lines that look like X's framing ("1a", a line, ""): where a
#: read is cut inside it, a decoder that believed itself at a chunk boundary would take them
#: for chunks (the whole-chunks path needs >= 2048 bytes, so this one is large).
NESTED = st.lists(LINE_BYTES, min_size=100, max_size=160).map(
    lambda ls: chunk(b"".join(chunk(line + b"\r\n") for line in ls))
)

GOOD_PIECE = st.one_of(
    LINE_BYTES.map(lambda line: chunk(line + b"\r\n")),  # X's framing
    st.lists(LINE_BYTES, min_size=50, max_size=120).map(  # a burst of X's framing
        lambda ls: b"".join(chunk(line + b"\r\n") for line in ls)
    ),
    st.just(KEEP_ALIVE),
    st.lists(LINE_BYTES, min_size=2, max_size=4).map(  # several lines in a chunk
        lambda ls: chunk(b"".join(line + b"\r\n" for line in ls))
    ),
    st.tuples(LINE_BYTES, st.integers(1, 6)).map(  # a line over several chunks
        lambda t: b"".join(
            chunk(piece)
            for piece in ((t[0] + b"\r\n")[i : i + t[1]] for i in range(0, len(t[0]) + 2, t[1]))
        )
    ),
    LINE_BYTES.map(lambda line: b"%X;name=value\r\n%b\r\n\r\n" % (len(line) + 2, line)),
    NESTED,
)

#: The same without the large pieces (where the size of the body does not matter).
SMALL_PIECE = st.one_of(
    LINE_BYTES.map(lambda line: chunk(line + b"\r\n")),
    st.just(KEEP_ALIVE),
    st.lists(LINE_BYTES, min_size=2, max_size=4).map(
        lambda ls: chunk(b"".join(line + b"\r\n" for line in ls))
    ),
)

TAIL = st.sampled_from([b"", END, END + b"x-trailer: 1\r\n\r\n", END + b"junk after the end"])


def _feed_split(wire: bytes, cuts: list[int]) -> list[bytes]:
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    got: list[bytes] = []
    for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got.extend(decoder.feed_lines(wire[a:b], splitter))
    return got


@settings(max_examples=120, deadline=None)
@given(
    pieces=st.lists(GOOD_PIECE, max_size=8),
    tail=TAIL,
    data=st.data(),
)
def test_any_split_of_a_chunked_body_gives_its_lines(
    pieces: list[bytes], tail: bytes, data: st.DataObject
) -> None:
    wire = b"".join(pieces) + tail
    # Reads cut at chunk boundaries (where the decoder holds nothing and feed_lines now
    # skips its first pass), after a line end inside a chunk (it holds part of a chunk, and
    # what follows may look like chunks), or anywhere; few cuts, so that reads stay large.
    boundaries = [sum(map(len, pieces[:i])) for i in range(1, len(pieces) + 1)]
    line_ends = [i + 2 for i in range(len(wire)) if wire.startswith(b"\r\n", i)]
    cuts = data.draw(
        st.lists(
            st.sampled_from(boundaries or [0])
            | st.sampled_from(line_ends or [0])
            | st.integers(0, len(wire)),
            max_size=4,
        )
    )
    cuts = sorted(set(cuts))
    reference = _reference(wire)
    assert reference is not None
    expected, _ = reference
    assert _feed_split(wire, cuts) == expected
    decoder = ChunkedDecoder()
    assert decoder.feed_lines(wire, LineSplitter()) == expected
    assert decoder.done == (tail != b"")


ONE_CHUNK = st.one_of(
    LINE_BYTES.map(lambda line: chunk(line + b"\r\n")),
    st.just(KEEP_ALIVE),
    LINE_BYTES.map(lambda line: chunk(line + b"\r\r\n")),  # a CR before the CRLF
    LINE_BYTES.map(lambda line: chunk(line + b"\n")),  # LF only
    LINE_BYTES.map(lambda line: chunk(line)),  # part of a line
    LINE_BYTES.map(lambda line: b"%X\r\n%b\r\n\r\n" % (len(line) + 2, line)),
    LINE_BYTES.map(lambda line: b"0%x\r\n%b\r\n\r\n" % (len(line) + 2, line)),
    LINE_BYTES.map(lambda line: b"%x;e\r\n%b\r\n\r\n" % (len(line) + 2, line)),
    st.lists(LINE_BYTES, min_size=2, max_size=3).map(
        lambda ls: chunk(b"".join(line + b"\r\n" for line in ls))
    ),
    st.integers(4090, 4100).map(lambda n: chunk(b"w" * n + b"\r\n")),  # past the size table
)


#: A chunk whose size lies (the payload is shorter or longer than it says).
LYING_CHUNK = st.tuples(LINE_BYTES, st.sampled_from([-2, -1, 1, 2, 16])).map(
    lambda t: b"%x\r\n%b\r\n\r\n" % (max(len(t[0]) + 2 + t[1], 1), t[0])
)


def _one_chunk_outcome(pieces: list[bytes], max_line: int, *, per_read: bool) -> list[Any]:
    """Lines and drops (or the error raised) of ``pieces`` + the last chunk, fed a piece a
    read (``per_read``) or decoded whole chunk by chunk (the loop: _decode with a splitter)."""
    drops: list[int] = []
    decoder, splitter = ChunkedDecoder(), LineSplitter(max_line, on_drop=drops.append)
    got: list[bytes] = []
    try:
        if per_read:
            for piece in [*pieces, END]:
                got.extend(decoder.feed_lines(piece, splitter))
        else:
            decoder._decode(b"".join(pieces) + END, got, splitter)
    except ChunkedEncodingError:
        return ["error", got, drops]
    return [got, drops, decoder.done]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(ONE_CHUNK | LYING_CHUNK, max_size=12),
    max_line=st.sampled_from([3, 40, 4098, 10**6]),
)
# Found in a fresh clone: a lying size that swallows the end, leaving one byte ("\n") where
# the closing CRLF goes; the reference once called that malformed, the decoder (rightly)
# incomplete.
@example(pieces=[b"12\r\n\r\n\r\n", b"5\r\n\x00\x00\x00\r\n\r\n"], max_line=3)
def test_reads_of_exactly_one_chunk_give_the_lines_of_the_whole(
    pieces: list[bytes], max_line: int
) -> None:
    # A stream at a low rate: each read is one chunk (X's one-line chunk takes a path of its
    # own). Whatever the chunk holds, whatever its size says, and whatever max_line drops,
    # the result is the whole body's decoded chunk by chunk; a lie is an error either way
    # (the lines before it may differ: the whole body fails at its first read).
    per_read = _one_chunk_outcome(pieces, max_line, per_read=True)
    whole = _one_chunk_outcome(pieces, max_line, per_read=False)
    if whole[0] == "error":
        assert per_read[0] == "error"
    else:
        assert per_read == whole
        reference = _reference(b"".join(pieces) + END)
        assert reference is not None
        if max_line == 10**6:
            assert per_read[0] == reference[0]


def _x_fill(n: int) -> bytes:
    """X-framed chunks of exactly ``n`` bytes on the wire (n > 8)."""
    out = b""
    i = 0
    while n - len(out) > 40:
        out += chunk(b"m%05d\r\n" % i)
        i += 1
    rest = n - len(out)
    return out + next(
        c for c in (chunk(b"z" * size + b"\r\n") for size in range(rest, -1, -1)) if len(c) == rest
    )


def _looks_like_chunks_after_a_left() -> tuple[bytes, list[int]]:
    # A 3,000-byte chunk of X-framed lines, read as: its size line | its payload up to near
    # its end (the decoder holds `_left`, no partial line, and the read looks like chunks).
    wire = chunk(_x_fill(3000)) + END
    return wire, [wire.index(b"\r\n") + 2, len(wire) - 9]


def _looks_like_chunks_after_a_cut_size() -> tuple[bytes, list[int]]:
    # A chunk of 0x80b bytes whose size line is cut after "8" (the decoder holds `_buf`);
    # the read that follows, "0b\r\n" + the payload, is itself valid X framing ("0b" is
    # 9 + 2, and the payload starts with a 9-byte line and "\r\n\r\n").
    payload = b"L" * 9 + b"\r\n\r\n" + _x_fill(0x80B - 13)
    wire = chunk(payload) + END
    assert wire.startswith(b"80b\r\n")
    return wire, [1, len(wire) - 7]


@pytest.mark.parametrize(
    "case", [_looks_like_chunks_after_a_left, _looks_like_chunks_after_a_cut_size]
)
def test_a_read_inside_a_chunk_is_never_taken_for_whole_chunks(
    case: Callable[[], tuple[bytes, list[int]]],
) -> None:
    # What the first pass of feed_lines is for: a read that starts inside a chunk (or inside
    # its size line) goes chunk by chunk up to the next boundary, even where the bytes look
    # like X's chunks (>= 2048 of them, the whole-chunks size). Skipping it there would
    # take the payload's lines "b", "line", "" for chunks.
    wire, cuts = case()
    reference = _reference(wire)
    assert reference is not None
    assert _feed_split(wire, cuts) == reference[0]


@settings(max_examples=200, deadline=None)
@given(
    before=st.lists(SMALL_PIECE, max_size=6),
    bad=st.sampled_from(
        [b"zz\r\n", b"0x5\r\nabcde\r\n", b"5\r\nabcdeXY", b"+5\r\nabcde\r\n", b"-1\r\n", b"\r\n"]
    ),
    after=st.lists(SMALL_PIECE, max_size=3),
    data=st.data(),
)
def test_malformed_framing_fails_whatever_the_split(
    before: list[bytes], bad: bytes, after: list[bytes], data: st.DataObject
) -> None:
    wire = b"".join(before) + bad + b"".join(after)
    at = len(b"".join(before))
    cuts = sorted(
        set(data.draw(st.lists(st.sampled_from([at, at + 1, *range(len(wire))]), max_size=8)))
    )
    with pytest.raises(ChunkedEncodingError):
        _feed_split(wire, cuts)


def test_a_feed_after_the_end_is_ignored_at_a_boundary() -> None:
    # The skip's condition includes `done`: a read after the last chunk must not decode.
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    assert decoder.feed_lines(chunk(b"a\r\n") + END, splitter) == [b"a"]
    assert decoder.done
    assert decoder.feed_lines(chunk(b"b\r\n") * 2000, splitter) == []
    assert decoder.feed_lines(b"zz\r\n", splitter) == []


# --- 4. retry_when without reactivex's guard on each attempt ---------------------------------

Step = Any  # an int (an item), "error", "done", "raise" (in subscribe), "late" (item after)


def _plan_source(plans: list[list[Step]], log: list[Any]) -> Observable[Any]:
    """Attempt k follows ``plans[k % len(plans)]`` synchronously inside subscribe; its
    disposable logs its disposal."""
    count = [0]

    def subscribe(observer: abc.ObserverBase[Any], _: Any = None) -> abc.DisposableBase:
        k = count[0]
        count[0] += 1
        log.append(("subscribed", k))
        for step in plans[k % len(plans)]:
            if step == "error":
                observer.on_error(OSError(f"attempt {k}"))
            elif step == "done":
                observer.on_completed()
            elif step == "raise":
                raise OSError(f"raised by attempt {k}")
            else:
                observer.on_next((k, step))
        return Disposable(lambda: log.append(("disposed", k)))

    return Observable(subscribe)


def _retried(
    plans: list[list[Step]], retries: int, follows: bool, delayed: bool = False
) -> list[Any]:
    """The log of a retry_when over ``_plan_source``: items, ends, subscriptions, disposals
    and (``handler`` entries) each error the notifier was given. ``delayed``: the notifier
    resubscribes a virtual second later, so whatever the attempt does after its error (a
    second error, late items) happens before the next attempt."""
    log: list[Any] = []
    scheduler = TestScheduler()

    def handler(errors: Observable[Exception]) -> Observable[Any]:
        seen = errors.pipe(ops.do_action(lambda e: log.append(("handler", str(e)))))
        if delayed:
            seen = seen.pipe(ops.delay(1.0, scheduler=scheduler))
        return seen.pipe(ops.take(retries))

    result = _plan_source(plans, log).pipe(retry_when(handler, notifier_follows_errors=follows))
    subscription = result.subscribe(
        log.append, lambda e: log.append(("error", repr(e))), lambda: log.append("completed")
    )
    scheduler.start()
    subscription.dispose()
    return log


def _no_raise_after_an_end(plan: list[Step]) -> bool:
    # A source that raises in subscribe after its own on_error/on_completed: reactivex's guard
    # re-raises that (nobody left to tell), the unguarded path drops it; see the next test.
    ends = [i for i, step in enumerate(plan) if step in ("error", "done")]
    raises = [i for i, step in enumerate(plan) if step == "raise"]
    return not (ends and raises and raises[0] > ends[0])


HOSTILE = st.lists(
    st.one_of(st.integers(0, 9), st.sampled_from(["error", "done", "raise"])), max_size=6
).filter(_no_raise_after_an_end)


@settings(max_examples=300, deadline=None)
@given(
    plans=st.lists(HOSTILE, min_size=1, max_size=4),
    retries=st.integers(0, 4),
    delayed=st.booleans(),
)
def test_both_modes_give_the_same_items_errors_and_disposals(
    plans: list[list[Step]], retries: int, delayed: bool
) -> None:
    # Items after an error, two errors, a completion after an error, a raise in subscribe
    # (that attempt's error, retried), items during subscribe: identical, disposals and the
    # errors the handler saw included.
    assert _retried(plans, retries, True, delayed) == _retried(plans, retries, False, delayed)


def test_a_second_error_of_an_attempt_is_not_given_to_the_handler() -> None:
    # The reconnect policy counts the errors it is given (its backoff, its max_retries): an
    # attempt that errors twice before the delayed notifier resubscribes is one failure.
    log = _retried([[1, "error", "error", 2], [3]], 1, True, delayed=True)
    assert [entry for entry in log if entry[0] == "handler"] == [("handler", "attempt 0")]
    assert [entry for entry in log if isinstance(entry, tuple) and isinstance(entry[0], int)] == [
        (0, 1),
        (1, 3),
    ]


def test_a_raise_after_the_attempt_ended_does_not_reach_the_result() -> None:
    # The guarded mode is no reference here (its result errors with the late exception and
    # then subscribes once more); the unguarded one ends as its attempts say: each attempt's
    # error retried, the late exception no error of the result, nothing after the end.
    assert _retried([[1, "error", "raise"]], 2, True) == [
        ("subscribed", 0),
        (0, 1),
        ("handler", "attempt 0"),
        ("subscribed", 1),
        (1, 1),
        ("handler", "attempt 1"),
        ("subscribed", 2),
        (2, 1),
        "completed",  # take(2) ended the notifier: attempt 2's error ends the result
    ]


def _depth() -> int:
    frame: Any = sys._getframe(1)
    depth = 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


@pytest.mark.parametrize("follows", [True, False])
@pytest.mark.parametrize("how", ["error", "raise"])
def test_thousands_of_synchronous_failures_keep_a_constant_stack(follows: bool, how: str) -> None:
    depths: list[int] = []
    count = [0]

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
        depths.append(_depth())
        count[0] += 1
        observer.on_next(count[0])
        if how == "raise":
            raise OSError("refused")
        observer.on_error(OSError("refused"))
        return Disposable()

    got: list[Any] = []
    Observable(subscribe).pipe(
        retry_when(lambda errors: errors.pipe(ops.take(3000)), notifier_follows_errors=follows)
    ).subscribe(got.append, got.append, lambda: got.append("completed"))
    assert got == [*range(1, 3002), "completed"]
    assert max(depths) - min(depths) <= 3


def test_the_attempt_is_disposed_when_it_ends_and_not_before() -> None:
    # An asynchronous source (a Subject per attempt): disposed exactly at its error, after
    # every item of it; the next attempt is subscribed only after that disposal.
    log: list[Any] = []
    attempts: list[Any] = []

    def subscribe(observer: abc.ObserverBase[Any], _: Any = None) -> abc.DisposableBase:
        k = len(attempts)
        attempts.append(observer)
        log.append(("subscribed", k))
        return Disposable(lambda: log.append(("disposed", k)))

    result = Observable(subscribe).pipe(
        retry_when(lambda errors: errors, notifier_follows_errors=True)
    )
    subscription = result.subscribe(log.append, lambda e: log.append(("error", e)))
    attempts[0].on_next("a")
    attempts[0].on_next("b")
    assert ("disposed", 0) not in log  # live: not disposed
    attempts[0].on_error(OSError("cut"))
    assert log == [("subscribed", 0), "a", "b", ("disposed", 0), ("subscribed", 1)]
    attempts[0].on_next("late")  # an item after its error: dropped
    attempts[1].on_next("c")
    attempts[1].on_completed()
    attempts[1].on_next("after the end")
    subscription.dispose()
    assert log == [
        ("subscribed", 0),
        "a",
        "b",
        ("disposed", 0),
        ("subscribed", 1),
        "c",
        ("disposed", 1),
    ]


@pytest.mark.parametrize("follows", [True, False])
def test_a_disposal_inside_on_next_stops_the_attempt(follows: bool) -> None:
    # The subscriber disposes the result from inside on_next while the attempt (another
    # thread, a tight loop that ignores its own disposal) keeps emitting.
    log: list[str] = []
    emitted = threading.Event()

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
        def run() -> None:
            for i in range(1000):
                observer.on_next(i)
            observer.on_error(OSError("after the disposal"))
            emitted.set()

        threading.Thread(target=run).start()
        return Disposable(lambda: log.append("disposed"))

    got: list[int] = []
    box: list[abc.DisposableBase] = []
    ready = threading.Event()

    def on_next(value: int) -> None:
        ready.wait(2)
        got.append(value)
        if value == 3:
            box[0].dispose()

    box.append(
        Observable(subscribe)
        .pipe(retry_when(lambda e: e, notifier_follows_errors=follows))
        .subscribe(on_next, lambda e: got.append(-1))
    )
    ready.set()
    assert emitted.wait(2)
    assert got == [0, 1, 2, 3]
    assert log == ["disposed"]


def test_a_disposal_from_another_thread_during_emission_stops_the_items() -> None:
    stop_at = threading.Event()
    got: list[int] = []
    finished = threading.Event()

    def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
        def run() -> None:
            i = 0
            while not finished.is_set() and i < 2_000_000:
                observer.on_next(i)
                i += 1
                if i == 1000:
                    stop_at.set()
            finished.set()

        threading.Thread(target=run).start()
        return Disposable()

    subscription = (
        Observable(subscribe)
        .pipe(retry_when(lambda e: e, notifier_follows_errors=True))
        .subscribe(got.append)
    )
    assert stop_at.wait(2)
    subscription.dispose()
    seen = len(got)
    time.sleep(0.05)
    finished.set()
    # At most the item in flight when dispose() ran may follow it.
    assert len(got) <= seen + 1
    assert got == list(range(len(got)))


@pytest.mark.parametrize("follows", [True, False])
def test_items_emitted_while_subscribing_then_an_error_are_retried_in_order(
    follows: bool,
) -> None:
    source = reactivex.create(_emit_then_fail)
    got = source.pipe(
        retry_when(lambda errors: errors.pipe(ops.take(2)), notifier_follows_errors=follows),
        ops.to_list(),
    ).run()
    assert got == [1, 2, 1, 2, 1, 2]


def _emit_then_fail(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
    observer.on_next(1)
    observer.on_next(2)
    observer.on_error(OSError("cut"))
    return Disposable()


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(st.lists(st.integers(), max_size=5), min_size=1, max_size=5),
    ends=st.sampled_from(["completed", "error"]),
)
def test_well_behaved_sources_give_the_same_sequences_in_both_modes(
    items: list[list[int]], ends: str
) -> None:
    # Attempt k emits items[k] on a TestScheduler then errors, the last one ends as `ends`.
    def run(follows: bool) -> list[Any]:
        scheduler = TestScheduler()
        count = [0]

        def subscribe(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
            k = count[0]
            count[0] += 1
            batch = items[k]
            last = k == len(items) - 1

            def emit(_s: Any, _st: Any) -> None:
                for item in batch:
                    observer.on_next(item)
                if last and ends == "completed":
                    observer.on_completed()
                else:
                    observer.on_error(OSError(f"cut {k}"))

            return scheduler.schedule_relative(1.0, emit)

        got: list[Any] = []
        Observable(subscribe).pipe(
            retry_when(
                lambda errors: errors.pipe(
                    ops.delay(0.5, scheduler=scheduler), ops.take(len(items) - 1)
                ),
                notifier_follows_errors=follows,
            )
        ).subscribe(got.append, lambda e: got.append(("error", str(e))), lambda: got.append("done"))
        scheduler.start()
        return got

    assert run(True) == run(False)


# The attempt overlap: a transport whose attempt fails synchronously, on a stream held open.

LINE = orjson.dumps({"data": {"id": "1", "text": "t", "edit_history_tweet_ids": ["1"]}})


class _SyncRefusingTransport:
    """A BatchTransport (the seam is public: an httpx one, say) whose first attempt fails
    synchronously inside subscribe (a refused connect, known at once); it logs when each
    attempt opens and when its subscription is disposed (its connection closed)."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def lines(self, *_: Any, **__: Any) -> Observable[bytes]:
        raise AssertionError("batches is used")

    def batches(
        self, request: Any, options: Any, *, on_response: Any = None, **_: Any
    ) -> Observable[list[bytes]]:
        def subscribe(observer: abc.ObserverBase[list[bytes]], _: Any = None) -> abc.DisposableBase:
            k = sum(entry.startswith("open") for entry in self.log)
            self.log.append(f"open {k}")
            if k == 0:
                observer.on_error(StreamConnectionError("connection refused"))
            else:
                if on_response is not None:
                    on_response(type("Head", (), {"status_code": 200, "headers": {}})())
                observer.on_next([LINE])
            return Disposable(lambda: self.log.append(f"close {k}"))

        return Observable(subscribe)


@pytest.mark.parametrize("held", [False, True])
def test_a_failed_attempt_is_closed_before_the_next_opens(held: bool) -> None:
    # held: the share connects when the block ends, from an idle thread (no trampoline
    # running). Unguarded, attempt 0's synchronous error then ran the trampoline inside its
    # on_error, and attempt 1 opened before attempt 0's subscribe had returned.
    transport = _SyncRefusingTransport()
    scheduler = TestScheduler()
    client = StreamingClient("t0ken", transport=transport, scheduler=scheduler)
    stream = client.sample_stream()
    got: list[int] = []
    if held:
        # The share connects when the block ends, from this (idle) thread.
        with stream.hold():
            subscription = stream.tweets.subscribe(lambda tweet: got.append(tweet.id))
    else:
        subscription = stream.tweets.subscribe(lambda tweet: got.append(tweet.id))
    scheduler.advance_to(5.0)
    subscription.dispose()
    assert got == [1]
    # One connection per stream: X refuses a second one while the first is open.
    assert transport.log == ["open 0", "close 0", "open 1", "close 1"]


# --- 5. the connection subscribed without a guard, against a real server ---------------------

TOKEN = "bearer-for-the-read-path-attack"
FAST = ReconnectPolicy(network_wait_step=0.01, http_wait_start=0.01, rate_limit_wait_start=0.01)


def _tweets(n: int) -> list[dict[str, Any]]:
    return [
        {"data": {"id": str(i), "text": f"tweet {i}", "edit_history_tweet_ids": [str(i)]}}
        for i in range(1, n + 1)
    ]


def _rx_threads() -> list[threading.Thread]:
    return [
        t for t in threading.enumerate() if t.name.startswith(("rxtweet-reader-", "rxtweet-wait-"))
    ]


class _Recorder:
    """Everything a stream's tweets and events subscribers see, in one ordered list."""

    def __init__(self) -> None:
        self.log: list[Any] = []
        self.done = threading.Event()

    def tweet(self, tweet: Any) -> None:
        self.log.append(("tweet", tweet.id))

    def event(self, event: Any) -> None:
        self.log.append(type(event).__name__)

    def error(self, error: Exception) -> None:
        self.log.append(("error", error))
        self.done.set()


def test_a_subscriber_exception_ends_the_stream_with_it() -> None:
    with FakeStreamServer(messages=_tweets(10), keepalive_interval=0.05) as server:
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST, stall_timeout=2)
        stream = client.sample_stream()
        seen = _Recorder()
        boom = RuntimeError("the subscriber's bug")

        def on_tweet(tweet: Any) -> None:
            seen.tweet(tweet)
            if tweet.id == 3:
                raise boom

        with stream.hold():
            events = stream.events.subscribe(seen.event)
            tweets = stream.tweets.subscribe(on_tweet, seen.error)
        assert seen.done.wait(3)
        assert wait_until(lambda: "Disconnected" in seen.log, timeout=2)
        time.sleep(0.1)  # nothing may follow
        events.dispose()
        tweets.dispose()
        assert len(server.stream_requests) == 1  # a subscriber's bug is not retried
    log = seen.log
    assert log[:4] == ["Connected", ("tweet", 1), ("tweet", 2), ("tweet", 3)]
    # The events first (the connection emits them, then passes the error on), then nothing.
    assert log[4:] == ["Errored", "Disconnected", ("error", boom)]
    assert wait_until(lambda: not _rx_threads(), timeout=2)


def test_a_subscriber_disposing_inside_on_next_gets_nothing_more() -> None:
    with FakeStreamServer(messages=_tweets(200), keepalive_interval=0.05) as server:
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST, stall_timeout=2)
        stream = client.sample_stream()
        got: list[int] = []
        box: list[abc.DisposableBase] = []

        def on_tweet(tweet: Any) -> None:
            got.append(tweet.id)
            if tweet.id == 5:
                box[0].dispose()

        with stream.hold():
            box.append(stream.tweets.subscribe(on_tweet))
        assert wait_until(lambda: 5 in got, timeout=3)
        assert wait_until(lambda: not _rx_threads(), timeout=2)
        time.sleep(0.1)
        assert got == [1, 2, 3, 4, 5]
        assert len(server.stream_requests) == 1
        assert not stream.connected


def test_reconnects_deliver_every_tweet_once_in_order_and_stop_at_the_end() -> None:
    # 503, a cut mid-message, a clean close, a cut of a byte-chunked body: then a held stream
    # (no reset: an RST discards what the client's kernel held unread). The server's
    # cursor resends what a cut connection did not finish, so every tweet comes once.
    with FakeStreamServer(messages=_tweets(40), keepalive_interval=0.05) as server:
        server.script(
            Attempt(status=503),
            Attempt(messages=7, ending="cut", chunking="random", seed=3),
            Attempt(messages=5, ending="close", gzip=True),
            Attempt(messages=6, ending="cut", chunking="byte"),
            Attempt(messages=30, ending="hold"),
        )
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST, stall_timeout=2)
        stream = client.sample_stream()
        seen = _Recorder()
        with stream.hold():
            events = stream.events.subscribe(seen.event)
            tweets = stream.tweets.subscribe(seen.tweet, seen.error)
            items: list[Any] = []
            all_items = stream.items.subscribe(items.append)
        assert wait_until(lambda: ("tweet", 40) in seen.log, timeout=3)
        tweets.dispose()
        events.dispose()
        all_items.dispose()
        assert wait_until(lambda: not _rx_threads(), timeout=2)
        requests = len(server.stream_requests)
    assert [entry[1] for entry in seen.log if isinstance(entry, tuple)] == list(range(1, 41))
    assert requests == 5
    assert seen.log.count("Connected") == 4
    assert "Errored" not in seen.log and "Disconnected" not in seen.log
    # Every tweet comes after the Connected of its connection: none before the first.
    assert seen.log.index("Connected") < seen.log.index(("tweet", 1))
    ids = [item.value.data.id for item in items if type(item) is Parsed]
    assert ids == list(range(1, 41))


def test_retries_exhausted_end_the_stream_once_with_nothing_after() -> None:
    policy = ReconnectPolicy(http_wait_start=0.01, max_retries=2)
    with FakeStreamServer(messages=_tweets(5), default=Attempt(status=503)) as server:
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=policy, stall_timeout=2)
        stream = client.sample_stream()
        seen = _Recorder()
        with stream.hold():
            events = stream.events.subscribe(seen.event)
            tweets = stream.tweets.subscribe(seen.tweet, seen.error)
        assert seen.done.wait(3)
        assert wait_until(lambda: "Disconnected" in seen.log, timeout=2)
        time.sleep(0.1)
        events.dispose()
        tweets.dispose()
        assert len(server.stream_requests) == 3
    assert seen.log.count("Errored") == 1
    assert seen.log.count("Disconnected") == 1
    assert seen.log.index("Disconnected") > seen.log.index("Errored")
    assert sum(isinstance(entry, tuple) and entry[0] == "error" for entry in seen.log) == 1
    assert wait_until(lambda: not _rx_threads(), timeout=2)


# --- 6. the parser's share of an emit (found once, not per read) --------------------------------


def test_subscribers_joining_and_leaving_mid_stream_see_consistent_items() -> None:
    # tweets alone (the projection path), then items joins (the Parsed path), then tweets
    # leaves (items alone), then tweets again: each sees every message from when it joined.
    with FakeStreamServer(
        messages=_tweets(600), keepalive_interval=0.05, default=Attempt(rate=1500, ending="hold")
    ) as server:
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST, stall_timeout=2)
        stream = client.sample_stream()
        first: list[int] = []
        items: list[int] = []
        second: list[int] = []
        with stream.hold():
            holder = stream.events.subscribe(lambda _: None)  # keeps the connection open
            a = stream.tweets.subscribe(lambda t: first.append(t.id))
        assert wait_until(lambda: len(first) >= 50, timeout=3)
        b = stream.items.subscribe(
            lambda item: items.append(item.value.data.id) if type(item) is Parsed else None
        )
        assert wait_until(lambda: len(items) >= 50, timeout=3)
        a.dispose()
        stop_a = len(first)
        c = stream.tweets.subscribe(lambda t: second.append(t.id))
        assert wait_until(lambda: len(second) >= 50, timeout=3)
        for subscription in (b, c, holder):
            subscription.dispose()
        assert wait_until(lambda: not _rx_threads(), timeout=2)
    assert len(first) == stop_a
    for got in (first, items, second):
        assert got == list(range(got[0], got[0] + len(got)))  # no gap, no repeat
    assert first[0] == 1
    assert items[0] <= first[-1] + 1
    assert second[0] <= items[-1]


def test_one_parser_with_two_emits_and_two_threads_never_mixes_them() -> None:
    # Two shares through one parser, from two threads at once: share "a" has only a tweets-
    # like subscriber (the parser delivers to it from the value, via the share it caches),
    # share "b" a plain one. Each must get exactly its own lines, whichever emit (and share)
    # the cache held last: b's lines given to a's cached share would reach a's subscriber.
    parse = batch_parser(to_stream_response, keep_raw=True)
    docs = [orjson.dumps(doc) for doc in _tweets(600)]
    tweets: list[Any] = []
    items: list[Any] = []
    shared_a = share_connection(reactivex.never())
    shared_b = share_connection(reactivex.never())
    subscriptions = [
        shared_a.observable.pipe(select_messages(attrgetter("data"))).subscribe(tweets.append),
        shared_b.observable.subscribe(items.append),
    ]
    emit_a, emit_b = _emit_of(shared_a), _emit_of(shared_b)
    assert emit_a is not None and emit_b is not None
    parse(docs[:2], emit_a, [False])  # a's share is the cache's first
    barrier = threading.Barrier(2)

    def run(emit: Callable[[Any], None], lines_: list[bytes]) -> None:
        barrier.wait()
        for i in range(0, len(lines_), 2):
            parse(lines_[i : i + 2], emit, [False])
            time.sleep(0)  # let the other thread in between reads

    threads = [
        threading.Thread(target=run, args=(emit_a, docs[2:300])),
        threading.Thread(target=run, args=(emit_b, [*docs[300:], b""])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    for subscription in subscriptions:
        subscription.dispose()
    assert [type(tweet).__name__ for tweet in tweets] == ["Tweet"] * 300
    assert [tweet.id for tweet in tweets] == list(range(1, 301))
    assert [item.value.data.id for item in items if type(item) is Parsed] == list(range(301, 601))
    assert isinstance(items[-1], KeepAlive) and len(items) == 301


def _emit_of(shared: Any) -> Callable[[Any], None] | None:
    """The share's own on_next (its _Multicast's), as a connection is given it."""
    subject = getattr(shared, "_subject", None)
    return None if subject is None else subject.on_next


def test_parse_lines_does_not_keep_a_disposed_subscriber_alive() -> None:
    # A parser that kept the last emit given (a cache of its share) would keep, for
    # parse_lines (one parser per operator, shared by all its subscriptions), the last
    # subscriber's on_next alive, with all it references, for as long as the pipeline lives.
    pipeline = reactivex.of(LINE).pipe(parse_lines(to_stream_response, keep_raw=True))
    sink = _Sink()
    alive = weakref.ref(sink)
    pipeline.subscribe(sink.on_next).dispose()
    assert len(sink.got) == 1
    del sink
    gc.collect()
    assert alive() is None, "the operator keeps its last subscriber alive"


class _Sink:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def on_next(self, item: Any) -> None:
        self.got.append(item)
