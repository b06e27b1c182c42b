"""Where an HTTP connection becomes a cold Observable of lines.

:func:`lines` is the only thing the rest of rxtweet needs from the network::

    lines(StreamRequest("GET", url, headers=...))  ->  Observable[bytes]

:class:`RequestsTransport` is the same function behind the transport seam
(:class:`rxtweet.transport_base.Transport`): the default transport of
:class:`~rxtweet.connection.Connection` and of the clients.

Each subscription performs one HTTP request and emits every complete line of the body as
``bytes`` (without its ``\\r\\n``); a keep-alive is emitted as ``b""``. The observable
completes when the server ends the response cleanly and errors otherwise:

* a status other than 200 -> an :class:`~rxtweet.errors.HTTPException` subclass;
* a network failure (refused, reset, TLS, a body cut before its end) ->
  :class:`~rxtweet.errors.StreamConnectionError`;
* no complete line (a message or a keep-alive) for ``stall_timeout`` seconds, or no
  complete response headers within ``header_timeout`` seconds ->
  :class:`~rxtweet.errors.StallError` (both are deadlines: bytes that trickle in do not
  extend them);
* a request that cannot be sent as given -> :class:`~rxtweet.errors.InvalidRequest`.

Reconnecting is not done here: it is the ``reconnecting`` operator's job, applied over this
cold observable, so each retry is simply a new subscription.

Threads. The read loop blocks, so each subscription runs it on a dedicated thread (or on a
scheduler the caller passes); ``subscribe()`` returns at once and ``.run()`` blocks. Only that
thread calls the observer, so ``on_next`` is never entered concurrently. Disposing shuts the
socket down (``shutdown(SHUT_RDWR)``, which wakes a blocked ``recv`` at once, unlike
``Response.close()`` from another thread, which hangs: urllib3 issue 2868); the reader then
closes the response itself and exits without emitting anything more.

Speed. For the common case (HTTP/1.1 chunked, identity or gzip) the body is read straight
from the connection's buffered socket file with ``read1`` and, once its buffer is empty, from
the socket itself: one call returns whatever has arrived, up to ``chunk_size`` bytes, so a
line is emitted as soon as its last byte is in, and a burst is taken in large reads. The
socket's timeout (the stall deadline) is set again only when it moves, since each setting is
a system call. :mod:`rxtweet.framing` then undoes the chunking and splits lines. Other
responses go through urllib3's public ``read1``.

Memory. A chunked gzip body is inflated in steps of at most :data:`INFLATE_STEP` bytes (a few
KiB of compressed keep-alives would otherwise become hundreds of MiB at once), member after
member (gzip allows several in a row); urllib3 bounds the other paths. A redirect's body is
never read: its connection is closed instead.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import itertools
import logging
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from platform import python_version
from time import monotonic
from typing import Any, Final, cast
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from ._version import __version__
from .credentials import scrub_secrets, secrets_of
from .errors import (
    ChunkedEncodingError,
    HTTPException,
    InvalidRequest,
    StallError,
    StreamConnectionError,
    mark_downstream,
    network_reason,
    raised_downstream,
)
from .framing import DEFAULT_MAX_LINE, ChunkedDecoder, LineSplitter
from .http import SECRET_HEADERS, StreamRequest, redact_url
from .transport_base import DEFAULT_CHUNK_SIZE, ResponseHead, TransportOptions, Turns

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "INFLATE_STEP",
    "USER_AGENT",
    "CancellableAdapter",
    "InvalidRequest",
    "RequestsTransport",
    "lines",
    "new_session",
]

log = logging.getLogger(__name__)

#: What every request says it is (the clients send it too): ``rxtweet/0.1.0 Python/3.11.7
#: Requests/2.32.3``.
USER_AGENT: Final = (
    f"rxtweet/{__version__} Python/{python_version()} Requests/{requests.__version__}"
)

_reader_ids = itertools.count(1)

#: How often a reader waiting for its turn (TransportOptions.turns) checks for disposal.
_TURN_POLL: Final = 0.1
_deadline_ids = itertools.count(1)

#: What a failing read raises, below the requests layer.
_READ_ERRORS = (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError)


# --- cancellation: reaching a socket that another thread is blocked on ----------------------


class _Cancellation:
    """Shared by a reader thread, its disposable and its header watchdog: the flags and the
    socket to shut down.

    ``cancelled`` means disposed: the reader ends without a word. ``interrupted`` means the
    header deadline passed: the reader is woken the same way but reports a stall.
    """

    __slots__ = ("_lock", "_sock", "cancelled", "interrupted")

    def __init__(self) -> None:
        self.cancelled = False
        self.interrupted = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def sock(self) -> socket.socket | None:
        """The socket last attached (the one the reader is using), if known."""
        return self._sock

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sock = sock
            if not (self.cancelled or self.interrupted):
                return
        _shutdown(sock)

    def interrupt(self) -> None:
        """Wake the reader like :meth:`cancel` does, but let it report why (a deadline)."""
        with self._lock:
            if self.cancelled or self.interrupted:
                return
            self.interrupted = True
            sock = self._sock
        if sock is not None:
            _shutdown(sock)

    def cancel(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            sock = self._sock
        if sock is not None:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # The base-class method: on an SSLSocket it shuts the TCP socket down without touching
    # the SSL object that the reader thread is using.
    with contextlib.suppress(OSError):  # already closed or never connected: nothing to wake
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_current = threading.local()


def _attach_current(sock: socket.socket | None) -> None:
    cancellation: _Cancellation | None = getattr(_current, "cancellation", None)
    if cancellation is not None:
        cancellation.attach(sock)


class _TrackedHTTPConnection(urllib3.connection.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)  # a pooled connection is reused without connect()
        super().request(*args, **kwargs)


class _TrackedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)
        super().request(*args, **kwargs)


class _TrackedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


_TRACKED_POOLS = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


class CancellableAdapter(requests.adapters.HTTPAdapter):
    """A ``requests`` adapter whose sockets a disposal can reach before the headers arrive.

    :func:`new_session` mounts it. If you pass your own ``requests.Session`` to :func:`lines`
    (for proxies, certificates, retries of your own), mount it too::

        session.mount("https://", CancellableAdapter())

    Without it, disposal is still prompt once the response headers have arrived (the socket
    is then taken from the response); while the request is waiting for them it can take up
    to the read timeout, and the header deadline (``header_timeout``) cannot interrupt a
    status line or headers that trickle in: only the per-read timeout applies there.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _TRACKED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _TRACKED_POOLS
        return manager


