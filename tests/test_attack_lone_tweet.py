"""Hostile review of the hook face's lone-tweet delivery (issue 17): without an ``on_data``,
``_dispatch`` or ``on_response`` of the user's, :class:`rxtweet.StreamingClient` takes its
messages through ``select_messages(lone_tweet_or_response)`` and its own
``_value_selection`` observer: a message that is ``{"data": {...}}`` alone arrives as its
``Tweet`` (made by the parser straight from the dict, ``to_lone_tweet_or_response``, when the
hook face is the share's one taker) and calls ``on_tweet`` (and, while DEBUG is on for
``rxtweet.v2``, the default ``on_response`` with a response made for it); any other message
arrives as its ``StreamResponse`` and goes to ``_dispatch``. The observer takes the run's
hook lock inline.

The existing attack files drive the hook face with a recorder that overrides
``on_response`` (the generic locked ``_dispatch``), so none of them took this path: every
client here leaves ``on_response`` alone. References: the projection switched off
(``to_stream_response.projections`` emptied: the share applies the pick to each response)
and the single subscription of before (``_dispatch_needs_raw = True``). Real servers on
127.0.0.1 (``delivery_harness``'s whole-read :class:`~support.RawServer` feeds, and
:class:`~rxtweet.testing.FakeStreamServer`); the lock's asynchronous-exception windows are
driven on a test thread through ``client._value_selection(run)`` itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from delivery_harness import Feed, Serve, full, tweet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import (
    Interrupted,
    RefusingRLock,
    assert_lock_free,
    count_parsed,
    interrupted_feeder,
    wait_until,
)

from rxtweet import StreamingClient, StreamResponse, StreamRule, Tweet
from rxtweet.basestream import BaseStream, _RunState
from rxtweet.connection import Connection
from rxtweet.events import MalformedMessage, StreamEvent
from rxtweet.metrics import metrics_of
from rxtweet.partitions import MergedConnection
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.v2 import convert as convert_module
from rxtweet.v2.convert import (
    lone_tweet_or_response,
    to_lone_tweet_or_response,
    to_stream_response,
)
from rxtweet.v2.stream import TweetStream

TOKEN = "AAAA-lone-tweet-attack-token"
V2_LOG = logging.getLogger("rxtweet.v2")

# --- to_lone_tweet_or_response is lone_tweet_or_response(to_stream_response(...)) -------------

ANY_ID = (
    st.integers(0, 2**70).map(str)
    | st.integers(-(2**70), 2**70)
    | st.sampled_from(["²", "٣", " 1", "+1", "-1", "", "1_0", "\ud800", "0x1"])
    | st.floats(allow_nan=True)
    | st.booleans()
    | st.none()
    | st.lists(st.integers(), max_size=1)
)
DATA = (
    st.fixed_dictionaries({}, optional={"id": ANY_ID, "text": st.text(max_size=4)})
    | st.none()
    | st.lists(st.integers(), max_size=1)
    | st.text(max_size=2)
    | st.integers()
    | st.booleans()
)
OBJECT = st.dictionaries(st.sampled_from(["title", "id", "x"]), st.integers(), max_size=2)
PART = (
    st.none()
    | OBJECT
    | st.lists(OBJECT | st.integers() | st.none(), max_size=2)
    | st.text(max_size=2)
    | st.integers()
)
RULES = (
    st.none()
    | st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "id": ANY_ID | st.dictionaries(st.text(max_size=1), st.integers(), max_size=1),
                "tag": st.none() | st.text(max_size=3),
            },
        )
        | st.integers(),
        max_size=2,
    )
    | st.text(max_size=2)
)
DOCS = st.fixed_dictionaries(
    {},
    optional={"data": DATA, "includes": PART, "errors": PART, "matching_rules": RULES, "foo": PART},
)


def outcome(make: Callable[[dict[str, Any]], Any], doc: dict[str, Any]) -> Any:
    """What ``make(doc)`` gives, in a comparable form: the exception, or the tweet (its data
    must be the message's own dict), or the response (its message, its four fields)."""
    try:
        made = make(doc)
    except Exception as exc:  # the outcome is what is compared
        return ("raised", type(exc), str(exc))
    if type(made) is Tweet:
        return ("tweet", made.data is doc["data"])
    assert type(made) is StreamResponse
    try:
        fields: Any = repr(tuple(made))
    except Exception as exc:  # a part that fails when read: the same on both sides
        fields = ("read raised", type(exc))
    return ("response", made._doc is doc, fields)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=DOCS)
