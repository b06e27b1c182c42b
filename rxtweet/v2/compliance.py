"""The compliance streams: post, user and like compliance events, lazy like
:class:`~rxtweet.v2.models.Tweet`.

X's post, user and likes compliance streams (``/2/tweets/compliance/stream``,
``/2/users/compliance/stream``, ``/2/likes/compliance/stream``) send one event per message,
as ``{"data": {"<kind>": {...}}}`` (the OpenAPI components; reference section 9)::

    {"data": {"delete": {"tweet": {"id": "1", "author_id": "2"}, "event_at": "2024-..."}}}

Each kind becomes its class (:data:`COMPLIANCE_KINDS`): ``event.kind`` is the wire key
(``"delete"``), ``event.data`` the object under it, ``event.event_at`` a tz-aware
``datetime`` and every id an ``int``. ``"delete"`` is both a post deletion
(``{"tweet": ...}``, :class:`TweetDelete`) and a like deletion (``{"favorite": ...}``,
:class:`LikeDelete`); the object's content tells them apart.

**Unknown kinds** are neither dropped nor fatal: they arrive as
:class:`UnknownComplianceEvent` (the wire kind, its object, and ``raw``: the message's whole
``data`` object) and are counted per kind by a :class:`ComplianceConverter`, which is what
:attr:`ComplianceStream.unknown_kinds` reports.

**Malformed messages.** The converter checks the types the events are read through (the
kind's value is an object, ``tweet``/``user``/``favorite`` an object, ids strings or
integers, ``event_at`` a string, ``withheld_in_countries``/``edit_tweet_ids`` lists) and
raises ``ValueError`` otherwise; :func:`~rxtweet.parse.parse_lines` turns that into a
:class:`~rxtweet.events.MalformedMessage` (logged, counted, the stream goes on). Values are
still converted lazily: a string ``event_at`` that is not a timestamp raises ``ValueError``
where it is read.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar, Final, NamedTuple

from reactivex import Observable

from .._model import Model, _fromisoformat
from ..substreams import ItemSource, Substreams

__all__ = [
    "COMPLIANCE_KINDS",
    "ComplianceConverter",
    "ComplianceEvent",
    "ComplianceResponse",
    "ComplianceStream",
    "KindCounter",
    "LikeDelete",
    "ScrubGeo",
    "TweetDelete",
    "TweetDrop",
    "TweetEdit",
    "TweetUndrop",
    "TweetWithheld",
    "UnknownComplianceEvent",
    "UserDelete",
    "UserProfileModification",
    "UserProtect",
    "UserSuspend",
    "UserUndelete",
    "UserUnprotect",
    "UserUnsuspend",
    "UserWithheld",
    "is_compliance_data",
    "to_compliance_response",
]

log = logging.getLogger(__name__)

_Dict = dict[str, Any]

#: What an id may be on the wire (X sends strings; older payloads numbers).
ID_TYPES: Final[tuple[type, ...]] = (str, int)

#: Keys to check and the types each may have: ``(("tweet.id", (str, int)), ...)``.
Shape = tuple[tuple[str, tuple[type, ...]], ...]


# -- counting unknown kinds ----------------------------------------------------------------


class KindCounter:
    """A thread-safe count of unknown event kinds, kept by a converter.

    The partitions of one stream convert on their own reader threads into one counter, so
    :meth:`add` takes a lock (unknown kinds are rare: the lock is off the hot path).
    """

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, kind: str) -> None:
        """Count one event of ``kind``."""
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self) -> Counter[str]:
        """A copy of the counts (kind -> events seen)."""
        with self._lock:
            return Counter(self._counts)

    def __repr__(self) -> str:
        return f"KindCounter({dict(self.snapshot())!r})"


def unknown_kinds_of(connection: Any) -> Counter[str]:
    """The unknown kinds counted by the converter(s) ``connection`` parses with, summed.

    Finds a :class:`KindCounter` on the connection's converter (``connection._convert``
    with an ``unknown_kinds`` counter, as a :class:`ComplianceConverter` has), on each
    partition connection of a merged one (``connection.connections``, ``connection.keyed``
    or ``connection.partitions`` when that is a mapping), and on the source of a
    de-duplicated one (``connection.source``). A converter counted once even when
    shared by several partitions. Empty when the stream parses with a plain function.
    """
    found: dict[int, KindCounter] = {}
    pending: list[Any] = [connection]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        counter = getattr(getattr(current, "_convert", None), "unknown_kinds", None)
        if isinstance(counter, KindCounter):
            found[id(counter)] = counter
        for name in ("connections", "partitions", "keyed"):
            inner = getattr(current, name, None)
            if isinstance(inner, dict):
                pending.extend(inner.values())
        source = getattr(current, "source", None)  # a Deduplicated wraps its source
        if source is not None:
            pending.append(source)
    total: Counter[str] = Counter()
    for counter in found.values():
        total.update(counter.snapshot())
    return total


# -- shape checks --------------------------------------------------------------------------


def as_object(value: Any, where: str) -> _Dict:
    if type(value) is not dict:
        raise ValueError(f"{where} is {type(value).__name__}, not an object")
    return value


def check_shape(event: _Dict, kind: str, fields: Iterable[tuple[str, tuple[type, ...]]]) -> None:
    """``ValueError`` when a key present in ``event`` (``"a.b"``: nested) has another type.

    Absent keys are not errors (clients must tolerate missing fields); the attribute that
    reads one is then ``None`` or raises ``AttributeError``.
    """
    for path, types in fields:
        value: Any = event
        for part in path.split("."):
            value = value.get(part) if type(value) is dict else None
            if value is None:
                break
        if value is not None and (type(value) not in types):
            names = "/".join(t.__name__ for t in types)
            raise ValueError(
                f"{kind}.{path} is {type(value).__name__}, not {names.replace('dict', 'object')}"
            )


def nested(data: _Dict, outer: str, key: str) -> Any:
    inner = data.get(outer)
    return inner.get(key) if type(inner) is dict else None


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _int_list(value: Any) -> list[int] | None:
    if value is None:
        return None
    # ValueError, as for any malformed value read (int() would raise TypeError on junk).
    if any(type(i) not in ID_TYPES for i in value):
        raise ValueError("an id list holds something that is not an id (string or integer)")
    return [int(i) for i in value]


# -- the models ----------------------------------------------------------------------------


class ComplianceEvent(Model):
    """One compliance event: a read-only, lazy view of the object under its kind.

    Attributes:
        kind: the wire kind (``"delete"``, ``"user_suspend"``, ...).
        data: the event's object (``{"tweet": {...}, "event_at": ...}``), never modified.
        event_at: when it happened (tz-aware UTC ``datetime``; ``None`` when absent).

    Equal when of the same class and kind with equal ``data``; unhashable (``data`` is a
    mutable dict). Unknown keys are reachable as ``event["key"]`` and as attributes.
    """

    __slots__ = ()

    #: The wire key of this class's events.
    KIND: ClassVar[str] = ""
    #: (path, allowed types) checked by the converter; see :func:`check_shape`.
    SHAPE: ClassVar[Shape] = (("event_at", (str,)),)

    @property
    def kind(self) -> str:
        return self.KIND

    @property
    def event_at(self) -> datetime | None:
        value = self.data.get("event_at")
        return None if value is None else _fromisoformat(value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ComplianceEvent) and type(other) is type(self):
            return bool(self.kind == other.kind and self.data == other.data)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kind={self.kind} event_at={self.data.get('event_at')}>"


_TWEET_SHAPE: Final[Shape] = (
    ("event_at", (str,)),
    ("tweet", (dict,)),
    ("tweet.id", ID_TYPES),
    ("tweet.author_id", ID_TYPES),
)


class _TweetEvent(ComplianceEvent):
    """A post compliance event: ``{"tweet": {"id", "author_id"}, "event_at"}``."""

    __slots__ = ()

    SHAPE = _TWEET_SHAPE

    @property
    def tweet_id(self) -> int | None:
        """``tweet.id`` as ``int``."""
        return _int_or_none(nested(self.data, "tweet", "id"))

    @property
    def author_id(self) -> int | None:
        """``tweet.author_id`` as ``int``."""
        return _int_or_none(nested(self.data, "tweet", "author_id"))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tweet_id={nested(self.data, 'tweet', 'id')}>"


class TweetDelete(_TweetEvent):
    """A post was deleted (``delete``); ``quote_tweet_id`` when it was a quote."""

    __slots__ = ()

    KIND = "delete"
    SHAPE = (*_TWEET_SHAPE, ("quote_tweet_id", ID_TYPES))

    @property
    def quote_tweet_id(self) -> int | None:
        return _int_or_none(self.data.get("quote_tweet_id"))


class TweetWithheld(_TweetEvent):
    """A post was withheld in some countries (``withheld``)."""

    __slots__ = ()

    KIND = "withheld"
    SHAPE = (*_TWEET_SHAPE, ("withheld_in_countries", (list,)))

    @property
    def withheld_in_countries(self) -> list[str] | None:
        value: list[str] | None = self.data.get("withheld_in_countries")
        return value


class TweetDrop(_TweetEvent):
    """A post was dropped from public view (``drop``)."""

    __slots__ = ()

    KIND = "drop"


class TweetUndrop(_TweetEvent):
    """A dropped post is public again (``undrop``)."""

    __slots__ = ()

    KIND = "undrop"


class TweetEdit(_TweetEvent):
    """A post was edited (``tweet_edit``): ``initial_tweet_id`` and ``edit_tweet_ids`` (the
    edit chain, as ints)."""

    __slots__ = ()

    KIND = "tweet_edit"
    SHAPE = (
        *_TWEET_SHAPE,
        ("initial_tweet_id", ID_TYPES),
        ("edit_tweet_ids", (list,)),
    )

    @property
    def initial_tweet_id(self) -> int | None:
        return _int_or_none(self.data.get("initial_tweet_id"))

    @property
    def edit_tweet_ids(self) -> list[int] | None:
        return _int_list(self.data.get("edit_tweet_ids"))


_USER_SHAPE: Final[Shape] = (("event_at", (str,)), ("user", (dict,)), ("user.id", ID_TYPES))


class _UserEvent(ComplianceEvent):
    """A user compliance event: ``{"user": {"id"}, "event_at"}``."""

    __slots__ = ()

    SHAPE = _USER_SHAPE

    @property
    def user_id(self) -> int | None:
        """``user.id`` as ``int``."""
        return _int_or_none(nested(self.data, "user", "id"))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} user_id={nested(self.data, 'user', 'id')}>"


class UserDelete(_UserEvent):
    """An account was deleted (``user_delete``)."""

    __slots__ = ()
    KIND = "user_delete"


class UserUndelete(_UserEvent):
    """A deleted account was restored (``user_undelete``)."""

    __slots__ = ()
    KIND = "user_undelete"


class UserProtect(_UserEvent):
    """An account became protected (``user_protect``)."""

    __slots__ = ()
    KIND = "user_protect"


class UserUnprotect(_UserEvent):
    """An account became public (``user_unprotect``)."""

    __slots__ = ()
    KIND = "user_unprotect"


class UserSuspend(_UserEvent):
    """An account was suspended (``user_suspend``)."""

    __slots__ = ()
    KIND = "user_suspend"


class UserUnsuspend(_UserEvent):
    """A suspension was lifted (``user_unsuspend``)."""

    __slots__ = ()
    KIND = "user_unsuspend"


class UserWithheld(_UserEvent):
    """An account was withheld in some countries (``user_withheld``)."""

    __slots__ = ()

    KIND = "user_withheld"
    SHAPE = (*_USER_SHAPE, ("withheld_in_countries", (list,)))

    @property
    def withheld_in_countries(self) -> list[str] | None:
        value: list[str] | None = self.data.get("withheld_in_countries")
        return value


class ScrubGeo(_UserEvent):
    """Remove the geo data of a user's posts up to ``up_to_tweet_id`` (``scrub_geo``)."""

    __slots__ = ()

    KIND = "scrub_geo"
    SHAPE = (*_USER_SHAPE, ("up_to_tweet_id", ID_TYPES))

    @property
    def up_to_tweet_id(self) -> int | None:
        return _int_or_none(self.data.get("up_to_tweet_id"))