def new_session() -> requests.Session:
    """A ``requests.Session`` with :class:`CancellableAdapter` mounted for http and https."""
    session = requests.Session()
    adapter = CancellableAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- the observable -------------------------------------------------------------------------


def lines(
    request: StreamRequest,
    *,
    session: requests.Session | None = None,
    stall_timeout: float = 90.0,
    connect_timeout: float = 10.0,
    header_timeout: float | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_line: int = DEFAULT_MAX_LINE,
    scheduler: abc.SchedulerBase | None = None,
    on_response: Callable[[requests.Response], None] | None = None,
    on_line_dropped: Callable[[int], None] | None = None,
) -> Observable[bytes]:
    """A cold Observable of the lines of one streaming HTTP response per subscription.

    .. marble::
        :alt: lines

        subscribe   --connect--> 200 --"a"--"b"--""--"c"--|        clean end of the body
        subscribe   --connect--> 503 --# TwitterServerError
        subscribe   --connect--> 200 --"a"-- (cut) # StreamConnectionError
        subscribe   --connect--> 200 --"a"-- (no line for stall_timeout) # StallError

    Deadlines. Once the headers are in, a complete line (a message or a keep-alive) must
    arrive every ``stall_timeout`` seconds: the time is counted from the last complete line
    (or from the headers), not per read, so bytes that trickle in without ever completing a
    line do not keep a connection alive. The time the subscriber spends in ``on_next`` is
    not counted. Before that, the whole request (connect, redirects, status line, headers
    and, for an answer other than 200, the error body) must be done within
    ``header_timeout`` seconds; each single read there also times out after
    ``stall_timeout`` seconds. Both end the subscription with
    :class:`~rxtweet.errors.StallError`.

    A request that cannot be sent as given (a header value with a control character or
    surrounding whitespace, a malformed URL) ends the subscription with
    :class:`~rxtweet.errors.InvalidRequest`, a ``ValueError`` whose message names the header
    but never quotes a value. No message, log line or repr made here shows a credential or
    the ``user:password@`` part of a URL.

    Args:
        request: what to ask for (method, url, params, headers, body, auth, proxies, verify).
        session: a ``requests.Session`` to use; by default each subscription makes its own
            (see :class:`CancellableAdapter` when passing yours: without it the header
            deadline cannot interrupt a read).
        stall_timeout: seconds without a complete line (keep-alives count) before the
            connection is given up as stalled. X sends a keep-alive every 20 s on v2 (use
            about 21 s) and every 30 s on v1.1 (use 90 s).
        connect_timeout: seconds allowed for the TCP (and TLS) connect.
        header_timeout: seconds allowed from the start of the request until the response
            headers are in (see Deadlines); default ``connect_timeout + stall_timeout``.
        chunk_size: the most bytes taken from the socket in one read.
        max_line: a longer line is dropped (logged and counted), never buffered further.
        scheduler: where to run the read loop; by default a dedicated thread per
            subscription. A pool scheduler works but ties up one of its threads per stream.
        on_response: called on the reader thread with the ``requests.Response`` once the
            status is 200, before the first line (the lifecycle's "connected" event). An
            exception it raises ends the subscription with that exception.
        on_line_dropped: called on the reader thread with the size in bytes of each line
            dropped for exceeding ``max_line``. An exception it raises ends the
            subscription with that exception.

    Returns:
        ``Observable[bytes]``: each subscription is one connection.
    """
    options = TransportOptions(
        stall_timeout=stall_timeout,
        connect_timeout=connect_timeout,
        header_timeout=header_timeout,
        chunk_size=chunk_size,
        max_line=max_line,
    )
    return _lines(
        request,
        options,
        session=session,
        scheduler=scheduler,
        on_response=on_response,
        on_line_dropped=on_line_dropped,
    )


