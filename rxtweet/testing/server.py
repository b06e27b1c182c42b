"""A real local HTTP server that imitates X's streaming endpoints, for tests and demos.

:class:`FakeStreamServer` listens on ``127.0.0.1`` (an ephemeral port) and speaks plain
HTTP/1.1 over real sockets, so a client under test runs its whole stack — connection pool,
chunked decoding, gzip, timeouts, reconnects — against it. What each *connection attempt*
receives is scripted with :class:`Attempt` values; every request is recorded as a
:class:`RecordedRequest`.

By default it answers as X does (see :class:`FakeStreamServer`): Tweet streams send only
the default fields plus what ``tweet.fields``/``expansions``/``*.fields`` ask for, and the
filtered stream sends only messages matching the rules added through the rules endpoint
(``matching_rules`` filled with their ids and tags) and answers 409 while there is none.
``fields="all"`` and ``match_rules=False`` send messages as given.

Example::

    import requests
    from rxtweet.testing import Attempt, FakeStreamServer

    tweets = [{"data": {"id": "1", "text": "hello"}}, {"data": {"id": "2", "text": "world"}}]
    with FakeStreamServer(messages=tweets, bearer_token="secret") as server:
        server.script(
            Attempt(status=503),                     # 1st attempt: overloaded
            Attempt(messages=1, ending="cut"),        # 2nd: one tweet, then a broken line
            Attempt(ending="close"),                  # 3rd: the rest, then a clean end
        )
        ...  # point the client at server.url + "/2/tweets/search/stream"
        [first, second, third] = server.wait_for_requests(3)
        assert server.sent == 2                       # each tweet was delivered exactly once

Wire format of a 200 stream response (what X sends, as far as it is documented):

* ``HTTP/1.1 200 OK``, ``transfer-encoding: chunked``, ``content-type: application/json``;
* every message is its bytes followed by ``\\r\\n``; a keep-alive is a bare ``\\r\\n`` in a chunk
  of its own, sent when nothing else was written for the keep-alive interval;
* chunk boundaries follow :attr:`Attempt.chunking`; with :attr:`Attempt.gzip` the body is one
  gzip stream, ``Z_SYNC_FLUSH``-ed after every message and keep-alive, and chunking applies to
  the compressed bytes.

What a client sees for each :attr:`Attempt.ending`:

* ``"close"``: the terminating ``0\\r\\n\\r\\n`` chunk (and the gzip trailer). The response is
  complete; the TCP connection stays open for the next request unless the client sent
  ``Connection: close``.
* ``"cut"``: complete chunks carrying the first half of the next message (no ``\\r\\n``), then
  a plain ``close()`` of the socket (FIN, no terminating chunk). ``requests``/``urllib3``
  report it as ``ChunkedEncodingError`` / ``ProtocolError`` (``InvalidChunkLength ... 0 bytes
  read``) after handing over the partial bytes. The cut message is *not* consumed: the next
  connection sends it whole, so a correct client sees every message exactly once.
* ``"stall"``: nothing more — no bytes, no keep-alives — while the socket stays open.
* ``"hold"``: keep-alives every keep-alive interval; messages added later with
  :meth:`FakeStreamServer.feed` (or re-queued by a cut) are delivered as they appear, as
  long as the attempt's ``messages`` budget is not used up.

Messages form one cursor shared by all connections. A message counts as sent
(:attr:`FakeStreamServer.sent`) once all its bytes were written to the socket. A message that
could not be written completely (the client went away, or the server stopped) is put back at
the front of the cursor.
"""

from __future__ import annotations

import contextlib
import email.utils
import hmac
import itertools
import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Literal

import orjson

