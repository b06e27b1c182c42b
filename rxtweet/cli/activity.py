"""``rxtweet activity``: the activity stream as JSONL, and its subscriptions.

``rxtweet activity`` writes ``/2/activity/stream`` like ``rxtweet sample`` (see
:mod:`rxtweet.cli.streams`); ``--limit`` counts activity events.

``rxtweet activity subscriptions list|add|delete`` manages what the stream delivers, over
``/2/activity/subscriptions`` with :class:`~rxtweet.StreamingClient`'s
``get_activity_subscriptions``, ``add_activity_subscription`` and
``delete_activity_subscription``. A subscription is an event type (``profile.update.bio``,
``follow.follow`` ...) and a filter: a user id (``--user-id``) or a keyword
(``--keyword``), with an optional ``--direction``. ``list`` prints one subscription a line
(id, event type, filter, tag), or X's JSON with ``--json``; everything printed that came
from the server has its control characters escaped.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import RxTweetException
from .common import CliError, ExitCode, Redactor, error_for
from .console import Console, printable
from .spec import Command
from .stream import write_stream
from .streams import add_v2_stream_arguments, open_v2_stream, v2_client

__all__ = ["COMMAND", "run_activity"]

log = logging.getLogger(__name__)


def _subscriptions_of(doc: Any) -> list[dict[str, Any]]:
    """The subscriptions in X's answer: ``{"data": [S, ...]}`` (list) or
    ``{"data": {"subscription": S, ...}}`` (add, update)."""
    data = doc.get("data") if isinstance(doc, dict) else None
    if isinstance(data, dict):
        data = [data.get("subscription")]
    return [each for each in data or [] if isinstance(each, dict)]


def _id_of(subscription: Mapping[str, Any]) -> str:
    value = subscription.get("subscription_id", subscription.get("id"))
    return "" if value is None else str(value)


def _filter_text(subscription: Mapping[str, Any]) -> str:
    found = subscription.get("filter")
    if not isinstance(found, dict):
        return ""
    return ",".join(f"{key}={value}" for key, value in found.items())


def _show(subscription: Mapping[str, Any]) -> str:
    tag = subscription.get("tag")
    bits = [
        _id_of(subscription),
        str(subscription.get("event_type", "")),
        _filter_text(subscription),
    ]
    if tag is not None:
        bits.append(f"[{tag}]")
    return printable("  ".join(bit for bit in bits if bit))


def _list(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    doc = v2_client(args, redactor).get_activity_subscriptions()
    subscriptions = _subscriptions_of(doc)
    if args.json:
        sys.stdout.write(json.dumps(subscriptions, ensure_ascii=False, indent=2) + "\n")
        return ExitCode.OK
    if not subscriptions:
        console.print(
            "no activity subscriptions; add one with "
            "`rxtweet activity subscriptions add EVENT_TYPE --user-id ID`"
        )
        return ExitCode.OK
    for subscription in subscriptions:
        sys.stdout.write(_show(subscription) + "\n")
    return ExitCode.OK


def _add(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    if (args.user_id is None) == (args.keyword is None):
        raise CliError(
            "give the filter: --user-id ID or --keyword WORD (one of them)",
            ExitCode.USAGE,
            usage=True,
        )
    found: dict[str, Any] = (
        {"user_id": args.user_id} if args.user_id is not None else {"keyword": args.keyword}
    )
    if args.direction is not None:
        found["direction"] = args.direction
    doc = v2_client(args, redactor).add_activity_subscription(
        args.event_type, found, tag=args.tag, webhook_id=args.webhook_id
    )
    added = _subscriptions_of(doc)
    for subscription in added:
        sys.stdout.write(f"+ {_show(subscription)}\n")
    if not added:
        sys.stdout.write(f"+ {printable(args.event_type)}\n")
    return ExitCode.OK


def _delete(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    client = v2_client(args, redactor)
    for subscription_id in dict.fromkeys(args.ids):
        client.delete_activity_subscription(subscription_id)
        sys.stdout.write(f"- {printable(subscription_id)}\n")
    return ExitCode.OK


def _stream(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    params = {
        keyword: getattr(args, keyword)
        for keyword in ("backfill_minutes", "start_time", "end_time")
        if getattr(args, keyword) is not None
    }
    opened = open_v2_stream(
        args,
        redactor,
        lambda client: client.activity_stream(**params),
        counts=lambda message: getattr(message, "activity", None) is not None,
        noun="activity events",
    )
    return write_stream(opened, args, console)


def run_activity(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet activity`` and ``rxtweet activity subscriptions list|add|delete``."""
    action = getattr(args, "subscriptions_command", None)
    if action is None:
        return _stream(args, redactor, console)
    run = {"list": _list, "add": _add, "delete": _delete}[action]
    try:
        return run(args, redactor, console)
    except RxTweetException as exc:
        raise error_for(exc, what="the activity subscriptions endpoint") from exc


def _bearer_parent() -> argparse.ArgumentParser:
    # SUPPRESS: a sub-command's default would overwrite `activity --bearer-token T` given
    # before it (argparse copies sub-parser defaults over the parent's values).
    parent = argparse.ArgumentParser(add_help=False)
    auth = parent.add_argument_group(
        "credentials (default: from the environment; flags are visible to other users in `ps`)"
    )
    auth.add_argument(
        "--bearer-token",
        metavar="TOKEN",
        default=argparse.SUPPRESS,
        help="API v2 ($X_BEARER_TOKEN)",
    )
    parent.add_argument(
        "--base-url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="API root, e.g. the URL printed by `rxtweet serve` (default: X's)",
    )
    return parent


def _add_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    add_v2_stream_arguments(parser, counted="activity events")
    commands = parser.add_subparsers(dest="command_group", metavar="{subscriptions}")
    group = commands.add_parser(
        "subscriptions",
        help="list, add or delete the subscriptions the activity stream delivers",
    )
    actions = group.add_subparsers(dest="subscriptions_command", required=True, metavar="ACTION")
    shared = [parents["verbose"], _bearer_parent()]
    listing = actions.add_parser("list", parents=shared, help="show the subscriptions")
    listing.add_argument("--json", action="store_true", help="print X's JSON")
    add = actions.add_parser("add", parents=shared, help="add a subscription")
    add.add_argument("event_type", metavar="EVENT_TYPE", help="e.g. profile.update.bio")
    add.add_argument("--user-id", metavar="ID", help="filter: events of this user")
    add.add_argument("--keyword", metavar="WORD", help="filter: events matching this keyword")
    add.add_argument("--direction", metavar="DIR", help="filter: inbound or outbound (follows)")
    add.add_argument("--tag", metavar="TAG", help="a label, sent back with each event")
    add.add_argument("--webhook-id", metavar="ID", help="deliver to this webhook as well")
    delete = actions.add_parser("delete", parents=shared, help="delete subscriptions by id")
    delete.add_argument("ids", nargs="+", metavar="ID", help="subscription ids (see list)")
    for each in (group, listing, add, delete):
        each.set_defaults(usage_parser=each)


COMMAND = Command(
    "activity",
    "write the activity stream as JSONL, or manage its subscriptions",
    run_activity,
    _add_arguments,
    description="Write /2/activity/stream as JSONL, like `rxtweet sample`: the events of the\n"
    "subscriptions set with `rxtweet activity subscriptions add`.",
    epilog="examples:\n"
    "  rxtweet activity subscriptions add profile.update.bio --user-id 2244994945\n"
    "  rxtweet activity subscriptions list\n  rxtweet activity -o activity.jsonl\n"
    "  rxtweet activity subscriptions delete 1146654567674912769",
    parents=("bearer",),
)
