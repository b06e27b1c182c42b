"""The transport: one HTTP connection as a cold Observable of lines, against real sockets."""

from __future__ import annotations

import logging
import socket
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler import ThreadPoolScheduler
from support import reader_threads, wait_until

from rxtweet import (
    BadRequest,
    Forbidden,
    HTTPException,
    NotFound,
    StallError,
    StreamConnectionError,
    StreamRequest,
    TooManyRequests,
    TwitterServerError,
    Unauthorized,
)
from rxtweet import transport as transport_module
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.transport import lines

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
TOKEN = "AAAA-very-secret-bearer-token-0123456789"
FIXTURE = [
    line for line in (DATA / "twarc-csv_streaming_output.jsonl").read_bytes().split(b"\n") if line
]


@pytest.fixture(params=["socket-file", "urllib3"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test over both body readers: the direct socket-file one and urllib3's read1."""
    if request.param == "urllib3":
        monkeypatch.setattr(transport_module, "_socket_file", lambda response: None)
    return str(request.param)


@pytest.fixture
def fake_stream_server_options() -> dict[str, Any]:
    """The options of ``server`` (tests/conftest.py)."""
    return {"messages": FIXTURE, "bearer_token": TOKEN, "keepalive_interval": 0.05, "fields": "all"}


def sample(server: FakeStreamServer, **kwargs: Any) -> Any:
    request = StreamRequest(
        "GET",
        f"{server.url}/2/tweets/sample/stream",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    kwargs.setdefault("stall_timeout", 5.0)
    return lines(request, **kwargs)


def collect(observable: Any, timeout: float = 10.0) -> tuple[list[bytes], BaseException | None]:
    items: list[bytes] = []
    errors: list[BaseException] = []
    done = threading.Event()
    observable.subscribe(
        on_next=items.append,
        on_error=lambda e: (errors.append(e), done.set()),
        on_completed=done.set,
    )
    assert done.wait(timeout), "the stream neither completed nor failed"
    return items, (errors[0] if errors else None)


# --- lines -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunking", ["line", "random", "byte"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_every_line_arrives_whole(
    server: FakeStreamServer, read_path: str, chunking: str, gzipped: bool
) -> None:
    server.script(Attempt(chunking=chunking, gzip=gzipped, ending="close"))  # type: ignore[arg-type]
    items, error = collect(sample(server))
    assert error is None
    assert [i for i in items if i] == FIXTURE
    assert [orjson.loads(i)["data"]["id"] for i in items if i and b'"data"' in i[:10]]


def test_keep_alives_are_empty_lines(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=2, ending="hold"))
    got = sample(server).pipe(ops.take(5), ops.to_list()).run()
    assert got[:2] == FIXTURE[:2]
    assert got[2:] == [b"", b"", b""]


def test_line_of_several_megabytes(read_path: str) -> None:
    big = orjson.dumps({"data": {"id": "1", "text": "é" * 2_000_000}})
    with FakeStreamServer(messages=[big, b'{"data":{"id":"2"}}']) as srv:
        srv.script(Attempt(chunking="random", ending="close"))
        items, error = collect(sample(srv))
    assert error is None
    assert items == [big, b'{"data":{"id":"2"}}']


def test_cold_each_subscription_is_a_connection(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=1, ending="close"), Attempt(messages=1, ending="close"))
    observable = sample(server)
    first = observable.pipe(ops.to_list()).run()
    second = observable.pipe(ops.to_list()).run()
    assert first == FIXTURE[:1]
    assert second == FIXTURE[1:2]
    assert len(server.requests) == 2


def test_subscribe_returns_at_once_and_run_blocks(server: FakeStreamServer) -> None:
    server.script(Attempt(delay=0.5, messages=1, ending="close"))
    started = time.monotonic()
    done = threading.Event()
    sample(server).subscribe(on_completed=done.set, on_error=lambda e: done.set())
    assert time.monotonic() - started < 0.2
    assert done.wait(5)
    server.script(Attempt(delay=0.3, messages=1, ending="close"))
    started = time.monotonic()
    assert sample(server).run() == FIXTURE[1]
    assert time.monotonic() - started >= 0.3