def test_the_projection_is_the_pick_of_the_response_on_any_document(doc: dict[str, Any]) -> None:
    projected = outcome(to_lone_tweet_or_response, doc)
    assert projected == outcome(lambda d: lone_tweet_or_response(to_stream_response(d)), doc)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"data": {"id": "1", "text": "x"}}, ("tweet", True)),
        ({"data": {"id": 2**64}}, ("tweet", True)),  # a whole number is an id
        ({"data": {}}, ("tweet", True)),  # no id at all: still a tweet, as the response's
        ({"data": {"id": "1"}, "foo": 1}, "response"),
        ({"data": {"id": "1"}, "includes": {}}, "response"),
        ({"data": None}, "response"),
        ({}, "response"),
        ({"data": {"id": "²"}}, ("raised", TypeError, "'data.id' is not an id: str")),
        ({"data": {"id": -1}}, ("raised", TypeError, "'data.id' is not an id: int")),
        ({"data": {"id": "²"}, "foo": 1}, ("raised", TypeError, "'data.id' is not an id: str")),
        ({"data": []}, ("raised", TypeError, "'data' is list, not an object")),
        ({"data": {"id": "1"}, "errors": "x"}, ("raised", TypeError, None)),
        ({"data": None, "matching_rules": [1]}, ("raised", TypeError, None)),
    ],
)
def test_the_projection_on_documents_of_each_kind(doc: dict[str, Any], expected: Any) -> None:
    # The property above is only worth what its documents reach: each way out, here.
    got = outcome(to_lone_tweet_or_response, doc)
    if expected == "response":
        assert got[:2] == ("response", True)
    elif expected[0] == "raised" and expected[2] is None:
        assert got[:2] == expected[:2]
    else:
        assert got == expected
    assert got == outcome(lambda d: lone_tweet_or_response(to_stream_response(d)), doc)


def test_the_projection_is_registered_for_the_hook_face_s_pick() -> None:
    owner, table = to_stream_response.projections  # type: ignore[attr-defined]
    assert owner is to_stream_response
    assert table[lone_tweet_or_response] is to_lone_tweet_or_response
    assert table is convert_module.PROJECTIONS


# --- the hook face on a real server: every hook, three ways ----------------------------------

#: Whole reads (each a chunk of many lines) after the first message: every kind of message
#: the hook face must tell apart, the lines a parser refuses, ids beyond 2**53 and 2**64.
MIXED: list[bytes] = [
    tweet(2),
    full(3),
    b"",
    b'{"errors":[{"title":"operational-disconnect","detail":"d"}]}',
    tweet(4),
    b'{"data":null}',
    b'{"data":{"id":"5","text":"t5"},"foo":1}',
    tweet(6),
    b'{"data":{"id":"\\u00b2","text":"bad"}}',
    b'{"data":{"id":"-1","text":"bad"}}',
    b'{"data":{"id":-1,"text":"bad"}}',
    tweet(7),
    b"{not json",
    b"[1,2]",
    tweet(8),
    b'{"data":{"id":123456789012345678901234567890,"text":"big"}}',
    b'{"data":{"id":9007199254740993,"text":"b53"}}',
    b'{"data":{"id":"9","text":"t9"},"matching_rules":'
    b'[{"id":1377649934414049282,"tag":"cats"},{"id":123456789012345678901234567890,"tag":null}]}',
    b'{"data":{}}',
    b'{"data":{"id":"10","text":"t10"},"includes":{}}',
    b'{"data":{"id":"11","text":"t11"},"errors":[]}',
    b'{"data":{"id":"12","text":"t12"},"errors":"x"}',
    b'{"data":[]}',
    b"{}",
    b'{"foo":1}',
    tweet(13),
    b'{"data":{"id":"14","text":"t14"}} trailing',
    b"",
    tweet(15),
]
LONE = [tweet(n) for n in range(16, 41)]
GROUPS = [MIXED, LONE]

#: What a hook given a message's tweet does on its first call (by the tweet's text).
Act = Callable[["Lone"], None]


