"""Hostile review of issue 17's lazy :class:`~rxtweet.v2.models.StreamResponse` (no longer an
eagerly built ``NamedTuple``), the hook face that reads its parts only for overridden hooks,
and the default read size (briefly 256 KiB, now 127 KiB).

Attacked as a careless user (everything tweepy's named-tuple response allowed), a hostile
server (bad shapes must still be malformed at parse time, the stream going on) and a
concurrent consumer (first reads racing on many threads). Every break found became one of
these tests, written to fail on the code it broke (each was a strict xfail until fixed).
"""

from __future__ import annotations

import asyncio
import collections.abc
import copy
import gc
import json
import logging
import pickle
import platform
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import orjson
import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from support import chunk, raw_servers, reader_threads, wait_until

from rxtweet import (
    AsyncStreamingClient,
    MalformedMessage,
    ReconnectPolicy,
    StreamingClient,
    StreamResponse,
    StreamRule,
    Tweet,
    User,
)
from rxtweet._model import Model
from rxtweet.parse import REASON_CONVERT, Parsed, ParseStats, batch_parser, parse_lines
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.transport_base import DEFAULT_CHUNK_SIZE
from rxtweet.v2 import models
from rxtweet.v2.convert import to_stream_response
from rxtweet.v2.models import process_includes, rule_of

DATA = Path(__file__).parent / "data"
#: Real filtered-stream messages (twarc-csv, 2021): tweets with includes (users, tweets,
#: media, places) and matching rules whose ids are JSON numbers beyond 2**53, and one
#: operational-disconnect system message.
TWARC = [
    line for line in (DATA / "twarc-csv_streaming_output.jsonl").read_bytes().split(b"\n") if line
]
TOKEN = "AAAA-lazy-response-test-token"
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05, rate_limit_wait_start=0.1)

#: A message with every part: a tweet, includes, errors (partial errors ride along with
#: data on X) and a matching rule.
FULL = {
    "data": {"id": "1377650090978992134", "text": "hello", "author_id": "41783881"},
    "includes": {
        "users": [{"id": "41783881", "name": "Gary", "username": "gary"}],
        "topics": [{"id": "t1"}],
    },
    "errors": [{"title": "Not Found Error", "resource_id": "9"}],
    "matching_rules": [{"id": 1377649934414049282, "tag": None}],
}
SYSTEM = {"errors": [{"title": "operational-disconnect", "disconnect_type": "Operational"}]}


def eager(doc: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """What the old eager ``to_stream_response`` built for ``doc`` (the reference)."""
    data = doc.get("data")
    includes = doc.get("includes")
    errors = doc.get("errors")
    rules = doc.get("matching_rules")
    return (
        None if data is None else Tweet(data),
        {} if includes is None else process_includes(includes),
        [] if errors is None else errors,
        [] if rules is None else [rule_of(rule) for rule in rules],
    )


def plain(value: Any, *, same_objects: bool = True) -> Any:
    """``value`` with each model replaced by its type and the dict it wraps (that dict's
    identity with ``same_objects``: two conversions of one doc must wrap the very same raw
    objects), each rule by its items and their types. Comparable without the models' own
    ``==``, which converts ids (and raises on a hostile server's)."""
    if isinstance(value, Model):
        return ("model", type(value).__name__, id(value.data) if same_objects else value.data)
    if isinstance(value, StreamRule):
        return ("rule", tuple(value), tuple(map(type, value)))
    if isinstance(value, dict):
        return {key: plain(item, same_objects=same_objects) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item, same_objects=same_objects) for item in value]
    return value


def same_as_eager(response: StreamResponse, doc: dict[str, Any], *, same: bool = True) -> None:
    """``response`` holds what the old eager code built from ``doc``: the very same raw
    objects (``response`` was made from ``doc`` itself), or equal ones (``same=False``: made
    from another decoding of the same line)."""
    for got, expected in zip(response, eager(doc), strict=True):
        assert plain(got, same_objects=same) == plain(expected, same_objects=same)
    if same and doc.get("errors") is not None:
        assert response.errors is doc["errors"]  # the raw list, as before


def responses() -> list[tuple[str, StreamResponse]]:
    """Parsed real and crafted messages, and one built from its parts (no doc behind it)."""
    made = [(f"twarc-{n}", to_stream_response(orjson.loads(line))) for n, line in enumerate(TWARC)]
    made.append(("full", to_stream_response(copy.deepcopy(FULL))))
    made.append(("system", to_stream_response(copy.deepcopy(SYSTEM))))
    made.append(("default-payload", to_stream_response({"data": {"id": "20", "text": "hi"}})))
    made.append(
        ("from-parts", StreamResponse(None, {"users": []}, [{"title": "x"}], [StreamRule("v")]))
    )
    return made


RESPONSES = responses()
IDS = [name for name, _ in RESPONSES]


def fresh(name: str) -> StreamResponse:
    """A new, unread response of the kind ``name`` (each test reads its own)."""
    return dict(responses())[name]


# --- 1. everything a tweepy user does with the named-tuple response --------------------------


@pytest.mark.parametrize("name", IDS)
def test_unpacking_indexing_slicing_and_iteration_give_the_four_fields(name: str) -> None:
    response = fresh(name)
    fields = (response.data, response.includes, response.errors, response.matching_rules)
    data, includes, errors, rules = response
    assert (data, includes, errors, rules) == fields
    assert all(a is b for a, b in zip((data, includes, errors, rules), fields, strict=True))
    for index in range(4):
        assert response[index] is fields[index]
        assert response[index - 4] is fields[index]
    assert response[1:3] == fields[1:3] and type(response[1:3]) is tuple
    assert response[::-1] == fields[::-1]
    assert response[:] == fields
    assert list(response) == list(fields) and tuple(response) == fields
    assert list(reversed(response)) == list(reversed(fields))
    assert len(response) == 4 and bool(response)
    first, *rest = response
    assert first is response.data and rest == list(fields[1:])
    with pytest.raises(IndexError):
        response[4]
    with pytest.raises(IndexError):
        response[-5]
    with pytest.raises(TypeError):
        response["data"]  # type: ignore[call-overload]


