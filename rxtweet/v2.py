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
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import RemoteDisconnected
from typing import Any

import requests
import urllib3
from reactivex import Observable, abc

from .basestream import BaseStream
from .connection import Connection, Item, select_events, select_messages
from .credentials import clean_credential
from .errors import HTTPException, RxTweetException, StreamConnectionError
from .events import StreamEvent
from .fields import check_stream_params, wire_value
from .http import StreamRequest, redact_url
from .models import Response, StreamResponse, StreamRule, Tweet
from .parse import is_v2_data, to_response, to_stream_response
from .reconnect import RATE_LIMIT_RESET_WAIT_MAX, ReconnectPolicy
from .transport import DEFAULT_CHUNK_SIZE

__all__ = ["RulesSync", "RulesSyncError", "StreamingClient", "TweetStream", "format_rule_problem"]

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
    params: dict[str, Any], allowed: Iterable[str] = _SAMPLE_PARAMS, *, strict: bool = True
) -> dict[str, str]:
    """tweepy-style keyword arguments -> query parameters, checked before anything connects.

    ``tweet_fields=["lang", "created_at"]`` (or ``"lang,created_at"``) becomes
    ``{"tweet.fields": "lang,created_at"}``; ``None`` values are left out; ``start_time`` and
    ``end_time`` (datetimes or RFC 3339 strings) become ``YYYY-MM-DDTHH:mm:ssZ`` in UTC. An
    unknown keyword raises ``TypeError`` (a typo would otherwise be sent silently). Values
    are checked by :func:`rxtweet.fields.check_stream_params`: an undocumented field or
    expansion name, ``backfill_minutes`` outside 0-5 or a malformed time raise
    :class:`~rxtweet.fields.InvalidStreamParameter` (a ``ValueError``); with
    ``strict=False`` unknown field names are sent anyway, with a WARNING.
    """
    allowed = frozenset(allowed)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise TypeError(
            f"unexpected stream parameter(s): {', '.join(unknown)}; "
            f"expected some of: {', '.join(sorted(allowed))}"
        )
    # A one-shot iterator must survive being checked and then sent.
    params = {
        name: list(value) if name in _FIELD_PARAMS and _is_sequence_like(value) else value
        for name, value in params.items()
    }
    check_stream_params(params, strict=strict)
    # Sent as checked: stripped, without duplicate names, integers in plain decimal.
    return {
        _FIELD_PARAMS.get(name, name): wire_value(name, value)
        for name, value in params.items()
        if value is not None
    }


