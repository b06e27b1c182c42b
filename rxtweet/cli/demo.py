"""``rxtweet demo``: a live, offline tour — generated tweets, injected faults, reactive stats.

It starts a :class:`~rxtweet.testing.FakeStreamServer` on loopback that streams realistic
generated tweets (:func:`~rxtweet.testing.generate_v2_messages`) and, on purpose, cuts the
connection, answers 503, stalls, closes the stream and slips in malformed lines. A
:class:`~rxtweet.StreamingClient` consumes it through one shared connection, and a few
reactive pipelines compute what the screen shows:

* tweets per second: ``window_with_time(1 s)`` then ``count()`` of each window;
* languages: ``group_by(lang)`` with a running ``scan`` count inside each group;
* top hashtags: ``flat_map`` to hashtags, a ``scan`` over immutable counts, ``sample``;
* lifecycle: ``stream.events`` (``Connected``, ``Reconnecting``, ``MalformedMessage`` …).

Reconnect waits are scaled down (:data:`DEMO_SCALE`) so that each fault recovers in about a
second; real streams follow X's guidance (``ReconnectPolicy()``). On a terminal the view is
redrawn in place; otherwise it prints plain lines. Ends after ``--seconds`` (or at Ctrl-C
with ``--forever``) with a summary, leaving no thread behind.
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import reactivex as rx
from reactivex import GroupedObservable, Observable
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable

from ..events import (
    Closed,
    Connected,
    Errored,
    KeepAlive,
    MalformedMessage,
    Reconnecting,
    StreamEvent,
)
from ..reconnect import ReconnectPolicy
from ..testing import Attempt, FakeStreamServer, generate_v2_messages
from ..v2 import StreamingClient
from ..v2.models import Tweet
from .common import (
    CliError,
    ExitCode,
    Redactor,
    describe_cause,
    join_new_threads,
    silence_stdout,
)
from .console import Console
from .spec import Command

__all__ = ["COMMAND", "DEMO_SCALE", "add_demo_arguments", "demo_policy", "run_demo"]

log = logging.getLogger(__name__)

#: Reconnect waits in the demo are X's guidance times this.
DEMO_SCALE = 0.1
#: Seconds of silence before the demo's client calls the stream stalled (X's advice: 21 s).
DEMO_STALL_TIMEOUT = 2.0
_TOKEN = "demo-bearer-token"  # noqa: S105 - the local fake server's token, not a secret
_SPARK = "▁▂▃▄▅▆▇█"
_SHOWN_RECONNECTS = 12  # in the summary


def demo_policy(scale: float = DEMO_SCALE) -> ReconnectPolicy:
    """X's reconnect guidance with every wait multiplied by ``scale``."""
    x = ReconnectPolicy()
    return ReconnectPolicy(
        network_wait_step=x.network_wait_step * scale,
        network_wait_max=x.network_wait_max * scale,
        http_wait_start=x.http_wait_start * scale,
        http_wait_max=x.http_wait_max * scale,
        rate_limit_wait_start=x.rate_limit_wait_start * scale,
    )


def add_demo_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser] | None = None
) -> None:
    """The options of ``demo``."""
    parser.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        metavar="S",
        help="how long to run (default 20)",
    )
    parser.add_argument(
        "--rate", type=float, default=20.0, metavar="R", help="tweets per second (default 20)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated tweets")
    parser.add_argument(
        "--forever",
        action="store_true",
        help="keep streaming (faults recur) until Ctrl-C",
    )


# --- the fake server's script ---------------------------------------------------------------


def _segment(rate: float, seconds: float, share: float) -> int:
    """Messages in ``share`` of the run."""
    return max(1, round(rate * seconds * share))


def _fault_cycle(rate: float, seconds: float) -> list[Attempt]:
    """One round of faults, one connection attempt each."""
    return [
        Attempt(messages=_segment(rate, seconds, 0.2), ending="cut", rate=rate),
        Attempt(status=503),
        Attempt(messages=_segment(rate, seconds, 0.25), ending="stall", rate=rate),
        Attempt(messages=_segment(rate, seconds, 0.15), ending="close", rate=rate),
    ]


