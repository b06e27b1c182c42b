"""Hostile review of commit 6806e94: without an ``on_data`` override the v2 tweepy face
(:class:`rxtweet.StreamingClient`, ``BaseStream._run``) subscribes to its connection's share
twice inside ``connection.hold()`` (the events through ``select_other_items()``, the messages
through ``select_messages(same)``), each handler under the run's hook lock, so the parser can
hand the message values over without making a ``Parsed`` each (0c17e20's value delivery).

Every run here is over a real :class:`~rxtweet.testing.FakeStreamServer` on 127.0.0.1, each
message paced into a read of its own (``Attempt(rate=...)``), so that the value path is
taken. The reference is the single subscription of before, forced by setting
``StreamingClient._dispatch_needs_raw = True``: the hooks, their order and what they are
given must not change (a spy on ``select_other_items`` checks which way each run went).
Attacked: a hostile stream (keep-alives, malformed lines, partial errors, cuts, resets, 4xx
/5xx/429, retries running out), ``disconnect()`` from each hook and from another thread at
random moments, hooks that raise (``Exception`` and ``BaseException``), ``sample()`` twice,
``filter()`` with rules, ``threaded=False`` on a thread of the user's, taps and metrics
attached and detached during a run, ``redundancy=2`` and recovery, instance and
``mock.patch`` hooks, subclasses overriding ``_dispatch``, and a run started from inside a
reactivex ``.run()``. After every run: no reader thread left, the share has no subscriber.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from unittest import mock

import pytest
import reactivex
from reactivex import abc
from reactivex.disposable import Disposable
from support import count_parsed, reader_threads, wait_until

from rxtweet import ReconnectPolicy, StreamingClient, StreamResponse, StreamRule, Tweet, substreams
from rxtweet import basestream as basestream_module
from rxtweet.events import Reconnecting, StreamEvent
from rxtweet.metrics import metrics_of
from rxtweet.testing import Attempt, FakeStreamServer
from rxtweet.v2.stream import TweetStream

TOKEN = "AAAA-hook-split-attack-token"
FAST = ReconnectPolicy(network_wait_step=0.02, http_wait_start=0.02, rate_limit_wait_start=0.04)
RATE = 200.0  # messages a second: one read each

FULL: dict[str, Any] = {
    "data": {"id": "500", "text": "full cat", "author_id": "9"},
    "includes": {"users": [{"id": "9", "name": "n", "username": "u"}]},
    "errors": [{"title": "Not Found Error", "resource_id": "7"}],
    "matching_rules": [{"id": "5", "tag": "cats"}],
}


def tweet(n: int, text: str = "t") -> dict[str, Any]:
    return {"data": {"id": str(n), "text": f"{text}{n}"}}


#: A hostile but well-framed stream: keep-alives, malformed lines, a message of errors
#: alone, a full one; tweets numbered so that a lost, doubled or reordered one shows.
HOSTILE: list[Any] = [
    tweet(1),
    b"",
    tweet(2),
    b"{not json",
    b"[1, 2]",
    {"errors": [{"title": "operational-disconnect", "detail": "x"}]},
    FULL,
    tweet(3),
    b"",
    {"data": {"id": "4"}},  # a tweet without text: a bad shape for the model or not
    tweet(5),
    tweet(6),
    tweet(7),
    tweet(8),
]


class Recorder(StreamingClient):
    """Every hook as ``(name, detail)`` in call order. ``act`` maps ``(hook, detail)`` (or
    ``(hook, None)``: its first call) to what the hook then does, once: ``"raise"``,
    ``"interrupt"`` (a ``KeyboardInterrupt``) or ``"disconnect"``."""

    def __init__(self, act: dict[tuple[str, Any], str] | None = None, **kw: Any) -> None:
        kw.setdefault("reconnect", FAST)
        kw.setdefault("daemon", True)  # a hung run must not keep the test process alive
        super().__init__(TOKEN, **kw)
        self.calls: list[tuple[str, Any]] = []
        self.act = dict(act or {})
        self.connections: list[Any] = []  # what each run subscribed to
        self.tweeted = threading.Event()

    def _hook(self, name: str, detail: Any = None) -> None:
        self.calls.append((name, detail))
        action = self.act.pop((name, detail), None) or self.act.pop((name, None), None)
        if action == "raise":
            raise ValueError(f"{name} {detail}")
        if action == "interrupt":
            raise KeyboardInterrupt(name)
        if action == "disconnect":
            self.disconnect()
            self.calls.append(("returned", name))

    def _run(self, connection: Any, run: Any) -> None:
        self.connections.append(connection)
        super()._run(connection, run)

    def on_connect(self) -> None:
        self._hook("connect")

    def on_keep_alive(self) -> None:
        self._hook("keep_alive")

    def on_tweet(self, tweet: Tweet) -> None:
        self.tweeted.set()
        self._hook("tweet", tweet.id)

    def on_includes(self, includes: dict[str, Any]) -> None:
        self._hook("includes", tuple(sorted(includes)))

    def on_errors(self, errors: list[dict[str, Any]]) -> None:
        self._hook("errors", tuple(error.get("title") for error in errors))

    def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
        self._hook("rules", tuple(rule.tag for rule in matching_rules))

    def on_response(self, response: StreamResponse) -> None:
        self._hook("response", None if response.data is None else response.data.id)

    def on_closed(self, response: Any) -> None:
        self._hook("closed", None if response is None else response.status_code)

    def on_request_error(self, status_code: int) -> None:
        self._hook("request_error", status_code)

    def on_connection_error(self) -> None:
        self._hook("connection_error")

    def on_event(self, event: StreamEvent) -> None:
        # A Reconnecting's delay has jitter: its attempt number is what must match.
        detail = event.attempt if isinstance(event, Reconnecting) else None
        self._hook(f"event:{type(event).__name__}", detail)

    def on_exception(self, exception: Exception) -> None:
        self.calls.append(("exception", type(exception).__name__))

    def on_disconnect(self) -> None:
        self.calls.append(("disconnect", None))


@pytest.fixture
def ways(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Which way each run subscribed: ``"split"`` (two subscriptions) or ``"single"``."""
    taken: list[str] = []
    real = substreams.select_other_items

    def spy() -> Any:
        taken.append("split")
        return real()

    monkeypatch.setattr(basestream_module, "select_other_items", spy)
    yield taken
    assert wait_until(lambda: not reader_threads(), timeout=2.0), "a reader thread outlived"


