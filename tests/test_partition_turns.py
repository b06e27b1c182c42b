"""Merged partitions take turns handing their reads downstream (TransportOptions.turns).

Without turns, 20 reader threads with data waiting all compete for the GIL and the 20-way
merge ran at 0.62-0.73x of one connection (benchmarks/partitions.py); with them, 0.87x.
These tests pin the behaviour the speed relies on, against real sockets on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from support import RawServer, chunk, get, reader_threads, wait_until

from rxtweet import StreamingClient
from rxtweet.partitions import PARTITION_CHUNK_SIZE
from rxtweet.transport import RequestsTransport
from rxtweet.transport_base import DEFAULT_CHUNK_SIZE, TransportOptions

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def lines_then_hold(count: int) -> object:
    """A handler: ``count`` lines, then the connection stays open until the server stops."""

    def handler(conn: socket.socket, _: bytes) -> None:
        conn.sendall(HEAD + b"".join(chunk(b"line-%d\r\n" % i) for i in range(count)))
        while not server_stop(conn):
            time.sleep(0.01)

    return handler


def server_stop(conn: socket.socket) -> bool:
    try:
        conn.setblocking(False)
        return conn.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_merged_partitions_share_one_turns_lock_and_read_larger() -> None:
    client = StreamingClient("token", base_url="http://127.0.0.1:9")
    stream = client.firehose_stream(partitions=[1, 2, 3])
    connections = list(stream.connection.connections.values())  # type: ignore[attr-defined]
    turns = {id(c.options.turns) for c in connections}
    assert len(turns) == 1 and connections[0].options.turns is not None
    assert {c.options.chunk_size for c in connections} == {PARTITION_CHUNK_SIZE}
    assert PARTITION_CHUNK_SIZE > DEFAULT_CHUNK_SIZE


def test_a_chosen_chunk_size_is_kept_by_the_merge() -> None:
    client = StreamingClient("token", base_url="http://127.0.0.1:9", chunk_size=4096)
    stream = client.firehose_stream(partitions=[1, 2])
    connections = list(stream.connection.connections.values())  # type: ignore[attr-defined]
    assert {c.options.chunk_size for c in connections} == {4096}


def test_turns_must_be_a_lock() -> None:
    with pytest.raises(TypeError, match="turns must be a lock"):
        TransportOptions(turns=object())  # type: ignore[arg-type]


def test_a_reader_waits_for_its_turn_and_a_disposal_ends_the_wait() -> None:
    turns = threading.RLock()
    options = TransportOptions(stall_timeout=5.0, turns=turns)
    transport = RequestsTransport()
    with RawServer(lines_then_hold(3)) as first, RawServer(lines_then_hold(3)) as second:
        release_first = threading.Event()
        first_seen: list[bytes] = []
        second_seen: list[bytes] = []

        def slow(line: bytes) -> None:
            first_seen.append(line)
            release_first.wait(5)  # holds the turn while it blocks

        a = transport.lines(get(first.url), options).subscribe(slow)
        assert wait_until(lambda: first_seen)
        b = transport.lines(get(second.url), options).subscribe(second_seen.append)
        assert wait_until(lambda: second.heads)  # connected and reading
        time.sleep(0.3)
        assert second_seen == []  # its lines wait for the turn the first one holds
        waiting = set(reader_threads())
        started = time.monotonic()
        b.dispose()  # while it waits for the turn
        release_first.set()
        assert wait_until(lambda: len(first_seen) == 3)
        a.dispose()
        assert wait_until(lambda: not (set(reader_threads()) & waiting), timeout=2.0)
        assert time.monotonic() - started < 1.0
        assert second_seen == []  # disposed before its turn: nothing delivered after


def test_turns_pass_between_readers_line_batches_intact() -> None:
    turns = threading.RLock()
    options = TransportOptions(stall_timeout=5.0, turns=turns)
    transport = RequestsTransport()
    seen: list[tuple[str, bytes]] = []
    inside = [0]
    overlap = [False]

    def observer(name: str):  # type: ignore[no-untyped-def]
        def on_next(line: bytes) -> None:
            inside[0] += 1
            if inside[0] > 1:
                overlap[0] = True
            time.sleep(0.001)
            seen.append((name, line))
            inside[0] -= 1

        return on_next

    with RawServer(lines_then_hold(50)) as first, RawServer(lines_then_hold(50)) as second:
        a = transport.lines(get(first.url), options).subscribe(observer("a"))
        b = transport.lines(get(second.url), options).subscribe(observer("b"))
        assert wait_until(lambda: len(seen) == 100, timeout=5.0)
        a.dispose()
        b.dispose()
    assert not overlap[0]
    for name in ("a", "b"):
        assert [line for n, line in seen if n == name] == [b"line-%d" % i for i in range(50)]