def _messages(seed: int, period: int) -> Iterator[Any]:
    """Generated tweets with two malformed lines in every ``period`` messages."""
    truncated_at, glued_at = max(1, period // 10), max(2, period * 55 // 100)
    # Stamped when sent (clock), so created_at and the ids are live, as from X.
    for i, message in enumerate(generate_v2_messages(seed=seed, clock=time.time)):
        k = i % period
        if k == truncated_at:
            line = orjson.dumps(message)
            yield line[: len(line) // 2]  # cut short, as by a broken proxy
        elif k == glued_at:
            yield orjson.dumps(message) + orjson.dumps(message)  # two messages on one line
            continue
        yield message


# --- what the pipelines compute ---------------------------------------------------------------


class _View:
    """State written by the Rx subscribers (reader and timer threads), read by the renderer."""

    def __init__(self, started: float) -> None:
        self.lock = threading.Lock()
        self.started = started
        self.tweets = 0
        self.per_second: deque[int] = deque(maxlen=24)
        self.languages: dict[str, int] = {}
        self.hashtags: list[tuple[str, int]] = []
        self.keep_alives = 0
        self.reconnects: list[tuple[float, Reconnecting]] = []
        self.drops: dict[str, int] = {}
        self.state = "connecting"
        self.last_tweet = started
        self.failure: BaseException | None = None
        self.failed = threading.Event()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _hashtags(tweet: Tweet) -> list[str]:
    entities = tweet.entities or {}
    return [f"#{h['tag']}" for h in entities.get("hashtags") or [] if h.get("tag")]


def _count(counts: dict[str, int], key: str) -> dict[str, int]:
    """A new dict: counts with ``key`` incremented (immutable, so safe to read elsewhere)."""
    return {**counts, key: counts.get(key, 0) + 1}


def _increment(n: int, _: object) -> int:
    return n + 1


def _top(counts: dict[str, int], n: int = 5) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _subscribe_pipelines(
    tweets: Observable[Tweet], view: _View, disposables: CompositeDisposable
) -> None:
    """The reactive part of the demo: each statistic is an Rx pipeline over ``tweets``."""

    def failed(error: Exception) -> None:
        view.failure = error
        view.failed.set()

    def set_total(n: int) -> None:
        view.tweets = n
        view.last_tweet = time.monotonic()

    def add_second(n: int) -> None:
        with view.lock:
            view.per_second.append(n)

    def set_language(pair: tuple[str, int]) -> None:
        with view.lock:
            view.languages[pair[0]] = pair[1]

    def set_hashtags(top: list[tuple[str, int]]) -> None:
        view.hashtags = top

    def per_language(group: GroupedObservable[str, Tweet]) -> Observable[tuple[str, int]]:
        key = group.key
        return group.pipe(ops.scan(_increment, 0), ops.map(lambda n: (key, n)))

    def count_window(window: Observable[Tweet]) -> Observable[int]:
        return window.pipe(ops.count())

    def tags_of(tweet: Tweet) -> Observable[str]:
        return rx.from_iterable(_hashtags(tweet))

    def language_of(tweet: Tweet) -> str:
        return tweet.lang or "und"

    no_counts: dict[str, int] = {}
    disposables.add(tweets.pipe(ops.scan(_increment, 0)).subscribe(set_total))
    disposables.add(
        tweets.pipe(ops.window_with_time(1.0), ops.flat_map(count_window)).subscribe(add_second)
    )
    disposables.add(
        tweets.pipe(ops.group_by(language_of), ops.flat_map(per_language)).subscribe(set_language)
    )
    disposables.add(
        tweets.pipe(
            ops.flat_map(tags_of),
            ops.scan(_count, no_counts),
            ops.sample(0.5),
            ops.map(_top),
        ).subscribe(set_hashtags, failed)
    )


# --- rendering ------------------------------------------------------------------------------


def _spark(values: list[int]) -> str:
    if not values:
        return ""
    top = max(values) or 1
    return "".join(_SPARK[min(7, math.floor(v / top * 7.999))] for v in values)


def _percentages(counts: dict[str, int], n: int = 6) -> str:
    total = sum(counts.values()) or 1
    return "  ".join(f"{k} {v * 100 // total}%" for k, v in _top(counts, n))


def _live_lines(view: _View, seconds: float | None) -> list[str]:
    with view.lock:
        per_second = list(view.per_second)
        languages = dict(view.languages)
        drops = dict(view.drops)
        reconnects = len(view.reconnects)
    elapsed = view.elapsed()
    of = f" / {seconds:g} s" if seconds is not None else ""
    rate = f"{per_second[-1]}/s" if per_second else "-/s"
    hashtags = "  ".join(f"{tag} {n}" for tag, n in view.hashtags) or "-"
    dropped = sum(drops.values())
    reasons = f" ({', '.join(drops)})" if drops else ""
    state = view.state
    silent = time.monotonic() - view.last_tweet
    if state == "streaming" and silent >= 1.0:
        state = f"silent for {silent:.0f} s (a stall after {DEMO_STALL_TIMEOUT:g} s)"
    return [
        f"  {elapsed:5.1f} s{of}   tweets {view.tweets:,}   {rate:>6} "
        f"{_spark(per_second)}   {state}",
        f"  languages  {_percentages(languages) or '-'}",
        f"  hashtags   {hashtags}",
        f"  reconnects {reconnects}   dropped {dropped}{reasons}   keep-alives {view.keep_alives}",
    ]


def _plain_line(view: _View) -> str:
    with view.lock:
        per_second = list(view.per_second)
        languages = dict(view.languages)
    rate = f"{per_second[-1]}/s" if per_second else "-/s"
    langs = " ".join(k for k, _ in _top(languages, 4))
    tags = " ".join(tag for tag, _ in view.hashtags[:4])
    return (
        f"{view.elapsed():6.1f} s  tweets {view.tweets:,} ({rate})  "
        f"languages {langs or '-'}  hashtags {tags or '-'}"
    )


def _when(delay: float) -> str:
    return "at once" if delay <= 0 else f"in {delay:.2g} s"


class _Events:
    """Turns ``stream.events`` into view state and one printed line per notable event."""

    def __init__(self, view: _View, console: Console) -> None:
        self.view = view
        self.console = console

    def say(self, text: str, *styles: str) -> None:
        stamp = self.console.style(f"{self.view.elapsed():6.1f} s", "dim")
        self.console.print(f"{stamp}  {self.console.style(text, *styles)}")

    def __call__(self, event: StreamEvent) -> None:
        view = self.view
        kind = type(event)
        if kind is KeepAlive:
            view.keep_alives += 1
        elif isinstance(event, Connected):
            view.state = "streaming"
            self.say("connected: HTTP 200, streaming", "green")
        elif isinstance(event, Reconnecting):
            with view.lock:
                view.reconnects.append((view.elapsed(), event))
            view.state = f"reconnecting {_when(event.delay)}"
            self.say(
                f"reconnect #{event.attempt} {_when(event.delay)}: {describe_cause(event.cause)}",
                "yellow",
            )
        elif isinstance(event, MalformedMessage):
            with view.lock:
                view.drops[event.reason] = view.drops.get(event.reason, 0) + 1
            self.say(f"dropped a malformed line: {event.reason} ({len(event.raw)} bytes)", "red")
        elif isinstance(event, Closed):
            view.state = "closed by the server"
        elif isinstance(event, Errored):
            view.failure = event.exception
            view.failed.set()


# --- the command ----------------------------------------------------------------------------


def _intro(console: Console, url: str) -> None:
    x = ReconnectPolicy()
    scaled = demo_policy()
    console.print(
        console.style("rxtweet demo", "bold")
        + f": generated tweets from a local fake X API at {url}"
    )
    console.print("(no network, no credentials). On purpose, the server cuts the connection,")
    console.print("answers 503, stalls, closes the stream and sends malformed lines.")
    console.print(
        console.style(
            f"Reconnect waits are scaled down {1 / DEMO_SCALE:g}x for the demo "
            f"({scaled.http_wait_start:g} s after an HTTP error, not {x.http_wait_start:g} s;"
            f"\na stall is detected after {DEMO_STALL_TIMEOUT:g} s, not 21 s). Real streams "
            "follow X's guidance: ReconnectPolicy().",
            "dim",
        )
    )
    console.print("")


def _summary(view: _View, console: Console, by_reason: dict[str, int]) -> None:
    elapsed = view.elapsed()
    console.print("")
    console.print(console.style("summary", "bold"))
    console.print(f"  elapsed     {elapsed:.1f} s")
    rate = view.tweets / elapsed if elapsed > 0 else 0.0
    keep_alives = f", keep-alives {view.keep_alives}" if view.keep_alives else ""
    console.print(f"  tweets      {view.tweets} ({rate:.1f}/s){keep_alives}")
    with view.lock:
        reconnects = list(view.reconnects)
        languages = dict(view.languages)
    console.print(f"  reconnects  {len(reconnects)}")
    if len(reconnects) > _SHOWN_RECONNECTS:
        console.print(f"    ... {len(reconnects) - _SHOWN_RECONNECTS} earlier, then:")
    for at, event in reconnects[-_SHOWN_RECONNECTS:]:
        console.print(
            f"    at {at:5.1f} s  #{event.attempt} {_when(event.delay):<9} "
            f"{describe_cause(event.cause)}"
        )
    dropped = sum(by_reason.values())
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(by_reason.items()))
    console.print(
        f"  dropped     {dropped} malformed line{'s' if dropped != 1 else ''}"
        + (f": {reasons}" if reasons else "")
    )
    console.print(f"  languages   {_percentages(languages, 8) or '-'}")
    console.print(f"  hashtags    {', '.join(f'{t} {n}' for t, n in view.hashtags) or '-'}")


def run_demo(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet demo``: see the module docstring."""
    if not args.seconds > 0 or not args.rate > 0:
        raise CliError("--seconds and --rate must be > 0", ExitCode.USAGE, usage=True)
    seconds: float | None = None if args.forever else args.seconds
    cycle_seconds = min(args.seconds, 20.0) if args.forever else args.seconds
    period = _segment(args.rate, cycle_seconds, 1.0)
    before = set(threading.enumerate())
    tick = 0.2 if console.tty else 0.25
    plain_every = max(1.0, min(5.0, cycle_seconds / 4))
    disposables = CompositeDisposable()
    interrupted = False

    server = FakeStreamServer(
        messages=_messages(args.seed, period),
        bearer_token=_TOKEN,
        keepalive_interval=1.0,
        default=Attempt(rate=args.rate),
    )
    with server:
        server.script(*_fault_cycle(args.rate, cycle_seconds))
        _intro(console, server.url)
        client = StreamingClient(
            _TOKEN,
            base_url=server.url,
            reconnect=demo_policy(),
            stall_timeout=DEMO_STALL_TIMEOUT,
        )
        stream = client.sample_stream(tweet_fields=["lang", "entities", "created_at"])
        view = _View(time.monotonic())
        with stream.hold():
            _subscribe_pipelines(stream.tweets, view, disposables)
            disposables.add(stream.events.subscribe(_Events(view, console)))
        next_plain = view.started + plain_every
        try:
            while not view.failed.wait(tick):
                now = time.monotonic()
                if args.forever and len(server.scripted) <= 1:
                    server.script(*_fault_cycle(args.rate, cycle_seconds))
                if console.tty:
                    console.live(_live_lines(view, seconds))
                elif now >= next_plain:
                    console.print(_plain_line(view))
                    next_plain += plain_every
                if console.broken or (seconds is not None and now - view.started >= seconds):
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            disposables.dispose()
            console.clear()
    if console.broken:  # e.g. `rxtweet demo | head`: the reader has seen enough
        join_new_threads(before)
        silence_stdout()
        return ExitCode.OK
    by_reason = dict(stream.stats.by_reason)
    _summary(view, console, by_reason)
    leftover = join_new_threads(before)
    if leftover:
        log.debug("threads still running after the demo: %s", leftover)
    if view.failure is not None:
        raise view.failure
    if interrupted and not args.forever:
        return ExitCode.INTERRUPTED
    return ExitCode.OK


COMMAND = Command(
    "demo",
    "stream from a built-in fake X API with injected faults (offline, ~20 s)",
    run_demo,
    add_demo_arguments,
)
