"""API v1.1: :class:`Stream` (tweepy's face and the reactive one) and :class:`V1Stream`.

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
(OAuth 1.0a, a form body for ``statuses/filter``), the message types
(:func:`rxtweet.status.to_v1_message`) and two small line-level operators:

* :func:`length_delimited` for ``delimited=length`` framing;
* a guard that ends the stream (without reconnecting) on the disconnect codes that a
  reconnect cannot cure, see :attr:`Stream.fatal_disconnect_codes`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import requests
from reactivex import Observable, abc
from requests_oauthlib import OAuth1

from .basestream import BaseStream
from .connection import Connection, Item, LineOperator, select_events, select_messages
from .credentials import clean_credential
from .errors import FatalDisconnect, StreamConnectionError
from .events import StreamEvent, UnknownMessage
from .http import StreamRequest
from .parse import Parsed, decode
from .reconnect import ReconnectPolicy
from .status import (
    DeleteNotice,
    DisconnectNotice,
    LimitNotice,
    ScrubGeoNotice,
    StallWarning,
    Status,
    StatusWithheldNotice,
    UnknownNotice,
    UserWithheldNotice,
    V1Message,
    _classify,
    is_v1_data,
    to_v1_message,
)
from .transport import DEFAULT_CHUNK_SIZE

__all__ = [
    "DEFAULT_FATAL_DISCONNECT_CODES",
    "DelimitedStats",
    "FatalDisconnect",
    "LengthFramingError",
    "Stream",
    "UnknownMessage",
    "V1Stream",
    "filter_params",
    "length_delimited",
    "sample_params",
]

log = logging.getLogger("rxtweet.v1")

DEFAULT_BASE_URL = "https://stream.twitter.com"

#: Disconnect codes after which reconnecting with the same credentials cannot help:
#: 2 "duplicate stream" and 7 "admin logout" (another connection with these credentials
#: took over: reconnecting would throw it off, and it would throw us off, for ever), and
#: 6 "token revoked" (the next connect would only earn a 401).
DEFAULT_FATAL_DISCONNECT_CODES: Final = frozenset({2, 6, 7})

#: ``statuses/filter`` limits (X's documented defaults for standard access).
MAX_TRACK = 400
MAX_FOLLOW = 5000
MAX_BOXES = 25
MAX_PHRASE_BYTES = 60
FILTER_LEVELS = ("none", "low", "medium")

#: The longest ``delimited=length`` length accepted: the transport's default ``max_line``
#: (64 MiB) plus the CRLF. A longer one cannot frame a message rxtweet would keep.
MAX_DELIMITED_LENGTH: Final = 64 * 1024 * 1024 + 2

#: After this many messages in a row of no v1.1 type, one WARNING says that the stream does
#: not look like API v1.1 (e.g. API v2 lines served to a v1.1 client).
UNKNOWN_STREAK_WARNING: Final = 20


# --- OAuth 1.0a -------------------------------------------------------------------------------

_signing = threading.local()


class _WhileSigning(logging.Filter):
    """Drops the OAuth libraries' DEBUG records made while rxtweet signs a request.

    requests-oauthlib and oauthlib log the Authorization header (consumer key, access
    token, signature) and the signature base string at DEBUG; rxtweet keeps credentials
    out of logs. Only records made on the signing thread, inside rxtweet's signer, are
    dropped: the libraries' logging is untouched for everyone else.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not getattr(_signing, "active", False)


_OAUTH_LOGGERS = ("requests_oauthlib.oauth1_auth", "oauthlib.oauth1.rfc5849")
for _name in _OAUTH_LOGGERS:
    logging.getLogger(_name).addFilter(_WhileSigning())


