"""What one stream request receives of a queued message: X's field trimming and rule matching.

X sends on a Tweet stream only its default fields plus what the request asked for
(``tweet.fields``, ``expansions``, ``*.fields``), and on the filtered stream only messages
matching a rule, with those rules in ``matching_rules``. :class:`_Shaper` does both for one
request; messages that are not a Tweet document pass verbatim, so fault injection keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from .rules import _CompiledRule, _obj, _Tweet
from .values import FieldsMode

__all__ = ["FILTERED_STREAM_PATH", "TWEET_STREAM_PATHS"]

#: Tweet streams whose messages are ``{"data": Tweet, "includes": ..., ...}``: the ones the
#: field trimming applies to (compliance, likes and label streams are sent verbatim).
TWEET_STREAM_PATHS = frozenset(
    {
        "/2/tweets/sample/stream",
        "/2/tweets/search/stream",
        "/2/tweets/sample10/stream",
        "/2/tweets/firehose/stream",
        "/2/tweets/firehose/stream/lang/en",
        "/2/tweets/firehose/stream/lang/ja",
        "/2/tweets/firehose/stream/lang/ko",
        "/2/tweets/firehose/stream/lang/pt",
    }
)
#: The filtered stream: the one path whose messages are matched against the rules.
FILTERED_STREAM_PATH = "/2/tweets/search/stream"

#: X's default fields of each object (sent whatever the request asked).
_TWEET_DEFAULT = frozenset({"id", "text", "edit_history_tweet_ids"})
_USER_DEFAULT = frozenset({"id", "name", "username"})
_MEDIA_DEFAULT = frozenset({"media_key", "type"})
_PLACE_DEFAULT = frozenset({"id", "full_name"})
_POLL_DEFAULT = frozenset({"id", "options"})
#: The Tweet field an expansion needs (X sends it with the expansion).
_EXPANSION_FIELD = {
    "author_id": "author_id",
    "in_reply_to_user_id": "in_reply_to_user_id",
    "referenced_tweets.id": "referenced_tweets",
    "referenced_tweets.id.author_id": "referenced_tweets",
    "attachments.media_keys": "attachments",
    "attachments.poll_ids": "attachments",
    "geo.place_id": "geo",
    "entities.mentions.username": "entities",
}


def _request_set(query: Mapping[str, list[str]], name: str) -> frozenset[str]:
    return frozenset(
        part.strip() for value in query.get(name, ()) for part in value.split(",") if part.strip()
    )


def _pick(obj: Any, default: frozenset[str], asked: frozenset[str]) -> Any:
    if not isinstance(obj, dict):
        return obj
    return {k: v for k, v in obj.items() if k in default or k in asked}


class _Shaper:
    """Turns one queued message into what ONE stream request receives (``None``: nothing).

    Messages that are not a JSON object with a ``data`` object (errors, malformed lines,
    bytes) pass verbatim, so fault injection keeps working.
    """

    def __init__(
        self,
        path: str,
        query: Mapping[str, list[str]],
        *,
        fields: FieldsMode,
        match_rules: bool,
        rules: Callable[[], list[_CompiledRule]],
        on_unmatched: Callable[[], None],
    ) -> None:
        tweets = path in TWEET_STREAM_PATHS
        self.trim = fields == "requested" and tweets
        self.match = match_rules and path == FILTERED_STREAM_PATH
        self.strip_rules = self.trim and path != FILTERED_STREAM_PATH
        self.active = self.trim or self.match or self.strip_rules
        self._rules = rules
        self._on_unmatched = on_unmatched
        self.expansions = _request_set(query, "expansions")
        implied = {_EXPANSION_FIELD[e] for e in self.expansions if e in _EXPANSION_FIELD}
        self.tweet_fields = _request_set(query, "tweet.fields") | implied
        self.included_tweet_fields = _request_set(query, "tweet.fields")
        self.user_fields = _request_set(query, "user.fields")
        self.media_fields = _request_set(query, "media.fields")
        self.place_fields = _request_set(query, "place.fields")
        self.poll_fields = _request_set(query, "poll.fields")

    def shape(self, message: bytes) -> bytes | None:
        if not self.active or message[:1] != b"{":
            return message
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            return message
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
            return message
        shaped = dict(doc)  # top-level keys are replaced, nested objects never mutated
        if self.match:
            tweet = _Tweet.of(doc)
            matched = [rule for rule in self._rules() if rule.test(tweet)]
            if not matched:
                self._on_unmatched()
                return None
            shaped["matching_rules"] = [{"id": rule.id, "tag": rule.tag} for rule in matched]
        elif self.strip_rules:
            shaped.pop("matching_rules", None)
        if self.trim:
            self._trim(shaped)
        # Unchanged messages keep their exact bytes (spacing, escapes, number formats).
        return message if shaped == doc else orjson.dumps(shaped)

    def _trim(self, doc: dict[str, Any]) -> None:
        data: dict[str, Any] = doc["data"]
        includes = doc.get("includes")
        doc["data"] = _pick(data, _TWEET_DEFAULT, self.tweet_fields)
        if not isinstance(includes, dict):
            doc.pop("includes", None)
            return
        exp = self.expansions
        shaped: dict[str, Any] = {}
        tweets = [t for t in includes.get("tweets") or () if isinstance(t, dict)]
        if "referenced_tweets.id" in exp and tweets:
            extra = (
                frozenset({"author_id"}) if "referenced_tweets.id.author_id" in exp else frozenset()
            )
            asked = self.included_tweet_fields | extra
            shaped["tweets"] = [_pick(t, _TWEET_DEFAULT, asked) for t in tweets]
        user_ids: set[str] = set()
        usernames: set[str] = set()
        if "author_id" in exp:
            user_ids.add(str(data.get("author_id")))
        if "in_reply_to_user_id" in exp:
            user_ids.add(str(data.get("in_reply_to_user_id")))
        if "referenced_tweets.id.author_id" in exp:
            user_ids.update(str(t.get("author_id")) for t in tweets)
        if "entities.mentions.username" in exp:
            entities = _obj(data.get("entities"))
            for mention in entities.get("mentions") or ():
                if isinstance(mention, dict):
                    usernames.add(str(mention.get("username", "")).casefold())
        users = [
            _pick(u, _USER_DEFAULT, self.user_fields)
            for u in includes.get("users") or ()
            if isinstance(u, dict)
            and (str(u.get("id")) in user_ids or str(u.get("username", "")).casefold() in usernames)
        ]
        if users:
            shaped["users"] = users
        for key, expansion, default, asked in (
            ("media", "attachments.media_keys", _MEDIA_DEFAULT, self.media_fields),
            ("polls", "attachments.poll_ids", _POLL_DEFAULT, self.poll_fields),
            ("places", "geo.place_id", _PLACE_DEFAULT, self.place_fields),
        ):
            if expansion in exp and includes.get(key):
                shaped[key] = [_pick(o, default, asked) for o in includes[key]]
        for key, value in includes.items():
            if key not in ("tweets", "users", "media", "polls", "places"):
                shaped[key] = value  # an include this server does not know: left as it is
        if shaped:
            doc["includes"] = shaped
        else:
            doc.pop("includes", None)
