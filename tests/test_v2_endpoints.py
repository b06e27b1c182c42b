"""Every v2 stream X serves: the endpoint table, its parameter checks, and each endpoint
streaming from a real FakeStreamServer through its StreamingClient method."""

from __future__ import annotations

from typing import Any

import pytest
from support import wait_until

from rxtweet import (
    ActivityEvent,
    ComplianceEvent,
    InvalidStreamParameter,
    LabelEvent,
    LikeEvent,
    StreamingClient,
    Tweet,
)
from rxtweet.testing import FakeStreamServer
from rxtweet.v2 import ENDPOINTS as PATHS
from rxtweet.v2.endpoints import ENDPOINTS
from rxtweet.v2.params import endpoint_params

# The issue's table (OpenAPI 2.167): path and partition count.
TABLE = {
    "search": ("/2/tweets/search/stream", None),
    "sample": ("/2/tweets/sample/stream", None),
    "sample10": ("/2/tweets/sample10/stream", 2),
    "firehose": ("/2/tweets/firehose/stream", 20),
    "firehose_en": ("/2/tweets/firehose/stream/lang/en", 8),
    "firehose_ja": ("/2/tweets/firehose/stream/lang/ja", 2),
    "firehose_ko": ("/2/tweets/firehose/stream/lang/ko", 2),
    "firehose_pt": ("/2/tweets/firehose/stream/lang/pt", 2),
    "compliance_tweets": ("/2/tweets/compliance/stream", 4),
    "compliance_users": ("/2/users/compliance/stream", 4),
    "compliance_likes": ("/2/likes/compliance/stream", None),
    "likes_firehose": ("/2/likes/firehose/stream", 20),
    "likes_sample10": ("/2/likes/sample10/stream", 2),
    "labels": ("/2/tweets/label/stream", None),
    "activity": ("/2/activity/stream", None),
}


def test_the_table_is_the_issues() -> None:
    assert {
        name: (e.path, None if e.partitions is None else len(e.partitions))
        for name, e in ENDPOINTS.items()
    } == TABLE
    assert all(e.partitions is None or e.partitions.start == 1 for e in ENDPOINTS.values())
    assert {name: path for name, (path, _) in TABLE.items()} == PATHS


def test_the_parameter_sets_follow_the_spec() -> None:
    fields = {"tweet_fields", "user_fields", "expansions", "media_fields"}
    for name, endpoint in ENDPOINTS.items():
        assert "backfill_minutes" in endpoint.params, name
        assert ("start_time" in endpoint.params) == (name != "sample"), name
        assert "partition" not in endpoint.params  # given as partitions=
        if endpoint.kind == "tweets":
            assert fields | {"place_fields", "poll_fields"} <= endpoint.params
        elif endpoint.kind == "likes":
            assert fields | {"like_with_tweet_author_fields"} <= endpoint.params
        else:
            assert endpoint.params == {"backfill_minutes", "start_time", "end_time"}, name


def test_endpoint_params_sends_what_it_checked() -> None:
    query = endpoint_params(
        ENDPOINTS["likes_sample10"],
        {
            "like_with_tweet_author_fields": ["id", "created_at", "id"],
            "expansions": "liked_tweet_id, liked_tweet_author_id",
            "backfill_minutes": " 3",
            "end_time": "2026-01-01T00:00:00Z",
            "tweet_fields": None,
        },
    )
    assert query == {
        "like_with_tweet_author.fields": "id,created_at",
        "expansions": "liked_tweet_id,liked_tweet_author_id",
        "backfill_minutes": "3",
        "end_time": "2026-01-01T00:00:00Z",
    }


