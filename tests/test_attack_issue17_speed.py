"""Hostile review of issue 17's speed-ups (commit 103aef3): the whole-chunks path of
``ChunkedDecoder.feed_lines``, the inline reactivex guard of the share and the substreams,
and tweets built without ``__init__``. Each must behave exactly as the code it replaced.
"""

from __future__ import annotations

import copy
import gzip
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.observer import Observer
from reactivex.subject import Subject
from support import Handler, RawServer, chunk, collect, get, raw_servers
from test_issue17_framing import fast, reference, x_chunk

from rxtweet import StreamConnectionError
from rxtweet.framing import ChunkedDecoder, LineSplitter
from rxtweet.operators.share import share_connection
from rxtweet.parse import Parsed
from rxtweet.substreams import select_messages
from rxtweet.transport import lines
from rxtweet.v2.convert import to_stream_response
from rxtweet.v2.models import ReferencedTweet, Tweet

# --- 1. framing: feed_lines == the chunk-by-chunk path, for any wire and reads ----------------


# Lines with CR anywhere (a trailing "\r", "\r\r", a CR in the middle), hex-looking lines,
# and the odd sizes a server may send.
CR_LINE = st.lists(st.sampled_from([b"a", b"\r", b"1", b"f", b"{", b"0", b";"]), max_size=12).map(
    b"".join
)


def _sized(fmt: bytes) -> Callable[[bytes], bytes]:
    return lambda line: fmt.replace(b"S", b"%x" % (len(line) + 2)) % line


ODD = st.one_of(
    CR_LINE.map(x_chunk),
    CR_LINE.map(x_chunk),
    CR_LINE.map(x_chunk),
    CR_LINE.map(x_chunk),
    CR_LINE.map(lambda line: b"%X\r\n%b\r\n\r\n" % (len(line) + 2, line)),
    CR_LINE.map(_sized(b"0000S\r\n%b\r\n\r\n")),
    CR_LINE.map(_sized(b"S;a=b\r\n%b\r\n\r\n")),
    CR_LINE.map(_sized(b"S \r\n%b\r\n\r\n")),
    CR_LINE.map(_sized(b" S\r\n%b\r\n\r\n")),
    CR_LINE.map(_sized(b"+S\r\n%b\r\n\r\n")),
    CR_LINE.map(_sized(b"0xS\r\n%b\r\n\r\n")),
    CR_LINE.map(_sized(b"S_\r\n%b\r\n\r\n")),
    CR_LINE.map(lambda line: b"%x\r\n%b\r\n\r\n" % (len(line) + 2 + (1 << 70), line)),
    CR_LINE.map(lambda line: b"%x\r\n%b\r\r\n\r\n" % (len(line) + 3, line)),  # "\r\r"
    CR_LINE.map(lambda line: b"%x\r\n%b\n\r\n" % (len(line) + 1, line)),
    CR_LINE.map(lambda line: b"%x\r\n%b\r\n" % (len(line), line)),  # part of a line
    st.integers(1000, 1500).map(lambda n: x_chunk(b"L" * n)),
    st.tuples(CR_LINE, CR_LINE).map(lambda ab: x_chunk(ab[0] + b"\r\n" + ab[1])),
    st.tuples(CR_LINE, CR_LINE).map(lambda ab: x_chunk(ab[0] + b"\n" + ab[1])),
    st.just(b"0\r\n\r\n"),
    st.just(b"0\r\nTrailer: x\r\n\r\n"),
    st.just(b"2\r\n\r\n\r\n"),
    st.binary(max_size=6),
)


@given(
    st.lists(ODD, max_size=30),
    st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=8),
    st.sampled_from([1, 2, 3, 4, 5, 7, 12, 1 << 20]),
)
@settings(max_examples=400, deadline=None)
def test_feed_lines_equals_the_plain_path_with_cr_and_odd_sizes(
    pieces: list[bytes], reads: list[int], max_line: int
) -> None:
    wire = b"".join(pieces)
    assert fast(wire, reads, max_line) == reference(wire, reads, max_line)