class UserProfileModification(_UserEvent):
    """A profile field changed (``user_profile_modification``): ``profile_field`` and
    ``new_value`` (raw, as sent)."""

    __slots__ = ()

    KIND = "user_profile_modification"
    SHAPE = (*_USER_SHAPE, ("profile_field", (str,)))

    @property
    def profile_field(self) -> str | None:
        value: str | None = self.data.get("profile_field")
        return value

    @property
    def new_value(self) -> Any:
        return self.data.get("new_value")


class LikeDelete(ComplianceEvent):
    """A like was removed (likes compliance ``delete``: ``{"favorite": {"id", "user_id"},
    "event_at"}``): ``like_id`` (``favorite.id``) and ``user_id``, as ints."""

    __slots__ = ()

    KIND = "delete"
    SHAPE = (
        ("event_at", (str,)),
        ("favorite", (dict,)),
        ("favorite.id", ID_TYPES),
        ("favorite.user_id", ID_TYPES),
    )

    @property
    def like_id(self) -> int | None:
        return _int_or_none(nested(self.data, "favorite", "id"))

    @property
    def user_id(self) -> int | None:
        return _int_or_none(nested(self.data, "favorite", "user_id"))

    def __repr__(self) -> str:
        return f"<LikeDelete like_id={nested(self.data, 'favorite', 'id')}>"


