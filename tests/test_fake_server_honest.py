"""FakeStreamServer answers as X does by default (issue 11 item 3), and ``serve``'s hint works.

* the filtered stream sends only messages matching the rules added through the rules
  endpoint, with those rules' real ids and tags in ``matching_rules``;
* no rule -> 409 ``RuleConfigurationIssue``;
* only X's default fields unless ``tweet.fields``/``expansions``/``user.fields`` ask for more;
* generated tweets can follow a clock, so lag is testable;
* ``fields="all"`` / ``match_rules=False`` keep the old, kind behaviour.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import requests
from reactivex import operators as ops
from support import wait_until

from rxtweet import StreamingClient
from rxtweet.cli import main
from rxtweet.cli.serve import token_hint
from rxtweet.testing import Attempt, FakeStreamServer, generate_v2_messages
from rxtweet.testing.server import _compile_rule, _Tweet

pytestmark = pytest.mark.integration

FILTER = "/2/tweets/search/stream"
SAMPLE = "/2/tweets/sample/stream"
RULES = "/2/tweets/search/stream/rules"
TWEPOCH_MS = 1_288_834_974_657

CATS = {"data": {"id": "1", "text": "I love Cats!", "lang": "en", "author_id": "7"}}
DOGS = {"data": {"id": "2", "text": "dogs only", "lang": "en", "author_id": "7"}}
PYTHON = {
    "data": {
        "id": "3",
        "text": "news #Python https://t.co/abc",
        "lang": "en",
        "entities": {
            "hashtags": [{"start": 5, "end": 12, "tag": "Python"}],
            "urls": [{"start": 13, "end": 29, "url": "https://t.co/abc"}],
        },
    }
}
NEKO = {"data": {"id": "4", "text": "猫が好きです", "lang": "ja"}}
ALL = [CATS, DOGS, PYTHON, NEKO]


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    yield
    assert wait_until(
        lambda: not [t for t in threading.enumerate() if t.name.startswith("rxtweet-fake")]
    ), "a FakeStreamServer thread outlived its test"


def add_rules(server: FakeStreamServer, *rules: dict[str, str]) -> list[dict[str, str]]:
    answer = requests.post(server.url + RULES, json={"add": list(rules)}, timeout=2)
    assert answer.status_code == 201, answer.text
    data: list[dict[str, str]] = answer.json().get("data", [])
    return data


def stream_lines(server: FakeStreamServer, path: str, query: str = "") -> list[Any]:
    with requests.get(server.url + path + query, stream=True, timeout=2) as response:
        assert response.status_code == 200, response.text
        return [orjson.loads(line) for line in response.iter_lines() if line]


def read_to_the_end(response: requests.Response) -> tuple[bytes, Exception | None]:
    """The body received, and the error that ended it (``None``: a clean end)."""
    raw = b""
    try:
        for piece in response.iter_content(None):
            raw += piece
    except requests.exceptions.ChunkedEncodingError as exc:
        return raw, exc
    return raw, None


# --------------------------------------------------------------------------- rules


def test_filtered_stream_sends_only_matches_with_the_real_rule_ids_and_tags() -> None:
    with FakeStreamServer(messages=ALL, default=Attempt(ending="close")) as server:
        cats, python, neko = add_rules(
            server,
            {"value": "cats", "tag": "cats"},
            {"value": "#python -dogs"},
            {"value": "猫 lang:ja", "tag": "neko"},
        )
        got = stream_lines(server, FILTER)
        assert [m["data"]["id"] for m in got] == ["1", "3", "4"]
        assert [m["matching_rules"] for m in got] == [
            [{"id": cats["id"], "tag": "cats"}],
            [{"id": python["id"], "tag": None}],
            [{"id": neko["id"], "tag": "neko"}],
        ]
        assert (server.sent, server.unmatched) == (3, 1)


def test_generator_rule_tags_are_replaced_by_the_matching_rules() -> None:
    messages = list(itertools.islice(generate_v2_messages(seed=3, matching_rules=True), 300))
    with FakeStreamServer(messages=messages, default=Attempt(ending="close")) as server:
        [rule] = add_rules(server, {"value": "lang:ja OR lang:ko", "tag": "asia"})
        got = stream_lines(server, FILTER, "?tweet.fields=lang")
    expected = [m["data"]["id"] for m in messages if m["data"]["lang"] in ("ja", "ko")]
    assert expected and [m["data"]["id"] for m in got] == expected
    assert {m["data"]["lang"] for m in got} <= {"ja", "ko"}
    assert all(m["matching_rules"] == [{"id": rule["id"], "tag": "asia"}] for m in got)


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ("cats", {"1"}),  # case-insensitive whole word
        ("cat", set()),  # ... not a prefix
        ('"love cats"', {"1"}),
        ('"cats love"', set()),
        ("love OR dogs", {"1", "2"}),
        ("love dogs", set()),  # a space is AND
        ("(cats OR dogs) -love", {"2"}),
        ("lang:en -has:links", {"1", "2"}),
        ("has:hashtags OR has:mentions", {"3"}),
        ("news has:links", {"3"}),
        ("#python", {"3"}),
        ("python", {"3"}),  # a keyword matches a hashtag's word, as X's tokenizer does
        ("猫", {"4"}),  # unspaced scripts: substring
        ("has:images OR has:media", set()),
        ("from:someone OR cats", {"1"}),  # unsupported operator: never matches
    ],
)
def test_rule_subset(rule: str, matches: set[str]) -> None:
    test, problems, _ = _compile_rule(rule)
    assert problems == [] and test is not None
    assert {m["data"]["id"] for m in ALL if test(_Tweet.of(m))} == matches


def test_has_images_needs_a_photo_in_includes_media() -> None:
    photo = {
        "data": {"id": "9", "text": "x", "attachments": {"media_keys": ["3_1"]}},
        "includes": {"media": [{"media_key": "3_1", "type": "photo"}]},
    }
    video = {**photo, "includes": {"media": [{"media_key": "3_1", "type": "video"}]}}
    test, _, _ = _compile_rule("x has:images")
    assert test is not None
    assert (test(_Tweet.of(photo)), test(_Tweet.of(video))) == (True, False)


def test_invalid_rules_are_rejected_and_unsupported_ones_accepted_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeStreamServer(messages=ALL, default=Attempt(ending="close")) as server:
        with caplog.at_level(logging.WARNING, logger="rxtweet.testing"):
            answer = requests.post(
                server.url + RULES,
                json={"add": [{"value": "(cats"}, {"value": "-cats"}, {"value": "from:xdev"}]},
                timeout=2,
            ).json()
        assert answer["meta"]["summary"] == {
            "created": 1,
            "not_created": 2,
            "valid": 1,
            "invalid": 2,
        }
        assert [e["value"] for e in answer["errors"]] == ["(cats", "-cats"]
        assert {e["type"] for e in answer["errors"]} == {
            "https://api.twitter.com/2/problems/invalid-rules"
        }
        assert "non-negation" in answer["errors"][1]["details"][0]
        assert "from:xdev" in caplog.text and "never match" in caplog.text
        assert stream_lines(server, FILTER) == []  # from:xdev matches nothing
        assert server.unmatched == len(ALL)


def test_rule_changes_apply_to_an_open_connection() -> None:
    with FakeStreamServer(keepalive_interval=0.05, rules=[{"value": "cats"}]) as server:
        with requests.get(server.url + FILTER, stream=True, timeout=2) as response:
            lines = response.iter_lines()
            server.feed(DOGS, CATS)
            assert orjson.loads(next(line for line in lines if line))["data"]["id"] == "1"
            add_rules(server, {"value": "dogs", "tag": "d"})
            server.feed(DOGS)
            second = orjson.loads(next(line for line in lines if line))
        assert second["data"]["id"] == "2"
        assert second["matching_rules"][0]["tag"] == "d"


def test_a_cut_sends_half_of_the_next_match_and_resends_it_whole() -> None:
    with FakeStreamServer(messages=ALL, rules=[{"value": "cats OR 猫"}]) as server:
        server.script(Attempt(messages=1, ending="cut"), Attempt(ending="close"))
        with requests.get(server.url + FILTER, stream=True, timeout=2) as response:
            raw, error = read_to_the_end(response)
        assert isinstance(error, requests.exceptions.ChunkedEncodingError)
        first, partial = raw.split(b"\r\n")
        assert orjson.loads(first)["data"]["id"] == "1"
        assert partial and b"\xe7\x8c\xab" not in partial[:8]  # the half of NEKO's line
        got = stream_lines(server, FILTER)
        assert [m["data"]["id"] for m in got] == ["4"]
        assert orjson.dumps(got[0]).startswith(partial)
        assert (server.sent, server.unmatched) == (2, 2)


# --------------------------------------------------------------------------- 409


def test_no_rules_answers_409_with_x_problem_document() -> None:
    with FakeStreamServer(messages=ALL) as server:
        server.script(Attempt(ending="close"))
        answer = requests.get(server.url + FILTER, timeout=2)
        assert answer.status_code == 409
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json() == {
            "title": "ConnectionException",
            "detail": "You must define rules using the POST /2/tweets/search/stream/rules "
            "endpoint before connecting to filtered stream.",
            "connection_issue": "RuleConfigurationIssue",
            "type": "https://api.twitter.com/2/problems/streaming-connection",
        }
        assert server.scripted == (Attempt(ending="close"),)  # not consumed
        assert server.sent == 0
        add_rules(server, {"value": "cats"})
        assert [m["data"]["id"] for m in stream_lines(server, FILTER)] == ["1"]


def test_a_scripted_error_is_served_even_without_rules() -> None:
    with FakeStreamServer(messages=ALL) as server:
        server.script(Attempt(status=503))
        assert requests.get(server.url + FILTER, timeout=2).status_code == 503
        assert requests.get(server.url + FILTER, timeout=2).status_code == 409


def test_client_gets_409_as_an_http_error_without_rules() -> None:
    with FakeStreamServer(messages=ALL) as server:
        client = StreamingClient("t", base_url=server.url)
        with pytest.raises(Exception, match="409") as caught:
            client.filter_stream().tweets.pipe(ops.to_list()).run()
        assert "RuleConfigurationIssue" in str(caught.value)


# --------------------------------------------------------------------------- fields


def test_only_default_fields_unless_asked() -> None:
    messages = list(itertools.islice(generate_v2_messages(seed=8, matching_rules=True), 20))
    with FakeStreamServer(messages=messages, default=Attempt(ending="close")) as server:
        plain = stream_lines(server, SAMPLE)
    assert len(plain) == 20
    for message in plain:
        assert set(message) == {"data"}  # no includes without expansions, no matching_rules
        assert set(message["data"]) == {"id", "text", "edit_history_tweet_ids"}


def test_requested_fields_and_expansions_are_sent() -> None:
    messages = list(itertools.islice(generate_v2_messages(seed=8), 40))
    query = "?tweet.fields=lang,created_at&expansions=author_id&user.fields=created_at"
    with FakeStreamServer(messages=messages, default=Attempt(ending="close")) as server:
        got = stream_lines(server, SAMPLE, query)
    assert len(got) == 40
    for sent, message in zip(got, messages, strict=True):
        data = message["data"]
        assert sent["data"] == {
            "id": data["id"],
            "text": data["text"],
            "edit_history_tweet_ids": data["edit_history_tweet_ids"],
            "lang": data["lang"],
            "created_at": data["created_at"],
            "author_id": data["author_id"],  # the expansion brings its field
        }
        [author] = sent["includes"]["users"]  # the retweeted/replied-to user was not asked
        assert set(author) == {"id", "name", "username", "created_at"}
        assert author["id"] == data["author_id"]
        assert "tweets" not in sent["includes"]


def test_referenced_tweets_expansion_includes_the_tweets() -> None:
    messages = list(itertools.islice(generate_v2_messages(seed=8), 40))
    query = "?expansions=referenced_tweets.id,referenced_tweets.id.author_id"
    with FakeStreamServer(messages=messages, default=Attempt(ending="close")) as server:
        got = stream_lines(server, SAMPLE, query)
    retweets = [m for m in got if "tweets" in m.get("includes", {})]
    assert retweets
    for message in retweets:
        [included] = message["includes"]["tweets"]
        assert set(included) <= {"id", "text", "edit_history_tweet_ids", "author_id"}
        assert [u["id"] for u in message["includes"]["users"]] == [included["author_id"]]
        assert "referenced_tweets" in message["data"]


def test_the_client_sees_lang_only_when_it_asks_for_it() -> None:
    messages = list(itertools.islice(generate_v2_messages(seed=2), 5))
    got: dict[str, list[Any]] = {}
    for name, fields in (("bare", None), ("asked", ["lang"])):
        with FakeStreamServer(messages=messages) as server:
            client = StreamingClient("t", base_url=server.url)
            stream = client.sample_stream(tweet_fields=fields)
            got[name] = stream.tweets.pipe(ops.take(5), ops.to_list()).run()
    assert [t.lang for t in got["bare"]] == [None] * 5
    assert [t.lang for t in got["asked"]] == [m["data"]["lang"] for m in messages]


def test_old_behaviour_is_explicit() -> None:
    messages = list(itertools.islice(generate_v2_messages(seed=8, matching_rules=True), 5))
    with FakeStreamServer(
        messages=messages, fields="all", match_rules=False, default=Attempt(ending="close")
    ) as server:
        got = stream_lines(server, FILTER)  # no rules, no 409
    assert got == messages
    with pytest.raises(ValueError, match="fields must be one of"):
        FakeStreamServer(fields="everything")  # type: ignore[arg-type]


def test_v1_and_unparsable_lines_are_sent_verbatim() -> None:
    status = b'{"id": 1, "id_str": "1", "text": "hi", "lang": "en"}'
    lines = [b'{"data": {"id": "1", "text": "x"}}', b"{not json", status]
    with FakeStreamServer(messages=lines, default=Attempt(ending="close")) as server:
        with requests.get(server.url + SAMPLE, stream=True, timeout=2) as response:
            v2 = [line for line in response.iter_lines() if line]
        server.feed(status)
        with requests.get(server.url + "/1.1/statuses/sample.json", timeout=2) as response:
            v1 = [line for line in response.iter_lines() if line]
    assert v2 == lines  # unchanged messages keep their exact bytes
    assert v1 == [status]


# --------------------------------------------------------------------------- clock


def test_generated_tweets_follow_the_clock() -> None:
    ticks = iter([1_800_000_000.0, 1_800_000_000.0, 1_800_000_001.25, 1_799_999_999.0])
    messages = list(itertools.islice(generate_v2_messages(seed=1, clock=lambda: next(ticks)), 4))
    ids = [int(m["data"]["id"]) for m in messages]
    assert ids == sorted(set(ids))  # strictly increasing, even when the clock goes back
    ms = [(i >> 22) + TWEPOCH_MS for i in ids]
    assert ms == [1_800_000_000_000, 1_800_000_000_000, 1_800_000_001_250, 1_800_000_001_250]
    assert [i & 0xFFF for i in ids] == [0, 1, 0, 1]
    assert [m["data"]["created_at"] for m in messages] == [
        "2027-01-15T08:00:00.000Z",
        "2027-01-15T08:00:00.000Z",
        "2027-01-15T08:00:01.000Z",
        "2027-01-15T08:00:01.000Z",
    ]
    # Same seed, same text: only the times moved.
    plain = list(itertools.islice(generate_v2_messages(seed=1), 4))
    assert [m["data"]["text"] for m in messages] == [m["data"]["text"] for m in plain]


def test_lag_is_measurable_through_the_server() -> None:
    lag = 3.0
    source = generate_v2_messages(seed=4, clock=lambda: time.time() - lag)
    with FakeStreamServer(messages=source, default=Attempt(rate=50)) as server:
        client = StreamingClient("t", base_url=server.url)
        tweets = client.sample_stream(tweet_fields=["created_at"])
        received = tweets.tweets.pipe(
            ops.take(10), ops.map(lambda t: (t, time.time())), ops.to_list()
        ).run()
    lags = [now - ((int(t.id) >> 22) + TWEPOCH_MS) / 1000 for t, now in received]
    assert all(lag - 0.05 < x < lag + 1.0 for x in lags), lags
    created = [t.created_at for t, _ in received]
    assert all(isinstance(c, datetime) and c.tzinfo is not None for c in created)
    assert max(created) - min(created) < (datetime.now(UTC) - min(created))
    times = [(int(t.id) >> 22) for t, _ in received]
    assert len(set(times)) == len(times)  # 50/s: every tweet has its own millisecond


# --------------------------------------------------------------------------- serve hint


def test_token_hint() -> None:
    assert token_hint(None) == "any"
    assert token_hint("tok") == "tok"
    assert token_hint("my tok") == "'my tok'"
    real = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI"
    assert real not in token_hint(real)


def test_serve_require_token_hint_works(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tweets.jsonl"
    lines = [orjson.dumps(m) for m in itertools.islice(generate_v2_messages(seed=1), 3)]
    source.write_bytes(b"\n".join(lines) + b"\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxtweet", "serve", str(source), "--require-token", "tok"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = proc.stdout.readline().strip()
        hint = ""
        while "try:" not in hint:
            hint = proc.stderr.readline()
            assert hint, "serve ended without a hint"
        match = re.search(r"X_BEARER_TOKEN=(\S+) rxtweet (sample --base-url \S+)", hint)
        assert match, hint
        assert match.group(2) == f"sample --base-url {url}"
        monkeypatch.setenv("X_BEARER_TOKEN", match.group(1))
        assert main([*match.group(2).split(), "--limit", "2", "-q"]) == 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    out = capsys.readouterr().out.splitlines()
    assert [orjson.loads(line)["data"]["id"] for line in out] == [
        orjson.loads(line)["data"]["id"] for line in lines[:2]
    ]
