"""De-duplication (issue 14, section 3): the window, the operator, the ``Deduplicated``
source, the identities of each endpoint kind."""

from __future__ import annotations

import copy
import gc
import itertools
import math
import threading
import tracemalloc
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops
from reactivex.subject import Subject
from support import wait_until

from rxtweet.connection import Connection
from rxtweet.events import Connected, Disconnected, KeepAlive, StreamEvent
from rxtweet.http import StreamRequest
from rxtweet.operators.deduplicate import deduplicate
from rxtweet.parse import Parsed, ParseStats
from rxtweet.partitions import MergedConnection
from rxtweet.recovery.dedup import Deduplicated, DedupStats, DedupWindow
from rxtweet.testing import (
    FakeStreamServer,
    generate_activity_messages,
    generate_compliance_messages,
    generate_label_messages,
    generate_like_messages,
)
from rxtweet.v2.activity import to_activity_response
from rxtweet.v2.compliance import to_compliance_response
from rxtweet.v2.convert import to_stream_response
from rxtweet.v2.identity import identity_for, snowflake_ms
from rxtweet.v2.labels import to_label_response
from rxtweet.v2.likes import to_like_response
from rxtweet.v2.stream import TweetStream


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- the window -------------------------------------------------------------------------


def test_a_key_is_a_duplicate_within_the_window_and_forgotten_after_it() -> None:
    clock = FakeClock()
    window = DedupWindow(window=10.0, clock=clock)
    assert window.seen("a") is False
    clock.now = 4.0
    assert window.seen("b") is False
    clock.now = 10.0  # "a" is exactly window seconds old: still remembered
    assert window.seen("a") is True
    assert window.duplicates == 1
    # Forgotten at most window/64 after the window: "a" (t=0) by now; "b" (t=4) not.
    clock.now = 10.0 + 10.0 / 64 + 0.01
    assert window.seen("a") is False
    assert window.seen("b") is True
    clock.now = 14.0 + 10.0 / 64 + 0.01
    assert window.seen("b") is False
    assert window.duplicates == 2
    assert len(window) == 2  # the "a" and "b" just recorded again


def test_keys_are_remembered_at_least_the_window_at_any_pace() -> None:
    clock = FakeClock()
    window = DedupWindow(window=6.0, clock=clock)
    recorded: dict[int, float] = {}
    for n in range(2000):
        clock.now = n * 0.01
        assert window.seen(n) is False
        recorded[n] = clock.now
    # Every key recorded in the last 6 s is a duplicate; every older than 6 + 6/64 s is not.
    now = clock.now
    for n, when in recorded.items():
        age = now - when
        if age <= 6.0:
            assert window.seen(n) is True, (n, age)
        elif age > 6.0 + 6.0 / 64:
            assert window.seen(n) is False, (n, age)


def test_the_count_bound_forgets_the_oldest_first() -> None:
    window = DedupWindow(max_items=3, clock=FakeClock())
    for key in "abcd":
        assert window.seen(key) is False
    assert len(window) == 3
    assert [window.seen(key) for key in "bcd"] == [True, True, True]
    assert window.seen("a") is False  # forgotten; now recorded again, "b" goes
    assert window.seen("b") is False


def test_a_hold_keeps_the_keys_recorded_since_its_start_until_released() -> None:
    clock = FakeClock()
    window = DedupWindow(window=10.0, clock=clock)
    window.seen("before")  # t=0, older than the hold
    clock.now = 5.0
    window.seen("cut")  # t=5: the last key before a cut
    release = window.hold(5.0)
    assert window.holds == 1
    clock.now = 60.0  # far beyond the window: the recovery window is still replaying
    assert window.seen("before") is False  # not held: forgotten
    assert window.seen("cut") is True  # held
    release()
    release()  # idempotent
    assert window.holds == 0
    clock.now = 61.0
    assert window.seen("cut") is False  # released: forgotten at the next look


