"""Attack on the one-line fast path of v1.1's fatal-disconnect guard on batches.

``_end_on_fatal_disconnect_batches`` used to clear a read of disconnect candidates with one
``max(map(bytes.find, batch, ...)) < 0`` (``TypeError``: the per-line loop). It now asks a
batch of exactly one line ``bytes.find(batch[0], b'"disconnect"', 0, 24) < 0`` (a stream at a
low rate reads one message at a time), ``bytes.find`` called on the line as ``map`` calls
it, so a line that is not bytes still goes the loop's way. These tests hold the new
operator to the old one, copied below from ``git show HEAD:rxtweet/v1/framing.py`` as the
reference:

* hypothesis: batches of one line (and of more) of bytes, bytearray, memoryview, str, None,
  a bytes subclass that reports each slice taken of it (which makes the fast and the slow
  path tell apart), keep-alives, the ``"disconnect"`` key at offsets 0..31 behind whitespace,
  fatal and non-fatal codes, malformed JSON after the key, and a subscriber that disposes
  from inside ``on_next``: the same ``on_next`` batches (and whether each is the read's own
  list), the same error (type, notice), the same exceptions out of ``on_next`` and the same
  log records;
* a bytes subclass whose ``find`` lies or raises: the old operator never called it (it used
  ``bytes.find``), and so does the one-line path (it trusted the line's own ``find`` once:
  the review's one break, fixed);
* over a real server on 127.0.0.1 sending one message a read: the statuses before a fatal
  disconnect (2, 6, 7) arrive, then ``FatalDisconnect`` and no reconnect; a non-fatal one
  (1, 12) is delivered and the stream reconnects.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from itertools import repeat
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.subject import Subject
from support import RawServer, chunk, log_records, reader_threads, wait_until

from rxtweet.errors import FatalDisconnect
from rxtweet.events import Errored
from rxtweet.parse import Parsed
from rxtweet.reconnect import ReconnectPolicy
from rxtweet.v1 import Stream
from rxtweet.v1 import framing as v1_framing
from rxtweet.v1.client import DEFAULT_FATAL_DISCONNECT_CODES
from rxtweet.v1.framing import _disconnect_notice

# --- the reference: the operator before the change (HEAD), verbatim but for names ---------

_REF_KEY_WITHIN = 24
_ref_find = bytes.find
_REF_DISCONNECT = repeat(b'"disconnect"')
_REF_ZERO = repeat(0)
_REF_HEAD = repeat(_REF_KEY_WITHIN)


def reference_batches(
    codes: frozenset[int],
) -> Callable[[Observable[list[bytes]]], Observable[list[bytes]]]:
    def operator(source: Observable[list[bytes]]) -> Observable[list[bytes]]:
        def subscribe(
            observer: abc.ObserverBase[list[bytes]], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            stopped = [False]

            def on_next(batch: list[bytes]) -> None:
                if batch:
                    try:
                        clear = (
                            max(map(_ref_find, batch, _REF_DISCONNECT, _REF_ZERO, _REF_HEAD)) < 0
                        )
                    except TypeError:
                        clear = False
                    if clear:
                        observer.on_next(batch)
                        return
                start = 0
                for index, line in enumerate(batch):
                    if b'"disconnect"' not in line[:_REF_KEY_WITHIN]:
                        continue
                    observer.on_next(batch[start : index + 1])
                    start = index + 1
                    if stopped[0]:
                        return
                    notice = _disconnect_notice(line, codes)
                    if notice is not None:
                        observer.on_error(FatalDisconnect(notice))
                        return
                if start < len(batch):
                    observer.on_next(batch[start:] if start else batch)

            def stop() -> None:
                stopped[0] = True

            subscription = source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )
            return CompositeDisposable(Disposable(stop), subscription)

        return Observable(subscribe)

    return operator


def current_batches(
    codes: frozenset[int],
) -> Callable[[Observable[list[bytes]]], Observable[list[bytes]]]:
    # Looked up at each call: a mutation run patches the module attribute.
    return v1_framing._end_on_fatal_disconnect_batches(codes)


# --- lines ----------------------------------------------------------------------------------

#: Every call the subject under test makes into a line (a slice), in order.
TRACE: list[str] = []


class SpyBytes(bytes):
    """bytes that note each slice taken of them: only the per-line loop slices a line, so
    the trace says which path a line took (bytes.find, bound or not, never calls this)."""

    def __getitem__(self, key: Any) -> Any:
        TRACE.append(f"slice {key!r}")
        return super().__getitem__(key)


class LyingBytes(bytes):
    """bytes whose ``find`` says the needle is never there."""

    def find(self, *args: Any) -> int:  # type: ignore[override]
        return -1


class RaisingBytes(bytes):
    """bytes whose ``find`` raises an error the guard does not expect."""

    def find(self, *args: Any) -> int:  # type: ignore[override]
        raise ValueError("find refused")


STATUS = b'{"id":%d,"id_str":"%d","text":"s","user":{"id":7,"screen_name":"u"}}'
WHITESPACE = st.text(alphabet=" \t\r\n", max_size=30).map(str.encode)
CODES = st.sampled_from([b"1", b"2", b"6", b"7", b"12", b"0", b"-6", b'"6"', b"null", b"6.0"])
INNERS = st.one_of(
    st.builds(
        lambda code, reason: b'{"code":%s,"stream_name":"s","reason":"%s"}' % (code, reason),
        CODES,
        st.sampled_from([b"r", b"token revoked", b""]),
    ),
    st.sampled_from(
        [b'"not an object"', b"{bad", b'{"code":6', b"[6]", b"{}", b'{"code":6}} trailing']
    ),
)


@st.composite
def disconnect_lines(draw: st.DrawFn) -> bytes:
    # The key behind 0..30 bytes of whitespace, before or after the "{": offsets 0..31.
    before, inside = draw(WHITESPACE), draw(WHITESPACE)
    inner = draw(INNERS)
    shape = draw(st.sampled_from(["object", "bare key", "second key"]))
    if shape == "bare key":
        return before + b'"disconnect"' + inside + b":" + inner
    if shape == "second key":
        return b'{"a":1,' + inside + b'"disconnect":' + inner + b"}"
    return before + b"{" + inside + b'"disconnect":' + inner + b"}"


PAYLOADS = st.one_of(
    st.builds(lambda n: STATUS % (n, n), st.integers(1, 9)),
    st.sampled_from([b"", b" ", b"\r", b"{bad", b'"disconnect"', b'{"text":"disconnect"}']),
    disconnect_lines(),
)

#: How a payload is handed to the guard: as bytes, as a type the transport never makes.
WRAPPERS: dict[str, Callable[[bytes], Any]] = {
    "bytes": bytes,
    "spy": SpyBytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "str": lambda payload: payload.decode("latin-1"),
    "none": lambda _: None,
}
LINES = st.tuples(
    st.sampled_from(["bytes", "bytes", "spy", "spy", "bytearray", "memoryview", "str", "none"]),
    PAYLOADS,
).map(lambda pair: WRAPPERS[pair[0]](pair[1]))
BATCHES = st.lists(
    st.one_of(st.lists(LINES, min_size=1, max_size=1), st.lists(LINES, max_size=4)),
    min_size=1,
    max_size=5,
)


# --- running an operator --------------------------------------------------------------------


def v1_log() -> AbstractContextManager[list[tuple[str, str]]]:
    """The guard's log records (level, message) while inside."""
    return log_records(
        v1_framing.__package__,
        lambda record: (record.levelname, record.getMessage()),
        logging.INFO,
    )