@pytest.mark.parametrize("max_line", [1, 2, 3, 4, 5, 6, 1 << 20])
@pytest.mark.parametrize(
    "line", [b"ab", b"ab\r", b"ab\r\r", b"\r", b"a\rb", b"", b"abcd", b"abc\r"]
)
def test_lines_at_max_line_and_with_cr_give_the_same_lines_and_drops(
    line: bytes, max_line: int
) -> None:
    wire = x_chunk(b"k") + x_chunk(line) + x_chunk(line) + x_chunk(b"z") + b"0\r\n\r\n"
    for read in (1, 2, 7, len(wire)):
        assert fast(wire, [read], max_line) == reference(wire, [read], max_line)


def test_one_byte_reads_and_path_switches_as_line_sizes_change() -> None:
    short = [b'{"n":%d}' % n for n in range(30)]
    long = [b"L" * 3000 + b"%d" % n for n in range(3)]
    odd = b"5\r\nab\r\nc\r\n" + b"3\r\nd\r\n\r\n"  # two lines in one chunk, then one split
    wire = (
        b"".join(map(x_chunk, short))
        + b"".join(map(x_chunk, long))
        + b"".join(map(x_chunk, short))
        + odd
        + b"".join(map(x_chunk, short))
        + b"0\r\n\r\n"
    )
    expected = short + long + short + [b"ab", b"cd"] + short
    for reads in ([1], [4096], [3001, 17, 5000], [len(wire)]):
        decoder, splitter = ChunkedDecoder(), LineSplitter()
        got: list[bytes] = []
        pos = i = 0
        while pos < len(wire):
            size = reads[i % len(reads)]
            i += 1
            got += decoder.feed_lines(wire[pos : pos + size], splitter)
            pos += size
        assert got == expected, reads
        assert decoder.done
        assert fast(wire, reads, 1 << 20) == reference(wire, reads, 1 << 20)


def test_an_error_after_whole_chunks_is_raised_at_the_same_read() -> None:
    good = b"".join(x_chunk(b"%d" % n) for n in range(50))
    for bad in (b"5\r\nabc\r\nXY", b"zz\r\n", b"0x5\r\nabc\r\n\r\n", b"g" * 1100):
        wire = good + bad + good
        for reads in ([len(wire)], [len(good) + 3], [7], [1]):
            got = fast(wire, reads, 1 << 20)
            assert got == reference(wire, reads, 1 << 20)
            assert got[-1][0] == "error", (bad, reads)


# --- 1. end to end: a real server on 127.0.0.1 -----------------------------------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
GZIP_HEAD = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    with raw_servers() as start:
        yield start


def _trickle(parts: list[tuple[bytes, int]]) -> Handler:
    """Send each (bytes, piece size) in pieces of that size, with TCP_NODELAY."""

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for data, size in parts:
            for pos in range(0, len(data), size):
                conn.sendall(data[pos : pos + size])
                if size < 64:
                    time.sleep(0.0005)

    return handler


def _lines_over_a_socket(
    serve: Callable[[Handler], RawServer], parts: list[tuple[bytes, int]]
) -> tuple[list[bytes], BaseException | None]:
    """The lines a real transport reads from a server that trickles ``parts``, and the
    error that ended them (None for a clean end)."""
    server = serve(_trickle(parts))
    return collect(lines(get(f"{server.url}/s"), stall_timeout=2))


def test_x_framing_then_odd_framing_mid_stream_over_a_real_socket(
    serve: Callable[[Handler], RawServer],
) -> None:
    short = [b'{"data":{"id":"%d","text":"t\\r"}}' % n for n in range(200)]
    long = [b'{"x":"' + b"y" * 2000 + b'%d"}' % n for n in range(5)]
    # several lines in one chunk, a line over three chunks, a CR before CRLF, extensions
    odd_lines = [b"a1", b"a2", b"b1b2b3", b"c\r", b"d"]
    odd = (
        chunk(b"a1\r\na2\n")
        + chunk(b"b1")
        + chunk(b"b2")
        + b"4;ext=1\r\nb3\r\n\r\n"
        + b"0004\r\nc\r\r\n\r\n"  # leading zeros, the line "c\r"
        + b"3\r\nd\r\n\r\n"
    )
    body = (
        b"".join(map(x_chunk, short[:100]))
        + b"".join(map(x_chunk, long))
        + odd
        + b"".join(map(x_chunk, short[100:]))
        + b"0\r\n\r\n"
    )
    expected = short[:100] + long + odd_lines + short[100:]
    items, error = _lines_over_a_socket(
        serve, [(HEAD, len(HEAD)), (body[:700], 1), (body[700:], 777)]
    )
    assert error is None
    assert items == expected