@pytest.mark.parametrize("name", IDS)
def test_in_index_and_count_find_the_fields_themselves(name: str) -> None:
    response = fresh(name)
    assert response.includes in response and response.matching_rules in response
    assert response.index(response.errors) == 2
    assert response.count(response.data) >= 1
    assert "no such field value" not in response
    with pytest.raises(ValueError):  # noqa: PT011 - Sequence.index says nothing more
        response.index("no such field value")


@pytest.mark.parametrize("name", IDS)
def test_equality_with_tuples_and_other_responses_both_ways(name: str) -> None:
    response = fresh(name)
    again = fresh(name)  # a second parse of the same message, also unread
    assert response == again and (response != again) is False
    assert response == tuple(response) and tuple(response) == response
    assert (response != tuple(response)) is False and (tuple(response) != response) is False
    assert response != list(response)  # a named tuple is not equal to a list either
    assert response != (*tuple(response), None)
    other = response._replace(errors=[*response.errors, {"title": "extra"}])
    assert other != response and response != other
    assert other != tuple(response)


@pytest.mark.parametrize("name", IDS)
def test_unhashable_and_read_only_as_the_named_tuple_was(name: str) -> None:
    response = fresh(name)
    with pytest.raises(TypeError, match="unhashable"):
        hash(response)
    with pytest.raises(TypeError):
        {response}  # noqa: B018 - the set is the test
    before = tuple(response)
    # The public fields and any new name; the underscored slots are private (a parse stores
    # them with plain attribute stores, which a refusing __setattr__ would make calls).
    for field in (*StreamResponse._fields, "other", "__dict__"):
        with pytest.raises(AttributeError):
            setattr(response, field, None)
        with pytest.raises(AttributeError):
            delattr(response, field)
    assert tuple(response) == before
    with pytest.raises(TypeError):
        vars(response)
    assert not hasattr(response, "__dict__")
    assert set(StreamResponse._fields) <= set(dir(response))
    assert (response.data, response.includes) == (response[0], response[1])  # unchanged


def test_a_response_with_hashable_parts_hashes_as_its_tuple() -> None:
    response = StreamResponse(None, (), (), ())  # type: ignore[arg-type]
    assert hash(response) == hash((None, (), (), ()))


@pytest.mark.parametrize("name", IDS)
def test_repr_and_str_show_the_converted_fields(name: str) -> None:
    response = fresh(name)
    text = repr(response)
    assert text == str(response)
    assert text.startswith("StreamResponse(data=")
    for field in StreamResponse._fields[1:]:
        assert f"{field}={getattr(response, field)!r}" in text
    assert TOKEN not in text


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("read_first", [False, True])
def test_copy_deepcopy_and_pickle_give_an_equal_response(name: str, read_first: bool) -> None:
    response = fresh(name)
    if read_first:
        tuple(response)
    shallow = copy.copy(response)
    assert type(shallow) is StreamResponse and shallow == response
    assert all(a is b for a, b in zip(shallow, response, strict=True))  # shallow: same parts
    deep = copy.deepcopy(response)
    assert type(deep) is StreamResponse and deep == response
    deep.errors.append({"title": "added to the copy"})
    assert {"title": "added to the copy"} not in response.errors
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(response, protocol))
        assert type(back) is StreamResponse and back == response, protocol
        assert plain(back.matching_rules) == plain(response.matching_rules)


@pytest.mark.parametrize("protocol", [0, 1])
def test_pickle_protocols_0_and_1_of_a_response_with_a_tweet(protocol: int) -> None:
    response = fresh("full")
    back = pickle.loads(pickle.dumps(response, protocol))
    assert back == response


def test_asdict_replace_and_make_as_a_named_tuple() -> None:
    response = fresh("full")
    as_dict = response._asdict()
    assert list(as_dict) == ["data", "includes", "errors", "matching_rules"]
    assert all(as_dict[name] is getattr(response, name) for name in StreamResponse._fields)
    # A user's usual way to log a response as JSON.
    text = json.dumps(as_dict, default=lambda model: model.data)
    assert json.loads(text)["includes"]["users"][0]["username"] == "gary"
    assert json.loads(text)["matching_rules"] == [[None, None, "1377649934414049282"]]

    replaced = response._replace(data=None, matching_rules=[])
    assert replaced == (None, response.includes, response.errors, [])
    assert replaced.includes is response.includes
    assert response.data is not None and response.matching_rules  # the original is unchanged
    with pytest.raises(ValueError, match="unexpected field names"):
        response._replace(tweet=None)
    with pytest.raises(ValueError, match="unexpected field names"):
        response._replace(data=None, _doc={})

    made = StreamResponse._make(iter(tuple(response)))
    assert made == response and type(made) is StreamResponse
    for wrong in ((), (None,) * 3, (None,) * 5):
        with pytest.raises(TypeError):
            StreamResponse._make(wrong)


