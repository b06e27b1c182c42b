"""API v1.1 messages: the :class:`Status` model (tweepy's ``Status``, lazy) and the notices.

Each message of a v1.1 stream becomes one of the types of :data:`V1Message`; the
conversion (which key makes which type, the checks) is :mod:`rxtweet.v1.convert`.

**Status and User** have tweepy's attribute names and conversions (``created_at`` ->
tz-aware UTC ``datetime``, ``user``/``author`` -> :class:`User`, ``retweeted_status`` and
``quoted_status`` -> :class:`Status`, ``place`` -> :class:`Place` or ``None``, ``source``
stripped of its HTML with ``source_url`` beside it, ``User.following`` -> ``bool``), but
like :mod:`rxtweet.v2.models` they only wrap the decoded dict and convert on access. As in
tweepy, an attribute whose key is absent raises ``AttributeError``, so the idiom
``hasattr(status, "retweeted_status")`` keeps working; every other key of the message is
an attribute too (``status.favorite_count``), and ``status._json`` is the raw dict, as in
tweepy. Beyond tweepy: ``status["key"]`` (mapping access, see :class:`rxtweet._model.Model`),
``status.data`` (the raw dict), :attr:`Status.full_text` (the untruncated text whatever
the message's shape), ``id_str`` derived from ``id`` for 2009/2010 data that has none.

**Notices** are small lazy views of the inner object (``notice.data`` is
``message["scrub_geo"]`` etc., exactly what tweepy passes to its hooks), with typed
attributes for the documented fields. They compare equal when their data are equal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Final, TypeAlias, TypeVar, overload

from .._model import Field, Model, ValueEquality, short

_V = TypeVar("_V")

__all__ = [
    "DISCONNECT_CODES",
    "BoundingBox",
    "DeleteNotice",
    "DisconnectNotice",
    "Key",
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
    "parse_created_at",
]

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
    """A :class:`~rxtweet._model.Field` with tweepy v1.1 semantics: tweepy sets an attribute
    for each key *present* in the message, so an absent key raises ``AttributeError`` (and
    ``hasattr`` tells), a ``null`` is ``None``, and any other value is converted."""

    __slots__ = ()

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Key[_V]: ...

    @overload
    def __get__(self, obj: Model, owner: type | None = None) -> _V: ...

    def __get__(self, obj: Model | None, owner: type | None = None) -> Any:
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
    # Exact types (the guards): a bool or an int subclass is no id X sends.
    match value:
        case int() if kind is int:
            return value
        case str() if kind is str:
            try:
                return int(value)
            except ValueError:
                pass
        case float() if kind is float and value.is_integer():  # False for inf and nan
            return int(value)
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


class Status(Model):
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
        value: str | None = data.get("text")
        if value is None:
            value = data.get("full_text")  # REST "extended" mode sends only full_text
            if value is None:
                raise AttributeError("text")
        return value

    @property
    def full_text(self) -> str:
        """The untruncated text: ``extended_tweet.full_text``, else ``full_text``, else
        ``text``. For a retweet, read ``status.retweeted_status.full_text``."""
        data = self.data
        extended = data.get("extended_tweet")
        if type(extended) is dict:
            extended_text: str | None = extended.get("full_text")
            if extended_text is not None:
                return extended_text
        value: str | None = data.get("full_text")
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
        return f"<Status id={data.get('id')} user={name} text={short(data.get('text'))}>"


def _required(data: dict[str, Any], name: str) -> Any:
    try:
        return data[name]
    except KeyError:
        raise AttributeError(name) from None


class User(Model):
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


class _ValueModel(ValueEquality, Model):  # type: ignore[misc]
    """A model equal by its data, unhashable (:class:`~rxtweet._model.ValueEquality`).

    The ignore: mypy flags any class that combines ValueEquality's ``__hash__ = None`` with
    Model's ``__hash__``, which is the point; this class is the one place that does."""

    __slots__ = ()


class BoundingBox(_ValueModel):
    """A place's ``bounding_box`` (GeoJSON polygon), with tweepy's ``origin``/``corner``."""

    __slots__ = ()

    coordinates = Key[list[list[list[float]]]]()

    def origin(self) -> tuple[float, ...]:
        """(longitude, latitude) of the south-west corner."""
        return tuple(self.coordinates[0][0])

    def corner(self) -> tuple[float, ...]:
        """(longitude, latitude) of the north-east corner."""
        return tuple(self.coordinates[0][2])

    def __repr__(self) -> str:
        return f"<BoundingBox {self.data.get('coordinates')!r}>"


def _places(items: list[dict[str, Any]]) -> list[Place]:
    return [Place(item) for item in items]


class Place(Model):
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


class Notice(_ValueModel):
    """Base of the non-status messages. ``data`` is the inner object (``message[kind]``),
    which is what tweepy passes to its hooks. Equal when of the same type with equal data;
    not hashable (the data is a mutable dict)."""

    __slots__ = ()

    #: The message's key: ``"delete"``, ``"limit"`` … (``""`` for :class:`UnknownNotice`).
    kind: ClassVar[str] = ""

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
