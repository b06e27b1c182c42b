"""The v2 streaming endpoints the fake server answers, and its checks of their query strings.

The server keeps its OWN table instead of importing the client's (:mod:`rxtweet.v2.endpoints`):
a test server that read the client's idea of the paths, partition ranges and parameters would
agree with the client's mistakes instead of catching them. ``tests/test_fake_server_endpoints``
compares the two tables.

:func:`check_stream_query` answers what X answers for a bad query: 400 with an
``invalid-request`` problem naming the parameter (a missing or out-of-range ``partition``, a
``backfill_minutes`` outside 0-5, a malformed ``start_time``/``end_time``, a parameter of
another stream that this endpoint does not take, such as ``partition`` on the 1% sample).
Names no v2 stream takes are let through, unlike X.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

__all__ = ["ENDPOINTS_BY_PATH", "SERVED_ENDPOINTS", "ServedEndpoint", "check_stream_query"]

Kind: TypeAlias = Literal["tweets", "compliance", "likes", "labels", "activity"]

_TWEET_FIELDS = frozenset(
    {
        "expansions",
        "tweet.fields",
        "user.fields",
        "media.fields",
        "place.fields",
        "poll.fields",
    }
)
_LIKE_FIELDS = frozenset(
    {"like_with_tweet_author.fields", "expansions", "tweet.fields", "user.fields", "media.fields"}
)
_RECOVERY = frozenset({"backfill_minutes", "start_time", "end_time"})


@dataclass(frozen=True, slots=True)
class ServedEndpoint:
    """One v2 stream the server answers.

    Attributes:
        name: the endpoint's name (the same names as :data:`rxtweet.v2.endpoints.ENDPOINTS`).
        path: its URL path.
        partitions: how many partitions it has (``partition`` required, 1..N), or ``None``.
        params: the query parameter names it accepts (``partition`` included when required).
        kind: what its messages are.
    """

    name: str
    path: str
    partitions: int | None
    params: frozenset[str]
    kind: Kind


def _tweets(name: str, path: str, partitions: int | None) -> ServedEndpoint:
    params = _TWEET_FIELDS | _RECOVERY
    if partitions:
        params |= {"partition"}
    return ServedEndpoint(name, path, partitions, frozenset(params), "tweets")


def _other(name: str, path: str, partitions: int | None, kind: Kind) -> ServedEndpoint:
    params = (_LIKE_FIELDS if kind == "likes" else frozenset()) | _RECOVERY
    if partitions:
        params |= {"partition"}
    return ServedEndpoint(name, path, partitions, frozenset(params), kind)


#: Every v2 stream X serves (OpenAPI 2.167), by name.
SERVED_ENDPOINTS: Mapping[str, ServedEndpoint] = {
    e.name: e
    for e in (
        _tweets("search", "/2/tweets/search/stream", None),
        # OpenAPI lists no start_time/end_time on the 1% sample, the 2024 Enterprise reference
        # did: accepted, so a client sending them is not refused here and accepted by X.
        _tweets("sample", "/2/tweets/sample/stream", None),
        _tweets("sample10", "/2/tweets/sample10/stream", 2),
        _tweets("firehose", "/2/tweets/firehose/stream", 20),
        _tweets("firehose_en", "/2/tweets/firehose/stream/lang/en", 8),
        _tweets("firehose_ja", "/2/tweets/firehose/stream/lang/ja", 2),
        _tweets("firehose_ko", "/2/tweets/firehose/stream/lang/ko", 2),
        _tweets("firehose_pt", "/2/tweets/firehose/stream/lang/pt", 2),
        _other("compliance_tweets", "/2/tweets/compliance/stream", 4, "compliance"),
        _other("compliance_users", "/2/users/compliance/stream", 4, "compliance"),
        _other("compliance_likes", "/2/likes/compliance/stream", None, "compliance"),
        _other("likes_firehose", "/2/likes/firehose/stream", 20, "likes"),
        _other("likes_sample10", "/2/likes/sample10/stream", 2, "likes"),
        _other("labels", "/2/tweets/label/stream", None, "labels"),
        _other("activity", "/2/activity/stream", None, "activity"),
    )
}
_ALL_PARAMS = frozenset().union(*(e.params for e in SERVED_ENDPOINTS.values()))
#: The same endpoints, by path.
ENDPOINTS_BY_PATH: Mapping[str, ServedEndpoint] = {e.path: e for e in SERVED_ENDPOINTS.values()}


def _range_problem(name: str, raw: str, low: int, high: int) -> tuple[str, dict[str, list[str]]]:
    return (
        f"The `{name}` query parameter value [{raw}] is not between {low} and {high}",
        {name: [raw]},
    )


def _whole(raw: str) -> int | None:
    text = raw.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def check_stream_query(
    endpoint: ServedEndpoint, query: Mapping[str, list[str]]
) -> tuple[str, dict[str, list[str]]] | None:
    """What is wrong with ``query`` for ``endpoint``: ``(message, parameters)``, or ``None``.

    The message is worded as X words it (``The `partition` query parameter value [21] is not
    between 1 and 20``); ``parameters`` maps the offending parameter to its values, as in the
    ``errors[].parameters`` of X's ``invalid-request`` problem.
    """
    # Only names some v2 stream takes are refused where they do not belong (X refuses any
    # unknown name): tests of other things tack on parameters of their own, such as ``x=1``.
    unknown = sorted(name for name in query if name in _ALL_PARAMS and name not in endpoint.params)
    if unknown:
        allowed = ",".join(sorted(endpoint.params))
        return (
            f"The query parameters [{','.join(unknown)}] is not one of [{allowed}]",
            {name: list(query[name]) for name in unknown},
        )
    if endpoint.partitions is not None:
        values = query.get("partition")
        if not values or not values[-1].strip():
            return "The `partition` query parameter can not be empty", {"partition": []}
        number = _whole(values[-1])
        if number is None or not 1 <= number <= endpoint.partitions:
            return _range_problem("partition", values[-1], 1, endpoint.partitions)
    backfill = query.get("backfill_minutes")
    if backfill:
        number = _whole(backfill[-1])
        if number is None or not 0 <= number <= 5:
            return _range_problem("backfill_minutes", backfill[-1], 0, 5)
    for name in ("start_time", "end_time"):
        values = query.get(name)
        if values and not _is_timestamp(values[-1]):
            return (
                f"Invalid '{name}':'{values[-1]}'. '{name}' must be a timestamp in "
                "YYYY-MM-DDTHH:mm:ssZ format",
                {name: list(values)},
            )
    return None


def _is_timestamp(raw: str) -> bool:
    text = raw.strip()
    if not text.endswith("Z"):
        return False
    try:
        datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return False
    return True


def partition_of(endpoint: ServedEndpoint, query: Mapping[str, list[str]]) -> int | None:
    """The partition a (checked) request asks for; ``None`` for an unpartitioned endpoint."""
    if endpoint.partitions is None:
        return None
    values = query.get("partition")
    return _whole(values[-1]) if values else None