def test_the_constructor_takes_the_four_fields_by_position_or_keyword() -> None:
    rule = StreamRule("cats", "tag", "1")
    by_position = StreamResponse(None, {}, [], [rule])
    by_keyword = StreamResponse(matching_rules=[rule], errors=[], includes={}, data=None)
    assert by_position == by_keyword == (None, {}, [], [rule])
    with pytest.raises(TypeError):
        StreamResponse(None, {}, [])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        StreamResponse(None, {}, [], [], None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        StreamResponse(None, {}, [], [], tweet=None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        StreamResponse()  # type: ignore[call-arg]


def test_pattern_matching_by_class_keyword_and_sequence() -> None:
    response = fresh("full")
    match response:
        case StreamResponse(Tweet() as tweet, {"users": [User() as user, *_]}, [error], [rule]):
            assert tweet.id == 1377650090978992134 and user.username == "gary"
            assert error["title"] == "Not Found Error" and rule.id == "1377649934414049282"
        case _:
            pytest.fail("the class pattern did not match")
    match response:
        case StreamResponse(data=None):
            pytest.fail("a tweet message matched data=None")
        case StreamResponse(matching_rules=[StreamRule(id=rule_id)]):
            assert rule_id == "1377649934414049282"
        case _:
            pytest.fail("the keyword pattern did not match")
    match fresh("system"):
        case (None, {}, [{"title": title}], []):
            assert title == "operational-disconnect"
        case _:
            pytest.fail("the sequence pattern did not match")
    match response:
        case {"data": _}:
            pytest.fail("a response is not a mapping")
        case (_, _, _):
            pytest.fail("a response has four items, not three")
        case _:
            pass


def test_abc_and_named_tuple_introspection() -> None:
    response = fresh("full")
    assert isinstance(response, collections.abc.Sequence)
    assert isinstance(response, collections.abc.Collection)
    assert not isinstance(response, tuple)  # documented
    assert StreamResponse._fields == response._fields == StreamResponse.__match_args__
    assert StreamResponse._fields == ("data", "includes", "errors", "matching_rules")
    assert StreamResponse._field_defaults == {}


def test_responses_of_a_subclass_compare_by_value() -> None:
    class Mine(StreamResponse):
        __slots__ = ()

    assert Mine(None, {}, [{"title": "x"}], []) == Mine(None, {}, [{"title": "x"}], [])


def test_copy_pickle_and_replace_keep_a_subclass() -> None:
    class Mine(StreamResponse):
        __slots__ = ()

    mine = Mine(None, {}, [], [])
    assert type(copy.copy(mine)) is Mine
    assert type(mine._replace(errors=[{"title": "x"}])) is Mine


def test_calling_init_again_cannot_rewrite_a_response() -> None:
    response = fresh("full")
    before = tuple(response)
    with pytest.raises((AttributeError, TypeError)):
        response.__init__(None, {}, [], [])  # type: ignore[misc]
    assert tuple(response) == before


# --- 2. laziness: the same values as the old eager conversion, once ---------------------------


@pytest.mark.parametrize("line", TWARC, ids=[f"twarc-{n}" for n in range(len(TWARC))])
@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_real_messages_convert_as_the_eager_code_did_in_any_read_order(
    line: bytes, order: tuple[int, ...]
) -> None:
    doc = orjson.loads(line)
    snapshot = copy.deepcopy(doc)
    response = to_stream_response(doc)
    parts = [response[index] for index in order]
    same_as_eager(response, doc)
    for index, part in zip(order, parts, strict=True):
        assert response[index] is part  # cached: read again, the same object
    assert response.includes is response.includes
    assert response.matching_rules is response.matching_rules
    assert doc == snapshot  # the input is not modified


def test_a_tweets_reader_converts_no_includes_and_no_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"includes": 0, "rules": 0}

    def counting_includes(includes: dict[str, Any]) -> dict[str, Any]:
        calls["includes"] += 1
        return process_includes(includes)

    def counting_rule(rule: dict[str, Any]) -> StreamRule:
        calls["rules"] += 1
        return rule_of(rule)

    monkeypatch.setattr(models, "process_includes", counting_includes)
    monkeypatch.setattr(models, "rule_of", counting_rule)
    items = reactivex.from_iterable(TWARC).pipe(parse_lines(to_stream_response), ops.to_list())
    got = [item for item in items.run() if isinstance(item, StreamResponse)]
    assert len(got) == len(TWARC)
    assert [r.data.id for r in got if r.data is not None] == [
        int(orjson.loads(line)["data"]["id"]) for line in TWARC if b'"data"' in line[:9]
    ]
    assert calls == {"includes": 0, "rules": 0}
    assert all(r.includes for r in got if r.data is not None)
    assert calls["includes"] == len(TWARC) - 1 and calls["rules"] == 0


def test_a_part_once_read_does_not_follow_later_changes_to_the_message() -> None:
    doc = copy.deepcopy(FULL)
    response = to_stream_response(doc)
    includes, errors, rules = response.includes, response.errors, response.matching_rules
    doc["includes"] = {"users": []}
    doc["matching_rules"] = ["not even an object"]
    doc.pop("errors")
    assert response.includes is includes and includes["users"][0].username == "gary"
    assert response.matching_rules is rules and rules[0].id == "1377649934414049282"
    assert response.errors is errors and errors[0]["title"] == "Not Found Error"


# JSON values of every kind, to put where the server may lie.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=5,
)
OBJECT = st.dictionaries(st.sampled_from(["id", "name", "username", "x"]), JSON, max_size=3)
INCLUDES = st.dictionaries(
    st.sampled_from(["users", "tweets", "media", "places", "polls", "topics"]),
    st.lists(OBJECT, max_size=3) | JSON,
    max_size=4,
)
#: X's rule ids: a string of digits, or (2021) a JSON number; a tag or value of any kind.
RULE = st.fixed_dictionaries(
    {},
    optional={
        "id": st.none()
        | st.integers(min_value=0, max_value=2**70)
        | st.text(alphabet="0123456789", max_size=20)
        | st.text(max_size=3),
        "tag": JSON,
        "value": JSON,
    },
)
DOCS = st.fixed_dictionaries(
    {},
    optional={
        "data": st.fixed_dictionaries(
            {"id": st.integers(0, 2**63).map(str), "text": st.text(max_size=8)}
        ),
        "includes": INCLUDES | st.none(),
        "errors": st.lists(OBJECT, max_size=3) | st.none(),
        "matching_rules": st.lists(RULE, max_size=3) | st.none(),
        "__twarc": OBJECT,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS, order=st.permutations(range(4)))
def test_any_well_shaped_message_converts_as_the_eager_code_did(
    doc: dict[str, Any], order: list[int]
) -> None:
    snapshot = copy.deepcopy(doc)
    response = to_stream_response(doc)
    for index in order:
        response[index]
    same_as_eager(response, doc)
    assert doc == snapshot
    # Through the line parser, as a stream gives it (the same doc decoded from its line).
    line = json.dumps(doc).encode()
    stats = ParseStats()
    got: list[Any] = []
    batch_parser(to_stream_response, stats)([line, b"", line], got.append, [False])
    assert [type(item).__name__ for item in got] == [
        "StreamResponse",
        "KeepAlive",
        "StreamResponse",
    ]
    assert stats.malformed == 0 and stats.messages == 2
    for item in (got[0], got[2]):
        decoded = json.loads(line)
        assert plain(item.matching_rules) == plain(
            [rule_of(r) for r in decoded.get("matching_rules") or []]
        )
        same_as_eager(item, decoded, same=False)


@settings(max_examples=100, deadline=None)
@given(rules=st.lists(st.fixed_dictionaries({}, optional={"id": JSON, "tag": JSON}), max_size=3))
def test_any_rule_id_is_malformed_when_parsed_or_reads_as_the_eager_code_did(
    rules: list[dict[str, Any]],
) -> None:
    line = json.dumps({"data": {"id": "1", "text": "x"}, "matching_rules": rules}).encode()
    got: list[Any] = []
    batch_parser(to_stream_response)([line], got.append, [False])
    (item,) = got
    if isinstance(item, MalformedMessage):
        assert any(type(rule.get("id")) not in (str, int, type(None)) for rule in rules)
        return
    assert item.matching_rules == [rule_of(rule) for rule in json.loads(line)["matching_rules"]]


def first_reads(
    response: StreamResponse, threads_n: int
) -> tuple[list[tuple[Any, ...]], list[BaseException]]:
    """The parts ``threads_n`` threads read from ``response`` all at once (a barrier)."""
    barrier = threading.Barrier(threads_n)
    seen: list[tuple[Any, ...]] = [()] * threads_n
    failures: list[BaseException] = []

    def read(slot: int) -> None:
        try:
            barrier.wait(2)
            # Half the threads go through the properties, half through the tuple face.
            if slot % 2:
                seen[slot] = (response.includes, response.errors, response.matching_rules)
            else:
                _, includes, errors, rules = response
                seen[slot] = (includes, errors, rules)
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=read, args=(n,)) for n in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(5)
    return seen, failures


