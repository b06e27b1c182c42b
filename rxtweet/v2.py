"""API v2: :class:`StreamingClient` (tweepy's face and the reactive one) and :class:`TweetStream`.

Reactive::

    client = StreamingClient(bearer_token)
    stream = client.sample_stream(tweet_fields=["lang", "created_at"])
    stream.tweets.pipe(ops.take(100)).subscribe(print)

tweepy::

    class Printer(StreamingClient):
        def on_tweet(self, tweet):
            print(tweet.id, tweet.text)

    Printer(bearer_token).sample()
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any

import requests
from reactivex import Observable, abc

from .basestream import BaseStream
from .connection import Connection, Item, select_events, select_messages
from .errors import HTTPException, RxTweetException
from .events import StreamEvent
from .http import StreamRequest
from .models import Response, StreamResponse, StreamRule, Tweet
from .parse import to_response, to_stream_response
from .reconnect import ReconnectPolicy
from .transport import DEFAULT_CHUNK_SIZE

__all__ = ["StreamingClient", "TweetStream"]

log = logging.getLogger("rxtweet.v2")

DEFAULT_BASE_URL = "https://api.x.com"

#: tweepy's parameter names, and the query names they become.
_FIELD_PARAMS = {
    "expansions": "expansions",
    "media_fields": "media.fields",
    "place_fields": "place.fields",
    "poll_fields": "poll.fields",
    "tweet_fields": "tweet.fields",
    "user_fields": "user.fields",
}
_SAMPLE_PARAMS = frozenset(
    {*_FIELD_PARAMS, "backfill_minutes", "partition", "start_time", "end_time"}
)
_FILTER_PARAMS = _SAMPLE_PARAMS


def stream_params(
    params: dict[str, Any], allowed: Iterable[str] = _SAMPLE_PARAMS
) -> dict[str, str]:
    """tweepy-style keyword arguments -> query parameters.

    ``tweet_fields=["lang", "created_at"]`` (or ``"lang,created_at"``) becomes
    ``{"tweet.fields": "lang,created_at"}``; ``None`` values are left out; datetimes become
    ``YYYY-MM-DDTHH:mm:ssZ``. An unknown name raises ``TypeError`` (a typo would otherwise
    be sent silently).
    """
    allowed = frozenset(allowed)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise TypeError(
            f"unexpected stream parameter(s): {', '.join(unknown)}; "
            f"expected some of: {', '.join(sorted(allowed))}"
        )
    query: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue
        key = _FIELD_PARAMS.get(name, name)
        if isinstance(value, str):
            query[key] = value
        elif hasattr(value, "strftime"):
            if getattr(value, "tzinfo", None) is not None:
                value = value.astimezone(UTC)
            query[key] = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif isinstance(value, Iterable):
            query[key] = ",".join(str(v) for v in value)
        else:
            query[key] = str(value)
    return query


class TweetStream:
    """The observables of one v2 stream. It holds observables; it is not one.

    All substreams but :attr:`lines` share one connection: subscribing to any number of them
    opens exactly one, which closes when the last subscription is disposed; a later
    subscription opens a fresh one. To attach several before the connection opens (so
    that none misses the first message), subscribe inside :meth:`hold`::

        with stream.hold():
            stream.tweets.subscribe(on_tweet)
            stream.events.subscribe(on_event)

    Attributes:
        items: everything on the shared connection, in order: each message as
            ``Parsed(value, raw)`` (the model and the exact bytes received) and each event.
        lines: cold raw lines; each subscription opens its own (reconnecting) connection.
        responses: every :class:`StreamResponse` (tweet messages and system messages).
        tweets: the :class:`Tweet` of each message that has one.
        includes: the ``includes`` dict (tweepy's shape) of each message that has one.
        errors: the non-empty ``errors`` list of each message.
        matching_rules: the non-empty list of :class:`StreamRule` of each message.
        events: lifecycle events (:mod:`rxtweet.events`); completes after ``Disconnected``.
        stats: parse counters (messages, keep-alives, malformed by reason).
    """

    def __init__(self, connection: Connection[StreamResponse]) -> None:
        self.connection = connection
        items = connection.items
        self.items: Observable[Item[Any]] = items
        self.lines: Observable[bytes] = connection.lines
        self.responses: Observable[StreamResponse] = items.pipe(select_messages(_identity))
        self.tweets: Observable[Tweet] = items.pipe(select_messages(_tweet_of))
        self.includes: Observable[dict[str, Any]] = items.pipe(select_messages(_includes_of))
        self.errors: Observable[list[dict[str, Any]]] = items.pipe(select_messages(_errors_of))
        self.matching_rules: Observable[list[StreamRule]] = items.pipe(select_messages(_rules_of))
        self.events: Observable[StreamEvent] = items.pipe(select_events())
        self.stats = connection.stats

    @contextmanager
    def hold(self) -> Iterator[TweetStream]:
        """Subscribe inside the block; the shared connection opens when it ends.

        Do not block inside it (``.run()``, waiting for an item): nothing arrives before
        the block ends.
        """
        with self.connection.hold():
            yield self

    @property
    def connected(self) -> bool:
        """Whether the shared connection is open now."""
        return self.connection.connected

    def __repr__(self) -> str:
        return f"<TweetStream {self.connection.request!r}>"


def _identity(response: StreamResponse) -> StreamResponse:
    return response


def _tweet_of(response: StreamResponse) -> Tweet | None:
    return response.data


def _includes_of(response: StreamResponse) -> dict[str, Any] | None:
    return response.includes or None


def _errors_of(response: StreamResponse) -> list[dict[str, Any]] | None:
    return response.errors or None


def _rules_of(response: StreamResponse) -> list[StreamRule] | None:
    return response.matching_rules or None


class StreamingClient(BaseStream):
    """Filter and sample realtime tweets with API v2 — tweepy's ``StreamingClient``, reactive.

    Change ``import tweepy`` to ``import rxtweet as tweepy`` (or import ``StreamingClient``
    from ``rxtweet``) and tweepy code runs unchanged. ``base_url`` points the same code at
    a :class:`~rxtweet.testing.FakeStreamServer` or a proxy; ``reconnect`` takes a
    :class:`~rxtweet.ReconnectPolicy`.

    Args:
        bearer_token: the app's OAuth 2.0 bearer token (never logged or shown in a repr).
        return_type: what the rules methods return: :class:`Response` (default), ``dict``
            (the JSON) or ``requests.Response``.
        wait_on_rate_limit: on a 429 from a rules endpoint, sleep until the reset and retry.
        base_url: ``https://api.x.com`` by default.
        stall_timeout: seconds without a byte before reconnecting; X sends a keep-alive
            every 20 s, so 21 s by default (as tweepy).
        Others: see :class:`~rxtweet.basestream.BaseStream`.
    """

    def __init__(
        self,
        bearer_token: str,
        *,
        return_type: type = Response,
        wait_on_rate_limit: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        daemon: bool = False,
        max_retries: float = math.inf,
        proxy: str | None = None,
        verify: bool | str = True,
        base_url: str = DEFAULT_BASE_URL,
        reconnect: ReconnectPolicy | None = None,
        stall_timeout: float = 21.0,
        scheduler: abc.SchedulerBase | None = None,
    ) -> None:
        if not bearer_token or not isinstance(bearer_token, str):
            raise TypeError("bearer_token must be a non-empty string")
        super().__init__(
            chunk_size=chunk_size,
            daemon=daemon,
            max_retries=max_retries,
            proxy=proxy,
            verify=verify,
            reconnect=reconnect,
            stall_timeout=stall_timeout,
            scheduler=scheduler,
            base_url=base_url,
        )
        self.bearer_token = bearer_token
        self.return_type = return_type
        self.wait_on_rate_limit = wait_on_rate_limit

    # --- reactive face -----------------------------------------------------------------------

    def sample_stream(self, **params: Any) -> TweetStream:
        """The 1% sample stream (``GET /2/tweets/sample/stream``) as a :class:`TweetStream`.

        Params as tweepy's ``sample``: ``backfill_minutes, expansions, media_fields,
        place_fields, poll_fields, tweet_fields, user_fields``, plus ``partition``,
        ``start_time``, ``end_time``. Nothing connects until something subscribes.
        """
        return TweetStream(self._connection("sample", stream_params(params, _SAMPLE_PARAMS)))

    def filter_stream(self, **params: Any) -> TweetStream:
        """The filtered stream (``GET /2/tweets/search/stream``): tweets matching the rules."""
        return TweetStream(self._connection("search", stream_params(params, _FILTER_PARAMS)))

    def _connection(self, endpoint: str, query: dict[str, str]) -> Connection[StreamResponse]:
        request = StreamRequest(
            "GET",
            f"{self.base_url}/2/tweets/{endpoint}/stream",
            params=query or None,
            headers=self._headers(),
            proxies=self.proxies or None,
            verify=self.verify,
        )
        return Connection(
            request,
            to_stream_response,
            policy=self.reconnect,
            session=self.session,
            stall_timeout=self.stall_timeout,
            chunk_size=self.chunk_size,
            scheduler=self.scheduler,
        )

    def _sleep(self, seconds: float) -> None:
        # A method, so that tests (and users) can replace it, and time.sleep is looked up late.
        time.sleep(seconds)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}", "User-Agent": self.user_agent}

    # --- tweepy face -------------------------------------------------------------------------

    def sample(self, *, threaded: bool = False, **params: Any) -> Any:
        """Stream the 1% sample, calling the hooks; blocks, or returns a started thread.

        Raises :class:`~rxtweet.basestream.StreamAlreadyRunning` if already running.
        """
        connection = self._connection("sample", stream_params(params, _SAMPLE_PARAMS))
        return self._start(connection, threaded)

    def filter(self, *, threaded: bool = False, **params: Any) -> Any:
        """Stream tweets matching the rules, calling the hooks; blocks, or returns a thread."""
        connection = self._connection("search", stream_params(params, _FILTER_PARAMS))
        return self._start(connection, threaded)

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

    # --- rules ---------------------------------------------------------------------------------

    def add_rules(
        self, add: StreamRule | Iterable[StreamRule], *, dry_run: bool | None = None
    ) -> Any:
        """Add rules to the filtered stream (``POST /2/tweets/search/stream/rules``).

        Rule-level problems (``DuplicateRule``, invalid rules) come back in ``errors``; HTTP
        failures raise the typed exceptions.
        """
        if isinstance(add, str):
            raise TypeError(f"add_rules takes StreamRule objects: StreamRule({add!r})")
        rules = [add] if isinstance(add, StreamRule) else list(add)
        if not all(isinstance(rule, StreamRule) for rule in rules):
            raise TypeError("add_rules takes a StreamRule or an iterable of StreamRule")
        body = {
            "add": [
                {k: v for k, v in (("value", r.value), ("tag", r.tag)) if v is not None}
                for r in rules
            ]
        }
        return self._rules_request("POST", json=body, dry_run=dry_run)

    def delete_rules(
        self,
        ids: int | str | StreamRule | Iterable[int | str | StreamRule],
        *,
        dry_run: bool | None = None,
    ) -> Any:
        """Delete rules by id (ids, or :class:`StreamRule` objects with ids)."""
        items = [ids] if isinstance(ids, int | str | StreamRule) else list(ids)
        id_list = [str(i.id if isinstance(i, StreamRule) else i) for i in items]
        if any(i in ("", "None") for i in id_list):
            raise ValueError("every rule to delete needs an id")
        return self._rules_request("POST", json={"delete": {"ids": id_list}}, dry_run=dry_run)

    def get_rules(self, *, ids: int | str | Iterable[int | str] | None = None) -> Any:
        """The active rules (``GET /2/tweets/search/stream/rules``), optionally by ids."""
        params: dict[str, str] = {}
        if ids is not None:
            params["ids"] = (
                ids
                if isinstance(ids, str)
                else (str(ids) if isinstance(ids, int) else ",".join(str(i) for i in ids))
            )
            if not params["ids"]:
                raise ValueError("ids is empty: pass None to get every rule")
        return self._rules_request("GET", params=params)

    def _rules_request(
        self,
        method: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        dry_run: bool | None = None,
    ) -> Any:
        url = f"{self.base_url}/2/tweets/search/stream/rules"
        params = dict(params or {})
        if dry_run is not None:
            params["dry_run"] = "true" if dry_run else "false"
        while True:
            response = self.session.request(
                method,
                url,
                params=params or None,
                json=json,
                headers=self._headers(),
                proxies=self.proxies or None,
                verify=self.verify,
                timeout=(10, 30),
            )
            if response.status_code == 429 and self.wait_on_rate_limit:
                error = HTTPException.from_response(response, request_line=f"{method} {url}")
                wait = error.rate_limit.seconds_until_reset() if error.rate_limit else None
                # As tweepy: until the reset plus a second; a reset already past: no wait.
                wait = 60.0 if wait is None else (wait + 1 if wait > 0 else 0.0)
                log.warning("Rate limit exceeded. Sleeping for %d seconds.", round(wait))
                self._sleep(wait)
                continue
            if not 200 <= response.status_code < 300:
                raise HTTPException.from_response(response, request_line=f"{method} {url}")
            break
        if self.return_type is requests.Response:
            return response
        try:
            doc = response.json()
        except ValueError as exc:
            raise RxTweetException(
                f"{method} {url} answered {response.status_code} with a body that is not JSON"
            ) from exc
        if self.return_type is dict:
            return doc
        return to_response(doc, StreamRule)
