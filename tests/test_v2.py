"""The v2 StreamingClient against FakeStreamServer: both faces, shared substreams, hooks."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from reactivex import operators as ops
from support import wait_until

import rxtweet
from rxtweet import (
    Closed,
    Connected,
    Disconnected,
    Errored,
    KeepAlive,
    MalformedMessage,
    Reconnecting,
    ReconnectPolicy,
    RequestFailed,
    StreamingClient,
    StreamResponse,
    StreamRule,
    Tweet,
    Unauthorized,
)
from rxtweet.basestream import StreamAlreadyRunning
from rxtweet.testing import Attempt, FakeStreamServer, generate_v2_messages

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
TOKEN = "AAAAAAAAAAAAAAAAAAAAA-test-bearer-token"
TWARC = [
    line for line in (DATA / "twarc-csv_streaming_output.jsonl").read_bytes().split(b"\n") if line
]
TWEET_LINES = [line for line in TWARC if line.startswith(b'{"data"')]
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05, rate_limit_wait_start=0.1)


def Fake(**kw: Any) -> FakeStreamServer:  # noqa: N802 - reads as the class it builds
    """A FakeStreamServer that sends the recorded messages as they are: these tests are about
    the client, not about the server's rule matching or field trimming."""
    kw.setdefault("fields", "all")
    kw.setdefault("match_rules", False)
    return FakeStreamServer(**kw)


@pytest.fixture
def fake_stream_server_options() -> dict[str, Any]:
    """``server`` (tests/conftest.py) is built as ``Fake`` builds one."""
    return {
        "fields": "all",
        "match_rules": False,
        "messages": TWARC,
        "bearer_token": TOKEN,
        "keepalive_interval": 0.05,
    }


def client(
    server: FakeStreamServer, cls: type[StreamingClient] = StreamingClient, **kw: Any
) -> Any:
    kw.setdefault("reconnect", FAST)
    return cls(TOKEN, base_url=server.url, **kw)


# --- the reactive face ------------------------------------------------------------------------


def test_tweets_take_run_closes_the_connection(server: FakeStreamServer) -> None:
    stream = client(server).sample_stream()
    tweets = stream.tweets.pipe(ops.take(3), ops.to_list()).run()
    assert all(isinstance(t, Tweet) for t in tweets)
    assert [t.id for t in tweets] == [
        int(orjson.loads(line)["data"]["id"]) for line in TWEET_LINES[:3]
    ]
    assert wait_until(lambda: server.requests[-1].ended_at is not None, timeout=1.0)
    assert len(server.stream_requests) == 1


def test_substreams_share_one_connection_and_close_with_the_last(server: FakeStreamServer) -> None:
    server.script(Attempt(ending="hold"))
    stream = client(server).filter_stream()
    got: dict[str, list[Any]] = {"tweets": [], "includes": [], "rules": [], "events": [], "r": []}
    with stream.hold():
        subs = [
            stream.tweets.subscribe(got["tweets"].append),
            stream.includes.subscribe(got["includes"].append),
            stream.matching_rules.subscribe(got["rules"].append),
            stream.events.subscribe(got["events"].append),
            stream.responses.subscribe(got["r"].append),
        ]
        assert not stream.connected
    assert wait_until(lambda: len(got["r"]) == len(TWARC))
    assert len(server.stream_requests) == 1
    assert len(got["tweets"]) == len(TWEET_LINES) == len(got["includes"]) == len(got["rules"])
    assert isinstance(got["events"][0], Connected)
    assert all(isinstance(r, StreamResponse) for r in got["r"])
    # the real quirk: a matching rule id beyond 2**53, sent as a JSON number, kept exact
    assert got["rules"][0][0].id == "1377649934414049282"
    assert got["rules"][0][0].tag is None
    assert isinstance(got["includes"][0]["users"][0], rxtweet.User)
    for sub in subs[:-1]:
        sub.dispose()
    assert stream.connected
    subs[-1].dispose()
    assert wait_until(lambda: server.requests[-1].ended_at is not None, timeout=1.0)
    assert not stream.connected
    # Subscribing again later opens a fresh connection.
    again = stream.events.pipe(ops.take(1), ops.to_list()).run()
    assert isinstance(again[0], Connected)
    assert len(server.stream_requests) == 2


def test_system_message_is_a_response_with_errors(server: FakeStreamServer) -> None:
    stream = client(server).sample_stream()
    errors = stream.errors.pipe(ops.take(1)).run()
    assert errors[0]["title"] == "operational-disconnect"


