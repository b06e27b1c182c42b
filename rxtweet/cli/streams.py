"""``rxtweet firehose``, ``sample10``, ``compliance``, ``likes`` and ``labels``: the other v2
streams X serves, written as JSONL like ``rxtweet sample``.

Each command opens its stream with the matching :class:`~rxtweet.StreamingClient` method
(``firehose_stream``, ``sample10_stream``, ``compliance_stream``, ``likes_stream``,
``label_stream``) and hands it to :func:`rxtweet.cli.stream.write_stream`, so the output,
``--limit``, the progress line, the notices and the exit statuses are ``sample``'s.

``--partitions`` takes ``all``, a number, or a list of numbers and ranges (``1-20``,
``1,2``, ``1-4,9``). A partitioned stream is one connection per partition, merged into one
output; each partition reconnects on its own (its notices name it). Which partitions an
endpoint has, and whether they are required, is the library's business: a number out of
range or a missing ``--partitions`` is refused before connecting (exit 2), with the allowed
range. ``compliance tweets|users`` reads every partition unless told otherwise: a
compliance stream is only useful whole.

What ``--limit`` counts: tweets for ``firehose``/``sample10``, and the typed events for the
others (compliance events, likes, labels); system messages and errors are written but not
counted.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..v2 import StreamingClient
from ..v2 import params as v2_params
from .common import CliError, ExitCode, Redactor, bearer_token, error_for
from .console import Console
from .spec import Command
from .stream import (
    Opened,
    add_connection_arguments,
    add_output_arguments,
    connection_options,
    write_stream,
)

__all__ = [
    "COMPLIANCE",
    "FIREHOSE",
    "LABELS",
    "LIKES",
    "SAMPLE10",
    "Partitions",
    "add_v2_stream_arguments",
    "open_v2_stream",
    "parse_partitions",
]

log = logging.getLogger(__name__)

#: What ``--partitions`` gives the client: ``"all"`` or the numbers, in the order written.
Partitions = Literal["all"] | tuple[int, ...]

#: The languages of X's language firehoses (``--lang``).
FIREHOSE_LANGUAGES = ("en", "ja", "ko", "pt")

#: ``--like-with-tweet-author-fields``'s keyword in the likes stream methods.
LIKE_FIELDS = "like_with_tweet_author_fields"


def parse_partitions(text: str) -> Partitions:
    """``--partitions``: ``all``, ``N``, or numbers and ranges separated by commas.

    Only the syntax is checked here; the endpoint's range is checked by the client.

    >>> parse_partitions("1-3,7")
    (1, 2, 3, 7)
    >>> parse_partitions(" ALL ")
    'all'
    """
    text = text.strip()
    if text.lower() == "all":
        return "all"
    numbers: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a partition list: {text!r} (use e.g. 1-20, 1,2 or all)"
            ) from None
        if high < low:
            raise argparse.ArgumentTypeError(f"an empty range: {part.strip()!r}")
        numbers.extend(range(low, high + 1))
    return tuple(dict.fromkeys(numbers))


def _flag(keyword: str) -> str:
    return "--" + keyword.replace("_", "-")


def add_v2_stream_arguments(
    parser: argparse.ArgumentParser,
    *,
    counted: str,
    fields: tuple[str, ...] = (),
    partitions: str | None = None,
    time_range: bool = True,
) -> None:
    """The options of a v2 stream command: output (:func:`add_output_arguments`), the
    ``fields`` keywords (``tweet_fields`` -> ``--tweet-fields``), ``--partitions`` (with
    ``partitions`` as its help, when the endpoint has them), ``--backfill-minutes``,
    ``--start-time``/``--end-time`` (when ``time_range``) and the connection options."""
    add_output_arguments(parser, metadata=False, counted=counted)
    v2 = parser.add_argument_group("API v2")
    if partitions is not None:
        v2.add_argument("--partitions", type=parse_partitions, metavar="LIST", help=partitions)
    for keyword in fields:
        query = {**v2_params.FIELD_PARAMS, LIKE_FIELDS: "like_with_tweet_author.fields"}[keyword]
        v2.add_argument(_flag(keyword), metavar="LIST", help=f"comma-separated {query}")
    if fields:
        v2.add_argument(
            "--allow-unknown-fields",
            action="store_true",
            help="send field and expansion names rxtweet does not know (X added them "
            "recently) with a warning, instead of refusing them",
        )
    v2.add_argument(
        "--backfill-minutes",
        type=_backfill_minutes,
        metavar="N",
        help="recover up to N (0-5) minutes of missed messages (Enterprise access)",
    )
    if time_range:
        v2.add_argument(
            "--start-time",
            metavar="TIME",
            help="replay from TIME (YYYY-MM-DDTHH:MM:SSZ, within the last 24 h; Enterprise)",
        )
        v2.add_argument(
            "--end-time", metavar="TIME", help="replay up to TIME (exclusive; Enterprise)"
        )
    add_connection_arguments(parser)


def _backfill_minutes(text: str) -> int:
    value = int(text)
    if not 0 <= value <= v2_params.BACKFILL_MINUTES_MAX:
        raise argparse.ArgumentTypeError(f"must be from 0 to 5 (X's limit), not {value}")
    return value


def _params(args: argparse.Namespace, fields: tuple[str, ...]) -> dict[str, Any]:
    """The keyword arguments the options given ask for (those not given are left out, so
    that an endpoint that does not take a parameter is only told about it when asked)."""
    params: dict[str, Any] = {}
    for keyword in (*fields, "backfill_minutes", "start_time", "end_time"):
        value = getattr(args, keyword, None)
        if value is not None:
            params[keyword] = value
    if getattr(args, "allow_unknown_fields", False):
        params["strict"] = False
    return params


def v2_client(args: argparse.Namespace, redactor: Redactor) -> StreamingClient:
    """A :class:`StreamingClient` with the command's token and connection options
    (``return_type=dict`` for the REST calls, as ``rxtweet rules``)."""
    token = bearer_token(args, redactor)
    try:
        return StreamingClient(token, return_type=dict, **connection_options(args))
    except ValueError as exc:  # a control character in the token: the message names no value
        raise CliError(str(exc), ExitCode.USAGE) from exc


def open_v2_stream(
    args: argparse.Namespace,
    redactor: Redactor,
    build: Callable[[StreamingClient], Any],
    *,
    counts: Callable[[Any], bool],
    noun: str,
) -> Opened:
    """Build the stream (``build(client)``, which checks its parameters before anything
    connects) and what :func:`write_stream` needs of it.

    ``counts(message)`` says whether a message counts for ``--limit``; ``noun`` names those
    messages in the notices. A parameter the client refuses (a partition out of range, a
    missing ``--partitions``, an unknown field) is a usage error (exit 2), with the usage.
    """
    client = v2_client(args, redactor)
    try:
        stream = build(client)
    except (TypeError, ValueError) as exc:
        error = error_for(exc)
        if error.code != ExitCode.USAGE:
            error = CliError(str(exc), ExitCode.USAGE)
        error.usage = True
        raise error from exc
    connection = stream.connection
    partitions: tuple[int, ...] = tuple(getattr(connection, "partitions", None) or ())
    return Opened(
        stream.items,
        counts,
        connection.request,
        client.base_url,
        noun=noun,
        partitions=partitions,
        stream=stream,
    )


def _partitions_of(args: argparse.Namespace, default: Partitions | None = None) -> Any:
    value = args.partitions if args.partitions is not None else default
    return list(value) if isinstance(value, tuple) else value


def _has(attribute: str) -> Callable[[Any], bool]:
    """A ``counts`` predicate: the message's typed ``attribute`` is there (not a system
    message or an error)."""

    def counts(message: Any) -> bool:
        return getattr(message, attribute, None) is not None

    return counts


# --- the commands ---------------------------------------------------------------------------

_TWEET_FIELDS = tuple(v2_params.FIELD_PARAMS)
_LIKE_FIELDS = (LIKE_FIELDS, "expansions", "tweet_fields", "user_fields", "media_fields")


def _firehose_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    add_v2_stream_arguments(
        parser,
        counted="tweets",
        fields=_TWEET_FIELDS,
        partitions="partitions to read: all, N, or a list such as 1-20 or 1,3 (required; "
        "1-20, or 1-8 for --lang en, 1-2 for ja, ko, pt)",
    )
    parser.add_argument(
        "--lang",
        choices=FIREHOSE_LANGUAGES,
        help="the language firehose /2/tweets/firehose/stream/lang/LANG instead",
    )


def run_firehose(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet firehose --partitions LIST [--lang LANG]``."""
    params = _params(args, _TWEET_FIELDS)
    partitions = _partitions_of(args)
    opened = open_v2_stream(
        args,
        redactor,
        lambda client: client.firehose_stream(partitions=partitions, lang=args.lang, **params),
        counts=_has("data"),
        noun="tweets",
    )
    return write_stream(opened, args, console)


