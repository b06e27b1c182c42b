"""``rxtweet sample``, ``rxtweet filter`` and ``rxtweet record``: a live stream into a file.

``sample``/``filter`` write JSONL: each message exactly as X sent it (its bytes, without the
``\\r\\n`` terminator, followed by ``\\n``). Keep-alives are counted, not written; a line
that is not a JSON object is reported on stderr and skipped, so the file stays valid JSONL.

With ``--metadata``, each line written by ``sample``/``filter`` gets twarc2's ``"__twarc"``
key (:func:`with_metadata`), so twarc's tools read the file as one of theirs.

``record`` writes what arrived, with the time it arrived, for ``rxtweet serve`` to replay
(see :mod:`rxtweet.cli.recording` for the format). ``--log FILE`` (all three) also logs to a
file, see :mod:`rxtweet.cli.logfile`.

While it runs, a one-line progress display (messages, rate, lag, reconnects, drops) is
redrawn on stderr when stderr is a terminal (lag: the median, over the last redraw, of
receive time minus each tweet id's Snowflake creation time); when it is not (a log file,
a service manager), a status line (messages, keep-alives, time since the last message)
is printed every ``--status-interval`` seconds instead. Reconnects and dropped lines are
always reported on stderr (one line each) unless ``--quiet``. ``filter`` (API v2) first
lists the active rules.

The output file only ever holds whole lines: lines are written in blocks, and when a write
fails (a full disk, a file size limit) the file is cut back to its last complete line, and
the summary counts only the messages that reached it. A file given to ``-o`` that ends in
a partial line (from a crash) is repaired before anything is appended: a complete JSON
line that only lacks its newline gets one; a fragment is removed, with a WARNING.

``--metrics-port N`` (every stream command) serves the stream's Prometheus metrics at
``http://127.0.0.1:N/metrics`` while it runs (:func:`rxtweet.metrics.serve_prometheus`;
needs ``pip install rxtweet[metrics]``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import urlencode

import orjson
from reactivex import Observable

from .._version import __version__
from ..events import Connected, KeepAlive, MalformedMessage, Reconnecting
from ..http import StreamRequest, redact_url
from ..metrics.stream import lag_of, percentile
from ..parse import Parsed
from ..v1 import Status, Stream
from ..v1 import client as v1_client
from ..v2 import StreamingClient
from ..v2 import client as v2_client
from ..v2 import params as v2_params
from .common import (
    CliError,
    ExitCode,
    Redactor,
    bearer_token,
    describe_cause,
    error_for,
    non_negative_float,
    non_negative_int,
    oauth1_credentials,
    port,
    positive_float,
    positive_int,
    silence_stdout,
)
from .console import Console, printable
from .recording import RecordWriter

if TYPE_CHECKING:
    from ..metrics.prometheus import MetricsServer
from .spec import Command

__all__ = [
    "FILTER",
    "RECORD",
    "SAMPLE",
    "Opened",
    "add_connection_arguments",
    "add_output_arguments",
    "add_stream_arguments",
    "connection_options",
    "format_partitions",
    "run_filter",
    "run_record",
    "run_sample",
    "with_metadata",
    "write_stream",
]

log = logging.getLogger(__name__)

_TICK = 0.25
_RATE_WINDOW = 10.0
#: Lines are written in blocks of about this size (and at least every tick).
_BLOCK = 64 * 1024
DEFAULT_STATUS_INTERVAL = 60.0


# --- arguments ------------------------------------------------------------------------------


def add_stream_arguments(parser: argparse.ArgumentParser, *, filtered: bool | None) -> None:
    """The options of ``sample`` (``filtered=False``), ``filter`` (True) and ``record`` (None)."""
    add_output_arguments(parser, metadata=filtered is not None)
    v2 = parser.add_argument_group("API v2 (default)")
    for attr, query in v2_params.FIELD_PARAMS.items():
        v2.add_argument(_flag(attr), metavar="LIST", help=f"comma-separated {query}")
    v2.add_argument(
        "--allow-unknown-fields",
        action="store_true",
        help="send field and expansion names rxtweet does not know (X added them recently) "
        "with a warning, instead of refusing them",
    )
    v2.add_argument(
        "--backfill-minutes",
        type=_backfill_minutes,
        metavar="N",
        help="recover up to N (0-5) minutes of missed tweets (Enterprise access)",
    )
    v1 = parser.add_argument_group("API v1.1")
    v1.add_argument(
        "--v1",
        action="store_true",
        help="use the v1.1 statuses/sample.json or statuses/filter.json (OAuth 1.0a)",
    )
    if filtered is not False:
        v1.add_argument("--track", metavar="LIST", help="comma-separated phrases (v1.1 filter)")
        v1.add_argument("--follow", metavar="IDS", help="comma-separated user ids (v1.1 filter)")
        v1.add_argument(
            "--locations",
            metavar="BOXES",
            help="comma-separated bounding boxes, 4 numbers each: "
            "SW longitude,SW latitude,NE longitude,NE latitude (v1.1 filter)",
        )
    v1.add_argument("--languages", metavar="LIST", help="comma-separated BCP 47 codes (v1.1)")
    add_connection_arguments(parser, v1=True)


def add_output_arguments(
    parser: argparse.ArgumentParser, *, metadata: bool, counted: str = "tweets"
) -> None:
    """``-o``, ``--limit`` (after N ``counted``), ``-q``, ``--status-interval``, ``--log``,
    ``--metrics-port``, and ``--metadata`` when ``metadata``: the output options every
    stream command takes."""
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default="-",
        help="append to FILE (default: stdout)",
    )
    out.add_argument("--limit", type=positive_int, metavar="N", help=f"stop after N {counted}")
    out.add_argument(
        "-q", "--quiet", action="store_true", help="no notices or summary on stderr, only errors"
    )
    out.add_argument(
        "--status-interval",
        type=non_negative_float,
        metavar="S",
        default=DEFAULT_STATUS_INTERVAL,
        help="when stderr is not a terminal, print a status line every S seconds "
        f"(default: {DEFAULT_STATUS_INTERVAL:g}; 0: never)",
    )
    if metadata:
        out.add_argument(
            "--metadata",
            action="store_true",
            help='add twarc\'s "__twarc" key to each line: {"url", "version", "retrieved_at"} '
            "(for twarc-csv and other twarc tools)",
        )
    out.add_argument(
        "--log",
        metavar="FILE",
        help="also log to FILE (INFO, DEBUG with -v; UTC times; secrets redacted); safe to "
        "rotate with logrotate",
    )
    out.add_argument(
        "--metrics-port",
        type=port,
        metavar="N",
        help="serve Prometheus metrics at http://127.0.0.1:N/metrics while streaming "
        "(0: a free port, printed; needs: pip install rxtweet[metrics])",
    )
    from .consume import add_to_argument  # here: consume imports this module

    add_to_argument(parser)


def add_connection_arguments(parser: argparse.ArgumentParser, *, v1: bool = False) -> None:
    """``--stall-timeout`` and ``--max-retries`` (each partition's connection, for a
    partitioned stream)."""
    conn = parser.add_argument_group("connection")
    default = f"{v2_client.DEFAULT_STALL_TIMEOUT:g}"
    if v1:
        default += f" for v2, {v1_client.DEFAULT_STALL_TIMEOUT:g} for v1.1"
    conn.add_argument(
        "--stall-timeout",
        type=positive_float,
        metavar="S",
        help=f"reconnect after S seconds without data (default: {default})",
    )
    conn.add_argument(
        "--max-retries",
        type=non_negative_int,
        metavar="N",
        help="give up after N reconnects in a row without data (default: never)",
    )


def _flag(attr: str) -> str:
    """``tweet_fields`` -> ``--tweet-fields``."""
    return "--" + attr.replace("_", "-")


def _backfill_minutes(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 5:
        raise argparse.ArgumentTypeError(f"must be from 0 to 5 (X's limit), not {value}")
    return value


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


# --- opening the stream ---------------------------------------------------------------------


class Opened:
    """What a command needs from a v2 or v1.1 stream: its items, which messages count for
    ``--limit`` (tweets, or the events of a compliance, likes, label or activity stream) and
    their name in the notices, its request (for ``--metadata``) and its endpoint (the
    request's path under the base URL, for the recording header and the notices; for a
    partitioned stream, the partitions follow it). ``stream`` is the stream object, for
    ``--metrics-port`` (``None``: no metrics can be served)."""

    def __init__(
        self,
        items: Observable[Any],
        is_tweet: Callable[[Any], bool],
        request: StreamRequest,
        base_url: str,
        *,
        noun: str = "tweets",
        partitions: tuple[int, ...] = (),
        stream: Any = None,
    ) -> None:
        self.items = items
        self.stream = stream
        self.is_tweet = is_tweet
        self.request = request
        self.noun = noun
        self.endpoint = request.url.removeprefix(base_url)
        if partitions:
            self.endpoint += f" (partitions {format_partitions(partitions)})"


def format_partitions(numbers: tuple[int, ...]) -> str:
    """``(1, 2, 3, 5)`` -> ``"1-3,5"``: the form ``--partitions`` takes.

    >>> format_partitions((1, 2, 3, 5, 7, 8))
    '1-3,5,7-8'
    """
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _connection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The client options the command line sets; the clients' defaults stay theirs."""
    options: dict[str, Any] = {"max_retries": _max_retries(args)}
    if args.stall_timeout:
        options["stall_timeout"] = args.stall_timeout
    if args.base_url:
        options["base_url"] = args.base_url
    return options


