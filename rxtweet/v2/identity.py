"""What makes two v2 stream messages "the same": the keys de-duplication goes by.

X sends duplicates it does not remove when a stream recovers a gap (``backfill_minutes``,
a ``start_time``/``end_time`` window) or runs redundant connections
(``x-streaming-protocol.md`` section 9). :func:`identity_for` gives, for each kind of
endpoint (:data:`~rxtweet.v2.endpoints.EndpointKind`), the function from a message to its
key, which :class:`~rxtweet.recovery.dedup.Deduplicated` remembers:

==============  ===============================================  ==================================
kind            message                                          key
==============  ===============================================  ==================================
``tweets``      :class:`~rxtweet.v2.models.StreamResponse`       the tweet's ``id`` (as sent)
``compliance``  :class:`~rxtweet.v2.compliance.ComplianceResponse`  ``(kind, ((field, id), ...))``:
                                                                 every field of the event, each
                                                                 object by its ``id``, ``event_at``
                                                                 included
``likes``       :class:`~rxtweet.v2.likes.LikeResponse`          the like's ``id``
``labels``      :class:`~rxtweet.v2.labels.LabelResponse`        ``(kind, tweet id, event_at)``
``activity``    :class:`~rxtweet.v2.activity.ActivityResponse`   ``event_uuid``
==============  ===============================================  ==================================

A message without its data (a system message such as an ``operational-disconnect``, which
has only ``errors``) has no key (``None``): it always passes, it is never taken for a
duplicate. Keys are the raw values as sent (a tweet id is the ``str`` X sends, not
converted): one endpoint always sends one type, and the conversion would cost more than
the rest of the look-up.

Every key function is cheap (a few attribute and dict reads; about 0.1 us for a tweet) and
never raises for a message of an unexpected shape: it answers ``None`` (the message
passes) when it cannot tell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any, Final

import orjson

from ..snowflake import SNOWFLAKE_EPOCH_MS, snowflake_ms, snowflake_time

__all__ = ["SNOWFLAKE_EPOCH_MS", "Identity", "identity_for", "snowflake_ms", "snowflake_time"]

log = logging.getLogger(__name__)

#: A message -> its de-duplication key, or ``None`` for one that must always pass.
Identity = Callable[[Any], Hashable | None]

# -- the keys ---------------------------------------------------------------------------


def _scalar(value: Any) -> bool:
    kind = type(value)
    return kind is str or kind is int or kind is float or kind is bool or value is None


def _hashable(value: Any) -> Hashable | None:
    """A field's part of a key: a scalar as is, an object by its ``id`` (a scalar), any
    other object or list by its whole content (its JSON, keys sorted).

    By content rather than as nested tuples: a lying server's 1,000-deep nesting would
    exhaust Python's recursion; and an object without an ``id`` (an unknown event kind's)
    is then told apart by its other fields, instead of every such event being "the same".
    """
    if _scalar(value):
        return value  # type: ignore[no-any-return]
    if type(value) is dict:
        key = value.get("id")
        if key is not None and _scalar(key):
            return key  # type: ignore[no-any-return]
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return _Unique()  # cannot tell: equal to nothing, the message passes


class _Unique:
    """A key part equal only to itself (hashable by identity)."""

    __slots__ = ()


def _event_key(kind: Any, data: Any) -> Hashable | None:
    if type(data) is not dict or not data:
        return None  # nothing to tell it by: it passes
    # Sorted: the key must not depend on the order of the fields in the JSON.
    return (kind, tuple(sorted((name, _hashable(value)) for name, value in data.items())))


def tweet_key(message: Any) -> Hashable | None:
    """A :class:`~rxtweet.v2.models.StreamResponse` -> its tweet's ``id`` (``None``
    without a tweet)."""
    try:
        tweet = message.data
        if tweet is None:
            return None
        key: Any = tweet.data.get("id")
    except AttributeError:
        return raw_key(message)
    if type(key) is str:
        return key  # the common case, first and cheap
    # A lying server's id (a list, an object) must not reach a set: unhashable, it would
    # end the stream.
    return _hashable(key)


def compliance_key(message: Any) -> Hashable | None:
    """A :class:`~rxtweet.v2.compliance.ComplianceResponse` -> the event's own identity:
    its kind and every field (``event_at``, each object such as ``tweet``/``user``/
    ``favorite`` by its ``id``, lists as tuples), unknown kinds alike."""
    event = getattr(message, "event", None)
    if event is None:
        return None
    return _event_key(getattr(event, "kind", None), getattr(event, "data", None))


def like_key(message: Any) -> Hashable | None:
    """A :class:`~rxtweet.v2.likes.LikeResponse` -> the like's ``id``."""
    like = getattr(message, "like", None)
    if like is None:
        return None
    data = getattr(like, "data", None)
    return _hashable(data.get("id")) if type(data) is dict else None


