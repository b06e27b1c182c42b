"""API v2 JSON -> models: stream messages, REST answers and the rules they carry.

* :func:`to_stream_response` turns a decoded v2 stream message into a
  :class:`~rxtweet.v2.models.StreamResponse`. Cheap: it checks the message's shape and
  wraps ``data``; models convert on attribute access, and the response converts its
  ``includes``, ``errors`` and ``matching_rules`` when first read (see
  :class:`~rxtweet.v2.models.StreamResponse`).
* :func:`to_response` does the same for a REST answer (tweepy's ``Client`` shape).
* :func:`rule_of` is the one place a rule object becomes a
  :class:`~rxtweet.v2.models.StreamRule` (stream messages, REST answers, rules sync).
* :func:`parse_v2` is :func:`rxtweet.parse.parse_lines` with :func:`to_stream_response`.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from operator import attrgetter
from typing import Any, Final

from reactivex import Observable

from ..events import StreamEvent
from ..parse import ParseStats, parse_lines
from .models import (
    Response,
    StreamResponse,
    StreamRule,
    Tweet,
    process_includes,
    rule_of,
)

__all__ = [
    "is_v2_data",
    "parse_v2",
    "process_includes",
    "rule_of",
    "to_response",
    "to_stream_response",
]


_new_object = object.__new__
_RULE_ID_TYPES = frozenset({str, int, float, bool, type(None)})


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
        # ASCII digits only: str.isdigit also takes "²", which int() refuses; and the bytes'
        # test is the quicker (~50 ns against ~110 for a 19-digit id).
        if not ((type(key) is str and key.isascii() and key.encode().isdigit()) or _other_id(key)):
            raise TypeError(f"'data.id' is not an id: {type(key).__name__}")
        # Tweet(data) without its __init__ (a Python call per message): the same object,
        # its cache slot left unset (Tweet._once allows for that).
        made: Tweet = _new_object(Tweet)
        made.data = data
        tweet: Tweet | None = made
    elif data is None:
        tweet = None
    else:
        raise TypeError(f"'data' is {type(data).__name__}, not an object")
    # The default payload ({"data": {...}} alone) has no other part to look up or check.
    # The parts are converted when first read (StreamResponse is lazy); their shapes are
    # checked now, so that a bad one makes this line malformed, not a later read fail.
    if tweet is None or len(doc) > 1:
        _check_parts(doc)
    response: StreamResponse = _new_object(StreamResponse)
    response._data = tweet
    response._doc = doc
    return response


def to_stream_tweet(doc: dict[str, Any]) -> Tweet | None:
    """``to_stream_response(doc).data``, without making the response: the same checks, the
    same errors (for a consumer of the tweets alone, see :data:`PROJECTIONS`)."""
    # The data and id checks repeat to_stream_response's, not shared through a helper: a
    # Python call per message would cost a fifth of what this saves (tested equal on any
    # document: tests/test_value_delivery.py, tests/test_attack_tweet_projection.py).
    data = doc.get("data")
    if type(data) is dict:
        key = data.get("id")
        if not ((type(key) is str and key.isascii() and key.encode().isdigit()) or _other_id(key)):
            raise TypeError(f"'data.id' is not an id: {type(key).__name__}")
        made: Tweet = _new_object(Tweet)
        made.data = data
        if len(doc) > 1:
            _check_parts(doc)
        return made
    if data is None:
        _check_parts(doc)
        return None
    raise TypeError(f"'data' is {type(data).__name__}, not an object")


def lone_tweet_or_response(response: StreamResponse) -> Tweet | StreamResponse:
    """The response's tweet when its message held nothing else (``{"data": {...}}``, the
    default payload), else the response itself: what the hook face needs of a message
    (``on_tweet`` alone, or each hook the message calls for; see :data:`PROJECTIONS`)."""
    tweet = response._data
    doc = response._doc
    if tweet is not None and doc is not None and len(doc) == 1:
        return tweet
    return response


def to_lone_tweet_or_response(doc: dict[str, Any]) -> Tweet | StreamResponse:
    """``lone_tweet_or_response(to_stream_response(doc))``, a lone tweet made without its
    response: the same checks, the same errors."""
    data = doc.get("data")
    if type(data) is dict and len(doc) == 1:
        # to_stream_response's id check, a third time (see to_stream_tweet for why).
        key = data.get("id")
        if not ((type(key) is str and key.isascii() and key.encode().isdigit()) or _other_id(key)):
            raise TypeError(f"'data.id' is not an id: {type(key).__name__}")
        made: Tweet = _new_object(Tweet)
        made.data = data
        return made
    return to_stream_response(doc)


def _check_parts(doc: dict[str, Any]) -> None:
    """Raise if a message's ``includes``, ``errors`` or ``matching_rules`` is not X's shape
    (see :func:`to_stream_response`)."""
    includes = doc.get("includes")
    if includes is not None and type(includes) is not dict:
        raise TypeError(f"'includes' is {type(includes).__name__}, not an object")
    errors = doc.get("errors")
    # all(map(isinstance, ...)): C calls only, where a generator would cost ~0.1 us.
    if errors is not None and (
        type(errors) is not list or not all(map(isinstance, errors, repeat(dict)))
    ):
        raise TypeError("'errors' is not a list of objects")
    rules = doc.get("matching_rules")
    # Rule objects with a scalar id or none (str() of any other could fail when the rules
    # are read, later). A loop, not frozenset.issuperset(map(...)): a message matches a
    # rule or two, and issuperset builds a set of its argument first (~2x the time).
    if rules is not None:
        if type(rules) is not list:
            raise TypeError("'matching_rules' is not a list of objects with scalar ids")
        for rule in rules:
            if not isinstance(rule, dict) or type(rule.get("id")) not in _RULE_ID_TYPES:
                raise TypeError("'matching_rules' is not a list of objects with scalar ids")


#: The picks of a response that a parser may make straight from the message (see
#: :func:`~rxtweet.parse.batch_parser`): ``tweets``' ``attrgetter("data")`` is
#: :func:`to_stream_tweet`, the hook face's :func:`lone_tweet_or_response` is
#: :func:`to_lone_tweet_or_response`. Attached to :func:`to_stream_response` as
#: ``projections``, with the function they stand for: a wrapper that copies its attributes
#: (``functools.wraps``) does not pass for it.
TWEET_OF: Final = attrgetter("data")
PROJECTIONS: Final[dict[Callable[[Any], Any], Callable[[dict[str, Any]], Any]]] = {
    TWEET_OF: to_stream_tweet,
    lone_tweet_or_response: to_lone_tweet_or_response,
}
to_stream_response.projections = (to_stream_response, PROJECTIONS)  # type: ignore[attr-defined]


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