def _is_sequence_like(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes)


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
        # Stripped and checked here: a token ending in "\r" would otherwise reach requests,
        # whose InvalidHeader message quotes the whole header, secret included.
        bearer_token = clean_credential("bearer_token", bearer_token)
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
        self.bearer_token: str = bearer_token
        self.return_type = return_type
        self.wait_on_rate_limit = wait_on_rate_limit

    # --- reactive face -----------------------------------------------------------------------

    def sample_stream(self, *, strict: bool = True, **params: Any) -> TweetStream:
        """The 1% sample stream (``GET /2/tweets/sample/stream``) as a :class:`TweetStream`.

        Params as tweepy's ``sample``: ``backfill_minutes, expansions, media_fields,
        place_fields, poll_fields, tweet_fields, user_fields``, plus ``partition``,
        ``start_time``, ``end_time``. Nothing connects until something subscribes.

        The params are checked now (see :func:`stream_params`): a field or expansion X does
        not document raises :class:`~rxtweet.fields.InvalidStreamParameter` naming the
        nearest documented one; ``strict=False`` sends such names anyway (for fields X added
        after this release), logging a WARNING.
        """
        query = stream_params(params, _SAMPLE_PARAMS, strict=strict)
        return TweetStream(self._connection("sample", query))

    def filter_stream(self, *, strict: bool = True, **params: Any) -> TweetStream:
        """The filtered stream (``GET /2/tweets/search/stream``): tweets matching the rules.

        Params and ``strict`` as :meth:`sample_stream`.
        """
        query = stream_params(params, _FILTER_PARAMS, strict=strict)
        return TweetStream(self._connection("search", query))

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
            is_data=is_v2_data,
        )

    def _sleep(self, seconds: float) -> None:
        # A method, so that tests (and users) can replace it, and time.sleep is looked up late.
        time.sleep(seconds)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}", "User-Agent": self.user_agent}

    # --- tweepy face -------------------------------------------------------------------------

    def sample(self, *, threaded: bool = False, strict: bool = True, **params: Any) -> Any:
        """Stream the 1% sample, calling the hooks; blocks, or returns a started thread.

        Params and ``strict`` as :meth:`sample_stream` (checked before connecting).
        Raises :class:`~rxtweet.basestream.StreamAlreadyRunning` if already running. A
        :meth:`disconnect` from any thread at any moment after this call began stops it.
        """
        since = self._starting()
        query = stream_params(params, _SAMPLE_PARAMS, strict=strict)
        return self._start(self._connection("sample", query), threaded, since=since)

    def filter(self, *, threaded: bool = False, strict: bool = True, **params: Any) -> Any:
        """Stream tweets matching the rules, calling the hooks; blocks, or returns a thread.

        Params and ``strict`` as :meth:`sample_stream` (checked before connecting).
        """
        since = self._starting()
        query = stream_params(params, _FILTER_PARAMS, strict=strict)
        return self._start(self._connection("search", query), threaded, since=since)

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
        response = self._rules_response(method, json=json, params=params, dry_run=dry_run)
        if self.return_type is requests.Response:
            return response
        doc = _json_of(response, method)
        if self.return_type is dict:
            return doc
        return to_response(doc, StreamRule)

    def _rules_doc(
        self, method: str, *, json: Any = None, dry_run: bool | None = None
    ) -> dict[str, Any]:
        # The JSON whatever return_type says: sync_rules reads the documents itself.
        doc = _json_of(self._rules_response(method, json=json, dry_run=dry_run), method)
        if not isinstance(doc, dict):
            raise RxTweetException(f"{method} {self._rules_url(shown=True)}: not a JSON object")
        return doc

    def _rules_url(self, *, shown: bool = False) -> str:
        url = f"{self.base_url}/2/tweets/search/stream/rules"
        return redact_url(url) if shown else url

    def _rules_response(
        self,
        method: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        dry_run: bool | None = None,
    ) -> requests.Response:
        """One rules call, answered 2xx; the typed exception otherwise.

        Raises:
            HTTPException: (a subclass) for a non-2xx answer (a 429 is waited out first when
                ``wait_on_rate_limit``).
            StreamConnectionError: the network failed (its message carries no credential).
        """
        url = self._rules_url()
        request_line = f"{method} {self._rules_url(shown=True)}"
        params = dict(params or {})
        if dry_run is not None:
            params["dry_run"] = "true" if dry_run else "false"
        while True:
            response = self._send_rules(method, url, request_line, params=params, json=json)
            if response.status_code == 429 and self.wait_on_rate_limit:
                error = HTTPException.from_response(response, request_line=request_line)
                wait = error.rate_limit.seconds_until_reset() if error.rate_limit else None
                # As tweepy: until the reset plus a second; a reset already past: no wait.
                wait = 60.0 if wait is None else (wait + 1 if wait > 0 else 0.0)
                if wait > RATE_LIMIT_RESET_WAIT_MAX:
                    # A reset hours or years away is a broken header or clock, not a plan:
                    # wait as long as the stream side would, then ask again.
                    log.warning(
                        "Rate limit exceeded; the reset is %d seconds away. Sleeping for %d "
                        "seconds (the maximum), then retrying.",
                        round(wait),
                        round(RATE_LIMIT_RESET_WAIT_MAX),
                    )
                    wait = RATE_LIMIT_RESET_WAIT_MAX
                else:
                    log.warning("Rate limit exceeded. Sleeping for %d seconds.", round(wait))
                self._sleep(wait)
                continue
            if not 200 <= response.status_code < 300:
                raise HTTPException.from_response(response, request_line=request_line)
            return response

    def _send_rules(
        self, method: str, url: str, request_line: str, **kwargs: Any
    ) -> requests.Response:
        # A kept-alive connection the server has closed meanwhile fails as a reset when it is
        # reused: that says nothing about the server, so it is retried once (on a fresh
        # connection: urllib3 drops the broken one). Other network failures are not retried.
        for attempt in (1, 2):
            try:
                return self.session.request(
                    method,
                    url,
                    params=kwargs.get("params") or None,
                    json=kwargs.get("json"),
                    headers=self._headers(),
                    proxies=self.proxies or None,
                    verify=self.verify,
                    timeout=(10, 30),
                )
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt == 1 and _was_reset(exc):
                    log.debug("%s: connection reset; retrying once", request_line)
                    continue
                raise self._network_error(exc, request_line) from (
                    None if self._leaks(exc) else exc
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _network_error(self, exc: BaseException, request_line: str) -> StreamConnectionError:
        reason = self._scrub(_describe_network_error(exc))
        return StreamConnectionError(
            f"{request_line}: {reason}", cause=None if self._leaks(exc) else exc
        )

    def _scrub(self, text: str) -> str:
        # Dependencies' messages may quote a header or a URL: keep no credential in ours.
        text = text.replace(self.bearer_token, "<redacted>")
        return _USERINFO.sub("//<redacted>@", text)

    def _leaks(self, exc: BaseException) -> bool:
        """Whether any exception in ``exc``'s chain would show a credential when printed."""
        seen: set[int] = set()
        pending: list[BaseException | None] = [exc]
        while pending:
            current = pending.pop()
            if current is None or id(current) in seen:
                continue
            seen.add(id(current))
            text = f"{current!s} {current!r}"
            if self.bearer_token in text or _USERINFO.search(text):
                return True
            pending.extend((current.__cause__, current.__context__))
            pending.extend(a for a in current.args if isinstance(a, BaseException))
            reason = getattr(current, "reason", None)
            if isinstance(reason, BaseException):
                pending.append(reason)
        return False

    # --- rules sync ----------------------------------------------------------------------------

    def sync_rules(
        self,
        desired: Iterable[StreamRule | str],
        *,
        dry_run: bool = False,
        allow_empty: bool = False,
    ) -> RulesSync:
        """Make the filtered stream's rules equal to ``desired``; return what changed.

        A rule is its (value, tag) pair: a rule whose tag differs is deleted and added
        again. ``desired`` holds :class:`StreamRule` (``id`` ignored) or plain values.

        Order, so that a failure never leaves fewer rules than needed: the additions are
        validated first with X's ``dry_run`` (nothing changes when one is invalid); then
        the new rules are added; then the old ones deleted; last, the rules whose tag
        changed are added back (X allows a value only once, so these cannot go first).
        With ``dry_run=True`` the diff is computed and the additions validated, and
        nothing changes.

        Args:
            desired: the rules wanted. Empty means "delete every rule": refused unless
                ``allow_empty=True`` (an empty file read by mistake must not wipe them).
            dry_run: only compute and validate.
            allow_empty: allow an empty ``desired``.

        Returns:
            A :class:`RulesSync`: ``added`` (with the ids X gave them, ``None`` in a dry
            run), ``deleted``, ``unchanged``.

        Raises:
            ValueError: ``desired`` is empty without ``allow_empty``, a rule has no value, or
                one value appears with two tags.
            RulesSyncError: the server rejected an addition or a call failed; it says what
                was applied and what was not (``added``, ``deleted``, ``not_added``,
                ``not_deleted``), with X's problem documents in ``errors``.
        """
        wanted = _desired_rules(desired)
        if not wanted and not allow_empty:
            raise ValueError(
                "sync_rules: the desired rule set is empty, which would delete every rule; "
                "pass allow_empty=True if that is what you want"
            )
        try:
            current = rules_of_doc(self._rules_doc("GET"))
        except RxTweetException as exc:
            raise RulesSyncError("could not read the current rules", cause=exc) from exc
        wanted_keys = {(r.value, r.tag) for r in wanted}
        unchanged = tuple(r for r in current if (r.value, r.tag) in wanted_keys)
        kept_keys = {(r.value, r.tag) for r in unchanged}
        deleted = tuple(r for r in current if (r.value, r.tag) not in wanted_keys)
        added = tuple(r for r in wanted if (r.value, r.tag) not in kept_keys)
        plan = RulesSync(added=added, deleted=deleted, unchanged=unchanged, dry_run=True)
        retagged = {r.value for r in deleted}

        if added:
            try:
                check = self._rules_doc("POST", json=_add_body(added), dry_run=True)
            except RxTweetException as exc:
                raise RulesSyncError(
                    "validating the additions failed",
                    plan=plan,
                    not_added=added,
                    not_deleted=deleted,
                    errors=_problems_of(exc),
                    cause=exc,
                ) from exc
            problems = [
                e
                for e in _errors_of_doc(check)
                if not (e.get("title") == "DuplicateRule" and e.get("value") in retagged)
            ]
            if problems:
                raise RulesSyncError(
                    f"the server rejected {len(problems)} rule(s)",
                    plan=plan,
                    not_added=added,
                    not_deleted=deleted,
                    errors=problems,
                )
        if dry_run:
            return plan

        done_added: list[StreamRule] = []
        fresh = tuple(r for r in added if r.value not in retagged)
        again = tuple(r for r in added if r.value in retagged)
        steps: list[tuple[str, tuple[StreamRule, ...]]] = [
            ("add", fresh),
            ("delete", deleted),
            ("add", again),
        ]
        done_deleted: tuple[StreamRule, ...] = ()
        for step, rules in steps:
            if not rules:
                continue
            try:
                if step == "add":
                    doc = self._rules_doc("POST", json=_add_body(rules))
                    created = rules_of_doc(doc)
                    done_added.extend(created)
                    errors = _errors_of_doc(doc)
                    if errors:
                        raise _SyncStepFailed(errors)
                else:
                    doc = self._rules_doc(
                        "POST", json={"delete": {"ids": [r.id for r in rules if r.id]}}
                    )
                    errors = _errors_of_doc(doc)
                    if errors:
                        done_deleted = self._which_deleted(rules)
                        raise _SyncStepFailed(errors)
                    done_deleted = rules
            except (RxTweetException, _SyncStepFailed) as exc:
                applied = {(r.value, r.tag) for r in done_added}
                gone = {r.id for r in done_deleted}
                problems = exc.errors if isinstance(exc, _SyncStepFailed) else _problems_of(exc)
                cause = exc if isinstance(exc, RxTweetException) else None
                raise RulesSyncError(
                    f"{'adding' if step == 'add' else 'deleting'} rules failed",
                    plan=plan,
                    added=tuple(done_added),
                    deleted=done_deleted,
                    not_added=tuple(r for r in added if (r.value, r.tag) not in applied),
                    not_deleted=tuple(r for r in deleted if r.id not in gone),
                    errors=problems,
                    cause=cause,
                ) from cause
        # In the plan's order (the desired order), with the ids X gave.
        with_ids = {(r.value, r.tag): r for r in done_added}
        return RulesSync(
            added=tuple(with_ids.get((r.value, r.tag), r) for r in added),
            deleted=deleted,
            unchanged=unchanged,
            dry_run=False,
        )

    def _which_deleted(self, rules: tuple[StreamRule, ...]) -> tuple[StreamRule, ...]:
        # X's delete errors do not say which id failed: ask which of them are still there.
        try:
            still = {r.id for r in rules_of_doc(self._rules_doc("GET"))}
        except RxTweetException:
            return ()  # unknown: report none as done rather than claim too much
        return tuple(r for r in rules if r.id not in still)


#: ``scheme://user:password@`` in any text (a URL quoted by a dependency's message).
_USERINFO = re.compile(r"//[^/\s@]+@")

_RESETS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, RemoteDisconnected)


