"""Regression tests from reviewer R-12's attack on the issue-12 layout: the transport seam,
``TransportOptions`` validation, ``MockTransport``'s head, and ``--log FILE`` on a full disk."""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reactivex import Observable

from rxtweet import StreamingClient
from rxtweet.http import StreamRequest
from rxtweet.testing import Attempt, FakeStreamServer, MockTransport, live_threads
from rxtweet.transport_base import ResponseHead, TransportOptions

TOKEN = "AAAAAAAAAAAAAAAAAAAAA-r12-layout-token"


class _RaisingTransport:
    """A transport with a bug: ``lines`` itself raises instead of returning an observable."""

    def __init__(self) -> None:
        self.calls = 0

    def lines(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Callable[[ResponseHead], None] | None = None,
        on_line_dropped: Callable[[int], None] | None = None,
    ) -> Observable[bytes]:
        self.calls += 1
        raise RuntimeError("transport bug")


def test_building_a_stream_does_not_call_the_transport() -> None:
    transport = _RaisingTransport()
    stream = StreamingClient(TOKEN, transport=transport).sample_stream()  # used to raise here
    assert transport.calls == 0
    events: list[str] = []
    errors: list[Exception] = []
    stream.items.subscribe(lambda item: events.append(type(item).__name__), errors.append)
    assert events == ["Errored", "Disconnected"]
    assert [str(e) for e in errors] == ["transport bug"]
    assert transport.calls == 1  # a plain error, not retried


def test_a_transport_raising_in_lines_reaches_on_exception() -> None:
    seen: list[BaseException] = []
    order: list[str] = []

    class Client(StreamingClient):
        def on_exception(self, exception: Exception) -> None:
            seen.append(exception)
            order.append("on_exception")

        def on_disconnect(self) -> None:
            order.append("on_disconnect")

    Client(TOKEN, transport=_RaisingTransport()).sample()  # used to end silently
    assert [str(e) for e in seen] == ["transport bug"]
    assert order == ["on_exception", "on_disconnect"]
    assert not live_threads()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"stall_timeout": math.nan}, ValueError),
        ({"connect_timeout": math.nan}, ValueError),
        ({"header_timeout": math.nan}, ValueError),
        ({"stall_timeout": math.inf}, ValueError),
        ({"connect_timeout": math.inf}, ValueError),
        ({"stall_timeout": True}, TypeError),
        ({"chunk_size": True}, TypeError),
        ({"max_line": True}, TypeError),
        ({"chunk_size": 1.5}, TypeError),
        ({"max_line": math.inf}, TypeError),
        ({"chunk_size": 10**30}, ValueError),
    ],
)
def test_transport_options_reject_what_would_fail_every_connection(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        TransportOptions(**options)
    with pytest.raises(error):  # the clients build theirs at once, not at connect time
        StreamingClient(TOKEN, **options)


def test_transport_options_still_take_ordinary_values() -> None:
    options = TransportOptions(stall_timeout=21, connect_timeout=0.5, header_timeout=None)
    assert options.headers_deadline == 21.5
    assert TransportOptions(chunk_size=1, max_line=10**12).max_line == 10**12


def test_mock_transport_refuses_a_head_that_is_not_200() -> None:
    # It used to call on_response with the 503 and then deliver the lines as data.
    with pytest.raises(ValueError, match="return an HTTPException"):
        MockTransport(lambda request: Observable(), status_code=503)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))


@pytest.mark.integration
def test_a_full_disk_under_the_log_file_is_told_once_and_never_crashes(tmp_path: Path) -> None:
    log_path = tmp_path / "collect.log"
    # No bytecode written: under the 200-byte limit a .pyc would be cut short and left in
    # place (importlib does not check a short write), breaking every later import of that
    # module (seen in a fresh clone, where this subprocess was the first to compile some).
    env = dict(os.environ, X_BEARER_TOKEN=TOKEN, PYTHONDONTWRITEBYTECODE="1")
    lines = [b'{"data":{"id":"%d","text":"hi"}}' % n for n in range(5)]
    with FakeStreamServer(messages=lines, fields="all", match_rules=False) as server:
        server.script(*[Attempt(ending="close")] * 3)
        argv = ["sample", "--base-url", server.url, "--max-retries", "2", "-o", "-"]
        done = subprocess.run(
            [sys.executable, "-m", "rxtweet", *argv, "--log", str(log_path)],
            preexec_fn=_limit_file_size,  # the log file may not grow past 200 bytes
            capture_output=True,
            env=env,
            timeout=30,
            check=False,
        )
    err = done.stderr.decode()
    assert done.returncode == 1, err  # the run's own outcome (retries exhausted)
    assert len(done.stdout.splitlines()) == 5
    assert "Traceback" not in err and "Logging error" not in err, err
    assert err.count("cannot write the log file") == 1, err
    assert "gave up after 2 reconnects" in err
    assert TOKEN not in err
    assert log_path.stat().st_size <= 200


def test_sample_stream_select_with_a_raising_pick_is_a_user_error_not_a_reconnect() -> None:
    # Held in R-12's attack; kept as a guard: the pick's error ends the stream at once.
    attempts: list[StreamRequest] = []

    def handler(request: StreamRequest) -> Observable[bytes]:
        import reactivex

        attempts.append(request)
        return reactivex.of(b'{"data":{"id":"1","text":"hi"}}')

    stream = StreamingClient(TOKEN, transport=MockTransport(handler)).sample_stream()

    def pick(message: Any) -> Any:
        raise ValueError("bug in pick")

    errors: list[Exception] = []
    ended = threading.Event()
    stream.select(pick).subscribe(
        on_error=lambda e: (errors.append(e), ended.set()), on_completed=ended.set
    )
    assert ended.wait(2)
    assert [str(e) for e in errors] == ["bug in pick"]
    assert len(attempts) == 1


def test_server_text_in_an_exception_is_escaped_and_bounded() -> None:
    """Before: a reason phrase or problem detail reached str(exc), and so every log line that
    quotes it, with its escape sequences and at any length (the CLI escaped; logs did not)."""
    from rxtweet.errors import SERVER_TEXT_MAX, TwitterServerError

    exc = TwitterServerError(
        503,
        reason="Busy \x1b]0;pwned\x07",
        body={"title": "t\r\nforged: log line", "detail": "d" * 10**6},
    )
    for text in (str(exc), exc.problem):
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text), text[:80]
        assert len(text) < SERVER_TEXT_MAX + 100
    assert "\\x1b]0;pwned\\x07" in str(exc) and "\\x0d\\x0aforged" in str(exc)
