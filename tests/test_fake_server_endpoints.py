"""FakeStreamServer serves every v2 stream X serves: partitions, range checks, sources, CRUD.

Everything goes over real sockets on 127.0.0.1 with ``requests``, so these tests check the
server as any client sees it (rxtweet's own client is tested against it elsewhere).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import islice
from typing import Any

import orjson
import pytest
import requests

from rxtweet.testing import (
    Attempt,
    FakeStreamServer,
    generate_activity_messages,
    generate_compliance_messages,
    generate_label_messages,
    generate_like_messages,
)
from rxtweet.testing.endpoints import SERVED_ENDPOINTS, ServedEndpoint

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARTITIONED = [e for e in SERVED_ENDPOINTS.values() if e.partitions is not None]


def _get(server: FakeStreamServer, path: str, **params: Any) -> requests.Response:
    return requests.get(server.url + path, params=params, headers=AUTH, stream=True, timeout=3)


def _lines(response: requests.Response) -> Iterator[bytes]:
    """Complete lines only: a cut connection's half line is never yielded."""
    buffer = b""
    try:
        for chunk in response.iter_content(chunk_size=None):
            buffer += chunk
            *complete, buffer = buffer.split(b"\r\n")
            yield from (line for line in complete if line)
    except requests.exceptions.RequestException:
        return
    finally:
        response.close()


def _first(server: FakeStreamServer, endpoint: ServedEndpoint, n: int) -> list[Any]:
    params = {"partition": 1} if endpoint.partitions else {}
    response = _get(server, endpoint.path, **params)
    assert response.status_code == 200
    return [orjson.loads(line) for line in islice(_lines(response), n)]


# --- the table ------------------------------------------------------------------------------


def test_the_servers_table_agrees_with_the_clients() -> None:
    """Two tables written apart (so the server does not share the client's mistakes) agree."""
    from rxtweet.v2.endpoints import ENDPOINTS

    assert set(ENDPOINTS) == set(SERVED_ENDPOINTS)
    for name, client in ENDPOINTS.items():
        served = SERVED_ENDPOINTS[name]
        assert served.path == client.path, name
        assert served.kind == client.kind, name
        expected = None if client.partitions is None else len(client.partitions)
        assert served.partitions == expected, name
        assert client.partitions is None or client.partitions.start == 1
        wire = {p.replace("_fields", ".fields") for p in client.params} - {"partition"}
        taken = served.params - {"partition"}
        if name == "sample":  # the server also takes the 2024 Enterprise start/end_time
            taken -= {"start_time", "end_time"}
        assert taken == wire, name


# --- range checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", PARTITIONED, ids=lambda e: e.name)
def test_partition_is_required_and_range_checked(endpoint: ServedEndpoint) -> None:
    assert endpoint.partitions is not None
    top = endpoint.partitions
    with FakeStreamServer(
        messages=[{"data": {"id": "1", "text": "a"}}],
        bearer_token=TOKEN,
        default=Attempt(messages=1, ending="close"),
    ) as server:
        missing = _get(server, endpoint.path)
        assert missing.status_code == 400
        assert missing.headers["content-type"] == "application/problem+json"
        problem = missing.json()
        assert problem["type"].endswith("/2/problems/invalid-request")
        assert problem["errors"][0]["parameters"] == {"partition": []}
        assert "`partition`" in problem["errors"][0]["message"]
        for bad in (0, top + 1, "x"):
            refused = _get(server, endpoint.path, partition=bad)
            assert refused.status_code == 400, bad
            error = refused.json()["errors"][0]
            assert error["parameters"] == {"partition": [str(bad)]}
            assert f"between 1 and {top}" in error["message"]
        assert _get(server, endpoint.path, partition=top).status_code == 200
        assert server.scripted == ()
        statuses = [(r.status, r.partition, r.endpoint) for r in server.stream_requests]
    assert statuses[-1] == (200, top, endpoint.name)
    assert [s for s, _, _ in statuses] == [400] * 4 + [200]  # refusals take no Attempt


def test_other_query_checks() -> None:
    with FakeStreamServer(bearer_token=TOKEN, default=Attempt(messages=0, ending="close")) as s:
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("/2/tweets/sample/stream", {"partition": 1}, "partition"),
            (
                "/2/tweets/compliance/stream",
                {"partition": 1, "tweet.fields": "lang"},
                "tweet.fields",
            ),
            ("/2/tweets/label/stream", {"backfill_minutes": 6}, "backfill_minutes"),
            ("/2/activity/stream", {"start_time": "yesterday"}, "start_time"),
        ]
        for path, params, name in cases:
            response = _get(s, path, **params)
            assert response.status_code == 400, (path, params)
            assert list(response.json()["errors"][0]["parameters"]) == [name]
        fine = {"backfill_minutes": 5, "start_time": "2024-01-10T12:00:00Z", "x": "1"}
        assert _get(s, "/2/tweets/label/stream", **fine).status_code == 200


