"""Hostile review of commit 4110a52: the per-item subscriber of ``BaseStream._run`` takes the
run's hook lock with pre-bound ``enter()`` / ``try: ... finally: leave()`` instead of
``with hooks:``; ``StreamingClient._dispatch`` reads the response's ``_data`` slot instead of
its ``data`` property, and a module constant ``_DEBUG`` for the default ``on_response``.

Attacked over a real local :class:`~rxtweet.testing.FakeStreamServer` on 127.0.0.1: hooks
that raise (``Exception`` and ``BaseException``), that call ``disconnect()``, that sleep
while another thread disconnects, a new run started while the old run's reader still runs
a hook, two reader threads at once (``redundancy=2``), the DEBUG switch of the default
``on_response``, ``on_response`` set on the instance, and user-built responses handed to
``_dispatch``. The one race that needs a thread the test controls (an asynchronous exception
landing just as the lock is taken) feeds the run from a Subject on a test thread instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from reactivex.subject import Subject
from support import (
    Interrupted,
    RefusingRLock,
    Shouting,
    assert_lock_free,
    interrupted_feeder,
    reader_threads,
    wait_until,
)

from rxtweet import (
    AsyncStreamingClient,
    ReconnectPolicy,
    StreamingClient,
    StreamResponse,
    StreamRule,
    Tweet,
)
from rxtweet.events import KeepAlive
from rxtweet.testing import Attempt, FakeStreamServer

TOKEN = "AAAA-hook-lock-attack-token"
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05, rate_limit_wait_start=0.1)

FULL: dict[str, Any] = {
    "data": {"id": "1377650090978992134", "text": "hello", "author_id": "41783881"},
    "includes": {"users": [{"id": "41783881", "name": "Gary", "username": "gary"}]},
    "errors": [{"title": "Not Found Error", "resource_id": "9"}],
    "matching_rules": [{"id": 1377649934414049282, "tag": "cats"}],
}


def tweets(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [{"data": {"id": str(i), "text": f"t{i}"}} for i in range(start, start + n)]


def full(n: int) -> list[dict[str, Any]]:
    return [{**FULL, "data": {**FULL["data"], "id": str(100 + i)}} for i in range(n)]


@pytest.fixture
def fake() -> Iterator[FakeStreamServer]:
    with FakeStreamServer(
        bearer_token=TOKEN, fields="all", match_rules=False, keepalive_interval=0.2
    ) as server:
        yield server
    assert wait_until(lambda: not reader_threads(), timeout=2.0), "a reader thread outlived"


class Recorder(StreamingClient):
    """Records every hook as ``(name, detail)`` in call order; ``act`` maps a hook name to
    what it does on its first call (``"raise"``, ``"interrupt"``, ``"disconnect"``)."""

    def __init__(self, *args: Any, act: dict[str, str] | None = None, **kw: Any) -> None:
        kw.setdefault("reconnect", FAST)
        kw.setdefault("daemon", True)  # a hung run must not keep the test process alive
        super().__init__(TOKEN, *args, **kw)
        self.events: list[tuple[str, Any]] = []
        self.act = dict(act or {})
        self.sleep = 0.0
        self.started = threading.Event()

    def _hook(self, name: str, detail: Any = None) -> None:
        self.events.append((name, detail))
        action = self.act.pop(name, None)
        if action == "raise":
            raise ValueError(name)
        if action == "interrupt":
            raise KeyboardInterrupt(name)
        if action == "disconnect":
            self.disconnect()
            self.events.append((f"{name}:returned-from-disconnect", None))

    def on_connect(self) -> None:
        self._hook("connect")

    def on_tweet(self, tweet: Tweet) -> None:
        self._hook("tweet", tweet.id)
        if self.sleep:
            self.started.set()
            time.sleep(self.sleep)
            self.events.append(("tweet:slept", tweet.id))

    def on_includes(self, includes: dict[str, Any]) -> None:
        self._hook("includes", includes)

    def on_errors(self, errors: list[dict[str, Any]]) -> None:
        self._hook("errors", errors)

    def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        self._hook("matching_rules", matching_rules)

    def on_response(self, response: StreamResponse) -> None:
        self._hook("response", response)

    def on_exception(self, exception: Exception) -> None:
        self.events.append(("exception", exception))

    def on_disconnect(self) -> None:
        self.events.append(("disconnect", threading.current_thread().name))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


def start(client: StreamingClient, server: FakeStreamServer, **kw: Any) -> threading.Thread:
    client.base_url = server.url
    thread = client.sample(threaded=True, **kw)
    assert thread is not None
    return thread


def assert_disconnect_last_once(client: Recorder) -> None:
    names = client.names()
    assert names.count("disconnect") == 1, names
    assert names[-1] == "disconnect", names


# --- 1. a hook that raises ----------------------------------------------------------------------

RAISING = ["tweet", "includes", "errors", "matching_rules", "response"]


@pytest.mark.parametrize("hook", RAISING)
def test_a_raising_hook_reaches_on_exception_then_on_disconnect_and_frees_the_lock(
    fake: FakeStreamServer, hook: str
) -> None:
    fake.feed(*full(3))
    fake.script(Attempt(messages=3, ending="hold"))
    client = Recorder(act={hook: "raise"})
    thread = start(client, fake)
    thread.join(2)
    assert not thread.is_alive() and not client.running
    names = client.names()
    # The message's hooks up to the raising one, then on_exception with that error, then
    # on_disconnect: the stream ended, no later message reached a hook.
    upto = ["connect", *RAISING[: RAISING.index(hook) + 1]]
    assert names == [*upto, "exception", "disconnect"], names
    exc = client.events[-2][1]
    assert type(exc) is ValueError and exc.args == (hook,)
    assert_lock_free(client)
    # A later disconnect() (the user's clean-up) returns at once and calls nothing.
    began = time.monotonic()
    client.disconnect()
    assert time.monotonic() - began < 0.5 and client.names() == names


def test_a_raising_on_data_set_on_the_instance_ends_the_run_the_same_way(
    fake: FakeStreamServer,
) -> None:
    fake.feed(*full(3))
    fake.script(Attempt(messages=3, ending="hold"))
    client = Recorder()
    seen: list[bytes] = []

    def on_data(raw: bytes | str) -> Any:
        seen.append(raw if isinstance(raw, bytes) else raw.encode())
        if len(seen) == 2:
            raise ValueError("on_data")
        return StreamingClient.on_data(client, raw)

    client.on_data = on_data  # type: ignore[method-assign, assignment]
    thread = start(client, fake)
    thread.join(2)
    assert not thread.is_alive()
    # The first line went through super().on_data to every part hook; the second raised.
    assert client.names() == ["connect", *RAISING, "exception", "disconnect"]
    assert len(seen) == 2 and b'"id":"101"' in seen[1]
    assert_lock_free(client)


# --- 2. disconnect() from inside a hook ---------------------------------------------------------


@pytest.mark.parametrize("hook", ["connect", *RAISING])
def test_disconnect_from_inside_a_hook_returns_and_the_run_ends_with_on_disconnect(
    fake: FakeStreamServer, hook: str
) -> None:
    fake.feed(*full(5))
    fake.script(Attempt(messages=5, ending="hold"))
    client = Recorder(act={hook: "disconnect"})
    thread = start(client, fake)
    thread.join(2)
    assert not thread.is_alive(), "disconnect() from a hook hung the run"
    names = client.names()
    # disconnect() returned inside the hook (the RLock is re-entrant, nothing waits on it).
    assert f"{hook}:returned-from-disconnect" in names
    assert_disconnect_last_once(client)
    assert "exception" not in names
    assert_lock_free(client)


# --- 3. disconnect() from another thread while a hook sleeps ------------------------------------


def test_disconnect_from_another_thread_returns_at_once_and_no_hook_follows_on_disconnect(
    fake: FakeStreamServer,
) -> None:
    fake.feed(*full(20))
    fake.script(Attempt(messages=20, ending="hold"))
    client = Recorder()
    client.sleep = 0.3
    stamps: dict[str, float] = {}
    real_disconnect = client.on_disconnect

    def on_disconnect() -> None:
        stamps["on_disconnect"] = time.monotonic()
        real_disconnect()

    client.on_disconnect = on_disconnect  # type: ignore[method-assign]
    thread = start(client, fake)
    assert client.started.wait(2)
    began = time.monotonic()
    client.disconnect()
    stamps["disconnect_returned"] = time.monotonic()
    # disconnect() does not wait for the sleeping hook (it is not a join) ...
    assert stamps["disconnect_returned"] - began < 0.2
    assert "disconnect" not in client.names()
    thread.join(2)
    assert not thread.is_alive()
    names = client.names()
    # ... on_disconnect waits for it: the slow hook finished, then the rest of its message's
    # hooks (all under the lock), then on_disconnect, last and once.
    assert names.index("tweet:slept") < names.index("disconnect")
    assert stamps["on_disconnect"] > stamps["disconnect_returned"]
    assert_disconnect_last_once(client)
    # No later message: disposal stopped the reader before another item was handed over.
    assert names.count("tweet") == 1, names
    assert_lock_free(client)


def test_two_reader_threads_never_run_hooks_at_once(fake: FakeStreamServer) -> None:
    # redundancy=2: two connections, two reader threads, one lock between their hooks.
    fake.feed(*tweets(40))
    fake.script(Attempt(messages=20, ending="hold"), Attempt(messages=20, ending="hold"))
    inside = [0]
    overlaps: list[int] = []
    threads: set[str] = set()

    class Slow(Recorder):
        def on_tweet(self, tweet: Tweet) -> None:
            inside[0] += 1
            threads.add(threading.current_thread().name)
            if inside[0] != 1:
                overlaps.append(inside[0])
            time.sleep(0.002)  # a switch point inside the hook
            inside[0] -= 1
            self.events.append(("tweet", tweet.id))

    client = Slow()
    thread = start(client, fake, redundancy=2)
    try:
        assert wait_until(lambda: client.names().count("tweet") == 40, timeout=2.5)
    finally:
        client.disconnect()
        thread.join(2)
    assert not thread.is_alive() and not overlaps
    assert len(threads) == 2, threads  # both readers did deliver
    assert_disconnect_last_once(client)


# --- 4. a new run while the old run's reader is still in a hook --------------------------------


def test_a_new_run_after_disconnect_has_its_own_lock_and_the_old_one_ends_after_its_hook(
    fake: FakeStreamServer,
) -> None:
    fake.feed(*tweets(3), *tweets(3, start=50))
    fake.script(Attempt(messages=3, ending="hold"), Attempt(messages=3, ending="hold"))
    client = Recorder()
    client.sleep = 1.0  # the first tweet of the first run only (reset below)
    first = start(client, fake)
    assert client.started.wait(2)
    old_run = client._run_state
    client.disconnect()
    client.sleep = 0.0
    second = start(client, fake)  # the old reader still sleeps in on_tweet
    new_run = client._run_state
    assert new_run is not old_run and old_run is not None and new_run is not None
    assert new_run.hooks is not old_run.hooks
    try:
        # The new run's hooks are not held up by the old run's sleeping hook.
        assert wait_until(lambda: ("tweet", 52) in client.events, timeout=2)
        assert "tweet:slept" not in client.names() and "disconnect" not in client.names()
        first.join(2)
        assert not first.is_alive()
        # The old run ended (its on_disconnect ran) without touching the new run's state.
        assert client.names().count("disconnect") == 1
        assert client.running and client._run_state is new_run
        assert second.is_alive()
    finally:
        client.disconnect()
        second.join(2)
    assert not second.is_alive()
    names = client.names()
    assert names.count("disconnect") == 2 and names[-1] == "disconnect"
    old_ids = [d for n, d in client.events if n == "tweet" and d is not None and d < 50]
    assert old_ids == [1], "the old run delivered after its disconnect()"
    assert [d for n, d in client.events if n == "tweet" and d >= 50] == [50, 51, 52]


# --- 5. a BaseException from a hook ------------------------------------------------------------


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """The exceptions that ended threads (the reader's, here), instead of a printed trace."""
    seen: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    return seen


@pytest.mark.parametrize("hook", ["tweet", "errors", "response"])
def test_a_keyboard_interrupt_from_a_hook_leaves_the_lock_free_for_disconnect(
    fake: FakeStreamServer, hook: str, thread_errors: list[BaseException | None]
) -> None:
    fake.feed(*full(3))
    fake.script(Attempt(messages=3, ending="hold"))
    client = Recorder(act={hook: "interrupt"})
    thread = start(client, fake)
    # The interrupt ends the reader thread (it is not an Exception: not turned into an error).
    assert wait_until(lambda: thread_errors, timeout=2)
    assert type(thread_errors[0]) is KeyboardInterrupt and thread_errors[0].args == (hook,)
    assert_lock_free(client)
    # disconnect() from another thread, guarded: it returns and the run ends.
    disconnecting = threading.Thread(target=client.disconnect, daemon=True)
    disconnecting.start()
    disconnecting.join(1)
    assert not disconnecting.is_alive(), "disconnect() hung"
    thread.join(1)
    assert not thread.is_alive(), "the run hung in on_disconnect's wait for the hook lock"
    assert_disconnect_last_once(client)


# --- 6. an asynchronous exception as the lock is taken -----------------------------------------


class SubjectSource:
    """An ItemSource whose items a test thread pushes (the run only subscribes to items)."""

    def __init__(self) -> None:
        self.items: Subject[Any] = Subject()


def run_async_exception_case(inside_hook: bool) -> tuple[dict[str, Any], Recorder, bool]:
    """Push one KeepAlive from a feeder thread and interrupt it asynchronously, either as it
    is blocked taking the run's hook lock (``inside_hook=False``) or while its hook runs.
    Returns what the feeder saw, the client, and whether the run ended after disconnect()."""
    client = Recorder()
    in_hook = threading.Event()
    if inside_hook:

        def on_keep_alive() -> None:
            client.events.append(("keep_alive", None))
            in_hook.set()
            time.sleep(0.3)  # interrupted in here

        client.on_keep_alive = on_keep_alive  # type: ignore[method-assign]
    source = SubjectSource()
    thread = client._start(source, True)  # type: ignore[arg-type]
    assert thread is not None
    assert wait_until(lambda: source.items.observers, timeout=1)
    run = client._run_state
    assert run is not None
    try:
        with interrupted_feeder(
            lambda: source.items.on_next(KeepAlive()), run.hooks, in_hook if inside_hook else None
        ) as seen:
            client.disconnect()
            ended = client.join(0.5)
    finally:
        thread.join(2)
    assert not thread.is_alive()
    return seen, client, ended


def test_an_async_exception_inside_a_hook_releases_the_lock() -> None:
    seen, client, ended = run_async_exception_case(inside_hook=True)
    assert seen == {"raised": True, "owned": False}
    assert ended and client.names() == ["keep_alive", "disconnect"]


# Was broken by 4110a52 (a pre-bound acquire() before the try); fixed by going back to
# `with hooks:`, which has no such window.
def test_an_async_exception_as_the_lock_is_taken_releases_it() -> None:
    seen, client, ended = run_async_exception_case(inside_hook=False)
    assert seen == {"raised": True, "owned": False}
    assert ended and client.names() == ["disconnect"]


# --- 7. the default on_response and its DEBUG switch -------------------------------------------


def default_hooks_client() -> StreamingClient:
    return StreamingClient(TOKEN, reconnect=FAST, daemon=True)


class TweetsOnly(StreamingClient):
    """Only on_tweet overridden: on_response is the default (logs at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(TOKEN, reconnect=FAST, daemon=True)
        self.ids: list[int] = []

    def on_tweet(self, tweet: Tweet) -> None:
        self.ids.append(tweet.id)


def response_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "rxtweet.v2" and r.getMessage().startswith("Received response")
    ]


@pytest.mark.parametrize(("level", "expected"), [(logging.DEBUG, 3), (logging.WARNING, 0)])
def test_the_default_on_response_logs_at_debug_only_over_a_real_server(
    fake: FakeStreamServer, caplog: pytest.LogCaptureFixture, level: int, expected: int
) -> None:
    caplog.set_level(level, logger="rxtweet.v2")
    fake.feed(*tweets(3))
    fake.script(Attempt(messages=3, ending="hold"))
    client = TweetsOnly()
    thread = start(client, fake)
    try:
        # on_response comes after on_tweet, under the same lock: wait for the lock to be free.
        assert wait_until(lambda: client.ids == [1, 2, 3], timeout=2)
        assert_lock_free(client)
    finally:
        client.disconnect()
        thread.join(2)
    assert not thread.is_alive()
    lines = response_lines(caplog)
    assert len(lines) == expected
    assert all("Tweet" in line or "data" in line for line in lines)


def test_the_debug_switch_follows_level_changes_between_messages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = default_hooks_client()
    response = StreamResponse(Tweet({"id": "1", "text": "x"}), {}, [], [])
    counts = []
    for level in (logging.WARNING, logging.DEBUG, logging.INFO, logging.DEBUG, logging.ERROR):
        caplog.set_level(level, logger="rxtweet.v2")
        before = len(response_lines(caplog))
        client._dispatch(response)
        counts.append(len(response_lines(caplog)) - before)
    assert counts == [0, 1, 0, 1, 0]
    # logging.disable() wins over the level, as for any logger.
    caplog.set_level(logging.DEBUG, logger="rxtweet.v2")
    logging.disable(logging.DEBUG)
    try:
        before = len(response_lines(caplog))
        client._dispatch(response)
        assert len(response_lines(caplog)) == before
    finally:
        logging.disable(logging.NOTSET)
    client._dispatch(response)
    assert len(response_lines(caplog)) == before + 1


# --- 8. on_response set on the instance; user-built responses ----------------------------------


def test_on_response_set_on_the_instance_gets_every_message_at_warning(
    fake: FakeStreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rxtweet.v2")
    fake.feed(*full(2), *tweets(2))
    fake.script(Attempt(messages=4, ending="hold"))
    client = Recorder()
    got: list[StreamResponse] = []
    client.on_response = got.append  # type: ignore[assignment]
    thread = start(client, fake)
    try:
        assert wait_until(lambda: len(got) == 4, timeout=2)
    finally:
        client.disconnect()
        thread.join(2)
    assert [type(r) for r in got] == [StreamResponse] * 4
    # Each response's tweet is the very object on_tweet got.
    tweet_ids = [d for n, d in client.events if n == "tweet"]
    assert [r.data.id for r in got if r.data is not None] == tweet_ids == [100, 101, 1, 2]
    assert "response" not in client.names()  # the class's on_response is shadowed


def test_a_user_built_response_through_dispatch_calls_the_hooks_it_should() -> None:
    client = Recorder()
    tweet = Tweet({"id": "7", "text": "made"})
    client._dispatch(StreamResponse(tweet, {}, [], []))
    assert client.names() == ["tweet", "response"]
    assert client.events[0][1] == 7
    client.events.clear()
    includes: dict[str, Any] = {"users": []}  # not empty: a key
    errors = [{"title": "x"}]
    rules = [StreamRule("v", "t", "1")]
    made = StreamResponse(tweet, includes, errors, rules)
    client._dispatch(made)
    assert client.names() == ["tweet", *RAISING[1:]]
    assert client.events[1][1] is includes and client.events[2][1] is errors
    assert client.events[3][1] is rules and client.events[4][1] is made
    client.events.clear()
    client._dispatch(StreamResponse(None, {}, errors, []))  # a system message
    assert client.names() == ["errors", "response"]
    # A half-built response raises before any hook, as the property did.
    client.events.clear()
    with pytest.raises(AttributeError):
        client._dispatch(object.__new__(StreamResponse))
    assert client.events == []


# Was broken by 4110a52 (_dispatch read the private slot); fixed.
def test_dispatch_gives_on_tweet_what_the_response_s_data_says() -> None:
    client = Recorder()
    texts: list[str] = []
    client.on_tweet = lambda tweet: texts.append(tweet.text)  # type: ignore[method-assign]
    response = Shouting(Tweet({"id": "1", "text": "hi"}), {}, [], [])
    client._dispatch(response)
    assert response.data is not None and texts == [response.data.text] == ["HI"]


def test_the_async_client_does_not_share_the_path_and_reads_the_public_fields() -> None:
    # AsyncStreamingClient._dispatch unpacks the response (its properties): no lock, no slot.
    texts: list[str] = []
    responses: list[StreamResponse] = []

    class Async(AsyncStreamingClient):
        async def on_tweet(self, tweet: Tweet) -> None:
            texts.append(tweet.text)

        async def on_response(self, response: StreamResponse) -> None:
            responses.append(response)

    client = Async(TOKEN)
    response = Shouting(Tweet({"id": "1", "text": "hi"}), {}, [], [])
    asyncio.run(client._dispatch(response))
    assert texts == ["HI"] and responses == [response]


def test_an_exception_raised_before_the_lock_is_taken_leaves_it_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The other side of the case above: the subscriber must not release a lock it never
    # took (a RuntimeError would replace the exception, or another thread's hold be undone).
    from rxtweet import basestream

    monkeypatch.setattr(basestream.threading, "RLock", RefusingRLock)
    client = Recorder()
    client.on_keep_alive = lambda: client.events.append(("keep_alive", None))  # type: ignore[method-assign]
    source = SubjectSource()
    thread = client._start(source, True)  # type: ignore[arg-type]
    assert thread is not None
    assert wait_until(lambda: source.items.observers, timeout=1)
    run = client._run_state
    assert run is not None and type(run.hooks) is RefusingRLock
    RefusingRLock.refuse_next = True
    with pytest.raises(Interrupted):
        source.items.on_next(KeepAlive())
    assert not run.hooks._is_owned()
    source.items.on_next(KeepAlive())  # the next item takes and frees the lock as usual
    assert not run.hooks._is_owned()
    client.disconnect()
    assert client.join(1)
    thread.join(2)
    assert client.names() == ["keep_alive", "disconnect"]
