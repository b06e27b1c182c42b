"""A :class:`~rxtweet.transport_base.Transport` that answers from a function, without a socket.

:class:`MockTransport` is to rxtweet what httpx's ``MockTransport`` is to httpx: the client
under test runs its whole pipeline (reconnects, parsing, sharing, dispatch) while the
"network" is an Observable your test builds, typically a cold observable of a
``reactivex.testing.TestScheduler``, so that tweets arrive at virtual times and reconnect
waits take virtual seconds.

Example::

    from reactivex.testing import ReactiveTest, TestScheduler
    from rxtweet import StreamingClient, TooManyRequests
    from rxtweet.testing import MockTransport

    scheduler = TestScheduler()
    lines = scheduler.create_cold_observable(
        ReactiveTest.on_next(10, b'{"data": {"id": "1", "text": "hi"}}'),
        ReactiveTest.on_completed(20),
    )
    transport = MockTransport(lambda request: lines)
    client = StreamingClient("t0ken", transport=transport, scheduler=scheduler)
    # ... client.sample_stream(), then scheduler.advance_to(...)

The handler may return an :class:`~rxtweet.errors.HTTPException` instead (e.g.
``TooManyRequests(429)``): that attempt then fails with it, as a non-200 answer does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from requests.structures import CaseInsensitiveDict

from ..errors import HTTPException
from ..http import StreamRequest
from ..transport_base import ResponseHead, TransportOptions

__all__ = ["MockTransport"]

logger = logging.getLogger(__name__)

#: What a :class:`MockTransport` handler returns for one request.
Answer: TypeAlias = Observable[bytes] | HTTPException


@dataclass(frozen=True, slots=True)
class _Head:
    """The :class:`~rxtweet.transport_base.ResponseHead` handed to ``on_response``."""

    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)


class MockTransport:
    """A transport whose every request is answered by ``handler(request)``.

    Args:
        handler: called once per subscription (per connection attempt) with the
            :class:`~rxtweet.http.StreamRequest`; returns the lines of the response body (an
            ``Observable[bytes]``, without line ends, ``b""`` for a keep-alive) or an
            :class:`~rxtweet.errors.HTTPException` the attempt fails with.
        status_code, headers: the response head ``on_response`` gets (headers are looked up
            case-insensitively, as on a ``requests.Response``); ``status_code`` must be 200
            (``ValueError`` otherwise): a failing answer is an HTTPException from the handler.

    Per attempt, as the real transport: ``on_response`` is called before the lines are
    subscribed (never for an :class:`~rxtweet.errors.HTTPException` answer); a line longer
    than ``options.max_line`` is dropped and reported to ``on_line_dropped``; the other
    options (timeouts, chunk size) have no meaning without a socket and are ignored.
    :attr:`requests` lists every request received, in order.
    """

    def __init__(
        self,
        handler: Callable[[StreamRequest], Answer],
        *,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if status_code != 200:
            # The transport contract: on_response only for a 200, any other status is an
            # error. A head of 503 followed by the lines as data would contradict it.
            raise ValueError(
                "status_code must be 200; to fail an attempt, return an HTTPException "
                "(e.g. TwitterServerError(503)) from the handler"
            )
        self._handler = handler
        self._head = _Head(status_code, CaseInsensitiveDict(dict(headers or {})))
        self.requests: list[StreamRequest] = []

    def __repr__(self) -> str:
        return f"<MockTransport {len(self.requests)} request(s)>"

    def lines(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Callable[[ResponseHead], None] | None = None,
        on_line_dropped: Callable[[int], None] | None = None,
    ) -> Observable[bytes]:
        """A cold Observable: each subscription asks the handler again (one attempt)."""
        max_line = options.max_line

        def subscribe(
            observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self.requests.append(request)
            answer = self._handler(request)
            if isinstance(answer, HTTPException):
                observer.on_error(answer)
                return Disposable()
            if on_response is not None:
                on_response(self._head)

            def on_next(line: bytes) -> None:
                if len(line) > max_line:
                    logger.debug("mock transport: dropped a %d-byte line", len(line))
                    if on_line_dropped is not None:
                        on_line_dropped(len(line))
                    return
                observer.on_next(line)

            return answer.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return reactivex.create(subscribe)