def _lines(
    request: StreamRequest,
    options: TransportOptions,
    *,
    session: requests.Session | None,
    scheduler: abc.SchedulerBase | None,
    on_response: Callable[[requests.Response], None] | None,
    on_line_dropped: Callable[[int], None] | None,
    batched: bool = False,
) -> Observable[Any]:
    # The options were validated when built; they are copied into each _Reader's attributes
    # (its read loop looks nothing up through them).
    stall_timeout = options.stall_timeout
    connect_timeout = options.connect_timeout
    headers_deadline = options.headers_deadline
    chunk_size = options.chunk_size
    max_line = options.max_line
    turns = options.turns

    def subscribe(
        observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        cancellation = _Cancellation()
        reader = _Reader(
            request,
            observer,
            cancellation,
            session=session,
            stall_timeout=stall_timeout,
            connect_timeout=connect_timeout,
            header_timeout=headers_deadline,
            chunk_size=chunk_size,
            max_line=max_line,
            on_response=on_response,
            on_line_dropped=on_line_dropped,
            turns=turns,
            batched=batched,
        )
        if scheduler is not None:
            scheduled = scheduler.schedule(lambda _s, _st: reader.run())

            def dispose_scheduled() -> None:
                cancellation.cancel()
                scheduled.dispose()

            return Disposable(dispose_scheduled)

        thread = threading.Thread(
            target=reader.run, name=f"rxtweet-reader-{next(_reader_ids)}", daemon=True
        )
        thread.start()
        return Disposable(cancellation.cancel)

    return Observable(subscribe)


class RequestsTransport:
    """The default :class:`~rxtweet.transport_base.Transport`: :func:`lines` over ``requests``.

    Args:
        session: the ``requests.Session`` every connection uses (see :func:`lines`); by
            default each subscription makes its own.
        scheduler: where the read loops run; by default a dedicated thread per subscription.
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        self.session = session
        self.scheduler = scheduler

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def lines(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Callable[[ResponseHead], None] | None = None,
        on_line_dropped: Callable[[int], None] | None = None,
    ) -> Observable[bytes]:
        """:func:`lines` with ``options``; ``on_response`` gets the ``requests.Response``."""
        return _lines(
            request,
            options,
            session=self.session,
            scheduler=self.scheduler,
            on_response=on_response,
            on_line_dropped=on_line_dropped,
        )

    def batches(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Callable[[ResponseHead], None] | None = None,
        on_line_dropped: Callable[[int], None] | None = None,
    ) -> Observable[list[bytes]]:
        """:meth:`lines`, a read's lines at a time (see
        :class:`~rxtweet.transport_base.BatchTransport`)."""
        return _lines(
            request,
            options,
            session=self.session,
            scheduler=self.scheduler,
            on_response=on_response,
            on_line_dropped=on_line_dropped,
            batched=True,
        )


#: The most inflated bytes produced by one step of a gzip body. A few kilobytes of
#: compressed keep-alives inflate to hundreds of megabytes; in steps, the buffer and the list
#: of lines made from it stay small (at most this many lines per step).
INFLATE_STEP = 256 * 1024


class _Reader:
    """One connection: request, check the status, read, split, emit. Runs on one thread."""

    def __init__(
        self,
        request: StreamRequest,
        observer: abc.ObserverBase[Any],
        cancellation: _Cancellation,
        *,
        session: requests.Session | None,
        stall_timeout: float,
        connect_timeout: float,
        header_timeout: float,
        chunk_size: int,
        max_line: int,
        on_response: Callable[[requests.Response], None] | None,
        on_line_dropped: Callable[[int], None] | None = None,
        turns: Turns | None = None,
        batched: bool = False,
    ) -> None:
        self.request = request
        self.observer = observer
        self.cancellation = cancellation
        self.session = session
        self.stall_timeout = stall_timeout
        self.connect_timeout = connect_timeout
        self.header_timeout = header_timeout
        self.chunk_size = chunk_size
        self.max_line = max_line
        self.on_response = on_response
        self.on_line_dropped = on_line_dropped
        self.turns = turns
        self.batched = batched  # one on_next per read (a list of lines), not per line
        self.request_line = f"{request.method} {_path_of(request.url)}"
        self._secrets = secrets_of(request)
        self._redirected = False  # whether the server answered with a redirect

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - a reader must report, never die quietly
            # Network and HTTP failures arrive here already typed; anything else was raised
            # by downstream code (an observer, a hook) and goes back through on_error as is,
            # so that the reconnect policy can tell it apart and end the stream.
            if not self.cancellation.cancelled:
                self._notify_error(exc)

    def _notify_error(self, error: Exception) -> None:
        try:
            self.observer.on_error(error)
        except Exception:
            # reactivex re-raises when the subscriber gave no on_error; on this background
            # thread the error would otherwise vanish.
            log.exception("a stream failed and its subscriber has no on_error handler")

    def _run(self) -> None:
        if self.cancellation.cancelled:
            return
        own_session = self.session is None
        session = new_session() if own_session else cast(requests.Session, self.session)
        response: requests.Response | None = None
        # The terminal notification waits until the response is closed: a reconnect made
        # from it must not overlap this connection (X allows one per stream).
        error: Exception | None = None
        completed = False
        try:
            response, error = self._request_within_deadline(session)
            if response is None:
                return  # cancelled while connecting
            if error is None:
                if self.on_response is not None:
                    try:
                        self.on_response(response)
                    except Exception as exc:
                        mark_downstream(exc)
                        raise
                completed = self._read_body(response)
        finally:
            if response is not None:
                response.close()
            if own_session:
                session.close()
        if self.cancellation.cancelled:
            return
        if error is not None:
            self._notify_error(error)
        elif completed:
            self.observer.on_completed()

    def _request_within_deadline(
        self, session: requests.Session
    ) -> tuple[requests.Response | None, HTTPException | None]:
        """Connect and read the headers (and an error answer's body) before the deadline.

        Returns the response (``None`` if cancelled) and, for a status other than 200, its
        error. A per-read timeout cannot bound this phase (a status line sent a byte at a
        time, or an endless run of ``100 Continue``, resets it at every byte), so a watchdog
        timer shuts the socket down when ``header_timeout`` passes.
        """
        watchdog = threading.Timer(self.header_timeout, self.cancellation.interrupt)
        watchdog.name = f"rxtweet-deadline-{next(_deadline_ids)}"
        watchdog.daemon = True
        watchdog.start()
        response: requests.Response | None = None
        try:
            response = self._connect(session)
            if response is None or response.status_code == 200:
                error = None
            else:
                # Still under the watchdog: an error body sent a byte at a time is bounded too.
                error = HTTPException.from_response(
                    response, request_line=self.request_line, request=self.request
                )
                error.scrub(self._secrets)  # X's text may quote the request's headers
                log.debug("%s answered %s", self.request_line, response.status_code)
        except StreamConnectionError as exc:
            if self.cancellation.interrupted:
                raise self._header_stall(exc) from exc
            raise
        finally:
            watchdog.cancel()
            watchdog.join()
        if self.cancellation.interrupted and not self.cancellation.cancelled:
            # The socket was shut down under a response that looked complete (headers cut
            # at a line end parse as headers): whatever it says cannot be trusted.
            if response is not None:
                response.close()
            raise self._header_stall(None)
        return response, error

    def _header_stall(self, cause: BaseException | None) -> StallError:
        log.debug(
            "%s: no complete response headers within %g s", self.request_line, self.header_timeout
        )
        return StallError(
            self.header_timeout,
            cause=cause,
            message=f"{self.request_line}: no complete response headers within "
            f"{self.header_timeout:g} s: the server is not answering",
            request=self.request,
        )

    def _connect(self, session: requests.Session) -> requests.Response | None:
        request = self.request
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"}
        if request.headers:
            headers.update(request.headers)
        invalid: str | None = None
        _current.cancellation = self.cancellation
        try:
            response = session.request(
                request.method,
                request.url,
                params=request.params,
                headers=headers,
                data=request.data,
                json=request.json,
                auth=request.auth,
                proxies=dict(request.proxies) if request.proxies else None,
                verify=request.verify,
                stream=True,
                timeout=(self.connect_timeout, self.stall_timeout),
                hooks={"response": [self._on_redirect]},
            )
        except requests.exceptions.ConnectTimeout as exc:
            return self._network_error(exc, f"connect timed out ({self.connect_timeout:g} s)")
        except requests.exceptions.ReadTimeout as exc:
            if self.cancellation.cancelled:
                return None
            raise StallError(
                self.stall_timeout,
                cause=exc,
                message=f"{self.request_line}: nothing received for {self.stall_timeout:g} s "
                "while waiting for the response headers: the server is not answering",
                request=self.request,
            ) from exc
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            return self._network_error(exc, "connection failed")
        except ValueError as exc:
            if self._redirected:
                # The server's answer, not the caller's request, is at fault (a Location to
                # file:// or to a malformed URL): a network error, retried like one. Its
                # text quotes the URL, which is not shown.
                return self._network_error(
                    exc, f"a redirect cannot be followed ({type(exc).__name__})", detail=False
                )
            # requests' InvalidHeader and http.client quote the offending value, which may be
            # a token: the message is replaced, and raised outside this block so that the
            # original is neither the cause nor the context of what the caller sees.
            invalid = self._invalid_request_message(exc, headers)
        except requests.exceptions.RequestException as exc:  # too many redirects, and others
            return self._network_error(exc, "request failed")
        finally:
            _current.cancellation = None
        if invalid is not None:
            raise InvalidRequest(invalid)
        # With a session whose adapter is not a CancellableAdapter the socket is not known
        # yet: take it from the response, so that a disposal can still wake the read.
        connection = getattr(response.raw, "_connection", None)
        self.cancellation.attach(getattr(connection, "sock", None))
        if self.cancellation.cancelled:
            response.close()
            return None
        return response

    def _invalid_request_message(self, exc: ValueError, headers: dict[str, str]) -> str:
        bad = [name for name, value in headers.items() if not _header_is_sendable(name, value)]
        if bad:
            what = (
                f"header {', '.join(repr(scrub_secrets(n, self._secrets)) for n in bad)} "
                "has a name or "
                "value with surrounding whitespace or a control character (not shown)"
            )
        elif isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
            what = f"invalid URL ({type(exc).__name__})"
        else:
            what = f"{type(exc).__name__} (details not shown: they may quote a credential)"
        log.debug("%s: the request cannot be sent: %s", self.request_line, what)
        return f"{self.request_line}: the request cannot be sent: {what}"

    def _network_error(
        self, exc: BaseException, what: str, *, detail: bool = True
    ) -> requests.Response | None:
        if self.cancellation.cancelled:
            return None
        message = f"{self.request_line}: {what}"
        if detail:
            message += f": {scrub_secrets(network_reason(exc), self._secrets)}"
        raise StreamConnectionError(message, cause=exc, request=self.request) from exc

    def _on_redirect(self, response: requests.Response, *_: Any, **__: Any) -> requests.Response:
        """A ``requests`` response hook: make a redirect safe to follow.

        ``requests`` reads each redirect's whole body to reuse the connection; a body that
        never ends would fill memory. Instead the body counts as empty and the connection is
        closed (the next request opens a new one).

        ``requests`` drops ``Authorization`` and ``Cookie`` on the way to another origin,
        but not the other credential headers (``X-Api-Key``): every header in
        :data:`~rxtweet.http.SECRET_HEADERS` is removed from the request that the redirect
        copies, unless the target has the same scheme, host and port.
        """
        if not response.is_redirect:
            return response
        self._redirected = True
        response._content = b""
        response.raw.close()
        previous = response.request
        try:
            target = urljoin(str(previous.url), str(response.headers["location"]))
            same_origin = _origin(target) == _origin(str(previous.url))
        except ValueError:  # a malformed Location: requests fails on it next
            same_origin = False
        if not same_origin:
            for name in [n for n in previous.headers if n.lower() in SECRET_HEADERS]:
                del previous.headers[name]
        return response

    def _read_body(self, response: requests.Response) -> bool:
        """Emit every line; True if the body ended cleanly, False if cancelled.

        No read is made once the subscription is disposed (checked before each): a read
        then would drain the socket, and a socket closed with nothing unread ends with a
        FIN that a server blocked in ``sendall`` may never see through its zero window,
        where unread bytes make the close a reset (:meth:`_line_batches` checks).
        """
        on_dropped = self.on_line_dropped
        splitter = LineSplitter(
            self.max_line, on_drop=None if on_dropped is None else _downstream(on_dropped)
        )
        on_next = self.observer.on_next
        cancellation = self.cancellation
        turns = self.turns
        batched = self.batched
        batches = self._line_batches(response, splitter)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except _READ_ERRORS as exc:
                if cancellation.cancelled:
                    return False
                if raised_downstream(exc):
                    raise  # from on_line_dropped: the caller's, not the network's
                if splitter.pending():
                    log.debug(
                        "connection lost; %d bytes of a partial line discarded", splitter.pending()
                    )
                if isinstance(exc, TimeoutError | urllib3.exceptions.ReadTimeoutError):
                    raise StallError(self.stall_timeout, cause=exc, request=self.request) from exc
                raise StreamConnectionError(
                    f"{self.request_line}: connection lost mid-stream: "
                    f"{scrub_secrets(network_reason(exc), self._secrets)}",
                    cause=exc,
                    request=self.request,
                ) from exc
            # Exceptions raised by on_next are the observer's: they propagate unchanged.
            if turns is not None:
                # Waiting in acquire() sleeps without polling for the GIL (see
                # TransportOptions.turns); the timeout only lets a disposal end the wait.
                while not turns.acquire(timeout=_TURN_POLL):
                    if cancellation.cancelled:
                        return False
            try:
                if cancellation.cancelled:
                    return False
                if batched:
                    # One call per read; the consumer stops within the batch once disposed
                    # (the contract of BatchTransport).
                    on_next(batch)
                else:
                    for line in batch:
                        if cancellation.cancelled:
                            return False
                        on_next(line)
            except Exception as exc:
                mark_downstream(exc)  # the observer's: never a connection failure
                raise
            finally:
                if turns is not None:
                    turns.release()
        if cancellation.cancelled:
            return False
        if splitter.pending():
            # A clean end inside a line: the server sent something that is not a stream
            # (an HTML page, say). Say so: the bytes are dropped.
            log.warning(
                "%s: the response ended inside a line; %d bytes without a newline discarded",
                self.request_line,
                splitter.pending(),
            )
        return True

    def _line_batches(
        self, response: requests.Response, splitter: LineSplitter
    ) -> Iterator[list[bytes]]:
        """The lines of the body, read by read as they arrive; raises if it ends unfinished.

        Before each read the socket's timeout is set to the time left until the stall
        deadline, which moves on only when a batch with a complete line has been taken by
        the consumer: a trickle of bytes that never completes a line runs into it.
        """
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
        fp = _socket_file(response)
        sock = self.cancellation.sock
        settimeout = sock.settimeout if sock is not None else None
        stall = self.stall_timeout
        deadline = monotonic() + stall
        cancellation = self.cancellation
        if fp is None or not chunked or encoding not in ("identity", "gzip", ""):
            raw = response.raw
            while True:
                if cancellation.cancelled:
                    return  # never read after a disposal (see _read_body)
                if settimeout is not None:
                    left = deadline - monotonic()
                    if left <= 0:
                        raise TimeoutError("stall deadline passed")
                    try:
                        settimeout(left)
                    except OSError:
                        # urllib3 closed the socket at the end of a Content-Length body;
                        # the read below reports the clean end.
                        settimeout = None
                data = raw.read1(self.chunk_size, decode_content=True)
                if not data:
                    return  # urllib3 raises for a short body, so this is a clean end
                batch = splitter.feed(data)
                if batch:
                    yield batch
                    deadline = monotonic() + stall
        decoder = ChunkedDecoder()
        gzipped = encoding == "gzip"
        inflate = zlib.decompressobj(wbits=31) if gzipped else None
        members = 0  # gzip members completed
        in_member = False  # part of a member was taken, its end (CRC and size) not yet
        read: Callable[[int], bytes] = fp.read1
        recv = _socket_recv(fp)
        size = self.chunk_size
        # The socket's timeout as last set, and whether a batch was taken since the last
        # read: then the deadline is a whole stall_timeout away, which the socket may already
        # be set to. Each settimeout is a system call, so it is made only when the value moves.
        timeout: float | None = None
        fresh = False
        while not decoder.done:
            if cancellation.cancelled:
                return  # never read after a disposal (see _read_body)
            if settimeout is not None:
                if fresh:
                    fresh = False
                    if timeout != stall:
                        settimeout(stall)
                        timeout = stall
                else:
                    left = deadline - monotonic()
                    if left <= 0:
                        raise TimeoutError("stall deadline passed")
                    settimeout(left)
                    timeout = left
            data = read(size)
            if recv is not None and len(data) < size:
                # The file's buffer is empty now (a read1 shorter than asked either took all
                # it held or read the socket): read the socket itself from here on, which
                # skips two Python calls of SocketIO per read.
                read, recv = recv, None
            if not data:
                if self.cancellation.cancelled:
                    return
                raise StreamConnectionError(
                    f"{self.request_line}: connection closed before the end of the response",
                    request=self.request,
                )
            try:
                if not gzipped:
                    batch = decoder.feed_lines(data, splitter)
                    if batch:
                        yield batch
                        deadline = monotonic() + stall
                        fresh = True
                    continue
                payload = decoder.feed(data)
                if inflate is None and payload.strip(b"\0"):
                    raise StreamConnectionError(
                        f"{self.request_line}: data after the gzip padding is not gzip",
                        request=self.request,
                    )
                # Inflate in bounded steps, and start a new inflater at each member's end
                # (gzip allows several members in a row, and some servers send them).
                while inflate is not None:
                    in_member = in_member or bool(payload)
                    piece = inflate.decompress(payload, INFLATE_STEP)
                    held_back = len(piece) == INFLATE_STEP  # output may be left inside
                    payload = inflate.unconsumed_tail
                    if inflate.eof:
                        members += 1
                        in_member = False
                        payload = inflate.unused_data
                        inflate = zlib.decompressobj(wbits=31)
                        held_back = False
                    if piece:
                        batch = splitter.feed(piece)
                        if batch:
                            yield batch
                            deadline = monotonic() + stall
                            fresh = True
                    if not payload and not held_back:
                        break
            except ChunkedEncodingError as exc:
                raise StreamConnectionError(
                    f"{self.request_line}: {exc}", cause=exc, request=self.request
                ) from exc
            except zlib.error as exc:
                if members and not payload.strip(b"\0"):
                    # Zero padding after the last member, which gzip(1) allows: ignored. Any
                    # other byte there cannot be resynchronised on a stream that goes on, so
                    # it ends the connection (and a reconnect) instead of silently discarding
                    # everything after it until a stall.
                    log.debug("%s: zero padding after the gzip data ignored", self.request_line)
                    inflate = None
                    in_member = False
                    continue
                raise StreamConnectionError(
                    f"{self.request_line}: bad gzip data: {exc}", cause=exc, request=self.request
                ) from exc
        if in_member:
            # The chunked framing ended well, but the gzip member inside it did not: the
            # body was cut (what did arrive was emitted).
            raise StreamConnectionError(
                f"{self.request_line}: the response ended inside a gzip member",
                request=self.request,
            )


def _socket_file(response: requests.Response) -> io.BufferedReader | None:
    """The buffered socket file under ``response``, or ``None`` when it is not reachable.

    urllib3's response wraps an ``http.client.HTTPResponse`` whose ``fp`` is the connection's
    buffered socket file. Reading it directly skips two layers of per-chunk Python code; if a
    future urllib3 changes that layout we fall back to urllib3's public ``read1``.
    """
    inner = getattr(response.raw, "_fp", None)
    if not isinstance(inner, http.client.HTTPResponse):
        return None
    fp = getattr(inner, "fp", None)
    return fp if isinstance(fp, io.BufferedReader) else None


def _socket_recv(fp: io.BufferedReader) -> Callable[[int], bytes] | None:
    """``recv`` of the socket under ``fp`` (plain or TLS), or ``None`` when it is not one.

    Once ``fp``'s buffer is empty, reading the socket itself returns what ``fp.read1`` would,
    without ``SocketIO``'s Python layer.
    """
    raw = fp.raw
    sock = getattr(raw, "_sock", None) if type(raw) is socket.SocketIO else None
    return sock.recv if isinstance(sock, socket.socket) else None


def _path_of(url: str) -> str:
    # Only scheme, host and path: a query string may carry something a user considers
    # private, and userinfo certainly does.
    return redact_url(url.split("?", 1)[0].split("#", 1)[0])


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port of ``url`` (the default port filled in); ValueError if bad."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or _DEFAULT_PORTS.get(scheme)


def _downstream(callback: Callable[[int], None]) -> Callable[[int], None]:
    """``callback``, with whatever it raises marked as the caller's (see mark_downstream)."""

    def call(size: int) -> None:
        try:
            callback(size)
        except Exception as exc:
            mark_downstream(exc)
            raise

    return call


def _header_is_sendable(name: object, value: object) -> bool:
    """Whether requests and http.client accept this header (else they quote the value)."""
    if not isinstance(name, str | bytes) or not isinstance(value, str | bytes):
        return False
    key = name.decode("latin-1") if isinstance(name, bytes) else name
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    if not key or key[0].isspace() or ":" in key or any(c.isspace() for c in key):
        return False
    if text[:1].isspace():
        return False
    return all(c == "\t" or (" " <= c <= "\xff" and c != "\x7f") for c in text + key)