def test_concurrent_first_reads_get_the_same_objects() -> None:
    for _round in range(30):
        response = to_stream_response(orjson.loads(TWARC[0]))
        seen, failures = first_reads(response, 12)
        assert not failures
        first = seen[0]
        for parts in seen:
            assert all(a is b for a, b in zip(parts, first, strict=True))
        assert first == (response.includes, response.errors, response.matching_rules)
        assert isinstance(first[0]["users"][0], User)


# A gc callback stands for any code that can run in the middle of a conversion on the same
# thread: a __del__ or weakref finalizer run by a collection, a signal handler.
_REENTRANT_READ = textwrap.dedent(
    """
    import faulthandler, gc, sys
    from rxtweet.v2 import models
    from rxtweet.v2.convert import to_stream_response

    def doc(users):
        return {"data": {"id": "1", "text": "x"},
                "includes": {"users": [{"id": str(n)} for n in range(users)]},
                "matching_rules": [{"id": 7}]}

    victim = to_stream_response(doc(400))
    others = [to_stream_response(doc(1)) for _ in range(3000)]
    read = []

    def converting():
        frame = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename == models.__file__:
                return True
            frame = frame.f_back
        return False

    def on_gc(phase, info):
        if phase == "start" and others and converting():
            response = others.pop()
            read.append((response.includes, response.matching_rules))

    gc.callbacks.append(on_gc)
    gc.set_threshold(1)
    faulthandler.dump_traceback_later(1.5, exit=True)
    users = victim.includes["users"]
    rules = victim.matching_rules
    faulthandler.cancel_dump_traceback_later()
    gc.callbacks.remove(on_gc)
    assert len(users) == 400 and rules[0].id == "7", (len(users), rules)
    assert read and all(r[0]["users"][0].data == {"id": "0"} for r in read)
    print("done", len(read))
    """
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, in this directory (tests/support.py importable)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=Path(__file__).parent,
    )


def test_a_read_from_a_gc_callback_during_a_conversion_does_not_deadlock() -> None:
    done = run_python(_REENTRANT_READ)
    assert done.returncode == 0 and done.stdout.startswith("done"), done.stderr[-2000:]


# --- 3. bad shapes are still malformed when parsed --------------------------------------------

BAD_SHAPES: dict[str, dict[str, Any]] = {
    "includes-list": {"data": {"id": "1", "text": "x"}, "includes": [{"users": []}]},
    "includes-string": {"data": {"id": "1", "text": "x"}, "includes": "users"},
    "includes-number": {"data": {"id": "1", "text": "x"}, "includes": 7},
    "includes-true": {"includes": True},
    "errors-object": {"errors": {"title": "operational-disconnect"}},
    "errors-string": {"errors": "boom"},
    "errors-non-object": {"errors": [{"title": "x"}, "boom"]},
    "errors-nested-list": {"errors": [[{"title": "x"}]]},
    "rules-object": {"data": {"id": "1", "text": "x"}, "matching_rules": {"id": "1"}},
    "rules-empty-object": {"data": {"id": "1", "text": "x"}, "matching_rules": {}},
    "rules-string": {"data": {"id": "1", "text": "x"}, "matching_rules": "1"},
    "rules-empty-string": {"data": {"id": "1", "text": "x"}, "matching_rules": ""},
    "rules-of-strings": {"data": {"id": "1", "text": "x"}, "matching_rules": ["1", "2"]},
    "rules-with-null": {"data": {"id": "1", "text": "x"}, "matching_rules": [{"id": "1"}, None]},
    "rules-number": {"matching_rules": 3},
}


@pytest.mark.parametrize("name", list(BAD_SHAPES))
def test_a_bad_shape_is_refused_when_parsed_not_when_read(name: str) -> None:
    with pytest.raises(TypeError):
        to_stream_response(copy.deepcopy(BAD_SHAPES[name]))


