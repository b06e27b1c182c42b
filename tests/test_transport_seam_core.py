"""The transport seam (issue 12), its core: a Connection driven through ``transport=``.

The core tests use a transport written here against the
:class:`~rxtweet.transport_base.Transport` protocol alone (one method), so they test the seam
itself: whatever ``lines()`` emits, at whatever virtual time, is what the connection parses,
reconnects and shares. Reconnect waits run on the ``TestScheduler``: no real time passes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from reactivex import Observable, abc
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded
from support import wait_until

from rxtweet.basestream import BaseStream
from rxtweet.connection import Connection
from rxtweet.errors import StreamConnectionError, TwitterServerError
from rxtweet.events import Connected, Disconnected, Reconnecting, StreamEvent
from rxtweet.framing import DEFAULT_MAX_LINE
from rxtweet.http import StreamRequest
from rxtweet.parse import Parsed
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.transport import DEFAULT_CHUNK_SIZE, RequestsTransport, lines
from rxtweet.transport_base import ResponseHead, Transport, TransportOptions

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

REQUEST = StreamRequest("GET", "https://api.example/2/tweets/sample/stream")


@dataclass(frozen=True)
class _Head:
    status_code: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


class ScriptedTransport:
    """Attempt ``n`` plays script ``n`` as a cold observable of the test scheduler."""

    def __init__(self, scheduler: TestScheduler, *scripts: list[Recorded[bytes]]) -> None:
        self.scheduler = scheduler
        self.scripts = scripts
        self.attempts: list[float] = []  # virtual time of each subscription
        self.options: list[TransportOptions] = []

    def lines(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Callable[[ResponseHead], None] | None = None,
        on_line_dropped: Callable[[int], None] | None = None,
    ) -> Observable[bytes]:
        self.options.append(options)

        def subscribe(
            observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            index = len(self.attempts)
            self.attempts.append(self.scheduler.clock)
            script = self.scripts[min(index, len(self.scripts) - 1)]
            if on_response is not None and not (script and script[0].value.kind == "E"):
                on_response(_Head())

            def emit(line: bytes) -> None:
                if len(line) > options.max_line:
                    if on_line_dropped is not None:
                        on_line_dropped(len(line))
                    return
                observer.on_next(line)

            cold = self.scheduler.create_cold_observable(script)
            return cold.subscribe(emit, observer.on_error, observer.on_completed)

        return Observable(subscribe)


def _record(source: Observable[Any], scheduler: TestScheduler) -> list[tuple[float, Any]]:
    seen: list[tuple[float, Any]] = []
    source.subscribe(
        lambda item: seen.append((scheduler.clock, item)),
        lambda error: seen.append((scheduler.clock, error)),
        lambda: seen.append((scheduler.clock, "completed")),
    )
    return seen


def test_connection_emits_the_transports_lines_at_their_virtual_times() -> None:
    scheduler = TestScheduler()
    transport = ScriptedTransport(
        scheduler,
        [on_next(10, b'{"n": 1}'), on_next(30, b""), on_next(45, b'{"n": 2}'), on_completed(50)],
        [],  # the reconnect after the clean close: nothing more
    )
    seam: Transport = transport  # mypy checks that the class fits the protocol
    connection: Connection[dict[str, Any]] = Connection(
        REQUEST, lambda doc: doc, transport=seam, scheduler=scheduler
    )

    seen = _record(connection.items, scheduler)
    scheduler.advance_to(49)

    messages = [(t, item.value) for t, item in seen if type(item) is Parsed]
    assert messages == [(10.0, {"n": 1}), (45.0, {"n": 2})]
    assert type(seen[0][1]) is Connected and seen[0][0] == 0.0
    assert connection.stats.messages == 2 and connection.stats.keep_alives == 1
    assert transport.attempts == [0.0]


def test_a_reconnect_after_an_error_waits_virtual_seconds() -> None:
    scheduler = TestScheduler()
    transport = ScriptedTransport(
        scheduler,
        [on_next(1, b'{"n": 1}'), on_error(3, TwitterServerError(503, reason="Unavailable"))],
        [on_next(2, b'{"n": 2}')],
    )
    policy = ReconnectPolicy(http_wait_start=5.0)
    connection: Connection[dict[str, Any]] = Connection(
        REQUEST, lambda doc: doc, transport=transport, policy=policy, scheduler=scheduler
    )

    seen = _record(connection.items, scheduler)
    scheduler.advance_to(100)

    # Error at 3, the 503 wait of 5 s, the second attempt at 8, its line 2 s later.
    assert transport.attempts == [0.0, 8.0]
    messages = [(t, item.value) for t, item in seen if type(item) is Parsed]
    assert messages == [(1.0, {"n": 1}), (10.0, {"n": 2})]
    reconnects = [item for _, item in seen if type(item) is Reconnecting]
    assert [(r.attempt, r.delay) for r in reconnects] == [(1, 5.0)]


def test_the_transport_gets_the_options_with_the_overrides_applied() -> None:
    scheduler = TestScheduler()
    transport = ScriptedTransport(
        scheduler, [on_next(1, b'{"long": "' + b"x" * 64 + b'"}'), on_next(2, b"{}")]
    )
    base = TransportOptions(stall_timeout=21.0, connect_timeout=3.0)
    connection: Connection[dict[str, Any]] = Connection(
        REQUEST, lambda doc: doc, transport=transport, options=base, max_line=16
    )

    seen = _record(connection.items, scheduler)
    scheduler.advance_to(5)

    assert transport.options == [
        TransportOptions(stall_timeout=21.0, connect_timeout=3.0, max_line=16)
    ]
    assert connection.options.max_line == 16
    assert connection.stats.too_long == 1  # reported by the transport through the seam
    assert [item.value for _, item in seen if type(item) is Parsed] == [{}]


def test_overrides_alone_build_the_options_and_default_transport_is_requests() -> None:
    connection: Connection[Any] = Connection(REQUEST, lambda doc: doc, stall_timeout=5)

    assert connection.options == TransportOptions(stall_timeout=5)
    assert isinstance(connection.transport, RequestsTransport)
    assert connection.options.max_line == DEFAULT_MAX_LINE
    assert connection.options.chunk_size == DEFAULT_CHUNK_SIZE


def test_a_disposal_ends_the_transport_subscription() -> None:
    scheduler = TestScheduler()
    transport = ScriptedTransport(scheduler, [on_next(10, b"{}"), on_next(20, b"{}")])
    connection: Connection[Any] = Connection(
        REQUEST, lambda doc: doc, transport=transport, scheduler=scheduler
    )
    seen: list[Any] = []
    subscription = connection.items.subscribe(seen.append)
    scheduler.advance_to(15)
    subscription.dispose()
    scheduler.advance_to(30)

    assert [item.value for item in seen if type(item) is Parsed] == [{}]
    assert not connection.connected


def test_basestream_builds_its_connections_through_its_transport() -> None:
    scheduler = TestScheduler()
    transport = ScriptedTransport(scheduler, [on_next(1, b'{"n": 1}'), on_completed(2)])
    stream = BaseStream(transport=transport, scheduler=scheduler, stall_timeout=21.0)
    connection = stream._connection(REQUEST, lambda doc: doc)

    seen = _record(connection.items, scheduler)
    scheduler.advance_to(1)

    assert stream.transport is transport
    assert connection.transport is transport
    assert transport.options == [TransportOptions(stall_timeout=21.0)]
    assert [item.value for _, item in seen if type(item) is Parsed] == [{"n": 1}]


def test_basestream_options_and_their_attribute_views() -> None:
    stream = BaseStream(chunk_size=512, max_line=1024, connect_timeout=2.0)
    assert stream.options == TransportOptions(chunk_size=512, max_line=1024, connect_timeout=2.0)
    assert stream.chunk_size == 512 and stream.stall_timeout == 90.0

    stream.stall_timeout = 21.0
    assert stream.options.stall_timeout == 21.0 and stream.options.max_line == 1024
    # The default transport follows the session the stream holds now.
    assert isinstance(stream.transport, RequestsTransport)
    assert stream.transport.session is stream.session
    assert stream.user_agent.startswith("rxtweet/")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stall_timeout": 0}, "stall_timeout and connect_timeout must be positive"),
        ({"connect_timeout": -1}, "stall_timeout and connect_timeout must be positive"),
        ({"header_timeout": 0}, "header_timeout must be positive"),
        ({"chunk_size": 0}, "chunk_size must be positive"),
        ({"max_line": 0}, "max_line must be positive"),
    ],
)
def test_options_are_checked_once_with_the_messages_of_lines(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        TransportOptions(**kwargs)
    with pytest.raises(ValueError, match=message):
        lines(REQUEST, **kwargs)
    with pytest.raises(ValueError, match=message):
        BaseStream(**kwargs)


def test_events_end_after_disconnected_over_a_transport_error() -> None:
    scheduler = TestScheduler()
    fatal = TwitterServerError(503, reason="Unavailable")
    transport = ScriptedTransport(scheduler, [on_error(1, fatal)])
    policy = ReconnectPolicy(max_retries=0)
    connection: Connection[Any] = Connection(
        REQUEST, lambda doc: doc, transport=transport, policy=policy, scheduler=scheduler
    )
    events: list[StreamEvent] = []
    errors: list[Exception] = []
    connection.items.subscribe(
        lambda item: events.append(item) if type(item) is not Parsed else None, errors.append
    )
    scheduler.advance_to(10)

    assert type(events[-1]) is Disconnected
    assert len(errors) == 1 and errors[0].__cause__ is fatal


def test_errors_of_the_real_transport_carry_the_request() -> None:
    # A port nobody listens on: refused at once, no server needed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = StreamRequest("GET", f"http://127.0.0.1:{port}/2/tweets/sample/stream")
    failures: list[Exception] = []
    lines(request, connect_timeout=1.0, stall_timeout=1.0).subscribe(on_error=failures.append)
    assert wait_until(lambda: failures, timeout=2.0)

    assert failures and isinstance(failures[0], StreamConnectionError)
    assert failures[0].request is request
    assert failures[0].cause is failures[0].__cause__ is not None
