"""The tweepy-compatible face: hooks (``on_connect``, ``on_tweet`` …) over the observables.

:class:`BaseStream` is what tweepy 4.x's ``BaseStream`` is to its ``StreamingClient`` and
``Stream``: the lifecycle hooks, ``running``, ``thread``, ``disconnect()``, and a blocking or
threaded run. Here the run is only a subscriber: it subscribes to a
:class:`~rxtweet.connection.Connection`'s ``items`` and calls one hook per item. Reconnects,
parsing and error typing all happen in the observables, exactly as for reactive users.

A run takes one :class:`~rxtweet.connection.Connection` or a
:class:`~rxtweet.partitions.MergedConnection` of partition connections (any
:class:`~rxtweet.substreams.ItemSource`). Hooks run on the connection's reader thread (on a
merged one, on the reader thread of the item's partition), one at a time
(``on_disconnect`` runs on the thread that ran ``sample()``/``filter()``, or on the
``threaded=True`` thread). An exception raised by a hook ends the stream: it reaches
``on_exception`` (as in tweepy), then ``on_disconnect``. A hook may call
:meth:`BaseStream.disconnect`; the stream then stops before any reconnect.

======================  ==============================================================
event                   hook
======================  ==============================================================
``Connected``           ``on_connect()``
``KeepAlive``           ``on_keep_alive()``
``Closed``              ``on_closed(response)``
``ConnectionFailed``    ``on_connection_error()``
``RequestFailed``       ``on_request_error(status_code)``
``Errored``             ``on_exception(exception)``
end of the run          ``on_disconnect()`` (exactly once, last)
======================  ==============================================================
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar, TypeVar, Unpack, cast

import requests
from reactivex import abc
from reactivex.disposable import CompositeDisposable

from .connection import BatchOperator, Connection, LineOperator
from .errors import StreamAlreadyRunning
from .events import (
    Closed,
    Connected,
    ConnectionFailed,
    Errored,
    KeepAlive,
    RequestFailed,
    StreamEvent,
)
from .http import StreamRequest, redact_url
from .operators.share import same
from .parse import Parsed, decode
from .reconnect import ReconnectPolicy
from .recovery.gap import RecoveryMode
from .substreams import ItemSource, select_messages, select_other_items
from .transport import USER_AGENT, CancellableAdapter, RequestsTransport, new_session
from .transport_base import Transport, TransportOptions, TransportOptionsKw

__all__ = ["BaseStream", "StreamAlreadyRunning"]

log = logging.getLogger(__name__)

_M = TypeVar("_M")


#: Connections the session keeps per host: a partitioned firehose has 20 at once, plus REST
#: calls (requests' default, 10, would drop and log a WARNING for each further one returned).
SESSION_POOL_SIZE = 32

#: Numbers the ``threaded=True`` threads: ``rxtweet-stream-1``, ``rxtweet-stream-2`` …
_thread_numbers = itertools.count(1)


class _RunState:
    """One run of ``sample()``/``filter()``: its end, its subscription, its hook lock."""

    __slots__ = ("done", "finished", "hooks", "over", "subscription")

    def __init__(self) -> None:
        # Set to stop the run (the stream ended, or disconnect()).
        self.done = threading.Event()
        # Set once on_disconnect has returned: the run is over, nothing of it runs any more.
        self.finished = threading.Event()
        # Held while a hook runs: on_disconnect waits for it, and no hook runs after it.
        self.hooks = threading.RLock()
        self.over = False
        self.subscription: abc.DisposableBase | None = None

    def hook_lock(self) -> tuple[Callable[[], Any], Callable[[], None], Callable[[], bool]]:
        """The hook lock's ``acquire``, ``release`` and ``_is_owned``, bound once per run
        (see :func:`_locker`)."""
        hooks = self.hooks
        return hooks.acquire, hooks.release, hooks._is_owned  # type: ignore[attr-defined]


class _StreamThread(threading.Thread):
    """The thread of a ``threaded=True`` run. Its :meth:`join` returns only once the run is
    over (``on_disconnect`` has returned), even after an earlier ``join()`` was interrupted
    by Ctrl-C: CPython then marks the thread as stopped though it still runs, and a plain
    ``Thread.join()`` would return at once (before ``on_disconnect``)."""

    def __init__(self, run: _RunState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._run_state = run

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._run_state.finished.wait(timeout):
            return
        super().join(None if deadline is None else max(0.0, deadline - time.monotonic()))


def _locker(run: _RunState) -> Callable[[Callable[[Any], Any]], Callable[[Any], None]]:
    """``locked(handle)``: an observer that calls ``handle(item)`` under ``run``'s hook lock,
    unless the run is over (then it drops the item)."""
    # The hook lock taken as a with statement would be, without binding __enter__ and
    # __exit__ for every item (~900 instructions a message). An exception raised as
    # acquire() returns (an asynchronous one, delivered when the call ends) arrives with
    # the lock held; one raised while it waits (a signal's, on the main thread) without:
    # the first handler tells them apart. Between the two try statements there is no
    # point where CPython delivers an asynchronous exception. (StreamingClient's observer
    # of lone tweets takes the lock the same way, inline: see its _value_selection.)
    enter, leave, owned = run.hook_lock()

    def locked(handle: Callable[[Any], Any]) -> Callable[[Any], None]:
        def on_next(item: Any) -> None:
            try:
                enter()
            except BaseException:
                if owned():
                    leave()
                raise
            try:
                if run.over:
                    return
                handle(item)
            finally:
                leave()

        return on_next

    return locked


class BaseStream:
    """Lifecycle hooks and the run loop shared by :class:`~rxtweet.StreamingClient` (v2)
    and :class:`~rxtweet.Stream` (v1.1). Override the ``on_*`` methods you need.

    Args:
        transport: performs the connections (a :class:`~rxtweet.transport_base.Transport`);
            default :class:`~rxtweet.transport.RequestsTransport` over :attr:`session`.
        daemon: whether a ``threaded=True`` run's thread is a daemon.
        max_retries: reconnects allowed in a row without data (``n`` means at most ``n+1``
            connection attempts); overrides ``reconnect.max_retries`` when given.
        proxy: an ``https`` proxy URL, as in tweepy.
        verify: TLS verification (``False``, ``True`` or a CA bundle path).
        reconnect: a :class:`~rxtweet.ReconnectPolicy` (default: X's guidance).
        scheduler: where reconnect waits run (tests pass a virtual-time scheduler).
        base_url: the API's root URL (the clients pass their default).
        **options: the fields of :class:`~rxtweet.transport_base.TransportOptions`:
            ``stall_timeout`` (seconds of silence, not even a keep-alive, before
            reconnecting), ``chunk_size`` (bytes per socket read; tweepy's name, here a
            bound, not a wait), ``connect_timeout``, ``header_timeout``, ``max_line``.

    Attributes:
        options: the :class:`~rxtweet.transport_base.TransportOptions` every connection uses
            (``stall_timeout`` and ``chunk_size`` are also attributes; setting one replaces
            :attr:`options`).
        transport: the transport.
        session: the ``requests.Session`` of the default transport (and of REST calls).
        user_agent: the ``User-Agent`` sent (:data:`rxtweet.transport.USER_AGENT`).
    """

    #: Whether :meth:`_dispatch` reads its ``raw`` argument. A class that sets it False in
    #: its own body says so of the ``_dispatch`` of that body (and gives ``raw`` a
    #: default): a run then takes the messages' values alone (no ``Parsed`` made for them)
    #: while that very ``_dispatch`` is the one in use (not an override, a patch, or one
    #: set on the instance, which may read ``raw``).
    _dispatch_needs_raw: ClassVar[bool] = True
    _raw_free_dispatch: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if vars(cls).get("_dispatch_needs_raw") is False:
            cls._raw_free_dispatch = vars(cls).get("_dispatch")

    def __init__(
        self,
        *,
        transport: Transport | None = None,
        daemon: bool = False,
        max_retries: float = math.inf,
        proxy: str | None = None,
        verify: bool | str = True,
        reconnect: ReconnectPolicy | None = None,
        scheduler: abc.SchedulerBase | None = None,
        base_url: str = "",
        **options: Unpack[TransportOptionsKw],
    ) -> None:
        policy = reconnect or ReconnectPolicy()
        if max_retries != math.inf:
            policy = replace(policy, max_retries=max_retries)
        self.options = TransportOptions(**options)
        self.daemon = daemon
        self.max_retries = policy.max_retries
        self.proxies = {"https": proxy} if proxy else {}
        self.verify = verify
        self.reconnect = policy
        self.scheduler = scheduler
        self.base_url = base_url.rstrip("/")
        self.running = False
        self.session: requests.Session = new_session()
        adapter = CancellableAdapter(pool_maxsize=SESSION_POOL_SIZE)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._transport = transport
        self.thread: threading.Thread | None = None
        self.user_agent: str = USER_AGENT
        self._lock = threading.Lock()
        self._run_state: _RunState | None = None
        # disconnect() calls so far: a run started after a disconnect() stops at once.
        self._disconnects = 0
        self._pending: Parsed[Any] | None = None

    @property
    def transport(self) -> Transport:
        """The transport given, else a :class:`~rxtweet.transport.RequestsTransport` over the
        current :attr:`session` (looked up per run, so a replaced session is used)."""
        if self._transport is not None:
            return self._transport
        return RequestsTransport(self.session)

    @transport.setter
    def transport(self, value: Transport | None) -> None:
        self._transport = value

    @property
    def stall_timeout(self) -> float:
        """Seconds without a complete line before reconnecting (``options.stall_timeout``)."""
        return self.options.stall_timeout

    @stall_timeout.setter
    def stall_timeout(self, value: float) -> None:
        self.options = replace(self.options, stall_timeout=value)

    @property
    def chunk_size(self) -> int:
        """The most bytes taken from the socket in one read (``options.chunk_size``)."""
        return self.options.chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int) -> None:
        self.options = replace(self.options, chunk_size=value)

    def _connection(
        self,
        request: StreamRequest,
        convert: Callable[[dict[str, Any]], _M],
        *,
        is_data: Callable[[_M], bool] | None = None,
        frame: LineOperator | None = None,
        batch_frame: BatchOperator | None = None,
        recovery: RecoveryMode | None = None,
        clock: Callable[[], float] = time.time,
        created_of: Callable[[_M], float | None] | None = None,
    ) -> Connection[_M]:
        """The :class:`~rxtweet.connection.Connection` of one run: this stream's transport,
        options, reconnect policy and scheduler around ``request`` (recovery as
        :class:`~rxtweet.connection.Connection` takes it)."""
        return Connection(
            request,
            convert,
            transport=self.transport,
            options=self.options,
            policy=self.reconnect,
            scheduler=self.scheduler,
            frame=frame,
            batch_frame=batch_frame,
            is_data=is_data,
            recovery=recovery,
            clock=clock,
            created_of=created_of,
        )

    def __repr__(self) -> str:
        # No credentials here: only where it connects and whether it runs.
        # base_url's userinfo (user:password@) is redacted.
        return (
            f"<{type(self).__name__} base_url={redact_url(self.base_url)!r} running={self.running}>"
        )

    # --- running --------------------------------------------------------------------------

    def _starting(self) -> int:
        """Call first thing in ``sample()``/``filter()``; pass the result to :meth:`_start`
        as ``since``, so that a :meth:`disconnect` made after the call began, even before
        the run is registered, stops the run."""
        with self._lock:
            return self._disconnects

    def _start(
        self, connection: ItemSource[Any], threaded: bool, *, since: int | None = None
    ) -> threading.Thread | None:
        with self._lock:
            if self.running:
                raise StreamAlreadyRunning("Stream is already connected")
            self._run_starting()
            run = self._run_state = _RunState()
            if since is not None and self._disconnects != since:
                # disconnect() came after the call began: the run ends before connecting
                # (on_disconnect is still called, once, as for any run).
                run.done.set()
            else:
                self.running = True
        if threaded:
            self.thread = _StreamThread(
                run,
                target=self._run,
                args=(connection, run),
                name=f"rxtweet-stream-{next(_thread_numbers)}",
                daemon=self.daemon,
            )
            self.thread.start()
            return self.thread
        self._run(connection, run)
        return None

    def _run_starting(self) -> None:
        """Called under the lock when a run is accepted, before it connects: a subclass
        decides here what holds for the whole run (the hooks it overrides, say)."""

    def _run_ended(self) -> None:
        """Called under the lock when the current run ends (undo :meth:`_run_starting`)."""

    def _run(self, connection: ItemSource[Any], run: _RunState) -> None:
        on_event = self._on_event
        hooks = run.hooks
        # Decided once per run: without an on_data override a message goes to the hooks
        # straight from its parse (an override sees the raw line first: _on_message).
        direct = type(self).on_data is BaseStream.on_data and "on_data" not in vars(self)
        dispatch = self._dispatch
        on_message = self._on_message
        locked = _locker(run)

        def on_item(item: Any) -> None:
            if type(item) is not Parsed:
                on_event(item)
            elif direct:
                dispatch(item.value, item.raw)
            else:
                on_message(item)

        def finished(_: Exception | None = None) -> None:
            run.done.set()

        try:
            if run.done.is_set():  # disconnect() came first: do not even connect
                return
            items = connection.items
            value_only = (
                direct
                and not self._dispatch_needs_raw
                and "_dispatch" not in vars(self)
                and getattr(type(self), "_dispatch", None) is type(self)._raw_free_dispatch
            )
            if value_only and getattr(items, "fused", None):
                pick, on_value = self._value_selection(run)
                # The messages and the other items as two subscriptions of one share, in
                # its order: the messages' one a selection of their values, which the
                # parser can then hand over without making each its Parsed (see
                # rxtweet.operators.share.ValueCalls); the other one says it ignores them.
                with connection.hold():
                    subscription: abc.DisposableBase = CompositeDisposable(
                        items.pipe(select_other_items()).subscribe(
                            locked(on_event), finished, finished
                        ),
                        items.pipe(select_messages(pick)).subscribe(on_value, finished, finished),
                    )
            else:
                subscription = items.subscribe(locked(on_item), finished, finished)
            with self._lock:
                run.subscription = subscription
                stopped_early = run.done.is_set()  # disconnect() came first
            if stopped_early:
                subscription.dispose()
            run.done.wait()
        except Exception as exc:  # noqa: BLE001 - reported like tweepy: to on_exception
            self._call_hook(self.on_exception, exc)
        finally:
            # Only this run's own state: after disconnect() a new run may already be going.
            with self._lock:
                if self._run_state is run:
                    self.running = False
                    self._run_ended()
                subscription_ = run.subscription
                run.subscription = None
            if subscription_ is not None:
                subscription_.dispose()
            # A hook still running on the reader thread finishes first; none runs after.
            with hooks:
                run.over = True
                try:
                    self._call_hook(self.on_disconnect)
                finally:
                    run.finished.set()

    def disconnect(self) -> None:
        """Stop the stream: the connection closes now and nothing reconnects.

        Safe from any thread, including from inside a hook, and at any moment after
        ``sample()``/``filter()`` was called (also while it is still starting).
        ``on_disconnect`` follows once any hook still running has returned; to wait for it,
        call :meth:`join` (or ``thread.join()`` on the thread of a ``threaded=True`` run).
        """
        with self._lock:
            self._disconnects += 1
            self.running = False
            run = self._run_state
            subscription = run.subscription if run is not None else None
            if run is not None:
                run.subscription = None
        if subscription is not None:
            subscription.dispose()
        if run is not None:
            run.done.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the current run is over (``on_disconnect`` has returned); the clean
        way to wait for a ``threaded=True`` run, Ctrl-C included::

            stream.filter(track=["python"], threaded=True)
            stream.join()  # Ctrl-C: disconnects, waits for on_disconnect, re-raises

        On ``KeyboardInterrupt`` while waiting, it calls :meth:`disconnect`, waits until
        ``on_disconnect`` has returned (a second Ctrl-C stops that wait), then re-raises the
        ``KeyboardInterrupt``, so the program ends (or its own ``except`` runs) as Ctrl-C
        always does, with the stream cleanly closed. Returns ``True`` when the run is over,
        ``False`` when ``timeout`` seconds passed first; ``True`` at once when no run was
        started. Do not call it from a hook: the run cannot end while a hook waits.
        """
        with self._lock:
            run = self._run_state
        if run is None:
            return True
        try:
            return run.finished.wait(timeout)
        except KeyboardInterrupt:
            self.disconnect()
            run.finished.wait()
            raise

    def _call_hook(self, hook: Any, *args: Any) -> None:
        try:
            hook(*args)
        except Exception:
            log.exception("%s raised", getattr(hook, "__name__", "hook"))

    # --- dispatch ---------------------------------------------------------------------------

    #: dict -> message, for an ``on_data`` call with a line the stream did not parse itself.
    _convert: Callable[[dict[str, Any]], Any]

    def _on_message(self, parsed: Parsed[Any]) -> None:
        if type(self).on_data is BaseStream.on_data and "on_data" not in vars(self):
            self._dispatch(parsed.value, parsed.raw)
            return
        # A subclass's on_data(raw) that calls super().on_data(raw) reuses this parse.
        self._pending = parsed
        try:
            self.on_data(parsed.raw)
        finally:
            self._pending = None

    def _dispatch(self, message: Any, raw: bytes) -> Any:
        """Call the hooks for one parsed message (tweepy's ``on_data`` after its parse)."""
        raise NotImplementedError

    def _value_selection(
        self, run: _RunState
    ) -> tuple[Callable[[Any], Any], Callable[[Any], None]]:
        """``(pick, observer)`` for a run's messages when :meth:`_dispatch` does not read
        ``raw`` (see ``_dispatch_needs_raw``): ``observer`` gets ``pick(value)`` of each
        message (see :func:`~rxtweet.substreams.select_messages`). Here the value itself,
        and ``_dispatch(value)`` under the run's hook lock, nothing once the run is over.
        Called once per run, on the run's thread."""
        # _dispatch_needs_raw False: raw has a default (see above)
        return same, _locker(run)(cast("Callable[[Any], Any]", self._dispatch))

    def on_data(self, raw_data: bytes | str) -> Any:
        """Each raw message line; by default parses it and calls the hooks for it.

        Override it to see the exact bytes; call ``super().on_data(raw_data)`` to keep the
        other hooks (the line is not parsed twice).
        """
        pending = self._pending
        if pending is not None and pending.raw is raw_data:
            return self._dispatch(pending.value, pending.raw)
        line = raw_data.encode("utf-8") if isinstance(raw_data, str) else raw_data
        doc = decode(line)
        if not isinstance(doc, dict):
            log.warning("on_data: malformed message (%s)", doc.reason)
            return None
        try:
            message = type(self)._convert(doc)
        except Exception as exc:  # noqa: BLE001 - a bad shape is reported, as parse_lines does
            log.warning("on_data: unexpected message shape: %s: %s", type(exc).__name__, exc)
            return None
        return self._dispatch(message, line)

    def _on_event(self, event: StreamEvent) -> None:
        # The event classes are final dataclasses (none derives from another), so a class
        # pattern picks exactly the type; the most frequent event comes first.
        match event:
            case KeepAlive():
                self.on_keep_alive()
            case Connected():
                self.on_connect()
            case ConnectionFailed():
                self.on_connection_error()
            case RequestFailed(status_code=status_code):
                self.on_request_error(status_code)
            case Closed(response=response):
                self.on_closed(response)
            case Errored(exception=exception):
                self._call_hook(self.on_exception, exception)
            case _:
                self.on_event(event)

    # --- hooks (tweepy's signatures and default logging) -------------------------------------

    def on_closed(self, response: requests.Response | None) -> None:
        """The server closed the stream (it will be reconnected)."""
        log.error("Stream connection closed by Twitter")

    def on_connect(self) -> None:
        """A connection answered 200."""
        log.info("Stream connected")

    def on_connection_error(self) -> None:
        """The connection failed or stalled (it will be reconnected)."""
        log.error("Stream connection has errored or timed out")

    def on_disconnect(self) -> None:
        """The stream is over; called exactly once, last."""
        log.info("Stream disconnected")

    def on_exception(self, exception: Exception) -> None:
        """The stream ended with ``exception`` (a hook raised, a fatal status, retries ran out)."""
        log.error("Stream encountered an exception: %s", exception, exc_info=exception)

    def on_keep_alive(self) -> None:
        """A keep-alive arrived."""
        log.debug("Received keep-alive signal")

    def on_request_error(self, status_code: int) -> None:
        """The server answered ``status_code`` instead of 200."""
        log.error("Stream encountered HTTP error: %d", status_code)

    def on_event(self, event: StreamEvent) -> None:
        """Any other lifecycle event (reconnect scheduled, malformed message …); rxtweet only."""
        log.debug("Stream event: %r", event)
