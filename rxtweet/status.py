"""API v1.1 messages: the :class:`Status` model (tweepy's ``Status``, lazy) and the notices.

A v1.1 stream (``statuses/filter``, ``statuses/sample``) sends one JSON object per line. Each
becomes one of the types of :data:`V1Message` by :func:`to_v1_message`, the ``convert``
function the v1.1 connection passes to :func:`rxtweet.parse.parse_lines`:

========================================  ==========================================
message                                   becomes
========================================  ==========================================
a status (has ``in_reply_to_status_id``)  :class:`Status`
``{"delete": {"status": {...}}}``         :class:`DeleteNotice`
``{"disconnect": {...}}``                 :class:`DisconnectNotice`
``{"limit": {"track": N}}``               :class:`LimitNotice`
``{"scrub_geo": {...}}``                  :class:`ScrubGeoNotice`
``{"status_withheld": {...}}``            :class:`StatusWithheldNotice`
``{"user_withheld": {...}}``              :class:`UserWithheldNotice`
``{"warning": {...}}``                    :class:`StallWarning`
anything else                             :class:`UnknownNotice` (logged at WARNING)
========================================  ==========================================

The keys are tested in tweepy 4.12's order (``Stream.on_data``), so a message is classified
exactly as tweepy classifies it. One addition: an object with ``id``, ``user`` and ``text``
(or ``full_text``) but no ``in_reply_to_status_id`` (trimmed or hand-made data) is a
:class:`Status` too, where tweepy would log it as an unknown type.

**Status and User** have tweepy's attribute names and conversions (``created_at`` ->
tz-aware UTC ``datetime``, ``user``/``author`` -> :class:`User`, ``retweeted_status`` and
``quoted_status`` -> :class:`Status`, ``place`` -> :class:`Place` or ``None``, ``source``
stripped of its HTML with ``source_url`` beside it, ``User.following`` -> ``bool``), but
like :mod:`rxtweet.models` they only wrap the decoded dict and convert on access. As in
tweepy, an attribute whose key is absent raises ``AttributeError``, so the idiom
``hasattr(status, "retweeted_status")`` keeps working; every other key of the message is
an attribute too (``status.favorite_count``), and ``status._json`` is the raw dict, as in
tweepy. Beyond tweepy: ``status["key"]`` (mapping access, see :mod:`rxtweet.models`),
``status.data`` (the raw dict), :attr:`Status.full_text` (the untruncated text whatever
the message's shape), ``id_str`` derived from ``id`` for 2009/2010 data that has none.

**Notices** are small lazy views of the inner object (``notice.data`` is
``message["scrub_geo"]`` etc., exactly what tweepy passes to its hooks), with typed
attributes for the documented fields. They compare equal when their data are equal.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Final, TypeAlias, TypeVar, overload

from .models import Field, _Model, _short

_V = TypeVar("_V")

__all__ = [
    "DISCONNECT_CODES",
    "BoundingBox",
    "DeleteNotice",
    "DisconnectNotice",
    "LimitNotice",
    "Notice",
    "Place",
    "ScrubGeoNotice",
    "StallWarning",
    "Status",
    "StatusWithheldNotice",
    "UnknownNotice",
    "User",
    "UserWithheldNotice",
    "V1Message",
    "is_v1_data",
    "parse_created_at",
    "to_v1_message",
]

log = logging.getLogger("rxtweet.v1")

# --- timestamps ---------------------------------------------------------------------------

_ISO_MONTHS: Final = {
    name: f"-{number:02d}-"
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_fromisoformat: Final = datetime.fromisoformat


def parse_created_at(value: str) -> datetime:
    """A v1.1 timestamp (``"Wed Oct 10 20:19:24 +0000 2018"``) -> tz-aware ``datetime``.

    Equal to tweepy's ``email.utils.parsedate_to_datetime(value)``. X always sends
    ``+0000``; that shape is rearranged into ISO 8601 for ``datetime.fromisoformat``
    (0.7 us, against 4.4 us for ``parsedate_to_datetime`` and 8.8 us for ``strptime``);
    any other offset goes through ``parsedate_to_datetime``. Raises ``ValueError`` for
    something that is not such a timestamp.
    """
    if len(value) == 30 and value[20:26] == "+0000 " and value[19] == " ":
        month = _ISO_MONTHS.get(value[4:7])
        if month is not None:
            try:
                return _fromisoformat(
                    value[26:30] + month + value[8:10] + "T" + value[11:19] + "+00:00"
                )
            except ValueError:
                pass
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"not a v1.1 timestamp: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# --- helpers --------------------------------------------------------------------------------


class Key(Field[_V]):
    """A :class:`~rxtweet.models.Field` with tweepy v1.1 semantics: tweepy sets an attribute
    for each key *present* in the message, so an absent key raises ``AttributeError`` (and
    ``hasattr`` tells), a ``null`` is ``None``, and any other value is converted."""

    __slots__ = ()

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Key[_V]: ...

    @overload
    def __get__(self, obj: _Model, owner: type | None = None) -> _V: ...

    def __get__(self, obj: _Model | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            value = obj.data[self.name]
        except KeyError:
            raise AttributeError(self.name) from None
        convert = self.convert
        return value if convert is None or value is None else convert(value)


def _as_int(value: Any) -> int:
    """``value`` as an ``int``: an ``int`` (not a ``bool``), a float with an integral value,
    or a string of an integer. Anything else raises ``ValueError`` (never ``TypeError`` or
    ``OverflowError``: ``1e999``, ``"many"``, ``[1]``, a 5,000-digit string all give
    ``ValueError``)."""
    kind = type(value)
    if kind is int:
        return value  # type: ignore[no-any-return]
    try:
        if kind is str:
            return int(value)
        if kind is float and value.is_integer():  # False for inf and nan
            return int(value)
    except ValueError:
        pass
    raise ValueError(f"{kind.__name__} is not an integer")


def _id_of(data: dict[str, Any], key: str = "id") -> int:
    """``data[key]`` as an ``int``; from ``<key>_str`` when the number is not an int.

    Raises ``AttributeError`` when neither is there, ``ValueError`` when it is no integer.
    """
    value = data.get(key)
    if type(value) is int:
        return value
    text = data.get(key + "_str")
    if text is not None:
        return _as_int(text)
    if value is None:
        raise AttributeError(key)
    return _as_int(value)


# --- Status, User, Place ----------------------------------------------------------------------


class Status(_Model):
    """A v1.1 Tweet, as tweepy's ``Status``: same attribute names, converted on access.

    Absent keys raise ``AttributeError`` (``hasattr(status, "retweeted_status")`` tells a
    retweet), except the additions ``full_text`` and ``id_str``. Nested models
    (``user``, ``retweeted_status`` …) are new wrappers on each read: equal, not identical.
    Equal to another :class:`Status` with the same ``id``; hashed by it.
    """

    __slots__ = ()

    @property
    def id(self) -> int:
        """The id (``int``); from ``id_str`` when ``id`` is not an integer."""
        return _id_of(self.data)

    @property
    def id_str(self) -> str:
        """``id_str``, or ``str(id)`` for data that has none (before late 2010)."""
        value = self.data.get("id_str")
        return value if value is not None else str(self.id)

    @property
    def text(self) -> str:
        """``text`` (at most 140 characters, ``…``-truncated for longer tweets)."""
        data = self.data
        value = data.get("text")
        if value is None:
            value = data.get("full_text")  # REST "extended" mode sends only full_text
            if value is None:
                raise AttributeError("text")
        return value  # type: ignore[no-any-return]

    @property
    def full_text(self) -> str:
        """The untruncated text: ``extended_tweet.full_text``, else ``full_text``, else
        ``text``. For a retweet, read ``status.retweeted_status.full_text``."""
        data = self.data
        extended = data.get("extended_tweet")
        if type(extended) is dict:
            value = extended.get("full_text")
            if value is not None:
                return value  # type: ignore[no-any-return]
        value = data.get("full_text")
        return value if value is not None else self.text

    #: ``created_at`` as a tz-aware UTC ``datetime``.
    created_at = Key[datetime](parse_created_at)
    #: The author.
    user = Key["User"](lambda data: User(data))
    #: The retweeted status (only on retweets).
    retweeted_status = Key["Status"](lambda data: Status(data))
    #: The quoted status (on quote tweets, when X included it).
    quoted_status = Key["Status"](lambda data: Status(data))
    #: The tagged place, or ``None``.
    place = Key["Place | None"](lambda data: Place(data))
    entities = Key[dict[str, Any]]()
    #: The raw ``extended_tweet`` (``full_text``, ``entities`` …) of a long tweet.
    extended_tweet = Key[dict[str, Any]]()
    lang = Key["str | None"]()
    #: When the stream sent it: epoch milliseconds, as the string X sends.
    timestamp_ms = Key[str]()
    in_reply_to_status_id = Key["int | None"]()
    in_reply_to_user_id = Key["int | None"]()
    in_reply_to_screen_name = Key["str | None"]()

    @property
    def author(self) -> User:
        """The author, as :attr:`user` (tweepy sets both)."""
        return self.user

    @property
    def source(self) -> str:
        """The client's name: tweepy strips ``<a href="URL" rel="nofollow">NAME</a>``."""
        value: str = _required(self.data, "source")
        if "<" in value:
            return value[value.find(">") + 1 : value.rfind("<")]
        return value

    @property
    def source_url(self) -> str | None:
        """The client's URL from ``source`` (``None`` when ``source`` is plain text)."""
        value: str = _required(self.data, "source")
        if "<" in value:
            start = value.find('"') + 1
            return value[start : value.find('"', start)]
        return None

    @property
    def _json(self) -> dict[str, Any]:
        """The raw message, as tweepy's ``Status._json``."""
        return self.data

    def __repr__(self) -> str:
        data = self.data
        user = data.get("user")
        name = user.get("screen_name") if type(user) is dict else None
        return f"<Status id={data.get('id')} user={name} text={_short(data.get('text'))}>"


