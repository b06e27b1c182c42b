"""Compliance, like, label and activity models, their converters and stream declarations
(issue 13, package M), against the documented payloads (reference sections 2 and 9)."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import reactivex
import requests
from reactivex import operators as ops
from support import RawServer, answer

from rxtweet.connection import Connection
from rxtweet.events import MalformedMessage
from rxtweet.http import StreamRequest
from rxtweet.parse import REASON_CONVERT, ParseStats, parse_lines
from rxtweet.v2.activity import (
    ActivityEvent,
    ActivityStream,
    ActivitySubscriptionsMixin,
    is_activity_data,
    to_activity_response,
)
from rxtweet.v2.compliance import (
    ComplianceConverter,
    ComplianceEvent,
    ComplianceStream,
    LikeDelete,
    ScrubGeo,
    TweetDelete,
    TweetDrop,
    TweetEdit,
    TweetUndrop,
    TweetWithheld,
    UnknownComplianceEvent,
    UserDelete,
    UserProfileModification,
    UserProtect,
    UserSuspend,
    UserUndelete,
    UserUnprotect,
    UserUnsuspend,
    UserWithheld,
    is_compliance_data,
    to_compliance_response,
)
from rxtweet.v2.labels import (
    LabelConverter,
    LabelEvent,
    LabelStream,
    UnknownLabelEvent,
    is_label_data,
    to_label_response,
)
from rxtweet.v2.likes import LikeEvent, LikeStream, is_like_data, to_like_response
from rxtweet.v2.models import Response, Tweet, User

AT = "2024-01-10T12:34:56.000Z"
AT_DT = datetime(2024, 1, 10, 12, 34, 56, tzinfo=UTC)
#: What every converter's shape complaint says ("data.x is list, not an object", "'errors'
#: is not a list of objects", "'data' is an empty object, not a compliance event").
SHAPE_ERROR = r"\bis (.* )?not\b"
TWEET = {"id": "1745000000000000001", "author_id": "2244994945"}
USER = {"id": "2244994945"}


# -- compliance ------------------------------------------------------------------------------

# (kind, object under it, class, {attribute: expected}) per the OpenAPI components.
COMPLIANCE_CASES: list[tuple[str, dict[str, Any], type[ComplianceEvent], dict[str, Any]]] = [
    (
        "delete",
        {"tweet": TWEET, "event_at": AT, "quote_tweet_id": "1745000000000000009"},
        TweetDelete,
        {
            "tweet_id": 1745000000000000001,
            "author_id": 2244994945,
            "quote_tweet_id": 1745000000000000009,
        },
    ),
    (
        "withheld",
        {"tweet": TWEET, "withheld_in_countries": ["DE", "FR"], "event_at": AT},
        TweetWithheld,
        {"tweet_id": 1745000000000000001, "withheld_in_countries": ["DE", "FR"]},
    ),
    ("drop", {"tweet": TWEET, "event_at": AT}, TweetDrop, {"author_id": 2244994945}),
    ("undrop", {"tweet": TWEET, "event_at": AT}, TweetUndrop, {"tweet_id": 1745000000000000001}),
    (
        "tweet_edit",
        {
            "tweet": {"id": "1745000000000000003"},
            "initial_tweet_id": "1745000000000000001",
            "edit_tweet_ids": ["1745000000000000001", "1745000000000000003"],
            "event_at": AT,
        },
        TweetEdit,
        {
            "tweet_id": 1745000000000000003,
            "initial_tweet_id": 1745000000000000001,
            "edit_tweet_ids": [1745000000000000001, 1745000000000000003],
            "author_id": None,
        },
    ),
    ("user_delete", {"user": USER, "event_at": AT}, UserDelete, {"user_id": 2244994945}),
    ("user_undelete", {"user": USER, "event_at": AT}, UserUndelete, {"user_id": 2244994945}),
    ("user_protect", {"user": USER, "event_at": AT}, UserProtect, {"user_id": 2244994945}),
    ("user_unprotect", {"user": USER, "event_at": AT}, UserUnprotect, {"user_id": 2244994945}),
    ("user_suspend", {"user": USER, "event_at": AT}, UserSuspend, {"user_id": 2244994945}),
    ("user_unsuspend", {"user": USER, "event_at": AT}, UserUnsuspend, {"user_id": 2244994945}),
    (
        "user_withheld",
        {"user": USER, "withheld_in_countries": ["TR"], "event_at": AT},
        UserWithheld,
        {"user_id": 2244994945, "withheld_in_countries": ["TR"]},
    ),
    (
        "scrub_geo",
        {"user": USER, "up_to_tweet_id": "1745000000000000001", "event_at": AT},
        ScrubGeo,
        {"user_id": 2244994945, "up_to_tweet_id": 1745000000000000001},
    ),
    (
        "user_profile_modification",
        {
            "user": USER,
            "profile_field": "description",
            "new_value": "hello",
            "event_at": AT,
        },
        UserProfileModification,
        {"user_id": 2244994945, "profile_field": "description", "new_value": "hello"},
    ),
    (
        "delete",
        {"favorite": {"id": "1745000000000000777", "user_id": "6253282"}, "event_at": AT},
        LikeDelete,
        {"like_id": 1745000000000000777, "user_id": 6253282},
    ),
]


@pytest.mark.parametrize(
    ("kind", "body", "cls", "expected"),
    COMPLIANCE_CASES,
    ids=[f"{case[0]}-{case[2].__name__}" for case in COMPLIANCE_CASES],
)
def test_every_compliance_kind_becomes_its_model(
    kind: str, body: dict[str, Any], cls: type[ComplianceEvent], expected: dict[str, Any]
) -> None:
    doc = {"data": {kind: body}}
    response = to_compliance_response(doc)

    event = response.event
    assert type(event) is cls
    assert event.kind == kind
    assert event.event_at == AT_DT
    assert event.data is body  # a view, not a copy
    for name, value in expected.items():
        assert getattr(event, name) == value, name
    assert response.errors == []
    assert is_compliance_data(response)
    assert doc == {"data": {kind: body}}  # the input is not modified


def test_compliance_ids_are_ints_and_lazy() -> None:
    # A value that is no timestamp fails where it is read (as Tweet.created_at), not before.
    event = to_compliance_response(
        {"data": {"user_delete": {"user": {"id": 12}, "event_at": "yesterday"}}}
    ).event
    assert isinstance(event, UserDelete)
    assert event.user_id == 12
    with pytest.raises(ValueError, match="isoformat"):
        _ = event.event_at
    assert event["user_id"] == 12  # the mapping view gives the converted value
    assert event.user == {"id": 12}  # unknown attributes fall back to the raw data


def test_compliance_system_message_has_no_event() -> None:
    problem = {"title": "operational-disconnect", "disconnect_type": "OperationalDisconnect"}
    response = to_compliance_response({"errors": [problem]})
    assert response.event is None
    assert response.errors == [problem]
    assert not is_compliance_data(response)


def test_unknown_compliance_kind_is_kept_and_counted() -> None:
    converter = ComplianceConverter()
    body = {"post": {"id": "9"}, "event_at": AT, "why": "new"}
    response = converter({"data": {"post_teleport": body}})
    converter({"data": {"post_teleport": {}}})
    converter({"data": {"delete": {"tweet": TWEET, "event_at": AT}}})

    event = response.event
    assert type(event) is UnknownComplianceEvent
    assert isinstance(event, ComplianceEvent)
    assert event.kind == "post_teleport"
    assert event.data is body
    assert event.raw == {"post_teleport": body}
    assert event.event_at == AT_DT
    assert converter.unknown_kinds.snapshot() == Counter({"post_teleport": 2})
    # The plain function converts the same way and counts nothing.
    assert to_compliance_response({"data": {"post_teleport": body}}).event == event


def test_a_known_kind_wins_over_unknown_keys_beside_it() -> None:
    data = {"annotation": {"x": 1}, "user_suspend": {"user": USER, "event_at": AT}}
    event = to_compliance_response({"data": data}).event
    assert isinstance(event, UserSuspend)
    assert event.user_id == 2244994945


@pytest.mark.parametrize(
    "data",
    [
        {"delete": {"tweet": {"id": ["1"]}, "event_at": AT}},  # id a list
        {"delete": {"tweet": "1", "event_at": AT}},  # tweet not an object
        {"delete": {"tweet": TWEET, "event_at": 1704890096}},  # event_at a number
        {"tweet_edit": {"tweet": TWEET, "edit_tweet_ids": "1,2", "event_at": AT}},
        {"user_withheld": {"user": USER, "withheld_in_countries": "TR", "event_at": AT}},
        {"scrub_geo": {"user": USER, "up_to_tweet_id": 1.5, "event_at": AT}},
        {"delete": {"favorite": {"id": True, "user_id": "1"}, "event_at": AT}},
        {"delete": "gone"},  # the kind's value not an object
        {"mystery": ["not", "an", "object"]},
        {},  # no kind at all
    ],
)
def test_malformed_compliance_values_raise_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=SHAPE_ERROR):
        to_compliance_response({"data": data})


@pytest.mark.parametrize("doc", [{"data": []}, {"data": "x"}, {"errors": "boom"}, {"errors": [1]}])
def test_malformed_compliance_messages_raise_value_error(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=SHAPE_ERROR):
        to_compliance_response(doc)


def test_parse_lines_counts_malformed_and_passes_unknown(caplog: pytest.LogCaptureFixture) -> None:
    stats = ParseStats()
    converter = ComplianceConverter()
    lines = [
        orjson.dumps({"data": {"delete": {"tweet": TWEET, "event_at": AT}}}),
        orjson.dumps({"data": {"delete": {"tweet": {"id": {}}, "event_at": AT}}}),
        orjson.dumps({"data": {"brand_new": {"event_at": AT}}}),
    ]
    with caplog.at_level(logging.WARNING, logger="rxtweet.parse"):
        out = reactivex.from_iterable(lines).pipe(parse_lines(converter, stats), ops.to_list())
        items = out.run()

    assert type(items[0].event) is TweetDelete
    assert isinstance(items[1], MalformedMessage)
    assert items[1].reason == REASON_CONVERT
    assert type(items[2].event) is UnknownComplianceEvent
    assert (stats.messages, stats.malformed) == (2, 1)
    assert converter.unknown_kinds.snapshot() == Counter({"brand_new": 1})


def test_compliance_equality_and_repr() -> None:
    one = to_compliance_response({"data": {"drop": {"tweet": TWEET, "event_at": AT}}}).event
    two = TweetDrop({"tweet": TWEET, "event_at": AT})
    assert one == two
    assert one != TweetUndrop({"tweet": TWEET, "event_at": AT})
    assert UnknownComplianceEvent("a", {}) != UnknownComplianceEvent("b", {})
    assert "tweet_id=1745000000000000001" in repr(one)
    with pytest.raises(TypeError):
        hash(one)


# -- likes -----------------------------------------------------------------------------------

LIKE = {
    "id": "8ba4f34e6235d905a46bac021d98e923",  # a LikeId is opaque, not a number
    "created_at": AT,
    "liked_tweet_id": "1745000000000000001",
    "tweet_author_id": "2244994945",
    "timestamp_ms": "1704890096000",
}


@pytest.mark.parametrize("timestamp", ["1704890096000", 1704890096000])
def test_like_event_fields_are_converted(timestamp: str | int) -> None:
    doc = {
        "data": {**LIKE, "timestamp_ms": timestamp},
        "includes": {
            "users": [{"id": "2244994945", "name": "Developers", "username": "XDevelopers"}],
            "tweets": [{"id": "1745000000000000001", "text": "liked"}],
        },
    }
    response = to_like_response(doc)

    like = response.like
    assert isinstance(like, LikeEvent)
    assert like.id == "8ba4f34e6235d905a46bac021d98e923"
    assert like.created_at == AT_DT
    assert like.liked_tweet_id == 1745000000000000001
    assert like.tweet_author_id == 2244994945
    assert like.timestamp_ms == 1704890096000
    assert isinstance(like.timestamp_ms, int)
    assert isinstance(response.includes["users"][0], User)
    assert isinstance(response.includes["tweets"][0], Tweet)
    assert response.errors == []
    assert is_like_data(response)
    assert like == LikeEvent({"id": "8ba4f34e6235d905a46bac021d98e923"})  # identity by id
    assert hash(like) == hash("8ba4f34e6235d905a46bac021d98e923")


def test_like_system_message_and_missing_fields() -> None:
    response = to_like_response({"errors": [{"title": "operational-disconnect"}]})
    assert response.like is None
    assert response.includes == {}
    assert not is_like_data(response)
    bare = to_like_response({"data": {"id": "5"}}).like
    assert bare is not None
    assert bare.timestamp_ms is None
    assert bare.created_at is None


@pytest.mark.parametrize(
    "doc",
    [
        {"data": {**LIKE, "timestamp_ms": 1.5e12}},
        {"data": {**LIKE, "liked_tweet_id": ["1"]}},
        {"data": {**LIKE, "id": True}},
        {"data": {**LIKE, "created_at": 1704890096}},
        {"data": [LIKE]},
        {"data": LIKE, "includes": []},
        {"data": LIKE, "errors": {"title": "x"}},
    ],
)
def test_malformed_like_messages_raise_value_error(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=SHAPE_ERROR):
        to_like_response(doc)


# -- labels ----------------------------------------------------------------------------------

NOTICE = {
    "tweet": TWEET,
    "event_type": "apply",
    "event_at": AT,
    "application": "Misleading",
    "label_title": "Stay informed",
    "details": "This post may be misleading.",
    "extended_details_url": "https://help.x.com/rules",
}
UNVIEWABLE = {"tweet": TWEET, "event_at": AT, "application": "Withheld"}


def test_label_events_of_both_documented_kinds() -> None:
    notice = to_label_response({"data": {"public_tweet_notice": NOTICE}}).label
    assert type(notice) is LabelEvent
    assert notice.kind == "public_tweet_notice"
    assert notice.tweet_id == 1745000000000000001
    assert notice.author_id == 2244994945
    assert notice.event_type == "apply"
    assert notice.event_at == AT_DT
    assert notice.application == "Misleading"
    assert notice.label_title == "Stay informed"
    assert notice.details == "This post may be misleading."
    assert notice.extended_details_url == "https://help.x.com/rules"

    response = to_label_response({"data": {"public_tweet_unviewable": UNVIEWABLE}})
    unviewable = response.label
    assert type(unviewable) is LabelEvent
    assert unviewable.kind == "public_tweet_unviewable"
    assert unviewable.tweet_id == 1745000000000000001
    assert unviewable.event_type is None
    assert unviewable.label_title is None
    assert is_label_data(response)
    assert unviewable != LabelEvent("public_tweet_notice", UNVIEWABLE)


def test_unknown_label_kind_is_kept_and_counted() -> None:
    converter = LabelConverter()
    body = {"tweet": TWEET, "event_at": AT, "note": "new"}
    event = converter({"data": {"public_tweet_context": body}}).label
    assert type(event) is UnknownLabelEvent
    assert event.kind == "public_tweet_context"
    assert event.tweet_id == 1745000000000000001
    assert event.raw == {"public_tweet_context": body}
    assert converter.unknown_kinds.snapshot() == Counter({"public_tweet_context": 1})


@pytest.mark.parametrize(
    "data",
    [
        {"public_tweet_notice": {**NOTICE, "event_type": 3}},
        {"public_tweet_notice": {**NOTICE, "tweet": "1"}},
        {"public_tweet_unviewable": {**UNVIEWABLE, "application": ["x"]}},
        {"public_tweet_notice": None},
        {},
    ],
)
def test_malformed_label_values_raise_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=SHAPE_ERROR):
        to_label_response({"data": data})


# -- activity --------------------------------------------------------------------------------

ACTIVITY = {
    "event_uuid": "9f3c1b9e-3a3e-4c2a-9a51-1f0e4a2b7c11",
    "event_type": "profile.update.bio",
    "filter": {"user_id": "2244994945"},
    "tag": "watch developers",
    "payload": {"before": "old bio", "after": "new bio"},
    "includes": {"users": [{"id": "2244994945", "name": "Developers", "username": "XD"}]},
}


def test_activity_event_fields() -> None:
    response = to_activity_response({"data": ACTIVITY})
    event = response.activity
    assert isinstance(event, ActivityEvent)
    assert event.event_uuid == ACTIVITY["event_uuid"]
    assert event.event_type == "profile.update.bio"
    assert event.filter == {"user_id": "2244994945"}
    assert event.tag == "watch developers"
    assert event.payload == {"before": "old bio", "after": "new bio"}
    assert isinstance(event.includes["users"][0], User)
    assert is_activity_data(response)
    assert event == ActivityEvent({"event_uuid": ACTIVITY["event_uuid"]})
    # A new event type is no special case: the same generic event.
    other = to_activity_response({"data": {**ACTIVITY, "event_type": "news.new"}}).activity
    assert other is not None
    assert other.event_type == "news.new"
    bare = to_activity_response({"data": {"event_uuid": "u"}}).activity
    assert bare is not None
    assert (bare.tag, bare.payload, bare.includes) == (None, {}, {})
    assert not is_activity_data(to_activity_response({"errors": [{"title": "x"}]}))


@pytest.mark.parametrize(
    "data",
    [
        {**ACTIVITY, "payload": "text"},
        {**ACTIVITY, "filter": ["user_id"]},
        {**ACTIVITY, "event_uuid": 7},
        {**ACTIVITY, "tag": {"a": 1}},
        ["not an object"],
    ],
)
def test_malformed_activity_values_raise_value_error(data: Any) -> None:
    with pytest.raises(ValueError, match=SHAPE_ERROR):
        to_activity_response({"data": data})


# -- the streams, over a real local server ---------------------------------------------------


def _serving(lines: list[dict[str, Any]]) -> RawServer:
    body = b"".join(orjson.dumps(line) + b"\r\n" for line in lines)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    return RawServer(answer(head + body))


class _Taker:
    """Subscribes to the first ``count`` values of ``observable``; :meth:`wait` returns them."""

    def __init__(self, observable: reactivex.Observable[Any], count: int) -> None:
        self.got: list[Any] = []
        self.done = threading.Event()
        self.subscription = observable.pipe(ops.take(count)).subscribe(
            on_next=self.got.append, on_completed=self.done.set, on_error=lambda _: self.done.set()
        )

    def wait(self) -> list[Any]:
        assert self.done.wait(3), self.got
        self.subscription.dispose()
        return self.got


def _first(observable: reactivex.Observable[Any], count: int) -> list[Any]:
    return _Taker(observable, count).wait()


def test_compliance_stream_substreams_and_unknown_kinds() -> None:
    problem = {"title": "operational-disconnect", "disconnect_type": "OperationalDisconnect"}
    messages = [
        {"data": {"delete": {"tweet": TWEET, "event_at": AT}}},
        {"data": {"quantum_delete": {"tweet": TWEET}}},
        {"errors": [problem]},
        {"data": {"user_protect": {"user": USER, "event_at": AT}}},
    ]
    with _serving(messages) as server:
        connection = Connection(
            StreamRequest("GET", server.url + "/2/tweets/compliance/stream"),
            ComplianceConverter(),
            is_data=is_compliance_data,
            stall_timeout=2,
        )
        stream = ComplianceStream(connection)
        with stream.hold():
            events = _Taker(stream.compliance, 3)
            errors = _Taker(stream.errors, 1)
        assert [type(e) for e in events.wait()] == [
            TweetDelete,
            UnknownComplianceEvent,
            UserProtect,
        ]
        assert errors.wait() == [[problem]]
        assert stream.unknown_kinds == Counter({"quantum_delete": 1})
        assert "/2/tweets/compliance/stream" in repr(stream)


def test_like_label_and_activity_streams_declare_their_substreams() -> None:
    likes_doc = {"data": LIKE, "includes": {"users": [{"id": "1", "name": "n", "username": "u"}]}}
    with _serving([likes_doc]) as server:
        likes = LikeStream(
            Connection(StreamRequest("GET", server.url), to_like_response, stall_timeout=2)
        )
        with likes.hold():
            got_likes = _Taker(likes.likes, 1)
            includes = _Taker(likes.includes, 1)
        assert got_likes.wait() == [LikeEvent(LIKE)]
        assert isinstance(includes.wait()[0]["users"][0], User)

    with _serving([{"data": {"public_tweet_notice": NOTICE}}]) as server:
        labels = LabelStream(
            Connection(StreamRequest("GET", server.url), LabelConverter(), stall_timeout=2)
        )
        (label,) = _first(labels.labels, 1)
        assert label.kind == "public_tweet_notice"
        assert labels.unknown_kinds == Counter()

    with _serving([{"data": ACTIVITY}]) as server:
        activity = ActivityStream(
            Connection(StreamRequest("GET", server.url), to_activity_response, stall_timeout=2)
        )
        (event,) = _first(activity.activities, 1)
        assert event.event_type == "profile.update.bio"
        (response,) = _first(activity.responses, 1)
        assert response.activity == event


def test_unknown_kinds_are_summed_over_merged_partitions() -> None:
    # The stream finds the converter on each partition connection (counted once if shared).
    class Merged:
        def __init__(self, connections: dict[int, Any]) -> None:
            self.connections = connections

    shared, own = ComplianceConverter(), ComplianceConverter()
    shared({"data": {"a": {}}})
    own({"data": {"a": {}}})
    own({"data": {"b": {}}})
    request = StreamRequest("GET", "http://127.0.0.1:9/")
    parts = {
        1: Connection(request, shared),
        2: Connection(request, shared),
        3: Connection(request, own),
    }
    from rxtweet.v2.compliance import unknown_kinds_of

    assert unknown_kinds_of(Merged(parts)) == Counter({"a": 2, "b": 1})
    assert unknown_kinds_of(Connection(request, to_compliance_response)) == Counter()


# -- activity subscriptions, against a local HTTP server -------------------------------------


class _Client(ActivitySubscriptionsMixin):
    def __init__(self, base_url: str, return_type: type = Response) -> None:
        self.session = requests.Session()
        self.proxies: dict[str, str] = {}
        self.verify = True
        self.bearer_token = "s3cr3t-token"
        self.wait_on_rate_limit = False
        self.base_url = base_url
        self.return_type = return_type

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}"}


class _Recorder:
    """A raw-socket HTTP server that records each request (line, body) and answers JSON."""

    def __init__(self, status: int = 200, answer_doc: Any = None) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.status = status
        self.answer_doc = answer_doc if answer_doc is not None else {"data": {"id": "42"}}
        self.server = RawServer(self._handle)
        self.url = self.server.url

    def _handle(self, conn: Any, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length")), 0
        )
        body = b""
        while len(body) < length:
            body += conn.recv(length - len(body))
        self.requests.append((lines[0], json.loads(body) if body else None))
        payload = orjson.dumps(self.answer_doc)
        conn.sendall(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (self.status, len(payload), payload)
        )

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *_: object) -> None:
        self.server.close()


def test_activity_subscription_calls_send_xs_requests() -> None:
    with _Recorder() as server:
        client = _Client(server.url)
        added = client.add_activity_subscription(
            "profile.update.bio", {"user_id": 2244994945}, tag="devs", webhook_id=7
        )
        client.get_activity_subscriptions()
        client.update_activity_subscription("1146654567674912769", tag="renamed")
        client.delete_activity_subscription(1146654567674912769)

    assert isinstance(added, Response)
    assert added.data == {"id": "42"}
    assert server.requests == [
        (
            "POST /2/activity/subscriptions HTTP/1.1",
            {
                "event_type": "profile.update.bio",
                "filter": {"user_id": "2244994945"},
                "tag": "devs",
                "webhook_id": "7",
            },
        ),
        ("GET /2/activity/subscriptions HTTP/1.1", None),
        ("PUT /2/activity/subscriptions/1146654567674912769 HTTP/1.1", {"tag": "renamed"}),
        ("DELETE /2/activity/subscriptions/1146654567674912769 HTTP/1.1", None),
    ]


def test_activity_subscription_return_types_and_errors() -> None:
    doc = {"data": [{"id": "1", "event_type": "follow.follow"}], "meta": {"result_count": 1}}
    with _Recorder(answer_doc=doc) as server:
        assert _Client(server.url, dict).get_activity_subscriptions() == doc
        raw = _Client(server.url, requests.Response).get_activity_subscriptions()
        assert isinstance(raw, requests.Response)
        assert raw.json() == doc
        response = _Client(server.url).get_activity_subscriptions()
        assert response.meta == {"result_count": 1}

    from rxtweet.errors import HTTPException

    with _Recorder(status=403, answer_doc={"title": "Forbidden", "type": "about:blank"}) as srv:
        with pytest.raises(HTTPException) as caught:
            _Client(srv.url).get_activity_subscriptions()
        assert "s3cr3t-token" not in str(caught.value)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.delete_activity_subscription("../../tweets/search/stream/rules"), ValueError),
        (lambda c: c.delete_activity_subscription("1?x=1"), ValueError),
        (lambda c: c.delete_activity_subscription(""), ValueError),
        (lambda c: c.delete_activity_subscription(None), TypeError),
        (lambda c: c.update_activity_subscription("1"), ValueError),
        (lambda c: c.add_activity_subscription("", {"user_id": "1"}), ValueError),
        (lambda c: c.add_activity_subscription("x", "user_id=1"), TypeError),
        (lambda c: c.add_activity_subscription("x", {}), ValueError),
        (lambda c: c.add_activity_subscription("x", {"user_id": "1", "keyword": "k"}), ValueError),
        (lambda c: c.add_activity_subscription("x", {"usr_id": "1"}), ValueError),
        (lambda c: c.add_activity_subscription("x", {"user_id": True}), ValueError),
        (lambda c: c.add_activity_subscription("x", {"keyword": "k"}, tag=5), TypeError),
    ],
)
def test_activity_subscription_arguments_are_checked_before_any_call(
    call: Any, error: type[Exception]
) -> None:
    with _Recorder() as server:
        with pytest.raises(error):
            call(_Client(server.url))
        assert server.server.connections == 0


# -- FakeStreamServer's generators speak what the converters read --------------------------


def test_the_testing_generators_convert_without_unknown_kinds_or_errors() -> None:
    import itertools

    from rxtweet.testing.generate import (
        generate_activity_messages,
        generate_compliance_messages,
        generate_label_messages,
        generate_like_messages,
    )

    kinds: Counter[str] = Counter()
    for stream in ("tweets", "users", "likes"):
        converter = ComplianceConverter()
        for doc in itertools.islice(generate_compliance_messages(stream, seed=1), 300):
            event = converter(doc).event
            assert event is not None
            assert isinstance(event.event_at, datetime)
            kinds[type(event).__name__] += 1
        assert converter.unknown_kinds.snapshot() == Counter()
    assert len(kinds) == 15  # every post, user and like compliance class appears
    for doc in itertools.islice(generate_like_messages(seed=1), 100):
        like = to_like_response(doc).like
        assert like is not None
        assert isinstance(like.timestamp_ms, int)
        assert isinstance(like.liked_tweet_id, int)
    labels = LabelConverter()
    for doc in itertools.islice(generate_label_messages(seed=1), 100):
        label = labels(doc).label
        assert label is not None
        assert isinstance(label.tweet_id, int)
    assert labels.unknown_kinds.snapshot() == Counter()
    for doc in itertools.islice(generate_activity_messages(seed=1), 100):
        activity = to_activity_response(doc).activity
        assert activity is not None
        assert activity.event_type
