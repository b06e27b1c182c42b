"""Issue 17, attacking commit 05f340e: the connection's share selects for a substream itself
(``operators.share.Selecting``), and the hook face decides ``on_response`` once a run.

As a concurrent consumer (subscribers joining and leaving from other threads and from inside
an ``on_next`` of the same stream), a careless user (odd picks, odd observers, observers with
a ``selection`` of their own), a hostile server (a real :class:`FakeStreamServer` on
127.0.0.1 that cuts the connection in the middle) and a user of the hook face (``on_response``
set at any time, DEBUG switched on and off during a run). The reference for every fused
substream is what the same stream's ``items`` give, selected by hand, or what
``select_messages`` gives on an unshared source (the plain ``on_next`` path).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from operator import attrgetter
from typing import Any

import orjson
import pytest
import reactivex
from reactivex import Observable, Observer, abc
from reactivex import operators as ops
from reactivex.subject import Subject
from support import reader_threads, wait_until

from rxtweet import (
    Connected,
    ReconnectPolicy,
    StreamingClient,
    StreamResponse,
    Tweet,
)
from rxtweet.basestream import StreamAlreadyRunning
from rxtweet.events import KeepAlive
from rxtweet.operators.forward import ForwardingObserver
from rxtweet.operators.share import SharedConnection
from rxtweet.parse import Parsed
from rxtweet.substreams import Substreams, select_messages
from rxtweet.testing import Attempt, FakeStreamServer, generate_like_messages
from rxtweet.v2 import client as client_module

TOKEN = "bearer-token-for-the-share-attack"
FAST = ReconnectPolicy(network_wait_step=0.01, http_wait_start=0.01, rate_limit_wait_start=0.01)


class Msg:
    """A message with a number ``n`` and a free ``value`` (any object, falsy ones included)."""

    def __init__(self, n: int, value: Any = None, inner: Any = None) -> None:
        self.n = n
        self.value = value
        self.inner = inner

    def __repr__(self) -> str:
        return f"Msg({self.n}, {self.value!r})"


def parsed(n: int, value: Any = None, inner: Any = None) -> Parsed[Msg]:
    return Parsed(Msg(n, value, inner), str(n).encode())


def _number_of(item: Any) -> int:
    return int(item.value.n)


def numbers(got: list[Any]) -> list[int]:
    return [item.value.n if type(item) is Parsed else item for item in got]


# --- subscribers joining and leaving while items flow -----------------------------------------


def test_churn_from_another_thread_loses_nothing_for_those_who_stay() -> None:
    # A producer thread pushes numbered messages through the share; another thread keeps
    # subscribing and disposing fused substreams and plain ones. Those who stay get every item,
    # in order; a churned subscriber gets a contiguous run of items and nothing whose delivery
    # began after its dispose() returned.
    source: Subject[Any] = Subject()
    shared: SharedConnection[Any] = SharedConnection(source)
    total = 4000
    attr: list[int] = []
    lam: list[int] = []
    plain: list[Any] = []
    keepers = [
        shared.observable.pipe(select_messages(attrgetter("n"))).subscribe(attr.append),
        shared.observable.pipe(select_messages(lambda m: m.n)).subscribe(lam.append),
        shared.observable.subscribe(plain.append),
    ]
    produced = -1
    churned: list[tuple[list[Any], int]] = []
    done = threading.Event()

    def churn() -> None:
        kinds: list[Callable[[list[Any]], abc.DisposableBase]] = [
            lambda got: shared.observable.pipe(select_messages(attrgetter("n"))).subscribe(
                got.append
            ),
            lambda got: shared.observable.pipe(select_messages(lambda m: m.n)).subscribe(
                got.append
            ),
            lambda got: shared.observable.pipe(ops.map(_number_of)).subscribe(got.append),
        ]
        turn = 0
        while not done.is_set():
            got: list[Any] = []
            subscription = kinds[turn % 3](got)
            turn += 1
            time.sleep(0)
            subscription.dispose()
            churned.append((got, produced))

    thread = threading.Thread(target=churn, name="test-churn")
    thread.start()
    try:
        for n in range(total):
            produced = n
            source.on_next(parsed(n))
            if n % 20 == 0:
                time.sleep(0)
    finally:
        done.set()
        thread.join(2)
    assert attr == lam == list(range(total))
    assert numbers(plain) == list(range(total))
    assert sum(1 for got, _ in churned if got) > 3  # the churn did overlap the flow
    for got, limit in churned:
        if got:
            assert got == list(range(got[0], got[0] + len(got)))  # no gap while subscribed
            assert got[-1] <= limit  # nothing begun after dispose() returned
    for keeper in keepers:
        keeper.dispose()
    assert shared.subscribers == 0 and not shared.connected
    assert not source.observers  # the last leaving closed the upstream subscription


def test_subscribers_added_and_disposed_from_inside_on_next() -> None:
    # At item 3 the first subscriber disposes a later fused one, subscribes two new ones (one
    # fused, one plain) and one subscriber disposes itself: the current item reaches no
    # disposed subscriber after the disposal, the new ones start at the next item.
    shared: SharedConnection[Any] = SharedConnection(
        reactivex.from_iterable([parsed(n) for n in range(8)])
    )
    got: dict[str, list[int]] = {k: [] for k in ("a", "b", "self", "late_fused", "late_plain")}
    subs: dict[str, abc.DisposableBase] = {}

    def a(item: Any) -> None:
        got["a"].append(item.value.n)
        if item.value.n == 3:
            subs["b"].dispose()
            subs["late_fused"] = shared.observable.pipe(select_messages(attrgetter("n"))).subscribe(
                got["late_fused"].append
            )
            subs["late_plain"] = shared.observable.subscribe(
                lambda i: got["late_plain"].append(i.value.n)
            )

    def self_disposing(n: int) -> None:
        got["self"].append(n)
        if n == 5:
            subs["self"].dispose()

    with shared.hold():
        subs["a"] = shared.observable.subscribe(a)
        subs["b"] = shared.observable.pipe(select_messages(attrgetter("n"))).subscribe(
            got["b"].append
        )
        subs["self"] = shared.observable.pipe(select_messages(lambda m: m.n)).subscribe(
            self_disposing
        )
    assert got["a"] == list(range(8))
    assert got["b"] == [0, 1, 2]
    assert got["self"] == [0, 1, 2, 3, 4, 5]
    assert got["late_fused"] == got["late_plain"] == [4, 5, 6, 7]


def test_hold_with_several_substreams_and_taps_sees_every_item_in_order() -> None:
    items = [
        parsed(0, 0),
        KeepAlive(),
        parsed(1, ""),
        Connected(),
        parsed(2, None),
        parsed(3, []),
        parsed(4, False),
    ]
    shared: SharedConnection[Any] = SharedConnection(reactivex.from_iterable(items))
    order: list[tuple[str, Any]] = []
    tap = shared.tap(lambda item: order.append(("tap", item)))
    late_tap_items: list[Any] = []
    try:
        with shared.hold():
            shared.observable.pipe(select_messages(attrgetter("value"))).subscribe(
                lambda v: order.append(("values", v))
            )
            shared.observable.pipe(select_messages(attrgetter("n", "value"))).subscribe(
                lambda v: order.append(("pairs", v))
            )
            shared.observable.subscribe(lambda item: order.append(("items", item)))
            late_tap = shared.tap(late_tap_items.append)
            assert order == []  # nothing before the block ends
    finally:
        tap.dispose()
        late_tap.dispose()
    values = [0, "", [], False]  # falsy, not None: delivered
    expected: list[tuple[str, Any]] = []
    for item in items:
        expected.append(("tap", item))
        if type(item) is Parsed and item.value.value is not None:
            expected.append(("values", item.value.value))
        if type(item) is Parsed:
            expected.append(("pairs", (item.value.n, item.value.value)))
        expected.append(("items", item))
    assert order == expected
    assert [v for k, v in order if k == "values"] == values
    assert late_tap_items == items


# --- picks -----------------------------------------------------------------------------------


class Picker:
    def __init__(self) -> None:
        self.calls = 0

    def pick(self, message: Msg) -> Any:
        self.calls += 1
        return message.value


def _value_of(prefix: str, message: Msg) -> Any:
    return message.value if prefix == "v" else None


PICKS: dict[str, Callable[[], Callable[[Any], Any]]] = {
    "attrgetter": lambda: attrgetter("value"),
    "attrgetter_dotted_several": lambda: attrgetter("inner.value", "value"),
    "lambda": lambda: lambda m: m.value,
    "bound_method": lambda: Picker().pick,
    "partial": lambda: functools.partial(_value_of, "v"),
    "partial_none": lambda: functools.partial(_value_of, "x"),
    "builtin": lambda: id,
}

FALSY = [0, "", [], False, 0.0, b"", {}, None, (), 7]


def _plan() -> list[Any]:
    out: list[Any] = []
    for n, value in enumerate(FALSY):
        out.append(parsed(n, value, inner=Msg(-n, value)))
        if n % 3 == 0:
            out.append(KeepAlive())
    return out


def _outcome(source: Observable[Any], pick: Callable[[Any], Any]) -> list[Any]:
    got: list[Any] = []
    source.pipe(select_messages(pick)).subscribe(
        got.append, lambda e: got.append(("error", type(e), str(e)))
    )
    return got


@pytest.mark.parametrize("name", sorted(PICKS))
def test_falsy_values_are_delivered_only_none_is_skipped(name: str) -> None:
    plan = _plan()
    plain = _outcome(reactivex.from_iterable(plan), PICKS[name]())
    fused = _outcome(SharedConnection(reactivex.from_iterable(plan)).observable, PICKS[name]())
    assert fused == plain
    if name in ("attrgetter", "lambda", "bound_method", "partial"):
        assert fused == [v for v in FALSY if v is not None]
        assert [type(v) for v in fused] == [type(v) for v in FALSY if v is not None]
    if name == "attrgetter_dotted_several":
        assert fused == [(v, v) for v in FALSY]  # a pair of Nones is not None
    if name == "partial_none":
        assert fused == []


def test_a_bound_method_pick_is_called_once_per_message() -> None:
    picker = Picker()
    shared: SharedConnection[Any] = SharedConnection(reactivex.from_iterable(_plan()))
    got = _outcome(shared.observable, picker.pick)
    assert picker.calls == len(FALSY) and len(got) == len(FALSY) - 1


@pytest.mark.parametrize("pick", [attrgetter("missing"), attrgetter("inner.missing")])
def test_an_attrgetter_on_a_missing_attribute_fails_as_the_plain_path_does(pick: Any) -> None:
    plan = [parsed(1, 1, inner=Msg(0)), parsed(2, 2, inner=Msg(0))]
    plain = _outcome(reactivex.from_iterable(plan), pick)
    shared: SharedConnection[Any] = SharedConnection(reactivex.from_iterable(plan))
    others: list[Any] = []
    with shared.hold():
        shared.observable.subscribe(others.append, lambda e: others.append(type(e)))
        fused = _outcome(shared.observable, pick)
    assert fused == plain
    assert fused[0][:2] == ("error", AttributeError) and len(fused) == 1
    assert "has no attribute 'missing'" in fused[0][2]  # the message's, not Parsed's
    # The pick ended the shared stream for every subscriber, as a raising on_next does.
    assert others == [plan[0], AttributeError]


class TextStream(Substreams[StreamResponse]):
    """A stream type of a user's own, declared as rxtweet.substreams documents."""

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.texts = self.select(self._text)
        self.ids = self.select(attrgetter("data.id"))
        self.lengths = self.select(self._length)
        self.kinds = self.of_type(StreamResponse)

    def _text(self, message: StreamResponse) -> str | None:
        return None if message.data is None else message.data.text

    def _length(self, message: StreamResponse) -> int | None:
        return None if message.data is None else len(message.data.text)