def test_the_earliest_of_nested_holds_counts_and_the_count_bound_still_applies() -> None:
    clock = FakeClock()
    window = DedupWindow(window=10.0, max_items=4, clock=clock)
    window.seen(1)
    clock.now = 2.0
    window.seen(2)
    late = window.hold(2.0)
    early = window.hold(0.0)
    clock.now = 50.0
    assert window.seen(1) is True and window.seen(2) is True
    early()
    clock.now = 51.0
    assert window.seen(1) is False  # only the later hold is left
    assert window.seen(2) is True
    for key in range(10, 20):
        window.seen(key)
    assert len(window) == 4  # the count bound applies under a hold
    assert window.seen(2) is False
    late()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"window": 0}, ValueError),
        ({"window": -1.0}, ValueError),
        ({"window": math.inf}, ValueError),
        ({"window": math.nan}, ValueError),
        ({"window": True}, TypeError),
        ({"window": "6"}, TypeError),
        ({"max_items": 0}, ValueError),
        ({"max_items": 1.5}, TypeError),
        ({"max_items": True}, TypeError),
        ({"clock": 3.0}, TypeError),
    ],
)
def test_the_window_checks_its_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        DedupWindow(**kwargs)


def test_hold_checks_its_argument() -> None:
    window = DedupWindow()
    with pytest.raises(ValueError, match="finite"):
        window.hold(math.nan)
    with pytest.raises(TypeError):
        window.hold("now")  # type: ignore[arg-type]


def test_memory_stays_flat_past_the_count_bound() -> None:
    window = DedupWindow(max_items=5_000, clock=FakeClock())
    counter = itertools.count(1528053368912060423)
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(20_000):
            window.seen(str(next(counter)))
        full = tracemalloc.get_traced_memory()[0]
        for _ in range(180_000):
            window.seen(str(next(counter)))
        later = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(window) == 5_000
    # 5,000 keys are about half a megabyte; 180,000 more keys must not add to it.
    assert later - full < 64 * 1024, (full, later)
    assert later < 5_000 * 400


# --- the operator -----------------------------------------------------------------------


def _values(items: list[Any]) -> list[Any]:
    return [item.value if type(item) is Parsed else item for item in items]


def test_the_operator_passes_events_and_keyless_messages_and_drops_duplicates() -> None:
    connected = Connected(status_code=200, headers={}, rate_limit=None)
    items: list[Any] = [
        connected,
        Parsed(1, b"1"),
        KeepAlive(),
        Parsed(1, b"1"),
        Parsed(None, b"{}"),
        Parsed(None, b"{}"),
        Parsed(2, b"2"),
        Disconnected(),
    ]
    window = DedupWindow()
    result = reactivex.from_iterable(items).pipe(
        deduplicate(lambda value: value, window), ops.to_list()
    )
    assert _values(result.run()) == [connected, 1, KeepAlive(), None, None, 2, Disconnected()]
    assert window.duplicates == 1


def test_the_operator_passes_errors_through() -> None:
    boom = OSError("cut")
    source: Observable[Any] = reactivex.concat(
        reactivex.of(Parsed(1, b"1"), Parsed(1, b"1")), reactivex.throw(boom)
    )
    got: list[Any] = []
    errors: list[Exception] = []
    source.pipe(deduplicate(lambda v: v, DedupWindow())).subscribe(got.append, errors.append)
    assert _values(got) == [1] and errors == [boom]


