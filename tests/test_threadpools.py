"""Thread pools with rxtweet streams: the recipes and pitfalls of docs/threads.md, checked.

Every claim the document makes is a test here: ``observe_on(ThreadPoolScheduler(n))`` never
enters the observer concurrently and keeps the server's order (n = 1, 2, 4); parallel work per
tweet with ``concat_map`` + ``from_future`` keeps order, ``flat_map`` does not, a lazy
``defer`` runs serially; ``subscribe_on`` moves the subscription, not the delivery, and makes
disposal asynchronous; ``observe_on`` swallows an observer's exception. (The bounded
hand-off is :func:`rxtweet.operators.observe_on_bounded`, tested in
tests/test_observe_on_bounded.py.)

Concurrency is proven with barriers (a run that is not parallel breaks the barrier) and
measured with :class:`EntryMonitor` (a lock-protected count of threads inside the observer,
with a short sleep inside so that overlaps get a chance to happen).
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import reactivex as rx
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.scheduler import ThreadPoolScheduler
from reactivex.subject import Subject
from support import wait_until

from rxtweet import StreamingClient, Tweet
from rxtweet.testing import Attempt, FakeStreamServer, generate_v2_messages

T = TypeVar("T")

DOC = Path(__file__).parent.parent / "docs" / "threads.md"
N = 120
MESSAGES = list(itertools.islice(generate_v2_messages(seed=11), N))
EXPECTED_IDS = [int(m["data"]["id"]) for m in MESSAGES]
TIMEOUT = 5.0


# --------------------------------------------------------------------------- helpers


class EntryMonitor:
    """How many threads are inside the observer at once; ``max_inside`` must stay 1."""

    def __init__(self, dwell: float = 0.0005) -> None:
        self.dwell = dwell
        self.inside = 0
        self.max_inside = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def entered(self) -> Iterator[None]:
        with self._lock:
            self.inside += 1
            self.max_inside = max(self.max_inside, self.inside)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(self.dwell)  # give a second thread the chance to come in
            yield
        finally:
            with self._lock:
                self.inside -= 1


class Collector:
    """An observer that records tweet ids (or plain ints) under an :class:`EntryMonitor`."""

    def __init__(self, monitor: EntryMonitor | None = None) -> None:
        self.monitor = monitor or EntryMonitor()
        self.ids: list[int] = []
        self.errors: list[Exception] = []
        self.done = threading.Event()

    def on_next(self, item: Tweet | int) -> None:
        with self.monitor.entered():
            self.ids.append(item if isinstance(item, int) else item.id)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self.done.set()

    def on_completed(self) -> None:
        self.done.set()

    def run(self, observable: Observable[Any]) -> list[int]:
        subscription = observable.subscribe(self.on_next, self.on_error, self.on_completed)
        try:
            assert self.done.wait(TIMEOUT), "the stream did not complete in time"
        finally:
            subscription.dispose()
        assert self.errors == []
        return self.ids


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert wait_until(lambda: not (set(threading.enumerate()) - before)), [
        t.name for t in set(threading.enumerate()) - before
    ]


#: ``no_leftover_threads`` checks every thread; the conftest's ``server`` adds no check.
CHECK_READER_THREADS = False


@pytest.fixture
def fake_stream_server_options() -> dict[str, Any]:
    """The options of ``server`` (tests/conftest.py)."""
    return {"messages": MESSAGES}


@pytest.fixture
def client(server: FakeStreamServer) -> StreamingClient:
    return StreamingClient("t0ken", base_url=server.url)


@contextmanager
def thread_pool(n: int) -> Iterator[ThreadPoolScheduler]:
    pool = ThreadPoolScheduler(n)
    try:
        yield pool
    finally:
        pool.executor.shutdown(wait=True)  # after disposing: see docs/threads.md


def strictly_increasing(ids: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(ids))


# --------------------------------------------------------------------------- the instrument


def test_monitor_sees_concurrent_entries() -> None:
    # Control: two threads entering together are seen as two.
    monitor = EntryMonitor(dwell=0.05)
    barrier = threading.Barrier(2, timeout=2)

    def enter() -> None:
        barrier.wait()
        with monitor.entered():
            pass

    threads = [threading.Thread(target=enter) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert monitor.max_inside == 2


# --------------------------------------------------------------------------- observe_on


@pytest.mark.parametrize("n", [1, 2, 4])
def test_observe_on_pool_is_serial_and_in_order(client: StreamingClient, n: int) -> None:
    collector = Collector()
    with thread_pool(n) as pool:
        ids = collector.run(client.sample_stream().tweets.pipe(ops.observe_on(pool), ops.take(N)))
    assert ids == EXPECTED_IDS
    assert strictly_increasing(ids)
    assert collector.monitor.max_inside == 1
    assert all(name.startswith("ThreadPoolExecutor") for name in collector.monitor.threads)


def test_observe_on_with_run(client: StreamingClient) -> None:
    with thread_pool(2) as pool:
        ids = (
            client.sample_stream()
            .tweets.pipe(ops.observe_on(pool), ops.map(lambda tweet: tweet.id), ops.take(N))
            .pipe(ops.to_list())
            .run()
        )
    assert ids == EXPECTED_IDS


def test_two_observe_on_subscriptions_are_not_serialised_with_each_other(
    client: StreamingClient,
) -> None:
    # Serial per subscription, not per pool: both observers are inside at the same time.
    stream = client.sample_stream()
    monitor = EntryMonitor()
    barrier = threading.Barrier(2, timeout=2)
    met: list[bool] = []
    done = [threading.Event(), threading.Event()]

    def observer(index: int) -> Callable[[Any], None]:
        def on_next(_: Any) -> None:
            with monitor.entered():
                if not done[index].is_set():
                    barrier.wait()  # breaks (and the test fails) unless both are inside
                    met.append(True)
                    done[index].set()

        return on_next

    with thread_pool(4) as pool:
        with stream.hold():
            a = stream.tweets.pipe(ops.observe_on(pool)).subscribe(observer(0))
            b = stream.responses.pipe(ops.observe_on(pool)).subscribe(observer(1))
        try:
            assert all(event.wait(TIMEOUT) for event in done)
        finally:
            a.dispose()
            b.dispose()
    assert met == [True, True]
    assert monitor.max_inside == 2


def test_observe_on_swallows_an_observer_exception() -> None:
    # The pitfall: no on_error, nothing logged, and the dead subscription keeps queueing.
    source: Subject[int] = Subject()
    seen: list[int] = []
    errors: list[Exception] = []

    def on_next(value: int) -> None:
        seen.append(value)
        if value == 3:
            raise RuntimeError("bug in the observer")

    with thread_pool(2) as pool:
        source.pipe(ops.observe_on(pool)).subscribe(on_next, errors.append)
        for value in range(10):
            source.on_next(value)
        assert wait_until(lambda: 3 in seen)
        time.sleep(0.05)
    assert seen == [0, 1, 2, 3]
    assert errors == []
    assert source.observers  # still subscribed upstream: a real stream would stay connected


def test_observe_on_a_shut_down_pool_ends_the_stream_silently(
    server: FakeStreamServer, client: StreamingClient
) -> None:
    stream = client.sample_stream()
    collector = Collector()
    pool = ThreadPoolScheduler(2)
    pool.executor.shutdown()
    stream.tweets.pipe(ops.observe_on(pool)).subscribe(
        collector.on_next, collector.on_error, collector.on_completed
    )
    assert wait_until(lambda: len(server.stream_requests) == 1 and not stream.connected)
    time.sleep(0.05)
    assert (collector.ids, collector.errors, collector.done.is_set()) == ([], [], False)


# --------------------------------------------------------------------------- subscribe_on


def test_subscribe_returns_before_the_first_tweet() -> None:
    with FakeStreamServer(messages=MESSAGES, default=Attempt(delay=0.3)) as server:
        client = StreamingClient("t0ken", base_url=server.url)
        collector = Collector()
        subscription = client.sample_stream().tweets.subscribe(
            collector.on_next, collector.on_error, collector.on_completed
        )
        try:
            assert collector.ids == []  # the server has not even answered yet
            assert wait_until(lambda: len(collector.ids) == N, TIMEOUT)
        finally:
            subscription.dispose()
    assert collector.ids == EXPECTED_IDS
    assert {name.split("-")[1] for name in collector.monitor.threads} == {"reader"}


def test_an_exception_in_on_next_ends_the_stream(
    server: FakeStreamServer, client: StreamingClient
) -> None:
    # Without a pool: the error reaches on_error, and the stream does not reconnect.
    stream = client.sample_stream()
    failed = threading.Event()
    errors: list[Exception] = []

    def on_next(_: Tweet) -> None:
        raise ValueError("bug in the observer")

    def on_error(error: Exception) -> None:
        errors.append(error)
        failed.set()

    stream.tweets.subscribe(on_next, on_error)
    assert failed.wait(TIMEOUT)
    assert [str(e) for e in errors] == ["bug in the observer"]
    assert wait_until(lambda: not stream.connected)
    time.sleep(0.05)
    assert len(server.stream_requests) == 1


def test_subscribe_on_moves_subscription_not_delivery(client: StreamingClient) -> None:
    stream = client.sample_stream()
    subscribed_on: list[str] = []

    def recording(observer: abc.ObserverBase[Tweet], scheduler: Any = None) -> Any:
        subscribed_on.append(threading.current_thread().name)
        return stream.tweets.subscribe(observer, scheduler=scheduler)

    collector = Collector()
    with thread_pool(2) as pool:
        subscription = (
            Observable(recording)
            .pipe(ops.subscribe_on(pool))
            .subscribe(collector.on_next, collector.on_error, collector.on_completed)
        )
        try:
            assert wait_until(lambda: len(collector.ids) == N, TIMEOUT)
        finally:
            subscription.dispose()
            # disposal is scheduled on the pool too: the connection closes a moment later
            assert wait_until(lambda: not stream.connected)
    assert subscribed_on[0].startswith("ThreadPoolExecutor")
    assert all(name.startswith("rxtweet-reader") for name in collector.monitor.threads)
    assert collector.ids == EXPECTED_IDS


# --------------------------------------------------------------------------- parallel work


class Work:
    """Simulated per-tweet work: the first ``meet`` calls wait for each other (a barrier that
    only parallel calls can pass), then sleep; records how many run at once."""

    def __init__(self, meet: int = 0, sleep: Callable[[int], float] = lambda _: 0.001) -> None:
        self.calls = itertools.count()
        self.barrier = threading.Barrier(meet, timeout=2) if meet else None
        self.meet = meet
        self.sleep = sleep
        self.monitor = EntryMonitor(dwell=0)

    def __call__(self, key: int) -> int:
        with self.monitor.entered():
            if self.barrier is not None and next(self.calls) < self.meet:
                self.barrier.wait()
            time.sleep(self.sleep(key))
            return key


def test_concat_map_from_future_is_parallel_and_in_order(client: StreamingClient) -> None:
    work = Work(meet=4)
    collector = Collector()
    with ThreadPoolExecutor(4) as executor:
        ids = collector.run(
            client.sample_stream().tweets.pipe(
                ops.take(N),
                ops.map(lambda tweet: tweet.id),
                ops.concat_map(lambda key: rx.from_future(executor.submit(work, key))),
            )
        )
    assert ids == EXPECTED_IDS
    assert work.monitor.max_inside == 4  # four at once: the barrier was passed
    assert collector.monitor.max_inside == 1


def test_flat_map_is_parallel_but_loses_order() -> None:
    # Item 0 takes longest, item 3 is quickest: flat_map emits as they finish.
    keys = [0, 1, 2, 3]
    work = Work(meet=4, sleep=lambda key: (3 - key) * 0.05)
    with ThreadPoolExecutor(4) as executor:
        out = (
            rx.from_iterable(keys)
            .pipe(ops.flat_map(lambda key: rx.from_future(executor.submit(work, key))))
            .pipe(ops.to_list())
            .run()
        )
    assert sorted(out) == keys
    assert out == [3, 2, 1, 0]


def test_concat_map_waits_for_order_where_flat_map_does_not() -> None:
    work = Work(meet=4, sleep=lambda key: (3 - key) * 0.05)
    with ThreadPoolExecutor(4) as executor:
        out = (
            rx.from_iterable([0, 1, 2, 3])
            .pipe(ops.concat_map(lambda key: rx.from_future(executor.submit(work, key))))
            .pipe(ops.to_list())
            .run()
        )
    assert out == [0, 1, 2, 3]
    assert work.monitor.max_inside == 4


def test_a_lazy_inner_observable_runs_serially() -> None:
    # defer() submits only when concat subscribes, i.e. after the previous one finished.
    work = Work()
    with ThreadPoolExecutor(4) as executor:
        out = (
            rx.from_iterable(range(8))
            .pipe(
                ops.concat_map(
                    lambda key: rx.defer(lambda _: rx.from_future(executor.submit(work, key)))
                )
            )
            .pipe(ops.to_list())
            .run()
        )
    assert out == list(range(8))
    assert work.monitor.max_inside == 1


def test_disposing_does_not_stop_submitted_work() -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def work(key: int) -> int:
        if key == 0:
            started.set()
            assert release.wait(TIMEOUT)
        ran.append(key)
        return key

    with ThreadPoolExecutor(1) as executor:
        subscription = (
            rx.from_iterable(range(4))
            .pipe(ops.concat_map(lambda key: rx.from_future(executor.submit(work, key))))
            .subscribe()
        )
        assert started.wait(TIMEOUT)
        subscription.dispose()
        release.set()
    assert ran == [0, 1, 2, 3]


def test_process_pool_for_cpu_bound_work(client: StreamingClient) -> None:
    # CPU-bound Python code needs processes (the GIL); the function and its arguments
    # must pickle: a module-level function (here a builtin) and plain data.
    context = multiprocessing.get_context("spawn")  # no fork of a threaded process
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        checksums = (
            client.sample_stream()
            .tweets.pipe(
                ops.take(N),
                ops.concat_map(
                    lambda tweet: rx.from_future(executor.submit(zlib.crc32, tweet.text.encode()))
                ),
                ops.to_list(),
            )
            .run()
        )
    assert checksums == [zlib.crc32(m["data"]["text"].encode()) for m in MESSAGES]
