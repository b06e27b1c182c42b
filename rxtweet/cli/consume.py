"""``rxtweet consume nats://... --durable NAME``, and ``--to nats://...`` of the stream commands.

``consume`` reads a JetStream durable consumer (:func:`rxtweet.nats.consume`) and writes each
message's line, as stored (the raw line X sent), as JSONL to ``-o`` (default stdout); any
number of ``consume`` processes with the same ``--durable`` share the messages. A line is
acked once written (and flushed); Ctrl-C or ``--limit`` ends the run.

``--to nats://HOST:PORT`` on a stream command (:func:`add_to_argument`) publishes instead of
writing: :func:`publish_opened` runs the stream into :func:`rxtweet.nats.publish` until
``--limit`` messages were acked, an error, or Ctrl-C.

Both need nats-py (``pip install rxtweet[nats]``); without it they exit 2 with that hint.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, BinaryIO

from ..http import redact_url
from .common import CliError, ExitCode, Redactor, positive_float, positive_int
from .console import Console
from .spec import Command

__all__ = ["COMMAND", "add_to_argument", "publish_opened", "run_consume"]

log = logging.getLogger(__name__)

_TICK = 0.25


def add_consume_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser] | None = None
) -> None:
    """The options of ``consume``."""
    parser.add_argument(
        "servers", metavar="URL", help="NATS server(s), comma-separated: nats://127.0.0.1:4222"
    )
    parser.add_argument(
        "--durable",
        required=True,
        help="the durable consumer's name; processes sharing it share the messages",
    )
    parser.add_argument("--stream-name", default="RXTWEET", help="JetStream stream (RXTWEET)")
    parser.add_argument("--subject", help="only messages of this subject, e.g. x.firehose.*")
    parser.add_argument(
        "--kind",
        default="tweets",
        choices=("tweets", "compliance", "likes", "labels", "activity"),
        help="messages without an Rxtweet-Kind header are parsed as this kind (tweets)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", default="-", help="append to FILE")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="stop after N messages")
    parser.add_argument("--batch", type=positive_int, default=50, help="messages per fetch")
    parser.add_argument(
        "--ack-wait", type=positive_float, default=30.0, metavar="S", help="seconds (30)"
    )
    parser.add_argument("--max-deliver", type=positive_int, default=5, metavar="N")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")


def _nats() -> Any:
    try:
        import rxtweet.nats as module
        from rxtweet.nats.jetstream import require_nats

        require_nats()
    except ImportError as exc:
        raise CliError(
            "this needs nats-py", ExitCode.USAGE, hint="pip install rxtweet[nats]"
        ) from exc
    return module


def run_consume(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet consume``."""
    nats = _nats()
    observable = nats.consume(
        args.servers,
        stream_name=args.stream_name,
        durable=args.durable,
        subject=args.subject,
        batch=args.batch,
        ack_wait=args.ack_wait,
        max_deliver=args.max_deliver,
        kind=args.kind,
    )
    out: BinaryIO = sys.stdout.buffer if args.output == "-" else open(args.output, "ab")  # noqa: SIM115
    done = threading.Event()
    failure: list[BaseException] = []
    count = [0]
    limit: int | None = args.limit

    def on_next(parsed: Any) -> None:
        if done.is_set():
            raise RuntimeError("stopping")  # not written: nak'ed, redelivered to another
        out.write(parsed.raw + b"\n")
        out.flush()  # written before the ack
        count[0] += 1
        if limit is not None and count[0] >= limit:
            done.set()

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    started = time.monotonic()
    subscription = observable.subscribe(on_next, on_error)
    interrupted = False
    try:
        while not done.wait(_TICK):
            pass
    except KeyboardInterrupt:
        interrupted = True
    finally:
        done.set()
        subscription.dispose()
        if out is not sys.stdout.buffer:
            out.close()
    if failure:
        raise CliError(str(failure[0])) from failure[0]
    if not args.quiet:
        stats = observable.stats
        console.print(
            f"{count[0]:,} messages written to {'stdout' if args.output == '-' else args.output} "
            f"in {time.monotonic() - started:.1f} s; {stats.nacked} nak'ed, "
            f"{stats.dead_lettered} dead-lettered" + ("; interrupted" if interrupted else "")
        )
    return ExitCode.INTERRUPTED if interrupted else ExitCode.OK


def add_to_argument(parser: argparse.ArgumentParser) -> None:
    """``--to URL`` (and ``--nats-stream``) for a stream command: publish to NATS JetStream
    instead of writing JSONL."""
    group = parser.add_argument_group("scale out (pip install rxtweet[nats])")
    group.add_argument(
        "--to",
        metavar="URL",
        help="publish each message to NATS JetStream at URL (nats://127.0.0.1:4222) instead "
        "of writing it; each tweet stored once (Nats-Msg-Id = its id)",
    )
    group.add_argument(
        "--nats-stream", default="RXTWEET", metavar="NAME", help="the JetStream stream"
    )


def publish_opened(opened: Any, args: argparse.Namespace, console: Console) -> int:
    """Publish ``opened.stream`` to ``args.to`` until ``--limit`` messages were acked, an
    error, or Ctrl-C; return the exit status.

    Raises:
        CliError: nats-py is missing, the command's stream cannot be published, or
            publishing failed.
    """
    nats = _nats()
    if opened.stream is None:
        raise CliError("--to: this command's stream cannot be published", ExitCode.USAGE)
    publisher = nats.publish(args.to, stream_name=args.nats_stream)
    where = redact_url(args.to)
    limit: int | None = getattr(args, "limit", None)
    quiet: bool = getattr(args, "quiet", False)
    done = threading.Event()
    failure: list[BaseException] = []
    stats = publisher.stats

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    subscription = publisher.publish(opened.stream).subscribe(
        on_error=on_error, on_completed=done.set
    )
    started = time.monotonic()
    interrupted = False
    try:
        while not done.wait(_TICK):
            if limit is not None and stats.acked >= limit:
                break
            if console.tty and not quiet:
                console.live([f"-> {where}: {stats.acked:,} stored or duplicate"])
    except KeyboardInterrupt:
        interrupted = True
    finally:
        subscription.dispose()  # waits for the acks of what was handed over
        console.clear()
    if failure:
        raise CliError(f"publishing to {where} failed: {failure[0]}") from failure[0]
    if not quiet:
        console.print(
            f"{stats.published:,} messages stored in {args.nats_stream}, "
            f"{stats.duplicates:,} duplicates dropped by the server, {stats.retried:,} retried, "
            f"{stats.unconfirmed:,} unconfirmed, in {time.monotonic() - started:.1f} s"
            + ("; interrupted" if interrupted else "")
        )
    return ExitCode.INTERRUPTED if interrupted else ExitCode.OK


COMMAND = Command(
    "consume",
    "write the messages of a NATS JetStream durable consumer as JSONL (shared by workers)",
    run_consume,
    add_consume_arguments,
    epilog="examples:\n  rxtweet consume nats://127.0.0.1:4222 --durable workers -o out.jsonl\n"
    "  rxtweet consume nats://a:4222,nats://b:4222 --durable workers --subject 'x.firehose.*'",
)
