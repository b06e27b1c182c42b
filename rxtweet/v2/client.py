""":class:`StreamingClient`: API v2's streams, tweepy's face and the reactive one."""

from __future__ import annotations

import logging
import math
import threading
from typing import Any, Final, Unpack

from reactivex import abc

from ..basestream import BaseStream
from ..connection import Connection
from ..credentials import clean_credential
from ..http import StreamRequest
from ..reconnect import ReconnectPolicy
from ..transport_base import Transport, TransportOptionsKw
from .convert import is_v2_data, to_stream_response
from .models import Response, StreamResponse, StreamRule, Tweet
from .params import FILTER_PARAMS, SAMPLE_PARAMS, stream_params
from .rules import RulesMixin
from .stream import TweetStream

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_STALL_TIMEOUT", "ENDPOINTS", "StreamingClient"]

log = logging.getLogger(__package__)

#: Where the client connects unless told otherwise.
DEFAULT_BASE_URL: Final = "https://api.x.com"

#: Seconds without a byte before reconnecting: X sends a keep-alive every 20 s (tweepy's 21).
DEFAULT_STALL_TIMEOUT: Final = 21.0

#: The stream endpoints' paths, below the base URL.
ENDPOINTS: Final[dict[str, str]] = {
    "sample": "/2/tweets/sample/stream",
    "search": "/2/tweets/search/stream",
}


class StreamingClient(RulesMixin, BaseStream):
    """Filter and sample realtime tweets with API v2 — tweepy's ``StreamingClient``, reactive.

    Change ``import tweepy`` to ``import rxtweet as tweepy`` (or import ``StreamingClient``
    from ``rxtweet``) and tweepy code runs unchanged. ``base_url`` points the same code at
    a :class:`~rxtweet.testing.FakeStreamServer` or a proxy; ``reconnect`` takes a
    :class:`~rxtweet.ReconnectPolicy`.

    Args:
        bearer_token: the app's OAuth 2.0 bearer token (never logged or shown in a repr).
            Surrounding whitespace (a trailing ``\\r\\n``) is stripped; a control or
            non-ASCII character inside raises ``ValueError`` (the message names the
            position, never the value).
        return_type: what the rules methods return: :class:`Response` (default), ``dict``
            (the JSON) or ``requests.Response``.
        wait_on_rate_limit: on a 429 from a rules endpoint, sleep until the reset and retry
            (at most :data:`~rxtweet.reconnect.RATE_LIMIT_RESET_WAIT_MAX` s at a time; each
            wait is logged as a WARNING with its length). Rules calls that fail on the
            network raise :class:`~rxtweet.errors.StreamConnectionError`; a reset of a
            kept-alive connection is retried once first.
        base_url: ``https://api.x.com`` by default.
        transport: where the lines come from (default: a
            :class:`~rxtweet.transport.RequestsTransport` on this client's session).
        options: the :class:`~rxtweet.transport_base.TransportOptions` (``stall_timeout``,
            ``connect_timeout``, ``header_timeout``, ``chunk_size``, ``max_line``).
            ``stall_timeout``: seconds without a byte before reconnecting; X sends a
            keep-alive every 20 s, so 21 s by default (as tweepy).
        Others: see :class:`~rxtweet.basestream.BaseStream`.
    """

    def __init__(
        self,
        bearer_token: str,
        *,
        return_type: type = Response,
        wait_on_rate_limit: bool = False,
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
        # Stripped and checked here: a token ending in "\r" would otherwise reach requests,
        # whose InvalidHeader message quotes the whole header, secret included.
        bearer_token = clean_credential("bearer_token", bearer_token)
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
        self.bearer_token: str = bearer_token
        self.return_type = return_type
        self.wait_on_rate_limit = wait_on_rate_limit

    # --- reactive face -----------------------------------------------------------------------

    def sample_stream(self, *, strict: bool = True, **params: Any) -> TweetStream:
        """The 1% sample stream (``GET /2/tweets/sample/stream``) as a :class:`TweetStream`.

        Params as tweepy's ``sample``: ``backfill_minutes, expansions, media_fields,
        place_fields, poll_fields, tweet_fields, user_fields``, plus ``partition``,
        ``start_time``, ``end_time``. Nothing connects until something subscribes.

        The params are checked now (see :func:`~rxtweet.v2.params.stream_params`): a field
        or expansion X does not document raises
        :class:`~rxtweet.errors.InvalidStreamParameter` naming the nearest documented one;
        ``strict=False`` sends such names anyway (for fields X added after this release),
        logging a WARNING.
        """
        query = stream_params(params, SAMPLE_PARAMS, strict=strict)
        return TweetStream(self._stream_connection("sample", query))

    def filter_stream(self, *, strict: bool = True, **params: Any) -> TweetStream:
        """The filtered stream (``GET /2/tweets/search/stream``): tweets matching the rules.

        Params and ``strict`` as :meth:`sample_stream`.
        """
        query = stream_params(params, FILTER_PARAMS, strict=strict)
        return TweetStream(self._stream_connection("search", query))

    def _stream_connection(
        self, endpoint: str, query: dict[str, str]
    ) -> Connection[StreamResponse]:
        request = StreamRequest(
            "GET",
            f"{self.base_url}{ENDPOINTS[endpoint]}",
            params=query or None,
            headers=self._headers(),
            proxies=self.proxies or None,
            verify=self.verify,
        )
        return self._connection(request, to_stream_response, is_data=is_v2_data)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}", "User-Agent": self.user_agent}

    # --- tweepy face -------------------------------------------------------------------------

    def sample(
        self, *, threaded: bool = False, strict: bool = True, **params: Any
    ) -> threading.Thread | None:
        """Stream the 1% sample, calling the hooks; blocks, or returns a started thread.

        Params and ``strict`` as :meth:`sample_stream` (checked before connecting).
        Raises :class:`~rxtweet.errors.StreamAlreadyRunning` if already running. A
        :meth:`disconnect` from any thread at any moment after this call began stops it.
        """
        since = self._starting()
        query = stream_params(params, SAMPLE_PARAMS, strict=strict)
        return self._start(self._stream_connection("sample", query), threaded, since=since)

    def filter(
        self, *, threaded: bool = False, strict: bool = True, **params: Any
    ) -> threading.Thread | None:
        """Stream tweets matching the rules, calling the hooks; blocks, or returns a thread.

        Params and ``strict`` as :meth:`sample_stream` (checked before connecting).
        """
        since = self._starting()
        query = stream_params(params, FILTER_PARAMS, strict=strict)
        return self._start(self._stream_connection("search", query), threaded, since=since)

    _convert = staticmethod(to_stream_response)

    def _dispatch(self, response: StreamResponse, raw: bytes = b"") -> None:
        # tweepy's StreamingClient.on_data, after its json.loads.
        tweet, includes, errors, matching_rules = response
        if tweet is not None:
            self.on_tweet(tweet)
        if includes:
            self.on_includes(includes)
        if errors:
            self.on_errors(errors)
        if matching_rules:
            self.on_matching_rules(matching_rules)
        self.on_response(response)

    def on_tweet(self, tweet: Tweet) -> None:
        """A tweet arrived."""

    def on_includes(self, includes: dict[str, Any]) -> None:
        """The includes of a message (tweepy's shape)."""

    def on_errors(self, errors: list[dict[str, Any]]) -> None:
        """The errors of a message (partial errors, or a system message)."""
        log.error("Received errors: %s", errors)

    def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        """The rules a filtered-stream tweet matched."""

    def on_response(self, response: StreamResponse) -> None:
        """Every parsed message, after the hooks above."""
        log.debug("Received response: %s", response)
