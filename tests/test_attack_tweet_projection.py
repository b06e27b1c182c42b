"""Hostile review of commit f05a46c: when a v2 connection's share has one value-selecting
subscriber and its pick is ``rxtweet.v2.convert.TWEET_OF`` (``stream.tweets``), the parser
(``rxtweet.parse.batch_parser``) makes each Tweet with ``to_stream_tweet(doc)`` instead of
``to_stream_response(doc)`` and hands it over without any ``StreamResponse`` (the
``convert.projections`` of the connection's ``convert``, looked up by the pick's identity).

The reference is the same run with the projection switched off (``to_stream_response``'s
``projections`` emptied: the value path of 0c17e20 without f05a46c), or a second subscriber
that needs the whole response. Every end-to-end case runs over a real server on 127.0.0.1
(:class:`support.RawServer`): its first read is one message alone (a connection's first
data goes through the data check), then whole chunks of many messages, so that the real
transport hands the parser reads of many messages. A counting stand-in for
``to_stream_tweet`` tells how many tweets the projection made.

Attacked: hostile documents (ids, ``data``, ``includes``, ``errors``, ``matching_rules`` of
every wrong shape, both JSON decoders), ``stream.stats`` and the malformed-line log,
subscribers joining and leaving inside ``on_next`` and from another thread, other picks and
operators (``select(attrgetter("data"))``, ``take``, two ``tweets``, the hook face), the
reconnect backoff, raising and self-disposing subscribers, the other streams' converters,
and converters that merely look like ``to_stream_response`` (two real bugs, fixed).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from operator import attrgetter
from typing import Any
from unittest import mock

import delivery_harness
import pytest
from delivery_harness import (
    HEAD,
    Churned,
    Feed,
    Hooks,
    Serve,
    Subscribe,
    assert_churned_runs,
    churner,
    full,
    switching_often,
    tweet,
)
from reactivex import Observable, abc
from reactivex import operators as ops
from support import RawServer, chunk, reader_threads, tweet_outcome, wait_until

from rxtweet.connection import Connection
from rxtweet.http import StreamRequest
from rxtweet.parse import REASON_CONVERT, Parsed
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.substreams import select_other_items
from rxtweet.v1.convert import to_v1_message
from rxtweet.v2 import convert as convert_module
from rxtweet.v2.activity import to_activity_response
from rxtweet.v2.compliance import ComplianceConverter, ComplianceStream, to_compliance_response
from rxtweet.v2.convert import TWEET_OF, is_v2_data, to_stream_response, to_stream_tweet
from rxtweet.v2.labels import LabelConverter, to_label_response
from rxtweet.v2.likes import to_like_response
from rxtweet.v2.stream import TweetStream


def mixed(first: int, last: int) -> list[bytes]:
    """Tweets first..last, every 3rd with includes and rules, with a keep-alive, a malformed
    line and an errors-only message after every 7th."""
    out: list[bytes] = []
    for n in range(first, last + 1):
        out.append(full(n) if n % 3 == 0 else tweet(n))
        if n % 7 == 0:
            out += [b"", b'{"data":{"id":"%d0","text":"cut' % n, b'{"errors":[{"title":"x"}]}']
    return out


# --- a real server that sends whole reads ---------------------------------------------------


@contextlib.contextmanager
def projecting(enabled: bool = True) -> Iterator[list[int]]:
    """Count the tweets the projection makes (read when a connection subscribes); with
    ``enabled=False`` the projection is switched off (the reference)."""
    made: list[int] = []

    def counting(doc: dict[str, Any]) -> Any:
        made.append(1)
        return to_stream_tweet(doc)

    with pytest.MonkeyPatch.context() as patch:
        if enabled:
            patch.setitem(convert_module.PROJECTIONS, TWEET_OF, counting)
        else:
            patch.setattr(to_stream_response, "projections", {})
        yield made


def both(scenario: Callable[[], Any]) -> tuple[Any, Any, int]:
    """``scenario()`` with the projection and without: the two results, and how many tweets
    the projection made."""
    with projecting() as made:
        projected = scenario()
    with projecting(enabled=False):
        plain = scenario()
    return projected, plain, len(made)


def show(item: Any) -> Any:
    """A comparable form of anything a substream gives: a tweet's id (and its data dict's
    exact content), anything else's repr."""
    if type(item).__name__ == "Tweet":  # hostile ones may lack id or text: the raw data
        key = item.data.get("id")
        key = int(key) if type(key) is str else key
        return (key, item.data.get("text"), json.dumps(item.data, sort_keys=True))
    if type(item) is Parsed:
        return ("P", repr(item.value), item.raw)
    return repr(item)


