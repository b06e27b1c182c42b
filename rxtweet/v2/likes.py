"""The likes streams (``/2/likes/firehose/stream``, ``/2/likes/sample10/stream``): like
events, lazy like :class:`~rxtweet.v2.models.Tweet`.

A message is ``{"data": {"id", "created_at", "liked_tweet_id", "tweet_author_id",
"timestamp_ms"}, "includes": {...}}`` (OpenAPI components; reference section 9). The
OpenAPI types ``timestamp_ms`` as int32, which cannot hold epoch milliseconds, and the docs'
example sends a string: :attr:`LikeEvent.timestamp_ms` is an ``int`` either way.

There is one kind of like event, so there are no unknown kinds here; unknown keys stay in
``like.data``. The converter checks the types of the known keys (ids and ``timestamp_ms``
strings or integers, ``created_at`` a string) and raises ``ValueError`` otherwise: a
:class:`~rxtweet.events.MalformedMessage` (logged, counted; the stream goes on).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final, NamedTuple

from reactivex import Observable

from .._model import Field, Model, _fromisoformat
from ..substreams import ItemSource, Substreams
from .compliance import errors_of_doc
from .convert import process_includes

__all__ = ["LikeEvent", "LikeResponse", "LikeStream", "is_like_data", "to_like_response"]

log = logging.getLogger(__name__)

_Dict = dict[str, Any]

#: Keys whose value must be a string or an integer, and those that must be a string.
_ID_KEYS: Final = ("id", "liked_tweet_id", "tweet_author_id", "timestamp_ms")
_STR_KEYS: Final = ("created_at",)


class LikeEvent(Model):
    """One like. ``liked_tweet_id``, ``tweet_author_id`` and ``timestamp_ms`` are ``int``
    (whatever their JSON type), ``created_at`` a tz-aware UTC ``datetime``. ``id`` is the
    like's own id as sent, a ``str``: X's ``LikeId`` is an opaque string (the OpenAPI
    example is 32 hexadecimal digits), not a Snowflake. ``id`` is required
    (``AttributeError`` when absent); the others are ``None`` when absent.

    Identity as for a :class:`~rxtweet.v2.models.Tweet`: equal by ``id``, hashable.
    """

    __slots__ = ()

    id = Field[str](str, required=True)
    created_at = Field[datetime | None](_fromisoformat)
    liked_tweet_id = Field[int | None](int)
    tweet_author_id = Field[int | None](int)
    timestamp_ms = Field[int | None](int)

    def __repr__(self) -> str:
        d = self.data
        return f"<LikeEvent id={d.get('id')} liked_tweet_id={d.get('liked_tweet_id')}>"


class LikeResponse(NamedTuple):
    """One likes stream message: ``like`` (``None`` for a system message with only
    ``errors``), ``includes`` (tweepy's shape: ``users``/``tweets``... as models, ``{}`` when
    absent) and ``errors`` (raw problem objects, ``[]`` when absent)."""

    like: LikeEvent | None
    includes: dict[str, Any]
    errors: list[dict[str, Any]]


_new_tuple = tuple.__new__


def to_like_response(doc: _Dict) -> LikeResponse:
    """A decoded likes stream message -> :class:`LikeResponse`.

    Raises:
        ValueError: ``data`` or ``includes`` is not an object, ``errors`` not a list of
            objects, or a known key of ``data`` has the wrong type (see the module doc).
    """
    data = doc.get("data")
    if data is None:
        like: LikeEvent | None = None
    elif type(data) is dict:
        for key in _ID_KEYS:
            value = data.get(key)
            if value is not None and type(value) is not str and type(value) is not int:
                raise ValueError(f"data.{key} is {type(value).__name__}, not a string or integer")
        for key in _STR_KEYS:
            value = data.get(key)
            if value is not None and type(value) is not str:
                raise ValueError(f"data.{key} is {type(value).__name__}, not a string")
        like = LikeEvent(data)
    else:
        raise ValueError(f"'data' is {type(data).__name__}, not an object")
    includes = doc.get("includes")
    if includes is None:
        includes = {}
    elif type(includes) is dict:
        includes = process_includes(includes)
    else:
        raise ValueError(f"'includes' is {type(includes).__name__}, not an object")
    errors = errors_of_doc(doc)
    # tuple.__new__ skips the NamedTuple's Python-level __new__ (the likes firehose is busy).
    return _new_tuple(LikeResponse, (like, includes, errors))


def is_like_data(response: LikeResponse) -> bool:
    """Whether a message is real data (a like), which restarts the reconnect backoff."""
    return response.like is not None


class LikeStream(Substreams[LikeResponse]):
    """The observables of a likes stream (firehose or sample10, one or many partitions).

    Shares its connection(s) like :class:`~rxtweet.v2.TweetStream`: see
    :class:`~rxtweet.substreams.Substreams` for ``items``, ``lines``, ``events``,
    ``stats`` and :meth:`hold`.

    Attributes:
        responses: every :class:`LikeResponse`.
        likes: the :class:`LikeEvent` of each message that has one.
        includes: the non-empty ``includes`` of each message (tweepy's shape).
        errors: the non-empty ``errors`` list of each message.
    """

    def __init__(self, connection: ItemSource[LikeResponse]) -> None:
        super().__init__(connection)
        self.responses: Observable[LikeResponse] = self.select(_identity)
        self.likes: Observable[LikeEvent] = self.select(_like)
        self.includes: Observable[dict[str, Any]] = self.select(_includes)
        self.errors: Observable[list[dict[str, Any]]] = self.select(_errors)


def _identity(response: LikeResponse) -> LikeResponse:
    return response


def _like(response: LikeResponse) -> LikeEvent | None:
    return response.like


def _includes(response: LikeResponse) -> dict[str, Any] | None:
    return response.includes or None


def _errors(response: LikeResponse) -> list[dict[str, Any]] | None:
    return response.errors or None