def tweet_doc(n: int, text: str) -> dict[str, Any]:
    return {"data": {"id": str(n), "text": text, "edit_history_tweet_ids": [str(n)]}}


def test_a_user_defined_stream_type_over_a_real_connection() -> None:
    messages = [tweet_doc(1, "one"), tweet_doc(2, ""), tweet_doc(3, "three")]
    with FakeStreamServer(messages=messages, fields="all", match_rules=False) as server:
        server.script(Attempt(ending="hold"))
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST)
        stream = TextStream(client.sample_stream().connection)
        got: dict[str, list[Any]] = {"texts": [], "ids": [], "lengths": [], "kinds": []}
        with stream.hold():
            subs = [getattr(stream, name).subscribe(got[name].append) for name in got]
        try:
            assert wait_until(lambda: len(got["kinds"]) == 3, timeout=2.0)
        finally:
            for sub in subs:
                sub.dispose()
    assert got["texts"] == ["one", "", "three"]  # "" is not None: delivered
    assert got["ids"] == [1, 2, 3]
    assert got["lengths"] == [3, 0, 5]
    assert [r.data.id for r in got["kinds"]] == [1, 2, 3]
    assert wait_until(lambda: not reader_threads(), timeout=1.0)


# --- observers of every kind, and observers with a selection of their own ---------------------


