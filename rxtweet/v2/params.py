"""API v2 stream parameters: X's documented values, their validation and their wire form.

A misspelt field (``tweet_fields=["lang", "creted_at"]``) is not refused by every X
deployment: the tweets just arrive without it, and the mistake shows up much later. So the
v2 stream methods check the field and expansion names against the tables below (X's
documented values: the 2024 API reference, plus the names OpenAPI 2.112 and 2.167 add),
and check ``backfill_minutes``, ``partition``, ``start_time`` and ``end_time`` — all before
connecting.

Unknown names raise :class:`InvalidStreamParameter` (a ``ValueError``) that suggests the
nearest documented name. X adds fields from time to time: ``strict=False`` on the stream
methods sends unknown names anyway, logging a WARNING for each, instead of raising.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ..errors import InvalidStreamParameter

if TYPE_CHECKING:
    from .endpoints import Endpoint

__all__ = [
    "BACKFILL_MINUTES_MAX",
    "FIELD_PARAMS",
    "FIELD_VALUES",
    "FILTER_PARAMS",
    "LIKE_FIELD_PARAMS",
    "LIKE_FIELD_VALUES",
    "SAMPLE_PARAMS",
    "InvalidStreamParameter",
    "check_stream_params",
    "endpoint_params",
    "stream_params",
    "stream_time",
    "wire_value",
]

log = logging.getLogger(__package__)

#: ``backfill_minutes`` is an integer from 0 to this (X's schema; the prose says 1-5).
BACKFILL_MINUTES_MAX = 5

#: tweepy's keyword for each fields/expansions parameter -> the query name X spells, in the
#: order the CLI offers them (the one list: the clients, the checks and the CLI read it).
FIELD_PARAMS: Final[dict[str, str]] = {
    "tweet_fields": "tweet.fields",
    "user_fields": "user.fields",
    "expansions": "expansions",
    "media_fields": "media.fields",
    "place_fields": "place.fields",
    "poll_fields": "poll.fields",
}

#: The keyword arguments the sample and the filtered stream take.
SAMPLE_PARAMS: Final = frozenset(
    {*FIELD_PARAMS, "backfill_minutes", "partition", "start_time", "end_time"}
)
FILTER_PARAMS: Final = SAMPLE_PARAMS

#: The documented values of each fields/expansions parameter, by tweepy's keyword name.
FIELD_VALUES: dict[str, frozenset[str]] = {
    "expansions": frozenset(
        {
            "attachments.media_keys",
            "attachments.media_source_tweet",
            "attachments.poll_ids",
            "author_id",
            "author_screen_name",
            "edit_history_tweet_ids",
            "entities.mentions.username",
            "entities.note.mentions.username",
            "geo.place_id",
            "in_reply_to_user_id",
            "referenced_tweets.id",
            "referenced_tweets.id.attachments.media_keys",
            "referenced_tweets.id.author_id",
        }
    ),
    "tweet_fields": frozenset(
        {
            "article",
            "attachments",
            "author_id",
            "card_uri",
            "community_id",
            "context_annotations",
            "conversation_id",
            "created_at",
            "display_text_range",
            "edit_controls",
            "edit_history_tweet_ids",
            "entities",
            "geo",
            "id",
            "in_reply_to_user_id",
            "lang",
            "media_metadata",
            "non_public_metrics",
            "note_tweet",
            "organic_metrics",
            "possibly_sensitive",
            "promoted_metrics",
            "public_metrics",
            "referenced_tweets",
            "reply_settings",
            "scopes",
            "source",
            "text",
            "withheld",
        }
    ),
    "user_fields": frozenset(
        {
            "affiliation",
            "connection_status",
            "created_at",
            "description",
            "entities",
            "id",
            "location",
            "most_recent_tweet_id",
            "name",
            "pinned_tweet_id",
            "profile_banner_url",
            "profile_image_url",
            "protected",
            "public_metrics",
            "receives_your_dm",
            "subscription_type",
            "url",
            "username",
            "verified",
            "verified_type",
            "withheld",
        }
    ),
    "media_fields": frozenset(
        {
            "alt_text",
            "duration_ms",
            "height",
            "media_key",
            "non_public_metrics",
            "organic_metrics",
            "preview_image_url",
            "promoted_metrics",
            "public_metrics",
            "type",
            "url",
            "variants",
            "width",
        }
    ),
    "place_fields": frozenset(
        {
            "contained_within",
            "country",
            "country_code",
            "full_name",
            "geo",
            "id",
            "name",
            "place_type",
        }
    ),
    "poll_fields": frozenset(
        {"duration_minutes", "end_datetime", "id", "options", "voting_status"}
    ),
}

#: The likes streams' own field parameter (tweepy-style keyword -> X's query name).
LIKE_FIELD_PARAMS: Final[dict[str, str]] = {
    "like_with_tweet_author_fields": "like_with_tweet_author.fields",
}

#: On the likes streams, the values that differ from the tweet streams' (OpenAPI 2.167):
#: their expansions expand a like, not a tweet. Their ``tweet_fields``, ``user_fields`` and
#: ``media_fields`` are the tweet streams'.
LIKE_FIELD_VALUES: Final[dict[str, frozenset[str]]] = {
    "like_with_tweet_author_fields": frozenset(
        {"created_at", "id", "liked_tweet_author_id", "liked_tweet_id", "timestamp_ms"}
    ),
    "expansions": frozenset({"liked_tweet_author_id", "liked_tweet_id"}),
}

# An RFC 3339 date-time (the form X documents is YYYY-MM-DDTHH:mm:ssZ).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _items(value: Any) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",")]
    if isinstance(value, Iterable):
        return [str(item).strip() for item in value]
    return [str(value).strip()]


def _check_names(
    name: str, value: Any, *, strict: bool, known: frozenset[str] | None = None
) -> None:
    known = FIELD_VALUES[name] if known is None else known
    wire = FIELD_PARAMS.get(name) or LIKE_FIELD_PARAMS[name]
    items = _items(value)
    if not items or any(not item for item in items):
        raise InvalidStreamParameter(
            f"{name} ({wire}) has an empty name: give names separated by commas, "
            f"without empty items",
            parameter=name,
            value=value,
        )
    for item in items:
        if item in known:
            continue
        close = difflib.get_close_matches(item, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if not strict:
            log.warning(
                "%s (%s): %r is not a documented value; sending it anyway (strict=False). %s",
                name,
                wire,
                item,
                hint.rstrip(),
            )
            continue
        raise InvalidStreamParameter(
            f"{name} ({wire}): {item!r} is not one of X's documented values; {hint}"
            f"known: {', '.join(sorted(known))}. If X added it recently, pass strict=False "
            "to send it anyway",
            parameter=name,
            value=item,
        )


def _check_int(name: str, value: Any, low: int, high: int | None) -> None:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        # isascii: "²" and "٣" are digits to str.isdigit, but not to int() or to X.
        number = int(value.strip())
    bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
    if number is None or number < low or (high is not None and number > high):
        raise InvalidStreamParameter(
            f"{name} must be a whole number {bounds}, not {value!r}",
            parameter=name,
            value=value,
        )


def _parse_time(name: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str) and _RFC3339.match(value.strip()):
        text = value.strip().upper().replace("Z", "+00:00")
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # 2024-13-45T...: well formed, not a date; the message below says so
    raise InvalidStreamParameter(
        f"{name} must be a datetime or an RFC 3339 UTC time such as "
        f"'2024-01-10T12:00:00Z', not {value!r}",
        parameter=name,
        value=value,
    )


def stream_time(name: str, value: Any) -> str:
    """``value`` (a datetime or an RFC 3339 string) as X wants it: ``YYYY-MM-DDTHH:mm:ssZ``.

    A naive datetime is taken as UTC; an offset is converted to UTC; fractions of a second
    are dropped (X's precision is one second).

    Raises:
        InvalidStreamParameter: ``value`` is neither.
    """
    return _parse_time(name, value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wire_value(name: str, value: Any) -> str:
    """A value :func:`check_stream_params` accepted, as it is sent: what was checked is what
    X receives.

    Field and expansion names are stripped and duplicates dropped (``"lang, lang"`` ->
    ``"lang"``: X refuses a name with a space); ``backfill_minutes`` and ``partition``
    become plain decimal (``" 3"`` -> ``"3"``); times as :func:`stream_time`; anything else
    is ``str(value)``.
    """
    if name in FIELD_VALUES or name in LIKE_FIELD_PARAMS:
        return ",".join(dict.fromkeys(_items(value)))
    if name in ("backfill_minutes", "partition") and isinstance(value, int | str):
        return str(int(value))
    if name in ("start_time", "end_time"):
        return stream_time(name, value)
    return str(value)


def check_stream_params(params: dict[str, Any], *, strict: bool = True) -> None:
    """Check tweepy-style stream keyword arguments against X's documented values.

    ``None`` values are skipped (they are not sent). Fields and expansions must be documented
    names (``strict=False``: unknown ones are logged as a WARNING and allowed);
    ``backfill_minutes`` a whole number 0-5; ``partition`` a whole number >= 1;
    ``start_time``/``end_time`` datetimes (naive ones are taken as UTC) or RFC 3339 strings,
    with ``start_time`` before ``end_time``.

    Raises:
        InvalidStreamParameter: (a ``ValueError``) naming the parameter, the bad value and,
            for a misspelt name, the nearest documented one.
    """
    for name, value in params.items():
        if value is None:
            continue
        if name in FIELD_VALUES:
            _check_names(name, value, strict=strict)
        elif name == "backfill_minutes":
            _check_int(name, value, 0, BACKFILL_MINUTES_MAX)
        elif name == "partition":
            _check_int(name, value, 1, None)
    times = {
        name: _parse_time(name, params[name])
        for name in ("start_time", "end_time")
        if params.get(name) is not None
    }
    if len(times) == 2 and times["start_time"] >= times["end_time"]:
        raise InvalidStreamParameter(
            "start_time must be before end_time (start_time is inclusive, end_time exclusive)",
            parameter="start_time",
            value=params["start_time"],
        )


def stream_params(
    params: dict[str, Any], allowed: Iterable[str] = SAMPLE_PARAMS, *, strict: bool = True
) -> dict[str, str]:
    """tweepy-style keyword arguments -> query parameters, checked before anything connects.

    ``tweet_fields=["lang", "created_at"]`` (or ``"lang,created_at"``) becomes
    ``{"tweet.fields": "lang,created_at"}``; ``None`` values are left out; ``start_time`` and
    ``end_time`` (datetimes or RFC 3339 strings) become ``YYYY-MM-DDTHH:mm:ssZ`` in UTC. An
    unknown keyword raises ``TypeError`` (a typo would otherwise be sent silently). Values
    are checked by :func:`check_stream_params`: an undocumented field or
    expansion name, ``backfill_minutes`` outside 0-5 or a malformed time raise
    :class:`~rxtweet.errors.InvalidStreamParameter` (a ``ValueError``); with
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
        name: list(value) if name in FIELD_PARAMS and _is_sequence_like(value) else value
        for name, value in params.items()
    }
    check_stream_params(params, strict=strict)
    # Sent as checked: stripped, without duplicate names, integers in plain decimal.
    return {
        FIELD_PARAMS.get(name, name): wire_value(name, value)
        for name, value in params.items()
        if value is not None
    }


