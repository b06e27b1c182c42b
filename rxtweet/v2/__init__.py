"""API v2: :class:`StreamingClient` (tweepy's face and the reactive one) and :class:`TweetStream`.

Reactive::

    client = StreamingClient(bearer_token)
    stream = client.sample_stream(tweet_fields=["lang", "created_at"])
    stream.tweets.pipe(ops.take(100)).subscribe(print)

tweepy::

    class Printer(StreamingClient):
        def on_tweet(self, tweet):
            print(tweet.id, tweet.text)

    Printer(bearer_token).sample()

Partitioned (one connection per partition, merged into one stream)::

    stream = client.firehose_stream(partitions="all", tweet_fields=["lang"])
    stream.tweets.subscribe(print)

The package's modules: :mod:`~rxtweet.v2.client` (the client), :mod:`~rxtweet.v2.endpoints`
(every stream endpoint: path, partitions, parameters), :mod:`~rxtweet.v2.stream`
(its substreams), :mod:`~rxtweet.v2.params` (parameters and their checks),
:mod:`~rxtweet.v2.compliance`, :mod:`~rxtweet.v2.likes`, :mod:`~rxtweet.v2.labels` and
:mod:`~rxtweet.v2.activity` (the other streams' models and stream objects),
:mod:`~rxtweet.v2.models` and :mod:`~rxtweet.v2.convert` (JSON -> models),
:mod:`~rxtweet.v2.identity` (each message's identity, for de-duplication),
:mod:`~rxtweet.v2.rules` (the rules endpoints) on :mod:`~rxtweet.v2.rest` (REST plumbing).
"""

from __future__ import annotations

from ..errors import RulesSyncError
from ..errors import format_problem as format_rule_problem
from .activity import ActivityEvent, ActivityResponse, ActivityStream
from .client import DEFAULT_BASE_URL, DEFAULT_STALL_TIMEOUT, ENDPOINTS, StreamingClient
from .compliance import ComplianceEvent, ComplianceResponse, ComplianceStream
from .endpoints import Endpoint
from .identity import SNOWFLAKE_EPOCH_MS, Identity, identity_for, snowflake_ms
from .labels import LabelEvent, LabelResponse, LabelStream
from .likes import LikeEvent, LikeResponse, LikeStream
from .params import FIELD_PARAMS, endpoint_params, stream_params
from .rules import RulesSync, rules_of_doc
from .stream import TweetStream

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_STALL_TIMEOUT",
    "ENDPOINTS",
    "FIELD_PARAMS",
    "SNOWFLAKE_EPOCH_MS",
    "ActivityEvent",
    "ActivityResponse",
    "ActivityStream",
    "ComplianceEvent",
    "ComplianceResponse",
    "ComplianceStream",
    "Endpoint",
    "Identity",
    "LabelEvent",
    "LabelResponse",
    "LabelStream",
    "LikeEvent",
    "LikeResponse",
    "LikeStream",
    "RulesSync",
    "RulesSyncError",
    "StreamingClient",
    "TweetStream",
    "endpoint_params",
    "format_rule_problem",
    "identity_for",
    "rules_of_doc",
    "snowflake_ms",
    "stream_params",
]