class Log(delivery_harness.Log):
    """The harness's log of named subscribers, in this file's :func:`show` form."""

    show = staticmethod(show)


# --- to_stream_tweet is to_stream_response(...).data, for every document -------------------


def _deep(levels: int) -> Any:
    nested: Any = 1
    for _ in range(levels):
        nested = [nested]
    return nested


GOOD = {"id": "1", "text": "x"}
HOSTILE_DOCS: dict[str, dict[str, Any]] = {
    **{
        f"id {key!r}": {"data": {"id": key, "text": "x"}}
        for key in [
            "²",
            "٣",
            " 1",
            "1 ",
            "+1",
            "-1",
            "",
            "1_0",
            "0",
            "9" * 40,
            10**30,
            -(10**30),
            -1,
            0,
            1.0,
            float("nan"),
            float("inf"),
            True,
            False,
            None,
            [],
            {},
            "\ud800",
        ]
    },
    "no id": {"data": {"text": "x"}},
    "empty data": {"data": {}},
    **{f"data {data!r}": {"data": data} for data in [[], [GOOD], "x", "", 0, 1, 1.5, True, False]},
    **{
        f"includes {inc!r}": {"data": GOOD, "includes": inc}
        for inc in [[], [{}], "x", 1, True, False, 0.0, {}, None]
    },
    **{
        f"errors {err!r}": {"errors": err}
        for err in [[], "boom", {}, {"a": 1}, [1], [None], [[]], ["x"], [{}], [{}, 1], True, 0]
    },
    **{
        f"rules {rules!r}": {"data": GOOD, "matching_rules": rules}
        for rules in [
            [],
            "x",
            {},
            [1],
            [None],
            ["x"],
            [[]],
            [{}],
            [{"id": None}],
            [{"id": [1]}],
            [{"id": {"a": 1}}],
            [{"id": 1.5}],
            [{"id": 10**40}],
            [{"id": True}],
            [{"id": "5"}, {"id": ["6"]}],
            [{"id": "5"}, 7],
        ]
    },
    "rule id nested beyond str()": {"data": GOOD, "matching_rules": [{"id": _deep(200_000)}]},
    "rule id nested, no data": {"matching_rules": [{"id": _deep(200_000)}]},
    "bad data before bad includes": {"data": [], "includes": []},
    "bad id before bad errors": {"data": {"id": "²"}, "errors": "x"},
    "bad includes before bad errors": {"data": GOOD, "includes": 1, "errors": 1},
    "bad errors before bad rules": {"errors": [1], "matching_rules": 1},
    "data null, bad rules": {"data": None, "matching_rules": [1]},
    "data null, nothing else": {"data": None},
    "other keys only": {"other": [1, {"x": 2}]},
    "empty doc": {},
    "good with other key": {"data": GOOD, "other": "x"},
    "good full": {
        "data": GOOD,
        "includes": {"users": []},
        "errors": [{}],
        "matching_rules": [{"id": 1}, {"id": "2", "tag": None}],
    },
}


@pytest.mark.parametrize("name", sorted(HOSTILE_DOCS))
def test_to_stream_tweet_is_the_response_data_on_hostile_docs(name: str) -> None:
    doc = HOSTILE_DOCS[name]
    projected = tweet_outcome(to_stream_tweet, doc)
    assert projected == tweet_outcome(lambda d: to_stream_response(d).data, doc)
    if projected is not None and projected[0] == "tweet":
        assert projected[2] is doc["data"]  # the message's own dict, as the response's


def test_the_hostile_docs_raise_and_pass_both() -> None:
    # The table above tries both sides of every check (else its equality would say little).
    outcomes = [tweet_outcome(to_stream_tweet, doc) for doc in HOSTILE_DOCS.values()]
    raised = {o[2] for o in outcomes if o is not None and o[0] == "raised"}
    assert {
        "'data.id' is not an id: str",
        "'data' is list, not an object",
        "'includes' is list, not an object",
        "'errors' is not a list of objects",
        "'matching_rules' is not a list of objects with scalar ids",
    } <= raised
    assert any(o is None for o in outcomes)
    assert sum(o is not None and o[0] == "tweet" for o in outcomes) > 10