def _required(data: dict[str, Any], name: str) -> Any:
    try:
        return data[name]
    except KeyError:
        raise AttributeError(name) from None


class User(_Model):
    """A v1.1 user, as tweepy's ``User``: ``created_at`` -> ``datetime``, ``following`` ->
    ``bool``, ``status`` -> :class:`Status`; absent keys raise ``AttributeError``.
    Equal to another :class:`User` with the same ``id``; hashed by it."""

    __slots__ = ()

    @property
    def id(self) -> int:
        return _id_of(self.data)

    @property
    def id_str(self) -> str:
        value = self.data.get("id_str")
        return value if value is not None else str(self.id)

    name = Key[str]()
    screen_name = Key[str]()
    created_at = Key[datetime](parse_created_at)
    status = Key[Status](Status)

    @property
    def following(self) -> bool:
        """tweepy: ``True`` only when X sent ``true`` (it sends ``null`` for false)."""
        return _required(self.data, "following") is True

    @property
    def _json(self) -> dict[str, Any]:
        return self.data

    def __str__(self) -> str:
        return str(self.data.get("screen_name"))

    def __repr__(self) -> str:
        data = self.data
        return f"<User id={data.get('id')} screen_name={data.get('screen_name')}>"


class BoundingBox(_Model):
    """A place's ``bounding_box`` (GeoJSON polygon), with tweepy's ``origin``/``corner``."""

    __slots__ = ()

    coordinates = Key[list[list[list[float]]]]()

    def origin(self) -> tuple[float, ...]:
        """(longitude, latitude) of the south-west corner."""
        return tuple(self.coordinates[0][0])

    def corner(self) -> tuple[float, ...]:
        """(longitude, latitude) of the north-east corner."""
        return tuple(self.coordinates[0][2])

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return bool(self.data == other.data)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<BoundingBox {self.data.get('coordinates')!r}>"


