"""A careless user and a hostile server against the public API and the CLI (review of
issues 10 and 11): what was checked and is not what is sent, odd Python inputs to
``sync_rules``, rules answers in the wrong shape, and rules files nested too deep.

Faults on the wire are played by a raw-socket server on 127.0.0.1 (``KeepAliveServer`` of
test_hardening_rules).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from test_hardening_rules import KeepAliveServer, http

from rxtweet import RxTweetException, StreamingClient, StreamRule
from rxtweet.cli import main
from rxtweet.fields import InvalidStreamParameter
from rxtweet.testing import FakeStreamServer
from rxtweet.v2 import RulesSyncError, stream_params

TOKEN = "AAAAAAAAAAAAAAAAAAAAAAttackUserToken%2Bq%3DZyXw"  # a fake token

# --------------------------------------------------------------------------- stream params


def test_field_names_are_sent_as_checked_stripped_and_without_duplicates() -> None:
    # Before: " created_at" passed the check (it strips) and was sent with its space, which
    # X refuses; duplicates were sent twice.
    query = stream_params(
        {"tweet_fields": "lang, created_at, lang", "expansions": ["author_id", " author_id "]}
    )
    assert query == {"tweet.fields": "lang,created_at", "expansions": "author_id"}


def test_whole_numbers_are_sent_in_plain_decimal() -> None:
    # Before: " 3" passed the check and was sent as " 3".
    assert stream_params({"backfill_minutes": " 3", "partition": "2 "}) == {
        "backfill_minutes": "3",
        "partition": "2",
    }


@pytest.mark.parametrize("digit", ["\u00b2", "\u0663"])  # superscript two, Arabic-Indic three
def test_non_ascii_digits_are_refused_as_parameters(digit: str) -> None:
    # Before: "²".isdigit() passed and int("²") raised a bare ValueError; "٣" was sent as is.
    with pytest.raises(InvalidStreamParameter, match="backfill_minutes"):
        stream_params({"backfill_minutes": digit})


def test_the_stream_request_carries_the_normalised_fields() -> None:
    with FakeStreamServer() as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        stream = client.sample_stream(tweet_fields="lang, created_at", backfill_minutes=" 2")
        assert stream.connection.request.params == {
            "tweet.fields": "lang,created_at",
            "backfill_minutes": "2",
        }


# --------------------------------------------------------------------------- sync_rules inputs


@pytest.mark.parametrize(
    "desired",
    [{"data": [{"value": "cat"}]}, {"value": "cat", "tag": "cats"}, b"cat"],
    ids=["x-answer-dict", "one-rule-dict", "bytes"],
)
def test_sync_rules_refuses_a_mapping_before_touching_the_server(desired: Any) -> None:
    # Before: a dict was iterated as its keys: json.load of X's {"data": [...]} became the
    # single rule "data", and every real rule was deleted.
    with KeepAliveServer(lambda *a: http(200, {"data": [{"id": "1", "value": "dog"}]})) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        with pytest.raises(TypeError, match="iterable of StreamRule"):
            client.sync_rules(desired)
        assert server.requests == []


def test_sync_rules_takes_a_generator() -> None:
    with FakeStreamServer() as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        result = client.sync_rules(r for r in ["cat", StreamRule("dog", "pets")])
        assert [(r.value, r.tag) for r in result.added] == [("cat", None), ("dog", "pets")]


# --------------------------------------------------------------------------- malformed answers

MALFORMED = [
    [1, 2],
    {"data": 5},
    {"data": [1]},
    {"data": [{"value": 7, "id": "1"}]},
    {"data": [{"value": "cat", "tag": {"x": 1}, "id": "1"}]},
]


@pytest.mark.parametrize("doc", MALFORMED)
def test_a_rules_answer_of_the_wrong_shape_is_a_typed_error(doc: Any) -> None:
    # Before: TypeError / AttributeError from deep inside sync_rules (not an RxTweetException).
    with KeepAliveServer(lambda *a: http(200, doc)) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        with pytest.raises(RulesSyncError, match=r"not a rules answer|not a JSON object") as caught:
            client.sync_rules(["cat"], dry_run=True)
        assert isinstance(caught.value.cause, RxTweetException)


@pytest.mark.parametrize("doc", MALFORMED)
def test_rules_list_says_the_answer_is_malformed(
    doc: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: "error: AttributeError: 'list' object has no attribute 'get'" and the like.
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    with KeepAliveServer(lambda *a: http(200, doc)) as server:
        code = main(["rules", "list", "--base-url", server.url])
    err = capsys.readouterr().err
    assert code == 1
    assert "not a rules answer" in err or "not a JSON object" in err
    assert "AttributeError" not in err and "TypeError" not in err
    assert TOKEN not in err


def test_a_rules_answer_without_data_means_no_rules() -> None:
    with KeepAliveServer(lambda *a: http(200, {"meta": {"result_count": 0}})) as server:
        client = StreamingClient(TOKEN, base_url=server.url, return_type=dict)
        plan = client.sync_rules(["cat"], dry_run=True)
        assert [r.value for r in plan.added] == ["cat"] and plan.deleted == ()


# --------------------------------------------------------------------------- hostile rules files


def test_a_rules_file_nested_too_deep_is_refused_with_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: RecursionError, exit 1, "error: RecursionError: ...".
    path = tmp_path / "rules.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(["rules", "sync", str(path), "--base-url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 3
    assert "not valid JSON" in err and "RecursionError" not in err


# --------------------------------------------------------------------------- fake server honesty


@pytest.mark.parametrize("value", ["-", "cat - dog"])
def test_the_fake_server_refuses_a_lone_negation_sign(value: str) -> None:
    # Before: "-" was taken for the keyword "-" and accepted, so an offline test passed
    # with a rule X refuses.
    with FakeStreamServer() as server:
        client = StreamingClient(TOKEN, base_url=server.url, return_type=dict)
        doc = client.add_rules(StreamRule(value))
        assert "data" not in doc
        assert doc["errors"][0]["value"] == value
        assert client.get_rules().get("data") is None


@pytest.mark.parametrize("value", ["cat has:images", "#cats -dog", '"a b" -is:reply'])
def test_the_fake_server_still_accepts_negations_next_to_a_clause(value: str) -> None:
    with FakeStreamServer() as server:
        client = StreamingClient(TOKEN, base_url=server.url, return_type=dict)
        assert client.add_rules(StreamRule(value))["data"][0]["value"] == value
