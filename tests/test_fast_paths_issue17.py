"""The fast paths of issue 17 give exactly what the plain paths give."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

from rxtweet.errors import ChunkedEncodingError
from rxtweet.framing import ChunkedDecoder, LineSplitter
from rxtweet.operators.retry_when import retry_when
from rxtweet.v2.convert import to_stream_response

# --- retry_when(notifier_follows_errors=True) -------------------------------------------------

attempts = st.lists(
    st.tuples(st.lists(st.integers(0, 9), max_size=5), st.booleans()), min_size=1, max_size=6
)


def _source(plan: list[tuple[list[int], bool]]) -> reactivex.Observable[int]:
    """Attempt i emits plan[i]'s items, then fails (True) or completes (False)."""
    count = [0]

    def subscribe(observer: Any, _: Any = None) -> Any:
        items, fails = plan[min(count[0], len(plan) - 1)]
        count[0] += 1
        for item in items:
            observer.on_next(item)
        if fails:
            observer.on_error(OSError(f"attempt {count[0]}"))
        else:
            observer.on_completed()

    return reactivex.create(subscribe)


def _outcome(plan: list[tuple[list[int], bool]], retries: int, follows: bool) -> Any:
    got: list[Any] = []
    _source(plan).pipe(
        retry_when(lambda errors: errors.pipe(ops.take(retries)), notifier_follows_errors=follows)
    ).subscribe(got.append, lambda e: got.append(("error", str(e))), lambda: got.append("done"))
    return got


@settings(max_examples=150, deadline=None)
@given(plan=attempts, retries=st.integers(0, 5))
def test_retry_when_unlocked_items_are_the_locked_items(
    plan: list[tuple[list[int], bool]], retries: int
) -> None:
    assert _outcome(plan, retries, True) == _outcome(plan, retries, False)


def test_retry_when_unlocked_drops_items_after_disposal() -> None:
    got: list[int] = []
    subject: reactivex.subject.Subject[int] = reactivex.subject.Subject()
    subscription = subject.pipe(
        retry_when(lambda errors: errors, notifier_follows_errors=True)
    ).subscribe(got.append)
    subject.on_next(1)
    subscription.dispose()
    subject.on_next(2)
    assert got == [1]


# --- ChunkedDecoder.feed_lines: the one-line-chunk path -------------------------------------

lines_st = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
    min_size=1,
    max_size=12,
)


def _chunked(payloads: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in payloads if p) + b"0\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(lines=lines_st, data=st.data())
def test_feed_lines_is_dechunk_then_split_for_any_reads(lines: list[bytes], data: Any) -> None:
    # one message per chunk (the fast path), and some chunks carrying two lines or half one
    payloads = [line + b"\r\n" for line in lines]
    if data.draw(st.booleans()) and len(payloads) > 1:
        payloads[0:2] = [payloads[0] + payloads[1][:3], payloads[1][3:]]
    body = _chunked(payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=8)))
    reads = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    decoder, splitter = ChunkedDecoder(), LineSplitter()
    fast = [line for read in reads for line in decoder.feed_lines(read, splitter)]
    plain_decoder, plain_splitter = ChunkedDecoder(), LineSplitter()
    plain = plain_splitter.feed(b"".join(plain_decoder.feed(read) for read in reads))
    assert fast == plain
    assert decoder.done and plain_decoder.done


@pytest.mark.parametrize("size", [b"0x5", b"+5", b" 5", b"5_0"])
def test_feed_lines_refuses_sizes_int_alone_would_take(size: bytes) -> None:
    with pytest.raises(ChunkedEncodingError):
        ChunkedDecoder().feed_lines(size + b"\r\nabc\r\n\r\n", LineSplitter())


def test_feed_lines_refuses_a_one_line_chunk_without_its_crlf() -> None:
    with pytest.raises(ChunkedEncodingError):
        ChunkedDecoder().feed_lines(b"5\r\nabc\r\nXY0\r\n\r\n", LineSplitter())


# --- to_stream_response: the data-only message --------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"edit_history_tweet_ids": ["1"], "id": "1", "text": "hi"},
        {"id": "2", "text": ""},
    ],
)
def test_to_stream_response_data_only_is_the_general_result(data: dict[str, Any]) -> None:
    fast = to_stream_response({"data": data})
    general = to_stream_response({"data": data, "unknown": 1})  # a key the fast path refuses
    assert fast == general
    assert fast.data.data is data and fast.includes == {} and fast.errors == []
    assert fast.matching_rules == []
    again = to_stream_response({"data": data})
    assert again.includes is not fast.includes  # fresh, never shared, containers


def test_to_stream_response_data_only_still_refuses_bad_shapes() -> None:
    with pytest.raises(TypeError):
        to_stream_response({"data": "not an object"})
