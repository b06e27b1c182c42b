"""Attacks on the asyncio face and the bounded hand-off: a hostile server, a careless user, a
slow consumer (issues 15 and 16).

Each test is a break that was found (and fixed) or an attack that held; the servers are real,
on 127.0.0.1 (:class:`~rxtweet.testing.FakeStreamServer`, ``support.RawServer``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import time
import tracemalloc
from typing import Any

import orjson
import pytest
import reactivex
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.scheduler import (
    CurrentThreadScheduler,
    EventLoopScheduler,
    NewThreadScheduler,
    ThreadPoolScheduler,
    TrampolineScheduler,
)
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler
from reactivex.subject import Subject
from reactivex.testing import TestScheduler
from support import RawServer, chunk, reader_threads, wait_until

import rxtweet
from rxtweet import ReconnectPolicy, StreamingClient, aio
from rxtweet.errors import Overflow
from rxtweet.handoff import EMPTY, Handoff, Terminal
from rxtweet.operators import observe_on_bounded
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.v2.async_client import AsyncStreamingClient

pytestmark = pytest.mark.integration

TOKEN = "AAAA%2Fattack+token/=~odd"
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05, rate_limit_wait_start=0.1)


def tweets(n: int, *, pad: int = 0) -> list[bytes]:
    text = "x" * pad
    return [orjson.dumps({"data": {"id": str(i + 1), "text": f"t{i + 1}{text}"}}) for i in range(n)]


def server(messages: list[bytes], **kw: Any) -> FakeStreamServer:
    kw.setdefault("keepalive_interval", 0.05)
    return FakeStreamServer(
        messages=messages, bearer_token=TOKEN, fields="all", match_rules=False, **kw
    )


def client(srv: FakeStreamServer | RawServer) -> StreamingClient:
    return StreamingClient(TOKEN, base_url=srv.url, reconnect=FAST)


def closed(srv: FakeStreamServer) -> bool:
    return all(r.ended_at is not None for r in srv.stream_requests) and not reader_threads()


async def until(predicate: Any, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.005)
    return bool(predicate())


def in_thread(target: Any, timeout: float) -> bool:
    """Run ``target`` on a daemon thread; True if it finished within ``timeout``."""
    thread = threading.Thread(target=target, daemon=True, name="test-attack")
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


# --- aio.iterate: a careless user -------------------------------------------------------------


@pytest.mark.asyncio
async def test_aio_a_second_task_waiting_in_anext_is_refused_not_left_hanging() -> None:
    # Break: the second waiter replaced the first one's future: the first task waited forever.
    subject: Subject[int] = Subject()
    iterator = aio.iterate(subject)
    first = asyncio.create_task(anext(iterator))
    assert await until(lambda: subject.observers)  # subscribed, first task waiting
    with pytest.raises(RuntimeError, match="another task"):
        await asyncio.wait_for(anext(iterator), 0.5)
    subject.on_next(1)
    assert await asyncio.wait_for(first, 0.5) == 1
    await iterator.aclose()


def test_aio_a_producer_blocked_in_block_is_released_when_the_loop_closes() -> None:
    # Break: asyncio.run() returned while the iterator was still referenced and its queue
    # full: the producer (a stream's reader) waited for room forever.
    subject: Subject[int] = Subject()
    iterator = aio.iterate(subject, maxsize=2)
    produced: list[int] = []

    def produce() -> None:
        for n in range(10):
            subject.on_next(n)
            produced.append(n)

    async def first() -> int:
        pending = asyncio.create_task(anext(iterator))
        await until(lambda: subject.observers)
        threading.Thread(target=produce, daemon=True).start()
        return await pending

    assert asyncio.run(first()) == 0
    # The break was a producer waiting forever, not a slow one: the default deadline.
    producer_done = wait_until(lambda: len(produced) == 10)
    assert producer_done, f"the producer still waits for room: {produced}"
    assert not subject.observers  # and the source was disposed
    assert iterator.total <= 4  # nothing was taken in after the loop closed


def test_aio_a_drop_policy_stops_reading_when_the_loop_closes() -> None:
    # Break: with a drop policy nothing waits, so nothing noticed the closed loop: the
    # source kept running, dropping for nobody.
    subject: Subject[int] = Subject()
    iterator = aio.iterate(subject, maxsize=2, overflow="drop_oldest")

    async def first() -> int:
        pending = asyncio.create_task(anext(iterator))
        await until(lambda: subject.observers)
        subject.on_next(0)
        subject.on_next(1)  # queued: the next wake-up is not needed, so none is tried
        return await pending

    assert asyncio.run(first()) == 0
    subject.on_next(2)
    assert not subject.observers
    assert iterator.dropped == 0


@pytest.mark.asyncio
async def test_aio_error_policy_closes_the_connection_when_it_refuses_an_item() -> None:
    # Break: the source was disposed only once the slow consumer reached the error: the
    # reader went on reading (and discarding) for as long as the consumer took.
    with server(tweets(2000)) as srv:
        iterator = aio.iterate(client(srv).sample_stream().tweets, maxsize=5, overflow="error")
        assert (await anext(iterator)).id == 1
        # The consumer is busy (not awaiting): the reader overruns the bound meanwhile.
        # (total counts the refused item: delivered + queued + 1 once it is refused)
        assert wait_until(lambda: iterator.total > 1 + iterator.queued, 1.0)
        assert await until(lambda: closed(srv), 0.5), "the connection waits for the consumer"
        got: list[int] = []
        with pytest.raises(Overflow, match="overflow='error'"):
            await drain(iterator, got)
        assert got == list(range(2, 2 + len(got))) and len(got) <= 6


async def drain(iterator: aio.AsyncIterate[Any], into: list[int]) -> None:
    async for tweet in iterator:
        into.append(tweet.id)


@pytest.mark.asyncio
async def test_aio_break_aclose_cancel_and_gc_race_a_flood_and_leave_no_reader() -> None:
    # Held: 4 ways out, each right while the reader delivers a flood; nothing is queued
    # after the end, and every reader thread is gone within 0.5 s.
    for way in ("break", "aclose", "cancel", "gc"):
        with server(tweets(5000), default=Attempt(ending="hold")) as srv:
            stream = client(srv).sample_stream()
            iterator = stream.aiter("tweets", maxsize=50, overflow="drop_oldest")
            if way == "break":
                async for _ in iterator:
                    break
                del iterator
            elif way == "aclose":
                await anext(iterator)
                await iterator.aclose()
                assert iterator.queued == 0
                with pytest.raises(StopAsyncIteration):
                    await anext(iterator)
            elif way == "cancel":
                del iterator

                async def consume(stream: Any) -> None:
                    # Cancelled in its body (not in __anext__): leaving the frame drops it.
                    async for _ in stream.aiter("tweets", maxsize=50, overflow="drop_oldest"):
                        await asyncio.sleep(1)

                task = asyncio.create_task(consume(stream))
                await asyncio.sleep(0.05)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:
                await anext(iterator)
                del iterator
                gc.collect()
            assert await until(lambda: closed(srv), 0.5), way


# --- aio against a hostile server ------------------------------------------------------------


def big_lines(conn: socket.socket, _: bytes) -> None:
    """1 MB lines of junk and real tweets, forever, as fast as the client reads."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
    junk = b"\x00\xff{not json" * 80_000 + b"\r\n"
    n = 0
    while True:
        n += 1
        tweet = orjson.dumps({"data": {"id": str(n), "text": "y" * 1_000_000}}) + b"\r\n"
        conn.sendall(chunk(junk if n % 3 == 0 else tweet))