# --- partitions: disjoint shards, exactly once ----------------------------------------------


def test_twenty_partitions_union_is_the_whole_set_exactly_once_through_cuts() -> None:
    messages = [{"data": {"id": str(i), "text": f"tweet {i}"}} for i in range(1, 401)]
    with FakeStreamServer(
        messages=messages, bearer_token=TOKEN, default=Attempt(ending="close")
    ) as server:
        server.script(
            Attempt(messages=3, ending="cut"), Attempt(messages=2, ending="cut"), partition=3
        )
        server.script(
            Attempt(messages=5, ending="cut", chunking="byte"), endpoint="firehose", partition=7
        )
        server.script(Attempt(status=503), partition=11)
        received: dict[int, list[int]] = {}
        for partition in range(1, 21):
            ids: list[int] = []
            for _ in range(5):  # reconnect after a cut or a refusal, as a client would
                response = _get(server, "/2/tweets/firehose/stream", partition=partition)
                if response.status_code == 200:
                    ids.extend(int(orjson.loads(line)["data"]["id"]) for line in _lines(response))
                if len(ids) == 20:
                    break
            received[partition] = ids
        by_partition = server.sent_by_partition
        records = server.stream_requests
    every = [i for ids in received.values() for i in ids]
    assert sorted(every) == list(range(1, 401))  # the whole set, each message once
    for partition, ids in received.items():  # a partition is a fixed, ordered shard
        assert ids == list(range(partition, 401, 20)), partition
        assert by_partition[("firehose", partition)] == 20
    cut = [r for r in records if r.partition in (3, 7, 11) and r.attempt != Attempt(ending="close")]
    assert [(r.partition, r.attempt.ending if r.attempt else None) for r in cut] == [
        (3, "cut"),
        (3, "cut"),
        (7, "cut"),
        (11, "hold"),  # the 503 (its ending unused)
    ]
    assert all(
        r.attempt == Attempt(ending="close") for r in records if r.partition not in (3, 7, 11)
    )


def test_a_partition_resends_its_own_cut_message_and_no_other() -> None:
    messages = [{"data": {"id": str(i), "text": "x" * 40}} for i in range(1, 9)]
    with FakeStreamServer(
        messages=messages, bearer_token=TOKEN, default=Attempt(ending="close")
    ) as server:
        server.script(Attempt(messages=1, ending="cut"), partition=2)
        first = [
            orjson.loads(x)["data"]["id"]
            for x in _lines(_get(server, "/2/tweets/sample10/stream", partition=2))
        ]
        one = [
            orjson.loads(x)["data"]["id"]
            for x in _lines(_get(server, "/2/tweets/sample10/stream", partition=1))
        ]
        rest = [
            orjson.loads(x)["data"]["id"]
            for x in _lines(_get(server, "/2/tweets/sample10/stream", partition=2))
        ]
    assert first == ["2"]
    assert one == ["1", "3", "5", "7"]
    assert rest == ["4", "6", "8"]  # "4", cut in half, comes again whole, on partition 2


# --- sources ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [e.name for e in SERVED_ENDPOINTS.values() if e.kind != "tweets"])
def test_every_other_stream_sends_realistic_messages_by_default(name: str) -> None:
    endpoint = SERVED_ENDPOINTS[name]
    with FakeStreamServer(bearer_token=TOKEN) as server:
        docs = _first(server, endpoint, 20)
    assert len(docs) == 20 and all(isinstance(d.get("data"), dict) for d in docs)
    kinds = {next(iter(d["data"])) for d in docs}
    if name == "compliance_tweets":
        assert kinds <= {"delete", "tweet_edit", "withheld", "drop", "undrop"}
        assert all(d["data"][k]["tweet"]["id"].isdigit() for d in docs for k in d["data"])
    elif name == "compliance_users":
        assert all(next(iter(d["data"].values()))["user"]["id"].isdigit() for d in docs)
    elif name == "compliance_likes":
        assert kinds == {"delete"} and all("favorite" in d["data"]["delete"] for d in docs)
    elif endpoint.kind == "likes":
        assert all(d["data"]["timestamp_ms"].isdigit() for d in docs)
        assert all(d["includes"]["tweets"][0]["id"] == d["data"]["liked_tweet_id"] for d in docs)
    elif name == "labels":
        assert kinds <= {"public_tweet_notice", "public_tweet_unviewable"}
    else:
        assert all(
            {"event_uuid", "event_type", "filter", "payload"} <= set(d["data"]) for d in docs
        )