def _sample10_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    add_v2_stream_arguments(
        parser,
        counted="tweets",
        fields=_TWEET_FIELDS,
        partitions="partitions to read: all, 1, 2 or 1,2 (required; each holds half)",
    )


def run_sample10(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet sample10 --partitions LIST``."""
    params = _params(args, _TWEET_FIELDS)
    partitions = _partitions_of(args)
    opened = open_v2_stream(
        args,
        redactor,
        lambda client: client.sample10_stream(partitions=partitions, **params),
        counts=_has("data"),
        noun="tweets",
    )
    return write_stream(opened, args, console)


def _compliance_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    parser.add_argument(
        "kind",
        choices=("tweets", "users", "likes"),
        help="/2/tweets/compliance/stream, /2/users/compliance/stream or "
        "/2/likes/compliance/stream",
    )
    add_v2_stream_arguments(
        parser,
        counted="compliance events",
        partitions="partitions to read for tweets and users: all, N or a list such as 1-4 "
        "(default: all 4); likes has none",
    )


def run_compliance(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet compliance tweets|users|likes [--partitions LIST]``."""
    params = _params(args, ())
    kind: str = args.kind
    partitions = _partitions_of(args, None if kind == "likes" else "all")
    opened = open_v2_stream(
        args,
        redactor,
        lambda client: client.compliance_stream(kind, partitions=partitions, **params),
        counts=_has("event"),
        noun="compliance events",
    )
    return write_stream(opened, args, console)


def _likes_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    parser.add_argument(
        "kind",
        choices=("firehose", "sample10"),
        help="/2/likes/firehose/stream (partitions 1-20) or /2/likes/sample10/stream (1-2)",
    )
    add_v2_stream_arguments(
        parser,
        counted="likes",
        fields=_LIKE_FIELDS,
        partitions="partitions to read: all, N or a list such as 1-20 (required)",
    )


def run_likes(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet likes firehose|sample10 --partitions LIST``."""
    params = _params(args, _LIKE_FIELDS)
    partitions = _partitions_of(args)
    kind: str = args.kind
    opened = open_v2_stream(
        args,
        redactor,
        lambda client: client.likes_stream(kind, partitions=partitions, **params),
        counts=_has("like"),
        noun="likes",
    )
    return write_stream(opened, args, console)


def _labels_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    add_v2_stream_arguments(parser, counted="labels")


def run_labels(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet labels``."""
    params = _params(args, ())
    opened = open_v2_stream(
        args,
        redactor,
        lambda client: client.label_stream(**params),
        counts=_has("label"),
        noun="labels",
    )
    return write_stream(opened, args, console)


_JSONL = (
    "Each message is written exactly as X sent it, one per line, like `rxtweet sample`.\n"
    "Keep-alives are counted; malformed lines are reported on stderr and skipped."
)
_PARTITIONED = (
    "\nEach partition is its own connection, reconnecting on its own; their messages are\n"
    "merged into one output (in order within a partition)."
)

FIREHOSE = Command(
    "firehose",
    "write the firehose (all public tweets; --lang: one language's) as JSONL",
    run_firehose,
    _firehose_arguments,
    description="Write /2/tweets/firehose/stream (or /lang/LANG with --lang) as JSONL.\n"
    + _JSONL
    + _PARTITIONED,
    epilog="examples:\n  rxtweet firehose --partitions 1-20 -o firehose.jsonl\n"
    "  rxtweet firehose --partitions all --lang ja --tweet-fields lang,created_at",
    parents=("bearer",),
)

SAMPLE10 = Command(
    "sample10",
    "write the decahose (a 10%% sample, in 2 partitions) as JSONL",
    run_sample10,
    _sample10_arguments,
    description="Write /2/tweets/sample10/stream as JSONL.\n" + _JSONL + _PARTITIONED,
    epilog="examples:\n  rxtweet sample10 --partitions 1,2 -o decahose.jsonl --limit 10000",
    parents=("bearer",),
)

COMPLIANCE = Command(
    "compliance",
    "write a compliance stream (deletions, edits, withholdings ...) as JSONL",
    run_compliance,
    _compliance_arguments,
    description="Write the compliance events of tweets, users or likes as JSONL.\n"
    + _JSONL
    + _PARTITIONED
    + "\ntweets and users read all 4 partitions unless --partitions says otherwise.",
    epilog="examples:\n  rxtweet compliance tweets -o tweet-compliance.jsonl\n"
    "  rxtweet compliance users --partitions 1,2\n  rxtweet compliance likes",
    parents=("bearer",),
)

LIKES = Command(
    "likes",
    "write the likes firehose or its 10%% sample as JSONL",
    run_likes,
    _likes_arguments,
    description="Write /2/likes/firehose/stream or /2/likes/sample10/stream as JSONL.\n"
    + _JSONL
    + _PARTITIONED,
    epilog="examples:\n  rxtweet likes firehose --partitions 1-20 -o likes.jsonl\n"
    "  rxtweet likes sample10 --partitions all --like-with-tweet-author-fields "
    "created_at,username",
    parents=("bearer",),
)

LABELS = Command(
    "labels",
    "write the label stream (public tweet notices, unviewable tweets) as JSONL",
    run_labels,
    _labels_arguments,
    description="Write /2/tweets/label/stream as JSONL.\n" + _JSONL,
    epilog="examples:\n  rxtweet labels -o labels.jsonl",
    parents=("bearer",),
)