class Recording(Observer[Any]):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []
        self.ended: list[str] = []

    def on_next(self, value: Any) -> None:
        self.got.append(value)

    def on_completed(self) -> None:
        self.ended.append("completed")


def test_subjects_and_observers_as_subscribers_of_a_fused_substream() -> None:
    shared: SharedConnection[Any] = SharedConnection(
        reactivex.from_iterable([parsed(n, n % 3 or None) for n in range(7)])
    )
    subject: Subject[Any] = Subject()
    through_subject: list[Any] = []
    subject.subscribe(through_subject.append)
    plain_observer_got: list[Any] = []
    subclass = Recording()
    with shared.hold():
        selected = shared.observable.pipe(select_messages(attrgetter("value")))
        selected.subscribe(subject)
        selected.subscribe(Observer(plain_observer_got.append))
        selected.subscribe(subclass)
    expected = [1, 2, 1, 2]
    assert through_subject == plain_observer_got == subclass.got == expected
    assert subclass.ended == ["completed"]
    assert subject.is_stopped  # the subject was told the end


class Proxy(abc.ObserverBase[Any]):
    """A careless wrapper: attributes it lacks are looked up in a dict, raising KeyError
    (not AttributeError) for a name it does not know."""

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        self._fields: dict[str, Any] = {"target": observer}

    def __getattr__(self, name: str) -> Any:
        return self.__dict__["_fields"][name]

    def on_next(self, value: Any) -> None:
        self._fields["target"].on_next(value)

    def on_error(self, error: Exception) -> None:
        self._fields["target"].on_error(error)

    def on_completed(self) -> None:
        self._fields["target"].on_completed()