def _open(args: argparse.Namespace, redactor: Redactor, filtered: bool, console: Console) -> Opened:
    if args.v1:
        return _open_v1(args, redactor, filtered)
    v1_only = [
        flag
        for flag, attr in (
            ("--track", "track"),
            ("--follow", "follow"),
            ("--locations", "locations"),
            ("--languages", "languages"),
        )
        if getattr(args, attr, None) is not None
    ]
    if v1_only:
        raise CliError(
            f"{', '.join(v1_only)} belong(s) to API v1.1: add --v1, or use rules with API v2 "
            "(`rxtweet rules add`)",
            ExitCode.USAGE,
            usage=True,
        )
    token = bearer_token(args, redactor)
    client = StreamingClient(token, return_type=dict, **_connection_options(args))
    params: dict[str, Any] = {attr: getattr(args, attr) for attr in v2_params.FIELD_PARAMS}
    params["backfill_minutes"] = args.backfill_minutes
    params["strict"] = not args.allow_unknown_fields
    # Built (and so checked) before anything goes on the network, the rules listing included.
    stream = client.filter_stream(**params) if filtered else client.sample_stream(**params)
    if filtered and not args.quiet:
        _show_rules(client, console)
    return Opened(
        stream.items, _is_v2_tweet, stream.connection.request, client.base_url, stream=stream
    )