def run(
    make: Callable[[frozenset[int]], Callable[[Observable[list[bytes]]], Observable[list[bytes]]]],
    batches: list[list[Any]],
    dispose_at: int | None,
    codes: frozenset[int] = DEFAULT_FATAL_DISCONNECT_CODES,
) -> list[Any]:
    """Everything observable of ``make(codes)`` fed ``batches``, in order: each ``on_next``
    (its lines, whether it is the read's own list), the error or completion, an exception
    out of the source's ``on_next``, each log record and each slice of a line. The subscriber
    disposes inside its ``dispose_at``-th ``on_next``."""
    TRACE.clear()
    got: list[Any] = TRACE  # one sequence: the order of slices among the rest is compared too
    subject: Subject[list[Any]] = Subject()
    subscription: list[abc.DisposableBase] = []
    current: list[list[Any]] = []
    calls = [0]

    def on_next(out: list[Any]) -> None:
        got.append(("next", [repr(line) for line in out], out is current[0]))
        if calls[0] == dispose_at:
            subscription[0].dispose()
        calls[0] += 1

    def on_error(error: Exception) -> None:
        notice = getattr(error, "notice", None)
        got.append(("error", type(error).__name__, str(error), notice and dict(notice.data)))

    with v1_log() as records:
        subscription.append(
            make(codes)(subject).subscribe(on_next, on_error, lambda: got.append("completed"))
        )
        for batch in batches:
            current[:] = [batch]
            try:
                subject.on_next(batch)
            except Exception as error:  # what escapes is part of the behaviour
                got.append(("raised", type(error).__name__, str(error)))
        subject.on_completed()
        got.extend(("log", *record) for record in records)
    return list(got)


