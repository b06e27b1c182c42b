"""The NATS JetStream adapter: publish a stream's messages once, consume them on many workers.

Everything engine-specific lives here; the engine-neutral pieces (message ids, subjects,
parsing per kind) are in :mod:`rxtweet.nats.messages`. The client is ``nats-py`` (asyncio
only): each publish or consume subscription runs it on a private loop thread
(:class:`~rxtweet.nats.loop.LoopThread`), so neither the stream's reader thread nor the
subscriber needs asyncio. ``nats-py`` is imported when a subscription starts, not with this
module (``pip install rxtweet[nats]``).

**Publishing** (:class:`JetStreamPublisher`, made by :func:`rxtweet.nats.publish`): each
message's raw line, unchanged, with ``Nats-Msg-Id`` = its identity (the tweet id ...), so
JetStream drops the copies a backfill, a redundant connection or a second ingest process
sends within the stream's duplicate window. Publishes are pipelined: up to ``max_pending``
wait for the server's ack while more are sent; when that many are un-acked (NATS slow or
down) and ``max_pending`` more wait to be sent, the reader thread blocks (``"block"`` of
:class:`~rxtweet.handoff.Handoff`): TCP pushes back on X, memory stays bounded. A message
counts as delivered only when the server acked it; one whose ack does not come within
``ack_timeout`` (the connection dropped, the server restarted) or that the server refused
for a while (503: no JetStream leader yet; 409 "duplicate message id is in process", a
re-send that came before the first copy was stored; "too many requests") is sent again with
the same id, so a retry of a message that was stored after all is dropped as a duplicate. A
refusal that is not temporary (another 4xx) ends the stream with :class:`PublishError`:
nothing is dropped silently.

**Consuming** (:func:`consume`): a durable pull consumer, shared by every process that names
the same ``durable`` (each message goes to one of them). A message is acked after the
subscriber's ``on_next`` returns; if it raises, the message is nak'ed with ``nak_delay`` and
redelivered (to this worker or another), and after ``max_deliver`` deliveries it is
terminated (logged at ERROR, counted as dead-lettered). A worker that dies leaves its
un-acked messages to the others after ``ack_wait``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from ..events import MalformedMessage
from ..handoff import EMPTY, Handoff
from ..http import redact_url
from ..parse import Parsed
from .loop import LoopThread
from .messages import (
    DEFAULT_SUBJECT,
    KIND_HEADER,
    KINDS,
    endpoint_of,
    message_id_for,
    parser_for,
    subject_for,
)

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_STREAM_NAME",
    "ConsumeStats",
    "Consumption",
    "JetStreamPublisher",
    "PublishError",
    "PublishStats",
    "consume",
    "require_nats",
]

log = logging.getLogger(__name__)

#: The JetStream stream's name when none is given.
DEFAULT_STREAM_NAME: Final = "RXTWEET"
#: Seconds: X's backfill reaches 5 minutes back; 6 minutes cover it and the reconnect.
DEFAULT_DUPLICATE_WINDOW: Final = 360.0
#: Un-acked publishes at most (and as many again waiting to be sent).
DEFAULT_MAX_PENDING: Final = 1024
#: Seconds without the server's ack before a publish is sent again.
DEFAULT_ACK_TIMEOUT: Final = 5.0
#: How long closing waits for the acks of what was already sent, in seconds.
DEFAULT_CLOSE_TIMEOUT: Final = 5.0
#: The first wait before re-sending a message the server refused for now (503), seconds.
_RETRY_DELAY: Final = 0.25
_MAX_RETRY_DELAY: Final = 2.0
#: JetStream's "not now" answers under 500 (``err_code``), re-sent like a 503: 10158, a
#: publish with this message id is still being stored (after a leader change, a re-send can
#: come before the first copy is applied; it is answered as a duplicate once it is), and
#: 10167, the stream's ingest queue is full (the message was not stored).
_NOT_NOW: Final = frozenset({10158, 10167})

_INSTALL_HINT: Final = "rxtweet.nats needs nats-py: pip install rxtweet[nats]"


class PublishError(Exception):
    """JetStream refused a message for good (not a temporary 5xx refusal): ``code`` and
    ``err_code`` are the server's, ``description`` its text."""

    def __init__(self, code: int, err_code: int | None, description: str) -> None:
        super().__init__(f"JetStream refused a message: {code} {description} (err {err_code})")
        self.code = code
        self.err_code = err_code
        self.description = description


def require_nats() -> Any:
    """The ``nats`` module.

    Raises:
        ImportError: nats-py is not installed (the message says how to install it).
    """
    try:
        import nats
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return nats