class OddSelection(ForwardingObserver[Any]):
    """A fused wrapper whose ``selection`` is something else than a Delivery; it forwards
    everything to ``observer``."""

    selection: Any = None

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        super().__init__(observer.on_next, observer.on_error, observer.on_completed)
        self.observer = observer


def _odd(selection: Any) -> Callable[[abc.ObserverBase[Any]], OddSelection]:
    def wrap(observer: abc.ObserverBase[Any]) -> OddSelection:
        odd = OddSelection(observer)
        odd.selection = selection
        return odd

    return wrap


def _subject(observer: abc.ObserverBase[Any]) -> Subject[Any]:
    subject: Subject[Any] = Subject()
    subject.subscribe(observer)
    return subject


class NoAttribute(OddSelection):
    @property
    def selection(self) -> Any:
        raise AttributeError("selection")


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(_odd([Parsed, None, None, print]), id="list"),
        pytest.param(_odd(("Parsed", None, None, print)), id="not-a-type"),
        pytest.param(_odd((Parsed, None, None)), id="three"),
        pytest.param(_odd((Parsed, None, None, print, None)), id="five"),
        pytest.param(NoAttribute, id="property-attribute-error"),
        pytest.param(_subject, id="subject"),
    ],
)
def test_a_wrapper_without_a_valid_selection_gets_every_item_through_on_next(
    wrap: Callable[[abc.ObserverBase[Any]], abc.ObserverBase[Any]],
) -> None:
    items = [parsed(1), KeepAlive(), parsed(2)]
    shared: SharedConnection[Any] = SharedConnection(reactivex.from_iterable(items))
    got: list[Any] = []
    ended: list[str] = []
    shared.fused(wrap).subscribe(
        got.append, lambda e: ended.append(repr(e)), lambda: ended.append("c")
    )
    assert got == items
    assert ended == ["c"]


def test_a_wrapper_whose_selection_lookup_raises_does_not_break_the_others() -> None:
    source: Subject[Any] = Subject()
    shared: SharedConnection[Any] = SharedConnection(source)
    first: list[Any] = []
    sub_first = shared.observable.pipe(select_messages(attrgetter("n"))).subscribe(first.append)
    careless_errors: list[Exception] = []
    careless = shared.fused(Proxy).subscribe(lambda _: None, careless_errors.append)
    later: list[Any] = []
    later_errors: list[Exception] = []
    sub_later = shared.observable.pipe(select_messages(attrgetter("n"))).subscribe(
        later.append, later_errors.append
    )
    source.on_next(parsed(1))
    assert later_errors == [] and later == [1]  # a later subscriber is not refused
    assert first == [1]
    for sub in (careless, sub_later, sub_first):
        sub.dispose()
    assert shared.subscribers == 0 and not shared.connected
    assert not source.observers


