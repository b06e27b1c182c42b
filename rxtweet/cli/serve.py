"""``rxtweet serve FILE``: replay a file as a local fake X streaming API.

The file is plain JSONL (one message per line, e.g. from ``rxtweet sample``) or a recording
from ``rxtweet record`` (see :mod:`rxtweet.cli.recording`). A
:class:`~rxtweet.testing.FakeStreamServer` serves it on every v2 and v1.1 stream path; the
messages form one cursor shared by all connections, so each is delivered once (``--loop``
starts the file over when it ends). The server also answers the rules endpoint from memory.

Timing: ``--rate`` messages per second (default), or ``--timing original`` to reproduce a
recording's gaps (the clock starts with the first stream connection; messages that arrive
while no client is connected wait for the next one). Faults: ``--cut-every N`` and
``--stall-every N`` end each connection after N messages with an abrupt close or with
silence (alternating when both are given); ``--status CODE --times N`` answers the first N
connections with an error; ``--gzip`` and ``--chunking`` change the wire format.

As X does (see :class:`~rxtweet.testing.FakeStreamServer`), each message carries only the
default fields plus what the request asks for (``--all-fields``: lines as they are), and the
filtered stream sends only lines matching the rules added through the rules endpoint and
answers 409 while there is none (``--ignore-rules``: every line, with its own
``matching_rules``). v1.1 paths serve the lines as they are.

The URL is printed on stdout (its own line, first); everything else goes to stderr. Runs
until Ctrl-C, then exits 0.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from ..testing import Attempt, FakeStreamServer
from ..testing.server import V1_STREAM_PATHS, V2_STREAM_PATHS
from .common import CliError, ExitCode, Redactor
from .console import Console
from .recording import RecordingError, detect_format, read_entries
from .spec import Command

__all__ = ["COMMAND", "DESCRIPTION", "add_serve_arguments", "run_serve", "token_hint"]

#: ``rxtweet serve --help``: the docstring above, as plain text.
DESCRIPTION = """\
Replay FILE as a local fake X streaming API. FILE is plain JSONL (one message per line,
e.g. from `rxtweet sample`) or a recording from `rxtweet record`. Every v2 and v1.1 stream
path serves it; all connections share one cursor, so each message is delivered once
(--loop starts the file over at its end). The rules endpoint answers from memory.

Timing: --rate messages per second, or --timing original to reproduce a recording's gaps
(the clock starts with the first stream connection). Faults: --cut-every N / --stall-every N
end each connection after N messages abruptly / with silence (alternating when both are
given); --status CODE --times N answer the first N connections with an error; --gzip and
--chunking change the wire format.

As X does, each message carries only the default fields plus the requested tweet.fields,
expansions, user.fields... (--all-fields: lines as they are), and the filtered stream sends
only lines matching the rules added through the rules endpoint, with those rules in
matching_rules, and answers 409 while there is none (--ignore-rules: every line as it is).

