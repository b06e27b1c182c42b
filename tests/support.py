"""Helpers shared by the integration tests (imported as ``support``; pytest puts tests/ on
sys.path)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from rxtweet import StreamRequest
from rxtweet.v2.models import StreamResponse, Tweet

_Shape = TypeVar("_Shape")


@contextlib.contextmanager
def log_records(
    name: str, shape: Callable[[logging.LogRecord], _Shape], level: int = logging.DEBUG
) -> Iterator[list[_Shape]]:
    """``shape(record)`` of each record logged on ``name`` (or a logger below it) at
    ``level`` or above inside the block; the logger's level is ``level`` meanwhile and
    restored after."""
    got: list[_Shape] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(shape(record))

    logger = logging.getLogger(name)
    handler, old_level = Keep(level), logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield got
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def reader_threads() -> list[threading.Thread]:
    """The transport's reader threads still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("rxtweet-reader")]


def wait_until(predicate: Callable[[], Any], timeout: float = 3.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


# --- a raw-socket HTTP server whose every byte a test writes --------------------------------

#: What a :class:`RawServer` runs for each connection: ``handler(conn, request_head)``.
Handler = Callable[[socket.socket, bytes], None]


def read_head(conn: socket.socket) -> bytes:
    """Read one request head from ``conn``, up to and including its blank line.

    A byte at a time, so that nothing after the head (a body, the next request on a kept-alive
    connection) is taken from the socket. ``b""`` if the client closes before the head ends.
    """
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = conn.recv(1)
        if not byte:
            return b""
        head += byte
    return bytes(head)


class RawServer:
    """An HTTP server on 127.0.0.1 that says exactly what the test's ``handler`` sends.

    For the faults a well-behaved server (:class:`~rxtweet.testing.FakeStreamServer`) will
    not commit: a trickle, an endless body, a lying head, a reset. Each connection runs on a
    thread of its own, which reads the request head (:func:`read_head`), records it in
    :attr:`heads`, calls ``handler(conn, head)`` and closes the connection when it returns.
    ``OSError`` in there is ignored: the client went away, which is what most tests want.
    A handler that keeps sending should stop once :attr:`stop` is set.

    * :attr:`url` (``http://127.0.0.1:<port>``) and :attr:`port` say where it listens;
    * :attr:`heads` holds the first request head of each connection, in arrival order;
    * :attr:`connections` counts the connections accepted (a head or not);
    * :meth:`close` (also on leaving a ``with`` block) stops it and joins its threads.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.heads: list[bytes] = []
        self.connections = 0
        self.stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._workers: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="test-raw-server", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # close() shut the listener down
                return
            self.connections += 1
            self._conns.append(conn)
            worker = threading.Thread(
                target=self._serve,
                args=(conn,),
                name=f"test-raw-server-{self.connections}",
                daemon=True,
            )
            self._workers.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            head = read_head(conn)
            if head:
                self.heads.append(head)
                self.handler(conn, head)

    def close(self) -> list[threading.Thread]:
        """Set :attr:`stop`, shut every socket down and join the threads (3 s each).

        ``shutdown()`` is what wakes a thread blocked in ``accept``, ``recv`` or ``send``;
        ``close()`` alone does not on Linux. Returns the threads still running: none, unless
        a handler ignores :attr:`stop` and its socket both.
        """
        self.stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(3)  # after this, no connection is added to self._conns
        for conn in self._conns:
            with contextlib.suppress(OSError):  # OSError: already closed by its handler
                conn.shutdown(socket.SHUT_RDWR)
        for worker in self._workers:
            worker.join(3)
        return [thread for thread in (self._acceptor, *self._workers) if thread.is_alive()]

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@contextlib.contextmanager
def raw_servers() -> Iterator[Callable[[Handler], RawServer]]:
    """``start(handler)`` starts a :class:`RawServer`; every one started is closed on exit.

    The body of a test module's ``serve`` fixture, which adds its own checks after the block.
    """
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.close()


def answer(response: bytes) -> Handler:
    """A handler that sends ``response`` whatever the request, then closes the connection."""
    return lambda conn, _: conn.sendall(response)


def chunk(payload: bytes) -> bytes:
    """``payload`` as one chunk of a ``Transfer-Encoding: chunked`` body."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def get(url: str, **headers: str) -> StreamRequest:
    """A ``GET`` of ``url`` with these headers (none: ``headers=None``)."""
    return StreamRequest("GET", url, headers=headers or None)


def collect(observable: Any, timeout: float = 5.0) -> tuple[list[bytes], BaseException | None]:
    """Subscribe until ``observable`` ends: what it sent, and its error (``None`` if it
    completed). Fails the test if it has done neither within ``timeout`` seconds."""
    items: list[bytes] = []
    errors: list[BaseException] = []
    done = threading.Event()
    subscription = observable.subscribe(
        on_next=items.append,
        on_error=lambda e: (errors.append(e), done.set()),
        on_completed=done.set,
    )
    finished = done.wait(timeout)
    subscription.dispose()
    assert finished, "the stream neither completed nor failed"
    return items, (errors[0] if errors else None)


class Shouting(StreamResponse):
    """A ``StreamResponse`` subclass extending ``data`` through ``super()`` (upper-cased text):
    what a subclass may do, for tests of code that must read the field, not its slot."""

    __slots__ = ()

    @property
    def data(self) -> Tweet | None:
        tweet = super().data
        return None if tweet is None else Tweet({**tweet.data, "text": tweet.text.upper()})


def count_parsed(monkeypatch: Any) -> list[int]:
    """A list that gets an entry for each ``Parsed`` the parser makes from now on (for tests
    of the deliveries that make none)."""
    from rxtweet import parse as parse_module

    made: list[int] = []
    real = parse_module._new_tuple

    def counting(cls: Any, items: Any) -> Any:
        made.append(1)
        return real(cls, items)

    monkeypatch.setattr(parse_module, "_new_tuple", counting)
    return made


# --- the hook lock of a run (the attack tests of the tweepy face's observers) ---------------


class Interrupted(BaseException):
    """What ``PyThreadState_SetAsyncExc`` (a thread-killing timeout library) delivers."""


def async_raise(thread: threading.Thread, exc_type: type[BaseException] = Interrupted) -> None:
    """Deliver ``exc_type`` asynchronously to ``thread`` (it must be running Python code)."""
    assert thread.ident is not None
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)
    )
    assert done == 1