class _QuietOAuth1(OAuth1):  # type: ignore[misc]
    """``requests_oauthlib.OAuth1`` (HMAC-SHA1), without the credentials in DEBUG logs."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        _signing.active = True
        try:
            return super().__call__(r)  # type: ignore[no-any-return]
        finally:
            _signing.active = False

    def __repr__(self) -> str:
        return "<OAuth1 HMAC-SHA1>"


# --- parameters -------------------------------------------------------------------------------


def _listed(name: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        raise TypeError(f"{name} must be a list, not a string: use {name}=[{value!r}]")
    if not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list, not {type(value).__name__}")
    return list(value)


def _phrases(name: str, value: Any, *, max_bytes: int | None = None) -> list[str]:
    items = _listed(name, value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name}: {item!r} is not a string")
        if not item.strip():
            raise ValueError(f"{name}: empty or blank item {item!r}")
        if "," in item:
            raise ValueError(
                f"{name}: {item!r} contains a comma, which separates items on the wire; "
                "pass each item separately"
            )
        if max_bytes is not None and len(item.encode("utf-8")) > max_bytes:
            raise ValueError(
                f"{name}: {item!r} is {len(item.encode('utf-8'))} bytes of UTF-8; "
                f"X accepts 1 to {max_bytes}"
            )
    return items


def _follow_ids(value: Any) -> list[str]:
    ids: list[str] = []
    for item in _listed("follow", value):
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise TypeError(f"follow: {item!r} is not a user id (an int or a string of digits)")
        text = str(item)
        if not (text.isascii() and text.isdigit()) or int(text) == 0:
            raise ValueError(
                f"follow: {item!r} is not a user id (a positive integer; "
                "screen names are not accepted)"
            )
        ids.append(text)
    if len(ids) > MAX_FOLLOW:
        raise ValueError(f"follow: {len(ids)} user ids; X accepts at most {MAX_FOLLOW}")
    return ids


def _locations(value: Any) -> list[str]:
    numbers = _listed("locations", value)
    for x in numbers:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise TypeError(f"locations: {x!r} is not a number")
        if not math.isfinite(x):
            raise ValueError(f"locations: {x!r} is not a finite number")
    if len(numbers) % 4:
        raise ValueError(
            f"locations: {len(numbers)} numbers; need 4 per bounding box "
            "(south-west longitude, latitude, then north-east longitude, latitude)"
        )
    boxes = len(numbers) // 4
    if boxes > MAX_BOXES:
        raise ValueError(f"locations: {boxes} bounding boxes; X accepts at most {MAX_BOXES}")
    for i in range(boxes):
        sw_lon, sw_lat, ne_lon, ne_lat = numbers[4 * i : 4 * i + 4]
        where = f"locations box {i + 1} {[sw_lon, sw_lat, ne_lon, ne_lat]}"
        if not (-180 <= sw_lon <= 180 and -180 <= ne_lon <= 180):
            raise ValueError(f"{where}: longitudes must be within [-180, 180]")
        if not (-90 <= sw_lat <= 90 and -90 <= ne_lat <= 90):
            raise ValueError(f"{where}: latitudes must be within [-90, 90]")
        if not (sw_lon < ne_lon and sw_lat < ne_lat):
            raise ValueError(
                f"{where}: give the south-west corner first (its longitude and latitude "
                "must be below the north-east corner's)"
            )
    return [f"{x:.4f}" for x in numbers]


def _common(params: dict[str, str], languages: Any, stall_warnings: bool, delimited: Any) -> None:
    langs = _phrases("languages", languages)
    if langs:
        params["language"] = ",".join(langs)
    if stall_warnings:
        params["stall_warnings"] = "true"
    if delimited is not None:
        if delimited != "length":
            raise ValueError(f"delimited must be 'length' or None, not {delimited!r}")
        params["delimited"] = "length"


def filter_params(
    *,
    follow: Iterable[int | str] | None = None,
    track: Iterable[str] | None = None,
    locations: Iterable[float] | None = None,
    filter_level: str | None = None,
    languages: Iterable[str] | None = None,
    stall_warnings: bool = False,
    delimited: str | None = None,
) -> dict[str, str]:
    """tweepy's ``Stream.filter`` arguments -> the ``statuses/filter`` form body, checked.

    As tweepy: ``follow`` ids and ``track`` phrases joined by commas, ``locations`` as
    ``%.4f`` numbers joined by commas, ``language`` from ``languages``,
    ``stall_warnings=true``; plus ``delimited=length`` when asked. Raises ``ValueError``
    (or ``TypeError`` for a wrong type) before anything connects: none of
    follow/track/locations; a track phrase that is blank, over 60 bytes of UTF-8 or holds a
    comma; more than 400 phrases, 5,000 ids or 25 boxes; an id that is not a positive
    integer (or a string of digits); locations not 4 numbers per box, out of range, or
    north-east before south-west; ``filter_level`` not ``none``/``low``/``medium``. A plain
    string where a list is expected is a ``TypeError`` (tweepy would split it into
    characters).
    """
    ids = _follow_ids(follow)
    phrases = _phrases("track", track, max_bytes=MAX_PHRASE_BYTES)
    if len(phrases) > MAX_TRACK:
        raise ValueError(f"track: {len(phrases)} phrases; X accepts at most {MAX_TRACK}")
    boxes = _locations(locations)
    if not (ids or phrases or boxes):
        raise ValueError("filter() needs at least one of follow, track or locations")
    params: dict[str, str] = {}
    if ids:
        params["follow"] = ",".join(ids)
    if phrases:
        params["track"] = ",".join(phrases)
    if boxes:
        params["locations"] = ",".join(boxes)
    if filter_level is not None:
        if filter_level not in FILTER_LEVELS:
            raise ValueError(
                f"filter_level must be one of {', '.join(FILTER_LEVELS)}, not {filter_level!r}"
            )
        params["filter_level"] = filter_level
    _common(params, languages, stall_warnings, delimited)
    return params


def sample_params(
    *,
    languages: Iterable[str] | None = None,
    stall_warnings: bool = False,
    delimited: str | None = None,
) -> dict[str, str]:
    """tweepy's ``Stream.sample`` arguments -> the ``statuses/sample`` query, checked."""
    params: dict[str, str] = {}
    _common(params, languages, stall_warnings, delimited)
    return params