def test_endpoint_messages_by_name_or_path_and_feed() -> None:
    compliance = [
        {"data": {"user_delete": {"user": {"id": "9"}, "event_at": "2024-01-10T12:00:00.000Z"}}}
    ]
    labels = [b'{"data":{"unknown_label_kind":{}}}']
    with FakeStreamServer(
        messages=[{"data": {"id": "1", "text": "tweet"}}],
        endpoint_messages={"compliance_users": compliance, "/2/tweets/label/stream": labels},
        bearer_token=TOKEN,
        default=Attempt(ending="close"),
    ) as server:
        server.feed(b'{"data":{"late":1}}', endpoint="labels")
        users = list(_lines(_get(server, "/2/users/compliance/stream", partition=1)))
        label_lines = list(_lines(_get(server, "/2/tweets/label/stream")))
        tweets = list(_lines(_get(server, "/2/tweets/firehose/stream/lang/ja", partition=1)))
    assert [orjson.loads(u) for u in users] == compliance
    assert label_lines == [labels[0], b'{"data":{"late":1}}']  # verbatim, in order
    assert [orjson.loads(t)["data"]["id"] for t in tweets] == ["1"]  # Tweet streams: messages
    with pytest.raises(ValueError, match="unknown endpoint 'likes'"):
        FakeStreamServer(endpoint_messages={"likes": []})
    with pytest.raises(ValueError, match="firehose has no partition 21"):
        FakeStreamServer().script(Attempt(), endpoint="firehose", partition=21)


def test_generators_are_deterministic_and_cover_every_kind() -> None:
    def first(gen: Iterator[dict[str, Any]], n: int = 600) -> list[dict[str, Any]]:
        return list(islice(gen, n))

    assert first(generate_like_messages(seed=3), 50) == first(generate_like_messages(seed=3), 50)
    assert first(generate_label_messages(seed=1), 50) != first(generate_label_messages(seed=2), 50)
    tweets = Counter(next(iter(m["data"])) for m in first(generate_compliance_messages("tweets")))
    assert set(tweets) == {"delete", "tweet_edit", "withheld", "drop", "undrop"}
    users = Counter(next(iter(m["data"])) for m in first(generate_compliance_messages("users")))
    assert set(users) == {
        "user_delete", "user_undelete", "user_protect", "user_unprotect", "user_suspend",
        "user_unsuspend", "user_withheld", "scrub_geo", "user_profile_modification",
    }  # fmt: skip
    for message in first(generate_compliance_messages("tweets")):
        edit = message["data"].get("tweet_edit")
        if edit:
            ids = [int(i) for i in edit["edit_tweet_ids"]]
            assert ids == sorted(ids) and str(ids[0]) == edit["initial_tweet_id"]
            assert edit["tweet"]["id"] == str(ids[-1])
    activity = {m["data"]["event_type"] for m in first(generate_activity_messages())}
    assert {"follow.follow", "post.create", "like.create", "news.new"} <= activity
    with pytest.raises(ValueError, match="kind must be"):
        next(generate_compliance_messages("posts"))  # type: ignore[arg-type]


# --- activity subscriptions -----------------------------------------------------------------


def test_activity_subscriptions_crud() -> None:
    url = "/2/activity/subscriptions"
    with FakeStreamServer(bearer_token=TOKEN) as server:
        base = server.url + url

        def call(method: str, path: str = "", body: Any = None) -> requests.Response:
            return requests.request(method, base + path, json=body, headers=AUTH, timeout=3)

        assert call("GET").json() == {"meta": {"result_count": 0}}
        created = call(
            "POST", body={"event_type": "follow.follow", "filter": {"user_id": "42"}, "tag": "f"}
        )
        assert created.status_code == 200
        doc = created.json()
        sub = doc["data"]["subscription"]
        assert doc["meta"] == {"total_subscriptions": 1}
        assert doc["data"]["total_subscriptions_for_instance_id"] == 1
        assert {k: sub[k] for k in ("event_type", "filter", "tag")} == {
            "event_type": "follow.follow", "filter": {"user_id": "42"}, "tag": "f",
        }  # fmt: skip
        assert sub["subscription_id"].isdigit() and sub["created_at"].endswith("Z")
        sub_id = sub["subscription_id"]

        bad = call("POST", body={"event_type": "follow.everything", "filter": {"user_id": "42"}})
        assert bad.status_code == 400 and bad.json()["type"].endswith("invalid-request")
        assert call("POST", body={"event_type": "news.new", "filter": {}}).status_code == 400

        updated = call("PUT", f"/{sub_id}", {"tag": "renamed", "webhook_id": "77"})
        assert updated.status_code == 200
        assert updated.json()["data"]["subscription"]["tag"] == "renamed"
        assert call("PUT", f"/{sub_id}", {"event_type": "news.new"}).status_code == 400
        listed = call("GET").json()
        assert listed["meta"] == {"result_count": 1}
        assert listed["data"][0]["webhook_id"] == "77"
        assert server.activity_subscriptions[sub_id]["tag"] == "renamed"

        deleted = call("DELETE", f"/{sub_id}")
        assert deleted.json() == {"data": {"deleted": True}, "meta": {"total_subscriptions": 0}}
        missing = call("DELETE", f"/{sub_id}")
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["type"].endswith("resource-not-found")
        assert call("PATCH").status_code == 405
        no_auth = requests.get(base, timeout=3)
        assert no_auth.status_code == 401