def _server_list(servers: str | Sequence[str]) -> list[str]:
    listed = [servers] if isinstance(servers, str) else list(servers)
    result = [s.strip() for item in listed for s in item.split(",") if s.strip()]
    if not result:
        raise ValueError("servers: at least one NATS URL, e.g. nats://127.0.0.1:4222")
    return result


def check_name(what: str, name: str) -> str:
    """``name`` if JetStream can take it as a stream's or a durable consumer's name (it
    becomes a token of API subjects: no ``.``, ``*``, ``>``, whitespace, control
    characters or path separators, and not empty).

    Raises:
        ValueError: it cannot.
    """
    if (
        not isinstance(name, str)
        or not name
        or any(c in name for c in ".*>/\\")
        or any(c.isspace() or not c.isprintable() for c in name)
    ):
        raise ValueError(
            f"{what} {name!r} is not a valid JetStream name: no '.', '*', '>', '/', '\\', "
            "whitespace or control characters, not empty"
        )
    return name


def _shown(servers: Sequence[str]) -> str:
    # A URL may carry user:password: never in a log line or an exception message.
    return ", ".join(redact_url(s) for s in servers)


async def _connect(servers: list[str], name: str, timeout: float) -> NatsClient:
    """Connected within ``timeout`` s (the client retries a lost connection forever, so
    its first attempts are bounded here), reconnecting for ever after.

    Raises:
        ConnectionError: no server answered within ``timeout``.
    """
    nats = require_nats()
    shown = _shown(servers)

    async def on_error(error: Exception) -> None:
        log.debug("nats %s: %r", shown, error)

    clients: list[NatsClient] = []

    async def on_disconnected() -> None:
        if clients and clients[0].is_closed:
            return  # closed on purpose, not lost
        log.warning("nats: disconnected from %s; reconnecting", shown)

    async def on_reconnected() -> None:
        log.warning("nats: reconnected to %s", shown)

    try:
        connecting = nats.connect(
            servers=servers,
            name=name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # a server restart must not end the stream
            reconnect_time_wait=0.2,
            connect_timeout=2,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            # Messages published while reconnecting wait in this buffer; ours are bounded by
            # max_pending anyway (and re-sent if lost), so a larger one just avoids errors.
            pending_size=64 * 1024 * 1024,
        )
        client: NatsClient = await asyncio.wait_for(connecting, timeout)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is told the same way
        raise ConnectionError(f"cannot connect to NATS at {shown}: {exc!r}") from None
    clients.append(client)
    return client


def _stream_subjects(template: str) -> str:
    """What a stream made for ``template`` listens to: each field becomes ``*``
    (``x.{stream}.{partition}`` -> ``x.*.*``), so every endpoint and partition fits."""
    return template.format(stream="*", partition="*")


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subject: str,
    subjects: str,
    *,
    duplicate_window: float,
    replicas: int,
    create: bool,
) -> None:
    """Make sure the stream ``name`` exists and takes ``subject``.

    Created with ``subjects``, file storage, ``duplicate_window`` and ``replicas`` when
    missing (and ``create``); an existing stream that does not take ``subject`` gets
    ``subjects`` added. An existing stream's other settings are kept (a shorter duplicate
    window than asked for is logged).

    Raises:
        LookupError: the stream is missing and ``create`` is false.
    """
    from nats.js.api import StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(name)
    except NotFoundError:
        if not create:
            raise LookupError(f"JetStream stream {name!r} does not exist") from None
        config = StreamConfig(
            name=name,
            subjects=[subjects],
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=duplicate_window,
        )
        try:
            await js.add_stream(config)
            log.info("created JetStream stream %s (%s, R%d)", name, subjects, replicas)
            return
        except Exception as exc:  # noqa: BLE001 - another process may have created it: look again
            try:
                info = await js.stream_info(name)
            except NotFoundError:
                raise exc from None  # the cause: subjects overlapping another stream's ...
    config = info.config
    window = config.duplicate_window or 0.0
    if window + 1e-3 < duplicate_window:
        log.warning(
            "JetStream stream %s has a %.0f s duplicate window, shorter than %.0f s: "
            "duplicates further apart are stored twice",
            name,
            window,
            duplicate_window,
        )
    if not _takes(config.subjects or [], subject):
        config.subjects = [*(config.subjects or []), subjects]
        await js.update_stream(config)
        log.info("JetStream stream %s now also takes %s", name, subjects)