def test_a_body_cut_mid_chunk_after_whole_chunks_reports_the_cut_and_loses_nothing(
    serve: Callable[[Handler], RawServer],
) -> None:
    sent = [b'{"n":%d}' % n for n in range(300)]
    body = b"".join(map(x_chunk, sent))
    cut = body + x_chunk(b'{"n":"last"}')[:9]  # the size line and part of the payload
    items, error = _lines_over_a_socket(serve, [(HEAD + cut, 1500)])
    assert items == sent
    assert isinstance(error, StreamConnectionError), repr(error)


def test_gzip_body_of_short_lines_over_a_real_socket(
    serve: Callable[[Handler], RawServer],
) -> None:
    sent = [b'{"n":%d,"t":"x\\r"}' % n for n in range(500)]
    member = gzip.compress(b"".join(line + b"\r\n" for line in sent))
    body = b"".join(chunk(member[pos : pos + 100]) for pos in range(0, len(member), 100))
    items, error = _lines_over_a_socket(serve, [(GZIP_HEAD + body + b"0\r\n\r\n", 333)])
    assert error is None
    assert items == sent


def test_a_framing_lie_after_whole_chunks_ends_the_stream_with_the_lines_before(
    serve: Callable[[Handler], RawServer],
) -> None:
    sent = [b'{"n":%d}' % n for n in range(100)]
    body = b"".join(map(x_chunk, sent)) + b"0x5\r\nabc\r\n\r\n" + x_chunk(b"after")
    items, error = _lines_over_a_socket(
        serve, [(HEAD, len(HEAD)), (body[: len(body) - 40], 100_000), (body[-40:], 1)]
    )
    assert items == sent
    assert error is not None
    assert b"after" not in b"".join(items)


# --- 2. the inline guard: share and substreams ----------------------------------------------


def _shared() -> tuple[Subject[int], Any]:
    source: Subject[int] = Subject()
    return source, share_connection(source).observable


def test_a_share_subscriber_that_disposes_itself_in_on_next_gets_nothing_more() -> None:
    source, shared = _shared()
    got: list[int] = []
    other: list[int] = []
    box: list[Any] = []

    def on_next(value: int) -> None:
        got.append(value)
        if value == 2:
            box[0].dispose()

    shared.subscribe(other.append)
    box.append(shared.subscribe(on_next))
    for n in range(1, 6):
        source.on_next(n)
    assert got == [1, 2]
    assert other == [1, 2, 3, 4, 5]


def test_share_subscribers_disposing_each_other_mid_item() -> None:
    source, shared = _shared()
    got: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    subs: dict[str, Any] = {}

    def a(value: int) -> None:
        got["a"].append(value)
        if value == 1:
            subs["b"].dispose()  # b comes after a in this very item: must not get 1
            subs["c"].dispose()

    subs["a"] = shared.subscribe(a)
    subs["b"] = shared.subscribe(got["b"].append)
    subs["c"] = shared.subscribe(got["c"].append)
    source.on_next(0)
    source.on_next(1)
    source.on_next(2)
    assert got == {"a": [0, 1, 2], "b": [0], "c": [0]}


def test_a_share_subscriber_that_raises_sends_the_error_up_as_reactivex_does() -> None:
    def run(shared_of: Callable[[Subject[int]], Any]) -> tuple[list[int], str]:
        source: Subject[int] = Subject()
        shared = shared_of(source)
        got: list[int] = []

        def boom(value: int) -> None:
            if value == 2:
                raise RuntimeError("boom")

        shared.subscribe(boom)
        shared.subscribe(got.append)
        source.on_next(1)
        try:
            source.on_next(2)
        except RuntimeError as exc:
            return got, str(exc)
        return got, ""

    plain = run(lambda s: s.pipe(ops.share()))
    ours = run(lambda s: share_connection(s).observable)
    assert ours == plain == ([1], "boom")