def _idle(shared: Any) -> bool:
    return shared.subscribers == 0 and not shared.connected


def assert_released(client: Recorder) -> None:
    """Nothing of the client's runs is left: no subscriber on any share, none connected."""
    for connection in client.connections:
        for source in (connection, getattr(connection, "source", None)):
            shared: Any = getattr(source, "_shared", None)
            if shared is not None:
                assert wait_until(partial(_idle, shared), 2.0), "a share kept a subscriber"
    assert wait_until(lambda: not reader_threads(), timeout=2.0), "a reader thread outlived"


def run(
    messages: list[Any],
    attempts: list[Attempt],
    *,
    single: bool,
    ways: list[str],
    act: dict[tuple[str, Any], str] | None = None,
    start: Callable[[Recorder], Any] = lambda client: client.sample(threaded=True),
    server_kw: dict[str, Any] | None = None,
    end: float = 2.0,
    split_expected: bool | None = None,
    **client_kw: Any,
) -> list[tuple[str, Any]]:
    """The hooks of one run of a fresh client over a fresh server (a stream that is still
    going after ``end`` seconds is disconnected), split or single."""
    before = len(ways)
    server_options: dict[str, Any] = {"fields": "all", "match_rules": False, **(server_kw or {})}
    with FakeStreamServer(bearer_token=TOKEN, **server_options) as server:
        server.feed(*messages)
        server.script(*attempts)
        client = Recorder(act, **client_kw)
        client.base_url = server.url
        with mock.patch.object(StreamingClient, "_dispatch_needs_raw", single):
            start(client)
            if not client.join(end):
                client.disconnect()
            assert client.join(2.0), "the run did not end"
    split_expected = not single if split_expected is None else split_expected
    assert ways[before:] == (["split"] if split_expected else [])
    assert client.calls.count(("disconnect", None)) == 1
    assert client.calls[-1] == ("disconnect", None)
    assert_released(client)
    return client.calls


def both(messages: list[Any], attempts: list[Attempt], **kw: Any) -> list[tuple[str, Any]]:
    """The hooks of the split run, checked equal to those of the single subscription."""
    split = run(messages, attempts, single=False, **kw)
    single = run(messages, attempts, single=True, **kw)
    assert split == single
    return split