# --- stats and the log over a real server, hostile lines, many a read ------------------------


def _hostile_lines() -> list[bytes]:
    """Each hostile document that JSON can carry, between good tweets; and lines only a
    decoder makes (integers beyond 64 bits, NaN, a lone surrogate escape)."""
    lines: list[bytes] = []
    for n, doc in enumerate(HOSTILE_DOCS.values(), start=100):
        try:
            text = json.dumps(doc, ensure_ascii=False, allow_nan=False)
        except (ValueError, RecursionError, UnicodeEncodeError):
            continue
        try:
            lines.append(text.encode())
        except UnicodeEncodeError:  # a lone surrogate: sent escaped
            lines.append(json.dumps(doc).encode())
        lines.append(tweet(n))
    lines += [
        b'{"data":{"id":123456789012345678901234567890,"text":"big"}}',
        b'{"data":{"id":-123456789012345678901234567890,"text":"negative big"}}',
        b'{"data":{"id":"1","text":"x"},"matching_rules":[{"id":123456789012345678901234567890}]}',
        b'{"data":{"id":1e400,"text":"overflow"}}',
        b'{"data":{"id":NaN,"text":"nan"}}',
        b'{"data":{"id":"\\ud800","text":"surrogate"}}',
        b'{"data":{"id":"\\u00b2","text":"escaped superscript"}}',
        b'{"data":{"id":"7","text":"ok"}} trailing',
        b"[1,2]",
        b"",
        b'{"errors":[{"title":"operational-disconnect"}]}',
        tweet(999),
    ]
    return lines


@pytest.mark.parametrize("exact_ints", [False, True])
def test_stats_and_log_are_those_of_a_pair(
    serve: Serve, caplog: pytest.LogCaptureFixture, exact_ints: bool
) -> None:
    # A tweets-only subscriber (the projection) and a tweets+includes pair (responses made)
    # over the same lines: the same tweets, the same counts by reason, the same warnings.
    lines = _hostile_lines()
    groups = [lines[i : i + 40] for i in range(0, len(lines), 40)]

    def run(names: list[str]) -> tuple[Any, ...]:
        caplog.clear()
        _server, connection = serve(Feed(groups), exact_ints=exact_ints)
        stream = TweetStream(connection)
        log = Log()
        with caplog.at_level(logging.WARNING, logger="rxtweet.parse"):
            with stream.hold():
                log.sub("tweets", stream.tweets, witness=True)
                for name in names:
                    log.sub(name, getattr(stream, name))
            got = log.wait()
        stats = stream.stats
        warnings = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
        counts = (stats.messages, stats.keep_alives, stats.malformed, dict(stats.by_reason))
        return got["tweets"], counts, warnings

    with projecting() as made:
        alone = run([])
    projected = len(made)
    with projecting() as made:
        pair = run(["includes"])
    assert len(made) == 0  # two subscribers: the responses were made
    assert alone == pair
    assert projected > 50  # all but the first read's message went the projection's way
    tweets, counts, warnings = alone
    assert counts[3].get(REASON_CONVERT, 0) > 40
    assert len(warnings) == counts[2]
    assert any("'data.id' is not an id: str" in w for w in warnings)
    assert any("matching_rules" in w for w in warnings)
    assert tweets[-2][0] == 999


# --- subscribers joining and leaving: inside on_next, from another thread --------------------


def test_joins_and_leaves_inside_on_next_toggle_the_projection(serve: Serve) -> None:
    # The tweets keeper alone, then with includes (2nd taker), alone, with a 2nd tweets, with
    # items (no value path at all), with select(attrgetter("data")), alone again: each in the
    # middle of a read. Every tweet once, in order, to the keeper; the others their span.
    def scenario() -> dict[str, list[Any]]:
        server, connection = serve(Feed([mixed(2, 30), mixed(31, 60)]))
        stream = TweetStream(connection)
        log = Log()

        def on_keeper(item: Any) -> None:
            n = int(item.id)
            if n == 4:
                log.sub("includes", stream.includes)
            elif n == 9:
                log.subs["includes"].dispose()
            elif n == 14:
                log.sub("tweets2", stream.tweets)
            elif n == 18:
                log.subs["tweets2"].dispose()
            elif n == 33:
                log.sub("items", stream.items)
            elif n == 36:
                log.subs["items"].dispose()
                log.sub("data", stream.select(attrgetter("data")))
            elif n == 40:
                log.subs["data"].dispose()

        log.sub("keeper", stream.tweets, on_keeper, witness=True)
        got = log.wait()
        assert server.connections == 1
        return got

    projected, plain, made = both(scenario)
    assert projected == plain
    assert [x[0] for x in projected["keeper"][:-1]] == list(range(1, 61))
    # The keeper, first in the share, disposes the others before they see that message.
    assert [x[0] for x in projected["tweets2"]] == list(range(15, 18))
    assert [x[0] for x in projected["data"]] == list(range(37, 40))
    assert len(projected["includes"]) == 1  # 6's
    # The projection ran where the keeper was alone: 2-4, 10-14, 19-30 and 31-33, 41-60,
    # and the messages without data there, but never while another subscriber was there.
    assert 40 <= made <= 60