@settings(max_examples=150, deadline=None)
@given(
    sequence=st.lists(st.integers(0, 40), max_size=60),
    choices=st.lists(st.booleans(), min_size=120, max_size=120),
)
def test_any_interleaving_of_two_copies_gives_each_key_once_in_order(
    sequence: list[int], choices: list[bool]
) -> None:
    first, second = iter(sequence), iter(sequence)
    merged: list[int] = []
    picks = iter(choices)
    left, right = len(sequence), len(sequence)
    while left or right:
        take_first = next(picks, True) if left and right else bool(left)
        if take_first:
            merged.append(next(first))
            left -= 1
        else:
            merged.append(next(second))
            right -= 1
    items = [Parsed(n, b"%d" % n) for n in merged]
    out = reactivex.from_iterable(items).pipe(
        deduplicate(lambda v: v, DedupWindow(clock=FakeClock())), ops.to_list()
    )
    values = _values(out.run())
    assert values == list(dict.fromkeys(sequence))  # each once, in first-occurrence order


# --- Deduplicated -----------------------------------------------------------------------


class SubjectSource:
    """A minimal ItemSource whose items the test pushes on its own thread."""

    def __init__(self) -> None:
        self.subject: Subject[Any] = Subject()
        self.stats = ParseStats()
        self.request = StreamRequest("GET", "http://127.0.0.1:9/2/tweets/sample/stream")
        self.connected = False

    @property
    def items(self) -> Observable[Any]:
        return self.subject

    @property
    def lines(self) -> Observable[bytes]:
        return reactivex.of(b"line")

    @contextmanager
    def hold(self) -> Iterator[None]:
        yield


def tweet_doc(n: int) -> dict[str, Any]:
    return {"data": {"id": str(n), "text": f"tweet {n}", "edit_history_tweet_ids": [str(n)]}}


def tweet(n: int) -> Parsed[Any]:
    return Parsed(to_stream_response(tweet_doc(n)), b"")


def ids_of(items: list[Any]) -> list[int]:
    return [item.value.data.id for item in items if type(item) is Parsed]


def test_mark_recovered_counts_the_next_new_message_on_the_same_thread() -> None:
    source = SubjectSource()
    dedup: Deduplicated[Any] = Deduplicated(source, identity_for("tweets"))
    got: list[Any] = []
    dedup.items.subscribe(got.append)
    emit = source.subject.on_next

    emit(tweet(1))
    dedup.mark_recovered()
    dedup.mark_recovered()  # twice before one message: one mark
    emit(KeepAlive())  # an event does not take the mark
    emit(tweet(2))
    assert dedup.stats.recovered == 1
    dedup.mark_recovered()
    emit(tweet(1))  # a duplicate takes the mark but is not counted
    emit(tweet(3))  # unmarked
    assert dedup.stats.recovered == 1

    # A mark made on another thread is that thread's: it does not count here.
    other = threading.Thread(target=dedup.mark_recovered)
    other.start()
    other.join()
    emit(tweet(4))
    assert dedup.stats.recovered == 1
    # ... and that thread's own next message would take it.
    marked_then_emitted = threading.Thread(target=lambda: (dedup.mark_recovered(), emit(tweet(5))))
    marked_then_emitted.start()
    marked_then_emitted.join()
    assert dedup.stats.recovered == 2
    assert ids_of(got) == [1, 2, 3, 4, 5]
    assert dedup.stats.duplicates == 1


def test_stats_are_a_read_only_view_of_the_source_plus_duplicates_and_recovered() -> None:
    source = SubjectSource()
    dedup: Deduplicated[Any] = Deduplicated(source, identity_for("tweets"))
    stats = dedup.stats
    assert isinstance(stats, DedupStats) and isinstance(stats, ParseStats)
    dedup.items.subscribe(lambda item: None)
    for n in (1, 2, 1, 1, 3):
        source.stats.messages += 1
        dedup.mark_recovered()
        source.subject.on_next(tweet(n))
    source.stats.keep_alives += 2
    source.stats._count_malformed("not JSON")
    stats._count_overflow(7)  # a bounded hand-off's drop: the source counts it
    assert (stats.messages, stats.keep_alives, stats.malformed) == (5, 2, 1)
    assert (stats.duplicates, stats.recovered) == (2, 3)
    assert stats.overflowed == source.stats.overflowed == 1
    assert stats.by_reason == {"not JSON": 1}
    assert stats.snapshot() == {
        "messages": 5,
        "keep_alives": 2,
        "malformed": 1,
        "by_reason": {"not JSON": 1},
        "too_long": 0,
        "overflowed": 1,
        "duplicates": 2,
        "recovered": 3,
    }
    with pytest.raises(TypeError, match="read-only"):
        stats._count_malformed("x")
    with pytest.raises(TypeError, match="read-only"):
        stats._count_too_long(10)
    with pytest.raises(AttributeError):
        stats.duplicates = 0  # type: ignore[misc]
    assert "duplicates=2" in repr(stats)