class CountingSelection(abc.ObserverBase[Any]):
    """A Selecting wrapper that counts how often its ``selection`` is read."""

    reads = 0

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        self.observer = observer

    @property
    def selection(self) -> Any:
        type(self).reads += 1
        return (Parsed, attrgetter("value.n"), None, self.observer.on_next)

    def on_next(self, value: Any) -> None:
        raise AssertionError("the share selects itself")

    def on_error(self, error: Exception) -> None:
        self.observer.on_error(error)

    def on_completed(self) -> None:
        self.observer.on_completed()


def test_a_selection_is_read_once_when_its_observer_joins() -> None:
    source: Subject[Any] = Subject()
    shared: SharedConnection[Any] = SharedConnection(source)
    got: list[Any] = []
    CountingSelection.reads = 0
    kept = shared.fused(CountingSelection).subscribe(got.append)
    for _ in range(3):
        shared.observable.subscribe(lambda _: None).dispose()
        source.on_next(parsed(len(got)))
    assert got == [0, 1, 2]  # delivered by the share itself
    kept.dispose()
    assert CountingSelection.reads == 1


def test_select_messages_on_an_unshared_source_calls_on_next() -> None:
    subject: Subject[Any] = Subject()
    got: list[Any] = []
    subscription = subject.pipe(select_messages(attrgetter("value"))).subscribe(got.append)
    for item in [parsed(1, 0), KeepAlive(), parsed(2, None), parsed(3, "x")]:
        subject.on_next(item)
    subscription.dispose()
    subject.on_next(parsed(4, "after"))
    assert got == [0, "x"]
    assert not subject.observers


# --- a real stream on 127.0.0.1, cut in the middle ---------------------------------------------


def _v2_messages() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n in range(1, 13):
        doc: dict[str, Any] = tweet_doc(n, f"tweet {n}")
        if n % 2:
            doc["includes"] = {"users": [{"id": str(100 + n), "name": "u", "username": "u"}]}
        if n % 3:
            doc["matching_rules"] = [{"id": str(n), "tag": f"t{n}"}]
        out.append(doc)
        if n % 4 == 0:
            out.append({"errors": [{"title": "operational-disconnect", "n": n}]})
    return out


def _by_hand(items: list[Any], pick: Callable[[Any], Any]) -> list[Any]:
    return [v for v in (pick(i.value) for i in items if type(i) is Parsed) if v is not None]


def test_every_substream_of_a_real_stream_matches_its_items_across_a_reconnect() -> None:
    messages = _v2_messages()
    with FakeStreamServer(
        messages=messages, fields="all", match_rules=False, keepalive_interval=0.05
    ) as server:
        server.script(Attempt(messages=5, ending="cut"), Attempt(messages=4, ending="reset"))
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST)
        stream = client.sample_stream()
        names = ("items", "tweets", "includes", "matching_rules", "errors", "responses", "events")
        got: dict[str, list[Any]] = {name: [] for name in names}
        tapped: list[Any] = []
        tap = stream.items.tap(tapped.append)  # type: ignore[attr-defined]
        with stream.hold():
            subs = [getattr(stream, name).subscribe(got[name].append) for name in names]
        try:
            assert wait_until(
                lambda: sum(type(i) is Parsed for i in got["items"]) >= len(messages), timeout=3.0
            )
        finally:
            for sub in subs:
                sub.dispose()
            tap.dispose()
    items = got["items"]
    assert tapped[: len(items)] == items  # the passive tap saw the same items, in order
    assert len(server.stream_requests) == 3  # two reconnects in the middle
    assert [r.data.id for r in got["responses"] if r.data] == list(range(1, 13))
    assert got["responses"] == _by_hand(items, lambda r: r)
    assert got["tweets"] == _by_hand(items, attrgetter("data"))
    assert got["includes"] == _by_hand(items, lambda r: r.includes or None)
    assert got["matching_rules"] == _by_hand(items, lambda r: r.matching_rules or None)
    assert got["errors"] == _by_hand(items, lambda r: r.errors or None)
    assert got["events"] == [i for i in items if type(i) is not Parsed][: len(got["events"])]
    assert [type(e).__name__ for e in got["events"]].count("Connected") == 3
    assert len(got["tweets"]) == 12 and len(got["errors"]) == 3
    assert all(type(t) is Tweet for t in got["tweets"])
    assert wait_until(lambda: not reader_threads(), timeout=1.0)


