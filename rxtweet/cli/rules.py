"""``rxtweet rules list|add|delete|sync``: the filtered stream's rules (API v2).

``sync FILE`` makes the server's rules equal to a file's, with
:meth:`~rxtweet.StreamingClient.sync_rules`. The file is either JSON — a list of
``{"value": ..., "tag": ...}`` objects (other keys such as ``id`` are ignored, so the output
of ``rxtweet rules list --json`` is a valid input) or X's answer ``{"data": [...]}`` — or text
with one rule per line, ``value`` or ``value<TAB>tag``. Any other shape is refused (exit 3),
and so is an empty set (an empty file, ``[]``) unless ``--allow-empty`` says to delete every
rule. A rule is the pair (value, tag): a rule whose tag changes is deleted and added again.
Additions are validated with ``dry_run`` before anything changes; then new rules are added
before old ones are deleted, and on a failure part-way the command says exactly what was and
was not applied. Everything printed that came from the server (values, tags, problems) has
its control characters escaped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HTTPException, RxTweetException, Unauthorized
from ..v2 import (
    DEFAULT_BASE_URL,
    RulesSync,
    RulesSyncError,
    StreamingClient,
    format_rule_problem,
    rules_of_doc,
)
from ..v2.models import StreamRule
from .common import CliError, ExitCode, Redactor, bearer_token, error_for
from .console import Console, display_width, printable
from .spec import Command

__all__ = ["COMMAND", "Rule", "add_rules_arguments", "parse_rules_file", "run_rules"]

ACCEPTED_SHAPES = (
    'a JSON list of rules ([{"value": "...", "tag": "..."}, ...], as `rxtweet rules list '
    '--json` prints), X\'s answer {"data": [...]}, or text with one rule per line '
    "(VALUE or VALUE<TAB>TAG)"
)

SYNC_DESCRIPTION = """\
Make the server's rules equal to FILE's. FILE is JSON, a list of {"value": ..., "tag": ...}
objects (other keys such as "id" are ignored, so `rxtweet rules list --json` output works)
or {"data": [...]}, or text with one rule per line: VALUE or VALUE<TAB>TAG. Other shapes are
refused (exit 3); an empty FILE (or []) is refused unless --allow-empty, which deletes every
rule. A rule is its (value, tag) pair: a rule whose tag changed is deleted and added again.
The additions are validated by the server (dry_run) before anything changes; then new rules
are added, old ones deleted, and the diff is printed (+ added, - removed, = kept). If a step
fails, what was and was not applied is printed. --dry-run only prints the diff."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule as the user sees it; ``id`` is ``None`` for one not on the server."""

    value: str
    tag: str | None = None
    id: str | None = None

    @property
    def key(self) -> tuple[str, str | None]:
        """What makes two rules the same rule."""
        return (self.value, self.tag)

    def show(self) -> str:
        """``value  [tag]  (id)`` for diffs and notices, control characters escaped."""
        tag = f"  [{printable(self.tag)}]" if self.tag is not None else ""
        rule_id = f"  (id {printable(self.id)})" if self.id else ""
        return f"{printable(self.value)}{tag}{rule_id}"


def _client(args: argparse.Namespace, redactor: Redactor) -> StreamingClient:
    token = bearer_token(args, redactor)
    try:
        return StreamingClient(token, base_url=args.base_url or DEFAULT_BASE_URL, return_type=dict)
    except ValueError as exc:  # a control character in the token: the message names no value
        raise CliError(str(exc), ExitCode.USAGE) from exc


def _rules_of(doc: dict[str, Any]) -> list[Rule]:
    # Checked by the library: a malformed answer is an RxTweetException (exit 1, said plainly).
    return [Rule(r.value or "", r.tag, r.id) for r in rules_of_doc(doc)]


def _rule_error(error: dict[str, Any]) -> str:
    # X's problem, per-rule ``details`` included, as one printable line (without the value,
    # which the caller shows).
    shown = format_rule_problem({k: v for k, v in error.items() if k != "value"})
    return printable(shown)


def _invalid(value: str, exc: HTTPException) -> CliError:
    """A 400/422 answer to rules: keep X's per-rule ``details`` in the message."""
    problems = [e for e in exc.api_errors if isinstance(e, dict)]
    text = "; ".join(_rule_error(p) for p in problems) or printable(
        exc.detail or exc.title or exc.reason or f"HTTP {exc.status_code}"
    )
    return CliError(
        f"invalid rule '{printable(value)}': {exc.status_code}: {text}", ExitCode.INVALID_RULE
    )


# --- list ----------------------------------------------------------------------------------


