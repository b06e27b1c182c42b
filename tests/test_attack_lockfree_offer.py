"""Attacks on Handoff.offer's lock-free fast path (and poll's "last look").

Three kinds of test:

* an exhaustive cooperative scheduler (:class:`Baton`): the producer and the consumer run
  one at a time and switch only at an access to the hand-off's shared state (every read and
  write of ``_parked``, ``_closed``, ``terminal``, ``_told``, ``_waiting``, ``_total``, every
  deque operation, every lock acquire), at every pair of such points: under the GIL these
  are the only interleavings that matter, so a lost wake-up, a double wake-up (two drains at
  once), an item after ``close`` or a Terminal out of place shows up deterministically;
* real threads with ``sys.setswitchinterval(1e-6)`` (a GIL switch request every
  microsecond): ping-pong offers that race the consumer's park, every overflow policy with a
  concurrent consumer, close racing offer;
* ``observe_on_bounded`` end to end on ThreadPoolScheduler(1), (2), EventLoopScheduler and an
  asyncio loop, disposal mid-stream and an observer that raises.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import itertools
import queue as queue_module
import random
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import reactivex
from reactivex.disposable import Disposable
from reactivex.scheduler import EventLoopScheduler, ThreadPoolScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject

from rxtweet import handoff as handoff_module
from rxtweet.errors import Overflow
from rxtweet.handoff import EMPTY, Handoff, Terminal
from rxtweet.operators.observe_on_bounded import bounded_operator, observe_on_bounded

TIMEOUT = 5.0

#: Ping-pong rounds: about 1 in 3,000 lands an offer between poll's look and its park.
N_PING = 15_000

#: The producer's pace in the policies' test: a random spin of up to this many loops per
#: item, so that the consumer parks (and is woken) often and still falls behind at times.
PACE = 60
#: A pace at which the consumer mostly keeps up: it parks and is woken at most items.
SLOW_PACE = 400


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """A GIL switch request every microsecond, restored afterwards."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.fixture(params=[True, False], ids=["lock-free", "locked"])
def offer_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both offer paths (the lock-free one, and the one a free-threaded build takes)."""
    monkeypatch.setattr(handoff_module, "_LOCK_FREE_OFFER", request.param)
    return bool(request.param)


# =========================================================================================
# An exhaustive cooperative scheduler
# =========================================================================================


class Deadlock(AssertionError):
    pass


class Baton:
    """Two threads, one running at a time; a switch at the global points in ``preempt``
    (or when a thread would block on the hand-off's lock). Points reached by unregistered
    threads (the test's own thread, setting up and checking) are ignored."""

    def __init__(self, preempt: set[int], first: int) -> None:
        self.cond = threading.Condition()
        self.preempt = preempt
        self.turn = first
        self.count = 0
        self.ids: dict[int, int] = {}
        self.done = [False, False]
        self.failure: BaseException | None = None

    def me(self) -> int | None:
        return self.ids.get(threading.get_ident())

    def point(self) -> None:
        me = self.me()
        if me is None:
            return
        with self.cond:
            self.count += 1
            if self.count in self.preempt and not self.done[1 - me]:
                self._hand_over(me)

    def blocked(self) -> None:
        """The caller would block on a lock the other thread holds: let it run."""
        me = self.me()
        if me is None:
            return
        with self.cond:
            if self.done[1 - me]:
                raise Deadlock("blocked on a lock held by a finished thread")
            self._hand_over(me)

    def _hand_over(self, me: int) -> None:
        self.turn = 1 - me
        self.cond.notify_all()
        if not self.cond.wait_for(lambda: self.turn == me, timeout=TIMEOUT):
            raise Deadlock("both threads blocked")

    def run(self, scripts: tuple[Callable[[], None], Callable[[], None]]) -> None:
        finished = [threading.Event(), threading.Event()]

        def body(index: int) -> None:
            self.ids[threading.get_ident()] = index
            try:
                with self.cond:
                    if not self.cond.wait_for(lambda: self.turn == index, timeout=TIMEOUT):
                        raise Deadlock("never got the baton")
                scripts[index]()
            except BaseException as exc:  # reported by the test
                self.failure = self.failure or exc
            finally:
                with self.cond:
                    self.done[index] = True
                    self.turn = 1 - index
                    self.cond.notify_all()
                finished[index].set()

        for index, inbox in enumerate(_workers()):
            inbox.put(lambda index=index: body(index))
        for event in finished:
            assert event.wait(TIMEOUT), "a scripted thread hung"
        if self.failure is not None:
            raise self.failure


_WORKERS: list[queue_module.SimpleQueue[Callable[[], None]]] = []


def _workers() -> list[queue_module.SimpleQueue[Callable[[], None]]]:
    """Two daemon threads kept for every scripted run (starting two threads per schedule
    would cost more than the schedule)."""
    if not _WORKERS:
        for _ in (0, 1):
            inbox: queue_module.SimpleQueue[Callable[[], None]] = queue_module.SimpleQueue()

            def serve(inbox: queue_module.SimpleQueue[Callable[[], None]] = inbox) -> None:
                while True:
                    inbox.get()()

            threading.Thread(target=serve, daemon=True, name="baton-worker").start()
            _WORKERS.append(inbox)
    return _WORKERS


class _Current:
    baton: Baton | None = None


def _point() -> None:
    baton = _Current.baton
    if baton is not None:
        baton.point()


class PointDeque(deque):  # type: ignore[type-arg]
    """A deque whose every operation is a switch point."""

    def __len__(self) -> int:
        _point()
        return super().__len__()

    def __bool__(self) -> bool:
        _point()
        return super().__len__() > 0

    def append(self, item: Any) -> None:
        _point()
        super().append(item)

    def popleft(self) -> Any:
        _point()
        return super().popleft()

    def clear(self) -> None:
        _point()
        super().clear()


class PointLock:
    """The hand-off's lock: acquiring is a switch point, and a thread that would block
    hands the baton to the holder."""

    def __init__(self) -> None:
        self.real = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        _point()
        while not self.real.acquire(False):
            if not blocking:
                return False
            baton = _Current.baton
            if baton is None or baton.me() is None:
                return self.real.acquire(True, timeout)
            baton.blocked()
        return True

    def release(self) -> None:
        self.real.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()


def _shared(name: str) -> property:
    slot = "_shared_" + name

    def get(self: Any) -> Any:
        _point()
        return self.__dict__[slot]

    def set_(self: Any, value: Any) -> None:
        _point()
        self.__dict__[slot] = value

    return property(get, set_)


class PointHandoff(Handoff[Any]):
    """Every access to shared state is a switch point."""

    _parked = _shared("_parked")
    _closed = _shared("_closed")
    terminal = _shared("terminal")
    _told = _shared("_told")
    _waiting = _shared("_waiting")
    _total = _shared("_total")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue = PointDeque()
        self._lock = PointLock()  # type: ignore[assignment]
        self._room = threading.Condition(self._lock)  # type: ignore[arg-type]


class Model:
    """What observe_on_bounded does with the answers: a True from offer/end starts a drain,
    which must be the only one (the consumer was parked), and every drain polls until
    EMPTY (or the Terminal)."""

    def __init__(self, handoff: Handoff[Any]) -> None:
        self.handoff = handoff
        self.state = "parked"
        self.owed = 0  # drains started (by a True) and not run yet
        self.got: list[Any] = []
        self.wakes = 0

    def wake(self, answer: bool) -> None:
        if answer:
            assert self.state == "parked", "a second drain started while one runs"
            self.state = "running"
            self.owed += 1
            self.wakes += 1

    def offer(self, item: Any) -> bool:
        answer = self.handoff.offer(item)
        self.wake(answer)
        return answer

    def end(self, error: Exception | None = None) -> None:
        self.wake(self.handoff.end(error))

    def drain(self) -> None:
        """One drain task, started by a True (``owed``)."""
        assert self.owed > 0 and self.state == "running"
        self.owed -= 1
        while True:
            item = self.handoff.poll()
            if item is EMPTY:
                self.state = "parked"
                return
            self.got.append(item)
            if type(item) is Terminal:
                self.state = "ended"
                return

    def settle(self) -> None:
        """Run the drains still owed (on the test's thread, unscheduled)."""
        while self.owed:
            self.drain()


def explore(
    make: Callable[[], tuple[Model, Callable[[], None], Callable[[], None]]],
    check: Callable[[Model], None],
    preemptions: int = 2,
) -> int:
    """Runs the scenario at every schedule with at most ``preemptions`` switches (plus the
    forced ones), either thread first; returns how many schedules ran."""
    runs = 0
    for first in (0, 1):
        model, a, b = make()
        baton = Baton(set(), first)
        _Current.baton = baton
        try:
            baton.run((a, b))
        finally:
            _Current.baton = None
        points = baton.count + 4  # preemption changes the count a little: some slack
        for k in range(1, preemptions + 1):
            for preempt in itertools.combinations(range(1, points + 1), k):
                model, a, b = make()
                baton = Baton(set(preempt), first)
                _Current.baton = baton
                try:
                    baton.run((a, b))
                    model.settle()
                    check(model)
                except BaseException as exc:
                    raise AssertionError(
                        f"schedule first={first} preempt={preempt}: {exc!r}"
                    ) from exc
                finally:
                    _Current.baton = None
                runs += 1
    return runs


def _quiet(model: Model) -> None:
    handoff = model.handoff
    assert deque.__len__(handoff._queue) == 0, "an item was left in the queue"
    assert handoff.__dict__["_shared__parked"] is True or model.state == "ended"


def test_explore_an_offer_racing_the_consumers_park(offer_path: bool) -> None:
    """The core lost wake-up: the consumer empties the queue and parks while the producer
    offers one item. Every item must be delivered by the running drain or by the one the
    True starts; True only when the consumer is parked (never two drains at once)."""

    def make() -> tuple[Model, Callable[[], None], Callable[[], None]]:
        handoff = PointHandoff(8, "block")
        model = Model(handoff)
        model.offer("a")  # wakes: the consumer runs
        return model, model.drain, lambda: model.offer("b")

    def check(model: Model) -> None:
        assert model.got == ["a", "b"], "an item stranded, lost or duplicated"
        assert model.handoff.total == 2
        _quiet(model)
        assert model.offer("c") is True  # parked: the next offer starts it, once
        assert model.offer("d") is False

    # Three switches on the lock-free path (about 6,000 schedules): any lost or double
    # wake-up needs two (the producer's append and its read of ``_parked`` both land
    # between poll's look and its park, or between the park and the last look).
    assert explore(make, check, preemptions=3 if offer_path else 2) > 500


def test_explore_offers_racing_a_consumer_that_has_taken_the_last_item() -> None:
    """The consumer holds the last item (delivering it) and is about to poll and park while
    the producer offers two more."""

    def make() -> tuple[Model, Callable[[], None], Callable[[], None]]:
        handoff = PointHandoff(8, "drop_oldest")
        model = Model(handoff)
        model.offer("a")
        model.owed -= 1  # the running drain is the consumer thread's script below
        assert handoff.poll() == "a"
        model.got.append("a")

        def consumer() -> None:
            model.owed += 1
            model.drain()

        def producer() -> None:
            model.offer("b")
            model.offer("c")

        return model, consumer, producer

    def check(model: Model) -> None:
        assert model.got == ["a", "b", "c"]
        assert model.handoff.dropped == 0
        _quiet(model)

    explore(make, check)


def test_explore_end_after_lock_free_offers() -> None:
    """offer, offer, end racing the drain: every item, then the Terminal once, in order."""

    def make() -> tuple[Model, Callable[[], None], Callable[[], None]]:
        handoff = PointHandoff(8, "block")
        model = Model(handoff)
        model.offer("a")

        def producer() -> None:
            model.offer("b")
            model.end(None)

        return model, model.drain, producer

    def check(model: Model) -> None:
        assert model.got[:2] == ["a", "b"] and len(model.got) == 3
        assert type(model.got[2]) is Terminal and model.got[2].error is None
        assert model.state == "ended"
        assert model.handoff.poll() is EMPTY  # told once
        assert model.handoff.offer("late") is False and len(model.handoff) == 0

    explore(make, check, preemptions=2)


def test_explore_close_racing_offers() -> None:
    """close() from the consumer's side while the producer offers: after close returns no
    poll gives an item, nothing stays queued, and no offer starts a drain that finds one."""

    def make() -> tuple[Model, Callable[[], None], Callable[[], None]]:
        handoff = PointHandoff(8, "block")
        model = Model(handoff)
        model.offer("a")
        model.owed -= 1
        model.after_close: list[Any] = []  # type: ignore[attr-defined]

        def consumer() -> None:
            model.got.append(handoff.poll())  # "a"
            handoff.close()
            model.closed = True  # type: ignore[attr-defined]
            for _ in range(3):
                model.after_close.append(handoff.poll())  # type: ignore[attr-defined]
            model.state = "parked"

        def producer() -> None:
            for item in "bcd":
                answer = handoff.offer(item)
                if getattr(model, "closed", False):
                    assert answer is False, "an offer after close started a drain"
                model.wake(answer)

        return model, consumer, producer

    def check(model: Model) -> None:
        assert model.got == ["a"]
        assert model.after_close == [EMPTY] * 3  # type: ignore[attr-defined]
        assert deque.__len__(model.handoff._queue) == 0, "an item kept after close"
        assert model.handoff.poll() is EMPTY

    explore(make, check)


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest", "latest", "error"])
def test_explore_overflow_policies_at_capacity_two(overflow: Any) -> None:
    """The full path (locked) mixed with the lock-free one around the park."""

    def make() -> tuple[Model, Callable[[], None], Callable[[], None]]:
        handoff = PointHandoff(2, overflow)
        model = Model(handoff)
        model.offer(0)

        def producer() -> None:
            for n in (1, 2, 3):
                try:
                    model.offer(n)
                except Overflow as exc:
                    model.end(exc)
                    return
            model.end(None)

        return model, model.drain, producer

    def check(model: Model) -> None:
        handoff = model.handoff
        *items, terminal = model.got
        assert type(terminal) is Terminal and model.state == "ended"
        assert items == sorted(set(items)), "out of order or duplicated"
        if overflow == "error":
            if terminal.error is None:
                assert items == [0, 1, 2, 3]
            else:
                assert items == list(range(handoff.total - 1))  # every accepted one
        else:
            assert terminal.error is None
            assert len(items) + handoff.dropped == handoff.total == 4
            assert items[-1] == 3 or overflow == "drop_newest"
            assert items[0] == 0 or overflow != "drop_newest"
        assert deque.__len__(handoff._queue) == 0

    explore(make, check, preemptions=1 if overflow != "latest" else 2)


# =========================================================================================
# Deterministic single interleavings, by hand (readable counterparts of the above)
# =========================================================================================


class HookDeque(deque):  # type: ignore[type-arg]
    """Calls ``after_look`` once, the first time the queue's truth is tested and found
    empty: right after the consumer's emptiness check, before it parks."""

    after_look: Callable[[], None] | None = None

    def __bool__(self) -> bool:
        result = super().__len__() > 0
        hook, self.after_look = self.after_look, None
        if hook is not None and not result:
            hook()
        return result


def test_an_item_queued_between_the_consumers_look_and_its_park_is_not_stranded() -> None:
    """The producer appends after poll saw an empty queue and reads ``_parked`` before poll
    parks (so its offer says False): poll's last look must return the item."""
    handoff: Handoff[str] = Handoff(4)
    handoff._queue = HookDeque()
    assert handoff.offer("a") is True
    assert handoff.poll() == "a"
    answers: list[bool] = []
    handoff._queue.after_look = lambda: answers.append(handoff.offer("b"))  # type: ignore[attr-defined]
    got = handoff.poll()
    assert answers == [False]  # the consumer was running: no new drain
    assert got == "b", "b stranded: no drain runs and none will until the next offer"
    assert handoff.poll() is EMPTY
    assert handoff.offer("c") is True


def test_a_producer_that_sees_the_park_waits_for_the_last_look() -> None:
    """The producer appends and reads ``_parked`` between poll's park and its last look:
    it must wait for the lock and then find the consumer un-parked (no second drain), while
    the consumer returns the item."""
    handoff: Handoff[str] = Handoff(4)
    assert handoff.offer("a") is True and handoff.poll() == "a"
    producer_waiting = threading.Event()
    real_lock = handoff._lock

    class Watched:
        def __enter__(self) -> None:
            if threading.current_thread() is producer:
                producer_waiting.set()
            real_lock.acquire()

        def __exit__(self, *_: object) -> None:
            real_lock.release()

    handoff._lock = Watched()  # type: ignore[assignment]
    answers: list[bool] = []
    producer = threading.Thread(target=lambda: answers.append(handoff.offer("b")))

    class ParkHook(deque):  # type: ignore[type-arg]
        looks = 0

        def __bool__(self) -> bool:
            self.looks += 1
            if self.looks == 2:  # the last look, parked: let the producer in first
                producer.start()
                assert producer_waiting.wait(TIMEOUT)  # it saw _parked and wants the lock
            return super().__len__() > 0

    handoff._queue = ParkHook()
    assert handoff.poll() == "b"
    producer.join(TIMEOUT)
    assert answers == [False], "a second drain would start while this one runs"
    assert handoff.poll() is EMPTY and handoff.offer("c") is True


def test_close_between_the_producers_check_and_its_append_keeps_nothing() -> None:
    """close() lands after offer's closed check, before its append: the item must not stay
    in the queue (memory) nor reach the consumer."""

    class Item:
        pass

    handoff: Handoff[Item] = Handoff(4)
    assert handoff.offer(Item()) is True
    late = Item()
    ref = weakref.ref(late)

    class CloseBeforeAppend(deque):  # type: ignore[type-arg]
        def append(self, item: Any) -> None:
            handoff.close()  # on the producer's thread: the lock is free here
            super().append(item)

    handoff._queue = CloseBeforeAppend(handoff._queue)
    assert handoff.offer(late) is False
    assert len(handoff) == 0 and handoff.poll() is EMPTY
    del late
    gc.collect()
    assert ref() is None, "the item offered during close is still referenced"


def test_total_counts_only_accepted_items_after_close() -> None:
    handoff: Handoff[int] = Handoff(4)
    handoff.offer(1)
    handoff.close()
    assert handoff.offer(2) is False and handoff.total == 1 and len(handoff) == 0


def test_the_flag_follows_the_gil() -> None:
    """A build whose GIL is off at import takes the lock for every offer."""
    path = handoff_module.__file__
    for gil, expected in ((True, True), (False, False)):
        saved = getattr(sys, "_is_gil_enabled", None)
        sys._is_gil_enabled = lambda gil=gil: gil  # type: ignore[attr-defined]
        try:
            spec = importlib.util.spec_from_file_location("rxtweet._handoff_copy", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            if saved is None:
                del sys._is_gil_enabled  # type: ignore[attr-defined]
            else:
                sys._is_gil_enabled = saved  # type: ignore[attr-defined]
        assert module._LOCK_FREE_OFFER is expected
    assert handoff_module._LOCK_FREE_OFFER is bool(getattr(sys, "_is_gil_enabled", lambda: True)())


# =========================================================================================
# Real threads, forced switching
# =========================================================================================


class Tracked(Handoff[Any]):
    """Records, under the hand-off's own lock (``_parked`` is only written under it), which
    drain is live: a drain parks (``_parked = True`` on its thread) and is gone, or un-parks
    itself in the last look and goes on. A drain that starts while another is live is a
    double wake-up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.local = threading.local()
        self.live: set[int] = set()
        self.violations: list[str] = []
        self.track = threading.Lock()
        super().__init__(*args, **kwargs)

    @property
    def _parked(self) -> bool:
        return self.__dict__["_p"]

    @_parked.setter
    def _parked(self, value: bool) -> None:
        self.__dict__["_p"] = value
        drain = getattr(self.local, "drain", None)
        if drain is None:
            return  # the producer's claim
        with self.track:
            if value:
                self.live.discard(drain)
            else:
                self.live.add(drain)

    def begin(self, drain: int) -> None:
        self.local.drain = drain
        with self.track:
            if self.live:
                self.violations.append(f"drain {drain} started while {self.live} live")
            self.live.add(drain)


class CapacityDeque(deque):  # type: ignore[type-arg]
    """Fails when an append leaves more than ``capacity`` items."""

    capacity = 0
    over: list[int]

    def append(self, item: Any) -> None:
        super().append(item)
        if super().__len__() > self.capacity:
            self.over.append(super().__len__())


class Rig:
    """A producer (the caller) and drains on ``workers`` threads, each drain started by a
    True from offer/end, like observe_on_bounded on a pool."""

    def __init__(self, handoff: Tracked, workers: int = 2, dwell: int = 0) -> None:
        self.handoff = handoff
        self.tokens: queue_module.SimpleQueue[int | None] = queue_module.SimpleQueue()
        self.got: list[Any] = []
        self.cond = threading.Condition()
        self.ids = itertools.count()
        self.dwell = dwell
        self.rng = random.Random(7)
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def _work(self) -> None:
        while (drain := self.tokens.get()) is not None:
            self.handoff.begin(drain)
            while True:
                item = self.handoff.poll()
                if item is EMPTY:
                    break
                with self.cond:
                    self.got.append(item)
                    self.cond.notify_all()
                if self.dwell:
                    for _ in range(self.rng.randrange(self.dwell)):
                        pass
                if type(item) is Terminal:
                    break
            self.handoff.local.drain = None

    def wake(self, answer: bool) -> None:
        if answer:
            self.tokens.put(next(self.ids))

    def wait_for(self, count: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.got) >= count, timeout=TIMEOUT)

    def stop(self) -> None:
        for _ in self.threads:
            self.tokens.put(None)
        for t in self.threads:
            t.join(TIMEOUT)
            assert not t.is_alive()


def test_ping_pong_offers_race_the_park_and_none_strands(
    fast_switching: None, offer_path: bool
) -> None:
    """Each item is offered the moment the previous one is delivered (the consumer is on its
    way to poll and park), with a varying delay; each must be delivered without waiting
    for a later item: a stranded one times out here."""
    handoff = Tracked(4, "block")
    rig = Rig(handoff, workers=2)
    rng = random.Random(1)
    rounds = N_PING if offer_path else N_PING // 5  # the locked path: a control
    try:
        for n in range(rounds):
            for _ in range(rng.randrange(40)):
                pass
            rig.wake(handoff.offer(n))
            assert rig.wait_for(n + 1), f"item {n} stranded (delivered {len(rig.got)})"
        rig.wake(handoff.end(None))
        assert rig.wait_for(rounds + 1)
    finally:
        rig.stop()
    assert rig.got[:-1] == list(range(rounds)) and type(rig.got[-1]) is Terminal
    assert handoff.violations == []
    assert handoff.total == rounds and handoff.dropped == 0 and len(handoff) == 0


@pytest.mark.parametrize(
    ("overflow", "capacity"),
    [("block", 3), ("drop_oldest", 3), ("drop_newest", 3), ("latest", 1)],
)
def test_policies_are_exact_with_a_concurrent_consumer(
    fast_switching: None, overflow: Any, capacity: int
) -> None:
    """A producer mostly ahead of a two-thread consumer: the full (locked) path races the
    lock-free one."""
    check_policy(overflow, capacity, PACE, dwell=30)


@pytest.mark.parametrize(
    ("overflow", "capacity"),
    [("drop_oldest", 3), ("drop_newest", 3), ("latest", 1), ("error", 64)],
)
def test_policies_are_exact_when_the_consumer_mostly_keeps_up(
    fast_switching: None, overflow: Any, capacity: int
) -> None:
    """The consumer parks and is woken hundreds of times, and still falls behind at times
    (with ``"error"``, until a burst overflows)."""
    check_policy(overflow, capacity, SLOW_PACE, dwell=0)


def check_policy(overflow: Any, capacity: int, pace: int, dwell: int) -> None:
    n_items = 8_000
    drops: list[int] = []
    handoff = Tracked(capacity, overflow, on_overflow=drops.append)
    handoff._queue = CapacityDeque()
    handoff._queue.capacity, handoff._queue.over = capacity, []  # type: ignore[attr-defined]
    rig = Rig(handoff, workers=2, dwell=dwell)
    refused: Overflow | None = None
    spin = random.Random(2)
    try:
        for n in range(n_items):
            for _ in range(spin.randrange(pace)):  # now behind the consumer, now ahead
                pass
            try:
                rig.wake(handoff.offer(n))
            except Overflow as exc:
                refused = exc
                rig.wake(handoff.end(exc))
                break
        else:
            rig.wake(handoff.end(None))
        assert rig.wait_for(1)
        with rig.cond:
            assert rig.cond.wait_for(
                lambda: rig.got and type(rig.got[-1]) is Terminal, timeout=TIMEOUT
            ), "the end never reached the consumer"
    finally:
        rig.stop()
    *items, terminal = rig.got
    assert handoff.violations == []
    assert handoff._queue.over == [], "the queue went above its capacity"  # type: ignore[attr-defined]
    assert items == sorted(set(items)), "out of order or duplicated"
    assert len(handoff) == 0
    if overflow == "error" and refused is not None:
        assert terminal.error is refused
        assert items == list(range(handoff.total - 1)), "an accepted item was lost"
        return
    assert terminal.error is None and handoff.total == n_items
    assert len(items) + handoff.dropped == n_items
    assert drops == list(range(1, handoff.dropped + 1))
    if overflow == "block":
        assert items == list(range(n_items))
    if overflow in ("drop_oldest", "latest"):
        assert items[-1] == n_items - 1
    if overflow == "drop_newest":
        assert items[0] == 0


class Item:
    __slots__ = ("__weakref__", "n")

    def __init__(self, n: int) -> None:
        self.n = n


def _close_during_offers(spin: int) -> str | None:
    """One round: the producer offers until well after close; the consumer takes a few
    items, spins ``spin`` loops, closes. What went wrong, or None."""
    handoff: Handoff[Item] = Handoff(64, "drop_oldest")
    refs: list[weakref.ref[Item]] = []
    closed = threading.Event()
    after_close: list[bool] = []
    started = threading.Event()

    def produce() -> None:
        for n in itertools.count():
            item = Item(n)
            refs.append(weakref.ref(item))
            was_closed = closed.is_set()
            answer = handoff.offer(item)
            if was_closed:
                after_close.append(answer)
                if len(after_close) >= 200:
                    return
            started.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert started.wait(TIMEOUT)
    got = []
    while len(got) < 5 and (polled := handoff.poll()) is not EMPTY:
        got.append(polled)
    polled = None
    for _ in range(spin):
        pass
    handoff.close()
    closed.set()
    late = [handoff.poll() for _ in range(50)]
    producer.join(TIMEOUT)
    assert not producer.is_alive()
    del got
    if late != [EMPTY] * 50:
        return "an item after close"
    if any(after_close):
        return "a wake after close"
    if len(handoff) != 0 or handoff.poll() is not EMPTY:
        return "an item kept after close"
    if any(r() is not None for r in refs):
        return "an item still referenced after close"
    return None


def test_close_racing_offers_with_forced_switching(fast_switching: None) -> None:
    """A producer offering without pause while the consumer closes at varying moments:
    after close returns poll gives nothing, every later offer says False, nothing stays
    queued, and the items refused are freed."""
    rng = random.Random(3)
    for round_ in range(150):
        problem = _close_during_offers(rng.randrange(3000))
        assert problem is None, f"round {round_}: {problem}"


# =========================================================================================
# observe_on_bounded end to end
# =========================================================================================


class Monitor:
    """An observer that records and detects being entered by two threads at once."""

    def __init__(self, raise_at: int | None = None) -> None:
        self.values: list[Any] = []
        self.errors: list[Exception] = []
        self.completed = 0
        self.inside = threading.Lock()
        self.overlaps = 0
        self.after_end = 0
        self.done = threading.Event()
        self.raise_at = raise_at

    def _enter(self) -> None:
        if not self.inside.acquire(blocking=False):
            self.overlaps += 1
            self.inside.acquire()
        if self.done.is_set():
            self.after_end += 1

    def on_next(self, value: Any) -> None:
        self._enter()
        try:
            self.values.append(value)
            if value == self.raise_at:
                raise RuntimeError("observer failed")
        finally:
            self.inside.release()

    def on_error(self, error: Exception) -> None:
        self._enter()
        self.errors.append(error)
        self.inside.release()
        self.done.set()

    def on_completed(self) -> None:
        self._enter()
        self.completed += 1
        self.inside.release()
        self.done.set()


@contextmanager
def scheduler_of(kind: str) -> Iterator[Any]:
    if kind == "eventloop":
        scheduler = EventLoopScheduler()
        try:
            yield scheduler
        finally:
            scheduler.dispose()
        return
    pool = ThreadPoolScheduler(int(kind[-1]))
    try:
        yield pool
    finally:
        pool.executor.shutdown(wait=True)


def produce_on_a_thread(source: Subject[int], n_items: int, pause: int = 0) -> threading.Thread:
    def produce() -> None:
        for n in range(n_items):
            source.on_next(n)
            if pause and n % pause == 0:
                time.sleep(0)  # give the GIL away: the drain parks, a new one is scheduled
        source.on_completed()

    thread = threading.Thread(target=produce)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", ["pool1", "pool2", "eventloop"])
def test_10k_items_across_threads_in_order(fast_switching: None, kind: str) -> None:
    n_items = 10_000
    source: Subject[int] = Subject()
    monitor = Monitor()
    with scheduler_of(kind) as scheduler:
        source.pipe(observe_on_bounded(scheduler, capacity=64, overflow="block")).subscribe(
            monitor.on_next, monitor.on_error, monitor.on_completed
        )
        producer = produce_on_a_thread(source, n_items, pause=97)
        producer.join(TIMEOUT * 3)
        assert monitor.done.wait(TIMEOUT), f"stalled at {len(monitor.values)}"
    assert monitor.values == list(range(n_items))
    assert monitor.completed == 1 and monitor.errors == []
    assert monitor.overlaps == 0 and monitor.after_end == 0


def test_an_asyncio_loop_as_the_consumer(fast_switching: None) -> None:
    n_items = 8_000
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    try:
        source: Subject[int] = Subject()
        monitor = Monitor()
        source.pipe(
            observe_on_bounded(AsyncIOScheduler(loop), capacity=16, overflow="block")
        ).subscribe(monitor.on_next, monitor.on_error, monitor.on_completed)
        producer = produce_on_a_thread(source, n_items, pause=31)
        producer.join(TIMEOUT * 2)
        assert monitor.done.wait(TIMEOUT), f"stalled at {len(monitor.values)}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(TIMEOUT)
        loop.close()
    assert monitor.values == list(range(n_items))
    assert monitor.completed == 1 and monitor.overlaps == 0


@pytest.mark.parametrize("kind", ["pool1", "pool2", "eventloop"])
def test_an_observer_that_raises_ends_it_once(fast_switching: None, kind: str) -> None:
    for raise_at in (0, 1, 500, 4999):
        source: Subject[int] = Subject()
        monitor = Monitor(raise_at=raise_at)
        with scheduler_of(kind) as scheduler:
            source.pipe(observe_on_bounded(scheduler, capacity=8, overflow="block")).subscribe(
                monitor.on_next, monitor.on_error, monitor.on_completed
            )
            producer = produce_on_a_thread(source, 6000, pause=13)
            producer.join(TIMEOUT)
            assert not producer.is_alive(), "the producer stayed blocked after the failure"
            assert monitor.done.wait(TIMEOUT)
        assert monitor.values == list(range(raise_at + 1))
        assert len(monitor.errors) == 1 and str(monitor.errors[0]) == "observer failed"
        assert monitor.completed == 0 and monitor.after_end == 0 and monitor.overlaps == 0
        assert not source.observers


def _dispose_mid_stream(kind: str, target: int) -> tuple[int, Monitor, Handoff[Any]]:
    """One round: a producer thread pushes without pause; disposed once ``target`` items
    have arrived. Returns how many had arrived when dispose returned."""
    handoffs: list[Handoff[Any]] = []
    source: Subject[int] = Subject()
    monitor = Monitor()
    stop = threading.Event()

    def produce() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            source.on_next(n)

    with scheduler_of(kind) as scheduler:
        operator = bounded_operator(
            scheduler,
            capacity=32,
            overflow="drop_oldest",
            on_overflow=None,
            name="attack",
            watch=lambda h: (handoffs.append(h), lambda: None)[1],
        )
        subscription = source.pipe(operator).subscribe(
            monitor.on_next, monitor.on_error, monitor.on_completed
        )
        producer = threading.Thread(target=produce)
        producer.start()
        deadline = time.monotonic() + TIMEOUT
        while len(monitor.values) < target and time.monotonic() < deadline:
            time.sleep(0)
        subscription.dispose()
        seen = len(monitor.values)
        time.sleep(0.002)  # not a synchronisation: a window for a drain that goes on
        stop.set()
        producer.join(TIMEOUT)
    return seen, monitor, handoffs[0]


@pytest.mark.parametrize("kind", ["pool1", "pool2", "eventloop"])
def test_nothing_after_disposal_but_the_item_in_hand(fast_switching: None, kind: str) -> None:
    rng = random.Random(5)
    for round_ in range(40):
        seen, monitor, handoff = _dispose_mid_stream(kind, 1 + rng.randrange(200))
        assert len(monitor.values) <= seen + 1, f"round {round_}: items after disposal"
        assert len(handoff) == 0 and handoff.closed and handoff.poll() is EMPTY
        assert monitor.overlaps == 0 and monitor.values == sorted(set(monitor.values))


def test_offers_from_a_source_that_ignores_disposal_reach_nobody(fast_switching: None) -> None:
    """A source that goes on calling on_next after disposal (a reader thread mid-chunk):
    nothing is queued, no drain is scheduled, nothing delivered."""
    observers: list[Any] = []

    def subscribe(observer: Any, scheduler: Any = None) -> Any:
        observers.append(observer)
        return Disposable()

    monitor = Monitor()
    handoffs: list[Handoff[Any]] = []
    with scheduler_of("pool2") as pool:
        operator = bounded_operator(
            pool,
            capacity=8,
            overflow="drop_newest",
            on_overflow=None,
            name="attack",
            watch=lambda h: (handoffs.append(h), lambda: None)[1],
        )
        subscription = (
            reactivex.create(subscribe)
            .pipe(operator)
            .subscribe(monitor.on_next, monitor.on_error, monitor.on_completed)
        )
        (observer,) = observers
        # The operator's own callbacks, past Rx's auto-detach (which stops at disposal).
        push, complete = observer._on_next, observer._on_completed
        for n in range(100):
            push(n)
        assert wait_for(lambda: len(monitor.values) >= 1)
        subscription.dispose()
        seen = len(monitor.values)
        for n in range(100, 5000):
            push(n)
        complete()
        time.sleep(0.01)
    assert len(monitor.values) <= seen + 1
    assert monitor.completed == 0 and monitor.errors == []
    assert len(handoffs[0]) == 0 and handoffs[0].total == 100


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True
