"""Issue 17: a message delivered from its value. When a connection's share has only
selecting subscribers (``tweets``, ``includes``, ``responses`` ...), the parser gives each its
pick of the message's value itself, without making the ``Parsed`` and without the share's
``on_next`` (``rxtweet.operators.share.ValueCalls``). It must give exactly what the share
gives: the same items to each subscriber, in the same order, nothing after a disposal, the
same error when a subscriber raises, and the way back to the share as soon as a subscriber
that needs the whole item (``items``, ``events``, a tap) joins, even within one read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops
from support import count_parsed, tweet_outcome

from rxtweet import connection as connection_module
from rxtweet import parse as parse_module
from rxtweet.connection import Connection
from rxtweet.http import StreamRequest
from rxtweet.operators import share as share_module
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.testing import MockTransport
from rxtweet.transport_base import ResponseHead, TransportOptions
from rxtweet.v2.convert import to_stream_response
from rxtweet.v2.stream import TweetStream

LINES = {
    "tweet": b'{"data":{"id":"%d","text":"t%d"}}',
    "full": (
        b'{"data":{"id":"%d","text":"f%d","author_id":"9"},'
        b'"includes":{"users":[{"id":"9","name":"n","username":"u"}]},'
        b'"matching_rules":[{"id":"5","tag":"x"}]}'
    ),
    "errors": b'{"errors":[{"title":"operational-disconnect","detail":"%d%d"}]}',
    "keepalive": b"",
    "malformed": b'{"data":{"id":"%d","text":"cut%d"',
}

SUBSTREAMS = ["tweets", "includes", "errors", "matching_rules", "responses", "items", "events"]

lines = st.lists(st.sampled_from(sorted(LINES)), max_size=30).map(
    lambda kinds: [LINES[kind].replace(b"%d", str(n).encode()) for n, kind in enumerate(kinds)]
)
subscribers = st.lists(
    st.tuples(
        st.sampled_from(SUBSTREAMS),
        st.one_of(st.none(), st.integers(1, 5)),  # take(n)
        st.one_of(st.none(), st.integers(0, 6)),  # raise at the n-th item
    ),
    min_size=1,
    max_size=4,
)


class OneRead(MockTransport):
    """A MockTransport that hands over its first line as one read and all the others as a
    second (the batch path of real socket reads), so that subscribers come and go within a
    read. (The first read of a connection goes through the check for its first data.)"""

    def batches(
        self,
        request: StreamRequest,
        options: TransportOptions,
        *,
        on_response: Callable[[ResponseHead], None] | None = None,
        on_line_dropped: Callable[[int], None] | None = None,
    ) -> Observable[list[bytes]]:
        lines = self.lines(
            request, options, on_response=on_response, on_line_dropped=on_line_dropped
        )

        def two_reads(all_lines: list[bytes]) -> Observable[list[bytes]]:
            return reactivex.from_iterable([all_lines[:1], all_lines[1:]])

        return lines.pipe(ops.to_list(), ops.flat_map(two_reads), ops.filter(bool))


def _comparable(item: Any) -> Any:
    if type(item).__name__ == "Parsed":
        return ("parsed", repr(item.value), item.raw)
    return repr(item)


def _stream(batch: list[bytes]) -> TweetStream:
    """A v2 stream over one connection whose server sends ``batch`` (in two reads), once."""
    connection: Connection[Any] = Connection(
        StreamRequest("GET", "https://api.x.com/2/tweets/sample/stream"),
        transport=OneRead(lambda _: reactivex.from_iterable(batch)),
        convert=to_stream_response,
        policy=ReconnectPolicy(max_retries=0),
    )
    return TweetStream(connection)


def _run(batch: list[bytes], subs: list[tuple[str, int | None, int | None]]) -> list[Any]:
    """Each subscriber's items (as reprs) and end, one read of ``batch``."""
    stream = _stream(batch)
    got: list[list[Any]] = [[] for _ in subs]
    ended = [threading.Event() for _ in subs]
    with stream.hold():
        for index, (name, take, raise_at) in enumerate(subs):
            source = getattr(stream, name)
            if take is not None:
                source = source.pipe(ops.take(take))
            seen = got[index]
            done = ended[index]

            def on_next(item: Any, seen: list[Any] = seen, raise_at: int | None = raise_at) -> None:
                if raise_at is not None and len(seen) == raise_at:
                    seen.append("raised")
                    raise KeyError("subscriber")
                seen.append(_comparable(item))

            def on_error(error: Exception, seen: list[Any] = seen, done: Any = done) -> None:
                seen.append(("error", type(error).__name__))
                done.set()

            def on_completed(seen: list[Any] = seen, done: Any = done) -> None:
                seen.append("completed")
                done.set()

            source.subscribe(on_next, on_error, on_completed)
    for done in ended:
        done.wait(2)
    return got


@given(lines, subscribers)
@settings(max_examples=250, deadline=None)
def test_value_delivery_gives_what_the_share_gives(
    batch: list[bytes], subs: list[tuple[str, int | None, int | None]]
) -> None:
    fused = _run(batch, subs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parse_module, "multicast_of", lambda emit: None)  # always the share
        patch.setattr(connection_module, "multicast_of", lambda emit: None)
        plain = _run(batch, subs)
    assert fused == plain


def test_selecting_subscribers_are_served_from_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # Otherwise the equivalence above would hold trivially: count the Parsed made.
    made = count_parsed(monkeypatch)
    batch = [LINES["tweet"].replace(b"%d", b"%d" % n) for n in range(1, 7)]
    assert _run(batch, [("tweets", None, None), ("includes", None, None)])[0][:6] == [
        repr(to_stream_response({"data": {"id": str(n), "text": f"t{n}"}}).data)
        for n in range(1, 7)
    ]
    assert made == [1]  # the first read's message only (it waits for the first data)
    _run(batch, [("tweets", None, None), ("items", None, None)])  # items needs the Parsed
    assert len(made) == 1 + 6