def test_the_substreams_of_a_partitioned_likes_stream_match_its_items() -> None:
    # Two partition connections merged (MergedConnection): its share selects too.
    likes = generate_like_messages(seed=3)
    per_partition = 6
    endpoint = {"likes_sample10": [next(likes) for _ in range(2 * per_partition)]}
    with FakeStreamServer(endpoint_messages=endpoint, keepalive_interval=0.05) as server:
        server.script(Attempt(messages=2, ending="cut"), endpoint="likes_sample10", partition=1)
        client = StreamingClient(TOKEN, base_url=server.url, reconnect=FAST)
        stream = client.likes_stream("sample10", partitions=[1, 2])
        names = ("items", "likes", "includes", "errors", "responses")
        got: dict[str, list[Any]] = {name: [] for name in names}
        with stream.hold():
            subs = [getattr(stream, name).subscribe(got[name].append) for name in names]
        try:
            assert wait_until(
                lambda: sum(type(i) is Parsed for i in got["items"]) == 2 * per_partition,
                timeout=3.0,
            )
        finally:
            for sub in subs:
                sub.dispose()
    items = got["items"]
    assert len(got["likes"]) == 2 * per_partition
    assert len(server.stream_requests) == 3  # partition 1 was cut and reconnected
    assert got["responses"] == _by_hand(items, lambda r: r)
    assert got["likes"] == _by_hand(items, attrgetter("like"))
    assert got["includes"] == _by_hand(items, lambda r: r.includes or None)
    assert got["errors"] == _by_hand(items, lambda r: r.errors or None) == []
    assert wait_until(lambda: not reader_threads(), timeout=1.0)


# --- the hook face: on_response and DEBUG ------------------------------------------------------


class Counting(StreamingClient):
    def __init__(self) -> None:
        super().__init__(TOKEN, reconnect=FAST)
        self.tweets: list[int] = []
        self.on_tweet_hook: Callable[[Tweet], None] | None = None

    def on_tweet(self, tweet: Tweet) -> None:
        self.tweets.append(tweet.id)
        if self.on_tweet_hook is not None:
            self.on_tweet_hook(tweet)


class WithOnResponse(Counting):
    def __init__(self) -> None:
        super().__init__()
        self.responses: list[int] = []

    def on_response(self, response: StreamResponse) -> None:
        assert response.data is not None
        self.responses.append(response.data.id)


def run_hooks(client: StreamingClient, count: int, *, method: str = "sample") -> None:
    """One threaded run of ``client`` over ``count`` tweets (ids 1..count), then stop it."""
    messages = [tweet_doc(n, f"t{n}") for n in range(1, count + 1)]
    with FakeStreamServer(messages=messages, fields="all", match_rules=False) as server:
        server.script(Attempt(messages=count, ending="hold"))
        client.base_url = server.url
        tweets: list[int] = getattr(client, "tweets")  # noqa: B009 - Counting's
        start = len(tweets)
        thread = getattr(client, method)(threaded=True)
        try:
            assert wait_until(lambda: len(tweets) - start == count, timeout=2.0)
        finally:
            client.disconnect()
            thread.join(2)
    assert not thread.is_alive()


@pytest.mark.parametrize("method", ["sample", "filter"])
def test_on_response_overridden_in_the_class_is_called(method: str) -> None:
    client = WithOnResponse()
    run_hooks(client, 3, method=method)
    assert client.responses == [1, 2, 3]


def test_on_response_set_on_the_instance_before_the_run_is_called() -> None:
    client = Counting()
    got: list[StreamResponse] = []
    client.on_response = got.append  # type: ignore[method-assign,assignment]
    run_hooks(client, 3)
    assert [r.data.id for r in got if r.data] == [1, 2, 3]


def test_on_response_set_during_a_run_is_called_from_the_next_run_on() -> None:
    client = Counting()
    got: list[StreamResponse] = []

    def set_it(tweet: Tweet) -> None:
        if tweet.id == 2:
            client.on_response = got.append  # type: ignore[method-assign,assignment]

    client.on_tweet_hook = set_it
    run_hooks(client, 3)
    got.clear()
    client.on_tweet_hook = None
    run_hooks(client, 2, method="filter")
    assert [r.data.id for r in got if r.data] == [1, 2]


