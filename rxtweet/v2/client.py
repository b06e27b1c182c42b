""":class:`StreamingClient`: API v2's streams, tweepy's face and the reactive one."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar, Unpack

from reactivex import abc

from ..basestream import BaseStream
from ..connection import Connection
from ..credentials import clean_credential
from ..http import StreamRequest
from ..partitions import MergedConnection, partition_numbers
from ..reconnect import ReconnectPolicy
from ..recovery.gap import RecoveryMode
from ..substreams import Substreams
from ..transport_base import Transport, TransportOptionsKw
from .activity import (
    ActivityStream,
    ActivitySubscriptionsMixin,
    is_activity_data,
    to_activity_response,
)
from .compliance import ComplianceConverter, ComplianceStream, is_compliance_data
from .convert import is_v2_data, lone_tweet_or_response, to_stream_response
from .endpoints import ENDPOINTS as STREAM_ENDPOINTS
from .labels import LabelConverter, LabelStream, is_label_data
from .likes import LikeStream, is_like_data, to_like_response
from .models import Response, StreamResponse, StreamRule, Tweet
from .params import FILTER_PARAMS, SAMPLE_PARAMS, endpoint_params, stream_params
from .rules import RulesMixin
from .stream import TweetStream

if TYPE_CHECKING:
    from ..basestream import _RunState
    from ..substreams import ItemSource

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_STALL_TIMEOUT", "ENDPOINTS", "StreamingClient"]

log = logging.getLogger(__package__)

#: Where the client connects unless told otherwise.
DEFAULT_BASE_URL: Final = "https://api.x.com"

#: Seconds without a byte before reconnecting: X sends a keep-alive every 20 s (tweepy's 21).
DEFAULT_STALL_TIMEOUT: Final = 21.0

#: The stream endpoints' paths, below the base URL, by name (every one of
#: :data:`rxtweet.v2.endpoints.ENDPOINTS`, which also has their partitions and parameters).
ENDPOINTS: Final[dict[str, str]] = {
    name: endpoint.path for name, endpoint in STREAM_ENDPOINTS.items()
}

_M = TypeVar("_M")
_S = TypeVar("_S", bound=Substreams[Any])

#: ``firehose_stream(lang=...)`` -> the endpoint's name.
_FIREHOSES: Final = {
    None: "firehose",
    "en": "firehose_en",
    "ja": "firehose_ja",
    "ko": "firehose_ko",
    "pt": "firehose_pt",
}


class StreamingClient(RulesMixin, ActivitySubscriptionsMixin, BaseStream):
    """Every API v2 stream, reactive, with tweepy's ``StreamingClient`` face for the sample
    and the filtered stream.

    Reactive face: :meth:`sample_stream`, :meth:`filter_stream`, :meth:`sample10_stream`,
    :meth:`firehose_stream` (and the language firehoses), :meth:`compliance_stream`,
    :meth:`likes_stream`, :meth:`label_stream` and :meth:`activity_stream`, each returning
    a stream object (its substreams share its connection, or, on a partitioned endpoint,
    one connection per partition merged into one stream); the rules methods and the
    activity subscription methods (``add_activity_subscription`` …) call the REST endpoints.

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
        clock: epoch seconds now, for ``recovery=``'s gap arithmetic (``time.time``; a test
            passes :meth:`FakeStreamServer.now <rxtweet.testing.FakeStreamServer.now>`).
        Others: see :class:`~rxtweet.basestream.BaseStream`.

    Every stream method (``sample_stream`` ... ``activity_stream``, and ``sample``/``filter``)
    also takes ``recovery=`` and ``redundancy=``:

    * ``recovery``: ``None`` (default: a reconnect asks for nothing), ``"backfill"`` (each
      reconnect asks for the gap since the last item back with ``backfill_minutes``, up to 5
      minutes; :class:`~rxtweet.events.DataLost` for more) or ``"full"`` (also a
      ``start_time``/``end_time`` recovery connection for gaps up to 24 hours). Enterprise
      features: a 400 answer is reported once (:class:`~rxtweet.events.RecoveryUnavailable`)
      and the stream goes on without them.
    * ``redundancy``: ``1`` (default) or ``2``: two connections to the same stream (and
      partition), merged; when one drops the other carries on.

    With either, messages are de-duplicated by identity (:mod:`rxtweet.recovery.dedup`):
    a duplicate never reaches a subscriber or a hook; ``stream.stats`` counts
    ``duplicates`` and ``recovered``. See docs/reconnect.md, "Nothing lost".
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
        clock: Callable[[], float] = time.time,
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
        self.clock = clock
        self.bearer_token: str = bearer_token
        self.return_type = return_type
        self.wait_on_rate_limit = wait_on_rate_limit
        # Whether on_response is overridden: decided when a run starts (sample(), filter());
        # None outside a run, where each dispatch decides.
        self._respond: bool | None = None

    # --- reactive face -----------------------------------------------------------------------

    def sample_stream(
        self,
        *,
        strict: bool = True,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
        **params: Any,
    ) -> TweetStream:
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
        return TweetStream(self._tweet_source("sample", query, recovery, redundancy))

    def filter_stream(
        self,
        *,
        strict: bool = True,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
        **params: Any,
    ) -> TweetStream:
        """The filtered stream (``GET /2/tweets/search/stream``): tweets matching the rules.

        Params and ``strict`` as :meth:`sample_stream`.
        """
        query = stream_params(params, FILTER_PARAMS, strict=strict)
        return TweetStream(self._tweet_source("search", query, recovery, redundancy))

    def sample10_stream(
        self,
        *,
        partitions: Any,
        strict: bool = True,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
        **params: Any,
    ) -> TweetStream:
        """The decahose, a 10% sample (``GET /2/tweets/sample10/stream``, partitions 1-2).

        ``partitions``: an int, ints or ``"all"`` (both halves: the whole 10%). Each
        partition is its own connection, merged into one :class:`TweetStream` (see
        :class:`~rxtweet.partitions.MergedConnection`). Params: ``backfill_minutes``,
        ``start_time``, ``end_time`` and the fields and expansions, checked now like
        :meth:`sample_stream`'s (``strict`` too).

        Raises:
            InvalidStreamParameter: (a ``ValueError``) a partition out of range (the message
                names it), none given, or a bad parameter value; before connecting.
            TypeError: a keyword the endpoint does not take.
        """
        return self._endpoint_stream(
            "sample10",
            TweetStream,
            to_stream_response,
            is_v2_data,
            partitions,
            params,
            strict,
            recovery=recovery,
            redundancy=redundancy,
        )

    def firehose_stream(
        self,
        *,
        partitions: Any,
        lang: str | None = None,
        strict: bool = True,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
        **params: Any,
    ) -> TweetStream:
        """The firehose (``GET /2/tweets/firehose/stream``, partitions 1-20), or with
        ``lang`` a language firehose (``.../lang/en`` 1-8; ``ja``, ``ko``, ``pt`` 1-2).

        Partitions, params and errors as :meth:`sample10_stream`; an unknown ``lang``
        raises ``ValueError`` naming the four. ``partitions="all"`` is the whole firehose::

            stream = client.firehose_stream(partitions="all", tweet_fields=["lang"])
            stream.tweets.subscribe(print)  # 20 connections, one stream
        """
        key = lang.strip().lower() if isinstance(lang, str) else lang
        name = _FIREHOSES.get(key)
        if name is None:
            raise ValueError(f"lang must be one of en, ja, ko, pt (or None), not {lang!r}")
        return self._endpoint_stream(
            name,
            TweetStream,
            to_stream_response,
            is_v2_data,
            partitions,
            params,
            strict,
            recovery=recovery,
            redundancy=redundancy,
        )

    def compliance_stream(
        self,
        kind: str,
        *,
        partitions: Any = None,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
        **params: Any,
    ) -> ComplianceStream:
        """A compliance stream: ``"tweets"`` (``/2/tweets/compliance/stream``, partitions
        1-4, required), ``"users"`` (``/2/users/compliance/stream``, 1-4, required) or
        ``"likes"`` (``/2/likes/compliance/stream``, not partitioned).

        Params: ``backfill_minutes``, ``start_time``, ``end_time``. Returns a
        :class:`~rxtweet.v2.compliance.ComplianceStream` (``.compliance``: typed events;
        unknown kinds arrive as generic events and are counted in ``.unknown_kinds``).
        Errors as :meth:`sample10_stream`; an unknown ``kind`` raises ``ValueError``.
        """
        if kind not in ("tweets", "users", "likes"):
            raise ValueError(f"kind must be 'tweets', 'users' or 'likes', not {kind!r}")
        return self._endpoint_stream(
            f"compliance_{kind}",
            ComplianceStream,
            ComplianceConverter(),
            is_compliance_data,
            partitions,
            params,
            recovery=recovery,
            redundancy=redundancy,
        )

    def likes_stream(
        self,
        kind: str = "firehose",
        *,
        partitions: Any,
        strict: bool = True,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
        **params: Any,
    ) -> LikeStream:
        """Likes as they happen: ``"firehose"`` (``/2/likes/firehose/stream``, partitions
        1-20) or ``"sample10"`` (``/2/likes/sample10/stream``, 1-2), as a
        :class:`~rxtweet.v2.likes.LikeStream`.

        Params: ``backfill_minutes``, ``start_time``, ``end_time``,
        ``like_with_tweet_author_fields`` (``like_with_tweet_author.fields``),
        ``expansions`` (``liked_tweet_id``, ``liked_tweet_author_id``), ``tweet_fields``,
        ``user_fields``, ``media_fields``. Errors as :meth:`sample10_stream`.
        """
        if kind not in ("firehose", "sample10"):
            raise ValueError(f"kind must be 'firehose' or 'sample10', not {kind!r}")
        return self._endpoint_stream(
            f"likes_{kind}",
            LikeStream,
            to_like_response,
            is_like_data,
            partitions,
            params,
            strict,
            recovery=recovery,
            redundancy=redundancy,
        )

    def label_stream(
        self, *, recovery: RecoveryMode | None = None, redundancy: int = 1, **params: Any
    ) -> LabelStream:
        """Public tweet labels (``GET /2/tweets/label/stream``, not partitioned), as a
        :class:`~rxtweet.v2.labels.LabelStream`. Params: ``backfill_minutes``,
        ``start_time``, ``end_time``."""
        return self._endpoint_stream(
            "labels",
            LabelStream,
            LabelConverter(),
            is_label_data,
            None,
            params,
            recovery=recovery,
            redundancy=redundancy,
        )

    def activity_stream(
        self, *, recovery: RecoveryMode | None = None, redundancy: int = 1, **params: Any
    ) -> ActivityStream:
        """Account activity (``GET /2/activity/stream``, not partitioned) for the activity
        subscriptions (:meth:`add_activity_subscription` …), as a
        :class:`~rxtweet.v2.activity.ActivityStream`. Params: ``backfill_minutes``,
        ``start_time``, ``end_time``."""
        return self._endpoint_stream(
            "activity",
            ActivityStream,
            to_activity_response,
            is_activity_data,
            None,
            params,
            recovery=recovery,
            redundancy=redundancy,
        )

    def _endpoint_stream(
        self,
        name: str,
        stream_cls: type[_S],
        convert: Callable[[dict[str, Any]], _M],
        is_data: Callable[[_M], bool] | None,
        partitions: Any,
        params: dict[str, Any],
        strict: bool = True,
        *,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
    ) -> _S:
        """The stream object of endpoint ``name``: one plain connection, or one connection
        per partition merged into one. Partitions and params are checked first, so nothing
        is built (let alone connected) for a call that would fail."""
        endpoint = STREAM_ENDPOINTS[name]
        numbers = partition_numbers(partitions, endpoint=endpoint)
        query = endpoint_params(endpoint, params, strict=strict)
        return stream_cls(
            self._source(name, numbers, query, convert, is_data, recovery, redundancy)
        )

    def _tweet_source(
        self,
        name: str,
        query: dict[str, str],
        recovery: RecoveryMode | None,
        redundancy: int,
    ) -> ItemSource[StreamResponse]:
        return self._source(name, (), query, to_stream_response, is_v2_data, recovery, redundancy)

    def _source(
        self,
        name: str,
        numbers: tuple[int, ...],
        query: dict[str, str],
        convert: Callable[[dict[str, Any]], _M],
        is_data: Callable[[_M], bool] | None,
        recovery: RecoveryMode | None,
        redundancy: int,
    ) -> ItemSource[_M]:
        """One connection per partition (or one) and replica, merged when more than one,
        de-duplicated when recovery or redundancy can repeat a message."""
        from ..recovery.dedup import Deduplicated
        from ..recovery.gap import check_mode
        from ..recovery.tracker import created_for
        from .identity import identity_for

        recovery = check_mode(recovery)
        if isinstance(redundancy, bool) or redundancy not in (1, 2):
            raise ValueError(
                f"redundancy must be 1 or 2 (X allows two connections to a stream), "
                f"not {redundancy!r}"
            )
        endpoint = STREAM_ENDPOINTS[name]
        url = f"{self.base_url}{endpoint.path}"
        created_of = created_for(endpoint.kind) if recovery is not None else None
        replicas: tuple[int | None, ...] = (None,) if redundancy == 1 else (1, 2)
        connections: dict[tuple[int | None, int | None], Connection[_M]] = {}
        for number in numbers or (None,):
            partition_query = query if number is None else {**query, "partition": str(number)}
            for replica in replicas:
                connections[(number, replica)] = self._connection(
                    self._request(url, partition_query),
                    convert,
                    is_data=is_data,
                    recovery=recovery,
                    clock=self.clock,
                    created_of=created_of,
                )
        source: ItemSource[_M]
        if len(connections) == 1:
            source = next(iter(connections.values()))
        else:
            source = MergedConnection(connections)
        if recovery is None and redundancy == 1:
            return source
        deduplicated = Deduplicated(source, identity_for(endpoint.kind), clock=self.clock)
        for connection in connections.values():
            connection.recovery_sink = deduplicated
        return deduplicated

    def _request(self, url: str, query: dict[str, str]) -> StreamRequest:
        return StreamRequest(
            "GET",
            url,
            params=query or None,
            headers=self._headers(),
            proxies=self.proxies or None,
            verify=self.verify,
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}", "User-Agent": self.user_agent}

    # --- tweepy face -------------------------------------------------------------------------

    def sample(
        self,
        *,
        threaded: bool = False,
        strict: bool = True,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
        **params: Any,
    ) -> threading.Thread | None:
        """Stream the 1% sample, calling the hooks; blocks, or returns a started thread.

        Params, ``strict``, ``recovery`` and ``redundancy`` as :meth:`sample_stream`
        (checked before connecting). Raises :class:`~rxtweet.errors.StreamAlreadyRunning`
        if already running. A
        :meth:`disconnect` from any thread at any moment after this call began stops it.
        """
        since = self._starting()
        query = stream_params(params, SAMPLE_PARAMS, strict=strict)
        source = self._tweet_source("sample", query, recovery, redundancy)
        return self._start(source, threaded, since=since)

    def filter(
        self,
        *,
        threaded: bool = False,
        strict: bool = True,
        recovery: RecoveryMode | None = None,
        redundancy: int = 1,
        **params: Any,
    ) -> threading.Thread | None:
        """Stream tweets matching the rules, calling the hooks; blocks, or returns a thread.

        Params and ``strict`` as :meth:`sample_stream` (checked before connecting).
        """
        since = self._starting()
        query = stream_params(params, FILTER_PARAMS, strict=strict)
        source = self._tweet_source("search", query, recovery, redundancy)
        return self._start(source, threaded, since=since)

    _convert = staticmethod(to_stream_response)

    def _run_starting(self) -> None:
        self._respond = _overridden(self, "on_response")

    def _run_ended(self) -> None:
        self._respond = None

    _dispatch_needs_raw = False  # see BaseStream: raw is not read here

    def _dispatch(self, response: StreamResponse, raw: bytes = b"") -> None:
        # tweepy's StreamingClient.on_data, after its json.loads.
        tweet = response.data
        if tweet is not None:
            self.on_tweet(tweet)
        doc = response._doc
        if doc is None:  # a response made otherwise than from a message: its parts as read
            doc = {
                "includes": response.includes,
                "errors": response.errors,
                "matching_rules": response.matching_rules,
            }
        # A message of data alone (the default payload) has no other part to dispatch.
        if tweet is None or len(doc) > 1:
            # The default on_includes and on_matching_rules do nothing: a response's parts
            # are converted when read (StreamResponse is lazy), so they are read only when
            # there and for a hook that was overridden (in the class or on the instance;
            # _overridden's test, inline: each Python call is ~2% of a 4 KB message here).
            # The class is read again after each hook: a hook may change it.
            own = vars(self)
            if doc.get("includes") and (
                "on_includes" in own or type(self).on_includes is not _ON_INCLUDES
            ):
                self.on_includes(response.includes)
            if doc.get("errors"):
                self.on_errors(response.errors)
            if doc.get("matching_rules") and (
                "on_matching_rules" in own or type(self).on_matching_rules is not _ON_MATCHING_RULES
            ):
                self.on_matching_rules(response.matching_rules)
        # The default on_response only logs at DEBUG: not called at all when that is off
        # (a call per message on the hot path for nothing). An on_response set on the
        # instance during a run is called from the next run on.
        respond = self._respond
        if respond is None:
            respond = _overridden(self, "on_response")
        if respond or (_LEVELS.get(_DEBUG) is not False and log.isEnabledFor(_DEBUG)):
            self.on_response(response)

    def _value_selection(
        self, run: _RunState
    ) -> tuple[Callable[[Any], Any], Callable[[Any], None]]:
        # Every message's response is wanted by an on_response override, and by a
        # subclass's own raw-free _dispatch (which a lone tweet must not go around).
        if (
            _overridden(self, "on_response")
            or type(self)._dispatch is not StreamingClient._dispatch
        ):
            return super()._value_selection(run)
        # A message of a tweet alone (the default payload) calls on_tweet alone, and
        # on_response only while DEBUG is on: it is taken as its tweet, which the parser
        # makes without the response (convert.PROJECTIONS); any other message as its
        # response, through _dispatch. The run's hook lock is taken inline, as
        # BaseStream's observer takes it around a call (its comment says why so): with
        # the response not made, a default-payload message costs ~2,700 instructions
        # less, a ninth of the hook face's cost. What may change during a run is looked
        # up per message, as _dispatch does: on_tweet (set on the instance in a hook,
        # say) and the DEBUG level.
        enter, leave, owned = run.hook_lock()
        dispatch = self._dispatch
        levels, is_debug = _LEVELS, log.isEnabledFor

        def on_next(item: Tweet | StreamResponse) -> None:
            try:
                enter()
            except BaseException:
                if owned():
                    leave()
                raise
            try:
                if run.over:
                    return
                if type(item) is Tweet:
                    self.on_tweet(item)
                    if levels.get(_DEBUG) is not False and is_debug(_DEBUG):
                        self.on_response(StreamResponse(item, {}, [], []))
                else:
                    dispatch(item)  # type: ignore[arg-type]
            finally:
                leave()

        return lone_tweet_or_response, on_next

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


#: ``log``'s cache of isEnabledFor (level -> bool), which logging empties whenever a level
#: changes (``Logger._cache``, CPython 3.7+): a cached False is read with a C call where
#: isEnabledFor is a Python one (~120 ns a message). Only a False is trusted; without the
#: cache every check goes to isEnabledFor.
_cache = getattr(log, "_cache", None)
_DEBUG: Final = logging.DEBUG
_LEVELS: dict[int, bool] = _cache if type(_cache) is dict else {}

#: StreamingClient's own hooks, as defined (a test may patch the class's attribute).
_DEFAULT_HOOKS: dict[str, Any] = {
    name: StreamingClient.__dict__[name]
    for name in ("on_includes", "on_matching_rules", "on_response")
}


_ON_INCLUDES: Final = _DEFAULT_HOOKS["on_includes"]
_ON_MATCHING_RULES: Final = _DEFAULT_HOOKS["on_matching_rules"]


def _overridden(client: StreamingClient, hook: str) -> bool:
    """Whether ``client``'s ``hook`` is not :class:`StreamingClient`'s own (a subclass's
    method, a function set on the instance, or a patch of the class's attribute)."""
    return hook in vars(client) or getattr(type(client), hook) is not _DEFAULT_HOOKS[hook]
