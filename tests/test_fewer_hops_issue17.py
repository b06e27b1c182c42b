"""Issue 17's fewer hops per line give exactly what the plain reactivex subscriptions give."""

from __future__ import annotations

import threading
import traceback
from typing import Any

import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops
from reactivex.disposable import Disposable

from rxtweet.connection import Connection
from rxtweet.http import StreamRequest
from rxtweet.operators.forward import ForwardingObserver, subscribe_forward
from rxtweet.parse import Parsed, ParseStats, parse_lines
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.testing.mock_transport import MockTransport
from rxtweet.v2.convert import to_stream_response

# --- subscribe_forward --------------------------------------------------------------------

# What a (possibly misbehaving) source does: items, an end, and items after the end.
steps = st.lists(
    st.one_of(st.integers(0, 9), st.sampled_from(["error", "done", "raise"])), max_size=8
)


def _source(plan: list[Any], log: list[str]) -> Observable[int]:
    def subscribe(observer: Any, _: Any = None) -> Any:
        log.append("subscribed")
        for step in plan:
            if step == "error":
                observer.on_error(ValueError("boom"))
            elif step == "done":
                observer.on_completed()
            elif step == "raise":
                raise KeyError("in subscribe")
            else:
                observer.on_next(step)
        return Disposable(lambda: log.append("disposed"))

    return Observable(subscribe)


def _outcome(plan: list[Any], forward: bool, wrap: bool) -> list[Any]:
    log: list[Any] = []
    source = _source(plan, log)

    def subscribe(observer: Any, scheduler: Any = None) -> Any:
        target = (
            ForwardingObserver(observer.on_next, observer.on_error, observer.on_completed)
            if wrap
            else observer
        )
        if forward:
            return subscribe_forward(source, target, scheduler)
        return source.subscribe(target, scheduler=scheduler)

    try:
        subscription = Observable(subscribe).subscribe(
            log.append, lambda e: log.append(("error", repr(e))), lambda: log.append("done")
        )
    except KeyError as error:  # raised in subscribe after the end: nobody left to tell
        log.append(("raised", repr(error)))
    else:
        subscription.dispose()
    return log


@settings(max_examples=200, deadline=None)
@given(plan=steps, wrap=st.booleans())
def test_subscribe_forward_is_subscribe(plan: list[Any], wrap: bool) -> None:
    # Items, ends, items after an end (dropped), an exception in subscribe (an error) and
    # disposal: the same, in the same order.
    assert _outcome(plan, True, wrap) == _outcome(plan, False, wrap)


def test_forwarding_observer_calls_its_callables_as_they_are() -> None:
    got: list[Any] = []
    observer = ForwardingObserver(got.append, got.append, lambda: got.append("done"))
    assert observer.on_next == got.append  # bound once: no method of its own in between
    observer.on_next(1)
    error = ValueError("x")
    observer.on_error(error)
    observer.on_completed()
    assert got == [1, error, "done"]


# --- the connection parses its lines itself -------------------------------------------------

lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"",
                b"  ",
                b'{"data":{"id":"1","text":"a"}}',
                b'{"data":{"id":"2","text":"b"},"matching_rules":[{"id":3,"tag":null}]}',
                b'{"data":{"id":"3","text":"c","n":123456789012345678901234567890}}',
                b'{"data":"not an object"}',
                b"[1,2]",
                b"{not json",
                b'{"errors":[{"title":"operational-disconnect"}]}',
            ]
        ),
        st.binary(max_size=12),
    ),
    max_size=12,
)


def _plain(batch: list[bytes], exact: bool) -> tuple[list[Any], dict[str, Any]]:
    stats = ParseStats()
    got: list[Any] = []
    reactivex.from_iterable(batch).pipe(
        parse_lines(to_stream_response, stats, keep_raw=True, exact_ints=exact)
    ).subscribe(got.append)
    return got, _counts(stats)