The URL is printed on stdout, first; everything else goes to stderr. Runs until Ctrl-C,
then exits 0."""

_TICK = 0.2


def add_serve_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser] | None = None
) -> None:
    """The options of ``serve``."""
    parser.add_argument("file", metavar="FILE", help="JSONL messages or an `rxtweet record` file")
    where = parser.add_argument_group("where")
    where.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    where.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: any free port)"
    )
    pace = parser.add_argument_group("pace")
    pace.add_argument(
        "--rate",
        type=float,
        default=20.0,
        metavar="R",
        help="messages per second (default 20; 0: as fast as the client reads)",
    )
    pace.add_argument(
        "--timing",
        choices=("rate", "original"),
        default="rate",
        help="'original' replays a recording with its original gaps",
    )
    pace.add_argument("--loop", action="store_true", help="start over at the end of the file")
    pace.add_argument(
        "--keepalive",
        type=float,
        default=20.0,
        metavar="S",
        help="send a keep-alive after S seconds of silence (default 20, as X)",
    )
    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--cut-every", type=int, metavar="N", help="cut each connection after N messages"
    )
    faults.add_argument(
        "--stall-every", type=int, metavar="N", help="go silent after N messages per connection"
    )
    faults.add_argument(
        "--status", type=int, metavar="CODE", help="answer connections with HTTP CODE first"
    )
    faults.add_argument(
        "--times", type=int, default=1, metavar="N", help="how many connections get --status"
    )
    faults.add_argument("--gzip", action="store_true", help="gzip the stream")
    faults.add_argument(
        "--chunking",
        choices=("line", "random", "byte"),
        default="line",
        help="HTTP chunk boundaries (default: one chunk per message)",
    )
    api = parser.add_argument_group("API")
    api.add_argument(
        "--require-token",
        metavar="TOKEN",
        help="answer 401 to /2/ requests without this bearer token (default: accept any)",
    )
    api.add_argument(
        "--require-rules",
        action="store_true",
        help="answer the filtered stream with 409 while it has no rules, as X does "
        "(the default; with --ignore-rules too)",
    )
    api.add_argument(
        "--all-fields",
        action="store_true",
        help="send every line as it is in FILE (default: only X's default fields plus the "
        "requested tweet.fields/expansions/user.fields/..., as X does)",
    )
    api.add_argument(
        "--ignore-rules",
        action="store_true",
        help="filtered stream: send every line with its own matching_rules, without rules "
        "(default: only lines matching the rules added through the rules endpoint, as X does)",
    )


class _Source:
    """The messages to serve, read lazily from the file (again and again with ``--loop``)."""

    def __init__(
        self,
        path: Path,
        kind: Literal["record", "jsonl"],
        *,
        loop: bool,
        keep_alives: bool,
        console: Console,
    ) -> None:
        self.path = path
        self.kind = kind
        self.loop = loop
        self.keep_alives = keep_alives
        self.console = console
        self.exhausted = threading.Event()

    def entries(self) -> Iterator[tuple[bytes, float | None, bool]]:
        """``(line, t, starts a session)`` for every line, looping if asked."""
        try:
            while True:
                count = 0
                for entry in read_entries(self.path, self.kind):
                    if not entry.raw and not self.keep_alives:
                        continue
                    count += 1
                    yield entry.raw, entry.t, entry.start or count == 1
                if not self.loop or count == 0:
                    break
        except RecordingError as exc:
            self.console.print(f"rxtweet serve: stopped reading: {exc}")
        finally:
            self.exhausted.set()

    def messages(self) -> Iterator[bytes]:
        """Just the lines."""
        for raw, _, _ in self.entries():
            yield raw


def _feed_original_timing(server: FakeStreamServer, source: _Source, stop: threading.Event) -> None:
    """Feed the lines at their recorded offsets, from the first stream connection on."""
    while not stop.is_set():
        try:
            server.wait_for_requests(1, timeout=_TICK)
            break
        except TimeoutError:
            continue
    origin = time.monotonic()
    base: float | None = None
    last_due = origin
    for raw, t, starts in source.entries():
        if t is None:
            continue
        if base is None or starts or t < base:
            # A new recording session (or the clock went back): continue right after.
            origin, base = last_due, t
        due = max(last_due, origin + (t - base))
        if stop.wait(max(0.0, due - time.monotonic())):
            return
        last_due = due
        server.feed(raw)


def run_serve(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet serve FILE``."""
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"no such file: {path}", ExitCode.USAGE, usage=True)
    kind = detect_format(path)
    original = args.timing == "original"
    if original and kind != "record":
        raise CliError(
            "--timing original needs a recording made with `rxtweet record` "
            f"({path} is plain JSONL, without receive times)",
            ExitCode.USAGE,
            usage=True,
        )
    if original and (args.cut_every or args.stall_every):
        raise CliError(
            "--cut-every/--stall-every work with --timing rate only", ExitCode.USAGE, usage=True
        )
    for name in ("cut_every", "stall_every", "times"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CliError(f"--{name.replace('_', '-')} must be >= 1", ExitCode.USAGE, usage=True)
    if args.rate < 0 or args.keepalive <= 0:
        raise CliError("--rate must be >= 0 and --keepalive > 0", ExitCode.USAGE, usage=True)
    redactor.add(args.require_token)

    source = _Source(path, kind, loop=args.loop, keep_alives=original, console=console)
    try:
        default = Attempt(
            rate=None if original or args.rate == 0 else args.rate,
            chunking=args.chunking,
            gzip=args.gzip,
            ending="hold",
        )
        errors = [Attempt(status=args.status)] * args.times if args.status is not None else []
    except ValueError as exc:
        raise CliError(str(exc), ExitCode.USAGE, usage=True) from exc
    cycle: list[Attempt] = []
    if args.cut_every:
        cycle.append(replace(default, messages=args.cut_every, ending="cut"))
    if args.stall_every:
        cycle.append(replace(default, messages=args.stall_every, ending="stall"))
    server = FakeStreamServer(
        messages=() if original else source.messages(),
        bearer_token=args.require_token,
        keepalive_interval=args.keepalive,
        default=default,
        fields="all" if args.all_fields else "requested",
        match_rules=not args.ignore_rules,
        require_rules=args.require_rules or not args.ignore_rules,
        host=args.host,
        port=args.port,
    )
    try:
        server.start()
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    stop = threading.Event()
    feeder: threading.Thread | None = None
    try:
        server.script(*errors, *cycle)
        sys.stdout.write(server.url + "\n")
        sys.stdout.flush()
        _announce(console, server, path, kind, args)
        if original:
            feeder = threading.Thread(
                target=_feed_original_timing,
                args=(server, source, stop),
                name="rxtweet-serve-feeder",
                daemon=True,
            )
            feeder.start()
        requests = _RequestLog(server, console)
        try:
            while True:
                if cycle and not source.exhausted.is_set() and len(server.scripted) < 2:
                    server.script(*cycle)
                requests.report()
                time.sleep(_TICK)
        except KeyboardInterrupt:
            pass
    finally:
        stop.set()
        server.stop()
        if feeder is not None:
            feeder.join(2.0)
    requests.report()
    streams = len(server.stream_requests)
    console.print(
        f"stopped: served {server.sent:,} messages over {streams} stream connection"
        f"{'s' if streams != 1 else ''}"
    )
    return ExitCode.OK


class _RequestLog:
    """Prints each request once the server has answered it (method, path, status)."""

    def __init__(self, server: FakeStreamServer, console: Console) -> None:
        self.server = server
        self.console = console
        self.seen = 0
        self.pending: list[int] = []

    def report(self) -> None:
        requests = self.server.requests
        self.pending.extend(range(self.seen, len(requests)))
        self.seen = len(requests)
        still: list[int] = []
        for index in self.pending:
            request = requests[index]
            if request.status == 0:
                still.append(index)
                continue
            self.console.print(
                f"  {request.method} {request.path} -> {request.status}"
                f"  (connection {request.connection})"
            )
        self.pending = still


def _announce(
    console: Console,
    server: FakeStreamServer,
    path: Path,
    kind: str,
    args: argparse.Namespace,
) -> None:
    if args.timing == "original":
        pace = "original timing"
    elif args.rate == 0:
        pace = "as fast as clients read"
    else:
        pace = f"{args.rate:g} messages/s"
    what = "recording" if kind == "record" else "JSONL"
    loop = ", looping" if args.loop else ""
    console.print(f"serving {path} ({what}, {pace}{loop}) at {server.url}")
    v2 = sorted(p for p in V2_STREAM_PATHS if p.startswith("/2/tweets/s"))
    console.print(f"  v2:   {'  '.join(v2)}  (rules: /2/tweets/search/stream/rules)")
    console.print(f"  v1.1: {'  '.join(sorted(V1_STREAM_PATHS))}")
    shaping = []
    if not args.all_fields:
        shaping.append("fields as requested (--all-fields: lines as they are)")
    if not args.ignore_rules:
        shaping.append(
            "filtered stream: lines matching the rules added with `rxtweet rules add` "
            "(--ignore-rules: every line)"
        )
    if shaping:
        console.print(f"  as X: {'; '.join(shaping)}")
    console.print(
        f"  try:  X_BEARER_TOKEN={token_hint(args.require_token)} rxtweet sample "
        f"--base-url {server.url}"
    )
    console.print("Ctrl-C to stop")


#: X's app-only bearer tokens start like this: such a value is a real credential.
_REAL_TOKEN_PREFIX = "AAAAAAAAAAAAAAAAAAAAA"  # noqa: S105 - a prefix to detect, not a secret


def token_hint(token: str | None) -> str:
    """The ``X_BEARER_TOKEN`` value to show in the ``try:`` hint, shell-quoted.

    Without ``--require-token`` any token works. With it, the hint must carry that token
    or the suggested command fails with 401 (exit 4): the value is the user's own test token
    for a loopback server, chosen on this very command line, so it is shown - unless it looks
    like a real X bearer token (someone reusing their credential), which is never echoed.
    """
    if token is None:
        return "any"
    if token.startswith(_REAL_TOKEN_PREFIX) or len(token) > 64:
        return "'<the --require-token value>'"
    return shlex.quote(token)


COMMAND = Command(
    "serve",
    "replay a JSONL file or a recording as a local fake X streaming API",
    run_serve,
    add_serve_arguments,
    description=DESCRIPTION,
    epilog="examples:\n  rxtweet serve tweets.jsonl --loop --rate 50\n"
    "  rxtweet serve rec.jsonl --timing original --port 8080\n"
    "  rxtweet serve tweets.jsonl --cut-every 100 --status 503 --times 2 --gzip",
)