def test_params_like_tweepy(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=1, ending="hold"))
    stream = client(server).filter_stream(
        tweet_fields=["lang", "created_at"],
        expansions="author_id,geo.place_id",
        user_fields=("username",),
        backfill_minutes=2,
    )
    stream.responses.pipe(ops.take(1)).run()
    query = server.stream_requests[-1].query
    assert query == {
        "tweet.fields": ["lang,created_at"],
        "expansions": ["author_id,geo.place_id"],
        "user.fields": ["username"],
        "backfill_minutes": ["2"],
    }
    assert server.stream_requests[-1].path == "/2/tweets/search/stream"
    with pytest.raises(TypeError, match="tweet_feilds"):
        client(server).sample_stream(tweet_feilds=["lang"])


def test_lines_are_cold_and_separate(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=1, ending="hold"), Attempt(messages=1, ending="hold"))
    stream = client(server).sample_stream()
    first = stream.lines.pipe(ops.filter(bool), ops.take(1)).run()
    second = stream.lines.pipe(ops.filter(bool), ops.take(1)).run()
    assert first == TWARC[0]
    assert second == TWARC[1]
    assert len(server.stream_requests) == 2


def test_events_complete_after_disconnected_on_a_fatal_error(server: FakeStreamServer) -> None:
    server.script(Attempt(status=401))
    events = client(server).sample_stream().events.pipe(ops.to_list()).run()
    assert [type(e) for e in events] == [RequestFailed, Errored, Disconnected]
    assert isinstance(events[1].exception, Unauthorized)


def test_tweets_error_with_the_typed_exception(server: FakeStreamServer) -> None:
    server.script(Attempt(status=403))
    with pytest.raises(rxtweet.Forbidden):
        client(server).sample_stream().tweets.pipe(ops.to_list()).run()