class Lone(StreamingClient):
    """Every hook but ``on_response`` (the default, so the lone-tweet way), recorded as
    tuples in call order; on the test's connection when given one."""

    def __init__(self, connection: Any = None, act: dict[str, Act] | None = None) -> None:
        super().__init__(TOKEN, daemon=True, reconnect=ReconnectPolicy(max_retries=0))
        self.connection = connection
        self.act = dict(act or {})
        self.calls: list[tuple[Any, ...]] = []

    def _tweet_source(self, *args: Any) -> Any:
        if self.connection is None:
            return super()._tweet_source(*args)
        return self.connection

    def on_connect(self) -> None:
        self.calls.append(("connect",))

    def on_keep_alive(self) -> None:
        self.calls.append(("keep_alive",))

    def on_tweet(self, tweet: Tweet) -> None:
        self.calls.append(("tweet", type(tweet).__name__, json.dumps(tweet.data, sort_keys=True)))
        action = self.act.pop(str(tweet.data.get("text")), None)
        if action is not None:
            action(self)

    def on_includes(self, includes: dict[str, Any]) -> None:
        self.calls.append(("includes", sorted(includes)))

    def on_errors(self, errors: list[dict[str, Any]]) -> None:
        self.calls.append(("errors", [error.get("title") for error in errors]))

    def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        self.calls.append(("rules", [(rule.id, rule.tag) for rule in matching_rules]))

    def on_closed(self, response: Any) -> None:
        self.calls.append(("closed",))

    def on_event(self, event: StreamEvent) -> None:
        reason = event.reason if isinstance(event, MalformedMessage) else None
        self.calls.append(("event", type(event).__name__, reason))

    def on_exception(self, exception: Exception) -> None:
        # Without the URL (its port differs between servers).
        text = str(exception).split(" (GET ")[0]
        self.calls.append(("exception", type(exception).__name__, text[:60]))

    def on_disconnect(self) -> None:
        self.calls.append(("disconnect",))

    def texts(self, kind: str = "tweet") -> list[Any]:
        return [json.loads(c[2]).get("text") for c in self.calls if c[0] == kind]


class ToCalls(logging.Handler):
    """Puts each ``Received response`` line of ``rxtweet.v2`` into a client's calls, in
    order with its hooks."""

    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        super().__init__(logging.DEBUG)
        self.calls = calls

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception as exc:  # a response that fails its str() shows
            message = f"str raised {type(exc).__name__}"
        if message.startswith("Received response"):
            self.calls.append(("log", message))


@contextlib.contextmanager
def v2_logging(calls: list[tuple[Any, ...]], level: int) -> Iterator[None]:
    """``rxtweet.v2`` at ``level``, its response lines into ``calls``; all restored after
    (the level, the handlers and ``logging.disable``, which a hook may have changed)."""
    handlers, before = V2_LOG.handlers[:], V2_LOG.level
    V2_LOG.addHandler(ToCalls(calls))
    V2_LOG.setLevel(level)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        V2_LOG.setLevel(before)
        V2_LOG.handlers[:] = handlers


WAYS = ("projected", "unprojected", "single")


@contextlib.contextmanager
def way(name: str) -> Iterator[list[int]]:
    """``"projected"``: the projection counted (the list gets an entry per tweet it made);
    ``"unprojected"``: switched off (the share picks from each response); ``"single"``: one
    subscription to the items (the way before the split)."""
    made: list[int] = []

    def counting(doc: dict[str, Any]) -> Any:
        made.append(1)
        return to_lone_tweet_or_response(doc)

    with pytest.MonkeyPatch.context() as patch:
        if name == "projected":
            patch.setitem(convert_module.PROJECTIONS, lone_tweet_or_response, counting)
        elif name == "unprojected":
            patch.setattr(to_stream_response, "projections", {})
        else:
            patch.setattr(StreamingClient, "_dispatch_needs_raw", True)
        yield made


def hooks(
    serve: Serve,
    name: str,
    *,
    groups: list[list[bytes]] = GROUPS,
    act: dict[str, Act] | None = None,
    level: int = logging.WARNING,
    client_type: type[Lone] = Lone,
    during: Callable[[Lone, Connection[Any]], None] | None = None,
    gates: dict[int, threading.Event] | None = None,
    exact_ints: bool = False,
) -> tuple[Lone, int, Connection[Any]]:
    """One run of a fresh client over ``groups`` (after tweet 1 alone) the way ``name``:
    the client (its calls), the tweets the projection made, the connection."""
    with way(name) as made:
        _server, connection = serve(Feed(groups, gates=gates), exact_ints=exact_ints)
        client = client_type(connection, act)
        with v2_logging(client.calls, level):
            thread = client.sample(threaded=True)
            assert thread is not None
            if during is not None:
                during(client, connection)
            assert client.join(3.0), "the run did not end"
            thread.join(1.0)
    assert client.calls.count(("disconnect",)) == 1 and client.calls[-1] == ("disconnect",)
    return client, len(made), connection


def three_ways(serve: Serve, min_made: int = 10, **kw: Any) -> list[tuple[Any, ...]]:
    """The calls of the run, checked equal the three ways; the projection was used (at
    least ``min_made`` tweets)."""
    runs = {name: hooks(serve, name, **kw) for name in WAYS}
    projected, made, _ = runs["projected"]
    assert made >= min_made, "the projection was not used"
    for name in WAYS[1:]:
        assert runs[name][0].calls == projected.calls, name
    return projected.calls