def _places(items: list[dict[str, Any]]) -> list[Place]:
    return [Place(item) for item in items]


class Place(_Model):
    """A v1.1 place (``id`` is a string): ``bounding_box`` -> :class:`BoundingBox` (or
    ``None``), ``contained_within`` -> a list of :class:`Place`, as in tweepy."""

    __slots__ = ()

    id = Key[str]()
    full_name = Key[str]()
    bounding_box = Key[BoundingBox | None](BoundingBox)
    contained_within = Key[list["Place"]](_places)

    def __repr__(self) -> str:
        return f"<Place id={self.data.get('id')} full_name={self.data.get('full_name')}>"


# --- notices ----------------------------------------------------------------------------------


class Notice(_Model):
    """Base of the non-status messages. ``data`` is the inner object (``message[kind]``),
    which is what tweepy passes to its hooks. Equal when of the same type with equal data;
    not hashable (the data is a mutable dict)."""

    __slots__ = ()

    #: The message's key: ``"delete"``, ``"limit"`` … (``""`` for :class:`UnknownNotice`).
    kind: ClassVar[str] = ""

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return bool(self.data == other.data)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        text = repr(self.data)
        return f"<{type(self).__name__} {text[:100]}{'...' if len(text) > 100 else ''}>"


class DeleteNotice(Notice):
    """``{"delete": {"status": {"id", "id_str", "user_id", "user_id_str"}, "timestamp_ms"}}``.

    Also the 2009/2010 shape without ``id_str``/``user_id_str`` (derived here) and the
    user-stream shape with ``"deleted": true``.
    """

    __slots__ = ()
    kind = "delete"

    #: The raw ``{"id", "user_id", …}`` object.
    status = Field[dict[str, Any]](required=True)
    #: Epoch milliseconds as X sends it (a string); ``None`` in old data.
    timestamp_ms = Field["str | None"]()

    @property
    def id(self) -> int:
        """The deleted status's id (``status_id`` in tweepy's ``on_delete``)."""
        return _id_of(self.status)

    @property
    def status_id(self) -> int:
        return _id_of(self.status)

    @property
    def id_str(self) -> str:
        value = self.status.get("id_str")
        return value if value is not None else str(self.id)

    @property
    def user_id(self) -> int:
        return _id_of(self.status, "user_id")

    @property
    def user_id_str(self) -> str:
        value = self.status.get("user_id_str")
        return value if value is not None else str(self.user_id)

    def __repr__(self) -> str:
        status = self.data.get("status") or {}
        return f"<DeleteNotice id={status.get('id')} user_id={status.get('user_id')}>"


