"""rxtweet.status: the v1.1 Status model and message types, on real recorded v1.1 data.

Expected values are computed independently of rxtweet, the way tweepy 4.12's
``Status.parse``/``User.parse`` compute them (``email.utils.parsedate_to_datetime``, tweepy's
``source`` slicing, ``following is True``), on every status of every fixture.

Messages of the types absent from the recordings (``status_withheld``, ``user_withheld``,
``disconnect``, and a ``warning``/``limit`` with ``timestamp_ms``) are CRAFTED below from the
shapes documented in shared/reference/x-streaming-protocol.md section 3 and 8; they are not
recordings.
"""

from __future__ import annotations

import copy
import logging
import pickle
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex import from_iterable
from reactivex import operators as ops

from rxtweet.events import KeepAlive, MalformedMessage
from rxtweet.parse import REASON_CONVERT, Parsed, ParseStats, parse_lines
from rxtweet.status import (
    DISCONNECT_CODES,
    BoundingBox,
    DeleteNotice,
    DisconnectNotice,
    LimitNotice,
    Notice,
    Place,
    ScrubGeoNotice,
    StallWarning,
    Status,
    StatusWithheldNotice,
    UnknownNotice,
    User,
    UserWithheldNotice,
    parse_created_at,
    to_v1_message,
)

DATA = Path(__file__).parent / "data"
ARCHIVE = DATA / "archiveteam_sample_2021-01-01T0729Z_first60.jsonl"
AST = DATA / "ast_sample_2010-04-19.jsonl"
TWITTER4J = DATA / "twitter4j_streamingapi-testcase.jsonl"
SFERIK = DATA / "sferik-twitter_track_streaming_user.jsonl"


def lines_of(path: Path) -> list[bytes]:
    return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]


def docs_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in lines_of(path)]


#: CRAFTED from the documented shapes (protocol fact sheet, sections 3 and 8), not
#: recordings: status_withheld, user_withheld, disconnect, warning, limit with timestamp_ms.
CRAFTED: dict[str, dict[str, Any]] = {
    next(iter(doc)): doc for doc in docs_of(DATA / "v1_crafted_notices.jsonl")
}


def all_statuses() -> list[dict[str, Any]]:
    """Every status dict of every fixture, nested retweeted/quoted statuses included."""
    out: list[dict[str, Any]] = []

    def add(doc: dict[str, Any]) -> None:
        out.append(doc)
        for key in ("retweeted_status", "quoted_status"):
            if key in doc:
                add(doc[key])

    for path in (ARCHIVE, AST, TWITTER4J, SFERIK):
        for doc in docs_of(path):
            if "in_reply_to_status_id" in doc:
                add(doc)
    return out


STATUSES = all_statuses()


# --- what tweepy 4.12 computes, written out independently ----------------------------------


def tweepy_source(value: str) -> tuple[str, str | None]:
    if "<" in value:
        start = value.find('"') + 1
        return value[value.find(">") + 1 : value.rfind("<")], value[start : value.find('"', start)]
    return value, None


def test_fixture_contents_are_as_documented() -> None:
    archive = [to_v1_message(d) for d in docs_of(ARCHIVE)]
    assert len(archive) == 60
    assert sum(type(m) is Status for m in archive) == 58
    assert sum(type(m) is DeleteNotice for m in archive) == 2
    kinds = [type(to_v1_message(d)).__name__ for d in docs_of(TWITTER4J)]
    assert kinds == ["DeleteNotice", "Status", "Status", "LimitNotice", "Status", "ScrubGeoNotice"]
    assert len(STATUSES) > 150