@pytest.mark.asyncio
async def test_aio_one_megabyte_lines_and_junk_to_a_slow_consumer_stay_bounded() -> None:
    # Held: "block" with a small bound keeps memory to a few lines whatever their size;
    # junk lines are counted as malformed, not delivered.
    with RawServer(big_lines) as raw:
        stream = client(raw).sample_stream()
        iterator = stream.aiter("tweets", maxsize=2)
        tracemalloc.start()
        try:
            ids: list[int] = []
            async for tweet in iterator:
                ids.append(tweet.id)
                if len(ids) == 2:
                    baseline = tracemalloc.get_traced_memory()[0]
                await asyncio.sleep(0.05)  # slow: the server outruns it by far
                if len(ids) == 8:
                    break
            grown = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()
        del iterator
        assert ids == [1, 2, 4, 5, 7, 8, 10, 11]  # every 3rd line was junk: skipped
        assert grown < 8_000_000, grown  # a few 1 MB lines, not the hundreds sent meanwhile
        assert await until(lambda: not reader_threads(), 0.5)
        assert stream.stats.malformed >= 1


# --- AsyncStreamingClient --------------------------------------------------------------------


class Recorder(AsyncStreamingClient):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[Any] = []

    async def on_tweet(self, tweet: rxtweet.Tweet) -> None:
        self.calls.append(tweet.id)

    async def on_exception(self, exception: Exception) -> None:
        self.calls.append(("exception", exception))

    async def on_disconnect(self) -> None:
        self.calls.append("disconnect:start")
        await asyncio.sleep(0.05)  # a real async clean-up: it suspends
        self.calls.append("disconnect:end")