#: v1.1 disconnect codes and their documented meaning.
DISCONNECT_CODES: Final[dict[int, str]] = {
    1: "shutdown",
    2: "duplicate stream",
    3: "control request",
    4: "stall",
    5: "normal",
    6: "token revoked",
    7: "admin logout",
    8: "reserved",
    9: "max message limit",
    10: "stream exception",
    11: "broker stall",
    12: "shed load",
}


def _int_or_none(value: Any) -> int | None:
    """``value`` as an ``int``, or ``None`` when it is none (total: never raises)."""
    try:
        return _as_int(value)
    except ValueError:
        return None


class DisconnectNotice(Notice):
    """``{"disconnect": {"code", "stream_name", "reason"}}``: X is about to close the stream.

    See :data:`DISCONNECT_CODES`; what the client does about each code is
    :class:`rxtweet.v1.Stream`'s business.
    """

    __slots__ = ()
    kind = "disconnect"

    code = Field["int | None"](_int_or_none)
    reason = Field["str | None"]()
    stream_name = Field["str | None"]()

    @property
    def meaning(self) -> str:
        """The documented meaning of :attr:`code` (``"unknown code"`` for others)."""
        code = self.code
        return "no code" if code is None else DISCONNECT_CODES.get(code, "unknown code")


class LimitNotice(Notice):
    """``{"limit": {"track": N, "timestamp_ms"}}``: N statuses matched but were not sent
    since the connection opened (a running total)."""

    __slots__ = ()
    kind = "limit"

    track = Field[int](_as_int, required=True)
    timestamp_ms = Field["str | None"]()