def test_threaded_runs_of_two_clients_decide_each_for_itself() -> None:
    with_hook, without = Counting(), Counting()
    got: list[StreamResponse] = []
    with_hook.on_response = got.append  # type: ignore[method-assign,assignment]
    runners = [
        threading.Thread(target=run_hooks, args=(with_hook, 4)),
        threading.Thread(target=run_hooks, args=(without, 4)),
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(3)
    assert with_hook.tweets == without.tweets == [1, 2, 3, 4]
    assert [r.data.id for r in got if r.data] == [1, 2, 3, 4]
    assert "on_response" not in vars(without)


LINE = orjson.dumps(tweet_doc(99, "by hand"))


def test_on_data_by_hand_before_any_run_calls_an_instance_on_response() -> None:
    client = Counting()
    got: list[StreamResponse] = []
    client.on_response = got.append  # type: ignore[method-assign,assignment]
    client.on_data(LINE)
    assert client.tweets == [99] and len(got) == 1


def test_on_data_by_hand_after_a_run_calls_an_instance_on_response() -> None:
    client = Counting()
    run_hooks(client, 2)
    got: list[StreamResponse] = []
    client.on_response = got.append  # type: ignore[method-assign,assignment]
    client.on_data(LINE)
    assert client.tweets[-1] == 99
    assert len(got) == 1


def test_a_refused_second_sample_does_not_change_the_running_run() -> None:
    client = Counting()
    got: list[StreamResponse] = []
    refused: list[Exception] = []

    def on_tweet(tweet: Tweet) -> None:
        if tweet.id == 2:
            client.on_response = got.append  # type: ignore[method-assign,assignment]
            try:
                client.sample()
            except StreamAlreadyRunning as exc:
                refused.append(exc)

    client.on_tweet_hook = on_tweet
    run_hooks(client, 4)
    assert len(refused) == 1
    assert got == []  # documented: from the next run on


@pytest.fixture
def debug_records() -> Iterator[list[logging.LogRecord]]:
    """The "Received response" records of the hook face's logger (``rxtweet.v2``); its
    level, ``disabled`` and logging.disable() restored afterwards."""
    logger = client_module.log
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Received response"):
                records.append(record)

    handler = Keep(logging.DEBUG)
    level, disabled, propagate = logger.level, logger.disabled, logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
        logger.disabled = disabled
        logging.disable(logging.NOTSET)
        logger.setLevel(level)


@pytest.mark.parametrize("cache", ["logging's", "missing"])
def test_debug_switched_during_a_run_is_seen_at_the_next_message(
    cache: str, debug_records: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    if cache == "missing":  # a logger without _cache: every check asks isEnabledFor
        monkeypatch.setattr(client_module, "_LEVELS", {})
    logger = client_module.log
    rxtweet_logger = logging.getLogger("rxtweet")
    logger.setLevel(logging.WARNING)

    def inherit_debug() -> None:  # DEBUG from the parent: the cache is cleared too
        logger.setLevel(logging.NOTSET)
        rxtweet_logger.setLevel(logging.DEBUG)

    # on_tweet runs on the reader thread just before the same message's on_response check:
    # each tweet sets the logging state its own response is dispatched under.
    switches: dict[int, Callable[[], None]] = {
        1: lambda: logger.setLevel(logging.WARNING),
        2: lambda: logger.setLevel(logging.DEBUG),
        3: lambda: logging.disable(logging.DEBUG),
        4: lambda: logging.disable(logging.NOTSET),
        5: lambda: setattr(logger, "disabled", True),
        6: lambda: setattr(logger, "disabled", False),
        7: lambda: logger.setLevel(logging.INFO),
        8: inherit_debug,
        9: lambda: rxtweet_logger.setLevel(logging.ERROR),
    }
    parent_level = rxtweet_logger.level
    client = Counting()
    client.on_tweet_hook = lambda tweet: switches[tweet.id]()
    try:
        run_hooks(client, len(switches))
    finally:
        rxtweet_logger.setLevel(parent_level)
    logged = [int(re.findall(r"<Tweet id=(\d+)", r.getMessage())[0]) for r in debug_records]
    assert logged == [2, 4, 6, 8]
    if cache == "logging's":
        assert client_module._LEVELS is logger._cache  # type: ignore[attr-defined]