def test_exactly_once_through_every_fault(
    server: FakeStreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [b"\xff\xfe{}", b"not json at all", b"[1,2,3]", b'{"data": {"id": "1", "te']
    messages: list[Any] = []
    for i, line in enumerate(TWEET_LINES * 3):
        messages.append(line)
        if i % 5 == 2:
            messages.append(bad[(i // 5) % 4])
    with Fake(messages=messages, bearer_token=TOKEN, keepalive_interval=0.05) as srv:
        srv.script(
            Attempt(messages=4, ending="cut", chunking="random", seed=1),
            Attempt(status=503),
            Attempt(messages=5, ending="stall"),
            Attempt(status=429, headers={"x-rate-limit-remaining": "40"}),
            Attempt(messages=5, ending="cut", gzip=True, chunking="byte"),
            Attempt(chunking="random", gzip=True, ending="hold", seed=2),
        )
        stream = rxtweet.StreamingClient(
            TOKEN, base_url=srv.url, reconnect=FAST, stall_timeout=0.3
        ).sample_stream()
        events: list[Any] = []
        ids: list[int] = []
        done = threading.Event()
        with stream.hold():
            watching = stream.events.subscribe(events.append)
            stream.tweets.pipe(ops.take(len(TWEET_LINES) * 3)).subscribe(
                lambda t: ids.append(t.id), on_completed=done.set
            )
        assert done.wait(10)
        watching.dispose()
    expected = [int(orjson.loads(line)["data"]["id"]) for line in TWEET_LINES * 3]
    assert ids == expected
    malformed = [e for e in events if isinstance(e, MalformedMessage)]
    assert sorted({e.reason for e in malformed}) == sorted(
        {"not UTF-8", "not JSON", "not a JSON object", "truncated JSON"}
    )
    assert stream.stats.malformed == len(malformed) == sum(1 for m in messages if m in bad)
    assert sum(isinstance(e, Reconnecting) for e in events) == 5
    assert "malformed message" in caplog.text


# --- the tweepy face: the streaming guide's examples, import changed and base_url added ---------


def test_idprinter_threaded(server: FakeStreamServer, capsys: pytest.CaptureFixture[str]) -> None:
    import rxtweet as tweepy

    printed: list[int] = []

    class IDPrinter(tweepy.StreamingClient):
        def on_tweet(self, tweet: Any) -> None:
            print(tweet.id)
            printed.append(tweet.id)

    printer = IDPrinter(TOKEN, base_url=server.url)
    thread = printer.sample(threaded=True)
    assert isinstance(thread, threading.Thread)
    assert printer.thread is thread
    assert printer.running
    assert wait_until(lambda: len(printed) == len(TWEET_LINES))
    printer.disconnect()
    thread.join(2)
    assert not thread.is_alive()
    assert not printer.running
    out = [int(x) for x in capsys.readouterr().out.split()]
    assert out == [int(orjson.loads(line)["data"]["id"]) for line in TWEET_LINES]


def test_idprinter_blocking_prints_every_tweet(
    server: FakeStreamServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import rxtweet as tweepy

    class IDPrinter(tweepy.StreamingClient):
        seen = 0

        def on_tweet(self, tweet: Any) -> None:
            print(tweet.id)
            self.seen += 1
            if self.seen == len(TWEET_LINES):
                self.disconnect()

    printer = IDPrinter(TOKEN, base_url=server.url)
    printer.sample()
    printed = [int(x) for x in capsys.readouterr().out.split()]
    assert printed == [int(orjson.loads(line)["data"]["id"]) for line in TWEET_LINES]


def test_connection_tester_sees_exactly_one_connection(server: FakeStreamServer) -> None:
    import rxtweet as tweepy

    class ConnectionTester(tweepy.StreamingClient):
        def on_connection_error(self) -> None:
            self.disconnect()

    server.script(Attempt(messages=1, ending="cut"))
    tester = ConnectionTester(TOKEN, base_url=server.url)
    tester.sample()
    time.sleep(0.3)
    assert len(server.stream_requests) == 1
    assert not tester.running


def test_every_hook_fires(server: FakeStreamServer) -> None:
    calls: list[str] = []

    class Recorder(StreamingClient):
        def on_connect(self) -> None:
            calls.append("connect")

        def on_keep_alive(self) -> None:
            calls.append("keep_alive")

        def on_data(self, raw_data: bytes) -> None:
            calls.append("data")
            super().on_data(raw_data)

        def on_tweet(self, tweet: Tweet) -> None:
            calls.append("tweet")

        def on_includes(self, includes: dict[str, Any]) -> None:
            calls.append("includes")

        def on_errors(self, errors: list[dict[str, Any]]) -> None:
            calls.append("errors")

        def on_matching_rules(self, matching_rules: list[StreamRule]) -> None:
            calls.append("matching_rules")

        def on_response(self, response: StreamResponse) -> None:
            calls.append("response")

        def on_closed(self, response: Any) -> None:
            calls.append(f"closed:{response.status_code}")

        def on_connection_error(self) -> None:
            calls.append("connection_error")

        def on_request_error(self, status_code: int) -> None:
            calls.append(f"request_error:{status_code}")

        def on_exception(self, exception: Exception) -> None:
            calls.append(f"exception:{type(exception).__name__}")

        def on_disconnect(self) -> None:
            calls.append("disconnect")

    # Run 1: five messages (4 tweets and the system message), a clean close, then a
    # connection that only sends keep-alives until we disconnect.
    server.script(
        Attempt(messages=5, ending="close"),
        Attempt(messages=0, ending="hold", keepalive_interval=0.02),
    )
    recorder = Recorder(TOKEN, base_url=server.url, reconnect=FAST)
    thread = recorder.filter(threaded=True)
    assert wait_until(lambda: "keep_alive" in calls)
    recorder.disconnect()
    thread.join(2)
    # Run 2 (blocking): a cut, a 503, then a fatal 401 that ends it.
    server.script(Attempt(messages=1, ending="cut"), Attempt(status=503), Attempt(status=401))
    recorder.filter()
    for hook in (
        "connect",
        "keep_alive",
        "data",
        "tweet",
        "includes",
        "errors",
        "matching_rules",
        "response",
        "closed:200",
        "connection_error",
        "request_error:503",
        "request_error:401",
        "exception:Unauthorized",
        "disconnect",
    ):
        assert hook in calls, hook
    assert calls[-1] == "disconnect"
    assert calls.count("disconnect") == 2  # once per run


def test_hook_exception_ends_the_stream_via_on_exception(server: FakeStreamServer) -> None:
    seen: list[Any] = []

    class Buggy(StreamingClient):
        def on_tweet(self, tweet: Tweet) -> None:
            raise ValueError("bug in a hook")

        def on_exception(self, exception: Exception) -> None:
            seen.append(exception)

        def on_disconnect(self) -> None:
            seen.append("disconnect")

    Buggy(TOKEN, base_url=server.url, reconnect=FAST).sample()
    assert isinstance(seen[0], ValueError)
    assert seen[1:] == ["disconnect"]
    time.sleep(0.2)
    assert len(server.stream_requests) == 1  # never reconnected because of a bug


def test_calling_sample_while_running_raises(server: FakeStreamServer) -> None:
    stream = client(server)
    thread = stream.sample(threaded=True)
    with pytest.raises(StreamAlreadyRunning):
        stream.filter()
    stream.disconnect()
    thread.join(2)


def test_max_retries_means_n_plus_one_attempts(server: FakeStreamServer) -> None:
    exceptions: list[Exception] = []

    class Counter(StreamingClient):
        def on_exception(self, exception: Exception) -> None:
            exceptions.append(exception)

    with Fake(messages=TWARC, bearer_token=TOKEN, default=Attempt(status=503)) as srv:
        Counter(TOKEN, base_url=srv.url, max_retries=2, reconnect=FAST).sample()
        assert len(srv.stream_requests) == 3
    assert isinstance(exceptions[0], rxtweet.RetriesExhausted)


def test_secrets_stay_out_of_reprs_and_logs(
    server: FakeStreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.script(Attempt(status=401))
    c = client(server)
    c.sample()
    stream = c.sample_stream()
    for text in (
        repr(c),
        repr(stream),
        repr(stream.connection),
        caplog.text,
        str(c.__dict__.get("reconnect")),
    ):
        assert TOKEN not in text


def test_user_agent_and_session(server: FakeStreamServer) -> None:
    c = client(server)
    server.script(Attempt(messages=1, ending="hold"))
    c.sample_stream().tweets.pipe(ops.take(1)).run()
    assert server.stream_requests[-1].headers["user-agent"] == c.user_agent
    assert "rxtweet/" in c.user_agent
    assert c.session is not None
    assert c.thread is None


def test_keep_alive_and_closed_events(server: FakeStreamServer) -> None:
    server.script(Attempt(messages=0, ending="hold", keepalive_interval=0.01))
    events = client(server).sample_stream().events.pipe(ops.take(3), ops.to_list()).run()
    assert isinstance(events[0], Connected)
    assert all(isinstance(e, KeepAlive) for e in events[1:])
    server.script(Attempt(messages=1, ending="close"))
    events = (
        client(server)
        .sample_stream()
        .events.pipe(ops.filter(lambda e: not isinstance(e, KeepAlive)), ops.take(3), ops.to_list())
        .run()
    )
    assert [type(e) for e in events[:2]] == [Connected, Closed]
    assert isinstance(events[2], Reconnecting)
    assert events[2].delay == 0.0  # that connection delivered data: reconnect at once


# --- regressions found in review ------------------------------------------------------------


def test_restart_right_after_disconnect_streams_again() -> None:
    got = threading.Event()
    disconnects: list[int] = []

    class Restarter(StreamingClient):
        def on_tweet(self, tweet: Tweet) -> None:
            got.set()

        def on_disconnect(self) -> None:
            disconnects.append(1)

    messages = generate_v2_messages(seed=3)
    with Fake(messages=messages, bearer_token=TOKEN, default=Attempt(rate=50)) as srv:
        c = client(srv, Restarter)
        thread = c.sample(threaded=True)
        try:
            assert got.wait(5)
            for _ in range(5):
                c.disconnect()
                got.clear()
                thread = c.sample(threaded=True)  # no join in between
                assert got.wait(5), "the restarted stream received nothing"
                assert c.running
        finally:
            c.disconnect()
            thread.join(5)
    assert not c.running
    assert len(disconnects) == 6


def test_a_hook_raising_an_rxtweet_error_ends_the_stream_not_reconnects(
    server: FakeStreamServer,
) -> None:
    calls: list[str] = []

    class RulesInHook(StreamingClient):
        def on_tweet(self, tweet: Tweet) -> None:
            # e.g. a rules call made from inside a hook failed
            raise rxtweet.StreamConnectionError("REST call inside on_tweet failed")

        def on_connection_error(self) -> None:
            calls.append("connection_error")

        def on_exception(self, exception: Exception) -> None:
            calls.append(type(exception).__name__)

    client(server, RulesInHook).sample()
    assert calls == ["StreamConnectionError"]
    time.sleep(0.2)
    assert len(server.stream_requests) == 1


def test_on_disconnect_waits_for_a_running_hook(server: FakeStreamServer) -> None:
    order: list[str] = []
    inside = threading.Event()

    class Slow(StreamingClient):
        def on_tweet(self, tweet: Tweet) -> None:
            if order:
                return
            order.append("hook start")
            inside.set()
            time.sleep(0.3)
            order.append("hook end")

        def on_disconnect(self) -> None:
            order.append("on_disconnect")

    c = client(server, Slow)
    thread = c.sample(threaded=True)
    assert inside.wait(5)
    c.disconnect()
    thread.join(5)
    assert order == ["hook start", "hook end", "on_disconnect"]