class UnknownComplianceEvent(ComplianceEvent):
    """An event of a kind this version does not know: kept, not dropped.

    Attributes:
        kind: the wire kind.
        data: the object under it.
        raw: the message's whole ``data`` object (every key, as received).
    """

    __slots__ = ("_kind", "raw")

    def __init__(self, kind: str, data: _Dict, raw: _Dict | None = None) -> None:
        self.data = data
        self._kind = kind
        self.raw = {kind: data} if raw is None else raw

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def event_at(self) -> datetime | None:
        # An unknown kind's event_at is read only if it is a string (no shape is checked).
        value = self.data.get("event_at")
        return _fromisoformat(value) if type(value) is str else None

    def __repr__(self) -> str:
        return f"<UnknownComplianceEvent kind={self._kind!r}>"


#: Wire kind -> class. ``"delete"`` maps to :class:`TweetDelete`; a ``delete`` whose
#: object has ``favorite`` is a :class:`LikeDelete`.
COMPLIANCE_KINDS: Final[dict[str, type[ComplianceEvent]]] = {
    cls.KIND: cls
    for cls in (
        TweetDelete,
        TweetWithheld,
        TweetDrop,
        TweetUndrop,
        TweetEdit,
        UserDelete,
        UserUndelete,
        UserProtect,
        UserUnprotect,
        UserSuspend,
        UserUnsuspend,
        UserWithheld,
        ScrubGeo,
        UserProfileModification,
    )
}


