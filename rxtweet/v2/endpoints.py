"""Every API v2 stream X serves: its path, its partitions and the parameters it takes.

One table, :data:`ENDPOINTS`, read by the client (which URL, how many connections, which
keyword arguments), by the parameter checks (:func:`rxtweet.v2.params.endpoint_params`), by
the CLI and by :class:`~rxtweet.testing.FakeStreamServer`. The facts are OpenAPI 2.167's
(``docs.x.com``, 2026): see ``x-streaming-protocol.md`` section 9.

A *partition* is a disjoint shard of an endpoint's messages: all of ``1..N`` are needed for
the whole stream. Partitioned endpoints require one (each connection names exactly one), so
the client opens one connection per partition asked for and merges them
(:mod:`rxtweet.partitions`).

``params`` are the keyword names the client's methods accept (tweepy's spelling,
``tweet_fields`` for ``tweet.fields``), without ``partition``: partitions are given as
``partitions=``. ``"search"`` and ``"sample"`` list what X's current spec documents;
:meth:`~rxtweet.v2.StreamingClient.sample_stream` and ``filter_stream`` keep accepting
their historic superset (``partition``, and ``start_time``/``end_time`` on the sample, which
the 2024 Enterprise reference listed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

__all__ = ["ENDPOINTS", "Endpoint", "EndpointKind"]

log = logging.getLogger(__name__)

#: What an endpoint's messages are (which converter and stream object the client uses).
EndpointKind = Literal["tweets", "compliance", "likes", "labels", "activity"]

_TWEET_FIELDS: Final = frozenset(
    {"expansions", "tweet_fields", "user_fields", "media_fields", "place_fields", "poll_fields"}
)
# The likes streams' field params (OpenAPI 2.167: like_with_tweet_author.fields, expansions
# liked_tweet_id/liked_tweet_author_id, and the fields of what those expand to).
_LIKE_FIELDS: Final = frozenset(
    {"like_with_tweet_author_fields", "expansions", "media_fields", "user_fields", "tweet_fields"}
)
_BACKFILL: Final = frozenset({"backfill_minutes"})
_RECOVERY: Final = frozenset({"backfill_minutes", "start_time", "end_time"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One v2 stream endpoint.

    Attributes:
        name: the key in :data:`ENDPOINTS` (``"firehose_en"``), also the CLI's word for it.
        path: below the base URL (``/2/tweets/firehose/stream/lang/en``).
        partitions: the partition numbers X serves (``range(1, 21)``), ``None`` when the
            endpoint is not partitioned. Where it is a range, a partition is required.
        params: the keyword arguments the endpoint takes (tweepy's names).
        kind: what its messages are: ``"tweets"``, ``"compliance"``, ``"likes"``,
            ``"labels"`` or ``"activity"``.
    """

    name: str
    path: str
    partitions: range | None
    params: frozenset[str]
    kind: EndpointKind

    @property
    def partitioned(self) -> bool:
        """Whether each connection must name a partition."""
        return self.partitions is not None

    def allowed_partitions(self) -> str:
        """The partition range in words (``"1-20"``), or ``"none"``."""
        if self.partitions is None:
            return "none"
        return f"{self.partitions.start}-{self.partitions.stop - 1}"


def _endpoint(
    name: str, path: str, partitions: int | None, params: frozenset[str], kind: EndpointKind
) -> Endpoint:
    return Endpoint(
        name, path, None if partitions is None else range(1, partitions + 1), params, kind
    )


#: Every stream endpoint, by name. Read-only.
ENDPOINTS: Final[Mapping[str, Endpoint]] = MappingProxyType(
    {
        endpoint.name: endpoint
        for endpoint in (
            _endpoint(
                "search", "/2/tweets/search/stream", None, _RECOVERY | _TWEET_FIELDS, "tweets"
            ),
            _endpoint(
                "sample", "/2/tweets/sample/stream", None, _BACKFILL | _TWEET_FIELDS, "tweets"
            ),
            _endpoint(
                "sample10", "/2/tweets/sample10/stream", 2, _RECOVERY | _TWEET_FIELDS, "tweets"
            ),
            _endpoint(
                "firehose", "/2/tweets/firehose/stream", 20, _RECOVERY | _TWEET_FIELDS, "tweets"
            ),
            _endpoint(
                "firehose_en",
                "/2/tweets/firehose/stream/lang/en",
                8,
                _RECOVERY | _TWEET_FIELDS,
                "tweets",
            ),
            _endpoint(
                "firehose_ja",
                "/2/tweets/firehose/stream/lang/ja",
                2,
                _RECOVERY | _TWEET_FIELDS,
                "tweets",
            ),
            _endpoint(
                "firehose_ko",
                "/2/tweets/firehose/stream/lang/ko",
                2,
                _RECOVERY | _TWEET_FIELDS,
                "tweets",
            ),
            _endpoint(
                "firehose_pt",
                "/2/tweets/firehose/stream/lang/pt",
                2,
                _RECOVERY | _TWEET_FIELDS,
                "tweets",
            ),
            _endpoint(
                "compliance_tweets", "/2/tweets/compliance/stream", 4, _RECOVERY, "compliance"
            ),
            _endpoint("compliance_users", "/2/users/compliance/stream", 4, _RECOVERY, "compliance"),
            _endpoint(
                "compliance_likes", "/2/likes/compliance/stream", None, _RECOVERY, "compliance"
            ),
            _endpoint(
                "likes_firehose", "/2/likes/firehose/stream", 20, _RECOVERY | _LIKE_FIELDS, "likes"
            ),
            _endpoint(
                "likes_sample10", "/2/likes/sample10/stream", 2, _RECOVERY | _LIKE_FIELDS, "likes"
            ),
            _endpoint("labels", "/2/tweets/label/stream", None, _RECOVERY, "labels"),
            _endpoint("activity", "/2/activity/stream", None, _RECOVERY, "activity"),
        )
    }
)