# --- the property ---------------------------------------------------------------------------


@settings(derandomize=True, max_examples=600, deadline=None)
@given(
    batches=BATCHES,
    dispose_at=st.none() | st.integers(0, 4),
    codes=st.sampled_from([DEFAULT_FATAL_DISCONNECT_CODES, frozenset({1, 12}), frozenset({6})]),
)
def test_the_new_guard_does_what_the_old_one_did(
    batches: list[list[Any]], dispose_at: int | None, codes: frozenset[int]
) -> None:
    want = run(reference_batches, batches, dispose_at, codes)
    assert run(current_batches, batches, dispose_at, codes) == want


@pytest.mark.parametrize("offset", range(32))
def test_one_disconnect_line_at_every_offset(offset: int) -> None:
    # Exhaustive where the limit bites: the key at offsets 0..31 behind whitespace, alone in
    # its read, after a status read and followed by one; each code, each kind of line.
    pad = b" " * max(offset - 1, 0)
    for code, wrap in itertools.product(
        [1, 2, 6, 7, 12], ["bytes", "spy", "bytearray", "memoryview"]
    ):
        body = b':{"code":%d,"stream_name":"s","reason":"r"}' % code
        line = b'"disconnect"' + body if offset == 0 else pad + b'{"disconnect"' + body + b"}"
        assert line.find(b'"disconnect"') == offset
        lines = [[WRAPPERS[wrap](STATUS % (1, 1))], [WRAPPERS[wrap](line)], [STATUS % (2, 2)]]
        want = run(reference_batches, lines, None)
        assert run(current_batches, lines, None) == want, (code, wrap)
        fatal = wrap != "memoryview" and 0 < offset <= 12 and code in DEFAULT_FATAL_DISCONNECT_CODES
        assert any(entry[0] == "error" for entry in want if isinstance(entry, tuple)) is fatal


def test_a_memoryview_line_alone_goes_the_loop_way() -> None:
    # memoryview has no find: AttributeError, which the new fast path must take as "ask the
    # loop", as TypeError was before. The loop passes it on (its test finds nothing in it).
    line = memoryview(b'{"disconnect":{"code":6,"stream_name":"s","reason":"r"}}')
    got = run(current_batches, [[line]], None)
    assert got == run(reference_batches, [[line]], None)
    assert [entry[0] for entry in got if isinstance(entry, tuple)] == ["next"]


@pytest.mark.parametrize("cls", [LyingBytes, RaisingBytes])
def test_a_bytes_subclass_with_its_own_find(cls: type[bytes]) -> None:
    # The review's one break, fixed: the one-line path called the line's own find, so a
    # fatal disconnect in a bytes subclass whose find lies was passed on without ending the
    # stream, and one whose find raises let ValueError out of on_next. It calls bytes.find
    # on the line, as the map() path does.
    line = cls(b'{"disconnect":{"code":6,"stream_name":"s","reason":"r"}}')
    assert run(current_batches, [[line]], None) == run(reference_batches, [[line]], None)


# --- over a real server, one message a read --------------------------------------------------

KEYS = ("consumer-key", "consumer-secret", "access-token", "access-secret")
FAST = ReconnectPolicy(network_wait_step=0.01, network_wait_max=0.02, max_retries=3)
CHUNKED_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def disconnect(code: int) -> bytes:
    return b'{"disconnect":{"code":%d,"stream_name":"s","reason":"reason %d"}}' % (code, code)


