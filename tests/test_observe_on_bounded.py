"""observe_on_bounded: the overflow policies, ordering, disposal, and its stream wiring.

* virtual time (``TestScheduler``): every policy with exact drops and delivery times, errors
  and completion after the queue, one drain task per backlog, disposal mid-queue;
* threads: "block" holds the producer and loses nothing, disposal wakes it, the observer is
  never entered twice at once on a pool of 4;
* real servers: a 2 ms-per-item consumer behind ``capacity=1000, overflow="drop_oldest"`` on
  a :class:`~rxtweet.testing.FakeStreamServer` stream (newest items, exact counts in
  ``stream.stats`` and ``Overflowed`` events, the queue never above its bound), and
  ``"block"`` against a :class:`RawServer` whose non-blocking send hits ``EAGAIN`` while the
  consumer is held (the client fell behind) and memory stays flat.
"""

from __future__ import annotations

import itertools
import socket
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from reactivex import abc
from reactivex import operators as ops
from reactivex.scheduler import CurrentThreadScheduler, ThreadPoolScheduler
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from support import RawServer, chunk, raw_servers, reader_threads, wait_until

from rxtweet import StreamingClient, Tweet
from rxtweet.errors import Overflow
from rxtweet.events import Disconnected, Overflowed, StreamEvent
from rxtweet.operators.observe_on_bounded import observe_on_bounded
from rxtweet.testing import Attempt, FakeStreamServer, generate_v2_messages

on_next, on_error, on_completed = (
    ReactiveTest.on_next,
    ReactiveTest.on_error,
    ReactiveTest.on_completed,
)
subscribe = ReactiveTest.subscribe
TIMEOUT = 5.0

# --------------------------------------------------------------------------- virtual time

# Six items in one instant (the consumer cannot run in between), one later, then the end.
BURST = [on_next(210, n) for n in range(1, 7)] + [on_next(220, 7), on_completed(230)]


def run(
    messages: list[Any], capacity: int, overflow: Any, **kwargs: Any
) -> tuple[Any, Any, list[int]]:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(messages)
    drops: list[int] = []
    results = scheduler.start(
        lambda: xs.pipe(
            observe_on_bounded(
                scheduler, capacity=capacity, overflow=overflow, on_overflow=drops.append, **kwargs
            )
        )
    )
    return results.messages, xs.subscriptions, drops


@pytest.mark.parametrize(
    ("overflow", "delivered", "dropped"),
    [
        ("drop_oldest", [5, 6], 4),  # 1, 2 queued; 3..6 each push the oldest out
        ("drop_newest", [1, 2], 4),  # 3..6 refused
        ("latest", [6], 5),  # one waits: the newest
    ],
)
def test_drop_policies_in_virtual_time(overflow: str, delivered: list[int], dropped: int) -> None:
    messages, subscriptions, drops = run(BURST, 2, overflow)
    assert messages == [
        *(on_next(210, n) for n in delivered),
        on_next(220, 7),
        on_completed(230),
    ]
    assert drops == list(range(1, dropped + 1))
    assert subscriptions == [subscribe(200, 230)]


def test_error_policy_fails_after_the_queued_items_and_disposes_the_source() -> None:
    messages, subscriptions, drops = run(BURST, 2, "error", name="to-db")
    assert messages[:2] == [on_next(210, 1), on_next(210, 2)]
    assert len(messages) == 3
    assert messages[2].time == 210
    error = messages[2].value.exception
    assert isinstance(error, Overflow)
    assert (error.capacity, error.total, error.name) == (2, 3, "to-db")
    assert subscriptions == [subscribe(200, 210)]  # the source is let go at the overflow
    assert drops == []


def test_block_never_drops_when_the_consumer_keeps_up() -> None:
    items = [on_next(210 + 10 * n, n) for n in range(5)] + [on_completed(300)]
    messages, _, drops = run(items, 1, "block")
    assert messages == items
    assert drops == []