def test_an_observer_object_and_callbacks_get_the_same_items_through_the_share() -> None:
    source, shared = _shared()
    by_callbacks: list[int] = []
    by_observer: list[Any] = []
    ends: list[str] = []

    class Raw(Observer[int]):
        def on_next(self, value: int) -> None:  # a subclass, not AutoDetachObserver
            by_observer.append(value)

    shared.subscribe(Raw())
    shared.subscribe(by_callbacks.append, on_completed=lambda: ends.append("done"))
    for n in range(3):
        source.on_next(n)
    source.on_completed()
    source.on_next(99)  # after the end: nobody may see it
    assert by_callbacks == by_observer == [0, 1, 2]
    assert ends == ["done"]


def test_take_n_through_the_share_and_a_resubscription() -> None:
    source, shared = _shared()
    first: list[int] = []
    ended: list[bool] = []
    shared.pipe(ops.take(2)).subscribe(first.append, on_completed=lambda: ended.append(True))
    later: list[int] = []
    shared.subscribe(later.append)
    for n in range(5):
        source.on_next(n)
    assert first == [0, 1] and ended == [True]
    assert later == [0, 1, 2, 3, 4]


def test_dispose_from_another_thread_stops_items_once_it_returned() -> None:
    source, shared = _shared()
    got: list[int] = []
    subscription = shared.subscribe(got.append)
    stop = threading.Event()

    def pump() -> None:
        n = 0
        while not stop.is_set():
            source.on_next(n)
            n += 1

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    time.sleep(0.05)
    subscription.dispose()
    # At most one item in flight (read the guard before dispose) may still land.
    seen = len(got)
    time.sleep(0.05)
    stop.set()
    thread.join(2)
    assert len(got) <= seen + 1
    assert got == list(range(len(got)))


def test_substream_subscriber_disposing_itself_or_raising() -> None:
    source: Subject[Any] = Subject()
    picked = source.pipe(select_messages(lambda v: v if v != "skip" else None))
    got: list[Any] = []
    other: list[Any] = []
    box: list[Any] = []

    def on_next(value: Any) -> None:
        got.append(value)
        if value == "b":
            box[0].dispose()

    box.append(picked.subscribe(on_next))
    picked.subscribe(other.append)
    for value in ("a", "skip", "b", "c"):
        source.on_next(Parsed(value, b"raw"))
    assert got == ["a", "b"]
    assert other == ["a", "b", "c"]

    source2: Subject[Any] = Subject()

    def boom(value: Any) -> None:
        raise RuntimeError("boom")

    raised: list[Any] = []
    source2.pipe(select_messages(lambda v: v)).subscribe(boom, on_error=raised.append)
    with pytest.raises(RuntimeError, match="boom"):
        source2.on_next(Parsed("x", b"raw"))
    plain: Subject[Any] = Subject()
    plain.pipe(ops.map(lambda p: p.value)).subscribe(boom, on_error=raised.append)
    with pytest.raises(RuntimeError, match="boom"):
        plain.on_next(Parsed("x", b"raw"))


def test_substream_observer_object_and_completion() -> None:
    source: Subject[Any] = Subject()
    picked = source.pipe(select_messages(lambda v: v))
    seen: list[Any] = []

    class Raw(Observer[Any]):
        def on_next(self, value: Any) -> None:
            seen.append(value)

        def on_completed(self) -> None:
            seen.append("end")

    picked.subscribe(Raw())
    source.on_next(Parsed(1, b""))
    source.on_completed()
    source.on_next(Parsed(2, b""))
    assert seen == [1, "end"]


# --- 3. a streamed Tweet is Tweet(data) -------------------------------------------------------

DATA = {
    "id": "1445880548472328192",
    "text": "hello \u00e9 " * 10,
    "author_id": "2244994945",
    "created_at": "2021-10-06T22:20:41.000Z",
    "referenced_tweets": [{"type": "quoted", "id": "1"}],
    "edit_history_tweet_ids": ["1445880548472328192"],
    "edit_controls": {"edits_remaining": "5", "editable_until": "2021-10-06T22:50:41.000Z"},
    "lang": "en",
    "unknown_key": {"z": 1},
}