def _show_rules(client: Any, console: Console) -> None:
    """Print the active rules to stderr (as twarc2 does), escaped: they come from the server.

    A failure to list them is only a notice: the stream itself reports (or survives) it.
    """
    try:
        doc = client.get_rules()
    except Exception as exc:  # the stream itself will say what is wrong
        log.debug("listing the rules failed", exc_info=True)
        console.print(printable(f"could not list the active rules: {error_for(exc).message}"))
        return
    rules = doc.get("data") if isinstance(doc, dict) else None
    if not rules:
        console.print("no active rules: the filtered stream needs some (`rxtweet rules add`)")
        return
    console.print(f"active rules ({len(rules)}):")
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        tag = f"  [{rule['tag']}]" if rule.get("tag") is not None else ""
        rule_id = f"  (id {rule['id']})" if rule.get("id") is not None else ""
        console.print(printable(f"  {rule.get('value', '')}{tag}{rule_id}"))


def _max_retries(args: argparse.Namespace) -> float:
    return float("inf") if args.max_retries is None else float(args.max_retries)


def _is_v2_tweet(value: Any) -> bool:
    return getattr(value, "data", None) is not None


def _open_v1(args: argparse.Namespace, redactor: Redactor, filtered: bool) -> Opened:
    v2_only = [_flag(attr) for attr in v2_params.FIELD_PARAMS if getattr(args, attr) is not None]
    if args.backfill_minutes is not None:
        v2_only.append("--backfill-minutes")
    if v2_only:
        raise CliError(
            f"{', '.join(v2_only)} belong(s) to API v2: drop --v1", ExitCode.USAGE, usage=True
        )
    creds = oauth1_credentials(args, redactor)
    client = Stream(
        creds.consumer_key,
        creds.consumer_secret,
        creds.access_token,
        creds.access_token_secret,
        **_connection_options(args),
    )
    languages = _split(args.languages)
    try:
        if filtered:
            follow, track, locations = _split(args.follow), _split(args.track), None
            if args.locations is not None:
                locations = [float(x) for x in _split(args.locations) or []]
            if not (follow or track or locations):
                raise CliError(
                    "filter --v1 needs at least one of --track, --follow, --locations",
                    ExitCode.USAGE,
                    usage=True,
                )
            stream = client.filter_stream(
                follow=follow, track=track, locations=locations, languages=languages
            )
        else:
            stream = client.sample_stream(languages=languages)
    except (TypeError, ValueError) as exc:
        raise CliError(str(exc), ExitCode.USAGE, usage=True) from exc
    return Opened(
        stream.items,
        lambda v: isinstance(v, Status),
        stream.connection.request,
        client.base_url,
        stream=stream,
    )