def blocked_in_on_next(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside a function named ``on_next`` (an observer's)."""
    frame = sys._current_frames().get(thread.ident or 0)
    return frame is not None and frame.f_code.co_name == "on_next"


class RefusingRLock(threading._PyRLock):  # type: ignore[name-defined,misc]
    """An RLock whose next acquire() (after ``RefusingRLock.refuse_next = True``) raises
    before taking the lock, as a signal's exception raised while acquire() waits on the
    main thread would."""

    refuse_next = False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if RefusingRLock.refuse_next:
            RefusingRLock.refuse_next = False
            raise Interrupted("raised while waiting, the lock not taken")
        return bool(super().acquire(blocking, timeout))

    __enter__ = acquire


def assert_lock_free(client: Any) -> None:
    """The last run's hook lock is held by nobody: another thread takes it at once."""
    run = client._run_state
    assert run is not None
    got: list[bool] = []

    def take() -> None:
        ok = run.hooks.acquire(timeout=0.5)
        got.append(ok)
        if ok:
            run.hooks.release()

    taker = threading.Thread(target=take)
    taker.start()
    taker.join(1)
    assert got == [True], "the run's hook lock is still held"


@contextlib.contextmanager
def interrupted_feeder(
    push: Callable[[], Any], lock: Any, in_hook: threading.Event | None
) -> Iterator[dict[str, Any]]:
    """Call ``push()`` (an item into an observer that takes ``lock``) on a feeder thread and
    interrupt it asynchronously with :class:`Interrupted`: inside its hook once ``in_hook``
    is set, or (``in_hook=None``) while it waits to take ``lock``, which is held meanwhile.
    Yields, once the feeder has seen it, ``{"raised": ..., "owned": ...}``: whether the
    exception reached ``push``'s caller and whether the feeder still held the lock then.
    On exit, a lock the feeder leaked is freed (the test's own clean-up) and it is joined."""
    seen: dict[str, Any] = {}
    cleanup = threading.Event()

    def feed() -> None:
        try:
            push()
        except Interrupted:
            seen["raised"] = True
        seen["owned"] = lock._is_owned()
        cleanup.wait(3)
        while lock._is_owned():
            lock.release()

    feeder = threading.Thread(target=feed, daemon=True)
    try:
        if in_hook is not None:
            feeder.start()
            assert in_hook.wait(1)
            async_raise(feeder)
        else:
            lock.acquire()  # the feeder blocks in on_next taking the lock
            try:
                feeder.start()
                assert wait_until(lambda: blocked_in_on_next(feeder), timeout=1)
                time.sleep(0.05)  # in on_next, and the lock is ours: it waits in acquire
                async_raise(feeder)
            finally:
                lock.release()
        assert wait_until(lambda: "owned" in seen, timeout=1)
        yield seen
    finally:
        cleanup.set()
        feeder.join(2)


def tweet_outcome(make: Callable[[dict[str, Any]], Any], doc: dict[str, Any]) -> Any:
    """What ``make(doc)`` gives (a message's tweet, or ``None``), in a comparable form: the
    exception raised (type and text), else the tweet's type and data."""
    try:
        made = make(doc)
    except Exception as exc:  # the outcome is what is compared
        return ("raised", type(exc), str(exc))
    return None if made is None else ("tweet", type(made), made.data)