def test_bad_shapes_are_malformed_lines_and_the_parse_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = orjson.dumps(FULL)
    lines = [good]
    for bad in BAD_SHAPES.values():
        lines += [orjson.dumps(bad), good]
    stats = ParseStats()
    with caplog.at_level(logging.WARNING, logger="rxtweet.parse"):
        got = reactivex.from_iterable(lines).pipe(parse_lines(to_stream_response, stats))
        items = got.pipe(ops.to_list()).run()
    malformed = [item for item in items if isinstance(item, MalformedMessage)]
    parsed = [item for item in items if isinstance(item, StreamResponse)]
    assert len(malformed) == len(BAD_SHAPES) and len(parsed) == len(BAD_SHAPES) + 1
    assert {m.reason for m in malformed} == {REASON_CONVERT}
    assert stats.by_reason == {REASON_CONVERT: len(BAD_SHAPES)}
    assert stats.messages == len(parsed)
    assert len([r for r in caplog.records if REASON_CONVERT in r.getMessage()]) == len(BAD_SHAPES)
    for response in parsed:
        same_as_eager(response, orjson.loads(good), same=False)
    # The batch path (a whole read at once) gives the same items.
    batch: list[Any] = []
    batch_parser(to_stream_response, ParseStats())(lines, batch.append, [False])
    assert [type(item) for item in batch] == [type(item) for item in items]


@pytest.mark.parametrize(
    ("rule_id", "expected"),
    [
        (1377649934414049282, "1377649934414049282"),
        (2**64 + 1, str(2**64 + 1)),
        ("1377649934414049282", "1377649934414049282"),
        (None, None),
        (7, "7"),
        (1.5, "1.5"),
        (True, "True"),
        ([1], "[1]"),
        ({"a": 1}, "{'a': 1}"),
    ],
)
def test_a_rule_id_of_any_json_type_converts_as_before_or_is_malformed(
    rule_id: Any, expected: Any
) -> None:
    line = json.dumps({"data": {"id": "1", "text": "x"}, "matching_rules": [{"id": rule_id}]})
    got: list[Any] = []
    batch_parser(to_stream_response)([line.encode()], got.append, [False])
    (response,) = got
    if isinstance(response, MalformedMessage):
        # Refusing an id that is no id at all is fine (X sends a string, in 2021 a number).
        assert type(rule_id) not in (str, int, type(None))
        return
    assert isinstance(response, StreamResponse)
    assert response.matching_rules == [StreamRule(None, None, expected)]
    assert response.matching_rules == [rule_of({"id": rule_id})]


def nested_rule_line(depth: int, tweet_id: int = 1) -> bytes:
    """A tweet whose matching rule's id is an array nested ``depth`` deep (valid JSON)."""
    nested = b"[" * depth + b"]" * depth
    head = b'{"data":{"id":"%d","text":"x"},"matching_rules":[{"id":' % tweet_id
    return head + nested + b"}]}"


# A rule id nested ~1000 deep once parsed (only "a list of objects" was checked) and str(id)
# in rule_of raised RecursionError at the first read, in the subscriber's hands; the eager
# code had raised it at parse time, where the line was counted malformed.


def test_a_deeply_nested_rule_id_is_malformed_when_parsed_or_reads_fine() -> None:
    stats = ParseStats()
    got: list[Any] = []
    batch_parser(to_stream_response, stats)([nested_rule_line(1000)], got.append, [False])
    (item,) = got
    if isinstance(item, MalformedMessage):
        assert stats.by_reason == {REASON_CONVERT: 1}
        return
    assert item.matching_rules[0].id is not None  # a read never raises


def test_a_deeply_nested_rule_id_ends_no_substream() -> None:
    sent = [nested_rule_line(1000, 1), tweet_line(2)]
    tweets: list[Tweet] = []
    rules: list[list[StreamRule]] = []
    failures: list[Exception] = []
    with fake(sent) as server:
        server.script(Attempt(messages=len(sent), ending="hold"))
        stream = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST).sample_stream()
        with stream.hold():
            subs = [
                stream.tweets.subscribe(tweets.append, failures.append),
                stream.matching_rules.subscribe(rules.append, failures.append),
            ]
        try:
            wait_until(lambda: failures or 2 in [t.id for t in tweets], timeout=2.0)
        finally:
            for sub in subs:
                sub.dispose()
    assert failures == []
    assert [t.id for t in tweets][-1:] == [2]


def test_a_deeply_nested_rule_id_does_not_end_the_hook_face() -> None:
    class Rules(WithParts):
        def on_exception(self, exception: Exception) -> None:
            self.calls.append(("exception", exception))

    client = Rules(TOKEN, reconnect=FAST)
    sent = [nested_rule_line(1000, 1), tweet_line(2)]

    def over() -> bool:
        tweets = [value.id for name, value in client.calls if name == "tweet"]
        return "exception" in names(client.calls) or 2 in tweets

    run_hooks(client, sent, over)
    assert "exception" not in names(client.calls), client.calls
    assert [value.id for name, value in client.calls if name == "tweet"][-1:] == [2]


def fake(messages: Any) -> FakeStreamServer:
    """A server that sends ``messages`` as they are (no field trimming, no rule matching)."""
    return FakeStreamServer(messages=messages, bearer_token=TOKEN, fields="all", match_rules=False)


def test_a_hostile_server_s_bad_shapes_are_counted_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = [TWARC[0]]
    for bad in BAD_SHAPES.values():
        sent += [orjson.dumps(bad), TWARC[1]]
    good = [TWARC[0]] + [TWARC[1]] * len(BAD_SHAPES)
    events: list[Any] = []
    got: list[StreamResponse] = []
    with fake(sent) as server, caplog.at_level(logging.WARNING, logger="rxtweet.parse"):
        server.script(Attempt(messages=len(sent), ending="hold"))
        stream = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST).sample_stream()
        with stream.hold():
            subs = [stream.events.subscribe(events.append), stream.responses.subscribe(got.append)]
        try:
            assert wait_until(lambda: len(got) == len(good), timeout=3.0)
        finally:
            for sub in subs:
                sub.dispose()
    assert [r.data.id for r in got if r.data is not None] == [
        int(orjson.loads(line)["data"]["id"]) for line in good
    ]
    assert stream.stats.by_reason == {REASON_CONVERT: len(BAD_SHAPES)}
    assert len([e for e in events if isinstance(e, MalformedMessage)]) == len(BAD_SHAPES)
    assert len([r for r in caplog.records if REASON_CONVERT in r.getMessage()]) == len(BAD_SHAPES)
    for response, line in zip(got, good, strict=True):
        same_as_eager(response, orjson.loads(line), same=False)