# --- sinks ----------------------------------------------------------------------------------


class _Lines:
    """Whole lines to a binary output, in blocks, counting the messages that reached it.

    ``add`` queues a line (ending in ``\\n``) with its kind; ``flush`` writes the queue.
    With ``fd`` (a file opened by path), a write that fails part-way (a full disk,
    ``RLIMIT_FSIZE``) is undone back to the last complete line (``ftruncate``), so the file
    never ends mid-line, and the line counts stay exact. Thread-safe: the reader thread adds
    and may flush a full block, the main thread flushes on each tick.
    """

    #: Kinds of line.
    OTHER, MESSAGE, TWEET = 0, 1, 2

    def __init__(self, out: BinaryIO, *, fd: int | None = None, size: int = 0) -> None:
        self._out = out
        self._fd = fd
        self._size = size  # bytes in the file, all of them whole lines
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._kinds: list[int] = []
        self._pending_bytes = 0
        self._block_written = 0
        self.messages_written = 0
        self.tweets_written = 0
        self.failed = False

    def add(self, line: bytes, kind: int) -> None:
        """Queue ``line`` (which ends with ``\\n``); write the queue when a block is full."""
        with self._lock:
            if self.failed:
                return
            self._pending.append(line)
            self._kinds.append(kind)
            self._pending_bytes += len(line)
            if self._pending_bytes >= _BLOCK:
                self._flush()

    def flush(self) -> None:
        """Write every queued line. Raises the ``OSError`` of a failed write (once)."""
        with self._lock:
            if not self.failed:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            block = b"".join(self._pending)
            kinds = self._kinds
            self._pending, self._kinds, self._pending_bytes = [], [], 0
            try:
                self._write(block)
            except OSError:
                self.failed = True
                self._count(kinds, self._undo_partial(block))
                raise
            self._count(kinds, len(kinds))
        if self._fd is None:
            try:
                self._out.flush()
            except OSError:
                self.failed = True
                raise

    def _write(self, block: bytes) -> None:
        self._block_written = 0
        if self._fd is None:
            self._out.write(block)
            return
        view = memoryview(block)
        while self._block_written < len(block):
            # A short count is how a write that reaches a size limit reports it; the next
            # call then fails with EFBIG or ENOSPC.
            n = os.write(self._fd, view[self._block_written :])
            self._block_written += n
            self._size += n

    def _undo_partial(self, block: bytes) -> int:
        """Cut the file back to its last whole line; return how many lines of ``block`` stay."""
        if self._fd is None:
            return 0  # stdout: what reached it is unknown, and it cannot be cut back
        written = self._block_written
        keep = block.rfind(b"\n", 0, written) + 1
        partial = written - keep
        if partial:
            try:
                os.ftruncate(self._fd, self._size - partial)
                self._size -= partial
            except OSError as exc:
                log.error("could not remove a partial last line from the output: %s", exc)
        return block.count(b"\n", 0, keep)

    def _count(self, kinds: list[int], lines: int) -> None:
        for kind in kinds[:lines]:
            if kind:
                self.messages_written += 1
                if kind == self.TWEET:
                    self.tweets_written += 1


class _Sink(Protocol):
    lines: _Lines

    def message(self, raw: bytes, t: float, tweet: bool) -> None: ...
    def keep_alive(self, t: float) -> None: ...
    def malformed(self, raw: bytes, t: float) -> None: ...


class _JsonlSink:
    """Each message's raw bytes and ``\\n``; keep-alives and malformed lines are not written.

    With ``metadata``, each message gets twarc's ``"__twarc"`` key (see :class:`_Metadata`).
    """

    def __init__(self, lines: _Lines, metadata: _Metadata | None = None) -> None:
        self.lines = lines
        self._metadata = metadata

    def message(self, raw: bytes, t: float, tweet: bool) -> None:
        if self._metadata is not None:
            raw = with_metadata(raw, self._metadata.at(t))
        self.lines.add(raw + b"\n", _Lines.TWEET if tweet else _Lines.MESSAGE)

    def keep_alive(self, t: float) -> None:
        pass

    def malformed(self, raw: bytes, t: float) -> None:
        pass