from ._http import (
    _BadRequest,
    _Body,
    _ClientGone,
    _Conn,
    _drain_and_close,
    _head,
    _merge,
    _rate_limit_headers,
    _Request,
    read_request,
)
from .cursor import _Cursor, _encode
from .problems import _JSON, _PROBLEM_JSON, _invalid_request, default_error_body
from .rules import MAX_RULE_LENGTH as MAX_RULE_LENGTH
from .rules import RulesStore, _CompiledRule
from .rules import _compile_rule as _compile_rule
from .rules import _Tweet as _Tweet
from .shaping import FILTERED_STREAM_PATH, TWEET_STREAM_PATHS, _Shaper
from .values import (
    _FIELDS_MODES,
    Attempt,
    Chunking,
    Ending,
    FieldsMode,
    MessageSource,
    RecordedRequest,
)

__all__ = [
    "Attempt",
    "Chunking",
    "Ending",
    "FakeStreamServer",
    "FieldsMode",
    "MessageSource",
    "RecordedRequest",
    "default_error_body",
]

# MAX_RULE_LENGTH, _compile_rule and _Tweet are imported "as" themselves: this module was
# their home, and the tests (and older code) still import them from here.

logger = logging.getLogger(__name__)

#: v2 streaming paths the server answers with a scripted :class:`Attempt` (GET only): the
#: Tweet streams, and the compliance, likes and label streams (sent verbatim).
V2_STREAM_PATHS = TWEET_STREAM_PATHS | frozenset(
    {
        "/2/tweets/compliance/stream",
        "/2/users/compliance/stream",
        "/2/likes/compliance/stream",
        "/2/likes/firehose/stream",
        "/2/likes/sample10/stream",
        "/2/tweets/label/stream",
    }
)
#: v1.1 streaming paths (GET or POST with a form body).
V1_STREAM_PATHS = frozenset(
    {"/1.1/statuses/filter.json", "/1.1/statuses/sample.json", "/1.1/statuses/firehose.json"}
)
RULES_PATH = "/2/tweets/search/stream/rules"

_HOLD_POLL = 0.02  # how often a held connection with budget left looks for new messages


