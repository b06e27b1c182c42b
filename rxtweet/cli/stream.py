"""``rxtweet sample``, ``rxtweet filter`` and ``rxtweet record``: a live stream into a file.

``sample``/``filter`` write JSONL: each message exactly as X sent it (its bytes, without the
``\\r\\n`` terminator, followed by ``\\n``). Keep-alives are counted, not written; a line
that is not a JSON object is reported on stderr and skipped, so the file stays valid JSONL.

``record`` writes what arrived, with the time it arrived, for ``rxtweet serve`` to replay
(see :mod:`rxtweet.cli.recording` for the format).

While it runs, a one-line progress display (messages, rate, reconnects, drops) is redrawn
on stderr when stderr is a terminal. Reconnects and dropped lines are always reported on
stderr (one line each) unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Protocol

from reactivex import Observable

from ..events import Connected, KeepAlive, MalformedMessage, Reconnecting
from ..parse import Parsed
from .common import (
    CliError,
    ExitCode,
    Redactor,
    bearer_token,
    describe_cause,
    oauth1_credentials,
    silence_stdout,
)
from .console import Console
from .recording import RecordWriter

__all__ = ["add_stream_arguments", "run_filter", "run_record", "run_sample"]

log = logging.getLogger("rxtweet.cli")

_TICK = 0.25
_RATE_WINDOW = 10.0
_FIELDS = (
    ("tweet_fields", "--tweet-fields", "tweet.fields"),
    ("user_fields", "--user-fields", "user.fields"),
    ("expansions", "--expansions", "expansions"),
    ("media_fields", "--media-fields", "media.fields"),
    ("place_fields", "--place-fields", "place.fields"),
    ("poll_fields", "--poll-fields", "poll.fields"),
)


# --- arguments ------------------------------------------------------------------------------


def add_stream_arguments(parser: argparse.ArgumentParser, *, filtered: bool | None) -> None:
    """The options of ``sample`` (``filtered=False``), ``filter`` (True) and ``record`` (None)."""
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default="-",
        help="append to FILE (default: stdout)",
    )
    out.add_argument("--limit", type=_positive_int, metavar="N", help="stop after N tweets")
    out.add_argument(
        "-q", "--quiet", action="store_true", help="no notices or summary on stderr, only errors"
    )
    v2 = parser.add_argument_group("API v2 (default)")
    for _, flag, query in _FIELDS:
        v2.add_argument(flag, metavar="LIST", help=f"comma-separated {query}")
    v2.add_argument(
        "--backfill-minutes",
        type=_positive_int,
        metavar="N",
        help="recover up to N (1-5) minutes of missed tweets (Academic/Enterprise access)",
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
    conn = parser.add_argument_group("connection")
    conn.add_argument(
        "--stall-timeout",
        type=_positive_float,
        metavar="S",
        help="reconnect after S seconds without data (default: 21 for v2, 90 for v1.1)",
    )
    conn.add_argument(
        "--max-retries",
        type=_non_negative_int,
        metavar="N",
        help="give up after N reconnects in a row without data (default: never)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


# --- opening the stream ---------------------------------------------------------------------


class _Opened:
    """What a command needs from a v2 or v1.1 stream."""

    def __init__(
        self, items: Observable[Any], is_tweet: Callable[[Any], bool], endpoint: str
    ) -> None:
        self.items = items
        self.is_tweet = is_tweet
        self.endpoint = endpoint


def _open(args: argparse.Namespace, redactor: Redactor, filtered: bool) -> _Opened:
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
    from ..v2 import DEFAULT_BASE_URL, StreamingClient

    token = bearer_token(args, redactor)
    client = StreamingClient(
        token,
        base_url=args.base_url or DEFAULT_BASE_URL,
        stall_timeout=args.stall_timeout or 21.0,
        max_retries=_max_retries(args),
    )
    params: dict[str, Any] = {attr: getattr(args, attr) for attr, _, _ in _FIELDS}
    params["backfill_minutes"] = args.backfill_minutes
    stream = client.filter_stream(**params) if filtered else client.sample_stream(**params)
    endpoint = "/2/tweets/search/stream" if filtered else "/2/tweets/sample/stream"
    return _Opened(stream.items, _is_v2_tweet, endpoint)


def _max_retries(args: argparse.Namespace) -> float:
    return float("inf") if args.max_retries is None else float(args.max_retries)


def _is_v2_tweet(value: Any) -> bool:
    return getattr(value, "data", None) is not None


def _open_v1(args: argparse.Namespace, redactor: Redactor, filtered: bool) -> _Opened:
    v2_only = [flag for attr, flag, _ in _FIELDS if getattr(args, attr) is not None]
    if args.backfill_minutes is not None:
        v2_only.append("--backfill-minutes")
    if v2_only:
        raise CliError(
            f"{', '.join(v2_only)} belong(s) to API v2: drop --v1", ExitCode.USAGE, usage=True
        )
    try:
        from ..status import Status
        from ..v1 import DEFAULT_BASE_URL, Stream
    except ImportError as exc:  # pragma: no cover - only while v1.py is being written
        raise CliError(f"API v1.1 is not available in this build: {exc}") from exc
    creds = oauth1_credentials(args, redactor)
    client = Stream(
        creds.consumer_key,
        creds.consumer_secret,
        creds.access_token,
        creds.access_token_secret,
        base_url=args.base_url or DEFAULT_BASE_URL,
        stall_timeout=args.stall_timeout or 90.0,
        max_retries=_max_retries(args),
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
    endpoint = "/1.1/statuses/filter.json" if filtered else "/1.1/statuses/sample.json"
    return _Opened(stream.items, lambda v: isinstance(v, Status), endpoint)


# --- sinks ----------------------------------------------------------------------------------


class _Sink(Protocol):
    def message(self, raw: bytes, t: float) -> None: ...
    def keep_alive(self, t: float) -> None: ...
    def malformed(self, raw: bytes, t: float) -> None: ...
    def flush(self) -> None: ...


class _JsonlSink:
    """Each message's raw bytes and ``\\n``; keep-alives and malformed lines are not written."""

    def __init__(self, out: BinaryIO) -> None:
        self._write = out.write
        self.flush = out.flush

    def message(self, raw: bytes, t: float) -> None:
        self._write(raw + b"\n")

    def keep_alive(self, t: float) -> None:
        pass

    def malformed(self, raw: bytes, t: float) -> None:
        pass