class _Metadata:
    """twarc2's provenance object for one request, as JSON bytes:
    ``{"url": ..., "version": "rxtweet X.Y", "retrieved_at": "2021-04-01T15:52:42+00:00"}``.

    ``url`` is the request's URL with its query (``user:password@`` redacted). The bytes are
    built once per second of ``retrieved_at``: at thousands of messages a second, a
    ``datetime`` per message would cost more than writing the line.
    """

    def __init__(self, request: StreamRequest) -> None:
        url = redact_url(request.url)
        if request.params:
            url += "?" + urlencode(request.params, doseq=True)
        self._head = (
            b'{"url":'
            + orjson.dumps(url)
            + b',"version":'
            + orjson.dumps(f"rxtweet {__version__}")
            + b',"retrieved_at":'
        )
        self._second: int | None = None
        self._bytes = b""

    def at(self, t: float) -> bytes:
        """The object for a message received at epoch time ``t``."""
        second = int(t)
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC).isoformat()
            self._bytes = self._head + orjson.dumps(stamp) + b"}"
            self._second = second
        return self._bytes


def with_metadata(raw: bytes, metadata: bytes) -> bytes:
    """``raw`` (one JSON object, as received) with ``"__twarc": metadata`` as its last key.

    The line is not parsed again: its closing brace is replaced, so every byte X sent
    before it stays as it was. ``{}`` (and whitespace around the braces) is handled.

    >>> with_metadata(b'{"data":{"id":"1"}}', b'{"v":1}')
    b'{"data":{"id":"1"},"__twarc":{"v":1}}'
    >>> with_metadata(b"{ } ", b"{}")
    b'{"__twarc":{}}'
    """
    body = raw.rstrip()[:-1].rstrip()  # without the closing brace
    separator = b"" if body.endswith(b"{") else b","
    return body + separator + b'"__twarc":' + metadata + b"}"


class _RecordSink:
    """Every line as received, as recording entries (see :mod:`rxtweet.cli.recording`)."""

    def __init__(self, lines: _Lines, endpoint: str, t: float) -> None:
        self.lines = lines
        lines.add(RecordWriter.header_line(endpoint, t), _Lines.OTHER)

    def message(self, raw: bytes, t: float, tweet: bool) -> None:
        self.lines.add(RecordWriter.entry_line(raw, t), _Lines.TWEET if tweet else _Lines.MESSAGE)

    def keep_alive(self, t: float) -> None:
        self.lines.add(RecordWriter.keep_alive_line(t), _Lines.OTHER)

    def malformed(self, raw: bytes, t: float) -> None:
        self.lines.add(RecordWriter.entry_line(raw, t), _Lines.OTHER)


@contextlib.contextmanager
def _output(path: str) -> Iterator[tuple[_Lines, str]]:
    if path == "-":
        yield _Lines(sys.stdout.buffer), "stdout"
        return
    try:
        fh = open(path, "a+b", buffering=0)  # noqa: SIM115 - closed below; read: the tail check
    except OSError as exc:
        raise CliError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        try:
            size = _repair_tail(fh.fileno(), path)
        except OSError as exc:
            raise CliError(f"cannot append to {path}: {exc.strerror or exc}") from exc
        yield _Lines(fh, fd=fh.fileno(), size=size), path
    finally:
        fh.close()


#: How far back a partial last line is looked for; beyond that the file is refused.
_MAX_TAIL = 16 * 1024 * 1024


def _repair_tail(fd: int, path: str) -> int:
    """Make the file at ``fd`` end with a whole line before appending; return its size.

    A last line without its ``\\n`` that is a complete JSON value (written by another tool)
    gets its newline; a fragment (an earlier run killed mid-write) is cut off, with a WARNING,
    so that the next line is not glued onto it.

    Raises:
        CliError: the file does not look like JSONL (no newline in its last 16 MiB).
    """
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    start = max(0, size - _MAX_TAIL)
    tail = os.pread(fd, size - start, start)
    cut = tail.rfind(b"\n") + 1
    if cut == 0 and start > 0:
        raise CliError(
            f"{path} does not end with a complete line and does not look like JSONL: "
            "not appending to it",
            hint="choose another file with -o",
        )
    fragment = tail[cut:]
    try:
        orjson.loads(fragment)
    except ValueError:
        os.ftruncate(fd, start + cut)
        log.warning(
            "%s ended in a partial line (%d bytes, left by an interrupted write): removed it "
            "before appending",
            path,
            len(fragment),
        )
        return start + cut
    os.write(fd, b"\n")
    log.warning("%s did not end with a newline: added one before appending", path)
    return size + 1


# --- the run --------------------------------------------------------------------------------