def test_items_are_shared_so_every_subscriber_gets_each_message_once() -> None:
    source = SubjectSource()
    dedup: Deduplicated[Any] = Deduplicated(source, identity_for("tweets"))
    first: list[Any] = []
    second: list[Any] = []
    with dedup.hold():
        dedup.items.subscribe(first.append)
        dedup.items.subscribe(second.append)
    assert dedup.connected
    for n in (1, 2, 2, 3):
        source.subject.on_next(tweet(n))
    assert ids_of(first) == ids_of(second) == [1, 2, 3]
    assert dedup.lines.pipe(ops.to_list()).run() == [b"line"]  # the source's, as they are
    assert dedup.request is source.request and dedup.window.duplicates == 1


def test_redundant_connections_merged_give_each_message_exactly_once() -> None:
    total = 300
    docs = [tweet_doc(n) for n in range(1, total + 1)]
    with (
        FakeStreamServer(docs, keepalive_interval=0.2) as one,
        FakeStreamServer(docs, keepalive_interval=0.2) as two,
    ):
        connections = {
            n: Connection(
                StreamRequest("GET", server.url + "/2/tweets/sample/stream"), to_stream_response
            )
            for n, server in ((1, one), (2, two))
        }
        dedup: Deduplicated[Any] = Deduplicated(
            MergedConnection(connections), identity_for("tweets")
        )
        stream = TweetStream(dedup)
        ids: list[int] = []
        events: list[StreamEvent] = []
        with stream.hold():
            subscription = stream.tweets.subscribe(lambda t: ids.append(t.id))
            watching = stream.events.subscribe(events.append)
        try:
            assert wait_until(lambda: one.sent == total and two.sent == total, 3)
            assert wait_until(lambda: dedup.stats.messages == 2 * total, 2)
        finally:
            subscription.dispose()
            watching.dispose()  # the last subscriber: the connections close
    assert ids == list(range(1, total + 1))  # each once, in order
    assert dedup.stats.duplicates == total
    assert dedup.stats.snapshot()["duplicates"] == total
    assert dedup.stats.recovered == 0
    # Both connections' events got through (nothing but messages is de-duplicated).
    assert sorted(e.partition for e in events if isinstance(e, Connected)) == [1, 2]
    assert dedup.partitions == (1, 2)
    assert "partitions=1-2" in repr(stream)


# --- identities -------------------------------------------------------------------------


def keys_of(kind: str, convert: Callable[[Any], Any], docs: list[dict[str, Any]]) -> list[Any]:
    key = identity_for(kind)
    return [key(convert(copy.deepcopy(doc))) for doc in docs]