def paced(n: int | None = None, ending: str = "close") -> Attempt:
    return Attempt(messages=n, ending=ending, rate=RATE)  # type: ignore[arg-type]


def names(calls: list[tuple[str, Any]]) -> list[str]:
    return [name for name, _ in calls]


def first(calls: list[tuple[str, Any]], where: tuple[str, Any]) -> int:
    """Where the hook ``where`` names (its first call, when its detail is ``None``) is."""
    return next(
        i
        for i, (name, detail) in enumerate(calls)
        if name == where[0] and (where[1] is None or detail == where[1])
    )


# --- order -----------------------------------------------------------------------------


def test_the_value_path_is_taken_by_these_runs(
    ways: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The premise of every comparison below: paced reads make the split run hand most
    # messages over as values (no Parsed made), the single one makes one per message.
    made = count_parsed(monkeypatch)
    messages = [tweet(n) for n in range(1, 11)]
    run(messages, [paced(10)], single=False, ways=ways, act={("closed", None): "disconnect"})
    split_made = len(made)
    run(messages, [paced(10)], single=True, ways=ways, act={("closed", None): "disconnect"})
    assert split_made < 10
    assert len(made) - split_made == 10


def test_hooks_over_a_hostile_stream_with_every_kind_of_reconnect(ways: list[str]) -> None:
    attempts = [
        paced(4, "close"),  # on_closed, then a reconnect
        Attempt(status=503),  # on_request_error(503), a reconnect
        Attempt(status=429),  # rate limited: on_request_error(429), a longer wait
        paced(3, "cut"),  # half a message, then the socket closes
        paced(3, "reset"),  # a TCP reset
        paced(4, "close"),
        Attempt(status=401),  # fatal: on_request_error, on_exception, the end
    ]
    calls = both(HOSTILE, attempts, ways=ways)
    assert ("request_error", 503) in calls and ("request_error", 429) in calls
    assert calls[-4:] == [
        ("request_error", 401),
        ("exception", "Unauthorized"),
        ("event:Disconnected", None),
        ("disconnect", None),
    ]
    assert [detail for name, detail in calls if name == "tweet"] == [1, 2, 500, 3, 4, 5, 6, 7, 8]
    assert names(calls).count("connect") == 4 and names(calls).count("connection_error") == 2
    assert "event:MalformedMessage" in names(calls) and "keep_alive" in names(calls)
    assert ("errors", ("operational-disconnect",)) in calls
    assert ("includes", ("users",)) in calls and ("rules", ("cats",)) in calls


@pytest.mark.parametrize(
    ("attempts", "max_retries", "last_error"),
    [
        ([Attempt(status=403)], None, 403),
        ([paced(2, "close"), Attempt(status=404)], None, 404),
        ([Attempt(status=429)] * 3, 1, 429),
        (
            [paced(3, "close"), Attempt(status=500), Attempt(status=502), Attempt(status=503)],
            2,
            502,
        ),
        ([paced(2, "reset"), paced(0, "reset"), paced(0, "reset")], 1, None),
    ],
    ids=["403", "data-then-404", "429-retries", "5xx-retries", "resets-retries"],
)
def test_a_run_ended_by_the_server_or_by_max_retries(
    ways: list[str], attempts: list[Attempt], max_retries: int | None, last_error: int | None
) -> None:
    kw: dict[str, Any] = {} if max_retries is None else {"max_retries": max_retries}
    calls = both([tweet(n) for n in range(1, 6)], attempts, ways=ways, **kw)
    assert names(calls)[-3:] == ["exception", "event:Disconnected", "disconnect"], calls[-5:]
    if last_error is not None:
        assert [c for c in calls if c[0] == "request_error"][-1] == ("request_error", last_error)


def test_a_run_that_never_connects_until_retries_run_out(ways: list[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"

    def start(client: Recorder) -> None:
        client.base_url = dead
        client.sample(threaded=True)

    calls = both([], [], ways=ways, start=start, max_retries=2)
    assert names(calls).count("connection_error") == 3
    assert names(calls)[-3:] == ["exception", "event:Disconnected", "disconnect"]


# --- disconnect() ----------------------------------------------------------------------

HOOKS_TO_STOP_IN = [
    ("connect", None),
    ("keep_alive", None),
    ("tweet", 2),
    ("tweet", 500),
    ("includes", None),
    ("errors", None),
    ("rules", None),
    ("response", 3),
    ("event:MalformedMessage", None),
    ("closed", None),
    ("request_error", 503),
    ("event:Reconnecting", None),
    ("connection_error", None),
]


@pytest.mark.parametrize("where", HOOKS_TO_STOP_IN, ids=lambda w: f"{w[0]}-{w[1]}")
def test_disconnect_from_inside_each_hook(ways: list[str], where: tuple[str, Any]) -> None:
    attempts = [paced(3, "close"), Attempt(status=503), paced(2, "cut"), paced()]
    calls = both(HOSTILE, attempts, ways=ways, act={where: "disconnect"})
    stop = calls.index(("returned", where[0]))
    # What may follow: the rest of that message's own hooks, then on_disconnect, once.
    after = names(calls[stop + 1 : -1])
    assert set(after) <= {"includes", "errors", "rules", "response"}, after
    assert "exception" not in names(calls)


def test_disconnect_from_another_thread_at_random_moments(ways: list[str]) -> None:
    rng = random.Random(6806)
    with FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server:
        server.feed(*[tweet(n) for n in range(1, 2001)])
        for _ in range(12):
            server.script(Attempt(rate=1000.0))
            client = Recorder()
            client.base_url = server.url
            client.sample(threaded=True)
            if rng.random() < 0.5:
                client.tweeted.wait(1.0)
            time.sleep(rng.uniform(0.0, 0.03))
            client.disconnect()
            assert client.join(2.0)
            settled = len(client.calls)
            time.sleep(0.02)
            assert len(client.calls) == settled  # nothing after on_disconnect
            assert client.calls.count(("disconnect", None)) == 1
            assert client.calls[-1] == ("disconnect", None)
            ids = [detail for name, detail in client.calls if name == "tweet"]
            assert ids == sorted(set(ids))  # in order, none twice
            assert_released(client)
    assert ways == ["split"] * 12


class StoppedSoon(Recorder):
    """A client whose ``disconnect()`` comes from a timer started as ``sample()`` begins
    (a disconnect() before the call began is not meant to stop it)."""

    delay = 0.0

    def _starting(self) -> int:
        since = super()._starting()
        self.stopper = threading.Timer(self.delay, self.disconnect)
        self.stopper.start()
        return since


def test_disconnect_racing_the_two_subscriptions(ways: list[str]) -> None:
    # disconnect() from another thread while the run is starting, subscribing twice inside
    # hold() or just connected: the run stops, on_disconnect once, nothing left open.
    with FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server:
        server.feed(*[tweet(n) for n in range(1, 200)])
        for delay in (0.0, 0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008):
            client = StoppedSoon()
            client.delay = delay
            client.base_url = server.url
            client.sample(threaded=False)  # returns once the run is over
            client.stopper.join()
            assert client.join(0.5)
            assert client.calls[-1] == ("disconnect", None)
            assert client.calls.count(("disconnect", None)) == 1
            assert "exception" not in names(client.calls)
            assert_released(client)
    assert set(ways) <= {"split"}


# --- hooks that raise ------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        ("connect", None),
        ("tweet", 2),
        ("tweet", 500),
        ("keep_alive", None),
        ("errors", None),
        ("includes", None),
        ("response", 3),
        ("event:MalformedMessage", None),
        ("closed", None),
    ],
    ids=lambda w: f"{w[0]}-{w[1]}",
)
def test_a_hook_that_raises_ends_the_run_as_before(ways: list[str], where: tuple[str, Any]) -> None:
    calls = both(HOSTILE, [paced(len(HOSTILE), "close"), paced()], ways=ways, act={where: "raise"})
    raised = first(calls, where)
    assert calls[raised + 1 :] == [
        ("exception", "ValueError"),
        ("event:Disconnected", None),
        ("disconnect", None),
    ]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("where", [("tweet", 2), ("keep_alive", None), ("connect", None)])
def test_a_base_exception_in_a_hook_then_disconnect(
    ways: list[str], where: tuple[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # A KeyboardInterrupt on the reader thread kills that thread (as before the split):
    # the run only ends at disconnect(). Both ways alike, and the end is clean.
    def start(client: Recorder) -> None:
        client.sample(threaded=True)
        assert wait_until(lambda: any(c[0] == where[0] for c in client.calls), 2.0)
        time.sleep(0.05)  # a hook after the interrupt would show here
        client.disconnect()

    with caplog.at_level(logging.CRITICAL):
        calls = both(
            HOSTILE, [paced(len(HOSTILE), "hold")], ways=ways, act={where: "interrupt"}, start=start
        )
    assert calls[first(calls, where) + 1 :] == [("disconnect", None)]


# --- runs of the user's making ---------------------------------------------------------


def test_sample_twice_on_one_client_and_threaded_false_on_a_thread(ways: list[str]) -> None:
    with FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server:
        client = Recorder()
        client.base_url = server.url
        runs: list[list[tuple[str, Any]]] = []
        for number in range(3):
            server.feed(*[tweet(n) for n in range(1, 5)])
            server.script(paced(4, "close"))
            client.act[("closed", None)] = "disconnect"
            client.calls = []
            if number == 1:  # threaded=False on a thread of the user's
                worker = threading.Thread(target=client.sample, daemon=True)
                worker.start()
                worker.join(2.0)
                assert not worker.is_alive()
            else:
                client.sample(threaded=True)
                with pytest.raises(Exception, match="already"):
                    client.sample(threaded=True)
                assert client.join(2.0)
            runs.append(client.calls)
        assert_released(client)
    assert runs[0] == runs[1] == runs[2]
    assert [d for n, d in runs[0] if n == "tweet"] == [1, 2, 3, 4]
    assert ways == ["split"] * 3


def test_filter_with_rules(ways: list[str]) -> None:
    def start(client: Recorder) -> None:
        client.add_rules([StreamRule("cat", tag="cats"), StreamRule("dog", tag="dogs")])
        client.filter(threaded=True, tweet_fields=["text"])

    texts = ["a cat", "a bird", "a dog", "cat and dog", "cats"]
    messages = [{"data": {"id": str(n), "text": text}} for n, text in enumerate(texts, 1)]
    calls = both(
        messages,
        [paced(3, "close")],
        ways=ways,
        start=start,
        server_kw={"match_rules": True},
        act={("closed", None): "disconnect"},
    )
    tags = [sorted(detail) for name, detail in calls if name == "rules"]
    assert [d for n, d in calls if n == "tweet"] == [1, 3, 4]
    assert tags == [["cats"], ["dogs"], ["cats", "dogs"]]


def test_taps_and_metrics_attached_and_detached_during_the_run(ways: list[str]) -> None:
    # A tap (and metrics' read taps) take the share's way back for as long as they are
    # attached: a hook must not be lost, doubled or reordered at either switch.
    seen: list[str] = []
    snapshots: list[Any] = []

    def start(client: Recorder) -> None:
        client.sample(threaded=True)
        assert wait_until(lambda: client.connections, 1.0)
        connection = client.connections[0]
        metrics = metrics_of(TweetStream(connection), 0.02).subscribe(snapshots.append)
        for _ in range(6):
            time.sleep(0.015)
            tap = connection.items.tap(lambda item: seen.append(type(item).__name__))
            time.sleep(0.015)
            tap.dispose()
        metrics.dispose()

    messages = [tweet(n) for n in range(1, 81)]
    calls = both(
        messages, [paced(80, "close")], ways=ways, start=start, act={("closed", None): "disconnect"}
    )
    assert [d for n, d in calls if n == "tweet"] == list(range(1, 81))
    assert "Parsed" in seen and snapshots


@pytest.mark.parametrize(
    "options",
    [{"redundancy": 2}, {"recovery": "backfill"}, {"recovery": "full"}],
    ids=["redundancy", "backfill", "full"],
)
def test_redundancy_and_recovery(ways: list[str], options: dict[str, Any]) -> None:
    # Two replicas draw from one cursor in turn: the order between them is the server's
    # scheduling, so their calls are compared as a multiset; one replica alone, in order.
    replicas = options.get("redundancy", 1)

    def start(client: Recorder) -> None:
        client.sample(threaded=True, **options)
        if replicas > 1:  # each replica holds its connection open: stop after the last
            assert wait_until(lambda: names(client.calls).count("tweet") >= 20, 2.0)
            client.disconnect()

    messages = [tweet(n) for n in range(1, 21)]
    if replicas == 1:
        attempts = [paced(20, "close"), Attempt(status=403)]
    else:
        attempts = [paced(10, "hold")] * replicas
    split = run(messages, attempts, single=False, ways=ways, start=start)
    single = run(messages, attempts, single=True, ways=ways, start=start)
    if replicas == 1:
        assert split == single
    else:
        assert sorted(map(repr, split)) == sorted(map(repr, single))
        assert names(split).count("connect") == 2
    ids = [detail for name, detail in split if name == "tweet"]
    assert sorted(ids) == list(range(1, 21))


def test_on_data_set_on_the_instance_before_sample_gets_every_raw_line(ways: list[str]) -> None:
    raws: list[bytes] = []

    def start(client: Recorder) -> None:
        def on_data(raw_data: bytes | str) -> Any:
            raws.append(bytes(raw_data) if isinstance(raw_data, bytes) else raw_data.encode())
            return StreamingClient.on_data(client, raw_data)

        client.on_data = on_data  # type: ignore[method-assign]
        client.sample(threaded=True)

    messages = [tweet(n) for n in range(1, 6)]
    calls = run(
        messages,
        [paced(5, "close")],
        single=False,
        ways=ways,
        split_expected=False,  # on_data wants the raw line: the single way
        start=start,
        act={("closed", None): "disconnect"},
    )
    assert ways == []
    assert [d for n, d in calls if n == "tweet"] == [1, 2, 3, 4, 5]
    assert raws == [b'{"data":{"id":"%d","text":"t%d"}}' % (n, n) for n in range(1, 6)]


def test_a_mock_patch_of_on_tweet_sees_every_tweet(ways: list[str]) -> None:
    messages = [tweet(n) for n in range(1, 6)]
    with mock.patch.object(StreamingClient, "on_tweet", autospec=True) as on_tweet:

        class Plain(StreamingClient):
            def on_closed(self, response: Any) -> None:
                self.disconnect()

        with FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server:
            server.feed(*messages)
            server.script(paced(5, "close"))
            client = Plain(TOKEN, reconnect=FAST, daemon=True)
            client.base_url = server.url
            client.sample(threaded=True)
            assert client.join(2.0)
    assert [c.args[1].id for c in on_tweet.call_args_list] == [1, 2, 3, 4, 5]
    assert all(c.args[0] is client for c in on_tweet.call_args_list)
    assert ways == ["split"]


class ReadsRaw(Recorder):
    """Overrides ``_dispatch`` with the base class's own signature, reading ``raw``."""

    def _dispatch(self, response: StreamResponse, raw: bytes) -> None:  # type: ignore[override]
        self.calls.append(("raw", raw))
        super()._dispatch(response, raw)


class ReadsRawWithDefault(Recorder):
    """Overrides ``_dispatch`` as StreamingClient declares it (``raw`` has a default)."""

    def _dispatch(self, response: StreamResponse, raw: bytes = b"") -> None:
        self.calls.append(("raw", raw))
        super()._dispatch(response, raw)


# Was broken by 6806e94 (a subclass overriding _dispatch inherited the flag); fixed.
@pytest.mark.parametrize("client_type", [ReadsRaw, ReadsRawWithDefault])
def test_a_subclass_overriding_dispatch_gets_the_raw_line(
    ways: list[str], client_type: type[Recorder]
) -> None:
    with FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server:
        server.feed(*[tweet(n) for n in range(1, 4)])
        server.script(paced(3, "close"))
        client = client_type({("closed", None): "disconnect"})
        client.base_url = server.url
        client.sample(threaded=True)
        assert client.join(2.0)
    assert [d for n, d in client.calls if n == "raw"] == [
        b'{"data":{"id":"%d","text":"t%d"}}' % (n, n) for n in range(1, 4)
    ]
    assert "exception" not in names(client.calls)


# Was broken by 6806e94 (the hold's blocking-call check saw the outer .run()); fixed:
# only a blocking call made inside the hold counts.
def test_sample_called_from_inside_a_reactivex_run(ways: list[str]) -> None:
    with FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server:
        server.feed(*[tweet(n) for n in range(1, 4)])
        server.script(paced(3, "close"))
        client = Recorder({("closed", None): "disconnect"})
        client.base_url = server.url

        def stream_then_complete(
            observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            client.sample()  # blocks until the run is over
            observer.on_next(len(client.calls))
            observer.on_completed()
            return Disposable()

        reactivex.create(stream_then_complete).run()
        assert_released(client)
    assert client.calls[0] == ("connect", None)
    assert [d for n, d in client.calls if n == "tweet"] == [1, 2, 3]
    assert names(client.calls)[-3:] == ["closed", "returned", "disconnect"]