def test_a_plain_subscriber_joining_mid_read_gets_the_parsed_items(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A tweets subscriber that, at its second tweet, subscribes to items: from the next
    # message on, the share's way (items needs the Parsed); the tweets go on in order.
    made = count_parsed(monkeypatch)
    stream = _stream([LINES["tweet"].replace(b"%d", b"%d" % n) for n in range(1, 7)])
    tweets: list[str] = []
    items: list[Any] = []

    def on_tweet(tweet: Any) -> None:
        tweets.append(tweet.text)
        if len(tweets) == 2:
            stream.items.subscribe(items.append)

    done = threading.Event()
    stream.tweets.subscribe(on_tweet, lambda _: done.set(), done.set)
    assert done.wait(2)
    assert tweets == ["t1", "t2", "t3", "t4", "t5", "t6"]
    parsed = [item.value.data.text for item in items if type(item).__name__ == "Parsed"]
    assert parsed == ["t3", "t4", "t5", "t6"]
    assert len(made) == 1 + 4  # t1 (the first read), then t3-t6: t2 came from its value


def test_value_calls_follow_the_subscribers() -> None:
    multicast: Any = share_module._Multicast()
    assert multicast.value_calls is None  # nobody
    stream = TweetStream(
        Connection(
            StreamRequest("GET", "https://api.x.com/2/tweets/sample/stream"),
            transport=MockTransport(lambda _: reactivex.never()),
            convert=to_stream_response,
        )
    )
    with stream.hold():
        tweets = stream.tweets.subscribe(lambda _: None)
        multicast = stream.connection._shared._subject  # type: ignore[attr-defined]
        assert multicast.value_calls is not None and len(multicast.value_calls[1]) == 1
        events = stream.events.subscribe(lambda _: None)
        assert multicast.value_calls is None  # events take the items themselves
        events.dispose()
        assert multicast.value_calls is not None
        tap = stream.connection._shared.tap(lambda _: None)
        assert multicast.value_calls is None  # so does a tap
        tap.dispose()
        assert multicast.value_calls is not None
        tweets.dispose()
    assert multicast.value_calls is None


def _count_projected(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets an entry for each tweet the parser makes straight from its message
    (``to_stream_tweet``, the projection of ``tweets``) from now on."""
    from rxtweet.v2 import convert as convert_module

    made: list[int] = []
    real = convert_module.to_stream_tweet

    def counting(doc: dict[str, Any]) -> Any:
        made.append(1)
        return real(doc)

    monkeypatch.setitem(convert_module.PROJECTIONS, convert_module.TWEET_OF, counting)
    return made


def test_a_tweets_only_subscriber_gets_its_tweets_made_straight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One subscriber of tweets: the parser makes each Tweet without its StreamResponse
    # (convert.PROJECTIONS); two subscribers: the response is made and picked from.
    made = _count_projected(monkeypatch)
    batch = [LINES["tweet"].replace(b"%d", b"%d" % n) for n in range(1, 7)]
    expected = [
        repr(to_stream_response({"data": {"id": str(n), "text": f"t{n}"}}).data)
        for n in range(1, 7)
    ]
    assert _run(batch, [("tweets", None, None)])[0][:6] == expected
    assert len(made) == 5  # all but the first read's message (it waits for the first data)
    assert _run(batch, [("tweets", None, None), ("includes", None, None)])[0][:6] == expected
    assert len(made) == 5


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
DOCS = st.fixed_dictionaries(
    {},
    optional={
        "data": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {"id": st.one_of(st.from_regex(r"\A[0-9]{1,19}\Z"), JSON), "text": st.text()}
            ),
        ),
        "includes": JSON,
        "errors": st.one_of(JSON, st.lists(st.dictionaries(st.text(max_size=3), JSON))),
        "matching_rules": st.one_of(
            JSON, st.lists(st.fixed_dictionaries({"id": JSON, "tag": JSON}))
        ),
        "other": JSON,
    },
)


@given(DOCS)
@settings(max_examples=400, deadline=None)
def test_to_stream_tweet_is_to_stream_response_then_data(doc: dict[str, Any]) -> None:
    from rxtweet.v2.convert import to_stream_tweet

    def via_response(doc: dict[str, Any]) -> Any:
        return to_stream_response(doc).data

    assert tweet_outcome(to_stream_tweet, doc) == tweet_outcome(via_response, doc)


def test_the_projection_follows_the_subscribers_within_a_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The tweets subscriber alone (tweets made straight), then with an includes subscriber it
    # adds at its 2nd tweet (responses made and picked from), then alone again when that one
    # has taken two includes (take(2)): every tweet once, in order, on both ways.
    made = _count_projected(monkeypatch)
    batch = [LINES["full"].replace(b"%d", b"%d" % n) for n in range(1, 9)]
    stream = _stream(batch)
    tweets: list[str] = []
    includes: list[Any] = []

    def on_tweet(tweet: Any) -> None:
        tweets.append(tweet.text)
        if len(tweets) == 2:
            stream.includes.pipe(ops.take(2)).subscribe(includes.append)

    done = threading.Event()
    stream.tweets.subscribe(on_tweet, lambda _: done.set(), done.set)
    assert done.wait(2)
    assert tweets == [f"f{n}" for n in range(1, 9)]
    assert [sorted(value) for value in includes] == [["users"], ["users"]]
    # made straight: t2 (t1 was the first read's), then t5-t8 once includes had left
    assert len(made) == 1 + 4