def test_error_and_completion_come_after_the_queued_items() -> None:
    boom = RuntimeError("boom")
    burst = [on_next(210, n) for n in range(1, 5)] + [on_error(210, boom)]
    messages, _, _ = run(burst, 10, "drop_oldest")
    assert messages == [*(on_next(210, n) for n in range(1, 5)), on_error(210, boom)]
    burst = [on_next(210, n) for n in range(1, 5)] + [on_completed(210)]
    messages, _, _ = run(burst, 3, "drop_newest")
    assert messages == [*(on_next(210, n) for n in range(1, 4)), on_completed(210)]


class CountingScheduler(TestScheduler):
    """A TestScheduler that counts the actions scheduled on it."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0

    def schedule(self, action: Any, state: Any = None) -> abc.DisposableBase:
        self.scheduled += 1
        return super().schedule(action, state)


def test_one_drain_task_per_backlog() -> None:
    scheduler = CountingScheduler()
    source: Subject[int] = Subject()
    got: list[int] = []
    source.pipe(observe_on_bounded(scheduler, capacity=5000)).subscribe(got.append)
    for n in range(1000):  # one backlog: the consumer does not run meanwhile
        source.on_next(n)
    assert scheduler.scheduled == 1
    scheduler.advance_by(1)
    assert got == list(range(1000))
    source.on_next(1000)  # the consumer had parked: a second task
    source.on_next(1001)
    scheduler.advance_by(1)
    assert scheduler.scheduled == 2
    assert got == list(range(1002))
    # RxPY's observe_on schedules a task per item.
    plain = CountingScheduler()
    other: Subject[int] = Subject()
    other.pipe(ops.observe_on(plain)).subscribe(lambda _: None)
    for n in range(100):
        other.on_next(n)
    plain.advance_by(1)
    assert plain.scheduled >= 100


def test_dispose_mid_queue_discards_it_and_cancels_the_drain() -> None:
    scheduler = TestScheduler()
    source: Subject[int] = Subject()
    got: list[int] = []
    ended: list[str] = []
    subscription = source.pipe(observe_on_bounded(scheduler, capacity=10)).subscribe(
        got.append, lambda e: ended.append("error"), lambda: ended.append("completed")
    )
    for n in range(5):
        source.on_next(n)
    subscription.dispose()
    source.on_next(5)
    source.on_completed()
    scheduler.advance_by(10)
    assert got == [] and ended == []
    assert not source.observers  # the source was let go


def test_dispose_from_the_observer_stops_after_the_current_item() -> None:
    scheduler = TestScheduler()
    source: Subject[int] = Subject()
    got: list[int] = []
    holder: list[abc.DisposableBase] = []

    def take(value: int) -> None:
        got.append(value)
        if value == 2:
            holder[0].dispose()

    holder.append(source.pipe(observe_on_bounded(scheduler, capacity=10)).subscribe(take))
    for n in range(6):
        source.on_next(n)
    scheduler.advance_by(1)
    assert got == [0, 1, 2]
    assert not source.observers


def test_an_observer_exception_ends_the_subscription_with_it() -> None:
    scheduler = TestScheduler()
    source: Subject[int] = Subject()
    seen: list[int] = []
    errors: list[Exception] = []

    def fragile(value: int) -> None:
        seen.append(value)
        if value == 2:
            raise ValueError("bug in the observer")

    source.pipe(observe_on_bounded(scheduler, capacity=10)).subscribe(fragile, errors.append)
    for n in range(6):
        source.on_next(n)
    scheduler.advance_by(1)
    assert seen == [0, 1, 2]
    assert [str(e) for e in errors] == ["bug in the observer"]
    assert not source.observers


def test_an_on_overflow_exception_ends_it_after_the_queue() -> None:
    def refuse(total: int) -> None:
        raise RuntimeError(f"too slow: {total}")

    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(BURST)
    results = scheduler.start(
        lambda: xs.pipe(
            observe_on_bounded(scheduler, capacity=2, overflow="drop_newest", on_overflow=refuse)
        )
    )
    assert results.messages[:2] == [on_next(210, 1), on_next(210, 2)]
    assert str(results.messages[2].value.exception) == "too slow: 1"
    assert xs.subscriptions == [subscribe(200, 210)]


@pytest.mark.parametrize(
    ("kwargs", "scheduler"),
    [
        ({"capacity": 0}, TestScheduler()),
        ({"capacity": 5, "overflow": "drop"}, TestScheduler()),
        ({"capacity": 5, "overflow": "block"}, CurrentThreadScheduler()),
    ],
)
def test_bad_arguments_are_refused_at_once(
    kwargs: dict[str, Any], scheduler: abc.SchedulerBase
) -> None:
    with pytest.raises(ValueError, match=r"capacity|overflow"):
        observe_on_bounded(scheduler, **kwargs)


# --------------------------------------------------------------------------- threads


@contextmanager
def thread_pool(n: int) -> Iterator[ThreadPoolScheduler]:
    pool = ThreadPoolScheduler(n)
    try:
        yield pool
    finally:
        pool.executor.shutdown(wait=True)


class Monitor:
    """Records values and how many threads are inside ``on_next`` at once."""

    def __init__(self, dwell: float = 0.0) -> None:
        self.values: list[Any] = []
        self.inside = 0
        self.max_inside = 0
        self.dwell = dwell
        self.done = threading.Event()
        self.errors: list[Exception] = []
        self._lock = threading.Lock()

    def on_next(self, value: Any) -> None:
        with self._lock:
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
        if self.dwell:
            time.sleep(self.dwell)
        self.values.append(value)
        with self._lock:
            self.inside -= 1

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self.done.set()

    def on_completed(self) -> None:
        self.done.set()


def test_block_holds_the_producer_and_loses_nothing() -> None:
    source: Subject[int] = Subject()
    gate = threading.Event()
    monitor = Monitor()

    def gated(value: int) -> None:
        assert gate.wait(TIMEOUT)
        monitor.on_next(value)

    produced = []

    def produce() -> None:
        for n in range(50):
            source.on_next(n)
            produced.append(n)
        source.on_completed()

    with thread_pool(4) as pool:
        source.pipe(observe_on_bounded(pool, capacity=5, overflow="block")).subscribe(
            gated, monitor.on_error, monitor.on_completed
        )
        producer = threading.Thread(target=produce)
        producer.start()
        # One item in the observer, five waiting: the sixth put waits for room.
        assert wait_until(lambda: len(produced) == 6)
        time.sleep(0.05)
        assert len(produced) == 6
        gate.set()
        assert monitor.done.wait(TIMEOUT)
        producer.join(TIMEOUT)
    assert monitor.values == list(range(50))
    assert monitor.errors == []


def test_dispose_wakes_a_producer_blocked_in_block() -> None:
    source: Subject[int] = Subject()
    gate = threading.Event()
    returned = threading.Event()
    got: list[int] = []

    def gated(value: int) -> None:
        got.append(value)
        gate.wait(TIMEOUT)

    def produce() -> None:
        for n in range(10):
            source.on_next(n)
        returned.set()

    with thread_pool(2) as pool:
        subscription = source.pipe(
            observe_on_bounded(pool, capacity=2, overflow="block")
        ).subscribe(gated)
        producer = threading.Thread(target=produce)
        producer.start()
        assert wait_until(lambda: got == [0])
        time.sleep(0.05)
        assert not returned.is_set()  # waiting for room
        subscription.dispose()
        assert returned.wait(TIMEOUT)  # woken, and the rest refused at once
        gate.set()
        producer.join(TIMEOUT)
    assert got == [0]  # the queue was discarded: the worker stopped
    assert not source.observers


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest", "latest", "block"])
def test_never_entered_concurrently_and_in_order(overflow: Any) -> None:
    source: Subject[int] = Subject()
    monitor = Monitor(dwell=0.0002)
    drops: list[int] = []
    with thread_pool(4) as pool:
        source.pipe(
            observe_on_bounded(pool, capacity=8, overflow=overflow, on_overflow=drops.append)
        ).subscribe(monitor.on_next, monitor.on_error, monitor.on_completed)
        for n in range(2000):
            source.on_next(n)
            if n % 50 == 0:
                time.sleep(0.001)  # let the consumer park now and then: new drain tasks
        source.on_completed()
        assert monitor.done.wait(TIMEOUT)
    values = monitor.values
    assert monitor.max_inside == 1
    assert values == sorted(set(values))
    assert values[-1] == 1999 or overflow == "drop_newest"
    assert len(values) + (drops[-1] if drops else 0) == 2000
    if overflow == "block":
        assert values == list(range(2000))


# --------------------------------------------------------------------------- real servers

N = 3000
MESSAGES = list(itertools.islice(generate_v2_messages(seed=16), N + 20))
EXPECTED_IDS = [int(m["data"]["id"]) for m in MESSAGES]


@pytest.fixture
def no_leftover_readers() -> Iterator[None]:
    yield
    assert wait_until(lambda: not reader_threads()), "a reader thread outlived its test"


def test_drop_oldest_behind_a_slow_consumer_on_a_stream(no_leftover_readers: None) -> None:
    capacity = 1000
    arrived = itertools.count(1)
    all_arrived = threading.Event()
    got: list[int] = []
    lengths: list[int] = []
    events: list[StreamEvent] = []
    done = threading.Event()
    errors: list[Exception] = []

    with (
        FakeStreamServer(messages=MESSAGES, keepalive_interval=0.05, default=Attempt()) as server,
        thread_pool(2) as pool,
    ):
        stream = StreamingClient("t0ken", base_url=server.url).sample_stream()

        def count(_: Tweet) -> None:
            if next(arrived) == N:
                all_arrived.set()

        def slow(tweet: Tweet) -> None:
            (handoff,) = stream._overflow._handoffs
            lengths.append(len(handoff))
            if not all_arrived.is_set():
                time.sleep(0.002)  # a slow consumer, while the stream pours in
            got.append(int(tweet.id))

        with stream.hold():
            events_subscription = stream.events.subscribe(events.append)
            subscription = stream.tweets.pipe(
                ops.take(N),
                ops.do_action(count),
                stream.observe_on_bounded(
                    pool, capacity=capacity, overflow="drop_oldest", name="slow-sink"
                ),
            ).subscribe(slow, errors.append, done.set)
        try:
            assert done.wait(TIMEOUT)
            # The last report is made when the source ends; it reaches `events` with the
            # stream's next item (a keep-alive at the latest).
            assert wait_until(
                lambda: (
                    sum(e.dropped for e in events if isinstance(e, Overflowed))
                    == stream.stats.overflowed
                )
            )
        finally:
            subscription.dispose()
            events_subscription.dispose()
    dropped = stream.stats.overflowed
    assert errors == []
    assert len(got) + dropped == N  # exact: every item delivered or counted
    assert dropped >= N - capacity - 500  # the consumer is far behind (~2 ms an item)
    assert got[-capacity:] == EXPECTED_IDS[N - capacity : N]  # the newest
    assert got == sorted(set(got))
    assert max(lengths) <= capacity
    overflowed = [e for e in events if isinstance(e, Overflowed)]
    assert overflowed[0].name == "slow-sink"
    assert overflowed[-1].total == dropped
    assert [e.total for e in overflowed] == list(
        itertools.accumulate(e.dropped for e in overflowed)
    )
    assert not any(isinstance(e, Disconnected) for e in events)  # disposed, not ended
    assert stream.stats.snapshot()["overflowed"] == dropped


LINE = b"%s\r\n"
PADDING = "x" * 400


#: The id of the message that ends a run (ids are numbers: a negative one is malformed).
LAST = 10**18


def tweet_line(n: int) -> bytes:
    return LINE % orjson.dumps({"data": {"id": str(n), "text": f"tweet {n} {PADDING}"}})


def test_block_backpressure_reaches_the_server(no_leftover_readers: None) -> None:
    capacity = 100
    fell_behind = threading.Event()
    release = threading.Event()
    sent = [0]

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        conn.setblocking(False)
        pending = b""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not server.stop.is_set():
            if not pending:
                pending = chunk(tweet_line(sent[0]))
                sent[0] += 1
            try:
                pending = pending[conn.send(pending) :]
            except BlockingIOError:  # EAGAIN: the send buffer is full, the client is behind
                fell_behind.set()
                break
        conn.setblocking(True)
        assert release.wait(TIMEOUT)
        if pending:
            conn.sendall(pending)
        conn.sendall(chunk(tweet_line(LAST)))  # the last one
        server.stop.wait(TIMEOUT)

    got: list[int] = []
    done = threading.Event()
    errors: list[Exception] = []
    with raw_servers() as serve, thread_pool(2) as pool:
        server: RawServer = serve(handler)
        stream = StreamingClient("t0ken", base_url=server.url).sample_stream()

        def consume(tweet: Tweet) -> None:
            assert release.wait(TIMEOUT)  # held until the server has seen the client fall behind
            got.append(int(tweet.id))

        tracemalloc.start()
        try:
            subscription = stream.tweets.pipe(
                ops.take_while(lambda tweet: int(tweet.id) != LAST),
                stream.observe_on_bounded(pool, capacity=capacity, overflow="block"),
            ).subscribe(consume, errors.append, done.set)
            assert fell_behind.wait(TIMEOUT), "the server's send buffer never filled"
            (handoff,) = stream._overflow._handoffs
            assert wait_until(lambda: handoff._waiting)  # the reader waits for room
            assert len(handoff) == capacity
            before, _ = tracemalloc.get_traced_memory()
            time.sleep(0.2)  # the reader stays blocked: nothing more is read or kept
            after, _ = tracemalloc.get_traced_memory()
            assert len(handoff) == capacity
            assert after - before < 256 * 1024
            backlog = sent[0]
            release.set()
            assert done.wait(TIMEOUT)
        finally:
            tracemalloc.stop()
            release.set()
            subscription.dispose()
    assert errors == []
    assert got == list(range(backlog))  # nothing lost, in order
    assert stream.stats.overflowed == 0
    assert backlog > capacity * 10  # the buffers between hold far more than the queue


@pytest.mark.parametrize("kind", ["pool", "eventloop"])
def test_no_item_waits_for_the_next_under_forced_thread_switches(kind: str) -> None:
    # The hand-off queues without its lock while the consumer runs (Handoff.offer). Each
    # item here is offered only once the one before was delivered, so the consumer parks
    # and is started again item after item, and GIL switches come at almost every bytecode:
    # an item stranded by a park that missed it would never be delivered (no later item
    # comes to wake the consumer), and the wait below would time out.
    from reactivex.scheduler import EventLoopScheduler

    source: Subject[int] = Subject()
    delivered: list[int] = []
    arrived = threading.Condition()
    running = [0]
    overlaps: list[int] = []

    def on_next(value: int) -> None:
        running[0] += 1
        if running[0] > 1:
            overlaps.append(value)
        with arrived:
            delivered.append(value)
            arrived.notify()
        running[0] -= 1

    scheduler: Any = ThreadPoolScheduler(2) if kind == "pool" else EventLoopScheduler()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        subscription = source.pipe(
            observe_on_bounded(scheduler, capacity=4, overflow="block")
        ).subscribe(on_next)
        for n in range(1500):
            source.on_next(n)
            with arrived:
                assert arrived.wait_for(lambda n=n: len(delivered) > n, TIMEOUT), n
        subscription.dispose()
    finally:
        sys.setswitchinterval(interval)
        if kind == "pool":
            scheduler.executor.shutdown(wait=True)
        else:
            scheduler.dispose()
    assert delivered == list(range(1500))
    assert overlaps == []