def test_tweets_and_includes_subscribers_see_what_the_eager_code_gave() -> None:
    with fake(TWARC) as server:
        server.script(Attempt(messages=len(TWARC), ending="hold"))
        stream = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST).filter_stream()
        tweets: list[Tweet] = []
        includes: list[dict[str, Any]] = []
        rules: list[list[StreamRule]] = []
        errors: list[list[dict[str, Any]]] = []
        all_responses: list[StreamResponse] = []
        with stream.hold():
            subs = [
                stream.tweets.subscribe(tweets.append),
                stream.includes.subscribe(includes.append),
                stream.matching_rules.subscribe(rules.append),
                stream.errors.subscribe(errors.append),
                stream.responses.subscribe(all_responses.append),
            ]
        assert wait_until(lambda: len(all_responses) == len(TWARC))
        for sub in subs:
            sub.dispose()
    docs = [orjson.loads(line) for line in TWARC]
    with_data = [doc for doc in docs if "data" in doc]
    assert [t.id for t in tweets] == [int(doc["data"]["id"]) for doc in with_data]
    assert [plain_ids(i) for i in includes] == [
        plain_ids(process_includes(doc["includes"])) for doc in with_data
    ]
    assert rules == [[rule_of(r) for r in doc["matching_rules"]] for doc in with_data]
    assert errors == [doc["errors"] for doc in docs if "errors" in doc]
    # Every substream got the one response's own objects, converted once.
    pairs = [r for r in all_responses if r.data is not None]
    assert all(a is b.includes for a, b in zip(includes, pairs, strict=True))
    assert all(a is b.matching_rules for a, b in zip(rules, pairs, strict=True))
    assert all(a is b.data for a, b in zip(tweets, pairs, strict=True))


def plain_ids(includes: dict[str, Any]) -> dict[str, Any]:
    return {
        key: [(type(m).__name__, m.data) for m in value] if isinstance(value, list) else value
        for key, value in includes.items()
    }


# --- 4. the hook face --------------------------------------------------------------------------


class Recorder(StreamingClient):
    """Records on_tweet, on_errors and on_response (the hooks these tests do not vary)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[tuple[str, Any]] = []

    def on_tweet(self, tweet: Tweet) -> None:
        self.calls.append(("tweet", tweet))

    def on_errors(self, errors: list[dict[str, Any]]) -> None:
        self.calls.append(("errors", errors))

    def on_response(self, response: StreamResponse) -> None:
        self.calls.append(("response", response))


class WithParts(Recorder):
    def on_includes(self, includes: dict[str, Any]) -> None:
        self.calls.append(("includes", includes))

    def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        self.calls.append(("matching_rules", matching_rules))


class PartsMixin:
    calls: list[tuple[str, Any]]

    def on_includes(self, includes: dict[str, Any]) -> None:
        self.calls.append(("includes", includes))

    def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        self.calls.append(("matching_rules", matching_rules))


class MixedIn(PartsMixin, Recorder):
    pass


def on_instance(client: Recorder) -> None:
    """Set ``on_includes`` and ``on_matching_rules`` on the instance (tweepy code does)."""

    def on_includes(includes: dict[str, Any]) -> None:
        client.calls.append(("includes", includes))

    def on_matching_rules(matching_rules: list[StreamRule]) -> None:
        client.calls.append(("matching_rules", matching_rules))

    client.on_includes = on_includes  # type: ignore[method-assign]
    client.on_matching_rules = on_matching_rules  # type: ignore[method-assign]


def run_hooks(
    client: StreamingClient,
    messages: list[Any],
    done: Callable[[], bool],
    *,
    method: str = "sample",
) -> None:
    """Run ``client``'s hook face on ``messages`` (threaded) until ``done()``, then stop it."""
    with fake(messages) as server:
        server.script(Attempt(messages=len(messages), ending="hold"))
        client.base_url = server.url
        thread = getattr(client, method)(threaded=True)
        try:
            assert wait_until(done, timeout=3.0)
        finally:
            client.disconnect()
            thread.join(3)
    assert not thread.is_alive()
    assert wait_until(lambda: not reader_threads(), timeout=2.0)


def names(calls: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in calls]


#: tweepy's hook order for FULL (every part), then SYSTEM (errors only).
FULL_THEN_SYSTEM = [
    "tweet",
    "includes",
    "errors",
    "matching_rules",
    "response",
    "errors",
    "response",
]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: WithParts(TOKEN, reconnect=FAST), id="class"),
        pytest.param(lambda: MixedIn(TOKEN, reconnect=FAST), id="mixin"),
        pytest.param(lambda: on_instance_client(), id="instance"),
    ],
)
@pytest.mark.parametrize("method", ["sample", "filter"])
def test_overridden_part_hooks_get_converted_parts_in_tweepy_s_order(
    make: Callable[[], Recorder], method: str
) -> None:
    client = make()
    messages = [FULL, SYSTEM, {"data": {"id": "5", "text": "alone"}}]
    run_hooks(client, messages, lambda: names(client.calls).count("response") == 3, method=method)
    assert names(client.calls) == [*FULL_THEN_SYSTEM, "tweet", "response"]
    calls = client.calls
    includes, rules, response = calls[1][1], calls[3][1], calls[4][1]
    assert isinstance(includes["users"][0], User) and includes["users"][0].username == "gary"
    assert includes["topics"] == [{"id": "t1"}]
    assert rules == [StreamRule(None, None, "1377649934414049282")]
    assert calls[2][1] == FULL["errors"]
    # on_response gets the same response, its parts the very objects the hooks got.
    assert response.includes is includes and response.matching_rules is rules
    assert response.data is calls[0][1] and response.errors is calls[2][1]
    assert calls[5][1] == SYSTEM["errors"] and calls[6][1].data is None
    assert calls[8][1] == (calls[7][1], {}, [], [])