# -- messages ------------------------------------------------------------------------------


class ComplianceResponse(NamedTuple):
    """One compliance stream message.

    ``event`` is the :class:`ComplianceEvent` (``None`` for a system message such as an
    ``operational-disconnect``, which has only ``errors``); ``errors`` the raw list of
    problem objects (``[]`` when absent).
    """

    event: ComplianceEvent | None
    errors: list[dict[str, Any]]


def errors_of_doc(doc: _Dict) -> list[_Dict]:
    errors = doc.get("errors")
    if errors is None:
        return []
    if type(errors) is not list or not all(type(error) is dict for error in errors):
        raise ValueError("'errors' is not a list of objects")
    return errors


def _event_of(data: _Dict, count: Callable[[str], None] | None) -> ComplianceEvent:
    if not data:
        raise ValueError("'data' is an empty object, not a compliance event")
    # One key on X's wire; with several, the first known kind wins (others stay in raw).
    kind = next((key for key in data if key in COMPLIANCE_KINDS), None)
    if kind is None:
        kind = next(iter(data))
        event = as_object(data[kind], f"data.{kind}")
        if count is not None:
            count(kind)
        log.debug("unknown compliance event kind %r", kind)
        return UnknownComplianceEvent(kind, event, data)
    event = as_object(data[kind], f"data.{kind}")
    cls = COMPLIANCE_KINDS[kind]
    if cls is TweetDelete and "favorite" in event:
        cls = LikeDelete
    check_shape(event, kind, cls.SHAPE)
    return cls(event)


