""":class:`TweetStream`: the substreams of one v2 stream, declared on
:class:`~rxtweet.substreams.Substreams`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable

from ..substreams import ItemSource, Substreams
from .convert import TWEET_OF
from .models import StreamResponse, StreamRule, Tweet

__all__ = ["TweetStream"]


class TweetStream(Substreams[StreamResponse]):
    """The observables of one v2 stream. It holds observables; it is not one.

    All substreams but :attr:`lines` share one connection: subscribing to any number of them
    opens exactly one, which closes when the last subscription is disposed; a later
    subscription opens a fresh one. To attach several before the connection opens (so
    that none misses the first message), subscribe inside :meth:`hold`::

        with stream.hold():
            stream.tweets.subscribe(on_tweet)
            stream.events.subscribe(on_event)

    Attributes:
        items: everything on the shared connection, in order: each message as
            ``Parsed(value, raw)`` (the model and the exact bytes received) and each event.
        lines: cold raw lines; each subscription opens its own (reconnecting) connection.
        responses: every :class:`StreamResponse` (tweet messages and system messages).
        tweets: the :class:`Tweet` of each message that has one.
        includes: the ``includes`` dict (tweepy's shape) of each message that has one.
        errors: the non-empty ``errors`` list of each message.
        matching_rules: the non-empty list of :class:`StreamRule` of each message.
        events: lifecycle events (:mod:`rxtweet.events`); completes after ``Disconnected``.
        stats: parse counters (messages, keep-alives, malformed by reason).
    """

    def __init__(self, connection: ItemSource[StreamResponse]) -> None:
        super().__init__(connection)
        self.responses: Observable[StreamResponse] = self.select(_identity)
        self.tweets: Observable[Tweet] = self.select(_tweet_of)
        self.includes: Observable[dict[str, Any]] = self.select(_includes_of)
        self.errors: Observable[list[dict[str, Any]]] = self.select(_errors_of)
        self.matching_rules: Observable[list[StreamRule]] = self.select(_rules_of)


def _identity(response: StreamResponse) -> StreamResponse:
    return response


# C code, not a Python function: the pick of the hottest substream runs once a message.
# The convert module's own: a parser that sees it alone may make the tweet straight from
# the message (convert.PROJECTIONS).
_tweet_of: Callable[[StreamResponse], Tweet | None] = TWEET_OF


def _includes_of(response: StreamResponse) -> dict[str, Any] | None:
    return response.includes or None


def _errors_of(response: StreamResponse) -> list[dict[str, Any]] | None:
    return response.errors or None


def _rules_of(response: StreamResponse) -> list[StreamRule] | None:
    return response.matching_rules or None
