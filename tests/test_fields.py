"""Stream parameters are checked against X's documented values before connecting (issue 11
item 4): a misspelt field, a bogus expansion, ``backfill_minutes=10`` or
``start_time="yesterday"`` fail at once, with the nearest documented name suggested."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from rxtweet import RxTweetException, StreamingClient
from rxtweet.fields import FIELD_VALUES, InvalidStreamParameter, check_stream_params
from rxtweet.testing import FakeStreamServer
from rxtweet.v2 import stream_params

TOKEN = "AAAAAAAAAAAAAAAAAAAAAFieldsTestToken"


def test_a_misspelt_field_names_the_nearest_documented_one() -> None:
    with pytest.raises(InvalidStreamParameter) as caught:
        stream_params({"tweet_fields": ["lang", "creted_at"]})
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, RxTweetException)
    assert error.parameter == "tweet_fields" and error.value == "creted_at"
    assert "did you mean 'created_at'?" in str(error)
    assert "tweet.fields" in str(error) and "strict=False" in str(error)


@pytest.mark.parametrize(
    ("name", "value", "suggestion"),
    [
        ("expansions", "bogus.expansion", None),
        ("expansions", "author_ids", "author_id"),
        ("user_fields", "usename", "username"),
        ("media_fields", "preview_image", "preview_image_url"),
        ("place_fields", "country_cod", "country_code"),
        ("poll_fields", "option", "options"),
        ("tweet_fields", "lang,,created_at", None),  # an empty name
    ],
)
def test_every_fields_parameter_is_checked(name: str, value: str, suggestion: str | None) -> None:
    with pytest.raises(InvalidStreamParameter) as caught:
        check_stream_params({name: value})
    if suggestion:
        assert f"did you mean {suggestion!r}" in str(caught.value)


def test_documented_values_pass_in_every_form() -> None:
    query = stream_params(
        {
            "tweet_fields": ["lang", "created_at", "note_tweet"],
            "expansions": "author_id,attachments.media_keys",
            "user_fields": ("username", "verified_type"),
            "media_fields": iter(["url", "variants"]),
            "place_fields": "full_name",
            "poll_fields": ["options"],
            "backfill_minutes": 5,
        }
    )
    assert query["tweet.fields"] == "lang,created_at,note_tweet"
    assert query["media.fields"] == "url,variants"
    assert query["backfill_minutes"] == "5"
    assert all(FIELD_VALUES.values())


def test_strict_false_sends_an_unknown_name_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="rxtweet.fields"):
        query = stream_params({"tweet_fields": ["lang", "brand_new_field"]}, strict=False)
    assert query == {"tweet.fields": "lang,brand_new_field"}
    assert "'brand_new_field' is not a documented value" in caplog.text


@pytest.mark.parametrize("bad", [10, -1, 2.5, True, "ten", "6"])
def test_backfill_minutes_is_a_whole_number_from_0_to_5(bad: Any) -> None:
    with pytest.raises(InvalidStreamParameter, match="backfill_minutes must be a whole number"):
        stream_params({"backfill_minutes": bad})
    assert stream_params({"backfill_minutes": 0}) == {"backfill_minutes": "0"}
    assert stream_params({"backfill_minutes": "3"}) == {"backfill_minutes": "3"}


@pytest.mark.parametrize("bad", ["yesterday", "2024-01-10", "2024-01-10T12:00:00", 1704888000])
def test_start_and_end_time_must_be_datetimes_or_rfc3339(bad: Any) -> None:
    with pytest.raises(InvalidStreamParameter, match="RFC 3339"):
        stream_params({"start_time": bad})


def test_times_are_sent_as_x_wants_them_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    query = stream_params(
        {
            "start_time": "2024-01-10T12:00:00+02:00",
            "end_time": datetime(2024, 1, 10, 13, 30, 15, 999, tzinfo=plus_two),
        }
    )
    assert query == {"start_time": "2024-01-10T10:00:00Z", "end_time": "2024-01-10T11:30:15Z"}
    naive = datetime(2024, 1, 10, 12, 0, 0)  # taken as UTC, as before
    assert stream_params({"start_time": naive}) == {"start_time": "2024-01-10T12:00:00Z"}
    with pytest.raises(InvalidStreamParameter, match="start_time must be before end_time"):
        stream_params({"start_time": datetime.now(UTC), "end_time": "2020-01-01T00:00:00Z"})


def test_a_bad_parameter_fails_before_anything_connects() -> None:
    with FakeStreamServer(bearer_token=TOKEN) as server:
        client = StreamingClient(TOKEN, base_url=server.url)
        with pytest.raises(InvalidStreamParameter, match="created_at"):
            client.sample(tweet_fields=["creted_at"])
        with pytest.raises(InvalidStreamParameter):
            client.filter_stream(backfill_minutes=10)
        with pytest.raises(InvalidStreamParameter):
            client.sample_stream(start_time="yesterday")
        stream = client.sample_stream(tweet_fields=["lang", "future_field"], strict=False)
        assert not stream.connected
        assert server.requests == []
