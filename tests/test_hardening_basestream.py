"""Hardening of the tweepy face's run loop (issue 10 items 11, 17; issue 11 item 6).

A ``disconnect()`` made while ``filter()``/``sample()`` is still starting stops the run;
``join()`` and the ``threaded=True`` thread's ``join()`` return only after
``on_disconnect``, Ctrl-C included (a real SIGINT, in a subprocess); threads are named
``rxtweet-stream-N``; ``base_url`` userinfo is redacted in the repr.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import wait_until

from rxtweet.testing import FakeStreamServer
from rxtweet.v1 import Stream

ROOT = Path(__file__).resolve().parents[1]


class Recorder(Stream):
    """Counts on_disconnect calls; ``slow`` makes on_disconnect take a while."""

    def __init__(self, *args: Any, slow: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slow = slow
        self.disconnects = 0
        self.connects = 0

    def on_connect(self) -> None:
        self.connects += 1

    def on_disconnect(self) -> None:
        time.sleep(self.slow)
        self.disconnects += 1


class DisconnectWhileStarting(Recorder):
    """Calls disconnect() from inside filter()/sample(), before the run is registered."""

    def _connection(self, *args: Any, **kwargs: Any) -> Any:
        self.disconnect()
        return super()._connection(*args, **kwargs)


@pytest.fixture
def fake_stream_server_options() -> dict[str, Any]:
    """The options of ``server`` (tests/conftest.py)."""
    return {"messages": [], "keepalive_interval": 0.05}


@pytest.mark.parametrize("threaded", [True, False])
def test_a_disconnect_while_starting_stops_the_run(
    server: FakeStreamServer, threaded: bool
) -> None:
    client = DisconnectWhileStarting("a", "b", "c", "d", base_url=server.url)
    runner = threading.Thread(target=lambda: client.filter(track=["x"], threaded=threaded))
    runner.start()
    runner.join(2)
    if threaded:
        assert client.join(2), "the disconnected run went on"
    try:
        assert not runner.is_alive(), "the disconnected run went on"
        assert client.disconnects == 1 and not client.running
        assert client.connects == 0 and server.stream_requests == []
    finally:
        client.disconnect()
        runner.join(2)


def test_disconnect_right_after_the_call_always_stops(server: FakeStreamServer) -> None:
    """The race of issue 10 item 17 with a tiny switch interval: the disconnect lands
    anywhere from inside the call onwards; every run must stop."""

    class Signals(Recorder):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.called = threading.Event()

        def _connection(self, *args: Any, **kwargs: Any) -> Any:
            self.called.set()  # filter() has begun
            return super()._connection(*args, **kwargs)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    lost = 0
    try:
        for _ in range(40):
            client = Signals("a", "b", "c", "d", base_url=server.url)
            runner = threading.Thread(target=lambda c=client: c.sample())
            runner.start()
            client.called.wait(2)
            client.disconnect()
            # A lost disconnect never stops; a stop can take most of a second on a loaded
            # machine at this switch interval (seen: one run lost past 1 s under load).
            runner.join(5)
            if runner.is_alive():
                lost += 1
                client.disconnect()
                runner.join(2)
    finally:
        sys.setswitchinterval(interval)
    assert lost == 0


def test_thread_is_named_and_join_waits_for_on_disconnect(server: FakeStreamServer) -> None:
    client = Recorder("a", "b", "c", "d", base_url=server.url, slow=0.3)
    assert client.join(0) is True  # no run yet
    thread = client.sample(threaded=True)
    assert thread is not None and re.fullmatch(r"rxtweet-stream-\d+", thread.name)
    assert wait_until(lambda: client.connects == 1, 2)
    assert client.join(0.05) is False
    threading.Timer(0.05, client.disconnect).start()
    assert client.join(3) is True
    assert client.disconnects == 1


def test_disconnect_then_thread_join_waits_for_on_disconnect(server: FakeStreamServer) -> None:
    client = Recorder("a", "b", "c", "d", base_url=server.url, slow=0.3)
    thread = client.sample(threaded=True)
    assert thread is not None
    assert wait_until(lambda: client.connects == 1, 2)
    client.disconnect()
    thread.join()
    assert client.disconnects == 1


def test_thread_numbers_differ(server: FakeStreamServer) -> None:
    names = []
    for _ in range(2):
        client = Recorder("a", "b", "c", "d", base_url=server.url)
        thread = client.sample(threaded=True)
        assert thread is not None
        names.append(thread.name)
        client.disconnect()
        client.join(2)
    assert names[0] != names[1]


SCRIPT = textwrap.dedent(
    """
    import signal, sys, threading, time
    from rxtweet.testing import FakeStreamServer
    from rxtweet.v1 import Stream

    class S(Stream):
        def on_connect(self):
            print("connected", flush=True)
            main = threading.main_thread().ident
            # A real SIGINT, delivered to the main thread while it waits.
            threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT)).start()

        def on_disconnect(self):
            time.sleep(0.3)
            print("on_disconnect", flush=True)

    with FakeStreamServer(messages=[], keepalive_interval=0.05) as server:
        stream = S("a", "b", "c", "d", base_url=server.url)
        thread = stream.sample(threaded=True)
        try:
            if sys.argv[1] == "join":
                stream.join()
            else:
                thread.join()
        except KeyboardInterrupt:
            if sys.argv[1] == "thread":
                stream.disconnect()
                thread.join()
            print("interrupted", flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="pthread_kill")
@pytest.mark.parametrize("mode", ["join", "thread"])
def test_ctrl_c_while_waiting_runs_on_disconnect_first(mode: str, tmp_path: Path) -> None:
    script = tmp_path / "ctrl_c.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), mode],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.stdout.splitlines() == ["connected", "on_disconnect", "interrupted"], done.stderr


def test_repr_redacts_base_url_userinfo() -> None:
    client = Stream("a", "b", "c", "d", base_url="https://bob:hunter2@proxy.example:8443/")
    assert "hunter2" not in repr(client) and "bob" not in repr(client)
    assert "proxy.example:8443" in repr(client)


@pytest.mark.parametrize("method", ["sample", "filter"])
def test_a_disconnect_while_starting_stops_a_v2_run(server: FakeStreamServer, method: str) -> None:
    """The same race on the v2 client: its filter()/sample() must take ``since`` too."""
    from rxtweet import StreamingClient

    class V2DisconnectWhileStarting(StreamingClient):
        disconnects = 0

        def _connection(self, *args: Any, **kwargs: Any) -> Any:
            self.disconnect()
            return super()._connection(*args, **kwargs)

        def on_disconnect(self) -> None:
            self.disconnects += 1

    client = V2DisconnectWhileStarting("t", base_url=server.url)
    runner = threading.Thread(target=getattr(client, method))
    runner.start()
    runner.join(2)
    try:
        assert not runner.is_alive(), "the disconnected run went on"
        assert client.disconnects == 1 and not client.running
        assert server.stream_requests == []
    finally:
        client.disconnect()
        runner.join(2)