@pytest.mark.asyncio
async def test_client_disconnect_twice_from_a_thread_lets_on_disconnect_finish() -> None:
    # Break: the second disconnect() cancelled the task again while on_disconnect ran: the
    # clean-up was cut short and the task ended cancelled instead of returning.
    with server(tweets(3)) as srv:
        stream = Recorder(TOKEN, base_url=srv.url, reconnect=FAST)
        task = stream.sample()
        assert await until(lambda: stream.calls == [1, 2, 3])

        def twice() -> None:
            stream.disconnect()
            time.sleep(0.02)  # the first one is being handled: on_disconnect is running
            stream.disconnect()

        threading.Thread(target=twice).start()
        assert await asyncio.wait_for(task, 1) is None
        assert stream.calls[-2:] == ["disconnect:start", "disconnect:end"]
        stream.disconnect()  # a third, after the end: nothing
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_client_a_fatal_error_reaches_on_exception_once() -> None:
    # Break: the Errored event called on_exception, then the error raised by the items
    # called it again with the same exception (tweepy calls it once).
    with server(tweets(3)) as srv:
        stream = Recorder("not-the-token", base_url=srv.url, reconnect=FAST)
        await asyncio.wait_for(stream.sample(), 2)
        exceptions = [call[1] for call in stream.calls if isinstance(call, tuple)]
        assert len(exceptions) == 1 and isinstance(exceptions[0], rxtweet.Unauthorized)
        assert stream.calls[-2:] == ["disconnect:start", "disconnect:end"]


@pytest.mark.asyncio
async def test_client_a_hook_that_is_not_a_coroutine_is_refused_at_start() -> None:
    # Break: a plain ``def on_tweet`` ran its body, then failed on the await with
    # "object NoneType can't be used in 'await' expression" and ended the run.
    class Careless(AsyncStreamingClient):
        def on_tweet(self, tweet: rxtweet.Tweet) -> None:  # type: ignore[override]
            raise AssertionError("must not run")

    stream = Careless(TOKEN, base_url="http://127.0.0.1:9")
    with pytest.raises(TypeError, match=r"on_tweet.*async def"):
        stream.sample()
    assert stream.task is None


