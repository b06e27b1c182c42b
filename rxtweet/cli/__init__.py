"""The ``rxtweet`` command line: stream X (Twitter) to JSONL, manage rules, replay, demo.

Commands::

    rxtweet demo                          # offline: a fake X API, injected faults, live stats
    rxtweet sample -o tweets.jsonl        # the 1% sample stream to JSONL
    rxtweet filter --limit 100            # the filtered stream (rules: `rxtweet rules`)
    rxtweet rules list|add|delete|sync    # the filtered stream's rules
    rxtweet record -o rec.jsonl           # lines with receive times, for `serve`
    rxtweet serve rec.jsonl --loop        # replay a file as a local fake X API

Credentials come from the environment (``X_BEARER_TOKEN`` for API v2; ``X_CONSUMER_KEY``,
``X_CONSUMER_SECRET``, ``X_ACCESS_TOKEN``, ``X_ACCESS_TOKEN_SECRET`` for ``--v1``) or from
flags, and are never echoed. ``main()`` returns the exit status (see ``rxtweet --help``).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from .._version import __version__
from .common import (
    EXIT_CODES_HELP,
    CliError,
    ExitCode,
    Redactor,
    error_for,
    register_base_url,
)
from .console import Console, ConsoleHandler, printable
from .demo import add_demo_arguments, run_demo
from .rules import add_rules_arguments, run_rules
from .serve import DESCRIPTION as SERVE_DESCRIPTION
from .serve import add_serve_arguments, run_serve
from .stream import add_stream_arguments, run_filter, run_record, run_sample

__all__ = ["build_parser", "main"]

log = logging.getLogger("rxtweet.cli")

Command = Callable[[argparse.Namespace, Redactor, Console], int]

#: Loggers whose WARNING/INFO records the command line replaces with its own notices.
_QUIET_LOGGERS = ("rxtweet.reconnect", "rxtweet.parse", "rxtweet.stream", "rxtweet.v2")


def _auth_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    auth = parent.add_argument_group(
        "credentials (default: from the environment; flags are visible to other users in `ps`)"
    )
    auth.add_argument("--bearer-token", metavar="TOKEN", help="API v2 ($X_BEARER_TOKEN)")
    auth.add_argument("--consumer-key", metavar="KEY", help="--v1 ($X_CONSUMER_KEY)")
    auth.add_argument("--consumer-secret", metavar="SECRET", help="--v1 ($X_CONSUMER_SECRET)")
    auth.add_argument("--access-token", metavar="TOKEN", help="--v1 ($X_ACCESS_TOKEN)")
    auth.add_argument(
        "--access-token-secret", metavar="SECRET", help="--v1 ($X_ACCESS_TOKEN_SECRET)"
    )
    parent.add_argument(
        "--base-url",
        metavar="URL",
        help="API root, e.g. the URL printed by `rxtweet serve` (default: X's)",
    )
    return parent


def _verbose_parent(default: object = argparse.SUPPRESS) -> argparse.ArgumentParser:
    # Sub-commands SUPPRESS their default, so `rxtweet -v sample` keeps the top-level True.
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="log at DEBUG on stderr (secrets redacted)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rxtweet`` and its sub-commands."""
    verbose = _verbose_parent()
    auth = _auth_parent()
    parser = argparse.ArgumentParser(
        prog="rxtweet",
        description="Stream X (Twitter) to JSONL, manage filtered-stream rules, replay "
        "recordings as a local fake API, or watch the offline demo.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_verbose_parent(default=False)],
    )
    parser.add_argument("--version", action="version", version=f"rxtweet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, run: Command, help_: str, parents: list[argparse.ArgumentParser], **kw: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_,
            description=kw.get("description", help_),
            parents=[verbose, *parents],
            epilog=kw.get("epilog"),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run, usage_parser=sub)
        return sub

    demo = command(
        "demo",
        run_demo,
        "stream from a built-in fake X API with injected faults (offline, ~20 s)",
        [],
    )
    add_demo_arguments(demo)

    sample = command(
        "sample",
        run_sample,
        "write the sample stream (about 1%% of all tweets) as JSONL",
        [auth],
        description="Write the sample stream as JSONL: each message exactly as X sent it, one\n"
        "per line. Keep-alives are counted; malformed lines are reported on stderr and skipped.\n"
        "A progress line (messages, rate, reconnects, drops) is shown when stderr is a terminal.",
        epilog="examples:\n  rxtweet sample -o sample.jsonl --limit 1000 "
        "--tweet-fields lang,created_at\n  rxtweet sample --v1 -o statuses.jsonl",
    )
    add_stream_arguments(sample, filtered=False)

    filtered = command(
        "filter",
        run_filter,
        "write the filtered stream (tweets matching your rules) as JSONL",
        [auth],
        description="Write the filtered stream as JSONL, like `sample`. With API v2 the tweets\n"
        "match the rules set with `rxtweet rules`; with --v1, --track/--follow/--locations.",
        epilog="examples:\n  rxtweet rules add 'cat has:images' --tag cats\n"
        "  rxtweet filter -o cats.jsonl --expansions author_id\n"
        "  rxtweet filter --v1 --track python,rxpy --follow 783214,2244994945",
    )
    add_stream_arguments(filtered, filtered=True)

    record = command(
        "record",
        run_record,
        "record a stream's raw lines with receive times, for `serve --timing original`",
        [auth],
        description="Record every line as received, with its time, as JSONL entries\n"
        '  {"t": <epoch seconds>, "line": "<the raw line>"}\n'
        'after a header line {"rxtweet": "record", "version": 1, "endpoint": ..., "t": ...}.\n'
        '"line": "" is a keep-alive; malformed lines are kept; a line that is not UTF-8 is\n'
        'stored as {"t": ..., "b64": "<base64>"}. Replay with `rxtweet serve FILE`.',
        epilog="examples:\n  rxtweet record -o rec.jsonl --limit 500\n"
        "  rxtweet serve rec.jsonl --timing original",
    )
    record.add_argument(
        "endpoint",
        nargs="?",
        choices=("sample", "filter"),
        default="sample",
        help="which stream (default: sample)",
    )
    add_stream_arguments(record, filtered=None)

    rules = command(
        "rules",
        run_rules,
        "list, add, delete or sync the filtered stream's rules (API v2)",
        [],
        epilog="examples:\n  rxtweet rules add 'python lang:en -is:retweet' --tag python\n"
        "  rxtweet rules list --json > rules.json\n  rxtweet rules delete --all\n"
        "  rxtweet rules sync rules.json --dry-run",
    )
    add_rules_arguments(rules, [verbose, auth])

    serve = command(
        "serve",
        run_serve,
        "replay a JSONL file or a recording as a local fake X streaming API",
        [],
        description=SERVE_DESCRIPTION,
        epilog="examples:\n  rxtweet serve tweets.jsonl --loop --rate 50\n"
        "  rxtweet serve rec.jsonl --timing original --port 8080\n"
        "  rxtweet serve tweets.jsonl --cut-every 100 --status 503 --times 2 --gzip",
    )
    add_serve_arguments(serve)
    return parser


