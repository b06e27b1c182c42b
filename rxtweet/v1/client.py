"""API v1.1: :class:`Stream`, tweepy's ``Stream`` with a reactive face.

Reactive::

    client = Stream(consumer_key, consumer_secret, access_token, access_token_secret)
    stream = client.filter_stream(track=["python"])
    stream.statuses.pipe(ops.take(100)).subscribe(lambda s: print(s.id, s.full_text))

tweepy::

    class IDPrinter(Stream):
        def on_status(self, status):
            print(status.id)

    IDPrinter(consumer_key, consumer_secret, access_token, access_token_secret).sample()

Both faces run on the same machinery as API v2 (:class:`~rxtweet.connection.Connection`:
transport, reconnects, parsing, one shared connection); the v1.1 parts are the request
(OAuth 1.0a, :mod:`rxtweet.v1.oauth`; a form body for ``statuses/filter``), the message
types (:mod:`rxtweet.v1.models`, :func:`rxtweet.v1.convert.to_v1_message`) and two small
line-level operators (:mod:`rxtweet.v1.framing`):

* :func:`~rxtweet.v1.framing.length_delimited` for ``delimited=length`` framing;
* a guard that ends the stream (without reconnecting) on the disconnect codes that a
  reconnect cannot cure, see :attr:`Stream.fatal_disconnect_codes`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from typing import Any, Final, Literal, Unpack

from reactivex import abc

from ..basestream import BaseStream
from ..connection import Connection
from ..credentials import clean_credential
from ..events import UnknownMessage
from ..http import StreamRequest
from ..reconnect import ReconnectPolicy
from ..transport_base import Transport, TransportOptionsKw
from .convert import _watching_unknown, is_v1_data, to_v1_message
from .framing import DelimitedStats, _v1_framing
from .models import (
    DeleteNotice,
    DisconnectNotice,
    LimitNotice,
    ScrubGeoNotice,
    StallWarning,
    Status,
    StatusWithheldNotice,
    UserWithheldNotice,
    V1Message,
)
from .oauth import _QuietOAuth1
from .params import filter_params, sample_params
from .stream import V1Stream

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_FATAL_DISCONNECT_CODES",
    "DEFAULT_STALL_TIMEOUT",
    "ENDPOINTS",
    "Stream",
]

log = logging.getLogger(__package__)

DEFAULT_BASE_URL: Final = "https://stream.twitter.com"

#: X sends a keep-alive every 30 s on v1.1 and advises reconnecting after 90 s of silence.
DEFAULT_STALL_TIMEOUT: Final = 90.0

#: The v1.1 streaming endpoints by name: (HTTP method, path under the base URL).
ENDPOINTS: Final[dict[str, tuple[Literal["GET", "POST"], str]]] = {
    "sample": ("GET", "/1.1/statuses/sample.json"),
    "filter": ("POST", "/1.1/statuses/filter.json"),
}

#: Disconnect codes after which reconnecting with the same credentials cannot help:
#: 2 "duplicate stream" and 7 "admin logout" (another connection with these credentials
#: took over: reconnecting would throw it off, and it would throw us off, for ever), and
#: 6 "token revoked" (the next connect would only earn a 401).
DEFAULT_FATAL_DISCONNECT_CODES: Final = frozenset({2, 6, 7})


class Stream(BaseStream):
    """Filter and sample realtime statuses with API v1.1 — tweepy's ``Stream``, reactive.

    Change ``import tweepy`` to ``import rxtweet as tweepy`` and tweepy code runs unchanged;
    ``base_url`` points it at a :class:`~rxtweet.testing.FakeStreamServer` or a proxy.
    Requests are signed with OAuth 1.0a (HMAC-SHA1, ``requests_oauthlib.OAuth1``), the
    ``statuses/filter`` form body included; every reconnect is signed afresh.

    Args:
        consumer_key, consumer_secret, access_token, access_token_secret: the app's and the
            user's credentials (never logged, never in a repr or an error message).
            Surrounding whitespace is stripped (a token file saved with CRLF); a credential
            that is empty raises ``TypeError``, one with a control character left inside
            ``ValueError`` (naming its position, never its value).
        base_url: ``https://stream.twitter.com`` by default.
        stall_timeout: seconds without a byte before reconnecting (default
            :data:`DEFAULT_STALL_TIMEOUT`, 90); X sends a keep-alive every 30 s on v1.1.
        transport: where the lines come from (default: ``requests``, see
            :class:`~rxtweet.transport_base.Transport`).
        Others (``chunk_size``, ``connect_timeout``, ``max_line`` …): see
        :class:`~rxtweet.basestream.BaseStream` and
        :class:`~rxtweet.transport_base.TransportOptions`.

    Disconnect messages: every one reaches :meth:`on_disconnect_message` (and
    :attr:`V1Stream.disconnect_messages`). X closes the connection after it; for most
    codes (1 shutdown, 4 stall, 10 stream exception, 11 broker stall, 12 shed load …) the
    stream reconnects as usual. For the codes in :attr:`fatal_disconnect_codes` (2
    duplicate stream, 6 token revoked, 7 admin logout) the stream ends instead, logged at
    ERROR with X's reason and reported as :class:`FatalDisconnect` (``on_exception``, then
    ``on_disconnect``): with 2 and 7 another connection uses the same credentials, and
    reconnecting would throw it off and be thrown off in turn, for ever; after 6 the next
    connect can only fail with 401. tweepy only calls the hook (and reconnects). Set
    ``fatal_disconnect_codes = frozenset()`` on a subclass or an instance for that.
    """

    #: Disconnect codes that end the stream instead of reconnecting (read when a stream is
    #: created; set it on a subclass or an instance).
    fatal_disconnect_codes: frozenset[int] = DEFAULT_FATAL_DISCONNECT_CODES

    def __init__(
        self,
        consumer_key: str,
        consumer_secret: str,
        access_token: str,
        access_token_secret: str,
        *,
        daemon: bool = False,
        max_retries: float = math.inf,
        proxy: str | None = None,
        verify: bool | str = True,
        base_url: str = DEFAULT_BASE_URL,
        reconnect: ReconnectPolicy | None = None,
        scheduler: abc.SchedulerBase | None = None,
        transport: Transport | None = None,
        **options: Unpack[TransportOptionsKw],
    ) -> None:
        credentials = []
        for name, value in (
            ("consumer_key", consumer_key),
            ("consumer_secret", consumer_secret),
            ("access_token", access_token),
            ("access_token_secret", access_token_secret),
        ):
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} must be a non-empty string")
            # Surrounding whitespace (a CRLF file read with $(cat ...)) is stripped; a control
            # character left inside is a ValueError that names the position, not the value.
            credentials.append(clean_credential(name, value))
        options.setdefault("stall_timeout", DEFAULT_STALL_TIMEOUT)
        super().__init__(
            transport=transport,
            daemon=daemon,
            max_retries=max_retries,
            proxy=proxy,
            verify=verify,
            reconnect=reconnect,
            scheduler=scheduler,
            base_url=base_url,
            **options,
        )
        (
            self.consumer_key,
            self.consumer_secret,
            self.access_token,
            self.access_token_secret,
        ) = credentials

    # --- reactive face -----------------------------------------------------------------------

    def filter_stream(
        self,
        *,
        follow: Iterable[int | str] | None = None,
        track: Iterable[str] | None = None,
        locations: Iterable[float] | None = None,
        filter_level: str | None = None,
        languages: Iterable[str] | None = None,
        stall_warnings: bool = False,
        delimited: str | None = None,
    ) -> V1Stream:
        """``POST /1.1/statuses/filter.json`` as a :class:`V1Stream` (see :func:`filter_params`
        for the arguments and their checks). Nothing connects until something subscribes."""
        params = filter_params(
            follow=follow,
            track=track,
            locations=locations,
            filter_level=filter_level,
            languages=languages,
            stall_warnings=stall_warnings,
            delimited=delimited,
        )
        return V1Stream(*self._v1_connection("filter", params))

    def sample_stream(
        self,
        *,
        languages: Iterable[str] | None = None,
        stall_warnings: bool = False,
        delimited: str | None = None,
    ) -> V1Stream:
        """``GET /1.1/statuses/sample.json`` (about 1% of all statuses) as a :class:`V1Stream`."""
        params = sample_params(
            languages=languages, stall_warnings=stall_warnings, delimited=delimited
        )
        return V1Stream(*self._v1_connection("sample", params))

    def _v1_connection(
        self, endpoint: str, params: dict[str, str]
    ) -> tuple[Connection[V1Message], DelimitedStats | None]:
        """The connection to ``ENDPOINTS[endpoint]`` and its ``delimited=length`` counters
        (``None`` without that framing): the one builder of both faces."""
        method, path = ENDPOINTS[endpoint]
        headers = {"User-Agent": self.user_agent}
        if method == "POST":
            # OAuth1 signs a form body only when the request says it is one.
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = StreamRequest(
            method,
            self.base_url + path,
            params=(params or None) if method == "GET" else None,
            headers=headers,
            data=params if method == "POST" else None,
            auth=_QuietOAuth1(
                self.consumer_key,
                self.consumer_secret,
                self.access_token,
                self.access_token_secret,
            ),
            proxies=self.proxies or None,
            verify=self.verify,
        )
        delimited = DelimitedStats() if params.get("delimited") == "length" else None
        frame, batch_frame = _v1_framing(delimited, frozenset(self.fatal_disconnect_codes))
        connection = self._connection(
            request, _watching_unknown(), is_data=is_v1_data, frame=frame, batch_frame=batch_frame
        )
        return connection, delimited

    # --- tweepy face -------------------------------------------------------------------------

    def filter(
        self,
        *,
        follow: Iterable[int | str] | None = None,
        track: Iterable[str] | None = None,
        locations: Iterable[float] | None = None,
        filter_level: str | None = None,
        languages: Iterable[str] | None = None,
        stall_warnings: bool = False,
        threaded: bool = False,
        delimited: str | None = None,
    ) -> threading.Thread | None:
        """Stream statuses matching ``follow``/``track``/``locations``, calling the hooks.

        Blocks, or with ``threaded=True`` returns the started thread (wait for it with
        :meth:`~rxtweet.basestream.BaseStream.join`). The arguments are checked first
        (``ValueError``/``TypeError``, see :func:`filter_params`); raises
        :class:`~rxtweet.errors.StreamAlreadyRunning` if already running. A
        :meth:`disconnect` from any thread at any moment after this call began stops it.
        """
        since = self._starting()
        params = filter_params(
            follow=follow,
            track=track,
            locations=locations,
            filter_level=filter_level,
            languages=languages,
            stall_warnings=stall_warnings,
            delimited=delimited,
        )
        connection, _ = self._v1_connection("filter", params)
        return self._start(connection, threaded, since=since)

    def sample(
        self,
        *,
        languages: Iterable[str] | None = None,
        stall_warnings: bool = False,
        threaded: bool = False,
        delimited: str | None = None,
    ) -> threading.Thread | None:
        """Stream the sample of all statuses, calling the hooks; blocks, or returns a thread.

        As :meth:`filter`: a :meth:`disconnect` at any moment after this call began stops it.
        """
        since = self._starting()
        params = sample_params(
            languages=languages, stall_warnings=stall_warnings, delimited=delimited
        )
        connection, _ = self._v1_connection("sample", params)
        return self._start(connection, threaded, since=since)

    _convert = staticmethod(to_v1_message)

    def _dispatch(self, message: V1Message, raw: bytes) -> Any:
        # tweepy 4.12's on_data, on a message already typed by to_v1_message.
        if type(message) is Status:
            return self.on_status(message)
        if type(message) is DeleteNotice:
            return self.on_delete(message.id, message.user_id)
        if type(message) is DisconnectNotice:
            return self.on_disconnect_message(message.data)
        if type(message) is LimitNotice:
            return self.on_limit(message.track)
        if type(message) is ScrubGeoNotice:
            return self.on_scrub_geo(message.data)
        if type(message) is StatusWithheldNotice:
            return self.on_status_withheld(message.data)
        if type(message) is UserWithheldNotice:
            return self.on_user_withheld(message.data)
        if type(message) is StallWarning:
            return self.on_warning(message.data)
        # Already logged (its keys) when it was parsed; reported here as an event.
        self.on_event(UnknownMessage(raw, tuple(message.data)))
        return None

    # --- hooks (tweepy 4.12's signatures and default logging) ---------------------------------

    def on_status(self, status: Status) -> None:
        """A status arrived."""
        # The raw id: a status without one must not end the stream in a default hook.
        log.debug("Received status: %s", status.data.get("id"))

    def on_delete(self, status_id: int, user_id: int) -> None:
        """A status deletion notice arrived."""
        log.debug("Received status deletion notice: %d", status_id)

    def on_disconnect_message(self, message: dict[str, Any]) -> None:
        """X sent a disconnect message (``{"code", "stream_name", "reason"}``); it closes
        the connection next. See the class docstring for what follows each code."""
        log.warning("Received disconnect message: %s", message)

    def on_limit(self, track: int) -> None:
        """A limit notice: ``track`` statuses matched but were not delivered so far."""
        log.debug("Received limit notice: %d", track)

    def on_scrub_geo(self, notice: dict[str, Any]) -> None:
        """A location deletion notice."""
        log.debug("Received location deletion notice: %s", notice)

    def on_status_withheld(self, notice: dict[str, Any]) -> None:
        """A status withheld content notice."""
        log.debug("Received status withheld content notice: %s", notice)

    def on_user_withheld(self, notice: dict[str, Any]) -> None:
        """A user withheld content notice."""
        log.debug("Received user withheld content notice: %s", notice)

    def on_warning(self, warning: dict[str, Any]) -> None:
        """A stall warning (``stall_warnings=True``)."""
        log.warning("Received stall warning: %s", warning)