@pytest.mark.parametrize("exact_ints", [False, True], ids=["ints", "exact-ints"])
@pytest.mark.parametrize("level", [logging.WARNING, logging.DEBUG], ids=["warning", "debug"])
def test_every_hook_and_response_line_as_before_over_a_hostile_stream(
    serve: Serve, level: int, exact_ints: bool
) -> None:
    calls = three_ways(serve, level=level, exact_ints=exact_ints)
    tweets = [c for c in calls if c[0] == "tweet"]
    assert {c[1] for c in tweets} == {"Tweet"}
    texts = [json.loads(c[2]).get("text") for c in tweets]
    assert texts[:3] == ["t1", "t2", "f3"] and texts[-26:] == [f"t{n}" for n in range(15, 41)]
    assert {"b53", "t9", None, "t10", "t11", "t5"} <= set(texts)
    assert "bad" not in texts and "t12" not in texts and "t14" not in texts
    big = 123456789012345678901234567890
    # Beyond 64 bits: exact, or a float (not an id: the line is malformed), as before.
    assert ("big" in texts) is exact_ints
    assert (json.dumps({"id": big, "text": "big"}) in {c[2] for c in tweets}) is exact_ints
    assert json.dumps({"id": 2**53 + 1, "text": "b53"}) in {c[2] for c in tweets}
    assert [c[1] for c in calls if c[0] == "rules"] == [
        [("5", "x")],
        [("1377649934414049282", "cats"), (str(big if exact_ints else float(big)), None)],
    ]
    assert ("errors", ["operational-disconnect"]) in calls and ("includes", ["users"]) in calls
    malformed = sum(c[:2] == ("event", "MalformedMessage") for c in calls)
    assert malformed == (8 if exact_ints else 9)
    assert calls.count(("keep_alive",)) == 2
    assert [c[0] for c in calls[-4:]] == ["closed", "exception", "event", "disconnect"]
    lines = [c[1] for c in calls if c[0] == "log"]
    if level == logging.WARNING:
        assert lines == []
    else:
        # Every message, lone tweets included, each right after its hooks, as its parsed
        # response reads (the str of the response parsed from tweet 20, say).
        assert len(lines) == len(texts) + 4  # and data null, {}, {"foo"}, the errors-only
        parsed = to_stream_response(json.loads(tweet(20)))
        at = calls.index(("tweet", "Tweet", json.dumps({"id": "20", "text": "t20"})))
        assert calls[at + 1] == ("log", f"Received response: {parsed}")


# --- what may change during a run: DEBUG, logging.disable, on_tweet, on_response --------------


def _level(level: int) -> Act:
    return lambda _client: V2_LOG.setLevel(level)


def _disable(level: int) -> Act:
    return lambda _client: logging.disable(level)


def test_debug_and_logging_disable_switched_in_hooks_mid_run(serve: Serve) -> None:
    # Switched inside on_tweet (before the check that follows it): the message whose hook
    # switched it on is logged, the one whose hook switched it off is not; per message,
    # within whole reads of lone tweets (the projection's way).
    act = {
        "t4": _level(logging.DEBUG),
        "t8": _level(logging.WARNING),
        "t18": _level(logging.DEBUG),
        "t22": _disable(logging.DEBUG),
        "t26": _disable(logging.NOTSET),
        "t30": _level(logging.INFO),
    }
    calls = three_ways(serve, act=act)
    logged: list[Any] = []
    for at, call in enumerate(calls):
        if call[0] == "log":
            before = calls[at - 1]
            logged.append(json.loads(before[2]).get("text") if before[0] == "tweet" else before)
    lone = [f"t{n}" for n in (*range(18, 22), *range(26, 30))]
    assert logged[-len(lone) :] == lone
    # From t4 to t7 in the mixed read: each message, whatever its kind, logged once.
    assert logged[0] == "t4" and logged[-len(lone) - 1] == "t7"
    assert ("errors", ["operational-disconnect"]) not in [c for c in logged if type(c) is tuple]


def _replace_on_tweet(client: Lone) -> None:
    def replaced(tweet: Tweet) -> None:
        client.calls.append(("replaced", tweet.data.get("text")))

    client.on_tweet = replaced  # type: ignore[method-assign]


def test_on_tweet_replaced_on_the_instance_mid_run_takes_the_next_message(serve: Serve) -> None:
    calls = three_ways(serve, act={"t6": _replace_on_tweet, "t20": _replace_on_tweet})
    texts = [json.loads(c[2]).get("text") for c in calls if c[0] == "tweet"]
    assert texts[-1] == "t6"  # the first replacement took every later tweet
    replaced = [c[1] for c in calls if c[0] == "replaced"]
    assert replaced[-25:] == [f"t{n}" for n in range(16, 41)] and replaced[0] == "t7"