def test_churn_from_another_thread_toggles_the_projection_mid_read(serve: Serve) -> None:
    # 2000 tweets in 40 reads: a tweets keeper throughout; another thread keeps subscribing
    # and disposing a second tweets, includes, select(attrgetter("data")) and items, so the
    # projection goes on and off in the middle of reads. The keeper gets every tweet once,
    # in order; a churned subscriber a run of consecutive tweets and, after its dispose()
    # returned, at most the one whose delivery had begun.
    total = 2000
    groups = [[tweet(n) for n in range(start, start + 50)] for start in range(2, total, 50)]
    groups[-1] = [tweet(n) for n in range(1952, total + 1)]
    server, connection = serve(Feed(groups, pause=0.003))
    stream = TweetStream(connection)
    keeper: list[int] = []
    done = threading.Event()
    churned: Churned = []
    ends: list[int] = []

    def number(item: Any) -> int | None:
        if type(item) is Parsed:
            item = item.value.data
        return int(item.id) if type(item).__name__ == "Tweet" else None

    kinds: dict[str, Subscribe] = {
        "tweets": lambda f: stream.tweets.subscribe(f, lambda _: None),
        "includes": lambda f: stream.includes.subscribe(f, lambda _: None),
        "data": lambda f: stream.select(attrgetter("data")).subscribe(f, lambda _: None),
        "items": lambda f: stream.items.subscribe(f, lambda _: None),
    }
    thread = churner(kinds, number, done, churned, name="test-projection-churn")
    try:
        with switching_often():
            with projecting() as made, stream.hold():
                stream.tweets.subscribe(
                    lambda t: keeper.append(int(t.id)),
                    lambda _: (ends.append(server.connections), done.set()),
                )
                thread.start()
            assert done.wait(5.0)
    finally:
        done.set()
        thread.join(2.0)
    assert ends == [1]
    assert keeper == list(range(1, total + 1))
    assert_churned_runs(churned)
    assert 0 < len(made) < total - 1  # the projection went on and off


# --- other picks and operators, the hook face --------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda s: s.select(attrgetter("data")),  # another attrgetter: never projected
        lambda s: s.select(lambda r: r.data),
        lambda s: s.select(TWEET_OF),  # the very pick: projected, the same
        lambda s: s.responses.pipe(ops.map(TWEET_OF), ops.filter(bool)),
    ],
    ids=["attrgetter", "lambda", "TWEET_OF", "responses-map"],
)
def test_other_picks_of_the_tweet_give_the_same(serve: Serve, make: Any) -> None:
    def run(source_of: Callable[[TweetStream], Observable[Any]]) -> tuple[list[Any], int]:
        with projecting() as made:
            _server, connection = serve(Feed([mixed(2, 40)]))
            stream = TweetStream(connection)
            log = Log()
            log.sub("x", source_of(stream), witness=True)
            return log.wait()["x"], len(made)

    got, _made = run(make)
    reference, made_reference = run(lambda s: s.tweets)
    assert got == reference
    assert [x[0] for x in got[:-1]] == list(range(1, 41))
    assert made_reference > 30


def test_only_tweets_own_pick_is_projected(serve: Serve) -> None:
    def made_by(source_of: Callable[[TweetStream], Observable[Any]]) -> int:
        with projecting() as made:
            _server, connection = serve(Feed([mixed(2, 20)]))
            stream = TweetStream(connection)
            log = Log()
            log.sub("x", source_of(stream), witness=True)
            log.wait()
            return len(made)

    assert made_by(lambda s: s.tweets) > 15
    assert made_by(lambda s: s.select(TWEET_OF)) > 15
    assert made_by(lambda s: s.select(attrgetter("data"))) == 0
    assert made_by(lambda s: s.select(lambda r: r.data)) == 0
    assert made_by(lambda s: s.responses) == 0
    assert made_by(lambda s: s.includes) == 0