class ScrubGeoNotice(Notice):
    """``{"scrub_geo": {"user_id", "up_to_status_id", …}}``: delete the location data of
    that user's statuses up to that id."""

    __slots__ = ()
    kind = "scrub_geo"

    user_id = Field[int](_as_int, required=True)
    up_to_status_id = Field[int](_as_int, required=True)


class StatusWithheldNotice(Notice):
    """``{"status_withheld": {"id", "user_id", "withheld_in_countries"}}``."""

    __slots__ = ()
    kind = "status_withheld"

    id = Field[int](_as_int, required=True)
    user_id = Field[int](_as_int, required=True)
    withheld_in_countries = Field[list[str]](required=True)


class UserWithheldNotice(Notice):
    """``{"user_withheld": {"id", "withheld_in_countries"}}``."""

    __slots__ = ()
    kind = "user_withheld"

    id = Field[int](_as_int, required=True)
    withheld_in_countries = Field[list[str]](required=True)


class StallWarning(Notice):
    """``{"warning": {"code": "FALLING_BEHIND", "message", "percent_full"}}`` (sent with
    ``stall_warnings=True`` when the client reads too slowly)."""

    __slots__ = ()
    kind = "warning"

    code = Field["str | None"]()
    message = Field["str | None"]()
    percent_full = Field["int | None"](_as_int)


class UnknownNotice(Notice):
    """A message of no known type (user-stream ``friends``, ``event``, ``direct_message``
    …). ``data`` is the whole message; :attr:`type_keys` its top-level keys."""

    __slots__ = ()

    @property
    def type_keys(self) -> tuple[str, ...]:
        return tuple(self.data)


#: What :func:`to_v1_message` returns.
V1Message: TypeAlias = Status | Notice

#: Notice types by key, in the order tweepy 4.12's ``Stream.on_data`` tests them.
NOTICE_TYPES: Final[tuple[type[Notice], ...]] = (
    DeleteNotice,
    DisconnectNotice,
    LimitNotice,
    ScrubGeoNotice,
    StatusWithheldNotice,
    UserWithheldNotice,
    StallWarning,
)
_NOTICE_KEYS: Final = tuple((cls.kind, cls) for cls in NOTICE_TYPES)


def _bad(where: str, what: str, value: Any) -> TypeError:
    # The type only, not the value: a bad value may be huge (the line's preview is logged).
    return TypeError(f"{where} is {type(value).__name__}, not {what}")


def _need_int(data: dict[str, Any], key: str, where: str) -> None:
    value = data.get(key)
    if type(value) is int:
        return
    try:
        _as_int(value)
    except ValueError:
        raise _bad(f"{where}.{key}", "an integer", value) from None


def _need_id(data: dict[str, Any], key: str, where: str) -> None:
    """``key`` (or ``key_str``) must give an integer id, and ``key_str`` be a string."""
    text = data.get(key + "_str")
    if text is not None and type(text) is not str:
        raise _bad(f"{where}.{key}_str", "a string", text)
    if type(data.get(key)) is int:
        return
    try:
        _id_of(data, key)
    except AttributeError:
        raise KeyError(f"{where}.{key}") from None
    except ValueError:
        raise _bad(f"{where}.{key}", "an integer id", data.get(key)) from None


def _opt(data: dict[str, Any], key: str, kind: type, where: str) -> None:
    value = data.get(key)
    if value is not None and type(value) is not kind:
        raise _bad(f"{where}.{key}", kind.__name__, value)


def _opt_int(data: dict[str, Any], key: str, where: str) -> None:
    if data.get(key) is not None:
        _need_int(data, key, where)


def _countries(data: dict[str, Any], where: str) -> None:
    value = data.get("withheld_in_countries")
    if type(value) is not list or not all(type(c) is str for c in value):
        raise _bad(f"{where}.withheld_in_countries", "a list of strings", value)