@contextlib.contextmanager
def _output(path: str) -> Iterator[tuple[BinaryIO, str]]:
    if path == "-":
        yield sys.stdout.buffer, "stdout"
        return
    try:
        fh = open(path, "ab")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CliError(f"cannot open {path}: {exc.strerror or exc}") from exc
    try:
        yield fh, path
    finally:
        fh.close()


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
        self.waiting_until: float | None = None  # monotonic time of a scheduled reconnect
        self._samples: deque[tuple[float, int]] = deque()

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


def _progress(counters: _Counters, label: str, now: float) -> str:
    bits = [
        f"{label}",
        f"{counters.messages:,} messages ({counters.tweets:,} tweets)",
        f"{counters.rate(now):.1f}/s",
        f"reconnects {counters.reconnects}",
        f"dropped {counters.dropped}",
        _clock(now - counters.started),
    ]
    if counters.waiting_until is not None and counters.waiting_until > now:
        bits.append(f"reconnecting in {counters.waiting_until - now:.0f} s")
    return "  ".join(bits)


def _seconds(delay: float) -> str:
    return "at once" if delay <= 0 else f"in {delay:.3g} s"


def _run(
    opened: _Opened,
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

    def notice(text: str) -> None:
        if not quiet:
            console.print(text)

    def on_next(item: Any) -> None:
        if done.is_set():
            return
        now = time.time()
        try:
            if type(item) is Parsed:
                sink.message(item.raw, now)
                counters.messages += 1
                if is_tweet(item.value):
                    counters.tweets += 1
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
                    f"reconnect #{item.attempt} {_seconds(item.delay)}: "
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
    interrupted = False
    subscription = opened.items.subscribe(on_next, on_error, done.set)
    try:
        while not done.wait(_TICK):
            sink.flush()
            if not quiet:
                console.live([_progress(counters, label, time.monotonic())])
    except KeyboardInterrupt:
        interrupted = True
    finally:
        done.set()  # later items are ignored, even those already on their way
        subscription.dispose()
        console.clear()
    try:
        sink.flush()
    except OSError as exc:
        failure.append(exc)

    if failure and isinstance(failure[0], BrokenPipeError):
        silence_stdout()
        return ExitCode.OK  # the reader went away (e.g. `| head`): not an error
    elapsed = time.monotonic() - counters.started
    if not quiet:
        reconnects = f"{counters.reconnects} reconnect{'s' if counters.reconnects != 1 else ''}"
        console.print(
            f"{counters.messages:,} messages ({counters.tweets:,} tweets) written to "
            f"{destination} in {_clock(elapsed)}; {reconnects}, {counters.dropped} dropped"
            + ("; interrupted" if interrupted else "")
        )
    if failure:
        raise failure[0]
    return ExitCode.INTERRUPTED if interrupted else ExitCode.OK


def _stream_command(
    args: argparse.Namespace, redactor: Redactor, console: Console, *, filtered: bool
) -> int:
    opened = _open(args, redactor, filtered)
    with _output(args.output) as (out, name):
        return _run(opened, _JsonlSink(out), name, args, console)


def run_sample(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet sample``."""
    return _stream_command(args, redactor, console, filtered=False)


def run_filter(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet filter``."""
    return _stream_command(args, redactor, console, filtered=True)


def run_record(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet record [sample|filter]``."""
    filtered = args.endpoint == "filter"
    opened = _open(args, redactor, filtered)
    with _output(args.output) as (out, name):
        writer = RecordWriter(out)
        writer.header(opened.endpoint, time.time())
        return _run(opened, writer, name, args, console)