def _convert(doc: _Dict, count: Callable[[str], None] | None) -> ComplianceResponse:
    data = doc.get("data")
    errors = errors_of_doc(doc)
    if data is None:
        return ComplianceResponse(None, errors)
    return ComplianceResponse(_event_of(as_object(data, "data"), count), errors)


def to_compliance_response(doc: _Dict) -> ComplianceResponse:
    """A decoded compliance stream message -> :class:`ComplianceResponse` (nothing counted;
    a :class:`ComplianceConverter` also counts unknown kinds).

    Raises:
        ValueError: ``data`` is not an object, is empty, or the event's values have the
            wrong types (see the module doc); ``errors`` is not a list of objects.
    """
    return _convert(doc, None)


class ComplianceConverter:
    """:func:`to_compliance_response` that counts the unknown kinds it meets.

    Pass one instance as the ``convert`` of a stream's connection(s) (one per stream,
    shared by its partitions); :attr:`ComplianceStream.unknown_kinds` reads it.

    Attributes:
        unknown_kinds: the :class:`KindCounter`.
    """

    __slots__ = ("unknown_kinds",)

    def __init__(self) -> None:
        self.unknown_kinds = KindCounter()

    def __call__(self, doc: _Dict) -> ComplianceResponse:
        return _convert(doc, self.unknown_kinds.add)

    def __repr__(self) -> str:
        return f"<ComplianceConverter unknown_kinds={dict(self.unknown_kinds.snapshot())!r}>"


def is_compliance_data(response: ComplianceResponse) -> bool:
    """Whether a message is real data (an event), which restarts the reconnect backoff;
    ``False`` for a system message with only ``errors``."""
    return response.event is not None


# -- the stream ----------------------------------------------------------------------------


class ComplianceStream(Substreams[ComplianceResponse]):
    """The observables of a compliance stream (post, user or likes compliance).

    Shares its connection(s) like :class:`~rxtweet.v2.TweetStream`: see
    :class:`~rxtweet.substreams.Substreams` for ``items``, ``lines``, ``events``,
    ``stats`` and :meth:`hold`.

    Attributes:
        responses: every :class:`ComplianceResponse` (events and system messages).
        compliance: the :class:`ComplianceEvent` of each message that has one, unknown
            kinds included (as :class:`UnknownComplianceEvent`).
        errors: the non-empty ``errors`` list of each message.
    """

    def __init__(self, connection: ItemSource[ComplianceResponse]) -> None:
        super().__init__(connection)
        self.responses: Observable[ComplianceResponse] = self.select(_identity)
        self.compliance: Observable[ComplianceEvent] = self.select(_event)
        self.errors: Observable[list[dict[str, Any]]] = self.select(_errors)

    @property
    def unknown_kinds(self) -> Counter[str]:
        """Events of unknown kinds received so far, per kind (a copy), when the connection
        parses with a :class:`ComplianceConverter`; empty otherwise."""
        return unknown_kinds_of(self.connection)


def _identity(response: ComplianceResponse) -> ComplianceResponse:
    return response


def _event(response: ComplianceResponse) -> ComplianceEvent | None:
    return response.event


def _errors(response: ComplianceResponse) -> list[dict[str, Any]] | None:
    return response.errors or None