class _Counters:
    """Counted on the reader thread, read by the main thread (plain ints under the GIL)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.messages = 0
        self.tweets = 0
        self.keep_alives = 0
        self.reconnects = 0
        self.dropped = 0
        self.last_message: float | None = None  # monotonic time of the last message
        self.waiting_until: float | None = None  # monotonic time of a scheduled reconnect
        self._samples: deque[tuple[float, int]] = deque()
        # Tweet lags (s) since the last redraw (appended on the reader thread), and the
        # median shown (kept while no tweet comes).
        self.lags: list[float] = []
        self.lag: float | None = None

    def tweet_lag(self, value: Any, now: float) -> None:
        """Record the lag of the tweet ``value`` received at Unix time ``now``: from its
        id's Snowflake time (v2 ``data.id``, v1.1 ``id``); nothing for an id that is none."""
        data = getattr(value, "data", None)
        doc = getattr(data, "data", data)
        raw_id = doc.get("id") if isinstance(doc, dict) else None
        lag = lag_of(raw_id, now)  # None for an id that lies (huge, future, not a number)
        if lag is not None:
            self.lags.append(lag)

    def update_lag(self) -> float | None:
        """The median lag of the tweets since the last call (else the previous median)."""
        lags, self.lags = self.lags, []
        if lags:
            self.lag = percentile(sorted(lags), 0.5)
        return self.lag

    def rate(self, now: float) -> float:
        """Messages per second over the last ten seconds."""
        samples = self._samples
        samples.append((now, self.messages))
        while len(samples) > 2 and now - samples[1][0] >= _RATE_WINDOW:
            samples.popleft()
        t0, m0 = samples[0]
        return (self.messages - m0) / (now - t0) if now - t0 >= 0.5 else 0.0


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _since_last(counters: _Counters, now: float) -> str:
    if counters.last_message is None:
        return "no message yet"
    return f"last message {_clock(now - counters.last_message)} ago"


def _progress(counters: _Counters, label: str, now: float, noun: str = "tweets") -> str:
    bits = [
        f"{label}",
        f"{counters.messages:,} messages ({counters.tweets:,} {noun})",
        f"{counters.rate(now):.1f}/s",
        *([f"lag {_lag(counters.lag)}"] if counters.lag is not None else []),
        f"keep-alives {counters.keep_alives:,}",
        f"reconnects {counters.reconnects}",
        f"dropped {counters.dropped}",
        _clock(now - counters.started),
    ]
    if counters.waiting_until is not None and counters.waiting_until > now:
        bits.append(f"reconnecting in {counters.waiting_until - now:.0f} s")
    return "  ".join(bits)


def _lag(seconds: float) -> str:
    """``0.84 s``, ``12.3 s``, ``1:02:03``: a lag for the progress line."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return _clock(seconds)


def _status(counters: _Counters, now: float, noun: str = "tweets") -> str:
    """The periodic status line printed when stderr is not a terminal."""
    bits = [
        f"status after {_clock(now - counters.started)}:",
        f"{counters.messages:,} messages ({counters.tweets:,} {noun}),",
        f"{counters.keep_alives:,} keep-alives,",
        f"{counters.reconnects} reconnects,",
        f"{counters.dropped} dropped;",
        _since_last(counters, now),
    ]
    if counters.waiting_until is not None and counters.waiting_until > now:
        bits.append(f"(reconnecting in {counters.waiting_until - now:.0f} s)")
    return " ".join(bits)


def _partition_of(event: Any) -> str:
    """``"partition 3: "`` for an event of one partition's connection, else ``""``."""
    partition = getattr(event, "partition", None)
    return "" if partition is None else f"partition {partition}: "


def _seconds(delay: float) -> str:
    return "at once" if delay <= 0 else f"in {delay:.3g} s"