def _streamed(data: dict[str, Any] | None = None, *, alone: bool = True) -> Tweet:
    doc: dict[str, Any] = {"data": dict(data or DATA)}
    if not alone:
        doc["matching_rules"] = [{"id": "1", "tag": "t"}]
    tweet = to_stream_response(doc).data
    assert tweet is not None
    return tweet


def _face(tweet: Tweet) -> tuple[Any, ...]:
    return (
        [(name, getattr(tweet, name, "<missing>")) for name in sorted(Tweet._FIELDS)],
        repr(tweet),
        str(tweet),
        len(tweet),
        tweet["id"],
        tweet["unknown_key"],
        tweet.unknown_key,
        dict(tweet.items()),
        list(tweet),
        "lang" in tweet,
        hash(tweet),
        sorted(dir(tweet)),
        tweet.get("nope", 7),
    )


@pytest.mark.parametrize("alone", [True, False])
def test_a_streamed_tweet_has_the_face_of_tweet_data(alone: bool) -> None:
    streamed, built = _streamed(alone=alone), Tweet(dict(DATA))
    assert type(streamed) is Tweet
    assert _face(streamed) == _face(built)
    assert streamed == built and hash(streamed) == hash(built)
    refs = streamed.referenced_tweets
    assert refs is streamed.referenced_tweets  # cached
    assert isinstance(refs, list) and isinstance(refs[0], ReferencedTweet)
    assert streamed.edit_controls is streamed.edit_controls
    assert streamed.edit_history_tweet_ids is streamed.edit_history_tweet_ids


@pytest.mark.parametrize("read_first", [False, True])
def test_copy_deepcopy_pickle_of_a_streamed_tweet(read_first: bool) -> None:
    streamed, built = _streamed(), Tweet(dict(DATA))
    if read_first:
        streamed.referenced_tweets, built.referenced_tweets  # noqa: B018
    for make in (
        copy.copy,
        copy.deepcopy,
        lambda t: pickle.loads(pickle.dumps(t)),
    ):
        a, b = make(streamed), make(built)
        assert type(a) is type(b) is Tweet
        assert _face(a) == _face(b)
        assert a.referenced_tweets is a.referenced_tweets
        assert (a.referenced_tweets is streamed.referenced_tweets) == (
            b.referenced_tweets is built.referenced_tweets
        )


def test_a_streamed_tweet_without_optional_fields_and_with_a_bad_one() -> None:
    raw = {"id": "5", "text": "x", "created_at": "not a time", "referenced_tweets": None}
    streamed, built = _streamed(raw), Tweet(dict(raw))
    assert streamed.referenced_tweets is None is built.referenced_tweets
    assert streamed.edit_history_tweet_ids is None
    with pytest.raises(ValueError, match="not a time"):
        streamed.created_at  # noqa: B018


def test_streamed_tweets_in_a_set_and_reactivex_distinct() -> None:
    tweets = [_streamed({"id": str(n % 3), "text": "t"}) for n in range(9)]
    assert len(set(tweets)) == 3
    got: list[Tweet] = []
    reactivex.from_iterable(tweets).pipe(ops.distinct()).subscribe(got.append)
    assert [t.id for t in got] == [0, 1, 2]


def test_nothing_reaches_a_tap_after_the_share_ended() -> None:
    from rxtweet.operators.share import SharedConnection

    def source(observer: Any, scheduler: Any = None) -> Any:
        # A guarded source that breaks its promise (an item after its end), as a racing
        # reader thread could: the share's own list must not deliver it any more.
        observer.on_next(1)
        observer.on_completed()
        observer.on_next(2)
        return reactivex.disposable.Disposable()

    shared = SharedConnection(reactivex.create(source), guarded=True)
    tapped: list[int] = []
    shared.tap(tapped.append)
    got: list[int] = []
    shared.observable.subscribe(got.append)
    assert got == [1]
    assert tapped == [1]