@pytest.mark.parametrize("doc", STATUSES, ids=lambda d: str(d.get("id")))
def test_status_attributes_like_tweepy(doc: dict[str, Any]) -> None:
    status = Status(doc)
    assert status.data is doc and status._json is doc
    assert status.id == doc["id"] and type(status.id) is int
    assert status.id_str == doc.get("id_str", str(doc["id"]))
    assert status.text == doc["text"]
    assert status.created_at == parsedate_to_datetime(doc["created_at"])
    assert status.created_at.tzinfo is not None
    assert status.created_at.utcoffset() == timedelta(0)
    assert isinstance(status.user, User) and status.user == status.author
    assert status.user.id == doc["user"]["id"]
    assert status.user.screen_name == doc["user"]["screen_name"]
    assert status.user.created_at == parsedate_to_datetime(doc["user"]["created_at"])
    if "following" in doc["user"]:
        assert status.user.following is (doc["user"]["following"] is True)
    source, source_url = tweepy_source(doc["source"])
    assert (status.source, status.source_url) == (source, source_url)
    for key in ("retweeted_status", "quoted_status"):
        assert hasattr(status, key) == (key in doc)
        if key in doc:
            assert isinstance(getattr(status, key), Status)
            assert getattr(status, key).id == doc[key]["id"]
    assert hasattr(status, "extended_tweet") == ("extended_tweet" in doc)
    if "extended_tweet" in doc:
        assert status.full_text == doc["extended_tweet"]["full_text"]
    else:
        assert status.full_text == doc["text"]
    if doc.get("place") is None:
        assert getattr(status, "place", None) is None
    assert status.in_reply_to_status_id == doc["in_reply_to_status_id"]
    # every other key is an attribute and an item, raw, as in tweepy
    for key, value in doc.items():
        if key not in Status._FIELDS:
            assert getattr(status, key) == value
            assert status[key] == value


def test_status_from_2021_sample_stream() -> None:
    statuses = [m for m in map(to_v1_message, docs_of(ARCHIVE)) if type(m) is Status]
    first = statuses[0]
    assert first.created_at == datetime(2021, 1, 1, 7, 29, tzinfo=UTC)
    assert first.timestamp_ms.isdigit()
    assert first.lang is not None
    assert isinstance(first.entities, dict) and "hashtags" in first.entities
    retweets = [s for s in statuses if hasattr(s, "retweeted_status")]
    assert len(retweets) == 27
    assert all(s.text.startswith("RT @") for s in retweets)
    long_ones = [s for s in statuses if hasattr(s, "extended_tweet")]
    assert len(long_ones) == 6
    assert any(len(s.full_text) > len(s.text) for s in long_ones)
    assert all(s.truncated for s in long_ones)
    quotes = [s for s in statuses if hasattr(s, "quoted_status")]
    assert len(quotes) == 3 and all(s.is_quote_status for s in quotes)


def test_status_2010_shape_without_id_str() -> None:
    doc = docs_of(AST)[0]
    assert "id_str" not in doc
    status = to_v1_message(doc)
    assert isinstance(status, Status)
    assert status.id_str == str(doc["id"])
    assert status.created_at == datetime(2010, 4, 19, 17, 52, tzinfo=UTC)
    assert status.source == "web" and status.source_url is None
    assert not hasattr(status, "entities")
    with pytest.raises(KeyError):
        status["entities"]
    assert status.get("entities") is None


def test_place_and_bounding_box() -> None:
    doc = next(d for d in docs_of(SFERIK) if "in_reply_to_status_id" in d)
    status = to_v1_message(doc)
    assert isinstance(status, Status)
    place = status.place
    assert isinstance(place, Place)
    assert place.id == "5c92ab5379de3839"
    assert place.full_name == "South Beach, San Francisco"
    assert place.country_code == "US"
    box = place.bounding_box
    assert isinstance(box, BoundingBox)
    ring = doc["place"]["bounding_box"]["coordinates"][0]
    assert box.origin() == tuple(ring[0]) and box.corner() == tuple(ring[2])
    assert box == BoundingBox(copy.deepcopy(doc["place"]["bounding_box"]))
    assert place == Place(dict(doc["place"]))
    assert hash(place) == hash("5c92ab5379de3839")
    nested = Place({"id": "x", "bounding_box": None, "contained_within": [{"id": "y"}]})
    assert nested.bounding_box is None
    assert [p.id for p in nested.contained_within] == ["y"]


def test_text_and_full_text_shapes() -> None:
    base = {"id": 1, "in_reply_to_status_id": None, "user": {"id": 2}}
    assert Status({**base, "text": "short"}).full_text == "short"
    assert Status({**base, "full_text": "rest mode"}).text == "rest mode"
    ext = Status({**base, "text": "trunc…", "extended_tweet": {"full_text": "the whole"}})
    assert ext.full_text == "the whole" and ext.text == "trunc…"
    assert not hasattr(Status(base), "text")
    assert not hasattr(Status({"text": "x"}), "id")
    assert Status({"id": 1.2e18, "id_str": "1200000000000000001"}).id == 1200000000000000001


