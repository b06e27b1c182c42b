"""API v2 JSON -> models: stream messages, REST answers and the rules they carry.

* :func:`to_stream_response` turns a decoded v2 stream message into a
  :class:`~rxtweet.v2.models.StreamResponse`. Cheap: models only wrap their dict and convert
  on attribute access, and ``includes`` is built per key on first access (see
  :mod:`rxtweet.v2.models`).
* :func:`to_response` does the same for a REST answer (tweepy's ``Client`` shape).
* :func:`rule_of` is the one place a rule object becomes a
  :class:`~rxtweet.v2.models.StreamRule` (stream messages, REST answers, rules sync).
* :func:`parse_v2` is :func:`rxtweet.parse.parse_lines` with :func:`to_stream_response`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ..events import StreamEvent
from ..parse import ParseStats, parse_lines
from .models import INCLUDE_MODELS, Response, StreamResponse, StreamRule, Tweet

__all__ = [
    "is_v2_data",
    "parse_v2",
    "process_includes",
    "rule_of",
    "to_response",
    "to_stream_response",
]


def process_includes(includes: dict[str, Any]) -> dict[str, Any]:
    """tweepy's ``Client._process_includes``: a new dict with model lists for ``users``,
    ``tweets``, ``media``, ``places`` and ``polls``, any other key kept raw. The input is not
    modified (tweepy's is). The models are lazy, so this is cheap (~0.2 us per object)."""
    out = includes.copy()
    for key, value in includes.items():
        model = INCLUDE_MODELS.get(key)
        if model is not None and type(value) is list:
            out[key] = list(map(model, value))
    return out


_new_tuple = tuple.__new__
_new_object = object.__new__


def rule_of(rule: dict[str, Any]) -> StreamRule:
    """A rule object (``{"value", "tag", "id"}``, any key may be absent) -> :class:`StreamRule`.

    ``id`` becomes a ``str`` whatever its JSON type (2021 streams sent a number beyond
    2**53), so it compares equal to the rules API's id. No other check: a ``rule`` that is
    not a dict raises ``AttributeError`` (callers that must refuse bad shapes check first).
    """
    rule_id = rule.get("id")
    # tuple.__new__ skips the NamedTuple's Python-level __new__ (it is on the hot path).
    return _new_tuple(
        StreamRule,
        (rule.get("value"), rule.get("tag"), None if rule_id is None else str(rule_id)),
    )


def _other_id(key: object) -> bool:
    """An id that is not X's string of digits but still an id (or absent)."""
    return key is None or (type(key) is int and key >= 0)


def to_stream_response(doc: dict[str, Any]) -> StreamResponse:
    """A decoded v2 stream message -> :class:`~rxtweet.v2.models.StreamResponse`.

    ``data`` -> :class:`~rxtweet.v2.models.Tweet` (``None`` when absent: a system message such
    as ``{"errors": [{"title": "operational-disconnect", ...}]}``); ``includes`` ->
    tweepy's shape, see :func:`process_includes` (``{}`` when absent); ``errors`` -> the raw list
    of objects (``[]`` when absent); ``matching_rules`` -> ``list[StreamRule]`` with ``id`` as
    ``str`` whatever its JSON type (2021 streams sent a number beyond 2**53) and ``tag``
    possibly ``None``. Other top-level keys are dropped. The input is not modified.

    Raises (``TypeError``, ``AttributeError``) if ``data`` or ``includes`` is not an object,
    ``data.id`` is there but not an id (a string of digits, or a whole number),
    ``errors`` not a list of objects (``{"errors": "boom"}`` is not X's shape, and code
    reading ``response.errors[0]["title"]`` must not meet a string) or ``matching_rules`` not
    a list of objects; :func:`~rxtweet.parse.parse_lines` reports that as ``"unexpected
    message shape"`` (logged, counted, a :class:`~rxtweet.events.MalformedMessage`; the
    stream goes on).
    """
    data = doc.get("data")
    if type(data) is dict:
        key = data.get("id")
        # X's ids are strings of digits; anything else would make ``tweet.id`` raise in
        # the subscriber's hands, later: the message is malformed now.
        if not (type(key) is str and key.isdigit()) and not _other_id(key):
            raise TypeError(f"'data.id' is not an id: {type(key).__name__}")
        # Tweet(data) without its __init__ (a Python call per message): the same object,
        # its cache slot left unset (Tweet._once allows for that).
        made: Tweet = _new_object(Tweet)
        made.data = data
        if len(doc) == 1:
            # The default payload ({"data": {...}} alone): nothing else to look up or check.
            return _new_tuple(StreamResponse, (made, {}, [], []))
        tweet: Tweet | None = made
    elif data is None:
        tweet = None
    else:
        raise TypeError(f"'data' is {type(data).__name__}, not an object")
    includes = doc.get("includes")
    if includes is None:
        includes = {}
    elif type(includes) is dict:
        includes = process_includes(includes)
    else:
        raise TypeError(f"'includes' is {type(includes).__name__}, not an object")
    errors = doc.get("errors")
    if errors is None:
        errors = []
    elif type(errors) is not list or not all(type(error) is dict for error in errors):
        raise TypeError("'errors' is not a list of objects")
    rules = doc.get("matching_rules")
    matching_rules: list[StreamRule] = [] if rules is None else [rule_of(rule) for rule in rules]
    # tuple.__new__ skips the NamedTuple's Python-level __new__ (~0.15 us a message).
    return _new_tuple(StreamResponse, (tweet, includes, errors, matching_rules))


def is_v2_data(response: StreamResponse) -> bool:
    """Whether a v2 stream message is real data (a tweet or a compliance event, ``data``).

    ``False`` for a system message that carries only ``errors`` (such as
    ``operational-disconnect``): it proves nothing about the stream, so it must not restart
    the reconnect backoff (the ``is_data`` of :class:`~rxtweet.connection.Connection`).
    """
    return response.data is not None


def to_response(doc: dict[str, Any], data_type: Callable[[Any], Any] | None = None) -> Response:
    """A decoded REST response -> :class:`~rxtweet.v2.models.Response`, as tweepy's
    ``Client`` builds it: ``data`` (an object or a list) converted with ``data_type`` when
    given (``StreamRule`` is built from ``value``/``tag``/``id`` as tweepy does), includes
    as in :func:`process_includes`, ``errors`` (default ``[]``), ``meta`` (default ``{}``).
    """
    data = doc.get("data")
    if data_type is not None and data is not None:
        make = rule_of if data_type is StreamRule else data_type
        data = [make(item) for item in data] if isinstance(data, list) else make(data)
    includes = doc.get("includes")
    return Response(
        data,
        {} if includes is None else process_includes(includes),
        doc.get("errors") or [],
        doc.get("meta") or {},
    )


def parse_v2(
    stats: ParseStats | None = None, *, exact_ints: bool = True
) -> Callable[[Observable[bytes]], Observable[StreamResponse | StreamEvent]]:
    """``parse_lines(to_stream_response, stats)``: the v2 stream operator."""
    return parse_lines(to_stream_response, stats, exact_ints=exact_ints)