class Delivered:
    """Status ids the subscriber has received; the server waits on them, so each message is
    written only after the one before has gone through: a read holds one message."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.changed = threading.Condition()

    def add(self, status_id: int) -> None:
        with self.changed:
            self.ids.append(status_id)
            self.changed.notify_all()

    def wait_for(self, status_id: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: status_id in self.ids, 1.0)


def trickle(
    conn: socket.socket, delivered: Delivered, ids: list[int], last: bytes | None, end: bool
) -> None:
    """Statuses ``ids`` one chunk at a time, each after the one before was delivered, then
    ``last``; then the body's end (``end``) or holding on until the client closes."""
    conn.sendall(CHUNKED_200)
    for status_id in ids:
        conn.sendall(chunk(STATUS % (status_id, status_id) + b"\r\n"))
        assert delivered.wait_for(status_id)
    if last is not None:
        conn.sendall(chunk(last + b"\r\n"))
    if end:
        conn.sendall(b"0\r\n\r\n")
        return
    conn.settimeout(2)
    while conn.recv(65536):
        pass


def kinds(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if type(item) is Parsed:
            code = getattr(item.value, "code", None)
            out.append(code if code is not None else int(item.value.id))
        elif type(item) is Errored:
            out.append(type(item.exception).__name__)
        else:
            out.append(type(item).__name__)
    return out


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch the v1.1 client's guard is given (it wraps whichever guard
    rxtweet.v1.framing holds when the stream connects)."""
    sizes: list[int] = []
    guard = v1_framing._end_on_fatal_disconnect_batches

    def counting(
        codes: frozenset[int],
    ) -> Callable[[Observable[list[bytes]]], Observable[list[bytes]]]:
        inner = guard(codes)
        return lambda source: inner(source.pipe(ops.do_action(lambda b: sizes.append(len(b)))))

    monkeypatch.setattr(v1_framing, "_end_on_fatal_disconnect_batches", counting)
    return sizes


def subscribe_items(stream: Any, delivered: Delivered, stop_at: int | None = None) -> Any:
    items: list[Any] = []
    ends: list[Any] = []
    done = threading.Event()

    def on_next(item: Any) -> None:
        items.append(item)
        if type(item) is Parsed and getattr(item.value, "code", None) is None:
            delivered.add(int(item.value.id))
            if item.value.id == stop_at:
                done.set()

    def on_error(error: Exception) -> None:
        ends.append(error)
        done.set()

    subscription = stream.items.subscribe(on_next, on_error, lambda: done.set())
    return items, ends, done, subscription


@pytest.mark.parametrize("code", sorted(DEFAULT_FATAL_DISCONNECT_CODES))
def test_a_fatal_disconnect_read_alone_ends_a_slow_real_stream(
    code: int, batch_sizes: list[int]
) -> None:
    delivered = Delivered()
    with RawServer(
        lambda conn, _: trickle(conn, delivered, [1, 2, 3], disconnect(code), False)
    ) as server:
        stream = Stream(
            *KEYS, base_url=server.url, reconnect=FAST, stall_timeout=2.0
        ).sample_stream()
        items, ends, done, subscription = subscribe_items(stream, delivered)
        assert done.wait(2.0)
        assert wait_until(lambda: not reader_threads(), 1.0)
        subscription.dispose()
        assert server.connections == 1  # no reconnect
    assert len(ends) == 1 and isinstance(ends[0], FatalDisconnect)
    assert (ends[0].code, ends[0].reason) == (code, f"reason {code}")
    assert kinds(items) == ["Connected", 1, 2, 3, code, "FatalDisconnect", "Disconnected"]
    assert batch_sizes == [1, 1, 1, 1]  # every read held one message: the one-line path


@pytest.mark.parametrize("code", [1, 12])
def test_a_non_fatal_disconnect_read_alone_reconnects_a_slow_real_stream(
    code: int, batch_sizes: list[int]
) -> None:
    delivered = Delivered()

    def handler(conn: socket.socket, _: bytes) -> None:
        if server.connections == 1:  # X closes the connection after a disconnect message
            trickle(conn, delivered, [1, 2], disconnect(code), True)
        else:
            trickle(conn, delivered, [3, 4], None, False)

    with RawServer(handler) as server:
        stream = Stream(
            *KEYS, base_url=server.url, reconnect=FAST, stall_timeout=2.0
        ).sample_stream()
        items, ends, done, subscription = subscribe_items(stream, delivered, stop_at=4)
        assert done.wait(2.0)
        subscription.dispose()
        assert wait_until(lambda: not reader_threads(), 1.0)
        assert server.connections == 2
    assert ends == []
    assert kinds(items)[:9] == [
        "Connected", 1, 2, code, "Closed", "Reconnecting", "Connected", 3, 4,
    ]  # fmt: skip
    assert batch_sizes[:5] == [1, 1, 1, 1, 1]