def test_identity_repr_pickle() -> None:
    doc = docs_of(ARCHIVE)[0]
    a, b = Status(doc), Status(copy.deepcopy(doc))
    assert a == b and hash(a) == hash(b) == hash(doc["id"])
    assert a != Status({**doc, "id": 1})
    assert a != User(doc["user"])  # a User is never equal to a Status
    assert len({a, b}) == 1
    text = repr(a)
    assert text.startswith(f"<Status id={doc['id']} user={doc['user']['screen_name']} text=")
    assert len(text) < 150
    assert repr(a.user) == f"<User id={doc['user']['id']} screen_name={doc['user']['screen_name']}>"
    assert str(a.user) == doc["user"]["screen_name"]
    clone = pickle.loads(pickle.dumps(a))
    assert clone == a and clone.data == doc
    assert copy.copy(a) == a
    with pytest.raises(AttributeError):
        a.id = 5  # type: ignore[misc]


# --- timestamps ------------------------------------------------------------------------------


def test_created_at_examples() -> None:
    assert parse_created_at("Wed Oct 10 20:19:24 +0000 2018") == datetime(
        2018, 10, 10, 20, 19, 24, tzinfo=UTC
    )
    other = parse_created_at("Wed Oct 10 20:19:24 +0200 2018")
    assert other == datetime(2018, 10, 10, 18, 19, 24, tzinfo=UTC)
    assert other.utcoffset() == timedelta(hours=2)
    assert parse_created_at("Wed Oct 10 20:19:24 -0000 2018").tzinfo is not None
    for bad in (
        "",
        "yesterday",
        "Wed Oct 10 20:19:99 +0000 2018",
        "Wed Foo 10 20:19:24 +0000 2018",
    ):
        with pytest.raises(ValueError, match=r"not a v1\.1 timestamp"):
            parse_created_at(bad)


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31)),
    st.sampled_from([0, 0, 0, 60, -300, 330, 840]),
)
def test_created_at_matches_parsedate_to_datetime(moment: datetime, offset: int) -> None:
    aware = moment.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset)))
    text = aware.strftime("%a %b %d %H:%M:%S %z %Y")
    assert parse_created_at(text) == parsedate_to_datetime(text) == aware
    assert parse_created_at(text).utcoffset() == aware.utcoffset()
    assert format_datetime(parse_created_at(text))  # a proper tz-aware datetime


# --- notices -----------------------------------------------------------------------------------


def test_delete_notice_shapes() -> None:
    old = to_v1_message(docs_of(TWITTER4J)[0])  # 2009: {"id", "user_id"} only
    assert isinstance(old, DeleteNotice)
    assert (old.id, old.user_id, old.status_id) == (6832057002, 18378841, 6832057002)
    assert (old.id_str, old.user_id_str, old.timestamp_ms) == ("6832057002", "18378841", None)
    modern = to_v1_message(next(d for d in docs_of(ARCHIVE) if "delete" in d))
    assert isinstance(modern, DeleteNotice)
    assert modern.id == int(modern.id_str) and modern.user_id == int(modern.user_id_str)
    assert modern.timestamp_ms is not None and modern.timestamp_ms.isdigit()
    flagged = to_v1_message(next(d for d in docs_of(SFERIK) if "delete" in d))
    assert isinstance(flagged, DeleteNotice)
    assert flagged.id == 272691609211117568 and flagged.user_id == 478569062
    assert flagged.status["deleted"] is True
    assert repr(flagged) == "<DeleteNotice id=272691609211117568 user_id=478569062>"


def test_limit_and_scrub_geo_from_twitter4j() -> None:
    docs = docs_of(TWITTER4J)
    limit = to_v1_message(docs[3])
    assert isinstance(limit, LimitNotice) and limit.track == 121564
    assert limit.timestamp_ms is None and limit.data == {"track": 121564}
    assert lines_of(TWITTER4J)[3] == b'{"limit":{"track":121564}}'  # trailing space stripped
    scrub = to_v1_message(docs[5])
    assert isinstance(scrub, ScrubGeoNotice)
    assert (scrub.user_id, scrub.up_to_status_id) == (14090452, 23260136625)


