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
import functools
import hmac
import itertools
import logging
import math
import select
import socket
import struct
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
from .activity import ActivitySubscriptionsStore
from .cursor import _Cursor, _encode, _PartitionView, _ShardedCursor
from .endpoints import (
    ENDPOINTS_BY_PATH,
    SERVED_ENDPOINTS,
    ServedEndpoint,
    check_stream_query,
    partition_of,
)
from .generate import (
    generate_activity_messages,
    generate_compliance_messages,
    generate_label_messages,
    generate_like_messages,
)
from .problems import _JSON, _PROBLEM_JSON, _invalid_request, default_error_body
from .rules import MAX_RULE_LENGTH as MAX_RULE_LENGTH
from .rules import RulesStore, _CompiledRule
from .rules import _compile_rule as _compile_rule
from .rules import _Tweet as _Tweet
from .shaping import FILTERED_STREAM_PATH, TWEET_STREAM_PATHS, _Shaper
from .timeline import (
    PublishedMessage,
    Timeline,
    _CutEnding,
    _OpenStream,
    _partition_filter,
    _Plan,
    _SourceTimeline,
    plan_request,
    run_stream,
)
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
    "PublishedMessage",
    "RecordedRequest",
    "Timeline",
    "default_error_body",
]

# MAX_RULE_LENGTH, _compile_rule and _Tweet are imported "as" themselves: this module was
# their home, and the tests (and older code) still import them from here.

logger = logging.getLogger(__name__)

#: v2 streaming paths the server answers with a scripted :class:`Attempt` (GET only): every
#: v2 stream X serves (see :mod:`rxtweet.testing.endpoints`).
V2_STREAM_PATHS = TWEET_STREAM_PATHS | frozenset(ENDPOINTS_BY_PATH)
#: v1.1 streaming paths (GET or POST with a form body).
V1_STREAM_PATHS = frozenset(
    {"/1.1/statuses/filter.json", "/1.1/statuses/sample.json", "/1.1/statuses/firehose.json"}
)
RULES_PATH = "/2/tweets/search/stream/rules"
ACTIVITY_SUBSCRIPTIONS_PATH = "/2/activity/subscriptions"

#: What an endpoint without a source of its own streams by default: realistic, endless.
_DEFAULT_SOURCES: dict[str, Callable[[], Iterable[Any]]] = {
    "compliance_tweets": lambda: generate_compliance_messages("tweets"),
    "compliance_users": lambda: generate_compliance_messages("users"),
    "compliance_likes": lambda: generate_compliance_messages("likes"),
    "likes_firehose": lambda: generate_like_messages(),
    "likes_sample10": lambda: generate_like_messages(seed=1),
    "labels": lambda: generate_label_messages(),
    "activity": lambda: generate_activity_messages(),
}
_ScriptKey = tuple[str | None, int | None]

_HOLD_POLL = 0.02  # how often a held connection with budget left looks for new messages
_CUT_ENDINGS = frozenset({"cut", "close", "reset", "stall"})