def on_instance_client() -> Recorder:
    client = Recorder(TOKEN, reconnect=FAST)
    on_instance(client)
    return client


def test_without_part_hooks_on_response_still_reads_converted_parts() -> None:
    client = Recorder(TOKEN, reconnect=FAST)
    run_hooks(client, [FULL, SYSTEM], lambda: names(client.calls).count("response") == 2)
    assert names(client.calls) == ["tweet", "errors", "response", "errors", "response"]
    response = client.calls[2][1]
    same_as_eager(response, FULL, same=False)
    assert response.includes["users"][0].username == "gary"


def test_a_hook_assigned_on_the_instance_while_running_is_called_from_then_on() -> None:
    class Late(Recorder):
        def on_response(self, response: StreamResponse) -> None:
            super().on_response(response)
            on_instance(self)  # from the next message on

    client = Late(TOKEN, reconnect=FAST)
    run_hooks(client, [FULL, FULL], lambda: names(client.calls).count("response") == 2)
    assert names(client.calls) == [
        "tweet",
        "errors",
        "response",
        "tweet",
        "includes",
        "errors",
        "matching_rules",
        "response",
    ]
    assert client.calls[4][1]["users"][0].username == "gary"


def test_a_hook_patched_on_streaming_client_itself_is_called() -> None:
    client = Recorder(TOKEN, reconnect=FAST)
    with (
        mock.patch.object(StreamingClient, "on_includes") as on_includes,
        mock.patch.object(StreamingClient, "on_matching_rules") as on_rules,
    ):
        run_hooks(client, [FULL], lambda: "response" in names(client.calls))
    on_includes.assert_called_once()
    on_rules.assert_called_once_with([StreamRule(None, None, "1377649934414049282")])
    assert isinstance(on_includes.call_args.args[0]["users"][0], User)


@pytest.mark.parametrize("hook", ["on_response", "on_data"])
def test_a_hook_assigned_on_the_instance_is_called(hook: str) -> None:
    # on_data set on the instance takes the line instead of the parse, so no on_tweet then.
    client = StreamingClient(TOKEN, reconnect=FAST)
    got: list[Any] = []
    tweets: list[Tweet] = []
    client.on_tweet = tweets.append  # type: ignore[method-assign,assignment]
    setattr(client, hook, got.append)
    run_hooks(client, [FULL, FULL], lambda: len(got) == 2 or len(tweets) == 2)
    time.sleep(0.05)
    assert len(got) == 2


def test_on_data_called_by_hand_with_a_saved_line_calls_the_part_hooks() -> None:
    client = WithParts(TOKEN, reconnect=FAST)
    for line in TWARC:
        client.on_data(line)
        client.on_data(line.decode())
    expected: list[str] = []
    for line in TWARC:
        doc = orjson.loads(line)
        one = ["tweet", "includes"] if "data" in doc else []
        one += ["errors"] if "errors" in doc else []
        one += ["matching_rules"] if "matching_rules" in doc else []
        expected += [*one, "response"] * 2
    assert names(client.calls) == expected
    for name, value in client.calls:
        if name == "includes":
            assert all(isinstance(u, User) for u in value["users"])
        if name == "matching_rules":
            assert all(type(rule.id) is str for rule in value)


def test_the_async_client_s_hooks_get_converted_parts_in_tweepy_s_order() -> None:
    calls: list[tuple[str, Any]] = []

    class Async(AsyncStreamingClient):
        async def on_tweet(self, tweet: Tweet) -> None:
            calls.append(("tweet", tweet))

        async def on_includes(self, includes: dict[str, Any]) -> None:
            calls.append(("includes", includes))

        async def on_errors(self, errors: list[dict[str, Any]]) -> None:
            calls.append(("errors", errors))

        async def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
            calls.append(("matching_rules", matching_rules))

        async def on_response(self, response: StreamResponse) -> None:
            calls.append(("response", response))

    async def feed() -> None:
        client = Async(TOKEN)
        await client.on_data(orjson.dumps(FULL))
        await client.on_data(orjson.dumps(SYSTEM).decode())

    asyncio.run(feed())
    assert names(calls) == FULL_THEN_SYSTEM
    response = calls[4][1]
    assert calls[1][1] is response.includes and calls[3][1] is response.matching_rules
    same_as_eager(response, FULL, same=False)


def test_the_async_client_calls_an_on_data_set_on_the_instance() -> None:
    # As the threaded face: tweepy calls self.on_data, so one set on the instance is called.
    client = AsyncStreamingClient(TOKEN)
    raw: list[Any] = []

    async def on_data(data: Any) -> None:
        raw.append(data)

    client.on_data = on_data  # type: ignore[method-assign,assignment]
    line = orjson.dumps(FULL)
    asyncio.run(client._on_message(Parsed(to_stream_response(FULL), line)))
    assert raw == [line]


# --- 5. the read size ---------------------------------------------------------------------------


def tweet_line(number: int, text: bytes = b"hello") -> bytes:
    return b'{"data":{"id":"%d","text":"%s"}}' % (number, text)


def stream_head() -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc"
)
def test_a_read_of_one_small_message_costs_no_fresh_pages() -> None:
    """A read buffer above glibc's mmap threshold (128 KiB; DEFAULT_CHUNK_SIZE was briefly
    256 KiB) is mmapped afresh for every read and shrunk (mremap, munmap): three system calls
    and page faults a read, +30 us of CPU a message on a stream at ~900 msg/s."""
    # In a fresh interpreter, as an application starts: glibc raises its mmap threshold once
    # the process frees a large mmapped block, which a long test session has long done.
    done = run_python(_ONE_MESSAGE_READS)
    assert done.returncode == 0, done.stderr[-2000:]
    reads, faults = map(int, done.stdout.split())
    assert reads == 250
    assert faults < reads // 2, f"{faults} page faults over {reads} one-message reads"


