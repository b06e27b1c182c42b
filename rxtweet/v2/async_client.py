""":class:`AsyncStreamingClient`: tweepy 4.12's asyncio streaming client, over the reactive core.

The same connection, reconnects, parsing and error typing as
:class:`~rxtweet.v2.StreamingClient` (it is one inside): a reader thread reads and parses;
the items cross to the loop through :func:`rxtweet.aio.iterate` (bounded, ``"block"``);
the hooks are coroutines awaited there, one at a time, in stream order.

Threads and loops:

* every hook runs on the thread of the loop that called :meth:`~AsyncStreamingClient.filter`
  / :meth:`~AsyncStreamingClient.sample`, inside :attr:`~AsyncStreamingClient.task`;
* the socket is read on an ``rxtweet-reader-N`` thread, which waits when ``queue_size``
  items are waiting for the hooks: a slow hook slows the reader, and TCP the server;
* the rules calls (``await add_rules(...)`` …) run the blocking REST call in a worker
  thread (:func:`asyncio.to_thread`), so the loop never waits on the network.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from typing import Any, Unpack

import requests

from ..aio import AsyncIterate, iterate
from ..errors import StreamAlreadyRunning
from ..events import (
    Closed,
    Connected,
    ConnectionFailed,
    Disconnected,
    Errored,
    KeepAlive,
    RequestFailed,
    StreamEvent,
)
from ..http import redact_url
from ..parse import Parsed, decode
from ..reconnect import ReconnectPolicy
from ..transport_base import Transport, TransportOptionsKw
from .activity import ActivityStream
from .client import DEFAULT_STALL_TIMEOUT, StreamingClient
from .compliance import ComplianceStream
from .convert import to_stream_response
from .labels import LabelStream
from .likes import LikeStream
from .models import Response, StreamResponse, StreamRule, Tweet
from .rules import RulesSync
from .stream import TweetStream

__all__ = ["DEFAULT_QUEUE_SIZE", "AsyncStreamingClient"]

log = logging.getLogger(__name__)

#: Items read ahead of the hooks before the reader waits (``queue_size``).
DEFAULT_QUEUE_SIZE = 1_000

#: The hooks, each awaited: checked to be coroutine functions when a run starts.
HOOKS = (
    "on_connect",
    "on_closed",
    "on_connection_error",
    "on_disconnect",
    "on_exception",
    "on_keep_alive",
    "on_request_error",
    "on_data",
    "on_tweet",
    "on_includes",
    "on_errors",
    "on_matching_rules",
    "on_response",
    "on_event",
)


class AsyncStreamingClient:
    """tweepy's ``AsyncStreamingClient``: coroutine hooks, ``filter()``/``sample()`` return
    an :class:`asyncio.Task`, ``disconnect()`` ends it, rules calls are awaited.

    Change ``from tweepy.asynchronous import AsyncStreamingClient`` to
    ``from rxtweet import AsyncStreamingClient``; ``base_url`` points it at a
    :class:`~rxtweet.testing.FakeStreamServer` or a proxy.

    Args:
        bearer_token: the app's bearer token (never logged or shown in a repr).
        return_type: what the rules calls return: :class:`Response` (default), ``dict``
            or ``requests.Response``.
        wait_on_rate_limit: on a 429 from a rules call, wait until the reset and retry.
        max_retries: reconnects allowed in a row without data.
        proxy: an ``https`` proxy URL.
        base_url: :class:`~rxtweet.StreamingClient`'s default (``https://api.x.com``).
        reconnect: a :class:`~rxtweet.ReconnectPolicy`.
        stall_timeout: seconds without a byte before reconnecting (21, as tweepy).
        queue_size: items read ahead of the hooks; past it the reader waits (back-pressure).
        transport, verify, **options: as :class:`~rxtweet.StreamingClient`.

    Attributes:
        task: the :class:`asyncio.Task` of the current (or last) run, ``None`` before one.
        client: the :class:`~rxtweet.StreamingClient` inside (its reactive face, session).

    Hooks, tweepy's names and signatures, each ``async def``: ``on_connect()``,
    ``on_closed(response)``, ``on_connection_error()``, ``on_request_error(status_code)``,
    ``on_keep_alive()``, ``on_data(raw_data)``, ``on_tweet(tweet)``,
    ``on_includes(includes)``, ``on_errors(errors)``, ``on_matching_rules(matching_rules)``,
    ``on_response(response)``, ``on_exception(exception)``, ``on_disconnect()`` (always
    last, once per run); and rxtweet's ``on_event(event)`` for the other lifecycle events.
    An exception raised by a hook (or the stream failing for good) is passed to
    ``on_exception`` and ends the task (as tweepy); the task's result is then ``None``.
    """

    def __init__(
        self,
        bearer_token: str,
        *,
        return_type: type = Response,
        wait_on_rate_limit: bool = False,
        max_retries: float = math.inf,
        proxy: str | None = None,
        base_url: str | None = None,
        reconnect: ReconnectPolicy | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        transport: Transport | None = None,
        verify: bool | str = True,
        **options: Unpack[TransportOptionsKw],
    ) -> None:
        options.setdefault("stall_timeout", DEFAULT_STALL_TIMEOUT)
        if base_url is not None:  # else StreamingClient's default (one place to change it)
            kwargs: dict[str, Any] = {"base_url": base_url}
        else:
            kwargs = {}
        self.client = StreamingClient(
            bearer_token,
            **kwargs,
            return_type=return_type,
            wait_on_rate_limit=wait_on_rate_limit,
            max_retries=max_retries,
            proxy=proxy,
            reconnect=reconnect,
            transport=transport,
            verify=verify,
            **options,
        )
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be a positive int, not {queue_size!r}")
        self.queue_size = queue_size
        self.task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._items: AsyncIterate[Any] | None = None
        self._pending: Parsed[Any] | None = None
        self._ending: asyncio.Task[None] | None = None  # the run in its clean-up

    def __repr__(self) -> str:
        base_url = redact_url(self.client.base_url)
        return f"<{type(self).__name__} base_url={base_url!r} running={self.running}>"

    # --- what tweepy's object has ------------------------------------------------------------

    @property
    def bearer_token(self) -> str:
        """The bearer token (never shown in a repr)."""
        return self.client.bearer_token

    @property
    def return_type(self) -> type:
        """What the rules calls return."""
        return self.client.return_type

    @return_type.setter
    def return_type(self, value: type) -> None:
        self.client.return_type = value

    @property
    def wait_on_rate_limit(self) -> bool:
        """Whether a rules call waits out a 429."""
        return self.client.wait_on_rate_limit

    @wait_on_rate_limit.setter
    def wait_on_rate_limit(self, value: bool) -> None:
        self.client.wait_on_rate_limit = value

    @property
    def max_retries(self) -> float:
        """Reconnects allowed in a row without data."""
        return self.client.max_retries

    @property
    def session(self) -> requests.Session:
        """The ``requests.Session`` of the connections and rules calls (tweepy: aiohttp's)."""
        return self.client.session

    @property
    def user_agent(self) -> str:
        """The ``User-Agent`` sent."""
        return self.client.user_agent

    @property
    def running(self) -> bool:
        """Whether :attr:`task` is still going."""
        return self.task is not None and not self.task.done()

    # --- reactive face (for rxtweet.aio.iterate) ---------------------------------------------

    def sample_stream(self, **params: Any) -> TweetStream:
        """:meth:`rxtweet.StreamingClient.sample_stream`."""
        return self.client.sample_stream(**params)

    def filter_stream(self, **params: Any) -> TweetStream:
        """:meth:`rxtweet.StreamingClient.filter_stream`."""
        return self.client.filter_stream(**params)

    def sample10_stream(self, **params: Any) -> TweetStream:
        """:meth:`rxtweet.StreamingClient.sample10_stream`."""
        return self.client.sample10_stream(**params)

    def firehose_stream(self, **params: Any) -> TweetStream:
        """:meth:`rxtweet.StreamingClient.firehose_stream`."""
        return self.client.firehose_stream(**params)

    def compliance_stream(self, kind: str, **params: Any) -> ComplianceStream:
        """:meth:`rxtweet.StreamingClient.compliance_stream`."""
        return self.client.compliance_stream(kind, **params)

    def likes_stream(self, kind: str = "firehose", **params: Any) -> LikeStream:
        """:meth:`rxtweet.StreamingClient.likes_stream`."""
        return self.client.likes_stream(kind, **params)

    def label_stream(self, **params: Any) -> LabelStream:
        """:meth:`rxtweet.StreamingClient.label_stream`."""
        return self.client.label_stream(**params)

    def activity_stream(self, **params: Any) -> ActivityStream:
        """:meth:`rxtweet.StreamingClient.activity_stream`."""
        return self.client.activity_stream(**params)

    # --- rules (awaited; the blocking call runs in a worker thread) ---------------------------

    async def add_rules(self, add: StreamRule | Any, **params: Any) -> Any:
        """``add_rules(add, *, dry_run)``: as :meth:`rxtweet.StreamingClient.add_rules`.

        Returns what ``return_type`` says; HTTP failures raise the typed exceptions
        (``BadRequest``, ``Unauthorized`` …, as tweepy).
        """
        return await asyncio.to_thread(self.client.add_rules, add, **params)

    async def delete_rules(self, ids: Any, **params: Any) -> Any:
        """``delete_rules(ids, *, dry_run)``: as :meth:`rxtweet.StreamingClient.delete_rules`."""
        return await asyncio.to_thread(self.client.delete_rules, ids, **params)

    async def get_rules(self, **params: Any) -> Any:
        """``get_rules(*, ids)``: as :meth:`rxtweet.StreamingClient.get_rules`."""
        return await asyncio.to_thread(self.client.get_rules, **params)

    async def sync_rules(self, desired: Any, **params: Any) -> RulesSync:
        """:meth:`rxtweet.StreamingClient.sync_rules` (rxtweet only)."""
        return await asyncio.to_thread(self.client.sync_rules, desired, **params)

    # --- running -----------------------------------------------------------------------------

    def filter(self, **params: Any) -> asyncio.Task[None]:
        """Stream tweets matching the rules; returns the :class:`asyncio.Task` running it.

        Params as :meth:`rxtweet.StreamingClient.filter_stream` (checked now). Must be
        called with a running loop (``RuntimeError`` otherwise, as tweepy).

        Raises:
            StreamAlreadyRunning: (a ``TweepyException``) :attr:`task` is still running.
            TypeError: a hook is not a coroutine function (a plain ``def``: it could not
                be awaited; refused now rather than after its body has run once).
        """
        self._check_not_running()
        return self._launch(self.client.filter_stream(**params))

    def sample(self, **params: Any) -> asyncio.Task[None]:
        """Stream the 1% sample; returns the :class:`asyncio.Task` running it (see
        :meth:`filter`)."""
        self._check_not_running()
        return self._launch(self.client.sample_stream(**params))

    def _check_not_running(self) -> None:
        if self.running:
            raise StreamAlreadyRunning("Stream is already connected")
        for name in HOOKS:
            hook = getattr(self, name)
            if not inspect.iscoroutinefunction(hook):
                raise TypeError(
                    f"{type(self).__name__}.{name} must be a coroutine function (async def): "
                    "every hook is awaited on the loop"
                )

    def _launch(self, stream: TweetStream) -> asyncio.Task[None]:
        loop = asyncio.get_running_loop()
        items = iterate(
            stream.items, maxsize=self.queue_size, overflow="block", name="AsyncStreamingClient"
        )
        self._loop = loop
        self._items = items
        self.task = loop.create_task(self._run(items))
        return self.task

    def disconnect(self) -> None:
        """End the run: the connection closes now, no further message reaches a hook (the
        hooks of the message being handled finish), the task ends, ``on_disconnect``
        follows. Safe from a hook, from the loop, and from any other thread."""
        task, loop = self.task, self._loop
        if task is None or loop is None or task.done():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._stop(task)
        else:
            loop.call_soon_threadsafe(self._stop, task)

    def _stop(self, task: asyncio.Task[None]) -> None:
        if task.done() or self._ending is task:
            # Over, or in its clean-up already (on_disconnect runs): a cancellation now
            # would only cut that short (disconnect() twice, or from on_disconnect).
            return
        # Closing the iterator first: items already queued would otherwise still reach the
        # hooks (an await that does not suspend does not see a cancellation).
        items = self._items
        if items is not None:
            items.close()
        if asyncio.current_task() is not task:
            # The task waits somewhere (for an item, in a slow hook): wake it there. From a
            # hook of its own, closing is enough: the loop ends when the hook returns.
            task.cancel()

    async def _run(self, items: AsyncIterate[Any]) -> None:
        on_event = self._on_event
        on_message = self._on_message
        try:
            async for item in items:
                if type(item) is Parsed:
                    await on_message(item)
                else:
                    await on_event(item)
        except asyncio.CancelledError:
            return  # disconnect() (or task.cancel()): a normal end, as tweepy
        except Exception as exc:  # noqa: BLE001 - reported like tweepy: to on_exception
            await self._call_hook(self.on_exception, exc)
        finally:
            self._ending = asyncio.current_task()
            await items.aclose()
            await self._call_hook(self.on_disconnect)

    async def _call_hook(self, hook: Any, *args: Any) -> None:
        try:
            await hook(*args)
        except Exception:
            log.exception("%s raised", getattr(hook, "__name__", "hook"))

    async def _on_message(self, parsed: Parsed[StreamResponse]) -> None:
        if type(self).on_data is AsyncStreamingClient.on_data and "on_data" not in vars(self):
            await self._dispatch(parsed.value)
            return
        self._pending = parsed  # a subclass's on_data calling super() reuses this parse
        try:
            await self.on_data(parsed.raw)
        finally:
            self._pending = None

    async def _dispatch(self, response: StreamResponse) -> None:
        tweet, includes, errors, matching_rules = response
        if tweet is not None:
            await self.on_tweet(tweet)
        if includes:
            await self.on_includes(includes)
        if errors:
            await self.on_errors(errors)
        if matching_rules:
            await self.on_matching_rules(matching_rules)
        await self.on_response(response)

    async def _on_event(self, event: StreamEvent) -> None:
        match event:
            case KeepAlive():
                await self.on_keep_alive()
            case Connected():
                await self.on_connect()
            case ConnectionFailed():
                await self.on_connection_error()
            case RequestFailed(status_code=status_code):
                await self.on_request_error(status_code)
            case Closed(response=response):
                await self.on_closed(response)
            case Errored():
                pass  # the same exception ends the items next: on_exception gets it there
            case Disconnected():
                pass  # on_disconnect comes when the task ends
            case _:
                await self.on_event(event)

    # --- hooks (tweepy's names, signatures and default logging) -------------------------------

    async def on_data(self, raw_data: bytes | str) -> None:
        """Each raw message line; by default parses it and calls the hooks below."""
        pending = self._pending
        if pending is not None and pending.raw is raw_data:
            await self._dispatch(pending.value)
            return
        line = raw_data.encode("utf-8") if isinstance(raw_data, str) else raw_data
        doc = decode(line)
        if not isinstance(doc, dict):
            log.warning("on_data: malformed message (%s)", doc.reason)
            return
        await self._dispatch(to_stream_response(doc))

    async def on_tweet(self, tweet: Tweet) -> None:
        """A tweet arrived."""

    async def on_includes(self, includes: dict[str, Any]) -> None:
        """The includes of a message."""

    async def on_errors(self, errors: list[dict[str, Any]]) -> None:
        """The errors of a message."""
        log.error("Received errors: %s", errors)

    async def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        """The rules a filtered-stream tweet matched."""

    async def on_response(self, response: StreamResponse) -> None:
        """Every parsed message, after the hooks above."""
        log.debug("Received response: %s", response)

    async def on_closed(self, response: requests.Response | None) -> None:
        """The server closed the stream (it will be reconnected)."""
        log.error("Stream connection closed by Twitter")

    async def on_connect(self) -> None:
        """A connection answered 200."""
        log.info("Stream connected")

    async def on_connection_error(self) -> None:
        """The connection failed or stalled (it will be reconnected)."""
        log.error("Stream connection has errored or timed out")

    async def on_disconnect(self) -> None:
        """The run is over; called once, last."""
        log.info("Stream disconnected")

    async def on_exception(self, exception: Exception) -> None:
        """The run ends with ``exception`` (a hook raised, a fatal status, retries ran out)."""
        log.error("Stream encountered an exception: %s", exception, exc_info=exception)

    async def on_keep_alive(self) -> None:
        """A keep-alive arrived."""
        log.debug("Received keep-alive signal")

    async def on_request_error(self, status_code: int) -> None:
        """The server answered ``status_code`` instead of 200."""
        log.error("Stream encountered HTTP error: %d", status_code)

    async def on_event(self, event: StreamEvent) -> None:
        """Any other lifecycle event (reconnect scheduled, malformed message …); rxtweet only."""
        log.debug("Stream event: %r", event)