class FakeStreamServer:
    """A local imitation of X's streaming endpoints, over real HTTP/1.1 sockets.

    Args:
        messages: the message source of the Tweet streams (sample, filtered, sample10,
            firehose, language firehoses) and the v1.1 streams: a list or any iterable
            (possibly an infinite generator) of ``dict`` (compact JSON), ``str`` or ``bytes``
            (verbatim, so malformed lines can be sent); or a ``str``/path-like naming a JSONL
            file (each non-empty line is a message, its own line ending stripped).
            Generators are pulled lazily under a lock and must not block indefinitely.
        endpoint_messages: a message source per v2 stream, keyed by endpoint name
            (``"compliance_tweets"``, ``"likes_firehose"``, ``"labels"``, ``"activity"``,
            ``"firehose"`` ...; see :data:`rxtweet.testing.endpoints.SERVED_ENDPOINTS`) or
            by path. A Tweet stream not listed reads ``messages``; any other stream not
            listed streams endless realistic messages from
            :func:`~rxtweet.testing.generate_compliance_messages`,
            :func:`~rxtweet.testing.generate_like_messages`,
            :func:`~rxtweet.testing.generate_label_messages` or
            :func:`~rxtweet.testing.generate_activity_messages` (seed 0).
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
        timeline: a :class:`~rxtweet.testing.Timeline` switches the server to timeline mode
            (X's model: messages published on a server clock whether anyone is connected,
            live connections, ``backfill_minutes`` and ``start_time``/``end_time`` replays
            with duplicates, redundant connections up to a limit); see "Timeline mode"
            below. ``None`` (default): the exactly-once cursor described above.
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

    Partitions (``sample10``, ``firehose``, the language firehoses, the post and user
    compliance streams, the likes firehose and sample10) are answered as X answers them: a
    request without ``partition``, or with one outside the endpoint's range, gets 400 with
    X's ``invalid-request`` problem naming the parameter (so does a ``backfill_minutes``
    outside 0-5, a malformed ``start_time``/``end_time``, or a parameter the endpoint does
    not take). Each partition is a disjoint shard of the endpoint's message set: the k-th
    message the endpoint takes from its source (k = 0, 1, ...) belongs to partition
    ``k % N + 1``, so the union of partitions 1..N is the whole set, each message in exactly
    one partition. Each partition has its own exactly-once cursor: a message a cut
    connection did not finish is sent again, whole, by the next connection to THE SAME
    partition. ``script(..., partition=3)`` scripts the connections to partition 3 only.

    Timeline mode (``timeline=Timeline(rate=..., time_scale=..., start=...)``; the details are
    in :mod:`rxtweet.testing.timeline`): :meth:`now` is the server clock (give it to the client
    as ``clock=server.now``); the k-th message of a source is published at
    ``start + k / rate`` server seconds, Tweets with a Snowflake id of that time; a request
    without recovery parameters gets what is published after it arrived, ``backfill_minutes``
    first replays the last N minutes (duplicates included), ``start_time``/``end_time``
    streams that window and then ends the response cleanly. :meth:`published` and
    :meth:`timeline_messages` show the timeline; :meth:`cut` ends open responses now;
    :meth:`open_streams` lists them; each stream's :class:`RecordedRequest` has ``kind``,
    ``server_time`` and ``sent``. Scripts work as in cursor mode (``Attempt.messages`` and
    ``Attempt.duration`` bound what a connection sends before its ending).

    Besides streams, the server answers the rules endpoint ``/2/tweets/search/stream/rules``
    (GET with optional ``ids``; POST ``add``/``delete``, ``dry_run``, ``delete_all``) from an
    in-memory rule set, the activity subscriptions endpoint ``/2/activity/subscriptions``
    (GET, POST; PUT and DELETE on ``/:id``; see :mod:`rxtweet.testing.activity`), and
    404/405/400 problems for anything else.
    """

    def __init__(
        self,
        messages: MessageSource = (),
        *,
        endpoint_messages: Mapping[str, MessageSource] | None = None,
        bearer_token: str | None = None,
        keepalive_interval: float | None = 20.0,
        default: Attempt | None = None,
        verify_v1: Callable[[RecordedRequest], bool] | None = None,
        fields: FieldsMode = "requested",
        match_rules: bool = True,
        require_rules: bool | None = None,
        rules: Iterable[Mapping[str, Any]] | None = None,
        timeline: Timeline | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if timeline is not None and not isinstance(timeline, Timeline):
            raise TypeError("timeline must be a Timeline")
        if keepalive_interval is not None and not keepalive_interval > 0:
            raise ValueError("keepalive_interval must be > 0 or None")
        if default is not None and not isinstance(default, Attempt):
            raise TypeError("default must be an Attempt")
        sources: dict[str, MessageSource] = {}
        for key, source in (endpoint_messages or {}).items():
            served = SERVED_ENDPOINTS.get(key) or ENDPOINTS_BY_PATH.get(key)
            if served is None:
                raise ValueError(
                    f"endpoint_messages: unknown endpoint {key!r}; "
                    f"expected one of {sorted(SERVED_ENDPOINTS)} or its path"
                )
            if served.name in sources:
                raise ValueError(f"endpoint_messages: {served.name!r} is given twice")
            sources[served.name] = source
        self._cursor = _Cursor(messages)
        # Every endpoint's base cursor: its own source, else `messages` (Tweet streams) or
        # its realistic default. Generators are lazy, so building them all costs nothing.
        self._cursors: dict[str, _Cursor] = {}
        for name, served in SERVED_ENDPOINTS.items():
            if name in sources:
                self._cursors[name] = _Cursor(sources[name])
            elif served.kind == "tweets":
                self._cursors[name] = self._cursor
            else:
                self._cursors[name] = _Cursor(_DEFAULT_SOURCES[name]())
        self._sharded: dict[str, _ShardedCursor] = {
            name: _ShardedCursor(self._cursors[name], served.partitions)
            for name, served in SERVED_ENDPOINTS.items()
            if served.partitions is not None
        }
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
        self._keyed_scripts: dict[_ScriptKey, deque[Attempt]] = {}
        self._records: list[RecordedRequest] = []
        self._stream_count = 0
        self._sent = 0
        self._sent_by_partition: dict[tuple[str, int], int] = {}
        self._unmatched = 0
        self._rules = RulesStore(rules)  # guarded by self._lock
        self._subscriptions = ActivitySubscriptionsStore()  # guarded by self._lock

        self._timeline = timeline
        self._t0: float | None = None  # monotonic time of start(), timeline mode
        self._epoch = 0.0  # server time at _t0
        self._timelines: dict[str | None, _SourceTimeline] = {}  # by endpoint; None: v1.1
        self._open: dict[int, _OpenStream] = {}  # by record index; guarded by self._lock

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
            self._close_cursors()
            raise
        self._listener = listener
        if self._timeline is not None:
            self._start_timelines(self._timeline)
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
            self._close_cursors()
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
        self._close_cursors()
        if stuck:
            logger.error("fake stream server: threads did not stop within %gs: %s", timeout, stuck)
        else:
            logger.debug("fake stream server on %s stopped", self.url)

    def _start_timelines(self, config: Timeline) -> None:
        self._epoch = config.start if config.start is not None else time.time()
        self._t0 = time.monotonic()
        by_source: dict[int, _SourceTimeline] = {}

        def timeline_of(cursor: _Cursor, name: str, tweets: bool) -> _SourceTimeline:
            found = by_source.get(id(cursor))
            if found is None:
                found = _SourceTimeline(cursor, config, self._epoch, tweets=tweets, name=name)
                by_source[id(cursor)] = found
            return found

        self._timelines[None] = timeline_of(self._cursor, "messages", True)
        for name, served in SERVED_ENDPOINTS.items():
            self._timelines[name] = timeline_of(
                self._cursors[name], name, tweets=served.kind == "tweets"
            )

    def _close_cursors(self) -> None:
        self._cursor.close()
        for cursor in self._cursors.values():
            if cursor is not self._cursor:
                cursor.close()

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

    def script(
        self, *attempts: Attempt, endpoint: str | None = None, partition: int | None = None
    ) -> None:
        """Queue per-connection-attempt behaviour (appended to a FIFO).

        Without ``endpoint`` and ``partition`` the attempts go to the shared FIFO that every
        stream connection draws from. With them, only connections to that endpoint (a name
        such as ``"firehose"``, or a path) and/or that partition take them: a stream request
        takes the next attempt of its (endpoint, partition) queue, else of its partition's,
        else of its endpoint's, else of the shared FIFO, else ``default``. So
        ``server.script(Attempt(messages=5, ending="cut"), partition=3)`` cuts partition 3
        once and leaves the others alone.
        """
        for attempt in attempts:
            if not isinstance(attempt, Attempt):
                raise TypeError(f"expected Attempt, got {type(attempt).__name__}")
        name: str | None = None
        if endpoint is not None:
            served = SERVED_ENDPOINTS.get(endpoint) or ENDPOINTS_BY_PATH.get(endpoint)
            if served is None:
                raise ValueError(f"unknown endpoint {endpoint!r}")
            name = served.name
            if partition is not None and (
                served.partitions is None or not 1 <= partition <= served.partitions
            ):
                raise ValueError(f"{name} has no partition {partition}")
        if partition is not None and (isinstance(partition, bool) or partition < 1):
            raise ValueError(f"partition must be a whole number >= 1, not {partition!r}")
        with self._lock:
            if name is None and partition is None:
                self._script.extend(attempts)
            else:
                self._keyed_scripts.setdefault((name, partition), deque()).extend(attempts)

    @property
    def scripted(self) -> tuple[Attempt, ...]:
        """The attempts of the shared FIFO not consumed yet (see :meth:`script`)."""
        with self._lock:
            return tuple(self._script)

    def _script_queues(self, endpoint: str | None, partition: int | None) -> list[deque[Attempt]]:
        """The queues a request to ``endpoint``/``partition`` draws from, in order."""
        queues = []
        for key in ((endpoint, partition), (None, partition), (endpoint, None)):
            if key != (None, None):
                queue = self._keyed_scripts.get(key)
                if queue:
                    queues.append(queue)
        queues.append(self._script)
        return queues

    def _next_attempt(
        self, endpoint: str | None, partition: int | None, *, consume: bool
    ) -> Attempt | None:
        """The next scripted attempt for a request (``None``: the default). Under the lock."""
        for queue in self._script_queues(endpoint, partition):
            if queue:
                return queue.popleft() if consume else queue[0]
        return None

    def feed(self, *messages: Any, endpoint: str | None = None) -> None:
        """Append messages to a source (after it is exhausted); held connections get them.

        Without ``endpoint``: to ``messages`` (the Tweet and v1.1 streams). With one (a name
        or path): to that endpoint's source.
        """
        if endpoint is None:
            self._cursor.feed(messages)
            return
        served = SERVED_ENDPOINTS.get(endpoint) or ENDPOINTS_BY_PATH.get(endpoint)
        if served is None:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        self._cursors[served.name].feed(messages)

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
        """How many messages were completely written to a socket so far.

        A message is counted as its last byte is handed to the socket (and uncounted if that
        write fails), so a client that has read a message always finds it counted here.
        """
        with self._lock:
            return self._sent

    @property
    def sent_by_partition(self) -> dict[tuple[str, int], int]:
        """Messages completely written per ``(endpoint name, partition)`` so far (a copy).

        Counted as :attr:`sent` is: a message a client has read is already in these counts.
        """
        with self._lock:
            return dict(self._sent_by_partition)

    @property
    def activity_subscriptions(self) -> dict[str, dict[str, Any]]:
        """The current activity subscriptions: id -> subscription document (a copy)."""
        with self._lock:
            return self._subscriptions.snapshot()

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

    # ------------------------------------------------------------------ timeline mode

    def now(self) -> float:
        """The server time, epoch seconds: ``start + monotonic elapsed * time_scale``.

        Thread-safe; meant as the client's ``clock`` (``clock=server.now``).

        Raises:
            RuntimeError: not in timeline mode, or the server was never started.
        """
        config = self._timeline
        if config is None:
            raise RuntimeError("now() needs timeline mode: FakeStreamServer(timeline=Timeline())")
        if self._t0 is None:
            raise RuntimeError("FakeStreamServer is not started: its clock has not begun")
        return self._epoch + (time.monotonic() - self._t0) * config.time_scale

    def _timeline_for(
        self, endpoint: str, partition: int | None
    ) -> tuple[_SourceTimeline, Callable[[int], bool]]:
        if self._timeline is None:
            raise RuntimeError("not in timeline mode: FakeStreamServer(timeline=Timeline())")
        served = SERVED_ENDPOINTS.get(endpoint) or ENDPOINTS_BY_PATH.get(endpoint)
        if served is None:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if partition is not None and (
            served.partitions is None or not 1 <= partition <= served.partitions
        ):
            raise ValueError(f"{served.name} has no partition {partition}")
        timeline = self._timelines[served.name]
        timeline.advance(self.now())
        return timeline, _partition_filter(served, partition)

    def timeline_messages(
        self, endpoint: str = "sample", partition: int | None = None
    ) -> list[PublishedMessage]:
        """The retained messages of ``endpoint`` (name or path) published so far, in order.

        With ``partition``, that partition's only (``seq % N + 1 == partition``); without, all
        of them. These are the messages as published (before field trimming and rule
        matching: on the filtered stream, a connection is sent only those matching a rule).
        Messages older than the retention are not listed (see :class:`Timeline`).

        Raises:
            RuntimeError: not in timeline mode or not started.
            ValueError: unknown endpoint, or a partition it does not have.
        """
        timeline, accept = self._timeline_for(endpoint, partition)
        return [m for m in timeline.snapshot() if accept(m.seq)]

    def published(self, endpoint: str = "sample", partition: int | None = None) -> list[str]:
        """The ids of :meth:`timeline_messages` (see :attr:`PublishedMessage.id`), in order."""
        return [m.id for m in self.timeline_messages(endpoint, partition)]

    def open_streams(
        self, endpoint: str | None = None, partition: int | None = None
    ) -> list[RecordedRequest]:
        """The stream responses in progress (timeline mode), optionally of one endpoint/partition.

        A response whose client has just gone may still be listed until its thread notices.
        """
        name = self._endpoint_name(endpoint)
        with self._lock:
            return [
                self._records[index]
                for index, stream in sorted(self._open.items())
                if (name is None or stream.endpoint == name)
                and (partition is None or stream.partition == partition)
            ]

    def cut(
        self,
        endpoint: str | None = None,
        partition: int | None = None,
        *,
        connection: int | None = None,
        ending: _CutEnding = "reset",
        timeout: float = 2.0,
    ) -> int:
        """End the matching stream responses in progress now (timeline mode).

        Matches open responses of ``endpoint`` (name or path), ``partition`` and TCP
        ``connection`` number (:attr:`RecordedRequest.connection`); ``None`` matches any.
        ``ending``: ``"reset"`` (TCP RST), ``"cut"`` (half of the next message, then FIN),
        ``"close"`` (a clean end of the response) or ``"stall"`` (silence from now on,
        socket open: the client's read timeout has to notice). The timeline goes on.
        Blocks until each matching response applied it (at most ``timeout`` seconds).
        Returns how many responses were asked to end.

        Raises:
            RuntimeError: not in timeline mode.
            ValueError: unknown endpoint or ending.
        """
        if self._timeline is None:
            raise RuntimeError("cut() needs timeline mode: FakeStreamServer(timeline=Timeline())")
        if ending not in _CUT_ENDINGS:
            raise ValueError(f"ending must be one of {sorted(_CUT_ENDINGS)}, not {ending!r}")
        name = self._endpoint_name(endpoint)
        with self._lock:
            targets = [
                stream
                for stream in self._open.values()
                if (name is None or stream.endpoint == name)
                and (partition is None or stream.partition == partition)
                and (connection is None or stream.connection == connection)
            ]
        for stream in targets:
            stream.request_cut(ending)
        deadline = time.monotonic() + timeout
        for stream in targets:
            if not stream.applied.wait(max(0.0, deadline - time.monotonic())):
                logger.warning("cut(): connection %d did not end in time", stream.connection)
        return len(targets)

    @staticmethod
    def _endpoint_name(endpoint: str | None) -> str | None:
        if endpoint is None:
            return None
        served = SERVED_ENDPOINTS.get(endpoint) or ENDPOINTS_BY_PATH.get(endpoint)
        if served is None:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        return served.name

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
        # Endpoint and partition are known from the request line: recorded with it, so that
        # a test reading stream_requests never sees a stream request without them.
        served = ENDPOINTS_BY_PATH.get(request.path)
        record = RecordedRequest(
            endpoint=served.name if served is not None else None,
            partition=partition_of(served, request.query) if served is not None else None,
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
            served = ENDPOINTS_BY_PATH[path]
            if request.method != "GET":
                return self._answer(conn, request, index, 405, allow="GET")
            problem = check_stream_query(served, request.query)
            if problem is not None:
                message, parameters = problem
                body = _invalid_request(message, parameters)
                return self._answer(conn, request, index, 400, body=body, ctype=_PROBLEM_JSON)
            partition = partition_of(served, request.query)
            self._update(index, endpoint=served.name, partition=partition)
            with self._lock:
                scripted = self._next_attempt(served.name, partition, consume=False)
                no_rules = (
                    self._require_rules
                    and path == FILTERED_STREAM_PATH
                    and not self._rules
                    and (scripted is None or (scripted.status == 200 and scripted.body is None))
                )
            if no_rules:
                return self._answer(conn, request, index, 409)
            if self._timeline is not None:
                return self._serve_timeline(conn, request, index, self._timeline, served, partition)
            return self._serve_attempt(
                conn, request, index, v1=False, served=served, partition=partition
            )
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
            if self._timeline is not None:
                return self._serve_timeline(conn, request, index, self._timeline, None, None)
            return self._serve_attempt(conn, request, index, v1=True, served=None, partition=None)
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
        if path == ACTIVITY_SUBSCRIPTIONS_PATH or path.startswith(
            ACTIVITY_SUBSCRIPTIONS_PATH + "/"
        ):
            return self._activity_subscriptions(conn, request, index)
        return self._answer(conn, request, index, 404)

    def _activity_subscriptions(self, conn: _Conn, request: _Request, index: int) -> bool:
        sub_id = request.path[len(ACTIVITY_SUBSCRIPTIONS_PATH) + 1 :]
        if "/" in sub_id:
            return self._answer(conn, request, index, 404)
        if not sub_id:
            if request.method not in ("GET", "POST"):
                return self._answer(conn, request, index, 405, allow="GET, POST")
            with self._lock:
                if request.method == "GET":
                    status, doc = self._subscriptions.get()
                else:
                    status, doc = self._subscriptions.create(request.body)
        else:
            if request.method not in ("PUT", "DELETE"):
                return self._answer(conn, request, index, 405, allow="PUT, DELETE")
            with self._lock:
                if request.method == "PUT":
                    status, doc = self._subscriptions.update(sub_id, request.body)
                else:
                    status, doc = self._subscriptions.delete(sub_id)
        ctype = _JSON if status < 400 else _PROBLEM_JSON
        return self._answer(conn, request, index, status, body=orjson.dumps(doc), ctype=ctype)

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

    def _serve_timeline(
        self,
        conn: _Conn,
        request: _Request,
        index: int,
        config: Timeline,
        served: ServedEndpoint | None,
        partition: int | None,
    ) -> bool:
        """A stream request in timeline mode: recovery parameters, the connection limit."""
        now = self.now()
        plan = (
            plan_request(config, request.query, now) if served is not None else _Plan("live", now)
        )
        if not isinstance(plan, _Plan):
            message, parameters = plan
            body = _invalid_request(message, parameters)
            return self._answer(conn, request, index, 400, body=body, ctype=_PROBLEM_JSON)
        name = served.name if served is not None else None
        self._update(index, server_time=now, kind=plan.kind)
        window = plan.kind == "window"
        limit = config.max_recoveries if window else config.max_connections
        with self._lock:
            # A connection whose client already left (FIN/RST queued) is not counted, even
            # if its thread has not noticed yet: a client reconnecting at once is not refused.
            busy = sum(
                1
                for stream in self._open.values()
                if stream.endpoint == name
                and stream.partition == partition
                and (stream.kind == "window") == window
                and _peer_open(stream.sock)
            )
            stream: _OpenStream | None = None
            if served is None or busy < limit:
                stream = _OpenStream(index, conn.number, name, partition, plan.kind, conn.sock)
                self._open[index] = stream
        if stream is None:
            logger.debug(
                "connection %d: %d open on %s/%s -> 429", conn.number, busy, name, partition
            )
            body, ctype = default_error_body(429)
            self._update(index, status=429)
            return self._send_simple(
                conn,
                429,
                body,
                ctype,
                keep_alive=request.keep_alive,
                extra=_rate_limit_headers(remaining=48),
            )
        try:
            return self._serve_attempt(
                conn,
                request,
                index,
                v1=served is None,
                served=served,
                partition=partition,
                timeline=(plan, stream),
            )
        finally:
            self._unregister(index)
            stream.applied.set()

    def _unregister(self, index: int) -> None:
        with self._lock:
            self._open.pop(index, None)

    def _serve_attempt(
        self,
        conn: _Conn,
        request: _Request,
        index: int,
        *,
        v1: bool,
        served: ServedEndpoint | None,
        partition: int | None,
        timeline: tuple[_Plan, _OpenStream] | None = None,
    ) -> bool:
        name = served.name if served is not None else None
        with self._lock:
            attempt = self._next_attempt(name, partition, consume=True) or self._default
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

        shaper = _Shaper(
            request.path,
            request.query,
            fields=self._fields if not v1 else "all",
            match_rules=self._match_rules and not v1,
            rules=self._current_rules,
            on_unmatched=self._count_unmatched,
        )
        if timeline is not None:
            return self._timeline_body(
                conn, request, index, attempt, shaper, served, partition, *timeline
            )
        cursor: _Cursor | _PartitionView
        on_sent: Callable[[int], None] = self._count_sent
        if name is None:
            cursor = self._cursor
        elif partition is None:
            cursor = self._cursors[name]
        else:
            cursor = self._sharded[name].view(partition)
            on_sent = functools.partial(self._count_partition_sent, (name, partition))
        body_writer = _Body(conn.sock, attempt, on_sent, self._stopping)
        try:
            outcome = self._stream(conn, body_writer, attempt, shaper, cursor)
        except BaseException:
            cursor.push_front(body_writer.unsent())
            raise
        cursor.push_front(body_writer.unsent())
        logger.debug("connection %d: stream %s", conn.number, outcome)
        return self._after_stream(conn, request, index, outcome)

    def _after_stream(self, conn: _Conn, request: _Request, index: int, outcome: str) -> bool:
        if outcome in ("cut", "reset"):
            if outcome == "reset":
                # SO_LINGER 0: close() sends RST instead of FIN.
                with contextlib.suppress(OSError):
                    conn.sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
            self._close_socket(conn.sock)
            self._update(index, ended_at=time.monotonic())
            return False
        return outcome == "done" and request.keep_alive

    def _timeline_body(
        self,
        conn: _Conn,
        request: _Request,
        index: int,
        attempt: Attempt,
        shaper: _Shaper,
        served: ServedEndpoint | None,
        partition: int | None,
        plan: _Plan,
        stream: _OpenStream,
    ) -> bool:
        config = self._timeline
        assert config is not None
        name = served.name if served is not None else None
        keepalive = (
            attempt.keepalive_interval
            if attempt.keepalive_interval is not None
            else self._keepalive_interval
        )
        key = (name, partition) if name is not None and partition is not None else None
        body = _Body(
            conn.sock,
            attempt,
            functools.partial(self._count_stream_sent, index, key),
            self._stopping,
        )

        def idle(until: float, writer: _Body | None) -> bool:
            return self._idle(conn, until, writer, keepalive if writer is not None else None)

        outcome = run_stream(
            timeline=self._timelines[name],
            plan=plan,
            accept=_partition_filter(served, partition),
            body=body,
            shaper=shaper,
            attempt=attempt,
            ctl=stream,
            clock=self.now,
            time_scale=config.time_scale,
            idle=idle,
            unregister=functools.partial(self._unregister, index),
        )
        logger.debug("connection %d: %s stream %s", conn.number, plan.kind, outcome)
        return self._after_stream(conn, request, index, outcome)

    def _count_stream_sent(self, index: int, key: tuple[str, int] | None, n: int) -> None:
        with self._lock:
            self._sent += n
            if key is not None:
                self._sent_by_partition[key] = self._sent_by_partition.get(key, 0) + n
            record = self._records[index]
            self._records[index] = replace(record, sent=record.sent + n)

    def _count_sent(self, n: int) -> None:
        with self._lock:
            self._sent += n

    def _count_partition_sent(self, key: tuple[str, int], n: int) -> None:
        with self._lock:
            self._sent += n
            self._sent_by_partition[key] = self._sent_by_partition.get(key, 0) + n

    def _count_unmatched(self) -> None:
        with self._lock:
            self._unmatched += 1

    def _current_rules(self) -> list[_CompiledRule]:
        with self._lock:
            return self._rules.compiled()

    def _stream(
        self,
        conn: _Conn,
        body: _Body,
        attempt: Attempt,
        shaper: _Shaper,
        cursor: _Cursor | _PartitionView,
    ) -> str:
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
        deadline = next_due + attempt.duration if attempt.duration is not None else math.inf
        while (limit is None or count < limit) and time.monotonic() < deadline:
            if interval and time.monotonic() < next_due:
                body.pump()
                if not self._idle(conn, min(next_due, deadline), body, keepalive):
                    return "gone"
                continue
            message = cursor.take()
            if message is None:
                if attempt.ending != "hold":
                    break
                # Held: wait for messages fed later (or re-queued by a cut elsewhere).
                body.pump()
                wake = min(time.monotonic() + _HOLD_POLL, deadline)
                if not self._idle(conn, wake, body, keepalive):
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
                # From this message's take, not on a fixed schedule: on a busy machine a late
                # message was followed by the next at once, and a generator's clock stamped
                # both in the same millisecond (seen at rate=50 under load).
                next_due = time.monotonic() + interval
                body.pump()
            else:
                body.maybe_pump()
        body.pump()
        if attempt.ending == "close":
            body.finish()
            return "done"
        if attempt.ending == "cut":
            body.cut(cursor.peek_shaped(shaper.shape) if shaper.active else cursor.peek())
            return "cut"
        if attempt.ending == "reset":
            return "reset"
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


def _peer_open(sock: socket.socket) -> bool:
    """Whether the client of ``sock`` may still be there (no FIN or RST received yet).

    Never blocks (another thread owns the socket): a socket with nothing to read is open.
    """
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return True
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return True
    except (OSError, ValueError):
        return False


def _is_stream_path(path: str) -> bool:
    return path in V2_STREAM_PATHS or path in V1_STREAM_PATHS