# --- line-level operators ---------------------------------------------------------------------


class LengthFramingError(StreamConnectionError):
    """``delimited=length`` framing broke: a length line that is no length X could send
    (not a decimal number, negative, or beyond :data:`MAX_DELIMITED_LENGTH`).

    A network-level failure (a :class:`~rxtweet.errors.StreamConnectionError`): the
    connection is dropped and reconnected like one that was cut, never taken for an error of
    the user's code.
    """


class DelimitedStats:
    """Counters of :func:`length_delimited`: ``lengths`` (length lines consumed) and
    ``mismatches`` (a length that did not match its message, a message without a length,
    a length without a message). Each mismatch is also logged at WARNING. A length line
    that is no length at all is not a mismatch but a :class:`LengthFramingError`."""

    __slots__ = ("lengths", "mismatches")

    def __init__(self) -> None:
        self.lengths = 0
        self.mismatches = 0

    def __repr__(self) -> str:
        return f"DelimitedStats(lengths={self.lengths}, mismatches={self.mismatches})"


def length_delimited(
    stats: DelimitedStats | None = None,
) -> Callable[[Observable[bytes]], Observable[bytes]]:
    """An operator over the lines of one connection for ``delimited=length`` framing.

    X then writes each message as ``<length>\\r\\n<message>\\r\\n``, where the length counts
    the message's bytes *including* its ``\\r\\n``; keep-alive newlines may come before a
    length line. A JSON message never holds a raw newline, so the transport already splits
    this into a digits-only line and the message line. This operator consumes each length
    line, checks it against the next line (``len(line) + 2 == length``) and passes the
    message on; keep-alives pass through. A mismatch (or a message without a length, or two
    lengths in a row) is logged at WARNING and counted in ``stats``; the message is passed
    on all the same, never dropped silently. The state is per subscription, i.e. per
    connection: after a reconnect it starts afresh.

    A line that starts like a length but is none (``12a``, ``-5``, ``+5``, a number of more
    digits than any length has, or above :data:`MAX_DELIMITED_LENGTH`) means the framing is
    lost: the connection errors with :class:`LengthFramingError` (a
    :class:`~rxtweet.errors.StreamConnectionError`, so the stream reconnects) and ignores
    whatever else the dropped connection still delivers.
    """
    counters = stats if stats is not None else DelimitedStats()

    def mismatch(what: str) -> None:
        counters.mismatches += 1
        log.warning("delimited=length: %s (mismatches so far: %d)", what, counters.mismatches)

    def operator(source: Observable[bytes]) -> Observable[bytes]:
        def subscribe(
            observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            expected: int | None = None
            failed = False
            emit = observer.on_next

            def on_next(line: bytes) -> None:
                nonlocal expected, failed
                if failed:
                    return  # the connection is being dropped: nothing more is framed
                if not line or line.isspace():
                    emit(line)  # a keep-alive
                    return
                if line[0] != 0x7B:  # "{": the common case skips the digit test
                    digits = line.strip()
                    if digits[:1] in _LENGTH_START:
                        length = _length(digits)
                        if length is None:
                            failed = True
                            observer.on_error(_framing_error(digits))
                            return
                        counters.lengths += 1
                        if expected is not None:
                            mismatch(f"a length line ({expected}) had no message")
                        expected = length
                        return
                if expected is None:
                    mismatch(f"a message of {len(line) + 2} bytes had no length line")
                elif len(line) + 2 != expected:
                    mismatch(
                        f"the length line said {expected} bytes, the message has {len(line) + 2}"
                    )
                expected = None
                emit(line)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


#: First bytes of a line that can only be meant as a length line.
_LENGTH_START: Final = frozenset(bytes([b]) for b in b"0123456789+-")
_MAX_LENGTH_DIGITS: Final = len(str(MAX_DELIMITED_LENGTH))


def _length(digits: bytes) -> int | None:
    """The length a length line states, or ``None`` if it is no valid length.

    Checked before ``int()``: a line of thousands of digits must not reach it (Python
    refuses to convert more than 4,300 digits, with a ``ValueError``)."""
    if len(digits) > _MAX_LENGTH_DIGITS or not digits.isdigit():  # isdigit: ASCII only
        return None
    length = int(digits)
    return length if length <= MAX_DELIMITED_LENGTH else None


def _framing_error(digits: bytes) -> LengthFramingError:
    preview = digits[:24]
    more = "..." if len(digits) > len(preview) else ""
    return LengthFramingError(
        f"delimited=length: framing lost: a length line of {len(digits)} bytes "
        f"({preview!r}{more}) is not a length from 0 to {MAX_DELIMITED_LENGTH}"
    )


def _end_on_fatal_disconnect(
    codes: frozenset[int],
) -> Callable[[Observable[bytes]], Observable[bytes]]:
    """Passes lines on; after a disconnect message whose code is in ``codes``, errors with
    :class:`FatalDisconnect` (which the reconnect policy does not retry). The message itself
    is delivered first, so the hooks and substreams see it."""

    def operator(source: Observable[bytes]) -> Observable[bytes]:
        def subscribe(
            observer: abc.ObserverBase[bytes], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(line: bytes) -> None:
                observer.on_next(line)
                if b'"disconnect"' not in line[:24]:
                    return
                doc = decode(line)
                inner = doc.get("disconnect") if isinstance(doc, dict) else None
                if type(inner) is not dict:
                    return
                notice = DisconnectNotice(inner)
                if notice.code in codes:
                    log.error(
                        "X sent disconnect code %s (%s): %s. Not reconnecting: another "
                        "connection with the same credentials would be thrown off, or the "
                        "credentials no longer work.",
                        notice.code,
                        notice.meaning,
                        notice.reason,
                    )
                    observer.on_error(FatalDisconnect(notice))
                else:
                    log.info(
                        "X sent disconnect code %s (%s): %s; reconnecting when it closes",
                        notice.code,
                        notice.meaning,
                        notice.reason,
                    )

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return operator


def _v1_framing(stats: DelimitedStats | None, fatal_codes: frozenset[int]) -> LineOperator | None:
    """The v1.1 line operators for one connection, or ``None`` when none applies."""
    operators: list[LineOperator] = []
    if stats is not None:  # delimited=length
        operators.append(length_delimited(stats))
    if fatal_codes:
        operators.append(_end_on_fatal_disconnect(fatal_codes))
    if not operators:
        return None

    def frame(source: Observable[bytes]) -> Observable[bytes]:
        for operator in operators:
            source = source.pipe(operator)
        return source

    return frame


def _watching_unknown(limit: int = UNKNOWN_STREAK_WARNING) -> Callable[[dict[str, Any]], V1Message]:
    """:func:`~rxtweet.status.to_v1_message` for one connection, watching for a stream that
    is not v1.1 at all.

    Each unknown message is logged at WARNING (its keys), as by ``to_v1_message``; after
    ``limit`` of them in a row, one WARNING says that the stream does not look like API v1.1
    (and, when the messages have v2's keys, that it looks like API v2), and later unknown
    messages of the same run are logged at DEBUG only, so a mix-up does not flood the log.
    """
    streak = 0
    warned = False

    def convert(doc: dict[str, Any]) -> V1Message:
        nonlocal streak, warned
        message = _classify(doc)
        if type(message) is not UnknownNotice:
            streak = 0
            return message
        streak += 1
        keys = ", ".join(list(doc)[:10])
        if streak > limit and warned:
            log.debug("Received unknown message type (keys: %s)", keys)
            return message
        log.warning("Received unknown message type (keys: %s)", keys)
        if streak == limit and not warned:
            warned = True
            v2 = any(key in doc for key in ("data", "matching_rules", "includes"))
            log.warning(
                "%d messages in a row were of no API v1.1 type: this stream does not look "
                "like API v1.1%s. Check the URL (base_url) and the endpoint. Further unknown "
                "messages in a row are logged at DEBUG.",
                limit,
                " (its messages look like API v2: use rxtweet.StreamingClient)" if v2 else "",
            )
        return message

    return convert


# --- the reactive face ------------------------------------------------------------------------


def _of_type(cls: type[Any]) -> Callable[[Any], Any]:
    def pick(message: Any) -> Any:
        return message if type(message) is cls else None

    return pick


def _identity(message: V1Message) -> V1Message:
    return message


def _unknown_as_events(source: Observable[Item[Any]]) -> Observable[Item[Any]]:
    """Each parsed :class:`UnknownNotice` -> an :class:`UnknownMessage` event."""

    def subscribe(
        observer: abc.ObserverBase[Item[Any]], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        emit = observer.on_next

        def on_next(item: Any) -> None:
            if type(item) is Parsed and type(item.value) is UnknownNotice:
                emit(UnknownMessage(item.raw, item.value.type_keys))
            else:
                emit(item)

        return source.subscribe(
            on_next, observer.on_error, observer.on_completed, scheduler=scheduler
        )

    return Observable(subscribe)


class V1Stream:
    """The observables of one v1.1 stream. It holds observables; it is not one.

    All substreams but :attr:`lines` share one connection (subscribe inside :meth:`hold`
    to attach several before it opens), exactly as :class:`~rxtweet.TweetStream`.

    Attributes:
        items: everything on the shared connection, in order: each message as
            ``Parsed(value, raw)`` (the model and the exact bytes received) and each event.
        lines: cold raw lines (length lines already consumed with ``delimited="length"``);
            each subscription opens its own reconnecting connection.
        messages: every message, typed: a :class:`~rxtweet.status.Status` or a
            :class:`~rxtweet.status.Notice` subclass (:class:`~rxtweet.status.UnknownNotice`
            for unknown types). Match on the type.
        statuses: the :class:`~rxtweet.status.Status` messages.
        deletes: :class:`~rxtweet.status.DeleteNotice` (``.id``, ``.user_id``).
        limits: :class:`~rxtweet.status.LimitNotice` (``.track``).
        scrub_geo: :class:`~rxtweet.status.ScrubGeoNotice`.
        status_withheld: :class:`~rxtweet.status.StatusWithheldNotice`.
        user_withheld: :class:`~rxtweet.status.UserWithheldNotice`.
        warnings: :class:`~rxtweet.status.StallWarning` (with ``stall_warnings=True``).
        disconnect_messages: :class:`~rxtweet.status.DisconnectNotice`.
        events: lifecycle events, plus :class:`UnknownMessage` for each message of unknown
            type; completes after ``Disconnected``.
        stats: parse counters; delimited: ``delimited=length`` counters.
    """

    def __init__(
        self, connection: Connection[V1Message], delimited: DelimitedStats | None = None
    ) -> None:
        self.connection = connection
        items = connection.items
        self.items: Observable[Item[Any]] = items
        self.lines: Observable[bytes] = connection.lines
        self.messages: Observable[V1Message] = items.pipe(select_messages(_identity))
        self.statuses: Observable[Status] = items.pipe(select_messages(_of_type(Status)))
        self.deletes: Observable[DeleteNotice] = items.pipe(select_messages(_of_type(DeleteNotice)))
        self.limits: Observable[LimitNotice] = items.pipe(select_messages(_of_type(LimitNotice)))
        self.scrub_geo: Observable[ScrubGeoNotice] = items.pipe(
            select_messages(_of_type(ScrubGeoNotice))
        )
        self.status_withheld: Observable[StatusWithheldNotice] = items.pipe(
            select_messages(_of_type(StatusWithheldNotice))
        )
        self.user_withheld: Observable[UserWithheldNotice] = items.pipe(
            select_messages(_of_type(UserWithheldNotice))
        )
        self.warnings: Observable[StallWarning] = items.pipe(
            select_messages(_of_type(StallWarning))
        )
        self.disconnect_messages: Observable[DisconnectNotice] = items.pipe(
            select_messages(_of_type(DisconnectNotice))
        )
        self.events: Observable[StreamEvent] = items.pipe(_unknown_as_events, select_events())
        self.stats = connection.stats
        self.delimited = delimited if delimited is not None else DelimitedStats()

    @contextmanager
    def hold(self) -> Iterator[V1Stream]:
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
        return f"<V1Stream {self.connection.request!r}>"


# --- Stream -----------------------------------------------------------------------------------


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
        stall_timeout: seconds without a byte before reconnecting; X sends a keep-alive
            every 30 s on v1.1 and advises 90 s.
        Others: see :class:`~rxtweet.basestream.BaseStream`.

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
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        daemon: bool = False,
        max_retries: float = math.inf,
        proxy: str | None = None,
        verify: bool | str = True,
        base_url: str = DEFAULT_BASE_URL,
        reconnect: ReconnectPolicy | None = None,
        stall_timeout: float = 90.0,
        scheduler: abc.SchedulerBase | None = None,
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
        return self._stream("POST", "statuses/filter", params)

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
        return self._stream("GET", "statuses/sample", params)

    def _stream(self, method: str, endpoint: str, params: dict[str, str]) -> V1Stream:
        delimited = DelimitedStats() if params.get("delimited") == "length" else None
        return V1Stream(self._connection(method, endpoint, params, delimited), delimited)

    def _connection(
        self,
        method: str,
        endpoint: str,
        params: dict[str, str],
        delimited: DelimitedStats | None = None,
    ) -> Connection[V1Message]:
        url = f"{self.base_url}/1.1/{endpoint}.json"
        headers = {"User-Agent": self.user_agent}
        if method == "POST":
            # OAuth1 signs a form body only when the request says it is one.
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = StreamRequest(
            method,
            url,
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
        if delimited is None and params.get("delimited") == "length":
            delimited = DelimitedStats()
        return Connection(
            request,
            _watching_unknown(),
            is_data=is_v1_data,
            frame=_v1_framing(delimited, frozenset(self.fatal_disconnect_codes)),
            policy=self.reconnect,
            session=self.session,
            stall_timeout=self.stall_timeout,
            chunk_size=self.chunk_size,
            scheduler=self.scheduler,
        )

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
        :class:`~rxtweet.basestream.StreamAlreadyRunning` if already running. A
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
        return self._start(
            self._connection("POST", "statuses/filter", params), threaded, since=since
        )

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
        return self._start(
            self._connection("GET", "statuses/sample", params), threaded, since=since
        )

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
