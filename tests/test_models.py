"""rxtweet.models against real v2 stream data and tweepy 4.x's model behaviour."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from rxtweet.models import (
    Media,
    Place,
    Poll,
    ReferencedTweet,
    Response,
    StreamResponse,
    StreamRule,
    Tweet,
    User,
    _Model,
)

DATA = Path(__file__).parent / "data"
TWARC = DATA / "twarc-csv_streaming_output.jsonl"
DART = DATA / "twitter-dart_sample_stream.jsonl"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().split(b"\n") if line]


@pytest.fixture(scope="module")
def twarc() -> list[dict[str, Any]]:
    return _docs(TWARC)


@pytest.fixture
def line1(twarc: list[dict[str, Any]]) -> dict[str, Any]:
    """A fresh copy of message 1: a quote tweet with media, 2 users, a place, a tweet."""
    return copy.deepcopy(twarc[0])


def _all_tweet_dicts() -> list[dict[str, Any]]:
    out = []
    for doc in _docs(TWARC):
        if "data" in doc:
            out.append(doc["data"])
            out.extend(doc["includes"].get("tweets", []))
    out.extend(doc["data"] for doc in _docs(DART))
    return out


# tweepy 4.14's __slots__ (minus "data"): every one must be an attribute here too.
TWEEPY_ATTRIBUTES = {
    Tweet: {
        "id", "text", "edit_history_tweet_ids", "attachments", "author_id",
        "context_annotations", "conversation_id", "created_at", "edit_controls", "entities",
        "geo", "in_reply_to_user_id", "lang", "non_public_metrics", "organic_metrics",
        "possibly_sensitive", "promoted_metrics", "public_metrics", "referenced_tweets",
        "reply_settings", "source", "withheld",
    },
    User: {
        "id", "name", "username", "created_at", "description", "entities", "location",
        "pinned_tweet_id", "profile_image_url", "protected", "public_metrics", "url",
        "verified", "verified_type", "withheld",
    },
    Media: {
        "media_key", "url", "type", "duration_ms", "height", "non_public_metrics",
        "organic_metrics", "preview_image_url", "promoted_metrics", "public_metrics", "width",
        "alt_text", "variants",
    },
    Place: {
        "full_name", "id", "contained_within", "country", "country_code", "geo", "name",
        "place_type",
    },
    Poll: {"id", "options", "duration_minutes", "end_datetime", "voting_status"},
    ReferencedTweet: {"id", "type"},
}  # fmt: skip


@pytest.mark.parametrize("cls", list(TWEEPY_ATTRIBUTES), ids=lambda c: c.__name__)
def test_attribute_names_cover_tweepy(cls: type[_Model]) -> None:
    missing = TWEEPY_ATTRIBUTES[cls] - set(cls._FIELDS)
    assert not missing


# --- Tweet -------------------------------------------------------------------------------


def test_tweet_fields_of_a_quote_tweet(line1: dict[str, Any]) -> None:
    raw = line1["data"]
    tweet = Tweet(raw)
    assert tweet.data is raw
    assert tweet.id == 1377650090978992134
    assert type(tweet.id) is int
    assert tweet.text == "Fury https://t.co/YbMgHU5xRX https://t.co/tXgDG9jrKX"
    assert tweet.author_id == 4602771083
    assert tweet.conversation_id == 1377650090978992134
    assert tweet.created_at == datetime(2021, 4, 1, 15, 52, 31, tzinfo=UTC)
    assert tweet.created_at is not None
    assert tweet.created_at.utcoffset() is not None
    assert tweet.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert tweet.lang == "en"
    assert tweet.source == "Twitter for Android"
    assert tweet.reply_settings == "everyone"
    assert tweet.possibly_sensitive is False
    assert tweet.attachments == {"media_keys": ["3_1377650087799754753"]}
    assert tweet.geo == {"place_id": "a0583a9994e6bf1b"}
    assert tweet.public_metrics == {
        "retweet_count": 0,
        "reply_count": 0,
        "like_count": 0,
        "quote_count": 0,
    }
    assert tweet.entities is raw["entities"]
    assert len(tweet.entities["urls"]) == 2
    assert len(tweet.context_annotations) == 11
    assert tweet.context_annotations[2]["entity"]["name"] == "Captain Morgan"
    refs = tweet.referenced_tweets
    assert refs == [ReferencedTweet({"type": "quoted", "id": "1377640162566496258"})]
    assert refs is not None
    assert refs[0].id == 1377640162566496258
    assert refs[0].type == "quoted"
    assert tweet.referenced_tweets is refs  # built once, cached
    # absent optional fields are None, as in tweepy
    for name in (
        "in_reply_to_user_id", "withheld", "edit_controls", "non_public_metrics",
        "organic_metrics", "promoted_metrics", "note_tweet",
    ):  # fmt: skip
        assert getattr(tweet, name) is None, name
    # 2021 data predates edit_history_tweet_ids: None here (tweepy warns and leaves it unset)
    assert tweet.edit_history_tweet_ids is None


def test_tweet_fields_of_a_reply(twarc: list[dict[str, Any]]) -> None:
    tweet = Tweet(twarc[1]["data"])
    assert tweet.id == 1377650093109743620
    assert tweet.in_reply_to_user_id == 601852746
    assert tweet.referenced_tweets is not None
    assert [(r.type, r.id) for r in tweet.referenced_tweets] == [
        ("replied_to", 1377266697850257410)
    ]
    # the real 19-digit in_reply_to_user_id of message 7
    assert Tweet(twarc[6]["data"]).in_reply_to_user_id == 1147535159102590976


@pytest.mark.parametrize("raw", _all_tweet_dicts(), ids=lambda d: d["id"])
def test_every_real_tweet_converts(raw: dict[str, Any]) -> None:
    tweet = Tweet(raw)
    assert tweet.id == int(raw["id"])
    assert tweet.text == raw["text"]
    assert str(tweet) == raw["text"]
    assert len(tweet) == len(raw["text"])
    if "created_at" in raw:
        assert tweet.created_at is not None
        assert tweet.created_at.tzinfo is not None
        assert tweet.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z") == raw["created_at"]
    if "author_id" in raw:
        assert tweet.author_id == int(raw["author_id"])
    if "referenced_tweets" in raw:
        assert tweet.referenced_tweets is not None
        assert [r.id for r in tweet.referenced_tweets] == [
            int(r["id"]) for r in raw["referenced_tweets"]
        ]
    assert tweet.context_annotations == raw.get("context_annotations", [])


def test_edit_fields_are_converted_without_touching_data() -> None:
    # Shapes from the v2 data dictionary (edit fields arrived in 2022, after the real files).
    raw = {
        "id": "1580661436132757506",
        "text": "a tweet",
        "edit_history_tweet_ids": ["1580661436132757506"],
        "edit_controls": {
            "edits_remaining": 5,
            "is_edit_eligible": True,
            "editable_until": "2022-10-13T20:37:26.000Z",
        },
    }
    before = copy.deepcopy(raw)
    tweet = Tweet(raw)
    assert tweet.edit_history_tweet_ids == [1580661436132757506]
    assert tweet.edit_history_tweet_ids is tweet.edit_history_tweet_ids
    assert tweet.edit_controls == {
        "edits_remaining": 5,
        "is_edit_eligible": True,
        "editable_until": datetime(2022, 10, 13, 20, 37, 26, tzinfo=UTC),
    }
    assert raw == before  # tweepy rewrites data["edit_controls"]; we do not


def test_construction_is_lazy() -> None:
    # Nothing is read at construction: a bad field only fails where it is read.
    tweet = Tweet({"id": "1", "text": "x", "created_at": "yesterday"})
    assert tweet.id == 1
    with pytest.raises(ValueError, match="yesterday"):
        _ = tweet.created_at


def test_missing_required_field_is_an_attribute_error() -> None:
    tweet = Tweet({"text": "no id"})
    with pytest.raises(AttributeError, match="'Tweet' object has no attribute 'id'"):
        _ = tweet.id
    assert not hasattr(tweet, "id")
    with pytest.raises(KeyError):
        _ = tweet["id"]
    assert repr(tweet) == "<Tweet id=None text='no id'>"


def test_data_is_never_modified(line1: dict[str, Any]) -> None:
    before = copy.deepcopy(line1)
    tweet = Tweet(line1["data"])
    for name in Tweet._FIELDS:
        getattr(tweet, name)
        _ = tweet[name]
    for user in line1["includes"]["users"]:
        for name in User._FIELDS:
            getattr(User(user), name)
    assert line1 == before


# --- mapping behaviour (tweepy's DataMapping) -------------------------------------------


def test_getitem_returns_what_the_attribute_returns(line1: dict[str, Any]) -> None:
    tweet = Tweet(line1["data"])
    assert tweet["id"] == 1377650090978992134  # converted, as in tweepy
    assert tweet["created_at"] == tweet.created_at
    assert tweet["referenced_tweets"] == tweet.referenced_tweets
    assert tweet["text"] == tweet.text
    assert tweet.data["id"] == "1377650090978992134"  # the raw value
    # an absent modelled field: None through [] and .get (tweepy), but not "in"
    assert tweet["withheld"] is None
    assert tweet.get("withheld", "default") is None
    assert "withheld" not in tweet
    assert "lang" in tweet
    # an absent unknown key: KeyError, and .get's default
    with pytest.raises(KeyError):
        _ = tweet["no_such_field"]
    assert tweet.get("no_such_field", "default") == "default"


def test_iteration_and_len_follow_data(line1: dict[str, Any]) -> None:
    user = User(line1["includes"]["users"][0])
    assert list(user) == list(line1["includes"]["users"][0])
    assert len(user) == len(line1["includes"]["users"][0])
    assert dict(user.items())["id"] == 4602771083
    assert set(user.keys()) == set(user.data)
    # tweepy's exceptions: len(tweet) is len(text); a poll iterates its options
    tweet = Tweet(line1["data"])
    assert list(tweet) == list(line1["data"])
    assert len(tweet) == len(tweet.text)


def test_unknown_keys_are_kept_and_reachable() -> None:
    raw = {"id": "7", "text": "hi", "future_field": {"x": 1}, "_underscored": 2}
    tweet = Tweet(raw)
    assert tweet.data is raw
    assert tweet["future_field"] == {"x": 1}
    assert tweet.future_field == {"x": 1}  # __getattr__ falls back to data, as in tweepy
    assert "future_field" in tweet
    assert tweet["_underscored"] == 2
    with pytest.raises(AttributeError):
        _ = tweet._underscored  # names starting with "_" never fall back
    with pytest.raises(AttributeError, match="no_such_field"):
        _ = tweet.no_such_field


def test_models_are_read_only() -> None:
    tweet = Tweet({"id": "7", "text": "hi"})
    with pytest.raises(AttributeError):
        tweet.lang = "en"  # type: ignore[misc]


# --- identity, repr ------------------------------------------------------------------------


def test_equality_and_hash_by_id(twarc: list[dict[str, Any]]) -> None:
    # Messages 8 and 9 of the file carry the same tweet (a real duplicate delivery).
    a, b = Tweet(twarc[7]["data"]), Tweet(twarc[8]["data"])
    assert a.data is not b.data
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    other = Tweet(twarc[0]["data"])
    assert a != other
    assert Tweet({"id": "5", "text": "x"}) == Tweet({"id": "5", "text": "different"})
    # only the same kind of object compares equal
    assert Tweet({"id": "5", "text": "x"}) != User({"id": "5", "name": "n", "username": "u"})
    assert Tweet({"id": "5", "text": "x"}) != ReferencedTweet({"id": "5"})
    assert Tweet({"id": "5", "text": "x"}) != {"id": "5", "text": "x"}


def test_repr_is_short(line1: dict[str, Any]) -> None:
    tweet = Tweet(line1["data"])
    assert repr(tweet) == (
        "<Tweet id=1377650090978992134 text='Fury https://t.co/YbMgHU5xRX https://t.c…'>"
    )
    assert repr(Tweet({"id": "1", "text": "Hello"})) == "<Tweet id=1 text='Hello'>"
    assert repr(tweet.referenced_tweets) == "[<ReferencedTweet id=1377640162566496258 type=quoted>]"
    assert repr(ReferencedTweet({"id": "3"})) == "<ReferencedTweet id=3>"


def test_copy_and_pickle(line1: dict[str, Any]) -> None:
    tweet = Tweet(line1["data"])
    _ = tweet.referenced_tweets
    for clone in (copy.copy(tweet), copy.deepcopy(tweet), pickle.loads(pickle.dumps(tweet))):
        assert clone == tweet
        assert clone.data == tweet.data
        assert clone.referenced_tweets == tweet.referenced_tweets


# --- User, Media, Place, Poll ----------------------------------------------------------------


def test_user_fields(line1: dict[str, Any]) -> None:
    raw = line1["includes"]["users"][0]
    user = User(raw)
    assert user.id == 4602771083
    assert user.name == "Endangered Species"
    assert user.username == "blackheart_265"
    assert user.created_at == datetime(2015, 12, 25, 18, 50, 44, tzinfo=UTC)
    assert user.location == "Mzuzu, Malawi"
    assert user.description == raw["description"]
    assert user.protected is False
    assert user.verified is False
    assert user.url == ""
    assert user.profile_image_url == raw["profile_image_url"]
    assert user.public_metrics == {
        "followers_count": 881,
        "following_count": 499,
        "tweet_count": 7374,
        "listed_count": 1,
    }
    assert user.pinned_tweet_id is None
    assert user.verified_type is None
    assert user.withheld is None
    assert str(user) == "blackheart_265"
    assert repr(user) == "<User id=4602771083 name=Endangered Species username=blackheart_265>"
    pinned = User({"id": "1", "name": "n", "username": "u", "pinned_tweet_id": "9"})
    assert pinned.pinned_tweet_id == 9
    assert user == User(copy.deepcopy(raw))
    assert hash(user) == hash(4602771083)


def test_media_fields_and_identity(line1: dict[str, Any]) -> None:
    raw = line1["includes"]["media"][0]
    media = Media(raw)
    assert media.media_key == "3_1377650087799754753"
    assert media.type == "photo"
    assert media.url == "https://pbs.twimg.com/media/Ex5ldKwXEAEnEnI.jpg"
    assert (media.width, media.height) == (500, 500)
    assert media.duration_ms is None
    assert media.preview_image_url is None
    assert media.alt_text is None
    assert media.variants is None
    assert media.public_metrics is None
    assert repr(media) == "<Media media_key=3_1377650087799754753 type=photo>"
    # identity is the media_key (media objects have no id)
    assert media == Media({"media_key": "3_1377650087799754753", "type": "video"})
    assert hash(media) == hash("3_1377650087799754753")
    assert media != Media({"media_key": "3_1", "type": "photo"})


def test_place_fields_and_identity(line1: dict[str, Any]) -> None:
    raw = line1["includes"]["places"][0]
    place = Place(raw)
    assert place.id == "a0583a9994e6bf1b"  # a string, as in tweepy
    assert place.full_name == "Malawi"
    assert place.name == "Malawi"
    assert place.country == "Malawi"
    assert place.country_code == "MW"
    assert place.place_type == "country"
    assert place.geo is not None
    assert place.geo["bbox"] == [32.6718934, -17.1276504, 35.92038, -9.3670837]
    assert place.contained_within == []  # absent: [] as in tweepy
    assert str(place) == "Malawi"
    assert repr(place) == "<Place id=a0583a9994e6bf1b full_name=Malawi>"
    # hashable (tweepy's Place.__hash__ returns the str id, which raises TypeError)
    assert {place, Place(copy.deepcopy(raw))} == {place}


def test_poll_fields_iteration_and_identity() -> None:
    # The documented v2 poll shape (no real stream file has a poll).
    raw = {
        "id": "1199786642468413448",
        "voting_status": "closed",
        "duration_minutes": 1440,
        "options": [
            {"position": 1, "label": "“C Sharp”", "votes": 795},
            {"position": 2, "label": "“C Hashtag”", "votes": 156},
        ],
        "end_datetime": "2019-11-28T20:26:41.000Z",
    }
    poll = Poll(raw)
    assert poll.id == "1199786642468413448"
    assert poll.voting_status == "closed"
    assert poll.duration_minutes == 1440
    assert poll.end_datetime == datetime(2019, 11, 28, 20, 26, 41, tzinfo=UTC)
    assert poll.options is raw["options"]
    assert list(poll) == raw["options"]  # tweepy: a poll iterates its options
    assert len(poll) == 2
    assert poll == Poll({"id": "1199786642468413448", "options": []})
    assert hash(poll) == hash("1199786642468413448")
    assert repr(poll).startswith("<Poll id=1199786642468413448 options=[")


# --- NamedTuples ------------------------------------------------------------------------------


def test_stream_rule_is_tweepys_namedtuple() -> None:
    assert StreamRule._fields == ("value", "tag", "id")
    assert StreamRule() == (None, None, None)
    rule = StreamRule("cat has:images", "cats with images")
    assert (rule.value, rule.tag, rule.id) == ("cat has:images", "cats with images", None)
    assert StreamRule(id="1", tag=None) == StreamRule(None, None, "1")


def test_stream_response_and_response_fields() -> None:
    assert StreamResponse._fields == ("data", "includes", "errors", "matching_rules")
    assert Response._fields == ("data", "includes", "errors", "meta")
    tweet = Tweet({"id": "1", "text": "x"})
    data, includes, errors, rules = StreamResponse(tweet, {}, [], [])
    assert (data, includes, errors, rules) == (tweet, {}, [], [])
