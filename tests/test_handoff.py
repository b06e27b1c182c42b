"""rxtweet.handoff.Handoff: the overflow policies, both wake-up protocols, reports, close.

The policies are checked with exact queues and counts; "block" and ``close`` with a real
producer thread; the one-report-per-second rule with a patched clock.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import pytest
from support import wait_until

from rxtweet import handoff as handoff_module
from rxtweet.errors import Overflow
from rxtweet.handoff import EMPTY, Handoff, Terminal, check_overflow


def drain(handoff: Handoff[Any]) -> list[Any]:
    items = []
    while (item := handoff.pop()) is not EMPTY:
        items.append(item)
    return items


@pytest.mark.parametrize(
    ("overflow", "kept", "dropped"),
    [
        ("drop_oldest", [7, 8, 9], 7),
        ("drop_newest", [0, 1, 2], 7),
        ("latest", [9], 9),
    ],
)
def test_drop_policies_keep_and_count(overflow: Any, kept: list[int], dropped: int) -> None:
    drops: list[int] = []
    handoff: Handoff[int] = Handoff(3, overflow, on_overflow=drops.append)
    for n in range(10):
        handoff.put(n)
    assert drain(handoff) == kept
    assert handoff.dropped == dropped
    assert drops == list(range(1, dropped + 1))  # the running total, at each drop
    assert handoff.total == 10


def test_error_policy_raises_overflow_and_keeps_the_queue() -> None:
    handoff: Handoff[int] = Handoff(2, "error", name="test.hand-off")
    handoff.put(1)
    handoff.put(2)
    with pytest.raises(Overflow) as caught:
        handoff.put(3)
    assert (caught.value.capacity, caught.value.total, caught.value.name) == (
        2,
        3,
        "test.hand-off",
    )
    assert "test.hand-off" in str(caught.value)
    assert drain(handoff) == [1, 2]
    assert handoff.dropped == 0


@pytest.mark.parametrize(("capacity", "overflow"), [(0, "block"), (True, "block"), (3, "drop")])
def test_bad_arguments_are_refused(capacity: Any, overflow: Any) -> None:
    with pytest.raises(ValueError, match="must be"):
        check_overflow(capacity, overflow)
    with pytest.raises(ValueError, match="must be"):
        Handoff(capacity, overflow)


def test_latest_has_capacity_one() -> None:
    assert Handoff(50, "latest").capacity == 1


def test_put_tells_when_the_queue_was_empty() -> None:
    handoff: Handoff[str] = Handoff(5)
    assert [handoff.put(x) for x in "ab"] == [True, False]
    assert handoff.pop() == "a"
    assert handoff.put("c") is False  # "b" still waits
    assert drain(handoff) == ["b", "c"]
    assert handoff.put("d") is True
    assert handoff.finish() is False  # "d" waits: the consumer will see the end after it
    assert handoff.pop() == "d"
    assert handoff.terminal is not None and handoff.terminal.error is None


def test_offer_wakes_a_parked_consumer_exactly_once() -> None:
    handoff: Handoff[str] = Handoff(5)
    assert handoff.offer("a") is True  # never started: parked
    assert handoff.offer("b") is False
    assert handoff.poll() == "a"
    assert handoff.poll() == "b"
    # The consumer is busy with "b" (the queue is empty, but it has not parked): a new
    # item must not start a second consumer.
    assert handoff.offer("c") is False
    assert handoff.poll() == "c"
    assert handoff.poll() is EMPTY  # parks
    assert handoff.offer("d") is True
    assert handoff.offer("e") is False


def test_end_is_polled_once_after_the_last_item() -> None:
    handoff: Handoff[str] = Handoff(5)
    handoff.offer("a")
    error = RuntimeError("boom")
    assert handoff.end(error) is False  # the consumer was started by "a"
    assert handoff.end(None) is False  # only the first end counts
    assert handoff.poll() == "a"
    terminal = handoff.poll()
    assert isinstance(terminal, Terminal) and terminal.error is error
    assert handoff.poll() is EMPTY  # told once
    parked: Handoff[str] = Handoff(5)
    assert parked.poll() is EMPTY
    assert parked.end() is True  # parked: the end must start the consumer


def test_block_waits_for_room_and_loses_nothing() -> None:
    handoff: Handoff[int] = Handoff(2, "block")
    done = threading.Event()

    def produce() -> None:
        for n in range(6):
            handoff.put(n)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    got: list[int] = []
    assert wait_until(lambda: len(handoff) == 2)
    assert not done.is_set()  # waiting for room
    while len(got) < 6:
        item = handoff.pop()
        if item is not EMPTY:
            got.append(item)  # type: ignore[arg-type]
    producer.join(2)
    assert done.is_set()
    assert got == list(range(6))
    assert handoff.dropped == 0


def test_close_wakes_a_blocked_producer_and_discards_the_queue() -> None:
    handoff: Handoff[int] = Handoff(1, "block")
    handoff.put(1)
    results: list[bool] = []
    producer = threading.Thread(target=lambda: results.append(handoff.put(2)))
    producer.start()
    assert wait_until(lambda: handoff._waiting)
    handoff.close()
    producer.join(2)
    assert not producer.is_alive()
    assert results == [False]
    assert len(handoff) == 0 and handoff.pop() is EMPTY and handoff.closed
    assert handoff.put(3) is False and handoff.offer(3) is False
    assert handoff.finish() is False and handoff.end() is False
    assert handoff.poll() is EMPTY


def test_reports_at_most_once_per_second(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    monkeypatch.setattr(handoff_module, "monotonic", lambda: now[0])
    reports: list[tuple[int, int]] = []
    handoff: Handoff[int] = Handoff(
        1, "drop_newest", on_report=lambda d, t: reports.append((d, t)), name="slow.sink"
    )
    caplog.set_level(logging.WARNING, logger="rxtweet.handoff")
    handoff.put(0)
    for _ in range(5):  # 5 drops in the same instant: one report, for the first
        handoff.put(1)
    assert reports == [(1, 1)]
    now[0] += 0.5
    handoff.put(1)
    assert reports == [(1, 1)]
    assert handoff.report(force=False) == 0  # too soon
    now[0] += 0.5
    handoff.put(1)  # a second after the last report: the 6 since then
    assert reports == [(1, 1), (6, 7)]
    handoff.put(1)
    assert handoff.reported == 7 and handoff.dropped == 8
    assert handoff.report() == 1  # forced: the rest, at once
    assert handoff.report() == 0  # nothing left
    assert reports == [(1, 1), (6, 7), (1, 8)]
    messages = [r.getMessage() for r in caplog.records if r.name == "rxtweet.handoff"]
    assert len(messages) == 3
    assert "slow.sink" in messages[1] and "6 item(s) dropped (7 in all" in messages[1]


# --- the lock-free offer ------------------------------------------------------------------
# offer() queues without the lock when there is room (see Handoff.offer for why). These pin
# the two moments where that could strand an item, the close race, and that the fast path
# really takes no lock; the observe_on_bounded test below shakes the real threads.


class _Hooked(deque):  # type: ignore[type-arg]
    """A deque that runs ``hook`` once, just after its first truth test was answered
    (poll's first look: the hook is what another thread does right after it)."""

    def __init__(self, hook: Any) -> None:
        super().__init__()
        self.hook = hook

    def __bool__(self) -> bool:
        answer = len(self) > 0
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return answer


def test_an_item_offered_while_the_consumer_parks_is_polled_not_stranded() -> None:
    handoff: Handoff[str] = Handoff(10, "block")
    assert handoff.offer("first") is True  # the consumer starts
    assert handoff.poll() == "first"
    woke: list[bool] = []
    # poll() finds the queue empty; before it parks, the producer queues (without the
    # lock, seeing no park): the consumer's last look must take that item, else it would
    # wait, parked and unwoken, for the next item.
    handoff._queue = _Hooked(lambda: woke.append(handoff.offer("second")))
    assert handoff.poll() == "second"
    assert woke == [False]  # the running consumer took it: no second drain
    assert handoff.poll() is EMPTY  # now parked: the next offer starts a drain
    assert handoff.offer("third") is True
    assert handoff.poll() == "third"


def test_an_offer_after_the_park_starts_the_consumer_once() -> None:
    handoff: Handoff[int] = Handoff(10, "block")
    assert handoff.poll() is EMPTY  # parked
    assert [handoff.offer(n) for n in range(3)] == [True, False, False]
    assert [handoff.poll() for _ in range(4)] == [0, 1, 2, EMPTY]


class _ClosingDeque(deque):  # type: ignore[type-arg]
    """A deque whose first append is preceded by a close (from "another thread")."""

    def __init__(self, handoff: Handoff[Any]) -> None:
        super().__init__()
        self.handoff: Handoff[Any] | None = handoff

    def append(self, item: Any) -> None:
        handoff, self.handoff = self.handoff, None
        if handoff is not None:
            handoff.close()
        super().append(item)


def test_a_close_between_the_check_and_the_append_discards_the_item() -> None:
    handoff: Handoff[str] = Handoff(10, "block")
    assert handoff.offer("a") is True
    assert handoff.poll() == "a"
    handoff._queue = _ClosingDeque(handoff)
    assert handoff.offer("late") is False  # closed meanwhile: nothing to start
    assert len(handoff) == 0  # and not kept
    assert handoff.poll() is EMPTY
    assert handoff.offer("later") is False


def test_a_close_leaves_nothing_for_poll_even_if_an_item_slipped_in() -> None:
    handoff: Handoff[str] = Handoff(10, "block")
    handoff.offer("a")
    handoff.close()
    handoff._queue.append("slipped")  # what a racing lock-free offer may leave
    assert handoff.poll() is EMPTY


class _CountingLock:
    """A lock that counts its acquisitions (for the Condition built on it, too)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acquired = 0

    def acquire(self, *args: Any) -> bool:
        self.acquired += 1
        return self.lock.acquire(*args)

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@pytest.mark.skipif(not handoff_module._LOCK_FREE_OFFER, reason="no GIL: offer takes the lock")
def test_offer_with_room_takes_no_lock_while_the_consumer_runs() -> None:
    handoff: Handoff[int] = Handoff(100, "block")
    lock = _CountingLock()
    handoff._lock = lock  # type: ignore[assignment]
    handoff._room = threading.Condition(lock)  # type: ignore[arg-type]
    assert handoff.offer(0) is True  # parked: the lock, once, to claim the wake
    assert lock.acquired == 1
    for n in range(1, 50):
        assert handoff.offer(n) is False
    assert lock.acquired == 1  # the consumer is running: no lock per item
    assert [handoff.poll() for _ in range(50)] == list(range(50))
    assert handoff.total == 50