_ONE_MESSAGE_READS = textwrap.dedent(
    """
    import resource, threading
    from reactivex import operators as ops
    from support import chunk, raw_servers, wait_until
    from rxtweet import StreamingClient
    from rxtweet.transport_base import DEFAULT_CHUNK_SIZE

    TOTAL, FROM = 300, 50
    taken = threading.Semaphore(0)

    def handler(conn, head):
        conn.sendall(
            b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
            b"Transfer-Encoding: chunked\\r\\n\\r\\n"
        )
        for number in range(1, TOTAL + 1):
            conn.sendall(chunk(b'{"data":{"id":"%d","text":"hello"}}\\r\\n' % number))
            taken.acquire(timeout=2)  # one message a read: the next once this one is in

    marks = {}

    def on_tweet(tweet):
        if tweet.id in (FROM, TOTAL):
            marks[tweet.id] = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        taken.release()

    with raw_servers() as serve:
        server = serve(handler)
        stream = StreamingClient("t", base_url=server.url).sample_stream()
        assert stream.connection.options.chunk_size == DEFAULT_CHUNK_SIZE
        subscription = stream.tweets.pipe(ops.take(TOTAL)).subscribe(on_tweet)
        assert wait_until(lambda: TOTAL in marks, timeout=5.0)
        subscription.dispose()
    print(TOTAL - FROM, marks[TOTAL] - marks[FROM])
    """
)


def test_a_slow_consumer_holds_at_most_a_read_s_worth_of_the_stream() -> None:
    count, text = 3000, b"x" * 4000  # 12 MB: far more than the reads and the socket buffers
    body = b"".join(chunk(tweet_line(n, text) + b"\r\n") for n in range(1, count + 1))
    wire = stream_head() + body  # built before tracemalloc starts; the stream stays open
    release = threading.Event()
    got: list[int] = []

    def handler(conn: Any, head: bytes) -> None:
        conn.sendall(wire)
        conn.recv(1)  # until the client goes: no reconnection to a closed server

    def on_tweet(tweet: Tweet) -> None:
        if not got:
            release.wait(3)  # the first tweet's subscriber is slow
        got.append(tweet.id)

    gc.collect()
    with raw_servers() as serve:
        server = serve(handler)
        stream = StreamingClient(TOKEN, base_url=server.url).sample_stream()
        tracemalloc.start()
        try:
            subscription = stream.tweets.subscribe(on_tweet)
            assert wait_until(lambda: reader_threads(), timeout=2.0)
            time.sleep(0.2)  # the reader is blocked in the subscriber by now
            before, _ = tracemalloc.get_traced_memory()
            time.sleep(0.2)
            after, _ = tracemalloc.get_traced_memory()
            held = before
        finally:
            tracemalloc.stop()
            release.set()
        assert wait_until(lambda: len(got) >= count, timeout=5.0)
        subscription.dispose()
    assert got == list(range(1, count + 1))  # all, in order, once
    assert after - before < 64 * 1024, "the reader read on while its subscriber was blocked"
    # One read (and its lines, and the parsed message) at most, not the megabytes sent.
    assert held < 8 * DEFAULT_CHUNK_SIZE, held


def test_a_burst_is_read_in_reads_of_up_to_the_chunk_size() -> None:
    # A burst larger than a read, whole lines straddling the reads: all lines, in order.
    count = 2000
    body = b"".join(chunk(tweet_line(n, b"y" * 300) + b"\r\n") for n in range(1, count + 1))
    assert len(body) > 2 * DEFAULT_CHUNK_SIZE

    def handler(conn: Any, head: bytes) -> None:
        conn.sendall(stream_head() + body + b"0\r\n\r\n")

    with raw_servers() as serve:
        server = serve(handler)
        stream = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST).sample_stream()
        tweets = stream.tweets.pipe(ops.take(count), ops.to_list()).run()
    got = [tweet.id for tweet in tweets]
    assert got == list(range(1, count + 1))
    assert stream.stats.malformed == 0


@pytest.mark.parametrize("tweet_id", ["\u00b2", "1\u00b2", "\u0663", "12\ud800", "", " 1", "+1"])
def test_a_tweet_id_of_other_than_ascii_digits_is_malformed_at_parse_time(tweet_id: str) -> None:
    # str.isdigit() takes "²" (and int() refuses it): such an id once parsed, and tweet.id
    # raised later, in the subscriber's hands.
    with pytest.raises(TypeError, match=r"'data\.id' is not an id"):
        to_stream_response({"data": {"id": tweet_id, "text": "x"}})


def test_a_tweet_id_of_ascii_digits_parses() -> None:
    response = to_stream_response({"data": {"id": "1234567890123456789", "text": "x"}})
    assert response.data is not None and response.data.id == 1234567890123456789


def test_the_default_on_response_logs_at_debug_as_soon_as_debug_is_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The dispatch trusts logging's cached "DEBUG is off" (a C call, not isEnabledFor): a
    # level changed later must still be seen at the next message.
    from rxtweet.v2 import client as client_module

    client = StreamingClient("bearer-token-for-a-test")
    response = to_stream_response({"data": {"id": "7", "text": "x"}})
    caplog.set_level(logging.WARNING, logger="rxtweet.v2")
    client._dispatch(response)
    assert client_module._LEVELS.get(logging.DEBUG) is False  # the cache the dispatch reads
    assert not [r for r in caplog.records if r.getMessage().startswith("Received response")]
    caplog.set_level(logging.DEBUG, logger="rxtweet.v2")
    client._dispatch(response)
    assert [r for r in caplog.records if r.getMessage().startswith("Received response")]