def test_crafted_notices() -> None:
    withheld = to_v1_message(CRAFTED["status_withheld"])
    assert isinstance(withheld, StatusWithheldNotice)
    assert (withheld.id, withheld.user_id) == (1745000000000000001, 3)
    assert withheld.withheld_in_countries == ["DE", "AR"]
    user = to_v1_message(CRAFTED["user_withheld"])
    assert isinstance(user, UserWithheldNotice) and user.id == 3
    assert user.withheld_in_countries == ["DE"]
    disconnect = to_v1_message(CRAFTED["disconnect"])
    assert isinstance(disconnect, DisconnectNotice)
    assert (disconnect.code, disconnect.reason, disconnect.stream_name) == (
        12,
        "shed load",
        "example-statuses123",
    )
    assert disconnect.meaning == "shed load"
    assert DisconnectNotice({"code": "7"}).meaning == "admin logout"
    assert DisconnectNotice({"code": 99}).meaning == "unknown code"
    assert DisconnectNotice({}).meaning == "no code"
    warning = to_v1_message(CRAFTED["warning"])
    assert isinstance(warning, StallWarning)
    assert (warning.code, warning.percent_full) == ("FALLING_BEHIND", 60)
    assert warning.message is not None and "falling behind" in warning.message
    limit = to_v1_message(CRAFTED["limit"])
    assert isinstance(limit, LimitNotice) and limit.timestamp_ms == "1704890096000"
    assert set(DISCONNECT_CODES) == set(range(1, 13))


def test_notice_data_is_the_inner_object_like_tweepy_hooks_get() -> None:
    for name, doc in CRAFTED.items():
        notice = to_v1_message(doc)
        assert isinstance(notice, Notice)
        assert notice.kind == name
        assert notice.data is doc[name]
        assert notice == to_v1_message(copy.deepcopy(doc))
        assert notice != to_v1_message(
            CRAFTED["user_withheld" if name != "user_withheld" else "limit"]
        )
        with pytest.raises(TypeError):
            hash(notice)
        assert repr(notice).startswith(f"<{type(notice).__name__} ")


def test_sferik_user_stream_types_and_unknowns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxtweet.v1")
    messages = [to_v1_message(d) for d in docs_of(SFERIK)]
    assert [type(m).__name__ for m in messages] == [
        "UnknownNotice",  # friends
        "Status",
        "UnknownNotice",  # direct_message
        "UnknownNotice",  # event
        "DeleteNotice",  # with "deleted": true
        "StallWarning",
    ]
    unknown = messages[0]
    assert isinstance(unknown, UnknownNotice)
    assert unknown.type_keys == ("friends",) and unknown.kind == ""
    assert unknown.data["friends"] == [488736931, 311444249]
    assert [m.type_keys for m in messages if isinstance(m, UnknownNotice)][1:] == [
        ("direct_message",),
        ("event", "source", "target", "created_at"),
    ]
    logged = [r.getMessage() for r in caplog.records]
    assert logged[0] == "Received unknown message type (keys: friends)"
    assert len(logged) == 3


def test_status_recognised_as_tweepy_does_and_leniently() -> None:
    # tweepy: "in_reply_to_status_id" makes a status, whatever else is there
    assert type(to_v1_message({"in_reply_to_status_id": None, "delete": {}})) is Status
    # rxtweet also takes a trimmed status without it
    assert type(to_v1_message({"id": 1, "user": {"id": 2}, "text": "hi"})) is Status
    # tweepy's order decides a message with two notice keys
    both = to_v1_message({"limit": {"track": 1}, "delete": {"status": {"id": 1, "user_id": 2}}})
    assert type(both) is DeleteNotice


@pytest.mark.parametrize(
    "doc",
    [
        {"delete": "gone"},
        {"delete": {"timestamp_ms": "1"}},
        {"delete": {"status": {"id": 1}}},
        {"delete": {"status": [1, 2]}},
        {"limit": {"timestamp_ms": "1"}},
        {"warning": ["FALLING_BEHIND"]},
    ],
)
def test_bad_shapes_raise_so_parse_lines_reports_them(doc: dict[str, Any]) -> None:
    with pytest.raises((TypeError, KeyError)):
        to_v1_message(doc)


def test_through_parse_lines(caplog: pytest.LogCaptureFixture) -> None:
    stats = ParseStats()
    raw = [*lines_of(TWITTER4J), b"", b'{"delete":{"status":{"id":1}}}', b"{broken"]
    items = (
        from_iterable(raw)
        .pipe(parse_lines(to_v1_message, stats, keep_raw=True), ops.to_list())
        .run()
    )
    assert [type(i) for i in items] == [Parsed] * 6 + [
        KeepAlive,
        MalformedMessage,
        MalformedMessage,
    ]
    assert items[0].raw == raw[0] and isinstance(items[0].value, DeleteNotice)
    assert items[7].reason == REASON_CONVERT
    assert stats.messages == 6 and stats.malformed == 2 and stats.keep_alives == 1
