"""The transport seam: what :class:`~rxtweet.connection.Connection` needs from the network.

A transport turns one :class:`~rxtweet.http.StreamRequest` into a cold
``Observable[bytes]`` of the lines of the response body, one HTTP request per subscription
(keep-alives as ``b""``), as :func:`rxtweet.transport.lines` does. Anything with that
one method fits :class:`Transport`: the default
:class:`~rxtweet.transport.RequestsTransport`, :class:`rxtweet.testing.MockTransport`
(lines from a scheduler-driven observable), and later an httpx or aiohttp one.

The contract of ``lines`` (the :class:`~rxtweet.connection.Connection` relies on it):

* it emits each complete line without its line end, ``b""`` for a keep-alive;
* it completes when the server ends the response cleanly;
* it errors with an :class:`~rxtweet.errors.HTTPException` for a status other than 200 and
  with a :class:`~rxtweet.errors.StreamConnectionError` (:class:`~rxtweet.errors.StallError`
  for a stall) when the network fails: those two families are what the reconnect policy
  retries;
* it calls ``on_response`` once with the response head, before the first line, when the
  status is 200 (the "connected" event), and ``on_line_dropped`` with the size of each line
  dropped for exceeding ``options.max_line``;
* disposing the subscription ends the connection without any further notification.

A transport may also have ``batches`` (:class:`BatchTransport`): the same lines, a list per
read, so that the connection pays for one call per read instead of one per line (on X's
small default payload a 127 KiB read holds ~500 lines). Its contract is the one above, with
one addition: a disposal that happens while the consumer is inside ``on_next(batch)`` is
honoured by the consumer, which stops at the next line. The connection uses ``batches``
when a transport has it and ``lines`` otherwise; both must give the same lines.

:class:`TransportOptions` carries the knobs every transport understands; it is validated
once, when built.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, TypedDict

from .framing import DEFAULT_MAX_LINE

if TYPE_CHECKING:
    from reactivex import Observable

    from .http import StreamRequest

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BatchTransport",
    "ResponseHead",
    "Transport",
    "TransportOptions",
    "TransportOptionsKw",
    "Turns",
]

log = logging.getLogger(__name__)

#: Bytes asked of the socket per read. A read returns as soon as *any* data is there, so
#: this bounds a burst's read size, not the latency. Each read costs the same fixed work
#: (system calls, the reconnect operator, the parser's loop) whatever it holds, so larger
#: is better, up to 128 KiB: a read's buffer is allocated per read, and glibc maps an
#: allocation of 128 KiB or more with mmap (mmap, mremap and munmap a read, three system
#: calls and fresh pages, measured at 256 KiB). 127 KiB reads ~31 of X's 4 KB messages at
#: once, where 64 KiB read 16: 2% fewer instructions per message end to end, half the
#: system calls.
DEFAULT_CHUNK_SIZE: Final = 127 * 1024

#: The largest ``chunk_size``: a read's buffer is allocated up front, so a huge value costs
#: memory (or overflows) at connect time, and reading more than a whole line's bound at once
#: buys nothing.
_MAX_CHUNK_SIZE: Final = DEFAULT_MAX_LINE


class Turns(Protocol):
    """What :attr:`TransportOptions.turns` needs: a (reentrant) lock's two methods."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


class ResponseHead(Protocol):
    """What ``on_response`` is told about a 200 answer (a ``requests.Response`` fits)."""

    @property
    def status_code(self) -> int:
        """The HTTP status (200 when ``on_response`` is called)."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers (case-insensitive for a ``requests.Response``)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportOptions:
    """How a transport reads one stream; validated when built (``ValueError``).

    >>> TransportOptions(stall_timeout=21.0).chunk_size
    130048
    >>> TransportOptions(chunk_size=0)
    Traceback (most recent call last):
        ...
    ValueError: chunk_size must be positive

    Attributes:
        stall_timeout: seconds without a complete line (keep-alives count) before the
            connection is given up as stalled (X sends a keep-alive every 20 s on v2 and
            every 30 s on v1.1).
        connect_timeout: seconds allowed for the TCP (and TLS) connect.
        header_timeout: seconds allowed from the start of the request until the response
            headers are in; ``None``: ``connect_timeout + stall_timeout``.
        chunk_size: the most bytes taken from the socket in one read.
        max_line: a longer line is dropped (logged and counted), never buffered further.
        turns: a lock shared by connections that take turns handing their lines downstream
            (:class:`~rxtweet.partitions.MergedConnection` gives one to all its
            partitions): a reader holds it while it passes one read's lines to the
            subscriber, and waits for it without asking for the GIL. Without it, 20
            partition threads with data waiting all compete for the GIL, and the switching
            costs more CPU than the lines (issue 13's benchmark: 0.62x of one connection). A
            transport may ignore it: the merge serializes its partitions anyway.
    """

    stall_timeout: float = 90.0
    connect_timeout: float = 10.0
    header_timeout: float | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    max_line: int = DEFAULT_MAX_LINE
    turns: Turns | None = None

    def __post_init__(self) -> None:
        # Checked here, not at connect time: a NaN or infinite timeout used to pass and then
        # fail every connection (or crash a deadline thread), a bool passed as a number.
        for name in ("stall_timeout", "connect_timeout", "header_timeout"):
            value = getattr(self, name)
            if value is None and name == "header_timeout":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
            if not math.isfinite(value) or value <= 0:
                if name == "header_timeout":
                    raise ValueError("header_timeout must be positive and finite")
                raise ValueError("stall_timeout and connect_timeout must be positive and finite")
        for name in ("chunk_size", "max_line"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be positive")
        if self.chunk_size > _MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be at most {_MAX_CHUNK_SIZE} bytes")
        if self.turns is not None and not callable(getattr(self.turns, "acquire", None)):
            raise TypeError("turns must be a lock (threading.RLock()), or None")

    @property
    def headers_deadline(self) -> float:
        """``header_timeout``, or ``connect_timeout + stall_timeout`` when it is ``None``."""
        if self.header_timeout is not None:
            return self.header_timeout
        return self.connect_timeout + self.stall_timeout


class TransportOptionsKw(TypedDict, total=False):
    """The fields of :class:`TransportOptions` as keyword arguments (for ``**options``)."""

    stall_timeout: float
    connect_timeout: float
    header_timeout: float | None
    chunk_size: int
    max_line: int


class Transport(Protocol):
    """Performs stream requests: one method, ``lines`` (see the module docstring)."""

    def lines(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Callable[[ResponseHead], None] | None = None,
        on_line_dropped: Callable[[int], None] | None = None,
    ) -> Observable[bytes]:
        """A cold Observable of the lines of ``request``'s response, one connection per
        subscription, read as ``options`` say."""
        ...


class BatchTransport(Transport, Protocol):
    """A :class:`Transport` that can also hand over a read's lines at once (see the module
    docstring)."""

    def batches(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Callable[[ResponseHead], None] | None = None,
        on_line_dropped: Callable[[int], None] | None = None,
    ) -> Observable[list[bytes]]:
        """The lines of :meth:`~Transport.lines`, one non-empty list per read, in order."""
        ...
