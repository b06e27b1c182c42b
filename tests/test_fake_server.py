"""Tests of rxtweet.testing.FakeStreamServer, with raw sockets, http.client and requests.

rxtweet's own transport is deliberately not used here: these tests pin down the wire
behaviour the transport's tests rely on.
"""

from __future__ import annotations

import dataclasses
import gzip
import http.client
import itertools
import logging
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from support import wait_until

from rxtweet.testing import Attempt, FakeStreamServer, RecordedRequest, generate_v2_messages

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
SAMPLE_JSONL = DATA / "twitter-dart_sample_stream.jsonl"
PATH = "/2/tweets/sample/stream"
MSGS: list[Any] = [{"data": {"id": str(i), "text": f"tweet {i} 😀"}} for i in range(1, 6)]
PROBLEMS = "https://api.twitter.com/2/problems/"


def wire(message: Any) -> bytes:
    if isinstance(message, bytes):
        return message + b"\r\n"
    if isinstance(message, str):
        return message.encode() + b"\r\n"
    return orjson.dumps(message) + b"\r\n"


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rxtweet-fake-server")]


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    yield
    assert server_threads() == [], "a FakeStreamServer thread outlived its test"


class Raw:
    """A minimal HTTP/1.1 client on a raw socket that exposes chunk framing."""

    def __init__(self, server: FakeStreamServer, timeout: float = 2.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.buf = bytearray()

    def request(
        self,
        method: str = "GET",
        path: str = PATH,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Raw:
        fields = {"Host": "127.0.0.1", **(headers or {})}
        if body:
            fields["Content-Length"] = str(len(body))
        head = "\r\n".join([f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())])
        self.sock.sendall(head.encode() + b"\r\n\r\n" + body)
        return self

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        idx = self.buf.index(b"\r\n")
        return self._take(idx + 2)[:-2]

    def head(self) -> tuple[int, dict[str, str]]:
        status_line = self._line().decode()
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1"
        headers: dict[str, str] = {}
        while line := self._line().decode():
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status), headers

    def body(self, headers: dict[str, str]) -> bytes:
        return self._take(int(headers["content-length"]))

    def chunk(self) -> bytes | None:
        """The next chunk's payload; None for the terminating chunk; EOFError at EOF."""
        size = int(self._line(), 16)
        if size == 0:
            assert self._line() == b""
            return None
        data = self._take(size)
        assert self._take(2) == b"\r\n"
        return data

    def chunks(self, n: int) -> list[bytes]:
        out = []
        for _ in range(n):
            chunk = self.chunk()
            assert chunk is not None
            out.append(chunk)
        return out

    def chunks_to_end(self) -> tuple[list[bytes], str]:
        """Read chunks until the terminating chunk ("close") or EOF ("eof")."""
        out: list[bytes] = []
        try:
            while (chunk := self.chunk()) is not None:
                out.append(chunk)
        except EOFError:
            return out, "eof"
        return out, "close"

    def silent_for(self, seconds: float) -> bool:
        """True when nothing at all arrives for ``seconds`` (and the socket stays open)."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(1)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(2.0)
        if data:
            self.buf += data
        return False

    def at_eof(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw() -> Iterator[Callable[[FakeStreamServer], Raw]]:
    clients: list[Raw] = []

    def connect(server: FakeStreamServer) -> Raw:
        client = Raw(server)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


# --------------------------------------------------------------------------- basics


def test_listens_on_loopback_with_an_ephemeral_port() -> None:
    with FakeStreamServer() as one, FakeStreamServer() as two:
        assert one.url == f"http://127.0.0.1:{one.port}"
        assert one.port > 0
        assert two.port > 0
        assert one.port != two.port
        assert one._listener is not None
        assert one._listener.getsockname() == ("127.0.0.1", one.port)
    fresh = FakeStreamServer()
    with pytest.raises(RuntimeError):
        _ = fresh.url
    fresh.stop()  # never started: a no-op


def test_line_chunking_sends_one_chunk_per_message_and_closes_cleanly(raw: Any) -> None:
    messages = [MSGS[0], "plain ünïcode", b"\xff\xfe", b'{"trunc', b"[1,2]"]
    with FakeStreamServer(messages=messages, default=Attempt(ending="close")) as server:
        client = raw(server).request()
        status, headers = client.head()
        assert status == 200
        assert headers["transfer-encoding"] == "chunked"
        assert headers["content-type"] == "application/json"
        assert "content-encoding" not in headers
        chunks, end = client.chunks_to_end()
        assert chunks == [wire(m) for m in messages]
        assert end == "close"
        assert wait_until(lambda: server.sent == 5)
        # The response was complete, so the connection serves another request.
        client.request(path="/2/tweets/search/stream/rules")
        assert client.head()[0] == 200


def test_random_chunking_is_seeded_and_ignores_message_boundaries(raw: Any) -> None:
    messages = list(itertools.islice(generate_v2_messages(seed=5), 40))
    expected = b"".join(wire(m) for m in messages)
    ends = set(itertools.accumulate(len(wire(m)) for m in messages))

    def run() -> list[bytes]:
        with FakeStreamServer(messages=messages, fields="all") as server:
            server.script(Attempt(chunking="random", seed=3, ending="close"))
            client: Raw = raw(server).request()
            client.head()
            chunks, end = client.chunks_to_end()
            assert end == "close"
            return chunks

    chunks = run()
    assert b"".join(chunks) == expected
    sizes = [len(c) for c in chunks]
    assert min(sizes) < 10 < 500 < max(sizes)
    boundaries = set(itertools.accumulate(sizes))
    assert len(boundaries - ends) > len(chunks) // 2  # most boundaries fall inside a message
    assert any(b"\r\n" in c[:-2] for c in chunks)  # a chunk ends one message, starts the next
    assert [len(c) for c in run()] == sizes  # same seed, same boundaries


def test_byte_chunking_splits_multibyte_characters(raw: Any) -> None:
    with FakeStreamServer(messages=["é😀", "ok"], keepalive_interval=0.05) as server:
        server.script(Attempt(chunking="byte", ending="hold"))
        client = raw(server).request()
        client.head()
        chunks = client.chunks(len(wire("é😀")) + len(wire("ok")))
        assert all(len(c) == 1 for c in chunks)
        assert b"".join(chunks) == wire("é😀") + wire("ok")
        assert client.chunk() == b"\r\n"  # a keep-alive stays one chunk of its own


def test_cut_sends_half_a_message_then_the_next_connection_resends_it(raw: Any) -> None:
    with FakeStreamServer(messages=MSGS) as server:
        server.script(Attempt(messages=2, ending="cut"), Attempt(ending="close"))
        first = raw(server).request()
        assert first.head()[0] == 200
        chunks, end = first.chunks_to_end()
        assert end == "eof"  # no terminating chunk
        assert chunks[:2] == [wire(MSGS[0]), wire(MSGS[1])]
        (partial,) = chunks[2:]
        assert 1 <= len(partial) < len(wire(MSGS[2])) - 2
        assert wire(MSGS[2]).startswith(partial)
        assert wait_until(lambda: server.requests[0].ended_at is not None)
        assert server.sent == 2

        second = raw(server).request()
        second.head()
        chunks, end = second.chunks_to_end()
        assert (chunks, end) == ([wire(m) for m in MSGS[2:]], "close")
        assert wait_until(lambda: server.sent == 5)


def test_cut_with_nothing_left_just_closes(raw: Any) -> None:
    with FakeStreamServer(messages=MSGS[:1]) as server:
        server.script(Attempt(messages=3, ending="cut"))
        client = raw(server).request()
        client.head()
        assert client.chunks_to_end() == ([wire(MSGS[0])], "eof")


def test_requests_sees_a_cut_as_chunked_encoding_error() -> None:
    with FakeStreamServer(messages=MSGS) as server:
        server.script(Attempt(messages=2, ending="cut", gzip=True, chunking="random"))
        lines: list[bytes] = []
        with (
            requests.get(server.url + PATH, stream=True, timeout=2) as response,
            pytest.raises(requests.exceptions.ChunkedEncodingError),
        ):
            lines.extend(response.iter_lines())
        assert lines[:2] == [wire(m)[:-2] for m in MSGS[:2]]


def test_stall_goes_silent_but_keeps_the_socket_open(raw: Any) -> None:
    with FakeStreamServer(messages=MSGS, keepalive_interval=0.05) as server:
        server.script(Attempt(messages=1, ending="stall"))
        client = raw(server).request()
        client.head()
        assert client.chunk() == wire(MSGS[0])
        assert client.silent_for(0.3)  # no data, no keep-alive, no EOF
        assert server.requests[0].ended_at is None
    assert client.at_eof()  # stop() hung up


def test_hold_sends_keepalives_at_the_interval(raw: Any) -> None:
    with FakeStreamServer(messages=MSGS) as server:  # server default: 20 s
        server.script(Attempt(messages=1, ending="hold", keepalive_interval=0.05))
        client = raw(server).request()
        client.head()
        started = time.monotonic()
        assert client.chunk() == wire(MSGS[0])
        assert client.chunks(4) == [b"\r\n"] * 4
        assert 0.15 < time.monotonic() - started < 1.5
        assert server.sent == 1  # messages=1 is respected while holding


def test_a_message_the_client_has_read_is_already_counted(raw: Any) -> None:
    # CI once read server.sent_by_partition right after the client had every message and
    # found 953 of 1,000: the count came after sendall returned, in the server's thread.
    # One message fed at a time: each is written alone, right as the client waits for it.
    with FakeStreamServer(keepalive_interval=5) as server:
        client = raw(server).request()
        client.head()
        behind = 0
        for n in range(120):
            server.feed({"data": {"id": str(n), "text": "t"}})
            assert client.chunk() == wire({"data": {"id": str(n), "text": "t"}})
            behind += server.sent < n + 1
        assert behind == 0
        assert server.sent == 120


def test_hold_delivers_messages_fed_later(raw: Any) -> None:
    with FakeStreamServer(keepalive_interval=0.05) as server:
        client = raw(server).request()
        client.head()
        assert client.chunk() == b"\r\n"
        server.feed(MSGS[0], b"raw")
        received = [c for c in client.chunks(4) if c != b"\r\n"]
        assert received[:2] == [wire(MSGS[0]), b"raw\r\n"]


def test_gzip_is_one_stream_sync_flushed_per_message(raw: Any) -> None:
    with FakeStreamServer(messages=MSGS, keepalive_interval=0.05) as server:
        server.script(Attempt(gzip=True, ending="close"), Attempt(gzip=True, messages=1))
        client = raw(server).request()
        _, headers = client.head()
        assert headers["content-encoding"] == "gzip"
        chunks, end = client.chunks_to_end()
        assert end == "close"
        decoder = zlib.decompressobj(31)
        # Each message decodes as soon as its own chunk arrived.
        assert [decoder.decompress(c) for c in chunks[: len(MSGS)]] == [wire(m) for m in MSGS]
        assert gzip.decompress(b"".join(chunks)) == b"".join(wire(m) for m in MSGS)

        # A keep-alive is compressed and flushed too.
        server.feed(MSGS[0])
        client.request()
        client.head()
        decoder = zlib.decompressobj(31)
        assert decoder.decompress(client.chunk() or b"") == wire(MSGS[0])
        assert decoder.decompress(client.chunk() or b"") == b"\r\n"


@pytest.mark.parametrize("chunking", ["line", "random", "byte"])
def test_gzip_with_each_chunking_decodes_with_requests(chunking: Any) -> None:
    messages = list(itertools.islice(generate_v2_messages(seed=2), 10))
    with FakeStreamServer(messages=messages, fields="all") as server:
        server.script(Attempt(gzip=True, chunking=chunking, ending="close", seed=9))
        with requests.get(server.url + PATH, stream=True, timeout=2) as response:
            assert response.headers["content-encoding"] == "gzip"
            lines = [orjson.loads(line) for line in response.iter_lines() if line]
        assert lines == messages


# --------------------------------------------------------------------------- statuses


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            401,
            {
                "title": "Unauthorized",
                "type": "about:blank",
                "status": 401,
                "detail": "Unauthorized",
            },
        ),
        (
            409,
            {
                "title": "ConnectionException",
                "detail": "You must define rules using the POST /2/tweets/search/stream/rules "
                "endpoint before connecting to filtered stream.",
                "connection_issue": "RuleConfigurationIssue",
                "type": PROBLEMS + "streaming-connection",
            },
        ),
        (
            429,
            {
                "title": "ConnectionException",
                "detail": "This stream is currently at the maximum allowed connection limit.",
                "connection_issue": "TooManyConnections",
                "type": PROBLEMS + "streaming-connection",
            },
        ),
        (
            503,
            {
                "title": "Service Unavailable",
                "type": "about:blank",
                "status": 503,
                "detail": "Service Unavailable",
            },
        ),
    ],
)
def test_default_error_bodies_are_xs(status: int, expected: dict[str, Any]) -> None:
    with FakeStreamServer(messages=MSGS) as server:
        server.script(Attempt(status=status))
        response = requests.get(server.url + PATH, timeout=2)
        assert response.status_code == status
        assert response.json() == expected
        assert response.headers["content-type"] == "application/problem+json"
        assert server.sent == 0


@pytest.mark.parametrize(
    ("status", "check"),
    [
        (400, lambda r: r.json()["type"] == PROBLEMS + "invalid-request"),
        (403, lambda r: r.json()["type"] == PROBLEMS + "client-forbidden"),
        (404, lambda r: r.json()["title"] == "Not Found"),
        (
            420,
            lambda r: (
                r.text == "Exceeded connection limit for user" and r.reason == "Enhance Your Calm"
            ),
        ),
        (500, lambda r: r.json()["status"] == 500),
    ],
)
def test_other_default_error_bodies(
    status: int, check: Callable[[requests.Response], bool]
) -> None:
    with FakeStreamServer() as server:
        server.script(Attempt(status=status))
        response = requests.get(server.url + PATH, timeout=2)
        assert response.status_code == status
        assert check(response)


def test_429_carries_rate_limit_headers_and_custom_bodies_override() -> None:
    with FakeStreamServer() as server, requests.Session() as session:
        server.script(
            Attempt(status=429),
            Attempt(status=429, headers={"X-Rate-Limit-Remaining": "0"}, body={"title": "x"}),
            Attempt(status=503, body=b"<html>overloaded</html>", headers={"retry-after": "1"}),
            Attempt(status=200, body='{"not": "a stream"}'),
        )
        first = session.get(server.url + PATH, timeout=2)
        assert first.headers["x-rate-limit-limit"] == "50"
        assert first.headers["x-rate-limit-remaining"] == "48"
        assert abs(int(first.headers["x-rate-limit-reset"]) - (time.time() + 900)) < 60
        second = session.get(server.url + PATH, timeout=2)
        assert second.headers["x-rate-limit-remaining"] == "0"
        assert second.headers["x-rate-limit-limit"] == "50"
        assert second.json() == {"title": "x"}
        third = session.get(server.url + PATH, timeout=2)
        assert (third.status_code, third.text) == (503, "<html>overloaded</html>")
        assert third.headers["retry-after"] == "1"
        fourth = session.get(server.url + PATH, timeout=2)
        assert (fourth.status_code, fourth.json()) == (200, {"not": "a stream"})
        assert len({r.connection for r in server.requests}) == 1  # all on one connection


def test_script_is_a_fifo_then_the_default() -> None:
    with FakeStreamServer(default=Attempt(status=500)) as server:
        server.script(Attempt(status=503))
        server.script(Attempt(status=429), Attempt(status=401))
        assert [a.status for a in server.scripted] == [503, 429, 401]
        statuses = [requests.get(server.url + PATH, timeout=2).status_code for _ in range(5)]
        assert statuses == [503, 429, 401, 500, 500]
        assert server.scripted == ()
        assert [r.attempt for r in server.requests][-1] == Attempt(status=500)


def test_delay_and_rate() -> None:
    with FakeStreamServer(messages=MSGS) as server:
        server.script(Attempt(delay=0.2, messages=0, ending="close"))
        started = time.monotonic()
        requests.get(server.url + PATH, timeout=2)
        assert time.monotonic() - started >= 0.19

        server.script(Attempt(rate=20, messages=4, ending="close"))
        started = time.monotonic()
        with requests.get(server.url + PATH, stream=True, timeout=2) as response:
            assert len([line for line in response.iter_lines() if line]) == 4
        assert time.monotonic() - started >= 0.14  # three 50 ms gaps


def test_attempt_validation_and_repr() -> None:
    with pytest.raises(ValueError, match="ending"):
        Attempt(ending="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunking"):
        Attempt(chunking="lines")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="messages"):
        Attempt(messages=-1)
    with pytest.raises(ValueError, match="rate"):
        Attempt(rate=0)
    with pytest.raises(ValueError, match="header"):
        Attempt(headers={"x-evil": "a\r\nset-cookie: 1"})
    with pytest.raises(TypeError):
        Attempt(503)  # type: ignore[call-arg]
    attempt = Attempt(status=503, ending="cut")
    with pytest.raises(dataclasses.FrozenInstanceError):
        attempt.status = 200  # type: ignore[misc]
    assert repr(attempt) == "Attempt(status=503, ending='cut')"


# --------------------------------------------------------------------------- sources


def test_jsonl_file_source(tmp_path: Path) -> None:
    lines = SAMPLE_JSONL.read_bytes().splitlines()
    assert len(lines) == 70
    for source in (str(SAMPLE_JSONL), SAMPLE_JSONL):
        with FakeStreamServer(messages=source, default=Attempt(ending="close")) as server:
            with requests.get(server.url + PATH, stream=True, timeout=2) as response:
                assert list(response.iter_lines()) == lines
            assert server.sent == 70

    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(b'{"a":1}\r\n\r\n  \n{"b":2}\n{"c":3}')
    with (
        FakeStreamServer(messages=crlf, default=Attempt(ending="close")) as server,
        requests.get(server.url + PATH, stream=True, timeout=2) as response,
    ):
        assert list(response.iter_lines()) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    with pytest.raises(FileNotFoundError):
        FakeStreamServer(messages=tmp_path / "missing.jsonl")
    with pytest.raises(TypeError):
        FakeStreamServer(messages=MSGS[0])


def test_infinite_generator_is_one_cursor_shared_by_connections(raw: Any) -> None:
    with FakeStreamServer(messages=generate_v2_messages(seed=1)) as server:
        server.script(Attempt(messages=3, ending="close"), Attempt(messages=3, ending="close"))
        ids = []
        for _ in range(2):
            client = raw(server).request()
            client.head()
            chunks, _ = client.chunks_to_end()
            ids += [orjson.loads(c)["data"]["id"] for c in chunks]
        expected = [m["data"]["id"] for m in itertools.islice(generate_v2_messages(seed=1), 6)]
        assert ids == expected


def test_a_client_leaving_mid_stream_is_quiet_and_loses_nothing(
    raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rxtweet.testing")
    source = ({"data": {"id": str(i), "pad": "x" * 2000}} for i in itertools.count())
    with FakeStreamServer(messages=source) as server:
        server.script(Attempt(ending="hold"), Attempt(messages=1, ending="close"))
        client = raw(server).request()
        client.head()
        client.chunks(10)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST while the server is writing as fast as it can
        assert wait_until(lambda: server.requests[0].ended_at is not None)
        sent = server.sent
        assert sent >= 10
        second = raw(server).request()
        second.head()
        (chunk,) = second.chunks_to_end()[0]
        # Messages not completely written went back to the cursor: nothing skipped.
        assert orjson.loads(chunk)["data"]["id"] == str(sent)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []


# --------------------------------------------------------------------------- auth, recording


def test_bearer_token_is_checked_before_the_script() -> None:
    with FakeStreamServer(messages=MSGS, bearer_token="s3cret") as server:
        server.script(Attempt(messages=1, ending="close"))
        missing = requests.get(server.url + PATH, timeout=2)
        wrong = requests.get(server.url + PATH, headers={"Authorization": "Bearer nope"}, timeout=2)
        rules = requests.get(server.url + "/2/tweets/search/stream/rules", timeout=2)
        for response in (missing, wrong, rules):
            assert response.status_code == 401
            assert response.json()["title"] == "Unauthorized"
        assert len(server.scripted) == 1  # nothing consumed
        assert [r.attempt for r in server.requests] == [None, None, None]
        good = requests.get(
            server.url + PATH, headers={"Authorization": "Bearer s3cret"}, timeout=2
        )
        assert good.status_code == 200
        assert good.content == wire(MSGS[0])
        # v1.1 paths are not the bearer check's business.
        server.script(Attempt(messages=0, ending="close"))
        assert requests.get(server.url + "/1.1/statuses/sample.json", timeout=2).status_code == 200


def test_v1_paths_take_get_and_form_posts_and_the_verify_hook() -> None:
    seen: list[RecordedRequest] = []

    def verify(request: RecordedRequest) -> bool:
        seen.append(request)
        return (request.header("Authorization") or "").startswith("OAuth ")

    with FakeStreamServer(messages=MSGS, verify_v1=verify, bearer_token="t") as server:
        server.script(Attempt(messages=1, ending="close"))
        rejected = requests.post(
            server.url + "/1.1/statuses/filter.json", data={"track": "cats"}, timeout=2
        )
        assert rejected.status_code == 401
        assert rejected.json() == {
            "errors": [{"code": 32, "message": "Could not authenticate you."}]
        }
        accepted = requests.post(
            server.url + "/1.1/statuses/filter.json",
            data={"track": "cats,dogs", "stall_warnings": "true"},
            headers={"Authorization": 'OAuth oauth_consumer_key="k"'},
            timeout=2,
        )
        assert (accepted.status_code, accepted.content) == (200, wire(MSGS[0]))
        assert seen[1].form == {"track": ["cats,dogs"], "stall_warnings": ["true"]}
        assert seen[1].status == 0
        assert seen[1].method == "POST"
        assert requests.put(server.url + "/1.1/statuses/filter.json", timeout=2).status_code == 405


def test_requests_are_recorded_with_redacted_repr() -> None:
    with FakeStreamServer(messages=MSGS, bearer_token="s3cret") as server:
        server.script(Attempt(messages=2, ending="close"))
        requests.get(
            server.url + PATH + "?tweet.fields=id,text&expansions=author_id&x=1&x=2&empty=",
            headers={"Authorization": "Bearer s3cret", "X-Custom": "Yes"},
            timeout=2,
        )
        requests.post(server.url + "/2/tweets/search/stream/rules", json={"add": []}, timeout=2)
        stream, rules = server.requests
        assert stream.method == "GET"
        assert stream.path == PATH
        assert stream.query == {
            "tweet.fields": ["id,text"],
            "expansions": ["author_id"],
            "x": ["1", "2"],
            "empty": [""],
        }
        assert stream.headers["x-custom"] == "Yes"
        assert stream.header("X-CUSTOM") == "Yes"
        assert stream.headers["authorization"] == "Bearer s3cret"  # kept for assertions...
        assert "s3cret" not in repr(stream)  # ...but never shown
        assert "<redacted>" in repr(stream)
        assert stream.status == 200
        assert stream.attempt == Attempt(messages=2, ending="close")
        # ended_at is set after the last write: the client can have the whole body first.
        assert wait_until(lambda: server.requests[0].ended_at is not None)
        stream = server.requests[0]
        assert stream.ended_at is not None
        assert stream.started_at <= stream.ended_at
        assert stream.body == b""
        assert rules.body == b'{"add": []}'
        assert rules.json() == {"add": []}
        assert rules.status == 401
        assert rules.attempt is None
        snapshot = server.requests
        snapshot.clear()
        assert len(server.requests) == 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            stream.status = 1  # type: ignore[misc]


def test_wait_for_requests_counts_stream_requests_only() -> None:
    with FakeStreamServer(default=Attempt(status=503)) as server:
        with pytest.raises(TimeoutError):
            server.wait_for_requests(1, timeout=0.05)
        requests.get(server.url + "/2/tweets/search/stream/rules", timeout=2)
        with pytest.raises(TimeoutError):
            server.wait_for_requests(1, timeout=0.05)
        timer = threading.Timer(0.1, lambda: requests.get(server.url + PATH, timeout=2))
        timer.start()
        try:
            (request,) = server.wait_for_requests(1, timeout=2)
        finally:
            timer.join()
        assert request.path == PATH
        assert [r.path for r in server.stream_requests] == [PATH]


# --------------------------------------------------------------------------- HTTP plumbing


def test_one_connection_serves_several_requests_until_connection_close(raw: Any) -> None:
    with FakeStreamServer(messages=MSGS) as server:
        server.script(Attempt(messages=1, ending="close"))
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
        try:
            for path in ("/2/tweets/search/stream/rules", PATH, "/2/tweets/search/stream/rules"):
                conn.request("GET", path)
                response = conn.getresponse()
                assert response.status == 200
                response.read()
            conn.request(
                "POST",
                "/2/tweets/search/stream/rules",
                body=iter([b'{"add":[{"value":', b'"cats"}]}']),
                headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
                encode_chunked=True,
            )
            created = conn.getresponse()
            assert created.status == 201
            assert orjson.loads(created.read())["data"][0]["value"] == "cats"
        finally:
            conn.close()
        assert {r.connection for r in server.requests} == {1}

        client = raw(server).request(
            path="/2/tweets/search/stream/rules", headers={"Connection": "close"}
        )
        status, headers = client.head()
        assert (status, headers["connection"]) == (200, "close")
        client.body(headers)
        assert client.at_eof()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    ],
)
def test_malformed_requests_get_an_error_and_a_close(
    raw: Any, request_bytes: bytes, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeStreamServer() as server:
        client = raw(server)
        client.sock.sendall(request_bytes)
        got, headers = client.head()
        assert got == status
        assert orjson.loads(client.body(headers))["type"] == PROBLEMS + "invalid-request"
        assert client.at_eof()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_unknown_paths_and_methods() -> None:
    with FakeStreamServer() as server:
        missing = requests.get(server.url + "/2/tweets/nope", timeout=2)
        assert missing.status_code == 404
        assert missing.json()["title"] == "Not Found"
        wrong = requests.post(server.url + PATH, timeout=2)
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")
        assert server.scripted == ()
        assert [r.attempt for r in server.requests] == [None, None]


# --------------------------------------------------------------------------- rules


def rules_call(server: FakeStreamServer, body: Any = None, **params: str) -> requests.Response:
    url = server.url + "/2/tweets/search/stream/rules"
    if body is None:
        return requests.get(url, params=params, timeout=2)
    return requests.post(url, params=params, json=body, timeout=2)


def test_rules_add_duplicate_invalid_and_dry_run() -> None:
    with FakeStreamServer() as server:
        response = rules_call(
            server, {"add": [{"value": "cat has:images", "tag": "cats"}, {"value": "dog"}]}
        )
        assert response.status_code == 201
        doc = response.json()
        assert [(r["value"], r.get("tag")) for r in doc["data"]] == [
            ("cat has:images", "cats"),
            ("dog", None),
        ]
        assert all(r["id"].isdigit() and len(r["id"]) <= 19 for r in doc["data"])
        assert doc["meta"]["summary"] == {"created": 2, "not_created": 0, "valid": 2, "invalid": 0}
        assert doc["meta"]["sent"].endswith("Z")
        assert "errors" not in doc
        cat_id = doc["data"][0]["id"]
        assert server.rules[cat_id] == {"id": cat_id, "value": "cat has:images", "tag": "cats"}

        response = rules_call(
            server,
            {
                "add": [
                    {"value": "cat has:images"},
                    {"value": ""},
                    {"value": "x" * 513},
                    {"value": "x" * 512},
                ]
            },
        )
        doc = response.json()
        assert response.status_code == 201
        assert doc["meta"]["summary"] == {"created": 1, "not_created": 3, "valid": 1, "invalid": 3}
        duplicate, empty, too_long = doc["errors"]
        assert duplicate == {
            "value": "cat has:images",
            "id": cat_id,
            "title": "DuplicateRule",
            "type": PROBLEMS + "duplicate-rules",
        }
        for error in (empty, too_long):
            assert error["title"] == "UnprocessableEntity"
            assert error["type"] == PROBLEMS + "invalid-rules"
            assert error["details"]
        assert len(server.rules) == 3

        before = server.rules
        dry = rules_call(server, {"add": [{"value": "new one"}, {"value": "dog"}]}, dry_run="true")
        assert dry.status_code == 201
        assert dry.json()["meta"]["summary"]["created"] == 1
        assert dry.json()["errors"][0]["title"] == "DuplicateRule"
        assert server.rules == before


def test_rules_get_and_delete() -> None:
    initial = [{"value": "a"}, {"value": "b", "tag": "bee"}, {"value": "c"}]
    with FakeStreamServer(rules=initial) as server:
        a_id, b_id, c_id = server.rules
        doc = rules_call(server).json()
        assert [r["value"] for r in doc["data"]] == ["a", "b", "c"]
        assert doc["meta"]["result_count"] == 3
        doc = rules_call(server, ids=f"{b_id},{c_id}").json()
        assert [r["value"] for r in doc["data"]] == ["b", "c"]

        assert rules_call(server, {"delete": {"ids": [a_id]}}, dry_run="true").status_code == 200
        assert len(server.rules) == 3
        response = rules_call(server, {"delete": {"ids": [a_id, "999"]}})
        assert response.status_code == 200
        doc = response.json()
        assert doc["meta"]["summary"] == {"deleted": 1, "not_deleted": 1}
        assert doc["errors"][0]["title"] == "Invalid Request"
        doc = rules_call(server, {"delete": {"values": ["b"]}}).json()
        assert doc["meta"]["summary"] == {"deleted": 1, "not_deleted": 0}
        assert list(server.rules) == [c_id]

        assert requests.post(
            server.url + "/2/tweets/search/stream/rules",
            params={"delete_all": "true"},
            timeout=2,
        ).json()["meta"]["summary"] == {"deleted": 1, "not_deleted": 0}
        empty = rules_call(server).json()
        assert empty["meta"]["result_count"] == 0
        assert "data" not in empty

        for bad in (b"{not json", b'{"add":[], "delete":{}}', b'{"delete":{"ids":[]}}', b"[]"):
            response = requests.post(
                server.url + "/2/tweets/search/stream/rules", data=bad, timeout=2
            )
            assert response.status_code == 400
            assert response.json()["type"] == PROBLEMS + "invalid-request"


def test_require_rules_answers_409_until_a_rule_exists() -> None:
    filtered = "/2/tweets/search/stream"
    with FakeStreamServer(
        messages=MSGS, require_rules=True, default=Attempt(messages=1, ending="close")
    ) as server:
        refused = requests.get(server.url + filtered, timeout=2)
        assert refused.status_code == 409
        assert refused.json()["connection_issue"] == "RuleConfigurationIssue"
        assert refused.json()["title"] == "ConnectionException"
        assert requests.get(server.url + PATH, timeout=2).status_code == 200  # only filtered
        server.script(Attempt(status=503))
        assert requests.get(server.url + filtered, timeout=2).status_code == 503  # scripted wins
        rules_call(server, {"add": [{"value": "cats"}]})
        assert requests.get(server.url + filtered, timeout=2).status_code == 200


# --------------------------------------------------------------------------- stop()


def test_stop_joins_every_thread_even_with_clients_connected(raw: Any) -> None:
    server = FakeStreamServer(messages=MSGS, keepalive_interval=0.05)
    server.start()
    try:
        server.script(Attempt(messages=1, ending="stall"))
        stalled = raw(server).request()
        stalled.head()
        server.script(Attempt(ending="hold"))
        held = raw(server).request()
        held.head()
        idle = raw(server).request(path="/2/tweets/search/stream/rules")
        idle.head()
        half = raw(server)
        half.sock.sendall(b"GET /2/tweets/sample/stream HTTP/1.1\r\nHost: x")
        server.script(Attempt(delay=30))
        delayed = raw(server).request()
        server.wait_for_requests(3)
        assert wait_until(lambda: len(server_threads()) == 6)  # acceptor + 5 connections

        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        assert server_threads() == []
    finally:
        server.stop()
    for client in (stalled, held):
        assert client.chunks_to_end()[1] == "eof"
    for client in (half, delayed):
        with pytest.raises((EOFError, ConnectionResetError)):
            client.head()
    server.stop()  # idempotent
    with pytest.raises(RuntimeError):
        server.start()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    assert all(r.ended_at is not None for r in server.requests)


def test_concurrent_connections_share_the_cursor() -> None:
    with FakeStreamServer(messages=generate_v2_messages(seed=4)) as server:
        server.script(*[Attempt(messages=5, ending="close")] * 4)
        results: list[list[str]] = []

        def consume() -> None:
            with requests.get(server.url + PATH, stream=True, timeout=2) as response:
                results.append([orjson.loads(x)["data"]["id"] for x in response.iter_lines() if x])

        threads = [threading.Thread(target=consume) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ids = [i for chunk in results for i in chunk]
        assert len(ids) == len(set(ids)) == 20
        expected = {m["data"]["id"] for m in itertools.islice(generate_v2_messages(seed=4), 20)}
        assert set(ids) == expected


# --------------------------------------------------------------------------- generator


def test_generator_is_deterministic_and_realistic() -> None:
    first = list(itertools.islice(generate_v2_messages(seed=11, matching_rules=True), 2000))
    again = list(itertools.islice(generate_v2_messages(seed=11, matching_rules=True), 2000))
    other = list(itertools.islice(generate_v2_messages(seed=12), 50))
    assert first == again
    assert [m["data"]["id"] for m in first[:50]] != [m["data"]["id"] for m in other]

    ids = [int(m["data"]["id"]) for m in first]
    assert ids == sorted(set(ids))  # strictly increasing
    langs = set()
    for message in first:
        orjson.dumps(message)
        data = message["data"]
        assert data["id"].isdigit()
        assert len(data["id"]) == 19
        assert data["edit_history_tweet_ids"] == [data["id"]]
        assert data["created_at"].endswith(".000Z")
        assert data["created_at"].startswith("2024-01-10T")
        langs.add(data["lang"])
        users = {u["id"]: u for u in message["includes"]["users"]}
        assert data["author_id"] in users
        assert all(set(u) >= {"id", "name", "username"} for u in users.values())
        text = data["text"]
        for tag in data.get("entities", {}).get("hashtags", []):
            assert text[tag["start"] : tag["end"]] == "#" + tag["tag"]
        for mention in data.get("entities", {}).get("mentions", []):
            assert text[mention["start"] : mention["end"]] == "@" + mention["username"]
        for url in data.get("entities", {}).get("urls", []):
            assert text[url["start"] : url["end"]] == url["url"]
        for ref in data.get("referenced_tweets", []):
            assert ref["type"] in ("retweeted", "replied_to", "quoted")
        assert all(
            isinstance(r["id"], str) and r["id"].isdigit() for r in message["matching_rules"]
        )
    assert len(langs) >= 8
    texts = " ".join(m["data"]["text"] for m in first)
    assert "#" in texts
    assert "😂" in texts
    assert "https://t.co/" in texts
    assert "RT @" in texts

    bare = next(generate_v2_messages(expansions=False))
    assert set(bare) == {"data"}
