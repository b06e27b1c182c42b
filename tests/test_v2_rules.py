"""The filtered-stream rules methods of StreamingClient: tweepy's behaviour, over HTTP.

Unit tests mock ``https://api.x.com/2/tweets/search/stream/rules`` with ``responses`` and
check what is sent (body, query, bearer header) and what comes back (tweepy's ``Response``,
``dict``, ``requests.Response``, typed exceptions). Bodies are real or documented ones:
``tests/data/twitter-dart_*_filtering_rules.json`` (Twitter's API reference examples),
``tests/data/pytwitter_rules_delete_error.json`` and the protocol notes' rule problems.

The integration tests run the same calls against FakeStreamServer's in-memory rules endpoint,
ending with tweepy's streaming-guide sequence run verbatim (only ``base_url`` added).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

import rxtweet
from rxtweet import (
    BadRequest,
    Forbidden,
    HTTPException,
    Response,
    StreamingClient,
    StreamRule,
    TooManyRequests,
    TwitterServerError,
    Unauthorized,
)
from rxtweet.testing import FakeStreamServer, default_error_body

DATA = Path(__file__).parent / "data"
RULES_URL = "https://api.x.com/2/tweets/search/stream/rules"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2XzMDjRfl76ZC9Ub0wnz4XsNiRVBChTYbJcE3F"  # noqa: E501 - a fake token, bearer-shaped
BEARER = {"Authorization": f"Bearer {TOKEN}"}

PROBLEMS = "https://api.twitter.com/2/problems/"
#: The protocol notes' example 5: one rule created, one invalid, one duplicate (HTTP 201).
ADD_WITH_PROBLEMS: dict[str, Any] = {
    "data": [{"value": "cat has:images", "tag": "cats with images", "id": "1745000000000000100"}],
    "meta": {
        "sent": "2024-01-10T12:00:00.000Z",
        "summary": {"created": 1, "not_created": 2, "valid": 1, "invalid": 2},
    },
    "errors": [
        {
            "value": "--b",
            "details": [
                "Rules must contain a non-negation term (at position 1)",
                "Rules must contain at least one positive, non-stopword clause (at position 1)",
            ],
            "title": "UnprocessableEntity",
            "type": PROBLEMS + "invalid-rules",
        },
        {
            "value": "dog has:images",
            "id": "1744000000000000099",
            "title": "DuplicateRule",
            "type": PROBLEMS + "duplicate-rules",
        },
    ],
}
#: A duplicate alone: no ``data`` at all (X leaves it out when nothing was created).
ONLY_DUPLICATE: dict[str, Any] = {
    "meta": {
        "sent": "2024-01-10T12:00:01.000Z",
        "summary": {"created": 0, "not_created": 1, "valid": 0, "invalid": 1},
    },
    "errors": [ADD_WITH_PROBLEMS["errors"][1]],
}
#: The protocol notes' generic 401 and 429 bodies.
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
TOO_MANY = {
    "title": "Too Many Requests",
    "detail": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
}
SERVICE_UNAVAILABLE = {
    "title": "Service Unavailable",
    "detail": "Service Unavailable",
    "type": "about:blank",
    "status": 503,
}


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


CREATE = load("twitter-dart_create_filtering_rules.json")
DESTROY = load("twitter-dart_destroy_filtering_rules.json")
LOOKUP = load("twitter-dart_lookup_filtering_rules.json")
DELETE_ERROR = load("pytwitter_rules_delete_error.json")


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    # Every registered response must be used, and nothing unregistered may be requested.
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def client() -> StreamingClient:
    return StreamingClient(TOKEN)


def sent_json(rsps: responses.RequestsMock, index: int = 0) -> Any:
    body = rsps.calls[index].request.body
    assert body is not None
    return json.loads(body)


def rules_of(doc: dict[str, Any]) -> list[StreamRule]:
    return [StreamRule(r["value"], r.get("tag"), r["id"]) for r in doc["data"]]


# --------------------------------------------------------------------------- add_rules


def test_add_one_rule_sends_value_only_with_bearer(
    mocked: responses.RequestsMock, client: StreamingClient
) -> None:
    body = {
        "data": [{"value": "Tweepy", "id": "1745000000000000200"}],
        "meta": {"sent": "2024-01-10T12:00:00.000Z", "summary": {"created": 1, "not_created": 0}},
    }
    mocked.post(
        RULES_URL,
        json=body,
        status=201,
        match=[
            matchers.json_params_matcher({"add": [{"value": "Tweepy"}]}),  # no "tag": null
            matchers.query_param_matcher({}),  # dry_run not sent unless given
            matchers.header_matcher(BEARER),
        ],
    )
    result = client.add_rules(StreamRule("Tweepy"))
    assert isinstance(result, Response)
    assert result == Response(
        data=[StreamRule("Tweepy", None, "1745000000000000200")],
        includes={},
        errors=[],
        meta=body["meta"],
    )
    assert result.data[0].id == "1745000000000000200"
    request = mocked.calls[0].request
    assert request.headers["Content-Type"] == "application/json"
    assert "rxtweet/" in request.headers["User-Agent"]


def test_add_many_with_tags_dry_run(
    mocked: responses.RequestsMock, client: StreamingClient
) -> None:
    rules = [StreamRule(r["value"], tag=r.get("tag")) for r in CREATE["data"]]
    mocked.post(
        RULES_URL,
        json=CREATE,
        status=201,
        match=[
            matchers.query_param_matcher({"dry_run": "true"}),
            matchers.header_matcher(BEARER),
        ],
    )
    result = client.add_rules(rules, dry_run=True)
    assert sent_json(mocked) == {
        "add": [
            {"value": "meme", "tag": "funny things"},
            {"value": "cats has:media -grumpy", "tag": "happy cats with media"},
            {"value": "cat has:media", "tag": "cats with media"},
            {"value": "meme has:images"},
        ]
    }
    assert result.data == rules_of(CREATE)
    assert all(type(rule.id) is str for rule in result.data)
    assert result.data[3] == StreamRule("meme has:images", None, "1166895166390583298")
    assert (result.includes, result.errors) == ({}, [])
    assert result.meta == {
        "sent": "2019-08-29T02:07:42.205Z",
        "summary": {"created": 4, "not_created": 0},
    }


@pytest.mark.parametrize(
    ("dry_run", "query"), [(False, {"dry_run": "false"}), (None, {})], ids=["false", "omitted"]
)
def test_add_dry_run_query(
    mocked: responses.RequestsMock,
    client: StreamingClient,
    dry_run: bool | None,
    query: dict[str, str],
) -> None:
    mocked.post(RULES_URL, json=CREATE, status=201, match=[matchers.query_param_matcher(query)])
    client.add_rules(StreamRule("meme", tag="funny things"), dry_run=dry_run)


def test_add_accepts_any_iterable(mocked: responses.RequestsMock, client: StreamingClient) -> None:
    expected = {"add": [{"value": "a", "tag": "t"}, {"value": "b"}]}
    for _ in range(2):
        mocked.post(
            RULES_URL, json=CREATE, status=201, match=[matchers.json_params_matcher(expected)]
        )
    client.add_rules((StreamRule("a", tag="t"), StreamRule("b")))
    client.add_rules(rule for rule in [StreamRule("a", tag="t"), StreamRule("b")])


def test_rule_problems_come_back_in_errors(
    mocked: responses.RequestsMock, client: StreamingClient
) -> None:
    mocked.post(RULES_URL, json=ADD_WITH_PROBLEMS, status=201)
    result = client.add_rules(
        [
            StreamRule("cat has:images", tag="cats with images"),
            StreamRule("--b"),
            StreamRule("dog has:images"),
        ]
    )
    assert result.data == [StreamRule("cat has:images", "cats with images", "1745000000000000100")]
    assert result.errors == ADD_WITH_PROBLEMS["errors"]
    assert [e["title"] for e in result.errors] == ["UnprocessableEntity", "DuplicateRule"]
    duplicate = result.errors[1]
    assert (duplicate["value"], duplicate["id"]) == ("dog has:images", "1744000000000000099")
    assert result.meta["summary"] == {"created": 1, "not_created": 2, "valid": 1, "invalid": 2}


def test_only_a_duplicate_gives_no_data(
    mocked: responses.RequestsMock, client: StreamingClient
) -> None:
    mocked.post(RULES_URL, json=ONLY_DUPLICATE, status=201)
    result = client.add_rules(StreamRule("dog has:images"))
    assert result.data is None  # as tweepy: data is None when the body has none
    assert result.errors == ONLY_DUPLICATE["errors"]
    assert result.meta["summary"]["not_created"] == 1


# --------------------------------------------------------------------------- delete_rules


@pytest.mark.parametrize(
    ("ids", "sent"),
    [
        (1165037377523306497, ["1165037377523306497"]),
        ("1165037377523306497", ["1165037377523306497"]),
        (
            [1165037377523306497, "1165037377523306498"],
            ["1165037377523306497", "1165037377523306498"],
        ),
        (
            StreamRule("dog has:images", "dog pictures", "1165037377523306497"),
            ["1165037377523306497"],
        ),
        (
            [StreamRule("dog has:images", id="1165037377523306497"), StreamRule(id="7")],
            ["1165037377523306497", "7"],
        ),
        ([StreamRule(id="1"), 2, "3"], ["1", "2", "3"]),
        ((i for i in (4, 5)), ["4", "5"]),
    ],
    ids=["int", "str", "list", "StreamRule", "list-of-StreamRule", "mixed", "generator"],
)
def test_delete_rules_sends_ids_as_strings(
    mocked: responses.RequestsMock, client: StreamingClient, ids: Any, sent: list[str]
) -> None:
    mocked.post(
        RULES_URL,
        json=DESTROY,
        status=200,
        match=[
            matchers.json_params_matcher({"delete": {"ids": sent}}),
            matchers.query_param_matcher({}),
            matchers.header_matcher(BEARER),
        ],
    )
    result = client.delete_rules(ids)
    assert result == Response(data=None, includes={}, errors=[], meta=DESTROY["meta"])
    assert result.meta["summary"] == {"deleted": 1, "not_deleted": 0}


def test_delete_rules_dry_run(mocked: responses.RequestsMock, client: StreamingClient) -> None:
    mocked.post(
        RULES_URL,
        json=DESTROY,
        status=200,
        match=[matchers.query_param_matcher({"dry_run": "true"})],
    )
    client.delete_rules(["1"], dry_run=True)


@pytest.mark.parametrize(
    "ids",
    [
        StreamRule("cats"),
        [StreamRule("cats", id="1"), StreamRule("dogs")],
        [StreamRule(id="1"), ""],
    ],
    ids=["rule-without-id", "one-of-many-without-id", "empty-string"],
)
def test_delete_rule_without_id_raises_before_sending(
    mocked: responses.RequestsMock, client: StreamingClient, ids: Any
) -> None:
    with pytest.raises(ValueError, match="id"):
        client.delete_rules(ids)
    assert len(mocked.calls) == 0


def test_delete_the_rules_get_rules_returned(
    mocked: responses.RequestsMock, client: StreamingClient
) -> None:
    # The common tweepy idiom: delete everything get_rules() listed.
    mocked.get(RULES_URL, json=LOOKUP, status=200)
    mocked.post(
        RULES_URL,
        json={
            "meta": {
                "sent": "2019-08-29T01:48:54.633Z",
                "summary": {"deleted": 2, "not_deleted": 0},
            }
        },
        status=200,
        match=[
            matchers.json_params_matcher(
                {"delete": {"ids": ["1165037377523306497", "1165037377523306498"]}}
            )
        ],
    )
    client.delete_rules(client.get_rules().data)


# --------------------------------------------------------------------------- get_rules


def test_get_rules(mocked: responses.RequestsMock, client: StreamingClient) -> None:
    mocked.get(
        RULES_URL,
        json=LOOKUP,
        status=200,
        match=[matchers.query_param_matcher({}), matchers.header_matcher(BEARER)],
    )
    result = client.get_rules()
    assert result == Response(
        data=[
            StreamRule("dog has:images", "dog pictures", "1165037377523306497"),
            StreamRule("cat has:images -grumpy", None, "1165037377523306498"),
        ],
        includes={},
        errors=[],
        meta={"sent": "2019-08-29T01:12:10.729Z"},
    )
    assert mocked.calls[0].request.body is None


@pytest.mark.parametrize(
    ("ids", "query"),
    [
        ([1, 2], "1,2"),
        (["1165037377523306497", 1165037377523306498], "1165037377523306497,1165037377523306498"),
        ((i for i in (1, 2)), "1,2"),
        (1, "1"),
        ("1,2", "1,2"),
    ],
    ids=["ints", "mixed", "generator", "int", "str"],
)
def test_get_rules_by_ids(
    mocked: responses.RequestsMock, client: StreamingClient, ids: Any, query: str
) -> None:
    mocked.get(
        RULES_URL, json=LOOKUP, status=200, match=[matchers.query_param_matcher({"ids": query})]
    )
    client.get_rules(ids=ids)
    assert "ids=" + query.replace(",", "%2C") in mocked.calls[0].request.url


def test_get_rules_when_there_are_none(
    mocked: responses.RequestsMock, client: StreamingClient
) -> None:
    mocked.get(RULES_URL, json={"meta": {"sent": "2024-01-10T12:00:00.000Z", "result_count": 0}})
    result = client.get_rules()
    assert result.data is None
    assert result.meta["result_count"] == 0


# --------------------------------------------------------------------------- HTTP failures


def _body(status: int) -> bytes:
    return default_error_body(status)[0]


@pytest.mark.parametrize(
    ("status", "body", "kind", "title", "detail", "messages"),
    [
        (401, UNAUTHORIZED, Unauthorized, "Unauthorized", "Unauthorized", []),
        (
            403,
            json.loads(_body(403)),
            Forbidden,
            "Client Forbidden",
            json.loads(_body(403))["detail"],
            [],
        ),
        (
            400,
            DELETE_ERROR,
            BadRequest,
            "Invalid Request",
            "One or more parameters to your request was invalid.",
            ["JSON doesn't match expected schema"],
        ),
        (429, TOO_MANY, TooManyRequests, "Too Many Requests", "Too Many Requests", []),
        (
            503,
            SERVICE_UNAVAILABLE,
            TwitterServerError,
            "Service Unavailable",
            "Service Unavailable",
            [],
        ),
    ],
    ids=["401", "403", "400", "429", "503"],
)
@pytest.mark.parametrize("method", ["add", "delete", "get"])
def test_http_failures_raise_typed_errors(
    mocked: responses.RequestsMock,
    client: StreamingClient,
    method: str,
    status: int,
    body: dict[str, Any],
    kind: type[HTTPException],
    title: str,
    detail: str,
    messages: list[str],
) -> None:
    headers = {
        "x-rate-limit-limit": "450",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": "1704890700",
    }
    mocked.add(
        "GET" if method == "get" else "POST",
        RULES_URL,
        json=body,
        status=status,
        content_type="application/problem+json",
        headers=headers if status == 429 else None,
    )
    call = {
        "add": lambda: client.add_rules(StreamRule("cat has:images")),
        "delete": lambda: client.delete_rules([]),  # what pytwitter's error body answered
        "get": lambda: client.get_rules(),
    }[method]
    with pytest.raises(kind) as caught:
        call()
    error = caught.value
    assert isinstance(error, HTTPException)
    assert error.status_code == status
    assert (error.title, error.detail) == (title, detail)
    assert error.api_messages == messages
    assert error.api_errors == body.get("errors", [])
    assert error.body == body
    assert isinstance(error.response, requests.Response)
    assert "/2/tweets/search/stream/rules" in str(error)
    assert str(status) in str(error)
    if status == 429:
        assert error.rate_limit == rxtweet.RateLimit(450, 0, 1704890700)
    _assert_no_token(error)


def test_bad_request_body_is_exposed_like_tweepy(
    mocked: responses.RequestsMock, client: StreamingClient
) -> None:
    mocked.post(RULES_URL, json=DELETE_ERROR, status=400, content_type="application/problem+json")
    with pytest.raises(BadRequest) as caught:
        client.delete_rules([])
    assert sent_json(mocked) == {"delete": {"ids": []}}
    error = caught.value
    assert error.api_errors == [
        {"parameters": {"delete": []}, "message": "JSON doesn't match expected schema"}
    ]
    assert error.problem_type == PROBLEMS + "invalid-request"
    assert "JSON doesn't match expected schema" in str(error)


def test_non_json_error_body(mocked: responses.RequestsMock, client: StreamingClient) -> None:
    mocked.get(
        RULES_URL, body="<html>upstream connect error</html>", status=503, content_type="text/html"
    )
    with pytest.raises(TwitterServerError) as caught:
        client.get_rules()
    assert caught.value.body is None
    assert caught.value.api_errors == []
    assert "upstream connect error" in str(caught.value)


def _assert_no_token(error: BaseException) -> None:
    for text in (str(error), repr(error), *map(str, error.args)):
        assert TOKEN not in text
        assert "Bearer" not in text


def test_token_never_in_client_repr_or_logs(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = StreamingClient(TOKEN, wait_on_rate_limit=True)
    client._sleep = lambda _seconds: None
    mocked.get(RULES_URL, json=TOO_MANY, status=429, headers={"x-rate-limit-reset": "0"})
    mocked.get(RULES_URL, json=UNAUTHORIZED, status=401)
    with pytest.raises(Unauthorized) as caught:
        client.get_rules()
    assert TOKEN not in repr(client)
    assert TOKEN not in caplog.text
    _assert_no_token(caught.value)


# --------------------------------------------------------------------------- rate limits


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_wait_on_rate_limit_sleeps_until_reset_plus_one_and_retries(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    client = StreamingClient(TOKEN, wait_on_rate_limit=True)
    sleep = FakeSleep()
    client._sleep = sleep
    reset = int(time.time()) + 5
    limited = {
        "x-rate-limit-limit": "450",
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(reset),
    }
    expected = {"add": [{"value": "cat has:images", "tag": "cats with images"}]}
    mocked.post(
        RULES_URL,
        json=TOO_MANY,
        status=429,
        headers=limited,
        match=[matchers.json_params_matcher(expected)],
    )
    mocked.post(
        RULES_URL,
        json=ADD_WITH_PROBLEMS,
        status=201,
        match=[
            matchers.json_params_matcher(expected),
            matchers.query_param_matcher({"dry_run": "true"}),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="rxtweet.v2"):
        result = client.add_rules(
            StreamRule("cat has:images", tag="cats with images"), dry_run=True
        )
    assert result.data == [StreamRule("cat has:images", "cats with images", "1745000000000000100")]
    assert len(mocked.calls) == 2
    # tweepy: reset - int(time.time()) + 1, i.e. until one second after the reset.
    [waited] = sleep.calls
    assert 4.5 < waited <= 6.0
    assert mocked.calls[1].request.url == mocked.calls[0].request.url
    assert mocked.calls[1].request.headers["Authorization"] == BEARER["Authorization"]
    assert "Rate limit exceeded" in caplog.text


def test_wait_on_rate_limit_keeps_waiting_and_without_reset_waits_a_minute(
    mocked: responses.RequestsMock,
) -> None:
    client = StreamingClient(TOKEN, wait_on_rate_limit=True)
    sleep = FakeSleep()
    client._sleep = sleep
    past = str(int(time.time()) - 30)
    mocked.get(RULES_URL, json=TOO_MANY, status=429)  # no rate-limit headers at all
    mocked.get(RULES_URL, json=TOO_MANY, status=429, headers={"x-rate-limit-reset": past})
    mocked.get(RULES_URL, json=LOOKUP, status=200)
    assert client.get_rules().data == rules_of(LOOKUP)
    assert len(mocked.calls) == 3
    assert sleep.calls[0] == 60.0
    # A reset already past: no real wait (tweepy sleeps 0, rxtweet the 1 s margin).
    assert 0 <= sleep.calls[1] <= 1.0


def test_without_wait_on_rate_limit_429_raises(
    mocked: responses.RequestsMock, client: StreamingClient
) -> None:
    sleep = FakeSleep()
    client._sleep = sleep
    mocked.get(RULES_URL, json=TOO_MANY, status=429, headers={"x-rate-limit-reset": "1704890700"})
    with pytest.raises(TooManyRequests) as caught:
        client.get_rules()
    assert caught.value.rate_limit is not None
    assert caught.value.rate_limit.reset == 1704890700
    assert sleep.calls == []


def test_wait_on_rate_limit_does_not_retry_other_errors(mocked: responses.RequestsMock) -> None:
    client = StreamingClient(TOKEN, wait_on_rate_limit=True)
    client._sleep = FakeSleep()
    mocked.get(RULES_URL, json=SERVICE_UNAVAILABLE, status=503)
    with pytest.raises(TwitterServerError):
        client.get_rules()
    assert len(mocked.calls) == 1


# --------------------------------------------------------------------------- return_type


def test_return_type_dict(mocked: responses.RequestsMock) -> None:
    client = StreamingClient(TOKEN, return_type=dict)
    mocked.post(RULES_URL, json=ADD_WITH_PROBLEMS, status=201)
    mocked.get(RULES_URL, json=LOOKUP, status=200)
    mocked.post(RULES_URL, json=DESTROY, status=200)
    assert client.add_rules(StreamRule("cat has:images")) == ADD_WITH_PROBLEMS
    assert client.get_rules() == LOOKUP
    assert client.delete_rules("1") == DESTROY


def test_return_type_requests_response(mocked: responses.RequestsMock) -> None:
    client = StreamingClient(TOKEN, return_type=requests.Response)
    mocked.post(RULES_URL, json=CREATE, status=201)
    mocked.get(RULES_URL, json=LOOKUP, status=200)
    added = client.add_rules(StreamRule("meme", tag="funny things"))
    assert isinstance(added, requests.Response)
    assert added.status_code == 201
    assert added.json() == CREATE
    got = client.get_rules()
    assert isinstance(got, requests.Response)
    assert got.json() == LOOKUP


@pytest.mark.parametrize("return_type", [dict, requests.Response])
def test_other_return_types_still_raise(mocked: responses.RequestsMock, return_type: type) -> None:
    client = StreamingClient(TOKEN, return_type=return_type)
    mocked.get(RULES_URL, json=UNAUTHORIZED, status=401)
    with pytest.raises(Unauthorized):
        client.get_rules()


# --------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_rules_against_fake_server() -> None:
    preloaded = {"value": "dog has:images", "tag": "dog pictures"}
    with FakeStreamServer(bearer_token=TOKEN, rules=[preloaded]) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        [(dog_id, _)] = server.rules.items()

        # add: 201, the new rule with its id
        added = client.add_rules([StreamRule("cat has:images", tag="cats with images")])
        assert server.requests[-1].status == 201
        [cat] = added.data
        assert (cat.value, cat.tag) == ("cat has:images", "cats with images")
        assert type(cat.id) is str and cat.id.isdigit()
        assert added.errors == []
        assert added.meta["summary"] == {"created": 1, "not_created": 0, "valid": 1, "invalid": 0}

        # a duplicate (and an invalid rule) come back in errors, nothing raised
        dup = client.add_rules([StreamRule("dog has:images"), StreamRule("   ")])
        assert dup.data is None
        titles = {e["title"]: e for e in dup.errors}
        assert titles["DuplicateRule"]["id"] == dog_id
        assert titles["UnprocessableEntity"]["value"] == "   "
        assert dup.meta["summary"]["not_created"] == 2

        # dry_run: validated, given an id, not applied
        trial = client.add_rules(StreamRule("bird has:videos"), dry_run=True)
        assert server.requests[-1].query == {"dry_run": ["true"]}
        assert [r.value for r in trial.data] == ["bird has:videos"]
        assert trial.data[0].id not in server.rules

        # get: everything, then by ids
        everything = client.get_rules()
        assert {(r.value, r.tag, r.id) for r in everything.data} == {
            ("dog has:images", "dog pictures", dog_id),
            ("cat has:images", "cats with images", cat.id),
        }
        assert client.get_rules(ids=[int(cat.id)]).data == [cat]

        # delete: dry_run first (nothing goes), then for real; an unknown id is an error
        client.delete_rules(cat, dry_run=True)
        assert cat.id in server.rules
        deleted = client.delete_rules([cat, 1])
        assert deleted.data is None
        assert deleted.meta["summary"] == {"deleted": 1, "not_deleted": 1}
        assert deleted.errors[0]["errors"][0]["message"] == "Rule does not exist"
        assert set(server.rules) == {dog_id}

        # every request carried the bearer token
        assert {r.header("authorization") for r in server.requests} == {f"Bearer {TOKEN}"}

        # a wrong token: 401 from the same endpoint, typed, without the token in the message
        with pytest.raises(Unauthorized) as caught:
            StreamingClient("wrong-token", base_url=server.url).get_rules()
        assert "wrong-token" not in str(caught.value)


@pytest.mark.integration
def test_tweepy_streaming_guide_sequence_verbatim() -> None:
    tweepy = rxtweet  # import rxtweet as tweepy
    with FakeStreamServer(bearer_token="Bearer Token here") as server:
        # tweepy's streaming guide, with only base_url added:
        client = tweepy.StreamingClient("Bearer Token here", base_url=server.url)
        client.add_rules(tweepy.StreamRule("Tweepy"))
        response = client.get_rules()
        ids = [rule.id for rule in response.data]
        client.delete_rules(ids)

        assert [r.value for r in response.data] == ["Tweepy"]
        assert server.rules == {}
        assert [(r.method, r.status) for r in server.requests] == [
            ("POST", 201),
            ("GET", 200),
            ("POST", 200),
        ]
        assert client.get_rules().data is None


# --- clear errors for easy mistakes --------------------------------------------------------


def test_add_rules_with_a_plain_string_says_what_to_do(client: StreamingClient) -> None:
    with pytest.raises(TypeError, match=r"StreamRule\('Tweepy'\)"):
        client.add_rules("Tweepy")  # type: ignore[arg-type]


def test_get_rules_with_no_ids_is_refused(client: StreamingClient) -> None:
    with pytest.raises(ValueError, match="ids is empty"):
        client.get_rules(ids=[])


@responses.activate
def test_a_2xx_body_that_is_not_json_is_a_clear_error(client: StreamingClient) -> None:
    responses.get(RULES_URL, body="<html>captive portal</html>", status=200)
    with pytest.raises(rxtweet.RxTweetException, match="not JSON"):
        client.get_rules()


@responses.activate
def test_a_reset_in_the_past_does_not_sleep(client: StreamingClient) -> None:
    slept: list[float] = []
    client.wait_on_rate_limit = True
    client._sleep = slept.append  # type: ignore[method-assign]
    past = str(int(time.time()) - 100)
    responses.get(RULES_URL, status=429, headers={"x-rate-limit-reset": past}, json={})
    responses.get(RULES_URL, status=200, json={"data": [], "meta": {"result_count": 0}})
    assert client.get_rules().data == []
    assert slept == [0.0]
