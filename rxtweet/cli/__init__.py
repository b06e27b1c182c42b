"""The ``rxtweet`` command line: stream X (Twitter) to JSONL, manage rules, replay, demo.

Commands::

    rxtweet demo                          # offline: a fake X API, injected faults, live stats
    rxtweet sample -o tweets.jsonl        # the 1% sample stream to JSONL
    rxtweet filter --limit 100            # the filtered stream (rules: `rxtweet rules`)
    rxtweet rules list|add|delete|sync    # the filtered stream's rules
    rxtweet firehose --partitions 1-20    # the firehose, one connection a partition
    rxtweet sample10 --partitions 1,2     # the decahose
    rxtweet compliance tweets|users|likes # compliance events
    rxtweet likes firehose|sample10 --partitions all
    rxtweet labels                        # public tweet notices, unviewable tweets
    rxtweet activity [subscriptions list|add|delete]
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from .._version import __version__
from . import activity, consume, demo, nats_server, rules, serve, stream, streams
from .common import (
    EXIT_CODES_HELP,
    CliError,
    ExitCode,
    Redactor,
    error_for,
    register_base_url,
)
from .console import Console, ConsoleHandler, printable
from .logfile import log_file_handler
from .spec import Command, Run

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

log = logging.getLogger(__name__)

#: The commands, in the order of ``rxtweet --help``; each module owns its spec.
COMMANDS: tuple[Command, ...] = (
    demo.COMMAND,
    stream.SAMPLE,
    stream.FILTER,
    stream.RECORD,
    rules.COMMAND,
    streams.FIREHOSE,
    streams.SAMPLE10,
    streams.COMPLIANCE,
    streams.LIKES,
    streams.LABELS,
    activity.COMMAND,
    serve.COMMAND,
    consume.COMMAND,
    nats_server.COMMAND,
)

#: Loggers whose WARNING/INFO records the command line replaces with its own notices.
_QUIET_LOGGERS = ("rxtweet.reconnect", "rxtweet.parse", "rxtweet.basestream", "rxtweet.v2")


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


def _bearer_parent() -> argparse.ArgumentParser:
    # The v2-only commands (firehose, compliance ...): no v1.1 OAuth flags in their help.
    parent = argparse.ArgumentParser(add_help=False)
    auth = parent.add_argument_group(
        "credentials (default: from the environment; flags are visible to other users in `ps`)"
    )
    auth.add_argument("--bearer-token", metavar="TOKEN", help="API v2 ($X_BEARER_TOKEN)")
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
    """The argument parser of ``rxtweet`` and its sub-commands (:data:`COMMANDS`, in order)."""
    parents = {
        "verbose": _verbose_parent(),
        "auth": _auth_parent(),
        "bearer": _bearer_parent(),
    }
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
    for spec in COMMANDS:
        sub = commands.add_parser(
            spec.name,
            help=spec.help,
            description=spec.description if spec.description is not None else spec.help,
            parents=[parents["verbose"], *(parents[name] for name in spec.parents)],
            epilog=spec.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=spec.run, usage_parser=sub)
        spec.add_arguments(sub, parents)
    return parser


@contextmanager
def _logging(
    console: Console,
    redactor: Redactor,
    verbose: bool,
    log_file: logging.Handler | None = None,
) -> Iterator[None]:
    """Route log records to ``console`` (redacted) and to ``log_file`` (``--log``) for the
    duration of one command."""
    root = logging.getLogger()
    handler = ConsoleHandler(console, redactor, quiet_loggers=() if verbose else _QUIET_LOGGERS)
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handlers: list[logging.Handler] = [handler] if log_file is None else [handler, log_file]
    old_level = root.level
    for each in handlers:
        root.addHandler(each)
    wanted = min(each.level for each in handlers)
    root.setLevel(wanted if verbose else min(old_level or logging.WARNING, wanted))
    try:
        yield
    finally:
        for each in handlers:
            root.removeHandler(each)
        root.setLevel(old_level)
        if log_file is not None:
            log_file.close()


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
    run: Run = args.run
    log_path: str | None = getattr(args, "log", None)
    try:
        log_file = log_file_handler(log_path, redactor, verbose=args.verbose) if log_path else None
    except CliError as exc:
        return _report(errors, redactor, exc, args)
    with _logging(errors, redactor, args.verbose, log_file):
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