def _check_notice(cls: type[Notice], inner: dict[str, Any]) -> None:
    """Raises ``TypeError``/``KeyError`` unless every documented field of the notice has its
    documented type, so that no attribute of the notice can raise later (in a hook, in a
    subscriber) and tweepy's hooks get the types they document."""
    kind = cls.kind
    if cls is DeleteNotice:
        status = inner.get("status")
        if type(status) is not dict:
            raise _bad("delete.status", "an object", status)
        _need_id(status, "id", "delete.status")
        _need_id(status, "user_id", "delete.status")
        _opt(inner, "timestamp_ms", str, kind)
    elif cls is LimitNotice:
        if "track" not in inner:
            raise KeyError("limit.track")
        _need_int(inner, "track", kind)
        _opt(inner, "timestamp_ms", str, kind)
    elif cls is DisconnectNotice:
        _opt_int(inner, "code", kind)
        _opt(inner, "reason", str, kind)
        _opt(inner, "stream_name", str, kind)
    elif cls is StallWarning:
        _opt(inner, "code", str, kind)
        _opt(inner, "message", str, kind)
        _opt_int(inner, "percent_full", kind)
    elif cls is ScrubGeoNotice:
        _need_int(inner, "user_id", kind)
        _need_int(inner, "up_to_status_id", kind)
    elif cls is StatusWithheldNotice:
        _need_int(inner, "id", kind)
        _need_int(inner, "user_id", kind)
        _countries(inner, kind)
    elif cls is UserWithheldNotice:
        _need_int(inner, "id", kind)
        _countries(inner, kind)


def _classify(doc: dict[str, Any]) -> V1Message:
    """:func:`to_v1_message` without its log line for an unknown type."""
    if "in_reply_to_status_id" in doc:
        if type(doc.get("id")) is not int and ("id" in doc or "id_str" in doc):
            _need_id(doc, "id", "status")
        return Status(doc)
    for key, cls in _NOTICE_KEYS:
        inner = doc.get(key)
        if inner is None:
            continue
        if type(inner) is not dict:
            raise TypeError(f"{key!r} is {type(inner).__name__}, not an object")
        _check_notice(cls, inner)
        return cls(inner)
    if "id" in doc and "user" in doc and ("text" in doc or "full_text" in doc):
        if type(doc["id"]) is not int:
            _need_id(doc, "id", "status")
        return Status(doc)
    return UnknownNotice(doc)


def to_v1_message(doc: dict[str, Any]) -> V1Message:
    """A decoded v1.1 stream message -> :class:`Status` or a :class:`Notice`.

    Cheap: a status is not converted until read. A notice is checked whole, because its
    fields are what tweepy's hooks receive: this raises ``TypeError``/``KeyError`` when a
    notice's inner value is not an object, a delete lacks ``status.id``/``status.user_id``,
    a limit lacks ``track``, or any documented notice field has the wrong type (an id or
    count that is not an integer, such as ``"many"`` or ``1e999``; a ``reason`` that is
    not a string; ``withheld_in_countries`` not a list of strings), or a status's ``id``
    is there but is no integer. :func:`rxtweet.parse.parse_lines` then reports the line as
    a malformed message (``"unexpected message shape"``: logged, counted, evented) and the
    stream goes on. So every attribute of a returned notice reads without raising.
    A message of no known type is logged at WARNING (its keys only) and returned as
    :class:`UnknownNotice`.
    """
    message = _classify(doc)
    if type(message) is UnknownNotice:
        log.warning("Received unknown message type (keys: %s)", ", ".join(list(doc)[:10]))
    return message


def is_v1_data(message: Any) -> bool:
    """Whether a parsed v1.1 message is real data, which proves the connection works.

    ``True`` for a :class:`Status` and for the notices about statuses that X sends only on a
    working stream (delete, scrub_geo, status_withheld, user_withheld, limit: a limit
    notice counts statuses that matched). ``False`` for a :class:`DisconnectNotice` (X is
    closing the connection), a :class:`StallWarning` (the client is falling behind) and an
    :class:`UnknownNotice` (not v1.1 data at all: e.g. a captive portal's page or a v2
    stream). The v1.1 connection resets its reconnect backoff only after data.
    """
    kind = type(message)
    return kind is not UnknownNotice and kind is not DisconnectNotice and kind is not StallWarning