def _run(
    opened: Opened,
    sink: _Sink,
    destination: str,
    args: argparse.Namespace,
    console: Console,
) -> int:
    counters = _Counters()
    limit: int | None = args.limit
    quiet: bool = args.quiet
    done = threading.Event()
    failure: list[BaseException] = []
    is_tweet = opened.is_tweet
    noun = opened.noun
    lines = sink.lines
    # Lag from Snowflake ids: tweets only (other streams' ids need not be Snowflakes).
    lag_of_tweets = noun == "tweets"

    def notice(text: str) -> None:
        if not quiet:
            console.print(printable(text))

    def on_next(item: Any) -> None:
        if done.is_set():
            return
        now = time.time()
        try:
            if type(item) is Parsed:
                tweet = is_tweet(item.value)
                sink.message(item.raw, now, tweet)
                counters.messages += 1
                counters.last_message = time.monotonic()
                if tweet:
                    counters.tweets += 1
                    if lag_of_tweets:
                        counters.tweet_lag(item.value, now)
                    if limit is not None and counters.tweets >= limit:
                        done.set()
            elif type(item) is KeepAlive:
                counters.keep_alives += 1
                sink.keep_alive(now)
            elif type(item) is MalformedMessage:
                counters.dropped += 1
                sink.malformed(item.raw, now)
                preview = item.raw[:60]
                more = "..." if len(item.raw) > 60 else ""
                notice(
                    f"dropped a malformed line ({item.reason}, {len(item.raw)} bytes): "
                    f"{preview!r}{more}"
                )
            elif type(item) is Reconnecting:
                counters.reconnects += 1
                counters.waiting_until = time.monotonic() + item.delay
                notice(
                    f"{_partition_of(item)}reconnect #{item.attempt} {_seconds(item.delay)}: "
                    f"{describe_cause(item.cause)}"
                )
            elif type(item) is Connected:
                counters.waiting_until = None
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk: end the run, report it
            failure.append(exc)
            done.set()

    def on_error(exc: Exception) -> None:
        failure.append(exc)
        done.set()

    if console.tty and not quiet:
        console.print(
            console.style(f"streaming {opened.endpoint} to {destination}; Ctrl-C to stop", "green")
        )
    label = f"-> {destination}"
    status_every: float = 0.0 if console.tty or quiet else args.status_interval
    next_status = counters.started + status_every
    interrupted = False
    exporter = _serve_metrics(opened, args, notice)
    subscription = opened.items.subscribe(on_next, on_error, done.set)
    try:
        while not done.wait(_TICK if not status_every else min(_TICK, status_every)):
            lines.flush()
            counters.update_lag()
            now = time.monotonic()
            if not quiet:
                console.live([_progress(counters, label, now, noun)])
            if status_every and now >= next_status:
                console.print(_status(counters, now, noun))
                next_status = now + status_every
    except KeyboardInterrupt:
        interrupted = True
    except OSError as exc:  # a failed write, on this thread's tick
        failure.append(exc)
    finally:
        done.set()  # later items are ignored, even those already on their way
        subscription.dispose()
        if exporter is not None:
            exporter.close()
        console.clear()
    try:
        lines.flush()
    except OSError as exc:
        failure.append(exc)

    if failure and isinstance(failure[0], BrokenPipeError):
        silence_stdout()
        return ExitCode.OK  # the reader went away (e.g. `| head`): not an error
    write_failed = lines.failed
    elapsed = time.monotonic() - counters.started
    if not quiet:
        reconnects = f"{counters.reconnects} reconnect{'s' if counters.reconnects != 1 else ''}"
        lost = counters.messages - lines.messages_written
        console.print(
            f"{lines.messages_written:,} messages ({lines.tweets_written:,} {noun}) written to "
            f"{destination} in {_clock(elapsed)}; {reconnects}, {counters.dropped} dropped"
            + (f"; {lost:,} received but not written" if write_failed and lost else "")
            + ("; interrupted" if interrupted else "")
        )
    if failure:
        if write_failed and isinstance(failure[0], OSError):
            error = failure[0]
            raise CliError(
                f"writing to {destination} failed: {error.strerror or error}; "
                + (
                    "the file ends with the last complete line"
                    if destination != "stdout"
                    else "the output may end with a partial line"
                )
            ) from error
        raise failure[0]
    return ExitCode.INTERRUPTED if interrupted else ExitCode.OK


def _serve_metrics(
    opened: Opened, args: argparse.Namespace, notice: Callable[[str], None]
) -> MetricsServer | None:
    """Start ``--metrics-port``'s Prometheus endpoint (``None`` when not asked for).

    Raises:
        CliError: ``prometheus-client`` is missing, or the port cannot be bound.
    """
    metrics_port: int | None = getattr(args, "metrics_port", None)
    if metrics_port is None:
        return None
    if opened.stream is None:
        raise CliError("--metrics-port: this command's stream has no metrics", ExitCode.USAGE)
    try:
        from ..metrics.prometheus import serve_prometheus

        exporter = serve_prometheus(opened.stream, port=metrics_port)
    except ImportError as exc:
        raise CliError(
            "--metrics-port needs prometheus-client", hint="pip install rxtweet[metrics]"
        ) from exc
    except OSError as exc:
        raise CliError(
            f"--metrics-port {metrics_port}: cannot serve: {exc.strerror or exc}"
        ) from exc
    notice(f"serving Prometheus metrics at {exporter.url}")
    return exporter