def _takes(patterns: list[str], subject: str) -> bool:
    """Whether a subject matches one of the patterns (NATS wildcards ``*`` and ``>``)."""
    tokens = subject.split(".")
    for pattern in patterns:
        parts = pattern.split(".")
        for index, part in enumerate(parts):
            if part == ">":
                if len(tokens) > index:
                    return True
                break
            if index >= len(tokens) or (part != "*" and part != tokens[index]):
                break
        else:
            if len(parts) == len(tokens):
                return True
    return False


# -- publishing ---------------------------------------------------------------------------


@dataclass
class PublishStats:
    """The counts of a :class:`JetStreamPublisher` (all its subscriptions together).

    Attributes:
        published: messages the server acked as stored (new).
        duplicates: messages the server acked as duplicates of one stored within the
            duplicate window (a backfill's or a redundant connection's copy; also a retry of
            a message whose first ack was lost).
        retried: re-sends (no ack within ``ack_timeout``, or a temporary refusal).
        handed: messages handed to the publisher (by the stream's reader thread).
        unconfirmed: messages given up at close without an ack (``close_timeout`` passed):
            they may or may not be in the stream, and are logged.

    Updated on the publisher's loop thread; read them from any thread.
    """

    published: int = 0
    duplicates: int = 0
    retried: int = 0
    handed: int = 0
    unconfirmed: int = 0

    @property
    def pending(self) -> int:
        """Messages handed over and not acked yet (sent or waiting to be sent)."""
        return self.handed - self.published - self.duplicates - self.unconfirmed

    @property
    def acked(self) -> int:
        """``published + duplicates``: messages the server confirmed."""
        return self.published + self.duplicates

    def snapshot(self) -> dict[str, int]:
        """The counts as a dict."""
        return {
            "published": self.published,
            "duplicates": self.duplicates,
            "retried": self.retried,
            "handed": self.handed,
            "pending": self.pending,
            "unconfirmed": self.unconfirmed,
        }


class _Pending:
    __slots__ = ("headers", "raw", "sent_at")

    def __init__(self, raw: bytes, headers: dict[str, str]) -> None:
        self.raw = raw
        self.headers = headers
        self.sent_at = 0.0