@pytest.mark.asyncio
async def test_client_disconnect_before_start_from_a_hook_and_a_blocking_hook() -> None:
    # Held: disconnect() before any run is a no-op; from a hook it ends the run after that
    # hook, and a hook that blocks the loop (time.sleep) pushes back on the reader.
    with server(tweets(200)) as srv:

        class Blocking(Recorder):
            async def on_tweet(self, tweet: rxtweet.Tweet) -> None:
                time.sleep(0.002)  # blocks the loop: the reader must wait, not queue
                await super().on_tweet(tweet)
                if tweet.id == 20:
                    self.disconnect()
                    self.disconnect()

        stream = Blocking(TOKEN, base_url=srv.url, reconnect=FAST, queue_size=3)
        stream.disconnect()
        await asyncio.wait_for(stream.sample(), 2)
        assert stream.calls == [*range(1, 21), "disconnect:start", "disconnect:end"]
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_client_never_shows_the_token(caplog: pytest.LogCaptureFixture) -> None:
    # Held: a token with URL-ish bytes, a 401 and the hooks' default logging (DEBUG):
    # the token is in no message, repr or log record.
    with server(tweets(2)) as srv, caplog.at_level(logging.DEBUG):
        stream = Recorder(TOKEN, base_url=srv.url, reconnect=FAST)
        task = stream.sample()
        assert await until(lambda: stream.calls == [1, 2])
        stream.disconnect()
        await asyncio.wait_for(task, 1)
        wrong = AsyncStreamingClient(TOKEN + "x", base_url=srv.url, reconnect=FAST)
        await asyncio.wait_for(wrong.sample(), 2)
        shown = [repr(stream), repr(wrong), repr(stream.task), repr(wrong._items)]
    shown += [r.getMessage() for r in caplog.records]
    shown += [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert any("401" in text for text in shown)
    assert not [text for text in shown if "attack+token" in text or "AAAA%2F" in text]


# --- the hand-off ------------------------------------------------------------------------------


@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest", "latest", "error"])
def test_handoff_refuses_items_offered_after_the_end(overflow: Any) -> None:
    # Break: an item offered after end() was queued, and poll() gave it before the end.
    handoff: Handoff[int] = Handoff(3, overflow)
    handoff.offer(1)
    handoff.end(ValueError("over"))
    assert handoff.offer(2) is False
    assert handoff.put(3) is False
    assert handoff.poll() == 1
    terminal = handoff.poll()
    assert isinstance(terminal, Terminal) and str(terminal.error) == "over"
    assert handoff.poll() is EMPTY and handoff.total == 1


@pytest.mark.parametrize(
    ("capacity", "ok"),
    [(1, True), (10**12, True), (0, False), (-1, False), (True, False), (2.0, False)],
)
def test_handoff_capacity_edges(capacity: Any, ok: bool) -> None:
    # Held: 1 and huge work (no preallocation); 0, negatives, bools and floats are refused.
    if not ok:
        with pytest.raises(ValueError, match="capacity"):
            Handoff(capacity)
        with pytest.raises(ValueError, match="capacity"):
            aio.iterate(reactivex.empty(), maxsize=capacity)
        with pytest.raises(ValueError, match="capacity"):
            observe_on_bounded(TestScheduler(), capacity=capacity)
        return
    handoff: Handoff[int] = Handoff(capacity, "drop_oldest")
    for n in range(3):
        handoff.put(n)
    assert handoff.dropped == (2 if capacity == 1 else 0)


def test_handoff_stuck_is_raised_instead_of_waiting() -> None:
    stop: list[Exception] = []
    handoff: Handoff[int] = Handoff(1, "block", stuck=lambda: stop[0] if stop else None)
    handoff.put(1)
    errors: list[Exception] = []

    def produce() -> None:
        try:
            handoff.put(2)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=produce)
    thread.start()
    time.sleep(0.05)
    assert thread.is_alive()  # waiting for room
    stop.append(RuntimeError("nobody left"))
    thread.join(0.5)
    assert not thread.is_alive() and str(errors[0]) == "nobody left"
    assert handoff.pop() == 1 and handoff.pop() is EMPTY


# --- observe_on_bounded -----------------------------------------------------------------------