class FakeStreamServer:
    """A local imitation of X's streaming endpoints, over real HTTP/1.1 sockets.

    Args:
        messages: the message source shared by all connections: a list or any iterable
            (possibly an infinite generator) of ``dict`` (compact JSON), ``str`` or ``bytes``
            (verbatim, so malformed lines can be sent); or a ``str``/path-like naming a JSONL
            file (each non-empty line is a message, its own line ending stripped).
            Generators are pulled lazily under a lock and must not block indefinitely.
        bearer_token: when set, every ``/2/`` request (streams, rules, unknown paths) must
            carry ``Authorization: Bearer <token>``; otherwise 401, without consuming a
            scripted :class:`Attempt`. v1.1 paths are left to ``verify_v1``.
        keepalive_interval: seconds of silence before a ``\\r\\n`` keep-alive (X: 20 s);
            ``None`` disables keep-alives. An :class:`Attempt` may override it.
        default: the :class:`Attempt` used when the script is empty (default ``Attempt()``:
            stream every message, then hold with keep-alives).
        verify_v1: called with the :class:`RecordedRequest` (``status`` 0) of every v1.1
            stream request; ``False`` answers 401 (``{"errors":[{"code":32,...}]}``). If it
            raises, the server logs the exception and answers 500.
        fields: ``"requested"`` (default, as X): every message on a Tweet stream (sample,
            filtered, sample10, firehose) is trimmed to X's default fields (``id``,
            ``text``, ``edit_history_tweet_ids``; users ``id``, ``name``, ``username``; media
            ``media_key``, ``type``; places ``id``, ``full_name``; polls ``id``, ``options``)
            plus what the request's ``tweet.fields``, ``expansions``, ``user.fields``,
            ``media.fields``, ``place.fields`` and ``poll.fields`` ask for; ``includes``
            objects are sent only for the requested expansions, and other streams than the
            filtered one drop the source's ``matching_rules``. ``"all"``: messages are sent
            as given (the old behaviour: every field, asked for or not).
        match_rules: ``True`` (default, as X): the filtered stream sends only messages that
            match at least one current rule, with ``matching_rules`` set to those rules'
            ``id`` and ``tag`` (``null`` when the rule has none). ``False``: messages are
            sent as given, ``matching_rules`` included. See "Rule matching" below.
        require_rules: answer ``GET /2/tweets/search/stream`` with X's 409
            ``RuleConfigurationIssue`` while no rule exists (``None``, the default: the same
            as ``match_rules``). A scripted :class:`Attempt` with a non-200 ``status`` or a
            ``body`` is still served as scripted; a scripted plain 200 is not consumed.
        rules: rules to start with, as ``{"value": ..., "tag": ...}`` mappings.
        host, port: where to listen (default: ``127.0.0.1`` and an ephemeral port).

    Rule matching (``match_rules=True``) evaluates a documented subset of X's rule syntax,
    case-insensitively, against the whole message (whatever fields the client asked for):
    bare keywords (a whole-word match; ``cat`` does not match ``cats``; in scripts written
    without spaces, such as Japanese or Thai, a substring match), ``"quoted phrases"``,
    ``#hashtag``, ``@mention``, ``lang:xx``, ``has:images`` (a ``photo`` in
    ``includes.media``), ``has:media``, ``has:links``, ``has:hashtags``, ``has:mentions``,
    ``is:retweet``/``is:reply``/``is:quote``, ``-`` negation, ``OR`` (a space is AND and
    binds tighter) and parentheses. Other operators X knows (``from:``, ``url:``,
    ``point_radius:``, ``sample:``, other ``has:``/``is:`` ...) are accepted by the rules
    endpoint, as X accepts them, but never match (negated: always match), and a warning is
    logged: a test depending on them fails visibly instead of passing by accident. Rules
    with unbalanced parentheses, a lone ``-``, or without a positive clause are rejected
    as X does
    (``invalid-rules`` in the answer's ``errors``). Changes apply at once, also to open
    connections (X: within about 20 s). A message matching no rule is consumed from the
    cursor and counted in :attr:`unmatched`, not sent.

    Usable as a context manager, or with :meth:`start` / :meth:`stop`. A server runs once:
    it cannot be restarted after :meth:`stop`.

    Example::

        with FakeStreamServer(messages="tests/data/sample.jsonl", keepalive_interval=0.05,
                              default=Attempt(ending="close")) as server:
            response = requests.get(server.url + "/2/tweets/sample/stream", stream=True)
            lines = [line for line in response.iter_lines() if line]
            assert server.requests[0].path == "/2/tweets/sample/stream"

    Besides streams, the server answers the rules endpoint ``/2/tweets/search/stream/rules``
    (GET with optional ``ids``; POST ``add``/``delete``, ``dry_run``, ``delete_all``) from an
    in-memory rule set, and 404/405/400 problems for anything else.
    """

    def __init__(
        self,
        messages: MessageSource = (),
        *,
        bearer_token: str | None = None,
        keepalive_interval: float | None = 20.0,
        default: Attempt | None = None,
        verify_v1: Callable[[RecordedRequest], bool] | None = None,
        fields: FieldsMode = "requested",
        match_rules: bool = True,
        require_rules: bool | None = None,
        rules: Iterable[Mapping[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if keepalive_interval is not None and not keepalive_interval > 0:
            raise ValueError("keepalive_interval must be > 0 or None")
        if default is not None and not isinstance(default, Attempt):
            raise TypeError("default must be an Attempt")
        self._cursor = _Cursor(messages)
        self._bearer = bearer_token
        self._keepalive_interval = keepalive_interval
        self._default = default if default is not None else Attempt()
        self._verify_v1 = verify_v1
        if fields not in _FIELDS_MODES:
            raise ValueError(f"fields must be one of {sorted(_FIELDS_MODES)}, not {fields!r}")
        self._fields: FieldsMode = fields
        self._match_rules = bool(match_rules)
        self._require_rules = self._match_rules if require_rules is None else require_rules
        self._host = host
        self._port = port

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._state: Literal["new", "running", "stopped"] = "new"
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._conns: dict[int, tuple[threading.Thread, socket.socket]] = {}
        self._conn_numbers = itertools.count(1)
        self._address: tuple[str, int] | None = None

        self._script: deque[Attempt] = deque()
        self._records: list[RecordedRequest] = []
        self._stream_count = 0
        self._sent = 0
        self._unmatched = 0
        self._rules = RulesStore(rules)  # guarded by self._lock

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeStreamServer:
        """Bind, listen and start accepting connections. Returns ``self``."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"FakeStreamServer cannot start: it is {self._state}")
            self._state = "running"
        try:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.bind((self._host, self._port))
                listener.listen(128)
                listener.settimeout(0.1)
            except BaseException:
                listener.close()
                raise
        except BaseException:
            with self._lock:
                self._state = "stopped"
            self._cursor.close()
            raise
        self._listener = listener
        host, port = listener.getsockname()[:2]
        self._address = (str(host), int(port))
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"rxtweet-fake-server-{port}-accept", daemon=True
        )
        self._acceptor.start()
        logger.debug("fake stream server listening on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, shut down every open connection and join every thread.

        Idempotent; a server never started is just marked stopped. Threads still alive after
        ``timeout`` seconds are reported with ``logger.error``.
        """
        with self._lock:
            if self._state == "stopped":
                return
            was_running = self._state == "running"
            self._state = "stopped"
        self._stopping.set()
        if not was_running:
            self._cursor.close()
            return
        deadline = time.monotonic() + timeout
        listener = self._listener
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
        current = threading.current_thread()
        if self._acceptor is not None and self._acceptor is not current:
            self._acceptor.join(max(0.0, deadline - time.monotonic()))
        if listener is not None:
            listener.close()
        with self._lock:
            conns = list(self._conns.values())
            for _, sock in conns:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        stuck: list[str] = []
        for thread, _ in conns:
            if thread is current:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                stuck.append(thread.name)
        if self._acceptor is not None and self._acceptor.is_alive():
            stuck.append(self._acceptor.name)
        with self._lock:
            for _, sock in conns:
                sock.close()
            self._conns.clear()
            self._changed.notify_all()
        self._cursor.close()
        if stuck:
            logger.error("fake stream server: threads did not stop within %gs: %s", timeout, stuck)
        else:
            logger.debug("fake stream server on %s stopped", self.url)

    def __enter__(self) -> FakeStreamServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ public state

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (available once started)."""
        if self._address is None:
            raise RuntimeError("FakeStreamServer is not started")
        return f"http://{self._address[0]}:{self._address[1]}"

    @property
    def port(self) -> int:
        """The TCP port (available once started)."""
        if self._address is None:
            raise RuntimeError("FakeStreamServer is not started")
        return self._address[1]

    def script(self, *attempts: Attempt) -> None:
        """Queue per-connection-attempt behaviour (appended to the FIFO)."""
        for attempt in attempts:
            if not isinstance(attempt, Attempt):
                raise TypeError(f"expected Attempt, got {type(attempt).__name__}")
        with self._lock:
            self._script.extend(attempts)

    @property
    def scripted(self) -> tuple[Attempt, ...]:
        """The scripted attempts not consumed yet."""
        with self._lock:
            return tuple(self._script)

    def feed(self, *messages: Any) -> None:
        """Append messages to the source (after it is exhausted); held connections get them."""
        self._cursor.feed(messages)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._records)

    @property
    def stream_requests(self) -> list[RecordedRequest]:
        """The requests to stream paths (v2 and v1.1), in arrival order (a copy)."""
        with self._lock:
            return [r for r in self._records if _is_stream_path(r.path)]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` stream requests arrived; return the stream requests.

        Raises:
            TimeoutError: fewer than ``n`` arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._stream_count < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._state == "stopped":
                    raise TimeoutError(
                        f"{self._stream_count} of {n} stream requests arrived within {timeout}s"
                    )
                self._changed.wait(remaining)
            return [r for r in self._records if _is_stream_path(r.path)]

    @property
    def sent(self) -> int:
        """How many messages were completely written to a socket so far."""
        with self._lock:
            return self._sent

    @property
    def unmatched(self) -> int:
        """How many messages the filtered stream consumed without sending (no rule matched)."""
        with self._lock:
            return self._unmatched

    @property
    def rules(self) -> dict[str, dict[str, str]]:
        """The current filtered-stream rules: id -> ``{"id", "value", "tag"?}`` (a copy)."""
        with self._lock:
            return self._rules.snapshot()

    def __repr__(self) -> str:
        where = self.url if self._address else "unbound"
        return f"<FakeStreamServer {where} {self._state}>"

    # ------------------------------------------------------------------ accepting

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                sock, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                logger.warning("fake stream server: accept failed: %s", exc)
                self._stopping.wait(0.05)
                continue
            sock.settimeout(None)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping.is_set():
                    sock.close()
                    break
                for number in [n for n, (t, _) in self._conns.items() if not t.is_alive()]:
                    del self._conns[number]
                number = next(self._conn_numbers)
                thread = threading.Thread(
                    target=self._serve_connection,
                    args=(sock, number),
                    name=f"rxtweet-fake-server-{self.port}-conn-{number}",
                    daemon=True,
                )
                self._conns[number] = (thread, sock)
                thread.start()
            logger.debug("connection %d from %s:%s", number, peer[0], peer[1])

    def _close_socket(self, sock: socket.socket) -> None:
        with self._lock:  # never races stop()'s shutdown of the same descriptor
            sock.close()

    def _serve_connection(self, sock: socket.socket, number: int) -> None:
        conn = _Conn(sock, number)
        try:
            while not self._stopping.is_set():
                try:
                    request = read_request(conn)
                except _BadRequest as exc:
                    logger.debug("connection %d: bad request: %s", number, exc.message)
                    self._send_simple(
                        conn,
                        exc.status,
                        _invalid_request(exc.message),
                        _PROBLEM_JSON,
                        keep_alive=False,
                    )
                    _drain_and_close(sock)
                    break
                if request is None or not self._handle(conn, request):
                    break
        except (_ClientGone, OSError) as exc:
            logger.debug("connection %d ended: %r", number, exc)
        except Exception:
            logger.exception("fake stream server: connection %d failed", number)
        finally:
            self._close_socket(sock)

    # ------------------------------------------------------------------ requests

    def _record(self, conn: _Conn, request: _Request) -> int:
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=request.body,
            started_at=time.monotonic(),
            connection=conn.number,
        )
        with self._changed:
            self._records.append(record)
            if _is_stream_path(request.path):
                self._stream_count += 1
            self._changed.notify_all()
            return len(self._records) - 1

    def _update(self, index: int, **changes: Any) -> None:
        with self._lock:
            self._records[index] = replace(self._records[index], **changes)

    def _handle(self, conn: _Conn, request: _Request) -> bool:
        """Answer one request; return whether the connection may serve another."""
        index = self._record(conn, request)
        # Paths and query *names* only: values (and headers) may carry credentials.
        logger.debug(
            "connection %d: %s %s %s",
            conn.number,
            request.method,
            request.path,
            list(request.query),
        )
        try:
            return self._route(conn, request, index)
        finally:
            with self._lock:
                if self._records[index].ended_at is None:
                    self._records[index] = replace(self._records[index], ended_at=time.monotonic())

    def _route(self, conn: _Conn, request: _Request, index: int) -> bool:
        path = request.path
        if path.startswith("/2/") and self._bearer is not None and not self._bearer_ok(request):
            return self._answer(conn, request, index, 401)
        if path in V2_STREAM_PATHS:
            if request.method != "GET":
                return self._answer(conn, request, index, 405, allow="GET")
            with self._lock:
                scripted = self._script[0] if self._script else None
                no_rules = (
                    self._require_rules
                    and path == FILTERED_STREAM_PATH
                    and not self._rules
                    and (scripted is None or (scripted.status == 200 and scripted.body is None))
                )
            if no_rules:
                return self._answer(conn, request, index, 409)
            return self._serve_attempt(conn, request, index, v1=False)
        if path in V1_STREAM_PATHS:
            if request.method not in ("GET", "POST"):
                return self._answer(conn, request, index, 405, allow="GET, POST")
            if self._verify_v1 is not None:
                with self._lock:
                    snapshot = self._records[index]
                try:
                    verified = self._verify_v1(snapshot)
                except Exception:
                    logger.exception("fake stream server: verify_v1 raised")
                    return self._answer(conn, request, index, 500)
                if not verified:
                    return self._answer(conn, request, index, 401, v1=True)
            return self._serve_attempt(conn, request, index, v1=True)
        if path == RULES_PATH:
            if request.method == "GET":
                with self._lock:
                    status, doc = self._rules.get(request.query)
            elif request.method == "POST":
                with self._lock:
                    status, doc = self._rules.post(request.query, request.body)
            else:
                return self._answer(conn, request, index, 405, allow="GET, POST")
            ctype = _JSON if status < 400 else _PROBLEM_JSON
            return self._answer(conn, request, index, status, body=orjson.dumps(doc), ctype=ctype)
        return self._answer(conn, request, index, 404)

    def _bearer_ok(self, request: _Request) -> bool:
        expected = f"Bearer {self._bearer}".encode()
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(given, expected)

    def _answer(
        self,
        conn: _Conn,
        request: _Request,
        index: int,
        status: int,
        *,
        body: bytes | None = None,
        ctype: str | None = None,
        allow: str | None = None,
        v1: bool = False,
    ) -> bool:
        if body is None:
            body, ctype = default_error_body(status, v1=v1)
        headers = {"allow": allow} if allow else {}
        self._update(index, status=status)
        logger.debug("connection %d: -> %d", conn.number, status)
        return self._send_simple(
            conn, status, body, ctype or _JSON, keep_alive=request.keep_alive, extra=headers
        )

    def _send_simple(
        self,
        conn: _Conn,
        status: int,
        body: bytes,
        ctype: str,
        *,
        keep_alive: bool,
        extra: Mapping[str, str] | None = None,
    ) -> bool:
        headers = {
            "date": email.utils.formatdate(usegmt=True),
            "server": "rxtweet-fake",
            "content-type": ctype,
            "content-length": str(len(body)),
            "connection": "keep-alive" if keep_alive else "close",
        }
        _merge(headers, extra)
        conn.sock.sendall(_head(status, headers) + body)
        return keep_alive

    # ------------------------------------------------------------------ streams

    def _serve_attempt(self, conn: _Conn, request: _Request, index: int, *, v1: bool) -> bool:
        with self._lock:
            attempt = self._script.popleft() if self._script else self._default
            self._records[index] = replace(
                self._records[index], status=attempt.status, attempt=attempt
            )
        logger.debug("connection %d: %s -> %r", conn.number, request.path, attempt)
        if attempt.delay and not self._idle(conn, time.monotonic() + attempt.delay):
            return False
        if attempt.status != 200 or attempt.body is not None:
            if attempt.body is None:
                body, ctype = default_error_body(attempt.status, v1=v1)
            elif isinstance(attempt.body, Mapping):
                body, ctype = orjson.dumps(dict(attempt.body)), _JSON
            else:
                body = _encode(attempt.body)
                ctype = _JSON if body.lstrip()[:1] in (b"{", b"[") else "text/plain; charset=utf-8"
            extra: dict[str, str] = {}
            if attempt.status == 429:
                extra.update(_rate_limit_headers(remaining=48))
            _merge(extra, attempt.headers)
            return self._send_simple(
                conn, attempt.status, body, ctype, keep_alive=request.keep_alive, extra=extra
            )

        headers = {
            "date": email.utils.formatdate(usegmt=True),
            "server": "rxtweet-fake",
            "content-type": _JSON,
            "transfer-encoding": "chunked",
            "connection": "keep-alive" if request.keep_alive else "close",
        }
        if attempt.gzip:
            headers["content-encoding"] = "gzip"
        _merge(headers, attempt.headers)
        conn.sock.sendall(_head(200, headers))

        body_writer = _Body(conn.sock, attempt, self._count_sent, self._stopping)
        shaper = _Shaper(
            request.path,
            request.query,
            fields=self._fields if not v1 else "all",
            match_rules=self._match_rules and not v1,
            rules=self._current_rules,
            on_unmatched=self._count_unmatched,
        )
        try:
            outcome = self._stream(conn, body_writer, attempt, shaper)
        except BaseException:
            self._cursor.push_front(body_writer.unsent())
            raise
        self._cursor.push_front(body_writer.unsent())
        logger.debug("connection %d: stream %s", conn.number, outcome)
        if outcome == "cut":
            self._close_socket(conn.sock)
            self._update(index, ended_at=time.monotonic())
            return False
        return outcome == "done" and request.keep_alive

    def _count_sent(self, n: int) -> None:
        with self._lock:
            self._sent += n

    def _count_unmatched(self) -> None:
        with self._lock:
            self._unmatched += 1

    def _current_rules(self) -> list[_CompiledRule]:
        with self._lock:
            return self._rules.compiled()

    def _stream(self, conn: _Conn, body: _Body, attempt: Attempt, shaper: _Shaper) -> str:
        keepalive = (
            attempt.keepalive_interval
            if attempt.keepalive_interval is not None
            else self._keepalive_interval
        )
        interval = 1.0 / attempt.rate if attempt.rate else 0.0
        limit = attempt.messages
        count = 0
        skipped = 0
        next_due = time.monotonic()
        while limit is None or count < limit:
            if interval and time.monotonic() < next_due:
                body.pump()
                if not self._idle(conn, next_due, body, keepalive):
                    return "gone"
            message = self._cursor.take()
            if message is None:
                if attempt.ending != "hold":
                    break
                # Held: wait for messages fed later (or re-queued by a cut elsewhere).
                body.pump()
                if not self._idle(conn, time.monotonic() + _HOLD_POLL, body, keepalive):
                    return "gone"
                continue
            wire = shaper.shape(message) if shaper.active else message
            if wire is None:  # matched no rule: consumed, not sent
                skipped += 1
                if self._stopping.is_set():
                    raise _ClientGone
                # An endless source that never matches must not spin unnoticed: look
                # whether the client left (and keep the connection alive) now and then.
                if skipped % 1000 == 0 and not self._idle(
                    conn, time.monotonic() + 0.001, body, keepalive
                ):
                    return "gone"
                continue
            body.add(message, wire)
            count += 1
            if interval:
                next_due = max(next_due + interval, time.monotonic())
                body.pump()
            else:
                body.maybe_pump()
        body.pump()
        if attempt.ending == "close":
            body.finish()
            return "done"
        if attempt.ending == "cut":
            body.cut(
                self._cursor.peek_shaped(shaper.shape) if shaper.active else self._cursor.peek()
            )
            return "cut"
        self._idle(conn, math.inf, body if attempt.ending == "hold" else None, keepalive)
        return "gone"

    def _idle(
        self,
        conn: _Conn,
        until: float,
        body: _Body | None = None,
        keepalive: float | None = None,
    ) -> bool:
        """Wait until ``until`` (monotonic), sending keep-alives through ``body`` when due.

        Returns False when the client went away or the server is stopping.
        """
        sock = conn.sock
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= until:
                return True
            timeout = until - now
            if body is not None and keepalive is not None:
                due = body.last_write + keepalive
                if now >= due:
                    body.keepalive()
                    continue
                timeout = min(timeout, due - now)
            sock.settimeout(None if math.isinf(timeout) else timeout)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            finally:
                sock.settimeout(None)  # sends stay blocking: a slow reader is not "gone"
            if not data:
                return False
            # A client talking during a streaming response: ignore what it says.
        return False


def _is_stream_path(path: str) -> bool:
    return path in V2_STREAM_PATHS or path in V1_STREAM_PATHS