def _counts(stats: ParseStats) -> dict[str, Any]:
    names = ("messages", "keep_alives", "malformed", "by_reason", "too_long", "overflowed")
    return {name: getattr(stats, name) for name in names}


def _connected(batch: list[bytes], exact: bool) -> tuple[list[Any], dict[str, Any]]:
    transport = MockTransport(lambda _: reactivex.from_iterable(batch))
    connection = Connection(
        StreamRequest("GET", "https://api.x.com/2/tweets/sample/stream"),
        transport=transport,
        convert=to_stream_response,
        policy=ReconnectPolicy(max_retries=0),
        exact_ints=exact,
    )
    got: list[Any] = []
    done = threading.Event()
    connection.items.pipe(ops.take_while(lambda item: type(item).__name__ != "Closed")).subscribe(
        got.append, lambda _: done.set(), done.set
    )
    assert done.wait(2)
    parsed = [item for item in got if type(item).__name__ not in ("Connected",)]
    return parsed, _counts(connection.stats)


def _comparable(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if type(item) is Parsed:
            out.append(("parsed", item.value, item.raw))
        else:
            out.append((type(item).__name__, getattr(item, "raw", None)))
    return out


@settings(max_examples=60, deadline=None)
@given(batch=lines, exact=st.booleans())
def test_connection_items_are_parse_lines_items(batch: list[bytes], exact: bool) -> None:
    # Every item (keep-alives and malformed lines included), in order, and the stats exact.
    plain, plain_stats = _plain(batch, exact)
    fused, fused_stats = _connected(batch, exact)
    assert _comparable(fused) == _comparable(plain)
    assert fused_stats == plain_stats


class _BatchingTransport:
    """A BatchTransport that answers with one batch (or, through ``lines``, one line)."""

    def __init__(self, line: bytes) -> None:
        self.line = line

    def lines(self, request: Any, options: Any, **_: Any) -> reactivex.Observable[bytes]:
        return reactivex.of(self.line)

    def batches(self, request: Any, options: Any, **_: Any) -> reactivex.Observable[list[bytes]]:
        return reactivex.of([self.line])


def _wrappers_to_is_data(transport: Any, marker: str) -> int:
    stacks: list[list[str]] = []

    def is_data(_: Any) -> bool:
        stacks.append([frame.filename for frame in traceback.extract_stack()])
        return True

    connection = Connection(
        StreamRequest("GET", "https://api.x.com/2/tweets/sample/stream"),
        transport=transport,
        convert=to_stream_response,
        policy=ReconnectPolicy(max_retries=0),
        is_data=is_data,
    )
    connection.items.pipe(ops.filter(lambda item: type(item) is Parsed), ops.take(1)).subscribe()
    assert stacks
    files = stacks[0]
    transport_at = max(i for i, name in enumerate(files) if name.endswith(marker))
    return len([name for name in files[transport_at:] if name.endswith("autodetachobserver.py")])


def test_a_batch_reaches_the_connection_through_no_reactivex_wrapper() -> None:
    # The point of the fused paths, measured: reactivex's AutoDetachObserver frames between
    # the transport's on_next and the connection's own on_next were 6 per line (defer, the
    # attempt, retry_when's result twice, parse_lines, the connection's subscription), then
    # 2 per read (retry_when's attempt, the parser's subscription); now none: retry_when
    # guards its attempts itself (notifier_follows_errors) and is the connection's guard.
    line = b'{"data":{"id":"1","text":"a"}}'
    assert _wrappers_to_is_data(_BatchingTransport(line), "fromiterable.py") == 0


def test_a_transport_without_batches_costs_one_wrapper_more() -> None:
    # Each line of a lines-only transport is wrapped as a batch of one (_one_line_batches).
    transport = MockTransport(lambda _: reactivex.of(b'{"data":{"id":"1","text":"a"}}'))
    assert _wrappers_to_is_data(transport, "mock_transport.py") == 1