def _was_reset(exc: BaseException) -> bool:
    """Whether ``exc`` is a reset (or close) of an established connection, not a refusal."""
    pending: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, urllib3.exceptions.NewConnectionError | requests.Timeout):
            return False
        if isinstance(current, _RESETS):
            return True
        pending.extend((current.__cause__, current.__context__))
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return False


def _describe_network_error(exc: BaseException) -> str:
    # The innermost cause says most ("Connection refused"); wrappers add pool internals.
    inner: BaseException = exc
    for _ in range(6):
        nested = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        reason = getattr(inner, "reason", None)
        following = reason if isinstance(reason, BaseException) else nested
        if following is None:
            break
        inner = following
    name = type(inner).__name__
    text = str(inner) or name
    if isinstance(inner, urllib3.exceptions.NewConnectionError):
        text = text.rpartition("): ")[2] or text  # drop "<HTTPConnection object at 0x...>"
    return text if name in text else f"{name}: {text}"


def _json_of(response: requests.Response, method: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise RxTweetException(
            f"{method} {redact_url(response.url or '')} answered {response.status_code} with "
            "a body that is not JSON"
        ) from exc


def _add_body(rules: Iterable[StreamRule]) -> dict[str, Any]:
    return {
        "add": [
            {k: v for k, v in (("value", r.value), ("tag", r.tag)) if v is not None} for r in rules
        ]
    }


def rules_of_doc(doc: Any) -> list[StreamRule]:
    """The rules in a rules endpoint's JSON answer (``{"data": [{"id", "value", "tag"}]}``).

    A server that answers in another shape (a broken proxy, a hostile or buggy server) gets
    a typed error rather than a ``TypeError`` from deep inside the caller.

    Raises:
        RxTweetException: ``doc`` is not an object, ``data`` not a list, or a rule not an
            object with a string ``value`` (and a string ``tag``, a string or integer ``id``).
    """
    rules = doc.get("data") if isinstance(doc, dict) else None
    if rules is None and isinstance(doc, dict):
        return []  # no rules: X leaves "data" out
    if not isinstance(rules, list):
        shape = "an object" if isinstance(doc, dict) else f"a {type(doc).__name__}"
        raise RxTweetException(_MALFORMED_RULES + f'{shape} without a "data" list')
    parsed = []
    for n, rule in enumerate(rules, 1):
        if not (
            isinstance(rule, dict)
            and isinstance(rule.get("value"), str)
            and isinstance(rule.get("tag"), str | None)
            and isinstance(rule.get("id"), str | int | None)
            and not isinstance(rule.get("id"), bool)
        ):
            raise RxTweetException(_MALFORMED_RULES + f"rule {n} is not a rule object")
        tag, rule_id = rule.get("tag"), rule.get("id")
        parsed.append(StreamRule(rule["value"], tag, None if rule_id is None else str(rule_id)))
    return parsed


_MALFORMED_RULES = "the rules endpoint answered with JSON that is not a rules answer: "


def _errors_of_doc(doc: dict[str, Any]) -> list[dict[str, Any]]:
    errors = doc.get("errors")
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _problems_of(exc: BaseException) -> list[dict[str, Any]]:
    if isinstance(exc, HTTPException):
        problems = [e for e in exc.api_errors if isinstance(e, dict)]
        if not problems and isinstance(exc.body, dict):
            problems = [exc.body]
        return problems
    return []


def _desired_rules(desired: Iterable[StreamRule | str]) -> list[StreamRule]:
    if isinstance(desired, str | bytes | StreamRule | Mapping):
        # A dict would be iterated as its keys: json.load of {"data": [...]} would become
        # the one rule "data", and every real rule would be deleted.
        raise TypeError(
            "sync_rules takes an iterable of StreamRule (or of rule values), "
            f"not a {type(desired).__name__}"
        )
    rules: dict[str, StreamRule] = {}
    for item in desired:
        rule = StreamRule(item) if isinstance(item, str) else item
        if not isinstance(rule, StreamRule):
            raise TypeError(f"sync_rules: expected StreamRule or str, not {type(item).__name__}")
        value = (rule.value or "").strip()
        if not value:
            raise ValueError("sync_rules: a rule has an empty value")
        other = rules.get(value)
        if other is not None and other.tag != rule.tag:
            raise ValueError(
                f"sync_rules: {value!r} appears with two tags ({other.tag!r} and {rule.tag!r}); "
                "X allows each rule value once"
            )
        rules[value] = StreamRule(value, rule.tag)
    return list(rules.values())


def format_rule_problem(problem: dict[str, Any]) -> str:
    """One of X's rule problem documents as one line: ``title: detail; detail`` (the
    per-rule ``details`` list of an invalid rule included)."""
    title = problem.get("title") or "rejected"
    details = problem.get("details")
    messages = [str(d) for d in details if d] if isinstance(details, list) else []
    if not messages:
        messages = [str(problem.get("detail") or problem.get("message") or "")]
    messages = [m for m in messages if m]
    for nested in problem.get("errors") or []:
        if isinstance(nested, dict) and nested.get("message"):
            messages.append(str(nested["message"]))
    value = problem.get("value")
    head = f"{value!r}: {title}" if isinstance(value, str) else str(title)
    return f"{head}: {'; '.join(messages)}" if messages else head


class _SyncStepFailed(Exception):
    # A 2xx answer whose errors list says part of a step was not applied.
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class RulesSync:
    """What :meth:`StreamingClient.sync_rules` changed (or, with ``dry_run``, would change).

    Attributes:
        added: rules added (with their new ids; without ids in a dry run).
        deleted: rules deleted (with their ids).
        unchanged: rules already there and wanted.
        dry_run: ``True`` when nothing was applied.
    """

    added: tuple[StreamRule, ...] = ()
    deleted: tuple[StreamRule, ...] = ()
    unchanged: tuple[StreamRule, ...] = ()
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        """Whether anything was (or would be) added or deleted."""
        return bool(self.added or self.deleted)


class RulesSyncError(RxTweetException):
    """:meth:`StreamingClient.sync_rules` stopped before the rules matched; says exactly
    what was applied.

    Attributes:
        plan: the intended :class:`RulesSync` (``None`` if the current rules could not be read).
        added, deleted: rules that were applied before the failure.
        not_added, not_deleted: rules of the plan that were not.
        errors: X's problem documents for the failure (``details`` of invalid rules included).
        cause: the exception of a failed call (HTTP or network), or ``None``.
    """

    def __init__(
        self,
        what: str,
        *,
        plan: RulesSync | None = None,
        added: tuple[StreamRule, ...] = (),
        deleted: tuple[StreamRule, ...] = (),
        not_added: tuple[StreamRule, ...] = (),
        not_deleted: tuple[StreamRule, ...] = (),
        errors: list[dict[str, Any]] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        self.plan = plan
        self.added = added
        self.deleted = deleted
        self.not_added = not_added
        self.not_deleted = not_deleted
        self.errors: list[dict[str, Any]] = list(errors or [])
        self.cause = cause
        parts = [f"rules sync failed: {what}"]
        if cause is not None:
            parts[0] += f" ({cause})"
        parts.extend(format_rule_problem(e) for e in self.errors)
        if not (added or deleted):
            parts.append("nothing was changed")
        else:
            parts.append(f"applied: {_listing(added, deleted)}")
        if not_added or not_deleted:
            parts.append(f"not applied: {_listing(not_added, not_deleted)}")
        super().__init__("; ".join(parts))


def _listing(added: tuple[StreamRule, ...], deleted: tuple[StreamRule, ...]) -> str:
    bits = [f"add {r.value!r}" for r in added] + [f"delete {r.value!r}" for r in deleted]
    return ", ".join(bits)