@pytest.mark.parametrize(
    ("name", "params", "error", "says"),
    [
        ("firehose", {"tweet_field": ["id"]}, TypeError, "did you mean 'tweet_fields'"),
        ("firehose", {"partition": 3}, TypeError, r"partitions= \(1-20\)"),
        ("labels", {"partition": 1}, TypeError, "not partitioned"),
        ("compliance_tweets", {"tweet_fields": ["id"]}, TypeError, "backfill_minutes"),
        ("sample", {"start_time": "2026-01-01T00:00:00Z"}, TypeError, "start_time"),
        ("likes_firehose", {"expansions": ["author_id"]}, InvalidStreamParameter, "liked_"),
        ("likes_firehose", {"like_with_tweet_author_fields": ["idd"]}, ValueError, "'id'"),
        ("activity", {"backfill_minutes": 6}, InvalidStreamParameter, "0 to 5"),
        ("firehose_ja", {"start_time": "yesterday"}, InvalidStreamParameter, "RFC 3339"),
    ],
)
def test_endpoint_params_refuses_before_connecting(
    name: str, params: dict[str, Any], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        endpoint_params(ENDPOINTS[name], params)


def test_unknown_lang_and_kind_are_refused() -> None:
    client = StreamingClient("t0ken")
    with pytest.raises(ValueError, match="en, ja, ko, pt"):
        client.firehose_stream(partitions=1, lang="fr")
    with pytest.raises(ValueError, match="'tweets', 'users' or 'likes'"):
        client.compliance_stream("posts", partitions=1)
    with pytest.raises(ValueError, match="'firehose' or 'sample10'"):
        client.likes_stream("sample", partitions=1)


# (method, args, kwargs, substream, model, endpoint name)
CALLS = [
    ("sample10_stream", (), {"partitions": "all"}, "tweets", Tweet, "sample10"),
    ("firehose_stream", (), {"partitions": "all"}, "tweets", Tweet, "firehose"),
    ("firehose_stream", (), {"partitions": "all", "lang": "en"}, "tweets", Tweet, "firehose_en"),
    ("firehose_stream", (), {"partitions": [1, 2], "lang": "ja"}, "tweets", Tweet, "firehose_ja"),
    ("firehose_stream", (), {"partitions": [1, 2], "lang": "ko"}, "tweets", Tweet, "firehose_ko"),
    ("firehose_stream", (), {"partitions": [1, 2], "lang": "pt"}, "tweets", Tweet, "firehose_pt"),
    (
        "compliance_stream",
        ("tweets",),
        {"partitions": "all"},
        "compliance",
        ComplianceEvent,
        "compliance_tweets",
    ),
    (
        "compliance_stream",
        ("users",),
        {"partitions": [1, 2, 3, 4]},
        "compliance",
        ComplianceEvent,
        "compliance_users",
    ),
    ("compliance_stream", ("likes",), {}, "compliance", ComplianceEvent, "compliance_likes"),
    ("likes_stream", (), {"partitions": "all"}, "likes", LikeEvent, "likes_firehose"),
    ("likes_stream", ("sample10",), {"partitions": "all"}, "likes", LikeEvent, "likes_sample10"),
    ("label_stream", (), {}, "labels", LabelEvent, "labels"),
    ("activity_stream", (), {}, "activities", ActivityEvent, "activity"),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "substream", "model", "name"), CALLS)
def test_every_endpoint_streams_from_the_fake_server_through_its_method(
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    substream: str,
    model: type,
    name: str,
) -> None:
    tweets = [
        {"data": {"id": str(n), "text": f"t{n}", "edit_history_tweet_ids": [str(n)]}}
        for n in range(40)
    ]
    endpoint = ENDPOINTS[name]
    with FakeStreamServer(tweets, bearer_token="t0ken", keepalive_interval=0.2) as server:
        client = StreamingClient("t0ken", base_url=server.url)
        stream = getattr(client, method)(*args, **kwargs)
        got: list[Any] = []
        subscription = getattr(stream, substream).subscribe(got.append)
        try:
            expected = len(endpoint.partitions) if endpoint.partitions is not None else 1
            assert wait_until(
                lambda: len(got) >= 2 * expected and len(server.requests) >= expected, 2
            ), got
        finally:
            subscription.dispose()
        assert all(isinstance(item, model) for item in got)
        paths = {request.path for request in server.requests}
        assert paths == {endpoint.path}
        partitions = sorted(request.partition or 0 for request in server.requests)
        wanted = kwargs.get("partitions")
        if wanted is None:
            assert partitions == [0]
        else:
            assert partitions == (
                list(endpoint.partitions or ()) if wanted == "all" else sorted(wanted)
            )