def test_request_carries_method_params_headers_and_body(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=0, ending="close"))
    request = StreamRequest(
        "POST",
        f"{server.url}/1.1/statuses/filter.json",
        params={"delimited": "length"},
        data={"track": "cats,dogs"},
        headers={"X-Test": "yes"},
    )
    assert lines(request, stall_timeout=5).pipe(ops.to_list()).run() == []
    recorded = server.requests[-1]
    assert recorded.method == "POST"
    assert recorded.query == {"delimited": ["length"]}
    assert recorded.body == b"track=cats%2Cdogs"
    assert recorded.headers["x-test"] == "yes"
    assert recorded.headers["user-agent"].startswith("rxtweet/")
    assert "gzip" in recorded.headers["accept-encoding"]


# --- endings and failures --------------------------------------------------------------------


def test_clean_close_completes(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=3, ending="close"))
    items, error = collect(sample(server))
    assert (items, error) == (FIXTURE[:3], None)


def test_cut_mid_message_errors_and_drops_the_partial_line(
    server: FakeStreamServer, read_path: str
) -> None:
    server.script(Attempt(messages=3, ending="cut"))
    items, error = collect(sample(server))
    assert items == FIXTURE[:3]
    assert isinstance(error, StreamConnectionError)
    assert not isinstance(error, StallError)


def test_cut_with_gzip(server: FakeStreamServer, read_path: str) -> None:
    server.script(Attempt(messages=2, ending="cut", gzip=True, chunking="random"))
    items, error = collect(sample(server))
    assert items == FIXTURE[:2]
    assert isinstance(error, StreamConnectionError)


def test_stall_is_detected(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=2, ending="stall"))
    started = time.monotonic()
    items, error = collect(sample(server, stall_timeout=0.4))
    elapsed = time.monotonic() - started
    assert items == FIXTURE[:2]
    assert isinstance(error, StallError)
    assert error.stall_timeout == 0.4
    assert 0.35 <= elapsed < 3


def test_headers_that_never_come_are_a_stall(server: FakeStreamServer) -> None:
    server.script(Attempt(delay=5, messages=1))
    items, error = collect(sample(server, stall_timeout=0.3))
    assert items == []
    assert isinstance(error, StallError)


def test_keep_alives_prevent_a_stall(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=1, ending="hold", keepalive_interval=0.05))
    # The stall timeout is what keep-alives must beat, in the body; the head gets its own
    # (0.3 s for it too failed once on a loaded 2-core VM, before any keep-alive was due).
    stream = sample(server, stall_timeout=0.3, header_timeout=5.0)
    got = stream.pipe(ops.take(12), ops.to_list()).run()
    assert got[0] == FIXTURE[0]
    assert got[1:] == [b""] * 11


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _, error = collect(lines(StreamRequest("GET", f"http://127.0.0.1:{port}/2/x"), stall_timeout=1))
    assert isinstance(error, StreamConnectionError)
    assert "refused" in str(error).lower()


STATUSES = [
    (400, BadRequest),
    (401, Unauthorized),
    (403, Forbidden),
    (404, NotFound),
    (409, HTTPException),
    (418, HTTPException),
    (420, TooManyRequests),
    (429, TooManyRequests),
    (500, TwitterServerError),
    (503, TwitterServerError),
]


@pytest.mark.parametrize(("status", "kind"), STATUSES)
def test_http_statuses_become_typed_errors(
    server: FakeStreamServer, status: int, kind: type[HTTPException]
) -> None:
    server.script(Attempt(status=status))
    items, error = collect(sample(server))
    assert items == []
    assert type(error) is kind
    assert isinstance(error, HTTPException)
    assert error.status_code == status
    assert error.headers  # the response's headers travel with the error
    assert str(status) in str(error)


def test_error_body_is_parsed(server: FakeStreamServer) -> None:
    server.script(Attempt(status=429))
    _, error = collect(sample(server))
    assert isinstance(error, TooManyRequests)
    assert error.connection_issue == "TooManyConnections"
    assert error.title == "ConnectionException"
    assert error.detail and "maximum allowed connection limit" in error.detail
    assert error.rate_limit is not None and error.rate_limit.limit == 50
    assert "TooManyConnections" in str(error)