def test_take_two_tweets_subscribers_and_a_pair(serve: Serve) -> None:
    def scenario() -> dict[str, list[Any]]:
        _server, connection = serve(Feed([mixed(2, 25), mixed(26, 40)]))
        stream = TweetStream(connection)
        log = Log()
        with stream.hold():
            log.sub("take", stream.tweets.pipe(ops.take(12)))
            log.sub("a", stream.tweets, witness=True)
            log.sub("b", stream.tweets)
        return log.wait()

    projected, plain, made = both(scenario)
    assert projected == plain
    assert [x[0] for x in projected["take"][:-1]] == list(range(1, 13))
    assert projected["take"][-1] == "completed"
    assert projected["a"] == projected["b"]
    assert made == 0  # never one subscriber alone

    def alone() -> list[Any]:
        server, connection = serve(Feed([mixed(2, 25), mixed(26, 40)]))
        stream = TweetStream(connection)
        log = Log()
        log.sub("take", stream.tweets.pipe(ops.take(12)), witness=True)
        got = log.wait()["take"]
        assert wait_until(lambda: server.connections == 1 and not reader_threads(), 2.0)
        return got

    projected_take, plain_take, made = both(alone)
    assert projected_take == plain_take == projected["take"]
    assert 1 <= made <= 12  # the take ended the connection within the read


def test_tweets_with_a_subscriber_of_the_other_items(serve: Serve) -> None:
    # select_other_items() says it ignores the messages: the tweets are still the one
    # taker (projected), and the other one still gets every keep-alive and malformed line.
    def scenario() -> dict[str, list[Any]]:
        _server, connection = serve(Feed([mixed(2, 30), mixed(31, 45)]))
        stream = TweetStream(connection)
        log = Log()
        with stream.hold():
            log.sub("tweets", stream.tweets, witness=True)
            log.sub("others", stream.items.pipe(select_other_items()))
        got = log.wait()
        got["others"] = [x for x in got["others"] if "Connected" not in str(x)]
        return got

    projected, plain, made = both(scenario)
    assert projected == plain
    assert [x[0] for x in projected["tweets"][:-1]] == list(range(1, 46))
    assert sum("MalformedMessage" in str(x) for x in projected["others"]) == 6
    assert made > 30


def test_tweets_and_the_hook_face_on_one_connection(serve: Serve) -> None:
    # Two takers (same and TWEET_OF): no projection while the hook face is there; it leaves
    # at 17 in the middle of a read, and from then on the tweets alone are projected.
    def scenario() -> dict[str, list[Any]]:
        _server, connection = serve(Feed([mixed(2, 30), mixed(31, 50)]))
        stream = TweetStream(connection)
        log = Log()
        client = Hooks(connection, leave_at=17)
        with stream.hold():
            log.sub("tweets", stream.tweets, witness=True)
            thread = client.sample(threaded=True)
            assert wait_until(lambda: connection._shared.subscribers >= 2, 2.0)
        got = log.wait()
        assert client.disconnected.wait(2.0)
        assert thread is not None
        thread.join(2.0)
        got["hooks"] = list(client.tweets)
        return got

    projected, plain, made = both(scenario)
    assert projected == plain
    assert projected["hooks"] == list(range(1, 18))
    assert [x[0] for x in projected["tweets"][:-1]] == list(range(1, 51))
    assert 25 <= made <= 50 - 17 + 6  # 18-50 and the errors-only messages among them


# --- the backoff: data resets it, system messages alone do not ---------------------------------


