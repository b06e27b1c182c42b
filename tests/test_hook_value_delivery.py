"""Issue 17: the tweepy face (v2) takes its messages as a selection of their values and its
other items through a second subscription of the same share that ignores the messages
(``substreams.select_other_items``), so that the parser can hand the messages over without
making a ``Parsed`` for each. Same hooks, same order, same threads as one subscription to
``items`` gave; an ``on_data`` override (it wants the raw line) still gets it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support import count_parsed

from rxtweet import ReconnectPolicy, StreamingClient, StreamResponse, Tweet
from rxtweet.events import StreamEvent
from rxtweet.substreams import select_other_items
from rxtweet.testing import Attempt, FakeStreamServer

TOKEN = "AAAA-hook-value-token"
FAST = ReconnectPolicy(network_wait_step=0.05, http_wait_start=0.05, rate_limit_wait_start=0.1)

MESSAGES: list[dict[str, Any]] = [
    {"data": {"id": "11", "text": "plain"}},
    {
        "data": {"id": "12", "text": "full", "author_id": "9"},
        "includes": {"users": [{"id": "9", "name": "n", "username": "u"}]},
        "matching_rules": [{"id": "5", "tag": "cats"}],
    },
    {"errors": [{"title": "operational-disconnect", "detail": "x"}]},
    {"data": {"id": "13", "text": "after"}},
]


class Recorder(StreamingClient):
    """Every hook, in order, with the thread it ran on."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(TOKEN, reconnect=FAST, daemon=True, **kw)
        self.calls: list[tuple[str, Any]] = []
        self.threads: set[str] = set()
        self.done = threading.Event()

    def _note(self, name: str, detail: Any) -> None:
        self.calls.append((name, detail))
        self.threads.add(threading.current_thread().name)

    def on_connect(self) -> None:
        self._note("connect", None)

    def on_keep_alive(self) -> None:
        self._note("keep_alive", None)

    def on_tweet(self, tweet: Tweet) -> None:
        self._note("tweet", tweet.id)

    def on_includes(self, includes: dict[str, Any]) -> None:
        self._note("includes", sorted(includes))

    def on_errors(self, errors: list[dict[str, Any]]) -> None:
        self._note("errors", [error.get("title") for error in errors])

    def on_matching_rules(self, matching_rules: Any) -> None:
        self._note("rules", [rule.tag for rule in matching_rules])

    def on_response(self, response: StreamResponse) -> None:
        self._note("response", None if response.data is None else response.data.id)

    def on_closed(self, response: Any) -> None:
        self._note("closed", None)
        self.disconnect()

    def on_disconnect(self) -> None:
        self._note("disconnect", None)
        self.done.set()


class WithOnData(Recorder):
    def on_data(self, raw_data: bytes | str) -> Any:
        self._note("data", len(raw_data))
        return super().on_data(raw_data)


def _script(server: FakeStreamServer) -> None:
    server.feed(*(MESSAGES[:1] + MESSAGES[1:] * 3))
    server.script(Attempt(messages=1 + 3 * (len(MESSAGES) - 1), ending="close", rate=50))


@pytest.fixture
def fake() -> Iterator[FakeStreamServer]:
    with FakeStreamServer(bearer_token=TOKEN, fields="all", match_rules=False) as server:
        # Paced: a read a message (a connection's first read goes the Parsed way while it
        # waits for its first data), then the server closes.
        _script(server)
        yield server


def _run(client: Recorder, server: FakeStreamServer) -> list[tuple[str, Any]]:
    client.base_url = server.url
    thread = client.sample(threaded=True)
    assert thread is not None
    assert client.done.wait(5)
    thread.join(2)
    return client.calls


@pytest.mark.parametrize("client_type", [Recorder, WithOnData])
def test_the_hooks_are_called_as_one_subscription_called_them(
    fake: FakeStreamServer, client_type: type[Recorder]
) -> None:
    split = _run(client_type(), fake)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(client_type, "_dispatch_needs_raw", True)  # one subscription to items
        _script(fake)
        single = _run(client_type(), fake)
    assert split == single
    names = [name for name, _ in split]
    assert names[0] == "connect" and names[-2:] == ["closed", "disconnect"]
    assert [detail for name, detail in split if name == "tweet"] == [11] + [12, 13] * 3


def test_the_hook_face_makes_no_parsed_for_its_messages(
    fake: FakeStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = count_parsed(monkeypatch)
    client = Recorder()
    _run(client, fake)
    assert [name for name, _ in client.calls].count("tweet") == 7
    # The first read's messages only (1 here, unless a loaded machine read late): the
    # connection waits for its first data there. Without the split, all 10 are made.
    assert len(made) < 1 + 3 * (len(MESSAGES) - 1)


def test_an_on_data_override_gets_every_raw_line(
    fake: FakeStreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = count_parsed(monkeypatch)
    client = WithOnData()
    _run(client, fake)
    assert [name for name, _ in client.calls].count("data") == 1 + 3 * (len(MESSAGES) - 1)
    assert len(made) == 1 + 3 * (len(MESSAGES) - 1)


def test_a_tap_on_the_stream_takes_the_parsed_way_with_the_same_hooks(
    fake: FakeStreamServer,
) -> None:
    # A passive tap needs the items themselves: the share delivers them as before.
    client = Recorder()
    seen: list[str] = []
    client.base_url = fake.url
    original = client._run

    def run_with_tap(connection: Any, run: Any) -> None:
        tap = connection.items.tap(lambda item: seen.append(type(item).__name__))
        try:
            original(connection, run)
        finally:
            tap.dispose()

    client._run = run_with_tap  # type: ignore[method-assign]
    calls = _run(client, fake)
    assert [detail for name, detail in calls if name == "tweet"] == [11] + [12, 13] * 3
    assert seen.count("Parsed") == 1 + 3 * (len(MESSAGES) - 1)


def test_select_other_items_passes_everything_but_messages() -> None:
    import reactivex
    from reactivex import operators as ops

    from rxtweet.events import Connected, Disconnected, KeepAlive
    from rxtweet.parse import Parsed

    items: list[Any] = [Connected(), Parsed(1, b"1"), KeepAlive(), Parsed(2, b"2"), Disconnected()]
    got: list[StreamEvent] = (
        reactivex.from_iterable(items).pipe(select_other_items(), ops.to_list()).run()
    )
    assert [type(item).__name__ for item in got] == ["Connected", "KeepAlive", "Disconnected"]