def test_409_rule_configuration_issue(server: FakeStreamServer) -> None:
    server.script(Attempt(status=409))
    _, error = collect(sample(server))
    assert isinstance(error, HTTPException)
    assert error.connection_issue == "RuleConfigurationIssue"


def test_custom_body_and_headers(server: FakeStreamServer) -> None:
    reset = int(time.time()) + 900
    server.script(
        Attempt(
            status=429,
            body={"title": "Too Many Requests", "detail": "Too Many Requests"},
            headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)},
        )
    )
    _, error = collect(sample(server))
    assert isinstance(error, TooManyRequests)
    assert error.rate_limit is not None
    assert (error.rate_limit.remaining, error.rate_limit.reset) == (0, reset)


def test_unauthorized_without_the_token(server: FakeStreamServer) -> None:
    request = StreamRequest("GET", f"{server.url}/2/tweets/sample/stream")
    _, error = collect(lines(request, stall_timeout=5))
    assert isinstance(error, Unauthorized)


# --- a real recorded response: gzip over 215 chunks, cut by the recorder -------------------


def test_real_recorded_gzip_chunked_response_replayed_byte_exact(read_path: str) -> None:
    """sfm-utils 2015 capture (MIT; tests/data/SOURCES.md): 111 statuses, then a cut."""
    recorded = (DATA / "sfm-utils_filter_track-obama_2015-12-02T2004Z.response.http").read_bytes()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for pos in range(0, len(recorded), 1500):  # several TCP segments
                conn.sendall(recorded[pos : pos + 1500])
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    items, error = collect(
        lines(
            StreamRequest("POST", f"http://127.0.0.1:{port}/1.1/statuses/filter.json"),
            stall_timeout=5,
        )
    )
    thread.join(5)
    assert isinstance(error, StreamConnectionError)
    statuses = [orjson.loads(i) for i in items if i]
    assert len(statuses) == 111
    assert all("id_str" in s for s in statuses)
    # The same bytes decoded independently (simple de-chunk + gunzip), minus the cut status.
    body = recorded.split(b"\r\n\r\n", 1)[1]
    decoded = zlib.decompressobj(wbits=31).decompress(_dechunk(body))
    expected = decoded.split(b"\r\n")[:-1]  # the last piece is the truncated status
    assert [i for i in items if i] == [e for e in expected if e]


def _dechunk(body: bytes) -> bytes:
    out, pos = [], 0
    while (nl := body.find(b"\r\n", pos)) >= 0:
        size, start = int(body[pos:nl], 16), nl + 2
        out.append(body[start : start + size])
        if size == 0 or start + size > len(body):
            break
        pos = start + size + 2
    return b"".join(out)


# --- disposal --------------------------------------------------------------------------------


def test_dispose_on_a_quiet_stream_closes_the_socket_fast(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=1, ending="stall"))
    got: list[bytes] = []
    first = threading.Event()
    subscription = sample(server, stall_timeout=30).subscribe(
        on_next=lambda line: (got.append(line), first.set())
    )
    assert first.wait(5)
    time.sleep(0.1)  # the reader is now blocked in recv on a silent socket
    disposed_at = time.monotonic()
    subscription.dispose()
    assert wait_until(lambda: not reader_threads(), timeout=0.5)
    assert time.monotonic() - disposed_at < 0.5
    assert wait_until(lambda: server.requests[-1].ended_at is not None, timeout=0.5)
    assert got == FIXTURE[:1]


def test_dispose_while_waiting_for_headers(server: FakeStreamServer) -> None:
    server.script(Attempt(delay=30, messages=1))
    subscription = sample(server, stall_timeout=30).subscribe()
    server.wait_for_requests(1)
    time.sleep(0.05)
    subscription.dispose()
    assert wait_until(lambda: not reader_threads(), timeout=0.5)


def test_nothing_is_emitted_after_dispose(server: FakeStreamServer) -> None:
    server.script(Attempt(ending="hold", rate=200))
    got: list[bytes] = []
    subscription = sample(server).subscribe(on_next=got.append)
    assert wait_until(lambda: len(got) >= 2)
    subscription.dispose()
    count = len(got)
    time.sleep(0.2)
    assert len(got) == count


