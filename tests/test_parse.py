"""rxtweet.parse: decode, to_stream_response, to_response and the parse_lines operator."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st

from rxtweet.events import KeepAlive, MalformedMessage
from rxtweet.models import Media, Place, Response, StreamResponse, StreamRule, Tweet, User
from rxtweet.parse import (
    REASON_CONVERT,
    REASON_EMPTY,
    REASON_NOT_JSON,
    REASON_NOT_OBJECT,
    REASON_NOT_UTF8,
    REASON_TRAILING,
    REASON_TRUNCATED,
    Parsed,
    ParseStats,
    decode,
    parse_lines,
    parse_v2,
    to_response,
    to_stream_response,
)

DATA = Path(__file__).parent / "data"
TWARC_LINES = (DATA / "twarc-csv_streaming_output.jsonl").read_bytes().split(b"\n")[:-1]
WITH_ERROR_LINES = (DATA / "twarc-csv_streaming_output_with_error.jsonl").read_bytes().split(b"\n")
DART_LINES = (DATA / "twitter-dart_sample_stream.jsonl").read_bytes().split(b"\n")[:-1]
TRUNCATED = WITH_ERROR_LINES[7]  # b'{"data": {"author_id": "1021159080151404544"'
RULE_ID = 1377649934414049282  # matching_rules[].id, a JSON number > 2**53 in the real data


def test_fixture_files_are_what_we_think() -> None:
    assert len(TWARC_LINES) == 9
    assert len(WITH_ERROR_LINES) == 8
    assert TRUNCATED == b'{"data": {"author_id": "1021159080151404544"'
    assert len(DART_LINES) == 70


def collect(source: reactivex.Observable[Any]) -> tuple[list[Any], list[Exception], list[bool]]:
    items: list[Any] = []
    errors: list[Exception] = []
    completed: list[bool] = []
    source.subscribe(items.append, errors.append, lambda: completed.append(True))
    return items, errors, completed


# --- decode --------------------------------------------------------------------------------


@pytest.mark.parametrize("line", TWARC_LINES + WITH_ERROR_LINES[:7] + DART_LINES)
def test_decode_real_lines(line: bytes) -> None:
    assert decode(line) == json.loads(line)


def test_decode_keeps_the_big_rule_id_exact() -> None:
    doc = decode(TWARC_LINES[0])
    assert isinstance(doc, dict)
    rule = doc["matching_rules"][0]
    assert rule == {"id": RULE_ID, "tag": None}
    assert type(rule["id"]) is int
    assert rule["id"] > 2**53


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff\xfe{}", REASON_NOT_UTF8),
        (b'{"text": "caf\xe9"}', REASON_NOT_UTF8),  # Latin-1 inside a string
        (b'{"text": "\xed\xa0\x80"}', REASON_NOT_UTF8),  # an encoded surrogate
        (b"not json", REASON_NOT_JSON),
        (b"<html><body>502 Bad Gateway</body></html>", REASON_NOT_JSON),
        (b'{"a": NaN}', REASON_NOT_JSON),
        (b'{"a": 1,}', REASON_NOT_JSON),
        (b"\xef\xbb\xbf{}", REASON_NOT_JSON),  # a UTF-8 BOM
        (b"[1,2]", REASON_NOT_OBJECT),
        (b'"str"', REASON_NOT_OBJECT),
        (b"null", REASON_NOT_OBJECT),
        (b"42", REASON_NOT_OBJECT),
        (TRUNCATED, REASON_TRUNCATED),
        (b'{"data": {"text": "cut in the midd', REASON_TRUNCATED),
        (b'{"data": {"id": "1", ', REASON_TRUNCATED),
        (b"{", REASON_TRUNCATED),
        (TWARC_LINES[0][:1000], REASON_TRUNCATED),
        (b'{"a": tru', REASON_TRUNCATED),  # cut inside a literal ...
        (b'{"a": -', REASON_TRUNCATED),  # ... a number ...
        (b'{"a": 1.5e+', REASON_TRUNCATED),
        (b'{"text": "x\\ud83', REASON_TRUNCATED),  # ... an escape
        (b'{"a": 1.x}', REASON_NOT_JSON),
        (b'{"a": "\\x"}', REASON_NOT_JSON),
        (b'{"a": 1}\xe6', REASON_NOT_UTF8),
        (b'{"a": 1}{"b": 2}', REASON_TRAILING),
        (b"", REASON_EMPTY),
        (b"\r", REASON_EMPTY),
    ],
)
def test_decode_reports_why(line: bytes, reason: str) -> None:
    result = decode(line)
    assert isinstance(result, MalformedMessage)
    assert result.reason == reason
    assert result.raw is line


def test_a_line_cut_inside_a_character_is_truncated() -> None:
    line = DART_LINES[1]  # Japanese text: 3-byte characters
    assert "吟味".encode() in line
    cut = line[: line.index("吟味".encode()) + 4]  # 1 byte into the second character
    assert isinstance(decode(cut), MalformedMessage)
    assert decode(cut).reason == REASON_TRUNCATED  # type: ignore[union-attr]


@pytest.mark.parametrize("line", [DART_LINES[1], TWARC_LINES[3]], ids=["utf8", "escapes"])
def test_every_prefix_of_a_real_line_is_truncated(line: bytes) -> None:
    # Japanese in raw UTF-8; emoji as \\ud83d\\ude0a escapes: cuts land in every kind of token.
    reasons = {decode(line[:cut]).reason for cut in range(1, len(line))}  # type: ignore[union-attr]
    assert reasons == {REASON_TRUNCATED}


def test_decode_ignores_surrounding_whitespace() -> None:
    assert decode(b'{"a": 1}\r') == {"a": 1}
    # the real twitter4j v1.1 capture keeps a trailing space after this message
    assert decode(b'{"limit":{"track":121564}} ') == {"limit": {"track": 121564}}
    assert decode(b' \t{"a": 1}\r\n') == {"a": 1}


@pytest.mark.parametrize(
    "number",
    [
        2**64,  # the first integer orjson turns into a float
        2**64 - 1,
        -(2**63) - 1,
        -(2**63),
        10**30,
        -(10**40),
        2**200 + 1,
    ],
)
def test_decode_keeps_integers_beyond_64_bits_exact(number: int) -> None:
    line = b'{"data": {"id": "1", "text": "x"}, "n": %d, "deep": [{"m": %d}]}' % (number, number)
    doc = decode(line)
    assert isinstance(doc, dict)
    assert doc["n"] == number
    assert type(doc["n"]) is int
    assert doc["deep"][0]["m"] == number


def test_exact_ints_off_is_orjsons_float() -> None:
    doc = decode(b'{"n": %d}' % 2**64, exact_ints=False)
    assert isinstance(doc, dict)
    assert type(doc["n"]) is float


def test_long_digit_runs_in_strings_decode_the_same() -> None:
    # 20+ digit runs in strings (and "-" + digits in URLs) take the exact path: same result.
    line = b'{"text": "call 123456789012345678901234", "url": "https://x.y/a-1377650090978992134"}'
    assert decode(line) == json.loads(line)


def test_decode_accepts_a_lone_surrogate_escape() -> None:
    # orjson rejects it; truncated tweet texts are known to carry half an emoji like this.
    assert decode(b'{"text": "cut \\ud83d"}') == {"text": "cut \ud83d"}


def test_decode_survives_absurd_nesting() -> None:
    assert isinstance(decode(b"[" * 100_000), MalformedMessage)
    assert isinstance(decode(b'{"a":' * 50_000 + b"1" + b"}" * 50_000), MalformedMessage)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_decode_never_raises(line: bytes) -> None:
    result = decode(line)
    assert isinstance(result, dict | MalformedMessage)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.binary(max_size=40).flatmap(
        lambda junk: st.sampled_from([junk, b"{" + junk, b'{"a": "' + junk, junk + b"}"])
    )
)
def test_decode_never_raises_on_near_json(line: bytes) -> None:
    assert isinstance(decode(line), dict | MalformedMessage)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.dictionaries(st.text(max_size=8), _json_values, min_size=1, max_size=6), st.data())
def test_any_cut_object_is_truncated(obj: dict[str, Any], data: st.DataObject) -> None:
    line = json.dumps(obj, ensure_ascii=data.draw(st.booleans())).encode()
    cut = data.draw(st.integers(1, len(line) - 1))
    result = decode(line[:cut])
    assert isinstance(result, MalformedMessage)
    assert result.reason == REASON_TRUNCATED


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=6))
def test_decode_round_trips_any_object(obj: dict[str, Any]) -> None:
    line = json.dumps(obj).encode()
    assert decode(line) == obj


# --- to_stream_response --------------------------------------------------------------------


def _response(line: bytes) -> StreamResponse:
    doc = decode(line)
    assert isinstance(doc, dict)
    return to_stream_response(doc)


def test_stream_response_of_a_tweet_message() -> None:
    response = _response(TWARC_LINES[0])
    assert type(response) is StreamResponse
    tweet, includes, errors, matching_rules = response  # tweepy's tuple order
    assert isinstance(tweet, Tweet)
    assert tweet.id == 1377650090978992134
    assert errors == []
    # includes: tweepy's shape, a plain dict of model lists
    assert type(includes) is dict
    assert set(includes) == {"media", "users", "places", "tweets"}
    assert [type(m) for m in includes["media"]] == [Media]
    assert [u.username for u in includes["users"]] == ["blackheart_265", "Manie_DS"]
    assert all(type(u) is User for u in includes["users"])
    assert [type(p) for p in includes["places"]] == [Place]
    assert [t.id for t in includes["tweets"]] == [1377640162566496258]
    assert all(type(t) is Tweet for t in includes["tweets"])
    # the big numeric rule id, exact, as tweepy's StreamRule id type (str); tag null -> None
    assert matching_rules == [StreamRule(value=None, tag=None, id="1377649934414049282")]
    assert matching_rules[0].id == str(RULE_ID)
    assert matching_rules[0].tag is None
    assert type(matching_rules[0]) is StreamRule


def test_stream_response_of_a_system_message() -> None:
    response = _response(TWARC_LINES[4])
    assert response.data is None
    assert response.includes == {}
    assert response.matching_rules == []
    assert len(response.errors) == 1
    error = response.errors[0]
    assert error["title"] == "operational-disconnect"
    assert error["disconnect_type"] == "OperationalDisconnect"
    assert error["type"] == "https://api.twitter.com/2/problems/operational-disconnect"


def test_stream_response_of_a_sample_message() -> None:
    response = _response(DART_LINES[0])
    assert response.data is not None
    assert response.data.id == 1528053368912060423
    assert response.data.text.startswith("RT @Gowtham28368713")
    assert (response.includes, response.errors, response.matching_rules) == ({}, [], [])


def test_stream_response_keeps_other_includes_raw_and_rule_variants() -> None:
    topics = [{"id": "1", "name": "Cats"}]
    doc: dict[str, Any] = {
        "data": {"id": "1", "text": "x"},
        "includes": {"users": [], "topics": topics, "polls": [{"id": "9", "options": []}]},
        "errors": [
            {
                "value": "2",
                "detail": "Could not find tweet with referenced_tweets.id: [2].",
                "title": "Not Found Error",
                "resource_type": "tweet",
                "parameter": "referenced_tweets.id",
                "resource_id": "2",
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }
        ],
        "matching_rules": [
            {"id": "1745000000000000100", "tag": "cats with images"},
            {"id": "1745000000000000101"},  # no tag at all (tweepy raises KeyError here)
            {"id": "7", "tag": "e", "embedding_similarity": 0.9},
        ],
    }
    response = to_stream_response(doc)
    assert response.includes["topics"] is topics
    assert response.includes["users"] == []
    assert response.includes["polls"][0].id == "9"
    assert response.errors[0]["title"] == "Not Found Error"
    assert response.matching_rules == [
        StreamRule(None, "cats with images", "1745000000000000100"),
        StreamRule(None, None, "1745000000000000101"),
        StreamRule(None, "e", "7"),
    ]
    assert doc["includes"]["users"] == []  # the input is not modified
    assert doc["includes"]["polls"] == [{"id": "9", "options": []}]


@pytest.mark.parametrize(
    "doc",
    [{"data": [{"id": "1", "text": "x"}]}, {"data": "x"}, {"includes": []}, {"matching_rules": 5}],
)
def test_stream_response_rejects_other_shapes(doc: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        to_stream_response(doc)


# --- to_response ----------------------------------------------------------------------------


def test_to_response_of_a_rules_lookup() -> None:
    doc = json.loads((DATA / "twitter-dart_lookup_filtering_rules.json").read_bytes())
    response = to_response(doc, StreamRule)
    assert type(response) is Response
    assert response.data == [
        StreamRule("dog has:images", "dog pictures", "1165037377523306497"),
        StreamRule("cat has:images -grumpy", None, "1165037377523306498"),
    ]
    assert response.includes == {}
    assert response.errors == []
    assert response.meta == {"sent": "2019-08-29T01:12:10.729Z"}


def test_to_response_with_models_and_defaults() -> None:
    doc = {
        "data": [{"id": "1", "text": "a"}, {"id": "2", "text": "b"}],
        "includes": {"users": [{"id": "3", "name": "n", "username": "u"}]},
    }
    response = to_response(doc, Tweet)
    assert [t.id for t in response.data] == [1, 2]
    assert response.includes["users"][0].id == 3
    assert to_response({"data": {"id": "1", "text": "a"}}, Tweet).data.id == 1
    assert to_response({"meta": {"result_count": 0}}) == Response(None, {}, [], {"result_count": 0})


# --- the operator ----------------------------------------------------------------------------


def test_parse_v2_over_the_real_file() -> None:
    stats = ParseStats()
    items, errors, completed = collect(reactivex.from_iterable(TWARC_LINES).pipe(parse_v2(stats)))
    assert errors == []
    assert completed == [True]
    assert all(type(item) is StreamResponse for item in items)
    assert [item.data is None for item in items] == [False] * 4 + [True] + [False] * 4
    assert [item.data.id for item in items if item.data][-2:] == [1377650529766154240] * 2
    assert (stats.messages, stats.keep_alives, stats.malformed) == (9, 0, 0)


def test_bad_lines_are_logged_counted_emitted_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lines = [
        TWARC_LINES[0],
        b"",  # keep-alive
        b"\xff\xfe{}",
        b"[1,2]",
        b"\r",  # keep-alive (a \r\n split on \n)
        b'"str"',
        b"not json",
        TRUNCATED,
        b'{"data": [1, 2]}',  # JSON object, not a stream message
        TWARC_LINES[4],
        TWARC_LINES[1],
    ]
    stats = ParseStats()
    with caplog.at_level(logging.WARNING, logger="rxtweet.parse"):
        items, errors, completed = collect(reactivex.from_iterable(lines).pipe(parse_v2(stats)))
    assert errors == []
    assert completed == [True]
    kinds = [type(item).__name__ for item in items]
    assert kinds == [
        "StreamResponse",
        "KeepAlive",
        "MalformedMessage",
        "MalformedMessage",
        "KeepAlive",
        "MalformedMessage",
        "MalformedMessage",
        "MalformedMessage",
        "MalformedMessage",
        "StreamResponse",
        "StreamResponse",
    ]
    bad = [item for item in items if isinstance(item, MalformedMessage)]
    assert [m.reason for m in bad] == [
        REASON_NOT_UTF8,
        REASON_NOT_OBJECT,
        REASON_NOT_OBJECT,
        REASON_NOT_JSON,
        REASON_TRUNCATED,
        REASON_CONVERT,
    ]
    assert [m.raw for m in bad] == [lines[2], lines[3], lines[5], lines[6], lines[7], lines[8]]
    assert items[1] == KeepAlive()
    assert items[-1].data is not None
    assert items[-1].data.id == 1377650093109743620
    assert stats.messages == 3
    assert stats.keep_alives == 2
    assert stats.malformed == 6
    assert stats.by_reason == {
        REASON_NOT_UTF8: 1,
        REASON_NOT_OBJECT: 2,
        REASON_NOT_JSON: 1,
        REASON_TRUNCATED: 1,
        REASON_CONVERT: 1,
    }
    assert stats.snapshot() == {
        "messages": 3,
        "keep_alives": 2,
        "malformed": 6,
        "by_reason": stats.by_reason,
        "too_long": 0,
        "overflowed": 0,
    }
    assert "malformed=6" in repr(stats)
    records = [r for r in caplog.records if r.name == "rxtweet.parse"]
    assert len(records) == 6
    assert all(r.levelno == logging.WARNING for r in records)
    assert REASON_TRUNCATED in records[4].getMessage()
    assert "1021159080151404544" in records[4].getMessage()  # a preview of the raw line
    assert "TypeError: 'data' is list, not an object" in records[5].getMessage()


def test_the_with_error_file(caplog: pytest.LogCaptureFixture) -> None:
    stats = ParseStats()
    with caplog.at_level(logging.WARNING, logger="rxtweet.parse"):
        items, errors, completed = collect(
            reactivex.from_iterable(WITH_ERROR_LINES).pipe(parse_v2(stats))
        )
    assert (errors, completed) == ([], [True])
    assert [type(i) for i in items] == [StreamResponse] * 7 + [MalformedMessage]
    assert items[-1] == MalformedMessage(TRUNCATED, REASON_TRUNCATED)
    assert stats.by_reason == {REASON_TRUNCATED: 1}
    assert "truncated JSON" in caplog.text


def test_the_log_shows_only_a_preview(caplog: pytest.LogCaptureFixture) -> None:
    huge = b"<" + b"x" * 3_000_000
    with caplog.at_level(logging.WARNING, logger="rxtweet.parse"):
        items, _, _ = collect(reactivex.from_iterable([huge]).pipe(parse_v2()))
    assert items[0].raw is huge
    (record,) = caplog.records
    message = record.getMessage()
    assert "3000001 bytes" in message
    assert len(message) < 300


def test_keep_raw_pairs_each_message_with_its_line() -> None:
    lines = [DART_LINES[0], b"", b"oops", DART_LINES[1]]
    items, _, _ = collect(
        reactivex.from_iterable(lines).pipe(parse_lines(to_stream_response, keep_raw=True))
    )
    assert [type(i) for i in items] == [Parsed, KeepAlive, MalformedMessage, Parsed]
    first = items[0]
    assert first.raw is DART_LINES[0]
    assert type(first.value) is StreamResponse
    assert first.value.data is not None
    assert first.value.data.id == 1528053368912060423
    assert first == Parsed(to_stream_response(json.loads(DART_LINES[0])), DART_LINES[0])
    assert "bytes>" in repr(first)


def test_parse_lines_with_another_convert() -> None:
    # The v1.1 client reuses the same operator with its own dict -> model step.
    def convert(doc: dict[str, Any]) -> str:
        if "delete" in doc:
            return "delete"
        return doc["text"]  # type: ignore[no-any-return]

    lines = [b'{"text": "hello"}', b'{"delete": {"status": {"id": 1}}}', b'{"other": 1}']
    stats = ParseStats()
    items, errors, _ = collect(reactivex.from_iterable(lines).pipe(parse_lines(convert, stats)))
    assert errors == []
    assert items[:2] == ["hello", "delete"]
    assert items[2] == MalformedMessage(lines[2], REASON_CONVERT)
    assert (stats.messages, stats.malformed) == (2, 1)


def test_the_operator_keeps_big_integers_exact() -> None:
    lines = [b'{"n": %d}' % 2**64, b'{"n": %d}' % -(2**63 + 1), b'{"n": 1}']
    items, _, _ = collect(reactivex.from_iterable(lines).pipe(parse_lines(lambda d: d["n"])))
    assert items == [2**64, -(2**63 + 1), 1]
    assert [type(i) for i in items] == [int, int, int]
    fast = parse_lines(lambda d: d["n"], exact_ints=False)
    items, _, _ = collect(reactivex.from_iterable(lines).pipe(fast))
    assert type(items[0]) is float


def test_source_errors_pass_through() -> None:
    boom = ConnectionError("reset")
    source = reactivex.concat(reactivex.of(DART_LINES[0]), reactivex.throw(boom))
    items, errors, completed = collect(source.pipe(parse_v2()))
    assert len(items) == 1
    assert errors == [boom]
    assert completed == []


def test_an_exception_downstream_is_not_a_malformed_message() -> None:
    stats = ParseStats()
    seen: list[Any] = []
    errors: list[Exception] = []

    def on_next(item: Any) -> None:
        seen.append(item)
        raise RuntimeError("bug in user code")

    with contextlib.suppress(RuntimeError):  # raised here, or delivered to on_error
        reactivex.from_iterable(DART_LINES[:3]).pipe(parse_v2(stats)).subscribe(
            on_next, errors.append
        )
    assert len(seen) == 1
    assert stats.malformed == 0
    assert stats.messages == 1


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.binary(max_size=60) | st.sampled_from([*TWARC_LINES, b""]), max_size=12))
def test_the_stream_never_errors_because_of_input(lines: list[bytes]) -> None:
    stats = ParseStats()
    items, errors, completed = collect(reactivex.from_iterable(lines).pipe(parse_v2(stats)))
    assert errors == []
    assert completed == [True]
    assert len(items) == len(lines)
    assert stats.messages + stats.keep_alives + stats.malformed == len(lines)


@pytest.mark.parametrize("exact", [False, True])
def test_whitespace_lines_are_keep_alives_and_null_is_not_an_object(exact: bool) -> None:
    # Whitespace only is a keep-alive (X's is an empty line), never "malformed"; JSON null is
    # a value, but not an object.
    lines = [b"", b" ", b"\t", b"\x0b\x0c", b" \r", b"null", b" null ", b"[]", b'{"a":1}']
    stats = ParseStats()
    items, errors, _ = collect(
        reactivex.from_iterable(lines).pipe(parse_lines(dict, stats, exact_ints=exact))
    )
    assert errors == []
    assert items[:5] == [KeepAlive()] * 5
    assert [(type(i), getattr(i, "reason", None)) for i in items[5:8]] == [
        (MalformedMessage, REASON_NOT_OBJECT)
    ] * 3
    assert items[8] == {"a": 1}
    assert stats.keep_alives == 5 and stats.malformed == 3 and stats.messages == 1