class _PublishSession:
    """One subscription's connection and pipeline (see :class:`JetStreamPublisher`)."""

    def __init__(self, publisher: JetStreamPublisher, subject: str, kind: str) -> None:
        self.publisher = publisher
        self.stats = publisher.stats
        self.subject = subject
        self.kind = kind
        self.handoff: Handoff[_Pending] = Handoff(
            publisher.max_pending, "block", name="nats.publish", stuck=self._stuck
        )
        self.inflight: dict[str, _Pending] = {}  # reply token -> message; loop thread only
        self.retries: deque[tuple[float, _Pending]] = deque()  # (when, message)
        self.fatal: BaseException | None = None
        # Told (on the loop thread) when publishing fails for good, so the subscriber
        # learns it even if the stream sends nothing more (a quiet or unreachable X).
        self.on_fatal: Callable[[BaseException], None] | None = None
        self.done = threading.Event()  # the pump has ended (drained, failed or closed)
        self.closing = False
        self.loop = LoopThread("rxtweet-nats-publish")
        self.wake: asyncio.Event | None = None
        self.nonce = os.urandom(6).hex()
        self.sequence = itertools.count(1)
        self.client: NatsClient | None = None
        self.future = self.loop.submit(self._main())

    # -- reader thread ------------------------------------------------------------------

    def _stuck(self) -> Exception | None:
        fatal = self.fatal
        if fatal is not None:
            return fatal if isinstance(fatal, Exception) else RuntimeError(str(fatal))
        return None

    def put(self, raw: bytes, message_id: str | None) -> None:
        """Queue one message; blocks while ``max_pending`` wait; raises the fatal error."""
        if self.fatal is not None:
            raise self._stuck()  # type: ignore[misc]
        if message_id is None:
            # No identity (a system message): unique per publish, so that only a retry of
            # this very message can be taken for a duplicate.
            message_id = f"{self.nonce}.{next(self.sequence)}"
        pending = _Pending(raw, {"Nats-Msg-Id": message_id, KIND_HEADER: self.kind})
        self.stats.handed += 1
        if self.handoff.put(pending):
            self._poke()

    def _poke(self) -> None:
        wake = self.wake
        if wake is not None:
            self.loop.call_soon(wake.set)

    def finish(self, timeout: float | None) -> BaseException | None:
        """The source ended: wait (up to ``timeout``, ``None``: until done) for every
        message's ack; the fatal error if publishing failed."""
        self.handoff.finish(None)
        self._poke()
        self.done.wait(timeout)
        return self.fatal

    def close(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the acks of what was handed over, then close."""
        if not self.done.is_set():
            self.handoff.finish(None)
            self._poke()
            if not self.loop.on_loop:
                self.done.wait(timeout)
        self.closing = True
        self.handoff.close()  # a producer still blocked gets out
        self._poke()
        if not self.loop.on_loop:
            try:
                self.future.result(timeout=2.0)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                self.future.cancel()
            except Exception:
                log.debug("nats.publish: the session ended with an error", exc_info=True)
        self.loop.stop()

    # -- loop thread ----------------------------------------------------------------------

    async def _main(self) -> None:
        publisher = self.publisher
        self.wake = asyncio.Event()
        try:
            self.client = await _connect(
                publisher.servers, "rxtweet-publish", publisher.connect_timeout
            )
            js = self.client.jetstream()
            await ensure_stream(
                js,
                publisher.stream_name,
                self.subject,
                _stream_subjects(publisher.subject),
                duplicate_window=publisher.duplicate_window,
                replicas=publisher.replicas,
                create=publisher.create_stream,
            )
            inbox = self.client.new_inbox()
            self.prefix = f"{inbox}."
            await self.client.subscribe(f"{inbox}.*", cb=self._on_ack)
            await self._pump()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the subscriber is told (fatal)
            self.fatal = exc
            log.error("nats.publish: %s", exc)
            self.handoff.close()
            self._tell_fatal(exc)
        finally:
            self._give_up()
            self.done.set()
            if self.client is not None:
                try:
                    await asyncio.wait_for(self.client.close(), 1.0)
                except Exception:
                    log.debug("nats.publish: close failed", exc_info=True)

    def _tell_fatal(self, error: BaseException) -> None:
        if self.on_fatal is not None and not self.closing:
            self.on_fatal(error)

    def _give_up(self) -> None:
        lost = len(self.inflight) + len(self.retries) + len(self.handoff)
        if lost and self.fatal is None:
            log.warning("nats.publish: closed with %d message(s) not confirmed by the server", lost)
        self.stats.unconfirmed += lost
        self.inflight.clear()
        self.retries.clear()

    async def _pump(self) -> None:
        client = self.client
        assert client is not None and self.wake is not None
        wake = self.wake
        loop = asyncio.get_running_loop()
        handoff = self.handoff
        inflight = self.inflight
        retries = self.retries
        limit = self.publisher.max_pending
        ack_timeout = self.publisher.ack_timeout
        tick = min(0.25, ack_timeout / 4)
        tokens = itertools.count(1)
        subject = self.subject

        async def send(pending: _Pending) -> None:
            token = str(next(tokens))
            pending.sent_at = time.monotonic()
            inflight[token] = pending
            try:
                await client.publish(
                    subject, pending.raw, reply=self.prefix + token, headers=pending.headers
                )
            except Exception as exc:  # noqa: BLE001 - no ack will come: re-sent after ack_timeout
                log.debug("nats.publish: a publish failed (%r); it will be sent again", exc)

        while not self.closing and self.fatal is None:
            now = time.monotonic()
            # What waited too long for its ack goes again (oldest first: dict order is send
            # order, and a re-send is a new entry at the end).
            while inflight:
                token, pending = next(iter(inflight.items()))
                if now - pending.sent_at < ack_timeout:
                    break
                del inflight[token]
                retries.append((now, pending))
            if client.is_connected:
                while retries and len(inflight) < limit and retries[0][0] <= now:
                    _, pending = retries.popleft()
                    self.stats.retried += 1
                    await send(pending)
                # Refused messages waiting to go again count: un-acked is un-acked.
                while len(inflight) + len(retries) < limit:
                    item = handoff.pop()
                    if item is EMPTY:
                        break
                    await send(item)  # type: ignore[arg-type]
            if not inflight and not retries and not len(handoff) and handoff.terminal is not None:
                return  # everything handed over was acked
            wake.clear()
            timer = loop.call_later(tick, wake.set)
            await wake.wait()
            timer.cancel()

    async def _on_ack(self, msg: Msg) -> None:
        pending = self.inflight.pop(msg.subject[len(self.prefix) :], None)
        if pending is None:
            return  # the ack of a message already re-sent (or given up)
        headers = msg.headers
        status = headers.get("Status") if headers else None
        if status is not None:  # 503 no responders: the stream is not there (yet)
            self._retry_later(pending, f"status {status}")
            return
        # Whatever the answer, the message ends up retried, counted or failing the stream:
        # this runs as nats-py's callback, which would only log an exception at DEBUG, and
        # the message has already left inflight.
        try:
            answer = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            answer = None
        if type(answer) is not dict:  # not JetStream's PubAck: not an answer about it
            log.warning("nats.publish: an ack that is not a JSON object; the message goes again")
            self._retry_later(pending, "an unreadable ack")
            return
        error = answer.get("error")
        if error is not None:
            refusal = _refusal(error)
            if refusal is None:
                self._retry_later(pending, f"{error.get('code')} {error.get('err_code')}")
                return
            self.fatal = refusal
            self.stats.unconfirmed += 1
            log.error("nats.publish: %s", self.fatal)
            self.handoff.close()
            self._tell_fatal(self.fatal)
        elif answer.get("duplicate"):
            self.stats.duplicates += 1
        else:
            self.stats.published += 1
        if self.wake is not None:
            self.wake.set()

    def _retry_later(self, pending: _Pending, why: str) -> None:
        waited = len(self.retries)
        delay = min(_MAX_RETRY_DELAY, _RETRY_DELAY * (1 + waited // 100))
        log.debug("nats.publish: the server refused a message for now (%s); again later", why)
        self.retries.append((time.monotonic() + delay, pending))
        if self.wake is not None:
            self.wake.set()


class JetStreamPublisher:
    """Publishes stream messages to a JetStream stream (made by :func:`rxtweet.nats.publish`).

    :meth:`publish` gives a stream object's items, passing through after each message was
    handed to the publisher; subscribing it connects to NATS and opens the stream's
    connection. Each subscription has its own NATS connection and loop thread; :attr:`stats`
    counts for all of them.

    Threads: items are handed over on the stream's reader thread, which blocks when
    ``max_pending`` messages are un-acked and ``max_pending`` more wait (back-pressure);
    acks are read on the subscription's loop thread (``rxtweet-nats-publish``).

    Completion: when the stream ends, the subscriber's ``on_completed`` (or ``on_error``)
    comes after every message handed over was acked, or with :class:`PublishError` if the
    server refused one for good. Disposal: waits up to ``close_timeout`` s for the acks of
    what was handed over, then closes the NATS connection; messages still un-acked then
    are counted in ``stats.unconfirmed`` and logged.

    Errors: a failed first connection ends the subscription with ``ConnectionError``; later
    disconnections are retried forever (the reader is held back meanwhile).
    """

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        subject: str = DEFAULT_SUBJECT,
        stream_name: str = DEFAULT_STREAM_NAME,
        create_stream: bool = True,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
        max_pending: int = DEFAULT_MAX_PENDING,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        replicas: int = 1,
        kind: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.servers = _server_list(servers)
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive int, not {max_pending!r}")
        if not duplicate_window > 0:
            raise ValueError(f"duplicate_window must be > 0 seconds, not {duplicate_window!r}")
        if not ack_timeout > 0:
            raise ValueError(f"ack_timeout must be > 0 seconds, not {ack_timeout!r}")
        if replicas not in (1, 3, 5):
            raise ValueError(f"replicas must be 1, 3 or 5, not {replicas!r}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        _stream_subjects(subject)  # a bad template fails now
        check_name("stream_name", stream_name)
        self.subject = subject
        self.stream_name = stream_name
        self.create_stream = create_stream
        self.duplicate_window = float(duplicate_window)
        self.max_pending = max_pending
        self.ack_timeout = float(ack_timeout)
        self.close_timeout = float(close_timeout)
        self.replicas = replicas
        self.kind = kind
        self.connect_timeout = float(connect_timeout)
        #: The counts of every subscription (:class:`PublishStats`).
        self.stats = PublishStats()

    def __repr__(self) -> str:
        return (
            f"<JetStreamPublisher {_shown(self.servers)} stream={self.stream_name!r} "
            f"subject={self.subject!r} {self.stats.snapshot()}>"
        )

    def publish(self, stream: Any) -> Observable[Any]:
        """``stream.items`` (a :class:`~rxtweet.substreams.Substreams`'s), each message
        published on the way through; see the class for completion and disposal. The
        stream object gets the attribute ``publish_stats`` (this publisher's :attr:`stats`).

        Raises:
            ValueError: the subject template gives an invalid subject for this stream.
        """
        source = endpoint_of(stream, self.kind)
        subject = subject_for(self.subject, source)
        message_id = message_id_for(source.kind)
        items: Observable[Any] = stream.items
        # A stream type with __slots__ cannot take it: the publisher has the counts anyway.
        with contextlib.suppress(AttributeError):
            stream.publish_stats = self.stats

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            # One notification at a time, none after the end: the end may come from the
            # reader thread or (a fatal failure) from the session's.
            lock = threading.Lock()
            ended = [False]
            upstream = SingleAssignmentDisposable()

            def on_fatal(error: BaseException) -> None:
                failure = error if isinstance(error, Exception) else RuntimeError(str(error))

                def tell() -> None:
                    upstream.dispose()  # the reader stops; a blocked put() already raised
                    with lock:
                        if ended[0]:
                            return
                        ended[0] = True
                        observer.on_error(failure)

                # Not on the loop thread: disposing the stream may wait for its reader.
                threading.Thread(target=tell, name="rxtweet-nats-publish-end", daemon=True).start()

            session = _PublishSession(self, subject, source.kind)
            session.on_fatal = on_fatal
            put = session.put

            def on_next(item: Any) -> None:
                if type(item) is Parsed:
                    put(item.raw, message_id(item.value))
                with lock:
                    if not ended[0]:
                        observer.on_next(item)

            def on_error(error: Exception) -> None:
                session.finish(self.close_timeout)
                with lock:
                    if not ended[0]:
                        ended[0] = True
                        observer.on_error(error)

            def on_completed() -> None:
                failure = session.finish(None)
                with lock:
                    if ended[0]:
                        return
                    ended[0] = True
                    if failure is not None:
                        observer.on_error(
                            failure if isinstance(failure, Exception) else RuntimeError(failure)
                        )
                    else:
                        observer.on_completed()

            upstream.disposable = items.subscribe(
                on_next, on_error, on_completed, scheduler=scheduler
            )

            def dispose() -> None:
                upstream.dispose()
                session.close(self.close_timeout)

            return Disposable(dispose)

        return Observable(subscribe)


# -- consuming ----------------------------------------------------------------------------


@dataclass
class ConsumeStats:
    """The counts of a :class:`Consumption` (all its subscriptions together).

    Attributes:
        delivered: messages fetched (redeliveries included).
        acked: messages whose ``on_next`` returned (acked).
        nacked: messages whose ``on_next`` raised, nak'ed for redelivery.
        dead_lettered: messages terminated: ``on_next`` raised at the ``max_deliver``-th
            delivery, or the line could not be parsed (also in ``malformed``).
        malformed: stored lines that are not a message of the stream's kind.
    """

    delivered: int = 0
    acked: int = 0
    nacked: int = 0
    dead_lettered: int = 0
    malformed: int = 0

    def snapshot(self) -> dict[str, int]:
        """The counts as a dict."""
        return {
            "delivered": self.delivered,
            "acked": self.acked,
            "nacked": self.nacked,
            "dead_lettered": self.dead_lettered,
            "malformed": self.malformed,
        }


@dataclass(frozen=True)
class _ConsumeOptions:
    servers: list[str]
    stream_name: str
    durable: str
    subject: str | None
    batch: int
    ack_wait: float
    max_deliver: int
    nak_delay: float
    kind: str
    fetch_timeout: float
    connect_timeout: float


class Consumption(Observable[Parsed[Any]]):
    """The cold Observable :func:`consume` returns, with :attr:`stats`
    (:class:`ConsumeStats`) counting over its subscriptions."""

    def __init__(self, options: _ConsumeOptions) -> None:
        self.options = options
        self.stats = ConsumeStats()
        super().__init__(self._subscribe)

    def __repr__(self) -> str:
        o = self.options
        return (
            f"<Consumption {_shown(o.servers)} stream={o.stream_name!r} durable={o.durable!r} "
            f"{self.stats.snapshot()}>"
        )

    def _subscribe(
        self, observer: abc.ObserverBase[Parsed[Any]], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        worker = _ConsumeWorker(self.options, self.stats, observer)
        return Disposable(worker.dispose)


class _ConsumeWorker:
    """One subscription: a loop thread for I/O and a thread calling the observer."""

    def __init__(
        self, options: _ConsumeOptions, stats: ConsumeStats, observer: abc.ObserverBase[Any]
    ) -> None:
        self.options = options
        self.stats = stats
        self.observer = observer
        self.stopped = threading.Event()
        self.fetching: concurrent.futures.Future[Any] | None = None
        self.parsers = {kind: parser_for(kind) for kind in KINDS}
        # The durable's own max_deliver decides when the server stops redelivering (an
        # existing durable shared as it is may have another); <= 0: no limit.
        self.max_deliver = options.max_deliver
        self.thread = threading.Thread(target=self._run, name="rxtweet-nats-consume", daemon=True)
        self.thread.start()

    def dispose(self) -> None:
        """Stop fetching and close the connection (waits up to 1 s, not from ``on_next``)."""
        self.stopped.set()
        fetching = self.fetching
        if fetching is not None:
            fetching.cancel()
        if threading.current_thread() is not self.thread:
            self.thread.join(1.0)

    def _run(self) -> None:
        options = self.options
        loop = LoopThread("rxtweet-nats-consume-io")
        client: NatsClient | None = None
        try:
            try:
                client, subscription = loop.submit(self._bind()).result()
            except Exception as exc:  # noqa: BLE001 - the subscriber is told
                if not self.stopped.is_set():
                    self.observer.on_error(exc)
                return
            client_ref = client
            while not self.stopped.is_set():
                fetching = loop.submit(subscription.fetch(options.batch, options.fetch_timeout))
                self.fetching = fetching
                if self.stopped.is_set():
                    fetching.cancel()
                try:
                    messages = fetching.result()
                except concurrent.futures.CancelledError:
                    break
                except Exception as exc:  # noqa: BLE001 - no message yet, or reconnecting
                    if not _is_timeout(exc):
                        log.debug("nats.consume: fetch failed: %r", exc)
                        self.stopped.wait(0.1)
                    continue
                for index, msg in enumerate(messages):
                    if self.stopped.is_set():
                        # Not handled: back to the others at once, not after ack_wait.
                        for rest in messages[index:]:
                            loop.submit(rest.nak())
                        break
                    self._handle(loop, msg)
            del client_ref
        finally:
            if client is not None:
                try:
                    loop.submit(_close(client)).result(0.8)
                except Exception:
                    log.debug("nats.consume: close failed", exc_info=True)
            loop.stop(0.2)

    async def _bind(self) -> tuple[NatsClient, Any]:
        from nats.js.api import AckPolicy, ConsumerConfig
        from nats.js.errors import APIError

        options = self.options
        client = await _connect(
            options.servers, f"rxtweet-consume-{options.durable}", options.connect_timeout
        )
        js = client.jetstream()
        config = ConsumerConfig(
            durable_name=options.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=options.ack_wait,
            max_deliver=options.max_deliver,
            filter_subject=options.subject,
        )
        try:
            await js.add_consumer(options.stream_name, config)
        except APIError as exc:
            # It exists with other settings (an older ack_wait ...): share it as it is.
            try:
                info = await js.consumer_info(options.stream_name, options.durable)
            except Exception:  # noqa: BLE001 - it does not exist: the first error is the cause
                await client.close()
                raise exc from None
            self.max_deliver = info.config.max_deliver or -1
            log.warning(
                "nats.consume: durable %s exists with other settings; using them "
                "(max_deliver %d) (%s)",
                options.durable,
                self.max_deliver,
                exc.description,
            )
        subscription = await js.pull_subscribe_bind(
            durable=options.durable, stream=options.stream_name
        )
        return client, subscription

    def _handle(self, loop: LoopThread, msg: Msg) -> None:
        stats = self.stats
        stats.delivered += 1
        headers = msg.headers
        kind = (headers.get(KIND_HEADER) if headers else None) or self.options.kind
        parse = self.parsers.get(kind) or self.parsers[self.options.kind]
        parsed = parse(msg.data)
        if type(parsed) is MalformedMessage:
            stats.malformed += 1
            stats.dead_lettered += 1
            log.error(
                "nats.consume: a stored line is not a %s message (%s); terminated",
                kind,
                parsed.reason,
            )
            loop.submit(msg.term())
            return
        try:
            self.observer.on_next(parsed)
        except Exception as exc:  # noqa: BLE001 - at-least-once: redeliver, then dead-letter
            delivered = msg.metadata.num_delivered or 1
            if 0 < self.max_deliver <= delivered:
                stats.dead_lettered += 1
                log.error(
                    "nats.consume: a message failed %d time(s), the last with %r; "
                    "terminated (dead-lettered), stream sequence %s",
                    delivered,
                    exc,
                    msg.metadata.sequence.stream if msg.metadata.sequence else "?",
                )
                loop.submit(msg.term())
            else:
                stats.nacked += 1
                log.warning(
                    "nats.consume: on_next raised %r (delivery %d of %d); redelivered in %g s",
                    exc,
                    delivered,
                    self.max_deliver,
                    self.options.nak_delay,
                )
                loop.submit(msg.nak(delay=self.options.nak_delay))
            return
        stats.acked += 1
        loop.submit(msg.ack())


def _refusal(error: object) -> PublishError | None:
    """The :class:`PublishError` an ack's ``error`` object stands for, or ``None`` when it
    says "not now" (the message is sent again with its id): a 5xx, no code (or none that
    reads as a number), or an ``err_code`` of :data:`_NOT_NOW`. An ``error`` that is not
    an object is a refusal of no known shape."""
    if type(error) is not dict:
        return PublishError(0, None, f"an error of no known shape: {error!r:.200}")
    code = _number(error.get("code"))
    err_code = _number(error.get("err_code"))
    if code is None or code == 0 or code >= 500 or err_code in _NOT_NOW:
        return None
    return PublishError(code, err_code, str(error.get("description"))[:200])


def _number(value: object) -> int | None:
    """A code of JetStream's answer as an int (it sends ints; a whole float or a string of
    up to 9 ASCII digits is read as one), else ``None``. Never raises: ``str.isdigit`` also
    takes "²", which ``int`` refuses, and ``int`` refuses a string of over 4,300 digits."""
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is str:
        digits = value.strip()
        if digits.isascii() and digits.isdigit() and len(digits) <= 9:
            return int(digits)
        return None
    return value if type(value) is int else None


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.TimeoutError | TimeoutError)


async def _close(client: NatsClient) -> None:
    try:
        await client.flush(timeout=1)  # the last acks go out before the connection ends
    except Exception:
        log.debug("nats.consume: flush failed", exc_info=True)
    await client.close()


def consume(
    servers: str | Sequence[str],
    *,
    stream_name: str = DEFAULT_STREAM_NAME,
    durable: str,
    subject: str | None = None,
    batch: int = 50,
    ack_wait: float = 30.0,
    max_deliver: int = 5,
    nak_delay: float = 1.0,
    kind: str = "tweets",
    fetch_timeout: float = 0.5,
    connect_timeout: float = 5.0,
) -> Consumption:
    """Items of a durable JetStream pull consumer as a cold ``Observable[Parsed]``.

    Each subscription connects, creates the durable consumer ``durable`` on ``stream_name``
    if it does not exist (explicit acks, ``ack_wait``, ``max_deliver``, only ``subject``
    when given; see below for an existing one), and fetches ``batch`` messages at a
    time. Every process (or subscription) naming the same ``durable`` shares its messages.
    An existing durable is updated to these settings where JetStream allows it (the last
    worker to start wins); where it does not (a setting that cannot change), it is shared
    as it is, and its own ``max_deliver`` decides dead-lettering.

    Each message becomes ``Parsed(model, raw)`` with the models of a live stream of its kind
    (the ``Rxtweet-Kind`` header the publisher sets, else ``kind``), so the operator chains
    of a live stream run unchanged (``ops.map(lambda p: p.value)`` ...).

    Delivery: at least once. ``on_next`` runs on the subscription's thread
    (``rxtweet-nats-consume``), one message at a time; the message is acked when it returns.
    If it raises, the message is nak'ed to come back after ``nak_delay`` s; at the
    ``max_deliver``-th delivery it is terminated instead (logged at ERROR, counted in
    ``stats.dead_lettered``). The Observable does not end for that. Keep
    ``ack_wait`` above ``batch`` times the time one message takes, or messages waiting in a
    batch are redelivered to others meanwhile.

    Disposal stops fetching, hands the messages not handled yet back (nak) and closes the
    connection within about 1 s. No server reached within ``connect_timeout`` s is told as
    ``on_error`` (``ConnectionError``); later disconnections are retried forever.
    ``fetch_timeout`` is how long one fetch waits for messages (it bounds nothing else).

    Raises:
        ValueError: a bad ``batch``, ``ack_wait``, ``max_deliver`` or ``kind``.
        ImportError: nats-py is missing (``pip install rxtweet[nats]``).
    """
    require_nats()
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, not {batch!r}")
    if not ack_wait > 0:
        raise ValueError(f"ack_wait must be > 0 seconds, not {ack_wait!r}")
    if isinstance(max_deliver, bool) or not isinstance(max_deliver, int) or max_deliver < 1:
        raise ValueError(f"max_deliver must be a positive int, not {max_deliver!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    check_name("stream_name", stream_name)
    check_name("durable", durable)
    options = _ConsumeOptions(
        servers=_server_list(servers),
        stream_name=stream_name,
        durable=durable,
        subject=subject,
        batch=batch,
        ack_wait=float(ack_wait),
        max_deliver=max_deliver,
        nak_delay=float(nak_delay),
        kind=kind,
        fetch_timeout=float(fetch_timeout),
        connect_timeout=float(connect_timeout),
    )
    return Consumption(options)