def data_of(response: StreamResponse) -> str:
    return json.dumps(None if response.data is None else response.data.data, sort_keys=True)


class Responds(Lone):
    """``on_response`` overridden in the class: every message's parsed response."""

    def on_response(self, response: StreamResponse) -> None:
        self.calls.append(("response", data_of(response), response._doc is not None))


def test_on_response_overridden_in_the_class_gets_every_parsed_response(serve: Serve) -> None:
    calls = three_ways(serve, 0, client_type=Responds)
    responses = [c for c in calls if c[0] == "response"]
    # Each message: the tweets', the errors-only one's, data null's, {}'s and {"foo"}'s.
    assert len(responses) == sum(c[0] in ("tweet", "errors") for c in calls) + 3 > 30
    assert all(c[2] for c in responses)  # the parsed ones, lone tweets' included
    at = calls.index(("tweet", "Tweet", json.dumps({"id": "20", "text": "t20"})))
    assert calls[at + 1] == ("response", json.dumps({"id": "20", "text": "t20"}), True)


def _record_responses(got: list[Any]) -> Act:
    def set_on_response(client: Lone) -> None:
        client.on_response = lambda response: got.append(response)  # type: ignore[method-assign]

    return set_on_response


def test_on_response_set_on_the_instance_during_a_run_counts_from_the_next_run(
    serve: Serve,
) -> None:
    got: list[StreamResponse] = []
    client, made, _ = hooks(serve, "projected", act={"t2": _record_responses(got)})
    assert got == [] and made >= 10  # documented: from the next run on (DEBUG off)
    client.calls.clear()
    _server, connection = serve(Feed(GROUPS))
    client.connection = connection
    assert client.sample() is None
    assert len(got) == connection.stats.messages > 30  # every message, lone tweets included
    assert all(type(r) is StreamResponse and r._doc is not None for r in got)  # as parsed


def test_on_response_set_on_the_instance_mid_run_while_debug_is_on(serve: Serve) -> None:
    # With DEBUG on, the instance's on_response is called from then on; a lone tweet's
    # response, made for it, is equal to (and reads as) the parsed one.
    seen: dict[str, list[Any]] = {}
    for name in WAYS:
        got: list[StreamResponse] = []
        hooks(serve, name, act={"t6": _record_responses(got)}, level=logging.DEBUG)
        seen[name] = [(repr(r), data_of(r), r.includes, r.errors) for r in got]
    assert seen["projected"] == seen["unprojected"] == seen["single"]
    assert len(seen["projected"]) > 30
    parsed = to_stream_response(json.loads(tweet(33)))
    assert (repr(parsed), data_of(parsed), {}, []) in seen["projected"]


# --- hooks that raise, disconnect, sleep ------------------------------------------------------


def _raise(exc: BaseException) -> Act:
    def act(_client: Lone) -> None:
        raise exc

    return act


@pytest.mark.parametrize("text", ["t6", "t20"], ids=["mixed-read", "lone-read"])
def test_on_tweet_raising_ends_the_run_through_on_exception(serve: Serve, text: str) -> None:
    calls = three_ways(serve, 3, act={text: _raise(ValueError("boom"))})
    at = calls.index(("tweet", "Tweet", json.dumps({"id": text[1:], "text": text})))
    assert calls[at + 1 :] == [
        ("exception", "ValueError", "boom"),
        ("event", "Disconnected", None),
        ("disconnect",),
    ]


