"""Issue 17: a substream's select is done by the share itself (``Selecting``), one Python call
less per message. The fused path must give exactly what ``select_messages`` gives on a plain
(unshared) source: the same items in the same order, nothing after a disposal or an end,
and the same exception when a pick raises."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex import operators as ops

from rxtweet.events import Connected, KeepAlive
from rxtweet.operators.share import SharedConnection, _Multicast
from rxtweet.parse import Parsed
from rxtweet.substreams import _of_value, _SelectedMessages, select_messages


class Box:
    """A message with a ``data`` (None for a message without one)."""

    def __init__(self, data: Any) -> None:
        self.data = data


def _items(plan: list[Any]) -> list[Any]:
    out: list[Any] = []
    for step in plan:
        if step == "keepalive":
            out.append(KeepAlive())
        elif step == "connected":
            out.append(Connected())
        else:
            out.append(Parsed(Box(step), b"raw"))
    return out


def _python_pick(message: Box) -> Any:
    return None if message.data is None else ("picked", message.data)


def _raising_pick(message: Box) -> Any:
    if message.data == 3:
        raise KeyError("pick")
    return message.data


PICKS = {"attrgetter": attrgetter("data"), "python": _python_pick, "raising": _raising_pick}

plans = st.lists(
    st.one_of(st.none(), st.integers(0, 5), st.sampled_from(["keepalive", "connected"])),
    max_size=12,
)


def _outcome(source: Observable[Any], pick: Any, take: int | None) -> list[Any]:
    got: list[Any] = []
    selected = source.pipe(select_messages(pick))
    if take is not None:
        selected = selected.pipe(ops.take(take))
    try:
        selected.subscribe(got.append, lambda e: got.append(("error", repr(e))))
    except KeyError as exc:
        got.append(("raised", repr(exc)))
    return got


@given(plans, st.sampled_from(sorted(PICKS)), st.one_of(st.none(), st.integers(1, 4)))
@settings(max_examples=300, deadline=None)
def test_the_share_selects_as_select_messages_does(
    plan: list[Any], pick_name: str, take: int | None
) -> None:
    pick = PICKS[pick_name]
    items = _items(plan)
    plain = _outcome(reactivex.from_iterable(items), pick, take)
    shared = SharedConnection(reactivex.from_iterable(items))
    fused = _outcome(shared.observable, pick, take)
    assert fused == plain


def test_a_selecting_observer_is_not_called_per_item() -> None:
    # The share runs the selection itself: the observer's own on_next is never called.
    calls: list[Any] = []

    class Counting(_SelectedMessages):
        def on_next(self, item: Any) -> None:
            calls.append(item)
            super().on_next(item)

    got: list[Any] = []
    multicast: _Multicast[Any] = _Multicast()
    multicast.add(Counting(reactivex.Observer(got.append), attrgetter("data")))
    for item in _items([1, "keepalive", None, 2]):
        multicast.on_next(item)
    assert got == [1, 2]
    assert calls == []


def test_an_attrgetter_pick_becomes_one_of_the_item() -> None:
    item = Parsed(Box(Box(7)), b"raw")
    picked = _of_value(attrgetter("data"))
    assert type(picked) is attrgetter
    assert picked(item).data == 7
    pair = _of_value(attrgetter("data", "data.data"))
    assert type(pair) is attrgetter
    assert pair(item)[1] == 7
    python = _of_value(_python_pick)
    assert python(Parsed(Box(4), b"")) == ("picked", 4)


def test_an_observer_with_a_malformed_selection_gets_its_items_the_plain_way() -> None:
    got: list[Any] = []

    class Odd:
        selection = ("not", "a", "selection")  # not (type, pick, guard, emit)

        def on_next(self, item: Any) -> None:
            got.append(item)

        def on_error(self, error: Exception) -> None:
            raise AssertionError(error)

        def on_completed(self) -> None:
            pass

    multicast: _Multicast[Any] = _Multicast()
    multicast.add(Odd())  # type: ignore[arg-type]
    items = _items([1, "keepalive"])
    for item in items:
        multicast.on_next(item)
    assert got == items


def test_a_pick_that_raises_ends_the_shared_stream_as_on_next_would() -> None:
    # The source (from_iterable, as a Connection does) turns the exception into the stream's
    # error: the subscriber gets the items before it, then the error, nothing after.
    shared = SharedConnection(reactivex.from_iterable(_items([1, 3, 4])))
    got: list[Any] = []
    shared.observable.pipe(select_messages(_raising_pick)).subscribe(got.append, got.append)
    assert got[0] == 1 and type(got[1]) is KeyError and len(got) == 2
