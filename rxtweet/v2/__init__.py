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

The package's modules: :mod:`~rxtweet.v2.client` (the client), :mod:`~rxtweet.v2.stream`
(its substreams), :mod:`~rxtweet.v2.params` (parameters and their checks),
:mod:`~rxtweet.v2.models` and :mod:`~rxtweet.v2.convert` (JSON -> models),
:mod:`~rxtweet.v2.rules` (the rules endpoints) on :mod:`~rxtweet.v2.rest` (REST plumbing).
"""

from __future__ import annotations

from ..errors import RulesSyncError
from ..errors import format_problem as format_rule_problem
from .client import DEFAULT_BASE_URL, DEFAULT_STALL_TIMEOUT, ENDPOINTS, StreamingClient
from .params import FIELD_PARAMS, stream_params
from .rules import RulesSync, rules_of_doc
from .stream import TweetStream

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_STALL_TIMEOUT",
    "ENDPOINTS",
    "FIELD_PARAMS",
    "RulesSync",
    "RulesSyncError",
    "StreamingClient",
    "TweetStream",
    "format_rule_problem",
    "rules_of_doc",
    "stream_params",
]