def test_the_backoff_is_unchanged_by_the_projection() -> None:
    # Seven connections: 1 and 4 send a tweet, then a read of tweets among system messages
    # (data: the next reconnect is at once); the others system messages alone, many a read
    # (the backoff grows: 0, step, 2 step, linear). A tweets-only subscriber (projected on
    # 1 and 4; any events subscriber would turn the value path off, so the waits are timed
    # at the server) and a tweets+includes pair reconnect alike.
    system = b'{"errors":[{"title":"operational-disconnect","detail":"d"}]}'
    step = 0.1

    def run(names: list[str]) -> tuple[list[bool], list[Any], int]:
        counter = [0]
        closed: list[float] = []
        opened: list[float] = []
        connections: list[Connection[Any]] = []

        def handler(conn: socket.socket, _: bytes) -> None:
            opened.append(time.monotonic())
            counter[0] += 1
            k = counter[0]
            if k in (1, 4):
                before = connections[0].stats.messages
                conn.sendall(HEAD + chunk(tweet(k * 100) + b"\r\n"))
                wait_until(lambda: connections[0].stats.messages > before, 2.0)
                body = [system, tweet(k * 100 + 1), system] * 5
                conn.sendall(chunk(b"".join(x + b"\r\n" for x in body)))
            else:
                conn.sendall(HEAD + chunk(b"".join(system + b"\r\n" for _ in range(20))))
            # Noted before the body's end is sent: once the client has it, it may give up and
            # the test read `closed` before this thread had appended the last time.
            closed.append(time.monotonic())
            conn.sendall(b"0\r\n\r\n")

        with RawServer(handler) as server:
            connection: Connection[Any] = Connection(
                StreamRequest("GET", f"{server.url}/2/tweets/sample/stream"),
                to_stream_response,
                policy=ReconnectPolicy(max_retries=3, network_wait_step=step),
                is_data=is_v2_data,
            )
            connections.append(connection)
            stream = TweetStream(connection)
            log = Log()
            with stream.hold():
                log.sub("tweets", stream.tweets, witness=True)
                for name in names:
                    log.sub(name, getattr(stream, name))
            got = log.wait()
            waited = [
                later - end > step / 2 for end, later in zip(closed[:-1], opened[1:], strict=True)
            ]
            return waited, [x[0] for x in got["tweets"]], server.connections

    with projecting() as made:
        alone = run([])
    assert len(made) >= 10  # tweets 101 and 401, five times each, went the projection's way
    with projecting() as made:
        pair = run(["includes"])
    assert made == []
    assert alone == pair
    waited, ids, connections = alone
    assert connections == 7  # data resets the retries too: 3 after 1, 3 after 4
    assert ids == [100, *[101] * 5, 400, *[401] * 5, "error"]
    # At once after a connection with data; the system messages alone never reset the wait.
    assert waited == [False, True, True, False, True, True]


# --- raising and self-disposing subscribers -----------------------------------------------------


def test_a_raising_tweets_subscriber(serve: Serve) -> None:
    # Raises at tweet 6, in the middle of a read on the projection's way: the same tweets
    # before, the same end, nothing after.
    def scenario() -> tuple[list[Any], Any, int]:
        _server, connection = serve(Feed([mixed(2, 20), mixed(21, 30)]))
        stream = TweetStream(connection)
        got: list[Any] = []
        ended: list[Any] = []
        done = threading.Event()

        def on_next(t: Any) -> None:
            got.append(int(t.id))
            if int(t.id) == 6:
                raise KeyError("subscriber bug")

        stream.tweets.subscribe(
            on_next, lambda e: (ended.append((type(e).__name__, str(e))), done.set())
        )
        done.wait(2.0)
        assert wait_until(lambda: not reader_threads(), 2.0)
        return got, ended, connection.stats.messages

    projected, plain, made = both(scenario)
    assert projected == plain
    assert projected[0] == list(range(1, 7))
    assert 1 <= made <= 6


def test_a_subscriber_disposing_itself_on_its_first_tweet(serve: Serve) -> None:
    # The first keeper, at tweet 3, starts one that disposes itself on its first tweet, and
    # leaves: the new one alone (projected) gets exactly one, then the connection closes.
    def scenario() -> tuple[list[int], list[int], int]:
        server, connection = serve(Feed([mixed(2, 40)]))
        stream = TweetStream(connection)
        first: list[int] = []
        second: list[int] = []
        holder: dict[str, abc.DisposableBase] = {}

        def on_second(t: Any) -> None:
            second.append(int(t.id))
            holder["second"].dispose()

        def on_first(t: Any) -> None:
            first.append(int(t.id))
            if int(t.id) == 3:
                holder["second"] = stream.tweets.subscribe(on_second)
                holder["first"].dispose()

        holder["first"] = stream.tweets.subscribe(on_first)
        assert wait_until(lambda: len(second) >= 1, 2.0)
        assert wait_until(lambda: not reader_threads(), 2.0)
        time.sleep(0.05)  # anything late would show
        return first, second, server.connections

    projected, plain, made = both(scenario)
    assert projected == plain == ([1, 2, 3], [4], 1)
    assert made == 3  # 2 and 3 (the first alone), 4 (the second alone), then nothing