def _list(args: argparse.Namespace, client: StreamingClient, console: Console) -> int:
    rules = _rules_of(client.get_rules())
    if args.json:
        # JSON escapes control characters itself: the values stay exact.
        doc = [
            {"id": r.id, "value": r.value, **({"tag": r.tag} if r.tag is not None else {})}
            for r in rules
        ]
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        return ExitCode.OK
    if not rules:
        console.print("no rules; add one with `rxtweet rules add VALUE [--tag TAG]`")
        return ExitCode.OK
    rows = [("ID", "TAG", "VALUE")] + [
        (printable(r.id or ""), printable(r.tag or ""), printable(r.value)) for r in rules
    ]
    widths = [max(display_width(row[i]) for row in rows) for i in range(2)]
    for rule_id, tag, value in rows:
        pad_id = " " * (widths[0] - display_width(rule_id))
        pad_tag = " " * (widths[1] - display_width(tag))
        sys.stdout.write(f"{rule_id}{pad_id}  {tag}{pad_tag}  {value}\n")
    return ExitCode.OK


# --- add -----------------------------------------------------------------------------------


def _add(args: argparse.Namespace, client: StreamingClient, console: Console) -> int:
    try:
        doc = client.add_rules(StreamRule(args.value, args.tag), dry_run=args.dry_run or None)
    except HTTPException as exc:
        if exc.status_code in (400, 422):
            raise _invalid(args.value, exc) from exc
        raise
    code: int = ExitCode.OK
    for rule in _rules_of(doc):
        if args.dry_run:
            shown = Rule(rule.value, rule.tag).show()
            sys.stdout.write(f"+ {shown}  (valid; dry run: not added)\n")
        else:
            sys.stdout.write(f"+ {rule.show()}\n")
    for error in doc.get("errors") or []:
        value = printable(str(error.get("value", args.value)))
        if error.get("title") == "DuplicateRule":
            console.print(
                f"= {value}: already a rule (id {printable(str(error.get('id')))}); nothing to do"
            )
        else:
            console.print(f"invalid rule '{value}': {_rule_error(error)}")
            code = ExitCode.INVALID_RULE
    return code


# --- delete --------------------------------------------------------------------------------


def _delete(args: argparse.Namespace, client: StreamingClient, console: Console) -> int:
    if args.all == bool(args.rules):
        raise CliError("give rule IDs or values to delete, or --all", ExitCode.USAGE, usage=True)
    current = [r for r in _rules_of(client.get_rules()) if r.id]
    by_id = {r.id: r for r in current}
    by_value = {r.value: r for r in current}
    if args.all:
        chosen = current
        if not chosen:
            console.print("no rules to delete")
            return ExitCode.OK
        unknown: list[str] = []
    else:
        # twarc2's `stream-rules delete VALUE`: an argument is an id, or else a rule's value.
        found: dict[str, Rule] = {}
        unknown = []
        for wanted in dict.fromkeys(args.rules):
            rule = by_id.get(wanted) or by_value.get(wanted)
            if rule is None:
                unknown.append(wanted)
            elif rule.id is not None:
                found[rule.id] = rule
        chosen = list(found.values())
    if chosen:
        client.delete_rules([r.id for r in chosen if r.id], dry_run=args.dry_run or None)
        for rule in chosen:
            sys.stdout.write(f"- {rule.show()}\n")
        if args.dry_run:
            console.print("dry run: nothing deleted")
    for wanted in unknown:
        what = f"id {wanted}" if wanted.isdigit() else f"value '{wanted}'"
        console.print(f"no rule with {printable(what)}")
    return ExitCode.INVALID_RULE if unknown else ExitCode.OK


# --- sync ----------------------------------------------------------------------------------