def test_take_closes_the_connection(server: FakeStreamServer) -> None:
    server.script(Attempt(ending="hold"))
    assert sample(server).pipe(ops.take(3), ops.to_list()).run() == FIXTURE[:3]
    assert wait_until(lambda: server.requests[-1].ended_at is not None, timeout=1.0)
    assert wait_until(lambda: not reader_threads(), timeout=0.5)


# --- observers -------------------------------------------------------------------------------


def test_observer_is_never_entered_concurrently(server: FakeStreamServer) -> None:
    server.script(Attempt(chunking="random", ending="close"))
    active = 0
    worst = 0
    lock = threading.Lock()

    def on_next(_: bytes) -> None:
        nonlocal active, worst
        with lock:
            active += 1
            worst = max(worst, active)
        time.sleep(0.001)
        with lock:
            active -= 1

    items, error = collect(sample(server).pipe(ops.do_action(on_next)))
    assert error is None and len(items) == len(FIXTURE)
    assert worst == 1


def test_an_exception_in_user_code_comes_back_unchanged(server: FakeStreamServer) -> None:
    server.script(Attempt(ending="hold"))
    boom = RuntimeError("bug in user code")

    def explode(_: bytes) -> bytes:
        raise boom

    def fail_on_second(line: bytes, seen: list[bytes] = []) -> None:  # noqa: B006
        seen.append(line)
        if len(seen) == 2:
            raise boom

    errors: list[BaseException] = []
    done = threading.Event()
    sample(server).pipe(ops.do_action(fail_on_second)).subscribe(
        on_error=lambda e: (errors.append(e), done.set())
    )
    assert done.wait(5)
    assert errors == [boom]
    assert wait_until(lambda: server.requests[-1].ended_at is not None, timeout=1.0)
    del explode


def test_on_response_is_called_once_with_the_200(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=1, ending="close"))
    seen: list[int] = []
    sample(server, on_response=lambda r: seen.append(r.status_code)).run()
    assert seen == [200]


def test_on_response_raising_ends_the_stream_with_it(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=1, ending="hold"))
    oops = ValueError("hook failed")

    def hook(_: Any) -> None:
        raise oops

    _, error = collect(sample(server, on_response=hook))
    assert error is oops


def test_runs_on_a_given_scheduler(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=2, ending="close"))
    pool = ThreadPoolScheduler(1)
    names: list[str] = []
    got = (
        sample(server, scheduler=pool)
        .pipe(ops.do_action(lambda _: names.append(threading.current_thread().name)), ops.to_list())
        .run()
    )
    pool.executor.shutdown()
    assert got == FIXTURE[:2]
    assert names and not any(n.startswith("rxtweet-reader") for n in names)


def test_merge_of_two_streams_is_serialised(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=4, ending="close"), Attempt(messages=4, ending="close"))
    got = reactivex.merge(sample(server), sample(server)).pipe(ops.to_list()).run()
    assert sorted(got) == sorted(FIXTURE[:8])


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_stay_out_of_logs_reprs_and_errors(
    server: FakeStreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Attempt(status=401), Attempt(messages=1, ending="cut"))
    request = StreamRequest(
        "GET",
        f"{server.url}/2/tweets/sample/stream",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    _, unauthorized = collect(lines(request, stall_timeout=5))
    _, cut = collect(lines(request, stall_timeout=5))
    texts = [
        caplog.text,
        repr(request),
        str(unauthorized),
        repr(unauthorized),
        str(cut),
        repr(cut),
        repr(server.requests[-1]),
    ]
    assert isinstance(unauthorized, Unauthorized)
    assert isinstance(cut, StreamConnectionError)
    for text in texts:
        assert TOKEN not in text
    assert "<redacted>" in repr(request)


def test_dispose_is_prompt_with_a_plain_requests_session(server: FakeStreamServer) -> None:
    # A session without CancellableAdapter: the socket is taken from the response instead.
    import requests

    server.script(Attempt(messages=1, ending="stall"))
    got = threading.Event()
    with requests.Session() as session:
        subscription = sample(server, stall_timeout=30, session=session).subscribe(
            on_next=lambda _: got.set()
        )
        assert got.wait(5)
        time.sleep(0.1)
        subscription.dispose()
        assert wait_until(lambda: not reader_threads(), timeout=0.5)