# --- the other streams' converters -------------------------------------------------------------


@pytest.mark.parametrize(
    "convert",
    [
        to_compliance_response,
        ComplianceConverter(),
        to_label_response,
        LabelConverter(),
        to_like_response,
        to_activity_response,
        to_v1_message,
    ],
    ids=repr,
)
def test_other_converters_have_no_projection(convert: Any) -> None:
    assert getattr(convert, "projections", None) is None


def test_a_compliance_stream_still_converts_every_message(serve: Serve) -> None:
    # ComplianceConverter counts unknown kinds as it converts: a compliance-only subscriber
    # (one selecting subscriber, as tweets alone) still has every message converted.
    def line(n: int) -> bytes:
        if n % 2:
            return b'{"data":{"mystery_%d":{"event_at":"2024-01-01T00:00:00.000Z"}}}' % (n % 3)
        return (
            b'{"data":{"delete":{"tweet":{"id":"%d","author_id":"2"},'
            b'"event_at":"2024-01-01T00:00:00.000Z"}}}' % n
        )

    def run(names: list[str]) -> tuple[list[Any], dict[str, int]]:
        converter = ComplianceConverter()
        feed = Feed([[line(n) for n in range(2, 40)]], first=line(1))
        _server, connection = serve(feed, convert=converter)
        stream = ComplianceStream(connection)
        log = Log()
        with stream.hold():
            log.sub("compliance", stream.compliance, witness=True)
            for name in names:
                log.sub(name, getattr(stream, name))
        got = log.wait()["compliance"]
        return got, dict(converter.unknown_kinds.snapshot())

    with projecting() as made:
        alone = run([])
        pair = run(["responses"])
    assert made == []
    assert alone == pair
    assert len(alone[0]) == 40  # 39 events and the end
    assert sum(alone[1].values()) == 20  # the odd ones


# --- converters that only look like to_stream_response -----------------------------------------


def _redacting() -> Any:
    calls = [0]

    @functools.wraps(to_stream_response)
    def redacting(doc: dict[str, Any]) -> Any:
        calls[0] += 1
        data = doc.get("data")
        if type(data) is dict:
            doc = {**doc, "data": {**data, "text": "redacted"}}
        return to_stream_response(doc)

    redacting.calls = calls  # type: ignore[attr-defined]
    return redacting


def _calls(convert: Any) -> int:
    return convert.call_count if isinstance(convert, mock.Mock) else convert.calls[0]  # type: ignore[no-any-return]


# Was broken by f05a46c (a wrapper passed for to_stream_response); fixed: the projections
# name the function they stand for.
@pytest.mark.parametrize(
    "make",
    [_redacting, lambda: mock.Mock(wraps=to_stream_response)],
    ids=["functools.wraps", "Mock(wraps=...)"],
)
def test_a_wrapped_converter_is_called_for_every_message(serve: Serve, make: Any) -> None:
    def run(names: list[str]) -> tuple[list[Any], int]:
        convert = make()
        _server, connection = serve(Feed([mixed(2, 20)]), convert=convert)
        stream = TweetStream(connection)
        log = Log()
        with stream.hold():
            log.sub("tweets", stream.tweets, witness=True)
            for name in names:
                log.sub(name, getattr(stream, name))
        return log.wait()["tweets"], _calls(convert)

    alone, pair = run([]), run(["includes"])
    # got (wraps): the pair's texts are "redacted", the lone subscriber's only for tweet 1
    assert alone[0] == pair[0]
    # got: the converter called once alone (the first read), 24 times for the pair
    assert alone[1] == pair[1]


# Was broken by f05a46c (a Mock converter failed every subscription); fixed.
def test_a_mock_converter_still_streams(serve: Serve) -> None:
    convert = mock.Mock(side_effect=to_stream_response)
    _server, connection = serve(Feed([mixed(2, 10)]), convert=convert)
    stream = TweetStream(connection)
    log = Log()
    log.sub("tweets", stream.tweets, witness=True)
    got = log.wait()["tweets"]
    # got: [('error', 'TypeError', "'Mock' object is not iterable")], no tweet, no call
    assert [x[0] for x in got[:-1]] == list(range(1, 11))
    assert convert.call_count >= 10