def parse_rules_file(
    text: str, source: str = "rules file", *, allow_empty: bool = False
) -> list[Rule]:
    """The rules of a file's text: a JSON list of ``{"value", "tag"}``, X's ``{"data": [...]}``,
    or ``value<TAB>tag`` lines. Identical rules are merged.

    Raises:
        CliError: (exit 3) the file is in none of these shapes (the message names them),
            a rule has no value, one value appears with two different tags (X allows each
            value once), or there are no rules and not ``allow_empty``.
    """
    stripped = text.lstrip("\ufeff").strip()
    rules: list[Rule] = []
    if stripped.startswith(("[", "{")):
        try:
            doc = json.loads(stripped)
        except (ValueError, RecursionError) as exc:  # RecursionError: [[[[...]]]] nested deep
            raise CliError(
                f"{source}: not valid JSON: {exc}; accepted: {ACCEPTED_SHAPES}",
                ExitCode.INVALID_RULE,
            ) from exc
        if isinstance(doc, dict):
            if not isinstance(doc.get("data"), list):
                keys = ", ".join(repr(k) for k in list(doc)[:5]) or "none"
                raise CliError(
                    f'{source}: a JSON object without a "data" list (keys: {keys}); '
                    f"accepted: {ACCEPTED_SHAPES}",
                    ExitCode.INVALID_RULE,
                )
            doc = doc["data"]
        if not isinstance(doc, list):
            raise CliError(
                f"{source}: JSON {type(doc).__name__}; accepted: {ACCEPTED_SHAPES}",
                ExitCode.INVALID_RULE,
            )
        for n, item in enumerate(doc, 1):
            if not isinstance(item, dict) or not isinstance(item.get("value"), str):
                raise CliError(
                    f'{source}: rule {n} is not an object with a string "value"; '
                    f"accepted: {ACCEPTED_SHAPES}",
                    ExitCode.INVALID_RULE,
                )
            tag = item.get("tag")
            if tag is not None and not isinstance(tag, str):
                raise CliError(f'{source}: rule {n}: "tag" must be a string', ExitCode.INVALID_RULE)
            rules.append(Rule(item["value"].strip(), tag))
    else:
        for line in stripped.splitlines():
            if not line.strip():
                continue
            value, _, tag = line.partition("\t")
            rules.append(Rule(value.strip(), tag.strip() or None))
    seen: dict[str, Rule] = {}
    for rule in rules:
        if not rule.value:
            raise CliError(f"{source}: a rule has an empty value", ExitCode.INVALID_RULE)
        other = seen.get(rule.value)
        if other is not None and other.tag != rule.tag:
            raise CliError(
                f"{source}: '{printable(rule.value)}' appears with two tags "
                f"({printable(repr(other.tag))} and {printable(repr(rule.tag))}); "
                "X allows each rule value once",
                ExitCode.INVALID_RULE,
            )
        seen[rule.value] = rule
    if not seen and not allow_empty:
        what = "is empty" if not stripped else "holds no rules"
        raise CliError(
            f"{source} {what}: syncing it would delete every rule; pass --allow-empty to do "
            f"that. Accepted: {ACCEPTED_SHAPES}",
            ExitCode.INVALID_RULE,
        )
    return list(seen.values())


def _read_rules_file(path: str, *, allow_empty: bool) -> list[Rule]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from exc
    return parse_rules_file(text, path, allow_empty=allow_empty)


def _print_diff(result: RulesSync) -> None:
    for rule in result.deleted:
        sys.stdout.write(f"- {_shown(rule)}\n")
    for rule in result.added:
        # Without the new id, so that a dry run prints exactly what the real run will.
        sys.stdout.write(f"+ {Rule(rule.value or '', rule.tag).show()}\n")
    for rule in result.unchanged:
        sys.stdout.write(f"= {_shown(rule)}\n")


def _shown(rule: StreamRule) -> str:
    return Rule(rule.value or "", rule.tag, rule.id).show()


def _sync(args: argparse.Namespace, client: StreamingClient, console: Console) -> int:
    wanted = _read_rules_file(args.file, allow_empty=args.allow_empty)
    desired = [StreamRule(r.value, r.tag) for r in wanted]
    try:
        result = client.sync_rules(desired, dry_run=args.dry_run, allow_empty=args.allow_empty)
    except RulesSyncError as exc:
        raise _sync_failure(exc, args.file, console) from exc
    _print_diff(result)
    counts = (len(result.added), len(result.deleted), len(result.unchanged))
    if args.dry_run:
        console.print("{} to add, {} to remove, {} kept (dry run: nothing changed)".format(*counts))
    else:
        console.print("{} added, {} removed, {} kept".format(*counts))
    return ExitCode.OK


def _sync_failure(exc: RulesSyncError, source: str, console: Console) -> CliError:
    for problem in exc.errors:
        value = problem.get("value")
        shown = f"'{printable(value)}'" if isinstance(value, str) else "a rule"
        console.print(f"invalid rule {shown}: {_rule_error(problem)}")
    cause = exc.cause
    if not (exc.added or exc.deleted):
        if cause is None and exc.errors:
            return CliError(
                f"{len(exc.errors)} rule(s) in {source} rejected by the server; nothing changed",
                ExitCode.INVALID_RULE,
            )
        base = error_for(cause, what="the rules endpoint") if cause else None
        message = base.message if base else "rules sync failed"
        code = base.code if base else ExitCode.ERROR
        return CliError(f"{message}; nothing changed", code)
    for rule in exc.added:
        console.print(f"applied: + {_shown(rule)}")
    for rule in exc.deleted:
        console.print(f"applied: - {_shown(rule)}")
    for rule in exc.not_added:
        console.print(f"NOT applied: + {Rule(rule.value or '', rule.tag).show()}")
    for rule in exc.not_deleted:
        console.print(f"NOT applied: - {_shown(rule)}")
    reason = error_for(cause, what="the rules endpoint").message if cause else "rule problems"
    return CliError(
        f"rules sync stopped part-way ({reason}): {len(exc.added)} added, "
        f"{len(exc.deleted)} removed; {len(exc.not_added)} addition(s) and "
        f"{len(exc.not_deleted)} removal(s) not applied; run it again to finish",
        ExitCode.INVALID_RULE if cause is None else error_for(cause).code,
    )