def label_key(message: Any) -> Hashable | None:
    """A :class:`~rxtweet.v2.labels.LabelResponse` -> ``(kind, tweet id, event_at)``."""
    label = getattr(message, "label", None)
    if label is None:
        return None
    data = getattr(label, "data", None)
    if type(data) is not dict:
        return None
    tweet = data.get("tweet")
    tweet_id = tweet.get("id") if type(tweet) is dict else None
    event_at = data.get("event_at")
    if tweet_id is None or event_at is None:
        # Not the documented shape: by every field, so that two different events are never
        # taken for the same.
        return _event_key(getattr(label, "kind", None), data)
    return (getattr(label, "kind", None), _hashable(tweet_id), _hashable(event_at))


def activity_key(message: Any) -> Hashable | None:
    """An :class:`~rxtweet.v2.activity.ActivityResponse` -> the event's ``event_uuid``."""
    activity = getattr(message, "activity", None)
    if activity is None:
        return None
    data = getattr(activity, "data", None)
    return _hashable(data.get("event_uuid")) if type(data) is dict else None


def raw_key(message: Any) -> Hashable | None:
    """Any message -> the ``id`` (else ``event_uuid``) of its raw dict, if it has one.

    The raw dict is the message itself (a ``dict``), its ``data`` (a model's), the
    ``data`` of its ``data`` (a response whose ``data`` is a model), or that of its first
    field (a response tuple whose first field is a model). ``None`` otherwise.
    """
    data = message if type(message) is dict else getattr(message, "data", None)
    if data is not None and type(data) is not dict:
        data = getattr(data, "data", None)
    if data is None and isinstance(message, tuple) and message:
        data = getattr(message[0], "data", None)
    if type(data) is not dict:
        return None
    key = data.get("id")
    if key is None:
        key = data.get("event_uuid")
    return _hashable(key)


_KEYS: Final[dict[str, Identity]] = {
    "tweets": tweet_key,
    "compliance": compliance_key,
    "likes": like_key,
    "labels": label_key,
    "activity": activity_key,
}


def identity_for(kind: str) -> Identity:
    """The de-duplication key of the messages of an endpoint kind (see the module table).

    ``kind`` is an :class:`~rxtweet.v2.endpoints.Endpoint`'s ``kind`` (``"tweets"``,
    ``"compliance"``, ``"likes"``, ``"labels"``, ``"activity"``); for any other, the
    message's raw dict's ``id`` or ``event_uuid`` if it has one (:func:`raw_key`), else
    ``None``.

    >>> from rxtweet.v2.convert import to_stream_response
    >>> key = identity_for("tweets")
    >>> key(to_stream_response({"data": {"id": "20", "text": "just setting up my twttr"}}))
    '20'
    >>> key(to_stream_response({"errors": [{"title": "operational-disconnect"}]})) is None
    True
    """
    return _KEYS.get(kind, raw_key)