def _stream_command(
    args: argparse.Namespace, redactor: Redactor, console: Console, *, filtered: bool
) -> int:
    opened = _open(args, redactor, filtered, console)
    if getattr(args, "to", None):
        from .consume import publish_opened

        return publish_opened(opened, args, console)
    metadata = _Metadata(opened.request) if args.metadata else None
    with _output(args.output) as (lines, name):
        return _run(opened, _JsonlSink(lines, metadata), name, args, console)


def write_stream(opened: Opened, args: argparse.Namespace, console: Console) -> int:
    """Write ``opened`` as JSONL to ``args.output`` (``-o``), as ``sample`` does, until
    ``--limit`` counted messages, an error, or Ctrl-C; return the exit status.

    For the other stream commands (:mod:`rxtweet.cli.streams`, :mod:`rxtweet.cli.activity`),
    whose arguments come from :func:`add_output_arguments` and
    :func:`add_connection_arguments`.
    """
    if getattr(args, "to", None):
        from .consume import publish_opened

        return publish_opened(opened, args, console)
    metadata = _Metadata(opened.request) if getattr(args, "metadata", False) else None
    with _output(args.output) as (lines, name):
        return _run(opened, _JsonlSink(lines, metadata), name, args, console)


def connection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The client options the command line sets (``--stall-timeout``, ``--max-retries``,
    ``--base-url``); the clients' defaults stay theirs."""
    return _connection_options(args)


def run_sample(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet sample``."""
    return _stream_command(args, redactor, console, filtered=False)


def run_filter(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet filter``."""
    return _stream_command(args, redactor, console, filtered=True)


def run_record(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet record [sample|filter]``."""
    filtered = args.endpoint == "filter"
    opened = _open(args, redactor, filtered, console)
    with _output(args.output) as (lines, name):
        return _run(opened, _RecordSink(lines, opened.endpoint, time.time()), name, args, console)


# --- the commands ---------------------------------------------------------------------------


def _sample_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    add_stream_arguments(parser, filtered=False)


def _filter_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    add_stream_arguments(parser, filtered=True)


def _record_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    parser.add_argument(
        "endpoint",
        nargs="?",
        choices=("sample", "filter"),
        default="sample",
        help="which stream (default: sample)",
    )
    add_stream_arguments(parser, filtered=None)


SAMPLE = Command(
    "sample",
    "write the sample stream (about 1%% of all tweets) as JSONL",
    run_sample,
    _sample_arguments,
    description="Write the sample stream as JSONL: each message exactly as X sent it, one\n"
    "per line. Keep-alives are counted; malformed lines are reported on stderr and skipped.\n"
    "A progress line (messages, rate, reconnects, drops) is shown when stderr is a terminal.",
    epilog="examples:\n  rxtweet sample -o sample.jsonl --limit 1000 "
    "--tweet-fields lang,created_at\n  rxtweet sample --v1 -o statuses.jsonl",
    parents=("auth",),
)

FILTER = Command(
    "filter",
    "write the filtered stream (tweets matching your rules) as JSONL",
    run_filter,
    _filter_arguments,
    description="Write the filtered stream as JSONL, like `sample`. With API v2 the tweets\n"
    "match the rules set with `rxtweet rules`; with --v1, --track/--follow/--locations.",
    epilog="examples:\n  rxtweet rules add 'cat has:images' --tag cats\n"
    "  rxtweet filter -o cats.jsonl --expansions author_id\n"
    "  rxtweet filter --v1 --track python,rxpy --follow 783214,2244994945",
    parents=("auth",),
)

RECORD = Command(
    "record",
    "record a stream's raw lines with receive times, for `serve --timing original`",
    run_record,
    _record_arguments,
    description="Record every line as received, with its time, as JSONL entries\n"
    '  {"t": <epoch seconds>, "line": "<the raw line>"}\n'
    'after a header line {"rxtweet": "record", "version": 1, "endpoint": ..., "t": ...}.\n'
    '"line": "" is a keep-alive; malformed lines are kept; a line that is not UTF-8 is\n'
    'stored as {"t": ..., "b64": "<base64>"}. Replay with `rxtweet serve FILE`.',
    epilog="examples:\n  rxtweet record -o rec.jsonl --limit 500\n"
    "  rxtweet serve rec.jsonl --timing original",
    parents=("auth",),
)