# --- entry ---------------------------------------------------------------------------------


def _bearer_parent() -> argparse.ArgumentParser:
    # The rules endpoints take only the v2 bearer token: no v1.1 OAuth flags in their help.
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


def _has_oauth1_flags(parser: argparse.ArgumentParser) -> bool:
    return any("--consumer-key" in action.option_strings for action in parser._actions)


def add_rules_arguments(
    rules: argparse.ArgumentParser, parents: list[argparse.ArgumentParser]
) -> None:
    """The ``rules`` sub-commands. A parent that carries the v1.1 OAuth flags is replaced by
    one with only ``--bearer-token`` and ``--base-url`` (the rules API is v2 only)."""
    if any(_has_oauth1_flags(p) for p in parents):
        parents = [p for p in parents if not _has_oauth1_flags(p)] + [_bearer_parent()]
    actions = rules.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=parents, help="show the rules")
    listing.add_argument("--json", action="store_true", help="print JSON (a valid sync FILE)")
    add = actions.add_parser("add", parents=parents, help="add a rule")
    add.add_argument("value", metavar="VALUE", help='the rule, e.g. "cat has:images lang:en"')
    add.add_argument("--tag", metavar="TAG", help="a label, sent back with matching tweets")
    add.add_argument("--dry-run", action="store_true", help="only validate the rule")
    delete = actions.add_parser("delete", parents=parents, help="delete rules by id or by value")
    delete.add_argument(
        "rules",
        nargs="*",
        metavar="RULE",
        help="rule ids (see `rules list`) or rule values, e.g. 'cat has:images'",
    )
    delete.add_argument("--all", action="store_true", help="delete every rule")
    delete.add_argument("--dry-run", action="store_true", help="only check the deletion")
    sync = actions.add_parser(
        "sync",
        parents=parents,
        help="make the rules equal to a file's",
        description=SYNC_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sync.add_argument(
        "file",
        metavar="FILE",
        help='JSON list, {"data": [...]}, or value<TAB>tag lines; - for stdin',
    )
    sync.add_argument("--dry-run", action="store_true", help="only print the diff")
    sync.add_argument(
        "--allow-empty",
        action="store_true",
        help="allow an empty FILE (or []): delete every rule",
    )
    for parser in (listing, add, delete, sync):
        parser.set_defaults(usage_parser=parser)


def run_rules(args: argparse.Namespace, redactor: Redactor, console: Console) -> int:
    """``rxtweet rules ACTION``."""
    client = _client(args, redactor)
    action = {"list": _list, "add": _add, "delete": _delete, "sync": _sync}[args.rules_command]
    try:
        return action(args, client, console)
    except Unauthorized as exc:
        detail = printable(exc.detail or exc.title or "")
        raise CliError(
            f"401 Unauthorized: the rules endpoint refused the bearer token ({detail})".replace(
                " ()", ""
            ),
            ExitCode.UNAUTHORIZED,
            hint="check the bearer token (X_BEARER_TOKEN or --bearer-token): the rules "
            "endpoints take the app's OAuth 2.0 bearer token",
        ) from exc
    except RxTweetException as exc:
        raise error_for(exc, what="the rules endpoint") from exc


def _add_arguments(
    parser: argparse.ArgumentParser, parents: Mapping[str, argparse.ArgumentParser]
) -> None:
    # The sub-commands (list, add …) take the options: `rxtweet rules list --bearer-token T`.
    add_rules_arguments(parser, [parents["verbose"], parents["auth"]])


COMMAND = Command(
    "rules",
    "list, add, delete or sync the filtered stream's rules (API v2)",
    run_rules,
    _add_arguments,
    epilog="examples:\n  rxtweet rules add 'python lang:en -is:retweet' --tag python\n"
    "  rxtweet rules list --json > rules.json\n  rxtweet rules delete --all\n"
    "  rxtweet rules sync rules.json --dry-run",
)