@pytest.mark.parametrize(
    ("kind", "convert", "docs"),
    [
        ("tweets", to_stream_response, [tweet_doc(n) for n in range(50)]),
        (
            "compliance",
            to_compliance_response,
            list(itertools.islice(generate_compliance_messages("tweets"), 200)),
        ),
        (
            "compliance",
            to_compliance_response,
            list(itertools.islice(generate_compliance_messages("users"), 200)),
        ),
        (
            "compliance",
            to_compliance_response,
            list(itertools.islice(generate_compliance_messages("likes"), 200)),
        ),
        ("likes", to_like_response, list(itertools.islice(generate_like_messages(), 200))),
        ("labels", to_label_response, list(itertools.islice(generate_label_messages(), 200))),
        (
            "activity",
            to_activity_response,
            list(itertools.islice(generate_activity_messages(), 200)),
        ),
    ],
)
def test_each_kind_keys_a_message_the_same_every_time_and_tells_others_apart(
    kind: str, convert: Callable[[Any], Any], docs: list[dict[str, Any]]
) -> None:
    first = keys_of(kind, convert, docs)
    again = keys_of(kind, convert, docs)
    assert first == again  # a re-sent message has the same key
    assert all(key is not None for key in first)
    for key in first:
        hash(key)
    assert len(set(first)) == len({repr(sorted(doc.items())) for doc in docs})
    # A system message (errors only) has no key: it always passes.
    assert identity_for(kind)(convert({"errors": [{"title": "operational-disconnect"}]})) is None


def test_compliance_keys_do_not_depend_on_field_order() -> None:
    doc = {
        "data": {
            "delete": {
                "tweet": {"id": "5", "author_id": "7"},
                "event_at": "2024-01-01T00:00:00.000Z",
            }
        }
    }
    flipped = {
        "data": {
            "delete": {
                "event_at": "2024-01-01T00:00:00.000Z",
                "tweet": {"author_id": "7", "id": "5"},
            }
        }
    }
    key = identity_for("compliance")
    assert key(to_compliance_response(doc)) == key(to_compliance_response(flipped))
    other = copy.deepcopy(doc)
    other["data"]["delete"]["event_at"] = "2024-01-01T00:00:01.000Z"
    assert key(to_compliance_response(other)) != key(to_compliance_response(doc))
    unknown = {
        "data": {"tweet_sparkle": {"tweet": {"id": "5"}, "event_at": "2024-01-01T00:00:00.000Z"}}
    }
    assert key(to_compliance_response(unknown)) == key(
        to_compliance_response(copy.deepcopy(unknown))
    )
    assert key(to_compliance_response(unknown)) != key(to_compliance_response(doc))


def test_label_keys_are_kind_tweet_and_time() -> None:
    doc = {
        "data": {
            "public_tweet_unviewable": {
                "tweet": {"id": "9", "author_id": "1"},
                "event_at": "2024-01-01T00:00:00.000Z",
                "application": "apply",
            }
        }
    }
    assert identity_for("labels")(to_label_response(doc)) == (
        "public_tweet_unviewable",
        "9",
        "2024-01-01T00:00:00.000Z",
    )


def test_unknown_kinds_use_the_raw_id_if_any() -> None:
    key = identity_for("something_new")
    assert key({"id": "3", "x": 1}) == "3"
    assert key({"event_uuid": "u-1"}) == "u-1"
    assert key(to_stream_response(tweet_doc(8))) == "8"
    assert key({"nothing": "here"}) is None
    assert key(42) is None


def test_snowflake_ms_is_the_creation_time() -> None:
    assert snowflake_ms("1528053368912060423") == 1653151287664
    assert snowflake_ms(0) == 1288834974657
    assert snowflake_ms(1 << 22) == 1288834974658
    with pytest.raises(ValueError, match="not negative"):
        snowflake_ms(-1)
    with pytest.raises(ValueError, match="int or a string"):
        snowflake_ms(1.5)  # type: ignore[arg-type]


def test_dedup_on_a_tweet_costs_little() -> None:
    # Not a benchmark (benchmarks/dedup.py measures it): a guard against an accidental
    # quadratic or a per-message scan. 20,000 messages in well under a second.
    responses = [to_stream_response(tweet_doc(n)) for n in range(20_000)]
    key: Callable[[Any], Hashable | None] = identity_for("tweets")
    window = DedupWindow()
    seen = window.seen
    for response in responses:
        seen(key(response))
    assert len(window) == 20_000 and window.duplicates == 0