class Raising(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise ValueError("a handler of the response line raised")


def test_the_default_on_response_raising_ends_the_run_through_on_exception(
    serve: Serve,
) -> None:
    # From t20 on, the DEBUG line of each response goes to a handler that raises: the
    # lone tweet's on_response raises in the hook face's observer, as _dispatch's did.
    calls = three_ways(
        serve, act={"t20": lambda _client: V2_LOG.addHandler(Raising())}, level=logging.DEBUG
    )
    at = calls.index(("tweet", "Tweet", json.dumps({"id": "20", "text": "t20"})))
    assert calls[at + 1 :] == [
        ("log", f"Received response: {to_stream_response(json.loads(tweet(20)))}"),
        ("exception", "ValueError", "a handler of the response line raised"),
        ("event", "Disconnected", None),
        ("disconnect",),
    ]


def _disconnect(client: Lone) -> None:
    client.disconnect()
    client.calls.append(("returned",))


@pytest.mark.parametrize("text", ["t6", "t20"], ids=["mixed-read", "lone-read"])
def test_disconnect_from_inside_on_tweet(serve: Serve, text: str) -> None:
    calls = three_ways(serve, 3, act={text: _disconnect}, level=logging.DEBUG)
    at = calls.index(("returned",))
    # That message's response line (DEBUG) may follow: the hook returned; nothing else.
    assert [c[0] for c in calls[at + 1 :]] == ["log", "disconnect"]
    assert json.loads(calls[at - 1][2])["text"] == text


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """The exceptions that ended threads (the reader's, here), instead of a printed trace."""
    seen: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    return seen


def test_keyboard_interrupt_in_on_tweet_leaves_the_lock_free(
    serve: Serve, thread_errors: list[BaseException | None]
) -> None:
    def during(client: Lone, _connection: Connection[Any]) -> None:
        assert wait_until(lambda: thread_errors, 2.0)
        assert_lock_free(client)  # else on_disconnect would wait for it for ever
        stopping = threading.Thread(target=client.disconnect, daemon=True)
        stopping.start()
        stopping.join(1.0)
        assert not stopping.is_alive(), "disconnect() hung"

    client, made, _ = hooks(
        serve, "projected", act={"t20": _raise(KeyboardInterrupt("t20"))}, during=during
    )
    assert type(thread_errors[0]) is KeyboardInterrupt and made >= 10
    assert client.texts()[-1] == "t20" and client.calls[-1] == ("disconnect",)
    assert client.calls[-2][0] == "tweet"  # no hook between the interrupt and on_disconnect


def test_disconnect_from_another_thread_while_on_tweet_sleeps(serve: Serve) -> None:
    stamps: dict[str, float] = {}
    asleep = threading.Event()

    def sleep(client: Lone) -> None:
        asleep.set()
        time.sleep(0.3)
        client.calls.append(("slept",))

    def during(client: Lone, _connection: Connection[Any]) -> None:
        assert asleep.wait(2.0)
        began = time.monotonic()
        client.disconnect()
        stamps["returned"] = time.monotonic() - began
        assert ("disconnect",) not in client.calls  # on_disconnect waits for the hook

    client, made, _ = hooks(serve, "projected", act={"t20": sleep}, during=during)
    assert stamps["returned"] < 0.2 and made >= 10
    assert client.calls[-2:] == [("slept",), ("disconnect",)]
    assert client.texts()[-1] == "t20"
    assert_lock_free(client)


# --- the observer's inline lock, driven on a test thread ---------------------------------------


def lone_observer(client: Lone, run: _RunState) -> Callable[[Any], None]:
    pick, on_next = client._value_selection(run)
    assert pick is lone_tweet_or_response  # the lone-tweet way, not BaseStream's
    return on_next


def a_tweet(n: int = 1) -> Tweet:
    return to_lone_tweet_or_response(json.loads(tweet(n)))  # type: ignore[return-value]


@pytest.mark.parametrize("where", ["taking-the-lock", "in-on-tweet"])
def test_an_async_exception_in_the_lone_observer_releases_the_lock(where: str) -> None:
    client = Lone()
    in_hook = threading.Event()
    if where == "in-on-tweet":

        def sleep(client: Lone) -> None:
            in_hook.set()
            time.sleep(0.5)  # interrupted in here
            client.calls.append(("slept",))

        client.act["t1"] = sleep
    run = _RunState()
    on_next = lone_observer(client, run)
    lone_tweet = a_tweet()
    with interrupted_feeder(
        lambda: on_next(lone_tweet), run.hooks, in_hook if where == "in-on-tweet" else None
    ) as seen:
        pass
    assert seen == {"raised": True, "owned": False}
    expected = [] if where == "taking-the-lock" else [a_tweet().data]
    assert [json.loads(c[2]) for c in client.calls if c[0] == "tweet"] == expected
    assert ("slept",) not in client.calls
    # The lock is free for the next item (on_disconnect waits on it).
    on_next(a_tweet(2))
    assert client.texts()[-1] == "t2" and not run.hooks._is_owned()  # type: ignore[attr-defined]


def test_an_exception_before_the_lock_is_taken_leaves_it_alone() -> None:
    # Not a release of a lock never taken: that would raise RuntimeError in place of the
    # exception, or undo another hold.
    client = Lone()
    run = _RunState()
    run.hooks = lock = RefusingRLock()
    on_next = lone_observer(client, run)
    RefusingRLock.refuse_next = True
    with pytest.raises(Interrupted):
        on_next(a_tweet())
    assert not lock._is_owned() and client.calls == []
    on_next(a_tweet(2))
    assert client.texts() == ["t2"] and not lock._is_owned()


def test_the_lone_observer_drops_items_once_the_run_is_over_and_waits_for_the_lock() -> None:
    client = Lone()
    run = _RunState()
    on_next = lone_observer(client, run)
    response = to_stream_response(json.loads(full(3)))
    holder_has_it, let_go = threading.Event(), threading.Event()

    def hold() -> None:  # on_disconnect's hold, on another thread
        with run.hooks:
            holder_has_it.set()
            let_go.wait(2)
            run.over = True

    holder = threading.Thread(target=hold)
    holder.start()
    assert holder_has_it.wait(1)
    feeder = threading.Thread(target=lambda: (on_next(a_tweet()), on_next(response)))
    feeder.start()
    time.sleep(0.05)
    assert client.calls == []  # waiting for the lock, not calling past it
    let_go.set()
    holder.join(2)
    feeder.join(2)
    assert client.calls == []
    run.over = False
    on_next(response)  # any other message: its response's hooks, through _dispatch
    assert [c[0] for c in client.calls] == ["tweet", "includes", "rules"]


# --- subclasses -------------------------------------------------------------------------------


class OwnDispatch(Lone):
    """A subclass with a ``_dispatch`` of its own that says (``_dispatch_needs_raw = False``,
    as BaseStream documents) it does not read ``raw``: every message goes through it."""

    _dispatch_needs_raw = False

    def _dispatch(self, response: StreamResponse, raw: bytes = b"") -> None:
        self.calls.append(("dispatch", data_of(response)))
        super()._dispatch(response, raw)


# Was broken by the lone-tweet way (lone tweets went to on_tweet, past the subclass's own
# raw-free _dispatch); fixed: the lone-tweet way is StreamingClient's own _dispatch's only.
def test_a_subclass_s_own_raw_free_dispatch_sees_every_message(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the lone-tweet way, such a subclass got every message's value (no Parsed made)
    # through its _dispatch; the fix must keep both.
    parsed = count_parsed(monkeypatch)
    client, _made, connection = hooks(serve, "projected", client_type=OwnDispatch)
    dispatched = [c for c in client.calls if c[0] == "dispatch"]
    assert len(dispatched) == connection.stats.messages > 30
    assert len(parsed) < 10
    single, _, _ = hooks(serve, "single", client_type=OwnDispatch)
    assert client.calls == single.calls


class GenericSelection(Lone):
    """A subclass that overrides ``_value_selection`` with BaseStream's generic one."""

    def _value_selection(self, run: _RunState) -> Any:
        return BaseStream._value_selection(self, run)


def test_a_subclass_overriding_value_selection_is_used(serve: Serve) -> None:
    runs = {name: hooks(serve, name, client_type=GenericSelection) for name in WAYS}
    assert runs["projected"][1] == 0  # its pick is not the hook face's: no projection
    assert runs["projected"][0].calls == runs["single"][0].calls
    assert len(runs["projected"][0].texts()) > 30


# --- other sources and subscribers: two replicas, partitions, metrics taps -------------------


@pytest.fixture
def selections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The pick of each run's message subscription (the split way's, none on the single)."""
    picks: list[Any] = []
    real = StreamingClient._value_selection

    def spy(self: StreamingClient, run: _RunState) -> Any:
        pick, on_next = real(self, run)
        picks.append(pick)
        return pick, on_next

    monkeypatch.setattr(StreamingClient, "_value_selection", spy)
    return picks


class Overlaps(Lone):
    """Counts the hooks that ran while another was running, and the threads they ran on."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.inside = 0
        self.overlaps = 0
        self.threads: set[str] = set()

    def on_tweet(self, tweet: Tweet) -> None:
        self.inside += 1
        self.overlaps += self.inside != 1
        self.threads.add(threading.current_thread().name)
        time.sleep(0.002)  # a switch point inside the hook
        super().on_tweet(tweet)
        self.inside -= 1


def test_two_replicas_never_run_on_tweet_at_once(selections: list[Any]) -> None:
    with FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server:
        server.feed(*[json.loads(tweet(n)) for n in range(1, 61)])
        server.script(Attempt(messages=30, ending="hold"), Attempt(messages=30, ending="hold"))
        client = Overlaps()
        client.base_url = server.url
        client.sample(threaded=True, redundancy=2)
        try:
            assert wait_until(lambda: len(client.texts()) == 60, timeout=2.5)
        finally:
            client.disconnect()
            assert client.join(2.0)
    assert selections == [lone_tweet_or_response]
    assert client.overlaps == 0 and len(client.threads) == 2  # both readers delivered
    assert sorted(client.texts()) == sorted(f"t{n}" for n in range(1, 61))
    assert client.calls[-1] == ("disconnect",) and client.calls.count(("disconnect",)) == 1
    assert_lock_free(client)


def test_partitions_merged_into_one_source(serve: Serve, selections: list[Any]) -> None:
    def run(name: str) -> tuple[Overlaps, int]:
        with way(name) as made:
            _, first = serve(Feed([MIXED, LONE]))
            _, second = serve(Feed([[tweet(n) for n in range(102, 141)]], first=101))
            client = Overlaps(MergedConnection({1: first, 2: second}))
            client.sample(threaded=True)
            assert client.join(3.0)
        return client, len(made)

    runs = {name: run(name) for name in WAYS}
    client, made = runs["projected"]
    assert made == 0  # the merge's share is not the parser's: the share picks
    assert selections == [lone_tweet_or_response] * 2  # the split way, not the single one
    assert client.overlaps == 0
    texts = client.texts()
    assert [t for t in texts if t and t[1:].isdigit() and int(t[1:]) > 100] == [
        f"t{n}" for n in range(101, 141)
    ]
    assert texts.count("t40") == 1 and texts.index("t15") < texts.index("t40")
    for name in WAYS[1:]:
        other = runs[name][0]
        assert sorted(map(repr, other.calls)) == sorted(map(repr, client.calls)), name


def test_metrics_attached_and_detached_during_the_run(serve: Serve) -> None:
    # A read tap takes the parser off the projection (it needs each read's items) for as
    # long as it is attached: no tweet lost, doubled or reordered at either switch. Reads
    # of ten tweets; the 5th waits until the metrics are on, the 13th until they are off.
    groups = [[tweet(n) for n in range(k, k + 10)] for k in range(2, 202, 10)]
    snapshots: list[Any] = []

    def during(client: Lone, connection: Connection[Any]) -> None:
        assert wait_until(lambda: len(client.texts()) == 41, 2.0)
        metrics = metrics_of(TweetStream(connection), 0.02).subscribe(snapshots.append)
        gates[4].set()
        assert wait_until(lambda: len(client.texts()) == 121 and snapshots, 2.0)
        metrics.dispose()
        gates[12].set()

    results = {}
    for name in ("projected", "single"):
        snapshots.clear()
        gates = {4: threading.Event(), 12: threading.Event()}
        client, made, _ = hooks(serve, name, groups=groups, during=during, gates=gates)
        results[name] = (client.calls, made)
    calls, made = results["projected"]
    assert calls == results["single"][0]
    assert [json.loads(c[2])["text"] for c in calls if c[0] == "tweet"] == [
        f"t{n}" for n in range(1, 202)
    ]
    assert made == 40 + 80  # 2-41 and 122-201: not one while the tap was there


FAST = ReconnectPolicy(network_wait_step=0.02, http_wait_start=0.02, rate_limit_wait_start=0.04)


# (Not "full": its recovery connections share the fake server's cursor with the stream, so
# even two runs of the single way differ.)
@pytest.mark.parametrize("options", [{}, {"recovery": "backfill"}], ids=["plain", "backfill"])
def test_reconnects_and_recovery_on_the_lone_tweet_way(
    options: dict[str, Any], selections: list[Any]
) -> None:
    # A connection's first message goes the Parsed way (the data check), the rest as values:
    # across closes, a 503, a cut and backfilling reconnects, as the single way.
    messages: list[Any] = []
    for n in range(1, 31):
        messages.append(json.loads(tweet(n)) if n % 4 else json.loads(full(n)))
        if n % 9 == 0:
            messages.append({"errors": [{"title": "operational-disconnect"}]})
    attempts = [
        Attempt(messages=8, ending="close", rate=400.0),
        Attempt(status=503),
        Attempt(messages=8, ending="cut", rate=400.0),
        Attempt(messages=None, ending="close", rate=400.0),
        Attempt(status=403),
    ]
    runs: dict[str, list[tuple[Any, ...]]] = {}
    for name in ("projected", "single"):
        with (
            way(name),
            FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server,
        ):
            server.feed(*messages)
            server.script(*attempts)
            client = Lone()
            client.reconnect = FAST
            client.base_url = server.url
            with v2_logging(client.calls, logging.DEBUG):
                client.sample(threaded=True, **options)
                assert client.join(3.0)
        runs[name] = client.calls
    assert selections == [lone_tweet_or_response]  # the projected run's; none for single
    assert runs["projected"] == runs["single"]
    calls = runs["projected"]
    texts = [json.loads(c[2])["text"] for c in calls if c[0] == "tweet"]
    assert sorted(set(texts), key=lambda t: int(t[1:])) == [
        f"{'t' if n % 4 else 'f'}{n}" for n in range(1, 31)
    ]
    assert calls.count(("connect",)) == 3 and calls[-1] == ("disconnect",)
    # One response line a message: each a tweet's or an errors-only message's.
    assert sum(c[0] == "log" for c in calls) == sum(c[0] in ("tweet", "errors") for c in calls)