@contextmanager
def _logging(console: Console, redactor: Redactor, verbose: bool) -> Iterator[None]:
    """Route log records to ``console`` (redacted) for the duration of one command."""
    root = logging.getLogger()
    handler = ConsoleHandler(console, redactor, quiet_loggers=() if verbose else _QUIET_LOGGERS)
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else min(old_level or logging.WARNING, logging.WARNING))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """In the main thread, SIGTERM stops a command as Ctrl-C does (output stays complete)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxtweet`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = _parse(parser, argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    redactor = Redactor()
    register_base_url(getattr(args, "base_url", None), redactor)
    # The demo's view is the point of the command: it goes to stdout. Others keep stdout
    # for data and talk on stderr.
    out = sys.stdout if args.command == "demo" else sys.stderr
    console = Console(out)
    errors = console if out is sys.stderr else Console(sys.stderr)
    if console.tty and errors.tty:
        errors = console  # one screen: one live block, and log lines print above it
    run: Command = args.run
    with _logging(errors, redactor, args.verbose):
        try:
            with _sigterm_as_interrupt():
                return int(run(args, redactor, console))
        except KeyboardInterrupt:
            errors.clear()
            return ExitCode.INTERRUPTED
        except CliError as exc:
            return _report(errors, redactor, exc, args)
        except Exception as exc:
            log.debug("%s failed", args.command, exc_info=True)
            return _report(errors, redactor, error_for(exc), args)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unknown option after a command is reported with *that* command's
    usage (argparse's own ``parse_args`` shows the top-level one), and a near miss is named."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        sub: argparse.ArgumentParser = getattr(args, "usage_parser", parser)
        known = [o for action in sub._actions for o in action.option_strings]
        message = f"unrecognized arguments: {' '.join(extras)}"
        for extra in extras:
            if extra.startswith("-"):
                close = difflib.get_close_matches(extra.split("=", 1)[0], known, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        sub.error(message)
    return args


def _report(console: Console, redact: Redactor, error: CliError, args: argparse.Namespace) -> int:
    console.clear()
    if error.usage:
        usage_parser: argparse.ArgumentParser = args.usage_parser
        console.print(redact(usage_parser.format_usage().rstrip()))
    prog = getattr(args, "usage_parser", None)
    name = prog.prog if isinstance(prog, argparse.ArgumentParser) else "rxtweet"
    # Redact first (a secret is plain ASCII), then escape what the server may have sent.
    console.print(printable(redact(f"{name}: error: {error.message}")))
    if error.hint:
        console.print(printable(redact(f"hint: {error.hint}")))
    return int(error.code)