def test_operator_error_policy_delivers_nothing_that_came_after_the_overflow() -> None:
    # Break: a source that goes on after the refused item (its disposal cannot reach it yet:
    # it emits while being subscribed) had later items queued as room freed up: the observer
    # saw items after a gap, then the Overflow.
    entered, release, took_one = threading.Event(), threading.Event(), threading.Event()
    got: list[int] = []
    ended: list[BaseException] = []
    done = threading.Event()

    def source(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
        observer.on_next(0)
        entered.wait(1)  # the consumer holds item 0
        for n in range(1, 5):  # 1, 2, 3 queued; 4 refused: Overflow
            observer.on_next(n)
        release.set()
        took_one.wait(1)  # there is room again
        observer.on_next(5)  # after the end: must not reach the observer
        observer.on_completed()
        return Disposable()

    def on_next(n: int) -> None:
        got.append(n)
        if n == 0:
            entered.set()
            release.wait(1)
        elif n == 1:
            took_one.set()
            time.sleep(0.05)  # the source offers 5 meanwhile

    with EventLoopScheduler() as scheduler:
        reactivex.create(source).pipe(
            observe_on_bounded(scheduler, capacity=3, overflow="error")
        ).subscribe(on_next, lambda e: (ended.append(e), done.set()), done.set)
        assert done.wait(2)
    assert got == [0, 1, 2, 3]
    assert isinstance(ended[0], Overflow)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", [AsyncIOScheduler, AsyncIOThreadSafeScheduler])
async def test_operator_on_an_asyncio_scheduler_wakes_the_loop_from_a_reader_thread(
    kind: Any,
) -> None:
    # Break: AsyncIOScheduler.schedule is loop.call_soon, which from the reader thread does
    # not wake the loop: items waited for an unrelated wake-up (here 0.6 s later). In debug
    # mode asyncio rejects it outright.
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    subject: Subject[int] = Subject()
    got: list[tuple[int, float, int]] = []
    subject.pipe(observe_on_bounded(kind(loop), capacity=10, overflow="block")).subscribe(
        lambda n: got.append((n, time.monotonic(), threading.get_ident()))
    )

    def produce() -> None:
        time.sleep(0.05)  # the loop is asleep in its selector by now
        start.append(time.monotonic())
        for n in range(3):
            subject.on_next(n)

    start: list[float] = []
    threading.Thread(target=produce).start()
    await asyncio.sleep(0.6)
    assert [n for n, _, _ in got] == [0, 1, 2]
    assert got[0][1] - start[0] < 0.3
    assert {thread for _, _, thread in got} == {threading.get_ident()}


@pytest.mark.parametrize("kind", [CurrentThreadScheduler, TrampolineScheduler])
def test_operator_block_on_a_trampoline_is_refused(kind: Any) -> None:
    # Break: a TrampolineScheduler (CurrentThreadScheduler's base) was accepted and hung.
    with pytest.raises(ValueError, match="wait for itself"):
        observe_on_bounded(kind(), capacity=2, overflow="block")


def burst(observer: abc.ObserverBase[int], _: Any = None) -> abc.DisposableBase:
    for n in range(6):
        observer.on_next(n)
    observer.on_completed()
    return Disposable()


def test_operator_block_in_virtual_time_fails_instead_of_hanging() -> None:
    # Break: a burst beyond the capacity made the producer wait for the drain task queued
    # on the same TestScheduler, on the same thread: the test hung forever.
    scheduler = TestScheduler()
    got: list[int] = []
    errors: list[Exception] = []

    def run() -> None:
        reactivex.create(burst).pipe(
            reactivex.operators.subscribe_on(scheduler),
            observe_on_bounded(scheduler, capacity=2, overflow="block"),
        ).subscribe(got.append, errors.append)
        scheduler.start()

    assert in_thread(run, 1.0), "hung"
    assert got == [0, 1]
    assert isinstance(errors[0], RuntimeError) and "virtual time" in str(errors[0])


def test_operator_on_a_disposed_scheduler_ends_with_its_error() -> None:
    # Break: schedule() raised into the producer (the reader), and the hand-off, no longer
    # parked, never scheduled a drain again: later items were queued for nobody.
    scheduler = EventLoopScheduler()
    scheduler.dispose()
    subject: Subject[int] = Subject()
    errors: list[Exception] = []
    subject.pipe(observe_on_bounded(scheduler, capacity=2, overflow="block")).subscribe(
        lambda _: None, errors.append
    )
    subject.on_next(1)  # does not raise into the producer
    assert len(errors) == 1 and not subject.observers
    subject.on_next(2)
    assert len(errors) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: ThreadPoolScheduler(3),
        NewThreadScheduler,
        EventLoopScheduler,
    ],
    ids=["pool", "new-thread", "event-loop"],
)
@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "latest"])
def test_operator_every_thread_scheduler_keeps_order_and_single_entry(
    make: Any, overflow: Any
) -> None:
    # Held: 3 producers' worth of items through one subject (serialised), a jittery
    # consumer that checks it is never entered twice, disposal from another thread mid-drain.
    scheduler = make()
    subject: Subject[int] = Subject()
    inside = threading.Lock()
    got: list[int] = []
    overlaps: list[int] = []

    def on_next(n: int) -> None:
        if not inside.acquire(blocking=False):
            overlaps.append(n)
            return
        try:
            got.append(n)
            if n % 97 == 0:
                time.sleep(0.001)
        finally:
            inside.release()

    subscription = subject.pipe(
        observe_on_bounded(scheduler, capacity=16, overflow=overflow)
    ).subscribe(on_next)
    for n in range(3000):
        subject.on_next(n)
    assert wait_until(lambda: got and got[-1] == 2999, 2)
    assert not overlaps and got == sorted(got) and len(set(got)) == len(got)
    if overflow == "block":
        assert got == list(range(3000))
    stopper = threading.Thread(target=subscription.dispose)
    for n in range(3000, 3100):
        subject.on_next(n)
        if n == 3010:
            stopper.start()
    stopper.join(1)
    count = len(got)
    time.sleep(0.02)
    assert len(got) == count and not subject.observers
    if isinstance(scheduler, EventLoopScheduler):
        scheduler.dispose()
