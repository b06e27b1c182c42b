"""API v1.1: a decoded message -> its model (:mod:`rxtweet.v1.models`), checked.

A v1.1 stream (``statuses/filter``, ``statuses/sample``) sends one JSON object per line. Each
becomes one of the types of :data:`~rxtweet.v1.models.V1Message` by :func:`to_v1_message`,
the ``convert`` function the v1.1 connection passes to :func:`rxtweet.parse.parse_lines`:

========================================  ==========================================
message                                   becomes
========================================  ==========================================
a status (has ``in_reply_to_status_id``)  :class:`~rxtweet.v1.models.Status`
``{"delete": {"status": {...}}}``         :class:`~rxtweet.v1.models.DeleteNotice`
``{"disconnect": {...}}``                 :class:`~rxtweet.v1.models.DisconnectNotice`
``{"limit": {"track": N}}``               :class:`~rxtweet.v1.models.LimitNotice`
``{"scrub_geo": {...}}``                  :class:`~rxtweet.v1.models.ScrubGeoNotice`
``{"status_withheld": {...}}``            :class:`~rxtweet.v1.models.StatusWithheldNotice`
``{"user_withheld": {...}}``              :class:`~rxtweet.v1.models.UserWithheldNotice`
``{"warning": {...}}``                    :class:`~rxtweet.v1.models.StallWarning`
anything else                             :class:`~rxtweet.v1.models.UnknownNotice`
                                          (logged at WARNING)
========================================  ==========================================

The keys are tested in tweepy 4.12's order (``Stream.on_data``), so a message is classified
exactly as tweepy classifies it. One addition: an object with ``id``, ``user`` and ``text``
(or ``full_text``) but no ``in_reply_to_status_id`` (trimmed or hand-made data) is a
:class:`~rxtweet.v1.models.Status` too, where tweepy would log it as an unknown type.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from .models import (
    DeleteNotice,
    DisconnectNotice,
    LimitNotice,
    Notice,
    ScrubGeoNotice,
    StallWarning,
    Status,
    StatusWithheldNotice,
    UnknownNotice,
    UserWithheldNotice,
    V1Message,
    _as_int,
    _id_of,
)

__all__ = [
    "NOTICE_TYPES",
    "UNKNOWN_STREAK_WARNING",
    "is_v1_data",
    "status_of",
    "to_v1_message",
]

# The package's name: the v1.1 records are documented and filtered as "rxtweet.v1".
log = logging.getLogger(__package__)

#: After this many messages in a row of no v1.1 type, one WARNING says that the stream does
#: not look like API v1.1 (e.g. API v2 lines served to a v1.1 client).
UNKNOWN_STREAK_WARNING: Final = 20

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

# Status(doc) without its __init__ (see _watching_unknown): the same object.
_new_object = object.__new__


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


def _watching_unknown(limit: int = UNKNOWN_STREAK_WARNING) -> Callable[[dict[str, Any]], V1Message]:
    """:func:`to_v1_message` for one connection, watching for a stream that
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
        # A status with an integer id, nearly every message, as _classify takes it: here,
        # without its call and Status.__init__'s (two Python calls a message).
        if "in_reply_to_status_id" in doc and type(doc.get("id")) is int:
            streak = 0
            status: Status = _new_object(Status)
            status.data = doc
            return status
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

    def status_of_doc(doc: dict[str, Any]) -> Status | None:
        # status_of(convert(doc)), for a parser whose one subscriber is statuses (see
        # batch_parser): the same checks, log records and streak; the fast path repeats
        # convert's rather than calling it (a Python call a message).
        nonlocal streak
        if "in_reply_to_status_id" in doc and type(doc.get("id")) is int:
            streak = 0
            status: Status = _new_object(Status)
            status.data = doc
            return status
        message = convert(doc)
        return message if type(message) is Status else None

    convert.projections = (convert, {status_of: status_of_doc})  # type: ignore[attr-defined]
    return convert


def status_of(message: V1Message) -> Status | None:
    """The message if it is a :class:`Status`, else ``None``: the pick of
    :attr:`V1Stream.statuses <rxtweet.v1.stream.V1Stream>` (``of_type(Status)``), one
    function, so that a parser may make it straight from the message (see
    :func:`_watching_unknown`)."""
    return message if type(message) is Status else None
