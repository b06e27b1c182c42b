"""rxtweet.aio.iterate and AsyncStreamingClient against a real FakeStreamServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import tracemalloc
from typing import Any

import orjson
import pytest
import reactivex
from support import reader_threads

import rxtweet
from rxtweet import ReconnectPolicy, StreamingClient, aio
from rxtweet.errors import Overflow, StreamAlreadyRunning, Unauthorized
from rxtweet.events import Overflowed
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.v2.async_client import AsyncStreamingClient
from rxtweet.v2.models import Response, StreamRule

pytestmark = pytest.mark.integration

TOKEN = "AAAA-aio-test-bearer-token"
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05, rate_limit_wait_start=0.1)


def tweets(n: int, *, pad: int = 0) -> list[bytes]:
    text = "x" * pad
    return [
        orjson.dumps({"data": {"id": str(i + 1), "text": f"t{i + 1} {text}"}}) for i in range(n)
    ]


def server(messages: list[bytes], **kw: Any) -> FakeStreamServer:
    kw.setdefault("keepalive_interval", 0.05)
    return FakeStreamServer(
        messages=messages, bearer_token=TOKEN, fields="all", match_rules=False, **kw
    )


def client(srv: FakeStreamServer) -> StreamingClient:
    return StreamingClient(TOKEN, base_url=srv.url, reconnect=FAST)


async def until(predicate: Any, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.005)
    return bool(predicate())


def closed(srv: FakeStreamServer) -> bool:
    return all(r.ended_at is not None for r in srv.stream_requests) and not reader_threads()


# --- aio.iterate ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_exactly_once_through_cuts_and_a_503() -> None:
    with server(tweets(60)) as srv:
        srv.script(
            Attempt(messages=10, ending="cut", chunking="random", seed=3),
            Attempt(status=503),
            Attempt(messages=20, ending="cut"),
            Attempt(ending="hold"),
        )
        ids = []
        async for tweet in aio.iterate(client(srv).sample_stream().tweets, maxsize=7):
            ids.append(tweet.id)
            if len(ids) == 60:
                break
        assert ids == list(range(1, 61))
        assert [r.status for r in srv.stream_requests][:3] == [200, 503, 200]
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_lazy_then_break_closes_the_connection_within_half_a_second() -> None:
    with server(tweets(10)) as srv:
        iterator = aio.iterate_substream(client(srv).sample_stream(), "tweets")
        await asyncio.sleep(0.1)
        assert srv.stream_requests == []  # nothing connects before the first __anext__
        async for _tweet in iterator:
            break
        del iterator  # what leaving the `async for` does to an iterator made inline
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_garbage_collection_disposes() -> None:
    with server(tweets(10)) as srv:

        async def first() -> int:
            # Made and dropped inside: nothing but the collector can dispose it.
            return (await anext(aio.iterate(client(srv).sample_stream().tweets))).id

        assert await first() == 1
        gc.collect()
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_aclose_and_task_cancellation_close_the_connection() -> None:
    with server(tweets(3)) as srv:
        iterator = aio.iterate(client(srv).sample_stream().tweets)
        assert (await anext(iterator)).id == 1
        await iterator.aclose()
        assert await until(lambda: closed(srv), 0.5)
        with pytest.raises(StopAsyncIteration):
            await anext(iterator)

    with server(tweets(3)) as srv:
        got: list[int] = []

        async def consume() -> None:
            async for tweet in aio.iterate(client(srv).sample_stream().tweets):
                got.append(tweet.id)  # 3 tweets, then keep-alives only: it waits

        task = asyncio.create_task(consume())
        assert await until(lambda: len(got) == 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_on_error_is_raised_from_anext_and_completion_ends() -> None:
    boom = ValueError("boom")
    got: list[int] = []

    async def consume() -> None:
        async for n in aio.iterate(reactivex.concat(reactivex.of(1, 2), reactivex.throw(boom))):
            got.append(n)

    with pytest.raises(ValueError, match="boom") as raised:
        await consume()
    assert raised.value is boom and got == [1, 2]
    # A synchronous source larger than maxsize under "block": its subscribe thread waits,
    # the loop does not.
    assert [n async for n in aio.iterate(reactivex.range(0, 500), maxsize=3)] == list(range(500))


@pytest.mark.asyncio
async def test_error_policy_ends_with_overflow_after_the_queued_items() -> None:
    iterator = aio.iterate(reactivex.range(0, 100), maxsize=5, overflow="error")
    got: list[int] = []

    async def consume() -> None:
        async for n in iterator:
            got.append(n)
            await asyncio.sleep(0.01)  # let the producer overrun the bound

    with pytest.raises(Overflow, match="overflow='error'") as raised:
        await consume()
    assert got == list(range(len(got))) and 5 <= len(got) < 100
    assert raised.value.capacity == 5


@pytest.mark.asyncio
async def test_bad_arguments_fail_at_once() -> None:
    with pytest.raises(ValueError, match="capacity"):
        aio.iterate(reactivex.empty(), maxsize=0)
    with pytest.raises(ValueError, match="overflow"):
        aio.iterate(reactivex.empty(), overflow="drop")  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="nope"):
        aio.iterate_substream(client_stub(), "nope")


def client_stub() -> Any:
    return StreamingClient(TOKEN, base_url="http://127.0.0.1:9").sample_stream()


# --- a slow consumer: 5 ms per item over 20,000 fast messages ---------------------------------

N_FAST = 20_000


@pytest.mark.asyncio
async def test_block_keeps_memory_flat_and_pushes_back_through_tcp() -> None:
    maxsize = 50
    with server(tweets(N_FAST, pad=1000)) as srv:
        iterator = aio.iterate(client(srv).sample_stream().tweets, maxsize=maxsize)
        consumed = 0
        queued_max = 0
        tracemalloc.start()
        try:
            async for _tweet in iterator:
                consumed += 1
                if consumed == 30:
                    baseline = tracemalloc.get_traced_memory()[0]
                queued_max = max(queued_max, iterator.queued)
                # The reader waits for room: it has offered at most one item beyond the bound.
                assert iterator.total <= consumed + maxsize + 1
                await asyncio.sleep(0.005)
                if consumed == 120:
                    break
            grown = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()
        assert queued_max <= maxsize
        assert grown < 1_000_000, grown  # ~1 KB messages: a growing queue would be MBs
        # TCP pushed back: the server could not write most of the 20 MB.
        assert srv.sent < N_FAST // 2, srv.sent
        del iterator
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_drop_oldest_counts_exactly(caplog: pytest.LogCaptureFixture) -> None:
    asyncio.get_running_loop().set_debug(True)  # a foreign-thread loop call would raise
    loop_thread = threading.get_ident()
    reports: list[tuple[Overflowed, int]] = []
    with server(tweets(N_FAST), default=Attempt(ending="hold")) as srv:
        iterator = aio.iterate(
            client(srv).sample_stream().tweets,
            maxsize=100,
            overflow="drop_oldest",
            on_overflow=lambda e: reports.append((e, threading.get_ident())),
        )
        ids = []
        with caplog.at_level(logging.WARNING, logger="rxtweet.handoff"):
            async for tweet in iterator:
                ids.append(tweet.id)
                if tweet.id == N_FAST:  # the newest is never dropped: it arrives
                    break
                await asyncio.sleep(0.005)
        await iterator.aclose()
    assert iterator.dropped > 0
    assert len(ids) + iterator.dropped == N_FAST == iterator.total
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert sum(e.dropped for e, _ in reports) == iterator.dropped == reports[-1][0].total
    assert {thread for _, thread in reports} == {loop_thread}
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert 1 <= len(warnings) <= 1 + len(ids) * 0.005 + 1  # at most one a second


# --- AsyncStreamingClient ---------------------------------------------------------------------


class Recorder(AsyncStreamingClient):
    def __init__(self, *args: Any, stop_at: int = 0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[tuple[str, Any, int]] = []
        self.stop_at = stop_at

    def record(self, name: str, value: Any = None) -> None:
        self.calls.append((name, value, threading.get_ident()))

    async def on_connect(self) -> None:
        self.record("connect")

    async def on_request_error(self, status_code: int) -> None:
        self.record("request_error", status_code)

    async def on_connection_error(self) -> None:
        self.record("connection_error")

    async def on_tweet(self, tweet: rxtweet.Tweet) -> None:
        await asyncio.sleep(0)  # a real coroutine: it suspends
        self.record("tweet", tweet.id)
        if tweet.id == self.stop_at:
            self.disconnect()

    async def on_exception(self, exception: Exception) -> None:
        self.record("exception", exception)

    async def on_disconnect(self) -> None:
        self.record("disconnect")


@pytest.mark.asyncio
async def test_hooks_in_order_on_the_loop_thread_exactly_once_through_cuts() -> None:
    asyncio.get_running_loop().set_debug(True)
    with server(tweets(40)) as srv:
        srv.script(Attempt(messages=10, ending="cut"), Attempt(status=503), Attempt(ending="hold"))
        stream = Recorder(TOKEN, base_url=srv.url, reconnect=FAST, stop_at=40, queue_size=4)
        task = stream.sample()
        assert isinstance(task, asyncio.Task) and stream.task is task
        with pytest.raises(StreamAlreadyRunning, match="already connected"):
            stream.filter()
        await asyncio.wait_for(task, 3)
        assert task.result() is None
        names = [name for name, _, _ in stream.calls]
        assert [v for n, v, _ in stream.calls if n == "tweet"] == list(range(1, 41))
        assert names[0] == "connect" and names[-1] == "disconnect"
        assert "request_error" in names and "connection_error" in names
        assert {thread for _, _, thread in stream.calls} == {threading.get_ident()}
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_a_slow_hook_pushes_back_on_the_reader() -> None:
    class Slow(Recorder):
        async def on_tweet(self, tweet: rxtweet.Tweet) -> None:
            await asyncio.sleep(0.005)
            await super().on_tweet(tweet)

    with server(tweets(N_FAST, pad=1000)) as srv:
        stream = Slow(TOKEN, base_url=srv.url, reconnect=FAST, stop_at=100, queue_size=10)
        await asyncio.wait_for(stream.sample(), 3)
        assert [v for n, v, _ in stream.calls if n == "tweet"] == list(range(1, 101))
        # The reader waited for the hooks: most of the 20 MB never left the server.
        assert srv.sent < N_FAST // 2, srv.sent
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_hook_exception_goes_to_on_exception_and_ends_the_task() -> None:
    class Failing(Recorder):
        async def on_tweet(self, tweet: rxtweet.Tweet) -> None:
            raise KeyError(tweet.id)

    with server(tweets(5)) as srv:
        stream = Failing(TOKEN, base_url=srv.url, reconnect=FAST)
        await asyncio.wait_for(stream.sample(), 2)
        names = [(n, v if n != "exception" else repr(v)) for n, v, _ in stream.calls]
        assert names == [("connect", None), ("exception", "KeyError(1)"), ("disconnect", None)]
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_disconnect_from_outside_and_task_cancel_close_it() -> None:
    with server(tweets(3)) as srv:
        stream = Recorder(TOKEN, base_url=srv.url, reconnect=FAST)
        task = stream.sample()
        assert await until(lambda: len(stream.calls) >= 4)  # connect + 3 tweets
        threading.Thread(target=stream.disconnect).start()  # from a foreign thread
        await asyncio.wait_for(task, 1)
        assert stream.calls[-1][0] == "disconnect"
        assert await until(lambda: closed(srv), 0.5)

        task = stream.sample()  # a new run once the last one is over
        assert await until(lambda: any(n == "connect" for n, _, _ in stream.calls[5:]))
        task.cancel()
        await asyncio.wait_for(task, 1)  # tweepy: a cancelled run returns, not raises
        assert await until(lambda: closed(srv), 0.5)


@pytest.mark.asyncio
async def test_rules_are_awaited_with_tweepys_shapes_and_errors() -> None:
    with server([]) as srv:
        stream = AsyncStreamingClient(TOKEN, base_url=srv.url)
        added = await stream.add_rules([StreamRule("cats", tag="c"), StreamRule("dogs")])
        assert isinstance(added, Response)
        assert [(r.value, r.tag) for r in added.data] == [("cats", "c"), ("dogs", None)]
        got = await stream.get_rules()
        assert {r.id for r in got.data} == {r.id for r in added.data}
        stream.return_type = dict
        deleted = await stream.delete_rules(added.data[0])
        assert deleted["meta"]["summary"]["deleted"] == 1
        bad = AsyncStreamingClient("wrong-token", base_url=srv.url)
        with pytest.raises(Unauthorized):
            await bad.get_rules()


def test_filter_needs_a_running_loop() -> None:
    stream = AsyncStreamingClient(TOKEN, base_url="http://127.0.0.1:9")
    with pytest.raises(RuntimeError):
        stream.filter()
    assert stream.task is None and TOKEN not in repr(stream)