def _is_sequence_like(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes)


def _nearest(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def endpoint_params(
    endpoint: Endpoint, params: dict[str, Any], *, strict: bool = True
) -> dict[str, str]:
    """tweepy-style keyword arguments for ``endpoint`` -> its query, checked before connecting.

    Like :func:`stream_params`, against ``endpoint.params``
    (:data:`rxtweet.v2.endpoints.ENDPOINTS`): ``None`` values are left out; fields and
    expansions must be the endpoint's documented names (the likes streams' ``expansions``
    and ``like_with_tweet_author_fields`` have their own, :data:`LIKE_FIELD_VALUES`;
    ``strict=False`` sends unknown names with a WARNING); ``backfill_minutes`` 0-5;
    ``start_time``/``end_time`` datetimes or RFC 3339 strings, start before end. The
    partition is not a parameter here: it is given as ``partitions=`` and sent per connection.

    Raises:
        TypeError: a keyword the endpoint does not take, naming the nearest one it does
            (``partition=`` points at ``partitions=``).
        InvalidStreamParameter: (a ``ValueError``) a value X would refuse or ignore.
    """
    allowed = endpoint.params
    for name in params:
        if name in allowed:
            continue
        if name == "partition":
            hint = (
                f"; give partitions= ({endpoint.allowed_partitions()}) instead"
                if endpoint.partitions is not None
                else f"; {endpoint.name} is not partitioned"
            )
        else:
            hint = _nearest(name, allowed)
        raise TypeError(
            f"{endpoint.name} stream: unexpected parameter {name!r}{hint}; "
            f"it takes: {', '.join(sorted(allowed)) or 'nothing'}"
        )
    params = {
        name: list(value)
        if (name in FIELD_PARAMS or name in LIKE_FIELD_PARAMS) and _is_sequence_like(value)
        else value
        for name, value in params.items()
    }
    likes = endpoint.kind == "likes"
    names = {
        name: value
        for name, value in params.items()
        if value is not None and (name in FIELD_PARAMS or name in LIKE_FIELD_PARAMS)
    }
    for name, value in names.items():
        known = LIKE_FIELD_VALUES.get(name) if likes else None
        _check_names(name, value, strict=strict, known=known)
    check_stream_params(
        {name: value for name, value in params.items() if name not in names}, strict=strict
    )
    return {
        FIELD_PARAMS.get(name) or LIKE_FIELD_PARAMS.get(name) or name: wire_value(name, value)
        for name, value in params.items()
        if value is not None
    }
